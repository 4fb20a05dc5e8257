//! The CMOS real-time clock (ports 0x70/0x71): read once at boot for the wall-clock epoch.
//! Handles BCD and binary modes and 12-hour clocks, waits out an update in progress, and reads
//! twice until two reads agree (the registers may roll over between bytes).

use super::io::{inb, outb};
use crate::clock::unix_seconds_from_date;

fn reg(r: u8) -> u8 {
    // Bit 7 of the index port keeps NMIs enabled as they were (QEMU ignores it).
    outb(0x70, r);
    inb(0x71)
}

fn read_once() -> [u8; 7] {
    for _ in 0..100_000 {
        if reg(0x0a) & 0x80 == 0 {
            break;
        }
    }
    [reg(0x00), reg(0x02), reg(0x04), reg(0x07), reg(0x08), reg(0x09), reg(0x32)]
}

/// Seconds since the Unix epoch, if the clock reads sensibly.
pub fn unix_seconds() -> Option<u64> {
    let mut a = read_once();
    for _ in 0..5 {
        let b = read_once();
        if a == b {
            break;
        }
        a = b;
    }
    let status_b = reg(0x0b);
    let bcd = status_b & 0x04 == 0;
    let dec = |v: u8| if bcd { (v & 0x0f) + (v >> 4) * 10 } else { v };
    let [s, m, h, day, month, year, century] = a;
    let pm = h & 0x80 != 0;
    let mut hour = dec(h & 0x7f);
    if status_b & 0x02 == 0 {
        // 12-hour clock: 12 AM is 0, 12 PM is 12.
        hour = (hour % 12) + if pm { 12 } else { 0 };
    }
    let century = match dec(century) {
        19..=21 => dec(century) as u64,
        _ => 20,
    };
    let year = century * 100 + dec(year) as u64;
    unix_seconds_from_date(year, dec(month) as u64, dec(day) as u64, hour as u64, dec(m) as u64, dec(s) as u64)
}
