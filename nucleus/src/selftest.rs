//! Boot-time tests chosen with `test=<name>` on the command line. Each prints
//! `@@TEST-PASS <name>` or `@@TEST-FAIL <name>: <reason>` and powers off; the host harness
//! (`tests/`) asserts on the console transcript.

use crate::{kprintln, poweroff};

/// An address in the kernel half that no architecture maps.
pub const UNMAPPED_KERNEL_ADDRESS: u64 = 0xffff_ff00_dead_0000;

/// Whether `name` is one of the tests below (the others are run by the `testdriver` server).
pub fn is_builtin(name: &str) -> bool {
    matches!(name, "pagefault" | "ticks" | "heap")
}

pub fn run(name: &str) -> ! {
    kprintln!("running self-test '{name}'");
    let result = match name {
        "pagefault" => pagefault(),
        "ticks" => ticks(),
        "heap" => heap(),
        _ => Err("no such self-test"),
    };
    match result {
        Ok(()) => {
            kprintln!("@@TEST-PASS {name}");
            poweroff(0)
        }
        Err(why) => {
            kprintln!("@@TEST-FAIL {name}: {why}");
            poweroff(1)
        }
    }
}

/// Reads an unmapped address: the report must name it, and the machine must stop.
fn pagefault() -> Result<(), &'static str> {
    kprintln!("reading {:#x}; expect a CPU exception report naming it", UNMAPPED_KERNEL_ADDRESS);
    // SAFETY: deliberately invalid; the resulting fault is the point of this test and is fatal.
    let v = unsafe { core::ptr::read_volatile(UNMAPPED_KERNEL_ADDRESS as *const u64) };
    kprintln!("read {v:#x} from an unmapped address?");
    Err("the read did not fault")
}

/// The tick count and the clock both advance while we wait for interrupts.
fn ticks() -> Result<(), &'static str> {
    let (t0, c0) = (crate::time::ticks(), arch::timer::now_ns());
    let mut spins = 0u64;
    while crate::time::ticks() < t0 + 10 {
        arch::cpu::wait_for_interrupt();
        spins += 1;
        if spins > 10_000_000 {
            return Err("timer ticks do not advance");
        }
    }
    let (t1, c1) = (crate::time::ticks(), arch::timer::now_ns());
    kprintln!("ticks {t0} -> {t1}, clock {c0} ns -> {c1} ns");
    if c1 <= c0 {
        return Err("the clock did not advance");
    }
    Ok(())
}

/// Allocates and frees through the global allocator and checks the accounting.
fn heap() -> Result<(), &'static str> {
    use alloc::vec::Vec;
    let before = crate::mem::arena::used(crate::mem::arena::NUCLEUS_ARENA);
    let v: Vec<u64> = (0..10_000).collect();
    if v.iter().sum::<u64>() != 49_995_000 {
        return Err("heap data corrupted");
    }
    drop(v);
    let after = crate::mem::arena::used(crate::mem::arena::NUCLEUS_ARENA);
    kprintln!("nucleus heap used: {before} -> {after} bytes");
    if before != after {
        return Err("heap accounting leaked");
    }
    Ok(())
}
