//! `just bench-trace`: what IPC tracing costs, and how many records per second its stream
//! carries, measured in the same QEMU the tests use.
//!
//! usage: bench-trace [--arch x86_64|aarch64|all] [--rounds N] [--machinery]
//!
//! Every boot has the trace port attached (`QemuConfig::attach_trace_stream`: a virtio
//! console on both architectures), so that the machines compared differ only in what is measured.
//!
//! * **Trace points and port** (nucleus self-test `test=trace-bench`): a trace point with
//!   tracing off, on, and on with the ring full; the rate at which the port drains a full ring.
//! * **Overhead**: the `getpid` and `open_read_close` programs of `tests/guest/bench` as pid 1
//!   (`init=/bench/<name>`) on three kernels: the kernel built with `--features nucleus/notrace`
//!   (every trace point compiled out; the justfile builds it into `target/notrace` and, for
//!   AArch64, `build/aarch64/notrace/Image`), the normal kernel with `trace=0`, and with
//!   `trace=1`. Two measures: TCG wall time per operation (the best of `--rounds` boots per
//!   kernel, alternating, default 5: the load of a shared machine only ever adds time), which
//!   that load still disturbs; and guest instructions per operation (`-icount shift=0`, where
//!   one instruction is one nanosecond of guest time), which it does not. Ratios: `trace=0 / notrace` ("off costs nothing") and
//!   `trace=1 / trace=0`. A traced run of these programs makes records far faster than any port
//!   carries them, so most are dropped (counted): the `trace=1` column is the cost of recording
//!   plus streaming as much as the tick budget allows.
//! * **Stream in a run that never idles**: `trace_pace` (getpid, then a user-mode spin of `S`
//!   iterations, for about 1 s) with `trace=1` at several spins; for each, the records made per
//!   second (streamed + dropped over the span of the trace, from the stream file) and the
//!   records dropped. The highest rate with nothing dropped is what the stream sustains when
//!   only timer ticks drain it.
//!
//! * **Supervision machinery** (`--machinery`, also part of the default run): the same two
//!   programs on the normal kernel and on one built with `--features nucleus/nosupervise`
//!   (injection checkpoints, the call start stamp and the hang watch compiled out; in
//!   `target/nosupervise`, `build/aarch64/nosupervise/Image`), both `trace=0`: what being
//!   killable and watched costs a system call when nothing fails.
//!
//! Transcripts and streams go to `build/<arch>/bench-trace/`.

use harness::qemu::{Arch, QemuConfig};
use harness::runner::{Guest, Options};
use qemu_tools::cpio::Tree;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PROGRAMS: [(&str, &str); 2] = [("getpid", "getpid"), ("open_read_close", "open + read + close")];
/// `trace_pace` spins, from a flood to a trickle.
const SPINS: [u64; 7] = [0, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000];
const TIMEOUT: Duration = Duration::from_secs(240);

fn out_dir(arch: Arch) -> PathBuf {
    harness::workspace_root().join("build").join(arch.name()).join("bench-trace")
}

/// The kernel built with nucleus feature `feature` (`notrace`, `nosupervise`) by the justfile.
fn variant_kernel(arch: Arch, feature: &str) -> PathBuf {
    harness::workspace_root().join(match arch {
        Arch::X86_64 => format!("target/{feature}/x86_64-unknown-none/release/kernel"),
        Arch::Aarch64 => format!("build/aarch64/{feature}/Image"),
    })
}

/// The base root file system, the benchmark programs and `/init` = `init`.
fn initramfs(arch: Arch, out: &Path, init: &str) -> Result<(), String> {
    let root = harness::workspace_root();
    let mut tree = Tree::new();
    let add = |tree: &mut Tree| -> std::io::Result<()> {
        tree.add_dir_tree(&root.join(arch.default_rootfs()))?;
        tree.add_dir_tree(&root.join("build").join(arch.name()).join("bench/guest"))?;
        tree.add_file("init", init.as_bytes(), 0o755)?;
        tree.write_file(out)
    };
    add(&mut tree).map_err(|e| format!("initramfs {}: {e}", out.display()))
}

