//! The `ext2` server: the file system on the disk. It serves the file-system protocol
//! (`abi::proto::fs`, the same one `ramfs` speaks) from an ext2 file system on the virtio-blk
//! disk, which it reaches through the `blk` server; `mount -t ext2 /dev/vda /mnt` and a root
//! file system on the disk (`root=/dev/vda`) are served here.
//!
//! Restart policy: *transparent*. Its write-back cache is not in its arena but in its **state
//! area**, which the nucleus keeps across its deaths: a disk-shaped overlay of every block
//! changed since the last write-back, with a bitmap saying which units it holds, next to the
//! mount, the open references and the request-id records (layout: `store.rs`). Each request
//! is one transaction: it runs against a bounded block cache in the arena with write-back
//! held, and everything it changed goes into the overlay in one atomic commit, with the
//! record of its answer, before the reply (`server.rs`). Reads go through the overlay to the
//! disk (`overlay.rs`). Dirty blocks reach the disk on `sync`, `fsync`, `fdatasync`,
//! `syncfs` and `umount` (before they are answered), when the overlay passes a bound, and
//! periodically. So killing this server (or `blk`, whose requests are simply sent again) at
//! any instruction loses nothing that was answered and keeps nothing half done; a new
//! instance finds the overlay as the last commit left it, mounts the file system again and
//! goes on.
//!
//! What this crate must not do: trust the disk (the ext2 library checks every on-disk value:
//! a corrupt image is `EUCLEAN`/`EIO` or a refused mount), trust a request (the protocol core
//! bounds and checks them), write the overlay except in whole-request commits, or write the
//! disk outside the file system (the cache refuses blocks past `blocks_count`, and every
//! overlay unit lies inside it).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod overlay;
pub mod server;
pub mod store;

use abi::proto::blk::{self as blkp, BlkInfo};
use abi::Errno;
use overlay::Disk;
use server::{DiskFs, Incoming};
use server_rt::{call_named, kernel, log, Cqe, GrantRef, IpcError, Kernel, Sqe, StateWrite, GRANT_READ, GRANT_WRITE};
use store::StateArea;

/// Memory (in 4 KiB frames) the overlay leaves to everybody else: past it, a write-back
/// comes first.
const RESERVE_FRAMES: usize = 8192;
/// Retries of a call to `blk` while it is being restarted.
const BLK_ATTEMPTS: u32 = 64;
/// With requests coming in, dirty blocks are written back at least this often (Linux's
/// `dirty_expire_centisecs`); an idle server writes back after [`IDLE_NS`].
const EXPIRE_NS: u64 = 30_000_000_000;
const IDLE_NS: u64 = 5_000_000_000;

/// The nucleus's state area of this server.
#[derive(Clone, Copy)]
struct KernelState(&'static dyn Kernel);

impl StateArea for KernelState {
    fn size(&self) -> u64 {
        self.0.state_size()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.0.state_read(offset, buf).map_err(|_| Errno::EIO)
    }
    fn commit(&self, writes: &[StateWrite]) -> Result<(), Errno> {
        self.0.state_commit(writes).map_err(|e| match e {
            IpcError::NoMemory => Errno::ENOSPC,
            _ => Errno::EIO,
        })
    }
    fn room(&self) -> u64 {
        (self.0.mem_stats().frames_free.saturating_sub(RESERVE_FRAMES) as u64) * 4096
    }
}

/// The disk, through the `blk` server: each call retried across its restarts (reads and
/// writes are idempotent), transfers split at the device's largest.
#[derive(Clone, Copy)]
struct BlkDisk {
    /// The nucleus started `blk` (it does only when there is a virtio-blk device).
    exists: bool,
    max_transfer: u64,
}

fn blk_call(opcode: u32, args: [u64; 6], grant: GrantRef) -> Result<i64, Errno> {
    let mut sqe = Sqe::new(opcode, args);
    sqe.grant = grant;
    let c = call_named(blkp::SERVICE, &sqe, BLK_ATTEMPTS).map_err(|_| Errno::EIO)?;
    if c.result < 0 {
        return Err(Errno((-c.result).min(4095) as i32));
    }
    Ok(c.result)
}

impl BlkDisk {
    fn pieces(&self, offset: u64, len: usize) -> impl Iterator<Item = (u64, usize)> {
        let max = self.max_transfer.max(512) as usize;
        (0..len.div_ceil(max)).map(move |i| (offset + (i * max) as u64, max.min(len - i * max)))
    }
}

impl Disk for BlkDisk {
    fn info(&self) -> Result<BlkInfo, Errno> {
        if !self.exists {
            return Err(Errno::ENXIO);
        }
        let bytes = alloc::vec![0u8; core::mem::size_of::<BlkInfo>()];
        blk_call(blkp::OP_INFO, [0; 6], server_rt::grant(&bytes, GRANT_WRITE)).map_err(|_| Errno::ENXIO)?;
        zerocopy::FromBytes::read_from_bytes(&bytes[..]).map_err(|_| Errno::EIO)
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let base = offset;
        for (at, n) in self.pieces(offset, buf.len()) {
            let i = (at - base) as usize;
            let part = &buf[i..i + n];
            blk_call(blkp::OP_READ, [at, n as u64, 0, 0, 0, 0], server_rt::grant(part, GRANT_WRITE))?;
        }
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        for (at, n) in self.pieces(offset, data.len()) {
            let i = (at - offset) as usize;
            blk_call(blkp::OP_WRITE, [at, n as u64, 0, 0, 0, 0], server_rt::grant(&data[i..i + n], GRANT_READ))?;
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), Errno> {
        blk_call(blkp::OP_FLUSH, [0; 6], GrantRef::NONE).map(|_| ())
    }
}

/// A request received over IPC.
struct IpcRequest<'a> {
    k: &'static dyn Kernel,
    sqe: &'a Sqe,
    disk: BlkDisk,
}

fn grant_errno(e: IpcError) -> Errno {
    match e {
        IpcError::Fault | IpcError::BadGrant => Errno::EFAULT,
        _ => Errno::EIO,
    }
}

impl Incoming for IpcRequest<'_> {
    fn opcode(&self) -> u32 {
        self.sqe.opcode
    }
    fn args(&self) -> [u64; 6] {
        self.sqe.args
    }
    fn rid(&self) -> u64 {
        self.sqe.rid
    }
    fn grant_len(&self) -> u64 {
        self.sqe.grant.len
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.k.grant_read(self.sqe.tag, offset, buf).map_err(grant_errno)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.k.grant_write(self.sqe.tag, offset, data).map_err(grant_errno)
    }
    fn disk_to_grant(&self, offset: u64, disk_offset: u64, len: u64) -> Result<bool, Errno> {
        // The client's buffer is lent on to `blk`, which fills it from the disk: one copy.
        for (at, n) in self.disk.pieces(disk_offset, len as usize) {
            let grant = GrantRef::forward(self.sqe.tag, offset + (at - disk_offset), n as u64, GRANT_WRITE);
            blk_call(blkp::OP_READ, [at, n as u64, 0, 0, 0, 0], grant)?;
        }
        Ok(true)
    }
}

