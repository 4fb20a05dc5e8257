//! The kernel's view of memory on AArch64 (48-bit VAs, 4 KiB granule, four levels).
//!
//! `TTBR1_EL1` holds the kernel half. Its L0 slot 0 is the direct map of physical memory at
//! [`PHYS_OFFSET`], built by the boot code out of 1 GiB blocks: the first GiB (the devices of
//! `virt`: GIC, PL011, virtio-mmio...) as Device-nGnRE, the next ones (RAM from 0x4000_0000)
//! as Normal write-back memory. The kernel image is linked inside the direct map, at
//! `PHYS_OFFSET` + its load address. [`KSTACK_AREA_BASE`] (L0 slot 256) is mapped page by page
//! through ordinary L1/L2/L3 tables so that stacks can have unmapped guard pages, and
//! [`DEVICE_AREA_BASE`] (slot 257) holds device registers the nucleus maps page by page;
//! nothing else in the kernel half is mapped (in particular not `0xffff_ff00_dead_0000`).
//!
//! `TTBR0_EL1` holds a user address space (`user.rs`), or an empty table when none is active:
//! the boot identity map is dropped by [`drop_identity_map`] as soon as the kernel runs on the
//! higher half. Page-table changes are made by one writer with interrupts masked.

use super::regs::{flush_all, flush_kernel_page, publish_tables, sysreg_read, sysreg_write};
use core::sync::atomic::{AtomicU64, Ordering};

pub const PAGE_SIZE: u64 = 4096;
/// Base of the direct map of physical memory (the bottom of the TTBR1 half).
pub const PHYS_OFFSET: u64 = 0xffff_0000_0000_0000;

pub const fn phys_to_virt(pa: u64) -> u64 {
    pa + PHYS_OFFSET
}

/// Accepts direct-map addresses (the kernel image is one of them).
pub const fn virt_to_phys(va: u64) -> u64 {
    va - PHYS_OFFSET
}

/// Number of 1 GiB blocks the boot code puts in the direct map.
pub const DIRECT_MAP_GIB: u64 = 8;
/// Physical addresses below this are reachable through the direct map.
pub const DIRECT_MAP_LIMIT: u64 = DIRECT_MAP_GIB << 30;
/// Physical memory below this (one GiB) is device memory on `virt`.
pub const DEVICE_LIMIT: u64 = 1 << 30;

/// Virtual area for task stacks mapped page by page, so that an unmapped guard page can sit
/// below each stack (TTBR1 L0 slot 256; never overlaps the direct map).
pub const KSTACK_AREA_BASE: u64 = 0xffff_8000_0000_0000;

/// Virtual area where the nucleus maps device registers (virtio-mmio windows) page by page as
/// Device-nGnRE (TTBR1 L0 slot 257).
pub const DEVICE_AREA_BASE: u64 = 0xffff_8080_0000_0000;
/// Size of the device area.
pub const DEVICE_AREA_SIZE: u64 = 1 << 30;

// Descriptor bits (VMSAv8-64, stage 1).
pub const DESC_VALID: u64 = 1;
/// Table (levels 0-2) or page (level 3) descriptor; clear = block.
pub const DESC_TABLE: u64 = 1 << 1;
pub const ATTR_DEVICE: u64 = 0 << 2;
pub const ATTR_NORMAL: u64 = 1 << 2;
/// AP[1]: accessible from EL0.
pub const AP_EL0: u64 = 1 << 6;
/// AP[2]: read-only.
pub const AP_RO: u64 = 1 << 7;
pub const SH_INNER: u64 = 3 << 8;
pub const ACCESS_FLAG: u64 = 1 << 10;
pub const NOT_GLOBAL: u64 = 1 << 11;
pub const PXN: u64 = 1 << 53;
pub const UXN: u64 = 1 << 54;
pub const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// `MAIR_EL1`: index 0 Device-nGnRE, 1 Normal write-back, 2 Normal non-cacheable.
pub const MAIR: u64 = 0x04 | (0xff << 8) | (0x44 << 16);
/// `TCR_EL1` without IPS/AS (filled in from `ID_AA64MMFR0_EL1` by the boot code): 48-bit
/// halves, 4 KiB granules, write-back inner-shareable walks.
pub const TCR: u64 = 16 | (1 << 8) | (1 << 10) | (3 << 12) | (16 << 16) | (1 << 24) | (1 << 26) | (3 << 28) | (2 << 30);
/// `SCTLR_EL1` RES1 bits (ARMv8.0), MMU and caches off.
pub const SCTLR_MMU_OFF: u64 = (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29);
/// `SCTLR_EL1` in operation: MMU, caches, SP alignment checks; EL0 may use `DC ZVA`, read
/// `CTR_EL0`, do cache maintenance and run `WFI`/`WFE` untrapped.
pub const SCTLR_MMU_ON: u64 = SCTLR_MMU_OFF
    | 1
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 12)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 18)
    | (1 << 26);
