//! Processes: identity and family (pid, parent, process group, session), threads, the
//! address-space layout (VMAs, brk, shared with vfork children), file descriptors, cwd and
//! umask, credentials and resource limits, signal dispositions, and the life cycle: start,
//! fork/clone, stop and continue, exit, zombie, wait, and reparenting to pid 1. When pid 1
//! exits the machine powers off with its exit status (there is nothing left to run).
//!
//! A process is a thread group: its pid is its first thread's tid, and every thread has a
//! nucleus thread (`ThreadRef`), its own signal mask, pending signals, alternate stack and
//! clear-tid address. Processes made with `CLONE_VM` (vfork, posix_spawn) share the parent's
//! address space and its layout (`Rc<RefCell<Mm>>`) until they exec or exit.

use crate::files::FdTable;
use crate::sys::signal::{self, SigInfo, SigQueue};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::proto::{Cred, FileId};
use abi::Errno;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use server_rt::{log, AspaceRef, Prot, ThreadRef};

pub const PAGE: u64 = 4096;
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;
/// The stack's reserve when RLIMIT_STACK is unlimited (and its default soft limit).
pub const STACK_MAX: u64 = 8 << 20;
pub const MMAP_BASE: u64 = 0x7f00_0000_0000;
/// A read-only, executable page with the `rt_sigreturn` trampoline (above the stack).
pub const SIGPAGE: u64 = STACK_TOP;

/// The vDSO's data page (the clock's numbers, read-only), and the vDSO image just above it
/// (`AT_SYSINFO_EHDR`): between the mmap area and the largest stack, as Linux keeps it near
/// the stack.
pub const VDSO_DATA: u64 = 0x7ffe_0000_0000;
pub const VDSO_IMAGE: u64 = VDSO_DATA + PAGE;

/// Room kept free below a grows-down mapping (Linux's stack_guard_gap: 256 pages).
pub const STACK_GUARD_GAP: u64 = 256 * PAGE;

/// VMA flags.
pub const VMA_SHARED: u32 = 1;
/// Grows down on faults just below it (MAP_GROWSDOWN, the main stack).
pub const VMA_GROWSDOWN: u32 = 2;

/// A mapped range of the address space and its rights. Pages are mapped on first touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub flags: u32,
    /// A file mapping's first page past the end of the file (0: none): accesses from there on
    /// are SIGBUS, as on Linux.
    pub eof: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Mm {
    pub vmas: Vec<Vma>,
    pub brk_start: u64,
    pub brk: u64,
    pub mmap_next: u64,
}

impl Mm {
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.vmas.iter().find(|v| addr >= v.start && addr < v.end)
    }

    /// Removes `[start, end)` from every VMA (splitting as needed).
    pub fn punch(&mut self, start: u64, end: u64) {
        let mut out = Vec::with_capacity(self.vmas.len() + 1);
        for v in self.vmas.drain(..) {
            if v.end <= start || v.start >= end {
                out.push(v);
                continue;
            }
            if v.start < start {
                out.push(Vma { end: start, ..v });
            }
            if v.end > end {
                out.push(Vma { start: end, ..v });
            }
        }
        self.vmas = out;
    }

    pub fn add(&mut self, start: u64, end: u64, prot: Prot) {
        self.add_with(start, end, prot, 0);
    }

    pub fn add_with(&mut self, start: u64, end: u64, prot: Prot, flags: u32) {
        self.insert(Vma { start, end, prot, flags, eof: 0 });
    }

    /// Adds `v`, replacing whatever overlapped it.
    pub fn insert(&mut self, v: Vma) {
        self.punch(v.start, v.end);
        self.vmas.push(v);
        self.vmas.sort_by_key(|v| v.start);
    }

    /// Whether any VMA overlaps `[start, end)`.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas.iter().any(|v| v.start < end && start < v.end)
    }

    /// A free range of `len` bytes for mmap (top-down from `mmap_next`).
    pub fn find_free(&mut self, len: u64) -> Option<u64> {
        let mut candidate = self.mmap_next.checked_sub(len)? & !(PAGE - 1);
        loop {
            let clash = self.vmas.iter().find(|v| v.start < candidate + len && candidate < v.end);
            match clash {
                None => {
                    self.mmap_next = candidate;
                    return Some(candidate);
                }
                Some(v) => candidate = v.start.checked_sub(len)? & !(PAGE - 1),
            }
            if candidate < 0x1000_0000 {
                return None;
            }
        }
    }

    /// The ranges of MAP_SHARED VMAs (kept shared, not copy-on-write, by fork).
    pub fn shared_ranges(&self) -> Vec<(u64, u64)> {
        self.vmas.iter().filter(|v| v.flags & VMA_SHARED != 0).map(|v| (v.start, v.end - v.start)).collect()
    }
}

