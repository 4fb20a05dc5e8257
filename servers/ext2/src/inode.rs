//! On-disk inodes: the record format, file types and modes, timestamps and device numbers.
//!
//! An [`Inode`] is the decoded record plus the raw bytes it came from; writing it back patches
//! only the fields this crate owns, so unknown fields (ext4's extra fields, `i_faddr`, OS
//! fields, in-inode extended attributes after `i_extra_isize`) are preserved.
//!
//! Nanosecond timestamps live in the "extra" fields of large (256-byte) inodes, as ext4 and
//! e2fsprogs lay them out; 128-byte inodes keep whole seconds.

use crate::le::{get_u16, get_u32, put_bytes, put_u16, put_u32};
use alloc::vec;
use alloc::vec::Vec;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_ISGID: u32 = 0o2000;
/// The bits `chmod` may change.
pub const PERMISSION_BITS: u32 = 0o7777;

/// `i_flags`: the directory has an htree index (`dir_index`), which this crate does not
/// maintain; it clears the flag on any directory it modifies, as Linux's ext2 does.
pub const INDEX_FL: u32 = 0x1000;

/// Size of `i_block` in bytes; symlink targets shorter than this live there ("fast").
pub const INLINE_SYMLINK_MAX: usize = 60;
/// Hard-link limit (`EXT2_LINK_MAX`).
pub const LINK_MAX: u16 = 32000;

const EXTRA_ISIZE_OFF: usize = 128;
/// `i_extra_isize` of inodes this crate creates: everything up to `i_projid`, as e2fsprogs.
const NEW_EXTRA_ISIZE: u16 = 32;

/// A point in time (seconds since the epoch, nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

impl Timespec {
    pub const fn new(sec: i64, nsec: u32) -> Self {
        Timespec { sec, nsec }
    }
}

/// What kind of file an inode is; the discriminants are the ext2 directory-entry codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FileType {
    Unknown = 0,
    Regular = 1,
    Directory = 2,
    CharDev = 3,
    BlockDev = 4,
    Fifo = 5,
    Socket = 6,
    Symlink = 7,
}

impl FileType {
    /// The type encoded in a mode's `S_IFMT` bits (`Unknown` for an invalid pattern).
    pub fn from_mode(mode: u32) -> FileType {
        match mode & S_IFMT {
            S_IFREG => FileType::Regular,
            S_IFDIR => FileType::Directory,
            S_IFCHR => FileType::CharDev,
            S_IFBLK => FileType::BlockDev,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            S_IFLNK => FileType::Symlink,
            _ => FileType::Unknown,
        }
    }

    /// The type from an ext2 directory entry's file-type byte.
    pub fn from_dirent(code: u8) -> FileType {
        match code {
            1 => FileType::Regular,
            2 => FileType::Directory,
            3 => FileType::CharDev,
            4 => FileType::BlockDev,
            5 => FileType::Fifo,
            6 => FileType::Socket,
            7 => FileType::Symlink,
            _ => FileType::Unknown,
        }
    }

    /// The `S_IFMT` bits of this type (0 for `Unknown`).
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Unknown => 0,
            FileType::Regular => S_IFREG,
            FileType::Directory => S_IFDIR,
            FileType::CharDev => S_IFCHR,
            FileType::BlockDev => S_IFBLK,
            FileType::Fifo => S_IFIFO,
            FileType::Socket => S_IFSOCK,
            FileType::Symlink => S_IFLNK,
        }
    }

    /// The Linux `d_type` value (`DT_REG`...) for `getdents64`.
    pub fn dt(self) -> u8 {
        match self {
            FileType::Unknown => 0,
            FileType::Fifo => 1,
            FileType::CharDev => 2,
            FileType::Directory => 4,
            FileType::BlockDev => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }
}

/// A Linux (glibc `makedev`) device number from major and minor.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
}

/// The major number of a Linux device number.
pub fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

/// The minor number of a Linux device number.
pub fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

