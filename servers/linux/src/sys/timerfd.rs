//! timerfd(2): a timer whose expirations are read from a descriptor. A timer is armed with a
//! first expiry (relative, or absolute with `TFD_TIMER_ABSTIME`) and an interval; a read
//! returns the number of expirations since the last read or `timerfd_settime` as eight bytes,
//! blocking (or EAGAIN) while there are none. Expirations are counted from the clock when the
//! timer is looked at (a read, a poll, `timerfd_gettime`), so a blocked reader sees them at
//! the server's next look: within a millisecond, as blocked requests are retried that often.
//! The real-time clock differs from the monotonic one by a constant here (it cannot be set),
//! so every timer keeps its expiry in monotonic nanoseconds.

use crate::files::{Anon, Object};
use crate::process::{read_bytes, write_bytes};
use crate::sys::info::{realtime_to_monotonic, timespec_ns};
use crate::sys::open::install_object;
use crate::{Ctx, Linux, Outcome};
use abi::Errno;
use alloc::rc::Rc;
use core::cell::RefCell;

const TFD_NONBLOCK: u64 = 0o4000;
const TFD_CLOEXEC: u64 = 0o2000000;
const TFD_TIMER_ABSTIME: u64 = 1;
const TFD_TIMER_CANCEL_ON_SET: u64 = 2;

const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_BOOTTIME: u64 = 7;
const CLOCK_REALTIME_ALARM: u64 = 8;
const CLOCK_BOOTTIME_ALARM: u64 = 9;

#[derive(Default)]
pub struct TimerFd {
    pub clock: u64,
    /// The next expiry (monotonic ns), if armed.
    pub next_ns: Option<u64>,
    pub interval_ns: u64,
    /// Expirations not read yet.
    pub expirations: u64,
    /// Bumped at every expiry counted (edge-triggered epoll sees each as an event).
    pub in_seq: u64,
}

impl TimerFd {
    /// Counts the expirations up to `now`, moving a periodic timer on and disarming a one-shot.
    pub fn update(&mut self, now: u64) {
        let Some(next) = self.next_ns.filter(|&n| n <= now) else { return };
        match (now - next).checked_div(self.interval_ns) {
            Some(late) => {
                let n = 1 + late;
                self.expirations = self.expirations.saturating_add(n);
                self.next_ns = Some(next + n * self.interval_ns);
            }
            None => {
                self.expirations = self.expirations.saturating_add(1);
                self.next_ns = None;
            }
        }
        self.in_seq += 1;
    }

    pub fn readable(&mut self, now: u64) -> bool {
        self.update(now);
        self.expirations > 0
    }
}

pub fn timerfd_create(l: &mut Linux, c: &Ctx) -> Outcome {
    let [clock, flags, ..] = c.args;
    if !matches!(clock, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_REALTIME_ALARM | CLOCK_BOOTTIME_ALARM)
    {
        return Errno::EINVAL.into();
    }
    if flags & !(TFD_NONBLOCK | TFD_CLOEXEC) != 0 {
        return Errno::EINVAL.into();
    }
    let timer = TimerFd { clock, ..TimerFd::default() };
    let object = Object::Anon(Anon::TimerFd(Rc::new(RefCell::new(timer))));
    install_object(l, c.pid, object, flags).map(|fd| fd as i64).into()
}

/// The timerfd behind `fd` (EINVAL if it is something else).
fn timer_of(l: &Linux, c: &Ctx, fd: u64) -> Result<Rc<RefCell<TimerFd>>, Errno> {
    let file = crate::sys::rw::file_of(l, c, fd)?;
    let f = file.borrow();
    match &f.object {
        Object::Anon(Anon::TimerFd(t)) => Ok(t.clone()),
        _ => Err(Errno::EINVAL),
    }
}

fn timespec(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&((ns / 1_000_000_000) as i64).to_le_bytes());
    b[8..].copy_from_slice(&((ns % 1_000_000_000) as i64).to_le_bytes());
    b
}

/// `struct itimerspec` { it_interval, it_value } of `t` now.
fn current(t: &mut TimerFd, now: u64) -> [u8; 32] {
    t.update(now);
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&timespec(t.interval_ns));
    b[16..].copy_from_slice(&timespec(t.next_ns.map_or(0, |n| n.saturating_sub(now).max(1))));
    b
}

pub fn timerfd_settime(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, flags, new, old, ..] = c.args;
    match settime(l, c, fd, flags, new, old) {
        Ok(()) => Outcome::Done(0),
        Err(e) => e.into(),
    }
}

fn settime(l: &mut Linux, c: &Ctx, fd: u64, flags: u64, new: u64, old: u64) -> Result<(), Errno> {
    let timer = timer_of(l, c, fd)?;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    // `struct itimerspec`: it_interval, then it_value.
    let spec = read_bytes(l, c.pid, new, 32)?;
    let interval = timespec_ns(&spec[..16])?;
    let value = timespec_ns(&spec[16..])?;
    let now = l.k.now_ns();
    if old != 0 {
        let was = current(&mut timer.borrow_mut(), now);
        write_bytes(l, c.pid, old, &was)?;
    }
    let realtime = matches!(timer.borrow().clock, CLOCK_REALTIME | CLOCK_REALTIME_ALARM);
    let next = match (value, flags & TFD_TIMER_ABSTIME != 0) {
        (0, _) => None,
        (v, false) => Some(now.saturating_add(v)),
        (v, true) if realtime => Some(realtime_to_monotonic(l, v)),
        (v, true) => Some(v),
    };
    let mut t = timer.borrow_mut();
    t.next_ns = next;
    t.interval_ns = if next.is_some() { interval } else { 0 };
    t.expirations = 0;
    Ok(())
}

pub fn timerfd_gettime(l: &mut Linux, c: &Ctx) -> Outcome {
    let timer = match timer_of(l, c, c.args[0]) {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let now = l.k.now_ns();
    let cur = current(&mut timer.borrow_mut(), now);
    write_bytes(l, c.pid, c.args[1], &cur).map(|_| 0).into()
}

/// read(2) of a timerfd: `None` while it would block.
pub fn read(
    l: &mut Linux,
    c: &Ctx,
    t: &Rc<RefCell<TimerFd>>,
    nonblock: bool,
    buf: u64,
    len: usize,
) -> Result<Option<usize>, Errno> {
    if len < 8 {
        return Err(Errno::EINVAL);
    }
    let now = l.k.now_ns();
    let n = {
        let mut t = t.borrow_mut();
        t.update(now);
        t.expirations
    };
    if n == 0 {
        return crate::sys::rw::nothing_yet(nonblock);
    }
    write_bytes(l, c.pid, buf, &n.to_le_bytes())?;
    t.borrow_mut().expirations = 0;
    Ok(Some(8))
}
