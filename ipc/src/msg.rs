//! The message formats that travel on rings, the names they use for capabilities, and the IPC
//! error codes.
//!
//! A submission ([`Sqe`]) names an operation, carries six machine words and an optional grant
//! (a capability to a range of memory, for bulk data); a completion ([`Cqe`]) answers the
//! submission with the same tag. This is the shape of Redox's and io_uring's queue entries.
//!
//! # Invariants
//!
//! * Every message type is `#[repr(C)]` plain data deriving zerocopy's `FromBytes` and
//!   `IntoBytes`: any bit pattern is a valid value, there is no padding, and there are no
//!   pointers or references — a message cannot carry a way into another task's memory (DESIGN
//!   rule 2). Bulk data moves by [`GrantRef`], which the nucleus checks against the holder's
//!   capabilities.
//! * Sizes are fixed and asserted below; changing one is an ABI change for every server.
//! * Generations are never 0 once issued ([`FIRST_GENERATION`], [`next_generation`]), so an
//!   all-zero reference ([`CapRef::NULL`]) never names a live object.
//!
//! # What it must not do
//!
//! Decoding a message never trusts it: a receiver validates every field by value (opcodes,
//! flags, grant bounds) before acting, and nothing here panics on any bit pattern. This module
//! holds formats only — no policy about which task may send what.
#![deny(unsafe_code)]

use core::fmt;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The first generation an object or a capability slot is issued with. Generation 0 is never
/// issued, so zeroed memory never names a live object.
pub const FIRST_GENERATION: u32 = 1;

/// The generation after `generation`: it moves on when an endpoint's server dies or a
/// capability slot is emptied, wrapping from `u32::MAX` to [`FIRST_GENERATION`] (skipping 0).
pub const fn next_generation(generation: u32) -> u32 {
    match generation.wrapping_add(1) {
        0 => FIRST_GENERATION,
        next => next,
    }
}

/// A capability reference: a slot in the holder's capability table plus the slot's generation
/// when the capability was granted. If the slot has since been emptied (and perhaps refilled),
/// its generation has moved on and the reference fails with [`IpcError::StaleGeneration`]
/// instead of reaching whatever the slot names now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CapRef {
    /// Index into the holder's capability table.
    pub slot: u32,
    /// The slot's generation when the capability was granted.
    pub generation: u32,
}

impl CapRef {
    /// Names nothing: generation 0 is never issued.
    pub const NULL: CapRef = CapRef { slot: 0, generation: 0 };

    /// A reference to `slot` as of `generation`.
    pub const fn new(slot: u32, generation: u32) -> CapRef {
        CapRef { slot, generation }
    }

    /// Whether this is [`CapRef::NULL`] (or any reference with generation 0).
    pub const fn is_null(self) -> bool {
        self.generation == 0
    }

    /// The reference packed into one word (`generation << 32 | slot`), for registers and
    /// trace records.
    pub const fn to_u64(self) -> u64 {
        (self.generation as u64) << 32 | self.slot as u64
    }

    /// The inverse of [`CapRef::to_u64`].
    pub const fn from_u64(word: u64) -> CapRef {
        CapRef { slot: word as u32, generation: (word >> 32) as u32 }
    }
}

/// An endpoint's identity: its index in the nucleus's endpoint table and the generation of the
/// server instance behind it. The generation moves on ([`next_generation`]) at every death of
/// that server, so an id captured before a restart never matches the new instance: the
/// requests and capabilities carrying it fail with [`IpcError::ServerDied`] (DESIGN rule 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct EndpointId {
    /// Index into the nucleus's endpoint table.
    pub index: u32,
    /// Generation of the server instance this id was taken from.
    pub generation: u32,
}

impl EndpointId {
    /// The same endpoint, as served by the instance started after the current one dies.
    pub const fn restarted(self) -> EndpointId {
        EndpointId { index: self.index, generation: next_generation(self.generation) }
    }

    /// `Ok` if this id names the instance whose generation is `current`, else
    /// [`IpcError::ServerDied`] (the instance it named is gone).
    pub const fn check(self, current: u32) -> Result<(), IpcError> {
        if self.generation == current && self.generation != 0 {
            Ok(())
        } else {
            Err(IpcError::ServerDied)
        }
    }
}

