//! Signals: dispositions (rt_sigaction), per-thread masks (rt_sigprocmask), sending (kill,
//! tgkill, rt_sigqueueinfo, console ^C, faults, timers, child events), waiting (rt_sigsuspend,
//! rt_sigtimedwait, rt_sigpending), alternate stacks (sigaltstack), job control (stop and
//! continue) and delivery.
//!
//! A signal is queued on the process (any thread may take it) or on one thread (tgkill,
//! faults), with its `siginfo`; standard signals coalesce, real-time ones queue. Default actions
//! happen when the signal is generated if no thread blocks it: terminate, stop (every thread:
//! the process's requests are held until SIGCONT), continue, or ignore. A signal with a handler
//! is delivered on a thread's way back to user mode: when it answers a system call, a fault or
//! an `INTERRUPT` request — the nucleus makes a thread busy in user mode send one
//! (`Kernel::thread_interrupt`), so a thread that never makes a system call is interrupted too.
//! A system call blocked when a handled signal arrives ends with EINTR, or is restarted after
//! the handler (SA_RESTART, for the calls Linux restarts: the registers are rewound to the
//! system call instruction). The frame (`abi`'s layout module) holds the registers, the FP/SIMD
//! state, the old mask and the siginfo; `rt_sigreturn` restores them.

use crate::process::{is_orphaned, read_bytes, terminate, write_bytes, SigAction, WaitEvent, NSIG};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::syscall::layout;
use abi::Errno;
use alloc::vec::Vec;
use server_rt::{log, user_request, REGS_SET};

pub const SIGHUP: u32 = 1;
pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGABRT: u32 = 6;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGSEGV: u32 = 11;
pub const SIGPIPE: u32 = 13;
pub const SIGALRM: u32 = 14;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGSTOP: u32 = 19;
pub const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
pub const SIGSYS: u32 = 31;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 1;
pub const SA_NOCLDWAIT: u64 = 2;
pub const SA_SIGINFO: u64 = 4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
pub const SS_AUTODISARM: u32 = 1 << 31;

// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRALN: i32 = 1;
pub const BUS_ADRERR: i32 = 2;
pub const ILL_ILLOPN: i32 = 2;
pub const FPE_INTDIV: i32 = 1;

/// What a signal carries (`siginfo_t`), whichever union member applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: u32,
    pub errno: i32,
    pub code: i32,
    pub pid: Pid,
    pub uid: u32,
    /// SIGCHLD: the exit code or signal.
    pub status: i32,
    /// Faults: the address.
    pub addr: u64,
    /// sigqueue / timers: the value.
    pub value: u64,
    /// SIGCHLD: the child's CPU time (ns).
    pub utime: u64,
    pub stime: u64,
    /// Timers: the timer id and overrun count.
    pub timer: i32,
    pub overrun: i32,
}

impl SigInfo {
    /// A signal the kernel raises (SI_KERNEL).
    pub fn kernel(sig: u32) -> SigInfo {
        SigInfo { signo: sig, code: SI_KERNEL, ..SigInfo::default() }
    }

    /// A signal sent by `pid` running as `uid` (kill: SI_USER; tgkill: SI_TKILL).
    pub fn user(sig: u32, code: i32, pid: Pid, uid: u32) -> SigInfo {
        SigInfo { signo: sig, code, pid, uid, ..SigInfo::default() }
    }

    /// A fault at `addr`.
    pub fn fault(sig: u32, code: i32, addr: u64) -> SigInfo {
        SigInfo { signo: sig, code, addr, ..SigInfo::default() }
    }

    /// `siginfo_t` as both 64-bit ABIs lay it out (128 bytes).
    pub fn encode(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &(self.signo as i32).to_le_bytes());
        put(4, &self.errno.to_le_bytes());
        put(8, &self.code.to_le_bytes());
        let fault = matches!(self.signo, SIGSEGV | SIGBUS | SIGILL | SIGFPE | SIGTRAP);
        match self.code {
            SI_TIMER => {
                put(16, &self.timer.to_le_bytes());
                put(20, &self.overrun.to_le_bytes());
                put(24, &self.value.to_le_bytes());
            }
            c if c > 0 && self.signo == SIGCHLD => {
                put(16, &self.pid.to_le_bytes());
                put(20, &self.uid.to_le_bytes());
                put(24, &self.status.to_le_bytes());
                // clock_t in USER_HZ (100) ticks.
                put(32, &(self.utime / 10_000_000).to_le_bytes());
                put(40, &(self.stime / 10_000_000).to_le_bytes());
            }
            c if c > 0 && fault => put(16, &self.addr.to_le_bytes()),
            _ => {
                put(16, &self.pid.to_le_bytes());
                put(20, &self.uid.to_le_bytes());
                put(24, &self.value.to_le_bytes());
            }
        }
        b
    }

    /// A `siginfo_t` from user memory (rt_sigqueueinfo): the fields a sender may set.
    pub fn decode(b: &[u8]) -> SigInfo {
        let i32_at = |o: usize| i32::from_le_bytes(b.get(o..o + 4).and_then(|s| s.try_into().ok()).unwrap_or_default());
        let u64_at = |o: usize| u64::from_le_bytes(b.get(o..o + 8).and_then(|s| s.try_into().ok()).unwrap_or_default());
        SigInfo {
            signo: i32_at(0) as u32,
            errno: i32_at(4),
            code: i32_at(8),
            pid: i32_at(16) as u32,
            uid: i32_at(20) as u32,
            value: u64_at(24),
            ..SigInfo::default()
        }
    }
}

