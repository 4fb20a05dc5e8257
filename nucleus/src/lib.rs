//! The nucleus: the small, privileged core of Cairn. It owns scheduling, capabilities, tasks,
//! physical memory and the kernel side of the message rings, and nothing else: the Linux ABI,
//! file systems, networking and drivers are servers that talk to each other by message.
//!
//! Invariants: nothing a user program, a server or a disk image does may panic the nucleus; a
//! fault *in* the nucleus is reported with everything needed to debug it and stops the machine
//! (powering QEMU off with a nonzero code so that no test hangs). This crate and `arch/` are
//! the only places allowed to use `unsafe`, and only where a `// SAFETY:` line says why.
#![no_std]

extern crate alloc;

pub mod cmdline;
pub mod initrd;
pub mod log;
pub mod mem;
pub mod panic;
pub mod selftest;
pub mod time;
pub mod traps;

use arch::BootInfo;
use cmdline::Cmdline;

#[global_allocator]
static ALLOCATOR: mem::arena::ArenaAllocator = mem::arena::ArenaAllocator;

/// Size of the nucleus's own heap arena.
const NUCLEUS_HEAP_BYTES: u64 = 16 << 20;
/// Timer tick rate.
pub const TICK_HZ: u32 = 100;

/// Prints the power-off marker the host tooling keys on, then leaves the machine.
pub fn poweroff(code: u32) -> ! {
    log::print_unlocked(format_args!("@@POWEROFF {code}\n"));
    arch::power::poweroff(code)
}

/// Entry from `boot/`, on the higher half, with a boot stack and interrupts masked.
pub fn main(info: &'static BootInfo) -> ! {
    kprintln!();
    kprintln!(
        "Cairn {} ({}), a capability microkernel that speaks Linux; booted via {}",
        env!("CARGO_PKG_VERSION"),
        arch::ARCH_NAME,
        info.protocol
    );
    kprintln!("command line: \"{}\"", info.cmdline());
    print_memory_map(info);

    let stats = mem::frame::init(info);
    mem::arena::init_nucleus(NUCLEUS_HEAP_BYTES);
    kprintln!(
        "frames: {} total, {} free ({} MiB); nucleus heap {} MiB",
        stats.total,
        stats.free,
        stats.free * 4096 >> 20,
        NUCLEUS_HEAP_BYTES >> 20
    );

    traps::install();
    arch::timer::start_periodic(TICK_HZ);
    arch::cpu::enable_interrupts();
    kprintln!(
        "timer: {} Hz tick, clock at {} ns",
        TICK_HZ,
        arch::timer::now_ns()
    );

    initrd::list(info);

    let cmd = Cmdline(info.cmdline());
    if let Some(test) = cmd.get("test") {
        selftest::run(test)
    }
    kprintln!("no init program yet: powering off");
    poweroff(0)
}

fn print_memory_map(info: &BootInfo) {
    kprintln!("memory map ({} regions):", info.region_count);
    for r in info.regions() {
        kprintln!(
            "  [{:#014x} - {:#014x}) {:>8} KiB  {:?}",
            r.start,
            r.start + r.len,
            r.len >> 10,
            r.kind
        );
    }
    kprintln!(
        "  kernel image [{:#x} - {:#x})",
        info.kernel_phys.0,
        info.kernel_phys.1
    );
    if let Some((start, len)) = info.initrd {
        kprintln!(
            "  initrd       [{:#x} - {:#x}) {} bytes",
            start,
            start + len,
            len
        );
    }
}
