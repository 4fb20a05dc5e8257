//! IPC tracing (DESIGN §5): fixed-size binary records (`ipc::trace::TraceRecord`) written at
//! every syscall entry/exit, send/receive/reply, context switch, block/wake, death, restart and
//! fault injection, into a per-CPU [`Buffer`] with no lock, no read-modify-write and no
//! formatting on the hot path: a timestamp, a room check and six stores. A [`trace!`] point of a
//! kind whose record is its arguments has its stub write the record itself
//! (`arch::trace_record!`, ~44 instructions in all; `arch::trace_record_scratch!` for the
//! nucleus's own answers, ~21); one with a hook of its own (`@hook`) saves the caller-saved
//! registers and calls Rust (~80). The nucleus runs on one CPU, so the
//! one buffer is that CPU's; records carry the CPU id. The drain hands the port the buffer's
//! own memory, up to a burst (`arch::console::trace_port_burst`, 1,365 records on a virtio
//! console) at a time, which the device reads in place: no copy, no per-record work.
//!
//! Switchable at run time: `trace=1` on the command line or [`set_enabled`]. The hot trace
//! points ([`trace!`]) are `nop`s patched into branches to their recording stubs when tracing
//! goes on (`arch::tracepoint`); the rare ones ([`record`]) test a flag. Built with the
//! `notrace` feature, every trace point is compiled out (only for measuring what the switch
//! costs when off). `tracebuf=N` caps the ring at `N` records (to exercise overflow).
//!
//! **Overflow is never silent.** A record that finds the ring full is counted; the count is
//! claimed (atomically, so a trace point interrupted by another cannot claim it twice) by the
//! next record that finds room, which first pushes a `Dropped` record carrying it. Records that
//! were taken from the ring but that the port refused are counted the same way, and the counts
//! carried by refused `Dropped` records are put back. At power-off a last `Dropped` record
//! carries whatever is still pending, so the `Dropped` records of a trace add up to exactly
//! [`lost`], which the power-off line reports.
//!
//! **Transport.** Where the machine has a trace port (`arch::console::trace_port_*`: a virtio
//! console taken at device discovery; on x86_64 COM2 without one), records stream to it while
//! the guest runs as one binary stream (a header, then records), drained always with
//! interrupts masked (so a drain is never preempted half-way) and under a try-lock (a drain
//! that finds another one running leaves):
//!
//! * by the idle loop, one batch at a time, looking for ready tasks between batches;
//! * by every timer tick, for at most [`TICK_BUDGET_NS`] (or [`HIGH_BUDGET_NS`] once the ring
//!   is past its high-water mark, half full), so that a run that never idles still streams;
//! * at power-off, everything.
//!
//! Without a port, the ring is kept for power-off, where it is written to the console as
//! `@@TRACE <base64>` lines; either way `@@TRACE-NAME` lines name tasks and endpoints. The host
//! analyzer (`ipc/analyzer`) reads both forms.
//!
//! Every record is written with interrupts masked (all trace points but the syscall exit run
//! under the scheduler lock; that one masks them itself): the buffer has one writer at a time,
//! and a tick that wrote a record in the middle of another's would write the same slot.
//!
//! Record semantics are documented in `ipc/analyzer`; the fields filled here follow them.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use ipc::trace::{StreamHeader, TraceKind, TraceRecord};
use spin::Mutex;

/// Records per CPU buffer (3 MiB): more than a timer tick's worth of a syscall-bound loop's
/// records (~17,500 for open+read+close), so that the tick's drain budget keeps up.
const CAPACITY: usize = 65536;
/// Records the idle loop streams before it looks for ready tasks again.
pub const BATCH: usize = 16;
/// Most records put on one `@@TRACE` line group of the power-off dump (about a page).
const CHUNK: usize = 85;
/// Longest a timer tick streams for (5% of a 10 ms tick).
pub const TICK_BUDGET_NS: u64 = 500_000;
/// Longest a tick streams for when the ring is at least half full (20% of a tick).
pub const HIGH_BUDGET_NS: u64 = 2_000_000;

