//! Trace points that cost two instructions when tracing is off, and nothing else.
//!
//! A trace point written as `if ENABLED { record(..) }` in Rust makes the compiler treat the
//! whole function as one that calls out: values live across the (cold) call move to callee-saved
//! registers, which the prologue then pushes on every path, and inlining decisions change. On
//! the IPC fast path that cost ~110 guest instructions per system call with tracing off. Here the
//! test and the call are one `asm!` block that the compiler sees as clobbering nothing but the
//! flags: `cmp byte [flag], 0; jne` inline, and out of line (in `.text.trace_points`) a stub
//! that saves every caller-saved register, moves the six arguments into the C argument
//! registers, aligns the stack, calls the hook and jumps back.
//!
//! Invariants: the stub leaves every register but the flags as it found them (the kernel target
//! has no SSE state to save, and keeps the direction flag clear); it needs no red zone (the
//! kernel target has none) and about 130 bytes of stack plus the hook's frame.
//!
//! Must not: be used where the stack may be unusable, or with a hook that is not an
//! `extern "C" fn(u64, u64, u64, u64, u64, u64)`.

/// `trace_hook!(FLAG, HOOK; a, b, c, d, e, f)`: if the `AtomicBool` static `FLAG` is set, calls
/// `HOOK(a, b, c, d, e, f)` (an `extern "C" fn` of six `u64`s); otherwise costs a compare and
/// a branch. The arguments are evaluated either way (keep them cheap: values already at hand).
#[macro_export]
macro_rules! trace_hook {
    ($flag:path, $hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        // SAFETY: the stub saves and restores every register the hook may clobber except the
        // flags (declared clobbered by leaving out `preserves_flags`), keeps the stack 16-byte
        // aligned for the call and returns it to where it was; `$flag` is a static `AtomicBool`
        // (a byte load is atomic), `$hook` an `extern "C" fn` taking six `u64`s.
        unsafe {
            core::arch::asm!(
                "cmp byte ptr [rip + {flag}], 0",
                "jne 8f",
                "7:",
                ".pushsection .text.trace_points, \"ax\"",
                "8:",
                "push rax", "push rcx", "push rdx", "push rsi", "push rdi",
                "push r8", "push r9", "push r10", "push r11",
                "push rbp",
                "mov rbp, rsp",
                "and rsp, -16",
                "push {f}", "push {e}", "push {d}", "push {c}", "push {b}", "push {a}",
                "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop r8", "pop r9",
                "call {hook}",
                "mov rsp, rbp",
                "pop rbp",
                "pop r11", "pop r10", "pop r9", "pop r8",
                "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rax",
                "jmp 7b",
                ".popsection",
                flag = sym $flag,
                hook = sym $hook,
                a = in(reg) ($a) as u64,
                b = in(reg) ($b) as u64,
                c = in(reg) ($c) as u64,
                d = in(reg) ($d) as u64,
                e = in(reg) ($e) as u64,
                f = in(reg) ($f) as u64,
            )
        }
    };
}
