//! The terminal side of job control: a process in a background process group of the console's
//! session that reads from the terminal gets SIGTTIN (its group stops), one that writes gets
//! SIGTTOU when the terminal's TOSTOP is set, and one that changes the terminal's settings gets
//! SIGTTOU — Linux's rules, including EIO for a read when SIGTTIN is ignored or blocked or the
//! group is orphaned, and no signal when SIGTTOU is ignored or blocked. The call is retried
//! (blocked) after the signal: when the group is continued in the foreground it goes through.
//!
//! The terminal's foreground group and TOSTOP are mirrored here (every change to them passes
//! through this server's ioctl handling), so checking costs no message to `tty`.

use crate::sys::signal::{bit, SIG_IGN};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;

pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;

/// The session the console belongs to (init's, which the kernel starts on it).
pub const CONSOLE_SESSION: Pid = 1;
/// TOSTOP in termios `c_lflag`.
pub const TOSTOP: u32 = 0o400;

/// What a background access of the terminal by the caller leads to: `None` to go on, or the
/// outcome to answer (blocked after a signal, or an error).
/// `write`: a data write (SIGTTOU only under TOSTOP), not a change of settings.
pub fn check(l: &mut Linux, c: &Ctx, sig: u32, write: bool) -> Option<Outcome> {
    let p = l.procs.get(&c.pid)?;
    let (pgid, sid) = (p.pgid, p.sid);
    if sid != CONSOLE_SESSION || pgid == l.tty_foreground {
        return None;
    }
    if write && !l.tty_tostop {
        return None;
    }
    let handler = p.sigactions.get(sig as usize).map_or(0, |a| a.handler);
    let blocked = p.threads.iter().find(|t| t.tid == c.tid).is_some_and(|t| t.sigmask & bit(sig) != 0);
    if handler == SIG_IGN || blocked {
        // SIGTTOU ignored or blocked: the write or setting goes through; SIGTTIN: EIO.
        return (sig == SIGTTIN).then_some(Outcome::Done(Errno::EIO.as_return()));
    }
    if crate::process::is_orphaned(l, pgid) {
        return Some(Outcome::Done(Errno::EIO.as_return()));
    }
    crate::sys::signal::kill_group(l, pgid, sig);
    Some(Outcome::Block)
}

/// Records a foreground group the terminal was given (TIOCSPGRP), for [`check`].
pub fn set_foreground(l: &mut Linux, pgid: Pid) {
    l.tty_foreground = pgid;
}
