//! Futexes: FUTEX_WAIT/WAKE (and their _BITSET and _PRIVATE forms, with timeouts on the
//! monotonic or real-time clock), FUTEX_REQUEUE/CMP_REQUEUE and FUTEX_WAKE_OP, plus the two
//! things the kernel does with futexes at thread exit: the clear-tid word (pthread_join) and
//! the robust-mutex list.
//!
//! A waiter is a blocked request kept in a FIFO with its key (the address space and address;
//! a shared futex in a MAP_SHARED mapping is keyed by address alone, since fork keeps those
//! pages at the same place). The wait is checked again whenever blocked requests are re-run:
//! woken, timed out, or still waiting. A waiter whose thread died is skipped by wakes.

use crate::process::{read_u32, write_bytes, Thread, VMA_SHARED};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;
use alloc::vec::Vec;
use server_rt::AspaceRef;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// The address space of shared futexes (see the module comment).
const SHARED_KEY: u64 = u64::MAX;

#[derive(Clone, Copy, Debug)]
struct Waiter {
    tag: u64,
    thread: u64,
    key: (u64, u64),
    bitset: u32,
    woken: bool,
    /// Monotonic deadline (ns).
    deadline: Option<u64>,
}

#[derive(Default)]
pub struct Futexes {
    waiters: Vec<Waiter>,
}

/// The key of the futex at `uaddr` for process `pid`.
fn key(l: &Linux, pid: Pid, uaddr: u64, private: bool) -> Result<(u64, u64), Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let shared = !private && p.mm.borrow().find(uaddr).is_some_and(|v| v.flags & VMA_SHARED != 0);
    Ok((if shared { SHARED_KEY } else { p.aspace.0 }, uaddr))
}

/// Wakes up to `n` live waiters on `key` whose bitset meets `bitset`; returns how many.
fn wake_key(l: &mut Linux, key: (u64, u64), n: u64, bitset: u32) -> u64 {
    let live = |w: &Waiter, l: &Linux| l.threads.contains_key(&w.thread);
    let mut count = 0;
    let threads = &l.threads;
    for w in l.futexes.waiters.iter_mut() {
        if count >= n {
            break;
        }
        if w.key == key && !w.woken && w.bitset & bitset != 0 && threads.contains_key(&w.thread) {
            w.woken = true;
            count += 1;
        }
    }
    let waiters = core::mem::take(&mut l.futexes.waiters);
    l.futexes.waiters = waiters.into_iter().filter(|w| live(w, l)).collect();
    count
}

/// Wakes up to `n` waiters on the futex at `uaddr` of address space `aspace` (thread exit).
pub fn wake(l: &mut Linux, aspace: AspaceRef, uaddr: u64, n: u64, bitset: u32) -> u64 {
    let mut woken = wake_key(l, (aspace.0, uaddr), n, bitset);
    if woken < n {
        woken += wake_key(l, (SHARED_KEY, uaddr), n - woken, bitset);
    }
    woken
}

/// Forgets the wait of request `tag` (it was interrupted).
pub fn forget(l: &mut Linux, tag: u64) {
    l.futexes.waiters.retain(|w| w.tag != tag);
}

/// Forgets the waits of threads that are gone.
pub fn forget_threads(l: &mut Linux, threads: &[Thread]) {
    l.futexes.waiters.retain(|w| !threads.iter().any(|t| t.r.0 == w.thread));
}

/// Whether futex request `c` waits with a timeout (such a wait is not restarted after a
/// handler: EINTR, as Linux's restart_block gives).
pub fn has_timeout(c: &Ctx) -> bool {
    matches!(c.args[1] & 0x7f, FUTEX_WAIT | FUTEX_WAIT_BITSET) && c.args[3] != 0
}

/// Thread `t` of a process with address space `aspace` exits: every robust mutex it still
/// holds is marked FUTEX_OWNER_DIED and one waiter woken (bounded walk of its list).
pub fn exit_robust(l: &mut Linux, aspace: AspaceRef, t: &Thread) {
    if t.robust_list == 0 {
        return;
    }
    let read = |l: &Linux, va: u64| {
        let mut b = [0u8; 8];
        l.k.aspace_read(aspace, va, &mut b).ok().map(|_| u64::from_le_bytes(b))
    };
    let head = t.robust_list;
    let (Some(mut entry), Some(offset), Some(pending)) = (read(l, head), read(l, head + 8), read(l, head + 16)) else {
        return;
    };
    let handle = |l: &mut Linux, entry: u64| {
        let uaddr = (entry & !1).wrapping_add(offset);
        let mut b = [0u8; 4];
        if l.k.aspace_read(aspace, uaddr, &mut b).is_err() {
            return;
        }
        let word = u32::from_le_bytes(b);
        if word & FUTEX_TID_MASK == t.tid {
            let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
            if l.k.aspace_write(aspace, uaddr, &new.to_le_bytes()).is_ok() && word & FUTEX_WAITERS != 0 {
                wake(l, aspace, uaddr, 1, u32::MAX);
            }
        }
    };
    for _ in 0..2048 {
        if entry == head || entry == 0 {
            break;
        }
        let next = read(l, entry & !1);
        if entry != pending {
            handle(l, entry);
        }
        match next {
            Some(n) => entry = n,
            None => break,
        }
    }
    if pending != 0 {
        handle(l, pending);
    }
}

