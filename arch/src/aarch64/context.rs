//! Kernel-context switching: the callee-saved registers of a task (x19-x29, the link register
//! and the low halves of v8-v15, per AAPCS64) live on its own stack, and a [`Context`] is just
//! the saved stack pointer. Switching is a function call for both sides, so the compiler has
//! already spilled every caller-saved register.

use core::arch::global_asm;

/// The saved kernel stack pointer of a task that is not running.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Context {
    pub sp: u64,
}

/// The first function a new context runs: `entry(arg0, arg1)`; it must never return.
pub type ContextEntry = extern "C" fn(usize, usize) -> !;

/// Bytes pushed by `arch_context_switch`: x19-x30 (12 words) and d8-d15 (8 words).
const SWITCH_FRAME: u64 = 160;

global_asm!(
    r#"
    .section .text.context, "ax"
    .global arch_context_switch
arch_context_switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    ldr x9, [x1]
    mov sp, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret

    .global arch_context_trampoline
arch_context_trampoline:
    mov x0, x20
    mov x1, x21
    mov x29, xzr
    mov x30, xzr
    blr x19
    brk #1
"#
);

extern "C" {
    fn arch_context_switch(from: *mut Context, to: *const Context);
    fn arch_context_trampoline();
}

impl Context {
    pub const fn empty() -> Self {
        Context { sp: 0 }
    }

    /// Builds the initial frame of a new context on the stack ending at `stack_top`.
    ///
    /// # Safety
    /// `stack_top` must be the 16-byte-aligned end of writable memory of at least 160 bytes
    /// that stays valid for as long as the context may run.
    pub unsafe fn new(stack_top: u64, entry: ContextEntry, arg0: usize, arg1: usize) -> Self {
        // Layout popped by `arch_context_switch`: x19..x30, d8..d15. The trampoline calls
        // `entry(x20, x21)` through x19 with SP = stack_top.
        let mut frame = [0u64; (SWITCH_FRAME / 8) as usize];
        frame[0] = entry as *const () as u64; // x19
        frame[1] = arg0 as u64; // x20
        frame[2] = arg1 as u64; // x21
        frame[11] = arch_context_trampoline as *const () as u64; // x30
        let sp = stack_top - SWITCH_FRAME;
        // SAFETY: the caller guarantees the memory below `stack_top` is ours to write.
        unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), sp as *mut u64, frame.len()) };
        Context { sp }
    }
}

/// Saves the current context into `from` and resumes `to`.
///
/// # Safety
/// `to` must hold a context made by [`Context::new`] or saved by an earlier switch, whose stack
/// is still allocated; `from` must stay valid until it is resumed. Interrupts should be masked.
pub unsafe fn switch(from: *mut Context, to: *const Context) {
    // SAFETY: forwarded to the caller's contract.
    unsafe { arch_context_switch(from, to) }
}
