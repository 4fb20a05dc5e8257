//! AArch64 (asm-generic) layouts of the structures whose shape differs between architectures.

pub use super::layout_x86_64::Stat;

/// ELF `e_machine` of this architecture (EM_AARCH64).
pub const ELF_MACHINE: u16 = 183;

/// `open` flags whose values differ between architectures (arm64's asm/fcntl.h).
pub const O_DIRECTORY: u32 = 0o40000;
pub const O_NOFOLLOW: u32 = 0o100000;

pub const STAT_SIZE: usize = 128;

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

const SIGINFO_SIZE: usize = 128;
/// `struct ucontext` (asm/ucontext.h): flags, link, stack (24), sigmask (8), 120 unused bytes
/// (glibc's 1024-bit sigset), then `struct sigcontext` at 176: fault_address, regs[31], sp, pc,
/// pstate, and a 4096-byte `__reserved` area (left zero: a terminator record, no FP context).
const UCONTEXT_SIZE: usize = 4560;
const SIGMASK_AT: usize = 40;
const MCONTEXT_AT: usize = 176;
/// The part of the ucontext `rt_sigreturn` needs (up to and including pstate).
pub const UCONTEXT_LEN: usize = MCONTEXT_AT + 8 + 34 * 8;
/// siginfo + ucontext + the frame record (fp, lr) above them.
pub const SIGFRAME_SIZE: usize = SIGINFO_SIZE + UCONTEXT_SIZE + 16;

pub struct SigFrame {
    pub at: u64,
    pub bytes: [u8; SIGFRAME_SIZE],
    pub regs: [u64; 34],
}

/// Builds the frame for delivering `sig` (see the x86_64 twin for the contract).
pub fn build_sigframe(
    regs: &[u64; 34],
    sig: u32,
    handler: u64,
    restorer: u64,
    old_mask: u64,
    sender: u32,
) -> Option<SigFrame> {
    let record = (regs[reg::SP].checked_sub(16)?) & !15;
    let at = (record.checked_sub((SIGINFO_SIZE + UCONTEXT_SIZE) as u64)?) & !15;
    let mut b = [0u8; SIGFRAME_SIZE];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    let uc = SIGINFO_SIZE;
    put(uc + SIGMASK_AT, old_mask);
    // regs[0..31], sp, pc, pstate: the same order as the register array.
    for (i, &r) in regs.iter().enumerate() {
        put(uc + MCONTEXT_AT + 8 + i * 8, r);
    }
    let rec = (record - at) as usize;
    put(rec, regs[reg::FP]);
    put(rec + 8, regs[reg::LR]);
    b[0..4].copy_from_slice(&(sig as i32).to_le_bytes());
    b[16..20].copy_from_slice(&sender.to_le_bytes());
    let mut new = *regs;
    new[reg::X0] = sig as u64;
    new[reg::X1] = at;
    new[reg::X2] = at + uc as u64;
    new[reg::SP] = at;
    new[reg::FP] = record;
    new[reg::LR] = restorer;
    new[reg::PC] = handler;
    Some(SigFrame { at, bytes: b, regs: new })
}

/// Where `rt_sigreturn` finds the ucontext: the stack pointer is back at the frame's start.
pub fn ucontext_at(regs: &[u64; 34]) -> u64 {
    regs[reg::SP] + SIGINFO_SIZE as u64
}

/// Restores registers and the signal mask from a ucontext (`rt_sigreturn`).
pub fn restore_from_ucontext(uc: &[u8; UCONTEXT_LEN], regs: &mut [u64; 34]) -> u64 {
    let word = |off: usize| u64::from_le_bytes(uc[off..off + 8].try_into().unwrap_or_default());
    for (i, r) in regs.iter_mut().enumerate() {
        *r = word(MCONTEXT_AT + 8 + i * 8);
    }
    word(SIGMASK_AT)
}
