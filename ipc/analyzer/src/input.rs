//! Turning a file into records: raw binary streams and console transcripts.
//!
//! Two inputs are accepted, told apart by the first bytes:
//!
//! * **Binary**: the file starts with [`TRACE_MAGIC`]. It is one or more trace streams back to
//!   back: a [`StreamHeader`], then 48-byte records, then possibly another header (a dump of
//!   the next CPU's buffer, or a later dump). A header is recognised at any record boundary
//!   by its magic; a record's first 8 bytes are its clock counter, which would have to read
//!   4.8 * 10^18 (decades of uptime at GHz rates) to spell `CAIRNTRC`. Each header's clock
//!   converts the timestamps of the records after it to nanoseconds.
//! * **Transcript**: anything else is read as text (lossily, so serial-line noise is fine).
//!   Lines containing `@@TRACE <base64>` carry stream bytes: the payloads of all such lines,
//!   in order, are concatenated and parsed as a binary input. Lines containing
//!   `@@TRACE-NAME <name line>` carry names in the grammar of [`crate::names`], e.g.
//!   `@@TRACE-NAME endpoint 3 vfs`. The marker may follow other text on the line (a log
//!   prefix); everything after the payload's first whitespace-free run is ignored. A writer
//!   should put a whole number of records (or the header) on each line, so that a lost line
//!   loses records instead of misaligning the rest.
//!
//! Invariants: the returned records are stably sorted by timestamp (equal timestamps keep
//! stream order, so one CPU's records stay in the order it wrote them); every oddity that is
//! not fatal (a damaged line, a trailing partial record, garbage before the first header) is
//! a warning in [`Trace::warnings`]; only input that holds no trace at all is an error. It
//! interprets no record: that is [`crate::model`]'s job.

use crate::base64;
use crate::names::Names;
use ipc::trace::{StreamHeader, TraceArch, TraceRecord, HEADER_SIZE, RECORD_SIZE, TRACE_MAGIC};

/// A decoded trace: the records of every stream in the input, plus what came with them.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The architecture of the first header that names one, else `Unknown`.
    pub arch: TraceArch,
    /// The largest CPU count any header gives.
    pub cpus: u32,
    /// Number of stream headers read.
    pub streams: usize,
    /// Every record, stably sorted by `timestamp`.
    pub records: Vec<TraceRecord>,
    /// Names given by `@@TRACE-NAME` lines (empty for a binary input).
    pub names: Names,
    /// Whether the input was a console transcript.
    pub transcript: bool,
    /// Problems that did not stop decoding.
    pub warnings: Vec<String>,
}

/// Decodes a binary stream or a console transcript (see the module docs).
pub fn load(bytes: &[u8]) -> Result<Trace, String> {
    let mut trace = Trace {
        arch: TraceArch::Unknown,
        cpus: 0,
        streams: 0,
        records: Vec::new(),
        names: Names::default(),
        transcript: false,
        warnings: Vec::new(),
    };
    if bytes.starts_with(&TRACE_MAGIC) {
        parse_streams(bytes, &mut trace)?;
    } else {
        trace.transcript = true;
        let data = read_transcript(bytes, &mut trace)?;
        parse_streams(&data, &mut trace)?;
    }
    trace.records.sort_by_key(|r| r.timestamp);
    Ok(trace)
}

/// Collects the `@@TRACE` payloads and `@@TRACE-NAME` names of a transcript.
fn read_transcript(bytes: &[u8], trace: &mut Trace) -> Result<Vec<u8>, String> {
    const DATA: &str = "@@TRACE";
    const NAME: &str = "@@TRACE-NAME";
    let text = String::from_utf8_lossy(bytes);
    let mut data = Vec::new();
    let mut data_lines = 0usize;
    for (i, line) in text.lines().enumerate() {
        let Some(at) = line.find(DATA) else { continue };
        let after = &line[at..];
        if let Some(rest) = after.strip_prefix(NAME) {
            if let Err(e) = trace.names.add_line(rest) {
                trace.warnings.push(format!("transcript line {}: {e}", i + 1));
            }
            continue;
        }
        let rest = &after[DATA.len()..];
        if !rest.starts_with(char::is_whitespace) {
            continue; // some other word that merely starts with the marker
        }
        let payload = rest.split_whitespace().next().unwrap_or("");
        match base64::decode(payload) {
            Ok(bytes) => {
                data.extend_from_slice(&bytes);
                data_lines += 1;
            }
            Err(e) => trace.warnings.push(format!("transcript line {}: {e}; line skipped", i + 1)),
        }
    }
    if data_lines == 0 {
        return Err(if trace.names.endpoints.is_empty() && trace.names.tasks.is_empty() {
            format!(
                "not a trace: neither a binary stream (magic {}) nor a console transcript with @@TRACE lines",
                String::from_utf8_lossy(&TRACE_MAGIC)
            )
        } else {
            "the transcript names things but has no @@TRACE data lines".to_string()
        });
    }
    Ok(data)
}

