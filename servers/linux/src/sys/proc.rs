//! Processes: exit, fork/vfork/clone (new processes only; threads are not in v0), execve,
//! wait4, ids and groups, arch_prctl (the thread pointer).

use crate::process::{fork_process, read_cstr, read_u64, terminate, write_bytes};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;
use alloc::string::String;
use alloc::vec::Vec;

const CLONE_VM: u64 = 0x100;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_VFORK: u64 = 0x4000;

pub fn exit_group(l: &mut Linux, c: &Ctx) -> Outcome {
    terminate(l, c.pid, ((c.args[0] & 0xff) << 8) as i32);
    Outcome::NoReply
}

fn do_fork(l: &mut Linux, c: &Ctx, stack: Option<u64>, tls: Option<u64>) -> Result<Pid, Errno> {
    let parent = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?;
    let child_as = l.k.aspace_copy(parent.aspace).map_err(|_| Errno::ENOMEM)?;
    let thread = match l.k.thread_fork(c.tag, child_as, stack, tls) {
        Ok(t) => t,
        Err(_) => {
            let _ = l.k.aspace_destroy(child_as);
            return Err(Errno::ENOMEM);
        }
    };
    Ok(fork_process(l, c.pid, child_as, thread))
}

pub fn fork(l: &mut Linux, c: &Ctx) -> Outcome {
    do_fork(l, c, None, None).map(|p| p as i64).into()
}

pub fn clone(l: &mut Linux, c: &Ctx) -> Outcome {
    // x86_64: (flags, stack, parent_tid, child_tid, tls); asm-generic: (flags, stack,
    // parent_tid, tls, child_tid).
    let (flags, stack) = (c.args[0], c.args[1]);
    let (ptid, ctid, tls) = match abi::syscall::CURRENT {
        abi::syscall::Arch::X86_64 => (c.args[2], c.args[3], c.args[4]),
        abi::syscall::Arch::Aarch64 => (c.args[2], c.args[4], c.args[3]),
    };
    if flags & (CLONE_VM | CLONE_THREAD) != 0 && flags & CLONE_VFORK == 0 {
        l.report_enosys(c.nr);
        return Errno::ENOSYS.into(); // threads: not in v0
    }
    let tls = (flags & CLONE_SETTLS != 0).then_some(tls);
    let stack = (stack != 0).then_some(stack);
    let pid = match do_fork(l, c, stack, tls) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = write_bytes(l, c.pid, ptid, &pid.to_le_bytes());
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = write_bytes(l, pid, ctid, &pid.to_le_bytes());
    }
    Outcome::Done(pid as i64)
}

fn read_strings(l: &Linux, pid: Pid, mut va: u64) -> Result<Vec<String>, Errno> {
    let mut out = Vec::new();
    if va == 0 {
        return Ok(out);
    }
    loop {
        let p = read_u64(l, pid, va)?;
        if p == 0 {
            return Ok(out);
        }
        if out.len() > 4096 {
            return Err(Errno::E2BIG);
        }
        out.push(read_cstr(l, pid, p, 128 * 1024)?);
        va += 8;
    }
}

