//! The binary trace format (DESIGN section 5): what the nucleus writes into its per-CPU trace
//! buffers and the host analyzer reads back.
//!
//! A trace stream is one [`StreamHeader`] followed by [`TraceRecord`]s, each exactly
//! [`RECORD_SIZE`] bytes, in the byte order of the machine that wrote them — little-endian on
//! both supported architectures (asserted below), so the host decodes them as they are.
//!
//! # Invariants
//!
//! * Records are fixed-size `#[repr(C)]` plain data with no padding: writing one is a copy of
//!   48 bytes, with no formatting, allocation or locking on the kernel side.
//! * The layout is versioned by [`TRACE_VERSION`]; any change to it (size, field order,
//!   meaning of a kind) bumps the version, and readers refuse versions they do not know.
//! * [`TraceKind`] values are stable and never reused. The record keeps the raw `u16`, so a
//!   record of a kind this reader does not know still decodes and can be counted or skipped.
//!
//! # What it must not do
//!
//! It owns the format only: the per-CPU buffers and the serial transport belong to the
//! nucleus, and analysis (latencies, causal chains, Perfetto export) to the host tool. Decoding
//! never trusts the bytes: short or malformed input gives `None`/an error, never a panic.
#![deny(unsafe_code)]

use core::fmt;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const _: () = assert!(cfg!(target_endian = "little"), "the trace format is little-endian");

/// What a record describes. The exact meaning of every field per kind (what the nucleus writes
/// and the analyzer reads) is specified in the `trace-analyzer` crate's documentation
/// (`ipc/analyzer/src/lib.rs`); the summaries below follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum TraceKind {
    /// A user task trapped into the nucleus: `task`, `opcode` = syscall number, `arg` = first
    /// argument, `endpoint` = where its request goes.
    SyscallEnter = 1,
    /// The syscall returned to user mode: `task`, `opcode` = syscall number, `arg` = result.
    SyscallExit = 2,
    /// `task` put request `tag` for `opcode` on `endpoint`'s ring.
    Send = 3,
    /// `task` (a server) took request `tag` from `endpoint`'s ring.
    Receive = 4,
    /// `task` answered request `tag`: `arg` = the `Cqe.result`.
    Reply = 5,
    /// This CPU switched from `task` to task `endpoint`; `arg` = reason, `arg2` = 1 for a
    /// fast-path direct switch.
    Switch = 6,
    /// `task` blocked, waiting on `endpoint` (or on a reply when `tag` is set).
    Block = 7,
    /// `task` became runnable again.
    Wake = 8,
    /// `task` died: `endpoint` = the endpoint it served (`u32::MAX` if none), `opcode` = its
    /// server index (`u32::MAX` for a user thread), `arg` = requests failed with ServerDied.
    Death = 9,
    /// Server `opcode` (its index) started as `task`, serving `endpoint`: `arg` = instance
    /// number (1 for the first start).
    Restart = 10,
    /// A fault was injected into `task`: `opcode` = the kind.
    FaultInject = 11,
    /// The buffer of this CPU overflowed: `arg` records were lost just before this one.
    Dropped = 12,
    /// A syscall the nucleus answered itself from a result the server published (getpid...),
    /// entered and returned at this time: `task`, `opcode` = syscall number, `arg` = result,
    /// `arg2` = arch as in `SyscallEnter`.
    SyscallAnswered = 13,
}

impl TraceKind {
    /// Every kind, in value order.
    pub const ALL: [TraceKind; 13] = [
        TraceKind::SyscallEnter,
        TraceKind::SyscallExit,
        TraceKind::Send,
        TraceKind::Receive,
        TraceKind::Reply,
        TraceKind::Switch,
        TraceKind::Block,
        TraceKind::Wake,
        TraceKind::Death,
        TraceKind::Restart,
        TraceKind::FaultInject,
        TraceKind::Dropped,
        TraceKind::SyscallAnswered,
    ];

    /// The kind stored as `value`, if this reader knows it.
    pub const fn from_u16(value: u16) -> Option<TraceKind> {
        match value {
            1..=13 => Some(TraceKind::ALL[value as usize - 1]),
            _ => None,
        }
    }

    /// A short name, for analyzer output.
    pub const fn name(self) -> &'static str {
        match self {
            TraceKind::SyscallEnter => "syscall-enter",
            TraceKind::SyscallExit => "syscall-exit",
            TraceKind::Send => "send",
            TraceKind::Receive => "receive",
            TraceKind::Reply => "reply",
            TraceKind::Switch => "switch",
            TraceKind::Block => "block",
            TraceKind::Wake => "wake",
            TraceKind::Death => "death",
            TraceKind::Restart => "restart",
            TraceKind::FaultInject => "fault-inject",
            TraceKind::Dropped => "dropped",
            TraceKind::SyscallAnswered => "syscall-answered",
        }
    }
}

