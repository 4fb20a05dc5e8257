//! The file-system protocol (`abi::proto::fs`) served from an ext2 volume: the part of a file
//! server that does not depend on where the blocks live. `ramfs` runs it over regions of its
//! state area; a disk ext2 server can run it over a block device. This crate has no IPC and no
//! `unsafe`: a request reaches it through the [`Request`] trait (its opcode, arguments and
//! grant), so the whole protocol is host-tested with a fake.
//!
//! # What it owns
//!
//! A [`Volume`] owns one mounted [`Ext2`] and answers one request at a time against it with
//! the semantics `vfs` and `linux` expect (those ramfs always had): files by `FileId`
//! (server | volume | inode), structures at offset 0 of the grant and names at `NAMES_AT`,
//! readdir as `struct linux_dirent64` records whose `d_off` is the next cookie, `UNLINK`
//! answering the removed file's id in `aux`, `WRITE` the offset after it. Volume-table
//! requests (`MOUNT`, `UMOUNT`, `SYNC` of everything) are the server's, not a volume's.
//!
//! # Transactions at request boundaries
//!
//! The volume keeps the ext2 cache in [`WriteBack::Hold`]: nothing a request changes reaches
//! the device by itself. After [`Volume::serve`] succeeds, the changed blocks
//! ([`Volume::dirty`]) and the blocks whose contents no longer matter ([`Volume::freed`]) are
//! the request's whole effect on the device; the server makes them durable its own way, in one
//! atomic step together with its own bookkeeping (request-id records, the open references
//! [`Done::open`] reports), then calls [`Volume::committed`]. If serving fails, or the commit
//! does, [`Volume::abort`] drops the changes and reloads what ext2 keeps decoded in memory, so
//! a half-done operation leaves nothing behind (the ext2 operations alone are not
//! all-or-nothing on error). A retried request whose effect was committed is answered by the
//! server from its record; [`Volume::put_attr_of`] rebuilds an `Attr` such a reply carried.
//!
//! # Invariants
//!
//! * Between requests the cache holds no dirty block (the caller committed or aborted), so
//!   the device holds exactly the file system; reads may then copy file data straight from
//!   the device into the client's grant ([`Request::write_from_device`]) without a buffer.
//! * What is derived from the device (file layouts for reads, names already looked up) is
//!   kept only until the next commit that changes anything, so it is never stale.
//! * Open references (`OPEN`/`RELEASE`) are ext2's in-memory table; every change is reported
//!   in [`Done::open`] so that the server can persist it and restore it after a restart
//!   ([`Volume::restore_open`]): an unlinked file that is still open survives restarts and is
//!   freed at its last `RELEASE`.
//! * Nothing a client sends is trusted: ids of other servers or volumes are `ESTALE` (`EXDEV`
//!   where two files must share a volume), lengths are bounded by the grant and by
//!   [`MAX_IO`], names by `PATH_MAX`; nothing here panics.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests;

use abi::proto::fs as proto;
use abi::proto::{push_dirent64, Attr, FileId, StatFs, Timespec, NAMES_AT, NAME_MAX, PATH_MAX};
use abi::Errno;
use alloc::vec;
use alloc::vec::Vec;
pub use ext2::{BlockDevice, Ext2, Ino, WriteBack};
use ext2::{RenameMode, SetAttr, SetTime, S_IFDIR, S_IFMT, S_IFREG};

/// The most bytes one READ, WRITE or READDIR moves (Linux's read/write path sends at most
/// 1 MiB; larger requests are answered short, which read(2) and write(2) allow).
pub const MAX_IO: usize = 1 << 20;

