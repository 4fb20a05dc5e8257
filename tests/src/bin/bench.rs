//! `just bench`: the nucleus numbers, and Cairn against a stock Debian Linux, measured in the
//! same QEMU the tests use.
//!
//! usage: bench [--arch x86_64|aarch64|all]
//!
//! Nucleus (Cairn only):
//! * boot: wall time from QEMU start to the kernel banner and to the first output of a user
//!   program (BusyBox `sh` running `/init`), median of 3;
//! * restarts: per server, the time from its death to the first request it serves again, as a
//!   program sees it (`tests/guest/tools/server_restart.c`), median and maximum of 20 kills;
//! * IPC: round-trip time of an empty synchronous call between two servers, with the fast path
//!   and with it disabled (`fastpath=off`), as TCG wall time and as a guest instruction count
//!   (`-icount shift=0`: one instruction = 1 ns of guest time).
//!
//! Cairn against Linux: the stock Debian kernel (`qemu/linux.sh` leaves it in `build/linux/`)
//! booted by the same QEMU command line ([`QemuConfig`]: same machine, CPU, memory, devices)
//! with the same initramfs: the BusyBox root file system, the static benchmark programs of
//! `tests/guest/bench/` (built by the justfile into `build/<arch>/bench/guest/bench/`) and an
//! `/init` script that runs each program in turn and powers off. Each program times its own
//! loop with `clock_gettime(CLOCK_MONOTONIC)` and prints `BENCH <name> <ns per op> <n>`; `/init`
//! brackets it with `BENCH-RUN <name>` / `BENCH-END <name> <exit status>`. A program that
//! fails, crashes or hangs shows as "failed" and the rest still run: a hung or killed guest is
//! booted again with the programs not yet run. Each kernel runs the programs [`ROUNDS`] times
//! (alternating with the other kernel, within [`KERNEL_BUDGET`]); the table shows medians. Boot
//! to shell is the wall time from QEMU start to the first line of a minimal `/init`, median of
//! 3, for both kernels. A last column runs each program once more on Cairn as pid 1
//! (`init=/bench/<name>`): with no shell blocked in `wait4`, it separates the cost of Cairn's
//! system call paths from that of the `linux` server's polling of blocked calls.
//!
//! TCG times mean little on their own (no KVM, ever): only the ratio is of interest. Guest
//! transcripts go to `build/<arch>/bench/<kernel>.log`.

use harness::qemu::{Arch, QemuConfig};
use harness::runner::{Guest, Options, WaitError};
use qemu_tools::cpio::Tree;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The benchmark programs, in the order they run, with the label of their table row.
const PROGRAMS: [(&str, &str); 9] = [
    ("getpid", "getpid"),
    ("clock_gettime", "clock_gettime, libc [1]"),
    ("clock_gettime_sys", "clock_gettime, system call"),
    ("pipe_rtt", "pipe round trip, 2 processes"),
    ("fork_wait", "fork + exit + wait"),
    ("fork_exec", "fork + exec BusyBox true + wait"),
    ("open_read_close", "open + read + close"),
    ("pipe_64m", "64 MiB through a pipe"),
    ("mmap_touch", "mmap 256 KiB + touch 64 pages + munmap"),
];

/// How many times each kernel runs the programs (alternating); the table shows medians.
const ROUNDS: usize = 3;
/// How long one program may take before its guest is killed (and the rest run in a new boot).
/// A program that timed out is not run again on that kernel.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How a timed-out program's outcome begins.
const TIMED_OUT: &str = "timed out";
/// The outcome of a program not run again after it timed out.
const SKIPPED: &str = "not run again (timed out before)";
/// How long all rounds of the programs on one kernel may take: no new boot after it (a first
/// round cut short reports the programs it did not reach as not run).
const KERNEL_BUDGET: Duration = Duration::from_secs(120);
/// How long a kernel may take to reach `/init`.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// A kernel to boot in the standard QEMU.
struct Kernel {
    /// "Cairn" or "Linux".
    name: &'static str,
    path: PathBuf,
    append: String,
    /// A string of the kernel's first console lines (for the "kernel banner" time).
    banner: &'static str,
    /// What it is, for the table heading.
    describe: String,
}

