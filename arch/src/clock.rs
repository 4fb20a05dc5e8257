//! Converting a free-running counter to nanoseconds, shared by the architectures' timers: a
//! 32.32 fixed-point multiplier computed once from the counter frequency, so that reading the
//! clock costs a multiply and a shift instead of a 128-bit division.

use core::sync::atomic::{AtomicU64, Ordering};

pub struct Scale {
    /// Nanoseconds per tick, times 2^32.
    mult: AtomicU64,
    /// Counter value at boot.
    base: AtomicU64,
}

impl Scale {
    pub const fn new() -> Scale {
        Scale { mult: AtomicU64::new(0), base: AtomicU64::new(0) }
    }

    pub fn set(&self, hz: u64, base: u64) {
        let mult = ((1_000_000_000u128 << 32) / hz.max(1) as u128) as u64;
        self.base.store(base, Ordering::Relaxed);
        self.mult.store(mult, Ordering::Relaxed);
    }

    /// Ticks since boot for a raw counter value.
    pub fn ticks(&self, raw: u64) -> u64 {
        raw.saturating_sub(self.base.load(Ordering::Relaxed))
    }

    /// Nanoseconds for `ticks` ticks since boot (0 before `set`).
    pub fn to_ns(&self, ticks: u64) -> u64 {
        ((ticks as u128 * self.mult.load(Ordering::Relaxed) as u128) >> 32) as u64
    }
}

impl Default for Scale {
    fn default() -> Self {
        Self::new()
    }
}
