//! The disk server's logic, over any [`StateArea`] and [`Disk`] (the nucleus's and the `blk`
//! server in the kernel, fakes in the host tests): mounting the disk's file system, one
//! commit per request into the overlay, write-back to the disk, request-id records. The
//! protocol itself is `fsserve_lib`'s.
//!
//! **One request, one commit.** A request runs against the ext2 cache with write-back held
//! ([`Volume::serve`]). If it changed anything, one `state_commit` carries all of it into the
//! overlay: each dirty block whole if the overlay did not hold it yet (its presence bits set
//! in the same commit), only its changed byte ranges if it did; freed blocks the overlay held
//! are dropped; plus the open-reference count it changed and the record `rid → (result,
//! aux)`. Only then is the reply sent. A failed request or commit is undone in memory.
//!
//! **Write-back** copies the overlay's units to the disk in runs, flushes the disk, and then
//! drops those units from the overlay in one commit; it goes in slices of [`SLICE_BYTES`] so
//! that a server killed again and again during a large write-back still makes progress (each
//! slice is idempotent: a death before its commit makes the next instance write it again).
//! It runs on `sync`, `syncfs`, `fsync`, `fdatasync` and `umount` (before they are answered,
//! as on Linux), when the overlay passes [`DIRTY_LIMIT`] or memory runs short, and when the
//! main loop says so (idle, or a while since the last one). Without a journal the disk itself
//! is only consistent after a write-back, as with Linux's ext2; the overlay makes a *server*
//! death lose nothing (a machine crash loses what was not written back, as on Linux).
//!
//! **Startup.** A new instance reads the header, the records and the presence bitmap, and if
//! a file system was mounted mounts it again through the overlay (a superblock, the group
//! descriptors, the root inode) and restores the open references. Dirty units left by a dead
//! instance are simply still there.

use crate::overlay::{Disk, Overlay, Present};
use crate::store::*;
use abi::proto::blk::{BlkInfo, INFO_READ_ONLY};
use abi::proto::fs as proto;
use abi::proto::FileId;
use abi::Errno;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use ext2::{AtimeMode, Ext2, MountOptions, WriteBack};
use fsserve_lib::{Done, Request, Volume};
use server_rt::dedup::{Replies, Reply};

/// `statfs` type: ext2's superblock magic, as Linux reports it.
pub const EXT2_SUPER_MAGIC: u64 = 0xEF53;
/// Request-id records kept (`linux` and `vfs` each wait for one answer at a time).
pub const RECORDS: usize = 32;
/// Memory the ext2 block cache may hold (in the arena; clean blocks, rebuilt after a restart).
pub const CACHE_BYTES: usize = 6 << 20;
/// Overlay bytes past which a request is followed by a write-back.
pub const DIRTY_LIMIT: u64 = 8 << 20;
/// Bytes written back per disk flush and overlay commit.
pub const SLICE_BYTES: u64 = 512 << 10;
/// Largest run of units one disk write carries.
const RUN_BYTES: u64 = 64 << 10;

/// A request as it reaches the server: what was asked, its request id, its grant.
pub trait Incoming {
    fn opcode(&self) -> u32;
    fn args(&self) -> [u64; 6];
    fn rid(&self) -> u64;
    fn grant_len(&self) -> u64;
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno>;
    /// Reads `len` bytes at `disk_offset` of the disk straight into the grant at `offset`
    /// (the block server writes into the client's buffer), if the transport can; `Ok(false)`
    /// if it cannot. Offsets and length are multiples of 512.
    fn disk_to_grant(&self, offset: u64, disk_offset: u64, len: u64) -> Result<bool, Errno> {
        let _ = (offset, disk_offset, len);
        Ok(false)
    }
}

/// A request seen by the mounted volume: direct reads go to the disk only where the overlay
/// holds nothing newer.
struct OnDisk<'a> {
    req: &'a dyn Incoming,
    present: &'a Present,
    size: u64,
}

impl Request for OnDisk<'_> {
    fn opcode(&self) -> u32 {
        self.req.opcode()
    }
    fn args(&self) -> [u64; 6] {
        self.req.args()
    }
    fn grant_len(&self) -> u64 {
        self.req.grant_len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.req.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.req.write(offset, data)
    }
    fn write_from_device(&self, offset: u64, device_offset: u64, len: u64) -> Result<bool, Errno> {
        let end = device_offset.checked_add(len).ok_or(Errno::EIO)?;
        if end > self.size {
            return Err(Errno::EIO);
        }
        if !device_offset.is_multiple_of(512) || !len.is_multiple_of(512) || len == 0 {
            return Ok(false);
        }
        let (first, last) = (device_offset / UNIT, (end - 1) / UNIT);
        if self.present.borrow().range(first..=last).next().is_some() {
            return Ok(false);
        }
        self.req.disk_to_grant(offset, device_offset, len)
    }
}