/// Parses back-to-back streams, appending their records to `trace`.
fn parse_streams(bytes: &[u8], trace: &mut Trace) -> Result<(), String> {
    let mut pos = match find_magic(bytes) {
        Some(0) => 0,
        Some(at) => {
            trace.warnings.push(format!("{at} bytes before the first stream header skipped"));
            at
        }
        None => return Err("no trace stream header (magic CAIRNTRC) in the input".to_string()),
    };
    // The clock of the stream being read (set by its header, which always comes first).
    let mut clock = StreamHeader::new(0, TraceArch::Unknown);
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.starts_with(&TRACE_MAGIC) {
            let header = StreamHeader::decode(rest).map_err(|e| format!("stream header at byte {pos}: {e}"))?;
            if trace.arch == TraceArch::Unknown {
                trace.arch = header.arch();
            } else if header.arch() != TraceArch::Unknown && header.arch() != trace.arch {
                trace.warnings.push(format!(
                    "stream header at byte {pos} says {:?}, an earlier one said {:?}; using the first",
                    header.arch(),
                    trace.arch
                ));
            }
            trace.cpus = trace.cpus.max(header.cpus);
            clock = header;
            trace.streams += 1;
            pos += HEADER_SIZE;
            continue;
        }
        if rest.len() < RECORD_SIZE {
            trace.warnings.push(format!("{} trailing bytes (a partial record) ignored", rest.len()));
            break;
        }
        if let Some(mut record) = TraceRecord::decode(&rest[..RECORD_SIZE]) {
            record.timestamp = clock.ns(record.timestamp);
            trace.records.push(record);
        }
        pos += RECORD_SIZE;
    }
    Ok(())
}

fn find_magic(bytes: &[u8]) -> Option<usize> {
    bytes.windows(TRACE_MAGIC.len()).position(|w| w == TRACE_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::trace::TraceKind;

    fn rec(ts: u64, cpu: u16) -> TraceRecord {
        TraceRecord::new(TraceKind::Wake, ts, cpu, 1)
    }

    fn stream(arch: TraceArch, records: &[TraceRecord]) -> Vec<u8> {
        let mut out = StreamHeader::new(2, arch).encode().to_vec();
        for r in records {
            out.extend_from_slice(&r.encode());
        }
        out
    }

    #[test]
    fn binary_streams_concatenate_and_sort() {
        let mut bytes = stream(TraceArch::Aarch64, &[rec(10, 0), rec(30, 0)]);
        bytes.extend(stream(TraceArch::Aarch64, &[rec(20, 1), rec(30, 1)]));
        bytes.extend_from_slice(&[1, 2, 3]);
        let t = load(&bytes).unwrap();
        assert_eq!(t.streams, 2);
        assert_eq!(t.arch, TraceArch::Aarch64);
        let order: Vec<(u64, u16)> = t.records.iter().map(|r| (r.timestamp, r.cpu)).collect();
        assert_eq!(order, [(10, 0), (20, 1), (30, 0), (30, 1)], "stable: cpu 0's 30 came first in the stream");
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert!(!t.transcript);
    }

    #[test]
    fn bad_headers_are_errors() {
        let mut bytes = stream(TraceArch::X86_64, &[]);
        bytes[8] = 9; // version
        assert!(load(&bytes).unwrap_err().contains("version"));
        assert!(load(b"hello\nworld\n").unwrap_err().contains("not a trace"));
        assert!(load(b"").is_err());
    }

    #[test]
    fn transcript_lines() {
        let data = stream(TraceArch::X86_64, &[rec(5, 0), rec(6, 0)]);
        let (a, b) = data.split_at(HEADER_SIZE + RECORD_SIZE);
        let text = format!(
            "boot ok\r\n@@TRACE-NAME endpoint 3 vfs\n[  1.0] @@TRACE {}\r\nnoise\n@@TRACE !!!bad\n@@TRACE {} trailing\n@@TRACEX no\n",
            base64::encode(a),
            base64::encode(b)
        );
        let t = load(text.as_bytes()).unwrap();
        assert!(t.transcript);
        assert_eq!(t.records.len(), 2);
        assert_eq!(t.names.endpoint(3), Some("vfs"));
        assert_eq!(t.warnings.len(), 1, "the damaged line: {:?}", t.warnings);
    }

    #[test]
    fn transcript_without_data_is_an_error() {
        assert!(load(b"@@TRACE-NAME task 1 init\n").unwrap_err().contains("no @@TRACE data"));
        let garbage = format!("@@TRACE {}\n", base64::encode(b"not a stream at all"));
        assert!(load(garbage.as_bytes()).unwrap_err().contains("no trace stream header"));
    }
}
