//! The ext2 file system, as a library: mount an image on a [`BlockDevice`], then look up,
//! read, write, create, rename and delete files by inode number, the way a VFS calls a file
//! system. A server wraps it in a message loop; this crate has no IPC, no clock, no
//! randomness, no globals and no `unsafe`.
//!
//! # What it owns
//!
//! [`Ext2`] owns the device (through its [`BlockCache`]), the superblock, the group
//! descriptors and the open-reference table. Everything on disk is reached through the cache,
//! and the cache's write path is the single place where a write meets the device: it refuses
//! any block outside the file system. [`format`] makes new file systems (a RAM-disk tmpfs).
//!
//! # Invariants it keeps
//!
//! * The three views of free space agree after every operation: bitmap bits, group-descriptor
//!   counts and superblock totals (and `bg_used_dirs_count`); so do link counts (a directory
//!   has 2 + its subdirectories), `..` entries, `i_blocks` (data, indirect and xattr blocks in
//!   512-byte units), `i_size` (with `i_size_high` for regular files) and `i_dtime` on freed
//!   inodes. `e2fsck -fn` finds nothing to fix after `sync` (the host tests check this).
//! * Every change is made in the cache before an operation returns, so the cache's dirty set
//!   is the complete effect of the operations since the last commit (see `cache.rs`).
//! * Unknown bytes are preserved: superblock, descriptors and inodes are patched in place.
//!
//! # What it must never do
//!
//! Trust the disk. Every on-disk value is untrusted: a block pointer outside the file system
//! or into its metadata, an indirect tree that loops, a directory entry that does not fit, a
//! bitmap that disagrees with its count, an inode number out of range: each is `EUCLEAN` (or
//! `EIO` from the device) for that operation, and the superblock is marked as having errors so
//! that e2fsck runs. Never panic, never loop without a bound (loops are bounded by depth 3, by
//! the directory size, by the inode count, or by bitmaps as in `truncate.rs`), never allocate
//! in proportion to an on-disk value that was not first checked against the device size, and
//! never write outside the file system. The parsing code uses only checked accessors
//! (`le.rs`, `get`), which the `clippy::indexing_slicing` lint below enforces.
//!
//! # Scope
//!
//! Revisions 0 and 1, block sizes 1–4 KiB, INCOMPAT `filetype` only (anything else refuses to
//! mount), RO_COMPAT `sparse_super` and `large_file` (anything else mounts read-only), any
//! COMPAT feature; `dir_index` directories are treated as linear directories and lose their
//! index flag when modified; `ext_attr` blocks are kept and reference-counted on delete but
//! not otherwise interpreted; the resize inode is never touched. Permission checks, `O_APPEND`,
//! `setuid` clearing, reserved-block enforcement and ACLs are the caller's (the VFS's).
#![no_std]
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;
#[cfg(test)]
extern crate std;

// `alloc` names the allocation crate, so the module of `alloc.rs` is called `allocator`.
#[path = "alloc.rs"]
mod allocator;
mod attr;
mod bmap;
mod cache;
mod device;
mod dir;
mod file;
mod format;
mod fs;
mod geometry;
mod group;
mod inode;
mod le;
mod namei;
mod rename;
mod superblock;
mod truncate;

pub use abi::Errno;
pub use attr::{Attr, SetAttr, SetTime};
pub use bmap::{addressable_blocks, block_path, max_file_size, BlockPath};
pub use cache::{BlockCache, CacheStats, WriteBack};
pub use device::{BlockDevice, IoError, MemDevice};
pub use dir::NAME_MAX;
pub use file::{Span, BYPASS_BLOCKS};
pub use format::{format, FormatOptions};
pub use fs::{AtimeMode, Ext2, Ino, MountOptions, StatFs};
pub use inode::{
    major, makedev, minor, FileType, Timespec, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};
pub use rename::RenameMode;
