//! Freeing a file's blocks past a point: the block-map half of truncate and of inode deletion.
//!
//! The walk goes depth-first through the indirect tree, frees every data block at or past
//! the cut and every indirect block left empty, and rewrites the indirect blocks it keeps.
//! Termination on a hostile tree: before descending into an indirect block the walk checks
//! that the block is still marked in use, and every subtree it finishes is freed; a block
//! reached twice is therefore seen free the second time (`EUCLEAN`). So the walk visits each
//! block at most once, plus the at most three blocks on the path to the cut.

use crate::bmap::{DOUBLE_SLOT, SINGLE_SLOT, TRIPLE_SLOT};
use crate::cache::Owner;
use crate::device::BlockDevice;
use crate::fs::{Ext2, Ino};
use crate::geometry::DIRECT_BLOCKS;
use crate::inode::Inode;
use crate::le::{get_u32, put_u32};
use abi::Errno;
use alloc::vec::Vec;

impl<D: BlockDevice> Ext2<D> {
    /// Frees block `b` of `inode` and takes it off `i_blocks`.
    fn drop_block(&mut self, inode: &mut Inode, b: u32) -> Result<(), Errno> {
        self.free_block(b)?;
        inode.blocks = inode.blocks.saturating_sub(self.geo.sectors_per_block());
        Ok(())
    }

    /// Frees every block of `inode` (number `ino`) that maps logical blocks `>= first`, and
    /// the indirect blocks that then map nothing. Changes `inode` in memory only.
    pub(crate) fn free_blocks_from(&mut self, ino: Ino, inode: &mut Inode, first: u64) -> Result<(), Errno> {
        let direct = u64::from(DIRECT_BLOCKS);
        for i in first.min(direct)..direct {
            let slot = i as usize;
            let b = inode.block.get(slot).copied().unwrap_or(0);
            if b != 0 {
                self.drop_block(inode, b)?;
                if let Some(p) = inode.block.get_mut(slot) {
                    *p = 0;
                }
            }
        }
        let p = u64::from(self.geo.ptrs_per_block());
        let mut base = direct;
        let mut span = p;
        for (slot, levels) in [(SINGLE_SLOT, 1u32), (DOUBLE_SLOT, 2), (TRIPLE_SLOT, 3)] {
            let top = inode.block.get(slot).copied().unwrap_or(0);
            if top != 0 && first < base + span {
                let start = first.saturating_sub(base);
                if self.free_subtree(ino, inode, top, levels, start)? {
                    self.drop_block(inode, top)?;
                    if let Some(ptr) = inode.block.get_mut(slot) {
                        *ptr = 0;
                    }
                }
            }
            base += span;
            span *= p;
        }
        Ok(())
    }

    /// Frees, below indirect block `blk` (`levels` levels above the data), everything mapping
    /// entries `>= start` (relative to the subtree). Returns whether `blk` now maps nothing
    /// (the caller then frees `blk` itself).
    fn free_subtree(&mut self, ino: Ino, inode: &mut Inode, blk: u32, levels: u32, start: u64) -> Result<bool, Errno> {
        if !self.block_in_use(blk)? {
            return Err(Errno::EUCLEAN);
        }
        let p = self.geo.ptrs_per_block();
        let child_span = u64::from(p).pow(levels - 1);
        let first_child = start / child_span;
        let block = self.cache.read(u64::from(blk))?;
        let mut entries: Vec<u32> = (0..p as usize).map(|i| get_u32(block, i * 4)).collect();
        let mut changed = false;
        for (i, entry) in entries.iter_mut().enumerate().skip(first_child as usize) {
            let child = *entry;
            if child == 0 {
                continue;
            }
            let empty = if levels == 1 {
                true
            } else {
                let child_start = if i as u64 == first_child { start % child_span } else { 0 };
                self.free_subtree(ino, inode, child, levels - 1, child_start)?
            };
            if empty {
                self.drop_block(inode, child)?;
                *entry = 0;
                changed = true;
            }
        }
        let now_empty = entries.iter().all(|&e| e == 0);
        if changed && !now_empty {
            let block = self.cache.modify(u64::from(blk), Owner::File(ino))?;
            for (i, e) in entries.iter().enumerate() {
                put_u32(block, i * 4, *e);
            }
        }
        Ok(now_empty)
    }
}