/// Pending signals: a set, and the siginfo of each instance (standard signals coalesce:
/// at most one; real-time signals queue, oldest first).
#[derive(Clone, Debug, Default)]
pub struct SigQueue {
    pub set: u64,
    items: Vec<SigInfo>,
}

impl SigQueue {
    /// Queues `info`; false when a standard signal was already pending (coalesced).
    pub fn add(&mut self, info: SigInfo) -> bool {
        let b = bit(info.signo);
        if info.signo < 32 && self.set & b != 0 {
            return false;
        }
        self.set |= b;
        self.items.push(info);
        true
    }

    /// Takes the oldest instance of `sig`.
    pub fn take(&mut self, sig: u32) -> Option<SigInfo> {
        let i = self.items.iter().position(|x| x.signo == sig)?;
        let info = self.items.remove(i);
        if !self.items.iter().any(|x| x.signo == sig) {
            self.set &= !bit(sig);
        }
        Some(info)
    }

    /// Drops every instance of the signals in `mask`.
    pub fn discard(&mut self, mask: u64) {
        self.items.retain(|x| bit(x.signo) & mask == 0);
        self.set &= !mask;
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The queued signal of POSIX timer `id`, if one is waiting (its overrun count grows
    /// instead of a second signal being queued).
    pub fn timer_signal(&mut self, id: i32) -> Option<&mut SigInfo> {
        self.items.iter_mut().find(|x| x.code == SI_TIMER && x.timer == id)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

pub fn bit(sig: u32) -> u64 {
    if sig == 0 || sig as usize >= NSIG {
        0
    } else {
        1u64 << (sig - 1)
    }
}

pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
const STOP_SIGNALS: u64 = (1 << (SIGSTOP - 1)) | (1 << (SIGTSTP - 1)) | (1 << (SIGTTIN - 1)) | (1 << (SIGTTOU - 1));
/// Synchronous (fault) signals, delivered before any other.
const SYNCHRONOUS: u64 = (1 << (SIGSEGV - 1))
    | (1 << (SIGBUS - 1))
    | (1 << (SIGILL - 1))
    | (1 << (SIGTRAP - 1))
    | (1 << (SIGFPE - 1))
    | (1 << (SIGSYS - 1));

/// A signal's default action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    Terminate,
    /// Terminate with a core dump (none is written: RLIMIT_CORE is 0 by default, as on Linux).
    Core,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: u32) -> Default {
    match sig {
        SIGCHLD | 23 | 28 => Default::Ignore, // SIGCHLD, SIGURG, SIGWINCH
        SIGCONT => Default::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Default::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | 24 | 25 | SIGSYS => Default::Core,
        _ => Default::Terminate,
    }
}

/// Whether `act` throws `sig` away.
fn is_ignored(act: &SigAction, sig: u32) -> bool {
    act.handler == SIG_IGN
        || (act.handler == SIG_DFL && matches!(default_action(sig), Default::Ignore | Default::Continue))
}

/// Sends `sig` to process `pid` from the kernel (console ^C, SIGPIPE, SIGCHLD...).
pub fn send(l: &mut Linux, pid: Pid, sig: u32) {
    let info = if sig == SIGPIPE {
        let uid = l.procs.get(&pid).map_or(0, |p| p.creds.ruid);
        SigInfo::user(sig, SI_USER, pid, uid)
    } else {
        SigInfo::kernel(sig)
    };
    send_info(l, pid, info);
}

/// Sends `sig` to every live member of process group `pgid` (from the kernel).
pub fn kill_group(l: &mut Linux, pgid: Pid, sig: u32) {
    let members: Vec<Pid> = l.procs.values().filter(|p| p.pgid == pgid && !p.is_zombie()).map(|p| p.pid).collect();
    for pid in members {
        send(l, pid, sig);
    }
}

/// Queues `info` for process `pid` and carries out what it means now: SIGKILL kills, SIGCONT
/// continues, a default action happens at once unless every thread blocks the signal, and a
/// thread that can take a handled signal is made to look at it.
pub fn send_info(l: &mut Linux, pid: Pid, info: SigInfo) {
    send_inner(l, pid, None, info);
}

/// As [`send_info`], to thread `tid` of process `pid` only.
pub fn send_to_thread(l: &mut Linux, pid: Pid, tid: Pid, info: SigInfo) {
    send_inner(l, pid, Some(tid), info);
}

fn send_inner(l: &mut Linux, pid: Pid, tid: Option<Pid>, info: SigInfo) {
    let sig = info.signo;
    let Some(p) = l.procs.get_mut(&pid) else { return };
    if p.is_zombie() || sig == 0 || sig as usize >= NSIG {
        return;
    }
    let act = p.sigactions[sig as usize];
    if pid == 1 && act.handler <= SIG_IGN {
        return; // init only receives the signals it has handlers for, as on Linux
    }
    if sig == SIGKILL {
        terminate(l, pid, SIGKILL as i32);
        return;
    }
    if STOP_SIGNALS & bit(sig) != 0 {
        discard_everywhere(p, bit(SIGCONT));
    }
    if sig == SIGCONT {
        discard_everywhere(p, STOP_SIGNALS);
        if p.stopped {
            continue_process(l, pid);
        }
    }
    let Some(p) = l.procs.get_mut(&pid) else { return };
    let blocked = match tid {
        Some(t) => p.thread(t).is_none_or(|t| t.sigmask & bit(sig) != 0),
        None => p.threads.iter().all(|t| t.sigmask & bit(sig) != 0),
    };
    if !blocked && is_ignored(&act, sig) {
        return;
    }
    // Stop signals from the terminal do nothing to an orphaned group (nobody could continue it).
    let pgid = p.pgid;
    if act.handler == SIG_DFL && matches!(sig, SIGTSTP | SIGTTIN | SIGTTOU) && is_orphaned(l, pgid) {
        return;
    }
    let Some(p) = l.procs.get_mut(&pid) else { return };
    // Real-time signals queue, up to RLIMIT_SIGPENDING of them (then they are dropped, and
    // sigqueue says EAGAIN: `queue_full`).
    if sig >= 32 && queue_full(p) {
        return;
    }
    let queued = match tid {
        Some(t) => match p.thread_mut(t) {
            Some(t) => t.pending.add(info),
            None => return,
        },
        None => p.pending.add(info),
    };
    if !queued {
        return;
    }
    if act.handler == SIG_DFL && !blocked {
        // The default action happens now; the signal is consumed.
        let _ = take_signal(p, tid, sig);
        act_default(l, pid, sig);
        return;
    }
    // A handler (or a blocked signal): make a thread that can take it look at it.
    let target = match tid {
        Some(t) => p.thread(t),
        None => p.threads.iter().find(|t| t.sigmask & bit(sig) == 0),
    };
    if let Some(t) = target.filter(|t| t.sigmask & bit(sig) == 0) {
        let r = t.r;
        l.k.thread_interrupt(r);
    }
}

/// Whether process `p` has RLIMIT_SIGPENDING signals queued already.
pub fn queue_full(p: &crate::process::Process) -> bool {
    let queued = p.pending.len() + p.threads.iter().map(|t| t.pending.len()).sum::<usize>();
    queued as u64 >= p.rlimits[crate::process::RLIMIT_SIGPENDING].0
}

fn discard_everywhere(p: &mut crate::process::Process, mask: u64) {
    p.pending.discard(mask);
    for t in p.threads.iter_mut() {
        t.pending.discard(mask);
    }
}

/// Takes one instance of `sig` from thread `tid`'s queue (if given and there) or the
/// process's.
fn take_signal(p: &mut crate::process::Process, tid: Option<Pid>, sig: u32) -> Option<SigInfo> {
    if let Some(t) = tid.and_then(|t| p.thread_mut(t)) {
        if let Some(i) = t.pending.take(sig) {
            return Some(i);
        }
    }
    p.pending.take(sig)
}

/// Carries out the default action of `sig` on `pid`.
fn act_default(l: &mut Linux, pid: Pid, sig: u32) {
    match default_action(sig) {
        Default::Terminate | Default::Core => terminate(l, pid, sig as i32),
        Default::Stop => stop_process(l, pid, sig),
        Default::Ignore | Default::Continue => {}
    }
}

/// Group stop: every thread stops (a thread in user mode is interrupted and held in the
/// server; blocked system calls stay blocked), and the parent hears of it.
pub fn stop_process(l: &mut Linux, pid: Pid, sig: u32) {
    let Some(p) = l.procs.get_mut(&pid) else { return };
    if p.stopped || p.is_zombie() {
        return;
    }
    p.stopped = true;
    p.wait_event = Some(WaitEvent::Stopped(sig));
    let threads: Vec<_> = p.threads.iter().map(|t| t.r).collect();
    for t in threads {
        l.k.thread_interrupt(t);
    }
    notify_parent_of_stop(l, pid, CLD_STOPPED, sig as i32);
}

/// SIGCONT: the process runs again (its held requests are answered as they can be).
pub fn continue_process(l: &mut Linux, pid: Pid) {
    let Some(p) = l.procs.get_mut(&pid) else { return };
    if !p.stopped {
        return;
    }
    p.stopped = false;
    p.wait_event = Some(WaitEvent::Continued);
    notify_parent_of_stop(l, pid, CLD_CONTINUED, SIGCONT as i32);
}

/// SIGCHLD for a stop or a continue, unless the parent asked not to (SA_NOCLDSTOP).
fn notify_parent_of_stop(l: &mut Linux, pid: Pid, code: i32, status: i32) {
    let Some(p) = l.procs.get(&pid) else { return };
    let (ppid, uid) = (p.ppid, p.creds.ruid);
    let (utime, stime) = (p.times.utime, p.times.stime);
    let Some(parent) = l.procs.get(&ppid) else { return };
    if parent.sigactions[SIGCHLD as usize].flags & SA_NOCLDSTOP != 0 {
        return;
    }
    let info = SigInfo { signo: SIGCHLD, code, pid, uid, status, utime, stime, ..SigInfo::default() };
    send_info(l, ppid, info);
}

/// The signal thread `tid` of `pid` would take next, if any: its own and the process's
/// pending signals it does not block, fault signals first, then the lowest number. A stopped
/// process takes none.
pub fn deliverable(l: &Linux, pid: Pid, tid: Pid) -> Option<u32> {
    let p = l.procs.get(&pid)?;
    if p.stopped {
        return None;
    }
    let t = p.thread(tid)?;
    let ready = (p.pending.set | t.pending.set) & !t.sigmask;
    if ready == 0 {
        return None;
    }
    let first = if ready & SYNCHRONOUS != 0 { ready & SYNCHRONOUS } else { ready };
    Some(first.trailing_zeros() + 1)
}

/// Takes the next signal thread `tid` must handle with a handler: default actions of the
/// signals before it are carried out on the way (ignored ones dropped, a stop stops the
/// process, a fatal one kills it). Returns `None` when there is nothing to run a handler for
/// (or the process is gone or stopped).
fn next_handled(l: &mut Linux, pid: Pid, tid: Pid) -> Option<(u32, SigInfo, SigAction)> {
    loop {
        let sig = deliverable(l, pid, tid)?;
        let p = l.procs.get_mut(&pid)?;
        let info = take_signal(p, Some(tid), sig).unwrap_or_else(|| SigInfo::kernel(sig));
        let act = p.sigactions[sig as usize];
        if act.handler > SIG_IGN {
            return Some((sig, info, act));
        }
        if act.handler == SIG_DFL {
            act_default(l, pid, sig);
            if l.procs.get(&pid).is_none_or(|p| p.is_zombie() || p.stopped) {
                return None;
            }
        }
    }
}

/// How the interrupted code continues after a handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// A system call returns this result.
    Result(i64),
    /// The system call runs again (SA_RESTART).
    Restart,
    /// The registers stay as they are (a fault, an interrupt in user mode, rt_sigreturn).
    Keep,
}

/// System calls that end in EINTR after a handler even with SA_RESTART (Linux's
/// ERESTARTNOHAND and restart_block calls); every other blocked call is restarted.
const NO_RESTART: &[&str] = &[
    "nanosleep",
    "clock_nanosleep",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "rt_sigsuspend",
    "pause",
    "rt_sigtimedwait",
    "epoll_wait",
    "epoll_pwait",
];

/// Blocked request `c` is interrupted by a handler with `flags`: tidy up what the call left
/// waiting and say how it ends (EINTR or a restart).
fn interrupted(l: &mut Linux, c: &Ctx, flags: u64) -> Resume {
    let name = abi::syscall::name(abi::syscall::CURRENT, c.nr as usize).unwrap_or("");
    crate::sys::futex::forget(l, c.tag);
    crate::sys::fifo::forget(l, c.tag);
    crate::sys::locks::forget(l, c.tag);
    crate::sys::info::interrupted_sleep(l, c, name);
    let timed_futex = name == "futex" && crate::sys::futex::has_timeout(c);
    if flags & SA_RESTART != 0 && !NO_RESTART.contains(&name) && !timed_futex {
        Resume::Restart
    } else {
        Resume::Result(Errno::EINTR.as_return())
    }
}

/// Everything that happens to a request on its way back to user mode (the server loop's
/// one call into this module): a stopped process's requests are held; otherwise a signal
/// with a handler is delivered to the answering thread, and a blocked call with one waiting
/// is interrupted (EINTR or restarted). `outcome` is what the handler decided.
pub fn on_reply(l: &mut Linux, c: &Ctx, kind: u32, outcome: Outcome) -> Outcome {
    let Some(p) = l.procs.get(&c.pid).filter(|p| !p.is_zombie()) else { return outcome };
    let Some(t) = p.thread(c.tid) else { return outcome };
    if !p.stopped && (p.pending.set | t.pending.set) & !t.sigmask == 0 {
        return outcome; // the common case: nothing to deliver
    }
    if p.stopped {
        // The process stopped while this request ran (it stopped itself, say): the thread
        // does not go back to user mode until SIGCONT; the result waits for it.
        if let Outcome::Done(v) = outcome {
            l.held.push((c.tag, v));
            return Outcome::Block;
        }
        return outcome;
    }
    let is_execve = kind == user_request::SYSCALL && c.nr as usize == abi::syscall::current::EXECVE;
    let resume = match (kind, outcome) {
        (_, Outcome::NoReply) => return outcome,
        (user_request::SYSCALL, Outcome::Done(REGS_SET)) if is_execve => return outcome,
        (_, Outcome::Done(REGS_SET)) => Resume::Keep,
        (user_request::SYSCALL, Outcome::Done(v)) => Resume::Result(v),
        (_, Outcome::Done(_)) => Resume::Keep,
        (_, Outcome::Block) => {
            if deliverable(l, c.pid, c.tid).is_none() || crate::sys::proc::is_vfork_wait(l, c.tag) {
                return Outcome::Block;
            }
            // Known below, once the signal (and its SA_RESTART) is.
            Resume::Keep
        }
    };
    let saved_mask = l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid)).and_then(|t| t.suspend_mask.take());
    let Some((sig, info, act)) = next_handled(l, c.pid, c.tid) else {
        // Nothing to run a handler for after all: put a sigsuspend mask back, keep waiting.
        if let (Some(m), Some(t)) = (saved_mask, l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid))) {
            t.suspend_mask = Some(m);
        }
        return if l.procs.get(&c.pid).is_none_or(|p| p.is_zombie()) { Outcome::NoReply } else { outcome };
    };
    let resume = if outcome == Outcome::Block { interrupted(l, c, act.flags) } else { resume };
    let mut result = setup_frame(l, c, sig, &info, &act, resume, saved_mask);
    // Every other signal the thread can take now gets its frame on top, as Linux does before
    // it returns to user mode: the last one set up runs first.
    while result == Outcome::Done(REGS_SET) {
        let Some((sig, info, act)) = next_handled(l, c.pid, c.tid) else { break };
        result = setup_frame(l, c, sig, &info, &act, Resume::Keep, None);
    }
    if result == Outcome::NoReply || l.procs.get(&c.pid).is_none_or(|p| p.is_zombie()) {
        return Outcome::NoReply;
    }
    result
}

