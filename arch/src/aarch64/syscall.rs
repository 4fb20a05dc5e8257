//! System calls (`svc #0` from EL0) and the first entry into user mode.
//!
//! A system call is an ordinary synchronous exception from EL0 (ESR.EC = [`SYSCALL_VECTOR`]):
//! the trap path builds a [`TrapFrame`] and hands it to the syscall hook; number in x8,
//! arguments in x0-x5, result in x0, as the Linux arm64 ABI says. One dispatcher, one return
//! path (`eret`), one frame layout for signals.
//!
//! The kernel runs on SP_EL1 and a trap from EL0 lands on whatever SP_EL1 held at the last
//! `eret` to EL0. Invariant: that is always the top of the running user thread's kernel stack
//! (a trap from EL0 pushes its frame there and pops it before returning), and [`enter_user`]
//! establishes it from the top recorded by [`set_kernel_stack`].
//!
//! The thread pointer is TPIDR_EL0, which user code also writes itself (no system call): the
//! trap path saves it in the frame on entry from EL0 and restores it on return, so the value
//! the kernel last set with [`set_thread_pointer`] applies to a thread entering user mode for
//! the first time ([`enter_user`]), and the thread's own writes win afterwards.

use super::trap::{TrapFrame, EC_SVC64};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// Exception class (ESR_EL1.EC) of `svc` from AArch64: what [`TrapFrame::is_syscall`] matches.
pub const SYSCALL_VECTOR: u64 = EC_SVC64;

/// Top of the running user thread's kernel stack (see the module invariant).
static KERNEL_STACK_TOP: AtomicU64 = AtomicU64::new(0);

/// Per-CPU system-call state. Nothing to program on AArch64 (`svc` goes through VBAR_EL1);
/// clears the thread pointer so that no boot value leaks into user mode.
pub fn init() {
    set_thread_pointer(0);
}

/// Sets the stack that traps and system calls from user mode land on (the running task's).
pub fn set_kernel_stack(top: u64) {
    KERNEL_STACK_TOP.store(top, Ordering::Relaxed);
}

/// Whether user code can change its thread pointer without a system call: yes, TPIDR_EL0 is
/// writable at EL0, so a system call reads it back ([`thread_pointer`]).
pub const USER_WRITES_THREAD_POINTER: bool = true;

/// The user thread-pointer register (TPIDR_EL0). Written only when it changes: under TCG a
/// system-register write ends the translation block (a switch between two servers and back
/// to the same thread keeps it).
pub fn set_thread_pointer(v: u64) {
    if thread_pointer() != v {
        // SAFETY: TPIDR_EL0 is a plain register the kernel does not use itself.
        unsafe { asm!("msr tpidr_el0, {}", in(reg) v, options(nomem, nostack, preserves_flags)) }
    }
}