/// Whether tracing is on: tested by [`record`]; the [`trace!`] points are patched to match
/// (`arch::tracepoint::set_sites`).
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Records lost and not yet reported by a `Dropped` record.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Records lost since boot.
static LOST: AtomicU64 = AtomicU64::new(0);
/// Usable capacity of the ring (`tracebuf=`).
static LIMIT: AtomicUsize = AtomicUsize::new(CAPACITY);
/// In a cold section after everything else the kernel touches (the linker script's "cold
/// data" rule, `docs/bench.md`): 3 MiB that must not sit between the hot statics.
#[link_section = ".bss..cold.trace_ring"]
pub(crate) static RING: Buffer = Buffer::new();
/// The slot index mask of [`RING`] (what `arch::trace_record!` stubs take).
pub(crate) const SLOT_MASK: usize = CAPACITY - 1;
const _: () = assert!(CAPACITY.is_power_of_two());

/// One CPU's trace buffer: a ring of records with one writer and one reader, both on the CPU
/// that owns it and both with interrupts masked, so that neither ever runs in the middle of the
/// other. Plain loads and stores of the two counters are then all the ordering needed: no
/// read-modify-write, no per-slot stamps (which `ipc::Ring` pays for being multi-producer).
///
/// `head` counts the records written since boot and `tail` the records taken; both only grow
/// (wrapping harmlessly: `CAPACITY` divides 2^64), and record `p` lives in slot `p % CAPACITY`.
/// Slots `tail..head` hold records not yet taken; the writer writes only slot `head` while
/// `head - tail` is under the limit (at most `CAPACITY`), and the reader touches only slots
/// below the `head` it loaded.
///
/// `end` is the one test of a writer's fast path: the `head` at which writers stop, `tail` +
/// `limit` (the ring's usable capacity, [`LIMIT`]) while no drop count waits, 0 while one does
/// (so that the next record takes the slow path, which reports the count first). A writer
/// compares `head` with it directly (no subtraction): the counters are 64-bit and would take
/// centuries to wrap. The reader raises it as it takes records; it drops to 0 only where
/// [`DROPPED`] grows, with interrupts masked, like the records.
///
/// The layout is a contract with the stubs of `arch::trace_record!`, which write records too:
/// `head` at byte 0, `tail` at 8, `end` at 16, the slots from byte 64 (checked below, with the
/// record's).
#[repr(C, align(64))]
pub(crate) struct Buffer {
    head: AtomicUsize,
    tail: AtomicUsize,
    end: AtomicUsize,
    /// The usable capacity `end` is computed with (0 until the first record's slow path).
    limit: AtomicUsize,
    /// The rest of the first cache line.
    _pad: [u64; 4],
    slots: UnsafeCell<[TraceRecord; CAPACITY]>,
}

const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Buffer, head) == 0 && offset_of!(Buffer, tail) == 8 && offset_of!(Buffer, end) == 16);
    assert!(offset_of!(Buffer, slots) == 64);
    assert!(offset_of!(TraceRecord, timestamp) == 0 && offset_of!(TraceRecord, cpu) == 8);
    assert!(offset_of!(TraceRecord, kind) == 10 && offset_of!(TraceRecord, task) == 12);
    assert!(offset_of!(TraceRecord, endpoint) == 16 && offset_of!(TraceRecord, opcode) == 20);
    assert!(offset_of!(TraceRecord, tag) == 24 && offset_of!(TraceRecord, arg) == 32);
    assert!(offset_of!(TraceRecord, arg2) == 40 && core::mem::size_of::<TraceRecord>() == 48);
};

// SAFETY: every access to `slots` follows the protocol above (one writer at `head`, one reader
// below `head`, never interleaved on the one CPU that owns the buffer); the counters are atomics.
unsafe impl Sync for Buffer {}

/// All zeros, so that the buffer lives in `.bss`, not in the kernel image (the section named
/// for [`RING`] must hold zeros only; the compiler refuses anything else).
const EMPTY: TraceRecord =
    TraceRecord { timestamp: 0, cpu: 0, kind: 0, task: 0, endpoint: 0, opcode: 0, tag: 0, arg: 0, arg2: 0 };

impl Buffer {
    const fn new() -> Buffer {
        Buffer {
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            // No room until the first record's slow path opens it (`report_dropped`, finding
            // no drop count, calls `open_room`): zeros keep the ring out of the image.
            end: AtomicUsize::new(0),
            limit: AtomicUsize::new(0),
            _pad: [0; 4],
            slots: UnsafeCell::new([EMPTY; CAPACITY]),
        }
    }

