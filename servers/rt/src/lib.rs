//! The server runtime: the only door from a server to the nucleus.
//!
//! Servers are `#![deny(unsafe_code)]` crates that run as nucleus tasks in the shared kernel
//! address space. They must not depend on the nucleus (DESIGN §2), so the nucleus installs an
//! implementation of [`Kernel`] here at boot and servers call through it: synchronous IPC
//! (`call`, `receive`, `reply_and_receive`), the name service (`lookup`), time, logging, and —
//! for the supervisor only — death notices and spawning. Every call is checked by the nucleus
//! against the calling task's capabilities; nothing here is trusted.
#![no_std]
#![deny(unsafe_code)]

pub use ipc::msg::{GRANT_READ, GRANT_WRITE};
pub use ipc::{CapRef, Cqe, GrantRef, IpcError, Sqe};

/// A grant of `buf` (this server's own memory) to the receiver of one call.
pub fn grant(buf: &[u8], rights: u32) -> GrantRef {
    GrantRef::own_memory(buf.as_ptr() as u64, buf.len() as u64, rights)
}

use core::fmt;

/// How a server wants to be treated when it dies (DESIGN rule 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart; clients retry and never notice.
    Transparent,
    /// Restart; clients with requests in flight get a clean error.
    Reset,
    /// Do not restart.
    Never,
}

/// A fault a server can be made to suffer on purpose (fault injection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Killed from outside, as by `kill_task`.
    Kill,
    /// A read of an unmapped kernel address, executed on the server's own stack.
    BadAccess,
}

/// Why a task died.
#[derive(Clone, Copy, Debug)]
pub enum DeathCause {
    /// Its code panicked; the message is truncated to fit.
    Panic { message: [u8; 96], len: usize },
    /// A CPU exception: its name, pc and fault address.
    Fault { name: &'static str, pc: u64, addr: u64 },
    /// Its stack ran into the guard page.
    StackOverflow { addr: u64 },
    /// Killed by `kill` or fault injection.
    Killed,
    /// Held a request for `ms` milliseconds without answering (the nucleus's deadline).
    Hung { ms: u64 },
    /// Its entry function returned.
    Exited,
}

impl fmt::Display for DeathCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeathCause::Panic { message, len } => {
                write!(f, "panic: {}", core::str::from_utf8(&message[..*len]).unwrap_or("<non-utf8>"))
            }
            DeathCause::Fault { name, pc, addr } => write!(f, "fault: {name} at pc={pc:#x} addr={addr:#x}"),
            DeathCause::StackOverflow { addr } => write!(f, "stack overflow (guard page hit at {addr:#x})"),
            DeathCause::Killed => write!(f, "killed"),
            DeathCause::Hung { ms } => write!(f, "hung: held a request {ms} ms without answering"),
            DeathCause::Exited => write!(f, "exited"),
        }
    }
}

/// A death notice delivered to the supervisor.
#[derive(Clone, Copy, Debug)]
pub struct DeathNotice {
    /// Index of the dead server in the server table.
    pub server: usize,
    /// The instance number that died (1 for the first start).
    pub instance: u32,
    pub cause: DeathCause,
    /// Requests that were completed with `ServerDied` because of this death.
    pub failed_requests: u32,
}

/// What the nucleus knows about one server (for `/sys/kernel/servers/<name>/status`).
#[derive(Clone, Copy, Debug)]
pub struct ServerInfo {
    /// Number of the newest instance (1 = the first start; 0 = never started).
    pub instance: u32,
    pub alive: bool,
    /// Deaths so far.
    pub deaths: u32,
    pub last_death: Option<DeathCause>,
    /// Requests now waiting on its endpoint (queued or being served).
    pub in_flight: u32,
}

/// Memory accounting, for leak checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemStats {
    pub frames_free: usize,
    pub frames_total: usize,
    pub live_tasks: usize,
    pub live_arenas: usize,
}

