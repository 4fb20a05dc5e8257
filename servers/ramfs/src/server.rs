//! The ramfs server's logic, over any [`StateArea`] (the nucleus's in the kernel, a fake in
//! the host tests): the volume table, the initramfs load, `MOUNT`/`UMOUNT`, request-id
//! records, and the commit that ends every request. The protocol itself is `fsserve_lib`'s.
//!
//! **One request, one commit.** A request runs against its volume's cache with write-back
//! held ([`Volume::serve`]); if it changed anything, one `state_commit` carries all of it: the
//! blocks it dirtied (all-zero blocks and freed blocks as `Zero` writes, which give their
//! pages back), the open-reference count it changed, and the record `rid → (result, aux)`.
//! Only then is the reply sent. A failed request, or a failed commit (memory ran out:
//! `ENOSPC`), is undone in memory ([`Volume::abort`]) and leaves the area as it was. So
//! whenever this server dies, the area holds the effect of exactly the requests whose commits
//! happened; a client whose request was committed but not answered retries with the same rid
//! and gets the recorded answer (an `Attr` it carried is rebuilt from the inode).
//!
//! **Startup.** A fresh area gets volume 0 formatted and marked *loading* in one commit; the
//! boot archive is then applied entry by entry, each entry committed with the offset of the
//! next, so that a death during boot resumes where it stopped. A later instance finds the
//! header, mounts every volume it lists (reading a superblock, the group descriptors and the
//! root inode: no file data), restores their open references, and serves.

use crate::cpio;
use crate::store::*;
use abi::proto::fs as proto;
use abi::proto::FileId;
use abi::Errno;
use alloc::vec::Vec;
use ext2::{AtimeMode, Ext2, FormatOptions, MountOptions, WriteBack};
use fsserve_lib::{Done, Request, Volume};
use server_rt::dedup::{Replies, Reply};

/// `statfs` type of every volume: to its users ramfs is a tmpfs.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// Request-id records kept (far more than the clients can have in flight: `linux` and `vfs`
/// each wait for one answer at a time).
pub const RECORDS: usize = 32;
/// Blocks all volumes' caches may hold together (metadata mostly: file data is read from the
/// state area directly).
pub const CACHE_BLOCKS: usize = 1024;
/// The inode number of every volume's root (ext2's).
const ROOT_INO: u64 = 2;

/// A request as it reaches the server: what was asked, its request id, its grant.
pub trait Incoming {
    fn opcode(&self) -> u32;
    fn args(&self) -> [u64; 6];
    fn rid(&self) -> u64;
    fn grant_len(&self) -> u64;
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno>;
    /// Copies `len` bytes at `state_offset` of the state area into the grant at `offset`
    /// without a buffer, if the transport can; `Ok(false)` if it cannot.
    fn state_to_grant(&self, offset: u64, state_offset: u64, len: u64) -> Result<bool, Errno> {
        let _ = (offset, state_offset, len);
        Ok(false)
    }
}

/// A request seen by the volume it is for: device offsets are offsets in its region.
struct OnVolume<'a> {
    req: &'a dyn Incoming,
    base: u64,
}

impl Request for OnVolume<'_> {
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
        match device_offset.checked_add(len) {
            Some(end) if end <= VOLUME_BYTES => self.req.state_to_grant(offset, self.base + device_offset, len),
            _ => Err(Errno::EIO),
        }
    }
}

/// What `start` found, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Started {
    /// The area was fresh: volume 0 was made.
    pub fresh: bool,
    /// Archive entries applied by this instance (0 if the initramfs was loaded before).
    pub loaded: usize,
    pub volumes: usize,
    pub open_files: usize,
}

pub struct Ramfs<S: StateArea> {
    state: S,
    me: usize,
    clock: fn() -> ext2::Timespec,
    initrd: &'static [u8],
    header: Header,
    volumes: Vec<Option<Volume<Region<S>>>>,
    replies: Replies<RECORDS>,
}

/// Writes held on the stack while there are few.
const FEW_WRITES: usize = 4;

/// The writes of one commit: on the stack while they are few (a request that changes no block
/// commits an open count and its reply record, three writes), in a `Vec` past that, so that
/// the common request allocates nothing for its commit.
struct Writes<'a> {
    few: [StateWrite<'a>; FEW_WRITES],
    len: usize,
    many: Vec<StateWrite<'a>>,
}

