//! The `tty` server: the serial console as a Linux terminal. It owns the console device (output,
//! and input, which arrives by the UART's receive interrupt, as notifications), the
//! line discipline (`discipline.rs`) and the terminal's settings: termios, window size and
//! foreground process group. Its client is the Linux ABI server, which checks job-control rules
//! and delivers the signals the terminal raises; the tty knows nothing of processes.
//!
//! Restart policy *transparent*: the settings live in the state area (committed whenever they
//! change), so a new instance carries on with the same modes, size and foreground group; input
//! typed but not yet read when it dies is lost, and a write cut short by its death may be
//! repeated in part when the client retries it (docs/caveats.md).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod discipline;
pub mod termios;

use abi::proto::tty as proto;
use abi::Errno;
use alloc::vec::Vec;
use discipline::Discipline;
use server_rt::{kernel, log, CapRef, Cqe, Kernel, Sqe, StateWrite};
use termios::{Termios, TERMIOS_BYTES};

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;
const TCSBRKP: u64 = 0x5425;

/// How often console input is looked at while nothing else wakes the server.
const INPUT_POLL_NS: u64 = 5_000_000;

/// State-area layout: magic, termios, window size, foreground group.
const MAGIC: u64 = 0x7474_795f_7374_3031; // "tty_st01"
const STATE_BYTES: usize = 8 + TERMIOS_BYTES + 8 + 4;

struct Tty {
    k: &'static dyn Kernel,
    line: Discipline,
    /// rows, cols, xpixel, ypixel.
    winsize: [u16; 4],
    foreground: u32,
    /// Signals raised by input and not yet taken by the client (bit per signal number).
    signals: u64,
    client: Option<CapRef>,
}

impl Tty {
    fn restore(k: &'static dyn Kernel) -> Tty {
        let mut tty =
            Tty { k, line: Discipline::default(), winsize: [24, 80, 0, 0], foreground: 1, signals: 0, client: None };
        let mut b = [0u8; STATE_BYTES];
        if k.state_read(0, &mut b).is_ok() && b[..8] == MAGIC.to_le_bytes() {
            if let Some(t) = Termios::decode(&b[8..8 + TERMIOS_BYTES]) {
                tty.line = Discipline::new(t);
            }
            let w = &b[8 + TERMIOS_BYTES..];
            for (i, v) in tty.winsize.iter_mut().enumerate() {
                *v = u16::from_le_bytes([w[2 * i], w[2 * i + 1]]);
            }
            tty.foreground = u32::from_le_bytes(w[8..12].try_into().unwrap_or([0, 0, 0, 1]));
            log!("tty: settings carried over from the previous instance");
        }
        tty
    }

