//! Runs one QEMU (or any program standing in for it) and watches its console.
//!
//! [`Guest::spawn`] starts the command with stdout piped (and stderr piped or inherited), in its
//! own process group by default, so that QEMU and anything it started can be signalled together.
//! A thread reads stdout into a shared byte
//! transcript (optionally echoing every chunk, unchanged, to a sink: that is how the interactive
//! runner passes the console through) and notes the last `@@POWEROFF <code>` line.
//!
//! Invariants:
//! * QEMU is always gone when a [`Guest`] is dropped, when [`Guest::wait`] returns, and when
//!   [`Guest::wait_for`] times out: SIGTERM (so that QEMU restores the terminal), then SIGKILL
//!   after [`TERM_GRACE`], sent to the whole process group when there is one;
//! * the process group is signalled only while its leader is unreaped (a zombie still owns the
//!   group id), so a recycled id is never hit;
//! * transcripts are kept as raw bytes; text views are lossy UTF-8.
//!
//! Caveat: a harness killed with SIGKILL cannot clean up; its QEMU runs on until its own
//! timeout or the caller's cleanup (CI ends everything a run leaves behind). Making QEMU die with
//! its parent needs `prctl(PR_SET_PDEATHSIG)` in an `unsafe` `pre_exec`, which this crate avoids.
//!
//! A terminal on stdin needs `own_process_group: false`: a background process group that reads
//! from or configures its controlling terminal is stopped by SIGTTIN/SIGTTOU.

use crate::transcript::poweroff_code;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long QEMU gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long the output threads get to see end-of-file after QEMU has exited.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Polling period while waiting for the process to exit.
const POLL: Duration = Duration::from_millis(20);

/// What the child's stdin is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// `/dev/null`: the guest sees no input.
    Null,
    /// Our own stdin (a terminal or a pipe).
    Inherit,
    /// A pipe written with [`Guest::send`] or taken with [`Guest::take_stdin`].
    Piped,
}

/// How to start the child.
pub struct Options {
    pub stdin: Input,
    /// Put the child in a new process group and signal the whole group.
    pub own_process_group: bool,
    /// Capture stderr (else inherit it).
    pub capture_stderr: bool,
    /// Every stdout chunk is also written (unchanged, flushed) here as it arrives.
    pub echo: Option<Box<dyn Write + Send>>,
}

impl Default for Options {
    /// Tests: no input, own process group, stderr captured, SIGTERM on parent death.
    fn default() -> Options {
        Options { stdin: Input::Null, own_process_group: true, capture_stderr: true, echo: None }
    }
}

#[derive(Default)]
struct State {
    out: Vec<u8>,
    /// Start of the line not yet scanned for a marker.
    line_start: usize,
    poweroff: Option<i32>,
    poweroff_at: Option<Instant>,
    out_eof: bool,
    err: Vec<u8>,
    err_eof: bool,
}

impl State {
    fn scan_lines(&mut self, at_eof: bool) {
        while let Some(i) = self.out[self.line_start..].iter().position(|&b| b == b'\n') {
            let end = self.line_start + i;
            self.note_line(self.line_start, end);
            self.line_start = end + 1;
        }
        if at_eof && self.line_start < self.out.len() {
            self.note_line(self.line_start, self.out.len());
            self.line_start = self.out.len();
        }
    }

    fn note_line(&mut self, start: usize, end: usize) {
        if let Some(code) = poweroff_code(&String::from_utf8_lossy(&self.out[start..end])) {
            self.poweroff = Some(code);
            self.poweroff_at.get_or_insert_with(Instant::now);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The process exited by itself.
    Exited,
    /// The deadline passed; the process was killed.
    Timeout,
    /// The guest printed `@@POWEROFF` but the process did not exit within the grace period;
    /// it was killed.
    HungAfterPowerOff,
}

/// The result of [`Guest::wait`].
#[derive(Clone, Debug)]
pub struct Outcome {
    pub end: End,
    /// The exit status (after a kill: the signal).
    pub status: Option<ExitStatus>,
    /// The code of the last `@@POWEROFF` line, if any.
    pub poweroff: Option<i32>,
    /// Everything the guest wrote to stdout (lossy UTF-8, `\r` kept).
    pub transcript: String,
    /// Everything it wrote to stderr, if captured.
    pub stderr: String,
    /// Since spawn.
    pub elapsed: Duration,
}

impl Outcome {
    /// QEMU's exit status as text (`exit 3`, `signal 9`).
    pub fn status_text(&self) -> String {
        match self.status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (_, Some(sig)) => format!("signal {sig}"),
                _ => format!("{s}"),
            },
            None => "unknown status".into(),
        }
    }
}

/// Why [`Guest::wait_for`] gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The deadline passed (the process has been killed).
    Timeout,
    /// The output ended without the string.
    Ended,
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitError::Timeout => f.write_str("timed out"),
            WaitError::Ended => f.write_str("output ended"),
        }
    }
}

