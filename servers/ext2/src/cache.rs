//! The buffer cache: file-system blocks in memory, written back lazily.
//!
//! Every block this crate reads or writes after mount goes through here, and [`Disk::write`]
//! is the one place a write reaches the device: it refuses (with `EIO`) anything that is not
//! inside the file system's `blocks_count`, whatever the caller computed.
//!
//! * **Bounded.** The cache holds at most `capacity` blocks. Inserting into a full cache
//!   evicts the least recently used eighth, writing dirty victims back first in runs of
//!   contiguous blocks (one device write per run).
//! * **Inspectable dirty set.** [`BlockCache::dirty_blocks`] lists every block changed since
//!   it was last written or marked clean, in block order. A server that wants crash atomicity
//!   sets [`WriteBack::Hold`] (dirty blocks are never evicted, so the cache may grow past its
//!   bound by what one operation dirties), applies one operation, commits the dirty set its own
//!   way (a journal, a shadow copy), then calls [`BlockCache::mark_all_clean`].
//! * **Large reads bypass it.** [`BlockCache::read_run`] reads a contiguous run of data blocks
//!   with one device read into the caller's buffer, overlaying any cached (possibly dirty)
//!   copies, without filling the cache with data that is read once.
//! * **Owners.** Each dirty block remembers who dirtied it (file data and indirect blocks of
//!   an inode, or shared metadata) so that `fsync` can write one file's blocks plus metadata.
//! * **Dirty ranges.** Each dirty block also knows which bytes changed
//!   ([`BlockCache::dirty_ranges`]): an inode, a bitmap byte, a directory entry. A committer
//!   that writes only those moves a few hundred bytes per metadata operation, not blocks.
//! * **Freed blocks, and undo.** While held, the cache also remembers the blocks the file
//!   system freed since the last commit ([`BlockCache::freed_blocks`]: a committer may give
//!   their storage back, e.g. a RAM disk's pages), and [`BlockCache::discard_dirty`] forgets
//!   every uncommitted change at once (the device still holds the committed state, since
//!   nothing dirty reached it): that is how a server makes a failed operation leave no trace.

use crate::device::BlockDevice;
use abi::Errno;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

/// Longest run written or zeroed with one device call.
const MAX_RUN_BYTES: usize = 1 << 20;

/// What the cache may do with dirty blocks when it needs room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WriteBack {
    /// Write them back and evict them, like any buffer cache.
    #[default]
    Evict,
    /// Keep them until [`BlockCache::sync`] or [`BlockCache::mark_clean`]: the dirty set is
    /// exactly what changed since the last commit.
    Hold,
}

/// Who dirtied a block, for `fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Shared metadata: superblock, descriptors, bitmaps, inode tables.
    Meta,
    /// Data, directory or indirect blocks of one inode.
    File(u32),
}

/// Counters, for tests and for tuning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Device read calls (one per run for `read_run`).
    pub device_reads: u64,
    /// Device write calls (one per run).
    pub device_writes: u64,
    pub blocks_written: u64,
    pub evictions: u64,
}

struct Entry {
    data: Vec<u8>,
    tick: u64,
    dirty: bool,
    owner: Owner,
    /// While dirty: the bytes `lo..hi` that may differ from the device (the rest is as the
    /// device has it). Empty for a fresh block that is all zeros on a device whose free
    /// blocks read as zeros.
    lo: u32,
    hi: u32,
}

/// The device, seen in file-system blocks, with the bounds check on every access.
struct Disk<D> {
    dev: D,
    block_size: usize,
    fs_blocks: u64,
}

impl<D: BlockDevice> Disk<D> {
    /// Byte offset of an access of `len` bytes at block `blk`, if it is whole blocks inside
    /// the file system.
    fn span(&self, blk: u64, len: usize) -> Result<u64, Errno> {
        if !len.is_multiple_of(self.block_size) {
            return Err(Errno::EIO);
        }
        let count = (len / self.block_size) as u64;
        match blk.checked_add(count) {
            Some(end) if end <= self.fs_blocks => {}
            _ => return Err(Errno::EIO),
        }
        blk.checked_mul(self.block_size as u64).ok_or(Errno::EIO)
    }

