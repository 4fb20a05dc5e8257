//! The mounted file system: mount-time checks, inode records, metadata write-back, open
//! references, `statfs`, `sync` and `fsync`.
//!
//! [`Ext2`] owns the block cache (and through it the device), the superblock, the group
//! descriptors and the table of open references. The operations live in their own files
//! (`file.rs`, `namei.rs`, `rename.rs`, `attr.rs`, `dir.rs`); this one holds what they share.

use crate::cache::{BlockCache, Owner, WriteBack};
use crate::device::BlockDevice;
use crate::geometry::{Geometry, GROUP_DESC_SIZE, ROOT_INO};
use crate::group::GroupDesc;
use crate::inode::{FileType, Inode, Timespec};
use crate::le::{put_bytes, put_u32};
use crate::superblock::{
    Superblock, INCOMPAT_SUPPORTED, RO_COMPAT_SUPPORTED, STATE_ERROR, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
};
use abi::Errno;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

/// An inode number.
pub type Ino = u32;

/// When reads update the access time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AtimeMode {
    /// Never (reads dirty nothing).
    NoAtime,
    /// Linux's default: when the access time is older than the modification or change time,
    /// or more than a day old.
    #[default]
    Relatime,
    /// On every read.
    Strict,
}

fn zero_clock() -> Timespec {
    Timespec::default()
}

/// How to mount.
#[derive(Clone, Copy, Debug)]
pub struct MountOptions {
    /// Never write to the device. (Forced on if the image has read-only-compatible features
    /// this crate cannot maintain; see [`Ext2::is_read_only`].)
    pub read_only: bool,
    /// Bound of the block cache, in blocks.
    pub cache_blocks: usize,
    pub write_back: WriteBack,
    pub atime: AtimeMode,
    /// The wall clock for timestamps. The library has no clock of its own.
    pub clock: fn() -> Timespec,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            read_only: false,
            cache_blocks: 2048,
            write_back: WriteBack::Evict,
            atime: AtimeMode::Relatime,
            clock: zero_clock,
        }
    }
}

/// File-system statistics, as `statfs(2)` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub block_size: u32,
    /// Blocks usable for data (total minus metadata overhead, as Linux's ext2 counts).
    pub blocks: u64,
    pub blocks_free: u64,
    /// Free blocks minus the root-reserved ones.
    pub blocks_avail: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: u32,
    /// From the volume UUID.
    pub fsid: u64,
    pub read_only: bool,
}

/// A mounted ext2 file system on a device `D`.
pub struct Ext2<D: BlockDevice> {
    pub(crate) cache: BlockCache<D>,
    pub(crate) sb: Superblock,
    pub(crate) geo: Geometry,
    pub(crate) groups: Vec<GroupDesc>,
    read_only: bool,
    /// Open references per inode (see [`Ext2::open_ref`]).
    open: BTreeMap<Ino, u32>,
    clock: fn() -> Timespec,
    pub(crate) atime_mode: AtimeMode,
    /// Inodes parsed lately, direct-mapped by number: (ino, the block cache's version when it
    /// was parsed, the inode). An entry is good while the version stands (no block changed
    /// since), which a lookup, an attribute read and a file read in a row all see.
    parsed: [Option<(Ino, u64, Inode)>; PARSED_INODES],
}

/// Entries of [`Ext2::parsed`].
const PARSED_INODES: usize = 8;

impl<D: BlockDevice> Ext2<D> {
    /// Mounts the file system on `dev`.
    ///
    /// `EINVAL`: not ext2, an unsupported block size or revision, an unknown INCOMPAT feature,
    /// or a device smaller than the file system. `EUCLEAN`: an ext2 file system whose
    /// superblock, descriptors or root inode are inconsistent. Unknown RO_COMPAT features
    /// mount read-only.
    pub fn mount(mut dev: D, opts: MountOptions) -> Result<Ext2<D>, Errno> {
        if dev.size_bytes() < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
            return Err(Errno::EINVAL);
        }
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        dev.read(SUPERBLOCK_OFFSET, &mut raw).map_err(|_| Errno::EIO)?;
        let sb = Superblock::from_bytes(&raw);
        let geo = Geometry::new(&sb)?;
        if sb.feature_incompat() & !INCOMPAT_SUPPORTED != 0 {
            return Err(Errno::EINVAL);
        }
        let fs_bytes = u64::from(geo.blocks_count) << geo.block_shift;
        if dev.size_bytes() < fs_bytes {
            return Err(Errno::EINVAL);
        }
        let read_only = opts.read_only || sb.feature_ro_compat() & !RO_COMPAT_SUPPORTED != 0;
        let mut cache = BlockCache::new(dev, geo.block_size, u64::from(geo.blocks_count), opts.cache_blocks);
        cache.set_write_back(opts.write_back);

