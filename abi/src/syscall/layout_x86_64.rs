//! x86_64 layouts of the structures whose shape differs between architectures.

/// ELF `e_machine` of this architecture (EM_X86_64).
pub const ELF_MACHINE: u16 = 62;

/// `open` flags whose values differ between architectures (asm-generic/fcntl.h).
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;

/// Fields of `struct stat`, independent of layout.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

pub const STAT_SIZE: usize = 144;

/// `struct epoll_event` is packed on x86_64: `u32 events`, then `u64 data` at offset 4.
pub const EPOLL_EVENT_SIZE: usize = 12;
pub const EPOLL_EVENT_DATA_AT: usize = 4;

/// `struct stat` as x86_64 user space sees it (asm/stat.h).
pub fn encode_stat(s: &Stat) -> [u8; STAT_SIZE] {
    let mut b = [0u8; STAT_SIZE];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &s.dev.to_le_bytes());
    put(8, &s.ino.to_le_bytes());
    put(16, &s.nlink.to_le_bytes());
    put(24, &s.mode.to_le_bytes());
    put(28, &s.uid.to_le_bytes());
    put(32, &s.gid.to_le_bytes());
    put(40, &s.rdev.to_le_bytes());
    put(48, &s.size.to_le_bytes());
    put(56, &s.blksize.to_le_bytes());
    put(64, &s.blocks.to_le_bytes());
    put(72, &s.atime.0.to_le_bytes());
    put(80, &s.atime.1.to_le_bytes());
    put(88, &s.mtime.0.to_le_bytes());
    put(96, &s.mtime.1.to_le_bytes());
    put(104, &s.ctime.0.to_le_bytes());
    put(112, &s.ctime.1.to_le_bytes());
    b
}

/// Indices into the register array the nucleus exchanges (`TrapFrame::user_regs` on x86_64).
pub mod reg {
    pub const RAX: usize = 0;
    pub const RDX: usize = 3;
    pub const RSI: usize = 4;
    pub const RDI: usize = 5;
    pub const RSP: usize = 7;
    pub const RIP: usize = 16;
    pub const RFLAGS: usize = 17;
    /// The register holding a system call's result.
    pub const RETURN: usize = RAX;
    /// The stack pointer.
    pub const SP: usize = RSP;
}

/// `rt_sigreturn` for when a handler has no `SA_RESTORER` (glibc always sets one on x86_64):
/// `mov eax, 15; syscall`.
pub const SIGRETURN_TRAMPOLINE: &[u8] = &[0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];

/// Bytes of the FP/SIMD state the nucleus exchanges (`Kernel::thread_fpu`): the FXSAVE image.
pub const FPU_BYTES: usize = 512;
/// The smallest alternate signal stack (`MINSIGSTKSZ`).
pub const MINSIGSTKSZ: u64 = 2048;

/// What kind of CPU exception a user fault was (from its vector and error code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    Page,
    Alignment,
    Illegal,
    Divide,
    FloatingPoint,
    Breakpoint,
    /// #GP and the other protection faults (SIGSEGV, SI_KERNEL).
    General,
}

pub fn fault_kind(vector: u64, _code: u64) -> FaultKind {
    match vector {
        14 => FaultKind::Page,
        0 => FaultKind::Divide,
        6 => FaultKind::Illegal,
        1 | 3 => FaultKind::Breakpoint,
        17 => FaultKind::Alignment,
        16 | 19 => FaultKind::FloatingPoint,
        _ => FaultKind::General,
    }
}

/// Rewinds a thread stopped in system call `nr` so that it makes the call again when it
/// resumes (SA_RESTART): back over the 2-byte `syscall`, the number in rax again.
pub fn restart_syscall(regs: &mut [u64; 34], nr: u32, _arg0: u64) {
    regs[reg::RIP] = regs[reg::RIP].wrapping_sub(2);
    regs[reg::RAX] = nr as u64;
}

const UCONTEXT_SIZE: usize = 304;
const SIGINFO_SIZE: usize = 128;
const MCONTEXT_AT: usize = 40; // within ucontext
const STACK_AT: usize = 16; // uc_stack within ucontext
const SIGMASK_AT: usize = 296; // within ucontext
const FPSTATE_PTR_AT: usize = MCONTEXT_AT + 184;
/// `struct rt_sigframe` as built here: return address, `ucontext`, `siginfo`; the FXSAVE area
/// follows above it, 64-byte aligned (Linux's layout).
const FRAME_CORE: usize = 8 + UCONTEXT_SIZE + SIGINFO_SIZE;
/// Room for the frame, its alignment padding and the FP area.
pub const SIGFRAME_MAX: usize = FRAME_CORE + 16 + 64 + FPU_BYTES;
/// `sigcontext` register order: r8..r15 rdi rsi rbp rbx rdx rax rcx rsp rip eflags, as indices
/// into the register array.
const SIGCONTEXT_ORDER: [usize; 18] = [8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 1, 3, 0, 2, 7, 16, 17];

/// `stack_t`: an alternate signal stack as user space names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackT {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

