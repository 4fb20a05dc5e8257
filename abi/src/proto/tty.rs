//! The terminal protocol: what the Linux ABI server asks of `tty`, the console's server. The
//! tty server owns the serial console (output, and input with its interrupt), the line
//! discipline (canonical and raw modes, echo, erase and kill, ISIG characters, ICRNL, OPOST and
//! ONLCR) and the terminal's settings (termios, window size, foreground process group). It
//! knows nothing of processes: the Linux server checks job-control rules and delivers the
//! signals the tty reports.
//!
//! Reads never block the tty server: with no input it answers EAGAIN, and notifies its client
//! (bit [`NOTIFY_INPUT`]) when input or a signal arrives, so that the client retries.

/// `args = [len]`; input into the grant. Result: bytes, 0 at end of file (^D), EAGAIN when
/// nothing is ready.
pub const READ: u32 = 1;
/// `args = [len]`; output from the grant. Result: bytes written.
pub const WRITE: u32 = 2;
/// `args = [request, arg]`; the ioctl's structure in/out of the grant at 0 (termios: 36 bytes,
/// winsize: 8 bytes, pgrp: 4 bytes). Result: 0 or an errno (ENOTTY for unknown requests).
pub const IOCTL: u32 = 3;
/// Result: readiness bits (POLLIN when input or end of file is ready; POLLOUT always).
pub const POLL: u32 = 4;
/// Takes the signals that input raised since the last call: result = a bit mask (1 << signo),
/// `aux` = the foreground process group they are for.
pub const TAKE_SIGNALS: u32 = 5;

/// Notification bit the tty sets on its client when input or a signal is ready.
pub const NOTIFY_INPUT: u64 = 1;

pub const POLLIN: u16 = 0x1;
pub const POLLOUT: u16 = 0x4;

/// Opcode names, for traces.
pub const OPCODES: &[(u32, &str)] =
    &[(READ, "read"), (WRITE, "write"), (IOCTL, "ioctl"), (POLL, "poll"), (TAKE_SIGNALS, "take_signals")];
