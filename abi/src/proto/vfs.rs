//! The VFS protocol: what the Linux ABI server asks of `vfs`. The VFS owns the mount table and
//! walks paths across mounts (`.`, `..`, symbolic links, ELOOP after 40), checking search,
//! read and write permission with the caller's [`Cred`](super::Cred). It hands back a
//! [`FileId`](super::FileId); reads, writes and other operations on an open file go straight
//! from the Linux server to the file system's server, not through the VFS.
//!
//! Paths are at NAMES_AT of the grant (a second path right after the first); the resolved
//! object's [`Attr`](super::Attr) comes back at offset 0. `start` is the FileId word of the
//! directory a relative path starts from (0 = the root), the caller's cwd or a dirfd.
//!
//! Pseudo file systems the Linux server serves itself (`proc`, `sysfs`) are mounts whose
//! `server` is the caller: a walk that reaches one stops and answers [`REDIRECT`] with the
//! mount's root FileId as result and `Cqe::aux` = how many bytes of the path were consumed,
//! so that the caller walks the rest itself (the VFS never calls back into its client, which
//! is waiting for it).

/// `args = [start, path_len, flags (WALK_*), mode, cred, umask]`: resolves a path, creating the
/// last component with WALK_CREATE. Result: the FileId word; `aux`: WALK_CREATED if created.
pub const WALK: u32 = 1;
/// `args = [start, path_len, mode (with S_IFMT), rdev, cred, umask]`: mkdir/mknod.
pub const MKNOD: u32 = 2;
/// `args = [start, path_len, flags (UNLINK_DIR), cred]`.
pub const UNLINK: u32 = 3;
/// `args = [old_start, new_start, old_len, new_len, flags (fs::RENAME_*), cred]`.
pub const RENAME: u32 = 4;
/// `args = [old_start, new_start, old_len, new_len, flags (WALK_FOLLOW), cred]`: a hard link.
pub const LINK: u32 = 5;
/// `args = [start, path_len, target_len, cred]`: path, then the target.
pub const SYMLINK: u32 = 6;
/// `args = [dir FileId]`: the absolute path of a directory into the grant at 0. Result: length.
pub const GETPATH: u32 = 7;
/// `args = [fstype (FSTYPE_*), flags, source_len, target_len, cred]`: source, then the target
/// path. Result 0.
pub const MOUNT: u32 = 8;
/// `args = [path_len, flags, cred]`. Result 0.
pub const UMOUNT: u32 = 9;
/// The mount table as `/proc/mounts` text into the grant at 0. Result: length.
pub const MOUNTS: u32 = 10;
/// `args = [file]`: whether `file` is the root of a mount (result 1) and, if so, `aux` = the
/// FileId word of the directory it is mounted on (for `..` out of a pseudo file system).
pub const MOUNTPOINT_OF: u32 = 11;
/// No arguments: forget every directory the VFS remembers from earlier walks. Sent by the
/// client after it changed a directory's mode or owner behind the VFS (SETATTR goes to the
/// file system directly), and when it starts.
pub const FORGET: u32 = 12;

/// WALK flags.
/// Follow a symbolic link in the last component.
pub const WALK_FOLLOW: u64 = 1;
/// Create the last component as a regular file (with `mode`) if it does not exist.
pub const WALK_CREATE: u64 = 2;
/// With WALK_CREATE: fail with EEXIST if it exists.
pub const WALK_EXCL: u64 = 4;
/// The result must be a directory (ENOTDIR otherwise).
pub const WALK_DIRECTORY: u64 = 8;
/// Check read permission on the result.
pub const WALK_READ: u64 = 16;
/// Check write permission on the result (and EISDIR for a directory).
pub const WALK_WRITE: u64 = 32;
/// Check execute permission on the result.
pub const WALK_EXEC: u64 = 64;
/// An empty path means `start` itself (AT_EMPTY_PATH).
pub const WALK_EMPTY: u64 = 128;
/// Truncate a regular file to 0 (O_TRUNC).
pub const WALK_TRUNC: u64 = 256;
/// Permission checks only (access(2)): no EISDIR for WALK_WRITE on a directory.
pub const WALK_ACCESS: u64 = 512;
/// Also write the canonical absolute path of the result (links resolved) at NAMES_AT of the
/// grant; its length is `Cqe::aux >> 8`.
pub const WALK_PATH: u64 = 1024;
/// Take the open reference open(2) needs on a regular file or directory found (the file
/// system's OPEN, made with the last lookup); `aux` then has WALK_OPENED. A changing request.
pub const WALK_OPEN: u64 = 2048;

/// `aux` of WALK: the file was created by this walk.
pub const WALK_CREATED: u64 = 1;
/// `aux` of WALK: the open reference of WALK_OPEN was taken (else the caller sends OPEN).
pub const WALK_OPENED: u64 = 2;
/// `Cqe::flags` of a walk that stopped at a pseudo mount served by the caller.
pub const REDIRECT: u32 = 1;

/// MOUNT file-system types.
pub const FSTYPE_TMPFS: u64 = 1;
pub const FSTYPE_PROC: u64 = 2;
pub const FSTYPE_SYSFS: u64 = 3;
pub const FSTYPE_DEVTMPFS: u64 = 4;
pub const FSTYPE_EXT2: u64 = 5;

/// The name of a FSTYPE_* value (for /proc/mounts) and back.
pub fn fstype_name(t: u64) -> &'static str {
    match t {
        FSTYPE_TMPFS => "tmpfs",
        FSTYPE_PROC => "proc",
        FSTYPE_SYSFS => "sysfs",
        FSTYPE_DEVTMPFS => "devtmpfs",
        FSTYPE_EXT2 => "ext2",
        _ => "?",
    }
}

pub fn fstype_from_name(name: &str) -> Option<u64> {
    Some(match name {
        "tmpfs" | "ramfs" => FSTYPE_TMPFS,
        "proc" => FSTYPE_PROC,
        "sysfs" => FSTYPE_SYSFS,
        "devtmpfs" => FSTYPE_DEVTMPFS,
        "ext2" => FSTYPE_EXT2,
        _ => return None,
    })
}

/// Opcode names, for traces.
pub const OPCODES: &[(u32, &str)] = &[
    (WALK, "walk"),
    (MKNOD, "mknod"),
    (UNLINK, "unlink"),
    (RENAME, "rename"),
    (LINK, "link"),
    (SYMLINK, "symlink"),
    (GETPATH, "getpath"),
    (MOUNT, "mount"),
    (UMOUNT, "umount"),
    (MOUNTS, "mounts"),
    (MOUNTPOINT_OF, "mountpoint_of"),
];
