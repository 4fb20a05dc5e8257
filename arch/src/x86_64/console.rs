//! The boot console: the first 16550 UART (COM1, port 0x3f8) that QEMU connects to `-serial`.
//! Raw bytes in both directions; newline translation is the caller's business (the nucleus's
//! printer for kernel messages, the tty server's line discipline for user output).

use core::sync::atomic::{AtomicU8, Ordering};
use spin::Mutex;
use uart_16550::SerialPort;

static COM1: Mutex<Option<SerialPort>> = Mutex::new(None);

fn with_port<R>(f: impl FnOnce(&mut SerialPort) -> R) -> R {
    super::cpu::without_interrupts(|| {
        let mut guard = COM1.lock();
        let port = guard.get_or_insert_with(|| {
            // SAFETY: 0x3f8 is COM1 on every PC machine QEMU emulates; we are its only user.
            let mut p = unsafe { SerialPort::new(0x3f8) };
            p.init();
            p
        });
        f(port)
    })
}

/// Blocking write of raw bytes.
pub fn write_bytes(bytes: &[u8]) {
    with_port(|p| bytes.iter().for_each(|&b| p.send_raw(b)));
}

/// Non-blocking read of one byte.
pub fn read_byte() -> Option<u8> {
    with_port(|p| p.try_receive().ok())
}

/// Lets the UART raise an interrupt when a byte arrives (ISA IRQ 4; the nucleus routes the
/// line, see `dev::console_irq`). Output stays polled.
/// Waits (at most ~a million status reads) until COM1 has sent everything written to it: QEMU
/// holds bytes in the UART's FIFO while the host side of `-serial` cannot take them, and
/// leaving QEMU then (power-off) would lose them, the `@@POWEROFF` line among them.
pub fn wait_transmitted() {
    /// Line status register bit: the FIFO and the shift register are empty.
    const LSR_TEMT: u8 = 1 << 6;
    for _ in 0..1_000_000 {
        if super::io::inb(0x3f8 + 5) & LSR_TEMT != 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

pub fn enable_rx_interrupt() {
    with_port(|_| super::io::outb(0x3f8 + 1, 0x01));
}

/// Stops receive interrupts (the driver that bound them died or closed the console).
pub fn disable_rx_interrupt() {
    with_port(|_| super::io::outb(0x3f8 + 1, 0x00));
}

/// Last-resort write that ignores the lock (used by the fatal-fault path when the lock holder
/// may be the code that faulted).
pub fn write_bytes_unlocked(bytes: &[u8]) {
    // SAFETY: COM1 is a fixed legacy port; a concurrent user at worst interleaves bytes.
    let mut p = unsafe { SerialPort::new(0x3f8) };
    bytes.iter().for_each(|&b| p.send_raw(b));
}

/// A `fmt::Write` sink straight to the UART, for reports written before any logger exists.
pub struct RawWriter;

impl core::fmt::Write for RawWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_bytes_unlocked(s.as_bytes());
        Ok(())
    }
}

/// The second UART (COM2, 0x2f8), used as the trace transport when QEMU provides it.
static COM2: Mutex<Option<SerialPort>> = Mutex::new(None);
/// Whether COM2 answered: 0 = not probed yet, 1 = absent, 2 = present.
static COM2_STATE: AtomicU8 = AtomicU8::new(0);

/// The trace port: a virtio console on PCI if QEMU was given one (taken at discovery,
/// [`trace_port_offer`]; ~100 times faster: a page per notification), else COM2 if a UART
/// answers there (QEMU `-serial` given twice).
pub fn trace_port_present() -> bool {
    crate::virtcon::present() || com2_present()
}

/// Whether a UART answers at COM2 (its scratch register keeps a written value; an absent port
/// reads back 0xff). Probed once.
fn com2_present() -> bool {
    match COM2_STATE.load(Ordering::Relaxed) {
        0 => {
            let present = super::cpu::without_interrupts(|| {
                super::io::outb(0x2f8 + 7, 0x5a);
                let a = super::io::inb(0x2f8 + 7);
                super::io::outb(0x2f8 + 7, 0xa5);
                a == 0x5a && super::io::inb(0x2f8 + 7) == 0xa5
            });
            COM2_STATE.store(if present { 2 } else { 1 }, Ordering::Relaxed);
            present
        }
        s => s == 2,
    }
}

