//! x86_64: 16550 console, GDT/TSS/IDT, exception and interrupt entry, the local APIC timer, the
//! TSC clock, the direct map and power-off. The boot path itself (PVH entry, first page tables)
//! lives in `boot/src/x86_64`.

pub mod apic;
pub mod console;
pub mod context;
pub mod cpu;
pub mod gdt;
pub mod io;
pub mod mm;
pub mod power;
pub mod pvh;
pub mod rtc;
pub mod syscall;
pub mod timer;
pub mod trap;
pub mod user;

pub const ARCH_NAME: &str = "x86_64";
