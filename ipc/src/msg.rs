//! Message formats. A submission ([`Sqe`]) names an operation and carries six machine words and
//! an optional grant (a capability to a range of memory, for bulk data); a completion ([`Cqe`])
//! answers the submission with the same tag. Both are fixed-size `repr(C)` plain data with no
//! pointers, so they can be copied through a ring and validated by value.
#![deny(unsafe_code)]

use core::fmt;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Names a capability slot in the holder's table, with the slot's generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CapRef {
    pub slot: u32,
    pub generation: u32,
}

/// A capability to `len` bytes at `offset` inside the memory that `cap` names (0 len = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct GrantRef {
    pub cap: CapRef,
    pub offset: u64,
    pub len: u64,
}

/// A submission: a request to a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Sqe {
    /// Set by the nucleus: names the caller; the reply must carry it back.
    pub tag: u64,
    pub opcode: u32,
    pub flags: u32,
    pub args: [u64; 6],
    pub grant: GrantRef,
}

/// A completion: the answer to the submission with the same tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Cqe {
    pub tag: u64,
    /// Non-negative: success value; negative: an error code (server-defined, e.g. -errno).
    pub result: i64,
    pub flags: u32,
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<Sqe>() == 88);
const _: () = assert!(core::mem::size_of::<Cqe>() == 24);
const _: () = assert!(core::mem::size_of::<CapRef>() == 8);

/// Why an IPC operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcError {
    /// The capability slot is empty or out of range: the task does not hold it.
    NoSuchCap,
    /// The capability was issued for an earlier instance of the server (or a deleted slot).
    StaleGeneration,
    /// The server died before answering (or is dead now).
    ServerDied,
    /// The ring is full (backpressure).
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
}

impl IpcError {
    /// A stable negative code, for places where an error travels as a number.
    pub const fn code(self) -> i64 {
        -(4096
            + match self {
                IpcError::NoSuchCap => 1,
                IpcError::StaleGeneration => 2,
                IpcError::ServerDied => 3,
                IpcError::Full => 4,
                IpcError::NoSlots => 5,
                IpcError::NoMemory => 6,
                IpcError::Busy => 7,
                IpcError::BadTag => 8,
                IpcError::NotPermitted => 9,
            })
    }

    pub const fn from_code(code: i64) -> Option<IpcError> {
        Some(match -code - 4096 {
            1 => IpcError::NoSuchCap,
            2 => IpcError::StaleGeneration,
            3 => IpcError::ServerDied,
            4 => IpcError::Full,
            5 => IpcError::NoSlots,
            6 => IpcError::NoMemory,
            7 => IpcError::Busy,
            8 => IpcError::BadTag,
            9 => IpcError::NotPermitted,
            _ => return None,
        })
    }
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpcError::NoSuchCap => "no such capability",
            IpcError::StaleGeneration => "stale capability (the server was restarted)",
            IpcError::ServerDied => "server died",
            IpcError::Full => "ring full",
            IpcError::NoSlots => "no free slot",
            IpcError::NoMemory => "out of memory",
            IpcError::Busy => "busy",
            IpcError::BadTag => "reply to no waiting request",
            IpcError::NotPermitted => "not permitted",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip() {
        for e in [
            IpcError::NoSuchCap,
            IpcError::StaleGeneration,
            IpcError::ServerDied,
            IpcError::Full,
            IpcError::NoSlots,
            IpcError::NoMemory,
            IpcError::Busy,
            IpcError::BadTag,
            IpcError::NotPermitted,
        ] {
            assert_eq!(IpcError::from_code(e.code()), Some(e));
            assert!(e.code() < -4096);
        }
        assert_eq!(IpcError::from_code(-5), None);
    }

    #[test]
    fn sqe_bytes_round_trip() {
        let s = Sqe { tag: 7, opcode: 3, flags: 1, args: [1, 2, 3, 4, 5, 6], grant: GrantRef::default() };
        let b = s.as_bytes();
        assert_eq!(b.len(), 88);
        assert_eq!(Sqe::read_from_bytes(b).unwrap(), s);
    }
}
