//! The kernel's view of physical memory: all RAM is mapped at `PHYS_OFFSET` (the direct map,
//! PML4 slot 256), and the kernel image at -2 GiB. Task stacks (slot 384) and device registers
//! (slot 385, uncached) are mapped page by page.

pub const PAGE_SIZE: u64 = 4096;
/// Base of the direct map of physical memory.
pub const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Base of the kernel image mapping (code model `kernel`).
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;

pub const fn phys_to_virt(pa: u64) -> u64 {
    pa + PHYS_OFFSET
}

/// Accepts direct-map and kernel-image addresses.
pub const fn virt_to_phys(va: u64) -> u64 {
    if va >= KERNEL_VMA {
        va - KERNEL_VMA
    } else {
        va - PHYS_OFFSET
    }
}

/// Physical addresses below this are reachable through the direct map (the boot page tables
/// map the first 4 GiB; RAM above is ignored until the nucleus maps it).
pub const DIRECT_MAP_LIMIT: u64 = 4 << 30;

/// Virtual area for task stacks mapped page by page, so that an unmapped guard page can sit
/// below each stack (PML4 slot 384; never overlaps the direct map or the kernel image).
pub const KSTACK_AREA_BASE: u64 = 0xffff_c000_0000_0000;

/// Virtual area where the nucleus maps device registers (PCI BARs, virtio-mmio windows) page
/// by page, uncached (PML4 slot 385, 512 GiB above the stack area).
pub const DEVICE_AREA_BASE: u64 = 0xffff_c080_0000_0000;
/// Size of the device area.
pub const DEVICE_AREA_SIZE: u64 = 1 << 30;

pub(crate) const PRESENT: u64 = 1;
/// Page-level write-through and cache-disable: with the power-on PAT this is UC (uncached).
pub(crate) const WRITE_THROUGH: u64 = 1 << 3;
pub(crate) const CACHE_DISABLE: u64 = 1 << 4;
pub(crate) const WRITABLE: u64 = 1 << 1;
pub(crate) const USER: u64 = 1 << 2;
pub(crate) const HUGE: u64 = 1 << 7;
pub(crate) const GLOBAL: u64 = 1 << 8;
pub(crate) const NO_EXECUTE: u64 = 1 << 63;
pub(crate) const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Why a kernel mapping could not be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// A page-table frame could not be allocated.
    OutOfFrames,
    /// The address is already mapped (map) or covered by a huge page.
    AlreadyMapped,
    /// Nothing is mapped there (and no table allocator was given).
    NotMapped,
    /// The address is outside the range this operation may touch.
    BadAddress,
}

/// Physical address of the kernel's own PML4 (recorded by `prepare_kernel_half`).
static KERNEL_ROOT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

pub(crate) fn kernel_root() -> u64 {
    let recorded = KERNEL_ROOT.load(core::sync::atomic::Ordering::Relaxed);
    if recorded != 0 {
        return recorded;
    }
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    cr3 & ADDR_MASK
}

fn entry(table_pa: u64, index: u64) -> *mut u64 {
    (phys_to_virt(table_pa) + index * 8) as *mut u64
}

/// Finds (creating with `alloc` if given) the level-1 entry for `va` under `root`.
/// Intermediate entries get `table_flags` added (USER for user address spaces).
pub(crate) fn walk(
    root: u64,
    va: u64,
    mut alloc: Option<&mut dyn FnMut() -> Option<u64>>,
    table_flags: u64,
) -> Result<*mut u64, MapError> {
    let mut table = root;
    for level in [39u64, 30, 21] {
        let e = entry(table, (va >> level) & 511);
        // SAFETY: `e` points into a live page table reached from `root` through the direct
        // map; the nucleus serialises page-table changes (one writer, interrupts masked).
        let v = unsafe { e.read_volatile() };
        if v & PRESENT == 0 {
            let alloc = alloc.as_mut().ok_or(MapError::NotMapped)?;
            let new = alloc().ok_or(MapError::OutOfFrames)?;
            // SAFETY: as above; `new` is a zeroed frame now owned by this page table.
            unsafe { e.write_volatile(new | PRESENT | WRITABLE | table_flags) };
            table = new;
        } else if v & HUGE != 0 {
            return Err(MapError::AlreadyMapped);
        } else {
            if table_flags != 0 && v & table_flags != table_flags {
                // SAFETY: as above; widening the permissions of an intermediate table.
                unsafe { e.write_volatile(v | table_flags) };
            }
            table = v & ADDR_MASK;
        }
    }
    Ok(entry(table, (va >> 12) & 511))
}

