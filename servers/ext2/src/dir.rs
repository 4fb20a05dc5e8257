//! Directories: the entry format, lookups, insertion, removal and `readdir`.
//!
//! A directory is a file of whole blocks, each a chain of entries (`inode`, `rec_len`,
//! `name_len`, `file_type`, name) that exactly fills the block. A block is checked as a whole
//! before any of it is used (like Linux's `ext2_check_page`): a bad `rec_len` (under 12, not a
//! multiple of 4, shorter than the name, running past the block), an empty or illegal name, an
//! inode number that cannot name a file, or a hole in the directory is `EUCLEAN`. Work is
//! bounded by the directory's size, which is checked against the file-system size.
//!
//! `dir_index` (htree) directories are read and written as the linear directories they also
//! are: an htree's index blocks look like blocks holding one unused entry. Any directory this
//! crate modifies loses its `INDEX_FL`, as with Linux's ext2, so the stale index is never used.
//!
//! Readdir cookies are byte positions in the directory. Entries never move (removal merges an
//! entry into its predecessor, insertion splits an entry's slack), so a cookie stays valid
//! across changes; resuming at a cookie skips entries that start before it.

use crate::cache::Owner;
use crate::device::BlockDevice;
use crate::fs::{Ext2, Ino};
use crate::geometry::Geometry;
use crate::inode::{FileType, Inode, INDEX_FL};
use crate::le::{get_u16, get_u32, get_u8, put_bytes, put_u16, put_u32, put_u8};
use abi::Errno;
use alloc::vec::Vec;

const DIRENT_HEADER: usize = 8;
/// The longest name an entry can hold.
pub const NAME_MAX: usize = 255;

/// Space an entry with a name of `name_len` bytes needs (`EXT2_DIR_REC_LEN`).
pub(crate) fn rec_len_for(name_len: usize) -> usize {
    (DIRENT_HEADER + name_len + 3) & !3
}

/// One parsed directory entry of a block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawDirent {
    pub offset: usize,
    pub ino: Ino,
    pub rec_len: usize,
    pub name_len: usize,
    pub file_type: u8,
}

impl RawDirent {
    pub fn name<'a>(&self, block: &'a [u8]) -> &'a [u8] {
        let start = self.offset + DIRENT_HEADER;
        block.get(start..start + self.name_len).unwrap_or(&[])
    }
}

/// Walks the entries of a directory block, checking each, calling `f` until it returns false.
/// Allocation-free: lookups scan blocks in the cache in place.
fn walk_dir_block(
    block: &[u8],
    filetype: bool,
    geo: &Geometry,
    mut f: impl FnMut(RawDirent) -> bool,
) -> Result<(), Errno> {
    let mut off = 0;
    while off < block.len() {
        let ino = get_u32(block, off);
        let rec_len = usize::from(get_u16(block, off + 4));
        let (name_len, file_type) = if filetype {
            (usize::from(get_u8(block, off + 6)), get_u8(block, off + 7))
        } else {
            (usize::from(get_u16(block, off + 6)), 0)
        };
        let end = off.checked_add(rec_len).ok_or(Errno::EUCLEAN)?;
        if rec_len < rec_len_for(1) || rec_len % 4 != 0 || rec_len < rec_len_for(name_len) || end > block.len() {
            return Err(Errno::EUCLEAN);
        }
        let entry = RawDirent { offset: off, ino, rec_len, name_len, file_type };
        if ino != 0 {
            let name = entry.name(block);
            if name_len == 0 || !geo.is_file_ino(ino) || name.iter().any(|&c| c == b'/' || c == 0) {
                return Err(Errno::EUCLEAN);
            }
        }
        if !f(entry) {
            return Ok(());
        }
        off = end;
    }
    Ok(())
}

/// Parses and checks a whole directory block.
pub(crate) fn parse_dir_block(block: &[u8], filetype: bool, geo: &Geometry) -> Result<Vec<RawDirent>, Errno> {
    let mut entries = Vec::new();
    walk_dir_block(block, filetype, geo, |e| {
        entries.push(e);
        true
    })?;
    Ok(entries)
}

