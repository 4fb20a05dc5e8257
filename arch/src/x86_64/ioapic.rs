//! The I/O APIC(s): device interrupt lines (global system interrupts, GSIs) to local APIC
//! vectors. Every pin starts masked; a line is routed (vector `DEVICE_VECTOR_BASE + gsi`,
//! fixed delivery to the boot CPU, its trigger and polarity) when a server binds it, and the
//! trap path masks it again before the EOI whenever it fires, so a level-triggered line that
//! stays asserted cannot storm: it is unmasked only when its driver says it has serviced the
//! device.
//!
//! Where the chips are comes from the ACPI MADT; without one we assume QEMU `pc`'s single
//! I/O APIC at 0xfec0_0000 with GSI base 0 (documented in docs/design.md). The registers are
//! reached through the direct map, whose last GiB the boot code maps uncached.

use super::acpi::{IoApicEntry, MAX_IOAPICS};
use super::mm::phys_to_virt;
use crate::devinfo::IrqLine;
use spin::Mutex;

/// The vector of GSI `n` is `DEVICE_VECTOR_BASE + n`.
pub const DEVICE_VECTOR_BASE: u8 = 0x30;
/// GSIs we can give vectors to (0x30..0xe0, below the remapped 8259 range).
pub const MAX_GSI: u32 = 0xb0;
/// QEMU `pc`'s I/O APIC, used when there is no MADT.
pub const DEFAULT_IOAPIC: IoApicEntry = IoApicEntry { address: 0xfec0_0000, gsi_base: 0 };

const REDIR_MASKED: u32 = 1 << 16;
const REDIR_LEVEL: u32 = 1 << 15;
const REDIR_ACTIVE_LOW: u32 = 1 << 13;

#[derive(Clone, Copy)]
struct Chip {
    /// Direct-map address of IOREGSEL (IOWIN is at +0x10).
    base: u64,
    gsi_base: u32,
    pins: u32,
}

struct Chips {
    chips: [Option<Chip>; MAX_IOAPICS],
}

static CHIPS: Mutex<Chips> = Mutex::new(Chips { chips: [None; MAX_IOAPICS] });

impl Chip {
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `base` is the direct-map (uncached) address of an I/O APIC's register window;
        // the select/window pair is only used under the CHIPS lock with interrupts masked.
        unsafe {
            (self.base as *mut u32).write_volatile(reg);
            ((self.base + 0x10) as *const u32).read_volatile()
        }
    }

    fn write(&self, reg: u32, value: u32) {
        // SAFETY: as for `read`.
        unsafe {
            (self.base as *mut u32).write_volatile(reg);
            ((self.base + 0x10) as *mut u32).write_volatile(value);
        }
    }

    fn has(&self, gsi: u32) -> bool {
        gsi >= self.gsi_base && gsi < self.gsi_base + self.pins
    }
}

fn with_chip<R>(gsi: u32, f: impl FnOnce(&Chip, u32) -> R) -> Option<R> {
    super::cpu::without_interrupts(|| {
        let chips = CHIPS.lock();
        let chip = chips.chips.iter().flatten().find(|c| c.has(gsi))?;
        Some(f(chip, gsi - chip.gsi_base))
    })
}

/// Records the chips and masks every pin.
pub fn init(entries: &[IoApicEntry]) {
    super::cpu::without_interrupts(|| {
        let mut chips = CHIPS.lock();
        for (slot, e) in chips.chips.iter_mut().zip(entries.iter().take(MAX_IOAPICS)) {
            if e.address == 0 || e.address >= super::mm::DIRECT_MAP_LIMIT {
                continue;
            }
            let mut c = Chip { base: phys_to_virt(e.address), gsi_base: e.gsi_base, pins: 0 };
            c.pins = ((c.read(1) >> 16) & 0xff) + 1;
            for pin in 0..c.pins {
                c.write(0x10 + 2 * pin, REDIR_MASKED);
                c.write(0x11 + 2 * pin, 0);
            }
            *slot = Some(c);
        }
    })
}

/// Programs `line` (masked) to raise its vector on the boot CPU. False if no chip has it.
pub fn route(line: IrqLine) -> bool {
    if line.number >= MAX_GSI {
        return false;
    }
    let apic_id = super::apic::id();
    let mut low = (DEVICE_VECTOR_BASE as u32 + line.number) | REDIR_MASKED;
    if line.level {
        low |= REDIR_LEVEL;
    }
    if line.active_low {
        low |= REDIR_ACTIVE_LOW;
    }
    with_chip(line.number, |c, pin| {
        c.write(0x11 + 2 * pin, apic_id << 24);
        c.write(0x10 + 2 * pin, low);
    })
    .is_some()
}

fn set_masked(gsi: u32, masked: bool) {
    with_chip(gsi, |c, pin| {
        let v = c.read(0x10 + 2 * pin);
        c.write(0x10 + 2 * pin, if masked { v | REDIR_MASKED } else { v & !REDIR_MASKED });
    });
}

pub fn mask(gsi: u32) {
    set_masked(gsi, true)
}

pub fn unmask(gsi: u32) {
    set_masked(gsi, false)
}
