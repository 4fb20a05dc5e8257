//! The block-device server (`blk`): serves the protocol of `abi::proto::blk` on a virtio-blk
//! device (virtio-pci on x86_64, virtio-mmio on AArch64), through `virtio-lib`'s safe handle.
//!
//! **Shape.** One loop, sleeping in `receive` until either a request or the device's interrupt
//! (a notification, bit [`IRQ_BIT`]) arrives — there is no polling. A read or write is checked,
//! given an idle request slot (a write's data is first copied out of the client's grant into
//! the slot's DMA buffer), and submitted to the virtqueue; the client stays blocked in its call
//! while the server goes on receiving. When the device interrupts, every finished request is
//! answered (a read's data copied from the slot into the client's grant first), in whatever
//! order the device finished them, and the line is acknowledged. Requests that find no idle
//! slot wait in a FIFO and are submitted as slots free up. INFO and STATS are answered at once.
//!
//! **Restart policy: transparent.** The server keeps no state beyond the requests in flight:
//! the data lives on the disk. When it dies, the nucleus fails every waiting client with
//! `ServerDied` and resets the device before freeing the dead instance's DMA memory; clients
//! send the same request again to the next instance (reads and writes are idempotent), so a
//! request a client sees completed was completed, and one it never saw complete is redone.
//!
//! **Must not:** trust a request (every offset, length and grant is checked before the device
//! sees it), trust the device (a completion that names nothing in flight kills the server,
//! whose restart resets the device), or answer a request twice.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

use abi::proto::blk::{
    BlkInfo, BlkStats, ARG_GRANT_OFFSET, ARG_LEN, ARG_OFFSET, INFO_FLUSH, INFO_READ_ONLY, OP_FLUSH, OP_INFO, OP_READ,
    OP_STATS, OP_WRITE,
};
use abi::Errno;
use alloc::collections::VecDeque;
use server_rt::{kernel, log, Cqe, Sqe, GRANT_READ, GRANT_WRITE};
use virtio_lib::blk::{Completion, Op, Status, VirtioBlk, SECTOR, SLOTS, SLOT_BYTES};
use zerocopy::IntoBytes;

/// The notification bit the device's interrupt sets.
pub const IRQ_BIT: u64 = 1;

/// A checked read, write or flush, waiting for a slot or in one.
#[derive(Clone, Copy, Debug)]
struct Request {
    tag: u64,
    op: Op,
    /// Device byte offset, length, and where in the client's grant the data goes.
    offset: u64,
    len: usize,
    grant_offset: u64,
}

struct Server {
    dev: VirtioBlk,
    info: BlkInfo,
    in_slot: [Option<Request>; SLOTS],
    waiting: VecDeque<Request>,
    stats: BlkStats,
}

fn err(e: Errno) -> i64 {
    -(e.0 as i64)
}

/// Checks a read, write or flush against the device (`info`) and the request's grant.
fn check(info: &BlkInfo, req: &Sqe) -> Result<Request, Errno> {
    let op = match req.opcode {
        OP_READ => Op::Read,
        OP_WRITE => Op::Write,
        _ => Op::Flush,
    };
    let r =
        Request { tag: req.tag, op, offset: req.args[ARG_OFFSET], len: 0, grant_offset: req.args[ARG_GRANT_OFFSET] };
    if op == Op::Flush {
        return Ok(r);
    }
    if op == Op::Write && info.flags & INFO_READ_ONLY != 0 {
        return Err(Errno::EROFS);
    }
    let len = req.args[ARG_LEN];
    let bs = info.block_size as u64;
    if len == 0 || len > info.max_transfer as u64 || !len.is_multiple_of(bs) || !r.offset.is_multiple_of(bs) {
        return Err(Errno::EINVAL);
    }
    match r.offset.checked_add(len) {
        Some(end) if end <= info.size_bytes => {}
        _ => return Err(Errno::EINVAL),
    }
    let need = if op == Op::Read { GRANT_WRITE } else { GRANT_READ };
    let fits = r.grant_offset.checked_add(len).is_some_and(|end| end <= req.grant.len);
    if req.grant.is_none() || req.grant.rights & need == 0 || !fits {
        return Err(Errno::EFAULT);
    }
    Ok(Request { len: len as usize, ..r })
}

impl Server {
    /// Puts `r` into an idle slot and submits it; the reply if it failed at once.
    fn start(&mut self, slot: usize, r: Request) -> Option<Cqe> {
        if r.op == Op::Write {
            let Some(buf) = self.dev.buffer(slot) else { return Some(Cqe::new(r.tag, err(Errno::EIO))) };
            if kernel().grant_read(r.tag, r.grant_offset, &mut buf[..r.len]).is_err() {
                return Some(Cqe::new(r.tag, err(Errno::EFAULT)));
            }
        }
        if let Err(e) = self.dev.submit(slot, r.op, r.offset / SECTOR, r.len) {
            log!("blk: submit failed: {e}");
            return Some(Cqe::new(r.tag, err(Errno::EIO)));
        }
        self.in_slot[slot] = Some(r);
        let n = self.dev.in_flight() as u32;
        self.stats.max_in_flight = self.stats.max_in_flight.max(n);
        None
    }

