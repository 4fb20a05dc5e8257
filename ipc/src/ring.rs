//! The ring core: a bounded multi-producer multi-consumer queue of fixed-size plain-data
//! entries, after Dmitry Vyukov's bounded MPMC queue. It is the only module of the crate
//! allowed to use `unsafe`, and only to move a value into and out of a slot.
//!
//! # How it works
//!
//! `tail` is the next position to write and `head` the next position to read; both only grow
//! (wrapping at `usize::MAX`, which is harmless because `N` divides 2^64). Position `p` lives in
//! slot `p mod N`. Every slot carries a *stamp* that says what the slot is waiting for:
//!
//! * `2p`: empty, waiting for the producer of position `p`;
//! * `2p + 1`: holds the value of position `p`, waiting for its consumer.
//!
//! A producer that loads `tail == p` and sees stamp `2p` claims the position with a CAS on
//! `tail`, writes the value, and publishes it by storing `2p + 1` (release). A consumer that
//! loads `head == p` and sees stamp `2p + 1` (acquire, pairing with that release) claims it with
//! a CAS on `head`, copies the value out, and frees the slot for the next lap by storing
//! `2(p + N)`. A stamp older than the one a thread wants means "full" (producer) or "empty"
//! (consumer); a newer one means its snapshot of `tail`/`head` is stale, and it reloads.
//!
//! Doubling the positions in the stamp (rather than Vyukov's `p` / `p + 1` / `p + N`) keeps
//! "full with lap `p`" and "free for lap `p + N`" distinct even when `N == 1`.
//!
//! # Invariants
//!
//! * A slot's value is written only by the one producer whose CAS claimed that position, and
//!   read only by the one consumer whose CAS claimed it, and the stamp's release/acquire pair
//!   orders the write before the read. That is the whole argument for the `unsafe` below.
//! * `N` is a power of two, at least 1; checked at compile time when a ring is constructed.
//! * Entries are `Copy`: a ring never runs a destructor, so the nucleus can drop or reuse a dead
//!   server's ring without caring what was left in it.
//! * Bounded: when a ring is full, [`Ring::try_push`] hands the entry back (backpressure). It
//!   never allocates, blocks or spins waiting for another thread.
//!
//! # What it must not do, and what its callers must not do
//!
//! The ring knows nothing about tasks, capabilities or scheduling; waking a blocked receiver is
//! the nucleus's job. Between its CAS and its stamp store an operation holds a slot: a thread
//! stalled there makes producers on that slot see "full" and consumers see "empty" until it
//! resumes (the queue is lock-free in the everyday sense, not formally). So a task must never
//! be *killed* inside `try_push`/`try_pop`: the nucleus performs ring operations with
//! preemption off, or only kills tasks that are not inside one. Nothing here can panic or fault
//! between the two steps.
//!
//! `try_push` may report full while a consumer is between its two steps on the oldest entry, and
//! `try_pop` may report empty while a producer is between its two steps; both are momentary.
#![allow(unsafe_code)] // the one exception to the crate-wide `deny` (see lib.rs)
#![warn(clippy::undocumented_unsafe_blocks)]

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};
use core::fmt;
use core::mem::MaybeUninit;

/// Keeps `head` and `tail` on separate cache lines, so producers and consumers on different
/// CPUs do not steal the line from each other on every operation.
#[repr(align(64))]
struct CachePadded<T>(T);

/// One entry's storage and the stamp that says who may touch it next.
struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded lock-free MPMC queue of `N` plain-data entries (`N` a power of two), stored inline:
/// it can live in a `static`, in an endpoint, or in a task's memory without allocating.
pub struct Ring<T, const N: usize> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: [Slot<T>; N],
}

// SAFETY: sharing a `Ring` lets several threads reach the slots' `UnsafeCell`s, but a slot's
// value is only accessed by the single thread that won the CAS on `tail` (writer) or `head`
// (reader) for its position, and the writer's release store of the stamp happens-before the
// reader's acquire load of it (see the module comment). Values cross threads, hence `T: Send`.
// (`Send` needs no impl: every field is `Send` when `T` is.)
unsafe impl<T: Send, const N: usize> Sync for Ring<T, N> {}

