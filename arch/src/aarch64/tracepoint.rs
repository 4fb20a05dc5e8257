//! Trace points that cost three instructions when tracing is off, and nothing else.
//!
//! A trace point written as `if ENABLED { record(..) }` in Rust makes the compiler treat the
//! whole function as one that calls out: values live across the (cold) call move to callee-saved
//! registers, which the prologue then saves on every path, and inlining decisions change. Here
//! the test and the call are one `asm!` block: inline, `adrp`/`ldrb`/`cbnz` on the flag; out of
//! line (in `.text.trace_points`), a stub that saves x0-x18 and the frame record, moves the six
//! arguments into x0-x5, calls the hook and branches back. The vector registers the C ABI lets a
//! callee clobber (v0-v7, v16-v31) are declared clobbered instead of saved: the nucleus keeps
//! no vector values live across a trace point in practice, so this costs nothing when off and
//! saves 24 register stores per record when on.
//!
//! Invariants: the stub leaves every general register as it found them (flags and the
//! caller-saved vector registers are declared clobbered); SP stays 16-byte aligned; about 224
//! bytes of stack plus the hook's frame.
//!
//! Must not: be used where the stack may be unusable, or with a hook that is not an
//! `extern "C" fn(u64, u64, u64, u64, u64, u64)`.

/// `trace_hook!(FLAG, HOOK; a, b, c, d, e, f)`: if the `AtomicBool` static `FLAG` is set, calls
/// `HOOK(a, b, c, d, e, f)` (an `extern "C" fn` of six `u64`s); otherwise costs a load and a
/// branch. The arguments are evaluated either way (keep them cheap: values already at hand).
#[macro_export]
macro_rules! trace_hook {
    ($flag:path, $hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        // SAFETY: the stub saves and restores x0-x18, x29 and x30 around the call and keeps SP
        // 16-byte aligned; flags and the caller-saved vector registers are declared clobbered;
        // `$flag` is a static `AtomicBool` (a byte load is atomic), `$hook` an `extern "C" fn`
        // taking six `u64`s.
        unsafe {
            core::arch::asm!(
                "adrp {s}, {flag}",
                "ldrb {s:w}, [{s}, :lo12:{flag}]",
                "cbnz {s:w}, 8f",
                "7:",
                ".pushsection .text.trace_points, \"ax\"",
                "8:",
                "stp x29, x30, [sp, #-16]!",
                "mov x29, sp",
                "stp x0, x1, [sp, #-16]!",
                "stp x2, x3, [sp, #-16]!",
                "stp x4, x5, [sp, #-16]!",
                "stp x6, x7, [sp, #-16]!",
                "stp x8, x9, [sp, #-16]!",
                "stp x10, x11, [sp, #-16]!",
                "stp x12, x13, [sp, #-16]!",
                "stp x14, x15, [sp, #-16]!",
                "stp x16, x17, [sp, #-16]!",
                "str x18, [sp, #-16]!",
                "stp {a}, {b}, [sp, #-48]!",
                "stp {c}, {d}, [sp, #16]",
                "stp {e}, {f}, [sp, #32]",
                "ldp x0, x1, [sp]",
                "ldp x2, x3, [sp, #16]",
                "ldp x4, x5, [sp, #32]",
                "add sp, sp, #48",
                "bl {hook}",
                "ldr x18, [sp], #16",
                "ldp x16, x17, [sp], #16",
                "ldp x14, x15, [sp], #16",
                "ldp x12, x13, [sp], #16",
                "ldp x10, x11, [sp], #16",
                "ldp x8, x9, [sp], #16",
                "ldp x6, x7, [sp], #16",
                "ldp x4, x5, [sp], #16",
                "ldp x2, x3, [sp], #16",
                "ldp x0, x1, [sp], #16",
                "ldp x29, x30, [sp], #16",
                "b 7b",
                ".popsection",
                flag = sym $flag,
                hook = sym $hook,
                s = out(reg) _,
                a = in(reg) ($a) as u64,
                b = in(reg) ($b) as u64,
                c = in(reg) ($c) as u64,
                d = in(reg) ($d) as u64,
                e = in(reg) ($e) as u64,
                f = in(reg) ($f) as u64,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _,
                out("v24") _, out("v25") _, out("v26") _, out("v27") _,
                out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            )
        }
    };
}