/// The result a request kept while its process was stopped, if any (see [`on_reply`]).
pub fn take_held(l: &mut Linux, tag: u64) -> Option<i64> {
    if l.held.is_empty() {
        return None;
    }
    let i = l.held.iter().position(|h| h.0 == tag)?;
    Some(l.held.remove(i).1)
}

/// A fault the thread cannot go on from: the signal is forced (a handler runs if there is one
/// and the signal is not blocked; otherwise the default action, which kills).
pub fn force_fault(l: &mut Linux, c: &Ctx, info: SigInfo) -> Outcome {
    let sig = info.signo;
    let Some(p) = l.procs.get_mut(&c.pid) else { return Outcome::NoReply };
    let act = p.sigactions[sig as usize];
    let blocked = p.thread(c.tid).is_none_or(|t| t.sigmask & bit(sig) != 0);
    if act.handler <= SIG_IGN || blocked {
        if act.handler > SIG_IGN || sig == SIGSEGV || sig == SIGBUS {
            log!(
                "linux: pid {} {} at {:#x} (pc {:#x})",
                c.pid,
                if sig == SIGSEGV { "segfault" } else { "fatal fault" },
                info.addr,
                c.args[1]
            );
        }
        terminate(l, c.pid, sig as i32);
        return Outcome::NoReply;
    }
    setup_frame(l, c, sig, &info, &act, Resume::Keep, None)
}

