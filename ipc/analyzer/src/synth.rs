//! Writing traces by hand: a builder that emits records exactly as the record contract (crate
//! docs) says the nucleus does, and encodes them as a binary stream, as per-CPU buffer dumps,
//! or as a console transcript.
//!
//! It exists for tests (here and, if it wishes, the nucleus's), and as executable
//! documentation of the contract: each method is one kind of record, its parameters are the
//! fields that kind uses. The builder keeps a current time and CPU ([`TraceBuilder::at`]) so a
//! scenario reads as a timeline. Invariant: it writes what it is told, in the order told —
//! including out-of-order or inconsistent records, which is what tests of the analyzer's
//! robustness need.

use crate::base64;
use ipc::trace::{StreamHeader, TraceArch, TraceKind, TraceRecord};

/// Builds a trace record by record.
#[derive(Clone, Debug)]
pub struct TraceBuilder {
    arch: TraceArch,
    cpus: u32,
    now: u64,
    cpu: u16,
    records: Vec<TraceRecord>,
}

impl TraceBuilder {
    /// An empty trace written by `arch` on `cpus` CPUs.
    pub fn new(arch: TraceArch, cpus: u32) -> TraceBuilder {
        TraceBuilder { arch, cpus, now: 0, cpu: 0, records: Vec::new() }
    }

    /// Following records are written at `ns` by `cpu`.
    pub fn at(&mut self, ns: u64, cpu: u16) -> &mut Self {
        self.now = ns;
        self.cpu = cpu;
        self
    }

    /// Appends `record` as it is.
    pub fn push(&mut self, record: TraceRecord) -> &mut Self {
        self.records.push(record);
        self
    }

    fn rec(&mut self, kind: TraceKind, task: u32, f: impl FnOnce(&mut TraceRecord)) -> &mut Self {
        let mut r = TraceRecord::new(kind, self.now, self.cpu, task);
        f(&mut r);
        self.push(r)
    }

    /// `task` enters syscall `nr` (numbered for the builder's arch) with first argument `arg`.
    pub fn syscall_enter(&mut self, task: u32, nr: u32, tag: u64, arg: u64) -> &mut Self {
        let arch = match self.arch {
            TraceArch::Aarch64 => 1,
            _ => 0,
        };
        self.rec(TraceKind::SyscallEnter, task, |r| {
            r.opcode = nr;
            r.tag = tag;
            r.arg = arg;
            r.arg2 = arch;
        })
    }

    /// `task`'s syscall `nr`, answered by the nucleus with `result` (no request).
    pub fn syscall_answered(&mut self, task: u32, nr: u32, result: i64) -> &mut Self {
        let arch = match self.arch {
            TraceArch::Aarch64 => 1,
            _ => 0,
        };
        self.rec(TraceKind::SyscallAnswered, task, |r| {
            r.endpoint = u32::MAX;
            r.opcode = nr;
            r.arg = result as u64;
            r.arg2 = arch;
        })
    }

    /// Syscall `nr` of `task` returns `result`.
    pub fn syscall_exit(&mut self, task: u32, nr: u32, tag: u64, result: i64) -> &mut Self {
        self.rec(TraceKind::SyscallExit, task, |r| {
            r.opcode = nr;
            r.tag = tag;
            r.arg = result as u64;
        })
    }

    /// `task`, serving request `serving` (0: none), sends request `tag` for `opcode` to
    /// `endpoint`.
    pub fn send(&mut self, task: u32, endpoint: u32, opcode: u32, tag: u64, serving: u64) -> &mut Self {
        self.rec(TraceKind::Send, task, |r| {
            r.endpoint = endpoint;
            r.opcode = opcode;
            r.tag = tag;
            r.arg = 64;
            r.arg2 = serving;
        })
    }

    /// Server `task` takes request `tag` from `endpoint`.
    pub fn receive(&mut self, task: u32, endpoint: u32, opcode: u32, tag: u64) -> &mut Self {
        self.rec(TraceKind::Receive, task, |r| {
            r.endpoint = endpoint;
            r.opcode = opcode;
            r.tag = tag;
        })
    }