    fn len(&self) -> usize {
        self.head.load(Ordering::Acquire).wrapping_sub(self.tail.load(Ordering::Relaxed))
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `r` if `head` is below `end`.
    #[inline(always)]
    fn push_within_room(&self, r: TraceRecord) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        if head >= self.end.load(Ordering::Relaxed) {
            return false;
        }
        self.write_at(head, r);
        true
    }

    /// Opens the ring to writers again: `end` = `tail` + `limit`.
    fn open(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
        self.end.store(self.tail.load(Ordering::Relaxed).wrapping_add(limit), Ordering::Relaxed);
    }

    /// Moves `end` up with `tail`, unless the ring is closed (a drop count waits).
    fn follow_tail(&self, tail: usize) {
        if self.end.load(Ordering::Relaxed) != 0 {
            self.end.store(tail.wrapping_add(self.limit.load(Ordering::Relaxed)), Ordering::Relaxed);
        }
    }

    /// Appends `r`, unless `limit` records are already waiting.
    #[inline(always)]
    fn push(&self, r: TraceRecord, limit: usize) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        if head.wrapping_sub(self.tail.load(Ordering::Relaxed)) >= limit {
            return false;
        }
        self.write_at(head, r);
        true
    }

    /// Writes record `head` and publishes it; the caller checked that fewer than `CAPACITY`
    /// records wait (`head` below `end`, or under a limit of at most `CAPACITY`).
    #[inline(always)]
    fn write_at(&self, head: usize, r: TraceRecord) {
        // SAFETY: slot `head % CAPACITY` is in bounds and is not among the waiting ones (fewer
        // than `CAPACITY` wait: the caller's check), so the reader does not touch it until
        // `head` moves past it below; no other writer runs (the protocol of `Buffer`).
        unsafe { (self.slots.get() as *mut TraceRecord).add(head % CAPACITY).write(r) };
        self.head.store(head.wrapping_add(1), Ordering::Release);
    }

    /// Takes up to `max` of the oldest records, as many as lie contiguously in the ring: calls
    /// `f` with them, in place, and returns how many were taken.
    fn take(&self, max: usize, f: impl FnOnce(&[TraceRecord])) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let waiting = self.head.load(Ordering::Acquire).wrapping_sub(tail);
        let at = tail % CAPACITY;
        let n = waiting.min(max).min(CAPACITY - at);
        if n == 0 {
            return 0;
        }
        // SAFETY: slots `at..at + n` are in bounds and hold published records (below the
        // `head` loaded with acquire), which the writer does not touch until `tail` passes them.
        f(unsafe { core::slice::from_raw_parts((self.slots.get() as *const TraceRecord).add(at), n) });
        self.tail.store(tail.wrapping_add(n), Ordering::Release);
        self.follow_tail(tail.wrapping_add(n));
        n
    }

    /// Forgets every waiting record.
    fn clear(&self) {
        let head = self.head.load(Ordering::Acquire);
        self.tail.store(head, Ordering::Release);
        self.follow_tail(head);
    }
}