/// Static description of one server: everything the supervisor needs to start it.
pub struct ServerSpec {
    pub name: &'static str,
    pub entry: fn(),
    pub priority: u8,
    pub stack_bytes: u64,
    pub arena_bytes: u64,
    pub policy: RestartPolicy,
    /// Registers an endpoint under `name` that clients can `lookup`.
    pub serves: bool,
    /// Names of the endpoints this server may `lookup` (its capabilities).
    pub may_call: &'static [&'static str],
    /// Started at boot (otherwise only on request, e.g. by a test driver).
    pub autostart: bool,
    /// Receives death notices and may spawn and kill.
    pub supervisor: bool,
    /// May create address spaces and user threads (the Linux ABI server).
    pub user_memory: bool,
}

/// The reply to a system call whose registers the server replaced (execve, signal delivery,
/// rt_sigreturn): the nucleus then leaves the result register alone.
pub const REGS_SET: i64 = i64::MIN + 1;

/// Words in a thread's register array (`Kernel::thread_regs`).
pub const USER_REGS: usize = 34;

/// A user address space, as the nucleus hands it out (slot and generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AspaceRef(pub u64);

/// A user thread (a nucleus task with an address space): slot and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ThreadRef(pub u64);

/// Access rights for user pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

/// Why a user-memory operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemError {
    /// An address is outside user space or not mapped (EFAULT).
    Fault,
    /// Out of physical memory (ENOMEM).
    NoMemory,
    /// The page is already mapped (EEXIST).
    Exists,
    /// The handle names no live object (ESRCH / EBADF).
    BadHandle,
    /// The caller may not do this.
    NotPermitted,
    /// A fixed table is full (threads, address spaces): EAGAIN.
    Limit,
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a request on the Linux server's endpoint is (`Sqe::flags`).
pub mod user_request {
    /// A system call: `opcode` = number, `args` = the six arguments.
    pub const SYSCALL: u32 = 1;
    /// A page fault or other CPU exception in user mode: `args` = [address, pc, write (0/1),
    /// vector / exception class, error code / syndrome]. Reply 0 to retry the instruction; anything else kills the
    /// thread (the server normally kills the process itself first), except `REGS_SET` (a
    /// signal handler was set up in the registers).
    pub const FAULT: u32 = 2;
    /// The thread was interrupted in user mode because the server asked for it
    /// (`Kernel::thread_interrupt`: a signal to deliver, a stop): `args` = [pc]. The reply is
    /// ignored unless it is `REGS_SET`; the thread then resumes.
    pub const INTERRUPT: u32 = 3;
}

/// The nucleus services available to servers. Implemented by the nucleus.
pub trait Kernel: Sync {
    /// Sends `req` on `cap` and waits for the reply.
    fn call(&self, cap: CapRef, req: &Sqe) -> Result<Cqe, IpcError>;
    /// Waits for the next request on this server's own endpoint.
    fn receive(&self) -> Result<Sqe, IpcError>;
    /// The next request, waiting at most `ns` nanoseconds (`Ok(None)` when the time is up).
    fn receive_timeout(&self, ns: u64) -> Result<Option<Sqe>, IpcError>;
    /// The next request if one is waiting; never blocks.
    fn poll_receive(&self) -> Option<Sqe>;
    /// Answers request `tag` (from `Sqe::tag`) and waits for the next request.
    fn reply_and_receive(&self, reply: &Cqe) -> Result<Sqe, IpcError>;
    /// Answers, then waits at most `ns` for the next request (`Ok(None)` when the time is up).
    fn reply_and_receive_timeout(&self, reply: &Cqe, ns: u64) -> Result<Option<Sqe>, IpcError>;
    /// Answers request `tag` without waiting.
    fn reply(&self, reply: &Cqe) -> Result<(), IpcError>;
    /// Copies out of the memory granted with request `tag` (which this server is serving),
    /// starting `offset` bytes into the grant. Fails with `BadGrant` once the request is answered.
    fn grant_read(&self, tag: u64, offset: u64, buf: &mut [u8]) -> Result<(), IpcError>;
    /// Copies into the memory granted with request `tag` (if the grant allows writing).
    fn grant_write(&self, tag: u64, offset: u64, buf: &[u8]) -> Result<(), IpcError>;
    /// A capability for the endpoint named `name`, if this server may call it. Looking the same
    /// name up again refreshes the same slot (after a restart) instead of using a new one.
    fn lookup(&self, name: &str) -> Result<CapRef, IpcError>;
    fn yield_now(&self);
    fn sleep_ns(&self, ns: u64);
    fn now_ns(&self) -> u64;
    fn log(&self, args: fmt::Arguments);
    /// A word of the kernel command line (`key=value`).
    fn cmdline_get(&self, key: &str) -> Option<&'static str>;
    /// Makes this task suffer `kind` now.
    fn fault_self(&self, kind: FaultKind) -> !;
    /// Arranges for server `name` to suffer `kind` after `after_ns` (fault injection).
    fn inject(&self, name: &str, kind: FaultKind, after_ns: u64) -> Result<(), IpcError>;
    fn mem_stats(&self) -> MemStats;
    /// Turns IPC tracing on or off at run time; returns whether it was on.
    fn set_tracing(&self, on: bool) -> bool;
    /// Whether IPC tracing is on.
    fn tracing(&self) -> bool;
    /// Ends the machine (test drivers): prints the power-off marker.
    fn poweroff(&self, code: u32) -> !;