/// Builds the signal frame on the user stack (or the alternate stack) and points the thread
/// at the handler. `saved_mask` is the mask `rt_sigreturn` restores, if not the current one.
fn setup_frame(
    l: &mut Linux,
    c: &Ctx,
    sig: u32,
    info: &SigInfo,
    act: &SigAction,
    resume: Resume,
    saved_mask: Option<u64>,
) -> Outcome {
    let Ok(mut regs) = l.k.thread_regs(c.tag) else { return Outcome::NoReply };
    match resume {
        Resume::Result(v) => regs[layout::reg::RETURN] = v as u64,
        Resume::Restart => layout::restart_syscall(&mut regs, c.nr, c.args[0]),
        Resume::Keep => {}
    }
    let mut fpu = [0u8; layout::FPU_BYTES];
    let have_fpu = l.k.thread_fpu(c.tag, &mut fpu).is_ok();
    let Some(p) = l.procs.get(&c.pid) else { return Outcome::NoReply };
    let Some(t) = p.thread(c.tid) else { return Outcome::NoReply };
    let old_mask = saved_mask.unwrap_or(t.sigmask);
    let sp = regs[layout::reg::SP];
    let alt = t.altstack;
    let on_alt = alt.flags & SS_DISABLE == 0 && sp.wrapping_sub(alt.sp) < alt.size;
    let use_alt = act.flags & SA_ONSTACK != 0 && alt.flags & SS_DISABLE == 0 && !on_alt;
    let uc_stack = layout::StackT {
        sp: alt.sp,
        flags: if alt.flags & SS_DISABLE != 0 {
            SS_DISABLE
        } else if on_alt || use_alt {
            SS_ONSTACK
        } else {
            0
        } | (alt.flags & SS_AUTODISARM),
        size: alt.size,
    };
    let restorer = if act.flags & SA_RESTORER != 0 { act.restorer } else { crate::process::SIGPAGE };
    let args = layout::FrameArgs {
        regs: &regs,
        fpu: have_fpu.then_some(&fpu),
        sig,
        info: info.encode(),
        handler: act.handler,
        restorer,
        old_mask,
        stack_top: if use_alt { alt.sp + alt.size } else { sp },
        red_zone: !use_alt,
        uc_stack,
        fault_addr: info.addr,
    };
    let Some(frame) = layout::build_sigframe(&args) else {
        terminate(l, c.pid, SIGSEGV as i32);
        return Outcome::NoReply;
    };
    if write_bytes(l, c.pid, frame.at, &frame.bytes[..frame.len]).is_err() {
        // The frame cannot be written (the stack overflowed): SIGSEGV, as Linux does.
        log!("linux: pid {} cannot write a signal frame at {:#x}: SIGSEGV", c.pid, frame.at);
        terminate(l, c.pid, SIGSEGV as i32);
        return Outcome::NoReply;
    }
    if l.k.thread_set_regs(c.tag, &frame.regs).is_err() {
        return Outcome::NoReply;
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Outcome::NoReply };
    if act.flags & SA_RESETHAND != 0 {
        p.sigactions[sig as usize] = SigAction::default();
    }
    let Some(t) = p.thread_mut(c.tid) else { return Outcome::NoReply };
    t.sigmask = old_mask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        t.sigmask |= bit(sig);
    }
    t.sigmask &= !UNBLOCKABLE;
    if use_alt && alt.flags & SS_AUTODISARM != 0 {
        t.altstack = crate::process::AltStack::default();
    }
    Outcome::Done(REGS_SET)
}

