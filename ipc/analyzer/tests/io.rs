//! The analyzer's inputs and outputs: records survive encoding and decoding (binary stream,
//! per-CPU dumps, console transcript), a transcript gives the same analysis as the binary
//! stream, the Chrome JSON parses back and keeps the format's rules, the HTML is
//! self-contained, and the binary behaves as `--help` promises.
//!
//! Files written here go to a per-process directory under the system temp dir, removed at
//! the end of each test that makes one.

mod common;

use common::{analyze_bytes, death_and_retry, two_cpus, NAMES};
use ipc::trace::{TraceArch, TraceKind, TraceRecord};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use trace_analyzer::json::{self, Value};
use trace_analyzer::report::{self, ChainFilter};
use trace_analyzer::synth::TraceBuilder;
use trace_analyzer::{chrome, html, load, Options};

fn sample_records(n: u64) -> Vec<TraceRecord> {
    (0..n)
        .map(|i| TraceRecord {
            timestamp: 1_000 + i * 7,
            cpu: (i % 3) as u16,
            kind: TraceKind::ALL[(i % 12) as usize] as u16,
            task: i as u32 * 3,
            endpoint: if i % 5 == 0 { u32::MAX } else { i as u32 },
            opcode: 40 + i as u32,
            tag: 0xfeed_0000_0000 + i,
            arg: u64::MAX - i,
            arg2: i * i,
        })
        .collect()
}

#[test]
fn records_round_trip_through_every_encoding() {
    let records = sample_records(200);
    let mut b = TraceBuilder::new(TraceArch::Aarch64, 3);
    for r in &records {
        b.push(*r);
    }
    let binary = load(&b.to_bytes()).unwrap();
    assert_eq!(binary.records, records);
    assert_eq!((binary.arch, binary.cpus, binary.streams), (TraceArch::Aarch64, 3, 1));
    assert!(binary.warnings.is_empty(), "{:?}", binary.warnings);

    let per_cpu = load(&b.to_per_cpu_bytes()).unwrap();
    assert_eq!(per_cpu.records, records, "per-CPU dumps merge back into time order");
    assert_eq!(per_cpu.streams, 3);

    // As the nucleus dumps its ring: 57 bytes (76 base64 characters) per line, records split
    // across lines, names first and an end line last.
    let bytes = b.to_bytes();
    let mut nucleus_style = String::from("@@TRACE-NAME task 0 idle\n");
    for chunk in bytes.chunks(57) {
        nucleus_style.push_str(&format!("@@TRACE {}\n", trace_analyzer::base64::encode(chunk)));
    }
    nucleus_style.push_str("@@TRACE-END 200 records, 0 dropped\n@@POWEROFF 0\n");
    let t = load(nucleus_style.as_bytes()).unwrap();
    assert_eq!(t.records, records);
    assert_eq!(t.names.task(0), Some("idle"));
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);

    for per_line in [1, 3, 64] {
        let transcript = b.to_transcript(&[], per_line);
        let t = load(transcript.as_bytes()).unwrap();
        assert!(t.transcript);
        assert_eq!(t.records, records, "{per_line} records per line");
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }
}

#[test]
fn transcript_gives_the_same_analysis_as_the_binary_stream() {
    let b = death_and_retry();
    let transcript = b.to_transcript(NAMES, 2);
    assert!(transcript.contains("@@TRACE-NAME endpoint 3 ext2\n"));
    // Names come from the transcript alone here.
    let t = load(transcript.as_bytes()).unwrap();
    assert_eq!(t.names.endpoint(3), Some("ext2"));
    assert_eq!(t.names.task(10), Some("sh"));
    let from_transcript = trace_analyzer::analyze(&t, &Options::default());
    let from_binary = analyze_bytes(&b.to_bytes(), &Options::default());
    let filter = ChainFilter::default();
    assert_eq!(report::full(&from_transcript, &filter), report::full(&from_binary, &filter));
    // A damaged line (the second line of records) is skipped with a warning; as every line
    // holds whole records, the others still decode, aligned.
    let mut data_lines = 0;
    let damaged: Vec<String> = transcript
        .lines()
        .map(|l| {
            if l.starts_with("@@TRACE ") {
                data_lines += 1;
                if data_lines == 3 {
                    return l.replace("@@TRACE ", "@@TRACE #");
                }
            }
            l.to_string()
        })
        .collect();
    let t = load(damaged.join("\n").as_bytes()).unwrap();
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(t.warnings[0].starts_with("transcript line"), "{:?}", t.warnings);
    assert_eq!(t.records.len(), b.records().len() - 2);
    assert!(t.records.iter().all(|r| r.kind().is_some()), "still aligned");
    // Without its header line, a transcript holds no trace.
    let headless = transcript.replacen("@@TRACE ", "@@TRACE #", 1);
    assert!(load(headless.as_bytes()).is_err());
}

