//! epoll(7): an interest list of (descriptor, open file description) pairs and the events each
//! is watched for, kept by an epoll instance that is itself a descriptor.
//!
//! Readiness is not pushed by the objects here: `epoll_wait` asks each interest's object now
//! (`poll::readiness_of`, the same answer poll(2) gets) and blocks, as every wait in this
//! server does, by answering `Block` and being run again when something changes. On top:
//!
//! * **level-triggered** interests are reported whenever ready, in Linux's order: the order
//!   in which they became ready (as seen at `EPOLL_CTL_ADD` and at each wait), a reported one
//!   going to the back, so a short `maxevents` does not starve the rest;
//! * **edge-triggered** (`EPOLLET`) ones only when they gained an event bit or their object
//!   moved on since they were last reported (for input: a write or an expiry; for output: a
//!   read; `poll::event_seq`), which is when Linux's wake-ups would queue them;
//! * **one-shot** (`EPOLLONESHOT`) ones are disabled once reported, until `EPOLL_CTL_MOD`.
//!
//! An interest names its description weakly: it goes away when the description's last
//! descriptor closes, as on Linux (and stays while a dup of it is open, also as on Linux).
//! Regular files and most devices cannot be watched (EPERM); epoll instances can, with
//! Linux's limits (no cycles, at most four levels deep: ELOOP).

use crate::files::{Anon, Device, FileRef, Object, OpenFile};
use crate::process::{read_bytes, write_bytes};
use crate::sys::open::install_object;
use crate::sys::poll::{event_seq, readiness_of};
use crate::sys::rw::file_of;
use crate::{Ctx, Linux, Outcome};
use abi::syscall::layout::{EPOLL_EVENT_DATA_AT, EPOLL_EVENT_SIZE};
use abi::Errno;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

const EPOLL_CLOEXEC: u64 = 0o2000000;
const EPOLL_CTL_ADD: u64 = 1;
const EPOLL_CTL_DEL: u64 = 2;
const EPOLL_CTL_MOD: u64 = 3;

const EPOLLIN: u32 = 0x001;
const EPOLLOUT: u32 = 0x004;
const EPOLLERR: u32 = 0x008;
const EPOLLHUP: u32 = 0x010;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLWAKEUP: u32 = 1 << 29;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLET: u32 = 1 << 31;
/// The flags that say how to report, not what.
const MODES: u32 = EPOLLEXCLUSIVE | EPOLLWAKEUP | EPOLLONESHOT | EPOLLET;

/// How deep epoll instances may nest (Linux's EP_MAX_NESTS).
pub const MAX_NESTING: u32 = 4;

struct Interest {
    fd: u64,
    file: Weak<RefCell<OpenFile>>,
    events: u32,
    data: u64,
    /// One-shot and reported: quiet until EPOLL_CTL_MOD.
    disabled: bool,
    /// Edge-triggered: what was reported last (the bits, and the object's sequence numbers).
    last_bits: u32,
    last_seq: (u64, u64),
    /// On the ready list: its place in it (smaller is earlier).
    ready: Option<u64>,
}

#[derive(Default)]
pub struct Epoll {
    interests: Vec<Interest>,
    /// The next place at the back of the ready list.
    back: u64,
}

impl Epoll {
    fn prune(&mut self) {
        self.interests.retain(|i| i.file.strong_count() > 0);
    }

    fn requeue(&mut self, i: usize) {
        self.interests[i].ready = Some(self.back);
        self.back += 1;
    }

    /// The live descriptions this instance watches.
    fn files(&self) -> Vec<FileRef> {
        self.interests.iter().filter(|i| !i.disabled).filter_map(|i| i.file.upgrade()).collect()
    }
}

pub fn epoll_create(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[0] as i64 as i32 <= 0 {
        return Errno::EINVAL.into();
    }
    create(l, c, 0)
}

pub fn epoll_create1(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[0] & !EPOLL_CLOEXEC != 0 {
        return Errno::EINVAL.into();
    }
    create(l, c, c.args[0])
}

fn create(l: &mut Linux, c: &Ctx, flags: u64) -> Outcome {
    let object = Object::Anon(Anon::Epoll(Rc::new(RefCell::new(Epoll::default()))));
    install_object(l, c.pid, object, flags).map(|fd| fd as i64).into()
}

fn epoll_of(file: &FileRef) -> Option<Rc<RefCell<Epoll>>> {
    match &file.borrow().object {
        Object::Anon(Anon::Epoll(e)) => Some(e.clone()),
        _ => None,
    }
}

/// Whether epoll `inner` reaches `target` through the instances it watches, or nests deeper
/// than [`MAX_NESTING`] below `depth`.
fn reaches(inner: &Rc<RefCell<Epoll>>, target: &Rc<RefCell<Epoll>>, depth: u32) -> bool {
    if Rc::ptr_eq(inner, target) || depth >= MAX_NESTING {
        return true;
    }
    inner.borrow().files().iter().filter_map(epoll_of).any(|e| reaches(&e, target, depth + 1))
}

