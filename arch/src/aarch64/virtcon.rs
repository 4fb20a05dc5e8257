//! The trace port of QEMU `virt`: a virtio console (`virtio-serial-device` with a `virtconsole`
//! on port 0) on a virtio-mmio transport, driven by the nucleus itself, polled. It transmits
//! the trace stream and receives the host's control commands (`nucleus::control`).
//!
//! `virt` has one PL011 (the console); QEMU 7.2 gives it no second non-secure UART. A virtio
//! console is the live byte stream it does have, and it is fast: one queue notification moves
//! a whole page of records, where a UART moves one byte per register write.
//!
//! # How it works
//!
//! [`attach`] takes the first virtio-mmio transport whose device is a console (type 3), in its
//! modern (version 2) or legacy (version 1) form, and sets it up with no features beyond
//! `VIRTIO_F_VERSION_1` (so no multiport: port 0 is the console, its receive queue is queue 0
//! and its transmit queue queue 1). Queue 1 gets [`QUEUE_SIZE`] descriptors, one per
//! transmit buffer: descriptor `i` always points at buffer `i` (one page of DMA memory).
//! Queue 0 gets as many device-writable [`RX_BUF_SIZE`]-byte buffers (one page), all of them
//! always posted except while [`read`] copies one out; the host's bytes wait in QEMU while
//! none is posted.
//! [`write`] copies bytes into the current buffer; a full buffer is put on the available ring
//! and the device notified. [`flush`] does the same for a partly filled one. Buffers come back
//! through the used ring, which is polled whenever a buffer is needed (QEMU under TCG completes
//! a transmit before the notifying write returns, so in practice one is always free). The
//! device's interrupt is never enabled (the nucleus does not route its line) and is also
//! suppressed in the available ring's flags.
//!
//! # Invariants
//!
//! * A buffer is either the current one, free, or owned by the device (its bit in `in_flight`);
//!   it is written only while it is the current one.
//! * [`write`] is all-or-nothing: it takes the bytes only when they fit in the current buffer
//!   and the free ones, so records are never cut by a refusal and the stream stays aligned.
//! * Every access happens under one lock with interrupts masked.
//!
//! # What it must not do
//!
//! Wait without bound (a device that never gives a buffer back makes [`write`] refuse after
//! [`RECLAIM_SPINS`] polls; the nucleus counts the refused records as dropped), or touch a
//! device other than the one attached.

use super::mm::phys_to_virt;
use crate::devinfo::{Bus, FoundDevice};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

/// Descriptors in the transmit queue, and transmit buffers.
pub const QUEUE_SIZE: usize = 8;
/// Bytes per transmit buffer (one page).
const BUF_SIZE: usize = 4096;
/// Polls of the used ring before a write that needs a buffer gives up.
pub const RECLAIM_SPINS: u32 = 10_000;

/// Virtio-mmio registers (virtio 1.2 §4.2.2; legacy §4.2.4).
mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const GUEST_PAGE_SIZE: u64 = 0x028;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_ALIGN: u64 = 0x03c;
    pub const QUEUE_PFN: u64 = 0x040;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
}

const MAGIC: u32 = 0x7472_6976; // "virt"
const VIRTIO_CONSOLE: u32 = 3;
/// Port 0's receive and transmit queues.
const RX_QUEUE: u32 = 0;
const TX_QUEUE: u32 = 1;
/// Bytes per receive buffer ([`QUEUE_SIZE`] of them share a page).
const RX_BUF_SIZE: usize = 4096 / QUEUE_SIZE;
/// `VRING_DESC_F_WRITE`: the device writes the buffer.
const DESC_WRITE: u16 = 2;

const STATUS_ACKNOWLEDGE: u32 = 1;
const STATUS_DRIVER: u32 = 2;
const STATUS_DRIVER_OK: u32 = 4;
const STATUS_FEATURES_OK: u32 = 8;
/// `VIRTIO_F_VERSION_1` is bit 32: bit 0 of feature word 1.
const F_VERSION_1_HIGH: u32 = 1;
/// `VRING_AVAIL_F_NO_INTERRUPT`.
const AVAIL_NO_INTERRUPT: u16 = 1;

