//! x86_64 layouts of the structures whose shape differs between architectures.

/// ELF `e_machine` of this architecture (EM_X86_64).
pub const ELF_MACHINE: u16 = 62;

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