/// One boot: the transcript and the bytes of the trace port.
fn boot(
    arch: Arch,
    kernel: &Path,
    initrd: &Path,
    append: &str,
    icount: bool,
    tag: &str,
) -> Result<(String, Vec<u8>), String> {
    let dir = out_dir(arch);
    let stream = dir.join(format!("{tag}.trace"));
    let _ = std::fs::remove_file(&stream);
    let mut q = QemuConfig::new(arch, kernel);
    q.initrd = Some(initrd.to_path_buf());
    q.append = append.to_string();
    if icount {
        q.extra_args = vec!["-icount".into(), "shift=0".into()];
    }
    q.attach_trace_stream(&stream);
    let mut g = Guest::spawn(q.command(), Options::default()).map_err(|e| format!("QEMU: {e}"))?;
    let out = g.wait(Some(TIMEOUT), Duration::from_secs(10));
    let _ = std::fs::write(dir.join(format!("{tag}.log")), format!("$ {}\n{}", q.display(), out.transcript));
    if out.poweroff.is_none() {
        return Err(format!("no @@POWEROFF ({:?})", out.end));
    }
    Ok((out.transcript, std::fs::read(&stream).unwrap_or_default()))
}

/// The `BENCH <name> <ns per op>` value.
fn bench_value(transcript: &str, program: &str) -> Option<f64> {
    transcript.lines().find_map(|l| {
        let t: Vec<&str> = l.split_whitespace().collect();
        let i = t.iter().position(|w| *w == "BENCH")?;
        (t.get(i + 1) == Some(&program)).then(|| t.get(i + 2)?.parse().ok())?
    })
}

/// (records streamed, records lost) from the power-off line.
fn streamed(transcript: &str) -> Option<(u64, u64)> {
    let line = transcript.lines().find_map(|l| l.split("@@TRACE-STREAMED ").nth(1))?;
    let w: Vec<&str> = line.split_whitespace().collect();
    let d = w.iter().position(|x| x.starts_with("dropped"))?;
    Some((w.first()?.parse().ok()?, w.get(d - 1)?.parse().ok()?))
}

fn best(v: &[f64]) -> Option<f64> {
    v.iter().copied().min_by(f64::total_cmp)
}

fn ns(v: Option<f64>) -> String {
    match v {
        None => "failed".into(),
        Some(v) if v >= 1e6 => format!("{:.2} ms", v / 1e6),
        Some(v) if v >= 1e3 => format!("{:.2} us", v / 1e3),
        Some(v) => format!("{v:.1} ns"),
    }
}

fn count(v: Option<f64>) -> String {
    v.map_or("failed".into(), |v| format!("{v:.0}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:+.1}%", (a / b - 1.0) * 100.0),
        _ => "-".into(),
    }
}

/// The `trace-bench` self-test's lines (wall, then under icount).
fn trace_points(arch: Arch, initrd: &Path) {
    let kernel = harness::workspace_root().join(arch.default_kernel());
    println!("  trace points and port (self-test trace-bench; the second line: -icount, 1 ns = 1 instruction)");
    for (icount, tag) in [(false, "trace-bench"), (true, "trace-bench-icount")] {
        match boot(arch, &kernel, initrd, "test=trace-bench", icount, tag) {
            Ok((t, _)) => {
                for l in t.lines().filter(|l| l.starts_with("trace-bench:")) {
                    println!("    {}{}", if icount { "[icount] " } else { "" }, &l["trace-bench: ".len()..]);
                }
            }
            Err(e) => println!("    failed: {e}"),
        }
    }
}

