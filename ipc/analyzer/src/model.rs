//! From records to a model of what happened: syscalls, requests and their causal tree,
//! deaths and restarts, and who ran where.
//!
//! [`analyze`] walks the records once, in timestamp order, keeping the sets of outstanding
//! syscalls and requests, and applies the record contract of the crate docs: it matches
//! `Receive`/`Reply` to `Send` and `SyscallExit` to `SyscallEnter` by tag, links each `Send`
//! to its parent through `arg2`, completes outstanding requests at a `Death`, marks endpoints
//! dead until their `Restart`, and cuts each CPU's time into runs at its `Switch`es. A second
//! pass marks retries (a request after a failed sibling with the same parent, endpoint and
//! opcode).
//!
//! # Invariants
//!
//! * Every `Send` becomes exactly one [`Request`], and every request has exactly one
//!   [`Outcome`]; every request is either a child of its parent or listed in
//!   [`Analysis::roots`] — so walking the roots visits every syscall and request once.
//! * Parents precede children: a child's index is greater than its parent's, so the tree has
//!   no cycles whatever the tags say.
//! * Output order never depends on hashing: hash maps are used only for lookups, and anything
//!   collected from them is sorted by index (= time order) first.
//! * A `Death` also marks the outstanding requests the dead task had *sent*
//!   ([`Request::caller_died`]): they stay outstanding (the server may still answer), but
//!   if nobody does they are abandoned, not "never answered".
//! * Inconsistencies in the input (a reply nobody waited for, a switch away from a task that
//!   was not running) are counted in [`Anomalies`], never fatal.
//!
//! It formats nothing: [`crate::report`], [`crate::chrome`] and [`crate::html`] present it.

use crate::input::Trace;
use crate::names::Names;
use crate::syscalls;
use abi::syscall::Arch;
use ipc::trace::{TraceArch, TraceKind, TraceRecord};
use std::collections::{BTreeMap, HashMap};

/// Choices that change how records are read.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Read every syscall number with this arch's table (`--arch`).
    pub arch: Option<Arch>,
}

/// One syscall, from its `SyscallEnter` to its `SyscallExit` (if any).
#[derive(Clone, Debug)]
pub struct Syscall {
    /// The user thread.
    pub task: u32,
    /// The CPU it entered on.
    pub cpu: u16,
    /// The syscall number.
    pub nr: u32,
    /// The numbering `nr` uses.
    pub arch: Arch,
    /// The request tag naming this call.
    pub tag: u64,
    /// The first argument.
    pub arg: u64,
    /// When it entered.
    pub enter_ns: u64,
    /// When it returned and with what result (`i64` as `u64`).
    pub exit: Option<(u64, u64)>,
    /// When its task died before returning.
    pub died_ns: Option<u64>,
    /// Requests sent for it (its root requests), in send order.
    pub requests: Vec<usize>,
}

impl Syscall {
    /// The syscall's name on its arch (`syscall_N` if the table has none).
    pub fn name(&self) -> String {
        syscalls::name(self.arch, self.nr)
    }

    /// Enter → exit time, if it returned.
    pub fn duration(&self) -> Option<u64> {
        self.exit.map(|(ns, _)| ns.saturating_sub(self.enter_ns))
    }
}

/// Where a request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    /// Sent outside any syscall or request (`arg2` = 0 and no syscall with its tag).
    Top,
    /// A root request of this syscall.
    Syscall(usize),
    /// Sent while serving this request.
    Request(usize),
    /// `arg2` names this tag, but no request or syscall with it is in the trace (its records
    /// were lost or came before the trace started).
    Lost(u64),
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered by `task` at `ns` with `result`.
    Replied {
        /// When.
        ns: u64,
        /// The `Cqe.result`, `i64` as `u64`.
        result: u64,
        /// The replying task.
        task: u32,
    },
    /// Failed with `ServerDied` when its server died ([`Analysis::deaths`] index).
    Died {
        /// When.
        ns: u64,
        /// The death.
        death: usize,
    },
    /// Neither answered nor failed by the end of the trace.
    Unanswered,
}

