//! AArch64 (asm-generic) layouts of the structures whose shape differs between architectures.

pub use super::layout_x86_64::Stat;

/// ELF `e_machine` of this architecture (EM_AARCH64).
pub const ELF_MACHINE: u16 = 183;

/// `open` flags whose values differ between architectures (arm64's asm/fcntl.h).
pub const O_DIRECTORY: u32 = 0o40000;
pub const O_NOFOLLOW: u32 = 0o100000;

pub const STAT_SIZE: usize = 128;

/// `struct epoll_event` has natural alignment here: `u32 events`, padding, `u64 data` at 8.
pub const EPOLL_EVENT_SIZE: usize = 16;
pub const EPOLL_EVENT_DATA_AT: usize = 8;

/// `struct stat` as asm-generic user space sees it (asm-generic/stat.h).
pub fn encode_stat(s: &Stat) -> [u8; STAT_SIZE] {
    let mut b = [0u8; STAT_SIZE];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &s.dev.to_le_bytes());
    put(8, &s.ino.to_le_bytes());
    put(16, &s.mode.to_le_bytes());
    put(20, &(s.nlink as u32).to_le_bytes());
    put(24, &s.uid.to_le_bytes());
    put(28, &s.gid.to_le_bytes());
    put(32, &s.rdev.to_le_bytes());
    put(48, &s.size.to_le_bytes());
    put(56, &(s.blksize as i32).to_le_bytes());
    put(64, &s.blocks.to_le_bytes());
    put(72, &s.atime.0.to_le_bytes());
    put(80, &s.atime.1.to_le_bytes());
    put(88, &s.mtime.0.to_le_bytes());
    put(96, &s.mtime.1.to_le_bytes());
    put(104, &s.ctime.0.to_le_bytes());
    put(112, &s.ctime.1.to_le_bytes());
    b
}

/// Indices into the register array the nucleus exchanges (Linux's `user_pt_regs` order:
/// x0..x30, sp, pc, pstate).
pub mod reg {
    pub const X0: usize = 0;
    pub const X1: usize = 1;
    pub const X2: usize = 2;
    pub const FP: usize = 29;
    pub const LR: usize = 30;
    pub const SP: usize = 31;
    pub const PC: usize = 32;
    pub const PSTATE: usize = 33;
    /// The register holding a system call's result.
    pub const RETURN: usize = X0;
}

/// `rt_sigreturn` for when a handler has no `SA_RESTORER`: `mov x8, #139; svc #0`, placed by the
/// Linux server on a page of its own (Linux uses the vDSO's trampoline).
pub const SIGRETURN_TRAMPOLINE: &[u8] = &[0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4];

/// Bytes of the FP/SIMD state the nucleus exchanges (`Kernel::thread_fpu`): v0..v31, then
/// FPSR and FPCR (32 bits each).
pub const FPU_BYTES: usize = 520;
/// The smallest alternate signal stack (`MINSIGSTKSZ`).
pub const MINSIGSTKSZ: u64 = 5120;

/// What kind of CPU exception a user fault was (from its exception class and syndrome).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Page,
    Alignment,
    Illegal,
    Divide,
    FloatingPoint,
    Breakpoint,
    General,
}

pub fn fault_kind(ec: u64, esr: u64) -> FaultKind {
    match ec {
        // Instruction and data aborts: alignment faults have their own status code.
        0x20 | 0x21 | 0x24 | 0x25 if esr & 0x3f == 0x21 => FaultKind::Alignment,
        0x20 | 0x21 | 0x24 | 0x25 => FaultKind::Page,
        0x22 | 0x26 => FaultKind::Alignment, // PC, SP alignment
        0x28 | 0x2c => FaultKind::FloatingPoint,
        0x30..=0x35 | 0x3c => FaultKind::Breakpoint,
        _ => FaultKind::Illegal,
    }
}

/// Rewinds a thread stopped in a system call so that it makes the call again when it resumes
/// (SA_RESTART): back over the 4-byte `svc`, x0 as it was (x8 still holds the number).
pub fn restart_syscall(regs: &mut [u64; 34], _nr: u32, arg0: u64) {
    regs[reg::PC] = regs[reg::PC].wrapping_sub(4);
    regs[reg::X0] = arg0;
}

const SIGINFO_SIZE: usize = 128;
/// `struct ucontext` (asm/ucontext.h): flags, link, stack (24), sigmask (8), 120 unused bytes
/// (glibc's 1024-bit sigset), then `struct sigcontext` at 176: fault_address, regs[31], sp, pc,
/// pstate, and a 4096-byte `__reserved` area of context records: an `fpsimd_context`, then
/// the terminator (an empty record).
const UCONTEXT_SIZE: usize = 4560;
const STACK_AT: usize = 16;
const SIGMASK_AT: usize = 40;
const MCONTEXT_AT: usize = 176;
/// `__reserved` within the ucontext.
const RESERVED_AT: usize = MCONTEXT_AT + 288;
const FPSIMD_MAGIC: u32 = 0x4650_8001;
/// `struct fpsimd_context`: head (magic, size), fpsr, fpcr, vregs[32].
const FPSIMD_SIZE: usize = 528;
/// The part of the ucontext `rt_sigreturn` reads (up to and including pstate).
pub const UCONTEXT_LEN: usize = MCONTEXT_AT + 8 + 34 * 8;
/// The FP record `rt_sigreturn` reads at `Restored::fp_at`: the `fpsimd_context`.
pub const FP_RECORD_LEN: usize = FPSIMD_SIZE;
/// siginfo + ucontext + the frame record (fp, lr) above them.
pub const SIGFRAME_SIZE: usize = SIGINFO_SIZE + UCONTEXT_SIZE + 16;
pub const SIGFRAME_MAX: usize = SIGFRAME_SIZE;

