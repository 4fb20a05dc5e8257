//! Interrupt masking that is the same on every architecture, built on the arch's primitives.

use crate::current::cpu::{disable_interrupts, enable_interrupts, interrupts_enabled};

/// Runs `f` with interrupts masked on this CPU, restoring the previous state afterwards.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let was = interrupts_enabled();
    if was {
        disable_interrupts();
    }
    let r = f();
    if was {
        enable_interrupts();
    }
    r
}