/// An `INTERRUPT` request: the thread was running user code; the reply path delivers.
pub fn on_interrupt(_l: &mut Linux, _c: &Ctx) -> Outcome {
    Outcome::Done(0)
}

fn read_sigset(l: &Linux, c: &Ctx, va: u64) -> Result<u64, Errno> {
    let b = read_bytes(l, c.pid, va, 8)?;
    Ok(u64::from_le_bytes(b.try_into().map_err(|_| Errno::EFAULT)?))
}

/// rt_sigsuspend(mask): waits, under `mask`, for a signal with a handler; always ends in EINTR
/// with the handler running and the original mask restored by its return.
pub fn rt_sigsuspend(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[1] != 8 {
        return Errno::EINVAL.into();
    }
    let set = match read_sigset(l, c, c.args[0]) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    suspend(l, c, set)
}

fn suspend(l: &mut Linux, c: &Ctx, set: u64) -> Outcome {
    let Some(t) = l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid)) else { return Errno::ESRCH.into() };
    if t.suspend_mask.is_none() {
        t.suspend_mask = Some(t.sigmask);
        t.sigmask = set & !UNBLOCKABLE;
    }
    Outcome::Block // the reply path delivers the signal that ends it
}

/// Runs wait `f` (ppoll, pselect6) under the signal mask at `mask_ptr` (none if 0), as
/// Linux does: the mask holds while the call blocks; a handler that interrupts it runs and
/// returns to the original mask (`suspend_mask`, as for rt_sigsuspend); a call that ends
/// otherwise puts the original mask back before it returns, so that a signal the temporary
/// mask held off is delivered then.
pub fn with_wait_mask(
    l: &mut Linux,
    c: &Ctx,
    mask_ptr: u64,
    set_size: u64,
    f: impl FnOnce(&mut Linux) -> Outcome,
) -> Outcome {
    if mask_ptr != 0 {
        if set_size != 8 {
            return Errno::EINVAL.into();
        }
        let set = match read_sigset(l, c, mask_ptr) {
            Ok(s) => s,
            Err(e) => return e.into(),
        };
        let Some(t) = l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid)) else { return Errno::ESRCH.into() };
        if t.suspend_mask.is_none() {
            t.suspend_mask = Some(t.sigmask);
            t.sigmask = set & !UNBLOCKABLE;
        }
    }
    let outcome = f(l);
    if mask_ptr != 0 && outcome != Outcome::Block {
        if let Some(t) = l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid)) {
            if let Some(m) = t.suspend_mask.take() {
                t.sigmask = m;
            }
        }
    }
    outcome
}

