//! Processes and threads: exit and exit_group, fork/vfork/clone/clone3 (new processes, vfork
//! children sharing the parent's memory until they exec or exit, and threads of the caller's
//! process), execve, wait4 and waitid (exits, stops, continues), ids and groups, set_tid_address,
//! arch_prctl (the thread pointer), prctl.

use crate::process::{
    fork_process, read_cstr, read_u64, reap, terminate, write_bytes, Process, Thread, WaitEvent, RLIMIT_NPROC,
};
use crate::sys::signal::{self, SigInfo};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use server_rt::MemError;

const CSIGNAL: u64 = 0xff;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PTRACE: u64 = 0x2000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_DETACHED: u64 = 0x400000;
const CLONE_UNTRACED: u64 = 0x800000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
const CLONE_IO: u64 = 0x8000_0000;
/// The flags this server implements (namespaces, pidfds and ptrace are not).
const CLONE_KNOWN: u64 = CSIGNAL
    | CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_VFORK
    | CLONE_PARENT
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_UNTRACED
    | CLONE_CHILD_SETTID
    | CLONE_IO;

/// A parent waiting in vfork (or CLONE_VFORK) for its child to exec or exit.
#[derive(Clone, Copy, Debug)]
pub struct VforkWait {
    /// The parent's request.
    pub tag: u64,
    pub child: Pid,
    pub done: bool,
}

/// Ends the waits of vfork parents for `child` (it exec'd or exited).
pub fn vfork_release(l: &mut Linux, child: Pid) {
    for v in l.vforks.iter_mut().filter(|v| v.child == child) {
        v.done = true;
    }
}

/// Whether request `tag` is a vfork parent's wait (which signals do not interrupt).
pub fn is_vfork_wait(l: &Linux, tag: u64) -> bool {
    l.vforks.iter().any(|v| v.tag == tag)
}

/// exit(code): ends the calling thread. Its clear-tid word is zeroed and woken (pthread_join);
/// the last thread's exit ends the process.
pub fn exit(l: &mut Linux, c: &Ctx) -> Outcome {
    let code = ((c.args[0] & 0xff) << 8) as i32;
    let Some(p) = l.procs.get_mut(&c.pid) else { return Outcome::NoReply };
    if p.threads.len() <= 1 {
        let status = if c.tid == c.pid { code } else { p.leader_exit.unwrap_or(code) };
        terminate(l, c.pid, status);
        return Outcome::NoReply;
    }
    if c.tid == c.pid {
        p.leader_exit = Some(code);
    }
    let Some(i) = p.threads.iter().position(|t| t.tid == c.tid) else { return Outcome::NoReply };
    let t = p.threads.remove(i);
    let aspace = p.aspace;
    let (u, s) = l.k.thread_times(t.r);
    if let Some(p) = l.procs.get_mut(&c.pid) {
        p.times.utime += u;
        p.times.stime += s;
        // Process-directed signals it had been chosen for go to another thread.
        if let Some(other) = p.threads.iter().find(|o| p.pending.set & !o.sigmask != 0) {
            l.k.thread_interrupt(other.r);
        }
    }
    if t.clear_tid != 0 && write_bytes(l, c.pid, t.clear_tid, &0u32.to_le_bytes()).is_ok() {
        crate::sys::futex::wake(l, aspace, t.clear_tid, 1, u32::MAX);
    }
    l.threads.remove(&t.r.0);
    crate::sys::futex::forget_threads(l, core::slice::from_ref(&t));
    crate::sys::fifo::forget_threads(l, core::slice::from_ref(&t));
    l.k.thread_kill(t.r);
    Outcome::NoReply
}

pub fn exit_group(l: &mut Linux, c: &Ctx) -> Outcome {
    terminate(l, c.pid, ((c.args[0] & 0xff) << 8) as i32);
    Outcome::NoReply
}

/// The arguments every flavour of clone comes down to.
#[derive(Clone, Copy, Debug, Default)]
struct CloneArgs {
    flags: u64,
    exit_signal: u64,
    stack: u64,
    ptid: u64,
    ctid: u64,
    tls: u64,
}

fn mem_errno(e: MemError) -> Errno {
    match e {
        MemError::Limit => Errno::EAGAIN,
        _ => Errno::ENOMEM,
    }
}

