//! Boot-time tests chosen with `test=<name>` on the command line. Each prints
//! `@@TEST-PASS <name>` or `@@TEST-FAIL <name>: <reason>` and powers off; the host harness
//! (`tests/`) asserts on the console transcript.

use crate::{kprintln, poweroff};

/// An address in the kernel half that no architecture maps.
pub const UNMAPPED_KERNEL_ADDRESS: u64 = 0xffff_ff00_dead_0000;

/// Whether `name` is one of the tests below (the others are run by the `testdriver` server).
pub fn is_builtin(name: &str) -> bool {
    matches!(name, "pagefault" | "ticks" | "heap" | "trace-bench")
}

pub fn run(name: &str) -> ! {
    kprintln!("running self-test '{name}'");
    let result = match name {
        "pagefault" => pagefault(),
        "ticks" => ticks(),
        "heap" => heap(),
        "trace-bench" => trace_bench(),
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

/// The cost of a trace point (off, on, ring full) and the rate at which the port drains a full
/// ring, for `just bench-trace` (which also runs it under `-icount shift=0`: 1 ns = 1 guest
/// instruction).
fn trace_bench() -> Result<(), &'static str> {
    let b = crate::trace::self_bench();
    let tenths = |v: u64| (v / 10, v % 10);
    let (off, on, full) = (tenths(b.off_ns10), tenths(b.on_ns10), tenths(b.full_ns10));
    kprintln!(
        "trace-bench: trace point off {}.{} ns, on {}.{} ns, ring full {}.{} ns",
        off.0,
        off.1,
        on.0,
        on.1,
        full.0,
        full.1
    );
    if b.drained > 0 {
        kprintln!(
            "trace-bench: port drained {} records in {} ns: {} records/s",
            b.drained,
            b.drain_ns,
            b.drained * 1_000_000_000 / b.drain_ns.max(1)
        );
    } else {
        kprintln!("trace-bench: no trace port");
    }
    if crate::trace::lost() != 0 {
        return Err("the measurement left records counted as lost");
    }
    Ok(())
}