/// One request as the volume sees it: what was asked, and the grant that came with it.
pub trait Request {
    fn opcode(&self) -> u32;
    fn args(&self) -> [u64; 6];
    /// Length of the grant (0 if none).
    fn grant_len(&self) -> u64;
    /// Copies out of the grant at `offset` (`EFAULT` if the grant does not allow it).
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies into the grant at `offset`.
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno>;
    /// Copies `len` bytes at byte `device_offset` of this volume's device straight into the
    /// grant at `offset`, if the transport can (a RAM disk lends its pages); `Ok(false)` if it
    /// cannot, and the volume reads through its cache instead.
    fn write_from_device(&self, offset: u64, device_offset: u64, len: u64) -> Result<bool, Errno> {
        let _ = (offset, device_offset, len);
        Ok(false)
    }
}

/// What a successful request answers, and what it changed besides blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Done {
    /// `Cqe::result`.
    pub result: i64,
    /// `Cqe::aux`.
    pub aux: u64,
    /// The open-reference count this request changed: (inode, new count).
    pub open: Option<(Ino, u32)>,
}

impl Done {
    fn result(result: i64) -> Done {
        Done { result, ..Default::default() }
    }
}

fn ts_in(t: ext2::Timespec) -> Timespec {
    Timespec { sec: t.sec, nsec: i64::from(t.nsec) }
}

fn ts_out(t: Timespec) -> ext2::Timespec {
    ext2::Timespec::new(t.sec, t.nsec.clamp(0, 999_999_999) as u32)
}

/// One ext2 file system served over the protocol.
pub struct Volume<D: BlockDevice> {
    fs: Ext2<D>,
    server: usize,
    volume: u32,
    /// What STATFS reports as the type (TMPFS_MAGIC for a RAM file system, EXT2_SUPER_MAGIC).
    fs_type: u64,
    /// The open count the request being served changed, as it was before (for `abort`).
    undo_open: Option<(Ino, u32)>,
    /// A zero-filled buffer for holes read by direct copies.
    zeros: Vec<u8>,
    /// The spans of the direct read being served, kept between reads (a read allocates none).
    spans: Vec<ext2::Span>,
    /// Where recently read files are on the device (size and extents), so that reading a file
    /// again (every exec reads its binary) maps nothing. Valid while the device is unchanged:
    /// emptied by every commit that changed anything.
    maps: alloc::collections::BTreeMap<Ino, FileMap>,
    /// Names looked up since the last change: (directory number, little-endian, then the
    /// name) -> inode. Big directories
    /// (`/bin`) are linear in ext2; path walks repeat the same lookups.
    names: NameCache,
}

/// Slots of the name cache.
const NAMES: usize = 512;

/// A direct-mapped cache of name lookups: a key (see [`Volume::names`]) lives in the slot its
/// FNV-1a hash picks, replacing whatever was there; emptied at once by a new generation. A hit
/// is a hash and one comparison (a B-tree of 512 names compared ~9 keys).
struct NameCache {
    slots: Vec<(u64, Vec<u8>, Ino)>,
    /// Slots of older generations are empty.
    generation: u64,
}

impl NameCache {
    fn new() -> NameCache {
        NameCache { slots: Vec::new(), generation: 1 }
    }

    fn slot(key: &[u8]) -> usize {
        let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        (h ^ (h >> 32)) as usize % NAMES
    }

    fn get(&self, key: &[u8]) -> Option<Ino> {
        let (g, k, ino) = self.slots.get(Self::slot(key))?;
        (*g == self.generation && k.as_slice() == key).then_some(*ino)
    }

    fn insert(&mut self, key: &[u8], ino: Ino) {
        if self.slots.is_empty() {
            self.slots.resize_with(NAMES, || (0, Vec::new(), 0));
        }
        let (g, k, i) = &mut self.slots[Self::slot(key)];
        *g = self.generation;
        k.clear();
        k.extend_from_slice(key);
        *i = ino;
    }

    fn clear(&mut self) {
        self.generation += 1;
    }
}

/// A regular file's layout on the device: its size and its extents in file order, each
/// (file offset, device offset or `None` for a hole, length).
struct FileMap {
    size: u64,
    extents: Vec<(u64, Option<u64>, u64)>,
}