impl<'a> Writes<'a> {
    fn new() -> Writes<'a> {
        Writes { few: [StateWrite::Zero { offset: 0, len: 0 }; FEW_WRITES], len: 0, many: Vec::new() }
    }

    #[inline]
    fn push(&mut self, w: StateWrite<'a>) {
        match self.few.get_mut(self.len) {
            Some(slot) if self.many.is_empty() => {
                *slot = w;
                self.len += 1;
            }
            _ => self.spill(w),
        }
    }

    /// The push that finds the stack part full: everything moves to the `Vec`.
    #[cold]
    fn spill(&mut self, w: StateWrite<'a>) {
        if self.many.is_empty() {
            self.many.extend_from_slice(&self.few[..self.len]);
        }
        self.many.push(w);
    }

    fn as_slice(&self) -> &[StateWrite<'a>] {
        if self.many.is_empty() {
            &self.few[..self.len]
        } else {
            &self.many
        }
    }
}

/// Appends the writes that make `vol`'s pending changes durable (region at `base`); returns
/// the bytes of pages they may allocate.
fn volume_writes<'a, S: StateArea>(vol: &'a Volume<Region<S>>, base: u64, out: &mut Writes<'a>) -> u64 {
    let mut grow = 0;
    for (offset, len) in vol.freed() {
        out.push(StateWrite::Zero { offset: base + offset, len });
    }
    for (offset, data) in vol.dirty() {
        // Zeros need no page (a whole zero page is given back).
        if is_zero(data) {
            out.push(StateWrite::Zero { offset: base + offset, len: data.len() as u64 });
        } else {
            out.push(StateWrite::Bytes { offset: base + offset, data });
            grow += data.len() as u64;
        }
    }
    grow
}

/// Commits `writes`, refusing (`ENOSPC`) if they could grow the area past its room.
fn commit<S: StateArea>(state: &S, writes: &[StateWrite], grow: u64) -> Result<(), Errno> {
    if writes.is_empty() {
        return Ok(());
    }
    if grow > 0 && grow > state.room() {
        return Err(Errno::ENOSPC);
    }
    state.commit(writes)
}

impl<S: StateArea> Ramfs<S> {
    /// Takes over the state area: makes volume 0 if it is fresh, mounts every volume it
    /// holds, finishes loading the initramfs if a previous instance did not.
    pub fn start(
        state: S,
        me: usize,
        clock: fn() -> ext2::Timespec,
        initrd: &'static [u8],
    ) -> Result<(Ramfs<S>, Started), Errno> {
        if state.size() < STATE_BYTES {
            return Err(Errno::ENOMEM);
        }
        let mut raw = alloc::vec![0u8; HEADER_BYTES];
        state.read(0, &mut raw)?;
        let mut info = Started::default();
        let mut fs = Ramfs {
            state,
            me,
            clock,
            initrd,
            header: Header::new(),
            volumes: (0..MAX_VOLUMES).map(|_| None).collect(),
            replies: Replies::new(),
        };
        match Header::decode(&raw) {
            Some(h) => fs.header = h,
            None => {
                info.fresh = true;
                fs.make_root(raw.iter().any(|&b| b != 0))?;
            }
        }
        let mut rec = alloc::vec![0u8; Replies::<RECORDS>::BYTES];
        fs.state.read(REPLIES_AT, &mut rec)?;
        fs.replies = Replies::decode(&rec);
        for v in 0..MAX_VOLUMES {
            if fs.header.get(v) != VolumeEntry::Free {
                let vol = fs.mount(v)?;
                info.open_files += vol.fs_ref().open_refs().count();
                fs.volumes[v] = Some(vol);
                info.volumes += 1;
            }
        }
        fs.rebalance();
        // Mounting wrote the superblocks (mount count and time).
        fs.commit_idle()?;
        info.loaded = fs.load()?;
        Ok((fs, info))
    }

    /// A fresh area: volume 0 formatted and *loading* from the archive's start, in one commit
    /// (after zeroing everything first if the area held something foreign).
    fn make_root(&mut self, foreign: bool) -> Result<(), Errno> {
        let staging = self.format(0)?;
        let mut header = Header::new();
        header.set(0, VolumeEntry::Loading { next: 0 });
        let bytes = header.encode();
        let mut writes = Writes::new();
        if foreign {
            writes.push(StateWrite::Zero { offset: 0, len: STATE_BYTES });
        }
        let grow = staging_writes(&staging, region_at(0), &mut writes);
        writes.push(StateWrite::Bytes { offset: 0, data: &bytes });
        commit(&self.state, writes.as_slice(), grow)?;
        self.header = header;
        Ok(())
    }

