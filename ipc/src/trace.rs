//! The trace record format (DESIGN §5): fixed-size, little-endian, written by the nucleus into
//! per-CPU buffers without formatting, decoded by the host analyzer. A stream starts with a
//! [`StreamHeader`] and continues with [`TraceRecord`]s.
#![deny(unsafe_code)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// What a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum TraceKind {
    SyscallEnter = 1,
    SyscallExit = 2,
    Send = 3,
    Receive = 4,
    Reply = 5,
    Switch = 6,
    Block = 7,
    Wake = 8,
    Death = 9,
    Restart = 10,
    FaultInject = 11,
    /// `arg` records were lost to a full buffer just before this one.
    Dropped = 12,
}

impl TraceKind {
    pub fn from_u16(v: u16) -> Option<TraceKind> {
        use TraceKind::*;
        Some(match v {
            1 => SyscallEnter,
            2 => SyscallExit,
            3 => Send,
            4 => Receive,
            5 => Reply,
            6 => Switch,
            7 => Block,
            8 => Wake,
            9 => Death,
            10 => Restart,
            11 => FaultInject,
            12 => Dropped,
            _ => return None,
        })
    }
}

/// One event. 48 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct TraceRecord {
    pub timestamp_ns: u64,
    pub cpu: u16,
    /// A [`TraceKind`] value.
    pub kind: u16,
    pub task: u32,
    pub endpoint: u32,
    pub opcode: u32,
    pub tag: u64,
    pub arg: u64,
    pub arg2: u64,
}

pub const RECORD_SIZE: usize = core::mem::size_of::<TraceRecord>();
const _: () = assert!(RECORD_SIZE == 48);

/// Starts a trace stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct StreamHeader {
    /// `TRACE_MAGIC`.
    pub magic: [u8; 8],
    pub version: u32,
    /// 0 = x86_64, 1 = aarch64.
    pub arch: u32,
}

pub const TRACE_MAGIC: [u8; 8] = *b"CAIRNTRC";
pub const TRACE_VERSION: u32 = 1;

impl TraceRecord {
    pub fn encode(&self) -> [u8; RECORD_SIZE] {
        let mut out = [0u8; RECORD_SIZE];
        out.copy_from_slice(self.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<TraceRecord> {
        TraceRecord::read_from_bytes(bytes.get(..RECORD_SIZE)?).ok()
    }

    pub fn kind(&self) -> Option<TraceKind> {
        TraceKind::from_u16(self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let r = TraceRecord {
            timestamp_ns: 123,
            cpu: 1,
            kind: TraceKind::Send as u16,
            task: 7,
            endpoint: 3,
            opcode: 42,
            tag: 0xdead_beef,
            arg: 5,
            arg2: 6,
        };
        let b = r.encode();
        assert_eq!(TraceRecord::decode(&b), Some(r));
        assert_eq!(r.kind(), Some(TraceKind::Send));
        assert_eq!(TraceRecord::decode(&b[..10]), None);
    }
}