pub fn epoll_ctl(l: &mut Linux, c: &Ctx) -> Outcome {
    match ctl(l, c) {
        Ok(()) => Outcome::Done(0),
        Err(e) => e.into(),
    }
}

fn ctl(l: &mut Linux, c: &Ctx) -> Result<(), Errno> {
    let [epfd, op, fd, event, ..] = c.args;
    let epfile = file_of(l, c, epfd)?;
    let target = file_of(l, c, fd)?;
    let ep = epoll_of(&epfile).ok_or(Errno::EINVAL)?;
    if Rc::ptr_eq(&epfile, &target) {
        return Err(Errno::EINVAL);
    }
    // What cannot be polled cannot be watched.
    match &target.borrow().object {
        Object::File { .. }
        | Object::Device { dev: Device::Null | Device::Zero | Device::Full | Device::Random, .. } => {
            return Err(Errno::EPERM)
        }
        _ => {}
    }
    let (events, data) = if op == EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let b = read_bytes(l, c.pid, event, EPOLL_EVENT_SIZE)?;
        let events = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let at = EPOLL_EVENT_DATA_AT;
        (events, u64::from_le_bytes(b[at..at + 8].try_into().map_err(|_| Errno::EFAULT)?))
    };
    let inner = epoll_of(&target);
    if events & EPOLLEXCLUSIVE != 0 {
        // Exclusive wake-ups: only on ADD, not with one-shot, not of an epoll instance.
        if op == EPOLL_CTL_MOD || events & EPOLLONESHOT != 0 || inner.is_some() {
            return Err(Errno::EINVAL);
        }
    }
    if op == EPOLL_CTL_ADD {
        if let Some(inner) = &inner {
            if reaches(inner, &ep, 1) {
                return Err(Errno::ELOOP);
            }
        }
    }
    let mut e = ep.borrow_mut();
    e.prune();
    let weak = Rc::downgrade(&target);
    let found = e.interests.iter().position(|i| i.fd == fd && i.file.ptr_eq(&weak));
    match (op, found) {
        (EPOLL_CTL_ADD, Some(_)) => Err(Errno::EEXIST),
        (EPOLL_CTL_ADD, None) => {
            e.interests.push(Interest {
                fd,
                file: weak,
                events,
                data,
                disabled: false,
                last_bits: 0,
                last_seq: (0, 0),
                ready: None,
            });
            // Ready already: on the ready list from now (Linux polls it at insertion).
            drop(e);
            let bits = readiness_of(l, c.pid, c.tid, &target, 1) as u32 & (events | EPOLLERR | EPOLLHUP) & !MODES;
            if bits != 0 {
                let mut e = ep.borrow_mut();
                let i = e.interests.len() - 1;
                e.requeue(i);
            }
            Ok(())
        }
        (EPOLL_CTL_MOD, Some(i)) => {
            if e.interests[i].events & EPOLLEXCLUSIVE != 0 {
                return Err(Errno::EINVAL);
            }
            let it = &mut e.interests[i];
            it.events = events;
            it.data = data;
            it.disabled = false;
            it.last_bits = 0;
            Ok(())
        }
        (EPOLL_CTL_DEL, Some(i)) => {
            e.interests.remove(i);
            Ok(())
        }
        (EPOLL_CTL_MOD | EPOLL_CTL_DEL, None) => Err(Errno::ENOENT),
        _ => Err(Errno::EINVAL),
    }
}

/// Whether epoll `ep` has an interest ready now (poll on an epoll descriptor), looking at
/// most `depth` levels down; reports nothing, so edge and one-shot state are untouched.
pub fn any_ready(l: &mut Linux, pid: crate::Pid, tid: crate::Pid, ep: &Rc<RefCell<Epoll>>, depth: u32) -> bool {
    let watched: Vec<(FileRef, u32)> = {
        let e = ep.borrow();
        e.interests.iter().filter(|i| !i.disabled).filter_map(|i| Some((i.file.upgrade()?, i.events))).collect()
    };
    watched.iter().any(|(f, events)| {
        let bits = readiness_of(l, pid, tid, f, depth + 1) as u32 & (events | EPOLLERR | EPOLLHUP) & !MODES;
        bits != 0
    })
}