/// One request: a `Send` and what became of it.
#[derive(Clone, Debug)]
pub struct Request {
    /// The sending task.
    pub sender: u32,
    /// The CPU it was sent on.
    pub cpu: u16,
    /// The endpoint it was sent to.
    pub endpoint: u32,
    /// The message opcode.
    pub opcode: u32,
    /// Its tag.
    pub tag: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The tag the sender was serving (`Send.arg2`).
    pub serving: u64,
    /// Where it came from.
    pub parent: Parent,
    /// When it was sent.
    pub send_ns: u64,
    /// When and by which task it was received.
    pub receive: Option<(u64, u32)>,
    /// How it ended.
    pub outcome: Outcome,
    /// The death that had left its endpoint dead (no restart since) when it was sent.
    pub to_dead: Option<usize>,
    /// The death of the sender while the request was outstanding (the caller will never
    /// take the answer: an `exit_group`, a killed process).
    pub caller_died: Option<usize>,
    /// The failed sibling this request retries.
    pub retry_of: Option<usize>,
    /// Requests sent while serving it, in send order.
    pub children: Vec<usize>,
}

impl Request {
    /// When it ended (reply or death), if it did.
    pub fn end_ns(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Replied { ns, .. } | Outcome::Died { ns, .. } => Some(ns),
            Outcome::Unanswered => None,
        }
    }

    /// Send → reply time, for an answered request.
    pub fn latency(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Replied { ns, .. } => Some(ns.saturating_sub(self.send_ns)),
            _ => None,
        }
    }

    /// Send → receive time, if it was received.
    pub fn queued(&self) -> Option<u64> {
        self.receive.map(|(ns, _)| ns.saturating_sub(self.send_ns))
    }

    /// Whether it failed because of a dead server (in flight at the death, or sent after it).
    pub fn hit_dead_server(&self) -> bool {
        matches!(self.outcome, Outcome::Died { .. }) || self.to_dead.is_some()
    }
}

/// The death of a task: a server (which fails its outstanding requests), or any other task
/// (a user thread exiting or killed: see [`Death::is_exit`]).
#[derive(Clone, Debug)]
pub struct Death {
    /// When.
    pub ns: u64,
    /// The CPU that wrote the record.
    pub cpu: u16,
    /// The dead task.
    pub task: u32,
    /// The endpoint it served, if any.
    pub endpoint: Option<u32>,
    /// The server index, if the task was a server (`Death.opcode` ≠ u32::MAX).
    pub server: Option<u32>,
    /// How many requests the nucleus says it failed with `ServerDied` (`Death.arg`).
    pub reported_failed: u64,
    /// The outstanding requests this analysis saw it fail, in send order.
    pub failed: Vec<usize>,
    /// The restart that brought the endpoint back ([`Analysis::restarts`] index).
    pub restart: Option<usize>,
}

impl Death {
    /// Whether the dead task was no server (no endpoint, no server index): an exit rather than
    /// a failure.
    pub fn is_exit(&self) -> bool {
        self.endpoint.is_none() && self.server.is_none()
    }
}

/// A server (re)start. The nucleus writes one for every start, the first included; a
/// restart is one that follows a death ([`Restart::after_death`]).
#[derive(Clone, Debug)]
pub struct Restart {
    /// When.
    pub ns: u64,
    /// The CPU that wrote the record.
    pub cpu: u16,
    /// The new task.
    pub task: u32,
    /// The endpoint it serves.
    pub endpoint: u32,
    /// The server index.
    pub server: u32,
    /// The instance number.
    pub instance: u64,
    /// The death it follows ([`Analysis::deaths`] index), `None` for a first start.
    pub after_death: Option<usize>,
}

/// An injected fault.
#[derive(Clone, Debug)]
pub struct Fault {
    /// When.
    pub ns: u64,
    /// The CPU that wrote the record.
    pub cpu: u16,
    /// The victim.
    pub task: u32,
    /// The injection kind.
    pub kind: u32,
}

/// A stretch of time during which `task` ran on `cpu`, between two switches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The CPU.
    pub cpu: u16,
    /// The task (u32::MAX: idle).
    pub task: u32,
    /// Start.
    pub start: u64,
    /// End.
    pub end: u64,
    /// Why it ended (`Switch.arg`), `None` if the trace ended first.
    pub end_reason: Option<u64>,
}

