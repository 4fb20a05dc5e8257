//! The nucleus: the small, privileged core of Cairn. It owns scheduling, capabilities, tasks,
//! physical memory, the kernel side of the message rings, and which server may touch which
//! device (its registers, its interrupt line, its DMA memory), and nothing else: the Linux ABI,
//! file systems, networking and drivers are servers that talk to each other by message.
//!
//! Invariants: nothing a user program, a server or a disk image does may panic the nucleus; a
//! fault *in* the nucleus is reported with everything needed to debug it and stops the machine
//! (powering QEMU off with a nonzero code so that no test hangs). This crate and `arch/` are
//! the only places allowed to use `unsafe`, and only where a `// SAFETY:` line says why.
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod api;
pub mod call;
pub mod cap;
pub mod cmdline;
pub mod control;
pub mod death;
pub mod device;
pub mod dma;
pub mod endpoint;
pub mod fastpath;
pub mod grant;
pub mod initrd;
pub mod inject;
pub mod kstack;
pub mod log;
pub mod mem;
pub mod panic;
pub mod sched;
pub mod selftest;
pub mod servers;
pub mod state;
pub mod syscall;
pub mod task;
pub mod time;
pub mod trace;
pub mod traps;
pub mod user;

use arch::BootInfo;
use cmdline::Cmdline;
use core::sync::atomic::{AtomicBool, Ordering};
use server_rt::ServerSpec;
use spin::Once;

/// Set once the scheduler runs: from then on, ticks preempt.
pub static SCHEDULING: AtomicBool = AtomicBool::new(false);
static BOOT_INFO: Once<&'static BootInfo> = Once::new();

/// The boot information (memory map, command line).
pub fn boot_info() -> &'static BootInfo {
    BOOT_INFO.get().expect("boot info not recorded")
}

#[global_allocator]
static ALLOCATOR: mem::arena::ArenaAllocator = mem::arena::ArenaAllocator;

/// Size of the nucleus's own heap arena.
const NUCLEUS_HEAP_BYTES: u64 = 16 << 20;
/// Timer tick rate.
pub const TICK_HZ: u32 = 100;

/// Prints the power-off marker the host tooling keys on, then leaves the machine.
pub fn poweroff(code: u32) -> ! {
    if trace::enabled() || trace::has_records() {
        trace::set_enabled(false);
        trace::dump();
    }
    log::print_unlocked(format_args!("@@POWEROFF {code}\n"));
    arch::power::poweroff(code)
}

/// Entry from `boot/`, on the higher half, with a boot stack and interrupts masked.
/// `servers` is the server table: what the supervisor starts and restarts.
pub fn main(info: &'static BootInfo, servers: &'static [ServerSpec]) -> ! {
    BOOT_INFO.call_once(|| info);
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
    if arch::mm::prepare_kernel_half(&mut mem::frame::alloc_zeroed_page).is_err() {
        panic!("cannot prepare the kernel half of the page tables");
    }
    kprintln!(
        "frames: {} total, {} free ({} MiB); nucleus heap {} MiB",
        stats.total,
        stats.free,
        (stats.free * 4096) >> 20,
        NUCLEUS_HEAP_BYTES >> 20
    );

    traps::install();
    device::init(info);
    arch::timer::start_periodic(TICK_HZ);
    arch::cpu::enable_interrupts();
    kprintln!("timer: {} Hz tick, clock at {} ns", TICK_HZ, arch::timer::now_ns());
    time::init_realtime();

    initrd::list(info);

    let cmd = Cmdline(info.cmdline());
    if let Some(test) = cmd.get("test").filter(|t| selftest::is_builtin(t)) {
        selftest::run(test)
    }
    if let Some(n) = cmd.get("tracebuf").and_then(|n| n.parse().ok()) {
        trace::set_limit(n);
    }
    trace::set_enabled(cmd.get("trace") == Some("1"));
    if cmd.get("fastpath") == Some("off") {
        fastpath::ENABLED.store(false, Ordering::Relaxed);
    }
    if let Some(fi) = cmd.get("fi") {
        inject::configure(fi, servers);
    }
    start_servers(servers, cmd.get("test").is_some());
    sched::idle_loop()
}

/// Makes the boot context the idle task and starts the servers marked `autostart` (plus the
/// test driver when a server-level test is requested).
fn start_servers(servers: &'static [ServerSpec], testing: bool) {
    server_rt::install(&api::API);
    servers::install_table(servers);
    task::install_idle();
    // Nucleus tests run without the Linux personality (no user programs). A driver starts only
    // if there is a device for it.
    let has_device = |s: &ServerSpec| s.devices.is_empty() || s.devices.iter().any(|&c| device::exists(c));
    let wanted = |s: &ServerSpec| {
        (s.autostart && !(testing && s.user_memory) && has_device(s)) || (testing && s.name == "testdriver")
    };
    for (i, s) in servers.iter().enumerate() {
        if s.autostart && !has_device(s) {
            kprintln!("server '{}': no device for it, not started", s.name);
        }
        if wanted(s) {
            if let Err(e) = servers::spawn(i) {
                kprintln!("cannot start server '{}': {e}", s.name);
            }
        }
    }
    if !servers.iter().any(wanted) {
        kprintln!("no init program yet: powering off");
        poweroff(0)
    }
    SCHEDULING.store(true, Ordering::Relaxed);
}

fn print_memory_map(info: &BootInfo) {
    kprintln!("memory map ({} regions):", info.region_count);
    for r in info.regions() {
        kprintln!("  [{:#014x} - {:#014x}) {:>8} KiB  {:?}", r.start, r.start + r.len, r.len >> 10, r.kind);
    }
    kprintln!("  kernel image [{:#x} - {:#x})", info.kernel_phys.0, info.kernel_phys.1);
    if let Some((start, len)) = info.initrd {
        kprintln!("  initrd       [{:#x} - {:#x}) {} bytes", start, start + len, len);
    }
}
