//! The text report: summary tables, deaths, problems, and causal chains.
//!
//! Sections, in order (each headed `== Title ==`):
//!
//! 1. **Trace**: record counts, span, arch, and every warning or anomaly — so a reader knows
//!    how far to trust the rest (lost records make chains incomplete).
//! 2. **Messages per endpoint and opcode**: sent / received / replied / died / sent to a dead
//!    server / never answered, and send → reply latency percentiles of the answered ones.
//! 3. **Syscall latency**: per (arch, number), enter → exit percentiles.
//! 4. **Busy time per task** and **per CPU**, from the runs cut by `Switch` records.
//! 5. **Server starts, deaths, restarts, task exits and injected faults**, in time order (a
//!    death with neither endpoint nor server index is a task exit).
//! 6. **Requests never answered** (not counting those whose sender died while waiting),
//!    **Messages to dead servers**, **Syscalls that never returned** (not counting `exit` and
//!    `exit_group`, which end their task).
//! 7. **Causal chains**: each selected syscall (or top-level request) and the tree of
//!    requests it caused, one line per hop with its time, indented by depth.
//!
//! The aggregations behind the tables ([`message_stats`], [`syscall_stats`], [`task_busy`],
//! [`cpu_busy`]) are public, so tests check numbers rather than text.
//!
//! Invariants: the report is deterministic (it iterates only ordered collections), and every
//! number in it comes from the [`Analysis`]; this module computes nothing but sums and
//! percentiles over it. `--syscall`/`--pid` ([`ChainFilter`]) select chains only: the tables
//! always cover the whole trace.

use crate::model::{Analysis, Outcome, Parent, Root};
use crate::stats::{fmt_at, fmt_ns, fmt_pct, summarize};
use crate::syscalls::{self, describe_result, SyscallFilter};
use abi::syscall::Arch;
use ipc::trace::TraceKind;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Which causal chains to print.
#[derive(Clone, Debug, Default)]
pub struct ChainFilter {
    /// Only syscalls this selects (and then no top-level requests).
    pub syscall: Option<SyscallFilter>,
    /// Only syscalls of this task, and top-level requests it sent.
    pub task: Option<u32>,
    /// At most this many chains.
    pub max: Option<usize>,
}

/// The whole report: summary, problems, then chains.
pub fn full(a: &Analysis, filter: &ChainFilter) -> String {
    let mut out = summary(a);
    out.push_str(&problems(a));
    out.push_str(&chains(a, filter));
    out
}

fn heading(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n== {title} ==");
}

