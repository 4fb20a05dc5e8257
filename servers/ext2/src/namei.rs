//! Names: `lookup`, `create`, `mkdir`, `symlink`, `readlink`, `link`, `unlink`, `rmdir`, and
//! what happens to an inode whose last name and last open reference are gone.
//!
//! Every operation checks all it can before changing anything, and allocates before it links:
//! a new inode is written in full and only then given a name, and if naming it fails (no
//! space for the directory to grow) the inode is freed again, so a failed call leaves no
//! trace but timestamps.
//!
//! Conventions taken from Linux where the VFS would normally decide: `.` and `..` cannot be
//! created (`EEXIST`) nor removed (`rmdir`: `EINVAL` / `ENOTEMPTY`); names are 1 to 255 bytes
//! without `/` or NUL; a directory's `S_ISGID` passes its group (and, to subdirectories, the
//! bit) to new entries.

use crate::cache::Owner;
use crate::device::BlockDevice;
use crate::dir::NAME_MAX;
use crate::fs::{Ext2, Ino};
use crate::inode::{FileType, Inode, INLINE_SYMLINK_MAX, LINK_MAX, PERMISSION_BITS, S_IFDIR, S_IFLNK, S_IFMT, S_ISGID};
use crate::le::get_u32;
use abi::Errno;
use alloc::vec::Vec;

/// Longest symlink target (`PATH_MAX` minus the terminating NUL).
const SYMLINK_MAX: usize = 4095;
/// Magic number of an extended-attribute block.
const XATTR_MAGIC: u32 = 0xEA02_0000;

