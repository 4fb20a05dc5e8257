//! What happens when Rust code panics inside the kernel image. A panic in a server's own code
//! kills that server (its message kept as the death cause) and the system goes on. A panic in
//! the nucleus itself is fatal: report it clearly and power off with a nonzero code so that
//! tests never hang.

use core::fmt::Write;
use core::panic::PanicInfo;
use server_rt::DeathCause;

/// Exit code for a nucleus panic.
pub const EXIT_NUCLEUS_PANIC: u32 = 2;
/// Exit code for a fatal CPU exception in the nucleus.
pub const EXIT_NUCLEUS_FAULT: u32 = 3;

/// Formats into a fixed buffer, truncating: a panic path must not allocate.
struct FixedBuf {
    buf: [u8; 96],
    len: usize,
}

impl Write for FixedBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
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

pub fn on_panic(info: &PanicInfo) -> ! {
    arch::cpu::disable_interrupts();
    if crate::traps::server_is_running() {
        let mut m = FixedBuf { buf: [0; 96], len: 0 };
        let _ = write!(m, "{}", info.message());
        if let Some(l) = info.location() {
            let _ = write!(m, " at {}:{}", l.file(), l.line());
        }
        // Keep only whole UTF-8 characters.
        let len = match core::str::from_utf8(&m.buf[..m.len]) {
            Ok(_) => m.len,
            Err(e) => e.valid_up_to(),
        };
        crate::death::kill_current(DeathCause::Panic { message: m.buf, len });
    }
    crate::log::print_unlocked(format_args!("\nNUCLEUS PANIC: {info}\n"));
    crate::poweroff(EXIT_NUCLEUS_PANIC)
}