/// Checks the trace-event rules we promise and returns the events by phase.
fn check_chrome(text: &str) -> BTreeMap<String, Vec<Value>> {
    let doc = json::parse(text).expect("valid JSON");
    let events = doc.get("traceEvents").and_then(Value::as_array).expect("traceEvents array");
    let mut by_phase: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut per_thread: BTreeMap<(u64, u64), Vec<(u64, u64)>> = BTreeMap::new();
    for e in events {
        let ph = e.get("ph").and_then(Value::as_str).expect("ph").to_string();
        assert!(e.get("pid").and_then(Value::as_f64).is_some(), "pid on {e:?}");
        if ph != "M" {
            assert!(e.get("ts").and_then(Value::as_f64).is_some_and(|t| t >= 0.0), "ts on {e:?}");
            assert!(e.get("name").and_then(Value::as_str).is_some(), "name on {e:?}");
        }
        if ph == "X" {
            // Back to integer nanoseconds, so that float rounding cannot fake an overlap.
            let ns = |k: &str| (e.get(k).unwrap().as_f64().unwrap() * 1000.0).round() as u64;
            let (ts, dur) = (ns("ts"), ns("dur"));
            let key = (e.get("pid").unwrap().as_f64().unwrap() as u64, e.get("tid").unwrap().as_f64().unwrap() as u64);
            per_thread.entry(key).or_default().push((ts, ts + dur));
        }
        by_phase.entry(ph).or_default().push(e.clone());
    }
    // Complete events of one thread nest properly.
    for (thread, spans) in &per_thread {
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                let disjoint = a.1 <= b.0 || b.1 <= a.0;
                let nested = (a.0 <= b.0 && b.1 <= a.1) || (b.0 <= a.0 && a.1 <= b.1);
                assert!(disjoint || nested, "thread {thread:?}: {a:?} and {b:?} overlap");
            }
        }
    }
    by_phase
}

#[test]
fn chrome_json_parses_back() {
    let mut b = two_cpus();
    // Append the death scenario, and a server serving two requests at once (overlapping
    // spans on one task must land on different rows).
    for r in death_and_retry().records() {
        b.push(*r);
    }
    b.at(50_000, 0).send(10, 2, 2, 0x900, 0).send(11, 2, 2, 0x901, 0);
    b.at(50_010, 0).receive(3, 2, 2, 0x900);
    b.at(50_040, 0).receive(3, 2, 2, 0x901);
    b.at(50_100, 0).reply(3, 2, 0x900, 0);
    b.at(50_200, 0).reply(3, 2, 0x901, 0);
    b.at(50_050, 0).send(10, 2, 2, 0x902, 0); // nobody receives it
    let a = analyze_bytes(&b.to_bytes(), &Options::default());
    let text = chrome::export(&a);
    let by_phase = check_chrome(&text);

    let complete = &by_phase["X"];
    let cat = |e: &Value| e.get("cat").and_then(Value::as_str).unwrap_or("").to_string();
    let requests: Vec<&Value> = complete.iter().filter(|e| cat(e) == "request").collect();
    assert_eq!(requests.len(), a.requests.len(), "one complete event per request");
    assert_eq!(complete.iter().filter(|e| cat(e) == "syscall").count(), a.syscalls.len());
    assert!(complete.iter().any(|e| cat(e) == "run"), "CPU runs");
    let died = requests.iter().find(|e| e.get("name").unwrap().as_str().unwrap().contains("dead server")).unwrap();
    assert_eq!(died.get("args").unwrap().get("outcome").unwrap().as_str(), Some("server died"));
    assert_eq!(died.get("args").unwrap().get("tag").unwrap().as_str(), Some("0x302"));
    // read (fd 3) of sh: ts 1 us, dur 0.55 us.
    let sh_read = complete
        .iter()
        .find(|e| cat(e) == "syscall" && e.get("args").unwrap().get("tag").unwrap().as_str() == Some("0x100"))
        .unwrap();
    assert_eq!((sh_read.get("ts").unwrap().as_f64(), sh_read.get("dur").unwrap().as_f64()), (Some(1.0), Some(0.55)));

    let instants: Vec<String> =
        by_phase["i"].iter().map(|e| e.get("cat").unwrap().as_str().unwrap().to_string()).collect();
    assert_eq!(instants, ["death", "restart", "fault"]);
    let thread_names: Vec<String> = by_phase["M"]
        .iter()
        .filter(|e| e.get("name").unwrap().as_str() == Some("thread_name"))
        .map(|e| e.get("args").unwrap().get("name").unwrap().as_str().unwrap().to_string())
        .collect();
    assert!(thread_names.contains(&"task 3 (vfs)".to_string()), "{thread_names:?}");
    assert!(thread_names.contains(&"task 3 (vfs) [overlap 1]".to_string()), "{thread_names:?}");
    assert!(thread_names.contains(&"vfs (not received)".to_string()), "{thread_names:?}");
    assert!(thread_names.contains(&"cpu 1".to_string()), "{thread_names:?}");
    // Every flow start has its finish.
    assert_eq!(by_phase["s"].len(), by_phase["f"].len());
    assert!(!by_phase["s"].is_empty());
}

