//! `format`: a fresh, empty ext2 file system (revision 1, `sparse_super`, `filetype`,
//! `large_file`), laid out as `mke2fs -t ext2 -O ^resize_inode,^dir_index,^ext_attr` would:
//! each group is [superblock and descriptor copy, if a backup group] block bitmap, inode
//! bitmap, inode table, data. The root directory and (optionally) `lost+found` take the first
//! data blocks of group 0. Bitmaps are padded with ones past the end of their group, as
//! e2fsck expects. The result passes `e2fsck -fn`.
//!
//! Everything is written through a [`BlockCache`] bounded to the new file system, so format
//! too can only write inside it; inode tables are zeroed with large direct writes.

use crate::cache::{BlockCache, Owner};
use crate::device::BlockDevice;
use crate::dir::{put_dirent, rec_len_for};
use crate::geometry::{Geometry, GROUP_DESC_SIZE, ROOT_INO};
use crate::group::GroupDesc;
use crate::inode::{FileType, Inode, Timespec, S_IFDIR};
use crate::le::put_bytes;
use crate::superblock::{
    Superblock, EXT2_MAGIC, INCOMPAT_FILETYPE, REV_DYNAMIC, RO_COMPAT_LARGE_FILE, RO_COMPAT_SPARSE_SUPER, STATE_VALID,
    SUPERBLOCK_SIZE,
};
use abi::Errno;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// The inode `lost+found` gets: the first non-reserved one.
const LOST_AND_FOUND_INO: u32 = 11;
/// A last group with fewer data blocks than this is dropped, as `mke2fs` does.
const MIN_LAST_GROUP_DATA: u64 = 50;

/// Parameters of a new file system.
#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// 1024, 2048 or 4096.
    pub block_size: u32,
    /// Number of inodes (rounded up to fill inode-table blocks); `None`: one per
    /// `bytes_per_inode` bytes of device.
    pub inodes: Option<u32>,
    pub bytes_per_inode: u32,
    /// 128 or 256 (256 keeps nanosecond timestamps).
    pub inode_size: u32,
    /// Volume label (at most 16 bytes are kept).
    pub label: String,
    /// Volume UUID (the library has no randomness; the caller picks it).
    pub uuid: [u8; 16],
    /// Creation time, and the timestamps of the root directory.
    pub now: Timespec,
    /// Blocks reserved for root, in percent (0 for a RAM disk).
    pub reserved_percent: u32,
    /// Create `/lost+found`, as mke2fs does. `e2fsck -n` is clean without it (`-y` would
    /// create one); a tmpfs may not want it.
    pub lost_and_found: bool,
    /// The device reads as zeros already (a fresh RAM disk): inode tables are not written, so
    /// formatting touches only the few blocks that hold something (mke2fs's
    /// `assume_storage_prezeroed`).
    pub assume_zeroed: bool,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            block_size: 4096,
            inodes: None,
            bytes_per_inode: 8192,
            inode_size: 256,
            label: String::new(),
            uuid: [0; 16],
            now: Timespec::default(),
            reserved_percent: 0,
            lost_and_found: true,
            assume_zeroed: false,
        }
    }
}

/// Group layout chosen by `plan`.
struct Plan {
    blocks: u32,
    inodes_per_group: u32,
}

/// Picks the block count (dropping a uselessly small last group) and inodes per group.
fn plan(opts: &FormatOptions, device_blocks: u64) -> Result<Plan, Errno> {
    let bs = u64::from(opts.block_size);
    let fdb = u64::from(opts.block_size == 1024);
    let bpg = bs * 8;
    let isz = u64::from(opts.inode_size);
    let per_block = bs / isz;
    let mut blocks = device_blocks.min(u64::from(u32::MAX));
    loop {
        if blocks < fdb + 32 {
            return Err(Errno::ENOSPC);
        }
        let groups = (blocks - fdb).div_ceil(bpg);
        let wanted = match opts.inodes {
            Some(n) => u64::from(n),
            None => blocks * bs / u64::from(opts.bytes_per_inode.max(1024)),
        }
        .max(16);
        let step = per_block.max(8);
        let max_ipg = (bpg / step) * step;
        let ipg = (wanted.div_ceil(groups).div_ceil(step) * step).min(max_ipg);
        let itb = ipg * isz / bs;
        let gdt = (groups * u64::from(GROUP_DESC_SIZE)).div_ceil(bs);
        let last = blocks - fdb - (groups - 1) * bpg;
        // Backup groups have 1 + gdt blocks more; count them for the last group to be safe.
        let overhead = 1 + gdt + 2 + itb;
        if groups > 1 && last < overhead + MIN_LAST_GROUP_DATA {
            blocks -= last;
            continue;
        }
        let ipg = u32::try_from(ipg).map_err(|_| Errno::EINVAL)?;
        return Ok(Plan { blocks: blocks as u32, inodes_per_group: ipg });
    }
}

