//! `rename`, with Linux's semantics.
//!
//! * Replacing: a file may replace a non-directory, a directory may replace an empty
//!   directory (`ENOTDIR`, `EISDIR`, `ENOTEMPTY` otherwise); the replaced inode loses a link.
//! * Renaming onto another name of the same inode does nothing.
//! * Moving a directory to another parent rewrites its `..` and moves one link from the old
//!   parent to the new; moving it below itself is `EINVAL` (found by walking `..` from the
//!   destination to the root; a `..` cycle is `EUCLEAN`).
//! * [`RenameMode::NoReplace`] fails with `EEXIST` if the destination exists;
//!   [`RenameMode::Exchange`] swaps two existing names atomically (`ENOENT` if one is missing).
//! * `.` and `..` can be neither source nor destination (`EBUSY`, as the VFS says).
//!
//! The new name is written before the old one is removed, so a failure (no space for the
//! destination directory to grow) leaves the source where it was.

use crate::device::BlockDevice;
use crate::dir::{Found, NAME_MAX};
use crate::fs::{Ext2, Ino};
use crate::geometry::ROOT_INO;
use crate::inode::LINK_MAX;
use abi::Errno;
use alloc::collections::BTreeSet;

/// The `flags` of `renameat2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RenameMode {
    /// Replace the destination if it exists (plain `rename`).
    #[default]
    Replace,
    /// `RENAME_NOREPLACE`.
    NoReplace,
    /// `RENAME_EXCHANGE`.
    Exchange,
}

fn check_rename_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.iter().any(|&c| c == b'/' || c == 0) {
        return Err(Errno::EINVAL);
    }
    if matches!(name, b"." | b"..") {
        return Err(Errno::EBUSY);
    }
    Ok(())
}

impl<D: BlockDevice> Ext2<D> {
    /// Whether directory `anc` is `dir` or one of its ancestors. A `..` chain that revisits a
    /// directory (a cycle) is `EUCLEAN`; the visited set is as deep as the tree.
    fn is_ancestor(&mut self, anc: Ino, dir: Ino) -> Result<bool, Errno> {
        let mut cur = dir;
        let mut visited = BTreeSet::new();
        loop {
            if cur == anc {
                return Ok(true);
            }
            if cur == ROOT_INO {
                return Ok(false);
            }
            if !visited.insert(cur) {
                return Err(Errno::EUCLEAN);
            }
            let inode = self.entry_inode(cur)?;
            if !inode.is_dir() {
                return Err(Errno::EUCLEAN);
            }
            cur = self.dotdot(&inode)?.ino;
        }
    }

    /// Changes directory `ino`'s `..` to `parent`.
    fn set_dotdot(&mut self, ino: Ino, parent: Ino) -> Result<(), Errno> {
        let inode = self.entry_inode(ino)?;
        let at = self.dotdot(&inode)?;
        self.set_entry(ino, at, parent, crate::inode::FileType::Directory)
    }

    /// Adds `delta` (+1 or -1) to directory `ino`'s link count.
    fn adjust_dir_links(&mut self, ino: Ino, delta: i32) -> Result<(), Errno> {
        let mut inode = self.inode(ino)?;
        inode.links = if delta > 0 { inode.links.saturating_add(1) } else { inode.links.saturating_sub(1).max(1) };
        self.write_inode(ino, &inode)
    }

    fn touch_ctime(&mut self, ino: Ino) -> Result<(), Errno> {
        let mut inode = self.inode(ino)?;
        inode.ctime = self.now();
        self.write_inode(ino, &inode)
    }

    /// Renames `old_dir/old_name` to `new_dir/new_name`.
    pub fn rename(
        &mut self,
        old_dir: Ino,
        old_name: &[u8],
        new_dir: Ino,
        new_name: &[u8],
        mode: RenameMode,
    ) -> Result<(), Errno> {
        self.rename_inner(old_dir, old_name, new_dir, new_name, mode).map_err(|e| self.note_error(e))
    }

