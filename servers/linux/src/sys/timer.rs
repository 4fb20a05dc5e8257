//! Timers: alarm, setitimer and getitimer, and the POSIX timers (timer_create, timer_settime,
//! timer_gettime, timer_getoverrun, timer_delete). ITIMER_REAL counts monotonic time and sends
//! SIGALRM (SI_KERNEL) when it expires, then reloads with its interval; a POSIX timer on the
//! real-time, monotonic or boot-time clock sends its signal (SI_TIMER with the timer's id and
//! value) to the process or to one thread (SIGEV_THREAD_ID, what glibc's SIGEV_THREAD uses),
//! and counts overruns while its last signal is still pending. The server loop wakes for the
//! earliest expiry ([`next_wake_ns`]) and fires what is due ([`fire`]). ITIMER_VIRTUAL and
//! ITIMER_PROF are kept and reported but never fire, and the CPU-time clocks have no timers:
//! CPU time is only known at tick granularity (see docs/caveats.md).

use crate::process::{read_bytes, write_bytes, ITimer};
use crate::sys::signal::{self, SigInfo};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;
use alloc::vec::Vec;

const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

/// A POSIX timer.
#[derive(Clone, Copy, Debug)]
pub struct PosixTimer {
    pub id: i32,
    pub clock: u64,
    /// SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD_ID.
    pub notify: u32,
    pub signo: u32,
    pub value: u64,
    /// The thread of SIGEV_THREAD_ID.
    pub tid: Pid,
    pub armed: Option<ITimer>,
    /// Overruns counted into the last signal (timer_getoverrun).
    pub overrun: i32,
}

const SIGEV_SIGNAL: u32 = 0;
const SIGEV_NONE: u32 = 1;
const SIGEV_THREAD_ID: u32 = 4;

/// Recomputes the server's earliest timer expiry.
pub fn rearm(l: &mut Linux) {
    l.next_timer_ns = l
        .procs
        .values()
        .flat_map(|p| p.itimer_real.iter().chain(p.timers.iter().filter_map(|t| t.armed.as_ref())))
        .map(|t| t.next_ns)
        .min()
        .unwrap_or(u64::MAX);
}

/// The next expiry of a timer that fired at `now` (`None`: one-shot, now disarmed).
fn reload(t: ITimer, now: u64) -> (Option<ITimer>, i32) {
    match (now - t.next_ns).checked_div(t.interval_ns) {
        Some(missed) => (Some(ITimer { next_ns: t.next_ns + (missed + 1) * t.interval_ns, ..t }), missed as i32),
        None => (None, 0),
    }
}

/// How long the server may wait for requests before a timer is due (`u64::MAX`: none armed).
pub fn next_wake_ns(l: &Linux) -> u64 {
    if l.next_timer_ns == u64::MAX {
        return u64::MAX;
    }
    l.next_timer_ns.saturating_sub(l.k.now_ns()).max(1)
}

/// Sends SIGALRM for every ITIMER_REAL that expired, reloading periodic ones.
pub fn fire(l: &mut Linux) {
    if l.next_timer_ns == u64::MAX {
        return; // none armed: not even a clock read
    }
    let now = l.k.now_ns();
    if now < l.next_timer_ns {
        return;
    }
    let due: Vec<Pid> =
        l.procs.values().filter(|p| p.itimer_real.is_some_and(|t| t.next_ns <= now)).map(|p| p.pid).collect();
    for pid in due {
        if let Some(p) = l.procs.get_mut(&pid) {
            // A periodic timer catches up without a burst: the next expiry after now.
            let t = p.itimer_real.take().unwrap_or_default();
            p.itimer_real = reload(t, now).0;
        }
        signal::send_info(l, pid, SigInfo::kernel(signal::SIGALRM));
    }
    let due: Vec<(Pid, usize)> = l
        .procs
        .values()
        .flat_map(|p| {
            p.timers
                .iter()
                .enumerate()
                .filter(|(_, t)| t.armed.is_some_and(|a| a.next_ns <= now))
                .map(|(i, _)| (p.pid, i))
        })
        .collect();
    for (pid, i) in due {
        let Some(p) = l.procs.get_mut(&pid) else { continue };
        let Some(t) = p.timers.get_mut(i) else { continue };
        let (next, missed) = reload(t.armed.unwrap_or_default(), now);
        t.armed = next;
        let t = *t;
        if t.notify == SIGEV_NONE {
            continue;
        }
        // Still pending from an earlier expiry: one more overrun instead of a second signal.
        let queue = match t.notify {
            SIGEV_THREAD_ID => p.thread_mut(t.tid).map(|th| &mut th.pending),
            _ => Some(&mut p.pending),
        };
        if let Some(q) = queue.and_then(|q| q.timer_signal(t.id)) {
            q.overrun = q.overrun.saturating_add(1 + missed);
            let o = q.overrun;
            if let Some(t) = p.timers.get_mut(i) {
                t.overrun = o;
            }
            continue;
        }
        if let Some(x) = p.timers.get_mut(i) {
            x.overrun = missed;
        }
        let info = SigInfo {
            signo: t.signo,
            code: signal::SI_TIMER,
            timer: t.id,
            overrun: missed,
            value: t.value,
            ..SigInfo::default()
        };
        match t.notify {
            SIGEV_THREAD_ID => signal::send_to_thread(l, pid, t.tid, info),
            _ => signal::send_info(l, pid, info),
        }
    }
    rearm(l);
}

