//! `just bench`: the nucleus numbers, measured in the same QEMU the tests use.
//!
//! usage: bench [--arch x86_64|aarch64|all]
//!
//! * boot: wall time from QEMU start to the kernel banner and to the first output of a user
//!   program (BusyBox `sh` running `/init`), median of 3;
//! * IPC: round-trip time of an empty synchronous call between two servers, with the fast path
//!   and with it disabled (`fastpath=off`), as TCG wall time and as a guest instruction count
//!   (`-icount shift=0`: one instruction = 1 ns of guest time).
//!
//! TCG times mean nothing on their own; the Linux comparisons of the Linux-ABI benchmarks come
//! with the benchmark programs (docs/caveats.md).

use harness::qemu::{Arch, QemuConfig};
use harness::runner::{Guest, Options};
use std::time::Duration;

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

fn boot(arch: Arch) -> Option<(f64, f64)> {
    let dir = harness::workspace_root().join(format!("build/{}/bench", arch.name()));
    let overlay = dir.join("overlay");
    std::fs::create_dir_all(&overlay).ok()?;
    let init = overlay.join("init");
    std::fs::write(&init, "#!/bin/sh\necho init-ran\n").ok()?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).ok()?;
    let rootfs = harness::workspace_root().join(arch.default_rootfs());
    let cpio = dir.join("initramfs.cpio");
    qemu_tools::cpio::build(&cpio, &[rootfs.as_path(), overlay.as_path()]).ok()?;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let mut q = QemuConfig::new(arch, harness::workspace_root().join(arch.default_kernel()));
        q.initrd = Some(cpio.clone());
        let mut g = Guest::spawn(q.command(), Options::default()).ok()?;
        g.wait_for("Cairn", Duration::from_secs(60)).ok()?;
        let banner = g.elapsed().as_secs_f64();
        g.wait_for("init-ran", Duration::from_secs(60)).ok()?;
        let user = g.elapsed().as_secs_f64();
        g.wait(Some(Duration::from_secs(30)), Duration::from_secs(5));
        runs.push((banner, user));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(runs[1])
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
    for arch in arches {
        match boot(arch) {
            Some((b, u)) => {
                println!("{:<8} {:<44} {:>10.3} s", arch.name(), "boot: QEMU start to kernel banner", b);
                println!("{:<8} {:<44} {:>10.3} s", arch.name(), "boot: QEMU start to first BusyBox output", u);
            }
            None => println!("{:<8} {:<44} {:>12}", arch.name(), "boot", "failed"),
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
}