/// Files whose layouts are kept, and the most extents kept for one file.
const MAPS: usize = 64;
const MAP_EXTENTS: usize = 256;

impl<D: BlockDevice> Volume<D> {
    /// Serves `fs` as volume `volume` of server `server` (its index in the server table).
    /// The cache is put in [`WriteBack::Hold`] (see the crate essay): `fs` must have no
    /// dirty blocks the caller has not made durable.
    pub fn new(mut fs: Ext2<D>, server: usize, volume: u32, fs_type: u64) -> Volume<D> {
        fs.cache_mut().set_write_back(WriteBack::Hold);
        Volume {
            fs,
            server,
            volume,
            fs_type,
            undo_open: None,
            zeros: Vec::new(),
            spans: Vec::new(),
            maps: Default::default(),
            names: NameCache::new(),
        }
    }

    pub fn fs(&mut self) -> &mut Ext2<D> {
        &mut self.fs
    }

    pub fn fs_ref(&self) -> &Ext2<D> {
        &self.fs
    }

    /// The device back (dirty blocks are dropped).
    pub fn into_fs(self) -> Ext2<D> {
        self.fs
    }

    pub fn file_id(&self, ino: Ino) -> FileId {
        FileId::new(self.server, self.volume, u64::from(ino))
    }

    /// The root directory's id.
    pub fn root(&self) -> FileId {
        self.file_id(self.fs.root())
    }

    /// The inode a FileId word names in this volume: `EXDEV` for another volume of the same
    /// server, `ESTALE` for anything else that is not ours.
    pub fn ino_of(&self, word: u64) -> Result<Ino, Errno> {
        let f = FileId(word);
        if f.server() != self.server {
            return Err(Errno::ESTALE);
        }
        if f.volume() != self.volume {
            return Err(Errno::EXDEV);
        }
        Ino::try_from(f.ino()).map_err(|_| Errno::ESTALE)
    }

    /// Whether any file of the volume is open (UMOUNT is then EBUSY).
    pub fn busy(&self) -> bool {
        self.fs.open_refs().next().is_some()
    }

    /// Restores open references kept elsewhere (after a restart), before any request.
    pub fn restore_open(&mut self, ino: Ino, count: u32) {
        self.fs.set_open_count(ino, count);
    }

    /// Device writes making the requests served since the last commit durable: (byte offset,
    /// bytes) of what changed in each block, in device order.
    pub fn dirty(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let bs = u64::from(self.fs.block_size());
        self.fs.cache().dirty_ranges().map(move |(b, at, data)| (b * bs + at as u64, data))
    }

    /// Device ranges (byte offset, length) freed since the last commit and not reused: their
    /// contents no longer matter (a RAM disk gives their memory back).
    pub fn freed(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let bs = u64::from(self.fs.block_size());
        self.fs.cache().freed_blocks().map(move |b| (b * bs, bs))
    }

    /// Whether anything awaits a commit.
    pub fn has_changes(&self) -> bool {
        self.fs.cache().dirty_count() > 0 || self.fs.cache().has_freed_blocks()
    }

    /// The caller made [`dirty`](Self::dirty) and [`freed`](Self::freed) durable.
    pub fn committed(&mut self) {
        if self.has_changes() {
            self.maps.clear();
            self.names.clear();
        }
        self.fs.cache_mut().mark_all_clean();
        self.undo_open = None;
    }

    /// Forgets everything since the last commit (a failed request, or a failed commit). An
    /// error here means the in-memory state can no longer be trusted: the server should
    /// restart from what it committed.
    pub fn abort(&mut self) -> Result<(), Errno> {
        if let Some((ino, count)) = self.undo_open.take() {
            self.fs.set_open_count(ino, count);
        }
        self.fs.discard_changes()
    }