/// Layout of the queue's two pages: descriptors and the available ring in the first, the used
/// ring at the start of the second (legacy alignment 4096 puts it there; modern is told).
const DESC_OFFSET: u64 = 0;
const AVAIL_OFFSET: u64 = 16 * QUEUE_SIZE as u64;
const USED_OFFSET: u64 = 4096;
const _: () = assert!(AVAIL_OFFSET + 6 + 2 * QUEUE_SIZE as u64 <= USED_OFFSET);

struct Port {
    /// Mapped address of the transport's registers.
    regs: u64,
    /// Physical address of the queue's two pages.
    queue: u64,
    /// Physical address of the first of the [`QUEUE_SIZE`] buffers (contiguous pages).
    bufs: u64,
    /// Buffers owned by the device (bit per buffer).
    in_flight: u32,
    /// The buffer being filled, if any is free.
    current: Option<usize>,
    /// Bytes in the current buffer.
    fill: usize,
    /// Next available-ring index to publish.
    avail_idx: u16,
    /// Used-ring entries already taken back.
    used_seen: u16,
    /// The receive queue's two pages and its buffers' page (physical).
    rx_queue: u64,
    rx_bufs: u64,
    /// Receive used-ring entries already taken.
    rx_used_seen: u16,
    /// Receive available-ring index published so far.
    rx_avail_idx: u16,
}

static PORT: Mutex<Option<Port>> = Mutex::new(None);
static ATTACHED: AtomicBool = AtomicBool::new(false);

fn read32(addr: u64) -> u32 {
    // SAFETY: `addr` is a register of the attached transport, in the device area of the kernel
    // half (mapped by the nucleus for good before `attach`).
    unsafe { (addr as *const u32).read_volatile() }
}

fn write32(addr: u64, value: u32) {
    // SAFETY: as for `read32`.
    unsafe { (addr as *mut u32).write_volatile(value) }
}

/// Writes `value` at `pa + offset` of the queue's memory (through the direct map).
fn mem_write<T: Copy>(pa: u64, value: T) {
    // SAFETY: `pa` lies in frames allocated to this driver at `attach` (never freed), reached
    // through the direct map; the device reads them only after the barrier in `submit`.
    unsafe { (phys_to_virt(pa) as *mut T).write_volatile(value) }
}

fn mem_read<T: Copy>(pa: u64) -> T {
    // SAFETY: as for `mem_write`; the device writes the used ring, hence the volatile read.
    unsafe { (phys_to_virt(pa) as *const T).read_volatile() }
}

/// Orders this CPU's stores to normal memory before the ones that follow (the device is an
/// observer in the outer-shareable domain; `dsb st` also orders them before a device write).
fn store_barrier() {
    // SAFETY: a barrier has no operands and no effect beyond ordering.
    unsafe { core::arch::asm!("dsb st", options(nostack, preserves_flags)) }
}

fn load_barrier() {
    // SAFETY: as for `store_barrier`.
    unsafe { core::arch::asm!("dmb ld", options(nostack, preserves_flags)) }
}

