//! ioctl: the generic descriptor requests (FIONBIO, FIOCLEX, FIONCLEX, FIONREAD on pipes) here,
//! and the terminal's requests forwarded to `tty` with the user's structure as a grant. The
//! process-group rules of TIOCSPGRP (the group must exist in the caller's session) are checked
//! here, since the tty knows no processes. Anything else on something that is not a terminal is
//! ENOTTY, as on Linux.

use crate::files::{Device, Object};
use crate::process::{read_bytes, write_bytes};
use crate::{Ctx, Linux, Outcome};
use abi::proto::tty as ttyp;
use abi::Errno;

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const TIOCNOTTY: u64 = 0x5422;
const TCSBRKP: u64 = 0x5425;
const TIOCGSID: u64 = 0x5429;
const FIONCLEX: u64 = 0x5450;
const FIOCLEX: u64 = 0x5451;
const FIONBIO: u64 = 0x5421;

/// The size of the structure a terminal request moves, and whether it is written back.
fn tty_arg(req: u64) -> Option<(usize, bool)> {
    Some(match req {
        TCGETS => (36, true),
        TCSETS | TCSETSW | TCSETSF => (36, false),
        TIOCGWINSZ => (8, true),
        TIOCSWINSZ => (8, false),
        TIOCGPGRP | FIONREAD | TIOCOUTQ => (4, true),
        TIOCSPGRP => (4, false),
        TCSBRK | TCXONC | TCFLSH | TCSBRKP => (0, false),
        _ => return None,
    })
}

pub fn ioctl(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, req, arg, ..] = c.args;
    let file = match crate::sys::rw::file_of(l, c, fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    match req {
        FIONBIO => {
            let on = match read_bytes(l, c.pid, arg, 4) {
                Ok(b) => b != [0, 0, 0, 0],
                Err(e) => return e.into(),
            };
            let mut f = file.borrow_mut();
            f.flags = if on { f.flags | crate::sys::rw::O_NONBLOCK } else { f.flags & !crate::sys::rw::O_NONBLOCK };
            return Outcome::Done(0);
        }
        FIOCLEX | FIONCLEX => {
            if let Some(p) = l.procs.get_mut(&c.pid) {
                if let Ok(e) = p.fds.get_mut(fd) {
                    e.cloexec = req == FIOCLEX;
                }
            }
            return Outcome::Done(0);
        }
        _ => {}
    }
    let is_tty = matches!(file.borrow().object, Object::Device { dev: Device::Tty, .. });
    if !is_tty {
        let pipe_len = match &file.borrow().object {
            Object::Pipe { pipe, .. } if req == FIONREAD => Some(pipe.borrow().buf.len() as u32),
            _ => None,
        };
        return match pipe_len {
            Some(n) => write_bytes(l, c.pid, arg, &n.to_le_bytes()).map(|_| 0).into(),
            None => Errno::ENOTTY.into(),
        };
    }
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let (sid, pgid) = (p.sid, p.pgid);
    match req {
        TIOCSCTTY | TIOCNOTTY => return Outcome::Done(0),
        TIOCGSID => return write_bytes(l, c.pid, arg, &sid.to_le_bytes()).map(|_| 0).into(),
        TIOCSPGRP => {
            let want = match read_bytes(l, c.pid, arg, 4) {
                Ok(b) => i32::from_le_bytes(b.try_into().unwrap_or_default()),
                Err(e) => return e.into(),
            };
            if want < 0 {
                return Errno::EINVAL.into();
            }
            let exists = l.procs.values().any(|q| q.pgid == want as u32 && q.exit_status.is_none());
            let same_session = l.procs.values().any(|q| q.pgid == want as u32 && q.sid == sid);
            if !exists {
                return Errno::ESRCH.into();
            }
            if !same_session {
                return Errno::EPERM.into();
            }
        }
        _ => {}
    }
    let _ = pgid;
    let Some((size, out)) = tty_arg(req) else { return Errno::ENOTTY.into() };
    // Changing the terminal from a background group stops the group (SIGTTOU).
    if matches!(req, TCSETS | TCSETSW | TCSETSF | TIOCSPGRP | TCFLSH | TCXONC) {
        if let Some(o) = crate::sys::jobctl::check(l, c, crate::sys::jobctl::SIGTTOU, false) {
            return o;
        }
    }
    let mirrored = match req {
        TIOCSPGRP => {
            read_bytes(l, c.pid, arg, 4).ok().map(|b| (Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]])), None))
        }
        TCSETS | TCSETSW | TCSETSF => {
            read_bytes(l, c.pid, arg, 16).ok().map(|b| (None, Some(u32::from_le_bytes([b[12], b[13], b[14], b[15]]))))
        }
        _ => None,
    };
    let grant = if size == 0 {
        server_rt::GrantRef::NONE
    } else {
        match l.user_grant(c.pid, arg, size, out) {
            Ok(g) => g,
            Err(e) => return e.into(),
        }
    };
    let r = l.tty(ttyp::IOCTL, [req, arg, 0, 0, 0, 0], grant);
    if r.is_ok() {
        match mirrored {
            Some((Some(pgid), _)) => crate::sys::jobctl::set_foreground(l, pgid),
            Some((_, Some(lflag))) => l.tty_tostop = lflag & crate::sys::jobctl::TOSTOP != 0,
            _ => {}
        }
    }
    r.map(|r| r.result).into()
}
