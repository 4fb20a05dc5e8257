//! eventfd(2): a 64-bit counter behind a descriptor. A write adds to it (blocking, or EAGAIN,
//! while the sum would pass `u64::MAX - 1`), a read takes it all and leaves 0 (with
//! `EFD_SEMAPHORE`: takes 1), blocking or EAGAIN while it is 0; reads and writes move exactly
//! eight bytes. Readable while the counter is above 0, writable while 1 more fits.

use crate::files::{Anon, Object};
use crate::process::{read_bytes, write_bytes};
use crate::sys::open::install_object;
use crate::{Ctx, Linux, Outcome};
use abi::Errno;
use alloc::rc::Rc;
use core::cell::RefCell;

const EFD_SEMAPHORE: u64 = 1;
const EFD_NONBLOCK: u64 = 0o4000;
const EFD_CLOEXEC: u64 = 0o2000000;

/// The largest value the counter holds.
const MAX: u64 = u64::MAX - 1;

#[derive(Default)]
pub struct EventFd {
    pub count: u64,
    pub semaphore: bool,
    /// Bumped by every write (`in_seq`) and read (`out_seq`), for edge-triggered epoll.
    pub in_seq: u64,
    pub out_seq: u64,
}

impl EventFd {
    pub fn readable(&self) -> bool {
        self.count > 0
    }

    pub fn writable(&self) -> bool {
        self.count < MAX
    }
}

pub fn eventfd2(l: &mut Linux, c: &Ctx) -> Outcome {
    create(l, c, c.args[0], c.args[1])
}

pub fn eventfd(l: &mut Linux, c: &Ctx) -> Outcome {
    create(l, c, c.args[0], 0)
}

fn create(l: &mut Linux, c: &Ctx, initval: u64, flags: u64) -> Outcome {
    if flags & !(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC) != 0 {
        return Errno::EINVAL.into();
    }
    let counter = EventFd { count: initval & 0xffff_ffff, semaphore: flags & EFD_SEMAPHORE != 0, ..EventFd::default() };
    let object = Object::Anon(Anon::EventFd(Rc::new(RefCell::new(counter))));
    install_object(l, c.pid, object, flags).map(|fd| fd as i64).into()
}

/// read(2) of an eventfd: `None` while it would block.
pub fn read(
    l: &mut Linux,
    c: &Ctx,
    e: &Rc<RefCell<EventFd>>,
    nonblock: bool,
    buf: u64,
    len: usize,
) -> Result<Option<usize>, Errno> {
    if len < 8 {
        return Err(Errno::EINVAL);
    }
    let value = {
        let e = e.borrow();
        if e.count == 0 {
            return crate::sys::rw::nothing_yet(nonblock);
        }
        if e.semaphore {
            1
        } else {
            e.count
        }
    };
    write_bytes(l, c.pid, buf, &value.to_le_bytes())?;
    let mut e = e.borrow_mut();
    e.count -= value;
    e.out_seq += 1;
    Ok(Some(8))
}

/// write(2) to an eventfd.
pub fn write(l: &mut Linux, c: &Ctx, e: &Rc<RefCell<EventFd>>, nonblock: bool, buf: u64, len: usize) -> Outcome {
    if len < 8 {
        return Errno::EINVAL.into();
    }
    let value = match read_bytes(l, c.pid, buf, 8) {
        Ok(b) => u64::from_le_bytes(b.try_into().unwrap_or_default()),
        Err(e) => return e.into(),
    };
    if value == u64::MAX {
        return Errno::EINVAL.into();
    }
    let mut e = e.borrow_mut();
    if value > MAX - e.count {
        return if nonblock { Errno::EAGAIN.into() } else { Outcome::Block };
    }
    e.count += value;
    e.in_seq += 1;
    Outcome::Done(8)
}
