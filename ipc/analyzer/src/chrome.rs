//! Chrome trace-event JSON, which Perfetto (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! Layout of the export (the "JSON Object Format" of the Trace Event Format):
//!
//! * Process 1, **tasks**: one thread per row of each [`Lane`] (see [`crate::lanes`]): a task
//!   slot, split into more rows when its spans overlap without nesting, plus a lane per
//!   endpoint for requests nobody received. Complete events (`"ph":"X"`) for syscalls (enter
//!   → exit) and served requests (receive → reply/death), with tag, endpoint, opcode,
//!   outcome and result in `args`. Instant events (`"ph":"i"`) on the task's lane for server
//!   starts, deaths, restarts, task exits and fault injections (categories `start`, `death`,
//!   `restart`, `exit`, `fault`).
//! * Flow arrows (`"ph":"s"` / `"ph":"f"`) from the span that sent a request (a syscall or
//!   the request being served) to the span of the request itself: the causal chain.
//! * Process 2, **CPUs**: one thread per CPU, a complete event per run of a task between
//!   switches (idle runs left out).
//!
//! Timestamps are microseconds since boot with nanosecond decimals, printed exactly from the
//! integer nanoseconds (no float rounding). Invariant: the output is one JSON object that
//! [`crate::json::parse`] accepts (the tests check it), every complete event has `dur ≥ 0`,
//! and the events of each thread nest properly, as the format requires.

use crate::json::quote;
use crate::lanes::{self, Lane, Span, SpanOf};
use crate::model::{Analysis, Outcome, Parent};
use crate::stats::fmt_ns;
use crate::syscalls::describe_result;
use std::collections::BTreeMap;
use std::fmt::Write;

const TASKS_PID: u32 = 1;
const CPUS_PID: u32 = 2;

/// Microseconds with nanosecond decimals, exactly.
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

struct Events {
    out: String,
    first: bool,
}

impl Events {
    fn push(&mut self, event: String) {
        if !self.first {
            self.out.push_str(",\n");
        }
        self.first = false;
        self.out.push_str(&event);
    }
}

fn lane_name(a: &Analysis, lane: Lane, row: usize) -> String {
    let base = match lane {
        Lane::Task(t) => a.task_label(t),
        Lane::Endpoint(e) => format!("{} (not received)", a.names.endpoint_label(e)),
    };
    if row == 0 {
        base
    } else {
        format!("{base} [overlap {row}]")
    }
}