fn do_clone(l: &mut Linux, c: &Ctx, a: CloneArgs) -> Outcome {
    // A vfork parent's request comes back here until its child lets go.
    if let Some(i) = l.vforks.iter().position(|v| v.tag == c.tag) {
        if !l.vforks[i].done {
            return Outcome::Block;
        }
        let v = l.vforks.remove(i);
        return Outcome::Done(v.child as i64);
    }
    let f = a.flags;
    // Namespaces and pidfds are not supported (as on a Linux built without them: EINVAL).
    if f & !(CLONE_KNOWN | CLONE_PTRACE) != 0 {
        return Errno::EINVAL.into();
    }
    if (f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0) || (f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0) {
        return Errno::EINVAL.into();
    }
    if a.exit_signal as usize >= crate::process::NSIG {
        return Errno::EINVAL.into();
    }
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let stack = (a.stack != 0).then_some(a.stack);
    let tls = (f & CLONE_SETTLS != 0).then_some(a.tls);
    if f & CLONE_THREAD != 0 {
        let sigmask = p.thread(c.tid).map_or(0, |t| t.sigmask);
        let aspace = p.aspace;
        let r = match l.k.thread_fork(c.tag, aspace, stack, tls) {
            Ok(r) => r,
            Err(e) => return mem_errno(e).into(),
        };
        let tid = l.next_pid;
        l.next_pid += 1;
        let mut t = Thread::new(r, tid, sigmask);
        if f & CLONE_CHILD_CLEARTID != 0 {
            t.clear_tid = a.ctid;
        }
        if let Some(p) = l.procs.get_mut(&c.pid) {
            p.threads.push(t);
        }
        l.threads.insert(r.0, c.pid);
        crate::process::publish_identity(l, c.pid);
        for (flag, at) in [(CLONE_PARENT_SETTID, a.ptid), (CLONE_CHILD_SETTID, a.ctid)] {
            if f & flag != 0 {
                let _ = write_bytes(l, c.pid, at, &tid.to_le_bytes());
            }
        }
        return Outcome::Done(tid as i64);
    }
    let uid = p.creds.ruid;
    let nproc = l.procs.values().filter(|x| x.creds.ruid == uid && !x.is_zombie()).count() as u64;
    if uid != 0 && nproc >= p.rlimits[RLIMIT_NPROC].0 {
        return Errno::EAGAIN.into();
    }
    let vm = if f & CLONE_VM != 0 {
        (p.aspace, p.mm.clone())
    } else {
        let shared = p.mm.borrow().shared_ranges();
        // Shared memory gets all its pages now: parent and child must keep the same frames.
        for v in p.mm.borrow().vmas.iter().filter(|v| v.flags & crate::process::VMA_SHARED != 0) {
            if l.k.aspace_map(p.aspace, v.start, v.end - v.start, v.prot).is_err() {
                return Errno::ENOMEM.into();
            }
        }
        match l.k.aspace_copy(p.aspace, &shared) {
            Ok(a) => (a, Rc::new(RefCell::new(p.mm.borrow().clone()))),
            Err(e) => return mem_errno(e).into(),
        }
    };
    let thread = match l.k.thread_fork(c.tag, vm.0, stack, tls) {
        Ok(t) => t,
        Err(e) => {
            if f & CLONE_VM == 0 {
                let _ = l.k.aspace_destroy(vm.0);
            }
            return mem_errno(e).into();
        }
    };
    let parent = if f & CLONE_PARENT != 0 { p.ppid } else { c.pid };
    let pid = fork_process(l, c.pid, c.tid, vm, thread, a.exit_signal as u32);
    if let Some(child) = l.procs.get_mut(&pid) {
        if parent != c.pid && parent != 0 {
            child.ppid = parent;
        }
        if f & CLONE_CHILD_CLEARTID != 0 {
            child.threads[0].clear_tid = a.ctid;
        }
    }
    // CLONE_PARENT changed its ppid.
    crate::process::publish_identity(l, pid);
    if f & CLONE_PARENT_SETTID != 0 {
        let _ = write_bytes(l, c.pid, a.ptid, &pid.to_le_bytes());
    }
    if f & CLONE_CHILD_SETTID != 0 {
        let _ = write_bytes(l, pid, a.ctid, &pid.to_le_bytes());
    }
    if f & CLONE_VFORK != 0 {
        l.vforks.push(VforkWait { tag: c.tag, child: pid, done: false });
        return Outcome::Block;
    }
    Outcome::Done(pid as i64)
}

pub fn fork(l: &mut Linux, c: &Ctx) -> Outcome {
    do_clone(l, c, CloneArgs { exit_signal: signal::SIGCHLD as u64, ..CloneArgs::default() })
}

