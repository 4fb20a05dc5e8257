//! A virtio-blk device as a safe handle: feature negotiation and configuration
//! (`virtio-drivers` transports), one virtqueue (`virtio-drivers`' `VirtQueue`), and a fixed
//! set of request *slots*, each with its own request header, status byte and data buffer in DMA
//! memory that this handle owns.
//!
//! A server fills a slot's buffer ([`VirtioBlk::buffer`]), submits it ([`VirtioBlk::submit`])
//! and, once the device's interrupt has woken it, collects completions
//! ([`VirtioBlk::next_completion`]) in whatever order the device finishes them. While a slot is
//! in flight its buffer is unreachable from safe code (the handle refuses to lend it), which is
//! the contract `VirtQueue::add`/`pop_used` require; every buffer handed to the queue lies in
//! this handle's DMA regions, which is what the `Hal`'s `share` checks.
//!
//! Must not: block (nothing here waits for the device), or trust the device: a completion for a
//! descriptor chain that is not in flight is reported as [`Error::Broken`].

use crate::hal::{CairnHal, DmaBuffer, KernelCam};
use bitflags::bitflags;
use core::ptr::NonNull;
use server_rt::{kernel, DeviceBus, DeviceClass, DeviceInfo, DeviceRef, IpcError, VIRTIO_BLOCK};
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, VirtioPciError};
use virtio_drivers::transport::{DeviceStatus, DeviceType, SomeTransport, Transport};
use zerocopy::{Immutable, IntoBytes};

/// Descriptors in the virtqueue (each request uses two or three).
pub const QUEUE_SIZE: usize = 64;
/// Requests in flight at once.
pub const SLOTS: usize = 16;
/// Largest transfer one slot carries.
pub const SLOT_BYTES: usize = 64 * 1024;
/// virtio-blk addresses the device in 512-byte sectors, whatever its block size.
pub const SECTOR: u64 = 512;

/// Bytes of per-slot metadata: a 16-byte request header, then the status byte.
const META_STRIDE: usize = 32;
const STATUS_AT: usize = 16;

bitflags! {
    /// The feature bits this driver understands (virtio 1.x §5.2.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        const RO = 1 << 5;
        const BLK_SIZE = 1 << 6;
        const FLUSH = 1 << 9;
        const VERSION_1 = 1 << 32;
    }
}

/// A device request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Flush,
}

/// How the device finished a request (`VIRTIO_BLK_S_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    IoError,
    Unsupported,
}

/// What the device said about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    /// Logical block size (a power of two, 512..=64 KiB).
    pub block_size: u32,
    pub read_only: bool,
    /// The device has a write cache (`VIRTIO_BLK_F_FLUSH`).
    pub flush: bool,
}

/// A finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub slot: usize,
    pub op: Op,
    pub len: usize,
    pub status: Status,
}

#[derive(Debug)]
pub enum Error {
    Kernel(IpcError),
    Virtio(virtio_drivers::Error),
    Pci(VirtioPciError),
    Mmio(MmioError),
    /// The device is not a block device, or its configuration makes no sense.
    NotBlock,
    /// A slot number out of range, a slot already in flight, or a bad length.
    BadRequest,
    /// The device completed something that was not in flight.
    Broken,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Idle,
    InFlight { token: u16, op: Op, len: usize },
}

/// The virtio-blk request header (virtio 1.x §5.2.6).
#[derive(IntoBytes, Immutable)]
#[repr(C)]
struct Header {
    kind: u32,
    reserved: u32,
    sector: u64,
}

/// An open virtio-blk device.
pub struct VirtioBlk {
    dev: DeviceRef,
    transport: SomeTransport<'static>,
    queue: VirtQueue<CairnHal, QUEUE_SIZE>,
    data: DmaBuffer,
    meta: DmaBuffer,
    slots: [Slot; SLOTS],
    in_flight: usize,
    config: Config,
}

