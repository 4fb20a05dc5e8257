//! Where ramfs keeps everything: its state area, seen through [`StateArea`], and the layout
//! of that area. The area outlives every instance of the server; nothing else does.
//!
//! Layout (offsets in bytes; pages are only allocated where something was written):
//!
//! | at | what |
//! |---|---|
//! | 0 | the header: magic, version, the volume table ([`VolumeEntry`] per slot) |
//! | [`REPLIES_AT`] | the request-id records (`server_rt::dedup::Replies`) |
//! | [`OPENS_AT`] + v·[`OPENS_BYTES`] | volume v's open references: one `u32` count per inode |
//! | [`REGIONS_AT`] + v·[`VOLUME_BYTES`] | volume v's ext2 file system, block for block |
//!
//! Invariants: the header says which slots hold a volume; a slot's region and open table are
//! all zeros when it is free (UMOUNT zeroes them in the commit that frees the slot); a
//! region's blocks change only by commits of a whole request's effect, so the region always
//! holds a consistent ext2 file system, exactly as it was after some request.

use abi::Errno;
use alloc::vec::Vec;
use ext2::{BlockDevice, IoError};
pub use server_rt::StateWrite;

/// The server's view of its state area (the nucleus's, or a test's fake).
pub trait StateArea: Clone {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Copies out (never-written bytes read as zeros).
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Applies `writes` atomically (a death happens before or after, never inside). `ENOSPC`
    /// when memory ran out, with nothing applied.
    fn commit(&self, writes: &[StateWrite]) -> Result<(), Errno>;
    /// Bytes the area may still grow by before the system runs short of memory.
    fn room(&self) -> u64;
}

/// Slots in the volume table: volume 0 is the initramfs, the others tmpfs mounts.
pub const MAX_VOLUMES: usize = 32;
/// Size of each volume's region (its ext2 file system): 65536 blocks of 4 KiB.
pub const VOLUME_BYTES: u64 = 256 << 20;
pub const BLOCK_SIZE: u32 = 4096;
/// Inodes of each volume (one open-reference word each).
pub const VOLUME_INODES: u32 = 65536;

pub const REPLIES_AT: u64 = 4096;
pub const OPENS_AT: u64 = 64 << 10;
pub const OPENS_BYTES: u64 = VOLUME_INODES as u64 * 4;
pub const REGIONS_AT: u64 = 16 << 20;
/// The size the server's spec must ask for.
pub const STATE_BYTES: u64 = REGIONS_AT + MAX_VOLUMES as u64 * VOLUME_BYTES;

const _: () = assert!(OPENS_AT + MAX_VOLUMES as u64 * OPENS_BYTES <= REGIONS_AT);

const MAGIC: u64 = u64::from_le_bytes(*b"CAIRNRF2");
const VERSION: u32 = 1;
const ENTRY_AT: usize = 16;
const ENTRY_BYTES: usize = 16;
pub const HEADER_BYTES: usize = ENTRY_AT + MAX_VOLUMES * ENTRY_BYTES;

/// What a slot of the volume table holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VolumeEntry {
    #[default]
    Free,
    /// The initramfs, being filled from the boot archive: the next entry to apply is at this
    /// offset of the archive (everything before it is in the file system).
    Loading { next: u64 },
    /// A file system in use (the initramfs once loaded, or a tmpfs).
    Ready,
}

/// The decoded header: each slot as two words (kind, archive offset), always initialised.
///
/// Not an array of [`VolumeEntry`] on purpose: LLVM's loop vectorizer on AArch64 (rustc
/// 1.95) turned the loop encoding such an array, once inlined, into unconditional loads of the
/// `Loading` payload, which is uninitialised in the other variants, while keeping their
/// `!noundef`; SROA then proved the path undefined and it compiled to a trap (see
/// docs/caveats.md). Plain words have no uninitialised bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    words: [[u64; 2]; MAX_VOLUMES],
}

impl Header {
    pub fn new() -> Header {
        Header { words: [[0; 2]; MAX_VOLUMES] }
    }

    pub fn get(&self, v: usize) -> VolumeEntry {
        match self.words.get(v).copied().unwrap_or([0, 0]) {
            [1, next] => VolumeEntry::Loading { next },
            [2, _] => VolumeEntry::Ready,
            _ => VolumeEntry::Free,
        }
    }

