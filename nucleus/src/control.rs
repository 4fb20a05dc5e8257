//! The host's control channel: fault-injection commands the host sends on the trace port
//! (COM2 on x86_64, the virtio console on AArch64: the port's receive direction), so that a
//! test harness can kill a server at a moment of its choosing without going through the
//! guest — which would need the very servers it may be killing.
//!
//! A command is one line, `<server> <command>`, the command as the guest's
//! `/sys/kernel/servers/<server>/fault` file takes it (`server_rt::FaultCommand`): `vfs kill`,
//! `tty panic`, `ramfs random 50 7`, `ramfs stop`. The timer tick polls the port (one status
//! read when nothing came), assembles lines, and carries each one out at once, in the tick,
//! exactly as `fi=` injection does; every line is answered on the console with
//! `control: <line>: ok` or the reason it was refused, so that the host can tell it arrived.
//! Without a port nothing is polled.

use crate::{inject, servers};
use server_rt::FaultCommand;
use spin::Mutex;

/// The longest command line; longer ones are refused whole.
const LINE_MAX: usize = 96;

struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
    /// The line overflowed: refuse it at its end.
    overflow: bool,
}

static LINE: Mutex<Line> = Mutex::new(Line { buf: [0; LINE_MAX], len: 0, overflow: false });

/// From the timer tick (interrupts masked): takes what the host sent and carries out every
/// complete line.
pub fn on_tick() {
    if !arch::console::trace_port_present() {
        return;
    }
    let mut bytes = [0u8; 512];
    let n = arch::console::trace_port_read(&mut bytes);
    if n == 0 {
        return;
    }
    let mut line = LINE.lock();
    for &b in &bytes[..n] {
        match b {
            b'\n' | b'\r' => {
                let (len, overflow) = (line.len, line.overflow);
                line.len = 0;
                line.overflow = false;
                if overflow {
                    crate::kprintln!("control: a line longer than {LINE_MAX} bytes: refused");
                } else if len > 0 {
                    let text = line.buf;
                    execute(core::str::from_utf8(&text[..len]).unwrap_or("").trim());
                }
            }
            _ if line.len == LINE_MAX => line.overflow = true,
            _ => {
                let at = line.len;
                line.buf[at] = b;
                line.len += 1;
            }
        }
    }
}

/// Carries out one command line.
fn execute(line: &str) {
    if line.is_empty() {
        return;
    }
    let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
    let Some(server) = servers::specs().iter().position(|s| s.name == name) else {
        crate::kprintln!("control: {line}: no server named '{name}'");
        return;
    };
    let Some(command) = FaultCommand::parse(rest) else {
        crate::kprintln!("control: {line}: expected kill, panic, fault, hang, random <ms> [seed] or stop");
        return;
    };
    crate::kprintln!("control: {line}: ok");
    match command {
        FaultCommand::Now(kind) => inject::fire(server, kind),
        FaultCommand::Random { period_ms, seed } => inject::set_random(server, period_ms, seed),
        FaultCommand::Stop => inject::set_random(server, 0, 0),
    }
}
