//! The analysis on hand-made traces: causal chains (two CPUs interleaved, a server dying
//! mid-request and the retry, the server of the syscall itself dying), the reports of
//! unanswered requests and messages to dead servers, latency percentiles, busy times,
//! filters, both architectures, and robustness against garbage.
//!
//! Each test states what the record contract (crate docs) promises for its scenario and
//! checks the model first (numbers and links), then the text a person reads.

mod common;

use common::{analyze_bytes, death_and_retry, two_cpus, unanswered};
use ipc::trace::{TraceArch, TraceKind, TraceRecord};
use trace_analyzer::model::{Outcome, Parent, Root};
use trace_analyzer::report::{self, ChainFilter};
use trace_analyzer::synth::TraceBuilder;
use trace_analyzer::syscalls::SyscallFilter;
use trace_analyzer::{chrome, html, json, Analysis, Options};

fn request_by_tag(a: &Analysis, tag: u64) -> Vec<usize> {
    (0..a.requests.len()).filter(|&i| a.requests[i].tag == tag).collect()
}

fn one(a: &Analysis, tag: u64) -> usize {
    let found = request_by_tag(a, tag);
    assert_eq!(found.len(), 1, "one request with tag {tag:#x}");
    found[0]
}

/// The indented chain lines, without their bracketed details.
fn chain_skeleton(text: &str) -> Vec<String> {
    let chains = &text[text.find("== Causal chains ==").expect("chains section")..];
    chains.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split("  [").next().unwrap_or("").to_string()).collect()
}

#[test]
fn interleaved_requests_from_two_cpus() {
    let b = two_cpus();
    let a = analyze_bytes(&b.to_per_cpu_bytes(), &Options::default());
    assert_eq!(a.syscalls.len(), 2);
    assert_eq!(a.requests.len(), 5);

    // sh: read → linux(0x100) → vfs(0x101) → ext2(0x102), each hop a child of the one above.
    let sh = &a.syscalls[0];
    assert_eq!((sh.task, sh.name(), sh.duration()), (10, "read".to_string(), Some(550)));
    let (r100, r101, r102) = (one(&a, 0x100), one(&a, 0x101), one(&a, 0x102));
    assert_eq!(sh.requests, [r100]);
    assert_eq!(a.requests[r100].parent, Parent::Syscall(0));
    assert_eq!(a.requests[r100].children, [r101]);
    assert_eq!(a.requests[r101].parent, Parent::Request(r100));
    assert_eq!(a.requests[r101].children, [r102]);
    assert_eq!(a.requests[r102].children, Vec::<usize>::new());
    assert_eq!(a.requests[r101].latency(), Some(350));
    assert_eq!(a.requests[r101].queued(), Some(50));

    // cat, on the other CPU at the same time: read → linux worker 7 (0x200) → vfs (0x201).
    let cat = &a.syscalls[1];
    let (r200, r201) = (one(&a, 0x200), one(&a, 0x201));
    assert_eq!((cat.task, cat.duration(), cat.requests.clone()), (11, Some(600), vec![r200]));
    assert_eq!(a.requests[r201].parent, Parent::Request(r200));
    assert_eq!(a.requests[r201].receive, Some((1_460, 3)), "vfs served it on cpu 1");
    assert_eq!(a.roots, [Root::Syscall(0), Root::Syscall(1)]);

    let text = report::full(&a, &ChainFilter::default());
    assert_eq!(
        chain_skeleton(&text),
        [
            "read (fd 3) 550 ns -> 512",
            "  linux [read] 490 ns -> 512 (queued 40 ns)",
            "    vfs [read] 350 ns -> 512 (queued 50 ns)",
            "      ext2 [lookup] 200 ns -> 0 (queued 50 ns)",
            "read (fd 4) 600 ns -> 100",
            "  linux [read] 530 ns -> 100 (queued 30 ns)",
            "    vfs [read] 400 ns -> 100 (queued 260 ns)",
        ]
    );

    // The same records with CPU 1's buffer dumped first give the same chains.
    let mut swapped = Vec::new();
    for cpu in [1u16, 0] {
        let mut only = TraceBuilder::new(TraceArch::X86_64, 2);
        for r in b.records().iter().filter(|r| r.cpu == cpu) {
            only.push(*r);
        }
        swapped.extend(only.to_bytes());
    }
    let b2 = analyze_bytes(&swapped, &Options::default());
    assert_eq!(chain_skeleton(&report::chains(&b2, &ChainFilter::default())), chain_skeleton(&text));
}

