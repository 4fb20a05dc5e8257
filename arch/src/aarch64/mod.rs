//! AArch64 (ARMv8-A, EL1, 4 KiB granule, QEMU `virt`): PL011 console, the exception vectors
//! (`VBAR_EL1`) with a stack-overflow check in their prologue, the GICv2, the generic timer
//! (virtual timer as the tick, `CNTVCT_EL0` as the clock), TTBR1 kernel page tables with the
//! direct map, TTBR0 user address spaces tagged with ASIDs, DTB parsing (memory, virtio-mmio
//! devices), device interrupts as GIC SPIs (`dev`), the trace port (a polled virtio console,
//! `virtcon`) and power-off through semihosting or PSCI. The boot path itself (Linux `Image` header, EL2 → EL1, MMU on) lives in
//! `boot/src/aarch64`; it calls [`early_init`] first and [`dtb::boot_info`] next.
//!
//! Invariants: the kernel always runs on `SP_EL1` (never `SPSel = 0`); `SP_EL0` and
//! `TPIDR_EL0` hold user state only; `TPIDR_EL1`, `TPIDRRO_EL0` and `PAR_EL1` are scratch
//! registers of the exception entry and hold nothing across it.

pub mod console;
pub mod context;
pub mod cpu;
pub mod dev;
pub mod dtb;
pub mod gic;
mod mem;
pub mod mm;
pub mod power;
pub(crate) mod regs;
pub mod rtc;
pub mod syscall;
pub mod timer;
pub mod tracepoint;
pub mod trap;
pub mod user;

pub const ARCH_NAME: &str = "aarch64";

/// First thing the boot path calls once it runs on the higher half with a stack: installs the
/// exception vectors, drops the boot identity map and starts the clock. Interrupts stay masked.
pub fn early_init() {
    trap::set_vectors();
    mm::drop_identity_map();
    timer::init_clock();
}