/// A grant: the right, for the duration of one request, to copy into or out of `len` bytes of
/// memory that the sender names (Hubris's "lease"). `kind` says what memory:
///
/// * [`GrantKind::OWN`]: the sender's own heap arena or stack; `offset` is the address.
/// * [`GrantKind::FORWARD`]: a sub-range of the grant that came with request `source`, which the
///   sender is serving; `offset` is relative to that grant. Lends a client's buffer on to the
///   next server without a copy (linux → vfs → ramfs).
/// * [`GrantKind::USER`]: user memory of address space `source` (an `AspaceRef` word), at user
///   address `offset`; only servers that own user memory (the Linux ABI server) may send it.
///
/// The nucleus checks the grant when the request is sent, copies through it only while the
/// request (and, for a forwarded grant, every request it came from) is outstanding, and
/// revokes it with the reply. `len == 0` means no grant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct GrantRef {
    /// One of the [`GrantKind`] values (0 = no grant).
    pub kind: u32,
    /// [`GRANT_READ`] | [`GRANT_WRITE`]: what the receiver may do.
    pub rights: u32,
    /// FORWARD: the tag of the request whose grant is lent on; USER: the address space.
    pub source: u64,
    /// OWN: the address; FORWARD: the offset inside the forwarded grant; USER: the user address.
    pub offset: u64,
    /// Length of the range in bytes; 0 = no grant.
    pub len: u64,
}

/// The values of [`GrantRef::kind`].
pub struct GrantKind;

impl GrantKind {
    /// No grant.
    pub const NONE: u32 = 0;
    /// The sender's own arena or stack.
    pub const OWN: u32 = 1;
    /// A sub-range of a grant the sender received.
    pub const FORWARD: u32 = 2;
    /// User memory of an address space.
    pub const USER: u32 = 3;
}

/// The receiver may copy out of the range.
pub const GRANT_READ: u32 = 1;
/// The receiver may copy into the range.
pub const GRANT_WRITE: u32 = 2;

impl GrantRef {
    /// No grant.
    pub const NONE: GrantRef = GrantRef { kind: GrantKind::NONE, rights: 0, source: 0, offset: 0, len: 0 };

    /// A grant of `len` bytes of the sender's own memory at `addr`, with `rights`.
    pub const fn own_memory(addr: u64, len: u64, rights: u32) -> GrantRef {
        GrantRef { kind: GrantKind::OWN, rights, source: 0, offset: addr, len }
    }

    /// Lends on `len` bytes at `offset` of the grant that came with request `tag`.
    pub const fn forward(tag: u64, offset: u64, len: u64, rights: u32) -> GrantRef {
        GrantRef { kind: GrantKind::FORWARD, rights, source: tag, offset, len }
    }

    /// A grant of `len` bytes of user memory at `va` in the address space whose handle word
    /// is `aspace`.
    pub const fn user(aspace: u64, va: u64, len: u64, rights: u32) -> GrantRef {
        GrantRef { kind: GrantKind::USER, rights, source: aspace, offset: va, len }
    }

    /// Whether this grants nothing.
    pub const fn is_none(&self) -> bool {
        self.len == 0 || self.kind == GrantKind::NONE
    }

    /// The end of the range (`offset + len`), or `None` if it overflows — which a receiver
    /// must treat as [`IpcError::BadGrant`].
    pub const fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.len)
    }
}

/// A submission: one request to a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Sqe {
    /// Names the request; set by the nucleus (it identifies the caller), and carried back
    /// unchanged in the [`Cqe`] that answers it.
    pub tag: u64,
    /// The operation, in the receiving server's protocol.
    pub opcode: u32,
    /// Operation flags, in the receiving server's protocol.
    pub flags: u32,
    /// Arguments, in the receiving server's protocol.
    pub args: [u64; 6],
    /// Memory lent to the server for this request, if any.
    pub grant: GrantRef,
    /// The originator's request id, for at-most-once execution across server restarts: unique
    /// per originating server instance (see `server_rt::RequestIds`), the same on every retry
    /// of one logical request, and passed on unchanged by servers that forward the request.
    /// 0 = the request is not retried (or is idempotent).
    pub rid: u64,
}

impl Sqe {
    /// A request for `opcode` with `args`, no flags and no grant; the nucleus sets the tag.
    pub const fn new(opcode: u32, args: [u64; 6]) -> Sqe {
        Sqe { tag: 0, opcode, flags: 0, args, grant: GrantRef::NONE, rid: 0 }
    }

    /// Whether this is a notification rather than a request (see [`NOTIFICATION`]).
    pub const fn is_notification(&self) -> bool {
        self.tag == 0 && self.opcode == NOTIFICATION
    }
}

/// `Sqe::opcode` of a notification: `receive` returns `Sqe { tag: 0, opcode: NOTIFICATION,
/// args[0]: the bits }` when another server (or a device interrupt) set notification bits on
/// the receiver. Notifications carry no reply; tag 0 never names a request.
pub const NOTIFICATION: u32 = u32::MAX;

