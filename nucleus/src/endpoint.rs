//! Endpoints: where requests to a server wait. An endpoint outlives the server instances that
//! serve it (clients find it by name), and its generation moves on at every death, which makes
//! every capability issued for the dead instance stale (DESIGN rule 3). Requests queue on a
//! bounded lock-free ring from `ipc/`; a caller has at most one synchronous call outstanding,
//! so a ring of `MAX_TASKS` entries cannot overflow on the synchronous path.

use crate::task::{TaskId, MAX_TASKS};
use ipc::{Ring, Sqe};

pub const MAX_ENDPOINTS: usize = 32;

pub struct Endpoint {
    pub name: &'static str,
    pub generation: u32,
    /// The live server instance, if any.
    pub server: Option<TaskId>,
    pub queue: Ring<Sqe, MAX_TASKS>,
}

impl Endpoint {
    pub fn new(name: &'static str) -> Self {
        Endpoint { name, generation: 1, server: None, queue: Ring::new() }
    }
}