/// What `start` found, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Started {
    pub disk: Option<BlkInfo>,
    /// A file system was mounted and is again.
    pub remounted: bool,
    /// Units a dead instance left in the overlay (not yet on the disk).
    pub dirty_units: usize,
    pub open_files: usize,
}

/// Counters, for the log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub commits: u64,
    pub writebacks: u64,
    pub bytes_written_back: u64,
    /// Write-backs that failed after a request (the disk refused), and the last errno.
    pub writeback_errors: u64,
    pub last_error: i32,
}

pub struct DiskFs<S: StateArea, B: Disk> {
    state: S,
    disk: B,
    me: usize,
    clock: fn() -> ext2::Timespec,
    header: Header,
    info: Option<BlkInfo>,
    present: Present,
    volume: Option<Volume<Overlay<S, B>>>,
    replies: Replies<RECORDS>,
    pub stats: Stats,
}

/// The disk bytes the overlay may shadow.
fn shadow_size(info: &BlkInfo) -> u64 {
    info.size_bytes.min(MAX_DISK) & !(UNIT - 1)
}

/// The presence-bitmap bytes `[first, first + n)` as they are with `present`, plus `added`,
/// minus `removed`.
fn bitmap_bytes(
    present: &BTreeSet<u64>,
    added: &BTreeSet<u64>,
    removed: &BTreeSet<u64>,
    first: u64,
    n: u64,
) -> Vec<u8> {
    let mut out = alloc::vec![0u8; n as usize];
    let range = first * 8..(first + n) * 8;
    for &u in present.range(range.clone()).chain(added.range(range)) {
        if removed.contains(&u) {
            continue;
        }
        if let Some(b) = out.get_mut((u / 8 - first) as usize) {
            *b |= 1 << (u % 8);
        }
    }
    out
}

/// The bitmap bytes holding `units`, as runs (first byte, bytes) after the change.
fn bitmap_runs(present: &BTreeSet<u64>, added: &BTreeSet<u64>, removed: &BTreeSet<u64>) -> Vec<(u64, Vec<u8>)> {
    let touched: Vec<u64> = {
        let mut t: Vec<u64> = added.iter().chain(removed.iter()).map(|u| u / 8).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    runs(&touched, u64::MAX)
        .into_iter()
        .map(|(first, n)| (first, bitmap_bytes(present, added, removed, first, n)))
        .collect()
}

/// A request's effect, planned against the overlay as it is (which it does not copy: a
/// commit costs what the request changed, not what the overlay holds).
struct Plan {
    /// Blocks written whole (the overlay does not hold all of their units yet).
    whole: BTreeSet<u64>,
    /// Freed blocks the overlay holds: dropped.
    dropped: Vec<u64>,
    /// Units the commit adds to the overlay, and drops from it.
    added: BTreeSet<u64>,
    removed: BTreeSet<u64>,
    /// Bitmap bytes that change: runs (first byte, bytes).
    bitmap: Vec<(u64, Vec<u8>)>,
    /// Bytes of new pages the commit may take.
    grow: u64,
}

fn plan<D: ext2::BlockDevice>(vol: &Volume<D>, present: &BTreeSet<u64>, size: u64) -> Result<Plan, Errno> {
    let cache = vol.fs_ref().cache();
    let bs = u64::from(vol.fs_ref().block_size());
    let per = bs / UNIT;
    let mut whole = BTreeSet::new();
    let mut added = BTreeSet::new();
    let mut dirty = BTreeSet::new();
    for (b, _) in cache.dirty_blocks() {
        if (b + 1).checked_mul(bs).is_none_or(|end| end > size) {
            return Err(Errno::EIO); // never: the cache refuses blocks outside the file system
        }
        dirty.insert(b);
        if (0..per).any(|i| !present.contains(&(b * per + i))) {
            whole.insert(b);
            added.extend((0..per).map(|i| b * per + i).filter(|u| !present.contains(u)));
        }
    }
    let mut dropped = Vec::new();
    let mut removed = BTreeSet::new();
    for b in cache.freed_blocks() {
        if dirty.contains(&b) {
            continue;
        }
        if (0..per).any(|i| present.contains(&(b * per + i))) {
            dropped.push(b);
            removed.extend((0..per).map(|i| b * per + i).filter(|u| present.contains(u)));
        }
    }
    let bitmap = bitmap_runs(present, &added, &removed);
    let grow = whole.len() as u64 * bs + bitmap.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
    Ok(Plan { whole, dropped, added, removed, bitmap, grow })
}

/// The overlay writes of `plan` (whole blocks, changed ranges, dropped blocks, bitmap).
fn plan_writes<'a, D: ext2::BlockDevice>(vol: &'a Volume<D>, plan: &'a Plan, out: &mut Vec<StateWrite<'a>>) {
    let cache = vol.fs_ref().cache();
    let bs = u64::from(vol.fs_ref().block_size());
    for &b in &plan.dropped {
        out.push(StateWrite::Zero { offset: OVERLAY_AT + b * bs, len: bs });
    }
    for (b, data) in cache.dirty_blocks() {
        if plan.whole.contains(&b) {
            out.push(StateWrite::Bytes { offset: OVERLAY_AT + b * bs, data });
        }
    }
    for (b, at, data) in cache.dirty_ranges() {
        if !plan.whole.contains(&b) {
            out.push(StateWrite::Bytes { offset: OVERLAY_AT + b * bs + at as u64, data });
        }
    }
    for (first, bytes) in &plan.bitmap {
        out.push(StateWrite::Bytes { offset: PRESENT_AT + first, data: bytes });
    }
}

