//! AArch64 (asm-generic) layouts of the structures whose shape differs between architectures.

pub use super::layout_x86_64::Stat;

/// ELF `e_machine` of this architecture (EM_AARCH64).
pub const ELF_MACHINE: u16 = 183;

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

/// Indices into the register array the nucleus exchanges (x0..x30, sp, pc, pstate).
pub mod reg {
    pub const RETURN: usize = 0;
    pub const SP: usize = 31;
}

/// Signal frames are not built on AArch64 yet: `None` makes the Linux server fall back to the
/// default action (docs/caveats.md).
pub struct SigFrame {
    pub at: u64,
    pub bytes: [u8; SIGFRAME_SIZE],
    pub regs: [u64; 34],
}

pub const SIGFRAME_SIZE: usize = 0;
pub const UCONTEXT_LEN: usize = 0;

pub fn build_sigframe(
    _regs: &[u64; 34],
    _sig: u32,
    _handler: u64,
    _restorer: u64,
    _old_mask: u64,
    _sender: u32,
) -> Option<SigFrame> {
    None
}

pub fn ucontext_at(regs: &[u64; 34]) -> u64 {
    regs[reg::SP]
}

pub fn restore_from_ucontext(_uc: &[u8; UCONTEXT_LEN], _regs: &mut [u64; 34]) -> u64 {
    0
}