#[test]
fn a_syscall_the_nucleus_answered_is_a_call_without_requests() {
    let mut b = TraceBuilder::new(TraceArch::Aarch64, 1);
    b.at(100, 0).syscall_answered(10, 172, 42); // getpid on AArch64
    b.at(200, 0).syscall_enter(10, 172, 0x77, 0).syscall_exit(10, 172, 0x77, 42);
    let a = analyze_bytes(&b.to_bytes(), &Options::default());
    assert_eq!(a.syscalls.len(), 2);
    let s = &a.syscalls[0];
    assert_eq!((s.task, s.nr, s.enter_ns, s.exit), (10, 172, 100, Some((100, 42))));
    assert!(s.requests.is_empty());
    assert_eq!(a.anomalies.exit_without_enter, 0, "the answered call leaves nothing open");
    assert_eq!(a.syscalls[1].exit, Some((200, 42)));
    let text = report::full(&a, &ChainFilter::default());
    assert!(text.contains("getpid"), "named by its number: {text}");
}

#[test]
fn busy_time_per_task_and_cpu() {
    let a = analyze_bytes(&two_cpus().to_bytes(), &Options::default());
    let tasks = report::task_busy(&a);
    assert_eq!(tasks[&10].busy, 10 + 500, "sh ran 1000..1010 and 1500..2000");
    assert_eq!(tasks[&3].busy, 100 + 50 + 140, "vfs on cpu 0 twice and on cpu 1 once");
    assert_eq!((tasks[&3].served, tasks[&3].service), (2, 300 + 140));
    assert!(!tasks.contains_key(&u32::MAX), "idle is not a task");
    let cpus = report::cpu_busy(&a);
    assert_eq!((cpus[&0].window, cpus[&0].busy), (1_000, 1_000));
    assert_eq!((cpus[&1].window, cpus[&1].busy), (900, 640), "idle 1200..1460");
    assert_eq!(a.anomalies.switch_mismatch, 0);
}

#[test]
fn server_dies_mid_request_and_the_retry_succeeds() {
    let a = analyze_bytes(&death_and_retry().to_bytes(), &Options::default());
    let attempts = request_by_tag(&a, 0x302);
    assert_eq!(attempts.len(), 2, "the retry reuses the tag");
    let (failed, retry) = (attempts[0], attempts[1]);
    assert_eq!(a.requests[failed].outcome, Outcome::Died { ns: 10_310, death: 0 });
    assert_eq!(a.requests[failed].receive, Some((10_250, 4)));
    assert!(matches!(a.requests[retry].outcome, Outcome::Replied { task: 8, .. }));
    assert_eq!(a.requests[retry].retry_of, Some(failed));
    assert_eq!(a.requests[retry].to_dead, None, "sent after the restart");
    let vfs = one(&a, 0x301);
    assert_eq!(a.requests[vfs].children, [failed, retry], "both attempts hang under vfs");
    assert_eq!(a.deaths[0].failed, [failed]);
    assert_eq!((a.deaths[0].reported_failed, a.deaths[0].restart), (1, Some(0)));
    assert_eq!(a.task_name(8), Some("ext2#2"));
    assert_eq!(a.syscalls[0].exit, Some((12_550, 512)));

    let text = report::full(&a, &ChainFilter::default());
    let chain = chain_skeleton(&text);
    assert_eq!(chain[3], "      ext2 [lookup] DIED after 110 ns (queued 50 ns)");
    assert_eq!(chain[4], "      ext2 [lookup] 300 ns -> 0 (queued 50 ns) RETRY #1");
    assert!(text.contains("task 4 (ext2) died at 0.010310 ms, restarted as task 8 (ext2#2) at 0.012000 ms"), "{text}");
    assert!(text.contains("- IN FLIGHT AT THE DEATH of task 4 (ext2)"), "{text}");
    assert!(text.contains("retried as tag 0x302 at 0.012100 ms"), "{text}");
    assert!(text.contains("FAULT    kind 1 injected into task 4 (ext2)"), "{text}");
    let never = &text[text.find("== Requests never answered ==").unwrap()..text.find("== Messages to dead").unwrap()];
    assert!(never.contains("(none)"), "a request failed by a death is not unanswered: {never}");
    // The failed attempt is not counted in the latency of ext2 requests.
    let ext2 = &report::message_stats(&a)[&(3, 1)];
    assert_eq!((ext2.sent, ext2.replied, ext2.died, ext2.latencies.clone()), (2, 1, 1, vec![300]));
}