fn overhead(arch: Arch, rounds: usize) {
    let normal = harness::workspace_root().join(arch.default_kernel());
    let notrace = variant_kernel(arch, "notrace");
    let have_notrace = notrace.is_file();
    let initrd = out_dir(arch).join("bench.cpio");
    if let Err(e) = initramfs(arch, &initrd, "#!/bin/sh\nexit 0\n") {
        println!("  {e}");
        return;
    }
    trace_points(arch, &initrd);
    let configs: Vec<(&str, &Path, &str)> = [
        ("notrace", notrace.as_path(), "trace=0"),
        ("trace=0", normal.as_path(), "trace=0"),
        ("trace=1", normal.as_path(), "trace=1"),
    ]
    .into_iter()
    .filter(|c| have_notrace || c.0 != "notrace")
    .collect();
    if !have_notrace {
        println!("  (no notrace kernel at {}: `just bench-trace` builds it)", notrace.display());
    }
    println!(
        "\n  {:<36} {:>11} {:>11} {:>11} {:>16} {:>16}",
        "overhead, pid 1", "notrace", "trace=0", "trace=1", "trace=0/notrace", "trace=1/trace=0"
    );
    let mut notes = Vec::new();
    for (program, label) in PROGRAMS {
        let append = |c: &str| format!("{c} init=/bench/{program}");
        let mut wall: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
        let mut lost = Vec::new();
        for round in 0..rounds {
            for (i, (name, kernel, c)) in configs.iter().enumerate() {
                let tag = format!("{program}-{name}-{round}");
                match boot(arch, kernel, &initrd, &append(c), false, &tag) {
                    Ok((t, _)) => {
                        if let Some(v) = bench_value(&t, program) {
                            wall[i].push(v);
                        }
                        if *name == "trace=1" {
                            lost.extend(streamed(&t));
                        }
                    }
                    Err(e) => notes.push(format!("{label}, {name}, round {round}: {e}")),
                }
            }
        }
        let icount: Vec<Option<f64>> = configs
            .iter()
            .map(|(name, kernel, c)| {
                let tag = format!("{program}-{name}-icount");
                boot(arch, kernel, &initrd, &append(c), true, &tag).ok().and_then(|(t, _)| bench_value(&t, program))
            })
            .collect();
        let wall: Vec<Option<f64>> = wall.iter().map(|v| best(v)).collect();
        let get = |v: &[Option<f64>], name: &str| configs.iter().position(|c| c.0 == name).and_then(|i| v[i]);
        for (what, v, fmt) in [("wall, best", &wall, ns as fn(Option<f64>) -> String), ("instructions", &icount, count)]
        {
            println!(
                "  {:<36} {:>11} {:>11} {:>11} {:>16} {:>16}",
                format!("{label} ({what})"),
                if have_notrace { fmt(get(v, "notrace")) } else { "-".into() },
                fmt(get(v, "trace=0")),
                fmt(get(v, "trace=1")),
                ratio(get(v, "trace=0"), get(v, "notrace")),
                ratio(get(v, "trace=1"), get(v, "trace=0")),
            );
        }
        if let Some(&(s, d)) = lost.first() {
            notes.push(format!("{label} with trace=1: {s} records streamed, {d} dropped (first round)"));
        }
    }
    for n in notes {
        println!("  {n}");
    }
}