/// Renders rows under headers; `align` has one char per column, `l` or `r`.
fn table(out: &mut String, headers: &[&str], align: &str, rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let align: Vec<char> = align.chars().collect();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            let w = widths[i];
            if i > 0 {
                text.push_str("  ");
            }
            if align.get(i) == Some(&'r') {
                let _ = write!(text, "{cell:>w$}");
            } else {
                let _ = write!(text, "{cell:<w$}");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, &mut headers.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

/// Sections 1–5: the trace, messages, syscalls, busy times, deaths.
pub fn summary(a: &Analysis) -> String {
    let mut out = String::new();
    trace_section(&mut out, a);
    messages_section(&mut out, a);
    syscalls_section(&mut out, a);
    busy_sections(&mut out, a);
    events_section(&mut out, a);
    out
}

fn trace_section(out: &mut String, a: &Analysis) {
    heading(out, "Trace");
    let arch = match syscalls::header_arch(a.trace_arch) {
        Some(arch) => syscalls::arch_name(arch),
        None => "unknown",
    };
    let _ = writeln!(
        out,
        "{} records, CPUs: {}, arch {arch}, from {} to {} (span {})",
        a.record_count,
        a.cpus.max(a.cpu_window.len() as u32),
        fmt_at(a.start_ns),
        fmt_at(a.end_ns),
        fmt_ns(a.end_ns - a.start_ns)
    );
    let kinds: Vec<String> = a
        .kind_counts
        .iter()
        .map(|(&k, n)| match TraceKind::from_u16(k) {
            Some(kind) => format!("{kind} {n}"),
            None => format!("kind#{k} {n}"),
        })
        .collect();
    if !kinds.is_empty() {
        let _ = writeln!(out, "records by kind: {}", kinds.join(", "));
    }
    let lost = a.dropped.iter().fold(0u64, |n, d| n.saturating_add(d.lost));
    if lost > 0 {
        let mut per_cpu: BTreeMap<u16, u64> = BTreeMap::new();
        for d in &a.dropped {
            let n = per_cpu.entry(d.cpu).or_default();
            *n = n.saturating_add(d.lost);
        }
        let list: Vec<String> = per_cpu.iter().map(|(c, n)| format!("cpu {c}: {n}")).collect();
        let _ = writeln!(
            out,
            "WARNING: {lost} records were lost ({}): chains and latencies may be incomplete",
            list.join(", ")
        );
    }
    for w in &a.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let an = &a.anomalies;
    for (n, what) in [
        (an.exit_without_enter, "syscall exits without an enter"),
        (an.receive_without_send, "receives of no outstanding request"),
        (an.reply_without_send, "replies to no outstanding request"),
        (an.switch_mismatch, "switches away from a task the CPU was not running"),
        (an.unknown_kind, "records of unknown kinds (skipped)"),
        (an.arch_mismatch, "syscall enters whose arch field disagrees with the stream header (use --arch)"),
    ] {
        if n > 0 {
            let _ = writeln!(out, "note: {n} {what}");
        }
    }
}

fn pcts(samples: &[u64]) -> [String; 4] {
    match summarize(samples) {
        Some(s) => [fmt_ns(s.p50), fmt_ns(s.p90), fmt_ns(s.p99), fmt_ns(s.max)],
        None => ["-".into(), "-".into(), "-".into(), "-".into()],
    }
}

/// Counts and latencies of one (endpoint, opcode) message type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageStats {
    /// Requests sent.
    pub sent: usize,
    /// Of those, received by a server.
    pub received: usize,
    /// Answered with a reply.
    pub replied: usize,
    /// Failed by their server's death while outstanding.
    pub died: usize,
    /// Sent while the endpoint was dead.
    pub to_dead: usize,
    /// Neither answered nor failed.
    pub open: usize,
    /// Sum of the sizes.
    pub bytes: u64,
    /// Send → reply latency of each answered request, in send order.
    pub latencies: Vec<u64>,
}

/// Per (endpoint, opcode) message statistics.
pub fn message_stats(a: &Analysis) -> BTreeMap<(u32, u32), MessageStats> {
    let mut rows: BTreeMap<(u32, u32), MessageStats> = BTreeMap::new();
    for r in &a.requests {
        let row = rows.entry((r.endpoint, r.opcode)).or_default();
        row.sent += 1;
        row.bytes = row.bytes.saturating_add(r.size);
        row.received += r.receive.is_some() as usize;
        row.to_dead += r.to_dead.is_some() as usize;
        match r.outcome {
            Outcome::Replied { .. } => row.replied += 1,
            Outcome::Died { .. } => row.died += 1,
            Outcome::Unanswered => row.open += 1,
        }
        row.latencies.extend(r.latency());
    }
    rows
}

fn messages_section(out: &mut String, a: &Analysis) {
    heading(out, "Messages per endpoint and opcode");
    if a.requests.is_empty() {
        let _ = writeln!(out, "(no messages)");
        return;
    }
    // A row is named after a syscall when every request in it is one syscall's request.
    let mut labels: BTreeMap<(u32, u32), Option<String>> = BTreeMap::new();
    for r in &a.requests {
        let name = a.opcode_label(r);
        labels
            .entry((r.endpoint, r.opcode))
            .and_modify(|l| {
                if l.as_ref() != Some(&name) {
                    *l = None;
                }
            })
            .or_insert(Some(name));
    }
    let mut cells = Vec::new();
    for ((ep, op), row) in &message_stats(a) {
        let [p50, p90, p99, max] = pcts(&row.latencies);
        cells.push(vec![
            a.names.endpoint_label(*ep),
            labels.get(&(*ep, *op)).cloned().flatten().unwrap_or_else(|| a.names.opcode_label(*ep, *op)),
            row.sent.to_string(),
            row.received.to_string(),
            row.replied.to_string(),
            row.died.to_string(),
            row.to_dead.to_string(),
            row.open.to_string(),
            row.bytes.to_string(),
            p50,
            p90,
            p99,
            max,
        ]);
    }
    table(
        out,
        &[
            "endpoint", "opcode", "sent", "recv", "replied", "died", "to-dead", "open", "bytes", "p50", "p90", "p99",
            "max",
        ],
        "llrrrrrrrrrrr",
        &cells,
    );
    let _ = writeln!(out, "(latency: send -> reply of the answered requests)");
}

/// Latencies of one syscall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallStats {
    /// The numbering.
    pub arch: Arch,
    /// Enter → exit of each call that returned, in enter order.
    pub latencies: Vec<u64>,
    /// Calls that never returned.
    pub unfinished: usize,
}