    /// A new empty file system for slot `v`, as the blocks to commit.
    fn format(&self, v: usize) -> Result<Staging, Errno> {
        let now = (self.clock)();
        let mut uuid = [0u8; 16];
        uuid[..8].copy_from_slice(&now.sec.to_le_bytes());
        uuid[8..12].copy_from_slice(&now.nsec.to_le_bytes());
        uuid[12] = v as u8;
        uuid[13] = self.me as u8;
        let opts = FormatOptions {
            block_size: BLOCK_SIZE,
            inodes: Some(VOLUME_INODES),
            inode_size: 256,
            label: if v == 0 { "rootfs".into() } else { "tmpfs".into() },
            uuid,
            now,
            reserved_percent: 0,
            lost_and_found: false,
            assume_zeroed: true,
            ..FormatOptions::default()
        };
        let mut staging = Staging::default();
        ext2::format(&mut staging, &opts)?;
        Ok(staging)
    }

    /// Mounts slot `v`'s file system and restores its open references.
    fn mount(&self, v: usize) -> Result<Volume<Region<S>>, Errno> {
        let dev = Region { state: self.state.clone(), base: region_at(v) };
        let opts = MountOptions {
            read_only: false,
            cache_blocks: CACHE_BLOCKS,
            write_back: WriteBack::Hold,
            atime: AtimeMode::NoAtime,
            clock: self.clock,
        };
        let mut fs = Ext2::mount(dev, opts)?;
        // Free blocks read as zeros here (never written, or zeroed by the commit that freed
        // them), so a new block commits only what is written into it.
        fs.cache_mut().set_free_blocks_read_zero(true);
        let mut vol = Volume::new(fs, self.me, v as u32, TMPFS_MAGIC);
        let mut buf = alloc::vec![0u8; 64 << 10];
        for chunk in 0..OPENS_BYTES / buf.len() as u64 {
            self.state.read(opens_at(v) + chunk * buf.len() as u64, &mut buf)?;
            if is_zero(&buf) {
                continue;
            }
            for (i, w) in buf.chunks_exact(4).enumerate() {
                let count = u32::from_le_bytes(w.try_into().unwrap_or([0; 4]));
                if count != 0 {
                    let ino = chunk * (buf.len() as u64 / 4) + i as u64 + 1;
                    vol.restore_open(ino as u32, count);
                }
            }
        }
        Ok(vol)
    }

    /// Spreads the cache bound over the mounted volumes.
    fn rebalance(&mut self) {
        let n = self.volumes.iter().flatten().count().max(1);
        for vol in self.volumes.iter_mut().flatten() {
            vol.fs().cache_mut().set_capacity((CACHE_BLOCKS / n).max(64));
        }
    }

    /// Commits whatever the volumes hold that no request does (mount-time superblock writes).
    fn commit_idle(&mut self) -> Result<(), Errno> {
        let mut writes = Writes::new();
        let mut grow = 0;
        for (v, vol) in self.volumes.iter().enumerate() {
            if let Some(vol) = vol {
                grow += volume_writes(vol, region_at(v), &mut writes);
            }
        }
        commit(&self.state, writes.as_slice(), grow)?;
        for vol in self.volumes.iter_mut().flatten() {
            vol.committed();
        }
        Ok(())
    }