/// Signal dispositions: handler 0 = default, 1 = ignore, other = a handler address.
pub const NSIG: usize = 65;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// A thread's alternate signal stack (sigaltstack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    /// SS_DISABLE (2) when there is none; SS_AUTODISARM (1 << 31) may be added.
    pub flags: u32,
}

impl Default for AltStack {
    fn default() -> Self {
        AltStack { sp: 0, size: 0, flags: signal::SS_DISABLE }
    }
}

pub struct Thread {
    pub r: ThreadRef,
    pub tid: Pid,
    pub sigmask: u64,
    /// Signals sent to this thread (tgkill, faults).
    pub pending: SigQueue,
    /// CLONE_CHILD_CLEARTID / set_tid_address: zeroed and woken (futex) when the thread exits.
    pub clear_tid: u64,
    pub altstack: AltStack,
    /// In rt_sigsuspend: the mask to restore once a handler has run.
    pub suspend_mask: Option<u64>,
    /// set_robust_list: the head of the robust mutexes it holds.
    pub robust_list: u64,
}

impl Thread {
    pub fn new(r: ThreadRef, tid: Pid, sigmask: u64) -> Thread {
        Thread {
            r,
            tid,
            sigmask,
            pending: SigQueue::default(),
            clear_tid: 0,
            altstack: AltStack::default(),
            suspend_mask: None,
            robust_list: 0,
        }
    }
}

/// Who a process is acting as: real, effective, saved and file-system ids, and groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub ruid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
}

/// A resource limit: (soft, hard); `u64::MAX` is RLIM_INFINITY.
pub type Rlimit = (u64, u64);
pub const RLIM_NLIMITS: usize = 16;
pub const RLIM_INFINITY: u64 = u64::MAX;
pub const RLIMIT_STACK: usize = 3;
pub const RLIMIT_CORE: usize = 4;
pub const RLIMIT_NOFILE: usize = 7;
pub const RLIMIT_NPROC: usize = 6;
pub const RLIMIT_MEMLOCK: usize = 8;
pub const RLIMIT_SIGPENDING: usize = 11;

/// Linux's limits for a process started by the kernel.
pub fn default_rlimits() -> [Rlimit; RLIM_NLIMITS] {
    let mut r = [(RLIM_INFINITY, RLIM_INFINITY); RLIM_NLIMITS];
    r[RLIMIT_STACK] = (STACK_MAX, RLIM_INFINITY);
    r[RLIMIT_CORE] = (0, RLIM_INFINITY);
    r[RLIMIT_NOFILE] = (1024, 4096);
    r[RLIMIT_NPROC] = (4096, 4096);
    r[RLIMIT_SIGPENDING] = (4096, 4096);
    r[RLIMIT_MEMLOCK] = (8 << 20, 8 << 20);
    r[12] = (819_200, 819_200); // MSGQUEUE
    r[13] = (0, 0); // NICE
    r[14] = (0, 0); // RTPRIO
    r
}

/// What a parent's wait can report besides an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEvent {
    Stopped(u32),
    Continued,
}

/// CPU time (ns): the process's own (threads that exited are added) and its waited-for
/// children's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
}

/// An interval timer: the next expiry (monotonic ns) and the reload interval (0 = one-shot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ITimer {
    pub next_ns: u64,
    pub interval_ns: u64,
}