/// A read-only view of a running guest's output, for other threads (see [`Guest::watch`]).
#[derive(Clone)]
pub struct Watch(Arc<Shared>);

impl Watch {
    /// Waits until the output contains `needle` anywhere: `true`, or `false` at the deadline
    /// or the end of the output. Consumes nothing and kills nothing.
    pub fn wait_until_contains(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_until_contains_after(0, needle, timeout).is_some()
    }

    /// Waits until the output from byte `from` on contains `needle`: the offset just past it, or
    /// `None` at the deadline or the end of the output.
    pub fn wait_until_contains_after(&self, from: usize, needle: &str, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        let mut st = self.0.lock();
        loop {
            if let Some(at) = st.out.get(from..).and_then(|rest| find(rest, needle.as_bytes())) {
                return Some(from + at + needle.len());
            }
            let now = Instant::now();
            if st.out_eof || now >= deadline {
                return None;
            }
            st = self.0.cond.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// A running QEMU.
pub struct Guest {
    child: Child,
    pid: Pid,
    own_group: bool,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    stdin: Option<ChildStdin>,
    started: Instant,
    status: Option<ExitStatus>,
    /// `wait_for` consumed the output up to here.
    cursor: usize,
}

fn spawn_reader(
    shared: Arc<Shared>,
    mut from: impl Read + Send + 'static,
    is_err: bool,
    mut echo: Option<Box<dyn Write + Send>>,
) -> io::Result<JoinHandle<()>> {
    let name = if is_err { "qemu-stderr" } else { "qemu-stdout" };
    thread::Builder::new().name(name.into()).spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if let Some(w) = echo.as_mut() {
                // A closed stdout (`run | head`) must not stop the draining.
                if w.write_all(&buf[..n]).and_then(|_| w.flush()).is_err() {
                    echo = None;
                }
            }
            let mut st = shared.lock();
            if is_err {
                st.err.extend_from_slice(&buf[..n]);
            } else {
                st.out.extend_from_slice(&buf[..n]);
                st.scan_lines(false);
            }
            drop(st);
            shared.cond.notify_all();
        }
        let mut st = shared.lock();
        if is_err {
            st.err_eof = true;
        } else {
            st.scan_lines(true);
            st.out_eof = true;
        }
        drop(st);
        shared.cond.notify_all();
    })
}

