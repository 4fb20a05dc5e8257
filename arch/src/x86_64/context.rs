//! Kernel-context switching: the callee-saved registers of a task live on its own stack, and a
//! [`Context`] is just the saved stack pointer. Switching is a function call for both sides,
//! so the compiler has already spilled every caller-saved register.

use core::arch::global_asm;

/// The saved kernel stack pointer of a task that is not running.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Context {
    pub sp: u64,
}

/// The first function a new context runs: `entry(arg0, arg1)`; it must never return.
pub type ContextEntry = extern "C" fn(usize, usize) -> !;

global_asm!(
    r#"
    .section .text.context, "ax"
    .global arch_context_switch
arch_context_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, [rsi]
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    .global arch_context_trampoline
arch_context_trampoline:
    mov rdi, r12
    mov rsi, r13
    xor rbp, rbp
    call r14
    ud2
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
    /// `stack_top` must be the 16-byte-aligned end of writable memory of at least 128 bytes
    /// that stays valid for as long as the context may run.
    pub unsafe fn new(stack_top: u64, entry: ContextEntry, arg0: usize, arg1: usize) -> Self {
        // Layout popped by `arch_context_switch`: r15 r14 r13 r12 rbx rbp, then `ret` into the
        // trampoline, which leaves rsp = stack_top (16-byte aligned) at its `call`.
        let frame: [u64; 7] = [
            0,                                           // r15
            entry as *const () as u64,                   // r14
            arg1 as u64,                                 // r13
            arg0 as u64,                                 // r12
            0,                                           // rbx
            0,                                           // rbp
            arch_context_trampoline as *const () as u64, // return address
        ];
        let sp = stack_top - (frame.len() as u64) * 8;
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
