//! The superblock: the 1 KiB record at byte 1024 that describes the whole file system.
//!
//! It is kept as its raw bytes with typed accessors for the fields this crate reads or changes,
//! so that every field it does not understand (hash seeds, journal fields, mount options,
//! checksums of features we refuse to write...) survives a write back untouched. Nothing here is
//! validated: [`crate::geometry::Geometry::new`] decides whether the numbers make a file system.

use crate::le::{get_u16, get_u32, put_bytes, put_u16, put_u32};
use alloc::vec;
use alloc::vec::Vec;

/// Byte offset of the primary superblock on the device, whatever the block size.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock record.
pub const SUPERBLOCK_SIZE: usize = 1024;
pub const EXT2_MAGIC: u16 = 0xEF53;

/// `s_state` bit: cleanly unmounted (or checked).
pub const STATE_VALID: u16 = 1;
/// `s_state` bit: errors were detected.
pub const STATE_ERROR: u16 = 2;

/// Revision 0 has fixed 128-byte inodes and no feature flags; revision 1 ("dynamic") has both.
pub const REV_GOOD_OLD: u32 = 0;
pub const REV_DYNAMIC: u32 = 1;

pub const COMPAT_RESIZE_INODE: u32 = 0x0010;
/// Backups only in the two groups named by `s_backup_bgs`.
pub const COMPAT_SPARSE_SUPER2: u32 = 0x0200;

pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
/// Defined by ext2 but never used by anyone; harmless to claim.
pub const RO_COMPAT_BTREE_DIR: u32 = 0x0004;
/// The read-only-compatible features this crate maintains correctly when it writes.
pub const RO_COMPAT_SUPPORTED: u32 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;

/// Directory entries carry a file-type byte (and names are at most 255 bytes).
pub const INCOMPAT_FILETYPE: u32 = 0x0002;
/// The incompatible features this crate understands; any other bit refuses the mount.
pub const INCOMPAT_SUPPORTED: u32 = INCOMPAT_FILETYPE;

/// The superblock as raw bytes with typed field access.
#[derive(Clone, Debug)]
pub struct Superblock {
    raw: Vec<u8>,
}

macro_rules! field32 {
    ($get:ident, $set:ident, $off:expr) => {
        #[allow(dead_code)]
        pub fn $get(&self) -> u32 {
            get_u32(&self.raw, $off)
        }
        #[allow(dead_code)]
        pub fn $set(&mut self, v: u32) {
            put_u32(&mut self.raw, $off, v)
        }
    };
}

macro_rules! field16 {
    ($get:ident, $set:ident, $off:expr) => {
        #[allow(dead_code)]
        pub fn $get(&self) -> u16 {
            get_u16(&self.raw, $off)
        }
        #[allow(dead_code)]
        pub fn $set(&mut self, v: u16) {
            put_u16(&mut self.raw, $off, v)
        }
    };
}

impl Superblock {
    /// Wraps the 1024 bytes read from [`SUPERBLOCK_OFFSET`] (shorter input is zero-padded).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        put_bytes(&mut raw, 0, bytes.get(..SUPERBLOCK_SIZE).unwrap_or(bytes));
        Superblock { raw }
    }

    /// An all-zero superblock, for `format` to fill in.
    pub fn zeroed() -> Self {
        Superblock { raw: vec![0u8; SUPERBLOCK_SIZE] }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    field32!(inodes_count, set_inodes_count, 0);
    field32!(blocks_count, set_blocks_count, 4);
    field32!(r_blocks_count, set_r_blocks_count, 8);
    // `s_overhead_clusters` (ext4's; mke2fs fills it in for ext2 too): blocks of metadata.
    field32!(overhead_blocks, set_overhead_blocks, 584);
    field32!(free_blocks_count, set_free_blocks_count, 12);
    field32!(free_inodes_count, set_free_inodes_count, 16);
    field32!(first_data_block, set_first_data_block, 20);
    field32!(log_block_size, set_log_block_size, 24);
    field32!(log_frag_size, set_log_frag_size, 28);
    field32!(blocks_per_group, set_blocks_per_group, 32);
    field32!(frags_per_group, set_frags_per_group, 36);
    field32!(inodes_per_group, set_inodes_per_group, 40);
    field32!(mount_time, set_mount_time, 44);
    field32!(write_time, set_write_time, 48);
    field16!(mount_count, set_mount_count, 52);
    field16!(max_mount_count, set_max_mount_count, 54);
    field16!(magic, set_magic, 56);
    field16!(state, set_state, 58);
    field16!(errors, set_errors, 60);
    field32!(last_check, set_last_check, 64);
    field32!(rev_level, set_rev_level, 76);
    field32!(first_ino_raw, set_first_ino, 84);
    field16!(inode_size_raw, set_inode_size, 88);
    field16!(block_group_nr, set_block_group_nr, 90);
    field32!(feature_compat, set_feature_compat, 92);
    field32!(feature_incompat, set_feature_incompat, 96);
    field32!(feature_ro_compat, set_feature_ro_compat, 100);
    field16!(reserved_gdt_blocks_raw, set_reserved_gdt_blocks, 206);
    field32!(mkfs_time, set_mkfs_time, 264);
    field16!(min_extra_isize, set_min_extra_isize, 348);
    field16!(want_extra_isize, set_want_extra_isize, 350);
    field32!(backup_bg0, set_backup_bg0, 0x24C);
    field32!(backup_bg1, set_backup_bg1, 0x250);

    pub fn uuid(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        if let Some(src) = self.raw.get(104..120) {
            out.copy_from_slice(src);
        }
        out
    }

    pub fn set_uuid(&mut self, uuid: &[u8; 16]) {
        put_bytes(&mut self.raw, 104, uuid);
    }

    pub fn set_volume_name(&mut self, name: &[u8]) {
        let mut label = [0u8; 16];
        for (dst, src) in label.iter_mut().zip(name) {
            *dst = *src;
        }
        put_bytes(&mut self.raw, 120, &label);
    }

    pub fn has_compat(&self, bit: u32) -> bool {
        self.feature_compat() & bit != 0
    }

    pub fn has_ro_compat(&self, bit: u32) -> bool {
        self.feature_ro_compat() & bit != 0
    }

    pub fn has_incompat(&self, bit: u32) -> bool {
        self.feature_incompat() & bit != 0
    }

    /// First non-reserved inode (11 in revision 0).
    pub fn first_ino(&self) -> u32 {
        if self.rev_level() == REV_GOOD_OLD {
            11
        } else {
            self.first_ino_raw()
        }
    }

    /// On-disk inode record size (128 in revision 0).
    pub fn inode_size(&self) -> u32 {
        if self.rev_level() == REV_GOOD_OLD {
            128
        } else {
            u32::from(self.inode_size_raw())
        }
    }

    /// GDT blocks reserved for online growth (`resize_inode`), else 0.
    pub fn reserved_gdt_blocks(&self) -> u32 {
        if self.has_compat(COMPAT_RESIZE_INODE) {
            u32::from(self.reserved_gdt_blocks_raw())
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive() {
        let mut bytes = [0u8; 1024];
        bytes[56] = 0x53;
        bytes[57] = 0xEF;
        bytes[300] = 0x5a; // a journal field this crate never reads
        let mut sb = Superblock::from_bytes(&bytes);
        assert_eq!(sb.magic(), EXT2_MAGIC);
        sb.set_free_blocks_count(77);
        assert_eq!(sb.as_bytes()[300], 0x5a);
        assert_eq!(sb.free_blocks_count(), 77);
    }
}
