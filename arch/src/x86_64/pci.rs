//! PCI configuration space through the legacy mechanism #1 (ports 0xcf8/0xcfc, which every PC
//! chipset QEMU emulates has, `pc` and `q35` alike) and the enumeration of bus 0.
//!
//! Enumeration reads each function's ids, sizes its memory BARs (decoding off while sizing, as
//! the PCI spec asks) and reads the interrupt line the firmware (SeaBIOS) programmed; it keeps
//! the functions whose vendor is virtio's (0x1af4). Only bus 0 is scanned: QEMU `pc` puts every
//! device there (bridges are not followed; see docs/caveats.md).

use super::io::{inl, outl};
use crate::devinfo::{pci, Bus, FoundDevice};
use spin::Mutex;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
pub const VIRTIO_VENDOR: u16 = 0x1af4;

/// Serialises the address/data pair.
static CONFIG: Mutex<()> = Mutex::new(());

fn address(bus: u8, device: u8, function: u8, offset: u16) -> u32 {
    0x8000_0000
        | (bus as u32) << 16
        | ((device as u32) & 0x1f) << 11
        | ((function as u32) & 7) << 8
        | (offset as u32 & 0xfc)
}

/// Reads the 32-bit register at `offset` (rounded down to 4) of a function's configuration
/// space; `0xffff_ffff` for offsets past 0xff.
pub fn read(bus: u8, device: u8, function: u8, offset: u16) -> u32 {
    if offset > 0xfc {
        return u32::MAX;
    }
    super::cpu::without_interrupts(|| {
        let _g = CONFIG.lock();
        outl(CONFIG_ADDRESS, address(bus, device, function, offset));
        inl(CONFIG_DATA)
    })
}

/// Writes the 32-bit register at `offset` (rounded down to 4); offsets past 0xff are ignored.
pub fn write(bus: u8, device: u8, function: u8, offset: u16, value: u32) {
    if offset > 0xfc {
        return;
    }
    super::cpu::without_interrupts(|| {
        let _g = CONFIG.lock();
        outl(CONFIG_ADDRESS, address(bus, device, function, offset));
        outl(CONFIG_DATA, value);
    })
}

/// The virtio device type of a virtio PCI function: modern ids are 0x1040 + type; transitional
/// ones (0x1000..0x1040) carry the type in the subsystem id.
fn virtio_type(bus: u8, device: u8, function: u8, id: u16) -> u32 {
    match id {
        0x1040..=0x107f => (id - 0x1040) as u32,
        0x1000..=0x103f => read(bus, device, function, 0x2c) >> 16,
        _ => 0,
    }
}

/// Sizes the memory BARs of a function: `(start, len)` per BAR index.
fn memory_bars(bus: u8, device: u8, function: u8) -> [(u64, u64); 6] {
    let mut out = [(0u64, 0u64); 6];
    let cmd = read(bus, device, function, pci::STATUS_COMMAND);
    write(bus, device, function, pci::STATUS_COMMAND, cmd & 0xffff & !(pci::CMD_MEMORY | 1));
    let mut i = 0;
    while i < 6 {
        let off = pci::BAR0 + 4 * i as u16;
        let orig = read(bus, device, function, off);
        if orig & 1 == 1 {
            i += 1; // an I/O BAR
            continue;
        }
        let is64 = orig & 0b110 == 0b100 && i < 5;
        write(bus, device, function, off, u32::MAX);
        let mut mask = (read(bus, device, function, off) & !0xf) as u64;
        write(bus, device, function, off, orig);
        let mut base = (orig & !0xf) as u64;
        if is64 {
            let orig_hi = read(bus, device, function, off + 4);
            write(bus, device, function, off + 4, u32::MAX);
            mask |= (read(bus, device, function, off + 4) as u64) << 32;
            write(bus, device, function, off + 4, orig_hi);
            base |= (orig_hi as u64) << 32;
        } else if mask != 0 {
            mask |= 0xffff_ffff_0000_0000;
        }
        let len = (!mask).wrapping_add(1);
        if mask != 0 && base != 0 && len != 0 {
            out[i] = (base, len);
        }
        i += if is64 { 2 } else { 1 };
    }
    write(bus, device, function, pci::STATUS_COMMAND, cmd & 0xffff);
    out
}

/// Calls `f` for every virtio function on bus 0. `irq(line)` turns the interrupt-line
/// register's value into a routed line (it knows the MADT's overrides).
pub fn scan(irq: &dyn Fn(u8) -> Option<crate::devinfo::IrqLine>, f: &mut dyn FnMut(FoundDevice)) {
    for device in 0..32u8 {
        let functions = if read(0, device, 0, 0x0c) & 0x0080_0000 != 0 { 8 } else { 1 };
        for function in 0..functions {
            let ids = read(0, device, function, pci::VENDOR_DEVICE);
            let (vendor, id) = (ids as u16, (ids >> 16) as u16);
            if vendor == 0xffff || vendor != VIRTIO_VENDOR {
                continue;
            }
            let mut d = FoundDevice::empty(Bus::Pci { bus: 0, device, function });
            d.vendor = vendor;
            d.device = id;
            d.virtio_type = virtio_type(0, device, function, id);
            d.regions = memory_bars(0, device, function);
            let int = read(0, device, function, pci::INTERRUPT);
            let (line, pin) = (int as u8, (int >> 8) as u8);
            if pin != 0 && line != 0 && line != 0xff {
                d.irq = irq(line);
            }
            f(d);
        }
    }
}

/// Where a modern virtio-pci function's structures are mapped (virtio 1.2 §4.1.4).
pub struct VirtioCaps {
    /// The common configuration structure.
    pub common: u64,
    /// The start of the notification area, and the byte distance between queues' addresses
    /// per unit of a queue's notification offset.
    pub notify: u64,
    pub notify_multiplier: u32,
    /// Bytes of the notification area (all mapped).
    pub notify_len: u64,
}

/// Finds a function's common configuration (capability type 1) and notification (type 2)
/// structures in its vendor capabilities, each inside a mapped memory BAR (`va`, by BAR index,
/// 0 = not mapped) and within its length. None if either is missing or out of bounds.
pub fn virtio_caps(dev: &FoundDevice, va: &[u64; 6]) -> Option<VirtioCaps> {
    // A structure's mapped address, if `len` bytes of it lie inside its mapped BAR.
    let place = |bar: usize, offset: u64, len: u64| {
        let (_, bar_len) = *dev.regions.get(bar)?;
        let base = *va.get(bar)?;
        (base != 0 && offset.checked_add(len)? <= bar_len).then_some(base + offset)
    };
    // The first of each type that fits (the spec lets a device offer several).
    let common = crate::devinfo::virtio_pci_cap(dev.bus, |c| {
        c.cfg_type == 1 && c.length >= 0x38 && place(c.bar, c.offset, 0x38).is_some()
    })?;
    let notify = crate::devinfo::virtio_pci_cap(dev.bus, |c| {
        c.cfg_type == 2 && place(c.bar, c.offset, c.length.max(2)).is_some()
    })?;
    let notify_multiplier = crate::current::dev::config_read(dev.bus, notify.at + 16);
    Some(VirtioCaps {
        common: place(common.bar, common.offset, 0x38)?,
        notify: place(notify.bar, notify.offset, notify.length.max(2))?,
        notify_multiplier,
        notify_len: notify.length.max(2),
    })
}
