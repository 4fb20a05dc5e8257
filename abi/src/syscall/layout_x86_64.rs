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

/// Size of `struct rt_sigframe` as built here: return address, `ucontext`, `siginfo`.
pub const SIGFRAME_SIZE: usize = 8 + UCONTEXT_SIZE + 128;
const UCONTEXT_SIZE: usize = 304;
const MCONTEXT_AT: usize = 40; // within ucontext
const SIGMASK_AT: usize = 296; // within ucontext
/// `sigcontext` register order: r8..r15 rdi rsi rbp rbx rdx rax rcx rsp rip eflags, as indices
/// into the register array.
const SIGCONTEXT_ORDER: [usize; 18] = [8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 1, 3, 0, 2, 7, 16, 17];

/// What a signal handler starts with.
pub struct SigFrame {
    /// Where the frame goes (the handler's stack pointer).
    pub at: u64,
    pub bytes: [u8; SIGFRAME_SIZE],
    /// The registers the handler starts with.
    pub regs: [u64; 34],
}

/// Builds the frame for delivering `sig` to a thread whose registers are `regs` (with the
/// interrupted system call's result already in place), below its stack pointer and red zone.
/// `sender` is the sending pid (siginfo `si_pid`, SI_USER).
pub fn build_sigframe(
    regs: &[u64; 34],
    sig: u32,
    handler: u64,
    restorer: u64,
    old_mask: u64,
    sender: u32,
) -> Option<SigFrame> {
    let at = ((regs[reg::RSP].checked_sub(128 + SIGFRAME_SIZE as u64)?) & !15) - 8;
    let mut b = [0u8; SIGFRAME_SIZE];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, restorer);
    let uc = 8;
    let mc = uc + MCONTEXT_AT;
    for (i, &r) in SIGCONTEXT_ORDER.iter().enumerate() {
        put(mc + i * 8, regs[r]);
    }
    // cs, gs, fs, ss (u16 each) as user selectors.
    put(mc + 144, 0x33 | (0x2b << 48));
    put(mc + 168, old_mask); // oldmask
    put(uc + SIGMASK_AT, old_mask);
    let si = 8 + UCONTEXT_SIZE;
    b[si..si + 4].copy_from_slice(&(sig as i32).to_le_bytes());
    b[si + 8..si + 12].copy_from_slice(&0i32.to_le_bytes()); // SI_USER
    b[si + 16..si + 20].copy_from_slice(&sender.to_le_bytes());
    let mut new = *regs;
    new[reg::RIP] = handler;
    new[reg::RSP] = at;
    new[reg::RDI] = sig as u64;
    new[reg::RSI] = at + si as u64;
    new[reg::RDX] = at + uc as u64;
    new[reg::RAX] = 0;
    new[reg::RFLAGS] &= !(1 << 10); // DF clear, as the ABI requires on function entry
    Some(SigFrame { at, bytes: b, regs: new })
}

/// Where `rt_sigreturn` finds the `ucontext`: at the stack pointer (the handler's `ret` popped
/// the return address).
pub fn ucontext_at(regs: &[u64; 34]) -> u64 {
    regs[reg::SP]
}

pub const UCONTEXT_LEN: usize = UCONTEXT_SIZE;

/// Restores registers and the signal mask from a `ucontext` (`rt_sigreturn`).
pub fn restore_from_ucontext(uc: &[u8; UCONTEXT_SIZE], regs: &mut [u64; 34]) -> u64 {
    let word = |off: usize| u64::from_le_bytes(uc[off..off + 8].try_into().unwrap_or_default());
    for (i, &r) in SIGCONTEXT_ORDER.iter().enumerate() {
        regs[r] = word(MCONTEXT_AT + i * 8);
    }
    word(SIGMASK_AT)
}
