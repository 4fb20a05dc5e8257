//! Regular-file data: `read`, `write` and size changes.
//!
//! Reads are bounded by the caller's buffer and the file size, never by anything else on
//! disk; holes read as zeros. Runs of contiguous blocks of at least [`BYPASS_BLOCKS`] are read
//! with one device access that bypasses the cache (see `BlockCache::read_run`); smaller reads
//! go through the cache so that re-reading a small file stays in memory.
//!
//! Writes allocate missing blocks next to the previous block of the file, so sequential
//! writes are contiguous; whole-block writes never read the old contents. A write that runs
//! out of space or meets corruption part way returns the bytes it wrote, as Linux does.
//! Extending a file zeroes the rest of its old last block, so that bytes past the old end of
//! file always read as zeros.

use crate::bmap::max_file_size;
use crate::cache::Owner;
use crate::device::BlockDevice;
use crate::fs::{Ext2, Ino};
use crate::inode::{FileType, Inode};
use crate::superblock::{REV_GOOD_OLD, RO_COMPAT_LARGE_FILE};
use abi::Errno;
use alloc::vec::Vec;

/// A piece of a file read: `len` bytes at byte `device_offset` of the device, or a hole
/// (`None`: zeros). See [`Ext2::read_map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub device_offset: Option<u64>,
    pub len: usize,
}

/// Contiguous runs at least this long (in blocks) are read past the cache.
pub const BYPASS_BLOCKS: u64 = 8;
/// Longest run mapped and read at once.
const MAX_RUN_BLOCKS: u64 = 1024;
/// Files at or past this size need `large_file`.
const LARGE_FILE_SIZE: u64 = 1 << 31;

impl<D: BlockDevice> Ext2<D> {
    /// Checks that `inode` is a regular file (`EISDIR` for a directory, else `EINVAL`).
    fn regular(inode: &Inode) -> Result<(), Errno> {
        match inode.file_type() {
            FileType::Regular => Ok(()),
            FileType::Directory => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The largest size a file may have on this file system.
    pub(crate) fn size_limit(&self) -> u64 {
        let limit = max_file_size(self.geo.block_shift);
        if self.sb.rev_level() == REV_GOOD_OLD {
            limit.min(LARGE_FILE_SIZE - 1)
        } else {
            limit
        }
    }

    /// Sets `large_file` before the first file reaches 2 GiB, as Linux does.
    fn need_large_file(&mut self, size: u64) -> Result<(), Errno> {
        if size >= LARGE_FILE_SIZE && !self.sb.has_ro_compat(RO_COMPAT_LARGE_FILE) {
            self.sb.set_feature_ro_compat(self.sb.feature_ro_compat() | RO_COMPAT_LARGE_FILE);
            self.write_super()?;
        }
        Ok(())
    }

    /// Copies `out.len()` bytes from the run of blocks starting at device block `p`, offset
    /// `in_block` into the first one.
    fn read_mapped(&mut self, p: u32, in_block: usize, out: &mut [u8]) -> Result<(), Errno> {
        let bs = self.geo.block_size as usize;
        let mut blk = u64::from(p);
        let mut done = 0;
        if in_block != 0 || out.len() < bs {
            let n = (bs - in_block).min(out.len());
            let src = self.cache.read(blk)?.get(in_block..in_block + n).ok_or(Errno::EIO)?;
            out.get_mut(..n).ok_or(Errno::EIO)?.copy_from_slice(src);
            done = n;
            blk += 1;
        }
        let whole = (out.len() - done) / bs;
        if whole as u64 >= BYPASS_BLOCKS {
            self.cache.read_run(blk, out.get_mut(done..done + whole * bs).ok_or(Errno::EIO)?)?;
            done += whole * bs;
            blk += whole as u64;
        }
        while done < out.len() {
            let n = (out.len() - done).min(bs);
            let src = self.cache.read(blk)?.get(..n).ok_or(Errno::EIO)?;
            out.get_mut(done..done + n).ok_or(Errno::EIO)?.copy_from_slice(src);
            done += n;
            blk += 1;
        }
        Ok(())
    }

    /// Reads from regular file `ino` at `offset` into `buf`; returns the bytes read (0 at or
    /// past the end of file).
    pub fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut inode = self.inode(ino)?;
        Self::regular(&inode)?;
        if offset >= inode.size || buf.is_empty() {
            return Ok(0);
        }
        let len = (inode.size - offset).min(buf.len() as u64) as usize;
        let bs = self.geo.block_size as usize;
        let shift = self.geo.block_shift;
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let lblk = pos >> shift;
            let in_block = (pos % bs as u64) as usize;
            let remaining = len - done;
            let want = ((in_block + remaining).div_ceil(bs) as u64).min(MAX_RUN_BLOCKS);
            let (phys, n) = self.map_run(&inode, lblk, want).map_err(|e| self.note_error(e))?;
            let chunk = remaining.min(n as usize * bs - in_block);
            let out = buf.get_mut(done..done + chunk).ok_or(Errno::EIO)?;
            match phys {
                None => out.fill(0),
                Some(p) => self.read_mapped(p, in_block, out)?,
            }
            done += chunk;
        }
        self.touch_atime(ino, &mut inode)?;
        Ok(len)
    }