/// vfork: the child runs in the parent's memory; the parent waits until it execs or exits.
pub fn vfork(l: &mut Linux, c: &Ctx) -> Outcome {
    let flags = CLONE_VM | CLONE_VFORK;
    do_clone(l, c, CloneArgs { flags, exit_signal: signal::SIGCHLD as u64, ..CloneArgs::default() })
}

pub fn clone(l: &mut Linux, c: &Ctx) -> Outcome {
    // x86_64: (flags, stack, parent_tid, child_tid, tls); asm-generic: (flags, stack,
    // parent_tid, tls, child_tid).
    let (flags, stack) = (c.args[0], c.args[1]);
    let (ptid, ctid, tls) = match abi::syscall::CURRENT {
        abi::syscall::Arch::X86_64 => (c.args[2], c.args[3], c.args[4]),
        abi::syscall::Arch::Aarch64 => (c.args[2], c.args[4], c.args[3]),
    };
    let a = CloneArgs { flags: flags & !CSIGNAL, exit_signal: flags & CSIGNAL, stack, ptid, ctid, tls };
    do_clone(l, c, a)
}

/// clone3(struct clone_args *, size): flags, pidfd, child_tid, parent_tid, exit_signal,
/// stack, stack_size, tls (set_tid and cgroups are not supported).
pub fn clone3(l: &mut Linux, c: &Ctx) -> Outcome {
    let size = c.args[1];
    if !(64..=4096).contains(&size) {
        return Errno::EINVAL.into();
    }
    let b = match crate::process::read_bytes(l, c.pid, c.args[0], size as usize) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let w = |i: usize| b.get(i * 8..i * 8 + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or_default()));
    let (flags, exit_signal, stack, stack_size) = (w(0), w(4), w(5), w(6));
    // set_tid (8, 9) and cgroup (10) must be unused; anything past them must be zero.
    if w(8) != 0 || w(9) != 0 || w(10) != 0 || b.iter().skip(88).any(|&x| x != 0) {
        return Errno::EINVAL.into();
    }
    if flags & CSIGNAL != 0 || (stack == 0) != (stack_size == 0) {
        return Errno::EINVAL.into();
    }
    let top = if stack != 0 { stack.saturating_add(stack_size) } else { 0 };
    let a = CloneArgs { flags, exit_signal, stack: top, ptid: w(3), ctid: w(2), tls: w(7) };
    do_clone(l, c, a)
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
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let (cwd, creds, rlimits) = (p.cwd, p.creds.clone(), p.rlimits);
    let image = match crate::exec::load(
        l,
        &crate::exec::Runner { pid: c.pid, cwd, creds: &creds, rlimits: &rlimits },
        &path,
        &argv,
        &envp,
    ) {
        Ok(i) => i,
        Err(e) => return e.into(),
    };
    if let Err(e) = l.k.thread_exec(c.tag, image.aspace, image.entry, image.sp) {
        let _ = l.k.aspace_destroy(image.aspace);
        return mem_errno(e).into();
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    // The other threads end (Linux's de_thread); the caller becomes the leader.
    let mut others = Vec::new();
    p.threads.retain(|t| {
        let keep = t.tid == c.tid;
        if !keep {
            others.push(t.r);
        }
        keep
    });
    if let Some(t) = p.threads.first_mut() {
        t.tid = c.pid;
        t.clear_tid = 0;
        t.altstack = crate::process::AltStack::default();
        t.suspend_mask = None;
    }
    let old = core::mem::replace(&mut p.aspace, image.aspace);
    let shared = p.shares_vm();
    p.mm = Rc::new(RefCell::new(image.mm));
    p.exe = image.exe.clone();
    p.comm = comm_name(&path);
    p.timers.clear(); // POSIX timers do not survive execve
                      // Caught signals revert to the default action; ignored ones stay ignored.
    for a in p.sigactions.iter_mut() {
        if a.handler > signal::SIG_IGN {
            *a = crate::process::SigAction::default();
        }
    }
    let mut fds = core::mem::take(&mut p.fds);
    let closed = fds.close_on_exec();
    crate::sys::locks::closed(l, c.pid, &closed);
    if let Some(p) = l.procs.get_mut(&c.pid) {
        p.fds = fds;
    }
    for r in others {
        l.threads.remove(&r.0);
        l.k.thread_kill(r);
    }
    if !shared {
        let _ = l.k.aspace_destroy(old);
    }
    vfork_release(l, c.pid);
    // The caller is the leader now: its tid is the pid.
    crate::process::publish_identity(l, c.pid);
    Outcome::Done(0)
}

