//! The protocols the servers speak to each other: opcodes, argument layouts and the
//! plain-data structures that travel in grants (DESIGN rule 2: fixed-size, `zerocopy`, no
//! pointers). One module per server interface, in the `*-api` style of Hubris: a server crate
//! and its clients depend on this module, never on each other.
//!
//! A request is an `ipc::Sqe` (opcode, six argument words, an optional grant) and its answer an
//! `ipc::Cqe`. Conventions shared by every protocol here:
//! * `Cqe::result` is a non-negative value or a negated Linux errno; IPC-layer failures
//!   (`ServerDied`...) are the IPC error codes below the errno range;
//! * a request that returns a structure writes it at offset 0 of the request's grant; names and
//!   paths travel in the same grant after it, at [`NAMES_AT`];
//! * requests that change state carry a request id (`Sqe::rid`) so that a retry after the
//!   server's death is answered, not applied twice.

pub mod blk;
pub mod fs;
pub mod tty;
pub mod vfs;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The name of `opcode` in the protocol of the server named `server`, for traces: the trace
/// analyzer labels requests with it.
pub fn opcode_name(server: &str, opcode: u32) -> Option<&'static str> {
    let table = match server {
        "vfs" => vfs::OPCODES,
        "ramfs" | "ext2" => fs::OPCODES,
        "tty" => tty::OPCODES,
        "blk" => blk::OPCODES,
        _ => return None,
    };
    table.iter().find(|(o, _)| *o == opcode).map(|&(_, n)| n)
}

/// Offset in a request's grant where names (paths, link targets) start; the space before it
/// is for the structure the reply writes ([`Attr`], [`StatFs`]...).
pub const NAMES_AT: u64 = 256;

/// The longest path a request may carry (Linux's PATH_MAX).
pub const PATH_MAX: usize = 4096;
/// The longest name of one directory entry.
pub const NAME_MAX: usize = 255;

/// A file as the file-system servers name it: the server (its index in the server table), the
/// volume inside that server (a mounted file system), and the inode number in that volume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u64);

impl FileId {
    const INO_BITS: u32 = 40;
    const VOLUME_BITS: u32 = 16;

    pub const fn new(server: usize, volume: u32, ino: u64) -> FileId {
        FileId(
            ((server as u64 & 0x7f) << (Self::INO_BITS + Self::VOLUME_BITS))
                | ((volume as u64 & 0xffff) << Self::INO_BITS)
                | (ino & ((1 << Self::INO_BITS) - 1)),
        )
    }

    /// The server that holds the file (an index into the server table).
    pub const fn server(self) -> usize {
        (self.0 >> (Self::INO_BITS + Self::VOLUME_BITS)) as usize & 0x7f
    }

    pub const fn volume(self) -> u32 {
        ((self.0 >> Self::INO_BITS) & 0xffff) as u32
    }

    pub const fn ino(self) -> u64 {
        self.0 & ((1 << Self::INO_BITS) - 1)
    }

    /// The same server and volume, another inode.
    pub const fn with_ino(self, ino: u64) -> FileId {
        FileId::new(self.server(), self.volume(), ino)
    }

    /// The device number `stat` reports for files of this volume (unique per server and volume).
    pub const fn dev(self) -> u64 {
        ((self.server() as u64) << 8) | (self.volume() as u64 & 0xff)
    }
}

/// A point in time, as `struct timespec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

/// The attributes of a file (what `stat` needs), written by LOOKUP, GETATTR, CREATE...
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Attr {
    /// The file's [`FileId`] word.
    pub file: u64,
    pub size: u64,
    /// Allocated size in 512-byte units.
    pub blocks: u64,
    /// For device files: the device number (Linux `dev_t` encoding).
    pub rdev: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    /// File type and permission bits (`S_IFMT` | 07777).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    pub _pad: u32,
}

impl Attr {
    pub const fn file_id(&self) -> FileId {
        FileId(self.file)
    }

    pub const fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    pub const fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// File-system statistics (what `statfs` needs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct StatFs {
    /// The file-system type (Linux's magic numbers: TMPFS_MAGIC, EXT2_SUPER_MAGIC...).
    pub fs_type: u64,
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_avail: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: u64,
    /// ST_RDONLY, ST_NOSUID... as `statfs.f_flags`.
    pub flags: u64,
}

/// Who asks: the credentials permission checks use (fsuid/fsgid), packed in one argument word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
}

impl Cred {
    pub const ROOT: Cred = Cred { uid: 0, gid: 0 };

    pub const fn to_word(self) -> u64 {
        ((self.uid as u64) << 32) | self.gid as u64
    }

    pub const fn from_word(w: u64) -> Cred {
        Cred { uid: (w >> 32) as u32, gid: w as u32 }
    }

