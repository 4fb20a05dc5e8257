//! The local APIC (xAPIC, MMIO through the direct map) and the legacy chips around it: the 8259
//! PICs are remapped out of the exception range and masked, and the PIT is used once to
//! calibrate the APIC timer and the TSC.

use super::io::{inb, outb, rdmsr};
use super::mm::phys_to_virt;
use core::sync::atomic::{AtomicU64, Ordering};

pub const TIMER_VECTOR: u8 = 0x20;
pub const SPURIOUS_VECTOR: u8 = 0xff;

const REG_ID: u64 = 0x20;
const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INIT: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;

static APIC_BASE: AtomicU64 = AtomicU64::new(0);

fn reg(offset: u64) -> *mut u32 {
    (APIC_BASE.load(Ordering::Relaxed) + offset) as *mut u32
}

fn read(offset: u64) -> u32 {
    // SAFETY: APIC_BASE is the direct-map address of this CPU's LAPIC page (set in `init`).
    unsafe { reg(offset).read_volatile() }
}

fn write(offset: u64, value: u32) {
    // SAFETY: as for `read`.
    unsafe { reg(offset).write_volatile(value) }
}

/// Remaps and masks the 8259s, then software-enables the local APIC.
pub fn init() {
    // ICW1..ICW4: remap the PICs to 0xe0/0xe8 so that a stray legacy IRQ never looks like an
    // exception or the APIC timer; then mask every line.
    for (cmd, data, offset, cascade) in [(0x20u16, 0x21u16, 0xe0u8, 4u8), (0xa0, 0xa1, 0xe8, 2)] {
        outb(cmd, 0x11);
        outb(data, offset);
        outb(data, cascade);
        outb(data, 0x01);
        outb(data, 0xff);
    }
    let base = rdmsr(0x1b) & 0xf_ffff_f000;
    APIC_BASE.store(phys_to_virt(base), Ordering::Relaxed);
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
}

pub fn id() -> u32 {
    read(REG_ID) >> 24
}

pub fn eoi() {
    write(REG_EOI, 0);
}

/// Waits ~10 ms on PIT channel 2 while `sample` counts; returns the elapsed PIT time in ns.
pub fn pit_wait_10ms() -> u64 {
    const PIT_HZ: u64 = 1_193_182;
    let count: u16 = (PIT_HZ / 100) as u16;
    let gate = inb(0x61) & 0xfc;
    outb(0x61, gate); // gate low, speaker off
    outb(0x43, 0xb0); // channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count)
    outb(0x42, count as u8);
    outb(0x42, (count >> 8) as u8);
    outb(0x61, gate | 1); // gate high: counting starts
    while inb(0x61) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    count as u64 * 1_000_000_000 / PIT_HZ
}

/// Measures the APIC timer against the PIT and starts it in periodic mode at `hz`.
/// Returns the APIC timer's input frequency (after the divider) in Hz.
pub fn start_timer(hz: u32) -> u64 {
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    write(REG_LVT_TIMER, 1 << 16); // masked, one-shot
    write(REG_TIMER_INIT, u32::MAX);
    let ns = pit_wait_10ms();
    let elapsed = (u32::MAX - read(REG_TIMER_CURRENT)) as u64;
    let freq = (elapsed * 1_000_000_000 / ns.max(1)).max(1000);
    write(REG_TIMER_INIT, 0);
    write(REG_LVT_TIMER, TIMER_VECTOR as u32 | (1 << 17)); // periodic
    write(REG_TIMER_INIT, ((freq / hz.max(1) as u64).max(1)) as u32);
    freq
}