pub struct Process {
    pub pid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    pub aspace: AspaceRef,
    pub mm: Rc<RefCell<Mm>>,
    pub threads: Vec<Thread>,
    pub fds: FdTable,
    /// The working directory (FileId(0): the root).
    pub cwd: FileId,
    pub umask: u32,
    pub sigactions: [SigAction; NSIG],
    /// Signals sent to the process (any thread may take them).
    pub pending: SigQueue,
    /// Wait status once the process has exited (a zombie until its parent waits).
    pub exit_status: Option<i32>,
    pub exe: String,
    /// The thread name (prctl PR_SET_NAME, comm).
    pub comm: [u8; 16],
    /// Stopped by a stop signal (job control): no thread runs or finishes a system call.
    pub stopped: bool,
    /// A stop or continue its parent has not waited for yet.
    pub wait_event: Option<WaitEvent>,
    /// The signal the parent gets at exit (SIGCHLD; clone's low byte; 0 = none).
    pub exit_signal: u32,
    pub creds: Creds,
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    pub times: Times,
    /// ITIMER_REAL (alarm, setitimer); `None` when disarmed.
    pub itimer_real: Option<ITimer>,
    /// ITIMER_VIRTUAL and ITIMER_PROF, kept for getitimer (they fire on CPU time: not yet).
    pub itimer_cpu: [Option<ITimer>; 2],
    /// POSIX timers (timer_create), by id.
    pub timers: Vec<crate::sys::timer::PosixTimer>,
    /// setpriority's nice value.
    pub nice: i32,
    /// The exit code of the leader's own `exit` while other threads still run.
    pub leader_exit: Option<i32>,
    /// PR_SET_PDEATHSIG: the signal it gets when its parent exits.
    pub pdeath_signal: u32,
}

impl Process {
    pub fn thread(&self, tid: Pid) -> Option<&Thread> {
        self.threads.iter().find(|t| t.tid == tid)
    }

    pub fn thread_mut(&mut self, tid: Pid) -> Option<&mut Thread> {
        self.threads.iter_mut().find(|t| t.tid == tid)
    }

    /// Whether the process has exited (a zombie).
    pub fn is_zombie(&self) -> bool {
        self.exit_status.is_some()
    }

    /// Whether its address space is shared with another live process (vfork).
    pub fn shares_vm(&self) -> bool {
        Rc::strong_count(&self.mm) > 1
    }
}

/// A value the nucleus may answer a system call with, without a request, once published
/// ([`publish_identity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    Pid,
    Tid,
    Ppid,
    Uid,
    Euid,
    Gid,
    Egid,
}

/// The calls answered from published values: each returns one value of the caller that
/// changes only where [`publish_identity`] is called (thread creation, exec, reparenting,
/// credential changes).
const IDENTITY_CALLS: [(&str, Identity); 7] = [
    ("getpid", Identity::Pid),
    ("gettid", Identity::Tid),
    ("getppid", Identity::Ppid),
    ("getuid", Identity::Uid),
    ("geteuid", Identity::Euid),
    ("getgid", Identity::Gid),
    ("getegid", Identity::Egid),
];

/// [`IDENTITY_CALLS`] by number on this architecture.
pub fn identity_calls() -> Vec<(u32, Identity)> {
    IDENTITY_CALLS
        .iter()
        .filter_map(|&(name, what)| Some((abi::syscall::number(abi::syscall::CURRENT, name)? as u32, what)))
        .collect()
}

/// Publishes the identity calls' results for every thread of process `pid`, so that the
/// nucleus answers them without a round trip here; called wherever one of them changes.
/// Not with `strace=1`, which logs every call.
pub fn publish_identity(l: &Linux, pid: Pid) {
    let Some(p) = l.procs.get(&pid).filter(|_| !l.strace()) else { return };
    for t in &p.threads {
        for &(nr, what) in &l.identity_calls {
            let value = match what {
                Identity::Pid => p.pid,
                Identity::Tid => t.tid,
                Identity::Ppid => p.ppid,
                Identity::Uid => p.creds.ruid,
                Identity::Euid => p.creds.euid,
                Identity::Gid => p.creds.rgid,
                Identity::Egid => p.creds.egid,
            };
            // A thread already gone needs nothing.
            let _ = l.k.thread_publish(t.r, nr, Some(value));
        }
        if let Some((nr, clocks)) = l.clock_call {
            let _ = l.k.thread_publish_clock(t.r, nr, Some(clocks));
        }
    }
}

