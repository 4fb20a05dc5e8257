//! The server runtime: the only door from a server to the nucleus.
//!
//! Servers are `#![deny(unsafe_code)]` crates that run as nucleus tasks in the shared kernel
//! address space. They must not depend on the nucleus (DESIGN §2), so the nucleus installs an
//! implementation of [`Kernel`] here at boot and servers call through it: synchronous IPC
//! (`call`, `receive`, `reply_and_receive`), the name service (`lookup`), time, logging, device
//! access for drivers (opening a device, its interrupt as notification bits, DMA memory), and —
//! for the supervisor only — death notices and spawning. Every call is checked by the nucleus
//! against the calling task's capabilities; nothing here is trusted.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod dedup;

pub use ipc::msg::{GRANT_READ, GRANT_WRITE};
pub use ipc::{CapRef, Cqe, GrantRef, IpcError, Sqe};

/// Copies `len` bytes at `offset` of request `tag`'s grant into a new vector.
pub fn grant_bytes(tag: u64, offset: u64, len: usize) -> Result<alloc::vec::Vec<u8>, IpcError> {
    let mut v = alloc::vec![0u8; len];
    kernel().grant_read(tag, offset, &mut v)?;
    Ok(v)
}

/// Writes a plain-data structure at `offset` of request `tag`'s grant.
pub fn grant_put<T: zerocopy::IntoBytes + zerocopy::Immutable>(
    tag: u64,
    offset: u64,
    value: &T,
) -> Result<(), IpcError> {
    kernel().grant_write(tag, offset, value.as_bytes())
}

/// Reads a plain-data structure at `offset` of request `tag`'s grant.
pub fn grant_get<T: zerocopy::FromBytes + zerocopy::IntoBytes>(tag: u64, offset: u64) -> Result<T, IpcError> {
    let mut v = T::new_zeroed();
    kernel().grant_read(tag, offset, v.as_mut_bytes())?;
    Ok(v)
}

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

/// A fault a server can be made to suffer on purpose (fault injection). `Kill` takes effect at
/// once, wherever the server is; the others happen in the server's own context the next time it
/// enters the nucleus (every server does so to receive, call or reply), so they are what its own
/// bug would look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Killed from outside, as by `kill_task`.
    Kill,
    /// A read of an unmapped kernel address, executed by the server itself.
    BadAccess,
    /// A panic in the server.
    Panic,
    /// The server stops answering (it sleeps forever); the nucleus's deadline notices.
    Hang,
}

impl FaultKind {
    /// The names the guest's `/sys/kernel/servers/<name>/fault` file takes.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        Some(match name {
            "kill" => FaultKind::Kill,
            "fault" => FaultKind::BadAccess,
            "panic" => FaultKind::Panic,
            "hang" => FaultKind::Hang,
            _ => return None,
        })
    }
}

/// A fault-injection command, as the guest's `/sys/kernel/servers/<name>/fault` file and the
/// host's control port (`nucleus::control`) take it: a [`FaultKind`] by name, now;
/// `random <period_ms> [seed]`, kills at random intervals averaging the period; `stop`, no more
/// random kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultCommand {
    Now(FaultKind),
    Random { period_ms: u64, seed: u64 },
    Stop,
}

impl FaultCommand {
    pub fn parse(text: &str) -> Option<FaultCommand> {
        let mut words = text.split_whitespace();
        let command = match words.next()? {
            "random" => {
                let period_ms = words.next()?.parse::<u64>().ok().filter(|&p| p > 0)?;
                let seed = match words.next() {
                    Some(w) => w.parse::<u64>().ok()?,
                    None => 1,
                };
                FaultCommand::Random { period_ms, seed }
            }
            "stop" => FaultCommand::Stop,
            kind => FaultCommand::Now(FaultKind::from_name(kind)?),
        };
        words.next().is_none().then_some(command)
    }
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
    /// Pages of DMA memory its live instance holds.
    pub dma_pages: usize,
}

