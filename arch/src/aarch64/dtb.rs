//! Reads the flattened device tree that the loader (QEMU's `-kernel`, or any Linux arm64 boot
//! loader) passes in x0, into the boot-time [`BootInfo`]: the memory nodes (`Usable`), the
//! kernel image, the device tree itself, the initrd (`/chosen linux,initrd-start/-end`), the
//! `/memreserve/` entries and `/reserved-memory` children (all `Reserved`), and the command line
//! (`/chosen bootargs`). It also tells `power.rs` which PSCI conduit powers the machine off, and
//! lists the virtio-mmio transports that have a device behind them ([`virtio_devices`]).
//!
//! The tree is reached through the direct map and bounds-checked before it is parsed; a missing
//! or garbled tree yields an empty memory map, which the nucleus reports instead of guessing.

use super::mm::{phys_to_virt, DEVICE_LIMIT, DIRECT_MAP_LIMIT, PAGE_SIZE};
use super::power::{set_psci_conduit, PsciConduit};
use crate::bootinfo::{BootInfo, MemKind};
use crate::devinfo::{Bus, FoundDevice, IrqLine};
use fdt::Fdt;
use spin::Once;

const FDT_MAGIC: u32 = 0xd00d_feed;
/// Larger trees are refused (QEMU's are a few KiB; Linux caps them at 2 MiB).
const MAX_FDT_SIZE: u64 = 2 << 20;

static BOOT_INFO: Once<BootInfo> = Once::new();

fn readable(pa: u64, len: u64) -> bool {
    pa != 0 && pa.checked_add(len).is_some_and(|end| end <= DIRECT_MAP_LIMIT)
}

fn be32_at(pa: u64) -> u32 {
    // SAFETY: callers check `readable(pa, 4)`: RAM in the boot direct map.
    u32::from_be(unsafe { core::ptr::read_unaligned(phys_to_virt(pa) as *const u32) })
}

/// The device tree at `pa` as a byte slice, if it looks like one and fits the direct map.
fn fdt_bytes(pa: u64) -> Option<&'static [u8]> {
    if !pa.is_multiple_of(8) || !readable(pa, 8) || be32_at(pa) != FDT_MAGIC {
        return None;
    }
    let size = be32_at(pa + 4) as u64;
    if !(40..=MAX_FDT_SIZE).contains(&size) || !readable(pa, size) {
        return None;
    }
    // SAFETY: `pa..pa+size` is inside the direct map (checked above) and holds the tree the
    // loader wrote; it is reserved in the memory map, so nothing overwrites it.
    Some(unsafe { core::slice::from_raw_parts(phys_to_virt(pa) as *const u8, size as usize) })
}

fn page_round(start: u64, len: u64) -> (u64, u64) {
    let s = start & !(PAGE_SIZE - 1);
    let e = (start + len).next_multiple_of(PAGE_SIZE);
    (s, e - s)
}

