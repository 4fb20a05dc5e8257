//! Grants (DESIGN rule 2, Hubris "leases"): bulk data moves by a right to a range of memory that
//! travels with one request, never by a pointer. Three kinds (`ipc::msg::GrantKind`):
//!
//! * **own**: a range of the sender's own heap arena or stack;
//! * **user**: a range of a user address space (only servers with `user_memory`, i.e. the
//!   Linux ABI server, may lend user memory — it is how `read(2)` lands in a user buffer
//!   without a copy through that server);
//! * **forward**: a sub-range of a grant the sender received with a request it is serving, lent
//!   on to the next server (linux → vfs → ramfs), with rights that can only shrink.
//!
//! Every grant is checked when the request is sent and stored with the sending task in resolved
//! form ([`Grant`]): what memory, how long, which rights, and the chain of requests it was
//! forwarded through. The receiver copies through the nucleus (`read`/`write`) only while it
//! serves that request *and* every request in the chain is still outstanding, so a sender that
//! died (whose arena may already be freed) or a request that was answered is never reached: the
//! grant is revoked by the reply. Nothing here hands out an address.

use crate::call::caller_waiting;
use crate::sched::{self, State};
use crate::task::tag_caller;
use ipc::msg::{GrantKind, GRANT_READ, GRANT_WRITE};
use ipc::{GrantRef, IpcError};
use server_rt::{AspaceRef, MemError};

/// How many times a grant may be lent on (linux → vfs → fs → one more).
pub const MAX_FORWARDS: usize = 4;

/// The memory a grant reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Memory {
    /// Kernel memory (a task's arena or stack) starting at this address.
    Kernel(u64),
    /// User memory: the address space and the user address where the range starts.
    User(AspaceRef, u64),
}

/// A checked grant, as stored with the task whose outstanding call carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub memory: Memory,
    pub len: u64,
    pub rights: u32,
    /// The requests it was forwarded through: (endpoint, tag) pairs whose callers must still be
    /// waiting for the grant to be usable. `via_len` entries are valid.
    pub via: [(usize, u64); MAX_FORWARDS],
    pub via_len: usize,
}

impl Grant {
    fn new(memory: Memory, len: u64, rights: u32) -> Grant {
        Grant { memory, len, rights, via: [(0, 0); MAX_FORWARDS], via_len: 0 }
    }

    /// Whether every request this grant was forwarded through is still outstanding.
    fn chain_alive(&self, st: &State) -> bool {
        self.via[..self.via_len].iter().all(|&(e, tag)| caller_waiting(st, e, tag))
    }
}

fn rights_ok(rights: u32) -> bool {
    rights & (GRANT_READ | GRANT_WRITE) != 0 && rights & !(GRANT_READ | GRANT_WRITE) == 0
}

/// Validates the grant task `cur` attaches to a call; its stored form, or `None` for no grant.
pub fn check_grant(st: &mut State, cur: usize, g: &GrantRef) -> Result<Option<Grant>, IpcError> {
    if g.is_none() {
        return Ok(None);
    }
    if !rights_ok(g.rights) {
        return Err(IpcError::BadGrant);
    }
    let end = g.end().ok_or(IpcError::BadGrant)?;
    match g.kind {
        GrantKind::OWN => {
            let t = st.task(cur);
            let within = |(lo, hi): (u64, u64)| lo < hi && g.offset >= lo && end <= hi;
            let arena = t.arena.map(crate::mem::arena::range);
            let stack = t.stack.as_ref().map(|s| (s.bottom(), s.top()));
            if arena.is_some_and(within) || stack.is_some_and(within) {
                Ok(Some(Grant::new(Memory::Kernel(g.offset), g.len, g.rights)))
            } else {
                Err(IpcError::BadGrant)
            }
        }
        GrantKind::USER => {
            let may = st.task(cur).spec.and_then(|s| crate::servers::specs().get(s)).is_some_and(|s| s.user_memory);
            if !may {
                return Err(IpcError::NotPermitted);
            }
            let aspace = AspaceRef(g.source);
            if end > arch::user::USER_TOP || !crate::user::aspace_valid(aspace) {
                return Err(IpcError::BadGrant);
            }
            Ok(Some(Grant::new(Memory::User(aspace, g.offset), g.len, g.rights)))
        }
        GrantKind::FORWARD => {
            let e = st.task(cur).endpoint.ok_or(IpcError::BadGrant)?;
            if !caller_waiting(st, e, g.source) {
                return Err(IpcError::BadGrant);
            }
            let (caller, _) = tag_caller(g.source);
            let outer = st.task(caller).grant.ok_or(IpcError::BadGrant)?;
            if end > outer.len || g.rights & !outer.rights != 0 || outer.via_len == MAX_FORWARDS {
                return Err(IpcError::BadGrant);
            }
            let memory = match outer.memory {
                Memory::Kernel(addr) => Memory::Kernel(addr + g.offset),
                Memory::User(a, va) => Memory::User(a, va + g.offset),
            };
            let mut grant = Grant { memory, len: g.len, rights: g.rights, ..outer };
            grant.via[grant.via_len] = (e, g.source);
            grant.via_len += 1;
            Ok(Some(grant))
        }
        _ => Err(IpcError::BadGrant),
    }
}