/// A class of device a server may drive (its spec's `devices` list). The nucleus found the
/// devices at boot; a server opens one of a class it is allowed ([`Kernel::device_open`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceClass {
    /// The boot console's UART, for its receive interrupt (output stays with the nucleus's
    /// log and `console_write`; bytes are read with `console_read`).
    Console,
    /// A virtio device of this virtio device type ([`VIRTIO_BLOCK`], ...).
    Virtio(u32),
}

/// The virtio device type of a block device.
pub const VIRTIO_BLOCK: u32 = 2;

/// A device this server has opened: an index into the nucleus's device table, valid until the
/// server closes it or dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceRef(pub u32);

/// Where a device sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceBus {
    /// The console (no registers of its own for servers).
    Console,
    /// A PCI function (configuration space through [`Kernel::pci_config_read`]).
    Pci { bus: u8, device: u8, function: u8 },
    /// A memory-mapped device (its window is `regions[0]`).
    Mmio,
}

/// What the nucleus knows about a device.
#[derive(Clone, Copy, Debug)]
pub struct DeviceInfo {
    pub class: DeviceClass,
    pub bus: DeviceBus,
    /// Physical register windows `(start, len)` (PCI memory BARs by index; `(0, 0)` = none).
    /// [`Kernel::device_mmio`] gives their mapped addresses to the server that opened it.
    pub regions: [(u64, u64); 6],
    /// Whether it has an interrupt line (which [`Kernel::irq_bind`] can bind).
    pub has_irq: bool,
    /// Interrupts taken on its line so far.
    pub irq_count: u64,
}

/// Physically contiguous memory a device may read and write ([`Kernel::dma_alloc`]): the
/// physical address to give the device and the (direct-map) address the driver uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaRegion {
    pub paddr: u64,
    pub vaddr: u64,
    pub pages: usize,
}

/// Memory accounting, for leak checks.
/// The vDSO (`arch::vdso`): its ELF image, mapped as it is, and the words of the data page
/// mapped just below it.
#[derive(Clone, Copy, Debug)]
pub struct Vdso {
    pub image: &'static [u8],
    pub data: [u64; 4],
}

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
    /// Size of the state area that survives this server's death (0: none). See
    /// [`Kernel::state_commit`].
    pub state_bytes: u64,
    /// The classes of device it may open and drive (its device capabilities). An `autostart`
    /// server with a non-empty list starts only if a device of one of them exists.
    pub devices: &'static [DeviceClass],
    /// Most DMA memory it may hold at once ([`Kernel::dma_alloc`]; 0: none).
    pub dma_bytes: u64,
}

