//! The line discipline, as pure logic (host-tested): input bytes in, bytes ready for readers,
//! echo output and raised signals out. Canonical mode edits a line (VERASE, VKILL, VWERASE, with
//! ECHOE/ECHOK), ends it at newline, VEOL or VEOF, and gives readers one line at a time; raw mode
//! hands bytes over as they come. ISIG turns VINTR/VQUIT/VSUSP into signals (flushing pending
//! input unless NOFLSH). ICRNL/INLCR/IGNCR translate, ECHOCTL shows control characters as `^X`.
//! Output goes through OPOST (ONLCR, OCRNL).

use crate::termios::*;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// What one input byte asks the server to do besides queueing input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Bytes to echo to the console (already post-processed).
    pub echo: Vec<u8>,
    /// A signal raised by the byte (SIGINT, SIGQUIT, SIGTSTP).
    pub signal: Option<u32>,
}

pub struct Discipline {
    pub termios: Termios,
    /// Input a reader may take: in canonical mode one segment per line (a read never crosses
    /// one), and an empty segment for an end of file (^D on an empty line: a read returns 0).
    ready: VecDeque<Segment>,
    /// The line being edited (canonical mode).
    line: Vec<u8>,
}

/// A line (or, in raw mode, a run of bytes) ready for readers.
struct Segment {
    data: VecDeque<u8>,
    /// An end of file: a read of it returns 0 once.
    eof: bool,
}

pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGTSTP: u32 = 20;

/// The longest line canonical mode keeps (Linux's N_TTY_BUF_SIZE is 4096).
const MAX_LINE: usize = 4095;
/// Input kept for readers at most; more is dropped (a reader that never reads).
const MAX_READY: usize = 64 * 1024;

impl Default for Discipline {
    fn default() -> Self {
        Self::new(Termios::default())
    }
}

impl Discipline {
    pub fn new(termios: Termios) -> Discipline {
        Discipline { termios, ready: VecDeque::new(), line: Vec::new() }
    }

    fn canonical(&self) -> bool {
        self.termios.lflag & ICANON != 0
    }

    /// Whether a read would return now (data, or an end of file).
    pub fn readable(&self) -> bool {
        !self.ready.is_empty() || self.vmin_zero()
    }

    /// Non-canonical with VMIN = 0: a read never waits.
    fn vmin_zero(&self) -> bool {
        !self.canonical() && self.termios.cc[VMIN] == 0
    }

    /// Bytes ready (FIONREAD).
    pub fn pending(&self) -> usize {
        self.ready.iter().map(|s| s.data.len()).sum()
    }

    /// Takes up to `max` bytes for a reader: `None` if the read must wait.
    pub fn read(&mut self, max: usize) -> Option<Vec<u8>> {
        let canonical = self.canonical();
        let Some(front) = self.ready.front_mut() else {
            return self.vmin_zero().then(Vec::new);
        };
        if front.eof {
            self.ready.pop_front();
            return Some(Vec::new());
        }
        let mut out = Vec::new();
        if canonical {
            let n = max.min(front.data.len());
            out.extend(front.data.drain(..n));
            if front.data.is_empty() {
                self.ready.pop_front();
            }
            return Some(out);
        }
        while out.len() < max {
            let Some(seg) = self.ready.front_mut() else { break };
            let n = (max - out.len()).min(seg.data.len());
            out.extend(seg.data.drain(..n));
            if seg.data.is_empty() {
                self.ready.pop_front();
            }
        }
        Some(out)
    }

    fn is_eol(&self, b: u8) -> bool {
        let eol = self.termios.cc[VEOL];
        eol != 0 && b == eol
    }

    /// Discards input (TCFLSH, TCSETSF, a signal without NOFLSH).
    pub fn flush_input(&mut self) {
        self.ready.clear();
        self.line.clear();
    }

    /// Takes settings; leaving canonical mode hands the edited line to readers.
    pub fn set_termios(&mut self, t: Termios) {
        let was_canonical = self.canonical();
        self.termios = t;
        if was_canonical && !self.canonical() {
            let line = core::mem::take(&mut self.line);
            self.queue(&line, false);
        }
    }

