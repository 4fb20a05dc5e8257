//! The kernel's view of physical memory: all RAM is mapped at `PHYS_OFFSET` (the direct map,
//! PML4 slot 256), and the kernel image at -2 GiB.

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
