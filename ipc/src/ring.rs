//! A bounded lock-free MPMC ring (Dmitry Vyukov's bounded queue). Every slot carries a
//! sequence number: a producer may write slot `i` of lap `n` when its sequence equals the
//! producer's position, and publishes it by storing position + 1; a consumer may read it when
//! the sequence equals position + 1, and frees it for the next lap by storing position + N.
//! Positions only grow, so a slot is never read twice nor overwritten before it is read.
//!
//! `N` must be a power of two and at least 2 (with one slot, "written this lap" and "free for
//! the next lap" would be the same sequence number). Entries are `Copy` plain data: a ring never runs destructors,
//! which is what lets the nucleus drop a dead server's ring without caring what was in it.

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};
use core::mem::MaybeUninit;

struct Slot<T> {
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

pub struct Ring<T, const N: usize> {
    slots: [Slot<T>; N],
    head: AtomicUsize,
    tail: AtomicUsize,
}

// SAFETY: a slot's value is only touched by the one thread that won the CAS on `tail` (writer)
// or `head` (reader) for that position, and the sequence number's release/acquire pair orders
// the write before the read. `T: Send` because values move between threads.
unsafe impl<T: Send, const N: usize> Sync for Ring<T, N> {}
// SAFETY: as above; the ring owns plain `Copy` values.
unsafe impl<T: Send, const N: usize> Send for Ring<T, N> {}

impl<T: Copy, const N: usize> Ring<T, N> {
    const CHECK: () = assert!(N.is_power_of_two() && N >= 2, "ring capacity must be a power of two, at least 2");

    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let _ = Self::CHECK;
        let mut slots: [Slot<T>; N] = [const { Slot { seq: AtomicUsize::new(0), value: UnsafeCell::new(MaybeUninit::uninit()) } }; N];
        let mut i = 0;
        while i < N {
            slots[i].seq = AtomicUsize::new(i);
            i += 1;
        }
        Ring { slots, head: AtomicUsize::new(0), tail: AtomicUsize::new(0) }
    }

    #[cfg(loom)]
    pub fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let _ = Self::CHECK;
        Ring {
            slots: core::array::from_fn(|i| Slot { seq: AtomicUsize::new(i), value: UnsafeCell::new(MaybeUninit::uninit()) }),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    /// Appends `value`, or gives it back when the ring is full.
    pub fn try_push(&self, value: T) -> Result<(), T> {
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & (N - 1)];
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq as isize - pos as isize;
            if diff == 0 {
                match self.tail.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        // SAFETY: winning the CAS for `pos` makes this thread the only writer
                        // of the slot until it publishes the new sequence below.
                        slot.value.with_mut(|p| unsafe { (*p).write(value) });
                        slot.seq.store(pos + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(actual) => pos = actual,
                }
            } else if diff < 0 {
                return Err(value); // full: the slot still holds last lap's unread value
            } else {
                pos = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest entry, if any.
    pub fn try_pop(&self) -> Option<T> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & (N - 1)];
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq as isize - (pos + 1) as isize;
            if diff == 0 {
                match self.head.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        // SAFETY: the acquire load saw the producer's release of `pos + 1`, so
                        // the value is initialised; winning the CAS makes us its only reader.
                        let value = slot.value.with(|p| unsafe { (*p).assume_init_read() });
                        slot.seq.store(pos + N, Ordering::Release);
                        return Some(value);
                    }
                    Err(actual) => pos = actual,
                }
            } else if diff < 0 {
                return None; // empty
            } else {
                pos = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Entries currently queued (a snapshot; exact when no one else is using the ring).
    pub fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        let head = self.head.load(Ordering::Acquire);
        tail.saturating_sub(head).min(N)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(not(loom))]
impl<T: Copy, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_and_empty() {
        let r: Ring<u32, 4> = Ring::new();
        assert!(r.try_pop().is_none());
        for i in 0..4 {
            r.try_push(i).unwrap();
        }
        assert_eq!(r.try_push(9), Err(9));
        assert_eq!(r.len(), 4);
        for i in 0..4 {
            assert_eq!(r.try_pop(), Some(i));
        }
        assert!(r.is_empty());
    }

    #[test]
    fn many_laps() {
        let r: Ring<u64, 8> = Ring::new();
        for lap in 0..10_000u64 {
            for k in 0..5 {
                r.try_push(lap * 10 + k).unwrap();
            }
            for k in 0..5 {
                assert_eq!(r.try_pop(), Some(lap * 10 + k));
            }
        }
    }

    #[test]
    fn capacity_two() {
        let r: Ring<u8, 2> = Ring::new();
        r.try_push(1).unwrap();
        r.try_push(2).unwrap();
        assert_eq!(r.try_push(3), Err(3));
        assert_eq!(r.try_pop(), Some(1));
        assert_eq!(r.try_pop(), Some(2));
        for i in 0..100 {
            r.try_push(i).unwrap();
            r.try_push(i + 1).unwrap();
            assert_eq!(r.try_pop(), Some(i));
            assert_eq!(r.try_pop(), Some(i + 1));
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two producers, one consumer, capacity 2: everything pushed is popped exactly once and
    /// each producer's values come out in order.
    #[test]
    fn loom_two_producers_one_consumer() {
        loom::model(|| {
            let r: Arc<Ring<u32, 2>> = Arc::new(Ring::new());
            let handles: Vec<_> = (0..2u32)
                .map(|p| {
                    let r = r.clone();
                    thread::spawn(move || {
                        let mut pushed = 0;
                        for i in 0..2u32 {
                            if r.try_push(p * 10 + i).is_ok() {
                                pushed += 1;
                            }
                        }
                        pushed
                    })
                })
                .collect();
            let mut got = Vec::new();
            for _ in 0..4 {
                if let Some(v) = r.try_pop() {
                    got.push(v);
                }
            }
            let pushed: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            while let Some(v) = r.try_pop() {
                got.push(v);
            }
            assert_eq!(got.len() as u32, pushed);
            for p in 0..2 {
                let mine: Vec<u32> = got.iter().copied().filter(|v| v / 10 == p).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "order kept per producer: {got:?}");
            }
        });
    }

    /// One producer, two consumers: no value is seen twice.
    #[test]
    fn loom_one_producer_two_consumers() {
        loom::model(|| {
            let r: Arc<Ring<u32, 2>> = Arc::new(Ring::new());
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    let r = r.clone();
                    thread::spawn(move || r.try_pop())
                })
                .collect();
            let mut pushed = 0;
            for i in 0..2 {
                if r.try_push(i).is_ok() {
                    pushed += 1;
                }
            }
            let mut got: Vec<u32> = consumers.into_iter().filter_map(|h| h.join().unwrap()).collect();
            while let Some(v) = r.try_pop() {
                got.push(v);
            }
            got.sort();
            got.dedup();
            assert_eq!(got.len(), pushed);
        });
    }
}