/// Names for the analyzer: the latest name seen per task slot and per endpoint.
static TASK_NAMES: Mutex<[Option<&'static str>; crate::task::MAX_TASKS]> = Mutex::new([None; crate::task::MAX_TASKS]);
static ENDPOINT_NAMES: Mutex<[Option<&'static str>; crate::endpoint::MAX_ENDPOINTS]> =
    Mutex::new([None; crate::endpoint::MAX_ENDPOINTS]);

pub fn set_enabled(on: bool) {
    let on = on && !cfg!(feature = "notrace");
    if ENABLED.swap(on, Ordering::Relaxed) != on {
        arch::tracepoint::set_sites(on);
    }
}

#[inline(always)]
pub fn enabled() -> bool {
    !cfg!(feature = "notrace") && ENABLED.load(Ordering::Relaxed)
}

/// Caps the ring at `records` (at least 2, at most its capacity).
pub fn set_limit(records: usize) {
    LIMIT.store(records.clamp(2, CAPACITY), Ordering::Relaxed);
    arch::cpu::without_interrupts(open_room);
}

/// Gives writers the room of [`LIMIT`] again if no drop count waits.
fn open_room() {
    if DROPPED.load(Ordering::Relaxed) == 0 {
        RING.open(LIMIT.load(Ordering::Relaxed));
    } else {
        RING.end.store(0, Ordering::Relaxed);
    }
}

/// Makes `n` lost records wait for a `Dropped` record: writers find no room until one is
/// written.
fn pend(n: u64) {
    if n != 0 {
        DROPPED.fetch_add(n, Ordering::Relaxed);
        RING.end.store(0, Ordering::Relaxed);
    }
}

/// Forgets every record counted as lost (the self-test's own), and gives writers their room.
fn forget_losses() {
    DROPPED.store(0, Ordering::Relaxed);
    LOST.store(0, Ordering::Relaxed);
    open_room();
}

/// Records lost since boot (every one of them reported by `Dropped` records, or pending).
pub fn lost() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// Records one event (no-op when tracing is off: one load and a branch, inlined). For trace
/// points off the hot paths (deaths, restarts, injections); hot ones use [`trace!`].
#[inline(always)]
pub fn record(kind: TraceKind, task: usize, endpoint: u32, opcode: u32, tag: u64, arg: u64, arg2: u64) {
    if enabled() {
        record_on(kind as u16, task, endpoint, opcode, tag, arg, arg2);
    }
}

/// `trace!(Kind, task [, endpoint, opcode, tag, arg, arg2])`: a trace point for hot paths
/// (fields left out are 0). When tracing is off it costs one `nop` and no register spills
/// (`arch::trace_hook!`, patched by [`set_enabled`]); with the `notrace` feature, nothing. The
/// arguments are put in registers either way, so pass values already at hand (or a pointer,
/// with a hook of its own: `trace!(@hook HOOK; a, ..)`), and leave trailing zeros out.
macro_rules! trace {
    (@hook $hook:path; $($arg:expr),+) => {
        if cfg!(feature = "notrace") {
            let _ = ($($arg,)+);
        } else {
            arch::trace_hook!($hook; $($arg),+);
        }
    };
    // A `SyscallAnswered`-shaped record (opcode and arg vary, the task is the `usize` static
    // named; endpoint and arg2 are constants, tag 0) at a site whose scratch registers are
    // free: `arch::trace_record_scratch!`.
    (@scratch $kind:ident, $task:path, $opcode:expr, $arg:expr; endpoint = $endpoint:expr, arg2 = $arg2:expr) => {
        if cfg!(feature = "notrace") {
            let _ = ($opcode, $arg);
        } else {
            arch::trace_record_scratch!(
                ipc::trace::TraceKind::$kind as u16, $crate::trace::SLOT_MASK;
                $crate::trace::RING, $crate::trace::hook::<{ ipc::trace::TraceKind::$kind as u16 }>;
                $task, $opcode, $arg; endpoint = $endpoint, arg2 = $arg2
            );
        }
    };
    ($kind:ident, $($arg:expr),+) => {
        if cfg!(feature = "notrace") {
            let _ = ($($arg,)+);
        } else {
            arch::trace_record!(
                ipc::trace::TraceKind::$kind as u16, $crate::trace::SLOT_MASK;
                $crate::trace::RING,
                $crate::trace::hook::<{ ipc::trace::TraceKind::$kind as u16 }>;
                $($arg),+
            );
        }
    };
}
pub(crate) use trace;

/// The hook of [`trace!`]: records a `K` record (called only with tracing on).
pub extern "C" fn hook<const K: u16>(task: u64, endpoint: u64, opcode: u64, tag: u64, arg: u64, arg2: u64) {
    write_record(K, task as usize, endpoint as u32, opcode as u32, tag, arg, arg2);
}

/// Appends `r` if the ring has room under [`LIMIT`] (ignoring a waiting drop count).
fn push(r: TraceRecord) -> bool {
    RING.push(r, LIMIT.load(Ordering::Relaxed))
}

/// Counts `n` records as lost, to be reported by the next `Dropped` record.
fn lose(n: u64) {
    pend(n);
    LOST.fetch_add(n, Ordering::Relaxed);
}

/// Pushes a `Dropped` record for the pending count, if there is one; false if that did not fit
/// (the count stays pending).
#[cold]
#[inline(never)]
fn report_dropped(timestamp: u64, cpu: u16, task: u32) -> bool {
    let claimed = DROPPED.swap(0, Ordering::Relaxed);
    if claimed == 0 {
        open_room();
        return true;
    }
    let mut d = TraceRecord::new(TraceKind::Dropped, timestamp, cpu, task);
    d.arg = claimed;
    if push(d) {
        open_room();
        true
    } else {
        pend(claimed);
        false
    }
}

/// A record's timestamp: the clock counter as read (the stream header says how it converts).
#[inline(always)]
fn stamp() -> u64 {
    arch::timer::clock_counter()
}

/// The recording itself, out of line for [`record`].
#[cold]
#[inline(never)]
fn record_on(kind: u16, task: usize, endpoint: u32, opcode: u32, tag: u64, arg: u64, arg2: u64) {
    write_record(kind, task, endpoint, opcode, tag, arg, arg2);
}

/// The fast path of every record: a timestamp, a room check, six stores. Anything else (no
/// room: a drop count to report first, or a full ring; see [`Buffer`]) goes to
/// [`write_slow`], a tail call, so that this path saves no registers.
#[inline(always)]
fn write_record(kind: u16, task: usize, endpoint: u32, opcode: u32, tag: u64, arg: u64, arg2: u64) {
    let cpu = arch::cpu::current_cpu_id() as u16;
    let timestamp = stamp();
    let r = TraceRecord { timestamp, cpu, kind, task: task as u32, endpoint, opcode, tag, arg, arg2 };
    if !RING.push_within_room(r) {
        let meta = cpu as u64 | (kind as u64) << 16 | (task as u64) << 32;
        write_slow(timestamp, meta, endpoint as u64 | (opcode as u64) << 32, tag, arg, arg2);
    }
}

/// [`write_record`]'s other cases, with the record's fields packed into six words (so the call
/// passes them in registers on both architectures): the pending drop count goes first, and a
/// record that finds no room is counted as lost.
#[cold]
#[inline(never)]
fn write_slow(timestamp: u64, meta: u64, endpoint_opcode: u64, tag: u64, arg: u64, arg2: u64) {
    let (cpu, task) = (meta as u16, (meta >> 32) as u32);
    let r = TraceRecord {
        timestamp,
        cpu,
        kind: (meta >> 16) as u16,
        task,
        endpoint: endpoint_opcode as u32,
        opcode: (endpoint_opcode >> 32) as u32,
        tag,
        arg,
        arg2,
    };
    // No room at all: neither the drop report nor the record fits (the common case while a
    // flood outruns the port), so skip straight to counting it.
    if RING.len() >= LIMIT.load(Ordering::Relaxed) || !report_dropped(timestamp, cpu, task) || !push(r) {
        lose(1);
    }
}

/// The tag of each task's system call in progress, as its enter record gave it (written and
/// read only with tracing on, so that the exit record needs no lock to find it).
static SYSCALL_TAGS: [AtomicU64; crate::task::MAX_TASKS] = [const { AtomicU64::new(0) }; crate::task::MAX_TASKS];

/// Notes the tag of task `task`'s system call (its enter record's).
pub fn note_syscall_tag(task: usize, tag: u64) {
    if let Some(t) = SYSCALL_TAGS.get(task) {
        t.store(tag, Ordering::Relaxed);
    }
}

/// The tag [`note_syscall_tag`] noted for `task` (0 if none).
pub fn syscall_tag(task: usize) -> u64 {
    SYSCALL_TAGS.get(task).map_or(0, |t| t.load(Ordering::Relaxed))
}

/// Records one event from a trace hook, where tracing is known to be on (no test, no call).
#[inline(always)]
pub fn emit(kind: TraceKind, task: usize, endpoint: u32, opcode: u32, tag: u64, arg: u64, arg2: u64) {
    write_record(kind as u16, task, endpoint, opcode, tag, arg, arg2);
}

/// The header of this kernel's streams: one CPU, its architecture, and the clock that turns
/// the records' counter values into nanoseconds since boot.
fn stream_header() -> StreamHeader {
    let (base, mult) = arch::timer::user_clock();
    StreamHeader::new(1, ipc::trace::TraceArch::from_name(arch::ARCH_NAME)).with_clock(base, mult)
}

/// Whether the stream header has gone out.
static STREAM_STARTED: AtomicBool = AtomicBool::new(false);
/// The drain's try-lock.
static DRAINING: AtomicBool = AtomicBool::new(false);
static STREAMED: AtomicU64 = AtomicU64::new(0);

fn port_present() -> bool {
    arch::console::trace_port_present()
}

/// Whether the idle loop has records to stream (a port exists and the ring is not empty).
pub fn streamable() -> bool {
    !RING.is_empty() && port_present()
}

/// Moves up to `max` records (and at most until `deadline_ns`, if given) from the ring to the
/// trace port, with interrupts masked. Returns how many left the ring; 0 without a port or
/// when another drain is running.
fn drain(max: usize, deadline_ns: Option<u64>) -> usize {
    arch::cpu::without_interrupts(|| {
        if DRAINING.swap(true, Ordering::Acquire) {
            return 0;
        }
        let moved = drain_locked(max, deadline_ns);
        DRAINING.store(false, Ordering::Release);
        moved
    })
}

fn drain_locked(max: usize, deadline_ns: Option<u64>) -> usize {
    if !STREAM_STARTED.load(Ordering::Relaxed) {
        if !arch::console::trace_port_write(&stream_header().encode()) {
            return 0;
        }
        STREAM_STARTED.store(true, Ordering::Relaxed);
    }
    let mut moved = 0;
    let burst = (arch::console::trace_port_burst() / ipc::trace::RECORD_SIZE).max(1);
    while moved < max {
        let (mut sent, mut carried) = (true, 0u64);
        let n = RING.take((max - moved).min(burst), |records| {
            sent = arch::console::trace_port_send(TraceRecord::slice_bytes(records));
            if !sent {
                carried = records.iter().filter(|r| r.kind == TraceKind::Dropped as u16).map(|r| r.arg).sum();
            }
        });
        if n == 0 {
            break;
        }
        if sent {
            STREAMED.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            // Lost on the way out: counted, and the counts they carried are pending again.
            lose(n as u64);
            pend(carried);
        }
        moved += n;
        if deadline_ns.is_some_and(|d| arch::timer::now_ns() >= d) {
            break;
        }
    }
    arch::console::trace_port_flush();
    moved
}

/// Streams one batch from the idle loop. Returns false when there is no port (the records stay
/// for the power-off dump).
pub fn stream() -> bool {
    if !port_present() {
        return false;
    }
    drain(BATCH, None);
    true
}

/// From the timer tick: streams for a bounded time, so that runs that never idle stream too.
pub fn on_tick() {
    if RING.is_empty() || !port_present() {
        return;
    }
    let high = RING.len() >= LIMIT.load(Ordering::Relaxed) / 2;
    let budget = if high { HIGH_BUDGET_NS } else { TICK_BUDGET_NS };
    drain(usize::MAX, Some(arch::timer::now_ns().saturating_add(budget)));
}

/// Whether anything was recorded (or lost) since the last dump.
pub fn has_records() -> bool {
    !RING.is_empty() || DROPPED.load(Ordering::Relaxed) != 0
}

/// What [`self_bench`] measured: nanoseconds (tenths) per trace point and the port's drain rate.
pub struct Bench {
    /// A trace point with tracing off, in tenths of a nanosecond.
    pub off_ns10: u64,
    /// A trace point with tracing on and room in the ring.
    pub on_ns10: u64,
    /// A trace point with tracing on and the ring full (the record is counted as dropped).
    pub full_ns10: u64,
    /// Records drained from a full ring to the port, and how long that took (0, 0: no port).
    pub drained: u64,
    pub drain_ns: u64,
}

/// Measures the trace points and the port (the `trace-bench` self-test, before any server
/// runs; interrupts masked while timing). Leaves tracing off and the ring empty, with nothing
/// counted as lost.
pub fn self_bench() -> Bench {
    const N: u64 = 4096;
    let point = |i: u64| {
        trace!(Wake, core::hint::black_box(1u64), 2u64, 3u64, i, i);
    };
    let timed = |f: &dyn Fn()| {
        arch::cpu::without_interrupts(|| {
            let t0 = arch::timer::now_ns();
            f();
            arch::timer::now_ns() - t0
        })
    };
    let empty = || RING.clear();
    let per = |ns: u64, n: u64| ns * 10 / n;
    set_enabled(false);
    let off = timed(&|| (0..N).for_each(point));
    set_enabled(true);
    let (mut on, mut rounds) = (0, 0);
    for _ in 0..8 {
        empty();
        on += timed(&|| (0..N).for_each(point));
        rounds += 1;
    }
    // Ticks must not stream while the ring is filled (the drain's try-lock keeps them out);
    // interrupts stay on otherwise: under TCG, code runs slowly while an interrupt is pending
    // but masked.
    DRAINING.store(true, Ordering::Release);
    empty();
    while push(TraceRecord::new(TraceKind::Wake, stamp(), 0, 1)) {}
    let full = timed(&|| (0..N).for_each(point));
    forget_losses();
    DRAINING.store(false, Ordering::Release);
    let (mut drained, mut drain_ns) = (0, 0);
    if port_present() {
        // Batch by batch, as the idle loop streams.
        drained = RING.len() as u64;
        let t0 = arch::timer::now_ns();
        while !RING.is_empty() {
            drain(BATCH, None);
        }
        drain_ns = arch::timer::now_ns() - t0;
    }
    set_enabled(false);
    empty();
    forget_losses();
    Bench { off_ns10: per(off, N), on_ns10: per(on, N * rounds), full_ns10: per(full, N), drained, drain_ns }
}

pub fn name_task(slot: usize, name: &'static str) {
    if enabled() {
        arch::cpu::without_interrupts(|| TASK_NAMES.lock()[slot] = Some(name));
    }
}

pub fn name_endpoint(index: usize, name: &'static str) {
    if enabled() {
        arch::cpu::without_interrupts(|| ENDPOINT_NAMES.lock()[index] = Some(name));
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of up to 57 bytes (one 76-character line).
fn base64_line(input: &[u8], out: &mut [u8; 76]) -> usize {
    let mut n = 0;
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            out[n + i] = if i <= chunk.len() { B64[((v >> (18 - 6 * i)) & 63) as usize] } else { b'=' };
        }
        n += 4;
    }
    n
}

/// Writes everything recorded so far to the trace port, or to the console (`@@TRACE` lines)
/// when there is none, and empties the ring. Called at power-off with tracing already off.
pub fn dump() {
    let log = |args: core::fmt::Arguments| crate::log::print_unlocked(args);
    log(format_args!("@@TRACE-NAME task {} idle\n", crate::task::IDLE));
    for (i, n) in TASK_NAMES.lock().iter().enumerate() {
        if let Some(n) = n {
            log(format_args!("@@TRACE-NAME task {i} {n}\n"));
        }
    }
    for (i, n) in ENDPOINT_NAMES.lock().iter().enumerate() {
        if let Some(n) = n {
            log(format_args!("@@TRACE-NAME endpoint {i} {n}\n"));
        }
    }
    let cpu = arch::cpu::current_cpu_id() as u16;
    if port_present() {
        // Everything, then the pending drop count (a refused write makes another one pending;
        // a few rounds settle it unless the port is gone for good).
        for _ in 0..4 {
            drain(usize::MAX, None);
            if DROPPED.load(Ordering::Relaxed) == 0 {
                break;
            }
            report_dropped(stamp(), cpu, crate::task::IDLE as u32);
        }
        log(format_args!(
            "@@TRACE-STREAMED {} records on the trace port, {} dropped\n",
            STREAMED.load(Ordering::Relaxed),
            lost()
        ));
        return;
    }
    let mut pending = [0u8; 57];
    let mut len = 0;
    let mut line = [0u8; 76];
    let mut flush = |bytes: &[u8]| {
        let n = base64_line(bytes, &mut line);
        log(format_args!("@@TRACE {}\n", core::str::from_utf8(&line[..n]).unwrap_or("")));
    };
    let mut emit = |bytes: &[u8], pending: &mut [u8; 57], len: &mut usize| {
        for &b in bytes {
            pending[*len] = b;
            *len += 1;
            if *len == 57 {
                flush(&pending[..]);
                *len = 0;
            }
        }
    };
    emit(&stream_header().encode(), &mut pending, &mut len);
    let mut count = 0u64;
    let mut reported = false;
    loop {
        loop {
            let n = RING.take(CHUNK, |records| emit(TraceRecord::slice_bytes(records), &mut pending, &mut len));
            if n == 0 {
                break;
            }
            count += n as u64;
        }
        // The ring is empty: the pending drop count fits now.
        if reported || !report_dropped(stamp(), cpu, crate::task::IDLE as u32) {
            break;
        }
        reported = true;
    }
    if len > 0 {
        flush(&pending[..len]);
    }
    log(format_args!("@@TRACE-END {count} records, {} dropped\n", lost()));
}
