//! IPC building blocks shared by the nucleus, the servers and the host tools.
//!
//! * [`ring`]: a bounded, lock-free, multi-producer multi-consumer ring of fixed-size plain-data
//!   entries. Bounded means backpressure: a full ring hands the entry back instead of growing.
//! * [`msg`]: the message formats that travel on rings — submissions ([`Sqe`]) and completions
//!   ([`Cqe`]) in the style of Redox's and io_uring's queues — plus capability references and
//!   endpoint ids with generations, and the IPC error codes.
//! * [`trace`]: the fixed-size binary trace record and the stream header the host analyzer
//!   reads.
//!
//! # Invariants
//!
//! * `no_std`, no allocation, no locks: the same code runs in the nucleus (on
//!   `x86_64-unknown-none` and `aarch64-unknown-none`), in servers, and in host tools.
//! * Everything that crosses a ring or a trace buffer is `zerocopy` plain data of fixed size:
//!   no pointers into another task's memory can cross (DESIGN rule 2), and any bit pattern
//!   decodes without panicking (rule 5) — validating the values is the receiver's job.
//! * Only the ring core (`ring.rs`) contains `unsafe`, each block with its `// SAFETY:`
//!   argument; the crate denies `unsafe_code` and `ring.rs` alone opts out.
//!
//! # What it must not do
//!
//! It holds no policy: which task may send to which endpoint, how a dead server's requests are
//! completed, when a blocked receiver is woken — all of that is the nucleus's. It depends on no
//! server and on no kernel crate.
//!
//! ```
//! use ipc::{Cqe, Ring, Sqe};
//!
//! static REQUESTS: Ring<Sqe, 8> = Ring::new();
//! REQUESTS.try_push(Sqe::new(1, [0; 6])).unwrap();
//! let request = REQUESTS.try_pop().unwrap();
//! let reply = Cqe::new(request.tag, 0);
//! assert_eq!(reply.ipc_error(), None);
//! ```
//!
//! A capacity that is not a power of two is refused at compile time:
//!
//! ```compile_fail
//! let ring: ipc::Ring<u32, 3> = ipc::Ring::new();
//! ```
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod msg;
pub mod ring;
pub mod trace;

mod sync;

pub use msg::{CapRef, Cqe, EndpointId, GrantRef, IpcError, Sqe};
pub use ring::Ring;
pub use trace::{StreamHeader, TraceKind, TraceRecord};