/// The time left on a timer, as (value, interval) in ns.
fn remaining(l: &Linux, t: Option<ITimer>) -> (u64, u64) {
    match t {
        Some(t) => (t.next_ns.saturating_sub(l.k.now_ns()).max(1), t.interval_ns),
        None => (0, 0),
    }
}

fn timeval(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
    b
}

fn itimerval(value: u64, interval: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&timeval(interval));
    b[16..].copy_from_slice(&timeval(value));
    b
}

/// A `struct timeval` from user memory, in ns (EINVAL for a negative or too large field).
fn read_timeval(b: &[u8]) -> Result<u64, Errno> {
    let s = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let us = i64::from_le_bytes(b[8..16].try_into().unwrap_or_default());
    if s < 0 || !(0..1_000_000).contains(&us) {
        return Err(Errno::EINVAL);
    }
    Ok((s as u64).saturating_mul(1_000_000_000).saturating_add(us as u64 * 1000))
}

fn get(l: &Linux, pid: Pid, which: u64) -> Option<ITimer> {
    let p = l.procs.get(&pid)?;
    match which {
        ITIMER_REAL => p.itimer_real,
        ITIMER_VIRTUAL | ITIMER_PROF => p.itimer_cpu[which as usize - 1],
        _ => None,
    }
}

fn set(l: &mut Linux, pid: Pid, which: u64, value: u64, interval: u64) {
    let now = l.k.now_ns();
    let t = (value != 0).then(|| ITimer { next_ns: now.saturating_add(value), interval_ns: interval });
    if let Some(p) = l.procs.get_mut(&pid) {
        match which {
            ITIMER_REAL => p.itimer_real = t,
            _ => p.itimer_cpu[which as usize - 1] = t,
        }
    }
    rearm(l);
}

pub fn getitimer(l: &mut Linux, c: &Ctx) -> Outcome {
    let which = c.args[0];
    if which > ITIMER_PROF {
        return Errno::EINVAL.into();
    }
    let (v, i) = remaining(l, get(l, c.pid, which));
    write_bytes(l, c.pid, c.args[1], &itimerval(v, i)).map(|_| 0).into()
}

pub fn setitimer(l: &mut Linux, c: &Ctx) -> Outcome {
    let [which, new, old, ..] = c.args;
    if which > ITIMER_PROF {
        return Errno::EINVAL.into();
    }
    let parsed = if new != 0 {
        match read_bytes(l, c.pid, new, 32) {
            Ok(b) => match (read_timeval(&b[..16]), read_timeval(&b[16..])) {
                (Ok(i), Ok(v)) => Some((v, i)),
                (Err(e), _) | (_, Err(e)) => return e.into(),
            },
            Err(e) => return e.into(),
        }
    } else {
        None
    };
    let (v, i) = remaining(l, get(l, c.pid, which));
    if old != 0 {
        if let Err(e) = write_bytes(l, c.pid, old, &itimerval(v, i)) {
            return e.into();
        }
    }
    // A NULL new value disarms (Linux accepts it, with a warning).
    let (value, interval) = parsed.unwrap_or((0, 0));
    set(l, c.pid, which, value, interval);
    Outcome::Done(0)
}

/// alarm(seconds): a one-shot ITIMER_REAL; returns the seconds left on the previous one
/// (rounded to nearest, at least 1 if any time was left).
pub fn alarm(l: &mut Linux, c: &Ctx) -> Outcome {
    let secs = c.args[0] as u32 as u64;
    let (left, _) = remaining(l, get(l, c.pid, ITIMER_REAL));
    set(l, c.pid, ITIMER_REAL, secs * 1_000_000_000, 0);
    let prev = if left == 0 { 0 } else { ((left + 500_000_000) / 1_000_000_000).max(1) };
    Outcome::Done(prev as i64)
}

fn timespec_bytes(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    b
}

/// A `struct timespec` in `b` (EINVAL if negative or not normalized), in ns.
fn timespec_of(b: &[u8]) -> Result<u64, Errno> {
    let s = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let ns = i64::from_le_bytes(b[8..16].try_into().unwrap_or_default());
    if s < 0 || !(0..1_000_000_000).contains(&ns) {
        return Err(Errno::EINVAL);
    }
    Ok((s as u64).saturating_mul(1_000_000_000).saturating_add(ns as u64))
}

