//! Devices and device interrupts on AArch64 (QEMU `virt`), behind the arch-neutral surface the
//! nucleus uses (`arch::dev`): GICv2 SPIs as lines, virtio-mmio transports from the device tree
//! as devices, and the PL011's receive line (SPI 1 = interrupt id 33).
//!
//! Line numbers are GIC interrupt ids; only SPIs (32..1020) can be routed. `virt` has no PCI
//! devices we drive (its PCIe host is not used), so configuration-space access reads all ones.

use crate::bootinfo::BootInfo;
use crate::devinfo::{Bus, FoundDevice, IrqLine};

/// What interrupt routing is based on (for the boot log).
#[derive(Clone, Copy, Debug)]
pub struct RoutingSummary {
    pub source: &'static str,
    pub controllers: usize,
    pub overrides: usize,
}

/// The GIC is set up by `trap::init` with every line disabled; nothing more to find.
pub fn init(_info: &BootInfo) -> RoutingSummary {
    RoutingSummary { source: "GICv2 (virt)", controllers: 1, overrides: 0 }
}

/// The PL011's interrupt (level, active high, as the DTB declares it).
pub fn console_irq() -> Option<IrqLine> {
    Some(IrqLine { number: super::console::IRQ, level: true, active_low: false })
}

/// Every virtio-mmio transport with a device behind it.
pub fn discover(info: &BootInfo, f: &mut dyn FnMut(FoundDevice)) {
    if let Some(dtb) = info.dtb {
        super::dtb::virtio_devices(dtb, f);
    }
}

/// Configures SPI `line` (disabled). False for anything that is not an SPI.
pub fn irq_route(line: IrqLine) -> bool {
    if !(32..super::gic::SPECIAL_INTID).contains(&line.number) {
        return false;
    }
    super::gic::configure_spi(line.number, !line.level);
    true
}

pub fn irq_mask(number: u32) {
    if (32..super::gic::SPECIAL_INTID).contains(&number) {
        super::gic::disable(number)
    }
}

pub fn irq_unmask(number: u32) {
    if (32..super::gic::SPECIAL_INTID).contains(&number) {
        super::gic::enable(number)
    }
}

/// No PCI here: all ones.
pub fn config_read(_bus: Bus, _offset: u16) -> u32 {
    u32::MAX
}

/// No PCI here: ignored.
pub fn config_write(_bus: Bus, _offset: u16, _value: u32) {}