/// The Chrome trace-event JSON of `a`.
pub fn export(a: &Analysis) -> String {
    let mut spans = lanes::spans(a);
    let mut rows = lanes::pack(&mut spans);
    for t in
        a.deaths.iter().map(|d| d.task).chain(a.restarts.iter().map(|r| r.task)).chain(a.faults.iter().map(|f| f.task))
    {
        rows.entry(Lane::Task(t)).or_insert(1);
    }
    // One thread id per (lane, row), in lane order.
    let mut tids: BTreeMap<(Lane, usize), u32> = BTreeMap::new();
    for (&lane, &n) in &rows {
        for row in 0..n.max(1) {
            let next = tids.len() as u32 + 1;
            tids.insert((lane, row), next);
        }
    }
    let mut ev = Events { out: String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n"), first: true };
    ev.push(format!(
        "{{\"ph\":\"M\",\"pid\":{TASKS_PID},\"tid\":0,\"name\":\"process_name\",\"args\":{{\"name\":\"tasks\"}}}}"
    ));
    ev.push(format!(
        "{{\"ph\":\"M\",\"pid\":{CPUS_PID},\"tid\":0,\"name\":\"process_name\",\"args\":{{\"name\":\"CPUs\"}}}}"
    ));
    for (&(lane, row), &tid) in &tids {
        ev.push(format!(
            "{{\"ph\":\"M\",\"pid\":{TASKS_PID},\"tid\":{tid},\"name\":\"thread_name\",\"args\":{{\"name\":{}}}}}",
            quote(&lane_name(a, lane, row))
        ));
        ev.push(format!(
            "{{\"ph\":\"M\",\"pid\":{TASKS_PID},\"tid\":{tid},\"name\":\"thread_sort_index\",\"args\":{{\"sort_index\":{tid}}}}}"
        ));
    }
    let mut span_tid: BTreeMap<SpanKey, (u32, u64)> = BTreeMap::new();
    for s in &spans {
        let tid = tids[&(s.lane, s.row)];
        span_tid.insert(SpanKey::from(s.of), (tid, s.start));
        ev.push(span_event(a, s, tid));
    }
    // Flows: from the sending span to the request's span.
    for (i, r) in a.requests.iter().enumerate() {
        let from = match r.parent {
            Parent::Syscall(s) => span_tid.get(&SpanKey::Syscall(s)),
            Parent::Request(p) => span_tid.get(&SpanKey::Request(p)),
            Parent::Top | Parent::Lost(_) => None,
        };
        let (Some(&(from_tid, _)), Some(&(to_tid, to_start))) = (from, span_tid.get(&SpanKey::Request(i))) else {
            continue;
        };
        let name = quote(&a.request_label(r));
        ev.push(format!(
            "{{\"ph\":\"s\",\"id\":{id},\"pid\":{TASKS_PID},\"tid\":{from_tid},\"ts\":{},\"name\":{name},\"cat\":\"flow\"}}",
            us(r.send_ns),
            id = i + 1
        ));
        ev.push(format!(
            "{{\"ph\":\"f\",\"bp\":\"e\",\"id\":{id},\"pid\":{TASKS_PID},\"tid\":{to_tid},\"ts\":{},\"name\":{name},\"cat\":\"flow\"}}",
            us(to_start),
            id = i + 1
        ));
    }
    let instant = |ev: &mut Events, task: u32, ns: u64, cat: &str, name: String, args: String| {
        let tid = tids.get(&(Lane::Task(task), 0)).copied().unwrap_or(0);
        ev.push(format!(
            "{{\"ph\":\"i\",\"s\":\"t\",\"pid\":{TASKS_PID},\"tid\":{tid},\"ts\":{},\"name\":{},\"cat\":\"{cat}\",\"args\":{{{args}}}}}",
            us(ns),
            quote(&name)
        ));
    };
    for d in &a.deaths {
        if d.is_exit() {
            instant(&mut ev, d.task, d.ns, "exit", format!("EXIT {}", a.task_label(d.task)), String::new());
            continue;
        }
        let ep = d.endpoint.map_or("none".to_string(), |e| a.names.endpoint_label(e));
        instant(
            &mut ev,
            d.task,
            d.ns,
            "death",
            format!("DEATH {}", a.task_label(d.task)),
            format!(
                "\"endpoint\":{},\"server\":{},\"failed\":{},\"reported_failed\":{}",
                quote(&ep),
                d.server.map_or("null".to_string(), |s| s.to_string()),
                d.failed.len(),
                d.reported_failed
            ),
        );
    }
    for r in &a.restarts {
        instant(
            &mut ev,
            r.task,
            r.ns,
            if r.after_death.is_some() { "restart" } else { "start" },
            format!("{} {}", if r.after_death.is_some() { "RESTART" } else { "START" }, a.task_label(r.task)),
            format!(
                "\"endpoint\":{},\"server\":{},\"instance\":{}",
                quote(&a.names.endpoint_label(r.endpoint)),
                r.server,
                r.instance
            ),
        );
    }
    for f in &a.faults {
        instant(&mut ev, f.task, f.ns, "fault", format!("FAULT kind {}", f.kind), format!("\"kind\":{}", f.kind));
    }
    let cpus: Vec<u16> = a.cpu_window.keys().copied().collect();
    for cpu in cpus {
        ev.push(format!(
            "{{\"ph\":\"M\",\"pid\":{CPUS_PID},\"tid\":{cpu},\"name\":\"thread_name\",\"args\":{{\"name\":\"cpu {cpu}\"}}}}"
        ));
    }
    for run in a.runs.iter().filter(|r| !a.is_idle(r.task)) {
        let reason = match run.end_reason {
            Some(0) => "preempt",
            Some(1) => "block",
            Some(2) => "yield",
            Some(3) => "exit",
            Some(_) => "other",
            None => "trace end",
        };
        ev.push(format!(
            "{{\"ph\":\"X\",\"pid\":{CPUS_PID},\"tid\":{},\"ts\":{},\"dur\":{},\"name\":{},\"cat\":\"run\",\"args\":{{\"ended_by\":\"{reason}\"}}}}",
            run.cpu,
            us(run.start),
            us(run.end - run.start),
            quote(&a.task_label(run.task))
        ));
    }
    ev.out.push_str("\n]}\n");
    ev.out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SpanKey {
    Syscall(usize),
    Request(usize),
}

impl From<SpanOf> for SpanKey {
    fn from(of: SpanOf) -> SpanKey {
        match of {
            SpanOf::Syscall(i) => SpanKey::Syscall(i),
            SpanOf::Request(i) => SpanKey::Request(i),
        }
    }
}

fn span_event(a: &Analysis, s: &Span, tid: u32) -> String {
    let mut args = String::new();
    let (name, cat) = match s.of {
        SpanOf::Syscall(i) => {
            let sc = &a.syscalls[i];
            let _ = write!(args, "\"tag\":\"{:#x}\",\"nr\":{},\"arg\":\"{:#x}\"", sc.tag, sc.nr, sc.arg);
            match (sc.exit, sc.died_ns) {
                (Some((_, result)), _) => {
                    let _ = write!(args, ",\"result\":{}", quote(&describe_result(result)));
                }
                (None, Some(_)) => args.push_str(",\"outcome\":\"task died\""),
                (None, None) => args.push_str(",\"outcome\":\"never returned\""),
            }
            (a.syscall_label(sc), "syscall")
        }
        SpanOf::Request(i) => {
            let r = &a.requests[i];
            let _ = write!(
                args,
                "\"tag\":\"{:#x}\",\"endpoint\":{},\"opcode\":{},\"size\":{},\"sender\":{},\"parent_tag\":\"{:#x}\"",
                r.tag,
                r.endpoint,
                r.opcode,
                r.size,
                quote(&a.task_label(r.sender)),
                r.serving
            );
            if let Some(q) = r.queued() {
                let _ = write!(args, ",\"queued\":{}", quote(&fmt_ns(q)));
            }
            let outcome = match r.outcome {
                Outcome::Replied { result, .. } => format!("replied {}", describe_result(result)),
                Outcome::Died { .. } => "server died".to_string(),
                Outcome::Unanswered if r.caller_died.is_some() => "abandoned: the caller died".to_string(),
                Outcome::Unanswered => "never answered".to_string(),
            };
            let _ = write!(args, ",\"outcome\":{}", quote(&outcome));
            if r.to_dead.is_some() {
                args.push_str(",\"sent_to_dead_server\":true");
            }
            if let Some(prev) = r.retry_of {
                let _ = write!(args, ",\"retry_of_tag\":\"{:#x}\"", a.requests[prev].tag);
            }
            let mut name = a.request_label(r);
            if r.hit_dead_server() {
                name.push_str(" (dead server)");
            } else if r.outcome == Outcome::Unanswered && r.caller_died.is_none() {
                name.push_str(" (never answered)");
            }
            (name, "request")
        }
    };
    if s.open {
        args.push_str(",\"open_at_trace_end\":true");
    }
    format!(
        "{{\"ph\":\"X\",\"pid\":{TASKS_PID},\"tid\":{tid},\"ts\":{},\"dur\":{},\"name\":{},\"cat\":\"{cat}\",\"args\":{{{args}}}}}",
        us(s.start),
        us(s.end - s.start),
        quote(&name)
    )
}
