//! A self-contained HTML timeline: one inline SVG, no scripts, no external resources.
//!
//! Drawing: time runs left to right over the whole trace. Each row of each [`Lane`] (task
//! slots, then endpoints with unreceived requests) is a horizontal band labelled on the left;
//! a thin strip at the bottom of a task's first row shows when it was running on some CPU
//! (from `Switch` records). Bars are the spans of [`crate::lanes`]: syscalls blue, answered
//! requests green, requests that hit a dead server red, requests never answered orange (grey if
//! their caller died first); bars
//! that never ended have a dashed outline. Deaths are red crosses on the dead task's lane
//! with a dashed red line across the chart, restarts green triangles (pale for a first
//! start), task exits grey ticks, injected faults orange diamonds. Below the lanes, one band per CPU shows which task ran when. Hovering anything
//! shows its details (SVG `<title>`). The text report follows the picture in a `<pre>`.
//!
//! Invariants: the page references nothing outside itself (it works offline and from a
//! `file://` URL), all text from the trace or the names file is XML-escaped, and the output
//! for a given analysis is byte-for-byte deterministic.

use crate::lanes::{self, Lane, SpanOf};
use crate::model::{Analysis, Outcome};
use crate::stats::{fmt_at, fmt_ns};
use crate::syscalls::describe_result;
use std::collections::BTreeMap;
use std::fmt::Write;

const LABEL_W: f64 = 230.0;
const PLOT_W: f64 = 1400.0;
const ROW_H: f64 = 18.0;
const TOP: f64 = 40.0;

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A colour for task `t`, stable across runs.
fn task_colour(t: u32) -> String {
    let hue = (t.wrapping_mul(2_654_435_761) >> 16) % 360;
    format!("hsl({hue},55%,60%)")
}