    /// Server `task` answers request `tag` on `endpoint` with `result`.
    pub fn reply(&mut self, task: u32, endpoint: u32, tag: u64, result: i64) -> &mut Self {
        self.rec(TraceKind::Reply, task, |r| {
            r.endpoint = endpoint;
            r.tag = tag;
            r.arg = result as u64;
        })
    }

    /// The CPU switches from `from` to `to` for `reason` (0 preempt, 1 block, 2 yield, 3 exit).
    pub fn switch(&mut self, from: u32, to: u32, reason: u64) -> &mut Self {
        self.rec(TraceKind::Switch, from, |r| {
            r.endpoint = to;
            r.arg = reason;
        })
    }

    /// `task` blocks.
    pub fn block(&mut self, task: u32) -> &mut Self {
        self.rec(TraceKind::Block, task, |_| {})
    }

    /// `task` wakes.
    pub fn wake(&mut self, task: u32) -> &mut Self {
        self.rec(TraceKind::Wake, task, |_| {})
    }

    /// `task` dies: server `server` of `endpoint`, failing `failed` requests, or (both `None`)
    /// a task that is no server, such as a user thread that exits.
    pub fn death(&mut self, task: u32, endpoint: Option<u32>, server: Option<u32>, failed: u64) -> &mut Self {
        self.rec(TraceKind::Death, task, |r| {
            r.endpoint = endpoint.unwrap_or(u32::MAX);
            r.opcode = server.unwrap_or(u32::MAX);
            r.arg = failed;
        })
    }

    /// `task` is instance `instance` of server `server`, serving `endpoint`.
    pub fn restart(&mut self, task: u32, endpoint: u32, server: u32, instance: u64) -> &mut Self {
        self.rec(TraceKind::Restart, task, |r| {
            r.endpoint = endpoint;
            r.opcode = server;
            r.arg = instance;
        })
    }

    /// A fault of `kind` is injected into `task`.
    pub fn fault(&mut self, task: u32, kind: u32) -> &mut Self {
        self.rec(TraceKind::FaultInject, task, |r| r.opcode = kind)
    }

    /// `lost` records were lost on the current CPU.
    pub fn dropped(&mut self, lost: u64) -> &mut Self {
        self.rec(TraceKind::Dropped, 0, |r| r.arg = lost)
    }

    /// The records so far.
    pub fn records(&self) -> &[TraceRecord] {
        &self.records
    }

    fn header(&self) -> StreamHeader {
        StreamHeader::new(self.cpus, self.arch)
    }

    /// One stream: a header, then every record in the order written.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header().encode().to_vec();
        for r in &self.records {
            out.extend_from_slice(&r.encode());
        }
        out
    }

    /// One stream per CPU, as the nucleus dumps its per-CPU buffers: CPU 0's records, then
    /// CPU 1's, each behind its own header.
    pub fn to_per_cpu_bytes(&self) -> Vec<u8> {
        let mut cpus: Vec<u16> = self.records.iter().map(|r| r.cpu).collect();
        cpus.sort_unstable();
        cpus.dedup();
        let mut out = Vec::new();
        for cpu in cpus {
            out.extend_from_slice(&self.header().encode());
            for r in self.records.iter().filter(|r| r.cpu == cpu) {
                out.extend_from_slice(&r.encode());
            }
        }
        out
    }

    /// A console transcript: `names` as `@@TRACE-NAME` lines, then the stream as `@@TRACE`
    /// lines of one header or `per_line` records each, mixed with ordinary console output.
    pub fn to_transcript(&self, names: &[&str], per_line: usize) -> String {
        let mut out = String::from("Cairn booting...\n");
        for n in names {
            out.push_str("@@TRACE-NAME ");
            out.push_str(n);
            out.push('\n');
        }
        out.push_str("@@TRACE ");
        out.push_str(&base64::encode(&self.header().encode()));
        out.push('\n');
        for chunk in self.records.chunks(per_line.max(1)) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|r| r.encode()).collect();
            out.push_str("@@TRACE ");
            out.push_str(&base64::encode(&bytes));
            out.push_str("\r\n");
            out.push_str("shell$ echo interleaved console output\n");
        }
        out
    }
}