impl Guest {
    /// Starts `cmd` (its stdio is overridden as `opts` says).
    pub fn spawn(mut cmd: Command, opts: Options) -> io::Result<Guest> {
        cmd.stdin(match opts.stdin {
            Input::Null => Stdio::null(),
            Input::Inherit => Stdio::inherit(),
            Input::Piped => Stdio::piped(),
        });
        cmd.stdout(Stdio::piped());
        cmd.stderr(if opts.capture_stderr { Stdio::piped() } else { Stdio::inherit() });
        if opts.own_process_group {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn()?;
        let pid = Pid::from_raw(child.id() as i32);
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), cond: Condvar::new() });
        let mut guest = Guest {
            stdin: child.stdin.take(),
            pid,
            own_group: opts.own_process_group,
            shared: shared.clone(),
            threads: Vec::new(),
            started: Instant::now(),
            status: None,
            cursor: 0,
            child,
        };
        // From here on, an error drops `guest`, which kills the child.
        let out = guest.child.stdout.take().expect("stdout is piped");
        guest.threads.push(spawn_reader(shared.clone(), out, false, opts.echo)?);
        match guest.child.stderr.take() {
            Some(err) => guest.threads.push(spawn_reader(shared, err, true, None)?),
            None => shared.lock().err_eof = true,
        }
        Ok(guest)
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Since spawn.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A view of the output for another thread.
    pub fn watch(&self) -> Watch {
        Watch(self.shared.clone())
    }

    /// The piped stdin (with [`Input::Piped`]), for a writer thread of the caller's own.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Writes `bytes` to the guest's stdin ([`Input::Piped`] only).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.stdin.as_mut() {
            Some(s) => s.write_all(bytes).and_then(|_| s.flush()),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "stdin is not piped")),
        }
    }

    /// Closes the guest's stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The stdout transcript so far (lossy UTF-8).
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.shared.lock().out).into_owned()
    }

    /// The code of the last `@@POWEROFF` line so far.
    pub fn poweroff(&self) -> Option<i32> {
        self.shared.lock().poweroff
    }

    /// Waits until `needle` appears in stdout after the previous match (the output is consumed
    /// in order; a match may be in an unfinished line such as a shell prompt). Returns the
    /// whole line it is on, without the line ending. On timeout the process is killed.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, WaitError> {
        let deadline = Instant::now() + timeout;
        let n = needle.as_bytes();
        let mut searched = self.cursor;
        let mut st = self.shared.lock();
        loop {
            let from = searched.saturating_sub(n.len().saturating_sub(1)).max(self.cursor);
            if let Some(i) = find(&st.out[from..], n) {
                let start = from + i;
                let end = start + n.len();
                self.cursor = end;
                let line_start = st.out[..start].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                let line_end = st.out[end..].iter().position(|&b| b == b'\n').map_or(st.out.len(), |p| end + p);
                let line = String::from_utf8_lossy(&st.out[line_start..line_end]);
                return Ok(line.trim_end_matches(['\r', '\n']).to_string());
            }
            searched = st.out.len();
            if st.out_eof {
                return Err(WaitError::Ended);
            }
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                self.kill();
                return Err(WaitError::Timeout);
            }
            st = self.shared.cond.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Whether the child has exited, without reaping it (so that its process group id stays
    /// reserved until we have signalled the group).
    fn exited_unreaped(&mut self) -> bool {
        if self.status.is_some() {
            return true;
        }
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        // WNOWAIT leaves the child waitable for `Child::wait`.
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        matches!(waitid(Id::Pid(self.pid), flags), Ok(s) if s != WaitStatus::StillAlive)
    }

    fn signal(&self, sig: Signal) {
        // The child is unreaped, so `pid` (and the group it leads) still denotes our child.
        let _ = if self.own_group { killpg(self.pid, sig) } else { kill(self.pid, sig) };
    }

    /// Reaps the exited child, after killing whatever else is left in its process group.
    fn reap(&mut self) {
        if self.status.is_some() {
            return;
        }
        if self.own_group {
            self.signal(Signal::SIGKILL);
        }
        self.status = self.child.wait().ok();
    }

    /// Ends the process (and its group): SIGTERM, then SIGKILL after [`TERM_GRACE`]. Idempotent.
    pub fn kill(&mut self) {
        if self.status.is_some() {
            return;
        }
        if !self.exited_unreaped() {
            self.signal(Signal::SIGTERM);
            let until = Instant::now() + TERM_GRACE;
            while !self.exited_unreaped() && Instant::now() < until {
                thread::sleep(POLL);
            }
            if !self.exited_unreaped() {
                self.signal(Signal::SIGKILL);
            }
        }
        self.reap();
    }

    /// Waits for the process to exit, at most `timeout` (`None`: forever) from now, and at most
    /// `grace` after a `@@POWEROFF` line; kills it at either limit. Then collects the output.
    pub fn wait(&mut self, timeout: Option<Duration>, grace: Duration) -> Outcome {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let end = loop {
            if self.exited_unreaped() {
                self.reap();
                break End::Exited;
            }
            let now = Instant::now();
            let st = self.shared.lock();
            let hung = st.poweroff_at.is_some_and(|t| now >= t + grace);
            if hung || deadline.is_some_and(|d| now >= d) {
                drop(st);
                self.kill();
                break if hung { End::HungAfterPowerOff } else { End::Timeout };
            }
            drop(self.shared.cond.wait_timeout(st, POLL).unwrap_or_else(|e| e.into_inner()));
        };
        self.drain();
        let st = self.shared.lock();
        Outcome {
            end,
            status: self.status,
            poweroff: st.poweroff,
            transcript: String::from_utf8_lossy(&st.out).into_owned(),
            stderr: String::from_utf8_lossy(&st.err).into_owned(),
            elapsed: self.started.elapsed(),
        }
    }

    /// After the exit: lets the output threads reach end-of-file and joins them. A thread
    /// still blocked (a straggler outside our process group holds the pipe) is left behind.
    fn drain(&mut self) {
        let until = Instant::now() + DRAIN_GRACE;
        let mut st = self.shared.lock();
        while !(st.out_eof && st.err_eof) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            st = self.shared.cond.wait_timeout(st, until - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        let done = st.out_eof && st.err_eof;
        drop(st);
        let threads = std::mem::take(&mut self.threads);
        if done {
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
        self.drain();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_bytes() {
        assert_eq!(find(b"hello world", b"world"), Some(6));
        assert_eq!(find(b"hello", b"hello!"), None);
        assert_eq!(find(b"abc", b""), Some(0));
    }

    #[test]
    fn line_scanning_notes_the_last_poweroff() {
        let mut st = State::default();
        st.out.extend_from_slice(b"boot\r\n@@POWEROFF 1\r\nmore\r\n@@POWER");
        st.scan_lines(false);
        assert_eq!(st.poweroff, Some(1));
        st.out.extend_from_slice(b"OFF 5");
        st.scan_lines(false);
        assert_eq!(st.poweroff, Some(1), "an unfinished line is not a marker yet");
        st.scan_lines(true);
        assert_eq!(st.poweroff, Some(5), "the last line counts at end-of-file");
    }
}