    /// Adds input for readers: a new segment (a line, or an end of file), or in raw mode more
    /// bytes for the last one.
    fn queue(&mut self, bytes: &[u8], eof: bool) {
        let room = MAX_READY.saturating_sub(self.pending());
        let bytes = &bytes[..bytes.len().min(room)];
        if bytes.is_empty() && !eof {
            return;
        }
        if !self.canonical() {
            if let Some(last) = self.ready.back_mut().filter(|s| !s.eof) {
                last.data.extend(bytes);
                return;
            }
        }
        self.ready.push_back(Segment { data: bytes.iter().copied().collect(), eof });
    }

    fn echo_byte(&self, out: &mut Vec<u8>, b: u8) {
        if self.termios.lflag & ECHO == 0 {
            if b == b'\n' && self.termios.lflag & ECHONL != 0 && self.canonical() {
                self.output(out, b"\n");
            }
            return;
        }
        if self.termios.lflag & ECHOCTL != 0 && (b < 0x20 && b != b'\n' && b != b'\t' || b == 0x7f) {
            out.extend_from_slice(&[b'^', if b == 0x7f { b'?' } else { b + 0x40 }]);
        } else {
            self.output(out, &[b]);
        }
    }

    /// Output post-processing (OPOST): ONLCR turns `\n` into `\r\n`, OCRNL `\r` into `\n`.
    pub fn output(&self, out: &mut Vec<u8>, bytes: &[u8]) {
        let o = self.termios.oflag;
        if o & OPOST == 0 {
            out.extend_from_slice(bytes);
            return;
        }
        for &b in bytes {
            match b {
                b'\n' if o & ONLCR != 0 => out.extend_from_slice(b"\r\n"),
                b'\r' if o & OCRNL != 0 => out.push(b'\n'),
                _ => out.push(b),
            }
        }
    }

    /// Erases one character of the line being edited, echoing the erasure.
    fn erase_one(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(b) = self.line.pop() else { return false };
        if self.termios.lflag & ECHO != 0 && self.termios.lflag & ECHOE != 0 {
            let width = if self.termios.lflag & ECHOCTL != 0 && (b < 0x20 && b != b'\t' || b == 0x7f) { 2 } else { 1 };
            for _ in 0..width {
                out.extend_from_slice(b"\x08 \x08");
            }
        }
        true
    }

    /// One byte of console input.
    pub fn input(&mut self, mut b: u8) -> Effects {
        let mut fx = Effects::default();
        let t = self.termios;
        if t.iflag & ISTRIP != 0 {
            b &= 0x7f;
        }
        match b {
            b'\r' if t.iflag & IGNCR != 0 => return fx,
            b'\r' if t.iflag & ICRNL != 0 => b = b'\n',
            b'\n' if t.iflag & INLCR != 0 => b = b'\r',
            _ => {}
        }
        if t.lflag & ISIG != 0 && b != 0 {
            let sig = match b {
                _ if b == t.cc[VINTR] => Some(SIGINT),
                _ if b == t.cc[VQUIT] => Some(SIGQUIT),
                _ if b == t.cc[VSUSP] => Some(SIGTSTP),
                _ => None,
            };
            if let Some(s) = sig {
                if t.lflag & NOFLSH == 0 {
                    self.flush_input();
                }
                self.echo_byte(&mut fx.echo, b);
                fx.signal = Some(s);
                return fx;
            }
        }
        if !self.canonical() {
            self.queue(&[b], false);
            self.echo_byte(&mut fx.echo, b);
            return fx;
        }
        if b != 0 && (b == t.cc[VERASE] || b == 0x08 && t.cc[VERASE] == 0x7f) {
            self.erase_one(&mut fx.echo);
        } else if b != 0 && b == t.cc[VWERASE] && t.lflag & IEXTEN != 0 {
            while self.line.last() == Some(&b' ') && self.erase_one(&mut fx.echo) {}
            while self.line.last().is_some_and(|&c| c != b' ') && self.erase_one(&mut fx.echo) {}
        } else if b != 0 && b == t.cc[VKILL] {
            if t.lflag & ECHOK != 0 && t.lflag & ECHOKE != 0 {
                while self.erase_one(&mut fx.echo) {}
            } else {
                self.line.clear();
                self.echo_byte(&mut fx.echo, b);
                if t.lflag & ECHOK != 0 {
                    self.output(&mut fx.echo, b"\n");
                }
            }
        } else if b != 0 && b == t.cc[VEOF] {
            // ^D ends the line without a newline; on an empty line it is an end of file.
            let line = core::mem::take(&mut self.line);
            let eof = line.is_empty();
            self.queue(&line, eof);
        } else if b == b'\n' || self.is_eol(b) {
            self.line.push(b);
            let line = core::mem::take(&mut self.line);
            self.queue(&line, false);
            self.echo_byte(&mut fx.echo, b);
        } else if self.line.len() < MAX_LINE {
            self.line.push(b);
            self.echo_byte(&mut fx.echo, b);
        }
        fx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Discipline, bytes: &[u8]) -> (Vec<u8>, Vec<u32>) {
        let (mut echo, mut sigs) = (Vec::new(), Vec::new());
        for &b in bytes {
            let fx = d.input(b);
            echo.extend(fx.echo);
            sigs.extend(fx.signal);
        }
        (echo, sigs)
    }