fn comm_of(path: &str) -> [u8; 16] {
    let mut name = [0u8; 16];
    let base = path.rsplit('/').next().unwrap_or("").as_bytes();
    let n = base.len().min(15);
    name[..n].copy_from_slice(&base[..n]);
    name
}

/// Starts pid 1: `path` with `args` after its name, the console on descriptors 0-2.
pub fn spawn_init(l: &mut Linux, path: &str, args: &[&str]) -> Result<Pid, Errno> {
    let pid = l.next_pid;
    l.next_pid += 1;
    let argv: Vec<String> = core::iter::once(path).chain(args.iter().copied()).map(String::from).collect();
    let envp = alloc::vec![
        String::from("HOME=/"),
        String::from("PATH=/bin:/sbin:/usr/bin:/usr/sbin"),
        String::from("TERM=vt100")
    ];
    let creds = Creds::default();
    let rlimits = default_rlimits();
    let image = crate::exec::load(
        l,
        &crate::exec::Runner { pid: 0, cwd: FileId(0), creds: &creds, rlimits: &rlimits },
        path,
        &argv,
        &envp,
    )?;
    let thread = l.k.thread_start(image.aspace, image.entry, image.sp).map_err(|_| Errno::ENOMEM)?;
    let mut fds = FdTable::new();
    fds.install_console(&l.releases);
    l.procs.insert(
        pid,
        Process {
            pid,
            ppid: 0,
            pgid: pid,
            sid: pid,
            aspace: image.aspace,
            mm: Rc::new(RefCell::new(image.mm)),
            threads: alloc::vec![Thread::new(thread, pid, 0)],
            fds,
            cwd: FileId(0),
            umask: 0o022,
            sigactions: [SigAction::default(); NSIG],
            pending: SigQueue::default(),
            exit_status: None,
            exe: image.exe.clone(),
            comm: comm_of(path),
            stopped: false,
            wait_event: None,
            exit_signal: signal::SIGCHLD,
            creds,
            rlimits,
            times: Times::default(),
            itimer_real: None,
            itimer_cpu: [None; 2],
            timers: Vec::new(),
            nice: 0,
            leader_exit: None,
            pdeath_signal: 0,
        },
    );
    l.threads.insert(thread.0, pid);
    publish_identity(l, pid);
    Ok(pid)
}

/// The tid of nucleus thread `t` of process `pid` (0 if it is not one of its threads), and
/// whether the process is stopped.
pub fn tid_and_stopped(l: &Linux, pid: Pid, t: ThreadRef) -> (Pid, bool) {
    match l.procs.get(&pid) {
        Some(p) => (p.threads.iter().find(|x| x.r == t).map_or(0, |t| t.tid), p.stopped),
        None => (0, false),
    }
}