/// Stamp of a slot that is empty and waiting for the producer of `pos`.
#[inline(always)]
const fn free_stamp(pos: usize) -> usize {
    pos.wrapping_mul(2)
}

/// Stamp of a slot that holds the value of `pos`.
#[inline(always)]
const fn full_stamp(pos: usize) -> usize {
    pos.wrapping_mul(2).wrapping_add(1)
}

/// Where `stamp` stands relative to `wanted`: negative = older (the slot is not there yet),
/// zero = the one wanted, positive = newer (the caller's position is stale). Signed wrapping
/// distance, correct as long as no thread stalls for 2^62 operations.
#[inline(always)]
const fn stamp_distance(stamp: usize, wanted: usize) -> isize {
    stamp.wrapping_sub(wanted) as isize
}

impl<T: Copy, const N: usize> Ring<T, N> {
    /// Evaluated (at compile time) for every `N` a ring is built with.
    const CAPACITY_IS_POWER_OF_TWO: () = assert!(N.is_power_of_two(), "ring capacity must be a power of two");

    /// Number of entries the ring holds when full.
    pub const CAPACITY: usize = N;

    /// An empty ring. `const`, so a ring can be a `static` (except in the loom unit tests,
    /// where loom's atomics cannot be built in a const context).
    #[cfg(not(all(test, loom)))]
    pub const fn new() -> Self {
        Self::starting_at(0)
    }

    /// An empty ring.
    #[cfg(all(test, loom))]
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// An empty ring whose positions start at `start` instead of 0, so that tests can cross the
    /// `usize` wrap of the position counters in a few operations.
    #[cfg(not(all(test, loom)))]
    const fn starting_at(start: usize) -> Self {
        let () = Self::CAPACITY_IS_POWER_OF_TWO;
        let mut slots =
            [const { Slot { stamp: AtomicUsize::new(0), value: UnsafeCell::new(MaybeUninit::uninit()) } }; N];
        let mut i = 0;
        while i < N {
            let pos = start.wrapping_add(i);
            slots[pos & (N - 1)].stamp = AtomicUsize::new(free_stamp(pos));
            i += 1;
        }
        Ring { head: CachePadded(AtomicUsize::new(start)), tail: CachePadded(AtomicUsize::new(start)), slots }
    }

    #[cfg(all(test, loom))]
    fn starting_at(start: usize) -> Self {
        let () = Self::CAPACITY_IS_POWER_OF_TWO;
        // Slot `j` waits for the one position in `start .. start + N` that maps to it.
        let slots = core::array::from_fn(|j| {
            let pos = start.wrapping_add(j.wrapping_sub(start) & (N - 1));
            Slot { stamp: AtomicUsize::new(free_stamp(pos)), value: UnsafeCell::new(MaybeUninit::uninit()) }
        });
        Ring { head: CachePadded(AtomicUsize::new(start)), tail: CachePadded(AtomicUsize::new(start)), slots }
    }