    /// Applies the rest of the boot archive to volume 0, one commit per entry (each with the
    /// offset of the next), then gives directories their times and marks it ready.
    fn load(&mut self) -> Result<usize, Errno> {
        let mut applied = 0;
        while let VolumeEntry::Loading { next } = self.header.get(0) {
            let Some(vol) = self.volumes[0].as_mut() else { return Err(Errno::EIO) };
            let pos = usize::try_from(next).unwrap_or(usize::MAX);
            let (step, after) = match cpio::entry_at(self.initrd, pos) {
                Some(e) => {
                    let ok = !cpio::wanted(&e) || cpio::apply(vol.fs(), self.initrd, pos, &e).is_ok();
                    applied += usize::from(ok && cpio::wanted(&e));
                    (ok, VolumeEntry::Loading { next: e.next as u64 })
                }
                None => (cpio::set_dir_times(vol.fs(), self.initrd).is_ok(), VolumeEntry::Ready),
            };
            if !step {
                vol.abort()?; // a bad entry is skipped, as the unpacker always did
            }
            let mut header = self.header.clone();
            header.set(0, after);
            let bytes = header.encode();
            let mut writes = Writes::new();
            let grow = volume_writes(vol, region_at(0), &mut writes);
            writes.push(StateWrite::Bytes { offset: 0, data: &bytes });
            if commit(&self.state, writes.as_slice(), grow).is_err() {
                // No memory for this entry: skip it, keep going.
                vol.abort()?;
                commit(&self.state, &[StateWrite::Bytes { offset: 0, data: &bytes }], 0)?;
            }
            vol.committed();
            self.header = header;
        }
        Ok(applied)
    }

    /// The slot of the volume holding the file with FileId word `word`.
    fn volume_of(&self, word: u64) -> Result<usize, Errno> {
        let f = FileId(word);
        let v = f.volume() as usize;
        if f.server() != self.me || v >= MAX_VOLUMES || self.volumes[v].is_none() {
            return Err(Errno::ESTALE);
        }
        Ok(v)
    }

