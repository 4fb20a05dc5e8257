//! The protocols of Cairn's own servers, as data: opcodes, argument layouts, reply fields and
//! the errno each failure uses, one module per server. A request is an `ipc::Sqe` (opcode, six
//! argument words, an optional grant) and its answer an `ipc::Cqe` (`result` >= 0 on success,
//! a negated [`Errno`](crate::Errno) on failure, an `IpcError` code below -4096 when the IPC
//! layer failed). Structures that travel through grants are `#[repr(C)]` zerocopy types with no
//! padding, so both sides read them as bytes without `unsafe`.
//!
//! Must not: hold logic beyond trivial constructors and checks; every server validates what it
//! receives by value.

pub mod blk;