pub fn execve(l: &mut Linux, c: &Ctx) -> Outcome {
    let path = match read_cstr(l, c.pid, c.args[0], 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let (argv, envp) = match (read_strings(l, c.pid, c.args[1]), read_strings(l, c.pid, c.args[2])) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e.into(),
    };
    let cwd = l.procs.get(&c.pid).map_or(abi::proto::FileId(0), |p| p.cwd);
    let image = match crate::exec::load(l, c.pid, cwd, &path, &argv, &envp) {
        Ok(i) => i,
        Err(e) => return e.into(),
    };
    if l.k.thread_exec(c.tag, image.aspace, image.entry, image.sp).is_err() {
        let _ = l.k.aspace_destroy(image.aspace);
        return Errno::ENOMEM.into();
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let old = core::mem::replace(&mut p.aspace, image.aspace);
    p.mm = image.mm;
    p.exe = image.exe.clone();
    // Caught signals revert to the default action; ignored ones stay ignored.
    for a in p.sigactions.iter_mut() {
        if a.handler > 1 {
            *a = crate::process::SigAction::default();
        }
    }
    let mut fds = core::mem::take(&mut p.fds);
    fds.close_on_exec();
    if let Some(p) = l.procs.get_mut(&c.pid) {
        p.fds = fds;
    }
    let _ = l.k.aspace_destroy(old);
    Outcome::Done(0)
}

const WNOHANG: u64 = 1;

pub fn wait4(l: &mut Linux, c: &Ctx) -> Outcome {
    let want = c.args[0] as i64 as i32;
    let pgid = l.procs.get(&c.pid).map_or(0, |p| p.pgid);
    let matches = |p: &crate::process::Process| {
        p.ppid == c.pid
            && match want {
                -1 => true,
                0 => p.pgid == pgid,
                w if w > 0 => p.pid == w as u32,
                w => p.pgid == (-w) as u32,
            }
    };
    let children: Vec<(Pid, Option<i32>)> =
        l.procs.values().filter(|p| matches(p)).map(|p| (p.pid, p.exit_status)).collect();
    if children.is_empty() {
        return Errno::ECHILD.into();
    }
    if let Some(&(pid, Some(status))) = children.iter().find(|(_, s)| s.is_some()) {
        if c.args[1] != 0 {
            if let Err(e) = write_bytes(l, c.pid, c.args[1], &status.to_le_bytes()) {
                return e.into();
            }
        }
        l.procs.remove(&pid);
        return Outcome::Done(pid as i64);
    }
    if c.args[2] & WNOHANG != 0 {
        Outcome::Done(0)
    } else {
        Outcome::Block
    }
}

/// Calls that succeed with 0 and change nothing here (one user and group: root).
pub fn zero(_l: &mut Linux, _c: &Ctx) -> Outcome {
    Outcome::Done(0)
}

pub fn getpid(_l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(c.pid as i64)
}

pub fn getppid(l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(l.procs.get(&c.pid).map_or(0, |p| p.ppid) as i64)
}

fn target(c: &Ctx, arg: u64) -> Pid {
    if arg == 0 {
        c.pid
    } else {
        arg as Pid
    }
}

pub fn getpgid(l: &mut Linux, c: &Ctx) -> Outcome {
    match l.procs.get(&target(c, c.args[0])) {
        Some(p) => Outcome::Done(p.pgid as i64),
        None => Errno::ESRCH.into(),
    }
}

pub fn getpgrp(l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(l.procs.get(&c.pid).map_or(0, |p| p.pgid) as i64)
}

pub fn setpgid(l: &mut Linux, c: &Ctx) -> Outcome {
    let pid = target(c, c.args[0]);
    let pgid = if c.args[1] == 0 { pid } else { c.args[1] as Pid };
    let Some(p) = l.procs.get_mut(&pid) else { return Errno::ESRCH.into() };
    if p.pid != c.pid && p.ppid != c.pid {
        return Errno::ESRCH.into();
    }
    p.pgid = pgid;
    Outcome::Done(0)
}

pub fn getsid(l: &mut Linux, c: &Ctx) -> Outcome {
    match l.procs.get(&target(c, c.args[0])) {
        Some(p) => Outcome::Done(p.sid as i64),
        None => Errno::ESRCH.into(),
    }
}

pub fn setsid(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    if p.pgid == p.pid {
        return Errno::EPERM.into();
    }
    p.sid = p.pid;
    p.pgid = p.pid;
    Outcome::Done(p.pid as i64)
}

const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

pub fn arch_prctl(l: &mut Linux, c: &Ctx) -> Outcome {
    match c.args[0] {
        ARCH_SET_FS => match l.k.thread_set_tp(c.thread, c.args[1]) {
            Ok(()) => Outcome::Done(0),
            Err(_) => Errno::EPERM.into(),
        },
        ARCH_GET_FS => Errno::EINVAL.into(),
        _ => Errno::EINVAL.into(),
    }
}

const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;

/// prctl: the thread name (kept per process in v0); other options are not supported.
pub fn prctl(l: &mut Linux, c: &Ctx) -> Outcome {
    match c.args[0] {
        PR_SET_NAME => match crate::process::read_bytes(l, c.pid, c.args[1], 16) {
            Ok(_) => Outcome::Done(0),
            Err(e) => e.into(),
        },
        PR_GET_NAME => {
            let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
            let mut name = [0u8; 16];
            let base = p.exe.rsplit('/').next().unwrap_or("").as_bytes();
            let n = base.len().min(15);
            name[..n].copy_from_slice(&base[..n]);
            write_bytes(l, c.pid, c.args[1], &name).map(|_| 0).into()
        }
        _ => Errno::EINVAL.into(),
    }
}