fn comm_name(path: &str) -> [u8; 16] {
    let mut name = [0u8; 16];
    let base = path.rsplit('/').next().unwrap_or("").as_bytes();
    let n = base.len().min(15);
    name[..n].copy_from_slice(&base[..n]);
    name
}

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2; // = WSTOPPED
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const WNOWAIT: u64 = 0x0100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

/// Which children a wait is for.
#[derive(Clone, Copy)]
enum Which {
    Any,
    Pid(Pid),
    Pgid(Pid),
}

/// What a wait found.
struct Found {
    pid: Pid,
    uid: u32,
    /// wait4's status word.
    status: i32,
    /// waitid's si_code and si_status.
    code: i32,
    si_status: i32,
    exited: bool,
    utime: u64,
    stime: u64,
}

/// Looks for a child matching `which` with something to report under `options`, consuming it
/// unless WNOWAIT. `Err(ECHILD)` when there is no such child at all, `Ok(None)` when none is
/// ready.
fn find_waitable(l: &mut Linux, c: &Ctx, which: Which, options: u64) -> Result<Option<Found>, Errno> {
    let children: Vec<Pid> = l
        .procs
        .values()
        .filter(|p| {
            p.ppid == c.pid
                && match which {
                    Which::Any => true,
                    Which::Pid(x) => p.pid == x,
                    Which::Pgid(g) => p.pgid == g,
                }
                // __WCLONE waits for children that signal something else than SIGCHLD.
                && (options & WALL != 0 || ((p.exit_signal == signal::SIGCHLD) != (options & WCLONE != 0)))
        })
        .map(|p| p.pid)
        .collect();
    if children.is_empty() {
        return Err(Errno::ECHILD);
    }
    for pid in children {
        let p: &Process = &l.procs[&pid];
        let found = |status: i32, code: i32, si_status: i32, exited: bool| Found {
            pid,
            uid: p.creds.ruid,
            status,
            code,
            si_status,
            exited,
            utime: p.times.utime,
            stime: p.times.stime,
        };
        if let Some(status) = p.exit_status.filter(|_| options & WEXITED != 0) {
            let (code, si) = match status & 0x7f {
                0 => (signal::CLD_EXITED, (status >> 8) & 0xff),
                s if status & 0x80 != 0 => (signal::CLD_DUMPED, s),
                s => (signal::CLD_KILLED, s),
            };
            let f = found(status, code, si, true);
            if options & WNOWAIT == 0 {
                reap(l, pid);
            }
            return Ok(Some(f));
        }
        let event = p.wait_event;
        let f = match event {
            Some(WaitEvent::Stopped(sig)) if options & WUNTRACED != 0 && p.stopped => {
                found(((sig as i32) << 8) | 0x7f, signal::CLD_STOPPED, sig as i32, false)
            }
            Some(WaitEvent::Continued) if options & WCONTINUED != 0 => {
                found(0xffff, signal::CLD_CONTINUED, signal::SIGCONT as i32, false)
            }
            _ => continue,
        };
        if options & WNOWAIT == 0 {
            if let Some(p) = l.procs.get_mut(&pid) {
                p.wait_event = None;
            }
        }
        return Ok(Some(f));
    }
    Ok(None)
}

/// struct rusage with the user and system time (the rest zero).
fn rusage_bytes(utime: u64, stime: u64) -> [u8; 144] {
    let mut b = [0u8; 144];
    for (off, ns) in [(0, utime), (16, stime)] {
        b[off..off + 8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        b[off + 8..off + 16].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
    }
    b
}

pub fn wait4(l: &mut Linux, c: &Ctx) -> Outcome {
    let want = c.args[0] as i64 as i32;
    let options = c.args[2];
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Errno::EINVAL.into();
    }
    if want == i32::MIN {
        return Errno::ESRCH.into();
    }
    let pgid = l.procs.get(&c.pid).map_or(0, |p| p.pgid);
    let which = match want {
        -1 => Which::Any,
        0 => Which::Pgid(pgid),
        w if w > 0 => Which::Pid(w as Pid),
        w => Which::Pgid(w.unsigned_abs()),
    };
    // Check the buffers before anything is consumed.
    for (at, len) in [(c.args[1], 4), (c.args[3], 144)] {
        if at != 0 {
            if let Err(e) = crate::process::check_user_range(l, c.pid, at, len, true) {
                return e.into();
            }
        }
    }
    match find_waitable(l, c, which, options | WEXITED) {
        Err(e) => e.into(),
        Ok(Some(f)) => {
            if c.args[1] != 0 {
                if let Err(e) = write_bytes(l, c.pid, c.args[1], &f.status.to_le_bytes()) {
                    return e.into();
                }
            }
            if c.args[3] != 0 {
                let (u, s) = if f.exited { (f.utime, f.stime) } else { (0, 0) };
                if let Err(e) = write_bytes(l, c.pid, c.args[3], &rusage_bytes(u, s)) {
                    return e.into();
                }
            }
            Outcome::Done(f.pid as i64)
        }
        Ok(None) if options & WNOHANG != 0 => Outcome::Done(0),
        Ok(None) => Outcome::Block,
    }
}

