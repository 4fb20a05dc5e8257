//! The file-system protocol: what the VFS and the Linux ABI server ask of a file-system server
//! (`ramfs`, `ext2`). Files are named by [`FileId`](super::FileId) (server, volume, inode);
//! names travel in the grant at [`NAMES_AT`](super::NAMES_AT), structures come back at offset
//! 0 of the grant. A file-system server knows nothing of paths, mounts, processes or file
//! descriptors: the VFS walks paths, the Linux server keeps offsets and open files. Permission
//! checks are the caller's; the server enforces only what the file system itself must
//! (EEXIST, ENOTEMPTY, ENOSPC, EROFS...).
//!
//! Every state-changing request carries `Sqe::rid`: a server with the *transparent* policy
//! answers a retried rid from its record instead of applying it twice.

/// `args = [dir, name_len, flags (LOOKUP_OPEN)]`, name at NAMES_AT; writes the child's
/// [`Attr`](super::Attr) at 0. Result: the child's FileId word. With LOOKUP_OPEN (a changing
/// request: it carries a rid) a regular file or directory found also gets an open reference,
/// as by OPEN, and `Cqe::aux` has LOOKUP_OPENED: a path walk for open(2) and the open in one.
pub const LOOKUP: u32 = 1;
/// LOOKUP flag: take an open reference on a regular file or directory found.
pub const LOOKUP_OPEN: u64 = 1;
/// LOOKUP `aux` bit: the open reference was taken.
pub const LOOKUP_OPENED: u64 = 1;
/// `args = [file]`; writes its Attr at 0. Result 0.
pub const GETATTR: u32 = 2;
/// `args = [file, valid (SET_* bits), mode, uid << 32 | gid, size]`; the grant holds
/// [`SetTimes`] at 0 on the way in and the new Attr at 0 on the way out. Result 0.
pub const SETATTR: u32 = 3;
/// `args = [file, offset, len]`; data into the grant. Result: bytes read (0 at the end).
pub const READ: u32 = 4;
/// `args = [file, offset, len, flags (WRITE_APPEND)]`; data from the grant. Result: bytes
/// written; `Cqe::aux`: the file offset after the write.
pub const WRITE: u32 = 5;
/// `args = [dir, cookie, len]`; `struct linux_dirent64` records into the grant, each `d_off`
/// the cookie of the next entry. Result: bytes written (0 at the end); `aux`: the next cookie.
pub const READDIR: u32 = 6;
/// `args = [dir, name_len, mode (with S_IFMT), rdev, uid << 32 | gid]`; name at NAMES_AT;
/// writes the new Attr at 0. EEXIST if the name exists. Result: the new FileId word.
pub const CREATE: u32 = 7;
/// `args = [dir, name_len, target_len, uid << 32 | gid]`; name at NAMES_AT, target right after
/// it; writes the new Attr at 0. Result: the new FileId word.
pub const SYMLINK: u32 = 8;
/// `args = [file, len]`; the target into the grant. Result: its length.
pub const READLINK: u32 = 9;
/// `args = [file, dir, name_len]`; name at NAMES_AT: another name for `file`. Result 0.
pub const LINK: u32 = 10;
/// `args = [dir, name_len, flags (UNLINK_DIR)]`; name at NAMES_AT. Result 0; `aux`: the
/// FileId word of the removed entry.
pub const UNLINK: u32 = 11;
/// `args = [old_dir, new_dir, old_len, new_len, flags (RENAME_*)]`; old name at NAMES_AT, new
/// name right after it. Linux's rename(2) semantics. Result 0.
pub const RENAME: u32 = 12;
/// `args = [file]`: an open file description now refers to it (an unlinked file lives on
/// until its last RELEASE). Result 0.
pub const OPEN: u32 = 13;
/// `args = [file]`: the last reference of an open file description went away. Result 0.
pub const RELEASE: u32 = 14;
/// `args = [volume FileId (any file of it)]`; writes [`StatFs`](super::StatFs) at 0.
pub const STATFS: u32 = 15;
/// `args = [volume FileId or 0 = every volume]`: write everything back. Result 0.
pub const SYNC: u32 = 16;
/// `args = [file, datasync]`: write the file's data (and, unless datasync, its metadata) back.
pub const FSYNC: u32 = 17;
/// `args = [kind (MOUNT_*), flags, source_len]`, source at NAMES_AT: a new volume (a fresh
/// tmpfs, or the file system on a device). Writes the root's Attr at 0. Result: the root's
/// FileId word.
pub const MOUNT: u32 = 18;
/// `args = [root FileId]`: forget the volume (EBUSY while files of it are open). Result 0.
pub const UMOUNT: u32 = 19;
/// `args = [file]`: the parent directory of directory `file` (its `..`). Result: FileId word;
/// Attr at 0.
pub const PARENT: u32 = 20;
/// `args = [dir, child FileId]`: the name under which `child` appears in `dir` (for getcwd).
/// Result: the name's length, the name at NAMES_AT.
pub const NAME_OF: u32 = 21;
/// No args; `Sqe::rid` names the request to look up. Result and aux: what the server answered
/// to that request, if it applied it and still holds its record; ENOMSG if not. The VFS asks
/// this when a request retried after its own death fails the VFS's checks (the name is gone,
/// or already there): the file system may have applied it before the dead instance answered.
pub const RECALL: u32 = 22;

/// SETATTR `valid` bits.
pub const SET_MODE: u64 = 1;
pub const SET_OWNER: u64 = 2;
pub const SET_SIZE: u64 = 4;
pub const SET_ATIME: u64 = 8;
pub const SET_MTIME: u64 = 16;
/// Set ctime to now even if nothing else changed (chown to the same owner...).
pub const SET_CTIME: u64 = 32;

/// WRITE flags.
pub const WRITE_APPEND: u64 = 1;
/// UNLINK flags.
pub const UNLINK_DIR: u64 = 1;
/// RENAME flags (as renameat2's).
pub const RENAME_NOREPLACE: u64 = 1;
pub const RENAME_EXCHANGE: u64 = 2;

/// MOUNT kinds.
pub const MOUNT_TMPFS: u64 = 1;
pub const MOUNT_DEVICE: u64 = 2;
/// The volume holding the boot loader's initial root file system (the same one every time).
pub const MOUNT_INITRAMFS: u64 = 3;

/// The times SETATTR sets (already resolved by the caller: no UTIME_NOW/OMIT here).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
#[repr(C)]
pub struct SetTimes {
    pub atime: super::Timespec,
    pub mtime: super::Timespec,
}

/// Opcode names, for traces.
pub const OPCODES: &[(u32, &str)] = &[
    (LOOKUP, "lookup"),
    (GETATTR, "getattr"),
    (SETATTR, "setattr"),
    (READ, "read"),
    (WRITE, "write"),
    (READDIR, "readdir"),
    (CREATE, "create"),
    (SYMLINK, "symlink"),
    (READLINK, "readlink"),
    (LINK, "link"),
    (UNLINK, "unlink"),
    (RENAME, "rename"),
    (OPEN, "open"),
    (RELEASE, "release"),
    (STATFS, "statfs"),
    (SYNC, "sync"),
    (FSYNC, "fsync"),
    (MOUNT, "mount"),
    (UMOUNT, "umount"),
    (PARENT, "parent"),
    (NAME_OF, "name_of"),
    (RECALL, "recall"),
];
