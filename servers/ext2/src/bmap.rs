//! Block mapping: from a file's logical block index to the device block holding it, through
//! the inode's 12 direct pointers and its single, double and triple indirect blocks.
//!
//! The path arithmetic ([`block_path`]) is pure and unit-tested for every block size. The
//! walks read pointers through the cache and check each one ([`Ext2::check_data_block`]): a
//! pointer outside the file system or into metadata, or one that repeats a block already on
//! its own path (an indirect block pointing at itself or an ancestor), is `EUCLEAN`. Depth is
//! at most three, so a lookup is at most four block reads, whatever the image says.

use crate::cache::Owner;
use crate::device::BlockDevice;
use crate::fs::{Ext2, Ino};
use crate::geometry::DIRECT_BLOCKS;
use crate::inode::Inode;
use crate::le::{get_u32, put_u32};
use abi::Errno;

/// Where the pointer of a logical block lives (see `Ext2::leaf_of`).
enum Leaf {
    /// In the inode's direct slots.
    Direct,
    /// In this indirect block.
    Block(u32),
    /// Nowhere: an indirect pointer on the way is 0.
    Hole,
}

/// Slot in `i_block` of the single, double and triple indirect pointers.
pub const SINGLE_SLOT: usize = 12;
pub const DOUBLE_SLOT: usize = 13;
pub const TRIPLE_SLOT: usize = 14;

/// Where a logical block's pointer is: `indexes[0]` is the `i_block` slot, `indexes[1..=levels]`
/// the entry in each indirect block below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockPath {
    /// Indirect blocks to go through (0 = direct).
    pub levels: usize,
    pub indexes: [u32; 4],
}

/// The path to logical block `lblk` with `ppb` pointers per indirect block, or `None` past the
/// triple-indirect range.
pub fn block_path(lblk: u64, ppb: u32) -> Option<BlockPath> {
    let p = u64::from(ppb);
    let direct = u64::from(DIRECT_BLOCKS);
    if lblk < direct {
        return Some(BlockPath { levels: 0, indexes: [lblk as u32, 0, 0, 0] });
    }
    let mut i = lblk - direct;
    if i < p {
        return Some(BlockPath { levels: 1, indexes: [SINGLE_SLOT as u32, i as u32, 0, 0] });
    }
    i -= p;
    if i < p * p {
        return Some(BlockPath { levels: 2, indexes: [DOUBLE_SLOT as u32, (i / p) as u32, (i % p) as u32, 0] });
    }
    i -= p * p;
    if i < p * p * p {
        let idx = [TRIPLE_SLOT as u32, (i / (p * p)) as u32, ((i / p) % p) as u32, (i % p) as u32];
        return Some(BlockPath { levels: 3, indexes: idx });
    }
    None
}

/// Logical blocks addressable through the block map.
pub fn addressable_blocks(ppb: u32) -> u64 {
    let p = u64::from(ppb);
    u64::from(DIRECT_BLOCKS) + p + p * p + p * p * p
}

/// Largest file size, as Linux's `ext2_max_size`: the block map's reach, further limited so
/// that `i_blocks` (32 bits of 512-byte sectors, counting indirect blocks) cannot overflow.
pub fn max_file_size(block_shift: u32) -> u64 {
    let ppb = 1u64 << (block_shift - 2);
    let direct = u64::from(DIRECT_BLOCKS);
    let mut upper_limit: u64 = (1u64 << 32) - 1;
    upper_limit >>= block_shift - 9;
    let mut res = direct + ppb + ppb * ppb + ppb * ppb * ppb;
    let mut meta_blocks = 1 + (1 + ppb) + (1 + ppb + ppb * ppb);
    if res + meta_blocks > upper_limit {
        res = upper_limit;
        let mut rest = upper_limit - direct;
        meta_blocks = 1;
        rest -= ppb;
        if rest < ppb * ppb {
            meta_blocks += 1 + rest.div_ceil(ppb);
        } else {
            meta_blocks += 1 + ppb;
            rest -= ppb * ppb;
            meta_blocks += 1 + rest.div_ceil(ppb) + rest.div_ceil(ppb * ppb);
        }
        res -= meta_blocks;
    }
    (res << block_shift).min(i64::MAX as u64)
}

impl<D: BlockDevice> Ext2<D> {
    /// The device block holding logical block `lblk` of `inode`, or `None` for a hole.
    pub(crate) fn lookup_block(&mut self, inode: &Inode, lblk: u64) -> Result<Option<u32>, Errno> {
        let Some(path) = block_path(lblk, self.geo.ptrs_per_block()) else {
            return Ok(None);
        };
        let mut chain = [0u32; 4];
        let mut ptr = *inode.block.get(path.indexes[0] as usize).ok_or(Errno::EUCLEAN)?;
        for level in 0..=path.levels {
            if ptr == 0 {
                return Ok(None);
            }
            self.check_data_block(ptr)?;
            if chain.get(..level).is_some_and(|up| up.contains(&ptr)) {
                return Err(Errno::EUCLEAN);
            }
            if let Some(slot) = chain.get_mut(level) {
                *slot = ptr;
            }
            if level == path.levels {
                break;
            }
            let next = path.indexes.get(level + 1).copied().unwrap_or(0) as usize;
            ptr = get_u32(self.cache.read(u64::from(ptr))?, next * 4);
        }
        Ok(Some(ptr))
    }

