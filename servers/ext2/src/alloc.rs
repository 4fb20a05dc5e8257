//! Block and inode allocation: the bitmaps and the free counts beside them.
//!
//! Each allocation or free changes three things together, as e2fsck checks them: the bitmap
//! bit, the group descriptor's count and the superblock's total. A bitmap that disagrees with
//! its count (the count promises a free bit the bitmap does not have, a free bit for a
//! metadata block or reserved inode, a free of something already free) refuses the operation
//! with `EUCLEAN` rather than hand out a block that is in use.
//!
//! Policy: a block goes at or after a goal (the block after the file's previous one, so that
//! sequential writes are contiguous), in the goal's group first. A directory inode goes to the
//! group with the most free blocks among those with at least the average number of free
//! inodes (spreading directory trees, like Linux's `find_group_dir`); any other inode goes to
//! its parent's group, or a quadratic then linear probe from there (`find_group_other`).

use crate::cache::Owner;
use crate::device::BlockDevice;
use crate::fs::{Ext2, Ino};
use crate::le::get_u8;
use abi::Errno;

/// The first clear bit in `start..end` of a bitmap (bits past the slice count as set).
pub(crate) fn find_zero_bit(map: &[u8], start: u32, end: u32) -> Option<u32> {
    let mut i = start;
    while i < end {
        let byte = *map.get((i / 8) as usize)?;
        if i.is_multiple_of(8) && byte == 0xff {
            i += 8;
            continue;
        }
        if byte & (1 << (i % 8)) == 0 {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn bit_is_set(map: &[u8], bit: u32) -> bool {
    get_u8(map, (bit / 8) as usize) & (1 << (bit % 8)) != 0
}

/// Sets (`on`) or clears bit `bit`; the caller checked it is inside the map.
fn set_bit(map: &mut [u8], bit: u32, on: bool) {
    if let Some(byte) = map.get_mut((bit / 8) as usize) {
        if on {
            *byte |= 1 << (bit % 8);
        } else {
            *byte &= !(1 << (bit % 8));
        }
    }
}

impl<D: BlockDevice> Ext2<D> {
    /// Allocates a block, preferring `goal` and the blocks after it.
    pub(crate) fn alloc_block(&mut self, goal: u32) -> Result<u32, Errno> {
        let geo = &self.geo;
        let goal = if goal >= geo.first_data_block && goal < geo.blocks_count { goal } else { geo.first_data_block };
        let first_group = geo.group_of_block(goal);
        let groups = geo.groups;
        for k in 0..groups {
            let g = (first_group + k) % groups;
            let desc = *self.groups.get(g as usize).ok_or(Errno::EUCLEAN)?;
            if desc.free_blocks == 0 {
                continue;
            }
            let start = self.geo.group_first_block(g);
            let nbits = self.geo.group_block_count(g);
            let from = if k == 0 { goal - start } else { 0 };
            let map = self.cache.read(u64::from(desc.block_bitmap))?;
            let bit = find_zero_bit(map, from, nbits).or_else(|| find_zero_bit(map, 0, from)).ok_or(Errno::EUCLEAN)?;
            let b = start + bit;
            if self.is_metadata(b) {
                return Err(Errno::EUCLEAN);
            }
            set_bit(
                self.cache.modify_range(u64::from(desc.block_bitmap), Owner::Meta, (bit / 8) as usize, 1)?,
                bit,
                true,
            );
            if let Some(d) = self.groups.get_mut(g as usize) {
                d.free_blocks -= 1;
            }
            self.write_group(g)?;
            self.sb.set_free_blocks_count(self.sb.free_blocks_count().saturating_sub(1));
            self.write_super_counts()?;
            return Ok(b);
        }
        Err(Errno::ENOSPC)
    }

    /// Whether data block `b` is marked in use (`EUCLEAN` if `b` is not a data block).
    pub(crate) fn block_in_use(&mut self, b: u32) -> Result<bool, Errno> {
        self.check_data_block(b)?;
        let g = self.geo.group_of_block(b);
        let desc = *self.groups.get(g as usize).ok_or(Errno::EUCLEAN)?;
        let map = self.cache.read(u64::from(desc.block_bitmap))?;
        Ok(bit_is_set(map, b - self.geo.group_first_block(g)))
    }

    /// Frees data block `b` and drops it from the cache.
    pub(crate) fn free_block(&mut self, b: u32) -> Result<(), Errno> {
        self.check_data_block(b)?;
        let g = self.geo.group_of_block(b);
        let desc = *self.groups.get(g as usize).ok_or(Errno::EUCLEAN)?;
        let bit = b - self.geo.group_first_block(g);
        if !bit_is_set(self.cache.read(u64::from(desc.block_bitmap))?, bit)
            || u32::from(desc.free_blocks) >= self.geo.group_block_count(g)
        {
            return Err(Errno::EUCLEAN);
        }
        set_bit(self.cache.modify_range(u64::from(desc.block_bitmap), Owner::Meta, (bit / 8) as usize, 1)?, bit, false);
        if let Some(d) = self.groups.get_mut(g as usize) {
            d.free_blocks += 1;
        }
        self.write_group(g)?;
        self.sb.set_free_blocks_count(self.sb.free_blocks_count().saturating_add(1));
        self.write_super_counts()?;
        self.cache.freed(u64::from(b));
        Ok(())
    }

    /// The group a new inode should go to, or `ENOSPC`.
    fn inode_group_for(&self, parent: Ino, is_dir: bool) -> Result<u32, Errno> {
        let groups = self.geo.groups;
        let has_inodes = |g: u32| self.groups.get(g as usize).is_some_and(|d| d.free_inodes > 0);
        if is_dir {
            let average = self.sb.free_inodes_count() / groups;
            let best = self
                .groups
                .iter()
                .enumerate()
                .filter(|(_, d)| d.free_inodes > 0 && u32::from(d.free_inodes) >= average)
                .max_by_key(|(i, d)| (d.free_blocks, core::cmp::Reverse(*i)))
                .map(|(i, _)| i as u32);
            if let Some(g) = best {
                return Ok(g);
            }
        } else {
            let home = self.geo.inode_group(parent).0.min(groups - 1);
            let roomy = |g: u32| has_inodes(g) && self.groups.get(g as usize).is_some_and(|d| d.free_blocks > 0);
            if roomy(home) {
                return Ok(home);
            }
            let mut step = 1u32;
            while step < groups {
                let g = ((u64::from(home) + u64::from(step)) % u64::from(groups)) as u32;
                if roomy(g) {
                    return Ok(g);
                }
                step = step.saturating_mul(2);
            }
        }
        (0..groups).find(|&g| has_inodes(g)).ok_or(Errno::ENOSPC)
    }

    /// Allocates an inode number for a new file in directory `parent`.
    pub(crate) fn alloc_inode(&mut self, parent: Ino, is_dir: bool) -> Result<Ino, Errno> {
        let g = self.inode_group_for(parent, is_dir)?;
        let desc = *self.groups.get(g as usize).ok_or(Errno::EUCLEAN)?;
        let map = self.cache.read(u64::from(desc.inode_bitmap))?;
        let bit = find_zero_bit(map, 0, self.geo.inodes_per_group).ok_or(Errno::EUCLEAN)?;
        let ino = g * self.geo.inodes_per_group + bit + 1;
        if ino < self.geo.first_ino {
            return Err(Errno::EUCLEAN);
        }
        // A free bit over a record that looks alive means the bitmap lost it.
        let old = self.read_inode(ino)?;
        if old.mode != 0 && old.links != 0 && old.dtime == 0 {
            return Err(Errno::EUCLEAN);
        }
        set_bit(self.cache.modify_range(u64::from(desc.inode_bitmap), Owner::Meta, (bit / 8) as usize, 1)?, bit, true);
        if let Some(d) = self.groups.get_mut(g as usize) {
            d.free_inodes -= 1;
            if is_dir {
                d.used_dirs = d.used_dirs.saturating_add(1);
            }
        }
        self.write_group(g)?;
        self.sb.set_free_inodes_count(self.sb.free_inodes_count().saturating_sub(1));
        self.write_super_counts()?;
        Ok(ino)
    }

    /// Clears inode `ino`'s bitmap bit and counts it free.
    pub(crate) fn free_inode_number(&mut self, ino: Ino, was_dir: bool) -> Result<(), Errno> {
        if !self.geo.is_file_ino(ino) {
            return Err(Errno::EUCLEAN);
        }
        let (g, bit) = self.geo.inode_group(ino);
        let desc = *self.groups.get(g as usize).ok_or(Errno::EUCLEAN)?;
        if !bit_is_set(self.cache.read(u64::from(desc.inode_bitmap))?, bit)
            || u32::from(desc.free_inodes) >= self.geo.inodes_per_group
        {
            return Err(Errno::EUCLEAN);
        }
        set_bit(self.cache.modify_range(u64::from(desc.inode_bitmap), Owner::Meta, (bit / 8) as usize, 1)?, bit, false);
        if let Some(d) = self.groups.get_mut(g as usize) {
            d.free_inodes += 1;
            if was_dir {
                d.used_dirs = d.used_dirs.saturating_sub(1);
            }
        }
        self.write_group(g)?;
        self.sb.set_free_inodes_count(self.sb.free_inodes_count().saturating_add(1));
        self.write_super_counts()?;
        Ok(())
    }

    /// A good first block for inode `ino`'s data: just after its group's inode table.
    pub(crate) fn group_data_goal(&self, ino: Ino) -> u32 {
        let (g, _) = self.geo.inode_group(ino);
        self.groups
            .get(g as usize)
            .map_or(self.geo.first_data_block, |d| d.inode_table.saturating_add(self.geo.inode_table_blocks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bits() {
        let map = [0xff, 0xff, 0b1110_1111, 0x00];
        assert_eq!(find_zero_bit(&map, 0, 32), Some(20));
        assert_eq!(find_zero_bit(&map, 21, 32), Some(24));
        assert_eq!(find_zero_bit(&map, 0, 20), None);
        assert_eq!(find_zero_bit(&map, 0, 100), Some(20));
        assert_eq!(find_zero_bit(&[0xff], 0, 100), None);
    }
}