/// Records lost on a CPU.
#[derive(Clone, Debug)]
pub struct Dropped {
    /// When the loss was noticed.
    pub ns: u64,
    /// The CPU.
    pub cpu: u16,
    /// How many records were lost.
    pub lost: u64,
}

/// A top-level item of the causal forest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// A syscall ([`Analysis::syscalls`] index).
    Syscall(usize),
    /// A request with no known parent ([`Analysis::requests`] index).
    Request(usize),
}

/// Records that did not fit the contract, by kind of misfit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    /// `SyscallExit` with no open `SyscallEnter` (the trace started mid-call?).
    pub exit_without_enter: usize,
    /// `Receive` with no outstanding `Send` of its tag.
    pub receive_without_send: usize,
    /// `Reply` with no outstanding `Send` of its tag.
    pub reply_without_send: usize,
    /// `Switch` away from a task the CPU was not running (a record was lost?).
    pub switch_mismatch: usize,
    /// Records of a kind this reader does not know.
    pub unknown_kind: usize,
    /// `SyscallEnter` whose arch field disagrees with the stream header.
    pub arch_mismatch: usize,
}

/// Everything [`analyze`] found.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The stream header's arch.
    pub trace_arch: TraceArch,
    /// CPUs per the stream header.
    pub cpus: u32,
    /// Number of records.
    pub record_count: usize,
    /// First and last timestamps (0 for an empty trace).
    pub start_ns: u64,
    /// See `start_ns`.
    pub end_ns: u64,
    /// Records per raw kind value.
    pub kind_counts: BTreeMap<u16, usize>,
    /// Syscalls, in enter order.
    pub syscalls: Vec<Syscall>,
    /// Requests, in send order.
    pub requests: Vec<Request>,
    /// Server deaths, in order.
    pub deaths: Vec<Death>,
    /// Server restarts, in order.
    pub restarts: Vec<Restart>,
    /// Fault injections, in order.
    pub faults: Vec<Fault>,
    /// Runs, per CPU in time order (CPUs in ascending order).
    pub runs: Vec<Run>,
    /// Lost-record notices.
    pub dropped: Vec<Dropped>,
    /// The causal forest's roots, in time order.
    pub roots: Vec<Root>,
    /// First and last timestamp per CPU.
    pub cpu_window: BTreeMap<u16, (u64, u64)>,
    /// Given names (side file and transcript).
    pub names: Names,
    /// Task names: given ones, else derived from restarts and receives.
    pub task_names: BTreeMap<u32, String>,
    /// Misfits.
    pub anomalies: Anomalies,
    /// Warnings from decoding.
    pub warnings: Vec<String>,
}

impl Analysis {
    /// `task 5 (linux)`, or `task 5` when nothing names it; `idle` for u32::MAX.
    pub fn task_label(&self, task: u32) -> String {
        match self.task_names.get(&task) {
            Some(name) => format!("task {task} ({name})"),
            None if task == u32::MAX => "idle".to_string(),
            None => format!("task {task}"),
        }
    }

    /// The name of `task`, if it has one (given or derived).
    pub fn task_name(&self, task: u32) -> Option<&str> {
        self.task_names.get(&task).map(String::as_str)
    }

    /// Whether `task` is a CPU's idle loop (slot u32::MAX or named `idle…`).
    pub fn is_idle(&self, task: u32) -> bool {
        task == u32::MAX || self.names.task(task).is_some_and(|n| n.starts_with("idle"))
    }

    /// `vfs [opcode 2]`: the endpoint and opcode of request `r`. The opcode is named by the
    /// names table if it can, else, for the request a syscall sends (whose opcode is the
    /// syscall number), by the syscall: `linux [read]`.
    pub fn request_label(&self, r: &Request) -> String {
        format!("{} {}", self.names.endpoint_label(r.endpoint), self.opcode_label(r))
    }