/// Decodes a 32-bit on-disk time plus its optional extra word (epoch bits and nanoseconds).
fn decode_time(lo: u32, extra: Option<u32>) -> Timespec {
    let mut sec = i64::from(lo as i32);
    let mut nsec = 0;
    if let Some(x) = extra {
        sec += i64::from(x & 3) << 32;
        nsec = x >> 2;
        if nsec > 999_999_999 {
            nsec = 0;
        }
    }
    Timespec { sec, nsec }
}

/// Encodes a time as the 32-bit field and the extra word (see `decode_time`).
fn encode_time(t: Timespec) -> (u32, u32) {
    let lo = t.sec as i32;
    let epoch = ((t.sec.wrapping_sub(i64::from(lo))) >> 32) as u32 & 3;
    (lo as u32, epoch | (t.nsec.min(999_999_999) << 2))
}

/// A decoded inode record.
#[derive(Clone, Debug)]
pub struct Inode {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Timespec,
    pub ctime: Timespec,
    pub mtime: Timespec,
    pub crtime: Timespec,
    pub dtime: u32,
    pub links: u16,
    /// `i_blocks`: 512-byte sectors held, including indirect and extended-attribute blocks.
    pub blocks: u32,
    pub flags: u32,
    /// The 15 block pointers (12 direct, single, double, triple indirect), or a fast symlink's
    /// target, or a device number.
    pub block: [u32; 15],
    pub generation: u32,
    /// The extended-attribute block (`ext_attr`), or 0.
    pub file_acl: u32,
    raw: Raw,
}

/// An inode record's bytes: inline up to 256 (every size mke2fs makes by default), on the
/// heap beyond, so that reading an inode allocates nothing in the common case. (The size
/// difference between the variants is the point.)
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum Raw {
    Inline([u8; INLINE_RAW], u16),
    Heap(Vec<u8>),
}

const INLINE_RAW: usize = 256;

impl Raw {
    fn from(bytes: &[u8]) -> Raw {
        match bytes.len() {
            n if n <= INLINE_RAW => {
                let mut buf = [0u8; INLINE_RAW];
                if let Some(dst) = buf.get_mut(..n) {
                    dst.copy_from_slice(bytes);
                }
                Raw::Inline(buf, n as u16)
            }
            _ => Raw::Heap(bytes.to_vec()),
        }
    }
}

impl core::ops::Deref for Raw {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Raw::Inline(buf, n) => buf.get(..usize::from(*n)).unwrap_or(&[]),
            Raw::Heap(v) => v,
        }
    }
}

/// Offsets of the extra timestamp words, by field end relative to `i_extra_isize`'s start.
const CTIME_EXTRA: usize = 132;
const MTIME_EXTRA: usize = 136;
const ATIME_EXTRA: usize = 140;
const CRTIME: usize = 144;
const CRTIME_EXTRA: usize = 148;

impl Inode {
    /// Decodes a raw record of `inode_size` bytes.
    pub fn parse(bytes: &[u8]) -> Inode {
        let raw = Raw::from(bytes);
        let b = &raw;
        let mode = get_u16(b, 0);
        let mut size = u64::from(get_u32(b, 4));
        if u32::from(mode) & S_IFMT == S_IFREG {
            size |= u64::from(get_u32(b, 108)) << 32;
        }
        let mut block = [0u32; 15];
        for (i, p) in block.iter_mut().enumerate() {
            *p = get_u32(b, 40 + 4 * i);
        }
        let extra = |off: usize| Self::extra_field(b, off);
        Inode {
            mode,
            uid: u32::from(get_u16(b, 2)) | u32::from(get_u16(b, 120)) << 16,
            gid: u32::from(get_u16(b, 24)) | u32::from(get_u16(b, 122)) << 16,
            size,
            atime: decode_time(get_u32(b, 8), extra(ATIME_EXTRA)),
            ctime: decode_time(get_u32(b, 12), extra(CTIME_EXTRA)),
            mtime: decode_time(get_u32(b, 16), extra(MTIME_EXTRA)),
            crtime: match extra(CRTIME) {
                Some(lo) => decode_time(lo, extra(CRTIME_EXTRA)),
                None => Timespec::default(),
            },
            dtime: get_u32(b, 20),
            links: get_u16(b, 26),
            blocks: get_u32(b, 28),
            flags: get_u32(b, 32),
            block,
            generation: get_u32(b, 100),
            file_acl: get_u32(b, 104),
            raw,
        }
    }

