//! The little of ACPI the kernel needs: the MADT ("APIC" table), for the I/O APICs' addresses
//! and GSI bases and the interrupt source overrides (ISA IRQ → GSI, polarity, trigger).
//!
//! The RSDP comes from PVH's `rsdp_paddr` or, failing that, a scan of the BIOS area
//! (0xe0000..0x100000) as on any PC. Tables are read through the boot direct map with
//! unaligned reads; every length and checksum is checked, and a table that fails a check is
//! ignored (the caller then falls back to QEMU `pc`'s fixed layout). Nothing here allocates or
//! keeps pointers into the tables.

use super::mm::phys_to_virt;

/// Only the first 4 GiB are mapped; tables beyond are ignored.
const MAPPED_LIMIT: u64 = 4 << 30;
/// Longest table we are willing to read (QEMU's MADT is a few hundred bytes).
const MAX_TABLE: u64 = 64 << 10;

pub const MAX_IOAPICS: usize = 4;
pub const MAX_OVERRIDES: usize = 16;

/// An I/O APIC: physical register base and first GSI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoApicEntry {
    pub address: u64,
    pub gsi_base: u32,
}

/// An interrupt source override: ISA IRQ `source` is GSI `gsi` with MPS INTI `flags`
/// (bits 0-1 polarity: 0 bus default, 1 high, 3 low; bits 2-3 trigger: 0 bus default, 1 edge,
/// 3 level).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Override {
    pub source: u8,
    pub gsi: u32,
    pub flags: u16,
}

/// What the MADT says about interrupt routing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Madt {
    pub ioapics: [IoApicEntry; MAX_IOAPICS],
    pub ioapic_count: usize,
    pub overrides: [Override; MAX_OVERRIDES],
    pub override_count: usize,
}

impl Madt {
    pub fn overrides(&self) -> &[Override] {
        &self.overrides[..self.override_count]
    }

    pub fn ioapics(&self) -> &[IoApicEntry] {
        &self.ioapics[..self.ioapic_count]
    }
}

fn readable(pa: u64, len: u64) -> bool {
    pa != 0 && pa.checked_add(len).is_some_and(|end| end <= MAPPED_LIMIT)
}

fn read<T: Copy>(pa: u64) -> Option<T> {
    if !readable(pa, core::mem::size_of::<T>() as u64) {
        return None;
    }
    // SAFETY: inside the boot direct map (checked above); firmware tables are plain bytes and
    // every `T` used here is an integer or a byte array, valid for any bit pattern.
    Some(unsafe { core::ptr::read_unaligned(phys_to_virt(pa) as *const T) })
}

fn checksum_ok(pa: u64, len: u64) -> bool {
    let mut sum = 0u8;
    for i in 0..len {
        match read::<u8>(pa + i) {
            Some(b) => sum = sum.wrapping_add(b),
            None => return false,
        }
    }
    sum == 0
}

/// Finds the RSDP: `hint` (from PVH) if it checks out, else the BIOS-area scan.
fn find_rsdp(hint: Option<u64>) -> Option<u64> {
    let valid = |pa: u64| read::<[u8; 8]>(pa) == Some(*b"RSD PTR ") && checksum_ok(pa, 20);
    if let Some(pa) = hint.filter(|&pa| valid(pa)) {
        return Some(pa);
    }
    (0xe_0000u64..0x10_0000).step_by(16).find(|&pa| valid(pa))
}

/// A table at `pa` with signature `sig`: its length, if the header and checksum are sound.
fn table(pa: u64, sig: &[u8; 4]) -> Option<u64> {
    if read::<[u8; 4]>(pa)? != *sig {
        return None;
    }
    let len = read::<u32>(pa + 4)? as u64;
    (36..=MAX_TABLE).contains(&len).then_some(len).filter(|&l| checksum_ok(pa, l))
}

/// The MADT, from the RSDP at `rsdp_hint` (or found by scanning).
pub fn madt(rsdp_hint: Option<u64>) -> Option<Madt> {
    let rsdp = find_rsdp(rsdp_hint)?;
    let revision = read::<u8>(rsdp + 15)?;
    // ACPI 2+: the XSDT (64-bit entries) if present, else the RSDT (32-bit entries).
    let xsdt = if revision >= 2 { read::<u64>(rsdp + 24).filter(|&x| x != 0) } else { None };
    let (root, entry_size, sig) = match xsdt {
        Some(x) => (x, 8u64, b"XSDT"),
        None => (read::<u32>(rsdp + 16)? as u64, 4u64, b"RSDT"),
    };
    let len = table(root, sig)?;
    let entries = (len - 36) / entry_size;
    for i in 0..entries {
        let at = root + 36 + i * entry_size;
        let pa = if entry_size == 8 { read::<u64>(at)? } else { read::<u32>(at)? as u64 };
        if let Some(l) = table(pa, b"APIC") {
            return Some(parse_madt(pa, l));
        }
    }
    None
}

fn parse_madt(pa: u64, len: u64) -> Madt {
    let mut m = Madt::default();
    let mut at = pa + 44;
    while at + 2 <= pa + len {
        let (Some(kind), Some(elen)) = (read::<u8>(at), read::<u8>(at + 1)) else { break };
        let elen = elen as u64;
        if elen < 2 || at + elen > pa + len {
            break;
        }
        match kind {
            1 if elen >= 12 && m.ioapic_count < MAX_IOAPICS => {
                if let (Some(address), Some(gsi_base)) = (read::<u32>(at + 4), read::<u32>(at + 8)) {
                    m.ioapics[m.ioapic_count] = IoApicEntry { address: address as u64, gsi_base };
                    m.ioapic_count += 1;
                }
            }
            2 if elen >= 10 && m.override_count < MAX_OVERRIDES => {
                let (bus, source, gsi, flags) =
                    (read::<u8>(at + 2), read::<u8>(at + 3), read::<u32>(at + 4), read::<u16>(at + 8));
                if let (Some(0), Some(source), Some(gsi), Some(flags)) = (bus, source, gsi, flags) {
                    m.overrides[m.override_count] = Override { source, gsi, flags };
                    m.override_count += 1;
                }
            }
            _ => {}
        }
        at += elen;
    }
    m
}
