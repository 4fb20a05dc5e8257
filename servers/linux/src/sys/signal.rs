//! Signals (v0): dispositions are recorded (rt_sigaction, rt_sigprocmask) and `kill` applies
//! the default action — terminate, or ignore for SIGCHLD/SIGURG/SIGWINCH and for signals the
//! process ignores or catches. Running user handlers (signal frames, rt_sigreturn) is the next
//! step (docs/caveats.md); until then a caught signal is not delivered.

use crate::process::{read_bytes, terminate, write_bytes, NSIG};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;
use alloc::vec::Vec;

const SIGKILL: u32 = 9;
const SIGSTOP: u32 = 19;

fn ignored_by_default(sig: u32) -> bool {
    matches!(sig, 17 | 23 | 28) // SIGCHLD, SIGURG, SIGWINCH
}

/// Applies `sig` to process `pid` as v0 can.
pub fn send(l: &mut Linux, pid: Pid, sig: u32) {
    let Some(p) = l.procs.get(&pid) else { return };
    if p.exit_status.is_some() || sig == 0 {
        return;
    }
    let action = p.sigactions.get(sig as usize).copied().unwrap_or(0);
    if sig == SIGKILL || (action == 0 && !ignored_by_default(sig) && sig != SIGSTOP && !(20..=22).contains(&sig)) {
        terminate(l, pid, sig as i32);
    }
}

pub fn kill_group(l: &mut Linux, pgid: Pid, sig: u32) {
    let members: Vec<Pid> =
        l.procs.values().filter(|p| p.pgid == pgid && p.exit_status.is_none()).map(|p| p.pid).collect();
    for pid in members {
        send(l, pid, sig);
    }
}

pub fn rt_sigaction(l: &mut Linux, c: &Ctx) -> Outcome {
    let [sig, act, oldact, size, ..] = c.args;
    if sig == 0 || sig as usize >= NSIG || size != 8 {
        return Errno::EINVAL.into();
    }
    if act != 0 && (sig == SIGKILL as u64 || sig == SIGSTOP as u64) {
        return Errno::EINVAL.into();
    }
    let old = l.procs.get(&c.pid).map_or(0, |p| p.sigactions[sig as usize]);
    if oldact != 0 {
        // struct sigaction: handler, flags, restorer, mask (x86_64 and asm-generic agree on
        // the handler coming first).
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&old.to_le_bytes());
        if let Err(e) = write_bytes(l, c.pid, oldact, &b) {
            return e.into();
        }
    }
    if act != 0 {
        let b = match read_bytes(l, c.pid, act, 8) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        let handler = u64::from_le_bytes(b.try_into().unwrap_or_default());
        if let Some(p) = l.procs.get_mut(&c.pid) {
            p.sigactions[sig as usize] = handler;
        }
    }
    Outcome::Done(0)
}

pub fn rt_sigprocmask(l: &mut Linux, c: &Ctx) -> Outcome {
    let [how, set, oldset, size, ..] = c.args;
    if size != 8 {
        return Errno::EINVAL.into();
    }
    let old = l.procs.get(&c.pid).map_or(0, |p| p.sigmask);
    if oldset != 0 {
        if let Err(e) = write_bytes(l, c.pid, oldset, &old.to_le_bytes()) {
            return e.into();
        }
    }
    if set != 0 {
        let b = match read_bytes(l, c.pid, set, 8) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        let v = u64::from_le_bytes(b.try_into().unwrap_or_default());
        let new = match how {
            0 => old | v,
            1 => old & !v,
            2 => v,
            _ => return Errno::EINVAL.into(),
        };
        if let Some(p) = l.procs.get_mut(&c.pid) {
            p.sigmask = new & !((1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1)));
        }
    }
    Outcome::Done(0)
}

pub fn kill(l: &mut Linux, c: &Ctx) -> Outcome {
    let pid = c.args[0] as i64 as i32;
    let sig = c.args[1] as u32;
    if sig as usize >= NSIG {
        return Errno::EINVAL.into();
    }
    let self_dies = match pid {
        p if p > 0 => {
            if l.procs.get(&(p as u32)).is_none_or(|x| x.exit_status.is_some()) {
                return Errno::ESRCH.into();
            }
            send(l, p as u32, sig);
            p as u32 == c.pid
        }
        0 | -1 => {
            let pgid = l.procs.get(&c.pid).map_or(0, |p| p.pgid);
            let targets: Vec<Pid> = l
                .procs
                .values()
                .filter(|p| p.exit_status.is_none() && (pid == -1 && p.pid != 1 || pid == 0 && p.pgid == pgid))
                .map(|p| p.pid)
                .collect();
            for t in targets {
                send(l, t, sig);
            }
            false
        }
        p => {
            kill_group(l, (-p) as u32, sig);
            false
        }
    };
    if self_dies && l.procs.get(&c.pid).is_some_and(|p| p.exit_status.is_some()) {
        return Outcome::NoReply;
    }
    Outcome::Done(0)
}

pub fn tgkill(l: &mut Linux, c: &Ctx) -> Outcome {
    // Threads are processes of one thread in v0: tgkill(tgid, tid, sig) / tkill(tid, sig).
    let (pid, sig) = if c.args[2] != 0 || abi::syscall::name(abi::syscall::CURRENT, c.nr as usize) == Some("tgkill") {
        (c.args[1], c.args[2])
    } else {
        (c.args[0], c.args[1])
    };
    let c2 = Ctx { args: [pid, sig, 0, 0, 0, 0], ..*c };
    kill(l, &c2)
}