impl<S: StateArea, B: Disk> DiskFs<S, B> {
    /// Takes over the state area: the header, the records, the overlay's bitmap, and the file
    /// system if one was mounted.
    pub fn start(
        state: S,
        disk: B,
        me: usize,
        clock: fn() -> ext2::Timespec,
    ) -> Result<(DiskFs<S, B>, Started), Errno> {
        if state.size() < STATE_BYTES {
            return Err(Errno::ENOMEM);
        }
        let mut raw = [0u8; HEADER_BYTES];
        state.read(0, &mut raw)?;
        let header = match Header::decode(&raw) {
            Some(h) => h,
            None => {
                let h = Header::default();
                state.commit(&[StateWrite::Bytes { offset: 0, data: &h.encode() }])?;
                h
            }
        };
        let mut rec = alloc::vec![0u8; Replies::<RECORDS>::BYTES];
        state.read(REPLIES_AT, &mut rec)?;
        let info = disk.info().ok();
        let mut fs = DiskFs {
            state,
            disk,
            me,
            clock,
            header,
            info,
            present: Present::default(),
            volume: None,
            replies: Replies::decode(&rec),
            stats: Stats::default(),
        };
        let mut started = Started { disk: info, ..Started::default() };
        if let Some(info) = info {
            fs.load_bitmap(shadow_size(&info))?;
        }
        started.dirty_units = fs.present.borrow().len();
        if fs.header.mounted && info.is_some() {
            let vol = fs.mount_volume(fs.header.read_only, fs.header.generation)?;
            started.open_files = vol.fs_ref().open_refs().count();
            fs.volume = Some(vol);
            started.remounted = true;
            // Mounting wrote the superblock (mount count and time).
            fs.commit_request(0, &Done::default(), &[])?;
        } else if started.dirty_units > 0 {
            fs.writeback()?;
        }
        Ok((fs, started))
    }

    /// Reads the presence bitmap for a disk of `size` bytes.
    fn load_bitmap(&mut self, size: u64) -> Result<(), Errno> {
        let bytes = (size / UNIT).div_ceil(8);
        let mut buf = alloc::vec![0u8; 64 << 10];
        let mut present = self.present.borrow_mut();
        let mut at = 0;
        while at < bytes {
            let n = (bytes - at).min(buf.len() as u64) as usize;
            let chunk = &mut buf[..n];
            self.state.read(PRESENT_AT + at, chunk)?;
            if !is_zero(chunk) {
                for (i, &b) in chunk.iter().enumerate() {
                    for bit in 0..8 {
                        if b & (1 << bit) != 0 {
                            present.insert((at + i as u64) * 8 + bit);
                        }
                    }
                }
            }
            at += n as u64;
        }
        Ok(())
    }

