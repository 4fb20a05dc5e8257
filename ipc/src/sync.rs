//! The atomics and the interior-mutability cell that [`crate::ring`] is built on.
//!
//! It owns one decision: which implementation backs them. Normally that is `core`'s; in the
//! crate's own unit tests built with `--cfg loom` it is loom's, so that the model checker sees
//! (and permutes) every atomic access of the ring and checks every access to a slot's cell for
//! data races. (Only the unit tests: loom is a dev-dependency, so a plain `--cfg loom` build of
//! the library, or of the integration tests, keeps `core`'s.)
//!
//! Invariant: both variants offer the same surface (`AtomicUsize`, `Ordering`, and an
//! `UnsafeCell` with loom's closure-style `with`/`with_mut`), so `ring.rs` is written once.
//! This module must not grow anything else: the ring must not depend on code that loom cannot
//! see. It hands out raw pointers but never dereferences them, so it contains no `unsafe`.
#![deny(unsafe_code)]

#[cfg(all(test, loom))]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(all(test, loom))]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};

#[cfg(not(all(test, loom)))]
pub(crate) use core::sync::atomic::{AtomicUsize, Ordering};

/// `core::cell::UnsafeCell` behind loom's access style: the pointer is only available inside a
/// closure, which is where loom tracks the access.
#[cfg(not(all(test, loom)))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(all(test, loom)))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer for reading the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for writing the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