/// The memory of the grant of request `tag` (which the current task must be serving), checked
/// for `need` rights over `[offset, offset + len)`. The grant is read in place (it is ~110
/// bytes: a copy would cost more than the checks).
fn usable(st: &State, tag: u64, offset: u64, len: u64, need: u32) -> Result<Memory, IpcError> {
    let task = |i: usize| st.tasks.get(i).and_then(|t| t.as_ref()).ok_or(IpcError::BadGrant);
    let e = task(sched::current())?.endpoint.ok_or(IpcError::BadGrant)?;
    if !caller_waiting(st, e, tag) {
        return Err(IpcError::BadGrant); // answered, abandoned, or never ours: revoked
    }
    let (caller, _) = tag_caller(tag);
    let g = task(caller)?.grant.as_ref().ok_or(IpcError::BadGrant)?;
    let end = offset.checked_add(len).ok_or(IpcError::BadGrant)?;
    if g.rights & need == 0 || end > g.len || !g.chain_alive(st) {
        return Err(IpcError::BadGrant);
    }
    Ok(g.memory)
}

/// Copies between the grant of request `tag` (which the current task must be serving) and a
/// buffer of the current task: into the grant when `write`, out of it otherwise.
fn copy(tag: u64, offset: u64, buf: *mut u8, len: usize, write: bool) -> Result<(), IpcError> {
    arch::cpu::without_interrupts(|| {
        let st = sched::lock();
        let need = if write { GRANT_WRITE } else { GRANT_READ };
        match usable(&st, tag, offset, len as u64, need)? {
            Memory::Kernel(addr) => {
                let at = (addr + offset) as *mut u8;
                // SAFETY: the range was checked at send time to lie in the arena or stack of the
                // task that granted it (for a forwarded grant, the first sender in the chain);
                // that task is blocked in the request the grant came with (every link of the
                // chain was checked just now, under the lock that killing a task also takes),
                // so its memory is allocated and nobody else writes it. `buf` is the current
                // task's own buffer of `len` bytes; the two cannot overlap.
                unsafe {
                    if write {
                        core::ptr::copy_nonoverlapping(buf as *const u8, at, len);
                    } else {
                        core::ptr::copy_nonoverlapping(at as *const u8, buf, len);
                    }
                }
                Ok(())
            }
            Memory::User(aspace, va) => {
                // SAFETY: `buf` is the current task's own buffer of `len` bytes (from `read` or
                // `write` below), alive for this call.
                let r = unsafe {
                    if write {
                        crate::user::aspace_write_as_user(aspace, va + offset, core::slice::from_raw_parts(buf, len))
                    } else {
                        crate::user::aspace_read(aspace, va + offset, core::slice::from_raw_parts_mut(buf, len))
                    }
                };
                r.map_err(user_error)
            }
        }
    })
}

fn user_error(e: MemError) -> IpcError {
    match e {
        MemError::Fault => IpcError::Fault,
        _ => IpcError::BadGrant,
    }
}

/// Copies `len` bytes at `state_offset` of the current server's state area into the grant of
/// request `tag` at `offset`, with no copy through the server: how a RAM file system answers
/// a read straight from the pages that hold the file.
pub fn write_from_state(spec: usize, tag: u64, offset: u64, state_offset: u64, len: u64) -> Result<(), IpcError> {
    arch::cpu::without_interrupts(|| {
        let st = sched::lock();
        let memory = usable(&st, tag, offset, len, GRANT_WRITE)?;
        let mut done = 0u64;
        crate::state::with_chunks(spec, state_offset, len, |chunk| {
            let at = offset + done;
            done += chunk.len() as u64;
            match memory {
                Memory::Kernel(addr) => {
                    // SAFETY: as in `copy`: the granted range (checked by `usable` to hold
                    // `offset + len`) belongs to a task blocked in this request; `chunk` is a
                    // state-area page the nucleus owns, which cannot overlap a task's arena.
                    unsafe { core::ptr::copy_nonoverlapping(chunk.as_ptr(), (addr + at) as *mut u8, chunk.len()) };
                    Ok(())
                }
                Memory::User(aspace, va) => {
                    crate::user::aspace_write_as_user(aspace, va + at, chunk).map_err(user_error)
                }
            }
        })
    })
}

pub fn read(tag: u64, offset: u64, buf: &mut [u8]) -> Result<(), IpcError> {
    copy(tag, offset, buf.as_mut_ptr(), buf.len(), false)
}

pub fn write(tag: u64, offset: u64, buf: &[u8]) -> Result<(), IpcError> {
    copy(tag, offset, buf.as_ptr() as *mut u8, buf.len(), true)
}