/// The events ready on `ep` now, at most `max`, in ready-list order, with the edge-triggered
/// and one-shot rules.
fn collect(l: &mut Linux, c: &Ctx, ep: &Rc<RefCell<Epoll>>, max: usize) -> Vec<(u32, u64)> {
    let watched: Vec<Option<(FileRef, u32)>> = {
        let mut e = ep.borrow_mut();
        e.prune();
        e.interests.iter().map(|i| if i.disabled { None } else { Some((i.file.upgrade()?, i.events)) }).collect()
    };
    // Look at every interest: what it has, and whether that puts it on the ready list.
    let mut bits = alloc::vec![0u32; watched.len()];
    for (i, w) in watched.iter().enumerate() {
        let Some((file, events)) = w else { continue };
        let b = readiness_of(l, c.pid, c.tid, file, 1) as u32 & (events | EPOLLERR | EPOLLHUP) & !MODES;
        let seq = event_seq(file);
        let mut e = ep.borrow_mut();
        let it = &mut e.interests[i];
        bits[i] = b;
        if b == 0 {
            it.ready = None;
            it.last_bits = 0;
            continue;
        }
        if events & EPOLLET != 0 {
            // An edge: a bit gained, or a write (read) since, for an interest in input (output).
            let woke =
                (events & EPOLLIN != 0 && seq.0 != it.last_seq.0) || (events & EPOLLOUT != 0 && seq.1 != it.last_seq.1);
            let edge = b & !it.last_bits != 0 || woke;
            it.last_bits = b;
            it.last_seq = seq;
            if edge && it.ready.is_none() {
                e.requeue(i);
            }
        } else if it.ready.is_none() {
            e.requeue(i);
        }
    }
    let mut order: Vec<(u64, usize)> = {
        let e = ep.borrow();
        e.interests
            .iter()
            .enumerate()
            .filter_map(|(i, it)| Some((it.ready?, i)))
            .filter(|&(_, i)| bits[i] != 0)
            .collect()
    };
    order.sort_unstable();
    let mut out = Vec::new();
    let mut e = ep.borrow_mut();
    for (_, i) in order.into_iter().take(max) {
        out.push((bits[i], e.interests[i].data));
        let events = e.interests[i].events;
        if events & EPOLLONESHOT != 0 {
            e.interests[i].disabled = true;
            e.interests[i].ready = None;
        } else if events & EPOLLET != 0 {
            e.interests[i].ready = None; // back on the list at its next edge
        } else {
            e.requeue(i);
        }
    }
    out
}

/// epoll_wait and its variants: `timeout_ns` None waits for ever.
fn wait(l: &mut Linux, c: &Ctx, epfd: u64, events: u64, max: u64, timeout_ns: Option<u64>) -> Outcome {
    let max = max as i64 as i32;
    if max <= 0 || max as usize > i32::MAX as usize / EPOLL_EVENT_SIZE {
        return Errno::EINVAL.into();
    }
    let ep = match file_of(l, c, epfd) {
        Ok(f) => match epoll_of(&f) {
            Some(e) => e,
            None => return Errno::EINVAL.into(),
        },
        Err(e) => return e.into(),
    };
    let ready = collect(l, c, &ep, max as usize);
    if ready.is_empty() {
        let expired = timeout_ns.is_some_and(|t| l.k.now_ns() >= c.started_ns.saturating_add(t));
        return if expired { Outcome::Done(0) } else { Outcome::Block };
    }
    let mut out = alloc::vec![0u8; ready.len() * EPOLL_EVENT_SIZE];
    for (k, (bits, data)) in ready.iter().enumerate() {
        let at = k * EPOLL_EVENT_SIZE;
        out[at..at + 4].copy_from_slice(&bits.to_le_bytes());
        out[at + EPOLL_EVENT_DATA_AT..at + EPOLL_EVENT_DATA_AT + 8].copy_from_slice(&data.to_le_bytes());
    }
    write_bytes(l, c.pid, events, &out).map(|_| ready.len() as i64).into()
}

fn timeout_ms(ms: u64) -> Option<u64> {
    let ms = ms as i64 as i32;
    (ms >= 0).then(|| ms as u64 * 1_000_000)
}

pub fn epoll_wait(l: &mut Linux, c: &Ctx) -> Outcome {
    wait(l, c, c.args[0], c.args[1], c.args[2], timeout_ms(c.args[3]))
}

pub fn epoll_pwait(l: &mut Linux, c: &Ctx) -> Outcome {
    let t = timeout_ms(c.args[3]);
    crate::sys::signal::with_wait_mask(l, c, c.args[4], c.args[5], |l| wait(l, c, c.args[0], c.args[1], c.args[2], t))
}

pub fn epoll_pwait2(l: &mut Linux, c: &Ctx) -> Outcome {
    let t = if c.args[3] == 0 {
        None
    } else {
        match crate::sys::info::read_timespec(l, c.pid, c.args[3]) {
            Ok(ns) => Some(ns),
            Err(e) => return e.into(),
        }
    };
    crate::sys::signal::with_wait_mask(l, c, c.args[4], c.args[5], |l| wait(l, c, c.args[0], c.args[1], c.args[2], t))
}