impl TryFrom<u16> for TraceKind {
    type Error = u16;

    /// Gives the value back when it names no known kind.
    fn try_from(value: u16) -> Result<TraceKind, u16> {
        TraceKind::from_u16(value).ok_or(value)
    }
}

impl fmt::Display for TraceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One traced event, [`RECORD_SIZE`] bytes. See [`TraceKind`] for what each field means per
/// kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct TraceRecord {
    /// When. As written, the writing CPU's clock counter as read (TSC, CNTVCT_EL0): the kernel
    /// does no arithmetic for it. A reader converts it with its stream's header
    /// ([`StreamHeader::ns`]; [`parse_stream`] and the analyzer do), after which it is
    /// nanoseconds since boot.
    pub timestamp: u64,
    /// The CPU that wrote the record.
    pub cpu: u16,
    /// A [`TraceKind`] value, kept raw so unknown kinds still decode.
    pub kind: u16,
    /// The task the event is about (its table index; see the kind).
    pub task: u32,
    /// The endpoint involved, if any.
    pub endpoint: u32,
    /// The message opcode or syscall number, if any.
    pub opcode: u32,
    /// The message tag, if any: it links a send, its receive and its reply.
    pub tag: u64,
    /// Kind-specific value.
    pub arg: u64,
    /// Second kind-specific value.
    pub arg2: u64,
}

/// Size of one encoded [`TraceRecord`].
pub const RECORD_SIZE: usize = core::mem::size_of::<TraceRecord>();
const _: () = assert!(RECORD_SIZE == 48);

impl TraceRecord {
    /// A record of `kind` at `timestamp` on `cpu` about `task`, other fields 0.
    pub const fn new(kind: TraceKind, timestamp: u64, cpu: u16, task: u32) -> TraceRecord {
        TraceRecord { timestamp, cpu, kind: kind as u16, task, endpoint: 0, opcode: 0, tag: 0, arg: 0, arg2: 0 }
    }

    /// The record's bytes, as written to a trace buffer.
    pub fn encode(&self) -> [u8; RECORD_SIZE] {
        zerocopy::transmute!(*self)
    }

    /// The bytes of back-to-back records, as a trace stream carries them (no copy).
    pub fn slice_bytes(records: &[TraceRecord]) -> &[u8] {
        records.as_bytes()
    }

    /// The record in `bytes`, which must be exactly [`RECORD_SIZE`] long.
    pub fn decode(bytes: &[u8]) -> Option<TraceRecord> {
        TraceRecord::read_from_bytes(bytes).ok()
    }

    /// The record's kind, if this reader knows it.
    pub const fn kind(&self) -> Option<TraceKind> {
        TraceKind::from_u16(self.kind)
    }
}

/// Magic bytes that open a trace stream.
pub const TRACE_MAGIC: [u8; 8] = *b"CAIRNTRC";
/// Version of the stream and record layout described by this module.
/// (2: records carry the raw clock counter, the header how to convert it.)
pub const TRACE_VERSION: u32 = 2;

/// The architecture that wrote a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TraceArch {
    /// Not recorded.
    Unknown = 0,
    /// x86_64.
    X86_64 = 1,
    /// AArch64.
    Aarch64 = 2,
}

impl TraceArch {
    /// The architecture named `name` (`arch::ARCH_NAME`'s values).
    pub fn from_name(name: &str) -> TraceArch {
        match name {
            "x86_64" => TraceArch::X86_64,
            "aarch64" => TraceArch::Aarch64,
            _ => TraceArch::Unknown,
        }
    }

    /// The architecture stored as `value` (unknown values read as `Unknown`).
    pub const fn from_u32(value: u32) -> TraceArch {
        match value {
            1 => TraceArch::X86_64,
            2 => TraceArch::Aarch64,
            _ => TraceArch::Unknown,
        }
    }
}

/// Opens a trace stream, so a reader can tell a trace from noise on the serial line and refuse
/// a layout it does not know, and says how its records' clock converts to nanoseconds. 40 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct StreamHeader {
    /// [`TRACE_MAGIC`].
    pub magic: [u8; 8],
    /// [`TRACE_VERSION`] of the writer.
    pub version: u32,
    /// [`RECORD_SIZE`] of the writer.
    pub record_size: u32,
    /// A [`TraceArch`] value.
    pub arch: u32,
    /// Number of CPUs whose records follow.
    pub cpus: u32,
    /// The clock counter at boot (nanosecond 0).
    pub clock_base: u64,
    /// Nanoseconds per counter tick, as a 32.32 fixed-point number.
    pub clock_mult: u64,
}

