//! Interrupt masking (PSTATE.I through DAIF), idling (`wfi`) and stopping this CPU.

use core::arch::asm;

pub fn interrupts_enabled() -> bool {
    let daif: u64;
    // SAFETY: reads DAIF; no other effect.
    unsafe { asm!("mrs {}, daif", out(reg) daif, options(nomem, nostack, preserves_flags)) }
    daif & (1 << 7) == 0
}

pub fn enable_interrupts() {
    // SAFETY: the vector table is installed before the nucleus enables interrupts. Not `nomem`:
    // memory accesses must not move across the unmasking.
    unsafe { asm!("msr daifclr, #2", options(nostack, preserves_flags)) }
}

pub fn disable_interrupts() {
    // SAFETY: masking interrupts is always safe.
    unsafe { asm!("msr daifset, #2", options(nostack, preserves_flags)) }
}

pub use crate::irq::without_interrupts;

/// Sleeps until the next interrupt, then enables interrupts so that it is taken. `wfi` wakes on
/// a pending interrupt even while it is masked, so a caller that checks its condition with
/// interrupts masked and then calls this never loses a wake-up (like `sti; hlt` on x86).
pub fn wait_for_interrupt() {
    // SAFETY: idles the CPU; interrupts are enabled afterwards as on x86_64.
    unsafe { asm!("wfi", "msr daifclr, #2", options(nostack, preserves_flags)) }
}

pub fn halt_forever() -> ! {
    loop {
        // SAFETY: stopping the CPU with every exception masked is what the caller asked for.
        unsafe { asm!("msr daifset, #0xf", "wfi", options(nomem, nostack)) }
    }
}

/// Index of the executing CPU (MPIDR_EL1 affinity level 0; 0 on the boot CPU of `virt`).
#[inline]
pub fn current_cpu_id() -> u32 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack, preserves_flags)) }
    (mpidr & 0xff) as u32
}