/// pause(): sigsuspend with the current mask.
pub fn pause(l: &mut Linux, c: &Ctx) -> Outcome {
    let mask = l.procs.get(&c.pid).and_then(|p| p.thread(c.tid)).map_or(0, |t| t.sigmask);
    let mask = l.procs.get(&c.pid).and_then(|p| p.thread(c.tid)).and_then(|t| t.suspend_mask).unwrap_or(mask);
    suspend(l, c, mask)
}

pub fn rt_sigreturn(l: &mut Linux, c: &Ctx) -> Outcome {
    let Ok(mut regs) = l.k.thread_regs(c.tag) else { return Errno::EFAULT.into() };
    let uc_at = layout::ucontext_at(&regs);
    let Ok(raw) = read_bytes(l, c.pid, uc_at, layout::UCONTEXT_LEN) else {
        terminate(l, c.pid, SIGSEGV as i32);
        return Outcome::NoReply;
    };
    let Ok(uc) = <[u8; layout::UCONTEXT_LEN]>::try_from(raw.as_slice()) else { return Errno::EFAULT.into() };
    let restored = layout::restore_from_ucontext(&uc, uc_at, &mut regs);
    if let Some(at) = restored.fp_at {
        match read_bytes(l, c.pid, at, layout::FP_RECORD_LEN) {
            Ok(rec) => {
                if let Some(fpu) = layout::fpu_from_record(&rec) {
                    let _ = l.k.thread_set_fpu(c.tag, &fpu);
                }
            }
            Err(_) => {
                terminate(l, c.pid, SIGSEGV as i32);
                return Outcome::NoReply;
            }
        }
    }
    if l.k.thread_set_regs(c.tag, &regs).is_err() {
        return Errno::EFAULT.into();
    }
    if let Some(t) = l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid)) {
        t.sigmask = restored.mask & !UNBLOCKABLE;
        // The alternate stack as the frame says (restore_altstack), if it is a valid one.
        let s = restored.stack;
        let sp_now = regs[layout::reg::SP];
        let on_alt = t.altstack.flags & SS_DISABLE == 0 && sp_now.wrapping_sub(t.altstack.sp) < t.altstack.size;
        if !on_alt {
            if s.flags & SS_DISABLE != 0 {
                t.altstack = crate::process::AltStack::default();
            } else if s.size >= layout::MINSIGSTKSZ {
                t.altstack = crate::process::AltStack { sp: s.sp, size: s.size, flags: s.flags & SS_AUTODISARM };
            }
        }
    }
    Outcome::Done(REGS_SET)
}

pub fn rt_sigaction(l: &mut Linux, c: &Ctx) -> Outcome {
    let [sig, act, oldact, size, ..] = c.args;
    if sig == 0 || sig as usize >= NSIG || size != 8 {
        return Errno::EINVAL.into();
    }
    let sig = sig as u32;
    if act != 0 && (sig == SIGKILL || sig == SIGSTOP) {
        return Errno::EINVAL.into();
    }
    let old = l.procs.get(&c.pid).map(|p| p.sigactions[sig as usize]).unwrap_or_default();
    let new = if act != 0 {
        match read_bytes(l, c.pid, act, 32) {
            Ok(b) => {
                let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
                // struct sigaction (x86_64 and asm-generic): handler, flags, restorer, mask.
                Some(SigAction { handler: w(0), flags: w(1), restorer: w(2), mask: w(3) & !UNBLOCKABLE })
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
        // Now ignored: pending instances go (POSIX).
        if is_ignored(&a, sig) {
            discard_everywhere(p, bit(sig));
        }
    }
    Outcome::Done(0)
}

pub fn rt_sigprocmask(l: &mut Linux, c: &Ctx) -> Outcome {
    let [how, set, oldset, size, ..] = c.args;
    if size != 8 {
        return Errno::EINVAL.into();
    }
    let Some(t) = l.procs.get(&c.pid).and_then(|p| p.thread(c.tid)) else { return Errno::ESRCH.into() };
    let old = t.sigmask;
    let new = if set != 0 {
        let v = match read_sigset(l, c, set) {
            Ok(v) => v,
            Err(e) => return e.into(),
        };
        Some(match how {
            0 => old | v,
            1 => old & !v,
            2 => v,
            _ => return Errno::EINVAL.into(),
        })
    } else {
        None
    };
    if oldset != 0 {
        if let Err(e) = write_bytes(l, c.pid, oldset, &old.to_le_bytes()) {
            return e.into();
        }
    }
    if let (Some(n), Some(t)) = (new, l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid))) {
        t.sigmask = n & !UNBLOCKABLE;
    }
    Outcome::Done(0)
}