/// A tick step (1, 2 or 5 × 10^k ns) giving about ten ticks over `span`.
fn tick_step(span: u64) -> u64 {
    let target = (span / 10).max(1);
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step * m >= target {
                return step * m;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// The HTML page for `a`, with `report` (the text report) below the timeline.
pub fn export(a: &Analysis, report: &str) -> String {
    let start = a.start_ns;
    let span = (a.end_ns - a.start_ns).max(1);
    let x = |ns: u64| LABEL_W + (ns.saturating_sub(start)) as f64 * PLOT_W / span as f64;

    let mut spans = lanes::spans(a);
    let mut rows = lanes::pack(&mut spans);
    let marked = a.deaths.iter().map(|d| d.task).chain(a.restarts.iter().map(|r| r.task));
    for t in marked.chain(a.faults.iter().map(|f| f.task)).chain(a.runs.iter().map(|r| r.task)) {
        if !a.is_idle(t) {
            rows.entry(Lane::Task(t)).or_insert(1);
        }
    }
    let mut row_y: BTreeMap<(Lane, usize), f64> = BTreeMap::new();
    let mut y = TOP;
    for (&lane, &n) in &rows {
        for row in 0..n.max(1) {
            row_y.insert((lane, row), y);
            y += ROW_H;
        }
    }
    let cpus: Vec<u16> = a.cpu_window.keys().copied().collect();
    let cpu_top = y + ROW_H;
    let height = cpu_top + cpus.len() as f64 * ROW_H + 20.0;
    let width = LABEL_W + PLOT_W + 20.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height:.0}\" viewBox=\"0 0 {width} {height:.0}\" font-family=\"monospace\" font-size=\"11\">"
    );
    // Lane backgrounds and labels.
    for (i, (&(lane, row), &ly)) in row_y.iter().enumerate() {
        let fill = if i % 2 == 0 { "#f7f7f7" } else { "#ffffff" };
        let _ = writeln!(svg, "<rect x=\"0\" y=\"{ly}\" width=\"{width}\" height=\"{ROW_H}\" fill=\"{fill}\"/>");
        let label = match (lane, row) {
            (Lane::Task(t), 0) => a.task_label(t),
            (Lane::Endpoint(e), 0) => format!("{} (not received)", a.names.endpoint_label(e)),
            _ => "  (overlapping)".to_string(),
        };
        let _ = writeln!(svg, "<text x=\"4\" y=\"{:.1}\">{}</text>", ly + 13.0, escape(&label));
    }
    // Time axis.
    let step = tick_step(span);
    let mut t = 0u64;
    while t <= span {
        let tx = x(start + t);
        let _ = writeln!(
            svg,
            "<line x1=\"{tx:.2}\" y1=\"{:.0}\" x2=\"{tx:.2}\" y2=\"{:.0}\" stroke=\"#ddd\"/><text x=\"{tx:.2}\" y=\"{:.0}\" text-anchor=\"middle\">+{}</text>",
            TOP - 8.0,
            height - 20.0,
            TOP - 12.0,
            fmt_ns(t)
        );
        t = match t.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    let _ = writeln!(svg, "<text x=\"4\" y=\"14\">start {}</text>", fmt_at(start));
    // Running strips.
    for run in a.runs.iter().filter(|r| !a.is_idle(r.task)) {
        if let Some(&ly) = row_y.get(&(Lane::Task(run.task), 0)) {
            let (x0, x1) = (x(run.start), x(run.end));
            let _ = writeln!(
                svg,
                "<rect x=\"{x0:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"3\" fill=\"#888\"><title>running on cpu {} for {}</title></rect>",
                ly + ROW_H - 3.0,
                (x1 - x0).max(0.5),
                run.cpu,
                fmt_ns(run.end - run.start)
            );
        }
    }
    // Spans.
    for s in &spans {
        let ly = row_y[&(s.lane, s.row)];
        let (x0, x1) = (x(s.start), x(s.end));
        let (colour, title) = match s.of {
            SpanOf::Syscall(i) => {
                let sc = &a.syscalls[i];
                let end = match sc.exit {
                    Some((_, result)) => format!(" -> {}", describe_result(result)),
                    None if sc.died_ns.is_some() => " (task died)".to_string(),
                    None => " (never returned)".to_string(),
                };
                ("#4e79a7", format!("{}{end}\n{} tag {:#x}", a.syscall_label(sc), a.task_label(sc.task), sc.tag))
            }
            SpanOf::Request(i) => {
                let r = &a.requests[i];
                let (colour, what) = match r.outcome {
                    _ if r.hit_dead_server() => ("#e15759", "dead server".to_string()),
                    Outcome::Replied { result, .. } => ("#59a14f", format!("-> {}", describe_result(result))),
                    Outcome::Unanswered if r.caller_died.is_some() => {
                        ("#bab0ac", "abandoned: the caller died".to_string())
                    }
                    Outcome::Unanswered => ("#f28e2b", "never answered".to_string()),
                    Outcome::Died { .. } => ("#e15759", "server died".to_string()),
                };
                let retry = if r.retry_of.is_some() { " (retry)" } else { "" };
                (
                    colour,
                    format!(
                        "{} {what}{retry}\ntag {:#x} from {}, queued {}",
                        a.request_label(r),
                        r.tag,
                        a.task_label(r.sender),
                        r.queued().map_or("-".to_string(), fmt_ns)
                    ),
                )
            }
        };
        let dash = if s.open { " stroke=\"#000\" stroke-dasharray=\"3,2\"" } else { "" };
        let _ = writeln!(
            svg,
            "<rect x=\"{x0:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{colour}\"{dash}><title>{} ({}, {} .. {})</title></rect>",
            ly + 2.0,
            (x1 - x0).max(0.5),
            ROW_H - 6.0,
            escape(&title),
            fmt_ns(s.end - s.start),
            fmt_at(s.start),
            fmt_at(s.end)
        );
    }
    // Markers.
    for d in &a.deaths {
        let dx = x(d.ns);
        if d.is_exit() {
            if let Some(&ly) = row_y.get(&(Lane::Task(d.task), 0)) {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{:.2}\" y=\"{:.1}\" width=\"3\" height=\"{:.1}\" fill=\"#555\"><title>EXIT of {} at {}</title></rect>",
                    dx - 1.5,
                    ly + 1.0,
                    ROW_H - 2.0,
                    escape(&a.task_label(d.task)),
                    fmt_at(d.ns)
                );
            }
            continue;
        }
        let _ = writeln!(
            svg,
            "<line x1=\"{dx:.2}\" y1=\"{TOP}\" x2=\"{dx:.2}\" y2=\"{:.0}\" stroke=\"#e15759\" stroke-dasharray=\"4,3\"/>",
            height - 20.0
        );
        if let Some(&ly) = row_y.get(&(Lane::Task(d.task), 0)) {
            let cy = ly + ROW_H / 2.0;
            let _ = writeln!(
                svg,
                "<path d=\"M{:.2} {:.1} l10 10 m0 -10 l-10 10\" stroke=\"#c00\" stroke-width=\"2.5\"><title>DEATH of {} at {}: failed {} request(s)</title></path>",
                dx - 5.0,
                cy - 5.0,
                escape(&a.task_label(d.task)),
                fmt_at(d.ns),
                d.failed.len()
            );
        }
    }
    for r in &a.restarts {
        if let Some(&ly) = row_y.get(&(Lane::Task(r.task), 0)) {
            let rx = x(r.ns);
            let _ = writeln!(
                svg,
                "<path d=\"M{:.2} {:.1} l6 12 l-12 0 z\" fill=\"{}\"><title>{} {} (instance {}) at {}</title></path>",
                rx,
                ly + 3.0,
                if r.after_death.is_some() { "#2ca02c" } else { "#9ecf9e" },
                if r.after_death.is_some() { "RESTART" } else { "START" },
                escape(&a.task_label(r.task)),
                r.instance,
                fmt_at(r.ns)
            );
        }
    }
    for f in &a.faults {
        if let Some(&ly) = row_y.get(&(Lane::Task(f.task), 0)) {
            let fx = x(f.ns);
            let _ = writeln!(
                svg,
                "<path d=\"M{fx:.2} {:.1} l6 6 l-6 6 l-6 -6 z\" fill=\"#ff7f0e\"><title>FAULT kind {} injected into {} at {}</title></path>",
                ly + 3.0,
                f.kind,
                escape(&a.task_label(f.task)),
                fmt_at(f.ns)
            );
        }
    }
    // CPU bands.
    for (k, &cpu) in cpus.iter().enumerate() {
        let cy = cpu_top + k as f64 * ROW_H;
        let _ = writeln!(svg, "<rect x=\"0\" y=\"{cy}\" width=\"{width}\" height=\"{ROW_H}\" fill=\"#eef\"/>");
        let _ = writeln!(svg, "<text x=\"4\" y=\"{:.1}\">cpu {cpu}</text>", cy + 13.0);
        for run in a.runs.iter().filter(|r| r.cpu == cpu && !a.is_idle(r.task)) {
            let (x0, x1) = (x(run.start), x(run.end));
            let _ = writeln!(
                svg,
                "<rect x=\"{x0:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\" fill=\"{}\"><title>{} on cpu {cpu} for {}</title></rect>",
                cy + 2.0,
                (x1 - x0).max(0.5),
                ROW_H - 4.0,
                task_colour(run.task),
                escape(&a.task_label(run.task)),
                fmt_ns(run.end - run.start)
            );
        }
    }
    svg.push_str("</svg>\n");

    let mut page = String::new();
    page.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Cairn trace</title>\n<style>\n\
         body { font-family: sans-serif; margin: 1em; }\n\
         .chart { overflow-x: auto; border: 1px solid #ccc; }\n\
         .legend span { display: inline-block; margin-right: 1.5em; }\n\
         .legend i { display: inline-block; width: 1em; height: 0.8em; margin-right: 0.3em; vertical-align: middle; }\n\
         pre { background: #f4f4f4; padding: 1em; overflow-x: auto; }\n\
         </style>\n</head>\n<body>\n<h1>Cairn trace</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p>{} records from {} to {} ({}); {} syscalls, {} requests, {} deaths, {} restarts. Hover a bar for details.</p>",
        a.record_count,
        fmt_at(a.start_ns),
        fmt_at(a.end_ns),
        fmt_ns(a.end_ns - a.start_ns),
        a.syscalls.len(),
        a.requests.len(),
        a.deaths.len(),
        a.restarts.len()
    );
    page.push_str(
        "<p class=\"legend\"><span><i style=\"background:#4e79a7\"></i>syscall</span>\
         <span><i style=\"background:#59a14f\"></i>request answered</span>\
         <span><i style=\"background:#e15759\"></i>request hit a dead server</span>\
         <span><i style=\"background:#f28e2b\"></i>never answered</span>\
         <span><i style=\"background:#bab0ac\"></i>caller died first</span>\
         <span><i style=\"background:#888\"></i>running</span>\
         <span style=\"color:#c00\">&#x2715; death</span><span style=\"color:#2ca02c\">&#x25B2; restart</span>\
         <span style=\"color:#9ecf9e\">&#x25B2; start</span><span style=\"color:#555\">| exit</span>\
         <span style=\"color:#ff7f0e\">&#x25C6; fault injected</span></p>\n<div class=\"chart\">\n",
    );
    page.push_str(&svg);
    page.push_str("</div>\n<h2>Report</h2>\n<pre>");
    page.push_str(&escape(report));
    page.push_str("</pre>\n</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_ticks() {
        assert_eq!(escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(95), 10);
        assert_eq!(tick_step(1_500_000), 200_000);
        assert_eq!(tick_step(u64::MAX), 2_000_000_000_000_000_000);
    }
}