    /// Volume `v` (which `volume_of` found).
    fn vol(&mut self, v: usize) -> Result<&mut Volume<Region<S>>, Errno> {
        self.volumes.get_mut(v).and_then(|x| x.as_mut()).ok_or(Errno::ESTALE)
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
            // Every request is committed before it is answered: nothing is left to write.
            proto::SYNC => Ok((0, 0)),
            _ => {
                let v = self.volume_of(req.args()[0])?;
                let on = OnVolume { req, base: region_at(v) };
                let done = self.vol(v)?.serve(&on)?;
                self.commit_request(v, req.rid(), &done)?;
                Ok((done.result, done.aux))
            }
        }
    }

    /// Ends request `rid` on volume `v` that answered `done`: its changes, its open count and
    /// its record in one commit, or (no memory) undone.
    fn commit_request(&mut self, v: usize, rid: u64, done: &Done) -> Result<(), Errno> {
        let vol = self.volumes[v].as_mut().ok_or(Errno::ESTALE)?;
        if !vol.has_changes() && done.open.is_none() {
            return Ok(()); // a retry simply does it again
        }
        let record = self.replies.change_for(rid, done.result, done.aux);
        let open = done.open.map(|(ino, count)| (ino, count.to_le_bytes()));
        let mut writes = Writes::new();
        let grow = volume_writes(vol, region_at(v), &mut writes);
        if let Some((ino, bytes)) = &open {
            let index = u64::from(*ino).checked_sub(1).filter(|i| *i < OPENS_BYTES / 4).ok_or(Errno::EIO)?;
            writes.push(StateWrite::Bytes { offset: opens_at(v) + index * 4, data: bytes });
        }
        if rid != 0 {
            // Only what the record changed: the ring position and one entry.
            let [(head_at, head), (entry_at, entry)] = &record;
            writes.push(StateWrite::Bytes { offset: REPLIES_AT + *head_at as u64, data: &head[..8] });
            writes.push(StateWrite::Bytes { offset: REPLIES_AT + *entry_at as u64, data: &entry[..] });
        }
        match commit(&self.state, writes.as_slice(), grow) {
            Ok(()) => {
                vol.committed();
                self.replies.record(rid, done.result, done.aux);
                Ok(())
            }
            Err(e) => {
                // The undo cannot fail on a RAM disk; if it did, memory could not be trusted:
                // a new instance starts from what was committed.
                if vol.abort().is_err() {
                    panic!("ramfs: cannot undo a failed commit");
                }
                Err(e)
            }
        }
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
            let v = self.volume_of(word)?;
            let on = OnVolume { req, base: region_at(v) };
            self.vol(v)?.put_attr_of(&on, word)?;
        }
        Ok((rec.result, rec.aux))
    }

    fn op_mount(&mut self, req: &dyn Incoming) -> Result<(i64, u64), Errno> {
        match req.args()[0] {
            proto::MOUNT_INITRAMFS => {
                let root = self.vol(0)?.root().0;
                let on = OnVolume { req, base: region_at(0) };
                self.vol(0)?.put_attr_of(&on, root)?;
                Ok((root as i64, 0))
            }
            proto::MOUNT_TMPFS => {
                let v = (1..MAX_VOLUMES)
                    .find(|&i| self.header.get(i) == VolumeEntry::Free && self.volumes[i].is_none())
                    .ok_or(Errno::ENOMEM)?;
                let staging = self.format(v)?;
                let root = FileId::new(self.me, v as u32, ROOT_INO).0;
                let mut header = self.header.clone();
                header.set(v, VolumeEntry::Ready);
                let head = header.encode();
                let mut replies = self.replies;
                replies.record(req.rid(), root as i64, 0);
                let mut record = [0u8; Replies::<RECORDS>::BYTES];
                replies.encode(&mut record);
                let mut writes = Writes::new();
                writes.push(StateWrite::Zero { offset: region_at(v), len: VOLUME_BYTES });
                writes.push(StateWrite::Zero { offset: opens_at(v), len: OPENS_BYTES });
                let grow = staging_writes(&staging, region_at(v), &mut writes);
                writes.push(StateWrite::Bytes { offset: 0, data: &head });
                if req.rid() != 0 {
                    writes.push(StateWrite::Bytes { offset: REPLIES_AT, data: &record });
                }
                commit(&self.state, writes.as_slice(), grow)?;
                self.header = header;
                self.replies = replies;
                let vol = self.mount(v)?;
                self.volumes[v] = Some(vol);
                self.rebalance();
                self.commit_idle()?;
                let on = OnVolume { req, base: region_at(v) };
                self.vol(v)?.put_attr_of(&on, root)?;
                Ok((root as i64, 0))
            }
            _ => Err(Errno::ENODEV),
        }
    }

    fn op_umount(&mut self, req: &dyn Incoming) -> Result<(i64, u64), Errno> {
        let v = self.volume_of(req.args()[0])?;
        if v == 0 || self.vol(v)?.busy() {
            return Err(Errno::EBUSY);
        }
        let mut header = self.header.clone();
        header.set(v, VolumeEntry::Free);
        let head = header.encode();
        let mut replies = self.replies;
        replies.record(req.rid(), 0, 0);
        let mut record = [0u8; Replies::<RECORDS>::BYTES];
        replies.encode(&mut record);
        let mut writes = Writes::new();
        writes.push(StateWrite::Bytes { offset: 0, data: &head });
        writes.push(StateWrite::Zero { offset: region_at(v), len: VOLUME_BYTES });
        writes.push(StateWrite::Zero { offset: opens_at(v), len: OPENS_BYTES });
        if req.rid() != 0 {
            writes.push(StateWrite::Bytes { offset: REPLIES_AT, data: &record });
        }
        commit(&self.state, writes.as_slice(), 0)?;
        self.header = header;
        self.replies = replies;
        self.volumes[v] = None;
        self.rebalance();
        Ok((0, 0))
    }

    /// The FileId of volume `v`'s root, if it is mounted (for tests and logs).
    pub fn root_of(&self, v: usize) -> Option<FileId> {
        self.volumes.get(v).and_then(|x| x.as_ref()).map(|vol| vol.root())
    }

    /// Every file of every volume with open references, and how many (for tests and logs).
    pub fn open_files(&self) -> Vec<(FileId, u32)> {
        let mut out = Vec::new();
        for vol in self.volumes.iter().flatten() {
            out.extend(vol.fs_ref().open_refs().map(|(ino, n)| (vol.file_id(ino), n)));
        }
        out
    }

    /// Blocks in use in volume `v` (4 KiB each), for the log.
    pub fn used_blocks(&self, v: usize) -> u64 {
        self.volumes.get(v).and_then(|x| x.as_ref()).map_or(0, |vol| {
            let s = vol.fs_ref().statfs();
            s.blocks - s.blocks_free
        })
    }
}

/// Appends the writes of a staged format; returns the bytes they may allocate.
fn staging_writes<'a>(staging: &'a Staging, base: u64, out: &mut Writes<'a>) -> u64 {
    for (offset, data) in &staging.blocks {
        out.push(StateWrite::Bytes { offset: base + offset, data });
    }
    staging.blocks.len() as u64 * u64::from(BLOCK_SIZE)
}
