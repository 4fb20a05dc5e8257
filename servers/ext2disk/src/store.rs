//! Where the disk server keeps what must outlive it: its state area, seen through
//! [`StateArea`], and the layout of that area. The disk holds the file system as last written
//! back; the area holds everything newer (the dirty blocks), the mount, the open references
//! and the request-id records. Nothing in the server's arena is needed after a death.
//!
//! Layout (offsets in bytes; the area is sparse: pages exist only where something was
//! written, and zeroing writes give them back):
//!
//! | at | what |
//! |---|---|
//! | 0 | the header: magic, version, whether a file system is mounted (and read-only) |
//! | [`REPLIES_AT`] | the request-id records (`server_rt::dedup::Replies`) |
//! | [`OPENS_AT`] | one `u32` open-reference count per inode of the mounted file system |
//! | [`PRESENT_AT`] | the overlay's presence bitmap: bit `u` set = unit `u` is in the overlay |
//! | [`OVERLAY_AT`] | the overlay: disk-shaped, byte `b` of the disk at `OVERLAY_AT + b` |
//!
//! The overlay is the write-back cache. A unit ([`UNIT`] bytes of the disk) whose bit is set
//! holds newer contents than the disk; reads take it from here, and write-back copies it to
//! the disk, flushes the disk, and only then clears bits and overlay in one commit.
//!
//! Invariants: the overlay and its bitmap change only in commits that carry a whole request's
//! effect (or, after a write-back, that drop units the disk now holds); a set bit's unit holds
//! the newest contents of those disk bytes; with nothing mounted the overlay is empty (UMOUNT
//! writes it back first).

use abi::Errno;
use alloc::vec::Vec;
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

/// The overlay's granularity: every ext2 access is a multiple of 1 KiB at a multiple of 1 KiB
/// (the superblock at byte 1024, blocks of 1, 2 or 4 KiB), so no unit is ever half written.
pub const UNIT: u64 = 1024;
/// The largest disk the overlay can shadow. A bigger disk mounts only if its file system
/// ends below this (the rest of the disk is never touched).
pub const MAX_DISK: u64 = 8 << 30;
/// The most inodes a mounted file system may have (one open-reference word each).
pub const MAX_INODES: u64 = 4 << 20;

pub const REPLIES_AT: u64 = 4096;
pub const OPENS_AT: u64 = 64 << 10;
pub const PRESENT_AT: u64 = 32 << 20;
pub const OVERLAY_AT: u64 = 64 << 20;
/// The size the server's spec must ask for.
pub const STATE_BYTES: u64 = OVERLAY_AT + MAX_DISK;

const _: () = assert!(OPENS_AT + MAX_INODES * 4 <= PRESENT_AT);
const _: () = assert!(PRESENT_AT + MAX_DISK / UNIT / 8 <= OVERLAY_AT);

const MAGIC: u64 = u64::from_le_bytes(*b"CAIRNX2D");
const VERSION: u32 = 1;
pub const HEADER_BYTES: usize = 32;

/// What the header says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// A file system on the disk is mounted (a new instance mounts it again).
    pub mounted: bool,
    /// ... read-only (`MS_RDONLY`).
    pub read_only: bool,
    /// Counts mounts (1..=0xffff, the volume field of the FileIds of this mount), so that ids
    /// from an earlier mount are stale, not files of this one.
    pub generation: u32,
}

impl Header {
    /// The header in `bytes`, or `None` if they are not one (a fresh or foreign area).
    pub fn decode(bytes: &[u8]) -> Option<Header> {
        let word = |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        if word(0)? != MAGIC || word(8)? as u32 != VERSION {
            return None;
        }
        let flags = word(16)?;
        if flags > 3 {
            return None;
        }
        let generation = word(24)? as u32;
        Some(Header { mounted: flags & 1 != 0, read_only: flags & 2 != 0, generation })
    }

    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[..8].copy_from_slice(&MAGIC.to_le_bytes());
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        let flags = u64::from(self.mounted) | u64::from(self.read_only) << 1;
        out[16..24].copy_from_slice(&flags.to_le_bytes());
        out[24..28].copy_from_slice(&self.generation.to_le_bytes());
        out
    }
}

/// The units `[first, first + count)` as runs of at most `max_units`, from a sorted list.
pub fn runs(units: &[u64], max_units: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &u in units {
        match out.last_mut() {
            Some((start, n)) if *start + *n == u && *n < max_units => *n += 1,
            _ => out.push((u, 1)),
        }
    }
    out
}

/// Whether `b` is all zeros.
pub fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        for h in [
            Header::default(),
            Header { mounted: true, read_only: false, generation: 1 },
            Header { mounted: true, read_only: true, generation: 0xffff },
        ] {
            assert_eq!(Header::decode(&h.encode()), Some(h));
        }
        assert_eq!(Header::decode(&[0; HEADER_BYTES]), None);
        let mut bad = Header::default().encode();
        bad[16] = 9;
        assert_eq!(Header::decode(&bad), None);
    }

    #[test]
    fn runs_split_at_gaps_and_at_the_bound() {
        assert_eq!(runs(&[1, 2, 3, 7, 8, 10], 64), [(1, 3), (7, 2), (10, 1)]);
        assert_eq!(runs(&[0, 1, 2, 3, 4], 2), [(0, 2), (2, 2), (4, 1)]);
        assert!(runs(&[], 8).is_empty());
    }
}