/// Direct-map block for the device GiB.
pub const DEVICE_BLOCK: u64 = DESC_VALID | ATTR_DEVICE | ACCESS_FLAG | PXN | UXN;
/// Direct-map block for RAM (the kernel executes from it).
pub const NORMAL_BLOCK: u64 = DESC_VALID | ATTR_NORMAL | SH_INNER | ACCESS_FLAG | UXN;
/// A kernel 4 KiB page: read/write, never executable.
const KERNEL_PAGE: u64 = DESC_VALID | DESC_TABLE | ATTR_NORMAL | SH_INNER | ACCESS_FLAG | PXN | UXN;
/// A device-register 4 KiB page: Device-nGnRE, read/write, never executable.
const DEVICE_PAGE: u64 = DESC_VALID | DESC_TABLE | ATTR_DEVICE | ACCESS_FLAG | PXN | UXN;

/// Why a kernel mapping could not be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// A page-table frame could not be allocated.
    OutOfFrames,
    /// The address is already mapped (map) or covered by a block.
    AlreadyMapped,
    /// Nothing is mapped there (and no table allocator was given).
    NotMapped,
    /// The address is outside the range this operation may touch.
    BadAddress,
}

#[repr(C, align(4096))]
struct Table([u64; 512]);

/// The TTBR0 table used while no user address space is active: every entry invalid.
static EMPTY_ROOT: Table = Table([0; 512]);

/// Physical address of the kernel's TTBR1 root (recorded by `prepare_kernel_half`).
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);

pub(crate) fn empty_root() -> u64 {
    virt_to_phys(core::ptr::addr_of!(EMPTY_ROOT) as u64)
}

pub(crate) fn kernel_root() -> u64 {
    match KERNEL_ROOT.load(Ordering::Relaxed) {
        0 => sysreg_read!("ttbr1_el1") & ADDR_MASK,
        r => r,
    }
}

/// Replaces the boot identity map in TTBR0 by the empty table (ASID 0) and flushes the TLB.
pub fn drop_identity_map() {
    // SAFETY: we run on the higher half (TTBR1) and nothing points into the identity map any
    // more; the empty table is a valid, page-aligned root.
    unsafe { sysreg_write!("ttbr0_el1", empty_root()) };
    flush_all();
}

pub(crate) fn entry(table_pa: u64, index: u64) -> *mut u64 {
    (phys_to_virt(table_pa) + index * 8) as *mut u64
}

/// Finds (creating with `alloc` if given) the level-3 entry for `va` under `root`.
pub(crate) fn walk(
    root: u64,
    va: u64,
    mut alloc: Option<&mut dyn FnMut() -> Option<u64>>,
) -> Result<*mut u64, MapError> {
    let mut table = root;
    for shift in [39u64, 30, 21] {
        let e = entry(table, (va >> shift) & 511);
        // SAFETY: `e` points into a live page table reached from `root` through the direct
        // map; the nucleus serialises page-table changes (one writer, interrupts masked).
        let v = unsafe { e.read_volatile() };
        if v & DESC_VALID == 0 {
            let alloc = alloc.as_mut().ok_or(MapError::NotMapped)?;
            let new = alloc().ok_or(MapError::OutOfFrames)?;
            // SAFETY: as above; `new` is a zeroed frame now owned by this page table. The
            // barrier orders its zeroing before the descriptor that publishes it.
            unsafe {
                core::arch::asm!("dsb ishst", options(nostack, preserves_flags));
                e.write_volatile(new | DESC_VALID | DESC_TABLE);
            }
            table = new;
        } else if v & DESC_TABLE == 0 {
            return Err(MapError::AlreadyMapped);
        } else {
            table = v & ADDR_MASK;
        }
    }
    Ok(entry(table, (va >> 12) & 511))
}