    fn read(&mut self, blk: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let off = self.span(blk, buf.len())?;
        self.dev.read(off, buf).map_err(|_| Errno::EIO)
    }

    /// The only device write in the crate (mount, operations and `format` alike).
    fn write(&mut self, blk: u64, buf: &[u8]) -> Result<(), Errno> {
        let off = self.span(blk, buf.len())?;
        self.dev.write(off, buf).map_err(|_| Errno::EIO)
    }
}

/// A bounded write-back cache of file-system blocks over a [`BlockDevice`].
pub struct BlockCache<D> {
    disk: Disk<D>,
    capacity: usize,
    write_back: WriteBack,
    /// Block -> contents. Each entry carries the tick of its last use: a hit only stores a
    /// number (no reordering), and eviction, which is rare, sorts by tick.
    entries: BTreeMap<u64, Entry>,
    dirty: BTreeSet<u64>,
    /// Blocks freed since the last commit (tracked only while [`WriteBack::Hold`]).
    freed: BTreeSet<u64>,
    /// Free blocks read as zeros on the device (see `set_free_blocks_read_zero`).
    zeroes_free: bool,
    tick: u64,
    /// Moves on whenever a block's contents may change (see [`BlockCache::version`]).
    version: u64,
    stats: CacheStats,
}

impl<D: BlockDevice> BlockCache<D> {
    /// A cache of `capacity` blocks (at least 16) of `block_size` bytes over the first
    /// `fs_blocks` blocks of `dev`.
    pub(crate) fn new(dev: D, block_size: u32, fs_blocks: u64, capacity: usize) -> Self {
        BlockCache {
            disk: Disk { dev, block_size: block_size as usize, fs_blocks },
            capacity: capacity.max(16),
            write_back: WriteBack::Evict,
            entries: BTreeMap::new(),
            dirty: BTreeSet::new(),
            freed: BTreeSet::new(),
            zeroes_free: false,
            tick: 0,
            version: 0,
            stats: CacheStats::default(),
        }
    }

    /// Declares that blocks the file system does not use read as zeros on the device (a RAM
    /// disk whose committer zeroes freed blocks, as `freed_blocks` allows): a fresh block then
    /// differs from the device only in what is written into it, which keeps dirty ranges
    /// small.
    pub fn set_free_blocks_read_zero(&mut self, on: bool) {
        self.zeroes_free = on;
        self.version += 1;
    }

