//! Block-group descriptors: where each group's bitmaps and inode table are, and its free counts.
//!
//! The table is read once at mount into a `Vec<GroupDesc>` (its length is bounded by the
//! device size, which mount checks first) and every change is written straight back into the
//! cached descriptor block, so the block cache's dirty set always holds the whole truth.
//! Only the primary table is maintained; backups are written by `format` and otherwise left
//! alone, as Linux's ext2 does (e2fsck only reads them when the primary is damaged).

use crate::geometry::Geometry;
use crate::le::{get_u16, get_u32, put_u16, put_u32};
use abi::Errno;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupDesc {
    pub block_bitmap: u32,
    pub inode_bitmap: u32,
    pub inode_table: u32,
    pub free_blocks: u16,
    pub free_inodes: u16,
    pub used_dirs: u16,
}

impl GroupDesc {
    pub fn parse(raw: &[u8]) -> GroupDesc {
        GroupDesc {
            block_bitmap: get_u32(raw, 0),
            inode_bitmap: get_u32(raw, 4),
            inode_table: get_u32(raw, 8),
            free_blocks: get_u16(raw, 12),
            free_inodes: get_u16(raw, 14),
            used_dirs: get_u16(raw, 16),
        }
    }

    /// Stores the fields into a 32-byte record, leaving `bg_flags` and the rest as they were.
    pub fn store(&self, raw: &mut [u8]) {
        put_u32(raw, 0, self.block_bitmap);
        put_u32(raw, 4, self.inode_bitmap);
        put_u32(raw, 8, self.inode_table);
        put_u16(raw, 12, self.free_blocks);
        put_u16(raw, 14, self.free_inodes);
        put_u16(raw, 16, self.used_dirs);
    }

    /// Checks that group `g`'s metadata lies inside the group, after its superblock area, and
    /// does not overlap itself; and that its counts are possible. Linux's ext2 (no `flex_bg`)
    /// keeps each group's metadata inside the group, and relying on that is what lets
    /// [`Geometry`]-based metadata checks stay O(1).
    pub fn validate(&self, geo: &Geometry, g: u32) -> Result<(), Errno> {
        let start = u64::from(geo.group_first_block(g));
        let end = start + u64::from(geo.group_block_count(g));
        let meta_start = start + u64::from(geo.super_area_blocks(g));
        let inside = |b: u64| b >= meta_start && b < end;
        let bb = u64::from(self.block_bitmap);
        let ib = u64::from(self.inode_bitmap);
        let it = u64::from(self.inode_table);
        let it_end = it + u64::from(geo.inode_table_blocks);
        let in_table = |b: u64| b >= it && b < it_end;
        let ok = inside(bb)
            && inside(ib)
            && inside(it)
            && it_end <= end
            && bb != ib
            && !in_table(bb)
            && !in_table(ib)
            && u32::from(self.free_blocks) <= geo.group_block_count(g)
            && u32::from(self.free_inodes) <= geo.inodes_per_group
            && u32::from(self.used_dirs) <= geo.inodes_per_group;
        if ok {
            Ok(())
        } else {
            Err(Errno::EUCLEAN)
        }
    }

    /// Whether `b` (a block of this group) is one of the group's bitmaps or inode-table blocks.
    pub fn holds_metadata_block(&self, geo: &Geometry, b: u32) -> bool {
        let it_end = u64::from(self.inode_table) + u64::from(geo.inode_table_blocks);
        b == self.block_bitmap || b == self.inode_bitmap || (b >= self.inode_table && u64::from(b) < it_end)
    }
}