/// Per (arch name, syscall number) latencies; numbers of the two arches never share a row.
pub fn syscall_stats(a: &Analysis) -> BTreeMap<(&'static str, u32), SyscallStats> {
    let mut rows: BTreeMap<(&'static str, u32), SyscallStats> = BTreeMap::new();
    for s in &a.syscalls {
        let row = rows.entry((syscalls::arch_name(s.arch), s.nr)).or_insert(SyscallStats {
            arch: s.arch,
            latencies: Vec::new(),
            unfinished: 0,
        });
        match s.duration() {
            Some(d) => row.latencies.push(d),
            None => row.unfinished += 1,
        }
    }
    rows
}

fn syscalls_section(out: &mut String, a: &Analysis) {
    heading(out, "Syscall latency (enter -> exit)");
    if a.syscalls.is_empty() {
        let _ = writeln!(out, "(no syscalls)");
        return;
    }
    let mut cells = Vec::new();
    for ((arch_name, nr), row) in &syscall_stats(a) {
        let [p50, p90, p99, max] = pcts(&row.latencies);
        cells.push(vec![
            syscalls::name(row.arch, *nr),
            nr.to_string(),
            arch_name.to_string(),
            (row.latencies.len() + row.unfinished).to_string(),
            row.unfinished.to_string(),
            p50,
            p90,
            p99,
            max,
        ]);
    }
    table(out, &["syscall", "nr", "arch", "count", "unfinished", "p50", "p90", "p99", "max"], "lrlrrrrrr", &cells);
}

/// How one task spent the trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskBusy {
    /// Time running on any CPU, ns.
    pub busy: u64,
    /// Number of runs.
    pub runs: usize,
    /// Requests it received that ended (reply or death).
    pub served: usize,
    /// Receive → end of those, ns.
    pub service: u64,
}

/// Busy time of every non-idle task that ran or served a request.
pub fn task_busy(a: &Analysis) -> BTreeMap<u32, TaskBusy> {
    let mut rows: BTreeMap<u32, TaskBusy> = BTreeMap::new();
    for r in a.runs.iter().filter(|r| !a.is_idle(r.task)) {
        let e = rows.entry(r.task).or_default();
        e.busy = e.busy.saturating_add(r.end - r.start);
        e.runs += 1;
    }
    for r in &a.requests {
        if let (Some((at, task)), Some(end)) = (r.receive, r.end_ns()) {
            let e = rows.entry(task).or_default();
            e.served += 1;
            e.service = e.service.saturating_add(end.saturating_sub(at));
        }
    }
    rows
}

/// How one CPU spent the trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuBusy {
    /// From its first record to its last, ns.
    pub window: u64,
    /// Time running a non-idle task, ns.
    pub busy: u64,
    /// Switch records.
    pub switches: usize,
}

/// Busy time per CPU.
pub fn cpu_busy(a: &Analysis) -> BTreeMap<u16, CpuBusy> {
    let mut rows = BTreeMap::new();
    for (&cpu, &(first, last)) in &a.cpu_window {
        let mut row = CpuBusy { window: last - first, ..CpuBusy::default() };
        for r in a.runs.iter().filter(|r| r.cpu == cpu) {
            if !a.is_idle(r.task) {
                row.busy = row.busy.saturating_add(r.end - r.start);
            }
            row.switches += r.end_reason.is_some() as usize;
        }
        rows.insert(cpu, row);
    }
    rows
}

