//! The GICv2 of QEMU's `virt` (distributor at 0x0800_0000, CPU interface at 0x0801_0000),
//! through the device part of the direct map. Only the lines the kernel asks for are enabled
//! (the virtual timer's PPI, and the SPIs servers bind); interrupts are acknowledged and ended
//! by the trap path before any hook that might switch tasks runs, and an SPI is disabled before
//! its end of interrupt, until its driver has serviced the device.

use super::mm::phys_to_virt;

pub const GICD_BASE: u64 = 0x0800_0000;
pub const GICC_BASE: u64 = 0x0801_0000;

const GICD_CTLR: u64 = 0x000;
const GICD_ISENABLER: u64 = 0x100;
const GICD_ICENABLER: u64 = 0x180;
const GICD_IPRIORITYR: u64 = 0x400;
const GICD_ITARGETSR: u64 = 0x800;
const GICD_ICFGR: u64 = 0xc00;
const GICC_CTLR: u64 = 0x000;
const GICC_PMR: u64 = 0x004;
const GICC_BPR: u64 = 0x008;
const GICC_IAR: u64 = 0x00c;
const GICC_EOIR: u64 = 0x010;

/// Interrupt ids at or above this are special (1023 = spurious).
pub const SPECIAL_INTID: u32 = 1020;

fn write(base: u64, offset: u64, v: u32) {
    // SAFETY: the GIC registers are mapped Device-nGnRE in the direct map; offsets are the
    // architectural ones.
    unsafe { (phys_to_virt(base + offset) as *mut u32).write_volatile(v) }
}

fn read(base: u64, offset: u64) -> u32 {
    // SAFETY: as for `write`.
    unsafe { (phys_to_virt(base + offset) as *const u32).read_volatile() }
}

/// Turns the distributor and this CPU's interface on with every line disabled.
pub fn init() {
    write(GICD_BASE, GICD_CTLR, 0);
    for i in 0..32u64 {
        write(GICD_BASE, GICD_ICENABLER + 4 * i, u32::MAX);
    }
    write(GICD_BASE, GICD_CTLR, 1);
    write(GICC_BASE, GICC_PMR, 0xf0);
    write(GICC_BASE, GICC_BPR, 0);
    write(GICC_BASE, GICC_CTLR, 1);
}

/// Enables interrupt `intid` at a middle priority.
pub fn enable(intid: u32) {
    let prio_reg = GICD_IPRIORITYR + (intid as u64 & !3);
    let shift = (intid % 4) * 8;
    let v = read(GICD_BASE, prio_reg) & !(0xff << shift);
    write(GICD_BASE, prio_reg, v | (0xa0 << shift));
    write(GICD_BASE, GICD_ISENABLER + 4 * (intid as u64 / 32), 1 << (intid % 32));
}

/// Disables (masks) interrupt `intid` at the distributor. A level line that stays asserted
/// stays pending and fires again once enabled; an edge that comes while disabled is latched.
pub fn disable(intid: u32) {
    write(GICD_BASE, GICD_ICENABLER + 4 * (intid as u64 / 32), 1 << (intid % 32));
}

/// Sets up SPI `intid` (disabled): edge- or level-sensitive, targeted at CPU 0.
pub fn configure_spi(intid: u32, edge: bool) {
    if !(32..SPECIAL_INTID).contains(&intid) {
        return;
    }
    disable(intid);
    let cfg = GICD_ICFGR + 4 * (intid as u64 / 16);
    let bit = 1 << ((intid % 16) * 2 + 1);
    let v = read(GICD_BASE, cfg);
    write(GICD_BASE, cfg, if edge { v | bit } else { v & !bit });
    let target = GICD_ITARGETSR + (intid as u64 & !3);
    let shift = (intid % 4) * 8;
    let t = read(GICD_BASE, target) & !(0xff << shift);
    write(GICD_BASE, target, t | (1 << shift));
}

/// Acknowledges the highest-priority pending interrupt; returns the raw `GICC_IAR` value.
pub fn acknowledge() -> u32 {
    read(GICC_BASE, GICC_IAR)
}

/// Ends an interrupt acknowledged with [`acknowledge`] (pass the same raw value).
pub fn end(iar: u32) {
    write(GICC_BASE, GICC_EOIR, iar);
}