/// Checks a name for a new or looked-up entry.
fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() {
        Err(Errno::ENOENT)
    } else if name.len() > NAME_MAX {
        Err(Errno::ENAMETOOLONG)
    } else if name.iter().any(|&c| c == b'/' || c == 0) {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// Checks a name for a new entry: also not `.` or `..`.
fn check_new_name(name: &[u8]) -> Result<(), Errno> {
    check_name(name)?;
    if matches!(name, b"." | b"..") {
        return Err(Errno::EEXIST);
    }
    Ok(())
}

impl<D: BlockDevice> Ext2<D> {
    /// A directory that may receive a new entry `name`: exists, is a directory, is not
    /// deleted, and has no entry of that name.
    fn dir_for_new_entry(&mut self, dir: Ino, name: &[u8]) -> Result<Inode, Errno> {
        check_new_name(name)?;
        let parent = self.inode(dir)?;
        if !parent.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if parent.links == 0 {
            return Err(Errno::ENOENT);
        }
        if self.find_entry(&parent, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        Ok(parent)
    }

    /// The inode a directory entry names, which must be alive (else the entry is corrupt).
    pub(crate) fn entry_inode(&mut self, ino: Ino) -> Result<Inode, Errno> {
        let slot = self.live_entry(ino)?;
        self.parsed_inode(slot).cloned()
    }

    /// [`Ext2::entry_inode`]'s check alone: its slot in the parsed inodes, nothing copied.
    fn live_entry(&mut self, ino: Ino) -> Result<usize, Errno> {
        self.live_inode(ino).map_err(|e| if e == Errno::ESTALE { Errno::EUCLEAN } else { e })
    }

    /// The inode named `name` in directory `dir`.
    pub fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
        check_name(name)?;
        let parent = self.inode(dir)?;
        if !parent.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let found = self.find_entry(&parent, name).map_err(|e| self.note_error(e))?.ok_or(Errno::ENOENT)?;
        // Checked, not copied: the caller takes the number.
        self.live_entry(found.ino).map_err(|e| self.note_error(e))?;
        Ok(found.ino)
    }

    /// A new in-memory inode for a child of `parent` (setgid inheritance applied).
    fn new_inode(&mut self, parent: &Inode, mode: u32, uid: u32, gid: u32, ino: Ino) -> Result<Inode, Errno> {
        let mut mode = mode;
        let mut gid = gid;
        if u32::from(parent.mode) & S_ISGID != 0 {
            gid = parent.gid;
            if mode & S_IFMT == S_IFDIR {
                mode |= S_ISGID;
            }
        }
        let old = self.read_inode(ino)?;
        let mut inode = Inode::new(self.geo.inode_size, mode, uid, gid, self.now());
        inode.generation = old.generation.wrapping_add(1);
        inode.links = 1;
        Ok(inode)
    }

    /// Gives a fully written new inode its name; if that fails, frees the inode again.
    fn link_new(&mut self, dir: Ino, name: &[u8], ino: Ino, inode: Inode) -> Result<Ino, Errno> {
        let ft = inode.file_type();
        if let Err(e) = self.add_entry(dir, name, ino, ft) {
            let _ = self.free_inode(ino, inode);
            return Err(self.note_error(e));
        }
        Ok(ino)
    }

    /// Creates a regular file, device node, FIFO or socket (`mknod`); `mode` holds the type
    /// (none means regular) and permission bits, `rdev` the device number of a device node.
    pub fn create(&mut self, dir: Ino, name: &[u8], mode: u32, rdev: u64, uid: u32, gid: u32) -> Result<Ino, Errno> {
        self.check_writable()?;
        let ft = if mode & S_IFMT == 0 { FileType::Regular } else { FileType::from_mode(mode) };
        if mode & !(S_IFMT | PERMISSION_BITS) != 0
            || matches!(ft, FileType::Directory | FileType::Symlink | FileType::Unknown)
        {
            return Err(Errno::EINVAL);
        }
        let parent = self.dir_for_new_entry(dir, name)?;
        let ino = self.alloc_inode(dir, false)?;
        let mut inode = self.new_inode(&parent, ft.mode_bits() | (mode & PERMISSION_BITS), uid, gid, ino)?;
        if matches!(ft, FileType::CharDev | FileType::BlockDev) && !inode.set_rdev(rdev) {
            let _ = self.free_inode(ino, inode);
            return Err(Errno::EINVAL);
        }
        self.write_inode(ino, &inode)?;
        self.link_new(dir, name, ino, inode)
    }

    /// Creates directory `name` in `dir`.
    pub fn mkdir(&mut self, dir: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Ino, Errno> {
        self.check_writable()?;
        let parent = self.dir_for_new_entry(dir, name)?;
        if parent.links >= LINK_MAX {
            return Err(Errno::EMLINK);
        }
        let ino = self.alloc_inode(dir, true)?;
        let mut inode = self.new_inode(&parent, S_IFDIR | (mode & PERMISSION_BITS), uid, gid, ino)?;
        inode.links = 2;
        let mut goal = self.group_data_goal(ino);
        let made =
            self.map_or_alloc(ino, &mut inode, 0, &mut goal).and_then(|(phys, _)| self.init_dir_block(phys, ino, dir));
        if let Err(e) = made {
            let _ = self.free_inode(ino, inode);
            return Err(self.note_error(e));
        }
        inode.size = u64::from(self.geo.block_size);
        self.write_inode(ino, &inode)?;
        self.link_new(dir, name, ino, inode)?;
        let mut parent = self.inode(dir)?;
        parent.links += 1;
        self.write_inode(dir, &parent)?;
        Ok(ino)
    }

    /// Creates symbolic link `name` in `dir` pointing at `target`: in the inode if shorter
    /// than 60 bytes ("fast"), else in one block.
    pub fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<Ino, Errno> {
        self.check_writable()?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.contains(&0) {
            return Err(Errno::EINVAL);
        }
        if target.len() >= self.geo.block_size as usize || target.len() > SYMLINK_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let parent = self.dir_for_new_entry(dir, name)?;
        let ino = self.alloc_inode(dir, false)?;
        let mut inode = self.new_inode(&parent, S_IFLNK | 0o777, uid, gid, ino)?;
        inode.size = target.len() as u64;
        if target.len() < INLINE_SYMLINK_MAX {
            inode.set_inline_bytes(target);
        } else {
            let mut goal = self.group_data_goal(ino);
            let made = self.map_or_alloc(ino, &mut inode, 0, &mut goal).and_then(|(phys, _)| {
                let block = self.cache.fresh(u64::from(phys), Owner::File(ino), 0, target.len())?;
                block.get_mut(..target.len()).ok_or(Errno::EIO)?.copy_from_slice(target);
                Ok(())
            });
            if let Err(e) = made {
                let _ = self.free_inode(ino, inode);
                return Err(self.note_error(e));
            }
        }
        self.write_inode(ino, &inode)?;
        self.link_new(dir, name, ino, inode)
    }

    /// The target of symlink `ino`.
    pub fn readlink(&mut self, ino: Ino) -> Result<Vec<u8>, Errno> {
        let mut inode = self.inode(ino)?;
        if inode.file_type() != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        let len = inode.size as usize;
        if inode.size == 0 || inode.size > u64::from(self.geo.block_size) || len > SYMLINK_MAX {
            return Err(self.note_error(Errno::EUCLEAN));
        }
        let target = if inode.is_fast_symlink() {
            inode.inline_bytes().get(..len).ok_or(Errno::EUCLEAN)?.to_vec()
        } else {
            let phys = self.lookup_block(&inode, 0).map_err(|e| self.note_error(e))?.ok_or(Errno::EUCLEAN)?;
            self.cache.read(u64::from(phys))?.get(..len).ok_or(Errno::EUCLEAN)?.to_vec()
        };
        self.touch_atime(ino, &mut inode)?;
        Ok(target)
    }

    /// Adds name `name` in `dir` for existing non-directory `ino`.
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        self.check_writable()?;
        let target = self.inode(ino)?;
        if target.is_dir() {
            return Err(Errno::EPERM);
        }
        if target.links == 0 {
            return Err(Errno::ENOENT);
        }
        if target.links >= LINK_MAX {
            return Err(Errno::EMLINK);
        }
        self.dir_for_new_entry(dir, name)?;
        self.add_entry(dir, name, ino, target.file_type()).map_err(|e| self.note_error(e))?;
        let mut target = self.inode(ino)?;
        target.links += 1;
        target.ctime = self.now();
        self.write_inode(ino, &target)
    }

    /// Takes one link off `ino` (whose entry is already gone); frees it if that was the last
    /// link and nobody has it open.
    pub(crate) fn drop_link(&mut self, ino: Ino) -> Result<(), Errno> {
        let mut inode = self.read_inode(ino)?;
        inode.links = inode.links.saturating_sub(1);
        inode.ctime = self.now();
        if inode.is_dir() {
            // A directory loses its name and its `.` together.
            inode.links = 0;
        }
        if inode.links == 0 && !self.is_open(ino) {
            return self.free_inode(ino, inode);
        }
        if inode.links == 0 && inode.is_dir() {
            // Kept open (a cwd): empty now, freed on release.
            self.free_blocks_from(ino, &mut inode, 0)?;
            inode.size = 0;
        }
        self.write_inode(ino, &inode)
    }

    /// Removes name `name` (not a directory) from `dir`.
    pub fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        self.check_writable()?;
        check_name(name)?;
        let parent = self.inode(dir)?;
        if !parent.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let found = self.find_entry(&parent, name).map_err(|e| self.note_error(e))?.ok_or(Errno::ENOENT)?;
        let target = self.entry_inode(found.ino).map_err(|e| self.note_error(e))?;
        if target.is_dir() {
            return Err(Errno::EISDIR);
        }
        self.remove_entry(dir, found).map_err(|e| self.note_error(e))?;
        self.drop_link(found.ino).map_err(|e| self.note_error(e))
    }

    /// Removes empty directory `name` from `dir`.
    pub fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        self.check_writable()?;
        check_name(name)?;
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let parent = self.inode(dir)?;
        if !parent.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let found = self.find_entry(&parent, name).map_err(|e| self.note_error(e))?.ok_or(Errno::ENOENT)?;
        let victim = self.entry_inode(found.ino).map_err(|e| self.note_error(e))?;
        if !victim.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !self.dir_is_empty(&victim).map_err(|e| self.note_error(e))? {
            return Err(Errno::ENOTEMPTY);
        }
        self.remove_entry(dir, found).map_err(|e| self.note_error(e))?;
        let mut parent = self.inode(dir)?;
        parent.links = parent.links.saturating_sub(1).max(1);
        self.write_inode(dir, &parent)?;
        self.drop_link(found.ino).map_err(|e| self.note_error(e))
    }

    /// Frees inode `ino` (no links, no open references): its blocks, its extended-attribute
    /// block reference, then its number. The record keeps its mode and gets a deletion time.
    pub(crate) fn free_inode(&mut self, ino: Ino, mut inode: Inode) -> Result<(), Errno> {
        let was_dir = inode.is_dir();
        if inode.has_block_map() {
            self.free_blocks_from(ino, &mut inode, 0)?;
        }
        if inode.file_acl != 0 {
            self.release_xattr_block(&mut inode)?;
        }
        inode.block = [0; 15];
        inode.size = 0;
        inode.links = 0;
        inode.blocks = 0;
        inode.dtime = self.now().sec as u32;
        self.write_inode(ino, &inode)?;
        self.free_inode_number(ino, was_dir)
    }

    /// Drops `inode`'s reference to its shared extended-attribute block, freeing the block
    /// with its last reference.
    fn release_xattr_block(&mut self, inode: &mut Inode) -> Result<(), Errno> {
        let b = self.check_data_block(inode.file_acl)?;
        let block = self.cache.read(u64::from(b))?;
        if get_u32(block, 0) != XATTR_MAGIC {
            return Err(Errno::EUCLEAN);
        }
        let refs = get_u32(block, 4);
        if refs > 1 {
            crate::le::put_u32(self.cache.modify_range(u64::from(b), Owner::Meta, 4, 4)?, 4, refs - 1);
        } else {
            self.free_block(b)?;
        }
        inode.file_acl = 0;
        inode.blocks = inode.blocks.saturating_sub(self.geo.sectors_per_block());
        Ok(())
    }
}