    /// Submits waiting requests while there are idle slots.
    fn fill_slots(&mut self) {
        while let Some(slot) = self.dev.idle_slot() {
            let Some(r) = self.waiting.pop_front() else { return };
            if let Some(reply) = self.start(slot, r) {
                let _ = kernel().reply(&reply);
            }
        }
    }

    /// The answer to a finished device request.
    fn finish(&mut self, c: Completion) -> Option<Cqe> {
        self.stats.completions += 1;
        let r = self.in_slot[c.slot].take()?;
        let result = match c.status {
            Status::Ok => match r.op {
                Op::Read => {
                    self.stats.bytes_read += r.len as u64;
                    let buf = self.dev.buffer(c.slot)?;
                    match kernel().grant_write(r.tag, r.grant_offset, &buf[..r.len]) {
                        Ok(()) => r.len as i64,
                        Err(_) => err(Errno::EFAULT),
                    }
                }
                Op::Write => {
                    self.stats.bytes_written += r.len as u64;
                    r.len as i64
                }
                Op::Flush => 0,
            },
            Status::IoError => err(Errno::EIO),
            Status::Unsupported => err(Errno::EOPNOTSUPP),
        };
        Some(Cqe::new(r.tag, result))
    }

    /// The device interrupted: answer everything it finished, then re-enable its line.
    fn service_interrupt(&mut self) {
        let k = kernel();
        self.dev.ack_interrupt();
        loop {
            match self.dev.next_completion() {
                Ok(Some(c)) => {
                    if let Some(reply) = self.finish(c) {
                        // A client that died meanwhile is gone: BadTag, nothing to do.
                        let _ = k.reply(&reply);
                    }
                }
                Ok(None) => break,
                Err(e) => panic!("blk: the device completed garbage ({e}); restarting resets it"),
            }
        }
        if let Err(e) = k.irq_ack(self.dev.device()) {
            log!("blk: cannot acknowledge the interrupt: {e}");
        }
        self.fill_slots();
    }

    /// Handles one request; the reply if it is answered at once.
    fn request(&mut self, req: &Sqe) -> Option<Cqe> {
        let k = kernel();
        self.stats.requests += 1;
        match req.opcode {
            OP_INFO => Some(Cqe::new(req.tag, write_struct(req, self.info.as_bytes()))),
            OP_STATS => {
                let mut s = self.stats;
                s.in_flight = self.dev.in_flight() as u32;
                s.queued = self.waiting.len() as u32;
                s.irq_count = k.device_info(self.dev.device()).map_or(0, |i| i.irq_count);
                Some(Cqe::new(req.tag, write_struct(req, s.as_bytes())))
            }
            OP_FLUSH if self.info.flags & INFO_FLUSH == 0 => Some(Cqe::new(req.tag, 0)),
            OP_READ | OP_WRITE | OP_FLUSH => match check(&self.info, req) {
                Err(e) => Some(Cqe::new(req.tag, err(e))),
                Ok(r) => match self.dev.idle_slot() {
                    Some(slot) if self.waiting.is_empty() => self.start(slot, r),
                    _ => {
                        self.waiting.push_back(r);
                        None
                    }
                },
            },
            _ => Some(Cqe::new(req.tag, err(Errno::ENOSYS))),
        }
    }
}

/// Copies `bytes` into the request's grant: the byte count, or -EFAULT.
fn write_struct(req: &Sqe, bytes: &[u8]) -> i64 {
    if req.grant.is_none() || req.grant.rights & GRANT_WRITE == 0 || req.grant.len < bytes.len() as u64 {
        return err(Errno::EFAULT);
    }
    match kernel().grant_write(req.tag, 0, bytes) {
        Ok(()) => bytes.len() as i64,
        Err(_) => err(Errno::EFAULT),
    }
}

/// Without a usable device: answer everything with ENODEV (rather than exit and be restarted
/// in a loop).
fn without_device() -> ! {
    let k = kernel();
    let mut reply: Option<Cqe> = None;
    loop {
        let msg = match reply.take() {
            Some(r) => k.reply_and_receive(&r),
            None => k.receive(),
        };
        match msg {
            Ok(m) if !m.is_notification() => reply = Some(Cqe::new(m.tag, err(Errno::ENODEV))),
            Ok(_) => {}
            Err(e) => panic!("blk: receive failed: {e}"),
        }
    }
}