    #[test]
    fn canonical_lines_with_erase_and_kill() {
        let mut d = Discipline::default();
        let (echo, _) = feed(&mut d, b"helo\x7flo\r");
        assert_eq!(echo, b"helo\x08 \x08lo\r\n");
        assert_eq!(d.read(100).unwrap(), b"hello\n");
        assert_eq!(d.read(100), None, "nothing more: the reader waits");
        feed(&mut d, b"abc\x15xy\n");
        assert_eq!(d.read(100).unwrap(), b"xy\n");
        feed(&mut d, b"one two\x17three\n");
        assert_eq!(d.read(100).unwrap(), b"one three\n");
    }

    #[test]
    fn a_read_takes_one_line_at_most() {
        let mut d = Discipline::default();
        feed(&mut d, b"a\nbb\n");
        assert_eq!(d.read(100).unwrap(), b"a\n");
        assert_eq!(d.read(1).unwrap(), b"b");
        assert_eq!(d.read(100).unwrap(), b"b\n");
    }

    #[test]
    fn eof_on_an_empty_line_reads_zero_once() {
        let mut d = Discipline::default();
        feed(&mut d, b"x\x04\x04");
        assert_eq!(d.read(100).unwrap(), b"x", "^D ends a non-empty line without a newline");
        assert_eq!(d.read(100).unwrap(), b"", "then ^D on an empty line is end of file");
        assert_eq!(d.read(100), None);
    }

    #[test]
    fn signals_flush_and_echo() {
        let mut d = Discipline::default();
        let (echo, sigs) = feed(&mut d, b"partial\x03");
        assert_eq!(sigs, [SIGINT]);
        assert!(echo.ends_with(b"^C"));
        assert_eq!(d.read(100), None, "the partial line was discarded");
        let (_, sigs) = feed(&mut d, b"\x1a\x1c");
        assert_eq!(sigs, [SIGTSTP, SIGQUIT]);
    }

    #[test]
    fn raw_mode() {
        let mut t = Termios::default();
        t.lflag &= !(ICANON | ECHO);
        t.cc[VMIN] = 1;
        let mut d = Discipline::new(t);
        let (echo, _) = feed(&mut d, b"q\x7f");
        assert!(echo.is_empty());
        assert_eq!(d.read(10).unwrap(), b"q\x7f");
        t.cc[VMIN] = 0;
        d.set_termios(t);
        assert_eq!(d.read(10).unwrap(), b"", "VMIN 0 never waits");
    }

    #[test]
    fn leaving_canonical_mode_hands_over_the_line() {
        let mut d = Discipline::default();
        feed(&mut d, b"abc");
        let mut t = d.termios;
        t.lflag &= !ICANON;
        d.set_termios(t);
        assert_eq!(d.read(10).unwrap(), b"abc");
    }

    #[test]
    fn output_processing() {
        let d = Discipline::default();
        let mut out = Vec::new();
        d.output(&mut out, b"a\nb");
        assert_eq!(out, b"a\r\nb");
    }
}
