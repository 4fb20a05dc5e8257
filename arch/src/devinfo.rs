//! The arch-neutral description of the devices each architecture finds at boot (PCI functions
//! on x86_64 `pc`, virtio-mmio transports from the device tree on AArch64 `virt`) and of the
//! interrupt lines that connect them to the interrupt controller (I/O APIC pins, GIC SPIs).
//!
//! These are plain values: finding a device maps nothing and claims nothing. The nucleus keeps
//! the table of devices, maps their registers, and decides which server may drive which one;
//! the arch layer only reports what the firmware description (ACPI, PCI configuration space,
//! the DTB) says, bounds-checked.

/// Register windows per device (the six PCI BARs, or one MMIO window).
pub const MAX_DEVICE_REGIONS: usize = 6;

/// Where a device sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    /// A PCI function, reached through configuration space.
    Pci { bus: u8, device: u8, function: u8 },
    /// A memory-mapped device described by the device tree.
    Mmio,
}

/// An interrupt line as the interrupt controller sees it: a global system interrupt (I/O APIC
/// pin) on x86_64, an interrupt id (SPI) on AArch64, with its electrical behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqLine {
    pub number: u32,
    /// Level-triggered (else edge).
    pub level: bool,
    /// Asserted low (else high).
    pub active_low: bool,
}

/// One device found at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundDevice {
    pub bus: Bus,
    /// PCI vendor and device id; for virtio-mmio the virtio vendor id (low 16 bits) and 0.
    pub vendor: u16,
    pub device: u16,
    /// The virtio device type (1 net, 2 block, ...), 0 if it is not a virtio device.
    pub virtio_type: u32,
    /// Physical memory windows `(start, len)`, indexed like PCI BARs (`(0, 0)` = none or an I/O
    /// BAR). A 64-bit BAR fills its first index.
    pub regions: [(u64, u64); MAX_DEVICE_REGIONS],
    /// Its interrupt line, if it has one the firmware routed.
    pub irq: Option<IrqLine>,
}

impl FoundDevice {
    pub const fn empty(bus: Bus) -> FoundDevice {
        FoundDevice { bus, vendor: 0, device: 0, virtio_type: 0, regions: [(0, 0); MAX_DEVICE_REGIONS], irq: None }
    }
}

/// PCI configuration-space registers the nucleus uses.
pub mod pci {
    pub const VENDOR_DEVICE: u16 = 0x00;
    pub const STATUS_COMMAND: u16 = 0x04;
    pub const BAR0: u16 = 0x10;
    pub const ROM: u16 = 0x30;
    pub const CAPABILITIES: u16 = 0x34;
    pub const INTERRUPT: u16 = 0x3c;
    /// Command register bits.
    pub const CMD_MEMORY: u32 = 1 << 1;
    pub const CMD_BUS_MASTER: u32 = 1 << 2;
    pub const CMD_INTX_DISABLE: u32 = 1 << 10;
    /// Status register bit (in the upper half of `STATUS_COMMAND`): a capability list exists.
    pub const STATUS_CAPABILITIES: u32 = 1 << 20;
}

/// A virtio-pci vendor capability (virtio 1.2 §4.1.4): where one of the function's structures
/// lies, as the capability says (bounds unchecked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioPciCap {
    /// Configuration-space offset of the capability itself (type-specific words follow it).
    pub at: u16,
    /// `cfg_type`: 1 common configuration, 2 notifications, 3 ISR, 4 device configuration.
    pub cfg_type: u32,
    pub bar: usize,
    pub offset: u64,
    pub length: u64,
}

/// The first virtio vendor capability of PCI function `bus` that `want` accepts, walking its
/// capability list through `arch::dev::config_read` (nothing off PCI: it reads all ones).
pub fn virtio_pci_cap(bus: Bus, want: impl Fn(&VirtioPciCap) -> bool) -> Option<VirtioPciCap> {
    let read = |off| crate::current::dev::config_read(bus, off);
    if read(pci::STATUS_COMMAND) & pci::STATUS_CAPABILITIES == 0 {
        return None;
    }
    let mut at = (read(pci::CAPABILITIES) & 0xfc) as u16;
    // At most 48 capabilities fit in configuration space: a loop in the list ends here too.
    for _ in 0..48 {
        if at < 0x40 {
            return None;
        }
        let head = read(at);
        let (id, next) = (head & 0xff, ((head >> 8) & 0xfc) as u16);
        if id == 0x09 {
            let cap = VirtioPciCap {
                at,
                cfg_type: (head >> 24) & 0xff,
                bar: (read(at + 4) & 0xff) as usize,
                offset: read(at + 8) as u64,
                length: read(at + 12) as u64,
            };
            if want(&cap) {
                return Some(cap);
            }
        }
        at = next;
    }
    None
}