    /// A number that changes whenever the contents of any block may have changed (a block
    /// handed out to be modified, replaced, dropped while dirty, or freed): what was derived
    /// from blocks at one version (a parsed inode) is still right while it stays the same.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn block_size(&self) -> usize {
        self.disk.block_size
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the bound (at least 16 blocks); shrinking takes effect at the next insertion.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(16);
    }

    pub fn write_back(&self) -> WriteBack {
        self.write_back
    }

    pub fn set_write_back(&mut self, policy: WriteBack) {
        self.write_back = policy;
    }

    /// Blocks currently cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    pub fn dirty_count(&self) -> usize {
        self.dirty.len()
    }

    /// Every dirty block, in block order: (block number, contents).
    pub fn dirty_blocks(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.dirty.iter().filter_map(|b| self.entries.get(b).map(|e| (*b, e.data.as_slice())))
    }

    /// Forgets that `blk` is dirty (its contents have been made durable by someone else).
    pub fn mark_clean(&mut self, blk: u64) {
        if self.dirty.remove(&blk) {
            if let Some(e) = self.entries.get_mut(&blk) {
                e.dirty = false;
            }
        }
    }

    /// Forgets that anything is dirty or freed: the caller made the whole set durable.
    pub fn mark_all_clean(&mut self) {
        // Most requests dirty nothing: no set to take apart then.
        if self.dirty.is_empty() && self.freed.is_empty() {
            return;
        }
        for b in core::mem::take(&mut self.dirty) {
            if let Some(e) = self.entries.get_mut(&b) {
                e.dirty = false;
            }
        }
        self.freed.clear();
    }

    /// Whether [`freed_blocks`](Self::freed_blocks) has any (without making the iterator when
    /// nothing was freed, the common case).
    pub fn has_freed_blocks(&self) -> bool {
        !self.freed.is_empty() && self.freed_blocks().next().is_some()
    }

    /// Blocks the file system freed since the last [`mark_all_clean`](Self::mark_all_clean)
    /// and has not reused (they are not dirty), in block order. Tracked only while
    /// [`WriteBack::Hold`]; their contents no longer matter, so a committer may discard them.
    pub fn freed_blocks(&self) -> impl Iterator<Item = u64> + '_ {
        self.freed.iter().copied().filter(|b| !self.dirty.contains(b))
    }

    /// Drops every dirty block (and the freed set) without writing anything: the cache then
    /// agrees with the device again. The undo of a held operation that failed; the caller
    /// must also reload any state it derived from those blocks (`Ext2::discard_changes`).
    pub fn discard_dirty(&mut self) {
        self.version += 1;
        for b in core::mem::take(&mut self.dirty) {
            self.entries.remove(&b);
        }
        self.freed.clear();
    }

    pub fn device(&self) -> &D {
        &self.disk.dev
    }

    /// The device back, dropping the cache (dirty blocks are lost: call `sync` first).
    pub fn into_device(self) -> D {
        self.disk.dev
    }

    fn mark_dirty(&mut self, blk: u64, owner: Owner) {
        let bs = self.disk.block_size as u32;
        self.mark_range(blk, owner, 0, bs);
    }

    /// Marks bytes `lo..hi` of block `blk` as changed (widening the range it has).
    fn mark_range(&mut self, blk: u64, owner: Owner, lo: u32, hi: u32) {
        if let Some(e) = self.entries.get_mut(&blk) {
            if !e.dirty {
                (e.lo, e.hi) = (lo, hi);
            } else if lo < hi {
                if e.lo >= e.hi {
                    (e.lo, e.hi) = (lo, hi);
                } else {
                    (e.lo, e.hi) = (e.lo.min(lo), e.hi.max(hi));
                }
            }
            e.dirty = true;
            e.owner = owner;
            self.dirty.insert(blk);
        }
    }

    /// Every dirty block's changed bytes, in block order: (block number, offset in the
    /// block, the bytes). Writing just these to the device makes it equal the cache.
    pub fn dirty_ranges(&self) -> impl Iterator<Item = (u64, usize, &[u8])> + '_ {
        self.dirty.iter().filter_map(|b| {
            let e = self.entries.get(b)?;
            let (lo, hi) = (e.lo as usize, (e.hi as usize).min(e.data.len()));
            (lo < hi).then(|| (*b, lo, e.data.get(lo..hi).unwrap_or(&[])))
        })
    }

    /// Evicts the least recently used blocks if the cache is full.
    fn make_room(&mut self) -> Result<(), Errno> {
        if self.entries.len() < self.capacity {
            return Ok(());
        }
        if self.write_back == WriteBack::Hold && self.dirty.len() >= self.entries.len() {
            return Ok(());
        }
        let target = self.capacity - (self.capacity / 8).max(1);
        let need = self.entries.len().saturating_sub(target);
        // Least recently used first; while held, dirty blocks are not candidates.
        let mut by_age: Vec<(u64, u64)> = self
            .entries
            .iter()
            .filter(|(b, _)| self.write_back != WriteBack::Hold || !self.dirty.contains(b))
            .map(|(&b, e)| (e.tick, b))
            .collect();
        by_age.sort_unstable();
        let victims: Vec<u64> = by_age.iter().take(need).map(|&(_, b)| b).collect();
        let mut dirty_victims: Vec<u64> = victims.iter().copied().filter(|b| self.dirty.contains(b)).collect();
        dirty_victims.sort_unstable();
        self.write_blocks(&dirty_victims)?;
        for blk in victims {
            if self.entries.remove(&blk).is_some() {
                self.stats.evictions += 1;
            }
        }
        Ok(())
    }

    /// Writes the given dirty blocks (sorted) in contiguous runs and marks them clean.
    fn write_blocks(&mut self, blocks: &[u64]) -> Result<(), Errno> {
        let bs = self.disk.block_size;
        let max_run = (MAX_RUN_BYTES / bs).max(1);
        let mut rest = blocks;
        while let Some(&first) = rest.first() {
            let mut len = 1;
            while len < max_run && rest.get(len).is_some_and(|&b| Some(b) == first.checked_add(len as u64)) {
                len += 1;
            }
            let (run, tail) = rest.split_at(len);
            rest = tail;
            if let [only] = run {
                let e = self.entries.get(only).ok_or(Errno::EIO)?;
                self.disk.write(*only, &e.data)?;
            } else {
                let mut buf = Vec::with_capacity(len * bs);
                for b in run {
                    buf.extend_from_slice(&self.entries.get(b).ok_or(Errno::EIO)?.data);
                }
                self.disk.write(first, &buf)?;
            }
            self.stats.device_writes += 1;
            self.stats.blocks_written += len as u64;
            for b in run {
                self.mark_clean(*b);
            }
        }
        Ok(())
    }

    /// Makes `blk` resident (reading it unless `fill` is given) and returns nothing; the
    /// caller then borrows the entry.
    fn load(&mut self, blk: u64, fill: Option<&[u8]>) -> Result<(), Errno> {
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(&blk) {
            self.stats.hits += 1;
            e.tick = self.tick;
            if let Some(src) = fill {
                e.data.copy_from_slice(src);
            }
            return Ok(());
        }
        // Check the address before evicting anything for it.
        self.disk.span(blk, self.disk.block_size)?;
        self.make_room()?;
        let data = match fill {
            Some(src) => src.to_vec(),
            None => {
                self.stats.misses += 1;
                self.stats.device_reads += 1;
                let mut data = vec![0u8; self.disk.block_size];
                self.disk.read(blk, &mut data)?;
                data
            }
        };
        self.entries.insert(blk, Entry { data, tick: self.tick, dirty: false, owner: Owner::Meta, lo: 0, hi: 0 });
        Ok(())
    }

    /// The contents of block `blk`.
    pub(crate) fn read(&mut self, blk: u64) -> Result<&[u8], Errno> {
        self.load(blk, None)?;
        self.entries.get(&blk).map(|e| e.data.as_slice()).ok_or(Errno::EIO)
    }

    /// The contents of block `blk`, to be changed (it becomes dirty, owned by `owner`).
    pub(crate) fn modify(&mut self, blk: u64, owner: Owner) -> Result<&mut [u8], Errno> {
        self.load(blk, None)?;
        self.version += 1;
        self.mark_dirty(blk, owner);
        self.entries.get_mut(&blk).map(|e| e.data.as_mut_slice()).ok_or(Errno::EIO)
    }

    /// The contents of block `blk`, of which the caller changes only `at..at + len`.
    pub(crate) fn modify_range(&mut self, blk: u64, owner: Owner, at: usize, len: usize) -> Result<&mut [u8], Errno> {
        let bs = self.disk.block_size;
        if at.checked_add(len).is_none_or(|end| end > bs) {
            return Err(Errno::EIO);
        }
        self.load(blk, None)?;
        self.version += 1;
        self.mark_range(blk, owner, at as u32, (at + len) as u32);
        self.entries.get_mut(&blk).map(|e| e.data.as_mut_slice()).ok_or(Errno::EIO)
    }

    /// Block `blk`, just allocated, zero-filled without reading it; the caller writes only
    /// `at..at + len` into it.
    pub(crate) fn fresh(&mut self, blk: u64, owner: Owner, at: usize, len: usize) -> Result<&mut [u8], Errno> {
        let bs = self.disk.block_size;
        if at.checked_add(len).is_none_or(|end| end > bs) {
            return Err(Errno::EIO);
        }
        // A block freed in this same transaction still holds its old bytes on the device.
        let zero_on_device = self.zeroes_free && !self.freed.contains(&blk);
        let zeros = vec![0u8; bs];
        self.load(blk, Some(&zeros))?;
        self.version += 1;
        let was_dirty = self.entries.get(&blk).is_some_and(|e| e.dirty);
        if zero_on_device && !was_dirty {
            self.mark_range(blk, owner, at as u32, (at + len) as u32);
        } else {
            self.mark_dirty(blk, owner);
        }
        self.entries.get_mut(&blk).map(|e| e.data.as_mut_slice()).ok_or(Errno::EIO)
    }

    /// Replaces the whole of block `blk` with `data` without reading it.
    pub(crate) fn write(&mut self, blk: u64, data: &[u8], owner: Owner) -> Result<(), Errno> {
        if data.len() != self.disk.block_size {
            return Err(Errno::EIO);
        }
        self.load(blk, Some(data))?;
        self.version += 1;
        self.mark_dirty(blk, owner);
        Ok(())
    }

    /// Reads the contiguous blocks `blk..blk + buf.len() / block_size` into `buf` with one
    /// device read, then overlays cached copies (which may be newer than the device).
    pub(crate) fn read_run(&mut self, blk: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let bs = self.disk.block_size;
        self.disk.read(blk, buf)?;
        self.stats.device_reads += 1;
        let count = (buf.len() / bs) as u64;
        for (b, e) in self.entries.range(blk..blk.saturating_add(count)) {
            let start = ((b - blk) as usize) * bs;
            if let Some(dst) = buf.get_mut(start..start + bs) {
                dst.copy_from_slice(&e.data);
            }
        }
        Ok(())
    }

    /// Drops block `blk` from the cache, dirty or not.
    pub(crate) fn discard(&mut self, blk: u64) {
        self.version += 1;
        self.entries.remove(&blk);
        self.dirty.remove(&blk);
    }

    /// Block `blk` was freed by the file system: dropped, and remembered while held.
    pub(crate) fn freed(&mut self, blk: u64) {
        self.discard(blk);
        if self.write_back == WriteBack::Hold {
            self.freed.insert(blk);
        }
    }

    /// Writes zeros to `count` blocks from `blk` directly (format's inode tables), dropping
    /// any cached copies.
    pub(crate) fn write_zeroes(&mut self, blk: u64, count: u64) -> Result<(), Errno> {
        let bs = self.disk.block_size;
        let run = (MAX_RUN_BYTES / bs).max(1) as u64;
        let zeros = vec![0u8; (run.min(count) as usize) * bs];
        let mut done = 0;
        while done < count {
            let n = run.min(count - done);
            let b = blk.checked_add(done).ok_or(Errno::EIO)?;
            self.disk.write(b, zeros.get(..(n as usize) * bs).ok_or(Errno::EIO)?)?;
            self.stats.device_writes += 1;
            self.stats.blocks_written += n;
            done += n;
        }
        let stale: Vec<u64> = self.entries.range(blk..blk.saturating_add(count)).map(|(b, _)| *b).collect();
        for b in stale {
            self.discard(b);
        }
        Ok(())
    }

    /// Writes the dirty blocks `select` picks, then flushes the device.
    pub(crate) fn sync_matching(&mut self, select: impl Fn(u64, Owner) -> bool) -> Result<(), Errno> {
        let blocks: Vec<u64> =
            self.dirty.iter().copied().filter(|b| self.entries.get(b).is_some_and(|e| select(*b, e.owner))).collect();
        self.write_blocks(&blocks)?;
        self.disk.dev.flush().map_err(|_| Errno::EIO)
    }

    /// Writes every dirty block and flushes the device.
    pub fn sync(&mut self) -> Result<(), Errno> {
        self.sync_matching(|_, _| true)
    }
}
