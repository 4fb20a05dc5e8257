//! Advisory file locks, kept as Linux keeps them (fcntl(2), flock(2)):
//!
//! * **POSIX record locks** (`F_SETLK`, `F_SETLKW`, `F_GETLK`): byte ranges owned by a process,
//!   not inherited by fork, kept across exec, and all dropped when the process closes *any*
//!   descriptor of the file (however many others it still has) or exits.
//! * **Open-file-description locks** (`F_OFD_SETLK`, `F_OFD_SETLKW`, `F_OFD_GETLK`): the same
//!   ranges in the same space, owned by the description (shared by dup and fork), dropped
//!   when its last descriptor closes; `F_OFD_GETLK` reports their owner as pid -1.
//! * **flock locks**: whole-file, shared or exclusive, owned by the description; a space of
//!   their own that never conflicts with the other two.
//!
//! Within an owner, a new range replaces what it covers (splitting a longer lock) and merges
//! with adjacent ranges of the same type, so `F_GETLK` sees what Linux would. A lock that
//! cannot be had makes `F_SETLKW` and a blocking `flock` wait: the request is run again
//! whenever something changes (`Outcome::Block`), and its wait is recorded by tag so that a
//! process-owned wait that would close a cycle of waits fails with `EDEADLK` instead. Locks
//! of a description are found dead through a weak reference when it is gone.
//!
//! Only regular files are lockable here; a lock on a pipe, terminal or device is `EINVAL`.

use crate::files::{Object, OpenFile};
use crate::process::{read_bytes, word_at, write_bytes};
use crate::sys::rw::{O_ACCMODE, O_RDWR, O_WRONLY};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::proto::FileId;
use abi::Errno;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

pub const F_GETLK: u64 = 5;
pub const F_SETLK: u64 = 6;
pub const F_SETLKW: u64 = 7;
pub const F_OFD_GETLK: u64 = 36;
pub const F_OFD_SETLK: u64 = 37;
pub const F_OFD_SETLKW: u64 = 38;

const F_RDLCK: u16 = 0;
const F_WRLCK: u16 = 1;
const F_UNLCK: u16 = 2;

const LOCK_SH: u64 = 1;
const LOCK_EX: u64 = 2;
const LOCK_NB: u64 = 4;
const LOCK_UN: u64 = 8;

/// `struct flock`: l_type, l_whence, l_start at 8, l_len at 16, l_pid at 24.
const FLOCK_LEN: usize = 32;

/// How far a chain of waits is followed looking for a cycle (Linux: 10).
const MAX_DEADLOCK_DEPTH: usize = 10;

#[derive(Clone)]
enum Owner {
    Process(Pid),
    Description(Weak<RefCell<OpenFile>>),
}

impl Owner {
    fn same(&self, other: &Owner) -> bool {
        match (self, other) {
            (Owner::Process(a), Owner::Process(b)) => a == b,
            (Owner::Description(a), Owner::Description(b)) => a.ptr_eq(b),
            _ => false,
        }
    }