    /// `[open]`, `[read]` or `[opcode 2]`: the opcode part of [`Analysis::request_label`].
    pub fn opcode_label(&self, r: &Request) -> String {
        if self.names.opcode(r.endpoint, r.opcode).is_none() {
            if let Some(name) = self.syscall_opcode_name(r) {
                return format!("[{name}]");
            }
        }
        self.names.opcode_label(r.endpoint, r.opcode)
    }

    /// The syscall name of a request sent for a syscall with the syscall's number as opcode.
    pub fn syscall_opcode_name(&self, r: &Request) -> Option<String> {
        match r.parent {
            Parent::Syscall(s) if self.syscalls[s].nr == r.opcode => Some(self.syscalls[s].name()),
            _ => None,
        }
    }

    /// `read (fd 3)`: syscall `s` with its first argument.
    pub fn syscall_label(&self, s: &Syscall) -> String {
        let name = s.name();
        let arg = syscalls::describe_arg(&name, s.arg);
        format!("{name} {arg}")
    }

    /// The syscall whose chain request `r` belongs to, if any.
    pub fn root_syscall(&self, mut r: usize) -> Option<usize> {
        loop {
            match self.requests[r].parent {
                Parent::Syscall(s) => return Some(s),
                Parent::Request(p) => r = p,
                Parent::Top | Parent::Lost(_) => return None,
            }
        }
    }

    /// The tasks that received requests (servers), ascending.
    pub fn server_tasks(&self) -> Vec<u32> {
        let mut tasks: Vec<u32> = self.requests.iter().filter_map(|r| r.receive.map(|(_, t)| t)).collect();
        tasks.extend(self.restarts.iter().map(|r| r.task));
        tasks.sort_unstable();
        tasks.dedup();
        tasks
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SyscallKey {
    Tag(u64),
    Task(u32),
}

fn syscall_key(r: &TraceRecord) -> SyscallKey {
    if r.tag != 0 {
        SyscallKey::Tag(r.tag)
    } else {
        SyscallKey::Task(r.task)
    }
}

/// The state of the single pass over the records.
struct Builder<'a> {
    trace: &'a Trace,
    options: &'a Options,
    a: Analysis,
    open_syscalls: HashMap<SyscallKey, Vec<usize>>,
    /// Outstanding requests by tag, in send order.
    open: HashMap<u64, Vec<usize>>,
    /// Every request by tag, in send order.
    by_tag: HashMap<u64, Vec<usize>>,
    /// Endpoints whose server died and was not restarted yet → the death.
    dead: HashMap<u32, usize>,
    /// What each CPU runs since when.
    running: BTreeMap<u16, (u32, u64)>,
}

/// Builds the model of `trace` (see the module docs).
pub fn analyze(trace: &Trace, options: &Options) -> Analysis {
    let records = &trace.records;
    let mut b = Builder {
        trace,
        options,
        a: Analysis {
            trace_arch: trace.arch,
            cpus: trace.cpus,
            record_count: records.len(),
            start_ns: records.first().map_or(0, |r| r.timestamp),
            end_ns: records.last().map_or(0, |r| r.timestamp),
            kind_counts: BTreeMap::new(),
            syscalls: Vec::new(),
            requests: Vec::new(),
            deaths: Vec::new(),
            restarts: Vec::new(),
            faults: Vec::new(),
            runs: Vec::new(),
            dropped: Vec::new(),
            roots: Vec::new(),
            cpu_window: BTreeMap::new(),
            names: trace.names.clone(),
            task_names: BTreeMap::new(),
            anomalies: Anomalies::default(),
            warnings: trace.warnings.clone(),
        },
        open_syscalls: HashMap::new(),
        open: HashMap::new(),
        by_tag: HashMap::new(),
        dead: HashMap::new(),
        running: BTreeMap::new(),
    };
    for r in records {
        let w = b.a.cpu_window.entry(r.cpu).or_insert((r.timestamp, r.timestamp));
        w.1 = r.timestamp;
    }
    for r in records {
        *b.a.kind_counts.entry(r.kind).or_default() += 1;
        match r.kind() {
            Some(TraceKind::SyscallEnter) => b.syscall_enter(r),
            Some(TraceKind::SyscallExit) => b.syscall_exit(r),
            Some(TraceKind::SyscallAnswered) => b.syscall_answered(r),
            Some(TraceKind::Send) => b.send(r),
            Some(TraceKind::Receive) => b.receive(r),
            Some(TraceKind::Reply) => b.reply(r),
            Some(TraceKind::Switch) => b.switch(r),
            Some(TraceKind::Block | TraceKind::Wake) => {}
            Some(TraceKind::Death) => b.death(r),
            Some(TraceKind::Restart) => b.restart(r),
            Some(TraceKind::FaultInject) => {
                b.a.faults.push(Fault { ns: r.timestamp, cpu: r.cpu, task: r.task, kind: r.opcode })
            }
            Some(TraceKind::Dropped) => b.a.dropped.push(Dropped { ns: r.timestamp, cpu: r.cpu, lost: r.arg }),
            None => b.a.anomalies.unknown_kind += 1,
        }
    }
    b.finish()
}

impl Builder<'_> {
    fn syscall_enter(&mut self, r: &TraceRecord) {
        let arch = syscalls::syscall_arch(self.options.arch, r.arg2, self.trace.arch);
        if self.options.arch.is_none() {
            if let Some(header) = syscalls::header_arch(self.trace.arch) {
                if header != arch {
                    self.a.anomalies.arch_mismatch += 1;
                }
            }
        }
        let index = self.a.syscalls.len();
        self.a.syscalls.push(Syscall {
            task: r.task,
            cpu: r.cpu,
            nr: r.opcode,
            arch,
            tag: r.tag,
            arg: r.arg,
            enter_ns: r.timestamp,
            exit: None,
            died_ns: None,
            requests: Vec::new(),
        });
        self.a.roots.push(Root::Syscall(index));
        self.open_syscalls.entry(syscall_key(r)).or_default().push(index);
    }