/// Offers a device found at boot as the trace port (`regs`: its mapped memory windows, by BAR;
/// `alloc`: `n` contiguous frames). True if it was taken: the first modern virtio-pci console,
/// set up through the common configuration and notification structures its capabilities
/// point at.
pub fn trace_port_offer(
    dev: &crate::devinfo::FoundDevice,
    regs: &[u64; crate::devinfo::MAX_DEVICE_REGIONS],
    alloc: &mut dyn FnMut(usize) -> Option<u64>,
) -> bool {
    let crate::devinfo::Bus::Pci { bus, device, function } = dev.bus else { return false };
    if dev.virtio_type != 3 || crate::virtcon::present() {
        return false;
    }
    let Some(caps) = super::pci::virtio_caps(dev, regs) else { return false };
    let cmd = super::pci::read(bus, device, function, crate::devinfo::pci::STATUS_COMMAND) & 0xffff;
    let on =
        crate::devinfo::pci::CMD_MEMORY | crate::devinfo::pci::CMD_BUS_MASTER | crate::devinfo::pci::CMD_INTX_DISABLE;
    super::pci::write(bus, device, function, crate::devinfo::pci::STATUS_COMMAND, cmd | on);
    // A queue's notification address, if its 16-bit register lies inside the mapped area.
    let notify = |q: u16| {
        let at = crate::virtcon::pci_queue_notify_off(caps.common, q) * caps.notify_multiplier as u64;
        if at + 2 <= caps.notify_len {
            caps.notify + at
        } else {
            0
        }
    };
    let taken = crate::virtcon::attach_pci(caps.common, [notify(0), notify(1)], alloc);
    if !taken {
        super::pci::write(bus, device, function, crate::devinfo::pci::STATUS_COMMAND, cmd);
    }
    taken
}

/// Runs `f` with COM2 set up (once) and locked, interrupts masked.
fn with_com2<R>(f: impl FnOnce() -> R) -> R {
    super::cpu::without_interrupts(|| {
        let mut guard = COM2.lock();
        guard.get_or_insert_with(|| {
            // SAFETY: 0x2f8 is COM2 on the PC machines QEMU emulates; the nucleus's trace
            // and control modules are its only users, through this lock.
            let mut p = unsafe { SerialPort::new(0x2f8) };
            p.init();
            p
        });
        f()
    })
}

/// COM2's transmit FIFO: `SerialPort::init` enables the 16550A's 16-byte FIFOs.
const FIFO_BYTES: usize = 16;
/// Line status register bit: the transmit holding register (the whole FIFO) is empty.
const LSR_THRE: u8 = 1 << 5;

/// Writes raw bytes to the trace port (the virtio console, else COM2; all or nothing). Returns
/// false (writing nothing) without one. On COM2 the line status is polled once per 16 bytes
/// (an empty FIFO takes 16), not once per byte: under TCG every port access is an exit to QEMU,
/// and the port is the stream's bottleneck.
pub fn trace_port_write(bytes: &[u8]) -> bool {
    if crate::virtcon::present() {
        return crate::virtcon::write(bytes);
    }
    if !com2_present() {
        return false;
    }
    with_com2(|| {
        for chunk in bytes.chunks(FIFO_BYTES) {
            while super::io::inb(0x2f8 + 5) & LSR_THRE == 0 {
                core::hint::spin_loop();
            }
            chunk.iter().for_each(|&b| super::io::outb(0x2f8, b));
        }
        true
    })
}

/// Writes raw bytes to the trace port like [`trace_port_write`], but from where they are: the
/// virtio console reads them in place (`virtcon::send_in_place`, which returns once it has, and
/// needs physically contiguous kernel memory); COM2 writes them out before returning anyway.
pub fn trace_port_send(bytes: &[u8]) -> bool {
    if crate::virtcon::present() {
        return crate::virtcon::send_in_place(bytes);
    }
    trace_port_write(bytes)
}

/// The most bytes one [`trace_port_send`] should carry, so that a caller with a time budget
/// checks the clock often enough: 64 KiB to the virtio console (one notification), a page to
/// COM2 (about 30 ms of it).
pub fn trace_port_burst() -> usize {
    if crate::virtcon::present() {
        64 << 10
    } else {
        4 << 10
    }
}

/// Sends what the virtio console has queued (nothing is buffered on the way to COM2).
pub fn trace_port_flush() {
    crate::virtcon::flush()
}

/// Line status register bit: a received byte waits in the receive buffer.
const LSR_DATA_READY: u8 = 1;

/// Takes the bytes the host has sent on the trace port (its control direction) into `buf`;
/// returns how many (0 without a port). One status read when nothing came.
pub fn trace_port_read(buf: &mut [u8]) -> usize {
    if crate::virtcon::present() {
        return crate::virtcon::read(buf);
    }
    if !com2_present() {
        return 0;
    }
    with_com2(|| {
        let mut n = 0;
        while n < buf.len() && super::io::inb(0x2f8 + 5) & LSR_DATA_READY != 0 {
            buf[n] = super::io::inb(0x2f8);
            n += 1;
        }
        n
    })
}