/// Offers a device found at boot (`regs` = its mapped register window). Takes it, sets it up
/// and returns true if it is a virtio-mmio console and no trace port is attached yet.
/// `alloc` gives `n` physically contiguous frames (their physical address), not zeroed.
pub fn attach(dev: &FoundDevice, regs: u64, alloc: &mut dyn FnMut(usize) -> Option<u64>) -> bool {
    if dev.bus != Bus::Mmio || dev.virtio_type != VIRTIO_CONSOLE || regs == 0 || ATTACHED.load(Ordering::Relaxed) {
        return false;
    }
    if read32(regs + reg::MAGIC) != MAGIC || read32(regs + reg::DEVICE_ID) != VIRTIO_CONSOLE {
        return false;
    }
    let legacy = match read32(regs + reg::VERSION) {
        1 => true,
        2 => false,
        _ => return false,
    };
    let (Some(queue), Some(bufs), Some(rx_queue), Some(rx_bufs)) = (alloc(2), alloc(QUEUE_SIZE), alloc(2), alloc(1))
    else {
        return false;
    };
    // SAFETY: the frames were just allocated for this driver and are in the direct map.
    unsafe {
        core::ptr::write_bytes(phys_to_virt(queue) as *mut u8, 0, 2 * 4096);
        core::ptr::write_bytes(phys_to_virt(rx_queue) as *mut u8, 0, 2 * 4096);
    }
    let r = |off| regs + off;
    write32(r(reg::STATUS), 0);
    write32(r(reg::STATUS), STATUS_ACKNOWLEDGE);
    write32(r(reg::STATUS), STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    let mut status = STATUS_ACKNOWLEDGE | STATUS_DRIVER;
    write32(r(reg::DRIVER_FEATURES_SEL), 0);
    write32(r(reg::DRIVER_FEATURES), 0);
    if !legacy {
        write32(r(reg::DEVICE_FEATURES_SEL), 1);
        if read32(r(reg::DEVICE_FEATURES)) & F_VERSION_1_HIGH == 0 {
            write32(r(reg::STATUS), 0);
            return false;
        }
        write32(r(reg::DRIVER_FEATURES_SEL), 1);
        write32(r(reg::DRIVER_FEATURES), F_VERSION_1_HIGH);
        status |= STATUS_FEATURES_OK;
        write32(r(reg::STATUS), status);
        if read32(r(reg::STATUS)) & STATUS_FEATURES_OK == 0 {
            write32(r(reg::STATUS), 0);
            return false;
        }
    } else {
        write32(r(reg::GUEST_PAGE_SIZE), 4096);
    }
    // Descriptor i of the transmit queue: buffer i, device-readable (flags 0), the length set
    // at submission. Of the receive queue: piece i of the receive page, device-writable, all
    // posted at once.
    let tx = |i: u64| (bufs + i * BUF_SIZE as u64, 0, 0);
    let rx = |i: u64| (rx_bufs + i * RX_BUF_SIZE as u64, RX_BUF_SIZE as u32, DESC_WRITE);
    if !setup_queue(regs, legacy, TX_QUEUE, queue, &tx, false)
        || !setup_queue(regs, legacy, RX_QUEUE, rx_queue, &rx, true)
    {
        write32(r(reg::STATUS), 0);
        return false;
    }
    write32(r(reg::STATUS), status | STATUS_DRIVER_OK);
    // The receive buffers are the device's from the start.
    write32(r(reg::QUEUE_NOTIFY), RX_QUEUE);
    super::cpu::without_interrupts(|| {
        *PORT.lock() = Some(Port {
            regs,
            queue,
            bufs,
            in_flight: 0,
            current: Some(0),
            fill: 0,
            avail_idx: 0,
            used_seen: 0,
            rx_queue,
            rx_bufs,
            rx_used_seen: 0,
            rx_avail_idx: QUEUE_SIZE as u16,
        })
    });
    ATTACHED.store(true, Ordering::Release);
    true
}

/// Sets up queue `index` at `queue` (two zeroed pages) with [`QUEUE_SIZE`] descriptors,
/// descriptor `i` being `desc(i)` = (buffer, length, flags); with `post`, every descriptor goes
/// on the available ring at once. False if the device's queue is too small.
fn setup_queue(
    regs: u64,
    legacy: bool,
    index: u32,
    queue: u64,
    desc: &dyn Fn(u64) -> (u64, u32, u16),
    post: bool,
) -> bool {
    let r = |off| regs + off;
    write32(r(reg::QUEUE_SEL), index);
    if (read32(r(reg::QUEUE_NUM_MAX)) as usize) < QUEUE_SIZE {
        return false;
    }
    write32(r(reg::QUEUE_NUM), QUEUE_SIZE as u32);
    for i in 0..QUEUE_SIZE as u64 {
        let (addr, len, flags) = desc(i);
        mem_write::<u64>(queue + DESC_OFFSET + 16 * i, addr);
        mem_write::<u32>(queue + DESC_OFFSET + 16 * i + 8, len);
        mem_write::<u16>(queue + DESC_OFFSET + 16 * i + 12, flags);
        if post {
            mem_write::<u16>(queue + AVAIL_OFFSET + 4 + 2 * i, i as u16);
        }
    }
    mem_write::<u16>(queue + AVAIL_OFFSET, AVAIL_NO_INTERRUPT);
    if post {
        mem_write::<u16>(queue + AVAIL_OFFSET + 2, QUEUE_SIZE as u16);
    }
    if legacy {
        write32(r(reg::QUEUE_ALIGN), 4096);
        store_barrier();
        write32(r(reg::QUEUE_PFN), (queue >> 12) as u32);
    } else {
        let split = |pa: u64| (pa as u32, (pa >> 32) as u32);
        let (lo, hi) = split(queue + DESC_OFFSET);
        write32(r(reg::QUEUE_DESC_LOW), lo);
        write32(r(reg::QUEUE_DESC_HIGH), hi);
        let (lo, hi) = split(queue + AVAIL_OFFSET);
        write32(r(reg::QUEUE_DRIVER_LOW), lo);
        write32(r(reg::QUEUE_DRIVER_HIGH), hi);
        let (lo, hi) = split(queue + USED_OFFSET);
        write32(r(reg::QUEUE_DEVICE_LOW), lo);
        write32(r(reg::QUEUE_DEVICE_HIGH), hi);
        store_barrier();
        write32(r(reg::QUEUE_READY), 1);
    }
    true
}

impl Port {
    /// Copies what the device has received into `out` (whole buffers only: one that does not
    /// fit waits for the next call) and posts the emptied buffers again.
    fn read(&mut self, out: &mut [u8]) -> usize {
        let used_idx: u16 = mem_read(self.rx_queue + USED_OFFSET + 2);
        load_barrier();
        let mut n = 0;
        while self.rx_used_seen != used_idx {
            let slot = (self.rx_used_seen as usize) % QUEUE_SIZE;
            let entry = self.rx_queue + USED_OFFSET + 4 + 8 * slot as u64;
            let id: u32 = mem_read(entry);
            let len = (mem_read::<u32>(entry + 4) as usize).min(RX_BUF_SIZE);
            if id as usize >= QUEUE_SIZE {
                self.rx_used_seen = self.rx_used_seen.wrapping_add(1);
                continue; // not a buffer of ours: nothing to copy or post
            }
            if n + len > out.len() {
                break;
            }
            // SAFETY: buffer `id` is a piece of the receive page allocated to this driver; the
            // device has handed it back (it is in the used ring), so it no longer writes it.
            unsafe {
                let src = phys_to_virt(self.rx_bufs + id as u64 * RX_BUF_SIZE as u64) as *const u8;
                core::ptr::copy_nonoverlapping(src, out[n..].as_mut_ptr(), len);
            }
            n += len;
            self.rx_used_seen = self.rx_used_seen.wrapping_add(1);
            let at = (self.rx_avail_idx as usize) % QUEUE_SIZE;
            mem_write::<u16>(self.rx_queue + AVAIL_OFFSET + 4 + 2 * at as u64, id as u16);
            store_barrier();
            self.rx_avail_idx = self.rx_avail_idx.wrapping_add(1);
            mem_write::<u16>(self.rx_queue + AVAIL_OFFSET + 2, self.rx_avail_idx);
            store_barrier();
            write32(self.regs + reg::QUEUE_NOTIFY, RX_QUEUE);
        }
        n
    }

    fn buf_pa(&self, i: usize) -> u64 {
        self.bufs + (i * BUF_SIZE) as u64
    }

    /// Takes back the buffers the device has finished with.
    fn reclaim(&mut self) {
        let used_idx: u16 = mem_read(self.queue + USED_OFFSET + 2);
        load_barrier();
        while self.used_seen != used_idx {
            let slot = (self.used_seen as usize) % QUEUE_SIZE;
            let id: u32 = mem_read(self.queue + USED_OFFSET + 4 + 8 * slot as u64);
            if (id as usize) < QUEUE_SIZE {
                self.in_flight &= !(1 << id);
            }
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        if self.current.is_none() {
            self.current = self.free_buffer();
            self.fill = 0;
        }
    }

    /// A buffer that is neither the current one nor the device's.
    fn free_buffer(&self) -> Option<usize> {
        (0..QUEUE_SIZE).find(|&i| self.in_flight & (1 << i) == 0 && self.current != Some(i))
    }

    /// Bytes that can be written without waiting for the device.
    fn room(&self) -> usize {
        let free = (0..QUEUE_SIZE).filter(|&i| self.in_flight & (1 << i) == 0 && self.current != Some(i)).count();
        self.current.map_or(0, |_| BUF_SIZE - self.fill) + free * BUF_SIZE
    }

    /// Hands the current buffer (if it holds anything) to the device.
    fn submit(&mut self) {
        let Some(i) = self.current else { return };
        if self.fill == 0 {
            return;
        }
        let desc = self.queue + DESC_OFFSET + 16 * i as u64;
        mem_write::<u32>(desc + 8, self.fill as u32);
        mem_write::<u16>(desc + 12, 0);
        let slot = (self.avail_idx as usize) % QUEUE_SIZE;
        mem_write::<u16>(self.queue + AVAIL_OFFSET + 4 + 2 * slot as u64, i as u16);
        store_barrier();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem_write::<u16>(self.queue + AVAIL_OFFSET + 2, self.avail_idx);
        store_barrier();
        self.in_flight |= 1 << i;
        write32(self.regs + reg::QUEUE_NOTIFY, TX_QUEUE);
        self.current = None;
        self.fill = 0;
        self.reclaim();
    }

    fn write(&mut self, mut bytes: &[u8]) -> bool {
        let mut spins = 0;
        while self.room() < bytes.len() {
            if spins == RECLAIM_SPINS || bytes.len() > QUEUE_SIZE * BUF_SIZE {
                return false;
            }
            self.reclaim();
            spins += 1;
        }
        while !bytes.is_empty() {
            let Some(i) = self.current else { return false };
            let n = (BUF_SIZE - self.fill).min(bytes.len());
            // SAFETY: buffer `i` is the current one (not the device's), in frames allocated
            // to this driver; `fill + n <= BUF_SIZE`.
            unsafe {
                let dst = (phys_to_virt(self.buf_pa(i)) as *mut u8).add(self.fill);
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n);
            }
            self.fill += n;
            bytes = &bytes[n..];
            if self.fill == BUF_SIZE {
                self.submit();
            }
        }
        true
    }
}

/// Whether a trace port is attached.
pub fn present() -> bool {
    ATTACHED.load(Ordering::Acquire)
}

/// Queues `bytes` for the host, all or nothing (false: not attached, or no room after
/// [`RECLAIM_SPINS`] polls of the device).
pub fn write(bytes: &[u8]) -> bool {
    super::cpu::without_interrupts(|| PORT.lock().as_mut().is_some_and(|p| p.write(bytes)))
}

/// Takes what the host has sent into `buf` (0 without a port or when nothing came).
pub fn read(buf: &mut [u8]) -> usize {
    if !present() {
        return 0;
    }
    super::cpu::without_interrupts(|| PORT.lock().as_mut().map_or(0, |p| p.read(buf)))
}

/// Sends what [`write`] has queued so far.
pub fn flush() {
    super::cpu::without_interrupts(|| {
        if let Some(p) = PORT.lock().as_mut() {
            p.submit();
        }
    })
}
