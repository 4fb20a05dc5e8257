//! Property tests of the ring.
//!
//! * Against a model: random sequences of pushes and pops on one thread behave exactly like a
//!   bounded `VecDeque` (same values, same full/empty answers, same length).
//! * Under real threads: many producers and many consumers over random capacities, counts and
//!   yield patterns. Every message is (producer id, sequence number); none may be lost, none
//!   duplicated, and every consumer must see each producer's sequence numbers increasing.

use ipc::Ring;
use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

#[derive(Clone, Copy, Debug)]
enum Op {
    Push(u32),
    Pop,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(prop_oneof![any::<u32>().prop_map(Op::Push), Just(Op::Pop)], 0..400)
}

fn matches_model<const N: usize>(ops: &[Op]) {
    let ring: Ring<u32, N> = Ring::new();
    let mut model = VecDeque::new();
    for &op in ops {
        match op {
            Op::Push(v) => {
                let expected = if model.len() < N {
                    model.push_back(v);
                    Ok(())
                } else {
                    Err(v)
                };
                assert_eq!(ring.try_push(v), expected);
            }
            Op::Pop => assert_eq!(ring.try_pop(), model.pop_front()),
        }
        assert_eq!(ring.len(), model.len());
        assert_eq!(ring.is_empty(), model.is_empty());
    }
}

const PRODUCER_SHIFT: u32 = 32;

/// Runs `producers` threads pushing `per_producer` messages each and `consumers` threads popping
/// until the producers are done and the ring is empty; `yield_every` sprinkles yields into both
/// sides so the interleavings vary. Checks loss, duplication and per-producer order.
fn threads<const N: usize>(producers: u64, consumers: usize, per_producer: u64, yield_every: u64) {
    let ring: Arc<Ring<u64, N>> = Arc::new(Ring::new());
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(producers as usize + consumers));
    let consumer_threads: Vec<_> = (0..consumers)
        .map(|_| {
            let (ring, done, start) = (ring.clone(), done.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut got = Vec::new();
                loop {
                    if let Some(v) = ring.try_pop() {
                        got.push(v);
                        if (got.len() as u64).is_multiple_of(yield_every) {
                            thread::yield_now();
                        }
                    } else if done.load(Ordering::Acquire) {
                        // All pushes have completed, so "empty" now is final (entries another
                        // consumer is mid-way through taking are that consumer's).
                        match ring.try_pop() {
                            Some(v) => got.push(v),
                            None => break,
                        }
                    } else {
                        thread::yield_now();
                    }
                }
                got
            })
        })
        .collect();
    let producer_threads: Vec<_> = (0..producers)
        .map(|p| {
            let (ring, start) = (ring.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for seq in 0..per_producer {
                    let mut message = p << PRODUCER_SHIFT | seq;
                    while let Err(back) = ring.try_push(message) {
                        assert_eq!(back, message, "a full ring hands back the same value");
                        message = back;
                        thread::yield_now();
                    }
                    if seq.is_multiple_of(yield_every) {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    producer_threads.into_iter().for_each(|h| h.join().unwrap());
    done.store(true, Ordering::Release);

    let mut all = Vec::new();
    for (c, handle) in consumer_threads.into_iter().enumerate() {
        let got = handle.join().unwrap();
        let mut last_seq: Vec<Option<u64>> = vec![None; producers as usize];
        for &message in &got {
            let (p, seq) = ((message >> PRODUCER_SHIFT) as usize, message & 0xffff_ffff);
            assert!(
                p < producers as usize && seq < per_producer,
                "consumer {c} got a message never sent: {message:#x}"
            );
            if let Some(prev) = last_seq[p] {
                assert!(seq > prev, "consumer {c} saw producer {p} go from {prev} to {seq}");
            }
            last_seq[p] = Some(seq);
        }
        all.extend(got);
    }
    assert!(ring.is_empty());
    let sent = producers * per_producer;
    all.sort_unstable();
    let received = all.len() as u64;
    all.dedup();
    assert_eq!(all.len() as u64, received, "duplicated messages");
    assert_eq!(received, sent, "lost messages");
}

proptest! {
    #[test]
    fn behaves_like_a_bounded_deque(ops in ops()) {
        matches_model::<1>(&ops);
        matches_model::<2>(&ops);
        matches_model::<4>(&ops);
        matches_model::<64>(&ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn threads_lose_nothing_duplicate_nothing_keep_producer_order(
        producers in 1u64..5,
        consumers in 1usize..5,
        per_producer in 1u64..3000,
        yield_every in 1u64..64,
    ) {
        threads::<1>(producers, consumers, per_producer / 4 + 1, yield_every);
        threads::<2>(producers, consumers, per_producer, yield_every);
        threads::<4>(producers, consumers, per_producer, yield_every);
        threads::<64>(producers, consumers, per_producer, yield_every);
    }
}

/// A longer fixed run with heavy contention on a tiny ring, beyond what the random cases reach.
#[test]
fn heavy_contention_on_a_small_ring() {
    threads::<2>(4, 4, 50_000, u64::MAX);
    threads::<8>(6, 2, 50_000, u64::MAX);
}
