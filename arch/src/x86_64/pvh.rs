//! Reads the PVH `hvm_start_info` (Xen's `arch-x86/hvm/start_info.h`) that QEMU's PVH loader
//! leaves in low memory: the E820-style memory map, the command line, the initrd module and the
//! ACPI RSDP.
//! Every field is bounds-checked; a missing or garbled structure yields an empty map, which the
//! nucleus reports instead of guessing.

use crate::bootinfo::{BootInfo, MemKind};
use spin::Once;

const PVH_MAGIC: u32 = 0x336e_c578;

#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
struct ModListEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[repr(C)]
struct MemMapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

static BOOT_INFO: Once<BootInfo> = Once::new();

/// Only the first 4 GiB are mapped at boot; structures beyond are ignored.
const BOOT_MAPPED_LIMIT: u64 = 4 << 30;

fn readable(pa: u64, len: u64) -> bool {
    pa != 0 && pa.checked_add(len).is_some_and(|end| end <= BOOT_MAPPED_LIMIT)
}

fn read<T>(pa: u64) -> Option<T> {
    if !readable(pa, core::mem::size_of::<T>() as u64) {
        return None;
    }
    // SAFETY: the range is inside the boot direct map (checked above); the loader wrote it.
    Some(unsafe { core::ptr::read_unaligned(super::mm::phys_to_virt(pa) as *const T) })
}

/// Parses the start info at `start_info_pa` into the boot-time [`BootInfo`]; call once.
pub fn boot_info(start_info_pa: u64, kernel_phys: (u64, u64)) -> &'static BootInfo {
    BOOT_INFO.call_once(|| {
        let mut info = BootInfo::empty("pvh");
        info.kernel_phys = kernel_phys;
        let Some(si) = read::<StartInfo>(start_info_pa).filter(|s| s.magic == PVH_MAGIC) else {
            return info;
        };
        if si.version >= 1 {
            for i in 0..si.memmap_entries.min(128) as u64 {
                if let Some(e) = read::<MemMapEntry>(si.memmap_paddr + i * 24) {
                    let kind = match e.kind {
                        1 => MemKind::Usable,
                        3 => MemKind::Acpi,
                        2 => MemKind::Reserved,
                        _ => MemKind::Unusable,
                    };
                    info.push_region(e.addr, e.size, kind);
                }
            }
        }
        if si.cmdline_paddr != 0 {
            let mut buf = [0u8; crate::bootinfo::MAX_CMDLINE];
            for (i, b) in buf.iter_mut().enumerate() {
                match read::<u8>(si.cmdline_paddr + i as u64) {
                    Some(0) | None => break,
                    Some(c) => *b = c,
                }
            }
            info.set_cmdline(&buf);
        }
        if si.rsdp_paddr != 0 {
            info.acpi_rsdp = Some(si.rsdp_paddr);
        }
        if si.nr_modules >= 1 {
            if let Some(m) = read::<ModListEntry>(si.modlist_paddr) {
                if m.size > 0 && readable(m.paddr, m.size) {
                    info.initrd = Some((m.paddr, m.size));
                }
            }
        }
        info
    })
}
