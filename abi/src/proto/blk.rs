//! The block-device protocol, spoken by the `blk` server (virtio-blk) to its clients (ext2,
//! tests). A device is a run of bytes addressed by byte offset, read and written in whole
//! blocks of [`BlkInfo::block_size`] bytes (512 on QEMU's default disks); data moves by grant.
//!
//! | opcode | args | grant | result |
//! |---|---|---|---|
//! | [`OP_INFO`] | — | writable, ≥ `size_of::<BlkInfo>()` | bytes written (a [`BlkInfo`]) |
//! | [`OP_READ`] | `[ARG_OFFSET]` device offset, `[ARG_LEN]` length, `[ARG_GRANT_OFFSET]` where in the grant | writable, ≥ grant offset + length | `length` |
//! | [`OP_WRITE`] | as for read | readable, ≥ grant offset + length | `length` |
//! | [`OP_FLUSH`] | — | — | 0 |
//! | [`OP_STATS`] | — | writable, ≥ `size_of::<BlkStats>()` | bytes written (a [`BlkStats`]) |
//!
//! Errors (negated errno in `Cqe::result`):
//! * `EINVAL`: offset or length not a multiple of the block size, length 0 or above
//!   [`BlkInfo::max_transfer`], or a range that does not lie wholly inside the device (a read
//!   or write is never shortened at the end);
//! * `EFAULT`: no grant, a grant too small for the transfer, or one without the right
//!   (writable for reads and INFO/STATS, readable for writes);
//! * `EROFS`: a write to a read-only device;
//! * `EIO`: the device failed the request (`VIRTIO_BLK_S_IOERR`, or it returned garbage);
//! * `EOPNOTSUPP`: the device refused the request (`VIRTIO_BLK_S_UNSUPP`);
//! * `ENODEV`: the server found no device (it is not started then; see `boot/src/servers.rs`);
//! * `ENOSYS`: an unknown opcode.
//!
//! Semantics: requests from any number of clients are served concurrently and answered as the
//! device completes them, in any order. A write is answered once the device has it (it may sit
//! in the device's write cache); [`OP_FLUSH`] is answered once every write answered *before the
//! flush was sent* is on stable storage (a no-op on a device without a write cache, which is
//! what a device without `VIRTIO_BLK_F_FLUSH` is). Reads and writes are idempotent, so the
//! server's restart policy is *transparent*: a client that gets `ServerDied` sends the same
//! request again (`server_rt::call_named` does), and a write interrupted by a death is simply
//! written again.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The endpoint name of the block server.
pub const SERVICE: &str = "blk";

/// Describe the device: writes a [`BlkInfo`] into the grant.
pub const OP_INFO: u32 = 1;
/// Read `args[ARG_LEN]` bytes at device offset `args[ARG_OFFSET]` into the grant at
/// `args[ARG_GRANT_OFFSET]`.
pub const OP_READ: u32 = 2;
/// Write `args[ARG_LEN]` bytes from the grant at `args[ARG_GRANT_OFFSET]` to device offset
/// `args[ARG_OFFSET]`.
pub const OP_WRITE: u32 = 3;
/// Make every write answered so far durable.
pub const OP_FLUSH: u32 = 4;
/// Diagnostics: writes a [`BlkStats`] into the grant.
pub const OP_STATS: u32 = 5;

/// `Sqe::args` index: byte offset on the device.
pub const ARG_OFFSET: usize = 0;
/// `Sqe::args` index: length in bytes.
pub const ARG_LEN: usize = 1;
/// `Sqe::args` index: byte offset inside the grant where the data starts.
pub const ARG_GRANT_OFFSET: usize = 2;

/// [`BlkInfo::flags`]: the device refuses writes.
pub const INFO_READ_ONLY: u32 = 1;
/// [`BlkInfo::flags`]: the device has a write cache that [`OP_FLUSH`] empties.
pub const INFO_FLUSH: u32 = 2;

/// The answer to [`OP_INFO`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BlkInfo {
    /// Device size in bytes (a multiple of `block_size`).
    pub size_bytes: u64,
    /// Offsets and lengths must be multiples of this (a power of two, at least 512).
    pub block_size: u32,
    /// [`INFO_READ_ONLY`] | [`INFO_FLUSH`].
    pub flags: u32,
    /// Largest length one request may carry.
    pub max_transfer: u32,
    /// Requests the server keeps in flight on the device at once (more wait in the server).
    pub queue_depth: u32,
}

/// The answer to [`OP_STATS`]: counters since the server instance started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BlkStats {
    /// Requests received (every opcode, this one included).
    pub requests: u64,
    /// Times the server's `receive` returned (requests plus notifications): with an idle
    /// device and no requests it stays put, because the server sleeps.
    pub wakeups: u64,
    /// Wakeups by the device's interrupt (notification messages).
    pub irq_wakeups: u64,
    /// Device requests completed.
    pub completions: u64,
    /// Bytes read from and written to the device.
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Interrupts the nucleus took on the device's line (`DeviceInfo::irq_count`).
    pub irq_count: u64,
    /// Most device requests in flight at once, and now.
    pub max_in_flight: u32,
    pub in_flight: u32,
    /// Requests waiting for a free slot now.
    pub queued: u32,
    /// The server instance that answered (1 = first start).
    pub instance: u32,
}

const _: () = assert!(core::mem::size_of::<BlkInfo>() == 24);
const _: () = assert!(core::mem::size_of::<BlkStats>() == 72);

/// Opcode names, for traces.
pub const OPCODES: &[(u32, &str)] =
    &[(OP_INFO, "info"), (OP_READ, "read"), (OP_WRITE, "write"), (OP_FLUSH, "flush"), (OP_STATS, "stats")];