const P_ALL: u64 = 0;
const P_PID: u64 = 1;
const P_PGID: u64 = 2;

/// waitid(idtype, id, infop, options, rusage).
pub fn waitid(l: &mut Linux, c: &Ctx) -> Outcome {
    let [idtype, id, infop, options, ru, ..] = c.args;
    if options & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE) != 0
        || options & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return Errno::EINVAL.into();
    }
    let which = match idtype {
        P_ALL => Which::Any,
        P_PID if (id as i32) > 0 => Which::Pid(id as Pid),
        P_PGID if (id as i32) >= 0 => {
            Which::Pgid(if id == 0 { l.procs.get(&c.pid).map_or(0, |p| p.pgid) } else { id as Pid })
        }
        _ => return Errno::EINVAL.into(),
    };
    for (at, len) in [(infop, 128), (ru, 144)] {
        if at != 0 {
            if let Err(e) = crate::process::check_user_range(l, c.pid, at, len, true) {
                return e.into();
            }
        }
    }
    let found = match find_waitable(l, c, which, options) {
        Err(e) => return e.into(),
        Ok(None) if options & WNOHANG == 0 => return Outcome::Block,
        Ok(f) => f,
    };
    if infop != 0 {
        // Nothing ready under WNOHANG: a zeroed siginfo (si_pid 0), as Linux leaves it.
        let info = match &found {
            Some(f) => SigInfo {
                signo: signal::SIGCHLD,
                code: f.code,
                pid: f.pid,
                uid: f.uid,
                status: f.si_status,
                utime: f.utime,
                stime: f.stime,
                ..SigInfo::default()
            }
            .encode(),
            None => [0u8; 128],
        };
        if let Err(e) = write_bytes(l, c.pid, infop, &info) {
            return e.into();
        }
    }
    if ru != 0 {
        let (u, s) = found.as_ref().filter(|f| f.exited).map_or((0, 0), |f| (f.utime, f.stime));
        if let Err(e) = write_bytes(l, c.pid, ru, &rusage_bytes(u, s)) {
            return e.into();
        }
    }
    Outcome::Done(0)
}

pub fn getpid(_l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(c.pid as i64)
}

pub fn gettid(_l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(c.tid as i64)
}

/// set_tid_address(addr): the clear-tid word of the calling thread; returns its tid.
pub fn set_tid_address(l: &mut Linux, c: &Ctx) -> Outcome {
    if let Some(t) = l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid)) {
        t.clear_tid = c.args[0];
    }
    Outcome::Done(c.tid as i64)
}

/// set_robust_list(head, len): the list of robust mutexes the thread holds, walked when it
/// exits (`futex::exit_robust`).
pub fn set_robust_list(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[1] != 24 {
        return Errno::EINVAL.into();
    }
    if let Some(t) = l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid)) {
        t.robust_list = c.args[0];
    }
    Outcome::Done(0)
}

/// get_robust_list(tid, head_ptr, len_ptr).
pub fn get_robust_list(l: &mut Linux, c: &Ctx) -> Outcome {
    let tid = if c.args[0] == 0 { c.tid } else { c.args[0] as Pid };
    let head = l.procs.values().find_map(|p| p.thread(tid).map(|t| t.robust_list));
    let Some(head) = head else { return Errno::ESRCH.into() };
    if let Err(e) = write_bytes(l, c.pid, c.args[1], &head.to_le_bytes()) {
        return e.into();
    }
    write_bytes(l, c.pid, c.args[2], &24u64.to_le_bytes()).map(|_| 0).into()
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
    if (c.args[0] as i64) < 0 {
        return Errno::ESRCH.into();
    }
    match l.procs.get(&target(c, c.args[0])).filter(|p| !p.is_zombie() || p.pid == c.pid) {
        Some(p) => Outcome::Done(p.pgid as i64),
        None => Errno::ESRCH.into(),
    }
}