    /// A syscall the nucleus answered: entered and returned at once, no requests.
    fn syscall_answered(&mut self, r: &TraceRecord) {
        let arch = syscalls::syscall_arch(self.options.arch, r.arg2, self.trace.arch);
        self.a.syscalls.push(Syscall {
            task: r.task,
            cpu: r.cpu,
            nr: r.opcode,
            arch,
            tag: 0,
            arg: 0,
            enter_ns: r.timestamp,
            exit: Some((r.timestamp, r.arg)),
            died_ns: None,
            requests: Vec::new(),
        });
        self.a.roots.push(Root::Syscall(self.a.syscalls.len() - 1));
    }

    fn syscall_exit(&mut self, r: &TraceRecord) {
        let Some(open) = self.open_syscalls.get_mut(&syscall_key(r)) else {
            self.a.anomalies.exit_without_enter += 1;
            return;
        };
        let syscalls = &self.a.syscalls;
        let pick = open
            .iter()
            .rposition(|&s| syscalls[s].task == r.task && syscalls[s].nr == r.opcode)
            .or_else(|| open.len().checked_sub(1));
        match pick {
            Some(pos) => {
                let s = open.remove(pos);
                self.a.syscalls[s].exit = Some((r.timestamp, r.arg));
            }
            None => self.a.anomalies.exit_without_enter += 1,
        }
    }

    /// The open syscall with tag `tag`, preferring one of `task`.
    fn open_syscall(&self, tag: u64, task: u32) -> Option<usize> {
        let open = self.open_syscalls.get(&SyscallKey::Tag(tag))?;
        open.iter().rev().find(|&&s| self.a.syscalls[s].task == task).or(open.last()).copied()
    }