/// A user fault: map the page if a VMA allows the access (growing a stack down into the room
/// below it), otherwise a signal: SIGSEGV (SEGV_MAPERR where nothing is mapped, SEGV_ACCERR
/// where the rights forbid it), SIGBUS for alignment, SIGILL, SIGFPE, SIGTRAP for the others.
pub fn on_fault(l: &mut Linux, c: &Ctx) -> Outcome {
    let (addr, pc, write, vector) = (c.args[0], c.args[1], c.args[2] != 0, c.args[3]);
    let Some(p) = l.procs.get(&c.pid) else { return Outcome::Done(-1) };
    let kind = abi::syscall::layout::fault_kind(vector, c.args[4]);
    if kind == abi::syscall::layout::FaultKind::Page {
        let page = addr & !(PAGE - 1);
        let aspace = p.aspace;
        let stack_limit = p.rlimits[RLIMIT_STACK].0;
        let mut mm = p.mm.borrow_mut();
        // A fault below a grows-down VMA extends it (within RLIMIT_STACK, keeping Linux's
        // 256-page guard gap above the mapping below).
        if mm.find(addr).is_none() {
            let above = mm.vmas.iter().filter(|v| v.start > addr).min_by_key(|v| v.start).copied();
            if let Some(v) = above.filter(|v| v.flags & VMA_GROWSDOWN != 0) {
                let prev_end = mm.vmas.iter().filter(|o| o.end <= v.start).map(|o| o.end).max().unwrap_or(0);
                let gap_ok = prev_end == 0 || page >= prev_end.saturating_add(STACK_GUARD_GAP);
                if gap_ok && v.end - page <= stack_limit {
                    mm.insert(Vma { start: page, ..v });
                }
            }
        }
        let vma = mm.find(addr).copied();
        drop(mm);
        if vma.is_some_and(|v| v.eof != 0 && page >= v.eof) {
            return signal::force_fault(l, c, SigInfo::fault(signal::SIGBUS, signal::BUS_ADRERR, addr));
        }
        let code = match vma {
            None => signal::SEGV_MAPERR,
            Some(v) => {
                let allowed = if write { v.prot.write } else { v.prot.read || v.prot.exec };
                let mapped = l.k.aspace_query(aspace, page).is_some();
                if allowed && !mapped {
                    match l.k.aspace_map(aspace, page, PAGE, v.prot) {
                        Ok(()) => return Outcome::Done(0),
                        Err(_) => {
                            // Out of memory: Linux's OOM killer would pick someone; we end this one.
                            log!("linux: pid {} out of memory at {addr:#x}", c.pid);
                            terminate(l, c.pid, signal::SIGKILL as i32);
                            return Outcome::NoReply;
                        }
                    }
                }
                signal::SEGV_ACCERR
            }
        };
        if l.strace() {
            log!("linux: pid {} segfault at {addr:#x} (pc {pc:#x}, {})", c.pid, if write { "write" } else { "read" });
        }
        return signal::force_fault(l, c, SigInfo::fault(signal::SIGSEGV, code, addr));
    }
    use abi::syscall::layout::FaultKind;
    let info = match kind {
        FaultKind::Alignment => SigInfo::fault(signal::SIGBUS, signal::BUS_ADRALN, addr),
        FaultKind::Illegal => SigInfo::fault(signal::SIGILL, signal::ILL_ILLOPN, pc),
        FaultKind::Divide => SigInfo::fault(signal::SIGFPE, signal::FPE_INTDIV, pc),
        FaultKind::FloatingPoint => SigInfo::fault(signal::SIGFPE, 0, pc),
        FaultKind::Breakpoint => SigInfo::fault(signal::SIGTRAP, signal::SI_KERNEL, 0),
        FaultKind::General => SigInfo::fault(signal::SIGSEGV, signal::SI_KERNEL, 0),
        FaultKind::Page => unreachable!("handled above"),
    };
    signal::force_fault(l, c, info)
}

/// Whether a wait status says the process was killed by a signal.
fn killed_by(status: i32) -> Option<u32> {
    (status & 0x7f != 0 && status & 0x7f != 0x7f).then_some((status & 0x7f) as u32)
}

