//! The PL031 real-time clock of QEMU's `virt` machine (physical 0x0901_0000, in the device GiB
//! of the direct map): its data register counts seconds since the Unix epoch. Read once at boot
//! for the wall-clock epoch.

const PL031_PHYS: u64 = 0x0901_0000;
/// PrimeCell peripheral id register 0 (0x31 for a PL031).
const PERIPH_ID0: u64 = 0xfe0;

/// Seconds since the Unix epoch, if a PL031 answers.
pub fn unix_seconds() -> Option<u64> {
    let base = super::mm::phys_to_virt(PL031_PHYS);
    // SAFETY: the PL031's registers, in the device part of the direct map (mapped from boot on
    // as device memory); 32-bit reads of its data and id registers have no side effects.
    let (id, secs) = unsafe {
        (core::ptr::read_volatile((base + PERIPH_ID0) as *const u32), core::ptr::read_volatile(base as *const u32))
    };
    (id & 0xff == 0x31 && secs != 0).then_some(secs as u64)
}