fn busy_sections(out: &mut String, a: &Analysis) {
    heading(out, "Busy time per task (from switches)");
    if a.runs.is_empty() {
        let _ = writeln!(out, "(no switch records)");
    } else {
        let servers = a.server_tasks();
        let span = a.end_ns - a.start_ns;
        let mut cells = Vec::new();
        for (&task, row) in &task_busy(a) {
            let role = if servers.contains(&task) {
                "server"
            } else if a.syscalls.iter().any(|s| s.task == task) {
                "user"
            } else {
                ""
            };
            cells.push(vec![
                a.task_label(task),
                role.to_string(),
                fmt_ns(row.busy),
                fmt_pct(row.busy, span),
                row.runs.to_string(),
                row.served.to_string(),
                if row.served > 0 { fmt_ns(row.service) } else { "-".into() },
            ]);
        }
        table(out, &["task", "role", "busy", "of span", "runs", "served", "service time"], "llrrrrr", &cells);
        let _ = writeln!(out, "(service time: receive -> reply or death of the requests the task received)");
    }
    heading(out, "Busy time per CPU");
    if a.runs.is_empty() {
        let _ = writeln!(out, "(no switch records)");
        return;
    }
    let mut cells = Vec::new();
    for (cpu, row) in &cpu_busy(a) {
        cells.push(vec![
            cpu.to_string(),
            fmt_ns(row.window),
            fmt_ns(row.busy),
            fmt_ns(row.window.saturating_sub(row.busy)),
            fmt_pct(row.busy, row.window),
            row.switches.to_string(),
        ]);
    }
    table(out, &["cpu", "window", "busy", "idle", "utilization", "switches"], "rrrrrr", &cells);
}

fn events_section(out: &mut String, a: &Analysis) {
    heading(out, "Server starts, deaths, restarts, task exits and injected faults");
    let mut events: Vec<(u64, usize, String)> = Vec::new();
    for (i, f) in a.faults.iter().enumerate() {
        events.push((
            f.ns,
            i,
            format!("FAULT    kind {} injected into {} (cpu {})", f.kind, a.task_label(f.task), f.cpu),
        ));
    }
    for (i, d) in a.deaths.iter().enumerate() {
        if d.is_exit() {
            events.push((d.ns, i, format!("EXIT     {}", a.task_label(d.task))));
            continue;
        }
        let ep = d.endpoint.map_or("no endpoint".to_string(), |e| a.names.endpoint_label(e));
        let server = d.server.map_or("no server index".to_string(), |s| format!("server {s}"));
        let mut line = format!(
            "DEATH    {} ({server}, {ep}): failed {} outstanding request(s), the nucleus says {}",
            a.task_label(d.task),
            d.failed.len(),
            d.reported_failed
        );
        match d.restart {
            Some(r) => {
                let _ = write!(line, "; restarted after {}", fmt_ns(a.restarts[r].ns - d.ns));
            }
            None => line.push_str("; NOT restarted"),
        }
        events.push((d.ns, i, line));
    }
    for (i, r) in a.restarts.iter().enumerate() {
        events.push((
            r.ns,
            i,
            format!(
                "{}  {} serves {} (server {}, instance {})",
                if r.after_death.is_some() { "RESTART" } else { "START  " },
                a.task_label(r.task),
                a.names.endpoint_label(r.endpoint),
                r.server,
                r.instance
            ),
        ));
    }
    if events.is_empty() {
        let _ = writeln!(out, "(none)");
        return;
    }
    events.sort_by_key(|e| (e.0, e.1));
    for (ns, _, line) in events {
        let _ = writeln!(out, "{}  {line}", fmt_at(ns));
    }
}

/// One line describing request `i` out of context (for the problem lists).
fn request_line(a: &Analysis, i: usize) -> String {
    let r = &a.requests[i];
    let mut line =
        format!("{} tag {:#x}, sent by {} at {}", a.request_label(r), r.tag, a.task_label(r.sender), fmt_at(r.send_ns));
    match r.receive {
        Some((ns, task)) => {
            let _ = write!(line, ", received by {} at {}", a.task_label(task), fmt_at(ns));
        }
        None => line.push_str(", never received"),
    }
    match a.root_syscall(i) {
        Some(s) => {
            let s = &a.syscalls[s];
            let _ = write!(line, "; in {} of {}", a.syscall_label(s), a.task_label(s.task));
        }
        None => {
            if let Parent::Lost(tag) = r.parent {
                let _ = write!(line, "; parent tag {tag:#x} not in the trace");
            }
        }
    }
    line
}