    fn attr(&mut self, ino: Ino) -> Result<Attr, Errno> {
        let a = self.fs.getattr(ino)?;
        Ok(Attr {
            file: self.file_id(ino).0,
            size: a.size,
            blocks: a.blocks,
            rdev: a.rdev,
            atime: ts_in(a.atime),
            mtime: ts_in(a.mtime),
            ctime: ts_in(a.ctime),
            mode: a.mode,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            blksize: a.blksize,
            _pad: 0,
        })
    }

    /// Writes `ino`'s Attr at offset 0 of the grant; returns its FileId word.
    fn put_attr(&mut self, req: &dyn Request, ino: Ino) -> Result<i64, Errno> {
        let a = self.attr(ino)?;
        req.write(0, zerocopy::IntoBytes::as_bytes(&a))?;
        Ok(a.file as i64)
    }

    /// Writes the Attr of the file whose FileId word is `word` at offset 0 of the grant: for
    /// a retried request answered from a record, whose first answer carried one.
    pub fn put_attr_of(&mut self, req: &dyn Request, word: u64) -> Result<(), Errno> {
        let ino = self.ino_of(word)?;
        self.put_attr(req, ino).map(|_| ())
    }

    /// A name of the request: `len` bytes at `NAMES_AT + at` of the grant.
    fn name(req: &dyn Request, at: u64, len: u64) -> Result<Vec<u8>, Errno> {
        if len as usize > PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut v = vec![0u8; len as usize];
        req.read(NAMES_AT + at, &mut v)?;
        Ok(v)
    }

    fn owner(word: u64) -> (u32, u32) {
        ((word >> 32) as u32, word as u32)
    }

    /// Serves one request against the cache. On success the changes wait for the caller's
    /// commit; on failure they are already undone (an error from the undo itself is
    /// reported as `EIO` after the request's own error is lost: see [`abort`](Self::abort)).
    pub fn serve(&mut self, req: &dyn Request) -> Result<Done, Errno> {
        self.undo_open = None;
        match self.dispatch(req) {
            Ok(done) => Ok(done),
            Err(e) => match self.abort() {
                Ok(()) => Err(e),
                Err(_) => Err(Errno::EIO),
            },
        }
    }