fn transport_for(dev: DeviceRef, info: &DeviceInfo) -> Result<SomeTransport<'static>, Error> {
    match info.bus {
        DeviceBus::Pci { bus, device, function } => {
            let function = DeviceFunction { bus, device, function };
            let mut root = PciRoot::new(KernelCam { dev, function });
            Ok(PciTransport::new::<CairnHal, _>(&mut root, function).map_err(Error::Pci)?.into())
        }
        DeviceBus::Mmio => {
            let (pa, len) = info.regions[0];
            let va = kernel().device_mmio(pa, len).map_err(Error::Kernel)?;
            let header = NonNull::new(va as *mut VirtIOHeader).ok_or(Error::NotBlock)?;
            // SAFETY: `va` is the nucleus's permanent mapping (device memory, aligned to the
            // window's start) of this server's virtio-mmio window of `len` bytes, header and
            // configuration space included; nothing else in this server refers to it.
            let t = unsafe { MmioTransport::new(header, len as usize) }.map_err(Error::Mmio)?;
            Ok(t.into())
        }
        DeviceBus::Console => Err(Error::NotBlock),
    }
}

fn read_config(t: &SomeTransport<'static>, features: Features) -> Result<Config, Error> {
    let (lo, hi, blk_size) = t
        .read_consistent(|| {
            let lo: u32 = t.read_config_space(0)?;
            let hi: u32 = t.read_config_space(4)?;
            let bs: u32 = if features.contains(Features::BLK_SIZE) { t.read_config_space(20)? } else { 512 };
            Ok((lo, hi, bs))
        })
        .map_err(Error::Virtio)?;
    let block_size =
        if blk_size.is_power_of_two() && (512..=SLOT_BYTES as u32).contains(&blk_size) { blk_size } else { 512 };
    Ok(Config {
        sectors: (hi as u64) << 32 | lo as u64,
        block_size,
        read_only: features.contains(Features::RO),
        flush: features.contains(Features::FLUSH),
    })
}

impl VirtioBlk {
    /// Opens the `nth` virtio-blk device and brings it up (reset, features, one queue, driver
    /// ready). On failure the device is closed again.
    pub fn open(nth: usize) -> Result<VirtioBlk, Error> {
        let k = kernel();
        let (dev, info) = k.device_open(DeviceClass::Virtio(VIRTIO_BLOCK), nth).map_err(Error::Kernel)?;
        let r = Self::init(dev, &info);
        if r.is_err() {
            let _ = k.device_close(dev);
        }
        r
    }

    fn init(dev: DeviceRef, info: &DeviceInfo) -> Result<VirtioBlk, Error> {
        let mut transport = transport_for(dev, info)?;
        if transport.device_type() != DeviceType::Block {
            return Err(Error::NotBlock);
        }
        let features = transport.begin_init(Features::RO | Features::BLK_SIZE | Features::FLUSH | Features::VERSION_1);
        let config = read_config(&transport, features)?;
        let queue = VirtQueue::new(&mut transport, 0, false, false).map_err(Error::Virtio)?;
        let data = DmaBuffer::new(SLOTS * SLOT_BYTES).map_err(Error::Kernel)?;
        let meta = DmaBuffer::new(SLOTS * META_STRIDE).map_err(Error::Kernel)?;
        transport.finish_init();
        Ok(VirtioBlk { dev, transport, queue, data, meta, slots: [Slot::Idle; SLOTS], in_flight: 0, config })
    }

    pub fn device(&self) -> DeviceRef {
        self.dev
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// Requests now in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A slot that is not in flight, if any.
    pub fn idle_slot(&self) -> Option<usize> {
        self.slots.iter().position(|s| *s == Slot::Idle)
    }

    /// The data buffer of an idle slot ([`SLOT_BYTES`] long): fill it before a write, read it
    /// after a read completed. `None` while the slot is in flight.
    pub fn buffer(&mut self, slot: usize) -> Option<&mut [u8]> {
        if self.slots.get(slot)? != &Slot::Idle {
            return None;
        }
        // SAFETY: the slot's data area lies inside `data` (slot < SLOTS), which this handle owns;
        // the device is not using it (the slot is idle), and the borrow of `self` keeps anything
        // else from submitting it while the slice lives.
        Some(unsafe { core::slice::from_raw_parts_mut(self.data.base().add(slot * SLOT_BYTES), SLOT_BYTES) })
    }

    /// The header, status and data buffers of `slot` (`len` data bytes).
    ///
    /// # Safety
    /// The caller must not keep the slices past handing them to the queue (or getting them
    /// back), and must not call this for a slot whose buffers are lent out elsewhere.
    unsafe fn slot_buffers<'a>(&self, slot: usize, len: usize) -> (&'a mut [u8], &'a mut [u8], &'a mut [u8]) {
        debug_assert!(slot < SLOTS && len <= SLOT_BYTES);
        // SAFETY: the three ranges are disjoint and inside `meta` and `data`, which this handle
        // owns for as long as it lives; the caller promises not to alias them.
        unsafe {
            let meta = self.meta.base().add(slot * META_STRIDE);
            (
                core::slice::from_raw_parts_mut(meta, STATUS_AT),
                core::slice::from_raw_parts_mut(meta.add(STATUS_AT), 1),
                core::slice::from_raw_parts_mut(self.data.base().add(slot * SLOT_BYTES), len),
            )
        }
    }

