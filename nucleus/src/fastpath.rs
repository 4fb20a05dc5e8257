//! The IPC fast path (seL4 style): when the other side is already waiting, switch straight to
//! it instead of going through the run queues.
//!
//! * `call`: the server is blocked in `receive` and nothing is queued before us → copy the
//!   caller's request into the server's `request` slot (its one copy on the way in; the tag is
//!   stamped there), block the caller on the reply, switch to the server.
//! * `reply_and_wait`: the caller is blocked on exactly this reply and no request (or
//!   notification) is queued →
//!   the reply is already in the caller's slot; block the server in `receive`, switch to the
//!   caller. When the server runs again, `call::reply_and_receive_into` finds the next request
//!   in its slot and copies it into the serving loop's buffer, without the receive loop.
//!
//! Every other case returns the lock to the caller, which takes the slow path. Both functions
//! are short on purpose: they are what the round-trip benchmark measures.

use crate::sched::{self, State};
use crate::task::TaskState;
use core::sync::atomic::{AtomicBool, Ordering};
use ipc::Sqe;
use spin::MutexGuard;

type Guard = MutexGuard<'static, State>;

/// Cleared by `fastpath=off` on the command line (to measure the slow path).
pub static ENABLED: AtomicBool = AtomicBool::new(true);

pub fn call(mut st: Guard, cur: usize, e: usize, req: &Sqe, tag: u64, blocked: TaskState) -> Result<(), Guard> {
    if !ENABLED.load(Ordering::Relaxed) {
        return Err(st);
    }
    let ep = st.endpoints[e].as_ref().expect("resolved endpoint");
    let Some(server) = ep.server.map(|s| s.index) else { return Err(st) };
    if !ep.queue.is_empty() || !matches!(st.task(server).state, TaskState::BlockedReceive { .. }) {
        return Err(st);
    }
    // The one copy of the request: into the server's slot, stamped with the caller's tag.
    let slot = st.task(server).request.insert(*req);
    slot.tag = tag;
    st.task(cur).state = blocked;
    sched::switch_to(st, server);
    Ok(())
}

pub fn reply_and_wait(mut st: Guard, cur: usize, caller: usize, until_ns: u64) -> Result<(), Guard> {
    if !ENABLED.load(Ordering::Relaxed) {
        return Err(st);
    }
    let e = st.task(cur).endpoint.expect("a server replying has an endpoint");
    let queued = st.endpoints[e].as_ref().is_some_and(|ep| !ep.queue.is_empty());
    if queued || st.task(cur).request.is_some() || st.task(cur).notify_bits != 0 {
        return Err(st);
    }
    st.task(cur).state = TaskState::BlockedReceive { until_ns };
    sched::switch_to(st, caller);
    Ok(())
}
