//! Leaving the machine: QEMU's `isa-debug-exit` device (port 0xf4) makes QEMU exit with status
//! `(code << 1) | 1`; the `@@POWEROFF <code>` line the nucleus prints first is the authoritative
//! code for the host. Without the device we fall back to ACPI S5 on the PM1a control ports of
//! QEMU's PIIX4 (`pc`) and ICH9 (`q35`) chipsets, then to halting.

use super::io::{outl, outw};

pub fn poweroff(code: u32) -> ! {
    super::cpu::disable_interrupts();
    super::console::wait_transmitted();
    outl(0xf4, code);
    // PM1a_CNT: SLP_TYP = 5 (S5) | SLP_EN.
    for port in [0x604u16, 0xb004] {
        outw(port, 0x2000 | (5 << 10));
    }
    super::cpu::halt_forever()
}
