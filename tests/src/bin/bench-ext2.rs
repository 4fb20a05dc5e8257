//! `just bench-ext2`: Cairn's disk file system (`servers/ext2disk` over `blk`) against Linux's
//! (Debian's kernel, whose ext4 driver serves ext2), on the same image in the same QEMU.
//!
//! usage: bench-ext2 [--arch x86_64|aarch64|all] [--rounds N]
//!
//! Each boot gets a fresh copy of one image (`tests/guest/ext2/mkimage.sh`: 256 MiB, 4 KiB
//! blocks) as its virtio-blk disk and the same initramfs: the BusyBox root file system,
//! `fsbench` (`tests/guest/ext2/fsbench.c`, built by the justfile), the Debian modules Linux
//! needs for the disk (`qemu/linux-modules.sh`; Cairn's init fails to load them, harmlessly)
//! and an `/init` that runs the phases: a 64 MiB sequential write ending in `fsync`; after a
//! remount (Linux's page cache of the file gone), a sequential read of it; creating and
//! deleting 1,000 small files; a tree of 10,000 entries, then after a remount BusyBox `find`
//! over it. The kernels alternate, [`ROUNDS`] boots each by default; the table shows medians
//! and Cairn / Linux ratios. TCG times mean little on their own (no KVM): only the ratios do.
//! Transcripts go to `build/<arch>/bench/ext2-<kernel>-<round>.log`.

use harness::qemu::{Arch, QemuConfig};
use harness::runner::{Guest, Options};
use qemu_tools::cpio::Tree;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ROUNDS: usize = 3;
const BOOT_TIMEOUT: Duration = Duration::from_secs(900);

/// The phases, in the order `/init` runs them: (name, table label, unit).
const PHASES: [(&str, &str, Unit); 4] = [
    ("seq_write", "sequential write 64 MiB + fsync", Unit::MibPerSec),
    ("seq_read", "sequential read 64 MiB (after remount)", Unit::MibPerSec),
    ("create_delete", "create + write 100 B + close, then unlink: 1,000 files", Unit::UsPerOp),
    ("find", "find over 10,000 entries (after remount)", Unit::Ms),
];

#[derive(Clone, Copy)]
enum Unit {
    MibPerSec,
    UsPerOp,
    Ms,
}