    /// Number of entries the ring holds when full (`N`).
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Appends `value`, or hands it back when the ring is full, so the caller decides whether
    /// to wait, retry or fail (backpressure).
    pub fn try_push(&self, value: T) -> Result<(), T> {
        let mut pos = self.tail.0.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & (N - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            let distance = stamp_distance(stamp, free_stamp(pos));
            if distance == 0 {
                // The slot is free for `pos`; claim the position. Relaxed is enough: the value
                // is ordered by the stamp, not by `tail`.
                let claim =
                    self.tail.0.compare_exchange_weak(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed);
                match claim {
                    Ok(_) => {
                        slot.value.with_mut(|cell| {
                            // SAFETY: winning the CAS for `pos` makes this thread the only one
                            // that may touch this slot until it stores `full_stamp(pos)` below;
                            // no consumer reads it before seeing that stamp. The pointer comes
                            // from the slot's own cell, so it is valid and aligned.
                            unsafe { cell.write(MaybeUninit::new(value)) }
                        });
                        slot.stamp.store(full_stamp(pos), Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => pos = current,
                }
            } else if distance < 0 {
                // The slot still holds the entry of `pos - N`: the ring is full.
                return Err(value);
            } else {
                // Another producer already took `pos`; catch up.
                pos = self.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest entry, or `None` when the ring is empty.
    pub fn try_pop(&self) -> Option<T> {
        let mut pos = self.head.0.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & (N - 1)];
            let stamp = slot.stamp.load(Ordering::Acquire);
            let distance = stamp_distance(stamp, full_stamp(pos));
            if distance == 0 {
                let claim =
                    self.head.0.compare_exchange_weak(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed);
                match claim {
                    Ok(_) => {
                        let value = slot.value.with(|cell| {
                            // SAFETY: the acquire load above saw the producer's release of
                            // `full_stamp(pos)`, so its write of the value happened before this
                            // read and the value is initialised; winning the CAS for `pos` makes
                            // this thread its only reader, and no producer writes the slot
                            // again before the stamp below frees it. `T: Copy`, so reading it
                            // out by value leaves nothing to drop.
                            unsafe { (*cell).assume_init_read() }
                        });
                        slot.stamp.store(free_stamp(pos.wrapping_add(N)), Ordering::Release);
                        return Some(value);
                    }
                    Err(current) => pos = current,
                }
            } else if distance < 0 {
                // The slot has not been written for `pos` yet: the ring is empty.
                return None;
            } else {
                // Another consumer already took `pos`; catch up.
                pos = self.head.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Number of entries queued. A snapshot: exact when no other thread is using the ring,
    /// otherwise some value the length had recently, always within `0..=N`.
    pub fn len(&self) -> usize {
        let tail = self.tail.0.load(Ordering::SeqCst);
        let head = self.head.0.load(Ordering::SeqCst);
        // `head` was read after `tail` and may have overtaken it; clamp rather than wrap.
        let queued = tail.wrapping_sub(head) as isize;
        queued.clamp(0, N as isize) as usize
    }

    /// Whether [`Ring::len`] is 0 (the same snapshot caveat applies).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Copy, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> fmt::Debug for Ring<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring").field("len", &self.len()).field("capacity", &N).finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn empty_then_full_then_empty() {
        let r: Ring<u32, 4> = Ring::new();
        assert!(r.is_empty());
        assert_eq!(r.try_pop(), None);
        for i in 0..4 {
            assert_eq!(r.len(), i as usize);
            r.try_push(i).unwrap();
        }
        assert_eq!(r.len(), 4);
        assert_eq!(r.try_push(9), Err(9), "a full ring hands the value back");
        for i in 0..4 {
            assert_eq!(r.try_pop(), Some(i));
        }
        assert!(r.is_empty());
        assert_eq!(r.try_pop(), None);
    }

    #[test]
    fn capacity_is_n() {
        assert_eq!(Ring::<u8, 1>::new().capacity(), 1);
        assert_eq!(Ring::<u8, 64>::CAPACITY, 64);
    }

    #[test]
    fn capacity_one() {
        let r: Ring<u64, 1> = Ring::new();
        for i in 0..1000 {
            r.try_push(i).unwrap();
            assert_eq!(r.len(), 1);
            assert_eq!(r.try_push(i + 1), Err(i + 1));
            assert_eq!(r.try_pop(), Some(i));
            assert_eq!(r.try_pop(), None);
        }
    }

    #[test]
    fn capacity_two() {
        let r: Ring<u8, 2> = Ring::new();
        r.try_push(1).unwrap();
        r.try_push(2).unwrap();
        assert_eq!(r.try_push(3), Err(3));
        assert_eq!(r.try_pop(), Some(1));
        r.try_push(3).unwrap();
        assert_eq!(r.try_push(4), Err(4));
        assert_eq!(r.try_pop(), Some(2));
        assert_eq!(r.try_pop(), Some(3));
        assert_eq!(r.try_pop(), None);
        for i in 0..200u8 {
            r.try_push(i).unwrap();
            r.try_push(i.wrapping_add(1)).unwrap();
            assert_eq!(r.try_pop(), Some(i));
            assert_eq!(r.try_pop(), Some(i.wrapping_add(1)));
        }
    }

    /// Many laps with the ring partly filled, so the fill level moves around the slots.
    #[test]
    fn many_laps() {
        let r: Ring<u64, 8> = Ring::new();
        let (mut next_in, mut next_out) = (0u64, 0u64);
        for lap in 0..20_000u64 {
            for _ in 0..(lap % 8) + 1 {
                if r.try_push(next_in).is_ok() {
                    next_in += 1;
                }
            }
            for _ in 0..(lap * 7 % 8) + 1 {
                if let Some(v) = r.try_pop() {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
            assert_eq!(r.len() as u64, next_in - next_out);
        }
        assert!(next_out > 50_000);
    }

    /// The position counters wrap at `usize::MAX` without losing or reordering anything.
    #[test]
    fn positions_wrap_around_usize() {
        fn check<const N: usize>() {
            let r: Ring<usize, N> = Ring::starting_at(usize::MAX - 3 * N / 2);
            assert!(r.is_empty());
            for round in 0..4 * N {
                for k in 0..N {
                    r.try_push(round * N + k).unwrap();
                }
                assert_eq!(r.len(), N);
                assert!(r.try_push(0).is_err());
                for k in 0..N {
                    assert_eq!(r.try_pop(), Some(round * N + k));
                }
                assert_eq!(r.try_pop(), None);
            }
        }
        check::<1>();
        check::<2>();
        check::<8>();
    }

    #[test]
    fn usable_as_a_static() {
        static RING: Ring<(u32, u32), 4> = Ring::new();
        RING.try_push((1, 2)).unwrap();
        assert_eq!(RING.try_pop(), Some((1, 2)));
    }

    #[test]
    fn carries_messages() {
        use crate::msg::{Cqe, Sqe};
        let sq: Ring<Sqe, 4> = Ring::new();
        let s = Sqe { tag: 9, opcode: 2, args: [1, 2, 3, 4, 5, 6], ..Sqe::default() };
        sq.try_push(s).unwrap();
        assert_eq!(sq.try_pop(), Some(s));
        let cq: Ring<Cqe, 4> = Ring::default();
        cq.try_push(Cqe::new(9, -5)).unwrap();
        assert_eq!(cq.try_pop().map(|c| c.result), Some(-5));
        assert_eq!(format!("{cq:?}"), "Ring { len: 0, capacity: 4, .. }");
    }
}

/// Model checks under loom: every interleaving (up to loom's bounds) of two threads on a tiny
/// ring. Loom also flags any unsynchronised access to a slot's cell as a data race, which is
/// the property the `unsafe` blocks depend on. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p ipc --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Capacity 1, one producer and one consumer: FIFO, nothing lost or duplicated, and a second
    /// push succeeds only if the first entry was already taken.
    #[test]
    fn loom_spsc_capacity_one() {
        loom::model(|| {
            let r: Arc<Ring<u32, 1>> = Arc::new(Ring::new());
            let consumer = {
                let r = r.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        if let Some(v) = r.try_pop() {
                            got.push(v);
                        }
                    }
                    got
                })
            };
            let mut pushed = Vec::new();
            for v in [1, 2] {
                if r.try_push(v).is_ok() {
                    pushed.push(v);
                }
            }
            let mut got = consumer.join().unwrap();
            if pushed == [1, 2] {
                assert_eq!(got.first(), Some(&1), "the second push needed the first entry gone");
            }
            while let Some(v) = r.try_pop() {
                got.push(v);
            }
            assert_eq!(got, pushed);
        });
    }

    /// Two producers, the main thread consuming, capacity 2: everything pushed is popped exactly
    /// once, and each producer's entries come out in the order it pushed them.
    #[test]
    fn loom_two_producers() {
        loom::model(|| {
            let r: Arc<Ring<u32, 2>> = Arc::new(Ring::new());
            let producer = {
                let r = r.clone();
                thread::spawn(move || [10, 11].iter().filter(|&&v| r.try_push(v).is_ok()).count())
            };
            let mut pushed = [20, 21].iter().filter(|&&v| r.try_push(v).is_ok()).count();
            let mut got = Vec::new();
            if let Some(v) = r.try_pop() {
                got.push(v);
            }
            pushed += producer.join().unwrap();
            while let Some(v) = r.try_pop() {
                got.push(v);
            }
            assert_eq!(got.len(), pushed, "lost or duplicated: {got:?}");
            assert!(pushed >= 2, "an empty ring of 2 refused one of the first two pushes");
            for p in [1, 2] {
                let mine: Vec<u32> = got.iter().copied().filter(|v| v / 10 == p).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "producer {p} reordered: {got:?}");
            }
        });
    }

    /// One producer, two consumers racing on the same entries: no entry is taken twice, none is
    /// lost.
    #[test]
    fn loom_two_consumers() {
        loom::model(|| {
            let r: Arc<Ring<u32, 2>> = Arc::new(Ring::new());
            r.try_push(1).unwrap();
            let consumer = {
                let r = r.clone();
                thread::spawn(move || r.try_pop())
            };
            let pushed_second = r.try_push(2).is_ok();
            let mut got: Vec<u32> = r.try_pop().into_iter().collect();
            got.extend(consumer.join().unwrap());
            while let Some(v) = r.try_pop() {
                got.push(v);
            }
            assert!(pushed_second, "a ring of 2 holding at most 1 refused a push");
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
        });
    }

    /// Capacity 1 with both threads producing and consuming: the single slot goes around laps
    /// under contention from both sides, and every value pushed is taken exactly once.
    #[test]
    fn loom_mpmc_capacity_one() {
        loom::model(|| {
            let r: Arc<Ring<u32, 1>> = Arc::new(Ring::new());
            let other = {
                let r = r.clone();
                thread::spawn(move || {
                    let pushed = r.try_push(1).is_ok();
                    (pushed, r.try_pop())
                })
            };
            let pushed = r.try_push(2).is_ok();
            let mine = r.try_pop();
            let (other_pushed, theirs) = other.join().unwrap();
            assert!(pushed || other_pushed, "an empty ring of 1 refused both pushes");
            let mut got: Vec<u32> = mine.into_iter().chain(theirs).collect();
            got.extend(r.try_pop());
            assert_eq!(r.try_pop(), None);
            got.sort_unstable();
            let expected: Vec<u32> = [(other_pushed, 1), (pushed, 2)].iter().filter(|p| p.0).map(|p| p.1).collect();
            assert_eq!(got, expected);
        });
    }

    /// Both threads push and pop around the wrap of a 2-slot ring (positions 1 and 2 share slot
    /// 1 across two laps), and `len` stays within bounds throughout.
    #[test]
    fn loom_mixed_across_a_lap() {
        loom::model(|| {
            let r: Arc<Ring<u32, 2>> = Arc::new(Ring::new());
            r.try_push(0).unwrap();
            assert_eq!(r.try_pop(), Some(0));
            let other = {
                let r = r.clone();
                thread::spawn(move || {
                    let pushed = r.try_push(1).is_ok();
                    (pushed, r.try_pop())
                })
            };
            let pushed = r.try_push(2).is_ok();
            assert!(r.len() <= 2);
            let mine = r.try_pop();
            let (other_pushed, theirs) = other.join().unwrap();
            assert!(pushed && other_pushed, "two pushes into an empty ring of 2 must fit");
            let mut got: Vec<u32> = mine.into_iter().chain(theirs).collect();
            while let Some(v) = r.try_pop() {
                got.push(v);
            }
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            assert!(r.is_empty());
        });
    }
}