/// The live entry called `name` in a directory block, after checking the whole block.
fn find_in_block(block: &[u8], filetype: bool, geo: &Geometry, name: &[u8]) -> Result<Option<RawDirent>, Errno> {
    walk_dir_block(block, filetype, geo, |_| true)?;
    let mut found = None;
    walk_dir_block(block, filetype, geo, |e| {
        if e.ino != 0 && e.name(block) == name {
            found = Some(e);
            return false;
        }
        true
    })?;
    Ok(found)
}

/// Writes an entry header and name at `offset`.
pub(crate) fn put_dirent(
    block: &mut [u8],
    offset: usize,
    ino: Ino,
    rec_len: usize,
    name: &[u8],
    ft: u8,
    filetype: bool,
) {
    put_u32(block, offset, ino);
    put_u16(block, offset + 4, rec_len as u16);
    if filetype {
        put_u8(block, offset + 6, name.len() as u8);
        put_u8(block, offset + 7, ft);
    } else {
        put_u16(block, offset + 6, name.len() as u16);
    }
    put_bytes(block, offset + DIRENT_HEADER, name);
}

/// Where an entry is: its directory block (device number) and offset in it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    pub phys: u32,
    pub offset: usize,
    pub ino: Ino,
}

impl<D: BlockDevice> Ext2<D> {
    /// The number of blocks of directory `dir`. Its size must be whole blocks, and since a
    /// directory has no holes, no more than the blocks it holds (`i_blocks`) and than the
    /// file system: this bounds every directory scan by real, allocated blocks.
    pub(crate) fn dir_block_count(&self, dir: &Inode) -> Result<u64, Errno> {
        let bs = u64::from(self.geo.block_size);
        if !dir.size.is_multiple_of(bs)
            || dir.size > u64::from(dir.blocks) * 512
            || dir.size / bs > u64::from(self.geo.blocks_count)
        {
            return Err(Errno::EUCLEAN);
        }
        Ok(dir.size / bs)
    }

    /// Directory block `idx` of `dir`: its device block, a copy of it and its entries.
    pub(crate) fn dir_block(&mut self, dir: &Inode, idx: u64) -> Result<(u32, Vec<u8>, Vec<RawDirent>), Errno> {
        let phys = self.lookup_block(dir, idx)?.ok_or(Errno::EUCLEAN)?;
        let block = self.cache.read(u64::from(phys))?.to_vec();
        let entries = parse_dir_block(&block, self.filetype_feature(), &self.geo)?;
        Ok((phys, block, entries))
    }

    /// The entry called `name` in directory `dir`, if any.
    pub(crate) fn find_entry(&mut self, dir: &Inode, name: &[u8]) -> Result<Option<Found>, Errno> {
        let filetype = self.filetype_feature();
        for idx in 0..self.dir_block_count(dir)? {
            let phys = self.lookup_block(dir, idx)?.ok_or(Errno::EUCLEAN)?;
            let block = self.cache.read(u64::from(phys))?;
            if let Some(e) = find_in_block(block, filetype, &self.geo, name)? {
                return Ok(Some(Found { phys, offset: e.offset, ino: e.ino }));
            }
        }
        Ok(None)
    }

    /// Records a change to directory `dir_ino`: new mtime and ctime, index flag cleared.
    pub(crate) fn dir_changed(&mut self, dir_ino: Ino) -> Result<(), Errno> {
        let mut dir = self.inode(dir_ino)?;
        dir.flags &= !INDEX_FL;
        dir.mtime = self.now();
        dir.ctime = dir.mtime;
        self.write_inode(dir_ino, &dir)
    }

    fn dirent_type(&self, ft: FileType) -> u8 {
        if self.filetype_feature() {
            ft as u8
        } else {
            0
        }
    }