pub(crate) fn invalidate(va: u64) {
    // SAFETY: invlpg only drops a TLB entry.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) };
}

/// Maps the 4 KiB page at `va` (kernel half) to `pa`, writable and not executable.
/// `alloc_table` supplies zeroed frames for missing intermediate tables.
pub fn map_kernel_page(va: u64, pa: u64, alloc_table: &mut dyn FnMut() -> Option<u64>) -> Result<(), MapError> {
    let e = walk(kernel_root(), va, Some(alloc_table), 0)?;
    // SAFETY: `e` is the leaf entry for `va` in the kernel tables (see `walk`).
    unsafe {
        if e.read_volatile() & PRESENT != 0 {
            return Err(MapError::AlreadyMapped);
        }
        e.write_volatile(pa | PRESENT | WRITABLE | NO_EXECUTE | GLOBAL);
    }
    Ok(())
}

/// Maps the 4 KiB page at `va` (inside the device area) to device registers at `pa`:
/// uncached, writable, not executable.
pub fn map_device_page(va: u64, pa: u64, alloc_table: &mut dyn FnMut() -> Option<u64>) -> Result<(), MapError> {
    if !(DEVICE_AREA_BASE..DEVICE_AREA_BASE + DEVICE_AREA_SIZE).contains(&va) {
        return Err(MapError::BadAddress);
    }
    let e = walk(kernel_root(), va, Some(alloc_table), 0)?;
    // SAFETY: `e` is the leaf entry for `va` in the kernel tables (see `walk`).
    unsafe {
        if e.read_volatile() & PRESENT != 0 {
            return Err(MapError::AlreadyMapped);
        }
        e.write_volatile((pa & ADDR_MASK) | PRESENT | WRITABLE | WRITE_THROUGH | CACHE_DISABLE | NO_EXECUTE | GLOBAL);
    }
    Ok(())
}

/// Unmaps the 4 KiB page at `va`, returning the physical address it mapped. Intermediate
/// tables are kept (the stack area reuses them).
pub fn unmap_kernel_page(va: u64) -> Option<u64> {
    let e = walk(kernel_root(), va, None, 0).ok()?;
    // SAFETY: as in `map_kernel_page`; the TLB entry is flushed right after the write.
    unsafe {
        let v = e.read_volatile();
        if v & PRESENT == 0 {
            return None;
        }
        e.write_volatile(0);
        invalidate(va);
        Some(v & ADDR_MASK)
    }
}

/// Makes sure every kernel-half PML4 entry the kernel will ever use exists, so that address
/// spaces created later (which copy the kernel half once) see all future kernel mappings.
pub fn prepare_kernel_half(alloc_table: &mut dyn FnMut() -> Option<u64>) -> Result<(), MapError> {
    let root = kernel_root();
    KERNEL_ROOT.store(root, core::sync::atomic::Ordering::Relaxed);
    // The boot identity map (PML4 slot 0) is not needed once we run in the higher half; left
    // in place it would alias user addresses onto physical memory whenever the kernel root is
    // loaded. Drop it and flush.
    // SAFETY: nothing runs from, or points into, the identity map after the jump to the higher
    // half (the boot information was copied out of low memory through the direct map).
    unsafe {
        entry(root, 0).write_volatile(0);
        core::arch::asm!("mov {0}, cr3", "mov cr3, {0}", out(reg) _, options(nostack, preserves_flags));
    }
    for slot in 256..512u64 {
        let e = entry(root, slot);
        // SAFETY: the kernel PML4, through the direct map; single writer at boot.
        unsafe {
            let wanted = slot == (KSTACK_AREA_BASE >> 39) & 511 || slot == (DEVICE_AREA_BASE >> 39) & 511;
            if e.read_volatile() & PRESENT == 0 && wanted {
                let new = alloc_table().ok_or(MapError::OutOfFrames)?;
                e.write_volatile(new | PRESENT | WRITABLE);
            }
        }
    }
    Ok(())
}