/// Section 6: requests never answered, messages to dead servers, syscalls never returned.
pub fn problems(a: &Analysis) -> String {
    let mut out = String::new();
    heading(&mut out, "Requests never answered");
    let unanswered = |i: &usize| a.requests[*i].outcome == Outcome::Unanswered && a.requests[*i].to_dead.is_none();
    let (abandoned, never): (Vec<usize>, Vec<usize>) =
        (0..a.requests.len()).filter(unanswered).partition(|&i| a.requests[i].caller_died.is_some());
    if never.is_empty() {
        let _ = writeln!(out, "(none)");
    }
    for &i in &never {
        let r = &a.requests[i];
        let _ = writeln!(
            out,
            "- {}; outstanding for {} at the end of the trace",
            request_line(a, i),
            fmt_ns(a.end_ns - r.send_ns)
        );
    }
    if !abandoned.is_empty() {
        let _ = writeln!(
            out,
            "({} unanswered request(s) whose sender died while waiting, e.g. in exit_group, are not listed)",
            abandoned.len()
        );
    }

    heading(&mut out, "Messages to dead servers");
    let mut any = false;
    for (i, r) in a.requests.iter().enumerate() {
        let mut line = String::new();
        if let Some(d) = r.to_dead {
            let d = &a.deaths[d];
            let _ = write!(
                line,
                "- SENT AFTER THE DEATH of {} at {} (no restart yet): {}",
                a.task_label(d.task),
                fmt_at(d.ns),
                request_line(a, i)
            );
            match r.outcome {
                Outcome::Replied { ns, result, .. } => {
                    let _ = write!(line, "; answered at {} with {}", fmt_at(ns), describe_result(result));
                }
                Outcome::Died { ns, .. } => {
                    let _ = write!(line, "; failed by a death at {}", fmt_at(ns));
                }
                Outcome::Unanswered => line.push_str("; never answered"),
            }
        } else if let Outcome::Died { death, .. } = r.outcome {
            let d = &a.deaths[death];
            let _ = write!(
                line,
                "- IN FLIGHT AT THE DEATH of {} at {}: {}; failed with ServerDied",
                a.task_label(d.task),
                fmt_at(d.ns),
                request_line(a, i)
            );
        } else {
            continue;
        }
        if let Some(j) = a.requests.iter().position(|q| q.retry_of == Some(i)) {
            let _ = write!(line, "; retried as tag {:#x} at {}", a.requests[j].tag, fmt_at(a.requests[j].send_ns));
        }
        any = true;
        let _ = writeln!(out, "{line}");
    }
    if !any {
        let _ = writeln!(out, "(none)");
    }

    heading(&mut out, "Syscalls that never returned");
    let mut any = false;
    for s in &a.syscalls {
        if s.exit.is_some() || (s.died_ns.is_some() && ends_task(&s.name())) {
            continue;
        }
        any = true;
        let fate = match s.died_ns {
            Some(ns) => format!("its task died at {}", fmt_at(ns)),
            None => format!("outstanding for {} at the end of the trace", fmt_ns(a.end_ns - s.enter_ns)),
        };
        let _ = writeln!(
            out,
            "- {} by {} tag {:#x}, entered at {}; {fate}",
            a.syscall_label(s),
            a.task_label(s.task),
            s.tag,
            fmt_at(s.enter_ns)
        );
    }
    if !any {
        let _ = writeln!(out, "(none)");
    }
    out
}

/// Syscalls that end their task instead of returning.
fn ends_task(name: &str) -> bool {
    matches!(name, "exit" | "exit_group")
}

fn retry_number(a: &Analysis, mut i: usize) -> usize {
    let mut n = 0;
    while let Some(prev) = a.requests[i].retry_of {
        n += 1;
        i = prev;
    }
    n
}

