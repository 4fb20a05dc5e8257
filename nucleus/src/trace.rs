//! IPC tracing (DESIGN §5): fixed-size binary records (`ipc::trace::TraceRecord`) written at
//! every syscall entry/exit, send/receive/reply, context switch, block/wake, death, restart and
//! fault injection, into a lock-free bounded ring, with no formatting on the hot path.
//!
//! Switchable at run time: `trace=1` on the command line or [`set_enabled`]; when off, a trace
//! point costs one relaxed atomic load. A full ring drops records and counts them; the count is
//! itself recorded (a `Dropped` record) before the next record that fits.
//!
//! Transport: where the machine has a second UART (x86_64 COM2, QEMU `-serial` given twice),
//! records stream to it as a binary stream (a header, then records) while the guest runs: the
//! idle loop drains the ring. Otherwise (AArch64 `virt`), at power-off the ring is written to
//! the console as `@@TRACE <base64>` lines preceded by `@@TRACE-NAME` lines naming tasks and
//! endpoints. The host analyzer (`ipc/analyzer`) reads either form.
//!
//! Record semantics are documented in `ipc/analyzer`; the fields filled here follow them.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ipc::trace::{StreamHeader, TraceKind, TraceRecord, RECORD_SIZE};
use ipc::Ring;
use spin::Mutex;

const CAPACITY: usize = 16384;

static ENABLED: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static RING: Ring<TraceRecord, CAPACITY> = Ring::new();

/// Names for the analyzer: the latest name seen per task slot and per endpoint.
static TASK_NAMES: Mutex<[Option<&'static str>; crate::task::MAX_TASKS]> = Mutex::new([None; crate::task::MAX_TASKS]);
static ENDPOINT_NAMES: Mutex<[Option<&'static str>; crate::endpoint::MAX_ENDPOINTS]> =
    Mutex::new([None; crate::endpoint::MAX_ENDPOINTS]);

pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Records one event (no-op when tracing is off: one load and a branch, inlined).
#[inline(always)]
pub fn record(kind: TraceKind, task: usize, endpoint: u32, opcode: u32, tag: u64, arg: u64, arg2: u64) {
    if ENABLED.load(Ordering::Relaxed) {
        record_on(kind, task, endpoint, opcode, tag, arg, arg2);
    }
}

/// The recording itself. Timestamps are raw clock ticks here (no division on the hot path)
/// and converted to nanoseconds when the ring is dumped.
#[cold]
#[inline(never)]
fn record_on(kind: TraceKind, task: usize, endpoint: u32, opcode: u32, tag: u64, arg: u64, arg2: u64) {
    let cpu = arch::cpu::current_cpu_id() as u16;
    let mut r = TraceRecord::new(kind, arch::timer::clock_ticks(), cpu, task as u32);
    r.endpoint = endpoint;
    r.opcode = opcode;
    r.tag = tag;
    r.arg = arg;
    r.arg2 = arg2;
    let dropped = DROPPED.load(Ordering::Relaxed);
    if dropped != 0 {
        let mut d = TraceRecord::new(TraceKind::Dropped, r.timestamp_ns, cpu, task as u32);
        d.arg = dropped;
        if RING.try_push(d).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        DROPPED.fetch_sub(dropped, Ordering::Relaxed);
    }
    if RING.try_push(r).is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

static STREAM_STARTED: AtomicBool = AtomicBool::new(false);
static PORT: spin::Once<bool> = spin::Once::new();

/// Whether the machine has a trace port (probed once).
fn port_present() -> bool {
    *PORT.call_once(arch::console::trace_port_present)
}

/// Whether the idle loop has records to stream (a port exists and the ring is not empty).
pub fn streamable() -> bool {
    !RING.is_empty() && port_present()
}
static STREAMED: AtomicU64 = AtomicU64::new(0);

/// Moves recorded events to the trace port while the guest runs (from the idle loop). Returns
/// false when there is no port (the records stay for the power-off dump).
pub fn stream() -> bool {
    if !port_present() {
        return false;
    }
    if !STREAM_STARTED.swap(true, Ordering::Relaxed) {
        arch::console::trace_port_write(&StreamHeader::new(1).encode());
    }
    while let Some(mut r) = RING.try_pop() {
        r.timestamp_ns = arch::timer::ticks_to_ns(r.timestamp_ns);
        arch::console::trace_port_write(&r.encode()[..RECORD_SIZE]);
        STREAMED.fetch_add(1, Ordering::Relaxed);
    }
    true
}

/// Whether anything was recorded (or lost) since the last dump.
pub fn has_records() -> bool {
    !RING.is_empty() || DROPPED.load(Ordering::Relaxed) != 0
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
/// when there is none, and empties the ring.
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
    if stream() {
        log(format_args!(
            "@@TRACE-STREAMED {} records on the trace port, {} dropped\n",
            STREAMED.load(Ordering::Relaxed),
            DROPPED.load(Ordering::Relaxed)
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
    emit(&StreamHeader::new(1).encode(), &mut pending, &mut len);
    let mut count = 0u64;
    while let Some(mut r) = RING.try_pop() {
        r.timestamp_ns = arch::timer::ticks_to_ns(r.timestamp_ns);
        emit(&r.encode()[..RECORD_SIZE], &mut pending, &mut len);
        count += 1;
    }
    if len > 0 {
        flush(&pending[..len]);
    }
    log(format_args!("@@TRACE-END {count} records, {} dropped\n", DROPPED.load(Ordering::Relaxed)));
}