    /// The pointer container of logical block `lblk`: where its pointer lives (the inode's
    /// direct slots, or the last indirect block on its path), the pointer's index there, how
    /// many pointers of the container follow it (itself included), and the indirect blocks on
    /// the path (for the cycle check). `Leaf::Hole` if an indirect pointer on the path is 0:
    /// the whole rest of that container is a hole.
    fn leaf_of(&mut self, inode: &Inode, lblk: u64) -> Result<(Leaf, usize, u64, [u32; 4]), Errno> {
        let ppb = self.geo.ptrs_per_block();
        let Some(path) = block_path(lblk, ppb) else {
            return Ok((Leaf::Hole, 0, 1, [0; 4]));
        };
        if path.levels == 0 {
            let idx = path.indexes[0] as usize;
            return Ok((Leaf::Direct, idx, u64::from(DIRECT_BLOCKS) - idx as u64, [0; 4]));
        }
        let last = path.indexes.get(path.levels).copied().unwrap_or(0);
        let avail = u64::from(ppb - last);
        let mut chain = [0u32; 4];
        let mut ptr = *inode.block.get(path.indexes[0] as usize).ok_or(Errno::EUCLEAN)?;
        for level in 0..path.levels {
            if ptr == 0 {
                return Ok((Leaf::Hole, last as usize, avail, chain));
            }
            self.check_data_block(ptr)?;
            if chain.get(..level).is_some_and(|up| up.contains(&ptr)) {
                return Err(Errno::EUCLEAN);
            }
            if let Some(slot) = chain.get_mut(level) {
                *slot = ptr;
            }
            if level + 1 == path.levels {
                break;
            }
            let next = path.indexes.get(level + 1).copied().unwrap_or(0) as usize;
            ptr = get_u32(self.cache.read(u64::from(ptr))?, next * 4);
        }
        if ptr == 0 {
            return Ok((Leaf::Hole, last as usize, avail, chain));
        }
        Ok((Leaf::Block(ptr), last as usize, avail, chain))
    }

