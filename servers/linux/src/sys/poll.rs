//! Waiting for descriptors: poll, ppoll, select, pselect6 (the last two under the signal mask
//! they are given, `signal::with_wait_mask`). Readiness is computed here for pipes, eventfd,
//! timerfd, signalfd and epoll instances (epoll asks the same question), asked of `tty` for
//! the terminal, and always true for files and devices (as on Linux).
//! With nothing ready and time left the call answers `Block` and is run again when something
//! changes (or a tick passes).

use crate::files::{local_object, Anon, Device, FileRef, Local, Object};
use crate::process::{read_bytes, word_at, write_bytes};
use crate::sys::signal::with_wait_mask;
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;
use alloc::vec::Vec;

const POLLIN: u16 = 1;
const POLLOUT: u16 = 4;
const POLLHUP: u16 = 0x10;
const POLLNVAL: u16 = 0x20;

const POLLERR: u16 = 8;

/// The poll(2) events descriptor `fd` of `pid` has now (`POLLNVAL` if it is not open), as
/// thread `tid` sees them.
fn readiness(l: &mut Linux, pid: Pid, tid: Pid, fd: u64) -> u16 {
    let Some(p) = l.procs.get(&pid) else { return POLLNVAL };
    let Ok(f) = p.fds.get(fd) else { return POLLNVAL };
    let file = f.file.clone();
    readiness_of(l, pid, tid, &file, 0)
}

/// The poll(2) events of open file `file` now, as thread `tid` of `pid` sees them (a
/// signalfd's depend on who asks); an epoll instance `depth` levels down looks no deeper than
/// `epoll::MAX_NESTING`.
pub fn readiness_of(l: &mut Linux, pid: Pid, tid: Pid, file: &FileRef, depth: u32) -> u16 {
    if let Some(local) = local_object(file) {
        let a = match local {
            Local::Socket(s) => return crate::sys::unix::readiness(&s),
            Local::Anon(a) => a,
        };
        return match a {
            Anon::EventFd(e) => {
                let e = e.borrow();
                (if e.readable() { POLLIN } else { 0 }) | (if e.writable() { POLLOUT } else { 0 })
            }
            Anon::TimerFd(t) => {
                let now = l.k.now_ns();
                if t.borrow_mut().readable(now) {
                    POLLIN
                } else {
                    0
                }
            }
            Anon::SignalFd(s) => {
                let mask = s.borrow().mask;
                if crate::sys::signal::has_pending(l, pid, tid, mask) {
                    POLLIN
                } else {
                    0
                }
            }
            Anon::Epoll(e) => {
                if depth < crate::sys::epoll::MAX_NESTING && crate::sys::epoll::any_ready(l, pid, tid, &e, depth) {
                    POLLIN
                } else {
                    0
                }
            }
        };
    }
    let object = &file.borrow().object;
    match object {
        Object::Pipe { pipe, read, write } => {
            let pipe = pipe.borrow();
            let mut rev = 0;
            if *read {
                if !pipe.buf.is_empty() {
                    rev |= POLLIN;
                }
                // A FIFO's reader that no writer has joined yet sees no hang-up (as on Linux).
                if pipe.writers == 0 && pipe.writes_opened > 0 {
                    rev |= POLLHUP;
                }
            }
            if *write {
                if pipe.readers == 0 {
                    rev |= POLLERR;
                } else if crate::files::PIPE_CAPACITY - pipe.buf.len() >= crate::files::PIPE_BUF {
                    rev |= POLLOUT;
                }
            }
            rev
        }
        Object::Device { dev: Device::Tty, .. } => {
            match l.tty(abi::proto::tty::POLL, [0; 6], server_rt::GrantRef::NONE) {
                Ok(r) => r.result as u16,
                Err(_) => POLLERR,
            }
        }
        _ => POLLOUT | POLLIN,
    }
}

/// How far `file`'s object has moved on, for input (writes, expiries) and output (reads):
/// edge-triggered epoll reports an interest again when the side it watches moved.
pub fn event_seq(file: &FileRef) -> (u64, u64) {
    match &file.borrow().object {
        Object::Pipe { pipe, .. } => {
            let p = pipe.borrow();
            (p.in_seq, p.out_seq)
        }
        Object::Anon(Anon::EventFd(e)) => {
            let e = e.borrow();
            (e.in_seq, e.out_seq)
        }
        Object::Anon(Anon::TimerFd(t)) => (t.borrow().in_seq, 0),
        Object::Socket(s) => {
            let s = s.borrow();
            (s.in_seq, s.out_seq)
        }
        _ => (0, 0),
    }
}