    fn rename_inner(
        &mut self,
        old_dir: Ino,
        old_name: &[u8],
        new_dir: Ino,
        new_name: &[u8],
        mode: RenameMode,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        check_rename_name(old_name)?;
        check_rename_name(new_name).map_err(|e| {
            if e == Errno::EBUSY && mode == RenameMode::NoReplace {
                Errno::EEXIST
            } else {
                e
            }
        })?;
        let old_parent = self.inode(old_dir)?;
        let new_parent = self.inode(new_dir)?;
        if !old_parent.is_dir() || !new_parent.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let old = self.find_entry(&old_parent, old_name)?.ok_or(Errno::ENOENT)?;
        let new = self.find_entry(&new_parent, new_name)?;
        let source = self.entry_inode(old.ino)?;
        let target = match new {
            Some(n) => Some(self.entry_inode(n.ino)?),
            None => None,
        };
        if new_parent.links == 0 && new.is_none() {
            return Err(Errno::ENOENT);
        }
        match (mode, new) {
            (RenameMode::NoReplace, Some(_)) => return Err(Errno::EEXIST),
            (RenameMode::Exchange, None) => return Err(Errno::ENOENT),
            _ => {}
        }
        if new.is_some_and(|n| n.ino == old.ino) {
            return Ok(());
        }
        let cross = old_dir != new_dir;
        let source_is_dir = source.is_dir();
        if mode == RenameMode::Exchange {
            let (Some(new), Some(target)) = (new, target) else { return Err(Errno::ENOENT) };
            return self.exchange(old_dir, old, source_is_dir, new_dir, new, target.is_dir());
        }
        if let Some(target) = &target {
            if source_is_dir && !target.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if !source_is_dir && target.is_dir() {
                return Err(Errno::EISDIR);
            }
        }
        if source_is_dir && cross {
            if self.is_ancestor(old.ino, new_dir)? {
                return Err(Errno::EINVAL);
            }
            if target.is_none() && new_parent.links >= LINK_MAX {
                return Err(Errno::EMLINK);
            }
        }
        if let Some(target) = &target {
            if target.is_dir() && !self.dir_is_empty(target)? {
                return Err(Errno::ENOTEMPTY);
            }
        }
        // Checks done: new name first, then the old one goes.
        let ft = source.file_type();
        match new {
            Some(n) => self.set_entry(new_dir, n, old.ino, ft)?,
            None => self.add_entry(new_dir, new_name, old.ino, ft)?,
        }
        self.remove_entry(old_dir, old)?;
        if let (Some(n), Some(target)) = (new, &target) {
            if target.is_dir() {
                // The replaced directory's `..` no longer counts for the new parent.
                self.adjust_dir_links(new_dir, -1)?;
            }
            self.drop_link(n.ino)?;
        }
        if source_is_dir && cross {
            self.set_dotdot(old.ino, new_dir)?;
            self.adjust_dir_links(old_dir, -1)?;
            self.adjust_dir_links(new_dir, 1)?;
        }
        self.touch_ctime(old.ino)
    }

    /// Swaps the inodes of two existing entries.
    fn exchange(
        &mut self,
        a_dir: Ino,
        a: Found,
        a_is_dir: bool,
        b_dir: Ino,
        b: Found,
        b_is_dir: bool,
    ) -> Result<(), Errno> {
        let cross = a_dir != b_dir;
        if cross {
            if a_is_dir && self.is_ancestor(a.ino, b_dir)? {
                return Err(Errno::EINVAL);
            }
            if b_is_dir && self.is_ancestor(b.ino, a_dir)? {
                return Err(Errno::EINVAL);
            }
            let a_parent = self.inode(a_dir)?;
            let b_parent = self.inode(b_dir)?;
            if (a_is_dir && !b_is_dir && b_parent.links >= LINK_MAX)
                || (b_is_dir && !a_is_dir && a_parent.links >= LINK_MAX)
            {
                return Err(Errno::EMLINK);
            }
        }
        let a_type = self.entry_inode(a.ino)?.file_type();
        let b_type = self.entry_inode(b.ino)?.file_type();
        self.set_entry(a_dir, a, b.ino, b_type)?;
        // `set_entry` re-reads the block, so two names sharing one block are both updated.
        self.set_entry(b_dir, b, a.ino, a_type)?;
        if cross {
            if a_is_dir {
                self.set_dotdot(a.ino, b_dir)?;
            }
            if b_is_dir {
                self.set_dotdot(b.ino, a_dir)?;
            }
            if a_is_dir != b_is_dir {
                let (gains, loses) = if a_is_dir { (b_dir, a_dir) } else { (a_dir, b_dir) };
                self.adjust_dir_links(gains, 1)?;
                self.adjust_dir_links(loses, -1)?;
            }
        }
        self.touch_ctime(a.ino)?;
        self.touch_ctime(b.ino)
    }
}
