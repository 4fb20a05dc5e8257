//! The trace port: a virtio console (`virtio-serial-device` / `virtio-serial-pci` with a
//! `virtconsole` on port 0), driven by the nucleus itself, polled. It transmits the trace
//! stream and receives the host's control commands (`nucleus::control`). Both architectures
//! use it: AArch64 `virt` on a virtio-mmio transport, x86_64 `pc` on a modern virtio-pci one.
//!
//! `virt` has one PL011 (the console); QEMU 7.2 gives it no second non-secure UART. A virtio
//! console is the live byte stream it does have, and it is fast: one queue notification moves
//! a whole page of records, where a UART moves one byte per register write (and QEMU writes
//! its file one byte per system call: COM2 carries ~36,000 records/s, this ~100 times more).
//!
//! # How it works
//!
//! [`attach_mmio`] takes the first virtio-mmio transport whose device is a console (type 3), in
//! its modern (version 2) or legacy (version 1) form; [`attach_pci`] a modern virtio-pci
//! function's common configuration and notification windows, found by the caller in its
//! capabilities. Either way the device is set up with no features beyond
//! `VIRTIO_F_VERSION_1` (so no multiport: port 0 is the console, its receive queue is queue 0
//! and its transmit queue queue 1). Queue 1 gets [`QUEUE_SIZE`] descriptors, one per
//! transmit buffer: descriptor `i` always points at buffer `i` (one page of DMA memory).
//! Queue 0 gets as many device-writable [`RX_BUF_SIZE`]-byte buffers (one page), all of them
//! always posted except while [`read`] copies one out; the host's bytes wait in QEMU while
//! none is posted.
//! [`write`] copies bytes into the current buffer; a full buffer is put on the available ring
//! and the device notified. [`flush`] does the same for a partly filled one. [`send_in_place`]
//! copies nothing: a free descriptor points at the caller's bytes (the trace buffer's records)
//! until the device gives it back, which it waits for. Buffers come back
//! through the used ring, which is polled whenever a buffer is needed (QEMU under TCG completes
//! a transmit before the notifying write returns, so in practice one is always free). The
//! device's interrupt is never enabled (the nucleus does not route its line) and is also
//! suppressed in the available ring's flags.
//!
//! # Invariants
//!
//! * A buffer is either the current one, free, or owned by the device (its bit in `in_flight`);
//!   it is written only while it is the current one. A descriptor points at its own buffer
//!   except while [`send_in_place`] holds it, which restores it before returning (or wedges).
//! * [`write`] is all-or-nothing: it takes the bytes only when they fit in the current buffer
//!   and the free ones, so records are never cut by a refusal and the stream stays aligned.
//! * Every access happens under one lock with interrupts masked.
//!
//! # What it must not do
//!
//! Wait without bound (a device that never gives a buffer back makes [`write`] refuse after
//! [`RECLAIM_SPINS`] polls; the nucleus counts the refused records as dropped), or touch a
//! device other than the one attached.

use crate::current::mm::phys_to_virt;
use crate::devinfo::{Bus, FoundDevice};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

/// Descriptors in the transmit queue, and transmit buffers.
pub const QUEUE_SIZE: usize = 8;
/// Bytes per transmit buffer (one page).
const BUF_SIZE: usize = 4096;
/// Polls of the used ring before a write that needs a buffer gives up.
pub const RECLAIM_SPINS: u32 = 10_000;
/// Polls of the used ring before [`send_in_place`] gives up on the device reading its bytes
/// (QEMU under TCG has read them before the notifying write returns, unless `ioeventfd` is on;
/// then its main loop does, within microseconds).
pub const IN_PLACE_SPINS: u32 = 1_000_000;

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

/// Where the device's registers are.
#[derive(Clone, Copy)]
enum Transport {
    /// A virtio-mmio window (`legacy`: version 1).
    Mmio { regs: u64, legacy: bool },
    /// A modern virtio-pci function: its common configuration structure and the notification
    /// address of each of the two queues (all mapped).
    Pci { common: u64, notify: [u64; 2] },
}

/// The modern virtio-pci common configuration structure (virtio 1.2 §4.1.4.3).
mod pci_common {
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    pub const DEVICE_FEATURE: u64 = 0x04;
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    pub const DRIVER_FEATURE: u64 = 0x0c;
    pub const DEVICE_STATUS: u64 = 0x14;
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_ENABLE: u64 = 0x1c;
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
}

impl Transport {
    fn status(self) -> u32 {
        match self {
            Transport::Mmio { regs, .. } => read32(regs + reg::STATUS),
            Transport::Pci { common, .. } => read8(common + pci_common::DEVICE_STATUS) as u32,
        }
    }

