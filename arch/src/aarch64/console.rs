//! The boot console: the PL011 UART of QEMU's `virt` machine (physical 0x0900_0000, SPI 1),
//! reached through the device part of the direct map. Raw bytes in both directions; newline
//! translation is the caller's business (the nucleus's printer for kernel messages, the tty
//! server's line discipline for user output). One lock serialises writers; the fatal-fault path
//! has an unlocked variant. The trace port is not a UART here: see [`trace_port_present`].

use super::mm::phys_to_virt;
use spin::Mutex;

/// Physical base of the PL011 on `virt`.
pub const PL011_PHYS: u64 = 0x0900_0000;
/// GIC interrupt id of the PL011 (SPI 1).
pub const IRQ: u32 = 33;

const DR: u64 = 0x00;
const FR: u64 = 0x18;
const LCR_H: u64 = 0x2c;
const CR: u64 = 0x30;
const IMSC: u64 = 0x38;

const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;

/// Whether the UART has been set up (taken under the lock).
static PORT: Mutex<bool> = Mutex::new(false);

fn reg(offset: u64) -> *mut u32 {
    phys_to_virt(PL011_PHYS + offset) as *mut u32
}

fn read(offset: u64) -> u32 {
    // SAFETY: a PL011 register in the device part of the direct map (mapped from boot on).
    unsafe { reg(offset).read_volatile() }
}

fn write(offset: u64, value: u32) {
    // SAFETY: as for `read`.
    unsafe { reg(offset).write_volatile(value) }
}

fn send(b: u8) {
    while read(FR) & FR_TXFF != 0 {
        core::hint::spin_loop();
    }
    write(DR, b as u32);
}

fn with_port<R>(f: impl FnOnce() -> R) -> R {
    super::cpu::without_interrupts(|| {
        let mut ready = PORT.lock();
        if !*ready {
            // 8 bits, FIFOs on; UART, transmitter and receiver enabled. QEMU ignores the baud
            // rate, so the divisors are left as they are.
            write(LCR_H, 0x70);
            write(CR, 0x301);
            *ready = true;
        }
        f()
    })
}

/// Blocking write of raw bytes.
pub fn write_bytes(bytes: &[u8]) {
    with_port(|| bytes.iter().for_each(|&b| send(b)));
}

/// Non-blocking read of one byte.
pub fn read_byte() -> Option<u8> {
    with_port(|| (read(FR) & FR_RXFE == 0).then(|| read(DR) as u8))
}

/// Receive and receive-timeout interrupt mask bits.
const IMSC_RX: u32 = (1 << 4) | (1 << 6);

/// Lets the UART raise [`IRQ`] when a byte arrives (the nucleus routes and unmasks the line,
/// see `dev::console_irq`).
pub fn enable_rx_interrupt() {
    with_port(|| write(IMSC, IMSC_RX));
}

/// Stops receive interrupts (the driver that bound them died or closed the console).
pub fn disable_rx_interrupt() {
    with_port(|| write(IMSC, 0));
}

/// Last-resort write that ignores the lock (used by the fatal-fault path when the lock holder
/// may be the code that faulted).
pub fn write_bytes_unlocked(bytes: &[u8]) {
    bytes.iter().for_each(|&b| send(b));
}

/// A `fmt::Write` sink straight to the UART, for reports written before any logger exists.
pub struct RawWriter;

impl core::fmt::Write for RawWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_bytes_unlocked(s.as_bytes());
        Ok(())
    }
}

/// The trace port: `virt` has a single PL011, so traces stream to a virtio console instead
/// ([`crate::virtcon`]), if QEMU was given one and the nucleus offered it ([`trace_port_offer`]).
pub fn trace_port_present() -> bool {
    crate::virtcon::present()
}

/// Offers a device found at boot as the trace port (`regs`: its mapped register windows;
/// `alloc`: `n` contiguous frames). True if it was taken: a virtio-mmio console, the first one.
pub fn trace_port_offer(
    dev: &crate::devinfo::FoundDevice,
    regs: &[u64; crate::devinfo::MAX_DEVICE_REGIONS],
    alloc: &mut dyn FnMut(usize) -> Option<u64>,
) -> bool {
    crate::virtcon::attach_mmio(dev, regs[0], alloc)
}

/// Queues raw bytes for the trace port, all or nothing. False (nothing written) without a port
/// or when the device has not given back enough buffers.
pub fn trace_port_write(bytes: &[u8]) -> bool {
    crate::virtcon::write(bytes)
}

/// Writes raw bytes to the trace port like [`trace_port_write`], but from where they are
/// (`virtcon::send_in_place`: returns once the device has read them; physically contiguous
/// kernel memory only).
pub fn trace_port_send(bytes: &[u8]) -> bool {
    crate::virtcon::send_in_place(bytes)
}

/// The most bytes one [`trace_port_send`] should carry (one notification's worth).
pub fn trace_port_burst() -> usize {
    64 << 10
}

/// Sends the bytes queued by [`trace_port_write`] now.
pub fn trace_port_flush() {
    crate::virtcon::flush()
}

/// Takes the bytes the host has sent on the trace port (its control direction) into `buf`;
/// returns how many (0 without a port).
pub fn trace_port_read(buf: &mut [u8]) -> usize {
    crate::virtcon::read(buf)
}