#[test]
fn the_syscall_server_dies_and_the_nucleus_resends() {
    // linux dies while serving read's request T; the nucleus resends T to the new linux.
    let mut b = TraceBuilder::new(TraceArch::X86_64, 1);
    b.at(100, 0).syscall_enter(10, 0, 0x700, 3).send(10, 1, 0, 0x700, 0);
    b.at(150, 0).receive(2, 1, 0, 0x700);
    b.at(200, 0).death(2, Some(1), Some(1), 1);
    b.at(300, 0).restart(12, 1, 1, 2);
    b.at(310, 0).send(10, 1, 0, 0x700, 0);
    b.at(350, 0).receive(12, 1, 0, 0x700);
    b.at(400, 0).reply(12, 1, 0x700, 7);
    b.at(420, 0).syscall_exit(10, 0, 0x700, 7);
    let a = analyze_bytes(&b.to_bytes(), &Options::default());
    assert_eq!(a.syscalls[0].requests, [0, 1]);
    assert!(matches!(a.requests[0].outcome, Outcome::Died { .. }));
    assert_eq!(a.requests[1].retry_of, Some(0));
    assert_eq!(a.syscalls[0].died_ns, None, "the user thread did not die");
    let chain = chain_skeleton(&report::chains(&a, &ChainFilter::default()));
    assert_eq!(
        chain,
        [
            "read (fd 3) 320 ns -> 7",
            "  linux [read] DIED after 100 ns (queued 50 ns)",
            "  linux [read] 90 ns -> 7 (queued 40 ns) RETRY #1",
        ]
    );
}

#[test]
fn unanswered_and_dead_server_reports() {
    let a = analyze_bytes(&unanswered().to_bytes(), &Options::default());
    let (r400, r401, r402, r500) = (one(&a, 0x400), one(&a, 0x401), one(&a, 0x402), one(&a, 0x500));
    for r in [r400, r401, r402, r500] {
        assert_eq!(a.requests[r].outcome, Outcome::Unanswered);
    }
    assert_eq!(a.requests[r402].to_dead, Some(0), "net was dead when linux sent to it");
    assert_eq!(a.requests[r401].to_dead, None);
    assert_eq!(a.requests[r500].parent, Parent::Top);
    assert_eq!(a.anomalies.reply_without_send, 1);
    assert_eq!(a.task_name(9), Some("net"), "named after the endpoint it died serving");

    let text = report::problems(&a);
    let never = &text[..text.find("== Messages to dead servers ==").unwrap()];
    let dead =
        &text[text.find("== Messages to dead servers ==").unwrap()..text.find("== Syscalls that never").unwrap()];
    let lines: Vec<&str> = never.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(lines.len(), 3, "{never}");
    assert!(lines[0].starts_with("- linux [write] tag 0x400, sent by task 10 (sh)"), "{}", lines[0]);
    assert!(lines[1].contains("dev [opcode 1] tag 0x401") && lines[1].contains("never received"), "{}", lines[1]);
    assert!(lines[1].contains("in write (fd 1) of task 10 (sh)"), "{}", lines[1]);
    assert!(lines[2].contains("blk [opcode 9] tag 0x500") && lines[2].contains("received by task 5 (blk)"));
    assert!(!never.contains("0x402"), "a send to a dead server is listed as such, not as unanswered");
    assert!(dead.contains("- SENT AFTER THE DEATH of task 9 (net)") && dead.contains("tag 0x402"), "{dead}");
    assert!(text.contains("- write (fd 1) by task 10 (sh) tag 0x400"), "{text}");

    let full = report::full(&a, &ChainFilter::default());
    assert!(full.contains("note: 1 replies to no outstanding request"));
    assert!(full.contains("DEATH    task 9 (net) (server 5, net): failed 0 outstanding request(s)"), "{full}");
    assert!(full.contains("NOT restarted"));
    let chain = chain_skeleton(&full);
    assert_eq!(chain[0], "write (fd 1) NEVER RETURNED (outstanding 10.0 us at trace end)");
    assert!(chain[3].starts_with("    net [opcode 3] SENT TO DEAD SERVER NEVER ANSWERED"), "{}", chain[3]);
    assert_eq!(chain[4].split(" at ").next(), Some("(outside any syscall) from task 6 (supervisor)"));
}

