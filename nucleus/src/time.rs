//! The tick count and sleeping on it.

use core::sync::atomic::{AtomicU64, Ordering};

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Called from the timer interrupt.
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Wall-clock seconds at boot (from the RTC), and the monotonic time they were read at.
static EPOCH_S: AtomicU64 = AtomicU64::new(0);
static EPOCH_AT_NS: AtomicU64 = AtomicU64::new(0);
/// Used when no RTC answers: 2026-11-19 (so that file times are plausible, not 1970).
const FALLBACK_EPOCH_S: u64 = 1_795_000_000;

/// Reads the real-time clock once (call after the timer runs).
pub fn init_realtime() {
    let now = arch::timer::now_ns();
    let secs = arch::rtc::unix_seconds().unwrap_or(FALLBACK_EPOCH_S);
    EPOCH_S.store(secs, Ordering::Relaxed);
    EPOCH_AT_NS.store(now, Ordering::Relaxed);
}

/// Nanoseconds since the Unix epoch: the monotonic clock plus a constant offset (which the
/// vDSO's data page carries too, so that user mode computes the same instant).
pub fn realtime_ns() -> u64 {
    arch::timer::now_ns().saturating_add(realtime_offset_ns())
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns.
pub fn realtime_offset_ns() -> u64 {
    EPOCH_S.load(Ordering::Relaxed).saturating_mul(1_000_000_000).saturating_sub(EPOCH_AT_NS.load(Ordering::Relaxed))
}
