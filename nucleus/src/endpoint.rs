//! Endpoints: where requests to a server wait. An endpoint outlives the server instances that
//! serve it (clients find it by name), and its generation moves on at every death, which makes
//! every capability issued for the dead instance stale (DESIGN rule 3). Requests queue on a
//! bounded lock-free ring from `ipc/`. A caller has at most one synchronous call outstanding,
//! so only requests not yet received can fill it: servers call each other far below its
//! [`QUEUE_SLOTS`], and user threads (up to `MAX_TASKS` of them, more than the ring holds) that
//! find the `linux` ring full yield and try again (back-pressure, `syscall.rs`).

use crate::task::TaskId;
use ipc::{Ring, Sqe};

pub const MAX_ENDPOINTS: usize = 32;
/// Requests an endpoint queues before callers get `Full` (kept small: an endpoint is built on
/// the stack of whoever creates it).
pub const QUEUE_SLOTS: usize = 64;

pub struct Endpoint {
    pub name: &'static str,
    pub generation: u32,
    /// The live server instance, if any.
    pub server: Option<TaskId>,
    pub queue: Ring<Sqe, QUEUE_SLOTS>,
}

impl Endpoint {
    pub fn new(name: &'static str) -> Self {
        Endpoint { name, generation: 1, server: None, queue: Ring::new() }
    }
}