/// Size of an encoded [`StreamHeader`].
pub const HEADER_SIZE: usize = core::mem::size_of::<StreamHeader>();
const _: () = assert!(HEADER_SIZE == 40);

/// Why a byte string is not a trace stream this reader understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// Fewer bytes than a header.
    TooShort,
    /// The stream does not start with [`TRACE_MAGIC`].
    BadMagic,
    /// Written by another version of the format.
    UnsupportedVersion(u32),
    /// Records of another size than [`RECORD_SIZE`].
    BadRecordSize(u32),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::TooShort => f.write_str("trace stream shorter than its header"),
            TraceError::BadMagic => f.write_str("not a trace stream (bad magic)"),
            TraceError::UnsupportedVersion(v) => write!(f, "trace format version {v}, expected {TRACE_VERSION}"),
            TraceError::BadRecordSize(s) => write!(f, "trace records of {s} bytes, expected {RECORD_SIZE}"),
        }
    }
}

impl core::error::Error for TraceError {}

impl StreamHeader {
    /// The header for a stream written on `cpus` CPUs of architecture `arch`, whose records'
    /// timestamps are nanoseconds already (a clock of base 0 and one nanosecond per tick).
    pub const fn new(cpus: u32, arch: TraceArch) -> StreamHeader {
        StreamHeader {
            magic: TRACE_MAGIC,
            version: TRACE_VERSION,
            record_size: RECORD_SIZE as u32,
            arch: arch as u32,
            cpus,
            clock_base: 0,
            clock_mult: 1 << 32,
        }
    }

    /// The same header for records stamped with a counter that reads `base` at boot and
    /// advances `mult` / 2^32 nanoseconds per tick.
    pub const fn with_clock(self, base: u64, mult: u64) -> StreamHeader {
        StreamHeader { clock_base: base, clock_mult: mult, ..self }
    }

    /// Nanoseconds since boot of the counter value `timestamp` (0 before boot).
    pub const fn ns(&self, timestamp: u64) -> u64 {
        ((timestamp.saturating_sub(self.clock_base) as u128 * self.clock_mult as u128) >> 32) as u64
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        zerocopy::transmute!(*self)
    }

    /// Reads and validates the header at the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<StreamHeader, TraceError> {
        let (header, _) = StreamHeader::read_from_prefix(bytes).map_err(|_| TraceError::TooShort)?;
        if header.magic != TRACE_MAGIC {
            return Err(TraceError::BadMagic);
        }
        if header.version != TRACE_VERSION {
            return Err(TraceError::UnsupportedVersion(header.version));
        }
        if header.record_size as usize != RECORD_SIZE {
            return Err(TraceError::BadRecordSize(header.record_size));
        }
        Ok(header)
    }

    /// The architecture that wrote the stream.
    pub const fn arch(&self) -> TraceArch {
        TraceArch::from_u32(self.arch)
    }
}

/// Splits a whole trace stream into its validated header and an iterator over its records.
pub fn parse_stream(bytes: &[u8]) -> Result<(StreamHeader, Records<'_>), TraceError> {
    let header = StreamHeader::decode(bytes)?;
    Ok((header, Records::new(&bytes[HEADER_SIZE..]).with_clock(header)))
}

/// The records in a byte string of back-to-back records (a stream after its header). Stops
/// before a trailing partial record, which [`Records::remainder`] returns, so a reader of a
/// live serial stream can keep those bytes for the next read.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
    /// Converts the timestamps (none by default).
    clock: StreamHeader,
}

impl<'a> Records<'a> {
    /// Records of `bytes`, from its first byte, timestamps as they are.
    pub fn new(bytes: &'a [u8]) -> Records<'a> {
        Records { chunks: bytes.chunks_exact(RECORD_SIZE), clock: StreamHeader::new(0, TraceArch::Unknown) }
    }

    /// The same records with their timestamps converted to nanoseconds by `header`'s clock.
    pub fn with_clock(self, header: StreamHeader) -> Records<'a> {
        Records { clock: header, ..self }
    }

    /// The bytes after the last whole record.
    pub fn remainder(&self) -> &'a [u8] {
        self.chunks.remainder()
    }
}

