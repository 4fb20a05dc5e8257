//! Interval timers: alarm, setitimer and getitimer. ITIMER_REAL counts monotonic time and
//! sends SIGALRM (SI_KERNEL) when it expires, then reloads with its interval; the server loop
//! wakes for the earliest expiry ([`next_wake_ns`]) and fires what is due ([`fire`]).
//! ITIMER_VIRTUAL and ITIMER_PROF are kept and reported but never fire: CPU time is only
//! known at tick granularity (see docs/caveats.md).

use crate::process::{read_bytes, write_bytes, ITimer};
use crate::sys::signal::{self, SigInfo};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;
use alloc::vec::Vec;

const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

/// Recomputes the server's earliest timer expiry.
pub fn rearm(l: &mut Linux) {
    l.next_timer_ns = l.procs.values().filter_map(|p| p.itimer_real.map(|t| t.next_ns)).min().unwrap_or(u64::MAX);
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
            let t = p.itimer_real.take().unwrap_or_default();
            // A periodic timer catches up without a burst: the next expiry after now.
            if let Some(missed) = (now - t.next_ns).checked_div(t.interval_ns) {
                p.itimer_real = Some(ITimer { next_ns: t.next_ns + (missed + 1) * t.interval_ns, ..t });
            }
        }
        signal::send_info(l, pid, SigInfo::kernel(signal::SIGALRM));
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