#[test]
fn exits_and_first_starts_are_not_failures() {
    let mut b = TraceBuilder::new(TraceArch::X86_64, 1);
    b.at(10, 0).restart(2, 1, 1, 1); // linux's first start
                                     // sh calls exit_group: linux takes the request and the nucleus ends the task, no reply.
    b.at(100, 0).syscall_enter(10, 231, 0x1, 0).send(10, 1, 231, 0x1, 0);
    b.at(150, 0).receive(2, 1, 231, 0x1);
    b.at(200, 0).death(10, None, None, 0);
    // cat is killed in read; linux answers anyway, too late.
    b.at(300, 0).syscall_enter(11, 0, 0x2, 0).send(11, 1, 0, 0x2, 0);
    b.at(350, 0).death(11, None, None, 0);
    b.at(400, 0).receive(2, 1, 0, 0x2).reply(2, 1, 0x2, 0);
    let a = analyze_bytes(&b.to_bytes(), &Options::default());
    assert_eq!(a.restarts[0].after_death, None);
    assert!(a.deaths.iter().all(|d| d.is_exit()));
    let (exit, read) = (one(&a, 0x1), one(&a, 0x2));
    assert_eq!((a.requests[exit].outcome, a.requests[exit].caller_died), (Outcome::Unanswered, Some(0)));
    assert!(matches!(a.requests[read].outcome, Outcome::Replied { ns: 400, .. }), "a late reply still matches");
    assert_eq!(a.requests[read].caller_died, Some(1));
    assert_eq!(a.anomalies.reply_without_send, 0);

    let text = report::full(&a, &ChainFilter::default());
    assert!(text.contains("START    task 2 (linux) serves linux (server 1, instance 1)"), "{text}");
    assert!(text.contains("EXIT     task 10 (sh)"), "{text}");
    assert!(!text.contains("DEATH") && !text.contains("RESTART"), "{text}");
    let never = &text[text.find("== Requests never answered ==").unwrap()..text.find("== Messages to dead").unwrap()];
    assert!(never.contains("(none)") && never.contains("(1 unanswered request(s) whose sender died"), "{never}");
    let returned = &text[text.find("== Syscalls that never returned ==").unwrap()..text.find("== Causal").unwrap()];
    assert!(!returned.contains("exit_group"), "exit_group ends its task: {returned}");
    assert!(returned.contains("- read (fd 0) by task 11 (cat)") && returned.contains("its task died"), "{returned}");
    assert_eq!(
        chain_skeleton(&text),
        [
            "exit_group (0) ended its task after 100 ns",
            "  linux [exit_group] CALLER DIED after 100 ns (task 10 (sh) died) (queued 50 ns)",
            "read (fd 0) TASK DIED after 50 ns",
            "  linux [read] 100 ns -> 0 (queued 100 ns)",
        ]
    );
    // The exports mark the start and the exits as such.
    let events = chrome::export(&a);
    assert!(events.contains("\"cat\":\"start\"") && events.contains("\"cat\":\"exit\""));
    assert!(!events.contains("\"cat\":\"death\""));
}