/// rt_sigpending: the pending signals the thread blocks.
pub fn rt_sigpending(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[1] > 8 {
        return Errno::EINVAL.into();
    }
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let Some(t) = p.thread(c.tid) else { return Errno::ESRCH.into() };
    let set = (p.pending.set | t.pending.set) & t.sigmask;
    let n = c.args[1] as usize;
    write_bytes(l, c.pid, c.args[0], &set.to_le_bytes()[..n]).map(|_| 0).into()
}

/// Whether thread `tid` of `pid` (or the process) has a signal of `set` pending.
pub fn has_pending(l: &Linux, pid: Pid, tid: Pid, set: u64) -> bool {
    let Some(p) = l.procs.get(&pid) else { return false };
    let thread = p.thread(tid).map_or(0, |t| t.pending.set);
    (thread | p.pending.set) & set != 0
}

/// Takes the signal of `set` that would be delivered first from thread `tid` of `pid` (its
/// own queue first, then the process's): synchronous ones, then the lowest number.
pub fn take_pending(l: &mut Linux, pid: Pid, tid: Pid, set: u64) -> Option<SigInfo> {
    let p = l.procs.get_mut(&pid)?;
    let t = p.thread(tid)?;
    let ready = (t.pending.set | p.pending.set) & set;
    if ready == 0 {
        return None;
    }
    let first = if ready & SYNCHRONOUS != 0 { ready & SYNCHRONOUS } else { ready };
    let sig = first.trailing_zeros() + 1;
    Some(take_signal(p, Some(tid), sig).unwrap_or_else(|| SigInfo::kernel(sig)))
}

/// rt_sigtimedwait(set, info, timeout, size): takes a pending signal of `set` (blocked or
/// not), or waits for one; EAGAIN when the timeout passes, EINTR for another handled signal.
pub fn rt_sigtimedwait(l: &mut Linux, c: &Ctx) -> Outcome {
    let [set, info, timeout, size, ..] = c.args;
    if size != 8 {
        return Errno::EINVAL.into();
    }
    let set = match read_sigset(l, c, set) {
        Ok(s) => s & !UNBLOCKABLE,
        Err(e) => return e.into(),
    };
    let limit_ns = if timeout != 0 {
        match crate::sys::info::read_timespec(l, c.pid, timeout) {
            Ok(t) => Some(t),
            Err(e) => return e.into(),
        }
    } else {
        None
    };
    if let Some(got) = take_pending(l, c.pid, c.tid, set) {
        let sig = got.signo;
        if info != 0 {
            if let Err(e) = write_bytes(l, c.pid, info, &got.encode()) {
                return e.into();
            }
        }
        return Outcome::Done(sig as i64);
    }
    if limit_ns.is_some_and(|ns| l.k.now_ns() >= c.started_ns.saturating_add(ns)) {
        return Errno::EAGAIN.into();
    }
    Outcome::Block
}

/// Whether the caller may signal process `target` (same real or effective user, or root;
/// SIGCONT within the session).
fn may_signal(l: &Linux, c: &Ctx, target: Pid, sig: u32) -> bool {
    let (Some(me), Some(t)) = (l.procs.get(&c.pid), l.procs.get(&target)) else { return false };
    let (a, b) = (&me.creds, &t.creds);
    a.euid == 0
        || a.euid == b.ruid
        || a.euid == b.suid
        || a.ruid == b.ruid
        || a.ruid == b.suid
        || (sig == SIGCONT && me.sid == t.sid)
}

fn sender_info(l: &Linux, c: &Ctx, sig: u32, code: i32) -> SigInfo {
    let uid = l.procs.get(&c.pid).map_or(0, |p| p.creds.ruid);
    SigInfo::user(sig, code, c.pid, uid)
}

/// Sends `info` to the processes `pid` names (kill's rules): > 0 one process, 0 the caller's
/// group, -1 everyone the caller may signal but init and itself, < -1 group -pid.
fn kill_with(l: &mut Linux, c: &Ctx, pid: i32, info: SigInfo) -> Outcome {
    let sig = info.signo;
    if sig as usize >= NSIG {
        return Errno::EINVAL.into();
    }
    let targets: Vec<Pid> = match pid {
        p if p > 0 => match l.procs.get(&(p as u32)) {
            Some(x) if !x.is_zombie() => alloc::vec![p as u32],
            Some(_) => alloc::vec![], // a zombie: nothing to do, but it exists
            None => return Errno::ESRCH.into(),
        },
        -1 => l.procs.values().filter(|p| !p.is_zombie() && p.pid != 1 && p.pid != c.pid).map(|p| p.pid).collect(),
        p => {
            let pgid = if p == 0 { l.procs.get(&c.pid).map_or(0, |p| p.pgid) } else { p.unsigned_abs() };
            l.procs.values().filter(|x| x.pgid == pgid && !x.is_zombie()).map(|x| x.pid).collect()
        }
    };
    if targets.is_empty() && pid <= 0 {
        return Errno::ESRCH.into();
    }
    let allowed: Vec<Pid> = targets.iter().copied().filter(|&t| may_signal(l, c, t, sig)).collect();
    if allowed.is_empty() && !targets.is_empty() {
        return Errno::EPERM.into();
    }
    for t in allowed {
        if sig != 0 {
            send_info(l, t, info);
        }
    }
    if l.procs.get(&c.pid).is_none_or(|p| p.is_zombie()) {
        return Outcome::NoReply;
    }
    Outcome::Done(0)
}

