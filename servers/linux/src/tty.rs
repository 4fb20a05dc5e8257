//! The console's line discipline (v0, inside the `linux` server): termios state, input
//! translation (ICRNL), canonical mode with echo and erase, ^C/^\ to the foreground process
//! group (ISIG), ^D as end-of-file, and output post-processing (ONLCR).

use crate::{Linux, Pid};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use server_rt::Kernel;

pub const ICRNL: u32 = 0o400;
pub const OPOST: u32 = 0o1;
pub const ONLCR: u32 = 0o4;
pub const ISIG: u32 = 0o1;
pub const ICANON: u32 = 0o2;
pub const ECHO: u32 = 0o10;
pub const ECHOE: u32 = 0o20;

/// `struct termios` fields we keep (the kernel layout: 4 flags, c_line, 19 c_cc).
#[derive(Clone, Copy)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub cc: [u8; 19],
}

pub const VINTR: usize = 0;
pub const VQUIT: usize = 1;
pub const VERASE: usize = 2;
pub const VEOF: usize = 4;
pub const VMIN: usize = 6;
pub const VSUSP: usize = 10;

impl Termios {
    pub fn default_console() -> Termios {
        let mut cc = [0u8; 19];
        cc[VINTR] = 3;
        cc[VQUIT] = 0x1c;
        cc[VERASE] = 0x7f;
        cc[3] = 0x15; // VKILL
        cc[VEOF] = 4;
        cc[VMIN] = 1;
        cc[VSUSP] = 0x1a;
        Termios {
            iflag: ICRNL,
            oflag: OPOST | ONLCR,
            cflag: 0o277,
            lflag: ISIG | ICANON | ECHO | ECHOE | 0o1000 | 0o4000,
            cc,
        }
    }

    pub fn encode(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[0..4].copy_from_slice(&self.iflag.to_le_bytes());
        b[4..8].copy_from_slice(&self.oflag.to_le_bytes());
        b[8..12].copy_from_slice(&self.cflag.to_le_bytes());
        b[12..16].copy_from_slice(&self.lflag.to_le_bytes());
        b[17..36].copy_from_slice(&self.cc);
        b
    }

    pub fn decode(b: &[u8]) -> Option<Termios> {
        let word = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
        let mut cc = [0u8; 19];
        cc.copy_from_slice(b.get(17..36)?);
        Some(Termios { iflag: word(0)?, oflag: word(4)?, cflag: word(8)?, lflag: word(12)?, cc })
    }
}

pub struct Tty {
    pub termios: Termios,
    /// Input ready for `read`.
    pub ready: VecDeque<u8>,
    /// The line being edited (canonical mode).
    line: Vec<u8>,
    /// An end-of-file (^D on an empty line) is waiting for a reader.
    pub eof: bool,
    pub foreground: Pid,
    /// Signals raised by input, delivered by the server loop.
    pub pending_signal: Option<u32>,
    pub rows: u16,
    pub cols: u16,
}

impl Tty {
    pub fn new() -> Tty {
        Tty {
            termios: Termios::default_console(),
            ready: VecDeque::new(),
            line: Vec::new(),
            eof: false,
            foreground: 1,
            pending_signal: None,
            rows: 24,
            cols: 80,
        }
    }

    fn echo(&self, k: &dyn Kernel, bytes: &[u8]) {
        if self.termios.lflag & ECHO != 0 {
            self.write(k, bytes);
        }
    }

    /// Writes program output, translating `\n` to `\r\n` under OPOST|ONLCR.
    pub fn write(&self, k: &dyn Kernel, bytes: &[u8]) {
        if self.termios.oflag & (OPOST | ONLCR) == OPOST | ONLCR && bytes.contains(&b'\n') {
            let mut out = Vec::with_capacity(bytes.len() + 16);
            for &b in bytes {
                if b == b'\n' {
                    out.push(b'\r');
                }
                out.push(b);
            }
            k.console_write(&out);
        } else {
            k.console_write(bytes);
        }
    }

    /// Moves console input through the line discipline.
    pub fn poll_input(&mut self, k: &dyn Kernel) {
        let mut buf = [0u8; 64];
        loop {
            let n = k.console_read(&mut buf);
            if n == 0 {
                return;
            }
            for &b in &buf[..n] {
                self.input(k, b);
            }
        }
    }

    fn input(&mut self, k: &dyn Kernel, mut b: u8) {
        let t = self.termios;
        if b == b'\r' && t.iflag & ICRNL != 0 {
            b = b'\n';
        }
        if t.lflag & ISIG != 0 {
            let sig = if b == t.cc[VINTR] {
                Some(2)
            } else if b == t.cc[VQUIT] {
                Some(3)
            } else if b == t.cc[VSUSP] {
                Some(20)
            } else {
                None
            };
            if let Some(s) = sig {
                self.line.clear();
                self.echo(k, &[b'^', b + 0x40, b'\n']);
                self.pending_signal = Some(s);
                return;
            }
        }
        if t.lflag & ICANON == 0 {
            self.ready.push_back(b);
            return;
        }
        if b == t.cc[VERASE] || b == 8 {
            if self.line.pop().is_some() && t.lflag & ECHOE != 0 {
                self.echo(k, b"\x08 \x08");
            }
        } else if b == t.cc[VEOF] {
            if self.line.is_empty() {
                self.eof = true;
            } else {
                self.ready.extend(self.line.drain(..));
            }
        } else if b == b'\n' {
            self.line.push(b);
            self.echo(k, b"\n");
            self.ready.extend(self.line.drain(..));
        } else {
            self.line.push(b);
            self.echo(k, &[b]);
        }
    }
}

impl Default for Tty {
    fn default() -> Self {
        Self::new()
    }
}

impl Tty {
    /// Whether console input raised a signal not yet delivered.
    pub fn has_pending_signal(&self) -> bool {
        self.pending_signal.is_some()
    }
}

/// Delivers a signal raised by console input to the foreground process group.
pub fn deliver_signals(l: &mut Linux) {
    if let Some(sig) = l.tty.pending_signal.take() {
        let pgid = l.procs.get(&l.tty.foreground).map_or(l.tty.foreground, |p| p.pgid);
        crate::sys::signal::kill_group(l, pgid, sig);
    }
}