#[test]
fn latency_percentiles_per_message_type_and_syscall() {
    let mut b = TraceBuilder::new(TraceArch::X86_64, 1);
    // 100 getpid calls (x86_64 39) answered by linux in 1..=100 us; vfs opcode 2 requests take
    // 10 us each.
    for i in 0..100u64 {
        let t0 = 1_000_000 * i;
        let tag = 0x1000 + i;
        b.at(t0, 0).syscall_enter(10, 39, tag, 0).send(10, 1, 0, tag, 0);
        b.at(t0 + 1, 0).receive(2, 1, 0, tag).send(2, 2, 2, tag + 0x10000, tag);
        b.at(t0 + 10_001, 0).reply(3, 2, tag + 0x10000, 0);
        b.at(t0 + 1_000 * (i + 1), 0).reply(2, 1, tag, 10);
        b.at(t0 + 1_000 * (i + 1) + 500, 0).syscall_exit(10, 39, tag, 10);
    }
    let a = analyze_bytes(&b.to_bytes(), &Options::default());
    let stats = report::message_stats(&a);
    let linux = trace_analyzer::stats::summarize(&stats[&(1, 0)].latencies).unwrap();
    assert_eq!((linux.count, linux.p50, linux.p90, linux.p99, linux.max), (100, 50_000, 90_000, 99_000, 100_000));
    let vfs = trace_analyzer::stats::summarize(&stats[&(2, 2)].latencies).unwrap();
    assert_eq!((vfs.p50, vfs.max), (10_000, 10_000));
    let sys = &report::syscall_stats(&a)[&("x86_64", 39)];
    let s = trace_analyzer::stats::summarize(&sys.latencies).unwrap();
    assert_eq!((s.count, s.p50, s.p99), (100, 50_500, 99_500));
    let text = report::summary(&a);
    let row = text.lines().find(|l| l.starts_with("getpid")).expect("a getpid row");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["getpid", "39", "x86_64", "100", "0", "50.5", "us", "90.5", "us", "99.5", "us", "100.5", "us"]
    );
}

#[test]
fn aarch64_traces_use_the_aarch64_table() {
    let mut b = TraceBuilder::new(TraceArch::Aarch64, 1);
    b.at(10, 0).syscall_enter(10, 63, 0x1, 3).syscall_exit(10, 63, 0x1, 5); // read
    b.at(20, 0).syscall_enter(10, 172, 0x2, 0).syscall_exit(10, 172, 0x2, 10); // getpid
    let bytes = b.to_bytes();
    let a = analyze_bytes(&bytes, &Options::default());
    let names: Vec<String> = a.syscalls.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["read", "getpid"]);
    assert_eq!(a.syscall_label(&a.syscalls[0]), "read (fd 3)");
    assert_eq!(a.anomalies.arch_mismatch, 0);
    let only_read = ChainFilter { syscall: Some(SyscallFilter::parse("read").unwrap()), ..ChainFilter::default() };
    assert_eq!(chain_skeleton(&report::chains(&a, &only_read)), ["read (fd 3) 0 ns -> 5"]);
    // Forcing the other table renames the numbers (63 is uname on x86_64).
    let forced = analyze_bytes(&bytes, &Options { arch: Some(abi::syscall::Arch::X86_64) });
    assert_eq!(forced.syscalls[0].name(), "uname");
    // A record whose arch field disagrees with the header is flagged.
    let mut odd = TraceBuilder::new(TraceArch::X86_64, 1);
    odd.at(10, 0).push(TraceRecord { opcode: 63, arg2: 1, ..TraceRecord::new(TraceKind::SyscallEnter, 10, 0, 10) });
    let a = analyze_bytes(&odd.to_bytes(), &Options::default());
    assert_eq!((a.syscalls[0].name(), a.anomalies.arch_mismatch), ("read".to_string(), 1));
}