pub fn kill(l: &mut Linux, c: &Ctx) -> Outcome {
    let sig = c.args[1] as u32;
    if c.args[1] >= NSIG as u64 {
        return Errno::EINVAL.into();
    }
    let info = sender_info(l, c, sig, SI_USER);
    kill_with(l, c, c.args[0] as i64 as i32, info)
}

/// tgkill(tgid, tid, sig) / tkill(tid, sig): to one thread (SI_TKILL).
pub fn tgkill(l: &mut Linux, c: &Ctx) -> Outcome {
    let is_tgkill = abi::syscall::name(abi::syscall::CURRENT, c.nr as usize) == Some("tgkill");
    let (tgid, tid, sig) =
        if is_tgkill { (c.args[0] as i64, c.args[1] as i64, c.args[2]) } else { (0, c.args[0] as i64, c.args[1]) };
    if tid <= 0 || (is_tgkill && tgid <= 0) || sig >= NSIG as u64 {
        return Errno::EINVAL.into();
    }
    let (tid, sig) = (tid as Pid, sig as u32);
    let owner = l.procs.values().find(|p| !p.is_zombie() && p.thread(tid).is_some()).map(|p| p.pid);
    let Some(pid) = owner.filter(|&p| !is_tgkill || p == tgid as Pid) else { return Errno::ESRCH.into() };
    if !may_signal(l, c, pid, sig) {
        return Errno::EPERM.into();
    }
    if sig != 0 {
        let info = sender_info(l, c, sig, SI_TKILL);
        if matches!(default_action(sig), Default::Stop | Default::Continue) || sig == SIGKILL {
            send_info(l, pid, info); // group-wide by nature
        } else {
            send_to_thread(l, pid, tid, info);
        }
    }
    if l.procs.get(&c.pid).is_none_or(|p| p.is_zombie()) {
        return Outcome::NoReply;
    }
    Outcome::Done(0)
}

/// rt_sigqueueinfo(tgid, sig, info) and rt_tgsigqueueinfo(tgid, tid, sig, info): a signal with
/// the caller's siginfo (which may not pretend to come from the kernel or kill(2), except to
/// itself).
pub fn rt_sigqueueinfo(l: &mut Linux, c: &Ctx) -> Outcome {
    let tg = abi::syscall::name(abi::syscall::CURRENT, c.nr as usize) == Some("rt_tgsigqueueinfo");
    let (pid, tid, sig, uinfo) = if tg {
        (c.args[0] as i64, Some(c.args[1] as i64), c.args[2], c.args[3])
    } else {
        (c.args[0] as i64, None, c.args[1], c.args[2])
    };
    if sig == 0 || sig >= NSIG as u64 || pid <= 0 || tid.is_some_and(|t| t <= 0) {
        return Errno::EINVAL.into();
    }
    let raw = match read_bytes(l, c.pid, uinfo, 128) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let mut info = SigInfo::decode(&raw);
    info.signo = sig as u32;
    let pid = pid as Pid;
    if (info.code >= 0 || info.code == SI_TKILL) && pid != c.pid {
        return Errno::EPERM.into();
    }
    let Some(p) = l.procs.get(&pid).filter(|p| !p.is_zombie()) else { return Errno::ESRCH.into() };
    if let Some(t) = tid {
        if p.thread(t as Pid).is_none() {
            return Errno::ESRCH.into();
        }
    }
    if !may_signal(l, c, pid, sig as u32) {
        return Errno::EPERM.into();
    }
    if sig >= 32 && l.procs.get(&pid).is_some_and(queue_full) {
        return Errno::EAGAIN.into();
    }
    match tid {
        Some(t) => send_to_thread(l, pid, t as Pid, info),
        None => send_info(l, pid, info),
    }
    if l.procs.get(&c.pid).is_none_or(|p| p.is_zombie()) {
        return Outcome::NoReply;
    }
    Outcome::Done(0)
}

/// sigaltstack(ss, old_ss).
pub fn sigaltstack(l: &mut Linux, c: &Ctx) -> Outcome {
    let [ss, old, ..] = c.args;
    let sp = l.k.thread_regs(c.tag).map_or(0, |r| r[layout::reg::SP]);
    let Some(t) = l.procs.get(&c.pid).and_then(|p| p.thread(c.tid)) else { return Errno::ESRCH.into() };
    let cur = t.altstack;
    let on_alt = cur.flags & SS_DISABLE == 0 && sp.wrapping_sub(cur.sp) < cur.size;
    let new = if ss != 0 {
        let b = match read_bytes(l, c.pid, ss, 24) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        let w = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
        let (nsp, flags, size) = (w(0), w(8) as u32, w(16));
        if on_alt {
            return Errno::EPERM.into();
        }
        let mode = flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
            return Errno::EINVAL.into();
        }
        if mode == SS_DISABLE {
            Some(crate::process::AltStack::default())
        } else if size < layout::MINSIGSTKSZ {
            return Errno::ENOMEM.into();
        } else {
            Some(crate::process::AltStack { sp: nsp, size, flags: flags & SS_AUTODISARM })
        }
    } else {
        None
    };
    if old != 0 {
        let mut b = [0u8; 24];
        let flags =
            if cur.flags & SS_DISABLE != 0 { SS_DISABLE } else { (if on_alt { SS_ONSTACK } else { 0 }) | cur.flags };
        b[0..8].copy_from_slice(&cur.sp.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&cur.size.to_le_bytes());
        if let Err(e) = write_bytes(l, c.pid, old, &b) {
            return e.into();
        }
    }
    if let (Some(n), Some(t)) = (new, l.procs.get_mut(&c.pid).and_then(|p| p.thread_mut(c.tid))) {
        t.altstack = n;
    }
    Outcome::Done(0)
}