    fn set_status(self, status: u32) {
        match self {
            Transport::Mmio { regs, .. } => write32(regs + reg::STATUS, status),
            Transport::Pci { common, .. } => write8(common + pci_common::DEVICE_STATUS, status as u8),
        }
    }

    fn legacy(self) -> bool {
        matches!(self, Transport::Mmio { legacy: true, .. })
    }

    /// Device feature word `word`.
    fn device_features(self, word: u32) -> u32 {
        match self {
            Transport::Mmio { regs, .. } => {
                write32(regs + reg::DEVICE_FEATURES_SEL, word);
                read32(regs + reg::DEVICE_FEATURES)
            }
            Transport::Pci { common, .. } => {
                write32(common + pci_common::DEVICE_FEATURE_SELECT, word);
                read32(common + pci_common::DEVICE_FEATURE)
            }
        }
    }

    fn set_driver_features(self, word: u32, value: u32) {
        match self {
            Transport::Mmio { regs, .. } => {
                write32(regs + reg::DRIVER_FEATURES_SEL, word);
                write32(regs + reg::DRIVER_FEATURES, value);
            }
            Transport::Pci { common, .. } => {
                write32(common + pci_common::DRIVER_FEATURE_SELECT, word);
                write32(common + pci_common::DRIVER_FEATURE, value);
            }
        }
    }

    /// Selects queue `index` and gives it [`QUEUE_SIZE`] entries at `queue` (two zeroed pages
    /// laid out as `DESC_OFFSET`/`AVAIL_OFFSET`/`USED_OFFSET` say); false if the device's
    /// queue is smaller or absent.
    fn setup_queue(self, index: u32, queue: u64) -> bool {
        let split = |pa: u64| (pa as u32, (pa >> 32) as u32);
        match self {
            Transport::Mmio { regs, legacy } => {
                let r = |off| regs + off;
                write32(r(reg::QUEUE_SEL), index);
                if (read32(r(reg::QUEUE_NUM_MAX)) as usize) < QUEUE_SIZE {
                    return false;
                }
                write32(r(reg::QUEUE_NUM), QUEUE_SIZE as u32);
                if legacy {
                    write32(r(reg::QUEUE_ALIGN), 4096);
                    store_barrier();
                    write32(r(reg::QUEUE_PFN), (queue >> 12) as u32);
                } else {
                    for (lo_reg, hi_reg, pa) in [
                        (reg::QUEUE_DESC_LOW, reg::QUEUE_DESC_HIGH, queue + DESC_OFFSET),
                        (reg::QUEUE_DRIVER_LOW, reg::QUEUE_DRIVER_HIGH, queue + AVAIL_OFFSET),
                        (reg::QUEUE_DEVICE_LOW, reg::QUEUE_DEVICE_HIGH, queue + USED_OFFSET),
                    ] {
                        let (lo, hi) = split(pa);
                        write32(r(lo_reg), lo);
                        write32(r(hi_reg), hi);
                    }
                    store_barrier();
                    write32(r(reg::QUEUE_READY), 1);
                }
            }
            Transport::Pci { common, .. } => {
                let c = |off| common + off;
                write16(c(pci_common::QUEUE_SELECT), index as u16);
                if (read16(c(pci_common::QUEUE_SIZE)) as usize) < QUEUE_SIZE {
                    return false;
                }
                write16(c(pci_common::QUEUE_SIZE), QUEUE_SIZE as u16);
                for (at, pa) in [
                    (pci_common::QUEUE_DESC, queue + DESC_OFFSET),
                    (pci_common::QUEUE_DRIVER, queue + AVAIL_OFFSET),
                    (pci_common::QUEUE_DEVICE, queue + USED_OFFSET),
                ] {
                    let (lo, hi) = split(pa);
                    write32(c(at), lo);
                    write32(c(at + 4), hi);
                }
                store_barrier();
                write16(c(pci_common::QUEUE_ENABLE), 1);
            }
        }
        true
    }

    /// Tells the device queue `index` has new buffers.
    fn notify(self, index: u32) {
        match self {
            Transport::Mmio { regs, .. } => write32(regs + reg::QUEUE_NOTIFY, index),
            Transport::Pci { notify, .. } => write16(notify[index as usize & 1], index as u16),
        }
    }
}