/// A completion: the answer to the submission with the same tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Cqe {
    /// The tag of the [`Sqe`] this answers.
    pub tag: u64,
    /// Non-negative: success value. `-4095..=-1`: a negated errno from the server's protocol.
    /// `..=-4097`: an [`IpcError`] raised by the IPC layer ([`IpcError::code`]).
    pub result: i64,
    /// A second result word, in the server's protocol (a new file offset, a next cookie...).
    pub aux: u64,
    /// Completion flags, in the server's protocol.
    pub flags: u32,
    /// Keeps the layout free of implicit padding; always 0.
    pub _pad: u32,
}

impl Cqe {
    /// A completion of `tag` with `result`.
    pub const fn new(tag: u64, result: i64) -> Cqe {
        Cqe { tag, result, aux: 0, flags: 0, _pad: 0 }
    }

    /// A completion of `tag` that reports `error` from the IPC layer (for example every
    /// in-flight request of a server that died gets `ServerDied`).
    pub const fn from_ipc_error(tag: u64, error: IpcError) -> Cqe {
        Cqe::new(tag, error.code())
    }

    /// The IPC-layer error this completion reports, if `result` is one of their codes.
    pub const fn ipc_error(&self) -> Option<IpcError> {
        IpcError::from_code(self.result)
    }
}

const _: () = assert!(core::mem::size_of::<CapRef>() == 8);
const _: () = assert!(core::mem::size_of::<EndpointId>() == 8);
const _: () = assert!(core::mem::size_of::<GrantRef>() == 32);
const _: () = assert!(core::mem::size_of::<Sqe>() == 104);
const _: () = assert!(core::mem::size_of::<Cqe>() == 32);
const _: () = assert!(core::mem::align_of::<Sqe>() == 8 && core::mem::align_of::<Cqe>() == 8);

/// Why an IPC operation failed.
///
/// Each error has a stable code ([`IpcError::code`]) for the places where it travels as a
/// number (`Cqe.result`, a syscall return register). The codes sit below Linux's errno range
/// (`-4095..=-1`), so one `i64` can carry either kind without ambiguity:
///
/// | error | code |
/// |---|---|
/// | `NoSuchCap` | -4097 |
/// | `StaleGeneration` | -4098 |
/// | `ServerDied` | -4099 |
/// | `Full` | -4100 |
/// | `NoSlots` | -4101 |
/// | `NoMemory` | -4102 |
/// | `Busy` | -4103 |
/// | `BadTag` | -4104 |
/// | `NotPermitted` | -4105 |
/// | `WrongType` | -4106 |
/// | `BadGrant` | -4107 |
/// | `Fault` | -4108 |
///
/// Codes are never reused or renumbered; new errors take the next code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpcError {
    /// The capability slot is empty or out of range: the task does not hold it.
    NoSuchCap,
    /// The capability slot was emptied (and perhaps refilled) since the reference was issued.
    StaleGeneration,
    /// The server died before answering, or the capability names an instance that is gone.
    ServerDied,
    /// The ring is full (backpressure): retry later.
    Full,
    /// A fixed table (capabilities, endpoints, tasks) has no free slot.
    NoSlots,
    /// Out of memory.
    NoMemory,
    /// The object is busy (e.g. the server is already running).
    Busy,
    /// A reply named no request that is waiting for it.
    BadTag,
    /// The caller may not do this.
    NotPermitted,
    /// The capability names a different kind of object than the operation needs.
    WrongType,
    /// A grant's range is outside its object, overflows, or was already revoked.
    BadGrant,
    /// Granted user memory is not mapped (the system call it serves fails with EFAULT).
    Fault,
}

/// The code of the first error; the others follow in declaration order.
const FIRST_CODE: i64 = -4097;

impl IpcError {
    /// Every error, in code order.
    pub const ALL: [IpcError; 12] = [
        IpcError::NoSuchCap,
        IpcError::StaleGeneration,
        IpcError::ServerDied,
        IpcError::Full,
        IpcError::NoSlots,
        IpcError::NoMemory,
        IpcError::Busy,
        IpcError::BadTag,
        IpcError::NotPermitted,
        IpcError::WrongType,
        IpcError::BadGrant,
        IpcError::Fault,
    ];

    /// The stable negative code (see the table on [`IpcError`]).
    pub const fn code(self) -> i64 {
        FIRST_CODE
            - match self {
                IpcError::NoSuchCap => 0,
                IpcError::StaleGeneration => 1,
                IpcError::ServerDied => 2,
                IpcError::Full => 3,
                IpcError::NoSlots => 4,
                IpcError::NoMemory => 5,
                IpcError::Busy => 6,
                IpcError::BadTag => 7,
                IpcError::NotPermitted => 8,
                IpcError::WrongType => 9,
                IpcError::BadGrant => 10,
                IpcError::Fault => 11,
            }
    }