    fn alive(&self) -> bool {
        match self {
            Owner::Process(_) => true,
            Owner::Description(d) => d.strong_count() > 0,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Space {
    Record,
    Flock,
}

#[derive(Clone)]
struct Lock {
    file: FileId,
    space: Space,
    owner: Owner,
    write: bool,
    /// First and last byte (inclusive; `u64::MAX` for "to the end and beyond").
    start: u64,
    end: u64,
}

impl Lock {
    fn conflicts(&self, file: FileId, space: Space, owner: &Owner, write: bool, start: u64, end: u64) -> bool {
        self.file == file
            && self.space == space
            && !self.owner.same(owner)
            && (self.write || write)
            && self.start <= end
            && start <= self.end
    }
}

/// A process-owned F_SETLKW that waits: what it wants (for deadlock detection).
struct Wait {
    tag: u64,
    pid: Pid,
    file: FileId,
    write: bool,
    start: u64,
    end: u64,
}

#[derive(Default)]
pub struct Locks {
    held: Vec<Lock>,
    waits: Vec<Wait>,
}

impl Locks {
    /// Whether no lock is held (then closing a file releases none).
    pub fn none_held(&self) -> bool {
        self.held.is_empty()
    }

    fn prune(&mut self) {
        self.held.retain(|l| l.owner.alive());
    }

    fn conflict(&self, file: FileId, space: Space, owner: &Owner, write: bool, start: u64, end: u64) -> Option<&Lock> {
        self.held.iter().find(|l| l.owner.alive() && l.conflicts(file, space, owner, write, start, end))
    }

    /// Sets (or with `write: None`, removes) `owner`'s lock on `start..=end`: what it had
    /// there is replaced, longer locks split, adjacent ones of the same type merged.
    fn set(&mut self, file: FileId, space: Space, owner: Owner, write: Option<bool>, start: u64, end: u64) {
        let mut kept = Vec::with_capacity(self.held.len() + 2);
        let (mut start, mut end) = (start, end);
        for l in self.held.drain(..) {
            if l.file != file || l.space != space || !l.owner.same(&owner) {
                kept.push(l);
                continue;
            }
            let touches = l.start <= end.saturating_add(1) && start <= l.end.saturating_add(1);
            if Some(l.write) == write && touches {
                // Same type, overlapping or adjacent: absorbed into the new lock.
                start = start.min(l.start);
                end = end.max(l.end);
                continue;
            }
            if l.start > end || start > l.end {
                kept.push(l);
                continue;
            }
            // Overlaps with another type (or is being unlocked): keep what sticks out.
            if l.start < start {
                kept.push(Lock { end: start - 1, ..l.clone() });
            }
            if l.end > end {
                kept.push(Lock { start: end + 1, ..l });
            }
        }
        if let Some(write) = write {
            kept.push(Lock { file, space, owner, write, start, end });
        }
        self.held = kept;
    }

    /// Whether `pid` waiting for `blocker` would close a cycle of process-owned waits.
    fn would_deadlock(&self, pid: Pid, blocker: &Lock) -> bool {
        let mut next = blocker.owner.clone();
        for _ in 0..MAX_DEADLOCK_DEPTH {
            let Owner::Process(q) = next else { return false };
            if q == pid {
                return true;
            }
            let Some(w) = self.waits.iter().find(|w| w.pid == q) else { return false };
            let Some(b) = self.conflict(w.file, Space::Record, &Owner::Process(q), w.write, w.start, w.end) else {
                return false;
            };
            next = b.owner.clone();
        }
        false
    }
}

/// The open regular file behind `fd` of the caller: its description and file id.
fn lockable(l: &Linux, c: &Ctx, fd: u64) -> Result<(Rc<RefCell<OpenFile>>, FileId, u32), Errno> {
    let p = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?;
    let file = p.fds.get(fd)?.file.clone();
    let (id, flags) = {
        let f = file.borrow();
        match f.object {
            Object::File { id, .. } => (id, f.flags),
            _ => return Err(Errno::EINVAL),
        }
    };
    Ok((file, id, flags))
}

/// fcntl's lock commands on `fd` with `struct flock` at `arg`.
pub fn fcntl(l: &mut Linux, c: &Ctx, fd: u64, cmd: u64, arg: u64) -> Outcome {
    match fcntl_lock(l, c, fd, cmd, arg) {
        Ok(o) => o,
        Err(e) => {
            forget(l, c.tag);
            e.into()
        }
    }
}

fn fcntl_lock(l: &mut Linux, c: &Ctx, fd: u64, cmd: u64, arg: u64) -> Result<Outcome, Errno> {
    let (desc, id, flags) = lockable(l, c, fd)?;
    let b = read_bytes(l, c.pid, arg, FLOCK_LEN)?;
    let ltype = u16::from_le_bytes([b[0], b[1]]);
    let whence = u16::from_le_bytes([b[2], b[3]]);
    let (lstart, len) = (word_at(&b, 8) as i64, word_at(&b, 16) as i64);
    let lpid = i32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && lpid != 0 {
        return Err(Errno::EINVAL);
    }
    if ltype > F_UNLCK {
        return Err(Errno::EINVAL);
    }
    let base: i64 = match whence {
        0 => 0,
        1 => desc.borrow().offset as i64,
        2 => crate::sys::stat::attr_of_id(l, id)?.size as i64,
        _ => return Err(Errno::EINVAL),
    };
    let from = base.checked_add(lstart).ok_or(Errno::EOVERFLOW)?;
    // l_len 0: to the end, however far it grows; negative: the bytes before l_start.
    let (start, end) = match len {
        0 => (from, i64::MAX),
        n if n > 0 => (from, from.checked_add(n - 1).ok_or(Errno::EOVERFLOW)?),
        n => (from.checked_add(n).ok_or(Errno::EINVAL)?, from - 1),
    };
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let (start, end) = (start as u64, if end == i64::MAX { u64::MAX } else { end as u64 });
    let owner = if ofd { Owner::Description(Rc::downgrade(&desc)) } else { Owner::Process(c.pid) };
    l.locks.prune();
    if matches!(cmd, F_GETLK | F_OFD_GETLK) {
        if ltype == F_UNLCK {
            return Err(Errno::EINVAL);
        }
        let mut out = b.clone();
        match l.locks.conflict(id, Space::Record, &owner, ltype == F_WRLCK, start, end) {
            Some(h) => {
                let pid = match h.owner {
                    Owner::Process(p) => p as i32,
                    Owner::Description(_) => -1,
                };
                let len = if h.end == u64::MAX { 0 } else { (h.end - h.start + 1) as i64 };
                out[0..2].copy_from_slice(&(if h.write { F_WRLCK } else { F_RDLCK }).to_le_bytes());
                out[2..4].copy_from_slice(&0u16.to_le_bytes());
                out[8..16].copy_from_slice(&(h.start as i64).to_le_bytes());
                out[16..24].copy_from_slice(&len.to_le_bytes());
                out[24..28].copy_from_slice(&pid.to_le_bytes());
            }
            None => out[0..2].copy_from_slice(&F_UNLCK.to_le_bytes()),
        }
        write_bytes(l, c.pid, arg, &out)?;
        return Ok(Outcome::Done(0));
    }
    // A read lock needs the file open for reading, a write lock for writing.
    let access = flags & O_ACCMODE;
    if (ltype == F_RDLCK && access == O_WRONLY) || (ltype == F_WRLCK && access != O_WRONLY && access != O_RDWR) {
        return Err(Errno::EBADF);
    }
    let write = match ltype {
        F_UNLCK => None,
        t => Some(t == F_WRLCK),
    };
    if let Some(w) = write {
        if let Some(h) = l.locks.conflict(id, Space::Record, &owner, w, start, end).cloned() {
            if !matches!(cmd, F_SETLKW | F_OFD_SETLKW) {
                return Err(Errno::EAGAIN);
            }
            if !ofd && l.locks.would_deadlock(c.pid, &h) {
                return Err(Errno::EDEADLK);
            }
            if !ofd && !l.locks.waits.iter().any(|x| x.tag == c.tag) {
                l.locks.waits.push(Wait { tag: c.tag, pid: c.pid, file: id, write: w, start, end });
            }
            return Ok(Outcome::Block);
        }
    }
    forget(l, c.tag);
    l.locks.set(id, Space::Record, owner, write, start, end);
    Ok(Outcome::Done(0))
}

/// flock(fd, operation).
pub fn flock(l: &mut Linux, c: &Ctx) -> Outcome {
    let (fd, op) = (c.args[0], c.args[1]);
    let (desc, id, _) = match lockable(l, c, fd) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let write = match op & !LOCK_NB {
        LOCK_SH => Some(false),
        LOCK_EX => Some(true),
        LOCK_UN => None,
        _ => return Errno::EINVAL.into(),
    };
    let owner = Owner::Description(Rc::downgrade(&desc));
    l.locks.prune();
    if let Some(w) = write {
        let had = l.locks.held.iter().find(|h| h.file == id && h.space == Space::Flock && h.owner.same(&owner));
        if had.is_some_and(|h| h.write == w) {
            return Outcome::Done(0);
        }
        // A conversion drops the old lock first, as on Linux (it is not atomic).
        l.locks.set(id, Space::Flock, owner.clone(), None, 0, u64::MAX);
        if l.locks.conflict(id, Space::Flock, &owner, w, 0, u64::MAX).is_some() {
            return if op & LOCK_NB != 0 { Errno::EAGAIN.into() } else { Outcome::Block };
        }
    }
    l.locks.set(id, Space::Flock, owner, write, 0, u64::MAX);
    Outcome::Done(0)
}

/// Process `pid` closed descriptors of `files`: its record locks on them go.
pub fn closed(l: &mut Linux, pid: Pid, files: &[FileId]) {
    if files.is_empty() || l.locks.held.is_empty() {
        return;
    }
    l.locks.held.retain(|h| !(matches!(h.owner, Owner::Process(p) if p == pid) && files.contains(&h.file)));
}

/// Process `pid` is gone: its record locks and waits go.
pub fn process_gone(l: &mut Linux, pid: Pid) {
    l.locks.held.retain(|h| !matches!(h.owner, Owner::Process(p) if p == pid));
    l.locks.waits.retain(|w| w.pid != pid);
}

/// The blocked request `tag` ended without its lock (interrupted, or its thread gone).
pub fn forget(l: &mut Linux, tag: u64) {
    l.locks.waits.retain(|w| w.tag != tag);
}