fn cairn(arch: Arch) -> Kernel {
    Kernel {
        name: "Cairn",
        path: harness::workspace_root().join(arch.default_kernel()),
        append: String::new(),
        banner: "Cairn",
        describe: "Cairn".into(),
    }
}

/// The Debian kernel `qemu/linux.sh` unpacked, if it is there.
fn linux(arch: Arch) -> Option<Kernel> {
    let dir = harness::workspace_root().join("build/linux").join(arch.name());
    let (file, append) = match arch {
        Arch::X86_64 => ("vmlinuz", "console=ttyS0 mitigations=off nokaslr"),
        Arch::Aarch64 => ("Image", "console=ttyAMA0 mitigations=off nokaslr kpti=0"),
    };
    let path = dir.join(file);
    if !path.is_file() {
        return None;
    }
    let version = std::fs::read_to_string(dir.join("version")).unwrap_or_default();
    Some(Kernel {
        name: "Linux",
        path,
        append: append.into(),
        banner: "Linux version",
        describe: format!("{} (\"{append}\")", version.trim()),
    })
}

impl Kernel {
    fn qemu(&self, arch: Arch, initrd: &Path) -> QemuConfig {
        let mut q = QemuConfig::new(arch, &self.path);
        q.initrd = Some(initrd.to_path_buf());
        q.append = self.append.clone();
        q
    }
}

fn bench_dir(arch: Arch) -> PathBuf {
    harness::workspace_root().join("build").join(arch.name()).join("bench")
}

/// An initramfs: the base root file system, `layer` (if any) and `/init` = `init`.
fn initramfs(arch: Arch, out: &Path, layer: Option<&Path>, init: &str) -> std::io::Result<()> {
    let mut tree = Tree::new();
    tree.add_dir_tree(&harness::workspace_root().join(arch.default_rootfs()))?;
    if let Some(l) = layer {
        tree.add_dir_tree(l)?;
    }
    tree.add_file("init", init.as_bytes(), 0o755)?;
    tree.write_file(out)
}

fn ipc(arch: Arch, fast: bool, icount: bool) -> Option<u64> {
    let mut q = QemuConfig::new(arch, harness::workspace_root().join(arch.default_kernel()));
    q.append = if fast { "test=ipc-bench".into() } else { "test=ipc-bench fastpath=off".into() };
    if icount {
        q.extra_args = vec!["-icount".into(), "shift=0".into()];
    }
    let mut g = Guest::spawn(q.command(), Options::default()).ok()?;
    let out = g.wait(Some(Duration::from_secs(300)), Duration::from_secs(10));
    out.transcript.lines().find_map(|l| {
        let rest = l.split("round trips, ").nth(1)?;
        rest.split(" ns each").next()?.trim().parse().ok()
    })
}

/// Boot times in seconds: (QEMU start to the kernel's banner, to the first line of `/init`),
/// medians of 3 boots with an `/init` that prints one line and powers off.
fn boot(arch: Arch, k: &Kernel) -> Option<(f64, f64)> {
    let cpio = bench_dir(arch).join("boot.cpio");
    // Linux needs its init to power off (Cairn powers off at the end of pid 1 as well). QEMU
    // is killed as soon as the line is seen anyway.
    initramfs(arch, &cpio, None, "#!/bin/sh\necho init-ran\npoweroff -f 2>/dev/null\nexit 0\n").ok()?;
    let (mut banners, mut users) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let mut g = Guest::spawn(k.qemu(arch, &cpio).command(), Options::default()).ok()?;
        g.wait_for(k.banner, BOOT_TIMEOUT).ok()?;
        banners.push(g.elapsed().as_secs_f64());
        g.wait_for("init-ran", BOOT_TIMEOUT).ok()?;
        users.push(g.elapsed().as_secs_f64());
        drop(g); // kills QEMU
    }
    Some((median(&mut banners), median(&mut users)))
}