    /// Where the bytes a [`read`](Self::read) of `len` bytes at `offset` would return are on
    /// the device: a list of [`Span`]s, in file order, covering `min(len, size - offset)`
    /// bytes (empty at or past the end of file). A server whose device is memory it can lend
    /// (a RAM disk) copies those ranges to its client directly instead of through a buffer.
    ///
    /// The device ranges hold the file's current contents only while the cache holds no
    /// dirty copy of them (right after a commit of the held dirty set, or after `sync`); the
    /// caller checks `cache().dirty_count() == 0`. The access time is updated as by `read`
    /// (which dirties only the inode, never the data the spans name).
    pub fn read_map(&mut self, ino: Ino, offset: u64, len: usize) -> Result<Vec<Span>, Errno> {
        let mut inode = self.inode(ino)?;
        Self::regular(&inode)?;
        let mut spans: Vec<Span> = Vec::new();
        if offset >= inode.size || len == 0 {
            return Ok(spans);
        }
        let len = (inode.size - offset).min(len as u64) as usize;
        let bs = self.geo.block_size as usize;
        let shift = self.geo.block_shift;
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let in_block = (pos % bs as u64) as usize;
            let remaining = len - done;
            let want = ((in_block + remaining).div_ceil(bs) as u64).min(MAX_RUN_BLOCKS);
            let (phys, n) = self.map_run(&inode, pos >> shift, want).map_err(|e| self.note_error(e))?;
            let chunk = remaining.min(n as usize * bs - in_block);
            let at = phys.map(|p| (u64::from(p) << shift) + in_block as u64);
            match spans.last_mut() {
                Some(last) if last.device_offset.zip(at).is_some_and(|(a, b)| a + last.len as u64 == b) => {
                    last.len += chunk
                }
                Some(last) if last.device_offset.is_none() && at.is_none() => last.len += chunk,
                _ => spans.push(Span { device_offset: at, len: chunk }),
            }
            done += chunk;
        }
        self.touch_atime(ino, &mut inode)?;
        Ok(spans)
    }

    /// Writes `data` to regular file `ino` at `offset`, growing it as needed; returns the
    /// bytes written (short only if space ran out or corruption was met part way).
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.check_writable()?;
        let mut inode = self.inode(ino)?;
        Self::regular(&inode)?;
        if data.is_empty() {
            return Ok(0);
        }
        let limit = self.size_limit();
        if offset >= limit {
            return Err(Errno::EFBIG);
        }
        let len = (limit - offset).min(data.len() as u64) as usize;
        self.need_large_file(offset + len as u64)?;
        if offset + len as u64 > inode.size {
            self.zero_tail(ino, &inode)?;
        }
        let bs = self.geo.block_size as usize;
        let shift = self.geo.block_shift;
        let mut goal = self.alloc_goal(ino, &inode, offset >> shift);
        let mut written = 0;
        let mut error = None;
        while written < len {
            let pos = offset + written as u64;
            let in_block = (pos % bs as u64) as usize;
            let n = (bs - in_block).min(len - written);
            let Some(src) = data.get(written..written + n) else { break };
            let step = self.map_or_alloc(ino, &mut inode, pos >> shift, &mut goal).and_then(|(p, fresh)| {
                let owner = Owner::File(ino);
                if n == bs {
                    return self.cache.write(u64::from(p), src, owner);
                }
                let block = if fresh {
                    self.cache.fresh(u64::from(p), owner, in_block, n)?
                } else {
                    self.cache.modify_range(u64::from(p), owner, in_block, n)?
                };
                block.get_mut(in_block..in_block + n).ok_or(Errno::EIO)?.copy_from_slice(src);
                Ok(())
            });
            if let Err(e) = step {
                error = Some(e);
                break;
            }
            written += n;
        }
        if written > 0 {
            inode.size = inode.size.max(offset + written as u64);
            inode.mtime = self.now();
            inode.ctime = inode.mtime;
        }
        self.write_inode(ino, &inode)?;
        match error {
            Some(e) if written == 0 => Err(self.note_error(e)),
            Some(e) => {
                self.note_error(e);
                Ok(written)
            }
            None => Ok(written),
        }
    }

    /// Zeroes the bytes of `inode`'s last block past its end of file (before it grows).
    fn zero_tail(&mut self, ino: Ino, inode: &Inode) -> Result<(), Errno> {
        let bs = u64::from(self.geo.block_size);
        let tail = (inode.size % bs) as usize;
        if tail == 0 {
            return Ok(());
        }
        if let Some(p) = self.lookup_block(inode, inode.size / bs)? {
            let bs = bs as usize;
            self.cache
                .modify_range(u64::from(p), Owner::File(ino), tail, bs - tail)?
                .get_mut(tail..)
                .ok_or(Errno::EIO)?
                .fill(0);
        }
        Ok(())
    }

    /// Changes the size of regular file `ino` (`inode` is its record, updated in memory and
    /// written back): shrinking frees the blocks past the end and zeroes the new last block's
    /// tail; growing leaves a hole.
    pub(crate) fn set_size(&mut self, ino: Ino, inode: &mut Inode, size: u64) -> Result<(), Errno> {
        Self::regular(inode)?;
        if size > self.size_limit() {
            return Err(Errno::EFBIG);
        }
        let bs = u64::from(self.geo.block_size);
        if size < inode.size {
            let freed = self.free_blocks_from(ino, inode, size.div_ceil(bs));
            inode.size = size;
            if freed.is_ok() && !size.is_multiple_of(bs) {
                if let Some(p) = self.lookup_block(inode, size / bs)? {
                    let at = (size % bs) as usize;
                    let block = self.cache.modify_range(u64::from(p), Owner::File(ino), at, bs as usize - at)?;
                    block.get_mut(at..).ok_or(Errno::EIO)?.fill(0);
                }
            }
            inode.mtime = self.now();
            inode.ctime = inode.mtime;
            self.write_inode(ino, inode)?;
            freed
        } else {
            if size > inode.size {
                self.need_large_file(size)?;
                self.zero_tail(ino, inode)?;
                inode.size = size;
            }
            inode.mtime = self.now();
            inode.ctime = inode.mtime;
            self.write_inode(ino, inode)
        }
    }

    /// The device block (in file-system blocks) holding logical block `lblk` of `ino`, or
    /// `None` for a hole (`FIBMAP`).
    pub fn bmap(&mut self, ino: Ino, lblk: u64) -> Result<Option<u64>, Errno> {
        let inode = self.inode(ino)?;
        if !inode.has_block_map() {
            return Err(Errno::EINVAL);
        }
        Ok(self.lookup_block(&inode, lblk)?.map(u64::from))
    }
}