pub fn main() {
    let k = kernel();
    let dev = match VirtioBlk::open(0) {
        Ok(d) => d,
        Err(e) => {
            log!("blk: no usable virtio-blk device ({e})");
            without_device()
        }
    };
    let c = dev.config();
    let size_bytes = c.sectors.saturating_mul(SECTOR) & !(c.block_size as u64 - 1);
    let flags = if c.read_only { INFO_READ_ONLY } else { 0 } | if c.flush { INFO_FLUSH } else { 0 };
    let info = BlkInfo {
        size_bytes,
        block_size: c.block_size,
        flags,
        max_transfer: SLOT_BYTES as u32,
        queue_depth: SLOTS as u32,
    };
    if let Err(e) = k.irq_bind(dev.device(), IRQ_BIT) {
        panic!("blk: cannot bind the device's interrupt: {e}");
    }
    let (_, instance) = k.whoami();
    if instance == 1 {
        log!(
            "blk: virtio-blk, {} KiB, {}-byte blocks{}{}",
            size_bytes >> 10,
            c.block_size,
            if c.read_only { ", read-only" } else { "" },
            if c.flush { ", write cache (flush)" } else { "" }
        );
    }
    let stats = BlkStats { instance, ..Default::default() };
    let mut s = Server { dev, info, in_slot: [None; SLOTS], waiting: VecDeque::new(), stats };
    let mut reply: Option<Cqe> = None;
    loop {
        let msg = match reply.take() {
            Some(r) => k.reply_and_receive(&r),
            None => k.receive(),
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => panic!("blk: receive failed: {e}"),
        };
        s.stats.wakeups += 1;
        if msg.is_notification() {
            if msg.args[0] & IRQ_BIT != 0 {
                s.stats.irq_wakeups += 1;
                s.service_interrupt();
            }
        } else {
            reply = s.request(&msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use server_rt::GrantRef;

    const INFO: BlkInfo =
        BlkInfo { size_bytes: 1 << 20, block_size: 512, flags: 0, max_transfer: 65536, queue_depth: 16 };

    fn req(opcode: u32, offset: u64, len: u64, grant_offset: u64, grant_len: u64, rights: u32) -> Sqe {
        let mut s = Sqe::new(opcode, [0; 6]);
        s.args[ARG_OFFSET] = offset;
        s.args[ARG_LEN] = len;
        s.args[ARG_GRANT_OFFSET] = grant_offset;
        s.grant = GrantRef::own_memory(0x1000, grant_len, rights);
        s
    }

    #[test]
    fn good_requests() {
        let r = check(&INFO, &req(OP_READ, 4096, 8192, 512, 8704, GRANT_WRITE)).unwrap();
        assert_eq!((r.op, r.offset, r.len, r.grant_offset), (Op::Read, 4096, 8192, 512));
        let w = check(&INFO, &req(OP_WRITE, (1 << 20) - 65536, 65536, 0, 65536, GRANT_READ)).unwrap();
        assert_eq!((w.op, w.len), (Op::Write, 65536));
        assert_eq!(check(&INFO, &Sqe::new(OP_FLUSH, [0; 6])).unwrap().op, Op::Flush);
    }

    #[test]
    fn range_and_alignment() {
        let einval = Err(Errno::EINVAL);
        let c = |o, l| check(&INFO, &req(OP_READ, o, l, 0, 1 << 20, GRANT_WRITE)).map(|_| ());
        assert_eq!(c(1 << 20, 512), einval, "at the end");
        assert_eq!(c((1 << 20) - 512, 1024), einval, "across the end");
        assert_eq!(c(u64::MAX - 511, 512), einval, "offset overflow");
        assert_eq!(c(100, 512), einval, "misaligned offset");
        assert_eq!(c(0, 100), einval, "misaligned length");
        assert_eq!(c(0, 0), einval, "empty");
        assert_eq!(c(0, 131072), einval, "above max transfer");
        let big = BlkInfo { block_size: 4096, ..INFO };
        assert_eq!(check(&big, &req(OP_READ, 512, 4096, 0, 4096, GRANT_WRITE)).map(|_| ()), einval, "4 KiB blocks");
    }

    #[test]
    fn grants_and_read_only() {
        let efault = Err(Errno::EFAULT);
        assert_eq!(check(&INFO, &req(OP_READ, 0, 512, 0, 0, GRANT_WRITE)).map(|_| ()), efault, "no grant");
        assert_eq!(check(&INFO, &req(OP_READ, 0, 4096, 0, 1024, GRANT_WRITE)).map(|_| ()), efault, "too small");
        assert_eq!(check(&INFO, &req(OP_READ, 0, 512, 4000, 4096, GRANT_WRITE)).map(|_| ()), efault, "offset");
        assert_eq!(check(&INFO, &req(OP_READ, 0, 512, u64::MAX, 4096, GRANT_WRITE)).map(|_| ()), efault, "overflow");
        assert_eq!(check(&INFO, &req(OP_READ, 0, 512, 0, 512, GRANT_READ)).map(|_| ()), efault, "read-only grant");
        assert_eq!(check(&INFO, &req(OP_WRITE, 0, 512, 0, 512, GRANT_WRITE)).map(|_| ()), efault, "write-only grant");
        let ro = BlkInfo { flags: INFO_READ_ONLY, ..INFO };
        assert_eq!(check(&ro, &req(OP_WRITE, 0, 512, 0, 512, GRANT_READ)).map(|_| ()), Err(Errno::EROFS));
        assert!(check(&ro, &req(OP_READ, 0, 512, 0, 512, GRANT_WRITE)).is_ok());
    }
}