/// The deadline of a wait (monotonic ns): FUTEX_WAIT's timeout is relative, FUTEX_WAIT_BITSET's
/// absolute on CLOCK_MONOTONIC, or CLOCK_REALTIME with FUTEX_CLOCK_REALTIME.
fn deadline(l: &Linux, c: &Ctx, cmd: u64, realtime: bool) -> Result<Option<u64>, Errno> {
    if c.args[3] == 0 {
        return Ok(None);
    }
    let ns = crate::sys::info::read_timespec(l, c.pid, c.args[3])?;
    Ok(Some(if cmd == FUTEX_WAIT {
        c.started_ns.saturating_add(ns)
    } else if realtime {
        crate::sys::info::realtime_to_monotonic(l, ns)
    } else {
        ns
    }))
}

/// FUTEX_WAKE_OP's operation on the word at uaddr2: returns (new value, whether to wake the
/// second futex's waiters too).
fn wake_op(old: u32, encoded: u32) -> Option<(u32, bool)> {
    let sign_extend = |v: u32| ((v << 20) as i32 >> 20) as u32;
    let op = (encoded >> 28) & 7;
    let shift = encoded & (8 << 28) != 0;
    let cmp = (encoded >> 24) & 15;
    let mut oparg = sign_extend((encoded >> 12) & 0xfff);
    let cmparg = sign_extend(encoded & 0xfff);
    if shift {
        oparg = 1u32 << (oparg & 31); // Linux masks an out-of-range shift too
    }
    let new = match op {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return None,
    };
    let (a, b) = (old as i32, cmparg as i32);
    let hit = match cmp {
        0 => a == b,
        1 => a != b,
        2 => a < b,
        3 => a <= b,
        4 => a > b,
        5 => a >= b,
        _ => return None,
    };
    Some((new, hit))
}

pub fn futex(l: &mut Linux, c: &Ctx) -> Outcome {
    let [uaddr, op, val, timeout, uaddr2, val3] = c.args;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    if !uaddr.is_multiple_of(4) {
        return Errno::EINVAL.into();
    }
    if realtime && !matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET) {
        return Errno::ENOSYS.into();
    }
    let k = match key(l, c.pid, uaddr, private) {
        Ok(k) => k,
        Err(e) => return e.into(),
    };
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT { u32::MAX } else { val3 as u32 };
            if bitset == 0 {
                return Errno::EINVAL.into();
            }
            if let Some(i) = l.futexes.waiters.iter().position(|w| w.tag == c.tag) {
                let w = l.futexes.waiters[i];
                if w.woken {
                    l.futexes.waiters.remove(i);
                    return Outcome::Done(0);
                }
                if w.deadline.is_some_and(|d| l.k.now_ns() >= d) {
                    l.futexes.waiters.remove(i);
                    return Errno::ETIMEDOUT.into();
                }
                return Outcome::Block;
            }
            let d = match deadline(l, c, cmd, realtime) {
                Ok(d) => d,
                Err(e) => return e.into(),
            };
            match read_u32(l, c.pid, uaddr) {
                Ok(v) if v != val as u32 => return Errno::EAGAIN.into(),
                Ok(_) => {}
                Err(e) => return e.into(),
            }
            if d.is_some_and(|d| l.k.now_ns() >= d) {
                return Errno::ETIMEDOUT.into();
            }
            l.futexes.waiters.push(Waiter {
                tag: c.tag,
                thread: c.thread.0,
                key: k,
                bitset,
                woken: false,
                deadline: d,
            });
            Outcome::Block
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { u32::MAX } else { val3 as u32 };
            if bitset == 0 {
                return Errno::EINVAL.into();
            }
            Outcome::Done(wake_key(l, k, val.min(i32::MAX as u64), bitset) as i64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (nr_wake, nr_requeue) = (val as i32, timeout as i32);
            if nr_wake < 0 || nr_requeue < 0 || !uaddr2.is_multiple_of(4) {
                return Errno::EINVAL.into();
            }
            let k2 = match key(l, c.pid, uaddr2, private) {
                Ok(k) => k,
                Err(e) => return e.into(),
            };
            if cmd == FUTEX_CMP_REQUEUE {
                match read_u32(l, c.pid, uaddr) {
                    Ok(v) if v != val3 as u32 => return Errno::EAGAIN.into(),
                    Ok(_) => {}
                    Err(e) => return e.into(),
                }
            }
            let woken = wake_key(l, k, nr_wake as u64, u32::MAX);
            let mut moved = 0;
            for w in l.futexes.waiters.iter_mut() {
                if moved >= nr_requeue as u64 {
                    break;
                }
                if w.key == k && !w.woken {
                    w.key = k2;
                    moved += 1;
                }
            }
            Outcome::Done((woken + moved) as i64)
        }
        FUTEX_WAKE_OP => {
            if !uaddr2.is_multiple_of(4) {
                return Errno::EINVAL.into();
            }
            let k2 = match key(l, c.pid, uaddr2, private) {
                Ok(k) => k,
                Err(e) => return e.into(),
            };
            let old = match read_u32(l, c.pid, uaddr2) {
                Ok(v) => v,
                Err(e) => return e.into(),
            };
            let Some((new, hit)) = wake_op(old, val3 as u32) else { return Errno::ENOSYS.into() };
            if let Err(e) = write_bytes(l, c.pid, uaddr2, &new.to_le_bytes()) {
                return e.into();
            }
            let mut woken = wake_key(l, k, val.min(i32::MAX as u64), u32::MAX);
            if hit {
                woken += wake_key(l, k2, (timeout as i32).max(0) as u64, u32::MAX);
            }
            Outcome::Done(woken as i64)
        }
        // Priority-inheritance futexes are not supported.
        _ => Errno::ENOSYS.into(),
    }
}