    // Linux ABI server only (`user_memory` in its spec).
    fn aspace_create(&self) -> Result<AspaceRef, MemError>;
    fn aspace_destroy(&self, a: AspaceRef) -> Result<(), MemError>;
    /// Maps zero-filled pages over `[va, va + len)` (page-aligned). Already mapped pages in the
    /// range are left alone (their rights are updated).
    fn aspace_map(&self, a: AspaceRef, va: u64, len: u64, prot: Prot) -> Result<(), MemError>;
    fn aspace_unmap(&self, a: AspaceRef, va: u64, len: u64) -> Result<(), MemError>;
    fn aspace_protect(&self, a: AspaceRef, va: u64, len: u64, prot: Prot) -> Result<(), MemError>;
    /// Copies user memory out; `Fault` if any byte is unmapped.
    fn aspace_read(&self, a: AspaceRef, va: u64, buf: &mut [u8]) -> Result<(), MemError>;
    /// Copies into user memory (ignoring write protection: this is the kernel writing).
    fn aspace_write(&self, a: AspaceRef, va: u64, buf: &[u8]) -> Result<(), MemError>;
    /// A copy of the whole address space (for fork), copy-on-write, except the pages of the
    /// `shared` ranges `(va, len)`, which stay shared and writable in both (MAP_SHARED).
    fn aspace_copy(&self, a: AspaceRef, shared: &[(u64, u64)]) -> Result<AspaceRef, MemError>;
    /// Moves the pages of `[from, from + len)` to `[to, to + len)` (mremap), replacing what
    /// was mapped there; nothing is copied.
    fn aspace_move(&self, a: AspaceRef, from: u64, to: u64, len: u64) -> Result<(), MemError>;
    /// The rights of page `va` if it is mapped; copy-on-write pages count as writable.
    fn aspace_query(&self, a: AspaceRef, va: u64) -> Option<Prot>;
    /// One byte per page from `va` (page-aligned): 1 where a page is mapped (mincore).
    fn aspace_resident(&self, a: AspaceRef, va: u64, out: &mut [u8]) -> Result<(), MemError>;
    /// The user thread that sent request `tag`.
    fn thread_of(&self, tag: u64) -> ThreadRef;
    /// Starts a thread in `a` at `pc` with stack `sp`.
    fn thread_start(&self, a: AspaceRef, pc: u64, sp: u64) -> Result<ThreadRef, MemError>;
    /// A new thread in `a` that resumes from the system call `tag` is in, with result 0
    /// (fork/clone's child). `sp`, if given, replaces the stack pointer; `tp` the thread pointer.
    fn thread_fork(&self, tag: u64, a: AspaceRef, sp: Option<u64>, tp: Option<u64>) -> Result<ThreadRef, MemError>;
    /// When the system call `tag` returns, the thread continues in `a` at `pc` with stack `sp`
    /// and fresh registers instead (execve).
    fn thread_exec(&self, tag: u64, a: AspaceRef, pc: u64, sp: u64) -> Result<(), MemError>;
    fn thread_set_tp(&self, t: ThreadRef, tp: u64) -> Result<(), MemError>;
    /// The user registers of the thread waiting in request `tag` (order: `abi`'s layout module).
    fn thread_regs(&self, tag: u64) -> Result<[u64; USER_REGS], MemError>;
    /// Replaces them; they take effect when the request is answered (signal delivery and return).
    fn thread_set_regs(&self, tag: u64, regs: &[u64; USER_REGS]) -> Result<(), MemError>;
    fn thread_kill(&self, t: ThreadRef);
    /// Makes thread `t` send an `INTERRUPT` request before it next runs user code (signals to
    /// a thread busy in user mode). Nothing happens if it is inside a request already: the
    /// server sees it when it answers.
    fn thread_interrupt(&self, t: ThreadRef);
    /// Makes thread `t` give up the CPU before it next runs user code (sched_yield).
    fn thread_yield(&self, t: ThreadRef);
    /// The FP/SIMD registers of the thread waiting in request `tag`, as bytes in the layout
    /// `abi`'s layout module names (`FPU_BYTES`); returns how many were written.
    fn thread_fpu(&self, tag: u64, buf: &mut [u8]) -> Result<usize, MemError>;
    /// Replaces them (effective when the request is answered).
    fn thread_set_fpu(&self, tag: u64, buf: &[u8]) -> Result<(), MemError>;
    /// CPU time charged to thread `t`: (user mode, server time serving its requests), in ns.
    fn thread_times(&self, t: ThreadRef) -> (u64, u64);
    /// Raw console output and non-blocking input (until the tty server exists).
    fn console_write(&self, bytes: &[u8]);
    fn console_read(&self, buf: &mut [u8]) -> usize;
    /// The initial root file system image (cpio newc) the boot loader provided.
    fn initrd(&self) -> &'static [u8];

