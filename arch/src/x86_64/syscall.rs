//! The `syscall` instruction's entry, the per-CPU area reached through GS, and the first
//! entry into user mode.
//!
//! `syscall` leaves the user stack pointer in place, so the entry swaps GS to the per-CPU area,
//! parks the user RSP there, loads the running task's kernel stack top, and builds the same
//! [`TrapFrame`] an interrupt would (vector [`SYSCALL_VECTOR`]). From then on a system call is
//! just another trap: one dispatcher, one return path, one frame layout for signals. The return
//! path leaves with `sysretq` when the frame allows it (RCX = RIP, R11 = RFLAGS, a lower-half
//! RIP: see `trap_return`), with `iretq` otherwise.

use super::gdt::{self, USER_CS, USER_DS};
use super::io::{rdmsr, wrmsr};
use super::trap::TrapFrame;
use core::arch::global_asm;

/// Pseudo-vector recorded in the frame of a system call.
pub const SYSCALL_VECTOR: u64 = 0x100;

const MSR_EFER: u32 = 0xc000_0080;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_FMASK: u32 = 0xc000_0084;
const MSR_FS_BASE: u32 = 0xc000_0100;
const MSR_GS_BASE: u32 = 0xc000_0101;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

/// Per-CPU data at GS:0 while in the kernel. Field offsets are used by the entry code.
#[repr(C)]
pub struct PerCpu {
    /// Top of the running task's kernel stack (offset 0).
    kernel_rsp: u64,
    /// Scratch for the user RSP during entry (offset 8).
    user_rsp: u64,
}

static mut PER_CPU: PerCpu = PerCpu { kernel_rsp: 0, user_rsp: 0 };

global_asm!(
    r#"
    .section .text.syscall, "ax"
    .global syscall_entry
syscall_entry:
    swapgs
    mov gs:[8], rsp
    mov rsp, gs:[0]
    push {user_ds}
    push qword ptr gs:[8]
    push r11
    push {user_cs}
    push rcx
    push 0
    push {vector}
    jmp trap_common_saved
"#,
    user_ds = const USER_DS as u64,
    user_cs = const USER_CS as u64,
    vector = const SYSCALL_VECTOR,
);

extern "C" {
    fn syscall_entry();
    fn trap_return();
}

/// Enables `syscall`/`sysret` and points GS at the per-CPU area. Call once per CPU.
pub fn init() {
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | 1); // SCE
                                          // STAR: kernel CS at 47:32; user base at 63:48 so that SS = base+8 and CS = base+16.
    wrmsr(MSR_STAR, ((gdt::KERNEL_DS as u64 & !3) << 48) | ((gdt::KERNEL_CS as u64) << 32));
    wrmsr(MSR_LSTAR, syscall_entry as *const () as u64);
    // Clear IF, TF, DF, AC on entry.
    wrmsr(MSR_FMASK, (1 << 9) | (1 << 8) | (1 << 10) | (1 << 18));
    wrmsr(MSR_GS_BASE, core::ptr::addr_of!(PER_CPU) as u64);
    wrmsr(MSR_KERNEL_GS_BASE, 0);
}

/// Sets the stack that traps and system calls from user mode land on (the running task's).
pub fn set_kernel_stack(top: u64) {
    // SAFETY: PER_CPU is this CPU's; the entry code reads it only with interrupts masked.
    unsafe { core::ptr::addr_of_mut!(PER_CPU.kernel_rsp).write(top) };
    gdt::set_kernel_stack(top);
}

/// Whether user code can change its thread pointer without a system call. Not on x86_64:
/// FS base is written only by `wrmsr` (CR4.FSGSBASE stays clear), so the kernel's record of it
/// is the truth and a system call need not read it back.
pub const USER_WRITES_THREAD_POINTER: bool = false;

/// The FS base last written (`u64::MAX`: none yet), so that switching back to the thread whose
/// value is loaded (a system call's round trip through a server) skips the `wrmsr`.
static FS_BASE_LOADED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(u64::MAX);