pub fn thread_pointer() -> u64 {
    let v: u64;
    // SAFETY: reading TPIDR_EL0 has no side effects.
    unsafe { asm!("mrs {}, tpidr_el0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Leaves the kernel for user mode with the registers in `frame`. The kernel stack pointer is
/// reset to the top recorded by [`set_kernel_stack`], where the next trap from user mode will
/// build its frame; `frame` is only read, so it may live on that stack.
///
/// The thread pointer is the one last set with [`set_thread_pointer`] (a new thread's TLS), or,
/// when that is 0, the frame's `tpidr`: a forked child's frame is a copy of its parent's system
/// call frame, which holds the parent's live TPIDR_EL0, while the nucleus's own record of the
/// parent's thread pointer is stale on AArch64 (user code sets TPIDR_EL0 without a system call).
///
/// # Safety
/// `frame` must describe a user context (EL0t in SPSR, a user PC) in the address space that is
/// active, and [`set_kernel_stack`] must have recorded the current task's kernel stack top.
pub unsafe fn enter_user(frame: &TrapFrame) -> ! {
    let top = KERNEL_STACK_TOP.load(Ordering::Relaxed);
    // SAFETY: the caller guarantees a user frame. Interrupts are masked first so that nothing
    // uses the stack or ELR/SPSR while they are replaced; after `mov sp` only loads from the
    // frame remain (no stores), so it may overlap the stack; `eret` restores PSTATE from SPSR.
    unsafe {
        asm!(
            "msr daifset, #0xf",
            "mov sp, {top}",
            "add x10, x0, #320",
            "ldp q0, q1, [x10, #0]",
            "ldp q2, q3, [x10, #32]",
            "ldp q4, q5, [x10, #64]",
            "ldp q6, q7, [x10, #96]",
            "ldp q8, q9, [x10, #128]",
            "ldp q10, q11, [x10, #160]",
            "ldp q12, q13, [x10, #192]",
            "ldp q14, q15, [x10, #224]",
            "ldp q16, q17, [x10, #256]",
            "ldp q18, q19, [x10, #288]",
            "ldp q20, q21, [x10, #320]",
            "ldp q22, q23, [x10, #352]",
            "ldp q24, q25, [x10, #384]",
            "ldp q26, q27, [x10, #416]",
            "ldp q28, q29, [x10, #448]",
            "ldp q30, q31, [x10, #480]",
            "ldp x8, x9, [x0, #304]",
            "msr fpcr, x8",
            "msr fpsr, x9",
            "ldp x2, x3, [x0, #256]",
            "msr elr_el1, x2",
            "msr spsr_el1, x3",
            "ldr x4, [x0, #248]",
            "msr sp_el0, x4",
            "mrs x4, tpidr_el0",
            "cbnz x4, 2f",
            "ldr x4, [x0, #272]",
            "msr tpidr_el0, x4",
            "2:",
            "ldp x2, x3, [x0, #16]",
            "ldp x4, x5, [x0, #32]",
            "ldp x6, x7, [x0, #48]",
            "ldp x8, x9, [x0, #64]",
            "ldp x10, x11, [x0, #80]",
            "ldp x12, x13, [x0, #96]",
            "ldp x14, x15, [x0, #112]",
            "ldp x16, x17, [x0, #128]",
            "ldp x18, x19, [x0, #144]",
            "ldp x20, x21, [x0, #160]",
            "ldp x22, x23, [x0, #176]",
            "ldp x24, x25, [x0, #192]",
            "ldp x26, x27, [x0, #208]",
            "ldp x28, x29, [x0, #224]",
            "ldr x30, [x0, #240]",
            "ldp x0, x1, [x0, #0]",
            "eret",
            in("x0") frame as *const TrapFrame,
            top = in(reg) top,
            options(noreturn)
        )
    }
}

/// Number of words in [`TrapFrame::user_regs`].
pub const USER_REGS: usize = 34;

/// PSTATE bits user code may set through [`TrapFrame::set_user_regs`]: the condition flags
/// N, Z, C, V (the mode stays EL0t, every interrupt unmasked).
const USER_PSTATE: u64 = 0xf000_0000;

impl TrapFrame {
    /// The user registers as a plain array, in the order `abi`'s aarch64 layout module uses
    /// (Linux's `user_pt_regs`): x0..x30, sp, pc, pstate.
    pub fn user_regs(&self) -> [u64; USER_REGS] {
        let mut r = [0u64; USER_REGS];
        r[..31].copy_from_slice(&self.x);
        r[31] = self.sp;
        r[32] = self.elr;
        r[33] = self.spsr;
        r
    }

    /// Replaces the user registers (same order). Privileged state cannot be changed: the saved
    /// PSTATE stays EL0t with interrupts unmasked, only the condition flags are taken. A PC
    /// outside the user range faults in user mode.
    pub fn set_user_regs(&mut self, r: &[u64; USER_REGS]) {
        self.x.copy_from_slice(&r[..31]);
        self.sp = r[31];
        self.elr = if r[32] >= super::user::USER_TOP { 0 } else { r[32] };
        self.spsr = r[33] & USER_PSTATE;
    }

    /// A frame that starts user code at `pc` with stack `sp`, interrupts enabled (EL0t).
    pub fn new_user(pc: u64, sp: u64) -> TrapFrame {
        TrapFrame { elr: pc, sp, spsr: 0, ..TrapFrame::default() }
    }

    /// Whether this frame is a system call: a synchronous exception from EL0 with the SVC
    /// class. The vector is checked too because ESR_EL1 is not written for interrupts, so the
    /// frame of an IRQ taken in user mode holds the syndrome of the last system call.
    pub fn is_syscall(&self) -> bool {
        self.kind & 0xff == super::trap::VectorKind::EL0_SYNC && (self.esr >> 26) & 0x3f == SYSCALL_VECTOR
    }

    /// The system call number.
    pub fn syscall_nr(&self) -> u64 {
        self.x[8]
    }

    /// The six system call arguments, in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.x[0], self.x[1], self.x[2], self.x[3], self.x[4], self.x[5]]
    }

    pub fn set_return(&mut self, v: u64) {
        self.x[0] = v;
    }

    pub fn pc(&self) -> u64 {
        self.elr
    }

    pub fn sp(&self) -> u64 {
        self.sp
    }

    pub fn set_pc(&mut self, pc: u64) {
        self.elr = pc;
    }

    pub fn set_sp(&mut self, sp: u64) {
        self.sp = sp;
    }

    pub fn from_user(&self) -> bool {
        self.spsr & 0xf == 0
    }

    /// The user thread pointer saved at entry (TPIDR_EL0).
    pub fn thread_pointer(&self) -> u64 {
        self.tpidr
    }
}