    /// The mapping of up to `max` logical blocks from `lblk` that continue the first one's:
    /// `(Some(p), n)` if blocks `lblk..lblk+n` are at `p..p+n`, `(None, n)` for `n` holes.
    /// Each pointer container (the inode, an indirect block) is read once per call, not once
    /// per block; every data pointer is checked as `lookup_block` checks it.
    pub(crate) fn map_run(&mut self, inode: &Inode, lblk: u64, max: u64) -> Result<(Option<u32>, u64), Errno> {
        let mut first: Option<Option<u32>> = None;
        let mut n = 0u64;
        // Pointers are copied out of their container a few at a time (the container is a
        // borrowed cache block; checking them needs `self`).
        let mut buf = [0u32; 64];
        'containers: while n < max.max(1) {
            let (leaf, idx, avail, chain) = self.leaf_of(inode, lblk + n)?;
            let take = (avail.min(max.max(1) - n) as usize).min(buf.len());
            let ptrs = buf.get_mut(..take).ok_or(Errno::EIO)?;
            match leaf {
                Leaf::Hole => ptrs.fill(0),
                Leaf::Direct => {
                    for (i, p) in ptrs.iter_mut().enumerate() {
                        *p = inode.block.get(idx + i).copied().unwrap_or(0);
                    }
                }
                Leaf::Block(b) => {
                    let block = self.cache.read(u64::from(b))?;
                    for (i, p) in ptrs.iter_mut().enumerate() {
                        *p = get_u32(block, (idx + i) * 4);
                    }
                }
            }
            for &p in ptrs.iter() {
                if p != 0 {
                    self.check_data_block(p)?;
                    if chain.contains(&p) {
                        return Err(Errno::EUCLEAN);
                    }
                }
                let here = (p != 0).then_some(p);
                match first {
                    None => first = Some(here),
                    Some(None) if here.is_none() => {}
                    Some(Some(f)) if here.is_some_and(|q| u64::from(q) == u64::from(f) + n) => {}
                    Some(_) => break 'containers,
                }
                n += 1;
            }
        }
        Ok((first.flatten(), n.max(1)))
    }

    /// Adds one block to `inode.blocks` (in sectors).
    fn count_block(&self, inode: &mut Inode) -> Result<(), Errno> {
        inode.blocks = inode.blocks.checked_add(self.geo.sectors_per_block()).ok_or(Errno::EFBIG)?;
        Ok(())
    }

    /// Allocates a block near `*goal` for inode `ino`, zeroed in the cache if `zero`.
    fn alloc_for(&mut self, ino: Ino, inode: &mut Inode, goal: &mut u32, zero: bool) -> Result<u32, Errno> {
        let b = self.alloc_block(*goal)?;
        if let Err(e) = self.count_block(inode) {
            self.free_block(b)?;
            return Err(e);
        }
        if zero {
            self.cache.fresh(u64::from(b), Owner::File(ino), 0, 0)?;
        }
        *goal = b.saturating_add(1);
        Ok(b)
    }

    /// The device block for logical block `lblk` of inode `ino`, allocating it (and any
    /// missing indirect blocks, zeroed) if it is a hole. Returns the block and whether it was
    /// just allocated (its contents are then undefined: the caller fills or zeroes it).
    ///
    /// `inode` is changed in memory (pointers, `i_blocks`); the caller writes it back, also
    /// on error, since indirect blocks allocated before a failure stay in the tree.
    pub(crate) fn map_or_alloc(
        &mut self,
        ino: Ino,
        inode: &mut Inode,
        lblk: u64,
        goal: &mut u32,
    ) -> Result<(u32, bool), Errno> {
        let path = block_path(lblk, self.geo.ptrs_per_block()).ok_or(Errno::EFBIG)?;
        let slot = path.indexes[0] as usize;
        let mut ptr = *inode.block.get(slot).ok_or(Errno::EUCLEAN)?;
        let mut fresh = false;
        if ptr == 0 {
            ptr = self.alloc_for(ino, inode, goal, path.levels > 0)?;
            if let Some(p) = inode.block.get_mut(slot) {
                *p = ptr;
            }
            fresh = path.levels == 0;
        } else {
            self.check_data_block(ptr)?;
        }
        let mut chain = [ptr, 0, 0, 0];
        for level in 1..=path.levels {
            let parent = ptr;
            let index = path.indexes.get(level).copied().unwrap_or(0) as usize;
            ptr = get_u32(self.cache.read(u64::from(parent))?, index * 4);
            if ptr == 0 {
                ptr = self.alloc_for(ino, inode, goal, level < path.levels)?;
                put_u32(self.cache.modify_range(u64::from(parent), Owner::File(ino), index * 4, 4)?, index * 4, ptr);
                fresh = level == path.levels;
            } else {
                self.check_data_block(ptr)?;
                if chain.get(..level).is_some_and(|up| up.contains(&ptr)) {
                    return Err(Errno::EUCLEAN);
                }
            }
            if let Some(c) = chain.get_mut(level) {
                *c = ptr;
            }
        }
        Ok((ptr, fresh))
    }

    /// Where to look for a block to hold logical block `lblk` of `ino`: right after the
    /// block before it, else after its group's inode table.
    pub(crate) fn alloc_goal(&mut self, ino: Ino, inode: &Inode, lblk: u64) -> u32 {
        if lblk > 0 {
            if let Ok(Some(p)) = self.lookup_block(inode, lblk - 1) {
                return p.saturating_add(1);
            }
        }
        self.group_data_goal(ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(levels: usize, indexes: [u32; 4]) -> Option<BlockPath> {
        Some(BlockPath { levels, indexes })
    }

    #[test]
    fn paths_at_every_block_size() {
        for bs in [1024u32, 2048, 4096] {
            let p = bs / 4;
            let pp = u64::from(p);
            assert_eq!(block_path(0, p), path(0, [0, 0, 0, 0]));
            assert_eq!(block_path(11, p), path(0, [11, 0, 0, 0]));
            // Single indirect: 12 .. 12 + p.
            assert_eq!(block_path(12, p), path(1, [12, 0, 0, 0]));
            assert_eq!(block_path(11 + pp, p), path(1, [12, p - 1, 0, 0]));
            // Double indirect: the next p * p.
            let d = 12 + pp;
            assert_eq!(block_path(d, p), path(2, [13, 0, 0, 0]));
            assert_eq!(block_path(d + 1, p), path(2, [13, 0, 1, 0]));
            assert_eq!(block_path(d + pp, p), path(2, [13, 1, 0, 0]));
            assert_eq!(block_path(d + pp * pp - 1, p), path(2, [13, p - 1, p - 1, 0]));
            // Triple indirect: the next p^3.
            let t = d + pp * pp;
            assert_eq!(block_path(t, p), path(3, [14, 0, 0, 0]));
            assert_eq!(block_path(t + pp + 2, p), path(3, [14, 0, 1, 2]));
            assert_eq!(block_path(t + pp * pp, p), path(3, [14, 1, 0, 0]));
            assert_eq!(block_path(t + pp * pp * pp - 1, p), path(3, [14, p - 1, p - 1, p - 1]));
            assert_eq!(block_path(t + pp * pp * pp, p), None);
            assert_eq!(addressable_blocks(p), t + pp * pp * pp);
            assert_eq!(block_path(u64::MAX, p), None);
        }
    }

    #[test]
    fn max_sizes_match_linux() {
        // Values of Linux's ext2_max_size (fs/ext2/super.c) for 1, 2 and 4 KiB blocks.
        assert_eq!(max_file_size(10), 17_247_252_480);
        assert_eq!(max_file_size(11), 275_415_851_008);
        assert_eq!(max_file_size(12), 2_196_873_666_560);
    }
}