    /// Gives idle `slot` to the device: `op` of `len` bytes (ignored for a flush) at 512-byte
    /// sector `sector`. For a write, `len` bytes of its buffer are written.
    pub fn submit(&mut self, slot: usize, op: Op, sector: u64, len: usize) -> Result<(), Error> {
        let bad_len = op != Op::Flush && (len == 0 || len > SLOT_BYTES || !len.is_multiple_of(SECTOR as usize));
        if slot >= SLOTS || self.slots[slot] != Slot::Idle || bad_len {
            return Err(Error::BadRequest);
        }
        let (kind, len) = match op {
            Op::Read => (0, len),
            Op::Write => (1, len),
            Op::Flush => (4, 0),
        };
        // SAFETY: the slot is idle, so none of its buffers is lent out; they are handed to the
        // queue right below and not touched again until `next_completion` pops them.
        let (head, status, data) = unsafe { self.slot_buffers(slot, len) };
        head.copy_from_slice(Header { kind, reserved: 0, sector: if op == Op::Flush { 0 } else { sector } }.as_bytes());
        status[0] = 0xff;
        // SAFETY: the buffers stay valid (they live in this handle's DMA memory) and untouched
        // (the slot is marked in flight below, so `buffer` refuses it) until `pop_used` with the
        // returned token gives them back in `next_completion`.
        let token = unsafe {
            match op {
                Op::Read => self.queue.add(&[head], &mut [data, status]),
                Op::Write => self.queue.add(&[head, data], &mut [status]),
                Op::Flush => self.queue.add(&[head], &mut [status]),
            }
        }
        .map_err(Error::Virtio)?;
        self.slots[slot] = Slot::InFlight { token, op, len };
        self.in_flight += 1;
        if self.queue.should_notify() {
            self.transport.notify(0);
        }
        Ok(())
    }

    /// Reads and clears the device's interrupt status (for a PCI device this lowers its INTx
    /// line). Call before collecting completions, then acknowledge the line to the nucleus.
    pub fn ack_interrupt(&mut self) {
        let _ = self.transport.ack_interrupt();
    }

    /// The next request the device has finished, if any.
    pub fn next_completion(&mut self) -> Result<Option<Completion>, Error> {
        let Some(token) = self.queue.peek_used() else { return Ok(None) };
        let slot = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::InFlight { token: t, .. } if *t == token))
            .ok_or(Error::Broken)?;
        let Slot::InFlight { op, len, .. } = self.slots[slot] else { return Err(Error::Broken) };
        // SAFETY: these are the buffers `submit` gave the queue with this token (same slot,
        // same length); the device has finished with them (the token is in the used ring).
        let (head, status, data) = unsafe { self.slot_buffers(slot, len) };
        // SAFETY: as just said: the same buffers, in the same order, as `add` received.
        unsafe {
            match op {
                Op::Read => self.queue.pop_used(token, &[head], &mut [data, status]),
                Op::Write => self.queue.pop_used(token, &[head, data], &mut [status]),
                Op::Flush => self.queue.pop_used(token, &[head], &mut [status]),
            }
        }
        .map_err(Error::Virtio)?;
        let status = match status[0] {
            0 => Status::Ok,
            2 => Status::Unsupported,
            _ => Status::IoError,
        };
        self.slots[slot] = Slot::Idle;
        self.in_flight -= 1;
        Ok(Some(Completion { slot, op, len, status }))
    }
}

impl Drop for VirtioBlk {
    /// Resets the device (it stops using the queue and the buffers) and closes it; the DMA
    /// memory is freed after that, as the fields drop.
    fn drop(&mut self) {
        self.transport.set_status(DeviceStatus::empty());
        let _ = kernel().device_close(self.dev);
    }
}