    /// A fresh inode record of `inode_size` bytes, all times `now`.
    pub fn new(inode_size: u32, mode: u32, uid: u32, gid: u32, now: Timespec) -> Inode {
        let mut raw = vec![0u8; inode_size as usize];
        if raw.len() >= EXTRA_ISIZE_OFF + usize::from(NEW_EXTRA_ISIZE) {
            put_u16(&mut raw, EXTRA_ISIZE_OFF, NEW_EXTRA_ISIZE);
        }
        let mut inode = Inode::parse(&raw);
        inode.mode = mode as u16;
        inode.uid = uid;
        inode.gid = gid;
        inode.atime = now;
        inode.ctime = now;
        inode.mtime = now;
        inode.crtime = now;
        inode
    }

    /// A word of the large-inode area, if `i_extra_isize` says it is there.
    fn extra_field(raw: &[u8], off: usize) -> Option<u32> {
        let extra_isize = usize::from(get_u16(raw, EXTRA_ISIZE_OFF));
        let present = raw.len() > EXTRA_ISIZE_OFF && off + 4 <= EXTRA_ISIZE_OFF + extra_isize && off + 4 <= raw.len();
        present.then(|| get_u32(raw, off))
    }

    fn has_extra_field(&self, off: usize) -> bool {
        Self::extra_field(&self.raw, off).is_some()
    }

    /// Writes the record (raw bytes with this crate's fields patched in) into `dst`.
    pub fn write_to(&self, dst: &mut [u8]) {
        put_bytes(dst, 0, &self.raw);
        put_u16(dst, 0, self.mode);
        put_u16(dst, 2, self.uid as u16);
        put_u32(dst, 4, self.size as u32);
        if self.is_regular() {
            put_u32(dst, 108, (self.size >> 32) as u32);
        }
        let times = [(8, ATIME_EXTRA, self.atime), (12, CTIME_EXTRA, self.ctime), (16, MTIME_EXTRA, self.mtime)];
        for (off, extra_off, t) in times {
            let (lo, extra) = encode_time(t);
            put_u32(dst, off, lo);
            if self.has_extra_field(extra_off) {
                put_u32(dst, extra_off, extra);
            }
        }
        if self.has_extra_field(CRTIME_EXTRA) {
            let (lo, extra) = encode_time(self.crtime);
            put_u32(dst, CRTIME, lo);
            put_u32(dst, CRTIME_EXTRA, extra);
        }
        put_u32(dst, 20, self.dtime);
        put_u16(dst, 24, self.gid as u16);
        put_u16(dst, 26, self.links);
        put_u32(dst, 28, self.blocks);
        put_u32(dst, 32, self.flags);
        for (i, p) in self.block.iter().enumerate() {
            put_u32(dst, 40 + 4 * i, *p);
        }
        put_u32(dst, 100, self.generation);
        put_u32(dst, 104, self.file_acl);
        put_u16(dst, 120, (self.uid >> 16) as u16);
        put_u16(dst, 122, (self.gid >> 16) as u16);
    }