/// The notification offset of queue `index` of a modern virtio-pci function (to be multiplied
/// by the notification capability's multiplier).
pub fn pci_queue_notify_off(common: u64, index: u16) -> u64 {
    write16(common + pci_common::QUEUE_SELECT, index);
    read16(common + pci_common::QUEUE_NOTIFY_OFF) as u64
}

struct Port {
    /// The device's registers.
    transport: Transport,
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
    /// A [`send_in_place`] whose bytes the device never gave back: its descriptor still points
    /// at the caller's memory, so nothing is sent any more.
    wedged: bool,
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

fn read16(addr: u64) -> u16 {
    // SAFETY: as for `read32` (a 16-bit register of the window).
    unsafe { (addr as *const u16).read_volatile() }
}

fn write16(addr: u64, value: u16) {
    // SAFETY: as for `read32`.
    unsafe { (addr as *mut u16).write_volatile(value) }
}

fn read8(addr: u64) -> u8 {
    // SAFETY: as for `read32` (an 8-bit register of the window).
    unsafe { (addr as *const u8).read_volatile() }
}

fn write8(addr: u64, value: u8) {
    // SAFETY: as for `read32`.
    unsafe { (addr as *mut u8).write_volatile(value) }
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
/// x86_64 keeps stores in order, also before an uncached register write: a full fence is more
/// than enough there.
fn store_barrier() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier has no operands and no effect beyond ordering.
    unsafe {
        core::arch::asm!("dsb st", options(nostack, preserves_flags))
    }
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(Ordering::SeqCst);
}

fn load_barrier() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as for `store_barrier`.
    unsafe {
        core::arch::asm!("dmb ld", options(nostack, preserves_flags))
    }
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(Ordering::SeqCst);
}

/// Offers a device found at boot (`regs` = its mapped register window). Takes it, sets it up
/// and returns true if it is a virtio-mmio console and no trace port is attached yet.
/// `alloc` gives `n` physically contiguous frames (their physical address), not zeroed.
pub fn attach_mmio(dev: &FoundDevice, regs: u64, alloc: &mut dyn FnMut(usize) -> Option<u64>) -> bool {
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
    attach(Transport::Mmio { regs, legacy }, alloc)
}

/// Takes a modern virtio-pci console as the trace port: `common` is its mapped common
/// configuration structure, `notify` the mapped notification address of its receive and
/// transmit queues (the caller found them in the function's capabilities and enabled memory
/// decoding and bus mastering). True if it was set up.
pub fn attach_pci(common: u64, notify: [u64; 2], alloc: &mut dyn FnMut(usize) -> Option<u64>) -> bool {
    if common == 0 || notify.contains(&0) || ATTACHED.load(Ordering::Relaxed) {
        return false;
    }
    attach(Transport::Pci { common, notify }, alloc)
}

fn attach(t: Transport, alloc: &mut dyn FnMut(usize) -> Option<u64>) -> bool {
    let (Some(queue), Some(bufs), Some(rx_queue), Some(rx_bufs)) = (alloc(2), alloc(QUEUE_SIZE), alloc(2), alloc(1))
    else {
        return false;
    };
    // SAFETY: the frames were just allocated for this driver and are in the direct map.
    unsafe {
        core::ptr::write_bytes(phys_to_virt(queue) as *mut u8, 0, 2 * 4096);
        core::ptr::write_bytes(phys_to_virt(rx_queue) as *mut u8, 0, 2 * 4096);
    }
    t.set_status(0);
    t.set_status(STATUS_ACKNOWLEDGE);
    t.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    let mut status = STATUS_ACKNOWLEDGE | STATUS_DRIVER;
    t.set_driver_features(0, 0);
    if t.legacy() {
        if let Transport::Mmio { regs, .. } = t {
            write32(regs + reg::GUEST_PAGE_SIZE, 4096);
        }
    } else {
        if t.device_features(1) & F_VERSION_1_HIGH == 0 {
            t.set_status(0);
            return false;
        }
        t.set_driver_features(1, F_VERSION_1_HIGH);
        status |= STATUS_FEATURES_OK;
        t.set_status(status);
        if t.status() & STATUS_FEATURES_OK == 0 {
            t.set_status(0);
            return false;
        }
    }
    // Descriptor i of the transmit queue: buffer i, device-readable (flags 0), the length set
    // at submission. Of the receive queue: piece i of the receive page, device-writable, all
    // posted at once.
    let tx = |i: u64| (bufs + i * BUF_SIZE as u64, 0, 0);
    let rx = |i: u64| (rx_bufs + i * RX_BUF_SIZE as u64, RX_BUF_SIZE as u32, DESC_WRITE);
    if !setup_queue(t, TX_QUEUE, queue, &tx, false) || !setup_queue(t, RX_QUEUE, rx_queue, &rx, true) {
        t.set_status(0);
        return false;
    }
    t.set_status(status | STATUS_DRIVER_OK);
    // The receive buffers are the device's from the start.
    t.notify(RX_QUEUE);
    crate::current::cpu::without_interrupts(|| {
        *PORT.lock() = Some(Port {
            transport: t,
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
            wedged: false,
        })
    });
    ATTACHED.store(true, Ordering::Release);
    true
}

