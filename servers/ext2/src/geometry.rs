//! The shape of a file system, derived from its superblock and checked once at mount.
//!
//! Everything else computes block and inode positions from a [`Geometry`], never from raw
//! superblock fields, so the sanity checks here are the only ones the layout needs: after
//! [`Geometry::new`] succeeds, group and inode-table arithmetic cannot overflow and every
//! group-relative position is inside the file system.
//!
//! Supported: block sizes 1, 2 and 4 KiB (what `mke2fs` makes and what a page-sized cache
//! wants), revisions 0 and 1, all three superblock-backup layouts (every group, `sparse_super`,
//! `sparse_super2`).

use crate::superblock::{Superblock, COMPAT_SPARSE_SUPER2, EXT2_MAGIC, REV_DYNAMIC, RO_COMPAT_SPARSE_SUPER};
use abi::Errno;

/// Size of one group descriptor: ext2 has no 64-bit descriptors (that is an ext4 INCOMPAT).
pub const GROUP_DESC_SIZE: u32 = 32;
/// Inode number of the root directory.
pub const ROOT_INO: u32 = 2;
/// Inode number one past the last reserved inode in revision 0.
pub const GOOD_OLD_FIRST_INO: u32 = 11;
/// Inode record size of revision 0.
pub const GOOD_OLD_INODE_SIZE: u32 = 128;
/// Direct block pointers in an inode.
pub const DIRECT_BLOCKS: u32 = 12;

/// Which groups hold a backup superblock and group-descriptor table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backups {
    /// Every group (no `sparse_super`).
    All,
    /// Groups 0, 1 and powers of 3, 5 and 7.
    Sparse,
    /// Group 0 and the two named groups (`sparse_super2`; 0 means none).
    Two([u32; 2]),
}

/// Derived, validated layout constants.
#[derive(Clone, Debug)]
pub struct Geometry {
    pub block_size: u32,
    /// log2 of `block_size`.
    pub block_shift: u32,
    pub blocks_count: u32,
    pub first_data_block: u32,
    pub blocks_per_group: u32,
    pub inodes_count: u32,
    pub inodes_per_group: u32,
    pub inode_size: u32,
    pub first_ino: u32,
    pub groups: u32,
    pub gdt_blocks: u32,
    pub reserved_gdt_blocks: u32,
    pub inode_table_blocks: u32,
    backups: Backups,
}

fn is_power_of(mut n: u32, base: u32) -> bool {
    if n == 0 {
        return false;
    }
    while n.is_multiple_of(base) {
        n /= base;
    }
    n == 1
}

impl Geometry {
    /// Checks a superblock's numbers and derives the layout. `EINVAL` means "not an ext2 file
    /// system this crate can mount"; `EUCLEAN` means "an ext2 superblock whose numbers do not
    /// add up".
    pub fn new(sb: &Superblock) -> Result<Geometry, Errno> {
        if sb.magic() != EXT2_MAGIC || sb.rev_level() > REV_DYNAMIC {
            return Err(Errno::EINVAL);
        }
        let log = sb.log_block_size();
        if log > 2 {
            return Err(Errno::EINVAL);
        }
        let block_shift = 10 + log;
        let block_size = 1u32 << block_shift;
        let bits_per_block = block_size * 8;

        let blocks_per_group = sb.blocks_per_group();
        let inodes_per_group = sb.inodes_per_group();
        let inode_size = sb.inode_size();
        let first_data_block = sb.first_data_block();
        let blocks_count = sb.blocks_count();
        let first_ino = sb.first_ino();
        if blocks_per_group == 0
            || blocks_per_group > bits_per_block
            || !blocks_per_group.is_multiple_of(8)
            || inodes_per_group == 0
            || inodes_per_group > bits_per_block
            || !inode_size.is_power_of_two()
            || inode_size < GOOD_OLD_INODE_SIZE
            || inode_size > block_size
            || first_data_block != u32::from(block_size == 1024)
            || blocks_count <= first_data_block
        {
            return Err(Errno::EUCLEAN);
        }
        let groups = (blocks_count - first_data_block).div_ceil(blocks_per_group);
        let inodes_count = sb.inodes_count();
        if groups.checked_mul(inodes_per_group) != Some(inodes_count)
            || first_ino < GOOD_OLD_FIRST_INO
            || first_ino >= inodes_count
        {
            return Err(Errno::EUCLEAN);
        }
        let gdt_blocks = groups.checked_mul(GROUP_DESC_SIZE).ok_or(Errno::EUCLEAN)?.div_ceil(block_size);
        let reserved_gdt_blocks = sb.reserved_gdt_blocks();
        if reserved_gdt_blocks > block_size / 4 {
            return Err(Errno::EUCLEAN);
        }
        // ipg <= 8 * 4096 and inode_size <= 4096, so this is at most 2^27.
        let inode_table_blocks = (inodes_per_group * inode_size).div_ceil(block_size);
        let backups = if sb.has_compat(COMPAT_SPARSE_SUPER2) {
            Backups::Two([sb.backup_bg0(), sb.backup_bg1()])
        } else if sb.has_ro_compat(RO_COMPAT_SPARSE_SUPER) {
            Backups::Sparse
        } else {
            Backups::All
        };
        let geo = Geometry {
            block_size,
            block_shift,
            blocks_count,
            first_data_block,
            blocks_per_group,
            inodes_count,
            inodes_per_group,
            inode_size,
            first_ino,
            groups,
            gdt_blocks,
            reserved_gdt_blocks,
            inode_table_blocks,
            backups,
        };
        // Group 0 must at least hold its superblock, descriptors, bitmaps and inode table.
        let overhead = geo.super_area_blocks(0) + 2 + inode_table_blocks;
        if overhead > geo.group_block_count(0) {
            return Err(Errno::EUCLEAN);
        }
        Ok(geo)
    }