/// The servers whose restart time `restarts` measures, and how: every one a program's work
/// passes through (the tool times the first operation needing it after a kill).
const RESTARTED: &str = "vfs ramfs tty";

/// Per server: median and maximum time (ns of guest time) from its death to the first request
/// it serves again, 20 kills each (`tests/guest/tools/server_restart.c`, Cairn only).
fn restarts(arch: Arch) -> Vec<(String, u64, u64)> {
    let cpio = bench_dir(arch).join("restart.cpio");
    let init = format!("#!/bin/sh\n/usr/libexec/cairn/server_restart {RESTARTED}\n");
    if initramfs(arch, &cpio, None, &init).is_err() {
        return Vec::new();
    }
    let Ok(mut g) = Guest::spawn(cairn(arch).qemu(arch, &cpio).command(), Options::default()) else {
        return Vec::new();
    };
    let out = g.wait(Some(Duration::from_secs(300)), Duration::from_secs(10));
    out.transcript
        .lines()
        .filter_map(|l| {
            let mut w = l.trim().strip_prefix("RESTART ")?.split_whitespace();
            let server = w.next()?.to_string();
            let median = w.next()?.parse().ok()?;
            let _min: u64 = w.next()?.parse().ok()?;
            let max = w.next()?.parse().ok()?;
            Some((server, median, max))
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The result of one benchmark program: nanoseconds per operation, or why there is none.
type Outcome = Result<f64, String>;

/// The `/init` that runs `programs` in turn.
fn bench_init(programs: &[&str]) -> String {
    format!(
        "#!/bin/sh\necho BENCH-INIT\n\
         mount -t devtmpfs dev /dev 2>/dev/null\nmount -t proc proc /proc 2>/dev/null\n\
         for b in {}; do\n    echo \"BENCH-RUN $b\"\n    /bench/$b\n    echo \"BENCH-END $b $?\"\ndone\n\
         echo BENCH-DONE\npoweroff -f 2>/dev/null\nexit 0\n",
        programs.join(" ")
    )
}

/// What a transcript says about `program`: `Some` once its `BENCH-END` line is there.
fn parse_result(transcript: &str, program: &str) -> Option<Outcome> {
    let (value, fail, end) = scan(transcript, program);
    let end = end?;
    Some(match (value, fail) {
        (Some(v), _) if end == "0" => Ok(v),
        (_, Some(why)) => Err(why),
        _ => Err(format!("exit status {end}")),
    })
}

/// The `BENCH` value, the `BENCH-FAIL` reason and the `BENCH-END` status of `program`.
fn scan(transcript: &str, program: &str) -> (Option<f64>, Option<String>, Option<String>) {
    let (mut value, mut fail, mut end) = (None, None, None);
    for line in transcript.lines() {
        // Linux may print a kernel message in the middle of a line: look for the tokens.
        let t: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in t.iter().enumerate() {
            if t.get(i + 1) != Some(&program) {
                continue;
            }
            match *w {
                "BENCH" => value = t.get(i + 2).and_then(|v| v.parse::<f64>().ok()).or(value),
                "BENCH-FAIL" => fail = Some(t[i + 2..].join(" ")),
                "BENCH-END" => end = Some(t.get(i + 2).copied().unwrap_or("?").to_string()),
                _ => {}
            }
        }
    }
    (value, fail, end)
}

/// Each program on Cairn as pid 1 (`init=/bench/<name>`, one boot each, one run): then no
/// other process has a system call blocked in the `linux` server.
fn run_pid1(arch: Arch, k: &Kernel, skip: &BTreeSet<&str>, log: &mut String) -> BTreeMap<&'static str, Outcome> {
    let dir = bench_dir(arch);
    let guest_dir = dir.join("guest");
    let cpio = dir.join("pid1.cpio");
    let built = initramfs(arch, &cpio, Some(&guest_dir), &bench_init(&[]));
    let mut results = BTreeMap::new();
    for (p, _) in PROGRAMS {
        let r = match &built {
            _ if !guest_dir.join("bench").join(p).is_file() => Err("not built".to_string()),
            _ if skip.contains(p) => Err(SKIPPED.to_string()),
            Err(e) => Err(format!("initramfs: {e}")),
            Ok(()) => {
                let mut q = k.qemu(arch, &cpio);
                q.append = format!("{} init=/bench/{p}", k.append).trim().to_string();
                log.push_str(&format!("$ {}\n", q.display()));
                match Guest::spawn(q.command(), Options::default()) {
                    Err(e) => Err(format!("QEMU: {e}")),
                    Ok(mut g) => {
                        let out = g.wait(Some(PROGRAM_TIMEOUT), Duration::from_secs(10));
                        log.push_str(&out.transcript);
                        log.push('\n');
                        match scan(&out.transcript, p) {
                            (Some(v), None, _) => Ok(v),
                            (_, Some(why), _) => Err(why),
                            _ => Err(format!("no result ({:?}, power-off code {:?})", out.end, out.poweroff)),
                        }
                    }
                }
            }
        };
        results.insert(p, r);
    }
    results
}

/// Runs every benchmark program on `k`, booting again after a hang or a crash; gives up at
/// `deadline`. Appends the transcripts to `log`.
fn run_programs(
    arch: Arch,
    k: &Kernel,
    deadline: Instant,
    skip: &BTreeSet<&str>,
    log: &mut String,
) -> BTreeMap<&'static str, Outcome> {
    let mut results = BTreeMap::new();
    let dir = bench_dir(arch);
    let guest_dir = dir.join("guest");
    let (built, missing): (Vec<_>, Vec<_>) =
        PROGRAMS.iter().map(|p| p.0).partition(|p| guest_dir.join("bench").join(p).is_file());
    for p in missing {
        results.insert(p, Err("not built".to_string()));
    }
    let (skipped, mut todo): (Vec<&'static str>, Vec<_>) = built.into_iter().partition(|p| skip.contains(p));
    for p in skipped {
        results.insert(p, Err(SKIPPED.to_string()));
    }
    while !todo.is_empty() {
        if Instant::now() >= deadline {
            for p in todo.drain(..) {
                results.insert(p, Err("not run (time budget spent)".into()));
            }
            break;
        }
        let cpio = dir.join(format!("{}.cpio", k.name.to_lowercase()));
        if let Err(e) = initramfs(arch, &cpio, Some(&guest_dir), &bench_init(&todo)) {
            for p in todo.drain(..) {
                results.insert(p, Err(format!("initramfs: {e}")));
            }
            break;
        }
        let q = k.qemu(arch, &cpio);
        log.push_str(&format!("$ {}\n", q.display()));
        let mut g = match Guest::spawn(q.command(), Options::default()) {
            Ok(g) => g,
            Err(e) => {
                for p in todo.drain(..) {
                    results.insert(p, Err(format!("QEMU: {e}")));
                }
                break;
            }
        };
        if let Err(e) = g.wait_for("BENCH-INIT", BOOT_TIMEOUT) {
            log.push_str(&g.transcript());
            for p in todo.drain(..) {
                results.insert(p, Err(format!("no /init output: {e}")));
            }
            break;
        }
        let mut stop: Option<String> = None;
        let mut ran = 0;
        while stop.is_none() && ran < todo.len() {
            match g.wait_for(&format!("BENCH-END {} ", todo[ran]), PROGRAM_TIMEOUT) {
                Ok(_) => ran += 1,
                Err(WaitError::Timeout) => stop = Some(format!("{TIMED_OUT} after {} s", PROGRAM_TIMEOUT.as_secs())),
                Err(WaitError::Ended) => stop = Some("the guest died".into()),
            }
        }
        let transcript = if stop.is_none() {
            g.wait(Some(Duration::from_secs(30)), Duration::from_secs(10)).transcript
        } else {
            g.transcript()
        };
        drop(g);
        log.push_str(&transcript);
        log.push('\n');
        for &p in &todo[..ran] {
            results.insert(p, parse_result(&transcript, p).unwrap_or_else(|| Err("no result".into())));
        }
        match stop {
            // The program that was running when the guest hung or died; the rest go again.
            Some(why) if ran < todo.len() => {
                results.insert(todo[ran], Err(why));
                todo.drain(..=ran);
            }
            Some(why) => {
                for p in todo.drain(..) {
                    results.insert(p, Err(why.clone()));
                }
            }
            None => todo.clear(),
        }
    }
    results
}

/// The rounds of the programs on one kernel, within [`KERNEL_BUDGET`] of its own time.
struct Rounds {
    runs: Vec<BTreeMap<&'static str, Outcome>>,
    /// The programs that timed out: not run again.
    hung: BTreeSet<&'static str>,
    spent: Duration,
    log: String,
}

impl Rounds {
    fn new() -> Rounds {
        Rounds { runs: Vec::new(), hung: BTreeSet::new(), spent: Duration::ZERO, log: String::new() }
    }

    /// One more round, if the budget has time left.
    fn run(&mut self, arch: Arch, k: &Kernel) {
        let Some(left) = KERNEL_BUDGET.checked_sub(self.spent).filter(|l| !l.is_zero()) else { return };
        let start = Instant::now();
        let r = run_programs(arch, k, start + left, &self.hung, &mut self.log);
        self.hung
            .extend(r.iter().filter(|(_, o)| o.as_ref().is_err_and(|e| e.starts_with(TIMED_OUT))).map(|(p, _)| *p));
        self.runs.push(r);
        self.spent += start.elapsed();
    }

    /// Per program: the median of the rounds it succeeded in, else the first failure; and
    /// the failures (with how many rounds failed).
    fn summary(&self) -> (BTreeMap<&'static str, Outcome>, Vec<String>) {
        let (mut out, mut notes) = (BTreeMap::new(), Vec::new());
        for (name, _) in PROGRAMS {
            let mut ok: Vec<f64> = self.runs.iter().filter_map(|r| r.get(name)?.as_ref().ok().copied()).collect();
            let errs: Vec<&String> = self.runs.iter().filter_map(|r| r.get(name)?.as_ref().err()).collect();
            if let Some(e) = errs.first() {
                notes.push(format!("{name} failed in {} of {} runs: {e}", errs.len(), self.runs.len()));
            }
            let r = match errs.first() {
                _ if !ok.is_empty() => Ok(median(&mut ok)),
                Some(e) => Err(e.to_string()),
                None => Err("not run".into()),
            };
            out.insert(name, r);
        }
        (out, notes)
    }
}

/// A duration in nanoseconds with a unit that keeps 3-4 significant digits.
fn human_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn ratio(a: f64, b: f64) -> String {
    let r = a / b;
    if !r.is_finite() {
        "-".into()
    } else if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

fn cell(r: &Outcome) -> String {
    match r {
        Ok(ns) => human_ns(*ns),
        Err(_) => "failed".into(),
    }
}

fn row(label: &str, c: &Outcome, l: &Outcome, c1: Option<&Outcome>) {
    let q = |c: &Outcome| match (c, l) {
        (Ok(c), Ok(l)) => ratio(*c, *l),
        _ => "-".into(),
    };
    let (pid1, pid1_ratio) = c1.map_or(("-".into(), "-".into()), |c1| (cell(c1), q(c1)));
    println!("  {label:<40} {:>11} {:>11} {:>11}   {pid1:>11} {pid1_ratio:>11}", cell(c), cell(l), q(c));
}

/// The Cairn-against-Linux table of one architecture.
fn compare(arch: Arch, cairn_boot: &Option<(f64, f64)>) {
    let c = cairn(arch);
    let Some(l) = linux(arch) else {
        println!("\n{arch}: no Linux kernel in build/linux/{arch} (qemu/linux.sh): no comparison");
        return;
    };
    eprintln!("bench: {arch}: Linux boot time, then the programs on Cairn and on Linux");
    let lb = boot(arch, &l);
    let (mut cr, mut lr) = (Rounds::new(), Rounds::new());
    for _ in 0..ROUNDS {
        cr.run(arch, &c);
        lr.run(arch, &l);
    }
    let mut pid1_log = String::new();
    let c1 = run_pid1(arch, &c, &cr.hung, &mut pid1_log);
    for (k, r) in [(&c, &cr), (&l, &lr)] {
        let _ = std::fs::write(bench_dir(arch).join(format!("{}.log", k.name.to_lowercase())), &r.log);
    }
    let _ = std::fs::write(bench_dir(arch).join("cairn-pid1.log"), pid1_log);
    let rounds = format!("{}/{}", cr.runs.len(), lr.runs.len());
    let ((cr, cnotes), (lr, lnotes)) = (cr.summary(), lr.summary());
    println!("\n{arch}: Cairn against {}", l.describe);
    println!(
        "  same QEMU flags and initramfs; TCG wall time per operation, median of {rounds} runs (boot: of 3); \
         ratio = Cairn / Linux"
    );
    println!(
        "  {:<40} {:>11} {:>11} {:>11}   {:>11} {:>11}",
        "benchmark", "Cairn", "Linux", "Cairn/Linux", "Cairn pid 1", "pid1/Linux"
    );
    let secs = |b: &Option<(f64, f64)>| b.map(|b| b.1 * 1e9).ok_or_else(|| "failed".to_string());
    row("boot to shell (first /init line)", &secs(cairn_boot), &secs(&lb), None);
    let missing = Err("missing".to_string());
    for (name, label) in PROGRAMS {
        let get = |r: &BTreeMap<&str, Outcome>| r.get(name).cloned().unwrap_or_else(|| missing.clone());
        row(label, &get(&cr), &get(&lr), Some(&get(&c1)));
    }
    let c1notes = c1.iter().filter_map(|(n, o)| o.as_ref().err().map(|e| format!("{n} failed: {e}")));
    for (k, notes) in [("Cairn", cnotes), ("Linux", lnotes), ("Cairn as pid 1", c1notes.collect())] {
        for n in notes {
            println!("  {k}: {n}");
        }
    }
    println!("  [1] Both answer from the vDSO, without entering the kernel.");
    println!(
        "  Cairn pid 1: one run of each program as pid 1 (init=/bench/<name>) instead of under the /init shell, \
         which waits in wait4 meanwhile."
    );
}

fn show(v: Option<u64>) -> String {
    v.map_or("failed".into(), |n| n.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arches = match args.iter().position(|a| a == "--arch").and_then(|i| args.get(i + 1)).map(String::as_str) {
        None | Some("all") => vec![Arch::X86_64, Arch::Aarch64],
        Some(a) => match Arch::parse(a) {
            Some(a) => vec![a],
            None => {
                eprintln!("usage: bench [--arch x86_64|aarch64|all]");
                std::process::exit(2);
            }
        },
    };
    println!("{:<8} {:<44} {:>12}", "arch", "measure", "value");
    let mut boots = Vec::new();
    for &arch in &arches {
        let b = boot(arch, &cairn(arch));
        match b {
            Some((b, u)) => {
                println!("{:<8} {:<44} {:>10.3} s", arch.name(), "boot: QEMU start to kernel banner", b);
                println!("{:<8} {:<44} {:>10.3} s", arch.name(), "boot: QEMU start to first BusyBox output", u);
            }
            None => println!("{:<8} {:<44} {:>12}", arch.name(), "boot", "failed"),
        }
        boots.push(b);
        for (server, median, max) in restarts(arch) {
            println!(
                "{:<8} {:<44} {:>9} us (max {} us)",
                arch.name(),
                format!("restart of {server}: death to serving again"),
                median / 1000,
                max / 1000
            );
        }
        for (fast, label) in [(true, "fast path"), (false, "slow path")] {
            println!(
                "{:<8} {:<44} {:>9} ns",
                arch.name(),
                format!("IPC round trip, {label} (TCG wall)"),
                show(ipc(arch, fast, false))
            );
            println!(
                "{:<8} {:<44} {:>9} in",
                arch.name(),
                format!("IPC round trip, {label} (guest instructions)"),
                show(ipc(arch, fast, true))
            );
        }
    }
    for (&arch, b) in arches.iter().zip(&boots) {
        compare(arch, b);
    }
}
