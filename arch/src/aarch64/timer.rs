//! Time from the ARM generic timer: the virtual counter `CNTVCT_EL0` (frequency `CNTFRQ_EL0`)
//! is the clock source (`now_ns`), and the EL1 virtual timer (PPI 27 on the GIC) is the
//! periodic tick, re-armed one period ahead from the interrupt (`CNTV_CVAL_EL0`).

use super::regs::{sysreg_read, sysreg_write};
use core::sync::atomic::{AtomicU64, Ordering};

/// GIC interrupt id of the EL1 virtual timer (PPI 11).
pub const TIMER_INTID: u32 = 27;

static FREQ: AtomicU64 = AtomicU64::new(0);
static COUNT_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TICK_HZ: AtomicU64 = AtomicU64::new(0);
static INTERVAL: AtomicU64 = AtomicU64::new(0);

#[inline]
fn counter() -> u64 {
    // SAFETY: `isb` keeps the counter read from being hoisted above earlier instructions.
    unsafe { core::arch::asm!("isb", options(nomem, nostack, preserves_flags)) };
    sysreg_read!("cntvct_el0")
}

/// Records the boot time of the clock and lets EL0 read the virtual counter (as Linux does).
pub fn init_clock() {
    FREQ.store(sysreg_read!("cntfrq_el0").max(1), Ordering::Relaxed);
    COUNT_AT_BOOT.store(counter(), Ordering::Relaxed);
    SCALE.set(FREQ.load(Ordering::Relaxed), COUNT_AT_BOOT.load(Ordering::Relaxed));
    // SAFETY: CNTKCTL_EL1.EL0VCTEN only grants EL0 read access to the virtual counter.
    unsafe { sysreg_write!("cntkctl_el1", 1u64 << 1) };
}

/// Starts the periodic tick at `hz` (interrupts stay masked until the nucleus enables them).
pub fn start_periodic(hz: u32) {
    if FREQ.load(Ordering::Relaxed) == 0 {
        init_clock();
    }
    let interval = (FREQ.load(Ordering::Relaxed) / hz.max(1) as u64).max(1);
    INTERVAL.store(interval, Ordering::Relaxed);
    TICK_HZ.store(hz as u64, Ordering::Relaxed);
    // SAFETY: programming this CPU's virtual timer: compare value, then enabled and unmasked.
    unsafe {
        sysreg_write!("cntv_cval_el0", counter() + interval);
        sysreg_write!("cntv_ctl_el0", 1u64);
    }
    super::gic::enable(TIMER_INTID);
}

/// Moves the compare value one period on (which lowers the timer's level interrupt). If the
/// tick fell behind by more than a period (a slow host), it restarts from now: ticks are lost,
/// never bunched.
pub(crate) fn rearm() {
    let interval = INTERVAL.load(Ordering::Relaxed);
    let now = counter();
    let mut next = sysreg_read!("cntv_cval_el0").wrapping_add(interval);
    if next <= now {
        next = now + interval;
    }
    // SAFETY: as in `start_periodic`.
    unsafe { sysreg_write!("cntv_cval_el0", next) };
}

/// Monotonic nanoseconds since boot (0 before the clock is initialised).
pub fn now_ns() -> u64 {
    let hz = FREQ.load(Ordering::Relaxed);
    if hz == 0 {
        return 0;
    }
    SCALE.to_ns(SCALE.ticks(counter()))
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
    counter()
}

/// Clock-source frequency in Hz (`CNTFRQ_EL0`).
pub fn clock_hz() -> u64 {
    FREQ.load(Ordering::Relaxed)
}

/// The tick rate last programmed.
pub fn tick_hz() -> u64 {
    TICK_HZ.load(Ordering::Relaxed)
}