    /// Commits the settings to the state area (atomically, so a death never leaves half).
    fn save(&self) {
        let mut b = [0u8; STATE_BYTES];
        b[..8].copy_from_slice(&MAGIC.to_le_bytes());
        b[8..8 + TERMIOS_BYTES].copy_from_slice(&self.line.termios.encode());
        let w = &mut b[8 + TERMIOS_BYTES..];
        for (i, v) in self.winsize.iter().enumerate() {
            w[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
        }
        w[8..12].copy_from_slice(&self.foreground.to_le_bytes());
        if let Err(e) = self.k.state_commit(&[StateWrite::Bytes { offset: 0, data: &b }]) {
            log!("tty: cannot save settings: {e}");
        }
    }

    /// Runs console input through the line discipline; tells the client when a reader can go
    /// on or a signal was raised.
    fn poll_input(&mut self) {
        let mut buf = [0u8; 64];
        let mut wake = false;
        loop {
            let n = self.k.console_read(&mut buf);
            if n == 0 {
                break;
            }
            let mut echo = Vec::new();
            for &b in &buf[..n] {
                let fx = self.line.input(b);
                echo.extend_from_slice(&fx.echo);
                if let Some(s) = fx.signal {
                    self.signals |= 1 << s;
                }
            }
            if !echo.is_empty() {
                self.k.console_write(&echo);
            }
            wake = true;
        }
        if wake && (self.line.readable() || self.signals != 0) {
            self.notify_client();
        }
    }

    fn notify_client(&mut self) {
        let k = self.k;
        let cap = match self.client {
            Some(c) => c,
            None => match k.lookup("linux") {
                Ok(c) => *self.client.insert(c),
                Err(_) => return,
            },
        };
        if k.notify(cap, proto::NOTIFY_INPUT).is_err() {
            // The client restarted: look it up again next time.
            self.client = None;
        }
    }

    fn read(&mut self, req: &Sqe) -> Result<i64, Errno> {
        let len = (req.args[0] as usize).min(req.grant.len as usize);
        let data = self.line.read(len).ok_or(Errno::EAGAIN)?;
        self.k.grant_write(req.tag, 0, &data).map_err(|_| Errno::EFAULT)?;
        Ok(data.len() as i64)
    }

    fn write(&mut self, req: &Sqe) -> Result<i64, Errno> {
        let len = (req.args[0]).min(req.grant.len) as usize;
        let mut chunk = alloc::vec![0u8; len.min(4096)];
        let mut out = Vec::with_capacity(chunk.len() + 64);
        let mut done = 0usize;
        while done < len {
            let n = (len - done).min(chunk.len());
            if self.k.grant_read(req.tag, done as u64, &mut chunk[..n]).is_err() {
                return if done == 0 { Err(Errno::EFAULT) } else { Ok(done as i64) };
            }
            out.clear();
            self.line.output(&mut out, &chunk[..n]);
            self.k.console_write(&out);
            done += n;
        }
        Ok(done as i64)
    }

    fn ioctl(&mut self, req: &Sqe) -> Result<i64, Errno> {
        let [request, arg, ..] = req.args;
        let k = self.k;
        let put = |bytes: &[u8]| k.grant_write(req.tag, 0, bytes).map_err(|_| Errno::EFAULT);
        let get = |n: usize| server_rt::grant_bytes(req.tag, 0, n).map_err(|_| Errno::EFAULT);
        match request {
            TCGETS => put(&self.line.termios.encode())?,
            TCSETS | TCSETSW | TCSETSF => {
                let t = Termios::decode(&get(TERMIOS_BYTES)?).ok_or(Errno::EFAULT)?;
                if request == TCSETSF {
                    self.line.flush_input();
                }
                self.line.set_termios(t);
                self.save();
                if self.line.readable() {
                    self.notify_client();
                }
            }
            TIOCGWINSZ => {
                let mut b = [0u8; 8];
                for (i, v) in self.winsize.iter().enumerate() {
                    b[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
                }
                put(&b)?
            }
            TIOCSWINSZ => {
                let b = get(8)?;
                for (i, v) in self.winsize.iter_mut().enumerate() {
                    *v = u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
                }
                self.save();
            }
            TIOCGPGRP => put(&self.foreground.to_le_bytes())?,
            TIOCSPGRP => {
                let b = get(4)?;
                self.foreground = u32::from_le_bytes(b.try_into().map_err(|_| Errno::EFAULT)?);
                self.save();
            }
            FIONREAD => put(&(self.line.pending() as u32).to_le_bytes())?,
            TIOCOUTQ => put(&0u32.to_le_bytes())?,
            TCFLSH => match arg {
                0 | 2 => self.line.flush_input(),
                1 => {}
                _ => return Err(Errno::EINVAL),
            },
            TCXONC => {
                if arg > 3 {
                    return Err(Errno::EINVAL);
                }
            }
            // Output is written synchronously: draining and breaks have nothing to wait for.
            TCSBRK | TCSBRKP => {}
            _ => return Err(Errno::ENOTTY),
        }
        Ok(0)
    }

    fn handle(&mut self, req: &Sqe) -> Cqe {
        let mut reply = Cqe::new(req.tag, 0);
        let r = match req.opcode {
            proto::READ => self.read(req),
            proto::WRITE => self.write(req),
            proto::IOCTL => self.ioctl(req),
            proto::POLL => {
                let mut bits = proto::POLLOUT;
                if self.line.readable() {
                    bits |= proto::POLLIN;
                }
                Ok(bits as i64)
            }
            proto::TAKE_SIGNALS => {
                reply.aux = self.foreground as u64;
                Ok(core::mem::take(&mut self.signals) as i64)
            }
            _ => Err(Errno::ENOSYS),
        };
        reply.result = r.unwrap_or_else(|e| e.as_return());
        reply
    }
}

/// Notification bit of the console's receive interrupt.
const CONSOLE_IRQ: u64 = 1 << 1;

/// Claims the console's receive interrupt (on the first request: in the nucleus's own tests no
/// client ever comes, and the test driver may want the device itself).
fn bind_console(k: &dyn Kernel) -> Option<server_rt::DeviceRef> {
    let (dev, info) = k.device_open(server_rt::DeviceClass::Console, 0).ok()?;
    if !info.has_irq || k.irq_bind(dev, CONSOLE_IRQ).is_err() {
        let _ = k.device_close(dev);
        return None;
    }
    Some(dev)
}

/// Server entry.
pub fn main() {
    let k = kernel();
    let mut tty = Tty::restore(k);
    let mut irq: Option<server_rt::DeviceRef> = None;
    let mut tried_irq = false;
    let mut next = None;
    loop {
        // With the interrupt bound, input wakes the server; without it, it polls.
        let req = match next.take() {
            Some(r) => Some(r),
            None if irq.is_some() => match k.receive() {
                Ok(r) => Some(r),
                Err(e) => panic!("tty: receive failed: {e}"),
            },
            None => match k.receive_timeout(INPUT_POLL_NS) {
                Ok(r) => r,
                Err(e) => panic!("tty: receive failed: {e}"),
            },
        };
        // Input is taken only once a client has asked for something: until then it stays in
        // the UART for whoever owns the console (the nucleus's tests drive it themselves).
        if tried_irq {
            tty.poll_input();
        }
        let Some(req) = req else { continue };
        if req.is_notification() {
            if let (Some(dev), true) = (irq, req.args[0] & CONSOLE_IRQ != 0) {
                let _ = k.irq_ack(dev);
                tty.poll_input(); // what arrived between the read and the acknowledgement
            }
            continue;
        }
        if !tried_irq {
            tried_irq = true;
            irq = bind_console(k);
            if irq.is_none() {
                log!("tty: no console interrupt: polling input every {} ms", INPUT_POLL_NS / 1_000_000);
            }
            tty.poll_input();
        }
        let reply = tty.handle(&req);
        next = match irq {
            Some(_) => k.reply_and_receive(&reply).map(Some),
            None => k.reply_and_receive_timeout(&reply, INPUT_POLL_NS),
        }
        .unwrap_or_else(|e| panic!("tty: receive failed: {e}"));
    }
}