    /// Whether this caller may access a file with `mode`/`uid`/`gid` as `want` asks
    /// (a mask of [`MAY_READ`], [`MAY_WRITE`], [`MAY_EXEC`]), with Linux's rules: root may read
    /// and write anything, and execute anything that has at least one execute bit (or is a
    /// directory); everybody else gets the owner, group or other bits.
    pub const fn may(self, mode: u32, uid: u32, gid: u32, want: u32) -> bool {
        if self.uid == 0 {
            if want & MAY_EXEC == 0 {
                return true;
            }
            return mode & 0o111 != 0 || mode & S_IFMT == S_IFDIR;
        }
        let bits = if self.uid == uid {
            (mode >> 6) & 7
        } else if self.gid == gid {
            (mode >> 3) & 7
        } else {
            mode & 7
        };
        bits & want == want
    }
}

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_ISVTX: u32 = 0o1000;

/// `DT_*` directory-entry types, from a mode.
pub const fn dtype_of(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFIFO => 1,
        S_IFCHR => 2,
        S_IFDIR => 4,
        S_IFBLK => 6,
        S_IFREG => 8,
        S_IFLNK => 10,
        S_IFSOCK => 12,
        _ => 0,
    }
}

/// Linux's `dev_t` encoding (`new_encode_dev`) of major/minor.
pub const fn makedev(major: u32, minor: u32) -> u64 {
    ((minor as u64 & 0xff) | ((major as u64 & 0xfff) << 8) | ((minor as u64 & !0xff) << 12)) & 0xffff_ffff
}

pub const fn major(dev: u64) -> u32 {
    ((dev >> 8) & 0xfff) as u32
}

pub const fn minor(dev: u64) -> u32 {
    ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32
}

/// Appends one `struct linux_dirent64` record (d_ino, d_off, d_reclen, d_type, name, NUL,
/// padded to 8) to `out` if it fits in `limit` bytes; false when it does not.
pub fn push_dirent64(out: &mut alloc::vec::Vec<u8>, limit: usize, ino: u64, next: u64, dtype: u8, name: &[u8]) -> bool {
    let reclen = (19 + name.len() + 1).next_multiple_of(8);
    if out.len() + reclen > limit {
        return false;
    }
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&next.to_le_bytes());
    out.extend_from_slice(&(reclen as u16).to_le_bytes());
    out.push(dtype);
    out.extend_from_slice(name);
    out.resize(out.len() + reclen - 19 - name.len(), 0);
    true
}

const _: () = assert!(core::mem::size_of::<Attr>() == 104);
const _: () = assert!(core::mem::size_of::<Attr>() <= NAMES_AT as usize);
const _: () = assert!(core::mem::size_of::<StatFs>() <= NAMES_AT as usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_round_trip() {
        let f = FileId::new(5, 3, 123_456);
        assert_eq!((f.server(), f.volume(), f.ino()), (5, 3, 123_456));
        assert_eq!(f.with_ino(2).ino(), 2);
        assert!((f.0 as i64) >= 0, "a file id is a non-negative result value");
    }

    #[test]
    fn devices() {
        let d = makedev(4, 64);
        assert_eq!((major(d), minor(d)), (4, 64));
        let big = makedev(259, 300);
        assert_eq!((major(big), minor(big)), (259, 300));
    }

    #[test]
    fn permissions() {
        let user = Cred { uid: 1000, gid: 100 };
        assert!(user.may(S_IFREG | 0o640, 1000, 0, MAY_READ | MAY_WRITE));
        assert!(!user.may(S_IFREG | 0o640, 0, 0, MAY_READ));
        assert!(user.may(S_IFREG | 0o640, 0, 100, MAY_READ));
        assert!(!user.may(S_IFREG | 0o640, 0, 100, MAY_WRITE));
        assert!(Cred::ROOT.may(S_IFREG, 5, 5, MAY_READ | MAY_WRITE));
        assert!(!Cred::ROOT.may(S_IFREG | 0o644, 5, 5, MAY_EXEC));
        assert!(Cred::ROOT.may(S_IFDIR, 5, 5, MAY_EXEC));
        assert_eq!(Cred::from_word(user.to_word()), user);
    }

    #[test]
    fn dirents() {
        let mut out = alloc::vec::Vec::new();
        assert!(push_dirent64(&mut out, 64, 7, 1, 8, b"hello"));
        assert_eq!(out.len(), 32);
        assert_eq!(u16::from_le_bytes([out[16], out[17]]), 32);
        assert_eq!(&out[19..24], b"hello");
        assert!(!push_dirent64(&mut out, 40, 8, 2, 8, b"x"));
    }
}