#[test]
fn html_is_self_contained() {
    let mut b = death_and_retry();
    b.at(13_000, 0).send(10, 4, 0, 0xabc, 0);
    let mut trace = load(&b.to_bytes()).unwrap();
    trace.names.merge(common::names());
    trace.names.merge(trace_analyzer::names::Names::parse("endpoint 4 <blk & \"co\">").unwrap());
    let a = trace_analyzer::analyze(&trace, &Options::default());
    let report = report::full(&a, &ChainFilter::default());
    let page = html::export(&a, &report);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg") && page.contains("</svg>"));
    for forbidden in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(forbidden), "the page must load nothing: found {forbidden}");
    }
    assert_eq!(page.matches("http").count(), 1, "only the SVG namespace URI");
    assert!(page.contains("&lt;blk &amp; &quot;co&quot;&gt;"), "names are escaped");
    assert!(!page.contains("<blk"), "no raw name");
    assert!(page.contains("DEATH of task 4 (ext2)"), "a death marker");
    assert!(page.contains("RESTART task 8 (ext2#2)"), "a restart marker");
    assert!(page.contains("IN FLIGHT AT THE DEATH"), "the report is included");
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("trace-analyzer-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn command_line_end_to_end() {
    let exe = env!("CARGO_BIN_EXE_trace-analyzer");
    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for option in ["--names", "--syscall", "--pid", "--chrome", "--html", "--arch", "@@TRACE"] {
        assert!(help.contains(option), "help mentions {option}");
    }
    assert_eq!(Command::new(exe).arg("--bogus").output().unwrap().status.code(), Some(2));

    let dir = TempDir::new("cli");
    let trace = dir.0.join("console.log");
    std::fs::write(&trace, two_cpus().to_transcript(&["endpoint 1 linux", "endpoint 2 vfs"], 4)).unwrap();
    let names = dir.0.join("names.txt");
    std::fs::write(&names, "# side file\ntask 10 sh\ntask 11 cat\nendpoint 3 ext2\n").unwrap();
    let (json_out, html_out) = (dir.0.join("out.json"), dir.0.join("out.html"));
    let run = Command::new(exe)
        .args(["--names", names.to_str().unwrap(), "--syscall", "read", "--pid", "cat", "--chrome"])
        .arg(&json_out)
        .arg(format!("--html={}", html_out.display()))
        .arg(&trace)
        .output()
        .unwrap();
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let chains = &stdout[stdout.find("== Causal chains ==").unwrap()..];
    assert!(chains.contains("read (fd 4) 600 ns -> 100  [task 11 (cat)"), "{chains}");
    assert!(!chains.contains("read (fd 3)"), "--pid cat selects cat's read only: {chains}");
    assert!(chains.contains("    vfs [mknod] 400 ns"), "opcodes named by the protocol: {chains}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("wrote"));
    check_chrome(&std::fs::read_to_string(&json_out).unwrap());
    assert!(std::fs::read_to_string(&html_out).unwrap().contains("<svg"));

    let missing = Command::new(exe).arg(dir.0.join("nope.bin")).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let not_a_trace = dir.0.join("junk.txt");
    std::fs::write(&not_a_trace, "just a console log\n").unwrap();
    let junk = Command::new(exe).arg(&not_a_trace).output().unwrap();
    assert_eq!(junk.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&junk.stderr).contains("not a trace"));
}