    pub fn file_type(&self) -> FileType {
        FileType::from_mode(u32::from(self.mode))
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    pub fn is_regular(&self) -> bool {
        self.file_type() == FileType::Regular
    }

    /// A symlink whose target lives in `i_block` (the e2fsprogs rule: by size).
    pub fn is_fast_symlink(&self) -> bool {
        self.file_type() == FileType::Symlink && self.size < INLINE_SYMLINK_MAX as u64
    }

    /// Whether `i_block` holds block pointers (rather than a device number or symlink text).
    pub fn has_block_map(&self) -> bool {
        match self.file_type() {
            FileType::Regular | FileType::Directory => true,
            FileType::Symlink => !self.is_fast_symlink(),
            _ => false,
        }
    }

    /// `i_block` as bytes (a fast symlink's target).
    pub fn inline_bytes(&self) -> [u8; INLINE_SYMLINK_MAX] {
        let mut out = [0u8; INLINE_SYMLINK_MAX];
        for (chunk, p) in out.chunks_exact_mut(4).zip(self.block.iter()) {
            chunk.copy_from_slice(&p.to_le_bytes());
        }
        out
    }

    /// Stores up to 60 bytes into `i_block` (the rest zeroed).
    pub fn set_inline_bytes(&mut self, bytes: &[u8]) {
        let mut buf = [0u8; INLINE_SYMLINK_MAX];
        for (dst, src) in buf.iter_mut().zip(bytes) {
            *dst = *src;
        }
        for (p, chunk) in self.block.iter_mut().zip(buf.chunks_exact(4)) {
            *p = get_u32(chunk, 0);
        }
    }

    /// The device number of a character or block device inode.
    pub fn rdev(&self) -> u64 {
        let [old, new, ..] = self.block;
        if old != 0 {
            makedev((old >> 8) & 0xff, old & 0xff)
        } else {
            makedev((new & 0xfff00) >> 8, (new & 0xff) | ((new >> 12) & 0xfff00))
        }
    }

    /// Stores a device number the way Linux does: the old 8:8 encoding when it fits, else the
    /// new 12:20 one. Returns false if it does not fit in 12:20.
    pub fn set_rdev(&mut self, dev: u64) -> bool {
        let (ma, mi) = (major(dev), minor(dev));
        if ma >= 1 << 12 || mi >= 1 << 20 {
            return false;
        }
        self.block = [0; 15];
        if ma < 256 && mi < 256 {
            self.block[0] = (ma << 8) | mi;
        } else {
            self.block[1] = (mi & 0xff) | (ma << 8) | ((mi & !0xff) << 12);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trip() {
        for t in [
            Timespec::new(0, 0),
            Timespec::new(1_700_000_000, 123_456_789),
            Timespec::new(-1, 5),
            Timespec::new(i64::from(i32::MIN), 0),
            Timespec::new(1 << 31, 7),
            Timespec::new((1 << 32) + 5, 999_999_999),
        ] {
            let (lo, extra) = encode_time(t);
            assert_eq!(decode_time(lo, Some(extra)), t, "{t:?}");
        }
    }

    #[test]
    fn rdev_round_trip() {
        for (ma, mi) in [(1, 3), (4, 64), (8, 300), (259, 0), (4095, (1 << 20) - 1)] {
            let mut inode = Inode::new(256, S_IFCHR | 0o600, 0, 0, Timespec::default());
            assert!(inode.set_rdev(makedev(ma, mi)));
            assert_eq!((major(inode.rdev()), minor(inode.rdev())), (ma, mi));
        }
        let mut inode = Inode::new(128, S_IFBLK, 0, 0, Timespec::default());
        assert!(!inode.set_rdev(makedev(4096, 0)));
    }

    #[test]
    fn small_inodes_keep_seconds_only() {
        let mut inode = Inode::new(128, S_IFREG | 0o644, 70000, 70001, Timespec::new(10, 500));
        inode.size = (5 << 32) + 3;
        let mut raw = vec![0u8; 128];
        inode.write_to(&mut raw);
        let back = Inode::parse(&raw);
        assert_eq!(back.mtime, Timespec::new(10, 0));
        assert_eq!((back.uid, back.gid, back.size), (70000, 70001, (5 << 32) + 3));
    }
}