/// Parses the device tree at `dtb_pa` into the boot-time [`BootInfo`]; call once.
pub fn boot_info(dtb_pa: u64, kernel_phys: (u64, u64)) -> &'static BootInfo {
    BOOT_INFO.call_once(|| {
        let mut info = BootInfo::empty("linux-image");
        info.kernel_phys = kernel_phys;
        let Some(fdt) = fdt_bytes(dtb_pa).and_then(|b| Fdt::new(b).ok()) else {
            return info;
        };
        info.dtb = Some(dtb_pa);
        for node in fdt.all_nodes() {
            let is_memory = node.property("device_type").and_then(|p| p.as_str()) == Some("memory");
            if !is_memory {
                continue;
            }
            for r in node.reg().into_iter().flatten() {
                info.push_region(r.starting_address as u64, r.size.unwrap_or(0) as u64, MemKind::Usable);
            }
        }
        let (ks, kl) = page_round(kernel_phys.0, kernel_phys.1 - kernel_phys.0);
        info.push_region(ks, kl, MemKind::Reserved);
        let (ds, dl) = page_round(dtb_pa, fdt.total_size() as u64);
        info.push_region(ds, dl, MemKind::Reserved);
        for r in fdt.memory_reservations() {
            info.push_region(r.address() as u64, r.size() as u64, MemKind::Reserved);
        }
        if let Some(resv) = fdt.find_node("/reserved-memory") {
            for child in resv.children() {
                for r in child.reg().into_iter().flatten() {
                    info.push_region(r.starting_address as u64, r.size.unwrap_or(0) as u64, MemKind::Reserved);
                }
            }
        }
        if let Some(chosen) = fdt.find_node("/chosen") {
            if let Some(args) = chosen.property("bootargs") {
                info.set_cmdline(args.value);
            }
            let start = chosen.property("linux,initrd-start").and_then(|p| p.as_usize());
            let end = chosen.property("linux,initrd-end").and_then(|p| p.as_usize());
            if let (Some(s), Some(e)) = (start, end) {
                let (s, e) = (s as u64, e as u64);
                if e > s && readable(s, e - s) {
                    info.initrd = Some((s, e - s));
                    let (rs, rl) = page_round(s, e - s);
                    info.push_region(rs, rl, MemKind::Reserved);
                }
            }
        }
        if let Some(psci) = fdt.find_node("/psci") {
            match psci.property("method").and_then(|p| p.as_str()) {
                Some("hvc") => set_psci_conduit(PsciConduit::Hvc),
                Some("smc") => set_psci_conduit(PsciConduit::Smc),
                _ => set_psci_conduit(PsciConduit::None),
            }
        } else {
            set_psci_conduit(PsciConduit::None);
        }
        info
    })
}

/// `virtio-mmio` magic ("virt", little-endian).
const VIRTIO_MMIO_MAGIC: u32 = 0x7472_6976;

/// Calls `f` for every `virtio,mmio` node of the tree at `dtb_pa` that has a device behind it
/// (its header's magic is right and its device id is not 0: QEMU `virt` declares 32 transports
/// and fills the ones `-device virtio-*-device` plugs in). The window must lie in the device
/// GiB; the interrupt is the node's first `interrupts` triple (SPI only), with its trigger.
pub fn virtio_devices(dtb_pa: u64, f: &mut dyn FnMut(FoundDevice)) {
    let Some(fdt) = fdt_bytes(dtb_pa).and_then(|b| Fdt::new(b).ok()) else { return };
    for node in fdt.all_nodes() {
        let compatible = node.compatible().is_some_and(|c| c.all().any(|s| s == "virtio,mmio"));
        if !compatible {
            continue;
        }
        let Some(r) = node.reg().and_then(|mut r| r.next()) else { continue };
        let (base, len) = (r.starting_address as u64, r.size.unwrap_or(0) as u64);
        if len < 0x100 || base.checked_add(len).is_none_or(|end| end > DEVICE_LIMIT) {
            continue;
        }
        let reg = |off: u64| {
            // SAFETY: `base..base+len` (len >= 0x100) lies in the device GiB, mapped
            // Device-nGnRE in the direct map; these are the virtio-mmio header registers.
            unsafe { (phys_to_virt(base + off) as *const u32).read_volatile() }
        };
        if reg(0) != VIRTIO_MMIO_MAGIC || reg(8) == 0 {
            continue;
        }
        let mut d = FoundDevice::empty(Bus::Mmio);
        d.vendor = reg(0xc) as u16;
        d.virtio_type = reg(8);
        d.regions[0] = (base, len);
        if let Some(p) = node.property("interrupts").filter(|p| p.value.len() >= 12) {
            let cell = |i: usize| {
                u32::from_be_bytes([p.value[4 * i], p.value[4 * i + 1], p.value[4 * i + 2], p.value[4 * i + 3]])
            };
            let (kind, number, flags) = (cell(0), cell(1), cell(2));
            if kind == 0 {
                // IRQ_TYPE_EDGE_RISING = 1, _FALLING = 2, _LEVEL_HIGH = 4, _LEVEL_LOW = 8.
                d.irq = Some(IrqLine { number: number + 32, level: flags & 0xc != 0, active_low: flags & 0xa != 0 });
            }
        }
        f(d);
    }
}
