//! Signals: dispositions (rt_sigaction), masks (rt_sigprocmask), sending (kill, tgkill, console
//! ^C), and delivery. A signal with a handler is made pending and delivered the next time one of
//! the process's threads answers a system call: the interrupted call's result is saved in a
//! signal frame (`abi`'s layout module) on the user stack, the thread starts the handler, and
//! `rt_sigreturn` restores the frame. A system call blocked when a signal arrives fails with
//! EINTR. Default actions: terminate, or ignore for SIGCHLD/SIGURG/SIGWINCH.
//!
//! Not yet: stop/continue (job control), SA_RESTART, alternate stacks, real-time queues, the
//! FPU state in the frame, and delivery to a thread that never makes a system call.

use crate::process::{read_bytes, terminate, write_bytes, SigAction, NSIG};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::syscall::layout;
use abi::Errno;
use alloc::vec::Vec;
use server_rt::REGS_SET;

const SIGKILL: u32 = 9;
const SIGSTOP: u32 = 19;
const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;

fn ignored_by_default(sig: u32) -> bool {
    matches!(sig, 17 | 23 | 28) // SIGCHLD, SIGURG, SIGWINCH
}

fn bit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

/// Sends `sig` to process `pid`.
pub fn send(l: &mut Linux, pid: Pid, sig: u32) {
    let Some(p) = l.procs.get_mut(&pid) else { return };
    if p.exit_status.is_some() || sig == 0 || sig as usize >= NSIG {
        return;
    }
    let action = p.sigactions[sig as usize].handler;
    if pid == 1 && action <= SIG_IGN {
        return; // init only receives the signals it has handlers for, as on Linux
    }
    if sig == SIGKILL {
        terminate(l, pid, sig as i32);
    } else if action == SIG_IGN || (action == SIG_DFL && ignored_by_default(sig)) {
    } else if action == SIG_DFL {
        if sig == SIGSTOP || (20..=22).contains(&sig) {
            return; // stopping is not supported yet: ignored
        }
        terminate(l, pid, sig as i32);
    } else {
        p.pending |= bit(sig);
    }
}

pub fn kill_group(l: &mut Linux, pgid: Pid, sig: u32) {
    let members: Vec<Pid> =
        l.procs.values().filter(|p| p.pgid == pgid && p.exit_status.is_none()).map(|p| p.pid).collect();
    for pid in members {
        send(l, pid, sig);
    }
}

/// The lowest pending, unblocked signal of `pid`, if any.
pub fn deliverable(l: &Linux, pid: Pid) -> Option<u32> {
    let p = l.procs.get(&pid)?;
    let ready = p.pending & !p.sigmask;
    (ready != 0).then(|| ready.trailing_zeros() + 1)
}

/// Delivers the next deliverable signal to the thread answering request `c`, whose system call
/// result is `result`. Returns the reply to send (`REGS_SET`), or `None` if nothing was done.
pub fn deliver(l: &mut Linux, c: &Ctx, result: i64) -> Option<Outcome> {
    let saved = l.procs.get(&c.pid)?.sigmask;
    deliver_with_mask(l, c, result, saved)
}

/// As [`deliver`], with `saved_mask` as the mask `rt_sigreturn` restores (sigsuspend runs the
/// handler under its temporary mask but returns to the original one).
fn deliver_with_mask(l: &mut Linux, c: &Ctx, result: i64, saved_mask: u64) -> Option<Outcome> {
    let sig = deliverable(l, c.pid)?;
    let p = l.procs.get_mut(&c.pid)?;
    p.pending &= !bit(sig);
    let act = p.sigactions[sig as usize];
    if act.handler == SIG_DFL || act.handler == SIG_IGN {
        // The handler was reset or ignored since the signal was sent (execve, SA_RESETHAND).
        if act.handler == SIG_DFL && !ignored_by_default(sig) {
            terminate(l, c.pid, sig as i32);
            return Some(Outcome::NoReply);
        }
        return None;
    }
    let old_mask = saved_mask;
    let mut regs = l.k.thread_regs(c.tag).ok()?;
    regs[layout::reg::RETURN] = result as u64;
    let restorer = if act.flags & SA_RESTORER != 0 { act.restorer } else { crate::process::SIGPAGE };
    let Some(frame) = layout::build_sigframe(&regs, sig, act.handler, restorer, old_mask, c.pid) else {
        // No signal frames on this architecture yet: the default action instead.
        if ignored_by_default(sig) {
            return None;
        }
        terminate(l, c.pid, sig as i32);
        return Some(Outcome::NoReply);
    };
    if write_bytes(l, c.pid, frame.at, &frame.bytes).is_err() {
        terminate(l, c.pid, 11); // could not write the frame: SIGSEGV, as Linux does
        return Some(Outcome::NoReply);
    }
    l.k.thread_set_regs(c.tag, &frame.regs).ok()?;
    let p = l.procs.get_mut(&c.pid)?;
    p.sigmask |= act.mask;
    if act.flags & SA_NODEFER == 0 {
        p.sigmask |= bit(sig);
    }
    if act.flags & SA_RESETHAND != 0 {
        p.sigactions[sig as usize] = SigAction::default();
    }
    Some(Outcome::Done(REGS_SET))
}