/// The wall clock, for the file system's timestamps.
fn clock() -> ext2::Timespec {
    let ns = kernel().realtime_ns();
    ext2::Timespec::new((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32)
}

/// Server entry: take over the state area (remounting what was mounted), then serve.
pub fn main() {
    let k = kernel();
    let (me, instance) = k.whoami();
    // Without a disk the nucleus never starts `blk`, and calls to it would only be retried.
    let exists = k
        .servers()
        .iter()
        .position(|s| s.name == blkp::SERVICE)
        .and_then(|i| k.server_info(i))
        .is_some_and(|i| i.instance > 0);
    let probe = BlkDisk { exists, max_transfer: 64 << 10 };
    let max_transfer = probe.info().map_or(64 << 10, |i| u64::from(i.max_transfer));
    let disk = BlkDisk { exists, max_transfer };
    let (mut fs, started) = match DiskFs::start(KernelState(k), disk, me, clock) {
        Ok(x) => x,
        Err(e) => panic!("ext2: cannot take over the state area: errno {}", e.0),
    };
    if instance > 1 || started.remounted {
        log!(
            "ext2: instance {instance}: {}, {} dirty KiB and {} open file(s) carried over",
            if started.remounted { "file system mounted again" } else { "nothing mounted" },
            started.dirty_units as u64 * store::UNIT / 1024,
            started.open_files
        );
    }
    let mut last_writeback = k.now_ns();
    let mut reply: Option<Cqe> = None;
    loop {
        let got = match reply.take() {
            Some(r) => k.reply_and_receive_timeout(&r, IDLE_NS),
            None => k.receive_timeout(IDLE_NS),
        };
        let req = match got {
            Ok(Some(req)) => req,
            Ok(None) => {
                // Idle: write back what waits.
                if fs.dirty_bytes() > 0 {
                    if let Err(e) = fs.writeback() {
                        log!("ext2: write-back failed: errno {}", e.0);
                    }
                }
                last_writeback = k.now_ns();
                continue;
            }
            Err(e) => panic!("ext2: receive failed: {e}"),
        };
        if req.is_notification() {
            continue;
        }
        let errors = fs.stats.writeback_errors;
        let (result, aux) = fs.handle(&IpcRequest { k, sqe: &req, disk });
        if fs.stats.writeback_errors != errors {
            log!("ext2: write-back failed: errno {}", fs.stats.last_error);
        }
        let mut c = Cqe::new(req.tag, result);
        c.aux = aux;
        reply = Some(c);
        let now = k.now_ns();
        if now.saturating_sub(last_writeback) > EXPIRE_NS {
            if fs.dirty_bytes() > 0 {
                if let Err(e) = fs.writeback() {
                    log!("ext2: write-back failed: errno {}", e.0);
                }
            }
            last_writeback = now;
        }
    }
}
