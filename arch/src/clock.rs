//! Converting a free-running counter to nanoseconds, shared by the architectures' timers: a
//! 32.32 fixed-point multiplier computed once from the counter frequency, so that reading the
//! clock costs a multiply and a shift instead of a 128-bit division.

use core::sync::atomic::{AtomicU64, Ordering};

/// `repr(C)`: the stubs of `trace_record!` read `mult` at offset 0 and `base` at offset 8.
#[repr(C)]
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

    /// The counter value at boot and the multiplier: what user mode needs to compute the same
    /// clock (the vDSO).
    pub fn params(&self) -> (u64, u64) {
        (self.base.load(Ordering::Relaxed), self.mult.load(Ordering::Relaxed))
    }

    /// Ticks since boot for a raw counter value.
    #[inline]
    pub fn ticks(&self, raw: u64) -> u64 {
        raw.saturating_sub(self.base.load(Ordering::Relaxed))
    }

    /// Nanoseconds for `ticks` ticks since boot (0 before `set`).
    #[inline]
    pub fn to_ns(&self, ticks: u64) -> u64 {
        ((ticks as u128 * self.mult.load(Ordering::Relaxed) as u128) >> 32) as u64
    }
}

impl Default for Scale {
    fn default() -> Self {
        Self::new()
    }
}

/// Seconds since the Unix epoch of a UTC calendar date and time (days from civil, proleptic
/// Gregorian); `None` for dates before 1970 or fields out of range.
pub fn unix_seconds_from_date(year: u64, month: u64, day: u64, hour: u64, min: u64, sec: u64) -> Option<u64> {
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::unix_seconds_from_date as d;

    #[test]
    fn dates() {
        assert_eq!(d(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(d(2000, 3, 1, 0, 0, 0), Some(951_868_800));
        assert_eq!(d(2026, 12, 3, 16, 31, 59), Some(1_796_315_519));
        assert_eq!(d(1969, 12, 31, 0, 0, 0), None);
        assert_eq!(d(2024, 13, 1, 0, 0, 0), None);
    }
}