    fn parent_of(&self, r: &TraceRecord) -> Parent {
        let requests = &self.a.requests;
        let served_by_sender = |&&i: &&usize| requests[i].receive.is_some_and(|(_, t)| t == r.task);
        if r.arg2 != 0 {
            let p = r.arg2;
            let open = self.open.get(&p).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&i) = open.iter().rev().find(served_by_sender) {
                return Parent::Request(i);
            }
            if let Some(&i) = open.iter().rev().find(|&&i| requests[i].receive.is_none()) {
                return Parent::Request(i); // its Receive record was lost
            }
            if let Some(s) = self.open_syscall(p, r.task) {
                return Parent::Syscall(s);
            }
            let all = self.by_tag.get(&p).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&i) = all.iter().rev().find(served_by_sender) {
                return Parent::Request(i); // sent after its parent completed
            }
            if let Some(&i) = open.last() {
                return Parent::Request(i);
            }
            return Parent::Lost(p);
        }
        match self.open_syscall(r.tag, r.task) {
            Some(s) => Parent::Syscall(s),
            None => Parent::Top,
        }
    }

    fn send(&mut self, r: &TraceRecord) {
        let parent = self.parent_of(r);
        let index = self.a.requests.len();
        self.a.requests.push(Request {
            sender: r.task,
            cpu: r.cpu,
            endpoint: r.endpoint,
            opcode: r.opcode,
            tag: r.tag,
            size: r.arg,
            serving: r.arg2,
            parent,
            send_ns: r.timestamp,
            receive: None,
            outcome: Outcome::Unanswered,
            to_dead: self.dead.get(&r.endpoint).copied(),
            caller_died: None,
            retry_of: None,
            children: Vec::new(),
        });
        match parent {
            Parent::Syscall(s) => self.a.syscalls[s].requests.push(index),
            Parent::Request(p) => self.a.requests[p].children.push(index),
            Parent::Top | Parent::Lost(_) => self.a.roots.push(Root::Request(index)),
        }
        self.open.entry(r.tag).or_default().push(index);
        self.by_tag.entry(r.tag).or_default().push(index);
    }

    /// Position in `open[tag]` of the request a receive or reply by `r` names.
    fn find_open(&self, r: &TraceRecord, want_unreceived: bool) -> Option<usize> {
        let open = self.open.get(&r.tag)?;
        let req = |pos: &usize| &self.a.requests[open[*pos]];
        let positions = || (0..open.len()).rev();
        let fits = |pos: &usize| !want_unreceived || req(pos).receive.is_none();
        positions()
            .find(|p| req(p).endpoint == r.endpoint && fits(p) && req(p).receive.is_none_or(|(_, t)| t == r.task))
            .or_else(|| positions().find(|p| req(p).endpoint == r.endpoint && fits(p)))
            .or_else(|| positions().find(fits))
            .or_else(|| positions().next())
    }

    fn receive(&mut self, r: &TraceRecord) {
        match self.find_open(r, true) {
            Some(pos) => {
                let i = self.open[&r.tag][pos];
                self.a.requests[i].receive = Some((r.timestamp, r.task));
            }
            None => self.a.anomalies.receive_without_send += 1,
        }
    }

    fn reply(&mut self, r: &TraceRecord) {
        match self.find_open(r, false) {
            Some(pos) => {
                let i = self.open.get_mut(&r.tag).map(|v| v.remove(pos)).unwrap_or_default();
                self.a.requests[i].outcome = Outcome::Replied { ns: r.timestamp, result: r.arg, task: r.task };
            }
            None => self.a.anomalies.reply_without_send += 1,
        }
    }

    fn death(&mut self, r: &TraceRecord) {
        let endpoint = (r.endpoint != u32::MAX).then_some(r.endpoint);
        let index = self.a.deaths.len();
        let mut failed = Vec::new();
        for list in self.open.values_mut() {
            list.retain(|&i| {
                let q = &self.a.requests[i];
                let hit = Some(q.endpoint) == endpoint || q.receive.is_some_and(|(_, t)| t == r.task);
                if hit {
                    failed.push(i);
                }
                !hit
            });
        }
        failed.sort_unstable();
        for &i in &failed {
            self.a.requests[i].outcome = Outcome::Died { ns: r.timestamp, death: index };
        }
        for list in self.open.values() {
            for &i in list {
                if self.a.requests[i].sender == r.task && self.a.requests[i].caller_died.is_none() {
                    self.a.requests[i].caller_died = Some(index);
                }
            }
        }
        for list in self.open_syscalls.values() {
            for &s in list {
                if self.a.syscalls[s].task == r.task {
                    self.a.syscalls[s].died_ns = Some(r.timestamp);
                }
            }
        }
        for list in self.open_syscalls.values_mut() {
            list.retain(|&s| self.a.syscalls[s].died_ns.is_none());
        }
        if let Some(ep) = endpoint {
            self.dead.insert(ep, index);
        }
        self.a.deaths.push(Death {
            ns: r.timestamp,
            cpu: r.cpu,
            task: r.task,
            endpoint,
            server: (r.opcode != u32::MAX).then_some(r.opcode),
            reported_failed: r.arg,
            failed,
            restart: None,
        });
    }

    fn restart(&mut self, r: &TraceRecord) {
        let index = self.a.restarts.len();
        self.dead.remove(&r.endpoint);
        let death = self.a.deaths.iter_mut().enumerate().rev().find(|(_, d)| {
            d.restart.is_none()
                && (d.endpoint == Some(r.endpoint) || (d.endpoint.is_none() && d.server == Some(r.opcode)))
        });
        let after_death = death.map(|(i, d)| {
            d.restart = Some(index);
            i
        });
        self.a.restarts.push(Restart {
            ns: r.timestamp,
            cpu: r.cpu,
            task: r.task,
            endpoint: r.endpoint,
            server: r.opcode,
            instance: r.arg,
            after_death,
        });
    }

    fn switch(&mut self, r: &TraceRecord) {
        let first = self.a.cpu_window.get(&r.cpu).map_or(r.timestamp, |w| w.0);
        let (current, since) = self.running.get(&r.cpu).copied().unwrap_or((r.task, first));
        if current != r.task {
            self.a.anomalies.switch_mismatch += 1;
        }
        if r.timestamp > since {
            self.a.runs.push(Run { cpu: r.cpu, task: r.task, start: since, end: r.timestamp, end_reason: Some(r.arg) });
        }
        self.running.insert(r.cpu, (r.endpoint, r.timestamp));
    }

    fn finish(mut self) -> Analysis {
        for (&cpu, &(task, since)) in &self.running {
            let end = self.a.cpu_window.get(&cpu).map_or(since, |w| w.1);
            if end > since {
                self.a.runs.push(Run { cpu, task, start: since, end, end_reason: None });
            }
        }
        self.a.runs.sort_by_key(|r| (r.cpu, r.start));
        mark_retries(&mut self.a);
        self.a.task_names = task_names(&self.a);
        self.a
    }
}

