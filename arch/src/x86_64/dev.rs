//! Devices and device interrupts on x86_64 (QEMU `pc`), behind the arch-neutral surface the
//! nucleus uses (`arch::dev`): interrupt routing from the ACPI MADT into the I/O APIC,
//! PCI enumeration, configuration-space access, and the console UART's receive line.
//!
//! Line numbers are GSIs. ISA IRQs map to GSIs through the MADT's interrupt source overrides
//! (IRQ 0 → GSI 2 on QEMU), with ISA's defaults (edge, active high) where an override says
//! "conforms to the bus". A PCI function's line comes from its interrupt-line register (what
//! SeaBIOS routed the PIIX's PIRQ link to, 10 or 11 on `pc`), again through the overrides,
//! with PCI's defaults (level, active low) where none applies. QEMU's MADT has overrides for
//! IRQs 5, 9, 10 and 11 saying *level, active high*, which is how the PIIX drives them.
//!
//! The console (COM1, ISA IRQ 4) is routed **level**-triggered: the 16550's interrupt output
//! stays high while a received byte waits, so a line masked while its driver works cannot lose
//! an edge the way an edge-triggered pin would (a byte arriving between the driver's last read
//! and its unmask would otherwise never interrupt again).

use super::acpi::{self, Madt};
use super::ioapic;
use crate::bootinfo::BootInfo;
use crate::devinfo::{Bus, FoundDevice, IrqLine};
use spin::Mutex;

/// What interrupt routing is based on (for the boot log).
#[derive(Clone, Copy, Debug)]
pub struct RoutingSummary {
    pub source: &'static str,
    pub controllers: usize,
    pub overrides: usize,
}

static MADT: Mutex<Option<Madt>> = Mutex::new(None);

/// Finds the interrupt controllers (masking every line) and remembers the overrides.
pub fn init(info: &BootInfo) -> RoutingSummary {
    let madt = acpi::madt(info.acpi_rsdp).filter(|m| m.ioapic_count > 0);
    let summary = match &madt {
        Some(m) => {
            ioapic::init(m.ioapics());
            RoutingSummary { source: "ACPI MADT", controllers: m.ioapic_count, overrides: m.override_count }
        }
        None => {
            ioapic::init(&[ioapic::DEFAULT_IOAPIC]);
            RoutingSummary { source: "QEMU pc default (no MADT)", controllers: 1, overrides: 0 }
        }
    };
    super::cpu::without_interrupts(|| *MADT.lock() = madt);
    summary
}

/// The line of legacy IRQ `irq` with the bus defaults `(level, active_low)` where the firmware
/// does not say otherwise.
fn legacy_line(irq: u8, default_level: bool, default_low: bool) -> IrqLine {
    let o = super::cpu::without_interrupts(|| {
        MADT.lock().as_ref().and_then(|m| m.overrides().iter().find(|o| o.source == irq).copied())
    });
    match o {
        Some(o) => IrqLine {
            number: o.gsi,
            active_low: match o.flags & 3 {
                1 => false,
                3 => true,
                _ => default_low,
            },
            level: match (o.flags >> 2) & 3 {
                1 => false,
                3 => true,
                _ => default_level,
            },
        },
        None => IrqLine { number: irq as u32, level: default_level, active_low: default_low },
    }
}

/// The line behind a PCI interrupt-line register value.
fn pci_line(line: u8) -> Option<IrqLine> {
    let have_madt = super::cpu::without_interrupts(|| MADT.lock().is_some());
    // Without a MADT, assume QEMU pc's PIIX wiring (level, active high).
    (line < 16).then(|| legacy_line(line, true, have_madt))
}

/// The console UART's receive interrupt (COM1 = ISA IRQ 4), routed level-triggered (see above).
pub fn console_irq() -> Option<IrqLine> {
    Some(IrqLine { level: true, ..legacy_line(4, false, false) })
}

/// Every device found (virtio PCI functions on bus 0).
pub fn discover(_info: &BootInfo, f: &mut dyn FnMut(FoundDevice)) {
    super::pci::scan(&pci_line, f);
}

/// Programs the controller for `line`, leaving it masked. False if no controller has it.
pub fn irq_route(line: IrqLine) -> bool {
    ioapic::route(line)
}

pub fn irq_mask(number: u32) {
    ioapic::mask(number)
}

pub fn irq_unmask(number: u32) {
    ioapic::unmask(number)
}

/// The device line a trap vector belongs to, if it is one.
pub(crate) fn line_of_vector(vector: u64) -> Option<u32> {
    let base = ioapic::DEVICE_VECTOR_BASE as u64;
    (base..base + ioapic::MAX_GSI as u64).contains(&vector).then(|| (vector - base) as u32)
}

/// A 32-bit configuration register of a PCI function (`u32::MAX` for anything else).
pub fn config_read(bus: Bus, offset: u16) -> u32 {
    match bus {
        Bus::Pci { bus, device, function } => super::pci::read(bus, device, function, offset),
        Bus::Mmio => u32::MAX,
    }
}

/// Writes a 32-bit configuration register of a PCI function (nothing for anything else).
pub fn config_write(bus: Bus, offset: u16, value: u32) {
    if let Bus::Pci { bus, device, function } = bus {
        super::pci::write(bus, device, function, offset, value)
    }
}
