//! Per-architecture code: everything that touches a CPU register, a page-table format, an
//! interrupt controller, a timer or a UART lives here, behind one arch-neutral surface.
//!
//! Every architecture module (`x86_64`, `aarch64`) exports the *same* items, re-exported here,
//! so that the nucleus and servers never `#[cfg]` on the architecture:
//!
//! | item | what it does |
//! |---|---|
//! | `console::write_bytes(&[u8])` | blocking write to the boot console (16550 / PL011) |
//! | `console::read_byte() -> Option<u8>` | non-blocking read from the console |
//! | `console::enable_rx_interrupt/disable_rx_interrupt()` | the UART's receive interrupt |
//! | `console::trace_port_present/offer/write/flush/read` | the trace stream's port (and the host's control channel, `read`): COM2 / a virtio console taken at discovery |
//! | `trace_hook!(HOOK; a, ..f)` (macro), `tracepoint::set_sites(on)` | a trace point: a `nop`, patched into a branch to a stub calling `HOOK` when tracing is on; no register spills |
//! | `trace_record!(KIND, MASK; BUFFER, LIMIT, DROPPED, HOOK; a, ..f)` (macro) | a trace point whose stub writes its record into the caller's buffer itself (saving 3-4 registers), calling `HOOK` only when the buffer is full |
//! | `cpu::interrupts_enabled/enable/disable()`, `cpu::without_interrupts(f)` | IRQ mask |
//! | `cpu::wait_for_interrupt()` | `hlt` / `wfi`: idle until the next interrupt |
//! | `cpu::halt_forever() -> !` | stop this CPU for good (used after a nucleus fault) |
//! | `power::poweroff(code) -> !` | leave QEMU with an exit status derived from `code` |
//! | `timer::start_periodic(hz)` | program the tick (LAPIC timer / generic timer) |
//! | `timer::now_ns() -> u64` | monotonic nanoseconds since boot from a real clock source |
//! | `timer::user_clock() -> (base, mult)` | the clock as user mode computes it (the vDSO) |
//! | `vdso::IMAGE`, `vdso::data(offset)` | the vDSO for this architecture and its data page's words |
//! | `trap::install(&'static TrapHooks)` | route timer ticks and CPU exceptions to the nucleus |
//! | `mm::phys_to_virt(pa) / virt_to_phys(va)` | the direct map of physical memory |
//! | `mm::PAGE_SIZE` | 4096 |
//! | `mm::map_device_page(va, pa, alloc)`, `mm::DEVICE_AREA_BASE/SIZE` | uncached device mappings |
//! | `dev::init(&BootInfo)` | find the interrupt controllers (ACPI MADT / GIC), mask every line |
//! | `dev::discover(&BootInfo, f)` | report virtio devices (PCI bus 0 / DTB `virtio,mmio`) |
//! | `dev::console_irq()` | the console UART's receive line |
//! | `dev::irq_route(line)`, `dev::irq_mask/irq_unmask(n)` | program, mask, unmask a line |
//! | `dev::config_read/config_write(bus, off, ..)` | PCI configuration space |
//!
//! The per-arch boot code (in `boot/`) builds a [`BootInfo`] and hands it to `nucleus::main`.
//! Device interrupt lines are masked by the trap path before the end-of-interrupt and handed to
//! the `device_irq` hook; they stay masked until the nucleus unmasks them.
//!
//! Invariant: nothing in here allocates; nothing in here knows about tasks or servers.
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bootinfo;
pub mod clock;
pub mod devinfo;
pub mod irq;
pub mod trapinfo;
pub mod vdso;
pub mod virtcon;

pub use bootinfo::{BootInfo, MemKind, MemRegion};
pub use devinfo::{Bus, FoundDevice, IrqLine};
pub use trapinfo::{ExceptionClass, ExceptionInfo, TrapHooks};

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64 as current;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64 as current;

pub use current::{console, context, cpu, dev, mm, power, rtc, syscall, timer, tracepoint, trap, user};

/// Short architecture name printed in the banner and used by tests.
pub const ARCH_NAME: &str = current::ARCH_NAME;