/// Marks each request that follows a failed sibling (same parent, endpoint, opcode) as its
/// retry. Top-level requests are siblings when they have the same sender.
fn mark_retries(a: &mut Analysis) {
    let mut groups: Vec<Vec<usize>> = a.syscalls.iter().map(|s| s.requests.clone()).collect();
    groups.extend(a.requests.iter().map(|r| r.children.clone()));
    let mut top: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for root in &a.roots {
        if let Root::Request(i) = *root {
            top.entry(a.requests[i].sender).or_default().push(i);
        }
    }
    groups.extend(top.into_values());
    for group in groups {
        for (k, &failed) in group.iter().enumerate() {
            if !a.requests[failed].hit_dead_server() {
                continue;
            }
            let (ep, op) = (a.requests[failed].endpoint, a.requests[failed].opcode);
            let next =
                group[k + 1..].iter().copied().find(|&j| a.requests[j].endpoint == ep && a.requests[j].opcode == op);
            if let Some(j) = next {
                if a.requests[j].retry_of.is_none() {
                    a.requests[j].retry_of = Some(failed);
                }
            }
        }
    }
}

/// Given task names, then `<endpoint>#<instance>` for restarted servers, then the endpoint a
/// task received from or died serving for other servers.
fn task_names(a: &Analysis) -> BTreeMap<u32, String> {
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for r in &a.requests {
        if let Some((_, task)) = r.receive {
            if let Some(ep) = a.names.endpoint(r.endpoint) {
                names.entry(task).or_insert_with(|| ep.to_string());
            }
        }
    }
    for d in &a.deaths {
        if let Some(ep) = d.endpoint.and_then(|e| a.names.endpoint(e)) {
            names.entry(d.task).or_insert_with(|| ep.to_string());
        }
    }
    for r in &a.restarts {
        names.insert(r.task, format!("{}#{}", a.names.endpoint_label(r.endpoint), r.instance));
    }
    for (&task, name) in &a.names.tasks {
        names.insert(task, name.clone());
    }
    names
}