    pub fn set(&mut self, v: usize, e: VolumeEntry) {
        if let Some(w) = self.words.get_mut(v) {
            *w = match e {
                VolumeEntry::Free => [0, 0],
                VolumeEntry::Loading { next } => [1, next],
                VolumeEntry::Ready => [2, 0],
            };
        }
    }

    /// The header in `bytes`, or `None` if they are not one (a fresh or foreign area).
    pub fn decode(bytes: &[u8]) -> Option<Header> {
        let word = |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        if word(0)? != MAGIC || word(8)? as u32 != VERSION {
            return None;
        }
        let mut h = Header::new();
        for (i, w) in h.words.iter_mut().enumerate() {
            let at = ENTRY_AT + i * ENTRY_BYTES;
            *w = [word(at)?, word(at + 8)?];
            if w[0] > 2 {
                return None;
            }
        }
        Some(h)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = alloc::vec![0u8; HEADER_BYTES];
        out[..8].copy_from_slice(&MAGIC.to_le_bytes());
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        for (slot, w) in out[ENTRY_AT..].chunks_exact_mut(ENTRY_BYTES).zip(&self.words) {
            slot[..8].copy_from_slice(&w[0].to_le_bytes());
            slot[8..].copy_from_slice(&w[1].to_le_bytes());
        }
        out
    }
}

impl Default for Header {
    fn default() -> Self {
        Self::new()
    }
}

pub fn region_at(v: usize) -> u64 {
    REGIONS_AT + v as u64 * VOLUME_BYTES
}

pub fn opens_at(v: usize) -> u64 {
    OPENS_AT + v as u64 * OPENS_BYTES
}

/// A volume's region as the block device its ext2 file system lives on. Reads come from the
/// state area; writes are refused: blocks reach the area only in the server's commits (the
/// cache holds them until then), so a write here would be a bug, and fails as `EIO`.
#[derive(Clone)]
pub struct Region<S: StateArea> {
    pub state: S,
    pub base: u64,
}

impl<S: StateArea> BlockDevice for Region<S> {
    fn size_bytes(&self) -> u64 {
        VOLUME_BYTES
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= VOLUME_BYTES => self.state.read(self.base + offset, buf).map_err(|_| IoError::Device),
            _ => Err(IoError::OutOfRange),
        }
    }
    fn write(&mut self, _offset: u64, _buf: &[u8]) -> Result<(), IoError> {
        Err(IoError::Device)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// A device that collects what `ext2::format` writes, for one commit: blocks as written, on
/// top of zeros (the commit zeroes the region first).
#[derive(Default)]
pub struct Staging {
    pub blocks: alloc::collections::BTreeMap<u64, Vec<u8>>,
}

impl BlockDevice for Staging {
    fn size_bytes(&self) -> u64 {
        VOLUME_BYTES
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let bs = BLOCK_SIZE as u64;
        if !offset.is_multiple_of(bs)
            || !(buf.len() as u64).is_multiple_of(bs)
            || offset + buf.len() as u64 > VOLUME_BYTES
        {
            return Err(IoError::OutOfRange);
        }
        for (i, chunk) in buf.chunks_mut(bs as usize).enumerate() {
            match self.blocks.get(&(offset + i as u64 * bs)) {
                Some(b) => chunk.copy_from_slice(b),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        let bs = BLOCK_SIZE as u64;
        if !offset.is_multiple_of(bs)
            || !(buf.len() as u64).is_multiple_of(bs)
            || offset + buf.len() as u64 > VOLUME_BYTES
        {
            return Err(IoError::OutOfRange);
        }
        for (i, chunk) in buf.chunks(bs as usize).enumerate() {
            let at = offset + i as u64 * bs;
            if is_zero(chunk) {
                self.blocks.remove(&at);
            } else {
                self.blocks.insert(at, chunk.to_vec());
            }
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// Whether `b` is all zeros (such a block is committed as a `Zero`: no page holds it).
/// Eight bytes at a time; most data blocks fail at the first word.
pub fn is_zero(b: &[u8]) -> bool {
    let words = b.chunks_exact(8);
    let tail = words.remainder();
    words.into_iter().all(|c| u64::from_ne_bytes(c.try_into().unwrap_or([1; 8])) == 0) && tail.iter().all(|&x| x == 0)
}