/// Sets bits `from..to` of a bitmap.
fn set_bits(map: &mut [u8], from: u32, to: u32) {
    for bit in from..to {
        if let Some(byte) = map.get_mut((bit / 8) as usize) {
            *byte |= 1 << (bit % 8);
        }
    }
}

/// Writes a new, empty file system on `dev`.
pub fn format<D: BlockDevice>(dev: D, opts: &FormatOptions) -> Result<(), Errno> {
    let bs = opts.block_size;
    if !matches!(bs, 1024 | 2048 | 4096)
        || !opts.inode_size.is_power_of_two()
        || opts.inode_size < 128
        || opts.inode_size > bs
        || opts.reserved_percent > 50
    {
        return Err(Errno::EINVAL);
    }
    let plan = plan(opts, dev.size_bytes() / u64::from(bs))?;
    let groups_hint = (plan.blocks - u32::from(bs == 1024)).div_ceil(bs * 8);
    let now = opts.now;

    let mut sb = Superblock::zeroed();
    sb.set_inodes_count(groups_hint.checked_mul(plan.inodes_per_group).ok_or(Errno::EINVAL)?);
    sb.set_blocks_count(plan.blocks);
    sb.set_r_blocks_count((u64::from(plan.blocks) * u64::from(opts.reserved_percent) / 100) as u32);
    sb.set_first_data_block(u32::from(bs == 1024));
    sb.set_log_block_size(bs.trailing_zeros() - 10);
    sb.set_log_frag_size(bs.trailing_zeros() - 10);
    sb.set_blocks_per_group(bs * 8);
    sb.set_frags_per_group(bs * 8);
    sb.set_inodes_per_group(plan.inodes_per_group);
    sb.set_write_time(now.sec as u32);
    sb.set_max_mount_count(0xffff);
    sb.set_magic(EXT2_MAGIC);
    sb.set_state(STATE_VALID);
    sb.set_errors(1);
    sb.set_last_check(now.sec as u32);
    sb.set_rev_level(REV_DYNAMIC);
    sb.set_first_ino(LOST_AND_FOUND_INO);
    sb.set_inode_size(opts.inode_size as u16);
    sb.set_feature_incompat(INCOMPAT_FILETYPE);
    sb.set_feature_ro_compat(RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE);
    sb.set_uuid(&opts.uuid);
    sb.set_volume_name(opts.label.as_bytes());
    sb.set_mkfs_time(now.sec as u32);
    if opts.inode_size >= 160 {
        sb.set_min_extra_isize(32);
        sb.set_want_extra_isize(32);
    }
    let geo = Geometry::new(&sb)?;

    // Group layout and usage.
    let lpf_blocks = if opts.lost_and_found { (16384 / bs).clamp(2, 12) } else { 0 };
    let mut descs = Vec::with_capacity(geo.groups as usize);
    for g in 0..geo.groups {
        let meta = geo.group_first_block(g) + geo.super_area_blocks(g);
        let overhead = geo.super_area_blocks(g) + 2 + geo.inode_table_blocks;
        let used_data = if g == 0 { 1 + lpf_blocks } else { 0 };
        let free = geo.group_block_count(g).checked_sub(overhead + used_data).ok_or(Errno::ENOSPC)?;
        let used_inodes = if g == 0 { geo.first_ino - 1 + u32::from(opts.lost_and_found) } else { 0 };
        descs.push(GroupDesc {
            block_bitmap: meta,
            inode_bitmap: meta + 1,
            inode_table: meta + 2,
            free_blocks: u16::try_from(free).map_err(|_| Errno::EINVAL)?,
            free_inodes: u16::try_from(geo.inodes_per_group - used_inodes).map_err(|_| Errno::EINVAL)?,
            used_dirs: if g == 0 { 1 + u16::from(opts.lost_and_found) } else { 0 },
        });
    }
    let free_blocks: u32 = descs.iter().map(|d| u32::from(d.free_blocks)).sum();
    let free_inodes: u32 = descs.iter().map(|d| u32::from(d.free_inodes)).sum();
    sb.set_free_blocks_count(free_blocks);
    sb.set_free_inodes_count(free_inodes);

    let mut cache = BlockCache::new(dev, bs, u64::from(geo.blocks_count), 256);
    let bsz = bs as usize;
    let data0 = descs.first().map_or(0, |d| d.inode_table + geo.inode_table_blocks);
    let root_block = data0;

    for (g, desc) in (0..geo.groups).zip(&descs) {
        let start = geo.group_first_block(g);
        if !opts.assume_zeroed {
            cache.write_zeroes(u64::from(desc.inode_table), u64::from(geo.inode_table_blocks))?;
        }
        let mut map = vec![0u8; bsz];
        set_bits(&mut map, 0, desc.inode_table + geo.inode_table_blocks - start);
        if g == 0 {
            set_bits(&mut map, data0 - start, data0 - start + 1 + lpf_blocks);
        }
        set_bits(&mut map, geo.group_block_count(g), bs * 8);
        cache.write(u64::from(desc.block_bitmap), &map, Owner::Meta)?;
        let mut map = vec![0u8; bsz];
        if g == 0 {
            set_bits(&mut map, 0, geo.first_ino - 1 + u32::from(opts.lost_and_found));
        }
        set_bits(&mut map, geo.inodes_per_group, bs * 8);
        cache.write(u64::from(desc.inode_bitmap), &map, Owner::Meta)?;
    }

    // Directories.
    let ft = FileType::Directory as u8;
    let mut block = vec![0u8; bsz];
    put_dirent(&mut block, 0, ROOT_INO, 12, b".", ft, true);
    if opts.lost_and_found {
        put_dirent(&mut block, 12, ROOT_INO, 12, b"..", ft, true);
        put_dirent(&mut block, 24, LOST_AND_FOUND_INO, bsz - 24, b"lost+found", ft, true);
        debug_assert!(rec_len_for(10) <= bsz - 24);
    } else {
        put_dirent(&mut block, 12, ROOT_INO, bsz - 12, b"..", ft, true);
    }
    cache.write(u64::from(root_block), &block, Owner::Meta)?;
    let mut root = Inode::new(opts.inode_size, S_IFDIR | 0o755, 0, 0, now);
    root.links = 2 + u16::from(opts.lost_and_found);
    root.size = u64::from(bs);
    root.blocks = geo.sectors_per_block();
    root.block[0] = root_block;
    let mut inodes = vec![(ROOT_INO, root)];
    if opts.lost_and_found {
        let mut lpf = Inode::new(opts.inode_size, S_IFDIR | 0o700, 0, 0, now);
        lpf.links = 2;
        lpf.size = u64::from(lpf_blocks * bs);
        lpf.blocks = lpf_blocks * geo.sectors_per_block();
        for i in 0..lpf_blocks {
            let b = root_block + 1 + i;
            let mut block = vec![0u8; bsz];
            if i == 0 {
                put_dirent(&mut block, 0, LOST_AND_FOUND_INO, 12, b".", ft, true);
                put_dirent(&mut block, 12, ROOT_INO, bsz - 12, b"..", ft, true);
            } else {
                put_dirent(&mut block, 0, 0, bsz, b"", 0, true);
            }
            cache.write(u64::from(b), &block, Owner::Meta)?;
            if let Some(p) = lpf.block.get_mut(i as usize) {
                *p = b;
            }
        }
        inodes.push((LOST_AND_FOUND_INO, lpf));
    }
    let it0 = descs.first().map_or(0, |d| d.inode_table);
    for (ino, inode) in &inodes {
        let byte = u64::from(ino - 1) * u64::from(opts.inode_size);
        let blk = u64::from(it0) + byte / u64::from(bs);
        let off = (byte % u64::from(bs)) as usize;
        let table = cache.modify(blk, Owner::Meta)?;
        inode.write_to(table.get_mut(off..off + opts.inode_size as usize).ok_or(Errno::EIO)?);
    }

    // Descriptor tables and superblocks, primary and backups.
    let mut gdt = vec![0u8; (geo.gdt_blocks as usize) * bsz];
    for (g, desc) in descs.iter().enumerate() {
        let off = g * GROUP_DESC_SIZE as usize;
        if let Some(raw) = gdt.get_mut(off..off + GROUP_DESC_SIZE as usize) {
            desc.store(raw);
        }
    }
    for g in (0..geo.groups).filter(|&g| geo.has_super(g)) {
        let start = geo.group_first_block(g);
        for (i, chunk) in gdt.chunks_exact(bsz).enumerate() {
            cache.write(u64::from(start) + 1 + i as u64, chunk, Owner::Meta)?;
        }
        sb.set_block_group_nr(g as u16);
        let mut block = vec![0u8; bsz];
        let (blk, off) = if g == 0 { geo.superblock_location() } else { (start, 0) };
        put_bytes(&mut block, off, sb.as_bytes());
        debug_assert!(off + SUPERBLOCK_SIZE <= bsz);
        cache.write(u64::from(blk), &block, Owner::Meta)?;
    }
    if bs == 1024 {
        // The boot block, outside every group.
        cache.write(0, &vec![0u8; bsz], Owner::Meta)?;
    }
    cache.sync()
}