/// Ends a process with wait status `status`: stops its threads, closes its files, frees its
/// memory (unless a vfork parent still uses it), makes it a zombie for its parent (or reaps it
/// at once when the parent does not want to wait), and hands its children to pid 1.
pub fn terminate(l: &mut Linux, pid: Pid, status: i32) {
    let Some(p) = l.procs.get_mut(&pid) else { return };
    if p.exit_status.is_some() {
        return;
    }
    p.exit_status = Some(status);
    p.stopped = false;
    p.wait_event = None;
    p.itimer_real = None;
    p.timers.clear();
    let threads = core::mem::take(&mut p.threads);
    let aspace = p.aspace;
    let shared = p.shares_vm();
    p.mm = Rc::new(RefCell::new(Mm::default()));
    let mut fds = core::mem::take(&mut p.fds);
    fds.close_all();
    crate::sys::locks::process_gone(l, pid);
    for t in &threads {
        crate::sys::futex::exit_robust(l, aspace, t);
        let (u, s) = l.k.thread_times(t.r);
        if let Some(p) = l.procs.get_mut(&pid) {
            p.times.utime += u;
            p.times.stime += s;
        }
        l.threads.remove(&t.r.0);
    }
    if shared {
        // A vfork parent still runs in this address space: only our threads go.
        for t in &threads {
            if t.clear_tid != 0 {
                let _ = l.k.aspace_write(aspace, t.clear_tid, &0u32.to_le_bytes());
                crate::sys::futex::wake(l, aspace, t.clear_tid, 1, u32::MAX);
            }
            l.k.thread_kill(t.r);
        }
    } else {
        let _ = l.k.aspace_destroy(aspace); // kills the threads too
    }
    crate::sys::futex::forget_threads(l, &threads);
    crate::sys::fifo::forget_threads(l, &threads);
    l.held.retain(|h| !threads.iter().any(|t| l.k.thread_of(h.0) == t.r));
    l.vforks.retain(|v| !threads.iter().any(|t| l.k.thread_of(v.tag) == t.r));
    crate::sys::proc::vfork_release(l, pid);
    let (ppid, pgid) = l.procs.get(&pid).map_or((0, 0), |p| (p.ppid, p.pgid));
    let children: Vec<Pid> = l.procs.values().filter(|c| c.ppid == pid).map(|c| c.pid).collect();
    let mut zombie_children = false;
    let mut death_signals = Vec::new();
    for c in &children {
        if let Some(child) = l.procs.get_mut(c) {
            child.ppid = 1;
            zombie_children |= child.is_zombie();
            if child.pdeath_signal != 0 && !child.is_zombie() {
                death_signals.push((child.pid, child.pdeath_signal));
            }
        }
    }
    for c in &children {
        publish_identity(l, *c);
    }
    for (child, sig) in death_signals {
        signal::send(l, child, sig);
    }
    if zombie_children {
        signal::send_info(l, 1, SigInfo::kernel(signal::SIGCHLD));
    }
    // Process groups this exit orphans get SIGHUP and SIGCONT if any member is stopped: ours,
    // and those of the children that just moved to init.
    let mut groups: Vec<Pid> = children.iter().filter_map(|c| l.procs.get(c).map(|p| p.pgid)).collect();
    groups.push(pgid);
    groups.sort_unstable();
    groups.dedup();
    for g in groups {
        if is_orphaned(l, g) && has_stopped_member(l, g) {
            signal::kill_group(l, g, signal::SIGHUP);
            signal::kill_group(l, g, signal::SIGCONT);
        }
    }
    if pid == 1 || ppid == 0 {
        let code = if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) };
        log!("linux: init exited with status {code}; powering off");
        l.k.poweroff(code as u32);
    }
    notify_parent_of_exit(l, pid, status);
}

/// The parent hears about an exit: SIGCHLD (or clone's exit signal) with CLD_EXITED or
/// CLD_KILLED; a parent that ignores SIGCHLD or set SA_NOCLDWAIT does not keep the zombie.
fn notify_parent_of_exit(l: &mut Linux, pid: Pid, status: i32) {
    let Some(p) = l.procs.get(&pid) else { return };
    let (ppid, exit_signal, uid) = (p.ppid, p.exit_signal, p.creds.ruid);
    let (utime, stime) = (p.times.utime, p.times.stime);
    let Some(parent) = l.procs.get(&ppid) else {
        l.procs.remove(&pid);
        return;
    };
    let act = parent.sigactions[signal::SIGCHLD as usize];
    let autoreap =
        exit_signal == signal::SIGCHLD && (act.handler == signal::SIG_IGN || act.flags & signal::SA_NOCLDWAIT != 0);
    if exit_signal != 0 && !(autoreap && act.handler == signal::SIG_IGN) {
        let (code, st) = match killed_by(status) {
            Some(sig) if status & 0x80 != 0 => (signal::CLD_DUMPED, sig as i32),
            Some(sig) => (signal::CLD_KILLED, sig as i32),
            None => (signal::CLD_EXITED, (status >> 8) & 0xff),
        };
        let info = SigInfo { signo: exit_signal, code, pid, uid, status: st, utime, stime, ..SigInfo::default() };
        signal::send_info(l, ppid, info);
    }
    if autoreap {
        reap(l, pid);
    }
}