/// The user thread-pointer register (FS base on x86_64).
pub fn set_thread_pointer(v: u64) {
    use core::sync::atomic::Ordering;
    if FS_BASE_LOADED.load(Ordering::Relaxed) != v {
        wrmsr(MSR_FS_BASE, v);
        FS_BASE_LOADED.store(v, Ordering::Relaxed);
    }
}

pub fn thread_pointer() -> u64 {
    rdmsr(MSR_FS_BASE)
}

/// Leaves the kernel for user mode with the registers in `frame`. The frame is copied to the
/// top of the current kernel stack region below `stack_top` first, so that it can be anywhere.
///
/// # Safety
/// `frame` must describe a user context (user CS/SS, canonical lower-half RIP) in the address
/// space that is active, and `stack_top` must be the current task's kernel stack top.
pub unsafe fn enter_user(frame: &TrapFrame) -> ! {
    // SAFETY: the caller guarantees a user frame; `trap_return` pops exactly a TrapFrame from
    // RSP, swaps GS (the saved CS is a user selector) and returns with iretq.
    unsafe {
        core::arch::asm!(
            "mov rsp, {frame}",
            "jmp {ret}",
            frame = in(reg) frame as *const TrapFrame,
            ret = sym trap_return,
            options(noreturn)
        )
    }
}

impl TrapFrame {
    /// A frame that starts user code at `pc` with stack `sp`, interrupts enabled.
    pub fn new_user(pc: u64, sp: u64) -> TrapFrame {
        TrapFrame { rip: pc, rsp: sp, cs: USER_CS as u64, ss: USER_DS as u64, rflags: 0x202, ..TrapFrame::default() }
    }

    pub fn is_syscall(&self) -> bool {
        self.vector == SYSCALL_VECTOR
    }

    /// The system call number.
    pub fn syscall_nr(&self) -> u64 {
        self.rax
    }

    /// The six system call arguments, in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }

    pub fn set_return(&mut self, v: u64) {
        self.rax = v;
    }

    pub fn pc(&self) -> u64 {
        self.rip
    }

    pub fn sp(&self) -> u64 {
        self.rsp
    }

    pub fn set_pc(&mut self, pc: u64) {
        self.rip = pc;
    }

    pub fn set_sp(&mut self, sp: u64) {
        self.rsp = sp;
    }

    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// Number of words in [`TrapFrame::user_regs`].
pub const USER_REGS: usize = 34;

impl TrapFrame {
    /// The user registers as a plain array, in the order `abi`'s x86_64 layout module uses:
    /// rax rbx rcx rdx rsi rdi rbp rsp r8..r15 rip rflags (18 words; the rest are zero).
    pub fn user_regs(&self) -> [u64; USER_REGS] {
        let mut r = [0u64; USER_REGS];
        r[..18].copy_from_slice(&[
            self.rax,
            self.rbx,
            self.rcx,
            self.rdx,
            self.rsi,
            self.rdi,
            self.rbp,
            self.rsp,
            self.r8,
            self.r9,
            self.r10,
            self.r11,
            self.r12,
            self.r13,
            self.r14,
            self.r15,
            self.rip,
            self.rflags,
        ]);
        r
    }

    /// Replaces the user registers (same order). Privileged state cannot be changed: the code
    /// and stack selectors stay user ones, and only the arithmetic, direction and trap flags of
    /// RFLAGS are taken (interrupts stay enabled). A non-canonical RIP faults in user mode.
    pub fn set_user_regs(&mut self, r: &[u64; USER_REGS]) {
        [
            self.rax, self.rbx, self.rcx, self.rdx, self.rsi, self.rdi, self.rbp, self.rsp, self.r8, self.r9, self.r10,
            self.r11, self.r12, self.r13, self.r14, self.r15, self.rip,
        ] = [
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16],
        ];
        const USER_FLAGS: u64 = 0x0cd5 | (1 << 18); // CF PF AF ZF SF TF DF OF, AC
        self.rflags = (r[17] & USER_FLAGS) | 0x202;
        self.cs = USER_CS as u64;
        self.ss = USER_DS as u64;
        if self.rip >= super::user::USER_TOP {
            self.rip = 0; // faults in user mode instead of in iretq
        }
    }
}