/// The line of one hop of a chain (without indentation).
pub fn hop_line(a: &Analysis, i: usize) -> String {
    let r = &a.requests[i];
    let mut line = a.request_label(r);
    if r.to_dead.is_some() {
        line.push_str(" SENT TO DEAD SERVER");
    }
    match r.outcome {
        Outcome::Replied { ns, result, .. } => {
            let _ = write!(line, " {} -> {}", fmt_ns(ns - r.send_ns), describe_result(result));
        }
        Outcome::Died { ns, .. } => {
            let _ = write!(line, " DIED after {}", fmt_ns(ns - r.send_ns));
        }
        Outcome::Unanswered => match r.caller_died {
            Some(d) => {
                let d = &a.deaths[d];
                let _ = write!(line, " CALLER DIED after {} ({} died)", fmt_ns(d.ns - r.send_ns), a.task_label(d.task));
            }
            None => {
                let _ = write!(line, " NEVER ANSWERED (outstanding {} at trace end)", fmt_ns(a.end_ns - r.send_ns));
            }
        },
    }
    if let Some(q) = r.queued() {
        let _ = write!(line, " (queued {})", fmt_ns(q));
    }
    if r.retry_of.is_some() {
        let _ = write!(line, " RETRY #{}", retry_number(a, i));
    }
    match r.receive {
        Some((_, task)) => {
            let _ = write!(line, "  [{}, tag {:#x}]", a.task_label(task), r.tag);
        }
        None => {
            let _ = write!(line, "  [not received, tag {:#x}]", r.tag);
        }
    }
    let death = match r.outcome {
        Outcome::Died { death, .. } => Some(death),
        _ => r.to_dead,
    };
    if let Some(d) = death {
        let d = &a.deaths[d];
        let _ = write!(line, "; {} died at {}", a.task_label(d.task), fmt_at(d.ns));
        match d.restart {
            Some(rs) => {
                let rs = &a.restarts[rs];
                let _ = write!(line, ", restarted as {} at {}", a.task_label(rs.task), fmt_at(rs.ns));
            }
            None => line.push_str(", not restarted"),
        }
    }
    line
}

fn write_tree(out: &mut String, a: &Analysis, i: usize, depth: usize) {
    let _ = writeln!(out, "{:indent$}{}", "", hop_line(a, i), indent = depth * 2);
    for &c in &a.requests[i].children {
        write_tree(out, a, c, depth + 1);
    }
}

/// Section 7: the causal chains `filter` selects.
pub fn chains(a: &Analysis, filter: &ChainFilter) -> String {
    let mut out = String::new();
    heading(&mut out, "Causal chains");
    let mut shown = 0usize;
    let mut skipped = 0usize;
    for root in &a.roots {
        let selected = match *root {
            Root::Syscall(s) => {
                let s = &a.syscalls[s];
                filter.syscall.as_ref().is_none_or(|f| f.matches(s.arch, s.nr))
                    && filter.task.is_none_or(|t| t == s.task)
            }
            Root::Request(r) => filter.syscall.is_none() && filter.task.is_none_or(|t| t == a.requests[r].sender),
        };
        if !selected {
            continue;
        }
        if filter.max.is_some_and(|m| shown >= m) {
            skipped += 1;
            continue;
        }
        shown += 1;
        match *root {
            Root::Syscall(si) => {
                let s = &a.syscalls[si];
                let mut line = a.syscall_label(s);
                match (s.exit, s.died_ns) {
                    (Some((ns, result)), _) => {
                        let _ = write!(line, " {} -> {}", fmt_ns(ns - s.enter_ns), describe_result(result));
                    }
                    (None, Some(ns)) if ends_task(&s.name()) => {
                        let _ = write!(line, " ended its task after {}", fmt_ns(ns - s.enter_ns));
                    }
                    (None, Some(ns)) => {
                        let _ = write!(line, " TASK DIED after {}", fmt_ns(ns - s.enter_ns));
                    }
                    (None, None) => {
                        let _ = write!(
                            line,
                            " NEVER RETURNED (outstanding {} at trace end)",
                            fmt_ns(a.end_ns - s.enter_ns)
                        );
                    }
                }
                let _ = writeln!(
                    out,
                    "{line}  [{}, cpu {}, at {}, tag {:#x}, {}]",
                    a.task_label(s.task),
                    s.cpu,
                    fmt_at(s.enter_ns),
                    s.tag,
                    syscalls::arch_name(s.arch)
                );
                for &r in &s.requests {
                    write_tree(&mut out, a, r, 1);
                }
            }
            Root::Request(ri) => {
                let r = &a.requests[ri];
                let origin = match r.parent {
                    Parent::Lost(tag) => format!("(parent tag {tag:#x} not in the trace)"),
                    _ => "(outside any syscall)".to_string(),
                };
                let _ = writeln!(out, "{origin} from {} at {}", a.task_label(r.sender), fmt_at(r.send_ns));
                write_tree(&mut out, a, ri, 1);
            }
        }
    }
    if shown == 0 {
        let _ = writeln!(out, "(no chains selected)");
    }
    if skipped > 0 {
        let _ = writeln!(out, "... {skipped} more chains not shown (--max-chains)");
    }
    out
}