    /// Adds entry `name -> ino` to directory `dir_ino` (the caller checked that the name is
    /// new), in the first gap big enough or in a new block at the end.
    pub(crate) fn add_entry(&mut self, dir_ino: Ino, name: &[u8], ino: Ino, ft: FileType) -> Result<(), Errno> {
        let mut dir = self.inode(dir_ino)?;
        let needed = rec_len_for(name.len());
        let ft = self.dirent_type(ft);
        let filetype = self.filetype_feature();
        let nblocks = self.dir_block_count(&dir)?;
        for idx in 0..nblocks {
            let phys = self.lookup_block(&dir, idx)?.ok_or(Errno::EUCLEAN)?;
            // Find the place without copying the block: an unused entry big enough, or a
            // used one with enough slack to split: (offset, its rec_len, split at).
            let block = self.cache.read(u64::from(phys))?;
            walk_dir_block(block, filetype, &self.geo, |_| true)?;
            let mut place = None;
            walk_dir_block(block, filetype, &self.geo, |e| {
                let used = rec_len_for(e.name_len);
                if e.ino == 0 && e.rec_len >= needed {
                    place = Some((e.offset, e.rec_len, None));
                } else if e.ino != 0 && e.rec_len >= used + needed {
                    place = Some((e.offset, e.rec_len, Some(used)));
                }
                place.is_none()
            })?;
            let Some((off, rec_len, split)) = place else { continue };
            let owner = Owner::File(dir_ino);
            match split {
                None => {
                    let block = self.cache.modify_range(u64::from(phys), owner, off, 8 + name.len())?;
                    put_dirent(block, off, ino, rec_len, name, ft, filetype);
                }
                Some(used) => {
                    let block = self.cache.modify_range(u64::from(phys), owner, off + 4, used + 4 + name.len())?;
                    put_u16(block, off + 4, used as u16);
                    put_dirent(block, off + used, ino, rec_len - used, name, ft, filetype);
                }
            }
            return self.dir_changed(dir_ino);
        }
        // No room: a new block at the end.
        let bs = u64::from(self.geo.block_size);
        let new_size = dir.size.checked_add(bs).filter(|s| *s <= u64::from(u32::MAX)).ok_or(Errno::ENOSPC)?;
        let mut goal = self.alloc_goal(dir_ino, &dir, nblocks);
        let mapped = self.map_or_alloc(dir_ino, &mut dir, nblocks, &mut goal);
        let result = mapped.and_then(|(phys, _)| {
            let block = self.cache.fresh(u64::from(phys), Owner::File(dir_ino), 0, 8 + name.len())?;
            put_dirent(block, 0, ino, bs as usize, name, ft, filetype);
            dir.size = new_size;
            Ok(())
        });
        dir.flags &= !INDEX_FL;
        dir.mtime = self.now();
        dir.ctime = dir.mtime;
        self.write_inode(dir_ino, &dir)?;
        result
    }

    /// Removes the entry at `offset` of directory block `phys` of `dir_ino`, merging its space
    /// into the entry before it (or marking it unused if it is the first of its block).
    pub(crate) fn remove_entry(&mut self, dir_ino: Ino, at: Found) -> Result<(), Errno> {
        let filetype = self.filetype_feature();
        let block = self.cache.read(u64::from(at.phys))?;
        walk_dir_block(block, filetype, &self.geo, |_| true)?;
        // The entry, and the one before it (which absorbs its space).
        let (mut prev, mut found) = (None, None);
        walk_dir_block(block, filetype, &self.geo, |e| {
            if e.offset == at.offset && e.ino == at.ino {
                found = Some(e);
                return false;
            }
            prev = Some(e);
            true
        })?;
        let e = found.ok_or(Errno::EUCLEAN)?;
        let owner = Owner::File(dir_ino);
        match prev {
            Some(p) => {
                let block = self.cache.modify_range(u64::from(at.phys), owner, p.offset + 4, at.offset - p.offset)?;
                put_u32(block, at.offset, 0);
                put_u16(block, p.offset + 4, (p.rec_len + e.rec_len) as u16);
            }
            None => put_u32(self.cache.modify_range(u64::from(at.phys), owner, at.offset, 4)?, at.offset, 0),
        }
        self.dir_changed(dir_ino)
    }