fn check_kernel(va: u64) -> Result<(), MapError> {
    if va < PHYS_OFFSET {
        Err(MapError::BadAddress)
    } else {
        Ok(())
    }
}

/// Maps the 4 KiB page at `va` (kernel half) to `pa`, writable and not executable.
/// `alloc_table` supplies zeroed frames for missing intermediate tables.
pub fn map_kernel_page(va: u64, pa: u64, alloc_table: &mut dyn FnMut() -> Option<u64>) -> Result<(), MapError> {
    check_kernel(va)?;
    let e = walk(kernel_root(), va, Some(alloc_table))?;
    // SAFETY: `e` is the leaf entry for `va` in the kernel tables (see `walk`). An invalid
    // entry is never cached in the TLB, so publishing the new one needs no invalidation.
    unsafe {
        if e.read_volatile() & DESC_VALID != 0 {
            return Err(MapError::AlreadyMapped);
        }
        e.write_volatile((pa & ADDR_MASK) | KERNEL_PAGE);
    }
    publish_tables();
    Ok(())
}

/// Maps the 4 KiB page at `va` (inside the device area) to device registers at `pa`.
pub fn map_device_page(va: u64, pa: u64, alloc_table: &mut dyn FnMut() -> Option<u64>) -> Result<(), MapError> {
    if !(DEVICE_AREA_BASE..DEVICE_AREA_BASE + DEVICE_AREA_SIZE).contains(&va) {
        return Err(MapError::BadAddress);
    }
    let e = walk(kernel_root(), va, Some(alloc_table))?;
    // SAFETY: `e` is the leaf entry for `va` in the kernel tables (see `walk`); an invalid
    // entry is never cached in the TLB.
    unsafe {
        if e.read_volatile() & DESC_VALID != 0 {
            return Err(MapError::AlreadyMapped);
        }
        e.write_volatile((pa & ADDR_MASK) | DEVICE_PAGE);
    }
    publish_tables();
    Ok(())
}

/// Unmaps the 4 KiB page at `va`, returning the physical address it mapped. Intermediate
/// tables are kept (the stack area reuses them).
pub fn unmap_kernel_page(va: u64) -> Option<u64> {
    check_kernel(va).ok()?;
    let e = walk(kernel_root(), va, None).ok()?;
    // SAFETY: as in `map_kernel_page`; the TLB entry is flushed right after the write.
    let v = unsafe { e.read_volatile() };
    if v & DESC_VALID == 0 {
        return None;
    }
    // SAFETY: as above.
    unsafe { e.write_volatile(0) };
    flush_kernel_page(va);
    Some(v & ADDR_MASK)
}

/// Records the kernel root and makes sure the L0 entry of the stack area exists. (User address
/// spaces live in TTBR0 and share nothing with the kernel half, so nothing is copied later.)
pub fn prepare_kernel_half(alloc_table: &mut dyn FnMut() -> Option<u64>) -> Result<(), MapError> {
    let root = kernel_root();
    KERNEL_ROOT.store(root, Ordering::Relaxed);
    let e = entry(root, (KSTACK_AREA_BASE >> 39) & 511);
    // SAFETY: the kernel L0 table, through the direct map; single writer at boot.
    unsafe {
        if e.read_volatile() & DESC_VALID == 0 {
            let new = alloc_table().ok_or(MapError::OutOfFrames)?;
            core::arch::asm!("dsb ishst", options(nostack, preserves_flags));
            e.write_volatile(new | DESC_VALID | DESC_TABLE);
        }
    }
    publish_tables();
    Ok(())
}