/// Removes zombie `pid`, adding its CPU time to its parent's children's time.
pub fn reap(l: &mut Linux, pid: Pid) {
    if let Some(z) = l.procs.remove(&pid) {
        if let Some(parent) = l.procs.get_mut(&z.ppid) {
            parent.times.cutime += z.times.utime + z.times.cutime;
            parent.times.cstime += z.times.stime + z.times.cstime;
        }
    }
}

/// A process group is orphaned when no member has a parent outside the group but inside the
/// session (POSIX): nobody is left to continue it with job control.
pub fn is_orphaned(l: &Linux, pgid: Pid) -> bool {
    let mut members = l.procs.values().filter(|p| p.pgid == pgid && !p.is_zombie()).peekable();
    if members.peek().is_none() {
        return false;
    }
    !members.any(|p| {
        l.procs.get(&p.ppid).is_some_and(|parent| !parent.is_zombie() && parent.pgid != pgid && parent.sid == p.sid)
    })
}

fn has_stopped_member(l: &Linux, pgid: Pid) -> bool {
    l.procs.values().any(|p| p.pgid == pgid && p.stopped && !p.is_zombie())
}

/// Builds the child of a fork/clone whose thread has already been created. `vm` is the
/// child's address space and layout (a copy, or the parent's own for CLONE_VM).
pub fn fork_process(
    l: &mut Linux,
    parent: Pid,
    parent_tid: Pid,
    vm: (AspaceRef, Rc<RefCell<Mm>>),
    thread: ThreadRef,
    exit_signal: u32,
) -> Pid {
    let pid = l.next_pid;
    l.next_pid += 1;
    let p = l.procs.get(&parent).expect("caller exists");
    let t = p.thread(parent_tid);
    let mut th = Thread::new(thread, pid, t.map_or(0, |t| t.sigmask));
    th.altstack = t.map_or_else(AltStack::default, |t| t.altstack);
    let child = Process {
        pid,
        ppid: parent,
        pgid: p.pgid,
        sid: p.sid,
        aspace: vm.0,
        mm: vm.1,
        threads: alloc::vec![th],
        fds: p.fds.fork(),
        cwd: p.cwd,
        umask: p.umask,
        sigactions: p.sigactions,
        pending: SigQueue::default(),
        exit_status: None,
        exe: p.exe.clone(),
        comm: p.comm,
        stopped: false,
        wait_event: None,
        exit_signal,
        creds: p.creds.clone(),
        rlimits: p.rlimits,
        times: Times::default(),
        itimer_real: None,
        itimer_cpu: [None; 2],
        timers: Vec::new(),
        nice: p.nice,
        leader_exit: None,
        pdeath_signal: 0,
    };
    l.procs.insert(pid, child);
    l.threads.insert(thread.0, pid);
    publish_identity(l, pid);
    pid
}

/// The credentials of process `pid`, for permission checks (the file code).
pub fn creds(l: &Linux, pid: Pid) -> Option<&Creds> {
    l.procs.get(&pid).map(|p| &p.creds)
}

impl Process {
    /// The credentials file access is checked with (fsuid/fsgid; supplementary groups are
    /// not passed to the file servers).
    pub fn fs_cred(&self) -> Cred {
        Cred { uid: self.creds.fsuid, gid: self.creds.fsgid }
    }
}

/// Reads a NUL-terminated string from user memory (at most `max` bytes), as UTF-8.
pub fn read_cstr(l: &Linux, pid: Pid, va: u64, max: usize) -> Result<String, Errno> {
    String::from_utf8(read_cbytes(l, pid, va, max)?).map_err(|_| Errno::EINVAL)
}

/// Reads a NUL-terminated byte string from user memory (at most `max` bytes): a path, which
/// Linux takes as bytes (any but NUL and, in its components, '/').
pub fn read_cbytes(l: &Linux, pid: Pid, va: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    read_cbytes_into(l, pid, va, max, &mut out)?;
    Ok(out)
}

