//! The block device the mounted ext2 file system sees: the disk (the `blk` server, through
//! [`Disk`]) under the state area's overlay of dirty units (`store.rs`). Reads take each unit
//! from the overlay if it is there, from the disk otherwise; contiguous runs of either kind
//! are one access. Writes are refused: blocks reach the overlay only in the server's commits
//! and the disk only in write-back (`server.rs`), so a write here would be a bug (`EIO`).
//!
//! The set of units in the overlay is shared ([`Present`]) between this device, which reads
//! through it, and the server, which changes it after each commit and write-back.

use crate::store::{StateArea, MAX_DISK, OVERLAY_AT, UNIT};
use abi::proto::blk::BlkInfo;
use abi::Errno;
use alloc::collections::BTreeSet;
use alloc::rc::Rc;
use core::cell::RefCell;
use ext2::{BlockDevice, IoError};

/// The disk, as the block server offers it. Offsets and lengths are multiples of the
/// device's block size; an implementation splits transfers larger than it can carry.
pub trait Disk: Clone {
    /// What the device is (size, block size, read-only, write cache); `ENXIO` without one.
    fn info(&self) -> Result<BlkInfo, Errno>;
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno>;
    /// Every write answered so far is on stable storage.
    fn flush(&self) -> Result<(), Errno>;
}

/// The units (disk offset / [`UNIT`]) whose newest contents are in the overlay.
pub type Present = Rc<RefCell<BTreeSet<u64>>>;

/// Disk plus overlay, as ext2 reads it.
#[derive(Clone)]
pub struct Overlay<S: StateArea, B: Disk> {
    pub state: S,
    pub disk: B,
    pub present: Present,
    /// The device size ext2 may use: the disk's, at most [`MAX_DISK`].
    pub size: u64,
}

impl<S: StateArea, B: Disk> Overlay<S, B> {
    /// Whether any unit of `[offset, offset + len)` is in the overlay.
    pub fn shadowed(&self, offset: u64, len: u64) -> bool {
        let first = offset / UNIT;
        let end = offset.saturating_add(len).div_ceil(UNIT);
        self.present.borrow().range(first..end).next().is_some()
    }
}

impl<S: StateArea, B: Disk> BlockDevice for Overlay<S, B> {
    fn size_bytes(&self) -> u64 {
        self.size.min(MAX_DISK)
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let end = offset.checked_add(buf.len() as u64).ok_or(IoError::OutOfRange)?;
        if end > self.size_bytes() || !offset.is_multiple_of(512) || !buf.len().is_multiple_of(512) {
            return Err(IoError::OutOfRange);
        }
        if !self.shadowed(offset, buf.len() as u64) {
            return self.disk.read(offset, buf).map_err(|_| IoError::Device);
        }
        // Runs of bytes that come from the same place: (from the overlay?, start, end).
        let present = self.present.borrow();
        let mut pos = offset;
        while pos < end {
            let here = present.contains(&(pos / UNIT));
            let mut stop = ((pos / UNIT) + 1) * UNIT;
            while stop < end && present.contains(&(stop / UNIT)) == here {
                stop += UNIT;
            }
            let stop = stop.min(end);
            let chunk = buf.get_mut((pos - offset) as usize..(stop - offset) as usize).ok_or(IoError::OutOfRange)?;
            let r = if here { self.state.read(OVERLAY_AT + pos, chunk) } else { self.disk.read(pos, chunk) };
            r.map_err(|_| IoError::Device)?;
            pos = stop;
        }
        Ok(())
    }

    fn write(&mut self, _offset: u64, _buf: &[u8]) -> Result<(), IoError> {
        Err(IoError::Device)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}
