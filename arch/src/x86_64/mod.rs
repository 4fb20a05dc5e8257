//! x86_64: 16550 console, GDT/TSS/IDT, exception and interrupt entry, the local APIC timer, the
//! TSC clock, the direct map and power-off; device interrupts through the I/O APIC (routed by
//! the ACPI MADT) and PCI configuration space (`dev`, `ioapic`, `acpi`, `pci`). The boot path
//! itself (PVH entry, first page tables) lives in `boot/src/x86_64`.

pub mod acpi;
pub mod apic;
pub mod console;
pub mod context;
pub mod cpu;
pub mod dev;
pub mod gdt;
pub mod io;
pub mod ioapic;
pub mod mm;
pub mod pci;
pub mod power;
pub mod pvh;
pub mod rtc;
pub mod syscall;
pub mod timer;
pub mod tracepoint;
pub mod trap;
pub mod user;

pub const ARCH_NAME: &str = "x86_64";
