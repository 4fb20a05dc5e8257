//! Interrupt masking, idling and stopping this CPU.

use core::arch::asm;

pub fn interrupts_enabled() -> bool {
    let flags: u64;
    // SAFETY: reads RFLAGS through the stack; no other effect.
    unsafe { asm!("pushfq; pop {}", out(reg) flags, options(nomem, preserves_flags)) }
    flags & (1 << 9) != 0
}

pub fn enable_interrupts() {
    // SAFETY: the IDT is installed before the nucleus enables interrupts.
    unsafe { asm!("sti", options(nomem, nostack)) }
}

pub fn disable_interrupts() {
    // SAFETY: masking interrupts is always safe.
    unsafe { asm!("cli", options(nomem, nostack)) }
}

pub use crate::irq::without_interrupts;

/// Enables interrupts and sleeps until the next one, atomically (`sti; hlt`), so that a wake-up
/// arriving between the check and the sleep is not lost.
pub fn wait_for_interrupt() {
    // SAFETY: `sti` takes effect after the next instruction, so `hlt` is entered with IRQs on.
    unsafe { asm!("sti; hlt", options(nomem, nostack)) }
}

pub fn halt_forever() -> ! {
    loop {
        // SAFETY: stopping the CPU with interrupts off is what the caller asked for.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}

/// Index of the executing CPU (single CPU for now; SMP will read it from per-CPU data).
#[inline]
pub fn current_cpu_id() -> u32 {
    0
}
