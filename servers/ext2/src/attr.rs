//! File attributes: `getattr`, `setattr` and the access-time policy.
//!
//! Permission checks are the caller's (the VFS has the credentials); this file exposes what
//! they need (mode, owner, group) and applies changes as Linux's ext2 does: any change sets
//! ctime, a size change also sets mtime, `chmod` never changes the file type. Clearing
//! set-user-ID bits on `chown` or on writes is also left to the VFS, which knows who asks.

use crate::device::BlockDevice;
use crate::fs::{AtimeMode, Ext2, Ino};
use crate::inode::{FileType, Inode, Timespec, PERMISSION_BITS, S_IFMT};
use abi::Errno;

/// What `stat` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// 512-byte sectors held, indirect blocks included (`st_blocks`).
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    /// Device number of a character or block device (`makedev` encoding), else 0.
    pub rdev: u64,
    /// Preferred I/O size: the block size.
    pub blksize: u32,
    /// ext2 inode flags (`FS_IOC_GETFLAGS`: immutable, append-only...).
    pub flags: u32,
    pub generation: u32,
}

impl Attr {
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode)
    }
}

/// A new time for `setattr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// The file system's clock (`UTIME_NOW`).
    Now,
    At(Timespec),
}

/// The changes of a `setattr`; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (the file type bits are ignored).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Truncate or extend (regular files only).
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

impl<D: BlockDevice> Ext2<D> {
    pub(crate) fn attr_of(&self, ino: Ino, inode: &Inode) -> Attr {
        let is_dev = matches!(inode.file_type(), FileType::CharDev | FileType::BlockDev);
        Attr {
            ino,
            mode: u32::from(inode.mode),
            nlink: u32::from(inode.links),
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            blocks: u64::from(inode.blocks),
            atime: inode.atime,
            mtime: inode.mtime,
            ctime: inode.ctime,
            rdev: if is_dev { inode.rdev() } else { 0 },
            blksize: self.geo.block_size,
            flags: inode.flags,
            generation: inode.generation,
        }
    }

    /// The attributes of `ino`.
    pub fn getattr(&mut self, ino: Ino) -> Result<Attr, Errno> {
        self.with_inode(ino, |fs, inode| fs.attr_of(ino, inode))
    }

    /// Applies `changes` to `ino` and returns the new attributes.
    pub fn setattr(&mut self, ino: Ino, changes: SetAttr) -> Result<Attr, Errno> {
        self.check_writable()?;
        let mut inode = self.inode(ino)?;
        let now = self.now();
        let resolve = |t: SetTime| match t {
            SetTime::Now => now,
            SetTime::At(t) => t,
        };
        if let Some(size) = changes.size {
            // Sets mtime and ctime and writes the inode, also when it fails part way.
            self.set_size(ino, &mut inode, size).map_err(|e| self.note_error(e))?;
        }
        if let Some(mode) = changes.mode {
            inode.mode = ((u32::from(inode.mode) & S_IFMT) | (mode & PERMISSION_BITS)) as u16;
        }
        if let Some(uid) = changes.uid {
            inode.uid = uid;
        }
        if let Some(gid) = changes.gid {
            inode.gid = gid;
        }
        if let Some(t) = changes.atime {
            inode.atime = resolve(t);
        }
        if let Some(t) = changes.mtime {
            inode.mtime = resolve(t);
        }
        inode.ctime = now;
        self.write_inode(ino, &inode)?;
        Ok(self.attr_of(ino, &inode))
    }

    /// Updates `ino`'s access time after a read, as the mount's [`AtimeMode`] says.
    pub(crate) fn touch_atime(&mut self, ino: Ino, inode: &mut Inode) -> Result<(), Errno> {
        if self.is_read_only() {
            return Ok(());
        }
        let now = self.now();
        let due = match self.atime_mode {
            AtimeMode::NoAtime => false,
            AtimeMode::Strict => inode.atime != now,
            AtimeMode::Relatime => {
                inode.atime <= inode.mtime
                    || inode.atime <= inode.ctime
                    || now.sec.saturating_sub(inode.atime.sec) >= 24 * 3600
            }
        };
        if due && inode.atime != now {
            inode.atime = now;
            self.write_inode(ino, inode)?;
        }
        Ok(())
    }
}