    /// Block pointers per indirect block.
    pub fn ptrs_per_block(&self) -> u32 {
        self.block_size / 4
    }

    /// 512-byte sectors per block, the unit of `i_blocks`.
    pub fn sectors_per_block(&self) -> u32 {
        self.block_size / 512
    }

    /// First block of group `g` (< blocks_count for every `g < groups`).
    pub fn group_first_block(&self, g: u32) -> u32 {
        // g < groups, and groups * bpg covers at most blocks_count - fdb + bpg - 1 < 2^33;
        // the start of an existing group is < blocks_count, so it fits.
        self.first_data_block.saturating_add(g.saturating_mul(self.blocks_per_group))
    }

    /// Number of blocks in group `g` (the last group may be short).
    pub fn group_block_count(&self, g: u32) -> u32 {
        let start = self.group_first_block(g);
        self.blocks_count.saturating_sub(start).min(self.blocks_per_group)
    }

    /// The group holding block `b` (callers check `first_data_block <= b < blocks_count`).
    pub fn group_of_block(&self, b: u32) -> u32 {
        b.saturating_sub(self.first_data_block) / self.blocks_per_group
    }

    /// Whether group `g` starts with a superblock and descriptor-table copy.
    pub fn has_super(&self, g: u32) -> bool {
        if g == 0 {
            return true;
        }
        match self.backups {
            Backups::All => true,
            Backups::Sparse => g == 1 || is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7),
            Backups::Two(bgs) => bgs.contains(&g),
        }
    }

    /// Blocks at the start of group `g` taken by the superblock copy, the descriptor table and
    /// the reserved descriptor blocks.
    pub fn super_area_blocks(&self, g: u32) -> u32 {
        if self.has_super(g) {
            1 + self.gdt_blocks + self.reserved_gdt_blocks
        } else {
            0
        }
    }

    /// Block and byte offset of the primary superblock inside the block-addressed file system.
    pub fn superblock_location(&self) -> (u32, usize) {
        (1024 / self.block_size, (1024 % self.block_size) as usize)
    }

    /// First block of the primary group-descriptor table.
    pub fn gdt_first_block(&self) -> u32 {
        self.first_data_block + 1
    }

    /// Group and index inside the group of inode `ino` (callers check `1 <= ino <= inodes_count`).
    pub fn inode_group(&self, ino: u32) -> (u32, u32) {
        let i = ino.saturating_sub(1);
        (i / self.inodes_per_group, i % self.inodes_per_group)
    }

    /// Whether an inode number can name a file: the root or a non-reserved inode in range.
    pub fn is_file_ino(&self, ino: u32) -> bool {
        ino == ROOT_INO || (ino >= self.first_ino && ino <= self.inodes_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_backup_groups() {
        let backups: alloc::vec::Vec<u32> = (0..100)
            .filter(|&g| g == 0 || g == 1 || is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7))
            .collect();
        assert_eq!(backups, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }
}
