//! Kernel messages on the boot console: `kprint!`/`kprintln!`, with `\n` sent as `\r\n` so that
//! a raw terminal shows lines. Formatting happens here, never in trace points.

use core::fmt::{self, Write};
use spin::Mutex;

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.split_inclusive('\n') {
            match chunk.strip_suffix('\n') {
                Some(line) => {
                    arch::console::write_bytes(line.as_bytes());
                    arch::console::write_bytes(b"\r\n");
                }
                None => arch::console::write_bytes(chunk.as_bytes()),
            }
        }
        Ok(())
    }
}

/// Serialises whole messages so that lines from different tasks do not interleave.
static LOCK: Mutex<()> = Mutex::new(());

#[doc(hidden)]
pub fn print(args: fmt::Arguments) {
    arch::cpu::without_interrupts(|| {
        let _guard = LOCK.lock();
        let _ = Console.write_fmt(args);
    });
}

/// Writes without taking the lock: for fatal reports, where the lock holder may be the culprit.
pub fn print_unlocked(args: fmt::Arguments) {
    let _ = Console.write_fmt(args);
}

#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::log::print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! kprintln {
    () => { $crate::log::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::log::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// A short line assembled piece by piece before printing (fixed size, no heap; longer text is
/// cut off).
pub struct Line {
    buf: [u8; 192],
    len: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line { buf: [0; 192], len: 0 }
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                break;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}
