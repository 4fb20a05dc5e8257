//! Latency statistics and the formatting of times.
//!
//! Percentiles use the nearest-rank method: the p-th percentile of n sorted samples is the
//! sample of rank ⌈p·n/100⌉ (1-based). So p50 of [1, 2, 3, 4] is 2, every percentile of one
//! sample is that sample, p100 is the maximum, and a percentile is always a value that was
//! actually measured (never an interpolation). Integer arithmetic only, so results are exact
//! and reproducible.
//!
//! Durations print with a unit chosen by magnitude (`850 ns`, `12.3 us`, `4.56 ms`,
//! `1.234 s`); instants print as milliseconds since boot with all nanosecond digits
//! (`1.000250 ms`), so two events can always be ordered by reading them.

/// Summary of a set of durations, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median (nearest rank).
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
    /// Sum of the samples.
    pub total: u64,
}

/// The `p`-th percentile (0..=100) of `sorted`, which must be sorted ascending and non-empty.
pub fn percentile(sorted: &[u64], p: u32) -> u64 {
    let n = sorted.len();
    let rank = (p as usize * n).div_ceil(100).max(1);
    sorted[rank.min(n) - 1]
}

/// The summary of `samples` (in any order), or `None` if there are none.
pub fn summarize(samples: &[u64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    Some(Summary {
        count: sorted.len(),
        p50: percentile(&sorted, 50),
        p90: percentile(&sorted, 90),
        p99: percentile(&sorted, 99),
        max: *sorted.last().unwrap_or(&0),
        total: sorted.iter().fold(0u64, |a, &b| a.saturating_add(b)),
    })
}

/// A duration with a unit chosen by magnitude.
pub fn fmt_ns(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} us", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

/// An instant, as milliseconds since boot with nanosecond digits.
pub fn fmt_at(ns: u64) -> String {
    format!("{}.{:06} ms", ns / 1_000_000, ns % 1_000_000)
}

/// `part` as a percentage of `whole`, one decimal.
pub fn fmt_pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        assert_eq!(summarize(&[]), None);
        let one = summarize(&[7]).unwrap();
        assert_eq!((one.p50, one.p90, one.p99, one.max, one.total), (7, 7, 7, 7, 7));
        let s = summarize(&[4, 1, 3, 2]).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max, s.count), (2, 4, 4, 4, 4));
        let hundred: Vec<u64> = (1..=100).rev().collect();
        let s = summarize(&hundred).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50, 90, 99, 100));
        assert_eq!(percentile(&[1, 2, 3], 0), 1);
        assert_eq!(percentile(&[1, 2, 3], 100), 3);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(850), "850 ns");
        assert_eq!(fmt_ns(12_340), "12.3 us");
        assert_eq!(fmt_ns(4_560_000), "4.56 ms");
        assert_eq!(fmt_ns(1_234_000_000), "1.234 s");
        assert_eq!(fmt_at(1_000_250), "1.000250 ms");
        assert_eq!(fmt_pct(1, 4), "25.0%");
        assert_eq!(fmt_pct(1, 0), "-");
    }
}