pub fn getpgrp(l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(l.procs.get(&c.pid).map_or(0, |p| p.pgid) as i64)
}

/// setpgid(pid, pgid): the caller or one of its children (in its session), into a group of
/// the same session; a session leader cannot move.
pub fn setpgid(l: &mut Linux, c: &Ctx) -> Outcome {
    if (c.args[1] as i64) < 0 || c.args[1] > i32::MAX as u64 {
        return Errno::EINVAL.into();
    }
    let pid = target(c, c.args[0]);
    let pgid = if c.args[1] == 0 { pid } else { c.args[1] as Pid };
    let my_sid = l.procs.get(&c.pid).map_or(0, |p| p.sid);
    let Some(p) = l.procs.get(&pid) else { return Errno::ESRCH.into() };
    if p.pid != c.pid && p.ppid != c.pid {
        return Errno::ESRCH.into();
    }
    if p.sid != my_sid {
        return Errno::EPERM.into();
    }
    if p.sid == p.pid {
        return Errno::EPERM.into(); // a session leader
    }
    if pgid != pid && !l.procs.values().any(|x| x.pgid == pgid && x.sid == my_sid && !x.is_zombie()) {
        return Errno::EPERM.into();
    }
    if let Some(p) = l.procs.get_mut(&pid) {
        p.pgid = pgid;
    }
    Outcome::Done(0)
}

pub fn getsid(l: &mut Linux, c: &Ctx) -> Outcome {
    match l.procs.get(&target(c, c.args[0])) {
        Some(p) => Outcome::Done(p.sid as i64),
        None => Errno::ESRCH.into(),
    }
}

pub fn setsid(l: &mut Linux, c: &Ctx) -> Outcome {
    // A group leader (or anyone whose pid is some group's id) cannot start a session.
    if l.procs.values().any(|p| p.pgid == c.pid && !p.is_zombie()) {
        return Errno::EPERM.into();
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    p.sid = p.pid;
    p.pgid = p.pid;
    Outcome::Done(p.pid as i64)
}

const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

pub fn arch_prctl(l: &mut Linux, c: &Ctx) -> Outcome {
    match c.args[0] {
        ARCH_SET_FS => {
            if c.args[1] >= 0x0000_8000_0000_0000 {
                return Errno::EPERM.into();
            }
            match l.k.thread_set_tp(c.thread, c.args[1]) {
                Ok(()) => Outcome::Done(0),
                Err(_) => Errno::EPERM.into(),
            }
        }
        ARCH_GET_FS => Errno::EINVAL.into(),
        _ => Errno::EINVAL.into(),
    }
}

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;

/// prctl: the thread name (per process here), the parent-death signal, dumpable (always 1:
/// nothing here makes a process undumpable).
pub fn prctl(l: &mut Linux, c: &Ctx) -> Outcome {
    match c.args[0] {
        PR_SET_NAME => match crate::process::read_cstr(l, c.pid, c.args[1], 4096) {
            Ok(s) => {
                let mut name = [0u8; 16];
                let n = s.len().min(15);
                name[..n].copy_from_slice(&s.as_bytes()[..n]);
                if let Some(p) = l.procs.get_mut(&c.pid) {
                    p.comm = name;
                }
                Outcome::Done(0)
            }
            Err(e) => e.into(),
        },
        PR_GET_NAME => {
            let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
            let name = p.comm;
            write_bytes(l, c.pid, c.args[1], &name).map(|_| 0).into()
        }
        PR_GET_DUMPABLE => Outcome::Done(1),
        PR_SET_DUMPABLE if c.args[1] <= 1 => Outcome::Done(0),
        PR_SET_PDEATHSIG if c.args[1] < crate::process::NSIG as u64 => {
            if let Some(p) = l.procs.get_mut(&c.pid) {
                p.pdeath_signal = c.args[1] as u32;
            }
            Outcome::Done(0)
        }
        PR_GET_PDEATHSIG => {
            let sig = l.procs.get(&c.pid).map_or(0, |p| p.pdeath_signal);
            write_bytes(l, c.pid, c.args[1], &sig.to_le_bytes()).map(|_| 0).into()
        }
        _ => Errno::EINVAL.into(),
    }
}