/// rt_sigsuspend(mask): waits, under `mask`, for a signal with a handler; always ends in EINTR
/// with the handler running and the original mask restored by its return.
pub fn rt_sigsuspend(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[1] != 8 {
        return Errno::EINVAL.into();
    }
    let set = match read_bytes(l, c.pid, c.args[0], 8) {
        Ok(b) => u64::from_le_bytes(b.try_into().unwrap_or_default()),
        Err(e) => return e.into(),
    };
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    if p.pending & !set == 0 {
        return Outcome::Block; // nothing changed: safe to run again
    }
    let original = p.sigmask;
    p.sigmask = set & !(bit(SIGKILL) | bit(SIGSTOP));
    match deliver_with_mask(l, c, Errno::EINTR.as_return(), original) {
        Some(o) => o,
        None => {
            if let Some(p) = l.procs.get_mut(&c.pid) {
                p.sigmask = original;
            }
            Errno::EINTR.into()
        }
    }
}

pub fn rt_sigreturn(l: &mut Linux, c: &Ctx) -> Outcome {
    let Ok(mut regs) = l.k.thread_regs(c.tag) else { return Errno::EFAULT.into() };
    let uc_at = layout::ucontext_at(&regs);
    let Ok(raw) = read_bytes(l, c.pid, uc_at, layout::UCONTEXT_LEN) else {
        terminate(l, c.pid, 11);
        return Outcome::NoReply;
    };
    let Ok(uc) = <[u8; layout::UCONTEXT_LEN]>::try_from(raw.as_slice()) else { return Errno::EFAULT.into() };
    let mask = layout::restore_from_ucontext(&uc, &mut regs);
    if l.k.thread_set_regs(c.tag, &regs).is_err() {
        return Errno::EFAULT.into();
    }
    if let Some(p) = l.procs.get_mut(&c.pid) {
        p.sigmask = mask & !(bit(SIGKILL) | bit(SIGSTOP));
    }
    Outcome::Done(REGS_SET)
}

pub fn rt_sigaction(l: &mut Linux, c: &Ctx) -> Outcome {
    let [sig, act, oldact, size, ..] = c.args;
    if sig == 0 || sig as usize >= NSIG || size != 8 {
        return Errno::EINVAL.into();
    }
    if act != 0 && (sig == SIGKILL as u64 || sig == SIGSTOP as u64) {
        return Errno::EINVAL.into();
    }
    let old = l.procs.get(&c.pid).map(|p| p.sigactions[sig as usize]).unwrap_or_default();
    let new = if act != 0 {
        match read_bytes(l, c.pid, act, 32) {
            Ok(b) => {
                let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
                // struct sigaction (x86_64 and asm-generic): handler, flags, restorer, mask.
                Some(SigAction { handler: w(0), flags: w(1), restorer: w(2), mask: w(3) })
            }
            Err(e) => return e.into(),
        }
    } else {
        None
    };
    if oldact != 0 {
        let mut b = [0u8; 32];
        for (i, v) in [old.handler, old.flags, old.restorer, old.mask].iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        if let Err(e) = write_bytes(l, c.pid, oldact, &b) {
            return e.into();
        }
    }
    if let (Some(a), Some(p)) = (new, l.procs.get_mut(&c.pid)) {
        p.sigactions[sig as usize] = a;
        if a.handler == SIG_IGN {
            p.pending &= !bit(sig as u32);
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
            p.sigmask = new & !(bit(SIGKILL) | bit(SIGSTOP));
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
    match pid {
        p if p > 0 => {
            if l.procs.get(&(p as u32)).is_none_or(|x| x.exit_status.is_some()) {
                return Errno::ESRCH.into();
            }
            send(l, p as u32, sig);
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
        }
        p => {
            let pgid = (-p) as u32;
            if !l.procs.values().any(|x| x.pgid == pgid && x.exit_status.is_none()) {
                return Errno::ESRCH.into();
            }
            kill_group(l, pgid, sig);
        }
    }
    if l.procs.get(&c.pid).is_some_and(|p| p.exit_status.is_some()) {
        return Outcome::NoReply;
    }
    Outcome::Done(0)
}

pub fn tgkill(l: &mut Linux, c: &Ctx) -> Outcome {
    // Threads are processes of one thread in v0: tgkill(tgid, tid, sig) / tkill(tid, sig).
    let (pid, sig) = if abi::syscall::name(abi::syscall::CURRENT, c.nr as usize) == Some("tgkill") {
        (c.args[1], c.args[2])
    } else {
        (c.args[0], c.args[1])
    };
    let c2 = Ctx { args: [pid, sig, 0, 0, 0, 0], ..*c };
    kill(l, &c2)
}