#[test]
fn filters_select_chains() {
    // Two scenarios in one input: two dumps back to back.
    let mut bytes = two_cpus().to_bytes();
    bytes.extend(unanswered().to_bytes());
    let a = analyze_bytes(&bytes, &Options::default());
    assert_eq!(a.syscalls.len(), 3);
    let heads = |f: &ChainFilter| -> Vec<String> {
        chain_skeleton(&report::chains(&a, f)).into_iter().filter(|l| !l.starts_with(' ')).collect()
    };
    let by_name = |n: &str| ChainFilter { syscall: Some(SyscallFilter::parse(n).unwrap()), ..ChainFilter::default() };
    assert_eq!(heads(&by_name("read")).len(), 2);
    assert_eq!(heads(&by_name("1")), ["write (fd 1) NEVER RETURNED (outstanding 10.0 us at trace end)"]);
    let sh = ChainFilter { task: Some(10), ..ChainFilter::default() };
    assert_eq!(heads(&sh).len(), 2, "sh's read and write");
    let supervisor = ChainFilter { task: Some(6), ..ChainFilter::default() };
    assert_eq!(heads(&supervisor).len(), 1, "its top-level ping");
    let capped = ChainFilter { max: Some(1), ..ChainFilter::default() };
    let text = report::chains(&a, &capped);
    assert!(text.contains("... 3 more chains not shown"), "{text}");
    let none = ChainFilter { syscall: Some(SyscallFilter::Number(999)), ..ChainFilter::default() };
    assert!(report::chains(&a, &none).contains("(no chains selected)"));
}

#[test]
fn lost_records_are_reported_not_fatal() {
    let mut b = TraceBuilder::new(TraceArch::X86_64, 1);
    // The trace starts mid-chain: a child whose parent's records were lost, an exit without
    // enter, a receive without send, a switch from a task that was not running.
    b.at(5, 0).dropped(17);
    b.at(10, 0).send(3, 3, 1, 0x2, 0x1).syscall_exit(10, 0, 0x9, 0).receive(4, 4, 0, 0x77);
    b.at(20, 0).switch(1, 2, 0).switch(5, 6, 0);
    b.at(30, 0).push(TraceRecord { kind: 99, ..TraceRecord::default() });
    let a = analyze_bytes(&b.to_bytes(), &Options::default());
    assert_eq!(a.requests[0].parent, Parent::Lost(0x1));
    assert_eq!(a.roots, [Root::Request(0)]);
    let an = &a.anomalies;
    assert_eq!((an.exit_without_enter, an.receive_without_send, an.switch_mismatch, an.unknown_kind), (1, 1, 1, 1));
    let text = report::full(&a, &ChainFilter::default());
    assert!(text.contains("WARNING: 17 records were lost (cpu 0: 17)"), "{text}");
    assert!(text.contains("(parent tag 0x1 not in the trace) from task 3"), "{text}");
    assert!(text.contains("kind#99 1"), "{text}");
}

/// A deterministic pseudo-random generator (no dependency needed for a smoke test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn garbage_never_panics_and_exports_stay_valid() {
    let mut rng = Lcg(42);
    for round in 0..20 {
        let mut b = TraceBuilder::new(TraceArch::from_u32(round % 3), 4);
        let mut t = 0;
        for _ in 0..500 {
            t += rng.next(100);
            let r = TraceRecord {
                timestamp: t,
                cpu: rng.next(4) as u16,
                kind: rng.next(14) as u16,
                task: if rng.next(10) == 0 { u32::MAX } else { rng.next(8) as u32 },
                endpoint: if rng.next(10) == 0 { u32::MAX } else { rng.next(5) as u32 },
                opcode: rng.next(400) as u32,
                tag: rng.next(12),
                arg: if rng.next(2) == 0 { rng.next(10) } else { u64::MAX - rng.next(5000) },
                arg2: rng.next(14),
            };
            b.push(r);
        }
        let a = analyze_bytes(&b.to_bytes(), &Options::default());
        // Every request is reachable exactly once from the roots.
        let mut seen = vec![0usize; a.requests.len()];
        let mut stack: Vec<usize> = Vec::new();
        for root in &a.roots {
            match *root {
                Root::Syscall(s) => stack.extend(&a.syscalls[s].requests),
                Root::Request(r) => stack.push(r),
            }
        }
        while let Some(r) = stack.pop() {
            seen[r] += 1;
            for &c in &a.requests[r].children {
                assert!(c > r, "children come after their parent");
                stack.push(c);
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "round {round}: every request once");
        let text = report::full(&a, &ChainFilter::default());
        json::parse(&chrome::export(&a)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(html::export(&a, &text).ends_with("</html>\n"));
    }
}