    /// Mounts the disk's file system through the overlay, restoring its open references.
    fn mount_volume(&self, read_only: bool, generation: u32) -> Result<Volume<Overlay<S, B>>, Errno> {
        let info = self.info.ok_or(Errno::ENXIO)?;
        let dev = Overlay {
            state: self.state.clone(),
            disk: self.disk.clone(),
            present: self.present.clone(),
            size: shadow_size(&info),
        };
        let opts = MountOptions {
            read_only: read_only || info.flags & INFO_READ_ONLY != 0,
            cache_blocks: 256,
            write_back: WriteBack::Hold,
            atime: AtimeMode::Relatime,
            clock: self.clock,
        };
        let mut fs = Ext2::mount(dev, opts)?;
        if fs.statfs().files > MAX_INODES {
            return Err(Errno::EFBIG);
        }
        let bs = fs.block_size() as usize;
        fs.cache_mut().set_capacity((CACHE_BYTES / bs).max(64));
        let mut vol = Volume::new(fs, self.me, generation, EXT2_SUPER_MAGIC);
        let words = vol.fs_ref().statfs().files;
        let mut buf = alloc::vec![0u8; 64 << 10];
        let mut at = 0u64;
        while at < words * 4 {
            let n = (words * 4 - at).min(buf.len() as u64) as usize;
            let chunk = &mut buf[..n];
            self.state.read(OPENS_AT + at, chunk)?;
            if !is_zero(chunk) {
                for (i, w) in chunk.chunks_exact(4).enumerate() {
                    let count = u32::from_le_bytes(w.try_into().unwrap_or([0; 4]));
                    if count != 0 {
                        vol.restore_open((at / 4 + i as u64 + 1) as u32, count);
                    }
                }
            }
            at += n as u64;
        }
        Ok(vol)
    }

    /// The volume a FileId word names (`ESTALE` if not the mounted one).
    fn vol_of(&mut self, word: u64) -> Result<&mut Volume<Overlay<S, B>>, Errno> {
        let f = FileId(word);
        let vol = self.volume.as_mut().ok_or(Errno::ESTALE)?;
        if f.server() != self.me || vol.root().volume() != f.volume() {
            return Err(Errno::ESTALE);
        }
        Ok(vol)
    }

    /// Answers one request: `(Cqe::result, Cqe::aux)`.
    pub fn handle(&mut self, req: &dyn Incoming) -> (i64, u64) {
        match self.handle_inner(req) {
            Ok(r) => r,
            Err(e) => (e.as_return(), 0),
        }
    }

    fn handle_inner(&mut self, req: &dyn Incoming) -> Result<(i64, u64), Errno> {
        if let Some(rec) = self.replies.find(req.rid()) {
            return self.replay(req, rec);
        }
        match req.opcode() {
            proto::RECALL => Err(Errno::ENOMSG),
            proto::MOUNT => self.op_mount(req),
            proto::UMOUNT => self.op_umount(req),
            proto::SYNC => {
                if req.args()[0] != 0 {
                    self.vol_of(req.args()[0])?;
                }
                self.writeback()?;
                Ok((0, 0))
            }
            opcode => {
                let present = self.present.clone();
                let size = self.info.map_or(0, |i| shadow_size(&i));
                let vol = self.vol_of(req.args()[0])?;
                let done = vol.serve(&OnDisk { req, present: &present, size })?;
                self.commit_request(req.rid(), &done, &[])?;
                if opcode == proto::FSYNC {
                    // fsync and fdatasync: the file's data and the metadata it needs are on
                    // the disk before the answer (everything dirty is, here).
                    self.writeback()?;
                } else {
                    self.writeback_if_full();
                }
                Ok((done.result, done.aux))
            }
        }
    }

    /// Ends a request that answered `done` (rid 0: not recorded): its changes, its open
    /// count, its record and `extra` in one commit, or (the commit failed) undone. Memory
    /// running out makes a write-back first and one more try.
    fn commit_request(&mut self, rid: u64, done: &Done, extra: &[StateWrite]) -> Result<(), Errno> {
        let mut retried = false;
        loop {
            match self.try_commit(rid, done, extra) {
                Err(Errno::ENOSPC) if !retried && !self.present.borrow().is_empty() => {
                    retried = true;
                    self.writeback()?;
                }
                Err(e) => {
                    if let Some(vol) = self.volume.as_mut() {
                        // The undo cannot fail but by a disk error; then memory cannot be
                        // trusted: a new instance starts from what was committed.
                        if vol.abort().is_err() {
                            panic!("ext2: cannot undo a failed commit");
                        }
                    }
                    return Err(e);
                }
                Ok(()) => return Ok(()),
            }
        }
    }

