//! Property test of the ring under real threads: many producers and consumers over random
//! capacities and counts; nothing is lost, nothing is duplicated, and every consumer sees each
//! producer's values in increasing order.

use ipc::Ring;
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

fn run<const N: usize>(producers: u64, consumers: usize, per_producer: u64) {
    let ring: Arc<Ring<u64, N>> = Arc::new(Ring::new());
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let cons: Vec<_> = (0..consumers)
        .map(|_| {
            let (ring, done, seen) = (ring.clone(), done.clone(), seen.clone());
            thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    match ring.try_pop() {
                        Some(v) => mine.push(v),
                        None if done.load(Ordering::Acquire) => {
                            if let Some(v) = ring.try_pop() {
                                mine.push(v);
                                continue;
                            }
                            break;
                        }
                        None => thread::yield_now(),
                    }
                }
                // Per producer, this consumer saw increasing sequence numbers.
                let mut last = vec![None; 64];
                for v in &mine {
                    let (p, s) = ((v >> 32) as usize, v & 0xffff_ffff);
                    if let Some(prev) = last[p] {
                        assert!(s > prev, "order broken for producer {p}");
                    }
                    last[p] = Some(s);
                }
                seen.lock().unwrap().extend(mine);
            })
        })
        .collect();
    let prods: Vec<_> = (0..producers)
        .map(|p| {
            let ring = ring.clone();
            thread::spawn(move || {
                for s in 0..per_producer {
                    let mut v = (p << 32) | s;
                    while let Err(back) = ring.try_push(v) {
                        v = back;
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    prods.into_iter().for_each(|h| h.join().unwrap());
    done.store(true, Ordering::Release);
    cons.into_iter().for_each(|h| h.join().unwrap());
    let mut all = seen.lock().unwrap().clone();
    assert_eq!(all.len() as u64, producers * per_producer, "lost or duplicated messages");
    all.sort();
    all.dedup();
    assert_eq!(all.len() as u64, producers * per_producer, "duplicated messages");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn no_loss_no_duplication_order_per_producer(producers in 1u64..5, consumers in 1usize..5, per in 1u64..3000) {
        run::<4>(producers, consumers, per);
        run::<64>(producers, consumers, per);
    }
}
