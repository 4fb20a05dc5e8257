//! signalfd(2): pending signals read from a descriptor instead of delivered to a handler. A
//! signalfd holds a mask; a read takes signals of that mask pending for the reading thread
//! (its own queue first, then the process's) as 128-byte `struct signalfd_siginfo` records,
//! as many as fit, blocking (or EAGAIN) while there are none. The signals are normally
//! blocked, so nothing else takes them first. Readable while such a signal is pending for
//! the thread that asks.

use crate::files::{Anon, Object};
use crate::process::{read_bytes, write_bytes};
use crate::sys::open::install_object;
use crate::sys::signal::{take_pending, SigInfo, SIGCHLD, UNBLOCKABLE};
use crate::{Ctx, Linux, Outcome};
use abi::Errno;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

const SFD_NONBLOCK: u64 = 0o4000;
const SFD_CLOEXEC: u64 = 0o2000000;

/// `struct signalfd_siginfo`.
const RECORD: usize = 128;

const SI_QUEUE: i32 = -1;
const SI_TIMER: i32 = -2;

pub struct SignalFd {
    pub mask: u64,
}

pub fn signalfd4(l: &mut Linux, c: &Ctx) -> Outcome {
    create(l, c, c.args[0], c.args[1], c.args[2], c.args[3])
}

pub fn signalfd(l: &mut Linux, c: &Ctx) -> Outcome {
    create(l, c, c.args[0], c.args[1], c.args[2], 0)
}

fn create(l: &mut Linux, c: &Ctx, fd: u64, mask: u64, size: u64, flags: u64) -> Outcome {
    if size != 8 || flags & !(SFD_NONBLOCK | SFD_CLOEXEC) != 0 {
        return Errno::EINVAL.into();
    }
    let mask = match read_bytes(l, c.pid, mask, 8) {
        Ok(b) => u64::from_le_bytes(b.try_into().unwrap_or_default()) & !UNBLOCKABLE,
        Err(e) => return e.into(),
    };
    if fd as i64 as i32 != -1 {
        // A new mask for an existing signalfd.
        let file = match crate::sys::rw::file_of(l, c, fd) {
            Ok(f) => f,
            Err(e) => return e.into(),
        };
        let f = file.borrow();
        return match &f.object {
            Object::Anon(Anon::SignalFd(s)) => {
                s.borrow_mut().mask = mask;
                Outcome::Done(fd as i64)
            }
            _ => Errno::EINVAL.into(),
        };
    }
    let object = Object::Anon(Anon::SignalFd(Rc::new(RefCell::new(SignalFd { mask }))));
    install_object(l, c.pid, object, flags).map(|fd| fd as i64).into()
}

/// The record of one signal, with the fields its kind carries (as Linux fills them).
fn record(i: &SigInfo) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &i.signo.to_le_bytes());
    put(4, &i.errno.to_le_bytes());
    put(8, &i.code.to_le_bytes());
    match i.code {
        SI_TIMER => {
            put(24, &(i.timer as u32).to_le_bytes());
            put(32, &(i.overrun as u32).to_le_bytes());
            put(44, &(i.value as i32).to_le_bytes());
            put(48, &i.value.to_le_bytes());
        }
        c if c > 0 && i.signo == SIGCHLD => {
            put(12, &i.pid.to_le_bytes());
            put(16, &i.uid.to_le_bytes());
            put(40, &i.status.to_le_bytes());
            put(56, &(i.utime / 10_000_000).to_le_bytes());
            put(64, &(i.stime / 10_000_000).to_le_bytes());
        }
        c if c > 0 && i.addr != 0 => put(72, &i.addr.to_le_bytes()),
        c => {
            put(12, &i.pid.to_le_bytes());
            put(16, &i.uid.to_le_bytes());
            if c == SI_QUEUE {
                put(44, &(i.value as i32).to_le_bytes());
                put(48, &i.value.to_le_bytes());
            }
        }
    }
    b
}

/// read(2) of a signalfd: `None` while it would block.
pub fn read(
    l: &mut Linux,
    c: &Ctx,
    s: &Rc<RefCell<SignalFd>>,
    nonblock: bool,
    buf: u64,
    len: usize,
) -> Result<Option<usize>, Errno> {
    if len < RECORD {
        return Err(Errno::EINVAL);
    }
    let mask = s.borrow().mask;
    let mut out: Vec<u8> = Vec::new();
    while out.len() + RECORD <= len {
        let Some(info) = take_pending(l, c.pid, c.tid, mask) else { break };
        out.extend_from_slice(&record(&info));
    }
    if out.is_empty() {
        return crate::sys::rw::nothing_yet(nonblock);
    }
    // The signals are taken: a bad buffer loses them, as on Linux.
    write_bytes(l, c.pid, buf, &out)?;
    Ok(Some(out.len()))
}
