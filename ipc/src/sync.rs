//! Atomics and cells: `core`'s normally, loom's under `--cfg loom` so that the model checker
//! sees every access of the ring.
#![deny(unsafe_code)]

#[cfg(loom)]
pub use loom::cell::UnsafeCell;
#[cfg(loom)]
pub use loom::sync::atomic::{AtomicUsize, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicUsize, Ordering};

/// `core::cell::UnsafeCell` with loom's `with`/`with_mut` access style.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub const fn new(v: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(v))
    }

    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