impl Iterator for Records<'_> {
    type Item = TraceRecord;

    fn next(&mut self) -> Option<TraceRecord> {
        let mut r = TraceRecord::decode(self.chunks.next()?)?;
        r.timestamp = self.clock.ns(r.timestamp);
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for Records<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: u64) -> TraceRecord {
        TraceRecord {
            timestamp: 1_000 + i,
            cpu: (i % 4) as u16,
            kind: TraceKind::ALL[(i % TraceKind::ALL.len() as u64) as usize] as u16,
            task: 7 + i as u32,
            endpoint: 3,
            opcode: 42,
            tag: 0xdead_beef_0000 + i,
            arg: u64::MAX - i,
            arg2: i,
        }
    }

    #[test]
    fn record_round_trip() {
        for i in 0..100 {
            let r = sample(i);
            let bytes = r.encode();
            assert_eq!(bytes.len(), RECORD_SIZE);
            assert_eq!(TraceRecord::decode(&bytes), Some(r));
        }
    }

    #[test]
    fn record_layout_is_fixed() {
        let r = TraceRecord { opcode: 0x0102_0304, ..TraceRecord::new(TraceKind::Send, 0x1122, 5, 9) };
        let b = r.encode();
        assert_eq!(&b[0..8], &0x1122u64.to_le_bytes(), "timestamp at 0");
        assert_eq!(&b[8..10], &5u16.to_le_bytes(), "cpu at 8");
        assert_eq!(&b[10..12], &3u16.to_le_bytes(), "kind at 10");
        assert_eq!(&b[12..16], &9u32.to_le_bytes(), "task at 12");
        assert_eq!(&b[20..24], &0x0102_0304u32.to_le_bytes(), "opcode at 20");
    }

    #[test]
    fn decode_refuses_wrong_lengths() {
        let b = sample(1).encode();
        assert_eq!(TraceRecord::decode(&b[..10]), None);
        assert_eq!(TraceRecord::decode(&[]), None);
        let mut long = [0u8; RECORD_SIZE + 1];
        long[..RECORD_SIZE].copy_from_slice(&b);
        assert_eq!(TraceRecord::decode(&long), None);
    }

    #[test]
    fn kinds() {
        for (i, k) in TraceKind::ALL.into_iter().enumerate() {
            assert_eq!(k as u16, i as u16 + 1);
            assert_eq!(TraceKind::from_u16(k as u16), Some(k));
            assert_eq!(TraceKind::try_from(k as u16), Ok(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(TraceKind::from_u16(0), None);
        assert_eq!(TraceKind::try_from(14), Err(14));
        let unknown = TraceRecord { kind: 999, ..sample(0) };
        let decoded = TraceRecord::decode(&unknown.encode()).unwrap();
        assert_eq!(decoded.kind, 999, "unknown kinds still decode");
        assert_eq!(decoded.kind(), None);
    }

    #[test]
    fn stream_round_trip() {
        let header = StreamHeader::new(2, TraceArch::Aarch64);
        let mut stream = header.encode().to_vec();
        for i in 0..10 {
            stream.extend_from_slice(&sample(i).encode());
        }
        stream.extend_from_slice(&[1, 2, 3]); // a partial record still in flight
        let (got, records) = parse_stream(&stream).unwrap();
        assert_eq!(got, header);
        assert_eq!(got.arch(), TraceArch::Aarch64);
        assert_eq!(records.len(), 10);
        assert_eq!(records.remainder(), &[1, 2, 3]);
        assert!(records.eq((0..10).map(sample)));
    }

    #[test]
    fn stream_timestamps_convert_by_the_header_clock() {
        // A 250 MHz counter (4 ns per tick) that read 1,000 at boot.
        let header = StreamHeader::new(1, TraceArch::X86_64).with_clock(1_000, 4 << 32);
        assert_eq!((header.ns(1_000), header.ns(1_250), header.ns(999)), (0, 1_000, 0));
        let mut stream = header.encode().to_vec();
        stream.extend_from_slice(&TraceRecord::new(TraceKind::Wake, 3_000, 0, 1).encode());
        let (got, mut records) = parse_stream(&stream).unwrap();
        assert_eq!((got.clock_base, got.clock_mult), (1_000, 4 << 32));
        assert_eq!(records.next().map(|r| r.timestamp), Some(8_000));
    }

    #[test]
    fn stream_header_is_validated() {
        let good = StreamHeader::new(1, TraceArch::X86_64).encode();
        assert_eq!(StreamHeader::decode(&good[..HEADER_SIZE - 1]), Err(TraceError::TooShort));
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(StreamHeader::decode(&bad), Err(TraceError::BadMagic));
        let bumped = StreamHeader { version: TRACE_VERSION + 1, ..StreamHeader::new(1, TraceArch::X86_64) };
        assert_eq!(StreamHeader::decode(&bumped.encode()), Err(TraceError::UnsupportedVersion(TRACE_VERSION + 1)));
        let resized = StreamHeader { record_size: 40, ..StreamHeader::new(1, TraceArch::X86_64) };
        assert_eq!(StreamHeader::decode(&resized.encode()), Err(TraceError::BadRecordSize(40)));
        assert!(!TraceError::BadRecordSize(40).to_string().is_empty());
    }
}
