//! The spans a timeline draws, and their packing into rows that nest properly.
//!
//! Both exports show the same spans: a syscall from enter to exit on its user thread's lane,
//! and a request from receive to reply (or death) on the lane of the server task that
//! received it. A request nobody received is drawn from its send on a lane of its endpoint,
//! so that it is still visible. Spans that never ended run to the end of the trace and are
//! marked `open`.
//!
//! Chrome's complete events (and a readable SVG) need the spans of one row to be properly
//! nested: any two are either disjoint or one contains the other. A server handling two
//! requests at once breaks that, so [`pack`] splits a lane into rows: each span goes in the
//! first row where it nests, else in a new row. Invariant: within a row, spans sorted by
//! start form a well-parenthesised sequence; every span is in exactly one row.

use crate::model::{Analysis, Outcome};
use std::collections::BTreeMap;

/// The lane a span is drawn in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// A task slot.
    Task(u32),
    /// Requests on this endpoint that no task received.
    Endpoint(u32),
}

/// What a span stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanOf {
    /// A syscall ([`Analysis::syscalls`] index).
    Syscall(usize),
    /// A request ([`Analysis::requests`] index).
    Request(usize),
}

/// One bar of the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Where it is drawn.
    pub lane: Lane,
    /// Start, ns.
    pub start: u64,
    /// End, ns (the trace end if it never ended).
    pub end: u64,
    /// Whether it never ended within the trace.
    pub open: bool,
    /// What it stands for.
    pub of: SpanOf,
    /// Row within the lane, set by [`pack`].
    pub row: usize,
}

/// The spans of `a`, unpacked (all in row 0), in time order.
pub fn spans(a: &Analysis) -> Vec<Span> {
    let mut out = Vec::new();
    for (i, s) in a.syscalls.iter().enumerate() {
        let end = s.exit.map(|(ns, _)| ns).or(s.died_ns);
        out.push(Span {
            lane: Lane::Task(s.task),
            start: s.enter_ns,
            end: end.unwrap_or(a.end_ns).max(s.enter_ns),
            open: end.is_none(),
            of: SpanOf::Syscall(i),
            row: 0,
        });
    }
    for (i, r) in a.requests.iter().enumerate() {
        let (lane, start) = match r.receive {
            Some((ns, task)) => (Lane::Task(task), ns),
            None => (Lane::Endpoint(r.endpoint), r.send_ns),
        };
        let end = match r.outcome {
            Outcome::Replied { ns, .. } | Outcome::Died { ns, .. } => Some(ns),
            Outcome::Unanswered => None,
        };
        out.push(Span {
            lane,
            start,
            end: end.unwrap_or(a.end_ns).max(start),
            open: end.is_none(),
            of: SpanOf::Request(i),
            row: 0,
        });
    }
    out.sort_by_key(|s| s.start);
    out
}

/// Assigns rows so that each row of each lane nests properly; returns the row count per lane.
/// The spans end up sorted by (lane, start, longest first).
pub fn pack(spans: &mut [Span]) -> BTreeMap<Lane, usize> {
    spans.sort_by_key(|s| (s.lane, s.start, std::cmp::Reverse(s.end)));
    let mut rows_of: BTreeMap<Lane, Vec<Vec<u64>>> = BTreeMap::new();
    for span in spans.iter_mut() {
        let rows = rows_of.entry(span.lane).or_default();
        let mut placed = None;
        for (k, stack) in rows.iter_mut().enumerate() {
            while stack.last().is_some_and(|&end| end <= span.start) {
                stack.pop();
            }
            if stack.last().is_none_or(|&end| end >= span.end) {
                stack.push(span.end);
                placed = Some(k);
                break;
            }
        }
        span.row = placed.unwrap_or_else(|| {
            rows.push(vec![span.end]);
            rows.len() - 1
        });
    }
    rows_of.into_iter().map(|(lane, rows)| (lane, rows.len())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, end: u64) -> Span {
        Span { lane: Lane::Task(1), start, end, open: false, of: SpanOf::Syscall(0), row: 0 }
    }

    #[test]
    fn nested_spans_share_a_row_overlapping_ones_do_not() {
        let mut spans = vec![span(0, 100), span(10, 20), span(30, 40), span(50, 150), span(160, 170)];
        let rows = pack(&mut spans);
        let got: Vec<(u64, usize)> = spans.iter().map(|s| (s.start, s.row)).collect();
        assert_eq!(got, [(0, 0), (10, 0), (30, 0), (50, 1), (160, 0)]);
        assert_eq!(rows[&Lane::Task(1)], 2);
        for row in 0..2 {
            let in_row: Vec<&Span> = spans.iter().filter(|s| s.row == row).collect();
            for (i, a) in in_row.iter().enumerate() {
                for b in &in_row[i + 1..] {
                    let disjoint = a.end <= b.start || b.end <= a.start;
                    let nested = (a.start <= b.start && b.end <= a.end) || (b.start <= a.start && a.end <= b.end);
                    assert!(disjoint || nested, "{a:?} and {b:?} overlap in row {row}");
                }
            }
        }
    }
}