    /// The error whose code is `code`, or `None` for any other value (success values,
    /// errnos, garbage — this never panics).
    pub const fn from_code(code: i64) -> Option<IpcError> {
        if code > FIRST_CODE || code < FIRST_CODE - (IpcError::ALL.len() as i64 - 1) {
            return None;
        }
        Some(IpcError::ALL[(FIRST_CODE - code) as usize])
    }

    /// A short lower-case description.
    pub const fn as_str(self) -> &'static str {
        match self {
            IpcError::NoSuchCap => "no such capability",
            IpcError::StaleGeneration => "stale capability",
            IpcError::ServerDied => "server died",
            IpcError::Full => "ring full",
            IpcError::NoSlots => "no free slot",
            IpcError::NoMemory => "out of memory",
            IpcError::Busy => "busy",
            IpcError::BadTag => "reply to no waiting request",
            IpcError::NotPermitted => "not permitted",
            IpcError::WrongType => "capability of the wrong type",
            IpcError::BadGrant => "bad grant",
            IpcError::Fault => "granted memory not mapped",
        }
    }
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for IpcError {}

impl From<IpcError> for i64 {
    fn from(error: IpcError) -> i64 {
        error.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_stable_and_round_trip() {
        let expected = [-4097, -4098, -4099, -4100, -4101, -4102, -4103, -4104, -4105, -4106, -4107, -4108];
        for (e, code) in IpcError::ALL.into_iter().zip(expected) {
            assert_eq!(e.code(), code, "{e:?} was renumbered");
            assert_eq!(i64::from(e), code);
            assert_eq!(IpcError::from_code(code), Some(e));
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn from_code_rejects_everything_else() {
        for code in [i64::MIN, -4109, -4096, -4095, -1, 0, 1, 4097, i64::MAX] {
            assert_eq!(IpcError::from_code(code), None, "{code}");
        }
        assert_eq!(Cqe::new(1, -2).ipc_error(), None, "an errno is not an IPC error");
        assert_eq!(Cqe::from_ipc_error(1, IpcError::ServerDied).ipc_error(), Some(IpcError::ServerDied));
    }

    #[test]
    fn generations_skip_zero() {
        assert_eq!(next_generation(FIRST_GENERATION), 2);
        assert_eq!(next_generation(u32::MAX), FIRST_GENERATION);
        let id = EndpointId { index: 3, generation: u32::MAX };
        assert_eq!(id.check(u32::MAX), Ok(()));
        let next = id.restarted();
        assert_eq!(next, EndpointId { index: 3, generation: 1 });
        assert_eq!(id.check(next.generation), Err(IpcError::ServerDied));
        assert_eq!(EndpointId::default().check(0), Err(IpcError::ServerDied), "generation 0 is never live");
    }

    #[test]
    fn cap_refs() {
        assert!(CapRef::NULL.is_null());
        assert!(CapRef::default().is_null());
        let c = CapRef::new(7, 9);
        assert!(!c.is_null());
        assert_eq!(c.to_u64(), 9 << 32 | 7);
        assert_eq!(CapRef::from_u64(c.to_u64()), c);
    }

    #[test]
    fn grants() {
        assert!(GrantRef::NONE.is_none());
        let g = GrantRef::own_memory(u64::MAX, 1, GRANT_READ);
        assert_eq!(g.end(), None);
        assert_eq!(GrantRef { offset: 8, len: 8, ..g }.end(), Some(16));
    }

    #[test]
    fn sqe_and_cqe_bytes_round_trip() {
        let s = Sqe {
            tag: 7,
            opcode: 3,
            flags: 1,
            args: [1, 2, 3, 4, 5, 6],
            grant: GrantRef::user(5, 4096, 512, GRANT_WRITE),
            rid: 11,
        };
        let bytes = s.as_bytes();
        assert_eq!(bytes.len(), 104);
        assert_eq!(&bytes[..8], &7u64.to_ne_bytes(), "tag first");
        assert_eq!(Sqe::read_from_bytes(bytes), Ok(s));
        assert!(Sqe::read_from_bytes(&bytes[1..]).is_err());
        assert_eq!(Sqe::new(3, [0; 6]).grant, GrantRef::NONE);

        let c = Cqe::new(7, -4);
        assert_eq!(Cqe::read_from_bytes(c.as_bytes()), Ok(c));
    }

    #[test]
    fn any_bytes_are_a_message() {
        let garbage = [0xa5u8; 104];
        let s = Sqe::read_from_bytes(&garbage[..]).unwrap();
        assert_eq!(s.opcode, 0xa5a5_a5a5);
        let c = Cqe::read_from_bytes(&garbage[..32]).unwrap();
        assert_eq!(c.ipc_error(), None);
    }
}