    // Supervisor only.
    fn servers(&self) -> &'static [ServerSpec];
    fn wait_death(&self) -> Result<DeathNotice, IpcError>;
    fn spawn(&self, server: usize) -> Result<u32, IpcError>;
    /// Instance number and whether it is alive, per server.
    fn server_state(&self, server: usize) -> Option<(u32, bool)>;
    /// Everything known about server `server` (any server may ask).
    fn server_info(&self, server: usize) -> Option<ServerInfo>;
}

static KERNEL: spin::Once<&'static dyn Kernel> = spin::Once::new();

/// Installed once by the nucleus before the first server runs.
pub fn install(k: &'static dyn Kernel) {
    KERNEL.call_once(|| k);
}

pub fn kernel() -> &'static dyn Kernel {
    *KERNEL.get().expect("server runtime used before the nucleus installed it")
}

/// `println!` for servers.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::kernel().log(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Calls the endpoint `name`, looking it up again and retrying while its server is being
/// restarted (the client side of the *transparent* policy). Gives up after `attempts`.
pub fn call_named(name: &str, req: &Sqe, attempts: u32) -> Result<Cqe, IpcError> {
    let k = kernel();
    let mut last = IpcError::ServerDied;
    for i in 0..attempts {
        let result = k.lookup(name).and_then(|cap| k.call(cap, req));
        match result {
            Err(e @ (IpcError::ServerDied | IpcError::StaleGeneration)) => {
                last = e;
                retry_pause(i);
            }
            r => return r,
        }
    }
    Err(last)
}

/// Between retries: first just let the (higher-priority) supervisor run, then back off.
fn retry_pause(attempt: u32) {
    let k = kernel();
    if attempt < 4 {
        k.yield_now();
    } else {
        k.sleep_ns(1_000_000 << (attempt - 4).min(8));
    }
}