    /// Points the entry at `at` of directory `dir_ino` to `ino` (rename over a name, `..`).
    pub(crate) fn set_entry(&mut self, dir_ino: Ino, at: Found, ino: Ino, ft: FileType) -> Result<(), Errno> {
        let ft = self.dirent_type(ft);
        let filetype = self.filetype_feature();
        let block = self.cache.read(u64::from(at.phys))?;
        walk_dir_block(block, filetype, &self.geo, |_| true)?;
        let mut present = false;
        walk_dir_block(block, filetype, &self.geo, |e| {
            present = e.offset == at.offset && e.ino == at.ino;
            !present
        })?;
        if !present {
            return Err(Errno::EUCLEAN);
        }
        let block = self.cache.modify_range(u64::from(at.phys), Owner::File(dir_ino), at.offset, 8)?;
        put_u32(block, at.offset, ino);
        if filetype {
            put_u8(block, at.offset + 7, ft);
        }
        self.dir_changed(dir_ino)
    }

    /// Whether directory `dir` holds nothing but `.` and `..`.
    pub(crate) fn dir_is_empty(&mut self, dir: &Inode) -> Result<bool, Errno> {
        for idx in 0..self.dir_block_count(dir)? {
            let (_, block, entries) = self.dir_block(dir, idx)?;
            if entries.iter().any(|e| e.ino != 0 && !matches!(e.name(&block), b"." | b"..")) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The `..` entry of directory `dir`: the second entry of its first block.
    pub(crate) fn dotdot(&mut self, dir: &Inode) -> Result<Found, Errno> {
        if self.dir_block_count(dir)? == 0 {
            return Err(Errno::EUCLEAN);
        }
        let (phys, block, entries) = self.dir_block(dir, 0)?;
        match entries.as_slice() {
            [dot, dotdot, ..] if dot.name(&block) == b"." && dotdot.name(&block) == b".." && dotdot.ino != 0 => {
                Ok(Found { phys, offset: dotdot.offset, ino: dotdot.ino })
            }
            _ => Err(Errno::EUCLEAN),
        }
    }

    /// Fills a new directory's first block with `.` and `..`.
    pub(crate) fn init_dir_block(&mut self, phys: u32, ino: Ino, parent: Ino) -> Result<(), Errno> {
        let bs = self.geo.block_size as usize;
        let ft = self.dirent_type(FileType::Directory);
        let filetype = self.filetype_feature();
        let block = self.cache.fresh(u64::from(phys), Owner::File(ino), 0, 24)?;
        put_dirent(block, 0, ino, 12, b".", ft, filetype);
        put_dirent(block, 12, parent, bs - 12, b"..", ft, filetype);
        Ok(())
    }

    /// Lists directory `dir` from `cookie` (0 for the start): `f(ino, name, file_type,
    /// next_cookie)` for each entry until it returns `false`. `next_cookie` resumes after that
    /// entry (use it as `d_off`). `file_type` is `Unknown` on images without `filetype`.
    pub fn readdir(
        &mut self,
        dir: Ino,
        cookie: u64,
        mut f: impl FnMut(Ino, &[u8], FileType, u64) -> bool,
    ) -> Result<(), Errno> {
        let mut inode = self.inode(dir)?;
        if !inode.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let bs = u64::from(self.geo.block_size);
        let filetype = self.filetype_feature();
        let nblocks = self.dir_block_count(&inode).map_err(|e| self.note_error(e))?;
        for idx in (cookie / bs)..nblocks {
            let phys = self.lookup_block(&inode, idx).and_then(|p| p.ok_or(Errno::EUCLEAN));
            let phys = phys.map_err(|e| self.note_error(e))?;
            // In place: the block is checked whole, then its entries are handed out.
            let walked = self.cache.read(u64::from(phys)).and_then(|block| {
                walk_dir_block(block, filetype, &self.geo, |_| true)?;
                let mut go_on = true;
                walk_dir_block(block, filetype, &self.geo, |e| {
                    let pos = idx * bs + e.offset as u64;
                    if pos < cookie || e.ino == 0 {
                        return true;
                    }
                    let ft = if filetype { FileType::from_dirent(e.file_type) } else { FileType::Unknown };
                    go_on = f(e.ino, e.name(block), ft, pos + e.rec_len as u64);
                    go_on
                })?;
                Ok(go_on)
            });
            if !walked.map_err(|e| self.note_error(e))? {
                break;
            }
        }
        self.touch_atime(dir, &mut inode)
    }
}
