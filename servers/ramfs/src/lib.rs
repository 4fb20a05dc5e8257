//! The `ramfs` server: the in-memory file systems. Volume 0 is the initramfs (the boot
//! loader's cpio archive); every `tmpfs`/`devtmpfs` mount is another volume. It speaks the
//! file-system protocol (`abi::proto::fs`): files by `FileId`, names and data by grant, no
//! paths and no permissions (the VFS walks and checks).
//!
//! Restart policy: *transparent*. Every volume is an ext2 file system (4 KiB blocks) in its
//! own region of this server's **state area**, which the nucleus keeps across the server's
//! deaths; the volume table, the open references and the request-id records live there too
//! (layout: `store.rs`). Each request is one transaction: it runs against a bounded block
//! cache in the arena with write-back held, and everything it changed goes to the area in one
//! atomic commit, with the record of its answer, before the reply (`server.rs`). So a death at
//! any instruction loses nothing that was answered and keeps nothing half done; clients retry
//! on `ServerDied` with the same request id and get the answer the dead instance computed. A
//! new instance mounts the volumes (a superblock and group descriptors each: milliseconds) and
//! goes on; files written since boot, unlinked files still open, every tmpfs, all survive.
//!
//! Memory: the area is large and sparse (`STATE_BYTES`, gigabytes of address space), but pages
//! exist only where blocks hold something: freed and all-zero blocks are committed as zeroing
//! writes, which give their pages back, so deleting files returns memory. The arena holds only
//! the cache and one request's buffers. Reads of file data do not go through either: the
//! blocks of a read are mapped (`Ext2::read_map`) and each contiguous run is copied by the
//! nucleus from the state area into the client's grant (`state_to_grant`).
//!
//! What this crate must not do: trust a request (the protocol core bounds and checks them),
//! write the state area except in whole-request commits, or hold a request's effect in memory
//! past its reply.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod cpio;
pub mod server;
pub mod store;

use abi::Errno;
use server::{Incoming, Ramfs};
use server_rt::{kernel, log, Cqe, IpcError, Kernel, Sqe, StateWrite};
use store::StateArea;

/// Memory (in 4 KiB frames) the file systems leave to everybody else: a write that would eat
/// into it fails with ENOSPC.
const RESERVE_FRAMES: usize = 8192;

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

/// A request received over IPC.
struct IpcRequest<'a> {
    k: &'static dyn Kernel,
    sqe: &'a Sqe,
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
    fn state_to_grant(&self, offset: u64, state_offset: u64, len: u64) -> Result<bool, Errno> {
        self.k.state_to_grant(self.sqe.tag, offset, state_offset, len).map_err(grant_errno)?;
        Ok(true)
    }
}

/// The wall clock, for the file systems' timestamps.
fn clock() -> ext2::Timespec {
    let ns = kernel().realtime_ns();
    ext2::Timespec::new((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as u32)
}

/// Server entry: take over the state area (making or finishing volume 0), then serve.
pub fn main() {
    let k = kernel();
    let t0 = k.now_ns();
    let (me, instance) = k.whoami();
    let (mut fs, started) = match Ramfs::start(KernelState(k), me, clock, k.initrd()) {
        Ok(x) => x,
        Err(e) => panic!("ramfs: cannot take over the state area: errno {}", e.0),
    };
    let us = (k.now_ns() - t0) / 1000;
    if started.loaded > 0 || started.fresh {
        log!("ramfs: initramfs loaded ({} entries, {} KiB) in {us} us", started.loaded, fs.used_blocks(0) * 4);
    } else {
        log!(
            "ramfs: instance {instance}: {} volume(s), {} open file(s) carried over in {us} us",
            started.volumes,
            started.open_files
        );
    }
    let mut req = k.receive().unwrap_or_else(|e| panic!("ramfs: receive failed: {e}"));
    loop {
        if req.is_notification() {
            req = k.receive().unwrap_or_else(|e| panic!("ramfs: receive failed: {e}"));
            continue;
        }
        let (result, aux) = fs.handle(&IpcRequest { k, sqe: &req });
        let mut reply = Cqe::new(req.tag, result);
        reply.aux = aux;
        // The next request lands in `req` (one copy, on the fast path).
        if let Err(e) = k.reply_and_receive_into(&reply, u64::MAX, &mut req) {
            panic!("ramfs: receive failed: {e}");
        }
    }
}