    fn try_commit(&mut self, rid: u64, done: &Done, extra: &[StateWrite]) -> Result<(), Errno> {
        let size = self.info.map_or(0, |i| shadow_size(&i));
        let changes = self.volume.as_ref().is_some_and(|v| v.has_changes());
        if !changes && done.open.is_none() && extra.is_empty() {
            return Ok(()); // nothing changed: a retry simply does it again
        }
        let mut replies = self.replies;
        replies.record(rid, done.result, done.aux);
        let record = replies.last_change();
        let open = done.open.map(|(ino, count)| (ino, count.to_le_bytes()));
        let plan = match self.volume.as_ref() {
            Some(vol) => Some(plan(vol, &self.present.borrow(), size)?),
            None => None,
        };
        let mut writes: Vec<StateWrite> = extra.to_vec();
        if let (Some(vol), Some(plan)) = (self.volume.as_ref(), plan.as_ref()) {
            plan_writes(vol, plan, &mut writes);
        }
        if let Some((ino, bytes)) = &open {
            let index = u64::from(*ino).checked_sub(1).filter(|i| *i < MAX_INODES).ok_or(Errno::EIO)?;
            writes.push(StateWrite::Bytes { offset: OPENS_AT + index * 4, data: bytes });
        }
        if rid != 0 {
            let [(head_at, head), (entry_at, entry)] = &record;
            writes.push(StateWrite::Bytes { offset: REPLIES_AT + *head_at as u64, data: &head[..8] });
            writes.push(StateWrite::Bytes { offset: REPLIES_AT + *entry_at as u64, data: &entry[..] });
        }
        let grow = plan.as_ref().map_or(0, |p| p.grow);
        if grow > 0 && grow > self.state.room() {
            return Err(Errno::ENOSPC);
        }
        self.state.commit(&writes)?;
        self.stats.commits += 1;
        if let Some(plan) = plan {
            let mut present = self.present.borrow_mut();
            present.extend(plan.added);
            for u in &plan.removed {
                present.remove(u);
            }
        }
        if let Some(vol) = self.volume.as_mut() {
            vol.committed();
        }
        self.replies = replies;
        Ok(())
    }

    /// Writes back if the overlay has grown past its bound or memory is short. An error is
    /// only counted (the request it follows succeeded, and its data is safe in the overlay;
    /// the next write-back tries again, and a `sync` or `fsync` reports it).
    fn writeback_if_full(&mut self) {
        let bytes = self.dirty_bytes();
        if bytes > DIRTY_LIMIT || (bytes > 0 && self.state.room() < DIRTY_LIMIT) {
            if let Err(e) = self.writeback() {
                self.stats.writeback_errors += 1;
                self.stats.last_error = e.0;
            }
        }
    }

    /// Bytes in the overlay (not yet on the disk).
    pub fn dirty_bytes(&self) -> u64 {
        self.present.borrow().len() as u64 * UNIT
    }

    /// Copies every unit of the overlay to the disk, flushes it, and drops them from the
    /// overlay, slice by slice.
    pub fn writeback(&mut self) -> Result<(), Errno> {
        let units: Vec<u64> = self.present.borrow().iter().copied().collect();
        if units.is_empty() {
            return Ok(());
        }
        let max_run = (self.info.map_or(RUN_BYTES, |i| u64::from(i.max_transfer)).min(RUN_BYTES) / UNIT).max(1);
        let mut buf = alloc::vec![0u8; (max_run * UNIT) as usize];
        let all = runs(&units, max_run);
        let mut slices: Vec<&[(u64, u64)]> = Vec::new();
        let mut rest = &all[..];
        while !rest.is_empty() {
            let mut bytes = 0;
            let n = rest
                .iter()
                .position(|&(_, n)| {
                    bytes += n * UNIT;
                    bytes > SLICE_BYTES
                })
                .unwrap_or(rest.len())
                .max(1);
            slices.push(&rest[..n]);
            rest = &rest[n..];
        }
        for slice in slices {
            for &(first, n) in slice {
                let chunk = &mut buf[..(n * UNIT) as usize];
                self.state.read(OVERLAY_AT + first * UNIT, chunk)?;
                self.disk.write(first * UNIT, chunk)?;
            }
            self.disk.flush()?;
            let mut writes: Vec<StateWrite> = Vec::new();
            for &(first, n) in slice {
                writes.push(StateWrite::Zero { offset: OVERLAY_AT + first * UNIT, len: n * UNIT });
            }
            let removed: BTreeSet<u64> = slice.iter().flat_map(|&(first, n)| first..first + n).collect();
            let bitmap = bitmap_runs(&self.present.borrow(), &BTreeSet::new(), &removed);
            for (first, bytes) in &bitmap {
                writes.push(StateWrite::Bytes { offset: PRESENT_AT + first, data: bytes });
            }
            self.state.commit(&writes)?;
            let written: u64 = slice.iter().map(|&(_, n)| n * UNIT).sum();
            self.stats.bytes_written_back += written;
            let mut present = self.present.borrow_mut();
            for u in &removed {
                present.remove(u);
            }
        }
        self.stats.writebacks += 1;
        Ok(())
    }