const INIT: &str = r#"#!/bin/sh
[ -e /proc/self ] || mount -t proc proc /proc
[ -e /dev/null ] || mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/load-order.txt); do insmod /lib/modules/$m 2>/dev/null; done
i=0; while [ ! -e /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
B=/usr/libexec/cairn/fsbench
mkdir -p /mnt
mount -t ext2 /dev/vda /mnt || echo "BENCH-FAIL mount"
$B write /mnt/big 64
umount /mnt && mount -t ext2 /dev/vda /mnt
$B read /mnt/big
$B create /mnt/small 1000
$B tree /mnt/tree 10000
umount /mnt && mount -t ext2 /dev/vda /mnt
$B find /mnt/tree
umount /mnt
echo BENCH-DONE
poweroff -f 2>/dev/null
"#;

struct Kernel {
    name: &'static str,
    path: PathBuf,
    append: &'static str,
}

fn kernels(arch: Arch) -> Vec<Kernel> {
    let root = harness::workspace_root();
    let linux = root.join("build/linux").join(arch.name());
    let (file, append) = match arch {
        Arch::X86_64 => ("vmlinuz", "console=ttyS0 mitigations=off nokaslr"),
        Arch::Aarch64 => ("Image", "console=ttyAMA0 mitigations=off nokaslr kpti=0"),
    };
    vec![
        Kernel { name: "Cairn", path: root.join(arch.default_kernel()), append: "" },
        Kernel { name: "Linux", path: linux.join(file), append },
    ]
}

fn bench_dir(arch: Arch) -> PathBuf {
    harness::workspace_root().join("build").join(arch.name()).join("bench")
}

/// The initramfs of every boot: root file system, fsbench, modules, `/init`.
fn initramfs(arch: Arch, out: &Path) -> std::io::Result<()> {
    let root = harness::workspace_root();
    let mut tree = Tree::new();
    tree.add_dir_tree(&root.join(arch.default_rootfs()))?;
    let fsbench = std::fs::read(bench_dir(arch).join("ext2/fsbench"))?;
    tree.add_file("usr/libexec/cairn/fsbench", fsbench, 0o755)?;
    let modules = root.join("build/linux").join(arch.name()).join("modules");
    let order = std::fs::read_to_string(modules.join("load-order.txt"))?;
    tree.add_file("lib/modules/load-order.txt", order.as_bytes(), 0o644)?;
    for m in order.lines() {
        tree.add_file(&format!("lib/modules/{m}"), std::fs::read(modules.join(m))?, 0o644)?;
    }
    tree.add_file("init", INIT.as_bytes(), 0o755)?;
    tree.write_file(out)
}

/// One boot: the BENCH lines' (ns, operations) by phase.
fn run(arch: Arch, k: &Kernel, initrd: &Path, image: &Path, round: usize) -> BTreeMap<String, (f64, f64)> {
    let disk = bench_dir(arch).join(format!("ext2-{}.img", k.name));
    if std::fs::copy(image, &disk).is_err() {
        return BTreeMap::new();
    }
    let mut q = QemuConfig::new(arch, &k.path);
    q.initrd = Some(initrd.to_path_buf());
    q.append = k.append.to_string();
    q.attach_disk(&disk, false);
    let Ok(mut g) = Guest::spawn(q.command(), Options::default()) else { return BTreeMap::new() };
    let out = g.wait(Some(BOOT_TIMEOUT), Duration::from_secs(5));
    let log = bench_dir(arch).join(format!("ext2-{}-{round}.log", k.name));
    let _ = std::fs::write(&log, &out.transcript);
    let mut got = BTreeMap::new();
    for l in out.transcript.lines() {
        let mut w = l.split_whitespace();
        if w.next() != Some("BENCH") {
            if l.contains("BENCH-FAIL") {
                eprintln!("{} {}: {}", arch.name(), k.name, l.trim());
            }
            continue;
        }
        let (Some(name), Some(ns), Some(ops)) = (w.next(), w.next(), w.next()) else { continue };
        if let (Ok(ns), Ok(ops)) = (ns.parse::<f64>(), ops.parse::<f64>()) {
            got.insert(name.to_string(), (ns, ops));
        }
    }
    if !out.transcript.contains("BENCH-DONE") {
        eprintln!("{} {}: the run did not finish (see {})", arch.name(), k.name, log.display());
    }
    got
}

fn value(unit: Unit, ns: f64, ops: f64) -> f64 {
    match unit {
        Unit::MibPerSec => ops / (ns / 1e9),
        Unit::UsPerOp => ns / ops / 1e3,
        Unit::Ms => ns / 1e6,
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn bench(arch: Arch, rounds: usize) {
    let dir = bench_dir(arch);
    let _ = std::fs::create_dir_all(&dir);
    let initrd = dir.join("ext2.cpio");
    if let Err(e) = initramfs(arch, &initrd) {
        eprintln!("{}: cannot build the initramfs ({e}); run `just bench-ext2`", arch.name());
        return;
    }
    let image = dir.join("ext2-base.img");
    let script = harness::workspace_root().join("tests/guest/ext2/mkimage.sh");
    let made = Command::new("bash").arg(script).arg(&image).args(["4096", "256"]).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("{}: mkimage.sh failed", arch.name());
        return;
    }
    let ks = kernels(arch);
    let mut results: Vec<BTreeMap<&str, Vec<f64>>> = vec![BTreeMap::new(); ks.len()];
    for round in 0..rounds {
        for (i, k) in ks.iter().enumerate() {
            let got = run(arch, k, &initrd, &image, round);
            for (name, _, unit) in PHASES {
                if let Some(&(ns, ops)) = got.get(name) {
                    results[i].entry(name).or_default().push(value(unit, ns, ops));
                }
            }
        }
    }
    println!("\n{} ({} boot(s) per kernel, medians; ratio = Cairn / Linux time)", arch.name(), rounds);
    println!("| | Cairn | Linux | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, label, unit) in PHASES {
        let c = results[0].get_mut(name).and_then(|v| median(v));
        let l = results[1].get_mut(name).and_then(|v| median(v));
        let show = |v: Option<f64>| match (v, unit) {
            (None, _) => "failed".to_string(),
            (Some(x), Unit::MibPerSec) => format!("{x:.1} MiB/s"),
            (Some(x), Unit::UsPerOp) => format!("{x:.0} us/file"),
            (Some(x), Unit::Ms) => format!("{x:.0} ms"),
        };
        let ratio = match (c, l, unit) {
            (Some(c), Some(l), Unit::MibPerSec) => format!("{:.2}x", l / c),
            (Some(c), Some(l), _) => format!("{:.2}x", c / l),
            _ => "-".into(),
        };
        println!("| {label} | {} | {} | {ratio} |", show(c), show(l));
    }
}

fn main() {
    let mut arches = vec![Arch::X86_64, Arch::Aarch64];
    let mut rounds = ROUNDS;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--arch" => match args.next().as_deref() {
                Some("x86_64" | "x86") => arches = vec![Arch::X86_64],
                Some("aarch64" | "arm64") => arches = vec![Arch::Aarch64],
                Some("all") => {}
                other => {
                    eprintln!("bench-ext2: unknown architecture {other:?}");
                    std::process::exit(2);
                }
            },
            "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).unwrap_or(ROUNDS).max(1),
            _ => {
                eprintln!("usage: bench-ext2 [--arch x86_64|aarch64|all] [--rounds N]");
                std::process::exit(2);
            }
        }
    }
    for arch in arches {
        bench(arch, rounds);
    }
}