        let mut groups = Vec::with_capacity(geo.groups as usize);
        for g in 0..geo.groups {
            let (blk, off) = gdt_location(&geo, g);
            let block = cache.read(blk)?;
            let desc = GroupDesc::parse(block.get(off..off + GROUP_DESC_SIZE as usize).ok_or(Errno::EUCLEAN)?);
            desc.validate(&geo, g)?;
            groups.push(desc);
        }
        let mut fs = Ext2 {
            cache,
            sb,
            geo,
            groups,
            read_only,
            open: BTreeMap::new(),
            parsed: Default::default(),
            clock: opts.clock,
            atime_mode: opts.atime,
        };
        let root = fs.inode(ROOT_INO).map_err(|_| Errno::EUCLEAN)?;
        if !root.is_dir() {
            return Err(Errno::EUCLEAN);
        }
        if !fs.read_only {
            // Like Linux, trust the per-group counts over the superblock's totals.
            let free_blocks: u64 = fs.groups.iter().map(|g| u64::from(g.free_blocks)).sum();
            let free_inodes: u64 = fs.groups.iter().map(|g| u64::from(g.free_inodes)).sum();
            fs.sb.set_free_blocks_count(u32::try_from(free_blocks).map_err(|_| Errno::EUCLEAN)?);
            fs.sb.set_free_inodes_count(u32::try_from(free_inodes).map_err(|_| Errno::EUCLEAN)?);
            fs.sb.set_mount_count(fs.sb.mount_count().wrapping_add(1));
            fs.sb.set_mount_time(fs.now().sec as u32);
            fs.write_super()?;
        }
        Ok(fs)
    }

    /// Forgets every change since the last commit of the held dirty set: the dirty blocks are
    /// dropped and the superblock and group descriptors (kept decoded in memory) are read
    /// again, so the file system is exactly what the device holds. With
    /// [`WriteBack::Hold`], this is the undo that makes a failed operation all-or-nothing (the
    /// operations themselves are not: see `namei.rs`). Open references are not touched.
    pub fn discard_changes(&mut self) -> Result<(), Errno> {
        self.cache.discard_dirty();
        let (blk, off) = self.geo.superblock_location();
        let raw = self.cache.read(u64::from(blk))?.get(off..off + SUPERBLOCK_SIZE).ok_or(Errno::EIO)?.to_vec();
        let sb = Superblock::from_bytes(&raw);
        let mut groups = Vec::with_capacity(self.groups.len());
        for g in 0..self.geo.groups {
            let (blk, off) = gdt_location(&self.geo, g);
            let block = self.cache.read(blk)?;
            groups.push(GroupDesc::parse(block.get(off..off + GROUP_DESC_SIZE as usize).ok_or(Errno::EUCLEAN)?));
        }
        self.sb = sb;
        self.groups = groups;
        Ok(())
    }

    /// Writes everything back and returns the device.
    pub fn unmount(mut self) -> Result<D, Errno> {
        self.sync()?;
        Ok(self.cache.into_device())
    }

    /// The device back without writing anything (dirty blocks are lost).
    pub fn into_device(self) -> D {
        self.cache.into_device()
    }

    pub fn root(&self) -> Ino {
        ROOT_INO
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub fn block_size(&self) -> u32 {
        self.geo.block_size
    }

    /// The block cache: its dirty set, policy, bound and statistics.
    pub fn cache(&self) -> &BlockCache<D> {
        &self.cache
    }

    /// The block cache, to commit its dirty set ([`BlockCache::mark_all_clean`]) or change its
    /// policy. (Its block accessors are crate-private: nothing outside can write a block.)
    pub fn cache_mut(&mut self) -> &mut BlockCache<D> {
        &mut self.cache
    }

    pub(crate) fn now(&self) -> Timespec {
        (self.clock)()
    }

    pub(crate) fn check_writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    pub(crate) fn filetype_feature(&self) -> bool {
        self.sb.has_incompat(crate::superblock::INCOMPAT_FILETYPE)
    }

    // ----- metadata write-back -----

    /// Copies the in-memory superblock into its cached block.
    pub(crate) fn write_super(&mut self) -> Result<(), Errno> {
        let (blk, off) = self.geo.superblock_location();
        let block = self.cache.modify_range(u64::from(blk), Owner::Meta, off, SUPERBLOCK_SIZE)?;
        put_bytes(block, off, self.sb.as_bytes());
        Ok(())
    }

    /// Copies only the superblock's free counts (the fields allocation changes).
    pub(crate) fn write_super_counts(&mut self) -> Result<(), Errno> {
        let (blk, off) = self.geo.superblock_location();
        let (fb, fi) = (self.sb.free_blocks_count(), self.sb.free_inodes_count());
        let block = self.cache.modify_range(u64::from(blk), Owner::Meta, off + 12, 8)?;
        put_u32(block, off + 12, fb);
        put_u32(block, off + 16, fi);
        Ok(())
    }

    /// Copies group `g`'s descriptor into its cached block.
    pub(crate) fn write_group(&mut self, g: u32) -> Result<(), Errno> {
        let desc = *self.groups.get(g as usize).ok_or(Errno::EUCLEAN)?;
        let (blk, off) = gdt_location(&self.geo, g);
        let block = self.cache.modify_range(blk, Owner::Meta, off, GROUP_DESC_SIZE as usize)?;
        desc.store(block.get_mut(off..off + GROUP_DESC_SIZE as usize).ok_or(Errno::EIO)?);
        Ok(())
    }

    /// Records that corruption was found (`s_state |= ERROR`), so that e2fsck checks the file
    /// system at its next run. Best effort: errors writing the mark are ignored.
    pub(crate) fn note_error(&mut self, e: Errno) -> Errno {
        if e == Errno::EUCLEAN && !self.read_only && self.sb.state() & STATE_ERROR == 0 {
            self.sb.set_state(self.sb.state() | STATE_ERROR);
            let _ = self.write_super();
        }
        e
    }

    // ----- block and inode addressing -----

    /// Whether block `b` (inside the file system) is a superblock copy, descriptor block,
    /// bitmap or inode-table block.
    pub(crate) fn is_metadata(&self, b: u32) -> bool {
        if b < self.geo.first_data_block {
            return true;
        }
        let g = self.geo.group_of_block(b);
        let start = self.geo.group_first_block(g);
        if u64::from(b) < u64::from(start) + u64::from(self.geo.super_area_blocks(g)) {
            return true;
        }
        self.groups.get(g as usize).is_none_or(|d| d.holds_metadata_block(&self.geo, b))
    }

    /// Checks a block pointer read from disk: it must name a data block of this file system.
    pub(crate) fn check_data_block(&self, b: u32) -> Result<u32, Errno> {
        if b >= self.geo.first_data_block && b < self.geo.blocks_count && !self.is_metadata(b) {
            Ok(b)
        } else {
            Err(Errno::EUCLEAN)
        }
    }

    /// Cached block and byte offset of inode `ino`'s record.
    fn inode_location(&self, ino: Ino) -> Result<(u64, usize), Errno> {
        if ino == 0 || ino > self.geo.inodes_count {
            return Err(Errno::EUCLEAN);
        }
        let (g, index) = self.geo.inode_group(ino);
        let desc = self.groups.get(g as usize).ok_or(Errno::EUCLEAN)?;
        let byte = u64::from(index) * u64::from(self.geo.inode_size);
        let blk = u64::from(desc.inode_table) + (byte >> self.geo.block_shift);
        Ok((blk, (byte % u64::from(self.geo.block_size)) as usize))
    }

    /// Parses inode `ino`'s record (whatever its state) into [`Ext2::parsed`], unless it is
    /// there and current; returns its slot there.
    fn parse_inode(&mut self, ino: Ino) -> Result<usize, Errno> {
        let version = self.cache.version();
        let slot = ino as usize % PARSED_INODES;
        if matches!(self.parsed.get(slot), Some(Some((i, v, _))) if *i == ino && *v == version) {
            return Ok(slot);
        }
        let (blk, off) = self.inode_location(ino)?;
        let size = self.geo.inode_size as usize;
        let block = self.cache.read(blk)?;
        let inode = Inode::parse(block.get(off..off + size).ok_or(Errno::EUCLEAN)?);
        *self.parsed.get_mut(slot).ok_or(Errno::EIO)? = Some((ino, version, inode));
        Ok(slot)
    }

    /// The inode parsed in `slot` (by [`Ext2::parse_inode`]), borrowed: the hot paths that only
    /// look at an inode (open, close, getattr) copy none of its ~400 bytes.
    pub(crate) fn parsed_inode(&self, slot: usize) -> Result<&Inode, Errno> {
        match self.parsed.get(slot) {
            Some(Some((_, _, inode))) => Ok(inode),
            _ => Err(Errno::EIO),
        }
    }

    /// Reads inode `ino`'s record, whatever its state.
    pub(crate) fn read_inode(&mut self, ino: Ino) -> Result<Inode, Errno> {
        let slot = self.parse_inode(ino)?;
        self.parsed_inode(slot).cloned()
    }

    /// Checks that `ino` is a live inode (see [`Ext2::inode`]) and returns its slot in
    /// [`Ext2::parsed`].
    pub(crate) fn live_inode(&mut self, ino: Ino) -> Result<usize, Errno> {
        if !self.geo.is_file_ino(ino) {
            return Err(Errno::EUCLEAN);
        }
        let slot = self.parse_inode(ino)?;
        let inode = self.parsed_inode(slot)?;
        if inode.mode == 0 || (inode.links == 0 && !self.is_open(ino)) {
            return Err(Errno::ESTALE);
        }
        if inode.file_type() == FileType::Unknown {
            return Err(Errno::EUCLEAN);
        }
        Ok(slot)
    }

    /// Reads a live inode: `EUCLEAN` for a number that cannot name a file or a record with an
    /// invalid type, `ESTALE` for a freed inode.
    pub(crate) fn inode(&mut self, ino: Ino) -> Result<Inode, Errno> {
        let slot = self.live_inode(ino)?;
        self.parsed_inode(slot).cloned()
    }

    /// Looks at live inode `ino` without copying it (checked as [`Ext2::inode`] does).
    pub(crate) fn with_inode<R>(&mut self, ino: Ino, f: impl FnOnce(&Self, &Inode) -> R) -> Result<R, Errno> {
        let slot = self.live_inode(ino)?;
        Ok(f(self, self.parsed_inode(slot)?))
    }

    /// Writes inode `ino`'s record into its cached inode-table block.
    pub(crate) fn write_inode(&mut self, ino: Ino, inode: &Inode) -> Result<(), Errno> {
        let (blk, off) = self.inode_location(ino)?;
        let size = self.geo.inode_size as usize;
        let block = self.cache.modify_range(blk, Owner::Meta, off, size)?;
        inode.write_to(block.get_mut(off..off + size).ok_or(Errno::EIO)?);
        Ok(())
    }

    // ----- open references -----

    /// Notes one more open reference to `ino` (a file descriptor, a cwd, a mapping...). An
    /// inode whose link count drops to 0 while referenced stays allocated, readable and
    /// writable until its last [`Ext2::release`]. References are in memory only: after a
    /// restart the caller must re-take them ([`Ext2::set_open_count`]), or an inode unlinked
    /// while open before a crash is left for e2fsck to reclaim, as with Linux's ext2.
    pub fn open_ref(&mut self, ino: Ino) -> Result<(), Errno> {
        self.live_inode(ino)?;
        let count = self.open_count(ino).checked_add(1).ok_or(Errno::ENFILE)?;
        self.open.insert(ino, count);
        Ok(())
    }

    /// Drops one open reference; the last one frees an unlinked inode. `EINVAL` if `ino` has
    /// no open reference.
    pub fn release(&mut self, ino: Ino) -> Result<(), Errno> {
        let count = self.open.get_mut(&ino).ok_or(Errno::EINVAL)?;
        *count -= 1;
        if *count > 0 {
            return Ok(());
        }
        self.open.remove(&ino);
        let slot = self.parse_inode(ino)?;
        let inode = self.parsed_inode(slot)?;
        if inode.links == 0 && inode.mode != 0 && !self.read_only {
            let inode = inode.clone();
            self.free_inode(ino, inode).map_err(|e| self.note_error(e))?;
        }
        Ok(())
    }

    pub fn is_open(&self, ino: Ino) -> bool {
        self.open.contains_key(&ino)
    }

    /// The open references to `ino` (0 if none).
    pub fn open_count(&self, ino: Ino) -> u32 {
        self.open.get(&ino).copied().unwrap_or(0)
    }

    /// Every inode with open references, and how many.
    pub fn open_refs(&self) -> impl Iterator<Item = (Ino, u32)> + '_ {
        self.open.iter().map(|(&i, &n)| (i, n))
    }

    /// Sets the open references of `ino` to `count` without freeing anything: for a server
    /// that keeps the references elsewhere to restore them after a restart (an unlinked inode
    /// they keep alive is then alive again) or after undoing a failed operation.
    pub fn set_open_count(&mut self, ino: Ino, count: u32) {
        if count == 0 {
            self.open.remove(&ino);
        } else {
            self.open.insert(ino, count);
        }
    }

    // ----- whole-file-system operations -----

    pub fn statfs(&self) -> StatFs {
        let geo = &self.geo;
        // As Linux's ext4 driver counts (it serves ext2 in Debian's kernels: ext4_statfs): the
        // superblock's overhead count if mke2fs wrote one, else the first data block, every
        // group's bitmaps and inode table, and the superblock, descriptor and reserved
        // descriptor copies.
        let mut overhead = u64::from(geo.first_data_block);
        for g in 0..geo.groups {
            if geo.has_super(g) {
                overhead += 1 + u64::from(geo.gdt_blocks) + u64::from(geo.reserved_gdt_blocks);
            }
            overhead += 2 + u64::from(geo.inode_table_blocks);
        }
        let recorded = u64::from(self.sb.overhead_blocks());
        if recorded != 0 && recorded < u64::from(geo.blocks_count) {
            overhead = recorded;
        }
        let free = u64::from(self.sb.free_blocks_count());
        let uuid = self.sb.uuid();
        let half = |r: core::ops::Range<usize>| {
            uuid.get(r).map_or(0, |b| b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
        };
        StatFs {
            block_size: geo.block_size,
            blocks: u64::from(geo.blocks_count).saturating_sub(overhead),
            blocks_free: free,
            blocks_avail: free.saturating_sub(u64::from(self.sb.r_blocks_count())),
            files: u64::from(geo.inodes_count),
            files_free: u64::from(self.sb.free_inodes_count()),
            name_max: 255,
            fsid: half(0..8) ^ half(8..16),
            read_only: self.read_only,
        }
    }

    /// Writes every dirty block and flushes the device.
    pub fn sync(&mut self) -> Result<(), Errno> {
        if !self.read_only && self.cache.dirty_count() > 0 {
            self.sb.set_write_time(self.now().sec as u32);
            self.write_super()?;
        }
        self.cache.sync()
    }

    /// Writes `ino`'s dirty data and indirect blocks and all dirty shared metadata (inode
    /// table, bitmaps, descriptors, superblock), then flushes. `datasync` is accepted for
    /// the interface; the metadata a file's data depends on is always written.
    pub fn fsync(&mut self, ino: Ino, datasync: bool) -> Result<(), Errno> {
        let _ = datasync;
        self.live_inode(ino)?;
        self.cache.sync_matching(|_, owner| owner == Owner::Meta || owner == Owner::File(ino))
    }
}

/// Cached block and byte offset of group `g`'s descriptor in the primary table.
fn gdt_location(geo: &Geometry, g: u32) -> (u64, usize) {
    let byte = u64::from(g) * u64::from(GROUP_DESC_SIZE);
    let blk = u64::from(geo.gdt_first_block()) + (byte >> geo.block_shift);
    (blk, (byte % u64::from(geo.block_size)) as usize)
}