/// The supervision machinery's cost: normal kernel against `nosupervise`, wall (best of
/// `rounds`, alternating) and guest instructions per operation.
fn machinery(arch: Arch, rounds: usize) {
    let normal = harness::workspace_root().join(arch.default_kernel());
    let bare = variant_kernel(arch, "nosupervise");
    if !bare.is_file() {
        println!("\n  (no nosupervise kernel at {}: `just bench-trace` builds it)", bare.display());
        return;
    }
    let initrd = out_dir(arch).join("bench.cpio");
    if let Err(e) = initramfs(arch, &initrd, "#!/bin/sh\nexit 0\n") {
        println!("  {e}");
        return;
    }
    println!(
        "\n  {:<36} {:>13} {:>11} {:>18}",
        "supervision machinery, pid 1", "nosupervise", "normal", "normal/nosupervise"
    );
    for (program, label) in PROGRAMS {
        let append = format!("trace=0 init=/bench/{program}");
        let kernels = [("nosupervise", bare.as_path()), ("normal", normal.as_path())];
        let mut wall = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            for (i, (name, kernel)) in kernels.iter().enumerate() {
                let tag = format!("{program}-{name}-m{round}");
                if let Some(v) =
                    boot(arch, kernel, &initrd, &append, false, &tag).ok().and_then(|(t, _)| bench_value(&t, program))
                {
                    wall[i].push(v);
                }
            }
        }
        let icount: Vec<Option<f64>> = kernels
            .iter()
            .map(|(name, kernel)| {
                let tag = format!("{program}-{name}-m-icount");
                boot(arch, kernel, &initrd, &append, true, &tag).ok().and_then(|(t, _)| bench_value(&t, program))
            })
            .collect();
        let wall: Vec<Option<f64>> = wall.iter().map(|v| best(v)).collect();
        println!(
            "  {:<36} {:>13} {:>11} {:>18}",
            format!("{label} (wall, best)"),
            ns(wall[0]),
            ns(wall[1]),
            ratio(wall[1], wall[0])
        );
        println!(
            "  {:<36} {:>13} {:>11} {:>18}",
            format!("{label} (instructions)"),
            count(icount[0]),
            count(icount[1]),
            ratio(icount[1], icount[0])
        );
    }
}

/// Records in a stream file and the span of their timestamps in ns.
fn stream_span(bytes: &[u8]) -> Option<(usize, u64)> {
    let trace = trace_analyzer::load(bytes).ok()?;
    let first = trace.records.first()?.timestamp;
    let last = trace.records.last()?.timestamp;
    Some((trace.records.len(), last.saturating_sub(first)))
}

fn pace(arch: Arch) {
    let kernel = harness::workspace_root().join(arch.default_kernel());
    println!("\n  stream in a run that never idles (trace_pace: getpid + a user-mode spin; trace=1; wall time)");
    println!("  {:>8} {:>12} {:>16} {:>10} {:>10}", "spin", "getpid", "records made/s", "streamed", "dropped");
    let mut best: Option<f64> = None;
    for spin in SPINS {
        let initrd = out_dir(arch).join("pace.cpio");
        let init = format!("#!/bin/sh\n/bench/trace_pace 1000 {spin}\n");
        let r = initramfs(arch, &initrd, &init)
            .and_then(|()| boot(arch, &kernel, &initrd, "trace=1", false, &format!("pace-{spin}")));
        match r {
            Ok((t, bytes)) => {
                let op = bench_value(&t, "trace_pace");
                let (sent, lost) = streamed(&t).unwrap_or((0, 0));
                let rate = stream_span(&bytes).map(|(_, span)| (sent + lost) as f64 * 1e9 / span.max(1) as f64);
                if lost == 0 {
                    if let Some(r) = rate {
                        best = Some(best.map_or(r, |b: f64| b.max(r)));
                    }
                }
                println!("  {spin:>8} {:>12} {:>16} {sent:>10} {lost:>10}", ns(op), count(rate));
            }
            Err(e) => println!("  {spin:>8} failed: {e}"),
        }
    }
    match best {
        Some(b) => println!("  sustained without drops (ticks only): at least {b:.0} records/s"),
        None => println!("  every run dropped records"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str);
    let usage = || -> ! {
        eprintln!("usage: bench-trace [--arch x86_64|aarch64|all] [--rounds N] [--machinery]");
        std::process::exit(2)
    };
    let arches = match value("--arch") {
        None | Some("all") => vec![Arch::X86_64, Arch::Aarch64],
        Some(a) => vec![Arch::parse(a).unwrap_or_else(|| usage())],
    };
    let rounds = value("--rounds").map_or(5, |r| r.parse().unwrap_or_else(|_| usage()));
    for arch in arches {
        let _ = std::fs::create_dir_all(out_dir(arch));
        println!("{arch}: IPC tracing, TCG; trace port attached to every boot");
        if !args.iter().any(|a| a == "--machinery") {
            overhead(arch, rounds);
            pace(arch);
        }
        machinery(arch, rounds);
        println!();
    }
}
