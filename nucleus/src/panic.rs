//! What happens when Rust code panics inside the kernel image. A panic in the nucleus itself is
//! fatal: report it clearly and power off with a nonzero code so that tests never hang.
//! (Once servers run as tasks, a panic on a server's stack kills that server instead.)

use core::panic::PanicInfo;

/// Exit code for a nucleus panic.
pub const EXIT_NUCLEUS_PANIC: u32 = 2;
/// Exit code for a fatal CPU exception in the nucleus.
pub const EXIT_NUCLEUS_FAULT: u32 = 3;

pub fn on_panic(info: &PanicInfo) -> ! {
    arch::cpu::disable_interrupts();
    crate::log::print_unlocked(format_args!("\nNUCLEUS PANIC: {info}\n"));
    crate::poweroff(EXIT_NUCLEUS_PANIC)
}