/// One write of a state-area commit ([`Kernel::state_commit`]).
#[derive(Clone, Copy, Debug)]
pub enum StateWrite<'a> {
    /// Copy `data` to `offset`.
    Bytes { offset: u64, data: &'a [u8] },
    /// Zero `len` bytes at `offset` (whole pages are given back to the system).
    Zero { offset: u64, len: u64 },
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

/// Which clock ids (bit `n` = clock `n`, below 16) a published clock call reads from the
/// nucleus's monotonic clock and which from its real-time clock (`Kernel::thread_publish_clock`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockCall {
    pub monotonic: u16,
    pub realtime: u16,
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
    /// [`reply_and_receive_timeout`](Kernel::reply_and_receive_timeout) with the next request
    /// written into `next` (`Ok(true)`; `Ok(false)` when the time is up, `next` untouched):
    /// the nucleus copies the request once, straight from the caller's submission, instead of
    /// returning it through several frames. `ns == u64::MAX` waits for good. What serving
    /// loops on the fast path use.
    fn reply_and_receive_into(&self, reply: &Cqe, ns: u64, next: &mut Sqe) -> Result<bool, IpcError> {
        let r = if ns == u64::MAX {
            self.reply_and_receive(reply).map(Some)
        } else {
            self.reply_and_receive_timeout(reply, ns)
        };
        Ok(r?.map(|r| *next = r).is_some())
    }
    /// Answers request `tag` without waiting.
    fn reply(&self, reply: &Cqe) -> Result<(), IpcError>;
    /// Copies out of the memory granted with request `tag` (which this server is serving),
    /// starting `offset` bytes into the grant. Fails with `BadGrant` once the request is answered.
    fn grant_read(&self, tag: u64, offset: u64, buf: &mut [u8]) -> Result<(), IpcError>;
    /// Copies into the memory granted with request `tag` (if the grant allows writing).
    fn grant_write(&self, tag: u64, offset: u64, buf: &[u8]) -> Result<(), IpcError>;
    /// Sets notification `bits` on the server behind `cap`; it receives them as a message with
    /// opcode [`ipc::msg::NOTIFICATION`] (bits in `args[0]`). Never blocks; bits accumulate.
    fn notify(&self, cap: CapRef, bits: u64) -> Result<(), IpcError>;
    /// This server's index in the server table and its instance number (1 = first start).
    fn whoami(&self) -> (usize, u32);
    /// Size of this server's state area (0: none).
    fn state_size(&self) -> u64;
    /// Copies out of this server's state area (never-written bytes read as zeros).
    fn state_read(&self, offset: u64, buf: &mut [u8]) -> Result<(), IpcError>;
    /// Applies `writes` to this server's state area atomically: a death of this server happens
    /// before or after the whole commit, never inside it. `NoMemory` leaves the area unchanged.
    fn state_commit(&self, writes: &[StateWrite]) -> Result<(), IpcError>;
    /// Copies `len` bytes at `state_offset` of this server's state area into the grant of
    /// request `tag` (which it is serving) at `grant_offset`, without passing through the
    /// server's memory (a RAM file system answering a read from the pages that hold the file).
    /// `BadGrant` if either range is out of bounds or the grant is not writable; `Fault` for
    /// unmapped user memory.
    fn state_to_grant(&self, tag: u64, grant_offset: u64, state_offset: u64, len: u64) -> Result<(), IpcError>;
    /// A capability for the endpoint named `name`, if this server may call it. Looking the same
    /// name up again refreshes the same slot (after a restart) instead of using a new one.
    fn lookup(&self, name: &str) -> Result<CapRef, IpcError>;
    fn yield_now(&self);
    fn sleep_ns(&self, ns: u64);
    fn now_ns(&self) -> u64;
    /// Wall-clock time: nanoseconds since the Unix epoch.
    fn realtime_ns(&self) -> u64;
    /// The vDSO for user processes and the words of its data page.
    fn vdso(&self) -> Vdso;
    fn log(&self, args: fmt::Arguments);
    /// A word of the kernel command line (`key=value`, before any `--`).
    fn cmdline_get(&self, key: &str) -> Option<&'static str>;
    /// The kernel command line after its first `--` word: init's arguments (empty if none).
    fn cmdline_init_args(&self) -> &'static str;
    /// Makes this task suffer `kind` now.
    fn fault_self(&self, kind: FaultKind) -> !;
    /// Arranges for server `name` to suffer `kind` after `after_ns` (fault injection).
    fn inject(&self, name: &str, kind: FaultKind, after_ns: u64) -> Result<(), IpcError>;
    /// Kills server `name` at pseudo-random intervals averaging `period_ms` (reproducible by
    /// `seed`) from now on; `period_ms` 0 stops it. Returns the kills of the injection it ends.
    fn inject_random(&self, name: &str, period_ms: u64, seed: u64) -> Result<u64, IpcError>;
    fn mem_stats(&self) -> MemStats;
    /// Turns IPC tracing on or off at run time; returns whether it was on.
    fn set_tracing(&self, on: bool) -> bool;
    /// Whether IPC tracing is on.
    fn tracing(&self) -> bool;
    /// Ends the machine (test drivers): prints the power-off marker.
    fn poweroff(&self, code: u32) -> !;

    // Device drivers (servers whose spec lists `devices`). A device is opened by one live
    // server at a time; when that server dies, the nucleus masks and unbinds its interrupt
    // line, resets the device (so it stops reading and writing memory), and only then frees the
    // server's DMA memory and arena.
    /// Opens the `nth` device of `class` (0 = the first) for this server. `NotPermitted` if the
    /// spec does not list the class, `NoSuchCap` if there is no such device, `Busy` if another
    /// live server has it. A PCI device gets memory decoding and bus mastering enabled.
    fn device_open(&self, class: DeviceClass, nth: usize) -> Result<(DeviceRef, DeviceInfo), IpcError>;
    /// Closes a device this server opened: its line is masked and unbound, the device reset.
    fn device_close(&self, dev: DeviceRef) -> Result<(), IpcError>;
    /// What the nucleus knows about a device this server opened.
    fn device_info(&self, dev: DeviceRef) -> Result<DeviceInfo, IpcError>;
    /// The kernel virtual address (uncached) of `len` bytes of register window at physical
    /// `paddr`, which must lie inside a region of a device this server opened.
    fn device_mmio(&self, paddr: u64, len: u64) -> Result<u64, IpcError>;
    /// Reads a 32-bit PCI configuration register (`offset` aligned, < 256) of a device this
    /// server opened.
    fn pci_config_read(&self, dev: DeviceRef, offset: u16) -> Result<u32, IpcError>;
    /// Writes one; the BARs and the ROM address accept only the sizing pattern (all ones) and
    /// their boot-time value, so a driver can size them but not move them.
    fn pci_config_write(&self, dev: DeviceRef, offset: u16, value: u32) -> Result<(), IpcError>;
    /// Binds the device's interrupt line: each interrupt sets `bits` (non-zero) on this server
    /// (a notification, waking it) and leaves the line masked until [`Kernel::irq_ack`]. For
    /// the console this also turns the UART's receive interrupt on.
    fn irq_bind(&self, dev: DeviceRef, bits: u64) -> Result<(), IpcError>;
    /// Says the device has been serviced: the line is unmasked (once every driver sharing it
    /// has acknowledged).
    fn irq_ack(&self, dev: DeviceRef) -> Result<(), IpcError>;
    /// `pages` of zeroed, physically contiguous memory for DMA, accounted to this server
    /// (within its spec's `dma_bytes`) and freed when it dies.
    fn dma_alloc(&self, pages: usize) -> Result<DmaRegion, IpcError>;
    /// Frees a region from [`Kernel::dma_alloc`] (named by its physical address).
    fn dma_free(&self, paddr: u64) -> Result<(), IpcError>;
    /// The physical address of `len` bytes at `vaddr`, which must lie inside one of this
    /// server's DMA regions (what a driver hands the device).
    fn dma_phys(&self, vaddr: u64, len: u64) -> Result<u64, IpcError>;

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
    /// Publishes (`Some`) or withdraws (`None`) the result system call `nr` has for thread `t`
    /// until the server changes it (getpid, getuid...): the nucleus then answers that call
    /// itself, without a request. The server must republish whenever the value changes; a
    /// number that shares its entry with another (they are few) just keeps coming to the server.
    fn thread_publish(&self, t: ThreadRef, nr: u32, value: Option<u32>) -> Result<(), MemError>;
    /// Publishes (`Some`) or withdraws (`None`) system call `nr` as a clock read for thread
    /// `t` (clock_gettime): the nucleus answers it itself when its first argument names a
    /// clock of `ClockCall` and the 16-byte `struct timespec` at its second argument is
    /// writable by the thread right now; anything else still comes to the server.
    fn thread_publish_clock(&self, t: ThreadRef, nr: u32, clocks: Option<ClockCall>) -> Result<(), MemError>;
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
    /// Frees server `server`'s state area, so that its next instance starts afresh (a reset).
    fn state_discard(&self, server: usize) -> Result<(), IpcError>;
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

/// Request ids ([`Sqe::rid`]) for at-most-once execution across server restarts: unique per
/// originating server instance (server index and instance number in the high bits, a counter
/// below), so that a restarted server's dedup records never match a different request.
pub struct RequestIds {
    base: u64,
    next: u64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        let (server, instance) = kernel().whoami();
        RequestIds { base: ((server as u64 & 0xff) << 56) | ((instance as u64 & 0xff_ffff) << 32), next: 0 }
    }

    /// A fresh request id (never 0).
    pub fn fresh(&mut self) -> u64 {
        self.next = (self.next + 1) & 0xffff_ffff;
        if self.next == 0 {
            self.next = 1;
        }
        self.base | self.next
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
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

/// [`call_named`] with a memory: the capability of each endpoint the client calls, looked up
/// once and again only after a call finds its server dead or restarted (a lookup compares
/// names with every endpoint's: a fifth of a small request's cost in the nucleus). One per
/// client server, in its own state: servers share the address space, not their capabilities.
#[derive(Default)]
pub struct Endpoints {
    caps: core::cell::RefCell<alloc::vec::Vec<(&'static str, CapRef)>>,
}

impl Endpoints {
    /// Calls endpoint `name` like [`call_named`].
    pub fn call(&self, name: &'static str, req: &Sqe, attempts: u32) -> Result<Cqe, IpcError> {
        let k = kernel();
        let mut last = IpcError::ServerDied;
        for i in 0..attempts {
            let result = self.cap(name).and_then(|cap| k.call(cap, req));
            match result {
                Err(e @ (IpcError::ServerDied | IpcError::StaleGeneration | IpcError::NoSuchCap)) => {
                    // Looked up again next time: the endpoint may have a new generation.
                    self.caps.borrow_mut().retain(|(n, _)| !Self::same(n, name));
                    last = e;
                    retry_pause(i);
                }
                r => return r,
            }
        }
        Err(last)
    }

    fn same(a: &str, b: &str) -> bool {
        core::ptr::eq(a, b) || a == b
    }

    fn cap(&self, name: &'static str) -> Result<CapRef, IpcError> {
        // By address first: callers name endpoints with the same `'static` strings call after
        // call, so the common lookup compares no bytes (names of equal length would each
        // cost a `memcmp`).
        let caps = self.caps.borrow();
        let hit = caps.iter().find(|(n, _)| core::ptr::eq(*n, name)).or_else(|| caps.iter().find(|(n, _)| *n == name));
        if let Some(&(_, cap)) = hit {
            return Ok(cap);
        }
        drop(caps);
        let cap = kernel().lookup(name)?;
        self.caps.borrow_mut().push((name, cap));
        Ok(cap)
    }
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

#[cfg(test)]
mod fault_command_tests {
    use super::{FaultCommand, FaultKind};

    #[test]
    fn parses_what_the_guest_file_and_the_host_channel_take() {
        assert_eq!(FaultCommand::parse("kill\n"), Some(FaultCommand::Now(FaultKind::Kill)));
        assert_eq!(FaultCommand::parse(" fault "), Some(FaultCommand::Now(FaultKind::BadAccess)));
        assert_eq!(FaultCommand::parse("random 30 7"), Some(FaultCommand::Random { period_ms: 30, seed: 7 }));
        assert_eq!(FaultCommand::parse("random 30"), Some(FaultCommand::Random { period_ms: 30, seed: 1 }));
        assert_eq!(FaultCommand::parse("stop"), Some(FaultCommand::Stop));
        for bad in ["", "explode", "random", "random 0 1", "random x", "random 5 y", "kill now", "stop 3"] {
            assert_eq!(FaultCommand::parse(bad), None, "{bad:?}");
        }
    }
}