/// Fills queue `index` at `queue` (two zeroed pages) with [`QUEUE_SIZE`] descriptors,
/// descriptor `i` being `desc(i)` = (buffer, length, flags), and hands it to the device; with
/// `post`, every descriptor goes on the available ring at once. False if the device's queue is
/// too small.
fn setup_queue(t: Transport, index: u32, queue: u64, desc: &dyn Fn(u64) -> (u64, u32, u16), post: bool) -> bool {
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
    t.setup_queue(index, queue)
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
            self.transport.notify(RX_QUEUE);
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
        self.post(i, self.buf_pa(i), self.fill);
        self.current = None;
        self.fill = 0;
        self.reclaim();
    }

    /// Points descriptor `i` (not the device's) at `len` bytes at `pa` and hands it over.
    fn post(&mut self, i: usize, pa: u64, len: usize) {
        let desc = self.queue + DESC_OFFSET + 16 * i as u64;
        mem_write::<u64>(desc, pa);
        mem_write::<u32>(desc + 8, len as u32);
        mem_write::<u16>(desc + 12, 0);
        let slot = (self.avail_idx as usize) % QUEUE_SIZE;
        mem_write::<u16>(self.queue + AVAIL_OFFSET + 4 + 2 * slot as u64, i as u16);
        store_barrier();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem_write::<u16>(self.queue + AVAIL_OFFSET + 2, self.avail_idx);
        store_barrier();
        self.in_flight |= 1 << i;
        self.transport.notify(TX_QUEUE);
    }

    /// [`send_in_place`]'s work: what [`write`] queued goes first, then a free descriptor
    /// points at `bytes` until the device gives it back.
    fn send_in_place(&mut self, bytes: &[u8]) -> bool {
        if self.wedged || bytes.len() > u32::MAX as usize {
            return false;
        }
        self.submit();
        let mut spins = 0;
        let i = loop {
            self.reclaim();
            if let Some(i) = self.free_buffer() {
                break i;
            }
            if spins == RECLAIM_SPINS {
                return false;
            }
            spins += 1;
        };
        self.post(i, crate::current::mm::virt_to_phys(bytes.as_ptr() as u64), bytes.len());
        let mut spins = 0;
        while self.in_flight & (1 << i) != 0 {
            if spins == IN_PLACE_SPINS {
                self.wedged = true;
                return false;
            }
            self.reclaim();
            spins += 1;
        }
        // Buffer i's own page again, for `submit`.
        mem_write::<u64>(self.queue + DESC_OFFSET + 16 * i as u64, self.buf_pa(i));
        true
    }

    fn write(&mut self, mut bytes: &[u8]) -> bool {
        if self.wedged {
            return false;
        }
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
    crate::current::cpu::without_interrupts(|| PORT.lock().as_mut().is_some_and(|p| p.write(bytes)))
}

/// Sends `bytes`, all or nothing, straight from where they are (no copy): returns once the
/// device has read them, so the caller may change them after. They must be one physically
/// contiguous range of the direct map or the kernel image (the trace buffer is). What
/// [`write`] queued before goes first. False without a port, when no descriptor came back
/// within [`RECLAIM_SPINS`] polls, or when the device kept these bytes past
/// [`IN_PLACE_SPINS`] polls: then the port is *wedged* (its descriptor still points at the
/// bytes) and refuses every write after.
pub fn send_in_place(bytes: &[u8]) -> bool {
    crate::current::cpu::without_interrupts(|| PORT.lock().as_mut().is_some_and(|p| p.send_in_place(bytes)))
}

/// Takes what the host has sent into `buf` (0 without a port or when nothing came).
pub fn read(buf: &mut [u8]) -> usize {
    if !present() {
        return 0;
    }
    crate::current::cpu::without_interrupts(|| PORT.lock().as_mut().map_or(0, |p| p.read(buf)))
}

/// Sends what [`write`] has queued so far.
pub fn flush() {
    crate::current::cpu::without_interrupts(|| {
        if let Some(p) = PORT.lock().as_mut() {
            p.submit();
        }
    })
}