/// timer_create(clock, sigevent, timerid).
pub fn timer_create(l: &mut Linux, c: &Ctx) -> Outcome {
    let [clock, sev, idp, ..] = c.args;
    match clock {
        0 | 1 | 7 => {}                           // REALTIME, MONOTONIC, BOOTTIME
        2 | 3 => return Errno::EOPNOTSUPP.into(), // CPU-time clocks: not here (caveats)
        8 | 9 => return Errno::EPERM.into(),      // the _ALARM clocks need CAP_WAKE_ALARM... and an RTC
        _ => return Errno::EINVAL.into(),
    }
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let id = (0..).find(|i| !p.timers.iter().any(|t| t.id == *i)).unwrap_or(0);
    let mut t = PosixTimer {
        id,
        clock,
        notify: SIGEV_SIGNAL,
        signo: signal::SIGALRM,
        value: id as u64,
        tid: 0,
        armed: None,
        overrun: 0,
    };
    if sev != 0 {
        let b = match read_bytes(l, c.pid, sev, 20) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        t.value = u64::from_le_bytes(b[0..8].try_into().unwrap_or_default());
        t.signo = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
        t.notify = u32::from_le_bytes(b[12..16].try_into().unwrap_or_default());
        t.tid = u32::from_le_bytes(b[16..20].try_into().unwrap_or_default());
        let bad_signal = t.signo == 0 || t.signo as usize >= crate::process::NSIG;
        match t.notify {
            SIGEV_NONE => {}
            SIGEV_SIGNAL if !bad_signal => {}
            SIGEV_THREAD_ID if !bad_signal && p.thread(t.tid).is_some() => {}
            _ => return Errno::EINVAL.into(),
        }
    }
    if p.timers.len() >= 4096 {
        return Errno::EAGAIN.into();
    }
    if let Err(e) = write_bytes(l, c.pid, idp, &id.to_le_bytes()) {
        return e.into();
    }
    if let Some(p) = l.procs.get_mut(&c.pid) {
        p.timers.push(t);
    }
    Outcome::Done(0)
}

fn timer_index(l: &Linux, pid: Pid, id: u64) -> Result<usize, Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    p.timers.iter().position(|t| t.id as i64 == id as i32 as i64 && id <= i32::MAX as u64).ok_or(Errno::EINVAL)
}

fn itimerspec(value: u64, interval: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&timespec_bytes(interval));
    b[16..].copy_from_slice(&timespec_bytes(value));
    b
}

/// timer_settime(id, flags, new, old): TIMER_ABSTIME takes the value as a time on the timer's
/// clock (other flag bits are ignored, as on Linux); a zero value disarms.
pub fn timer_settime(l: &mut Linux, c: &Ctx) -> Outcome {
    let [id, flags, new, old, ..] = c.args;
    let i = match timer_index(l, c.pid, id) {
        Ok(i) => i,
        Err(e) => return e.into(),
    };
    // Unknown flags are ignored, as Linux does.
    let b = match read_bytes(l, c.pid, new, 32) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let (interval, value) = match (timespec_of(&b[..16]), timespec_of(&b[16..])) {
        (Ok(i), Ok(v)) => (i, v),
        (Err(e), _) | (_, Err(e)) => return e.into(),
    };
    let now = l.k.now_ns();
    let t = l.procs[&c.pid].timers[i];
    if old != 0 {
        let (v, iv) = remaining(l, t.armed);
        let (v, iv) = if t.armed.is_some() { (v, iv) } else { (0, 0) };
        if let Err(e) = write_bytes(l, c.pid, old, &itimerspec(v, iv)) {
            return e.into();
        }
    }
    let next = if value == 0 {
        None
    } else if flags & 1 != 0 {
        // Absolute: on the real-time clock, relative to the epoch.
        let mono = if t.clock == 0 { crate::sys::info::realtime_to_monotonic(l, value) } else { value };
        Some(ITimer { next_ns: mono.max(1), interval_ns: interval })
    } else {
        Some(ITimer { next_ns: now.saturating_add(value), interval_ns: interval })
    };
    if let Some(t) = l.procs.get_mut(&c.pid).and_then(|p| p.timers.get_mut(i)) {
        t.armed = next;
        t.overrun = 0;
    }
    rearm(l);
    fire(l); // an absolute time already past fires at once
    Outcome::Done(0)
}

pub fn timer_gettime(l: &mut Linux, c: &Ctx) -> Outcome {
    let i = match timer_index(l, c.pid, c.args[0]) {
        Ok(i) => i,
        Err(e) => return e.into(),
    };
    let t = l.procs[&c.pid].timers[i];
    let (v, iv) = if t.armed.is_some() { remaining(l, t.armed) } else { (0, 0) };
    write_bytes(l, c.pid, c.args[1], &itimerspec(v, iv)).map(|_| 0).into()
}

pub fn timer_getoverrun(l: &mut Linux, c: &Ctx) -> Outcome {
    match timer_index(l, c.pid, c.args[0]) {
        Ok(i) => Outcome::Done(l.procs[&c.pid].timers[i].overrun.max(0) as i64),
        Err(e) => e.into(),
    }
}

pub fn timer_delete(l: &mut Linux, c: &Ctx) -> Outcome {
    match timer_index(l, c.pid, c.args[0]) {
        Ok(i) => {
            if let Some(p) = l.procs.get_mut(&c.pid) {
                p.timers.remove(i);
            }
            rearm(l);
            Outcome::Done(0)
        }
        Err(e) => e.into(),
    }
}