/// What a signal frame is built from.
pub struct FrameArgs<'a> {
    /// The registers to return to (the interrupted system call's result already in place).
    pub regs: &'a [u64; 34],
    /// The FP/SIMD state to save, if known.
    pub fpu: Option<&'a [u8; FPU_BYTES]>,
    pub sig: u32,
    /// The encoded `siginfo_t`.
    pub info: [u8; SIGINFO_SIZE],
    pub handler: u64,
    pub restorer: u64,
    pub old_mask: u64,
    /// The frame goes below this address (the stack pointer or the alternate stack's top).
    pub stack_top: u64,
    /// Skip the 128-byte red zone below `stack_top` (not on a fresh alternate stack).
    pub red_zone: bool,
    /// `uc_stack`: the alternate stack settings at delivery.
    pub uc_stack: StackT,
    /// `cr2` in the sigcontext (faults).
    pub fault_addr: u64,
}

/// What a signal handler starts with.
pub struct SigFrame {
    /// Where the frame goes (the handler's stack pointer).
    pub at: u64,
    /// Its bytes: `bytes[..len]` is written at `at`.
    pub bytes: [u8; SIGFRAME_MAX],
    pub len: usize,
    /// The registers the handler starts with.
    pub regs: [u64; 34],
}

/// Builds the frame for delivering a signal: `rt_sigframe` (return address, ucontext with the
/// registers, the mask and a pointer to the FP state, siginfo) and the FXSAVE area above it.
pub fn build_sigframe(a: &FrameArgs) -> Option<SigFrame> {
    let top = if a.red_zone { a.stack_top.checked_sub(128)? } else { a.stack_top };
    let fp_at = top.checked_sub(FPU_BYTES as u64)? & !63;
    let at = ((fp_at.checked_sub(FRAME_CORE as u64)?) & !15).checked_sub(8)?;
    let len = (fp_at + FPU_BYTES as u64 - at) as usize;
    let mut b = [0u8; SIGFRAME_MAX];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, a.restorer);
    let uc = 8;
    let mc = uc + MCONTEXT_AT;
    put(uc, 0); // uc_flags
    put(uc + STACK_AT, a.uc_stack.sp);
    put(uc + STACK_AT + 8, a.uc_stack.flags as u64);
    put(uc + STACK_AT + 16, a.uc_stack.size);
    for (i, &r) in SIGCONTEXT_ORDER.iter().enumerate() {
        put(mc + i * 8, a.regs[r]);
    }
    // cs, gs, fs, ss (u16 each) as user selectors.
    put(mc + 144, 0x33 | (0x2b << 48));
    put(mc + 168, a.old_mask); // oldmask
    put(mc + 176, a.fault_addr); // cr2
    if a.fpu.is_some() {
        put(uc + FPSTATE_PTR_AT, fp_at);
    }
    put(uc + SIGMASK_AT, a.old_mask);
    let si = 8 + UCONTEXT_SIZE;
    b[si..si + SIGINFO_SIZE].copy_from_slice(&a.info);
    if let Some(f) = a.fpu {
        let off = (fp_at - at) as usize;
        b[off..off + FPU_BYTES].copy_from_slice(f);
    }
    let mut new = *a.regs;
    new[reg::RIP] = a.handler;
    new[reg::RSP] = at;
    new[reg::RDI] = a.sig as u64;
    new[reg::RSI] = at + si as u64;
    new[reg::RDX] = at + uc as u64;
    new[reg::RAX] = 0;
    new[reg::RFLAGS] &= !(1 << 10); // DF clear, as the ABI requires on function entry
    Some(SigFrame { at, bytes: b, len, regs: new })
}

/// Where `rt_sigreturn` finds the `ucontext`: at the stack pointer (the handler's `ret` popped
/// the return address).
pub fn ucontext_at(regs: &[u64; 34]) -> u64 {
    regs[reg::SP]
}

/// The part of the ucontext `rt_sigreturn` reads.
pub const UCONTEXT_LEN: usize = UCONTEXT_SIZE;
/// The FP record `rt_sigreturn` reads at `Restored::fp_at`: the FXSAVE area.
pub const FP_RECORD_LEN: usize = FPU_BYTES;

/// What `rt_sigreturn` restores besides the registers.
pub struct Restored {
    pub mask: u64,
    /// Where the saved FP state is (`FP_RECORD_LEN` bytes), if the frame has one.
    pub fp_at: Option<u64>,
    pub stack: StackT,
}

/// Restores registers from a `ucontext` at user address `_uc_at` (`rt_sigreturn`).
pub fn restore_from_ucontext(uc: &[u8; UCONTEXT_SIZE], _uc_at: u64, regs: &mut [u64; 34]) -> Restored {
    let word = |off: usize| u64::from_le_bytes(uc[off..off + 8].try_into().unwrap_or_default());
    for (i, &r) in SIGCONTEXT_ORDER.iter().enumerate() {
        regs[r] = word(MCONTEXT_AT + i * 8);
    }
    let fp = word(FPSTATE_PTR_AT);
    Restored {
        mask: word(SIGMASK_AT),
        fp_at: (fp != 0).then_some(fp),
        stack: StackT { sp: word(STACK_AT), flags: word(STACK_AT + 8) as u32, size: word(STACK_AT + 16) },
    }
}

/// The FP state in a frame's FP record (the FXSAVE image as it is).
pub fn fpu_from_record(rec: &[u8]) -> Option<[u8; FPU_BYTES]> {
    rec.get(..FPU_BYTES)?.try_into().ok()
}