    fn dispatch(&mut self, req: &dyn Request) -> Result<Done, Errno> {
        let a = req.args();
        match req.opcode() {
            proto::LOOKUP => {
                let dir = self.ino_of(a[0])?;
                // The key of `names`, the directory's number then the name, built on the
                // stack: a hit allocates nothing.
                let len = a[1] as usize;
                if len > NAME_MAX {
                    return Err(Errno::ENAMETOOLONG);
                }
                let mut key = [0u8; 4 + NAME_MAX];
                key[..4].copy_from_slice(&dir.to_le_bytes());
                req.read(NAMES_AT, &mut key[4..4 + len])?;
                let key = &key[..4 + len];
                let ino = match self.names.get(key) {
                    Some(ino) => ino,
                    None => {
                        let ino = self.fs.lookup(dir, &key[4..])?;
                        self.names.insert(key, ino);
                        ino
                    }
                };
                let at = self.attr(ino)?;
                req.write(0, zerocopy::IntoBytes::as_bytes(&at))?;
                let file = at.file as i64;
                let kind = at.mode & S_IFMT;
                if a[2] & proto::LOOKUP_OPEN != 0 && (kind == S_IFREG || kind == S_IFDIR) {
                    let before = self.fs.open_count(ino);
                    self.undo_open = Some((ino, before));
                    self.fs.open_ref(ino)?;
                    return Ok(Done { result: file, aux: proto::LOOKUP_OPENED, open: Some((ino, before + 1)) });
                }
                Ok(Done::result(file))
            }
            proto::GETATTR => {
                let ino = self.ino_of(a[0])?;
                self.put_attr(req, ino).map(|_| Done::result(0))
            }
            proto::SETATTR => self.setattr(req, a),
            proto::READ => self.read(req, a),
            proto::WRITE => self.write(req, a),
            proto::READDIR => self.readdir(req, a),
            proto::CREATE => {
                let dir = self.ino_of(a[0])?;
                let name = Self::name(req, 0, a[1])?;
                let mode = a[2] as u32;
                let (uid, gid) = Self::owner(a[4]);
                let ino = if mode & S_IFMT == S_IFDIR {
                    self.fs.mkdir(dir, &name, mode & 0o7777, uid, gid)?
                } else {
                    self.fs.create(dir, &name, mode, a[3], uid, gid)?
                };
                self.put_attr(req, ino).map(Done::result)
            }
            proto::SYMLINK => {
                let dir = self.ino_of(a[0])?;
                let name = Self::name(req, 0, a[1])?;
                let target = Self::name(req, a[1], a[2])?;
                let (uid, gid) = Self::owner(a[3]);
                let ino = self.fs.symlink(dir, &name, &target, uid, gid)?;
                self.put_attr(req, ino).map(Done::result)
            }
            proto::READLINK => {
                let ino = self.ino_of(a[0])?;
                let target = self.fs.readlink(ino)?;
                let n = target.len().min(a[1] as usize).min(req.grant_len() as usize);
                req.write(0, &target[..n])?;
                Ok(Done::result(n as i64))
            }
            proto::LINK => {
                let ino = self.ino_of(a[0])?;
                let dir = self.ino_of(a[1])?;
                let name = Self::name(req, 0, a[2])?;
                self.fs.link(ino, dir, &name)?;
                self.put_attr(req, ino).map(|_| Done::result(0))
            }
            proto::UNLINK => {
                let dir = self.ino_of(a[0])?;
                let name = Self::name(req, 0, a[1])?;
                match name.as_slice() {
                    b"." => return Err(Errno::EINVAL),
                    b".." => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
                let child = self.fs.lookup(dir, &name)?;
                if a[2] & proto::UNLINK_DIR != 0 {
                    self.fs.rmdir(dir, &name)?;
                } else {
                    self.fs.unlink(dir, &name)?;
                }
                Ok(Done { result: 0, aux: self.file_id(child).0, open: None })
            }
            proto::RENAME => {
                let from_dir = self.ino_of(a[0])?;
                let to_dir = self.ino_of(a[1])?;
                let from = Self::name(req, 0, a[2])?;
                let to = Self::name(req, a[2], a[3])?;
                let mode = match a[4] {
                    0 => RenameMode::Replace,
                    proto::RENAME_NOREPLACE => RenameMode::NoReplace,
                    proto::RENAME_EXCHANGE => RenameMode::Exchange,
                    _ => return Err(Errno::EINVAL),
                };
                self.fs.rename(from_dir, &from, to_dir, &to, mode)?;
                Ok(Done::result(0))
            }
            proto::OPEN => {
                let ino = self.ino_of(a[0])?;
                let before = self.fs.open_count(ino);
                self.undo_open = Some((ino, before));
                self.fs.open_ref(ino)?;
                Ok(Done { result: 0, aux: 0, open: Some((ino, self.fs.open_count(ino))) })
            }
            proto::RELEASE => {
                let ino = self.ino_of(a[0])?;
                let before = self.fs.open_count(ino);
                if before == 0 {
                    // Nothing to release (as ramfs always answered): only check the file.
                    self.fs.getattr(ino)?;
                    return Ok(Done::result(0));
                }
                self.undo_open = Some((ino, before));
                self.fs.release(ino)?;
                Ok(Done { result: 0, aux: 0, open: Some((ino, before - 1)) })
            }
            proto::STATFS => {
                self.ino_of(a[0])?;
                let s = self.fs.statfs();
                let out = StatFs {
                    fs_type: self.fs_type,
                    block_size: u64::from(s.block_size),
                    blocks: s.blocks,
                    blocks_free: s.blocks_free,
                    blocks_avail: s.blocks_avail,
                    files: s.files,
                    files_free: s.files_free,
                    name_max: u64::from(s.name_max),
                    flags: u64::from(s.read_only),
                };
                req.write(0, zerocopy::IntoBytes::as_bytes(&out))?;
                Ok(Done::result(0))
            }
            // Every request is durable before it is answered: nothing is left to write back.
            proto::SYNC => Ok(Done::result(0)),
            proto::FSYNC => {
                let ino = self.ino_of(a[0])?;
                self.fs.getattr(ino)?;
                Ok(Done::result(0))
            }
            proto::PARENT => {
                let dir = self.ino_of(a[0])?;
                let parent = self.fs.lookup(dir, b"..")?;
                self.put_attr(req, parent).map(Done::result)
            }
            proto::NAME_OF => {
                let dir = self.ino_of(a[0])?;
                let child = match self.ino_of(a[1]) {
                    Ok(c) => c,
                    Err(Errno::EXDEV) => return Err(Errno::ENOENT),
                    Err(e) => return Err(e),
                };
                let mut found = None;
                self.fs.readdir(dir, 0, |ino, name, _, _| {
                    if ino == child && name != b"." && name != b".." {
                        found = Some(name.to_vec());
                        return false;
                    }
                    true
                })?;
                let name = found.ok_or(Errno::ENOENT)?;
                req.write(NAMES_AT, &name)?;
                Ok(Done::result(name.len() as i64))
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    fn setattr(&mut self, req: &dyn Request, a: [u64; 6]) -> Result<Done, Errno> {
        let ino = self.ino_of(a[0])?;
        let valid = a[1];
        let mut times = proto::SetTimes::default();
        req.read(0, zerocopy::IntoBytes::as_mut_bytes(&mut times))?;
        let (uid, gid) = Self::owner(a[3]);
        let owner = valid & proto::SET_OWNER != 0;
        let change = SetAttr {
            mode: (valid & proto::SET_MODE != 0).then_some(a[2] as u32),
            uid: (owner && uid != u32::MAX).then_some(uid),
            gid: (owner && gid != u32::MAX).then_some(gid),
            size: (valid & proto::SET_SIZE != 0).then_some(a[4]),
            atime: (valid & proto::SET_ATIME != 0).then_some(SetTime::At(ts_out(times.atime))),
            mtime: (valid & proto::SET_MTIME != 0).then_some(SetTime::At(ts_out(times.mtime))),
        };
        self.fs.setattr(ino, change)?;
        self.put_attr(req, ino).map(|_| Done::result(0))
    }

    fn read(&mut self, req: &dyn Request, a: [u64; 6]) -> Result<Done, Errno> {
        let ino = self.ino_of(a[0])?;
        let len = (a[2].min(req.grant_len()) as usize).min(MAX_IO);
        if self.fs.cache().dirty_count() == 0 {
            if let Some(n) = self.read_direct(req, ino, a[1], len)? {
                return Ok(Done::result(n as i64));
            }
        }
        let mut buf = vec![0u8; len];
        let n = self.fs.read(ino, a[1], &mut buf)?;
        req.write(0, &buf[..n])?;
        Ok(Done::result(n as i64))
    }

    /// The device spans of a read of `len` bytes at `offset` of `ino` into `spans` (emptied
    /// first), from the file's cached layout (made on first use, for files of few extents).
    fn spans(&mut self, ino: Ino, offset: u64, len: usize, spans: &mut Vec<ext2::Span>) -> Result<(), Errno> {
        spans.clear();
        if !self.maps.contains_key(&ino) {
            let size = self.fs.getattr(ino)?.size;
            let whole = self.fs.read_map(ino, 0, usize::try_from(size).unwrap_or(usize::MAX))?;
            if whole.len() > MAP_EXTENTS {
                *spans = self.fs.read_map(ino, offset, len)?;
                return Ok(());
            }
            if self.maps.len() >= MAPS {
                self.maps.clear();
            }
            let mut at = 0;
            let extents = whole
                .iter()
                .map(|s| {
                    let e = (at, s.device_offset, s.len as u64);
                    at += s.len as u64;
                    e
                })
                .collect();
            self.maps.insert(ino, FileMap { size, extents });
        }
        let m = self.maps.get(&ino).ok_or(Errno::EIO)?;
        let end = offset.saturating_add(len as u64).min(m.size);
        if offset >= end {
            return Ok(());
        }
        let first = m.extents.partition_point(|&(at, _, n)| at + n <= offset);
        for &(at, dev, n) in m.extents.get(first..).unwrap_or(&[]) {
            if at >= end {
                break;
            }
            let lo = offset.max(at);
            let hi = end.min(at + n);
            spans.push(ext2::Span { device_offset: dev.map(|d| d + (lo - at)), len: (hi - lo) as usize });
        }
        Ok(())
    }

    /// A read copied from the device into the grant span by span, if the transport can;
    /// `None` if it cannot (nothing was copied).
    fn read_direct(&mut self, req: &dyn Request, ino: Ino, offset: u64, len: usize) -> Result<Option<usize>, Errno> {
        let mut spans = core::mem::take(&mut self.spans);
        let r = self.read_spans(req, ino, offset, len, &mut spans);
        self.spans = spans;
        r
    }

    /// [`Volume::read_direct`] with its span buffer.
    fn read_spans(
        &mut self,
        req: &dyn Request,
        ino: Ino,
        offset: u64,
        len: usize,
        spans: &mut Vec<ext2::Span>,
    ) -> Result<Option<usize>, Errno> {
        self.spans(ino, offset, len, spans)?;
        let mut done = 0u64;
        for (i, s) in spans.iter().enumerate() {
            match s.device_offset {
                Some(at) => {
                    if !req.write_from_device(done, at, s.len as u64)? {
                        if i == 0 {
                            return Ok(None);
                        }
                        // Not for this span after all: the rest through a buffer.
                        let mut buf = vec![0u8; s.len];
                        self.fs.read(ino, offset + done, &mut buf)?;
                        req.write(done, &buf)?;
                    }
                }
                None => {
                    if self.zeros.len() < s.len.min(64 << 10) {
                        self.zeros = vec![0u8; s.len.min(64 << 10)];
                    }
                    let mut left = s.len;
                    while left > 0 {
                        let n = left.min(self.zeros.len());
                        req.write(done + (s.len - left) as u64, &self.zeros[..n])?;
                        left -= n;
                    }
                }
            }
            done += s.len as u64;
        }
        Ok(Some(done as usize))
    }

    fn write(&mut self, req: &dyn Request, a: [u64; 6]) -> Result<Done, Errno> {
        let ino = self.ino_of(a[0])?;
        let len = (a[2].min(req.grant_len()) as usize).min(MAX_IO);
        let mut data = vec![0u8; len];
        req.read(0, &mut data)?;
        let offset = if a[3] & proto::WRITE_APPEND != 0 { self.fs.getattr(ino)?.size } else { a[1] };
        let n = self.fs.write(ino, offset, &data)?;
        Ok(Done { result: n as i64, aux: offset + n as u64, open: None })
    }

    fn readdir(&mut self, req: &dyn Request, a: [u64; 6]) -> Result<Done, Errno> {
        let dir = self.ino_of(a[0])?;
        let limit = (a[2].min(req.grant_len()) as usize).min(MAX_IO);
        let mut out = Vec::new();
        let mut next = a[1];
        let mut full = false;
        self.fs.readdir(dir, a[1], |ino, name, ft, cookie| {
            if push_dirent64(&mut out, limit, u64::from(ino), cookie, ft.dt(), name) {
                next = cookie;
                true
            } else {
                full = true;
                false
            }
        })?;
        if out.is_empty() && full {
            return Err(Errno::EINVAL); // the buffer cannot hold one entry
        }
        req.write(0, &out)?;
        Ok(Done { result: out.len() as i64, aux: next, open: None })
    }
}
