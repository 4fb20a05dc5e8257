//! Grants (DESIGN rule 2, Hubris "leases"): bulk data moves by a capability to a range of the
//! sender's memory that travels with one request. The range must lie inside the sender's own
//! heap arena or stack (checked when the request is sent); the receiver copies out of or into it
//! through the nucleus, only while that request is outstanding and only as the rights allow; the
//! grant is revoked when the reply is delivered (or the sender dies), so a stale or forged tag
//! reaches nothing. No pointer into another server's memory is ever handed out.

use crate::call::caller_waiting;
use crate::sched;
use crate::task::{tag_caller, Task};
use ipc::msg::{GRANT_OWN_MEMORY, GRANT_READ, GRANT_WRITE};
use ipc::{GrantRef, IpcError};

/// Validates a grant the task `t` attaches to a call; the stored form, or `None` for no grant.
pub fn check_grant(t: &Task, g: &GrantRef) -> Result<Option<(u64, u64, u32)>, IpcError> {
    if g.is_none() {
        return Ok(None);
    }
    let rights = g.cap.generation;
    if g.cap.slot != GRANT_OWN_MEMORY || rights & (GRANT_READ | GRANT_WRITE) == 0 || rights & !3 != 0 {
        return Err(IpcError::BadGrant);
    }
    let end = g.end().ok_or(IpcError::BadGrant)?;
    let within = |(lo, hi): (u64, u64)| lo < hi && g.offset >= lo && end <= hi;
    let arena = t.arena.map(crate::mem::arena::range);
    let stack = t.stack.as_ref().map(|s| (s.bottom(), s.top()));
    if arena.is_some_and(within) || stack.is_some_and(within) {
        Ok(Some((g.offset, g.len, rights)))
    } else {
        Err(IpcError::BadGrant)
    }
}

/// Copies between the grant of request `tag` (which the current task must be serving) and
/// `buf`: out of the grant when `write` is false, into it when true, at `offset` in the grant.
fn copy(tag: u64, offset: u64, buf: *mut u8, len: usize, write: bool) -> Result<(), IpcError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        let e = st.task(cur).endpoint.ok_or(IpcError::BadGrant)?;
        if !caller_waiting(&mut st, e, tag) {
            return Err(IpcError::BadGrant); // answered, abandoned, or never ours: revoked
        }
        let (caller, _) = tag_caller(tag);
        let (addr, glen, rights) = st.task(caller).grant.ok_or(IpcError::BadGrant)?;
        let need = if write { GRANT_WRITE } else { GRANT_READ };
        let end = offset.checked_add(len as u64).ok_or(IpcError::BadGrant)?;
        if rights & need == 0 || end > glen {
            return Err(IpcError::BadGrant);
        }
        let at = (addr + offset) as *mut u8;
        // SAFETY: `[addr, addr + glen)` was checked at send time to lie in the caller's own
        // arena or stack; the caller is blocked on this very request (checked above, under the
        // lock that killing it also takes), so that memory is allocated and nobody else writes
        // it; `buf` is the current task's own buffer of `len` bytes; the two cannot overlap.
        unsafe {
            if write {
                core::ptr::copy_nonoverlapping(buf as *const u8, at, len);
            } else {
                core::ptr::copy_nonoverlapping(at as *const u8, buf, len);
            }
        }
        Ok(())
    })
}

pub fn read(tag: u64, offset: u64, buf: &mut [u8]) -> Result<(), IpcError> {
    copy(tag, offset, buf.as_mut_ptr(), buf.len(), false)
}

pub fn write(tag: u64, offset: u64, buf: &[u8]) -> Result<(), IpcError> {
    copy(tag, offset, buf.as_ptr() as *mut u8, buf.len(), true)
}
