//! IPC building blocks shared by the nucleus, the servers and the host tools.
//!
//! * [`ring`]: a bounded, lock-free, multi-producer multi-consumer ring of fixed-size plain-data
//!   entries. Bounded means backpressure: a full ring hands the entry back instead of growing.
//! * [`msg`]: the message formats that travel on rings — submissions ([`Sqe`]) and completions
//!   ([`Cqe`]) in the style of Redox's and io_uring's queues — plus capability references with
//!   generations and the IPC error codes. All are `zerocopy` plain data: no pointers into
//!   another task's memory can ever cross a ring.
//! * [`trace`]: the fixed-size binary trace record and the stream header the host analyzer reads.
//!
//! Only `ring.rs` contains `unsafe` (the slot storage); everything else denies it.
#![cfg_attr(not(test), no_std)]

pub mod msg;
pub mod ring;
pub mod trace;

mod sync;

pub use msg::{CapRef, Cqe, GrantRef, IpcError, Sqe};
pub use ring::Ring;
