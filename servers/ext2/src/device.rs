//! The block device the file system lives on, and an in-memory one.
//!
//! The trait speaks bytes at 512-byte granularity rather than file-system blocks because the
//! device exists before the file system does: `mount` reads the superblock (1 KiB at byte 1024)
//! before it knows the block size, and `format` writes to a device that has no block size yet.
//! Every access the file system makes is a multiple of 512 bytes at a multiple of 512; the
//! device may refuse anything else. The device is trusted to be a device (it returns what was
//! written); its *contents* are never trusted.

use alloc::vec;
use alloc::vec::Vec;

/// A failed device access: the device's own business why (the file system reports `EIO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The access is not inside the device, or not 512-byte aligned.
    OutOfRange,
    /// The device failed (media error, transport gone, ...).
    Device,
}

/// Random-access storage addressed in bytes, used in multiples of 512.
pub trait BlockDevice {
    /// Size of the device in bytes (a multiple of 512).
    fn size_bytes(&self) -> u64;
    /// Reads `buf.len()` bytes (a multiple of 512) at byte offset `offset` (a multiple of 512).
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf` (a multiple of 512 bytes) at byte offset `offset` (a multiple of 512).
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), IoError>;
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn size_bytes(&self) -> u64 {
        (**self).size_bytes()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        (**self).write(offset, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        (**self).flush()
    }
}

/// A device backed by memory: the RAM disk under a tmpfs, and the workhorse of the tests.
#[derive(Clone, Debug, Default)]
pub struct MemDevice {
    bytes: Vec<u8>,
}

impl MemDevice {
    /// A zero-filled device of `size` bytes, rounded down to a multiple of 512.
    pub fn new(size: usize) -> Self {
        MemDevice { bytes: vec![0; size & !511] }
    }

    /// A device holding `bytes` (an image), truncated to a multiple of 512.
    pub fn from_vec(mut bytes: Vec<u8>) -> Self {
        bytes.truncate(bytes.len() & !511);
        MemDevice { bytes }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.bytes
    }

    /// The byte range an access covers, if it is aligned and inside the device.
    fn range(&self, offset: u64, len: usize) -> Result<core::ops::Range<usize>, IoError> {
        let start = usize::try_from(offset).map_err(|_| IoError::OutOfRange)?;
        let end = start.checked_add(len).ok_or(IoError::OutOfRange)?;
        if start % 512 != 0 || !len.is_multiple_of(512) || end > self.bytes.len() {
            return Err(IoError::OutOfRange);
        }
        Ok(start..end)
    }
}

impl BlockDevice for MemDevice {
    fn size_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let range = self.range(offset, buf.len())?;
        buf.copy_from_slice(self.bytes.get(range).ok_or(IoError::OutOfRange)?);
        Ok(())
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        let range = self.range(offset, buf.len())?;
        self.bytes.get_mut(range).ok_or(IoError::OutOfRange)?.copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}