/// select/pselect6 on up to `nfds` descriptors: the fd_set bitmaps are read, the ready bits
/// kept, and the count returned; a closed descriptor in a set is EBADF, as on Linux.
fn select_fds(l: &mut Linux, c: &Ctx, nfds: u64, sets: [u64; 3], timeout_ms: Option<u64>) -> Outcome {
    if nfds > 1024 {
        return Errno::EINVAL.into();
    }
    let bytes = (nfds as usize).div_ceil(64) * 8;
    let mut bits: [Vec<u8>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (i, &ptr) in sets.iter().enumerate() {
        if ptr != 0 {
            match read_bytes(l, c.pid, ptr, bytes) {
                Ok(b) => bits[i] = b,
                Err(e) => return e.into(),
            }
        }
    }
    let mut out: [Vec<u8>; 3] = [alloc::vec![0; bytes], alloc::vec![0; bytes], alloc::vec![0; bytes]];
    let mut ready = 0i64;
    for fd in 0..nfds as usize {
        let wanted = |i: usize| bits[i].get(fd / 8).is_some_and(|b| b & (1 << (fd % 8)) != 0);
        if !(wanted(0) || wanted(1) || wanted(2)) {
            continue;
        }
        let rev = readiness(l, c.pid, c.tid, fd as u64);
        if rev & POLLNVAL != 0 {
            return Errno::EBADF.into();
        }
        let hits = [rev & (POLLIN | POLLHUP) != 0, rev & (POLLOUT | POLLERR) != 0, false];
        for i in 0..3 {
            if wanted(i) && hits[i] {
                out[i][fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
        }
    }
    let expired = timeout_ms.is_some_and(|t| l.k.now_ns() >= c.started_ns.saturating_add(t.saturating_mul(1_000_000)));
    if ready == 0 && !expired {
        return Outcome::Block;
    }
    for (i, &ptr) in sets.iter().enumerate() {
        if ptr != 0 {
            if let Err(e) = write_bytes(l, c.pid, ptr, &out[i]) {
                return e.into();
            }
        }
    }
    Outcome::Done(ready)
}

/// A user `timeval` (`per_second` = 1,000,000) or `timespec` (1,000,000,000) at `ptr`, in
/// milliseconds; a null pointer means no timeout. Negative or out-of-range parts are EINVAL.
fn user_timeout_ms(l: &Linux, pid: Pid, ptr: u64, per_second: i64) -> Result<Option<u64>, Errno> {
    if ptr == 0 {
        return Ok(None);
    }
    let b = read_bytes(l, pid, ptr, 16)?;
    let s = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let frac = i64::from_le_bytes(b[8..].try_into().unwrap_or_default());
    if s < 0 || !(0..per_second).contains(&frac) {
        return Err(Errno::EINVAL);
    }
    Ok(Some((s as u64).saturating_mul(1000).saturating_add((frac / (per_second / 1000)) as u64)))
}

/// select(nfds, readfds, writefds, exceptfds, struct timeval *timeout).
pub fn select(l: &mut Linux, c: &Ctx) -> Outcome {
    match user_timeout_ms(l, c.pid, c.args[4], 1_000_000) {
        Ok(t) => select_fds(l, c, c.args[0], [c.args[1], c.args[2], c.args[3]], t),
        Err(e) => e.into(),
    }
}

/// pselect6(nfds, readfds, writefds, exceptfds, struct timespec *timeout, sigmask), where the
/// last argument points at `{ const sigset_t *set; size_t size; }` (or is null): the call runs
/// under that mask.
pub fn pselect6(l: &mut Linux, c: &Ctx) -> Outcome {
    let timeout = match user_timeout_ms(l, c.pid, c.args[4], 1_000_000_000) {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let (set, size) = if c.args[5] == 0 {
        (0, 8)
    } else {
        match read_bytes(l, c.pid, c.args[5], 16) {
            Ok(b) => (word_at(&b, 0), word_at(&b, 8)),
            Err(e) => return e.into(),
        }
    };
    with_wait_mask(l, c, set, size, |l| select_fds(l, c, c.args[0], [c.args[1], c.args[2], c.args[3]], timeout))
}

fn poll_fds(l: &mut Linux, c: &Ctx, fds_ptr: u64, nfds: u64, timeout_ms: Option<u64>) -> Outcome {
    if nfds > 1024 {
        return Errno::EINVAL.into();
    }
    let mut raw = match read_bytes(l, c.pid, fds_ptr, nfds as usize * 8) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let mut ready = 0;
    for e in raw.chunks_exact_mut(8) {
        let fd = i32::from_le_bytes(e[..4].try_into().unwrap_or_default());
        let events = u16::from_le_bytes([e[4], e[5]]);
        let mut rev = 0u16;
        if fd >= 0 {
            rev = readiness(l, c.pid, c.tid, fd as u64) & (events | POLLHUP | POLLNVAL | POLLERR);
        }
        e[6..8].copy_from_slice(&rev.to_le_bytes());
        if rev != 0 {
            ready += 1;
        }
    }
    let expired = timeout_ms.is_some_and(|t| l.k.now_ns() >= c.started_ns.saturating_add(t.saturating_mul(1_000_000)));
    if ready == 0 && !expired {
        return Outcome::Block;
    }
    write_bytes(l, c.pid, fds_ptr, &raw).map(|_| ready).into()
}

pub fn poll(l: &mut Linux, c: &Ctx) -> Outcome {
    let t = c.args[2] as i64 as i32;
    poll_fds(l, c, c.args[0], c.args[1], (t >= 0).then_some(t as u64))
}

/// ppoll(fds, nfds, struct timespec *timeout, const sigset_t *sigmask, size_t sigsetsize): poll
/// under that mask (if given).
pub fn ppoll(l: &mut Linux, c: &Ctx) -> Outcome {
    match user_timeout_ms(l, c.pid, c.args[2], 1_000_000_000) {
        Ok(t) => with_wait_mask(l, c, c.args[3], c.args[4], |l| poll_fds(l, c, c.args[0], c.args[1], t)),
        Err(e) => e.into(),
    }
}
