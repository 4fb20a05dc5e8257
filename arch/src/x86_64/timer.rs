//! Time: the TSC, calibrated against the PIT at boot, is the clock source (`now_ns`); the local
//! APIC timer in periodic mode is the tick.

use super::io::rdtsc;
use core::sync::atomic::{AtomicU64, Ordering};

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TICK_HZ: AtomicU64 = AtomicU64::new(0);

/// Calibrates the clock, then starts the periodic tick at `hz` (interrupts stay masked until
/// the nucleus enables them).
pub fn start_periodic(hz: u32) {
    if TSC_HZ.load(Ordering::Relaxed) == 0 {
        calibrate_clock();
    }
    super::apic::start_timer(hz);
    TICK_HZ.store(hz as u64, Ordering::Relaxed);
}

fn calibrate_clock() {
    let t0 = rdtsc();
    let ns = super::apic::pit_wait_10ms();
    let t1 = rdtsc();
    let hz = ((t1 - t0) as u128 * 1_000_000_000 / ns.max(1) as u128) as u64;
    TSC_AT_BOOT.store(t0, Ordering::Relaxed);
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
    SCALE.set(hz.max(1), t0);
}

/// The counter-to-nanoseconds scale.
static SCALE: crate::clock::Scale = crate::clock::Scale::new();

/// The clock as user mode computes it from the counter it may read (TSC / CNTVCT_EL0):
/// the counter at boot and the 32.32 ns-per-tick multiplier (0 before calibration).
pub fn user_clock() -> (u64, u64) {
    SCALE.params()
}

/// The clock counter as read, with no arithmetic (what trace records carry; [`user_clock`]
/// converts it).
#[inline]
pub fn clock_counter() -> u64 {
    rdtsc()
}

/// Monotonic nanoseconds since the clock was calibrated (0 before).
pub fn now_ns() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    if hz == 0 {
        return 0;
    }
    SCALE.to_ns(SCALE.ticks(rdtsc()))
}

/// Clock-source frequency in Hz (TSC).
pub fn clock_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// The tick rate last programmed.
pub fn tick_hz() -> u64 {
    TICK_HZ.load(Ordering::Relaxed)
}
