//! `guest-tests`: runs the guest-test table (`harness::guest::TESTS`) under QEMU on one or
//! both architectures, two at a time, one line per test, and ends with the line
//! `N passed, N failed` (always the last line of stdout). Exit status 0 when everything that
//! ran passed (and something ran), 1 otherwise, 2 on a usage error.
//!
//! usage: guest-tests [--arch x86_64|aarch64|all] [--filter SUBSTR] [--jobs N] [--list]
//!                    [--kernel-x86 PATH] [--kernel-arm PATH] [--rootfs-x86 DIR] [--rootfs-arm DIR]
//!                    [--build-dir DIR]
//!
//! Defaults are relative to the workspace root: `target/x86_64-unknown-none/release/kernel`,
//! `build/aarch64/Image`, `build/<arch>/rootfs` (missing = empty). Initramfs images go to
//! `build/<arch>/tests/<name>.cpio`, transcripts to `build/test-logs/<arch>-<name>.log`
//! (`--build-dir` moves both). `--list` prints the selected `ARCH NAME` pairs and runs nothing.
//! `CAIRN_TEST_TIMEOUT` (seconds) overrides every test's timeout (default 120 s).

use harness::guest::{self, GuestTest};
use harness::qemu::Arch;
use harness::suite::{self, Setup, TestResult};
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::exit;
use std::sync::{Arc, Mutex};

const USAGE: &str = "usage: guest-tests [--arch x86_64|aarch64|all] [--filter SUBSTR] [--jobs N] [--list]
                   [--kernel-x86 PATH] [--kernel-arm PATH] [--rootfs-x86 DIR] [--rootfs-arm DIR]
                   [--build-dir DIR]
environment: CAIRN_TEST_TIMEOUT=SECONDS overrides every test's timeout (default 120)";

struct Options {
    arches: Vec<Arch>,
    filter: Option<String>,
    jobs: usize,
    list: bool,
    setup: Setup,
}

fn usage_error(why: &str) -> ! {
    eprintln!("guest-tests: {why}\n{USAGE}");
    exit(2)
}

fn parse_args() -> Options {
    let root = harness::workspace_root();
    let mut o =
        Options { arches: Arch::ALL.to_vec(), filter: None, jobs: 2, list: false, setup: Setup::defaults(&root) };
    o.setup.timeout = suite::timeout_from_env().unwrap_or_else(|e| usage_error(&e));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage_error(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--arch" => {
                let v = value();
                o.arches = match v.as_str() {
                    "all" => Arch::ALL.to_vec(),
                    a => vec![Arch::parse(a).unwrap_or_else(|| usage_error(&format!("unknown architecture {a:?}")))],
                }
            }
            "--filter" => o.filter = Some(value()),
            "--jobs" | "-j" => {
                let v = value();
                o.jobs = v.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| usage_error(&format!("bad --jobs {v:?}")))
            }
            "--list" => o.list = true,
            "--kernel-x86" => o.setup.kernel_x86 = PathBuf::from(value()),
            "--kernel-arm" => o.setup.kernel_arm = PathBuf::from(value()),
            "--rootfs-x86" => o.setup.rootfs_x86 = PathBuf::from(value()),
            "--rootfs-arm" => o.setup.rootfs_arm = PathBuf::from(value()),
            "--build-dir" => o.setup.build_dir = PathBuf::from(value()),
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            other => usage_error(&format!("unknown option {other:?}")),
        }
    }
    o
}

fn main() {
    let o = parse_args();
    let mut queue: VecDeque<(&'static GuestTest, Arch)> = VecDeque::new();
    for &arch in &o.arches {
        for t in guest::select(arch, o.filter.as_deref()) {
            queue.push_back((t, arch));
        }
    }
    if o.list {
        for (t, arch) in &queue {
            println!("{arch} {}", t.name);
        }
        return;
    }
    if queue.is_empty() {
        eprintln!("guest-tests: no test matches");
        println!("0 passed, 0 failed");
        exit(1);
    }
    let jobs = o.jobs.min(queue.len());
    let queue = Arc::new(Mutex::new(queue));
    let setup = Arc::new(o.setup);
    let results: Arc<Mutex<Vec<TestResult>>> = Arc::default();
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (queue, setup, results) = (queue.clone(), setup.clone(), results.clone());
            std::thread::spawn(move || loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some((t, arch)) = next else { return };
                let r = suite::run_test(t, arch, &setup);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", r.report());
                let _ = out.flush();
                drop(out);
                results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
            })
        })
        .collect();
    let mut crashed = 0;
    for w in workers {
        if w.join().is_err() {
            crashed += 1;
        }
    }
    let results = results.lock().unwrap_or_else(|e| e.into_inner());
    let passed = results.iter().filter(|r| r.passed()).count();
    // A worker that panicked lost the result of the test it was running: count it failed.
    let failed = results.len() - passed + crashed;
    if crashed > 0 {
        eprintln!("guest-tests: {crashed} worker thread(s) panicked");
    }
    println!("{passed} passed, {failed} failed");
    exit(if failed == 0 && passed > 0 { 0 } else { 1 });
}