/// `stack_t`: an alternate signal stack as user space names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackT {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

/// What a signal frame is built from (see the x86_64 twin).
pub struct FrameArgs<'a> {
    pub regs: &'a [u64; 34],
    pub fpu: Option<&'a [u8; FPU_BYTES]>,
    pub sig: u32,
    pub info: [u8; SIGINFO_SIZE],
    pub handler: u64,
    pub restorer: u64,
    pub old_mask: u64,
    pub stack_top: u64,
    /// AArch64 has no red zone; kept for the shared contract.
    pub red_zone: bool,
    pub uc_stack: StackT,
    pub fault_addr: u64,
}

pub struct SigFrame {
    pub at: u64,
    pub bytes: [u8; SIGFRAME_MAX],
    pub len: usize,
    pub regs: [u64; 34],
}

/// Builds the frame for delivering a signal (Linux's `rt_sigframe`: siginfo, ucontext with the
/// registers, the mask and the FP/SIMD record; the frame record above).
pub fn build_sigframe(a: &FrameArgs) -> Option<SigFrame> {
    let regs = a.regs;
    let record = (a.stack_top.checked_sub(16)?) & !15;
    let at = (record.checked_sub((SIGINFO_SIZE + UCONTEXT_SIZE) as u64)?) & !15;
    let mut b = [0u8; SIGFRAME_MAX];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    let uc = SIGINFO_SIZE;
    put(uc + STACK_AT, a.uc_stack.sp);
    put(uc + STACK_AT + 8, a.uc_stack.flags as u64);
    put(uc + STACK_AT + 16, a.uc_stack.size);
    put(uc + SIGMASK_AT, a.old_mask);
    put(uc + MCONTEXT_AT, a.fault_addr);
    // regs[0..31], sp, pc, pstate: the same order as the register array.
    for (i, &r) in regs.iter().enumerate() {
        put(uc + MCONTEXT_AT + 8 + i * 8, r);
    }
    let rec = (record - at) as usize;
    put(rec, regs[reg::FP]);
    put(rec + 8, regs[reg::LR]);
    if let Some(f) = a.fpu {
        let r = uc + RESERVED_AT;
        b[r..r + 4].copy_from_slice(&FPSIMD_MAGIC.to_le_bytes());
        b[r + 4..r + 8].copy_from_slice(&(FPSIMD_SIZE as u32).to_le_bytes());
        b[r + 8..r + 12].copy_from_slice(&f[512..516]); // fpsr
        b[r + 12..r + 16].copy_from_slice(&f[516..520]); // fpcr
        b[r + 16..r + 16 + 512].copy_from_slice(&f[..512]);
        // The terminator record after it stays zero.
    }
    b[0..SIGINFO_SIZE].copy_from_slice(&a.info);
    let mut new = *regs;
    new[reg::X0] = a.sig as u64;
    new[reg::X1] = at;
    new[reg::X2] = at + uc as u64;
    new[reg::SP] = at;
    new[reg::FP] = record;
    new[reg::LR] = a.restorer;
    new[reg::PC] = a.handler;
    Some(SigFrame { at, bytes: b, len: SIGFRAME_SIZE, regs: new })
}

/// Where `rt_sigreturn` finds the ucontext: the stack pointer is back at the frame's start.
pub fn ucontext_at(regs: &[u64; 34]) -> u64 {
    regs[reg::SP] + SIGINFO_SIZE as u64
}

/// What `rt_sigreturn` restores besides the registers.
pub struct Restored {
    pub mask: u64,
    /// Where the first context record is (`FP_RECORD_LEN` bytes: the FP/SIMD state).
    pub fp_at: Option<u64>,
    pub stack: StackT,
}

/// Restores registers from a ucontext at user address `uc_at` (`rt_sigreturn`).
pub fn restore_from_ucontext(uc: &[u8; UCONTEXT_LEN], uc_at: u64, regs: &mut [u64; 34]) -> Restored {
    let word = |off: usize| u64::from_le_bytes(uc[off..off + 8].try_into().unwrap_or_default());
    for (i, r) in regs.iter_mut().enumerate() {
        *r = word(MCONTEXT_AT + 8 + i * 8);
    }
    Restored {
        mask: word(SIGMASK_AT),
        fp_at: Some(uc_at + RESERVED_AT as u64),
        stack: StackT { sp: word(STACK_AT), flags: word(STACK_AT + 8) as u32, size: word(STACK_AT + 16) },
    }
}

/// The FP state in an `fpsimd_context` record (`None` if the record is not one).
pub fn fpu_from_record(rec: &[u8]) -> Option<[u8; FPU_BYTES]> {
    let magic = u32::from_le_bytes(rec.get(0..4)?.try_into().ok()?);
    let size = u32::from_le_bytes(rec.get(4..8)?.try_into().ok()?);
    if magic != FPSIMD_MAGIC || size as usize != FPSIMD_SIZE || rec.len() < FPSIMD_SIZE {
        return None;
    }
    let mut f = [0u8; FPU_BYTES];
    f[..512].copy_from_slice(&rec[16..528]);
    f[512..516].copy_from_slice(&rec[8..12]);
    f[516..520].copy_from_slice(&rec[12..16]);
    Some(f)
}