/// [`read_cbytes`] into `out` (emptied first), so that a caller that keeps one buffer
/// allocates nothing once it is large enough.
pub fn read_cbytes_into(l: &Linux, pid: Pid, mut va: u64, max: usize, out: &mut Vec<u8>) -> Result<(), Errno> {
    out.clear();
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    loop {
        let chunk = (PAGE - va % PAGE).min(64) as usize;
        let mut buf = [0u8; 64];
        if l.k.aspace_read(p.aspace, va, &mut buf[..chunk]).is_err() {
            populate(l, pid, va, chunk, false)?;
            l.k.aspace_read(p.aspace, va, &mut buf[..chunk]).map_err(|_| Errno::EFAULT)?;
        }
        if let Some(z) = buf[..chunk].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..z]);
            return Ok(());
        }
        out.extend_from_slice(&buf[..chunk]);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        va += chunk as u64;
    }
}

/// The little-endian word at `at` in bytes copied from user memory (0 past the end).
pub fn word_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).and_then(|w| w.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// Maps the not-yet-touched pages of `[va, va+len)` that a VMA allows (as a fault would).
pub fn populate(l: &Linux, pid: Pid, va: u64, len: usize, write: bool) -> Result<(), Errno> {
    check_user_range(l, pid, va, len, write)?;
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let end = va.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    let mm = p.mm.borrow();
    let mut page = va & !(PAGE - 1);
    while page < end {
        let v = mm.find(page).ok_or(Errno::EFAULT)?;
        if l.k.aspace_query(p.aspace, page).is_none() {
            l.k.aspace_map(p.aspace, page, PAGE, v.prot).map_err(|_| Errno::ENOMEM)?;
        }
        page += PAGE;
    }
    Ok(())
}

/// Checks that `[va, va + len)` lies in VMAs that allow writing (`write`) or reading: a cheap
/// test made *before* an operation consumes anything (a pipe read), so that a bad buffer gives
/// EFAULT and loses no data.
pub fn check_user_range(l: &Linux, pid: Pid, va: u64, len: usize, write: bool) -> Result<(), Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let end = va.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    let mm = p.mm.borrow();
    let mut page = va & !(PAGE - 1);
    while page < end {
        let v = mm.find(page).ok_or(Errno::EFAULT)?;
        if (write && !v.prot.write) || (!write && !v.prot.read) {
            return Err(Errno::EFAULT);
        }
        page = v.end.min(end.next_multiple_of(PAGE)).max(page + PAGE);
    }
    Ok(())
}

/// Copies user memory at `va` into `buf` (mapping untouched pages a VMA allows, as a fault
/// would).
pub fn read_into(l: &Linux, pid: Pid, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    if l.k.aspace_read(p.aspace, va, buf).is_err() {
        populate(l, pid, va, buf.len(), false)?;
        l.k.aspace_read(p.aspace, va, buf).map_err(|_| Errno::EFAULT)?;
    }
    Ok(())
}

pub fn read_bytes(l: &Linux, pid: Pid, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    if len > 64 << 20 {
        return Err(Errno::EINVAL);
    }
    let mut buf = alloc::vec![0u8; len];
    if l.k.aspace_read(p.aspace, va, &mut buf).is_err() {
        populate(l, pid, va, len, false)?;
        l.k.aspace_read(p.aspace, va, &mut buf).map_err(|_| Errno::EFAULT)?;
    }
    Ok(buf)
}

pub fn write_bytes(l: &Linux, pid: Pid, va: u64, data: &[u8]) -> Result<(), Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let aspace = p.aspace;
    // A kernel write must respect the user's rights: only writable VMAs.
    check_user_range(l, pid, va, data.len(), true)?;
    if l.k.aspace_write(aspace, va, data).is_err() {
        populate(l, pid, va, data.len(), true)?;
        l.k.aspace_write(aspace, va, data).map_err(|_| Errno::EFAULT)?;
    }
    Ok(())
}

pub fn read_u64(l: &Linux, pid: Pid, va: u64) -> Result<u64, Errno> {
    let b = read_bytes(l, pid, va, 8)?;
    Ok(u64::from_le_bytes(b.try_into().map_err(|_| Errno::EFAULT)?))
}

pub fn read_u32(l: &Linux, pid: Pid, va: u64) -> Result<u32, Errno> {
    let b = read_bytes(l, pid, va, 4)?;
    Ok(u32::from_le_bytes(b.try_into().map_err(|_| Errno::EFAULT)?))
}
