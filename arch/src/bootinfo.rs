//! The arch-neutral description of the machine that the boot code hands to the nucleus:
//! physical memory regions (from the PVH memory map or the DTB), the kernel command line, the
//! initial root file system (initrd), and where the firmware's description of the devices is
//! (ACPI RSDP, DTB). Fixed-size, no allocation: it is built before any heap.

/// What a physical memory region may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// Free RAM the frame allocator may hand out.
    Usable,
    /// RAM holding the kernel image, boot page tables, the initrd or firmware data.
    Reserved,
    /// ACPI tables (reclaimable once parsed).
    Acpi,
    /// Not RAM, or not to be touched.
    Unusable,
}

/// One physical memory region `[start, start + len)`.
#[derive(Clone, Copy, Debug)]
pub struct MemRegion {
    pub start: u64,
    pub len: u64,
    pub kind: MemKind,
}

/// Maximum number of memory-map entries we keep.
pub const MAX_REGIONS: usize = 64;
/// Maximum command-line length kept (longer ones are truncated).
pub const MAX_CMDLINE: usize = 512;

/// Everything the nucleus needs to know about the machine at boot.
pub struct BootInfo {
    pub regions: [MemRegion; MAX_REGIONS],
    pub region_count: usize,
    cmdline_buf: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// Physical range of the initial root file system (cpio newc), if any.
    pub initrd: Option<(u64, u64)>,
    /// Physical range occupied by the kernel image (load address .. end of bss).
    pub kernel_phys: (u64, u64),
    /// Name of the boot protocol that brought us here (`"pvh"`, `"linux-image"`).
    pub protocol: &'static str,
    /// Physical address of the ACPI RSDP, if the loader gave one (PVH's `rsdp_paddr`).
    pub acpi_rsdp: Option<u64>,
    /// Physical address of the flattened device tree, if the loader gave one (AArch64 x0).
    pub dtb: Option<u64>,
}

impl BootInfo {
    pub const fn empty(protocol: &'static str) -> Self {
        BootInfo {
            regions: [MemRegion { start: 0, len: 0, kind: MemKind::Unusable }; MAX_REGIONS],
            region_count: 0,
            cmdline_buf: [0; MAX_CMDLINE],
            cmdline_len: 0,
            initrd: None,
            kernel_phys: (0, 0),
            protocol,
            acpi_rsdp: None,
            dtb: None,
        }
    }

    /// Records a region; silently drops entries past [`MAX_REGIONS`] (reported by the caller).
    pub fn push_region(&mut self, start: u64, len: u64, kind: MemKind) -> bool {
        if self.region_count == MAX_REGIONS || len == 0 {
            return false;
        }
        self.regions[self.region_count] = MemRegion { start, len, kind };
        self.region_count += 1;
        true
    }

    pub fn regions(&self) -> &[MemRegion] {
        &self.regions[..self.region_count]
    }

    /// Stores the command line (truncated to [`MAX_CMDLINE`], stopped at the first NUL).
    pub fn set_cmdline(&mut self, bytes: &[u8]) {
        let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len()).min(MAX_CMDLINE);
        self.cmdline_buf[..n].copy_from_slice(&bytes[..n]);
        self.cmdline_len = n;
    }

    /// The command line; non-UTF-8 input yields the longest valid prefix.
    pub fn cmdline(&self) -> &str {
        let b = &self.cmdline_buf[..self.cmdline_len];
        match core::str::from_utf8(b) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}