    /// Answers a retry of a request whose effect was committed, from its record.
    fn replay(&mut self, req: &dyn Incoming, rec: Reply) -> Result<(i64, u64), Errno> {
        let args = req.args();
        let with_attr = match req.opcode() {
            proto::CREATE | proto::SYMLINK | proto::MOUNT => Some(rec.result as u64),
            proto::SETATTR | proto::LINK => Some(args[0]),
            // A lookup that took an open reference (LOOKUP_OPEN).
            proto::LOOKUP => Some(rec.result as u64),
            _ => None,
        };
        if let (Some(word), true) = (with_attr, rec.result >= 0) {
            let present = self.present.clone();
            let size = self.info.map_or(0, |i| shadow_size(&i));
            let vol = self.vol_of(word)?;
            vol.put_attr_of(&OnDisk { req, present: &present, size }, word)?;
        }
        // A sync whose record survived its death may not have finished its write-back.
        if matches!(req.opcode(), proto::FSYNC | proto::SYNC | proto::UMOUNT) {
            self.writeback()?;
        }
        Ok((rec.result, rec.aux))
    }

    fn op_mount(&mut self, req: &dyn Incoming) -> Result<(i64, u64), Errno> {
        let [kind, flags, ..] = req.args();
        if kind != proto::MOUNT_DEVICE {
            return Err(Errno::ENODEV);
        }
        if self.volume.is_some() {
            return Err(Errno::EBUSY);
        }
        if self.info.is_none() {
            return Err(Errno::ENXIO);
        }
        let read_only = flags & 1 != 0;
        let generation = (self.header.generation % 0xffff) + 1;
        let vol = self.mount_volume(read_only, generation)?;
        let root = vol.root().0;
        self.volume = Some(vol);
        let header = Header { mounted: true, read_only, generation };
        let bytes = header.encode();
        let done = Done { result: root as i64, aux: 0, open: None };
        if let Err(e) = self.commit_request(req.rid(), &done, &[StateWrite::Bytes { offset: 0, data: &bytes }]) {
            self.volume = None;
            return Err(e);
        }
        self.header = header;
        let present = self.present.clone();
        let size = self.info.map_or(0, |i| shadow_size(&i));
        let vol = self.vol_of(root)?;
        vol.put_attr_of(&OnDisk { req, present: &present, size }, root)?;
        Ok((root as i64, 0))
    }

    fn op_umount(&mut self, req: &dyn Incoming) -> Result<(i64, u64), Errno> {
        let vol = self.vol_of(req.args()[0])?;
        if vol.busy() {
            return Err(Errno::EBUSY);
        }
        let opens = vol.fs_ref().statfs().files * 4;
        self.writeback()?;
        let header = Header { mounted: false, ..self.header };
        let bytes = header.encode();
        let done = Done::default();
        let extra = [StateWrite::Bytes { offset: 0, data: &bytes }, StateWrite::Zero { offset: OPENS_AT, len: opens }];
        self.commit_request(req.rid(), &done, &extra)?;
        self.header = header;
        self.volume = None;
        Ok((0, 0))
    }

    /// The mounted file system's root, if any (for tests and logs).
    pub fn root(&self) -> Option<FileId> {
        self.volume.as_ref().map(|v| v.root())
    }

    /// The device the server found at start.
    pub fn disk_info(&self) -> Option<BlkInfo> {
        self.info
    }
}
