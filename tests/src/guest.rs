//! The guest tests: one table, [`TESTS`], run on every architecture unless an entry says why
//! not. Adding a test is adding one entry.
//!
//! A test is a kernel command line, files added to the initramfs (usually an `/init` script),
//! the strings its console transcript must contain *in order*, strings it must not contain, and
//! the power-off code, and optionally a disk image (a [`DiskSpec`]: made fresh, attached as a
//! virtio-blk device, checked on the host afterwards). Nucleus self-tests are selected with
//! `test=<name>` (see
//! `nucleus/src/selftest.rs` and `servers/selftest/src/driver.rs`); BusyBox tests put a script
//! in `/init`, which the Linux server runs as pid 1 (its exit status powers the machine off).
//!
//! Besides its own `forbid` list, every test implicitly forbids
//! [`DEFAULT_FORBID`](crate::transcript::DEFAULT_FORBID) (a nucleus crash, a `@@TEST-FAIL`
//! line) unless one of its expectations contains the string. A run without a `@@POWEROFF` line
//! always fails.
//!
//! This module is data and its consistency checks; running lives in [`crate::suite`].

use crate::qemu::Arch;
use crate::transcript;
use selftest_servers::{blkio, blktests};
use std::time::Duration;

/// The default per-test timeout (generous: TCG on a loaded two-core machine is slow).
/// `CAIRN_TEST_TIMEOUT` overrides every test's timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// One guest test.
#[derive(Clone, Copy, Debug)]
pub struct GuestTest {
    /// Unique, `[a-z0-9-]`; also names the initramfs and the log file.
    pub name: &'static str,
    /// The architectures it runs on: both unless `why_one_arch` says why not.
    pub arches: &'static [Arch],
    /// Required (and only allowed) when `arches` has one entry.
    pub why_one_arch: Option<&'static str>,
    /// The kernel command line.
    pub append: &'static str,
    /// Files added to the initramfs over the base root file system:
    /// (path in the guest, contents, executable). Parent directories are created.
    pub overlay: &'static [(&'static str, &'static str, bool)],
    /// Substrings that must appear in the transcript, in this order (`\r` is ignored).
    pub expect: &'static [&'static str],
    /// Substrings that must not appear (in addition to the defaults).
    pub forbid: &'static [&'static str],
    /// The `@@POWEROFF` code: `Some(c)` exactly `c`, `None` any code (the line is required).
    pub expect_poweroff: Option<i32>,
    pub timeout: Duration,
    /// A further check of the whole transcript (e.g. analyzing the IPC trace in it).
    pub post_check: Option<PostCheck>,
    /// A disk attached as a virtio-blk device (`virtio-blk-pci` on x86_64,
    /// `virtio-blk-device` on AArch64), made fresh for every run.
    pub disk: Option<DiskSpec>,
    /// Console input, in steps: once the transcript shows a step's marker (`.0`) after what the
    /// previous step typed, the harness types its text (`.1`) slowly, as a person would, on the
    /// guest's serial console.
    pub input: &'static [(&'static str, &'static str)],
    /// A trace port (`QemuConfig::attach_trace_stream`: a virtio console, on PCI on x86_64,
    /// on virtio-mmio on AArch64) streaming into `build/<arch>/tests/<name>.trace`, and the check of what arrived
    /// there, given the transcript too (it names tasks and endpoints).
    pub trace_stream: Option<StreamCheck>,
    /// Lines for the nucleus's control channel (`nucleus::control`), in steps like `input`'s:
    /// once the transcript shows a step's marker (`.0`) after the previous step's, the harness
    /// sends its line (`.1`, e.g. `vfs kill`) on the trace port, which is then a socket
    /// (`QemuConfig::attach_host_port`); what the guest streams back goes to the trace file.
    pub host_control: &'static [(&'static str, &'static str)],
}

/// A check of a whole transcript beyond the ordered strings: `Err` says what is wrong.
pub type PostCheck = fn(&str) -> Result<(), String>;

/// A check of the bytes a test's trace port received, with the transcript: `Err` says what is
/// wrong.
pub type StreamCheck = fn(&str, &[u8]) -> Result<(), String>;

/// A disk image for one run: a fresh raw image of `mib` MiB at `build/<arch>/tests/<name>.img`,
/// filled by `fill` (zeros otherwise) before QEMU starts, and checked by `check` after it has
/// exited (a failed check fails the test).
#[derive(Clone, Copy, Debug)]
pub struct DiskSpec {
    pub mib: u32,
    /// Attached read-only (the device then offers `VIRTIO_BLK_F_RO`).
    pub read_only: bool,
    pub fill: Option<fn(&mut [u8])>,
    pub check: Option<DiskCheck>,
    /// Instead of `fill`: an ext2 file system (`tests/guest/ext2/mkimage.sh`) holding the
    /// test's root file system, the base directory plus the overlay, as the initramfs does.
    pub root_fs: bool,
}

/// A check of a disk image after the run: `Err` says what is wrong.
pub type DiskCheck = fn(&[u8]) -> Result<(), String>;

impl DiskSpec {
    /// A zero-filled, writable disk of `mib` MiB with no check.
    pub const fn zeroed(mib: u32) -> DiskSpec {
        DiskSpec { mib, read_only: false, fill: None, check: None, root_fs: false }
    }
}

/// Both architectures.
pub const BOTH: &[Arch] = &[Arch::X86_64, Arch::Aarch64];

impl GuestTest {
    /// The defaults for struct-update syntax: `GuestTest { name, expect, ..GuestTest::DEFAULT }`.
    pub const DEFAULT: GuestTest = GuestTest {
        name: "",
        arches: BOTH,
        why_one_arch: None,
        append: "",
        overlay: &[],
        expect: &[],
        forbid: &[],
        expect_poweroff: Some(0),
        timeout: DEFAULT_TIMEOUT,
        post_check: None,
        disk: None,
        input: &[],
        trace_stream: None,
        host_control: &[],
    };

    /// Whether it runs on `arch`.
    pub fn runs_on(&self, arch: Arch) -> bool {
        self.arches.contains(&arch)
    }

    /// The strings it forbids: its own plus the defaults it does not expect.
    pub fn forbidden(&self) -> Vec<&'static str> {
        transcript::effective_forbid(self.expect, self.forbid)
    }

    /// Judges a finished run: `Ok` or the first reason it fails. `poweroff` is the code of the
    /// last `@@POWEROFF` line, if any.
    pub fn check(&self, transcript: &str, poweroff: Option<i32>) -> Result<(), String> {
        let text = transcript::normalize(transcript);
        transcript::match_in_order(&text, self.expect).map_err(|u| u.to_string())?;
        if let Some(f) = transcript::first_forbidden(&text, &self.forbidden()) {
            return Err(format!("forbidden {f:?} appears"));
        }
        match (poweroff, self.expect_poweroff) {
            (None, _) => Err("no @@POWEROFF line".into()),
            (Some(c), Some(want)) if c != want => Err(format!("powered off with code {c}, expected {want}")),
            _ => self.post_check.map_or(Ok(()), |f| f(transcript)),
        }
    }

    /// Problems with the entry itself (empty when it is well-formed).
    pub fn lint(&self) -> Vec<String> {
        let mut p = Vec::new();
        let n = self.name;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            p.push(format!("{n:?}: names are non-empty [a-z0-9-]"));
        }
        let mut arches = self.arches.to_vec();
        arches.sort();
        arches.dedup();
        if arches.is_empty() || arches.len() != self.arches.len() {
            p.push(format!("{n}: arches must be non-empty and without repeats"));
        }
        match (arches.len() == Arch::ALL.len(), self.why_one_arch) {
            (false, None) => p.push(format!("{n}: runs on one architecture; why_one_arch must say why")),
            (false, Some(why)) if why.trim().is_empty() => p.push(format!("{n}: why_one_arch is empty")),
            (true, Some(_)) => p.push(format!("{n}: runs on every architecture but has why_one_arch")),
            _ => {}
        }
        if self.expect.is_empty() {
            p.push(format!("{n}: expects nothing"));
        }
        for (path, _, _) in self.overlay {
            if qemu_tools::cpio::normalize(path).is_err() {
                p.push(format!("{n}: bad overlay path {path:?}"));
            }
        }
        for f in self.forbid {
            if self.expect.iter().any(|e| e.contains(f)) {
                p.push(format!("{n}: {f:?} is both expected and forbidden"));
            }
        }
        let listed: Vec<i32> = self.expect.iter().filter_map(|e| transcript::poweroff_code(e)).collect();
        if let (Some(&c), Some(want)) = (listed.last(), self.expect_poweroff) {
            if c != want {
                p.push(format!("{n}: expects \"@@POWEROFF {c}\" but expect_poweroff is {want}"));
            }
        }
        if self.timeout.is_zero() {
            p.push(format!("{n}: zero timeout"));
        }
        p
    }
}

/// A nucleus self-test selected with `append` (`test=<name>`), powering off with 0.
pub const fn selftest(name: &'static str, append: &'static str, expect: &'static [&'static str]) -> GuestTest {
    GuestTest { name, append, expect, ..GuestTest::DEFAULT }
}

const SHELL_SCRIPT: &str = r#"#!/bin/sh
echo "start"
mkdir -p /tmp/w && cd /tmp/w
printf 'pear\napple\nfig\napple\n' > fruit
sort fruit | uniq -c | sed 's/^ *//'
grep -c apple fruit
wc -l < fruit
cat fruit | tr a-z A-Z | head -n 2
x=0; for i in 1 2 3 4; do x=$((x + i)); done; echo "sum=$x"
ls /tmp/w
rm fruit; ls /tmp/w | wc -l
( echo sub; exit 3 ); echo "status=$?"
cat <<EOF2
here-doc $x
EOF2
false || echo "or-ok"
[ -d /tmp/w ] && echo "dir-ok"
echo "end"
"#;

/// `/init` for a conformance program: its output between `== NAME` and `== end STATUS`, the
/// same lines `tests/guest/conformance/record.sh` records under Linux.
macro_rules! conformance_init {
    ($prog:literal) => {
        concat!("#!/bin/sh\necho '== ", $prog, "'; /usr/libexec/cairn/", $prog, "; echo \"== end $?\"\n")
    };
}

/// The transcript's lines from `== PROG` through `== end N` (`\r` and `linux: ` kernel log lines
/// removed) must equal `expected`, what Linux printed (`tests/guest/conformance/record.sh`).
pub(crate) fn matches_linux(transcript: &str, prog: &str, expected: &str) -> Result<(), String> {
    let text = transcript.replace('\r', "");
    let start = format!("== {prog}");
    let got: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != start)
        .filter(|l| !l.starts_with("linux: "))
        .scan(false, |done, l| {
            if *done {
                return None;
            }
            *done = l.starts_with("== end ");
            Some(l)
        })
        .collect();
    let want: Vec<&str> = expected.lines().collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if g != w {
            return Err(format!("{prog} line {}: got {g:?}, Linux printed {w:?}", i + 1));
        }
    }
    if got.len() != want.len() {
        return Err(format!("{prog} printed {} lines, Linux printed {}", got.len(), want.len()));
    }
    Ok(())
}

/// A guest test that runs conformance program `$prog` as `/init`'s only command and compares
/// its output with Linux's (`tests/guest/conformance/$prog.expected`).
macro_rules! conformance {
    ($name:literal, $prog:literal) => {
        conformance!($name, $prog, DEFAULT_TIMEOUT)
    };
    ($name:literal, $prog:literal, $timeout:expr) => {
        GuestTest {
            name: $name,
            overlay: &[("init", conformance_init!($prog), true)],
            expect: &[concat!("== ", $prog, "\n"), "== end ", "@@POWEROFF 0"],
            timeout: $timeout,
            post_check: Some(|t| {
                matches_linux(t, $prog, include_str!(concat!("../guest/conformance/", $prog, ".expected")))
            }),
            ..GuestTest::DEFAULT
        }
    };
}

/// Every guest test.
pub static TESTS: &[GuestTest] = &[
    GuestTest {
        name: "boot-banner",
        overlay: &[("init", "#!/bin/sh\necho init-ran\n", true)],
        expect: &["Cairn", "memory map", "frames:", "init-ran", "@@POWEROFF 0"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "initramfs-overlay",
        overlay: &[
            ("etc/hello.txt", "hello from the host\n", false),
            ("init", "#!/bin/sh\ncat /etc/hello.txt\n", true),
        ],
        expect: &["initrd:", "hello from the host", "@@POWEROFF 0"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        // As on Linux: the words after `--` are init's arguments, and the kernel reads none
        // of them (a `key=value` there is an argument, not a parameter).
        name: "init-arguments",
        append: "-- alpha strace=1",
        overlay: &[("init", "#!/bin/sh\necho \"init args: $# [$1] [$2]\"\n", true)],
        expect: &["init args: 2 [alpha] [strace=1]", "@@POWEROFF 0"],
        forbid: &["[1] write("],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "page-fault-report",
        append: "test=pagefault",
        expect: &[
            "CPU EXCEPTION",
            "page fault",
            "addr=0xffffff00dead0000",
            "fatal: exception in the nucleus",
            "@@POWEROFF 3",
        ],
        expect_poweroff: Some(3),
        ..GuestTest::DEFAULT
    },
    selftest("timer-ticks", "test=ticks", &["ticks ", " -> ", "clock ", "@@TEST-PASS ticks", "@@POWEROFF 0"]),
    selftest("nucleus-heap", "test=heap", &["@@TEST-PASS heap", "@@POWEROFF 0"]),
    selftest(
        "ipc-million-calls",
        "test=ipc-calls",
        &["1000000 calls", "server counted 1000000", "@@TEST-PASS ipc-calls", "@@POWEROFF 0"],
    ),
    selftest(
        "ipc-kill-midcall",
        "test=ipc-kill-midcall",
        &[
            "'echo' instance 1 died: killed",
            "restarted as instance 2",
            "caller got ServerDied",
            "@@TEST-PASS ipc-kill-midcall",
            "@@POWEROFF 0",
        ],
    ),
    selftest(
        "ipc-restart-cycles",
        "test=ipc-restart-cycles",
        &["1000 kill/restart cycles", "@@TEST-PASS ipc-restart-cycles", "@@POWEROFF 0"],
    ),
    selftest(
        "server-panic",
        "test=server-panic",
        &["died: panic: echo: asked to panic", "@@TEST-PASS server-panic", "@@POWEROFF 0"],
    ),
    selftest(
        "server-bad-address",
        "test=server-fault",
        &["died: fault:", "addr=0xffffff00dead0000", "@@TEST-PASS server-fault", "@@POWEROFF 0"],
    ),
    selftest(
        "server-stack-overflow",
        "test=server-stack-overflow",
        &["died: stack overflow", "@@TEST-PASS server-stack-overflow", "@@POWEROFF 0"],
    ),
    GuestTest {
        name: "ipc-grants",
        append: "test=ipc-grant",
        expect: &[
            "buffer reversed: true",
            "revoked after reply, forged range refused, read-only enforced",
            "@@TEST-PASS ipc-grant",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "ipc-forward-grant",
        append: "test=ipc-forward-grant",
        expect: &["forward-grant: rights cannot grow, ranges cannot grow", "@@TEST-PASS ipc-forward-grant"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "ipc-notify",
        append: "test=ipc-notify",
        expect: &["with bits 0b101", "@@TEST-PASS ipc-notify"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "state-area-survives-kills",
        append: "test=state-keeper fi=keeper:5:7",
        expect: &[
            "answered from the record",
            "additions exact across",
            "@@TEST-PASS state-keeper",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "supervisor-killed",
        append: "test=supervisor-kill",
        expect: &[
            "nucleus: the supervisor died (killed); restarted as instance 2",
            "supervisor-kill: the new supervisor restarted echo",
            "@@TEST-PASS supervisor-kill",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "crash-loop-held",
        append: "test=crash-loop",
        expect: &["crash loop, holding it", "crash-loop: echo held after", "@@TEST-PASS crash-loop"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "hung-server-restarted",
        append: "test=hung-server",
        expect: &["died: hung: held a request", "@@TEST-PASS hung-server"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "servers-sysfs-inject",
        overlay: &[("init", SERVERS_SYSFS_SCRIPT, true)],
        expect: &[
            "state: running\ninstance: 1\nrestarts: 0\npolicy: transparent",
            "'echo' instance 1 died: killed",
            "instance: 2\nlast-death: killed",
            "blk blkc1 blkc2 blkc3 echo ext2 keeper linux ramfs relay supervisor testdriver tty vfs",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "interactive-shell",
        overlay: &[("init", "#!/bin/sh\nexec /bin/sh\n", true)],
        input: &[
            ("/ # ", "echo one two three | wc -w\r"),
            ("/ # ", "cd /tmp && mkdir -p t && cd t && pwd\r"),
            ("# ", "for i in 1 2 3; do echo \"n$i\"; done | tail -n 1\r"),
            ("# ", "sleep 5 &\r"),
            ("# ", "jobs\r"),
            ("# ", "kill %1; wait; echo waited\r"),
            ("# ", "echo bad | grep -q good || echo \"rc=$?\"\r"),
            ("# ", "exit\r"),
        ],
        expect: &["\n3\n", "/tmp/t", "n3", "sleep 5", "waited", "rc=1", "@@POWEROFF 0"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "job-control-on-the-console",
        overlay: &[("init", "#!/bin/sh\nexec /bin/sh\n", true)],
        // Every step waits for output of the program it talks to (never for time), and the
        // markers are written so that the echo of the typed command cannot match them.
        input: &[
            ("/ # ", "sh -c 'echo \"job is\" up; exec sleep 30'\r"),
            ("job is up", "\x1a"),
            ("Stopped", "jobs\r"),
            ("# ", "kill %1\r"),
            ("# ", "sh -c 'echo \"read\" ing; exec cat'\r"),
            ("read ing", "typed line\r"),
            ("typed line\r\ntyped line", "\x04"),
            ("# ", "cat > /tmp/bgread &\r"),
            ("# ", "while ! jobs | grep -q 'Stop[p]ed'; do sleep 0.1; done; jobs\r"),
            ("Stopped (tty input)", "fg\r"),
            ("cat 1>/tmp/bgread", "from the foreground\r\x04"),
            ("# ", "cat /tmp/bgread\r"),
            ("# ", "exit\r"),
        ],
        expect: &[
            "job is up",
            "^Z[1]+  Stopped",
            "sh -c \"echo",
            "typed line\ntyped line",
            "Stopped (tty input)",
            "cat 1>/tmp/bgread",
            // (Its echo may lack what was typed while the shell still had the terminal raw.)
            "cat /tmp/bgread\nfrom the foreground\n",
            "@@POWEROFF 0",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "vi-edits-a-file",
        overlay: &[("init", "#!/bin/sh\nprintf 'l1\\nl2\\n' > /tmp/t.txt\nexec /bin/sh\n", true)],
        input: &[
            ("/ # ", "vi /tmp/t.txt\r"),
            ("- /tmp/t.txt", "jA"),
            ("I /tmp/t.txt", " added\x1b"),
            ("[Modified]", ":wq\r"),
            ("/ # ", "cat /tmp/t.txt\r"),
            ("/ # ", "exit\r"),
        ],
        expect: &["'/tmp/t.txt' 2L, 12C", "l1\nl2 added\n", "@@POWEROFF 0"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "less-pages-input",
        overlay: &[("init", "#!/bin/sh\nexec /bin/sh\n", true)],
        input: &[
            ("/ # ", "seq 1 100 | less\r"),
            ("standard input", "G"),
            ("(END)", "/50\r"),
            ("72", "q"),
            ("/ # ", "echo less-rc=$?\r"),
            ("/ # ", "exit\r"),
        ],
        expect: &["standard input", "100", "(END)", "51", "less-rc=0", "@@POWEROFF 0"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "poweroff-command",
        overlay: &[("init", "#!/bin/sh\npoweroff -f\nsleep 5\necho not-reached\n", true)],
        expect: &["reboot(2) by pid", "@@POWEROFF 0"],
        forbid: &["not-reached"],
        ..GuestTest::DEFAULT
    },
    conformance!("files-vs-linux", "files"),
    conformance!("fifo-vs-linux", "fifo"),
    GuestTest {
        name: "fault-kinds-from-guest",
        overlay: &[("init", FAULT_KINDS_SCRIPT, true)],
        expect: &[
            "ls-after-panic: bin",
            "vfs: panic: injected panic",
            "ls-after-fault: bin",
            "vfs: fault: ",
            "addr=0xffffff00dead0000",
            "died: hung: held a request",
            "after-hang",
            "tty: hung: held a request",
            "bogus refused",
            "@@POWEROFF 0",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "host-control-channel",
        overlay: &[("init", HOST_CONTROL_SCRIPT, true)],
        host_control: &[
            ("@@CONTROL-READY", "nosuch kill"),
            ("no server named", "vfs explode"),
            ("control: vfs explode: expected", "vfs panic"),
            ("@@CONTROL-HANG", "tty hang"),
        ],
        expect: &[
            "control: nosuch kill: no server named 'nosuch'",
            "control: vfs explode: expected kill, panic, fault, hang, random <ms> [seed] or stop",
            "control: vfs panic: ok",
            "vfs: panic: injected panic",
            "ls-after-panic: bin",
            "control: tty hang: ok",
            "tty: hung: held a request",
            "after-hang",
            "@@POWEROFF 0",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "fault-injection-random-kills",
        append: "test=ipc-random-kills fi=echo:20:42",
        expect: &[
            "fi: killing 'echo' every ~20 ms (seed 42)",
            "calls answered correctly while echo was killed",
            "@@TEST-PASS ipc-random-kills",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "console-rx-interrupt",
        append: "test=console-irq",
        input: &[("console-irq: type a line", "hello cairn\r")],
        expect: &["console-irq: type a line", "console-irq: read 'hello cairn' in", "@@TEST-PASS console-irq"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "blk-no-disk",
        overlay: &[("init", "#!/bin/sh\ngrep -E \"state|instance\" /sys/kernel/servers/blk/status\n", true)],
        expect: &["server 'blk': no device for it, not started", "state: not started\ninstance: 0", "@@POWEROFF 0"],
        forbid: &["device 1:"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "blk-basic",
        append: "test=blk-basic",
        disk: Some(DiskSpec { mib: 8, read_only: false, fill: Some(host_pattern), check: Some(basic_image_ok), root_fs: false }),
        expect: &[
            "blk: virtio-blk, 8192 KiB, 512-byte blocks",
            "blk-basic: read the host's pattern across all 16384 sectors",
            "blk-basic: wrote 6144 KiB in mixed request sizes and read everything back",
            "blk-basic: out-of-range, misaligned and ungranted requests refused",
            "blk-basic: another server cannot open, drive or interrupt-bind blk's device",
            "blk-basic: flushed",
            "@@TEST-PASS blk-basic",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "blk-read-only",
        append: "test=blk-read-only",
        disk: Some(DiskSpec { mib: 4, read_only: true, fill: Some(host_pattern), check: Some(image_untouched), root_fs: false }),
        expect: &[
            "blk: virtio-blk, 4096 KiB, 512-byte blocks, read-only",
            "blk-read-only: writes refused with EROFS, the host's data reads back",
            "@@TEST-PASS blk-read-only",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "blk-concurrent-clients",
        append: "test=blk-concurrent",
        disk: Some(DiskSpec::zeroed(8)),
        expect: &["blk-concurrent: 3 clients", "all data right; at most", "@@TEST-PASS blk-concurrent"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "blk-killed-during-io",
        append: "test=blk-kill seed=11",
        disk: Some(DiskSpec::zeroed(8)),
        expect: &[
            "'blk' instance 1 died: killed",
            "'blk' restarted as instance 2",
            "all data right, while blk was killed 26 times",
            "blk-kill: memory before",
            "@@TEST-PASS blk-kill",
        ],
        timeout: Duration::from_secs(300),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "blk-irq-driver-sleeps",
        append: "test=blk-irq",
        disk: Some(DiskSpec::zeroed(8)),
        expect: &["blk-irq: 200 reads: 201 requests, 200 completions", "blk-irq: idle 300 ms: 1 wakeups", "@@TEST-PASS blk-irq"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "blk-bench",
        append: "test=blk-bench",
        disk: Some(DiskSpec::zeroed(16)),
        expect: &[
            "blk-bench: sequential write 4 KiB",
            "blk-bench: sequential read 4 KiB",
            "blk-bench: sequential write 64 KiB",
            "blk-bench: sequential read 64 KiB",
            "@@TEST-PASS blk-bench",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "bad-input-syscall-fuzz",
        overlay: &[("init", "#!/bin/sh\n/usr/libexec/cairn/syscall_fuzz\necho kernel-alive\n", true)],
        expect: &["syscall-fuzz: done", "kernel-alive", "@@POWEROFF 0"],
        timeout: Duration::from_secs(300),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "bad-input-kernel-pointers",
        overlay: &[("init", "#!/bin/sh\n/usr/libexec/cairn/kernel_pointers\n", true)],
        expect: &["write(1, k, 16)                    EFAULT", "kernel-pointers: all EFAULT", "@@POWEROFF 0"],
        forbid: &["WRONG"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "busybox-file-ops",
        overlay: &[("init", FILE_OPS_SCRIPT, true)],
        expect: &[
            "moved:hello",
            "soft:hello",
            "target:a/b/g",
            "600 2 6",
            "2020-01-02 03:04:05",
            "trunc:hel",
            "c/b:\ng\n",
            "copied:g",
            "mv: can't rename 'd': Invalid argument",
            "rmdir: 'x': Directory not empty",
            "end",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "trace-cat-passwd",
        append: "trace=1",
        overlay: &[("init", "#!/bin/sh\ncat /etc/passwd\n", true)],
        expect: &[
            "root:x:0:0:root:/root:/bin/sh",
            "@@TRACE-NAME task 2 linux",
            "@@TRACE ",
            "@@TRACE-END",
            " 0 dropped",
        ],
        post_check: Some(trace_has_file_chains),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "trace-stream-cat-passwd",
        append: "trace=1",
        overlay: &[("init", "#!/bin/sh\ncat /etc/passwd\n", true)],
        expect: &["root:x:0:0:root:/root:/bin/sh", "@@TRACE-NAME task 2 linux", "@@TRACE-STREAMED", " 0 dropped"],
        // Records go to the port, not to the console.
        forbid: &["@@TRACE ", "@@TRACE-END"],
        trace_stream: Some(stream_has_file_chains),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "trace-stream-overflow",
        append: "trace=1 tracebuf=64",
        overlay: &[("init", TRACE_FLOOD_SCRIPT, true)],
        expect: &["flooded", "@@TRACE-STREAMED"],
        forbid: &["@@TRACE ", " 0 dropped"],
        trace_stream: Some(stream_shows_drops),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "trace-dump-overflow",
        append: "trace=1 tracebuf=64",
        overlay: &[("init", TRACE_FLOOD_SCRIPT, true)],
        expect: &["flooded", "@@TRACE ", "@@TRACE-END"],
        forbid: &[" 0 dropped"],
        post_check: Some(dump_shows_drops),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "trace-server-death",
        append: "test=ipc-kill-midcall trace=1",
        expect: &["@@TEST-PASS ipc-kill-midcall", "@@TRACE-END"],
        post_check: Some(trace_shows_death),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "trace-retry-after-death",
        append: "test=ipc-retry trace=1",
        expect: &[
            "'echo' instance 1 died: killed",
            "retry: the slow call was answered with 100",
            "@@TEST-PASS ipc-retry",
        ],
        post_check: Some(trace_shows_retry),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "trace-guest-control",
        overlay: &[("init", TRACE_CONTROL_SCRIPT, true)],
        expect: &["tracing 0", "tracing 1", "cairn", "@@TRACE-END"],
        post_check: Some(trace_has_read),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "fpu-state-per-process",
        overlay: &[("init", FPU_SCRIPT, true)],
        expect: &["13.188755\n13.188755\n13.188755\n", "@@POWEROFF 0"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "select-poll-pipe",
        overlay: &[("init", "#!/bin/sh\n/usr/libexec/cairn/select_pipe\n", true)],
        // Recorded on Linux (the program runs unchanged there).
        expect: &[
            "empty: 0\nafter write: 1 readable=1\nwritable: 1\npoll: 1 revents=0x1\npoll after close: 1 hup=1\nclosed fd: -1 EBADF\n",
            "@@POWEROFF 0",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "busybox-script",
        overlay: &[("init", SHELL_SCRIPT, true)],
        expect: &[
            "start",
            "2 apple",
            "1 fig",
            "1 pear",
            "\n2\n",
            "\n4\n",
            "PEAR\nAPPLE",
            "sum=10",
            "fruit",
            "\n0\n",
            "sub",
            "status=3",
            "here-doc 10",
            "or-ok",
            "dir-ok",
            "end",
            "@@POWEROFF 0",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "busybox-signals",
        overlay: &[("init", SIGNALS_SCRIPT, true)],
        expect: &["got USR1", "after-usr1", "got TERM", "after-term", "sleep status 143", "child status 6", "end"],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "busybox-vs-linux",
        overlay: &[("init", SESSION_SCRIPT, true)],
        expect: &["== echo", "SESSION-END", "@@POWEROFF 0"],
        timeout: Duration::from_secs(300),
        post_check: Some(session_matches_linux),
        ..GuestTest::DEFAULT
    },
    conformance!("fork-cow-200", "fork_cow"),
    conformance!("threads-futex-vfork", "threads"),
    conformance!("task-limits-eagain", "task_limits"),
    conformance!("job-control-wait", "jobctl"),
    conformance!("signals-siginfo-restart", "signals"),
    conformance!("signals-async-fp-timers", "sigasync"),
    conformance!("memory-mremap-madvise-faults", "memory"),
    conformance!("creds-limits-sched", "creds"),
    conformance!("exec-rewritten-file", "exec_cache"),
    conformance!("posix-timers", "posix_timers"),
    conformance!("dynamic-glibc-vs-linux", "dynamic-glibc"),
    conformance!("dynamic-musl-vs-linux", "dynamic-musl"),
    conformance!("exec-malformed-vs-linux", "exec_bad"),
    conformance!("vdso-clocks-vs-linux", "vdso"),
    conformance!("ppoll-pselect-sigmask-vs-linux", "wait_mask"),
    conformance!("file-locks-vs-linux", "locks"),
    conformance!("eventfd-timerfd-signalfd-epoll-vs-linux", "eventfds"),
    conformance!("unix-sockets-vs-linux", "unix_sockets"),
    GuestTest {
        name: "ramfs-workload-no-faults",
        overlay: &[("init", RAMFS_WORKLOAD, true)],
        expect: &["WORKLOAD-START", "WORKLOAD-END", "restarts: 0", "@@POWEROFF 0"],
        post_check: Some(workload_matches_expected),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "ramfs-workload-random-kills",
        append: "fi=ramfs:50:7",
        overlay: &[("init", RAMFS_WORKLOAD, true)],
        expect: &["fi: killing 'ramfs' every ~50 ms (seed 7)", "WORKLOAD-START", "WORKLOAD-END", "restarts: ", "@@POWEROFF 0"],
        post_check: Some(workload_matches_under_kills),
        timeout: Duration::from_secs(300),
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "ramfs-unlinked-open-survives-kill",
        overlay: &[("init", UNLINKED_OPEN_SCRIPT, true)],
        expect: &[
            "read /tmp: kept in /tmp\\nafter the kill\\n",
            "gone /tmp: No such file or directory",
            "read /mnt/t: kept in /mnt/t\\nafter the kill\\n",
            "gone /mnt/t: No such file or directory",
            "restarts: 4",
            "@@POWEROFF 0",
        ],
        ..GuestTest::DEFAULT
    },
    GuestTest {
        name: "ramfs-kills-no-leak",
        overlay: &[("init", RAMFS_LEAK_SCRIPT, true)],
        expect: &[
            "restarts: 30",
            "memory settled after 30 kills",
            "8 MiB file costs ",
            "deleted file memory returned",
            "@@POWEROFF 0",
        ],
        forbid: &["memory moved", "off by"],
        ..GuestTest::DEFAULT
    },
];

/// The ramfs workload (`tests/guest/ramfs/workload.sh`) and its output without faults, recorded
/// by running it on Cairn (`ramfs-workload-no-faults` checks that the recording still holds).
const RAMFS_WORKLOAD: &str = include_str!("../guest/ramfs/workload.sh");
const RAMFS_EXPECTED: &str = include_str!("../guest/ramfs/expected.txt");

/// Console messages that may land between (or inside) the workload's lines while ramfs is
/// being killed and restarted.
const LOG_PREFIXES: &[&str] = &["supervisor: '", "ramfs: ", "fi: ", "linux: "];

/// The transcript from `WORKLOAD-START` through `WORKLOAD-END`, with console messages taken out
/// (a message that interrupted a line is cut out of it, and the line joined again).
fn workload_section(transcript: &str) -> Vec<String> {
    let text = transcript.replace('\r', "");
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let cut = LOG_PREFIXES.iter().filter_map(|p| line.find(p)).min();
        match cut {
            Some(at) => pending.push_str(&line[..at]),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    let start = lines.iter().position(|l| l == "WORKLOAD-START").unwrap_or(lines.len());
    let end = lines.iter().position(|l| l == "WORKLOAD-END").map_or(lines.len(), |e| e + 1);
    lines.get(start..end).map(|l| l.to_vec()).unwrap_or_default()
}

fn workload_matches_expected(transcript: &str) -> Result<(), String> {
    let got = workload_section(transcript);
    let want: Vec<&str> = RAMFS_EXPECTED.lines().collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if g != w {
            return Err(format!("workload line {}: got {g:?}, expected {w:?}", i + 1));
        }
    }
    if got.len() != want.len() {
        return Err(format!("the workload printed {} lines, expected {}", got.len(), want.len()));
    }
    Ok(())
}

/// The same output as without faults, and ramfs was killed at least 20 times meanwhile.
fn workload_matches_under_kills(transcript: &str) -> Result<(), String> {
    workload_matches_expected(transcript)?;
    let text = transcript.replace('\r', "");
    let restarts = text
        .lines()
        .filter_map(|l| l.strip_prefix("restarts: "))
        .next_back()
        .and_then(|n| n.trim().parse::<u32>().ok())
        .ok_or("no restart count")?;
    if restarts < 20 {
        return Err(format!("ramfs was restarted only {restarts} times (at least 20 wanted)"));
    }
    Ok(())
}

/// A file unlinked while open (for reading and appending) outlives two ramfs kills, in the
/// root volume and in a tmpfs, and goes when its last descriptor closes.
const UNLINKED_OPEN_SCRIPT: &str = r#"#!/bin/sh
mkdir -p /mnt/t && mount -t tmpfs tmpfs /mnt/t
for D in /tmp /mnt/t; do
    echo "kept in $D" > $D/u
    exec 3< $D/u 4>> $D/u
    rm $D/u
    echo kill > /sys/kernel/servers/ramfs/fault
    ls $D > /dev/null
    echo "after the kill" >&4
    echo kill > /sys/kernel/servers/ramfs/fault
    printf 'read %s: %s\n' $D "$(cat <&3 | sed 's/$/\\n/' | tr -d '\n')"
    echo "gone $D: $(ls $D/u 2>&1 | sed 's/.*: //')"
    exec 3<&- 4>&-
done
grep restarts /sys/kernel/servers/ramfs/status
"#;

/// Killing ramfs 30 times gives back every page each instance had (its arena); an 8 MiB file
/// costs about 8 MiB, and deleting it gives that back.
const RAMFS_LEAK_SCRIPT: &str = r#"#!/bin/sh
free_kb() { awk '/MemFree/ { print $2 }' /proc/meminfo; }
within() { d=$(($1 - $2)); [ $d -lt 0 ] && d=$((-d)); [ $d -le $3 ]; }
echo warm > /tmp/warm; ls / > /dev/null
m0=$(free_kb)
i=0
while [ $i -lt 30 ]; do
    echo kill > /sys/kernel/servers/ramfs/fault
    ls / > /dev/null
    i=$((i + 1))
done
sleep 1
m1=$(free_kb)
grep restarts /sys/kernel/servers/ramfs/status
within $m0 $m1 256 && echo "memory settled after 30 kills" || echo "memory moved by $((m0 - m1)) KiB"
dd if=/dev/urandom of=/tmp/big bs=65536 count=128 2>/dev/null
m2=$(free_kb)
echo "8 MiB file costs $((m1 - m2)) KiB"
rm /tmp/big
m3=$(free_kb)
within $m1 $m3 256 && echo "deleted file memory returned" || echo "after rm: off by $((m1 - m3)) KiB"
"#;

/// A scripted BusyBox session (`tests/guest/applets/session.sh`); its output must equal what
/// Linux printed for it, recorded by `tests/guest/applets/record.sh` into `expected.txt`.
const SESSION_SCRIPT: &str = include_str!("../guest/applets/session.sh");
const SESSION_EXPECTED: &str = include_str!("../guest/applets/expected.txt");

/// The transcript from the first `== ` line through `SESSION-END` (`\r` and `linux: ` kernel
/// log lines removed) must equal [`SESSION_EXPECTED`] line by line.
fn session_matches_linux(transcript: &str) -> Result<(), String> {
    let text = transcript.replace('\r', "");
    let got: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("== "))
        .filter(|l| !l.starts_with("linux: "))
        .scan(false, |done, l| {
            if *done {
                return None;
            }
            *done = l == "SESSION-END";
            Some(l)
        })
        .collect();
    let want: Vec<&str> = SESSION_EXPECTED.lines().collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if g != w {
            return Err(format!("session line {}: got {g:?}, Linux printed {w:?}", i + 1));
        }
    }
    if got.len() != want.len() {
        return Err(format!("session has {} lines, Linux printed {}", got.len(), want.len()));
    }
    Ok(())
}

/// Three processes computing with floating point at once (preempted against each other): each
/// must keep its own FP/SIMD registers (the harmonic sum H(300000) = 13.188755...).
const FPU_SCRIPT: &str = r#"#!/bin/sh
f() { awk 'BEGIN { s = 0; for (i = 1; i <= 300000; i++) s += 1.0 / i; printf "%.6f\n", s }'; }
f > /tmp/a & f > /tmp/b & f > /tmp/c
wait
cat /tmp/a /tmp/b /tmp/c
"#;

/// Per-server status files, and a fault injected from inside the guest.
/// A fresh image full of the host's pattern (`selftest_servers::blkio`, the same code the
/// guest checks with).
fn host_pattern(img: &mut [u8]) {
    blkio::fill(img, 0, blkio::HOST_TAG);
}

/// Every sector of `img` holds the pattern of `tag_of(sector)`.
fn sectors_hold(img: &[u8], tag_of: impl Fn(u64) -> u64) -> Result<(), String> {
    match img.chunks_exact(512).enumerate().find(|&(s, sec)| !blkio::sector_ok(sec, s as u64, tag_of(s as u64))) {
        Some((s, _)) => Err(format!("sector {s} does not hold the expected data")),
        None => Ok(()),
    }
}

/// After `blk-basic`: the guest's pattern over the first 6 MiB, the host's after that.
fn basic_image_ok(img: &[u8]) -> Result<(), String> {
    let written = blktests::BASIC_WRITTEN / 512;
    sectors_hold(img, |s| if s < written { blktests::DRIVER_TAG } else { blkio::HOST_TAG })
}

/// A read-only disk is as the host made it.
fn image_untouched(img: &[u8]) -> Result<(), String> {
    sectors_hold(img, |_| blkio::HOST_TAG)
}

const SERVERS_SYSFS_SCRIPT: &str = r#"#!/bin/sh
cat /sys/kernel/servers/echo/status
echo kill > /sys/kernel/servers/echo/fault
sleep 1
grep -E "instance|last-death" /sys/kernel/servers/echo/status
echo $(ls /sys/kernel/servers)
"#;

/// Every kind of injected fault, from inside the guest, on servers that are in use: a panic
/// and a bad memory access in `vfs` (the shell keeps finding files: transparent restart), and
/// `tty` made to hang — the next write waits until the nucleus's deadline kills it, and the
/// retried write reaches the new instance.
/// Waits for the host's commands (`GuestTest::host_control`): a refused line or two, a panic
/// of `vfs`, a hang of `tty`, each seen through the servers' status files.
const HOST_CONTROL_SCRIPT: &str = r#"#!/bin/sh
before=$(sed -n 's/^instance: //p' /sys/kernel/servers/vfs/status)
echo @@CONTROL-READY
while [ "$(sed -n 's/^instance: //p' /sys/kernel/servers/vfs/status)" = "$before" ]; do sleep 0.1; done
echo "vfs: $(grep last-death /sys/kernel/servers/vfs/status | cut -d' ' -f2-)"
echo "ls-after-panic: $(ls / | head -n 1)"
before=$(sed -n 's/^instance: //p' /sys/kernel/servers/tty/status)
echo @@CONTROL-HANG
# Writing to the console is what finds tty hung: its request outlives the deadline.
while [ "$(sed -n 's/^instance: //p' /sys/kernel/servers/tty/status)" = "$before" ]; do echo waiting; sleep 0.1; done
echo "tty: $(grep last-death /sys/kernel/servers/tty/status | cut -d' ' -f2-)"
echo after-hang
"#;

const FAULT_KINDS_SCRIPT: &str = r#"#!/bin/sh
echo panic > /sys/kernel/servers/vfs/fault
echo "ls-after-panic: $(ls / | head -n 1)"
echo "vfs: $(grep last-death /sys/kernel/servers/vfs/status | cut -d' ' -f2-)"
echo fault > /sys/kernel/servers/vfs/fault
echo "ls-after-fault: $(ls / | head -n 1)"
echo "vfs: $(grep last-death /sys/kernel/servers/vfs/status | cut -d' ' -f2-)"
echo hang > /sys/kernel/servers/tty/fault
echo after-hang
echo "tty: $(grep last-death /sys/kernel/servers/tty/status | cut -d' ' -f2-)"
echo bogus > /sys/kernel/servers/echo/fault 2>/dev/null || echo "bogus refused"
"#;

/// The IPC trace of `cat /etc/passwd` must show the openat, read and close system calls each
/// reaching the servers that do the work, and no request left unanswered.
fn trace_has_file_chains(transcript: &str) -> Result<(), String> {
    file_chains(&trace_analyzer::load(transcript.as_bytes())?)
}

fn file_chains(trace: &trace_analyzer::Trace) -> Result<(), String> {
    let analysis = trace_analyzer::analyze(trace, &trace_analyzer::Options::default());
    let chains = trace_analyzer::report::chains(&analysis, &Default::default());
    // Each system call's chain, hop by hop: openat walks the path through vfs to ramfs, read
    // goes from linux straight to ramfs (into the user's buffer), close releases the file.
    let lines: Vec<&str> = chains.lines().collect();
    for (call, hops) in [
        ("openat", &["linux [openat]", "vfs [walk]", "ramfs [lookup]"][..]),
        ("read", &["linux [read]", "ramfs [read]"][..]),
        ("close", &["linux [close]", "ramfs [release]"][..]),
    ] {
        let found = lines.iter().enumerate().any(|(i, l)| {
            l.starts_with(&format!("{call} (")) && {
                // The chain is the indented lines that follow its syscall line.
                let chain: Vec<&str> =
                    lines[i + 1..].iter().take_while(|c| c.starts_with(' ')).map(|c| c.trim_start()).collect();
                hops.iter().all(|h| chain.iter().any(|c| c.starts_with(h)))
            }
        });
        if !found {
            return Err(format!("no {call} chain through {hops:?} in the trace"));
        }
    }
    let problems = trace_analyzer::report::problems(&analysis);
    if !problems.contains("== Requests never answered ==\n(none)") {
        return Err(format!("unanswered requests:\n{problems}"));
    }
    Ok(())
}

/// The trace port's bytes as a trace, named by the transcript's `@@TRACE-NAME` lines.
fn streamed_trace(transcript: &str, stream: &[u8]) -> Result<trace_analyzer::Trace, String> {
    let mut trace = trace_analyzer::load(stream)?;
    if trace.transcript {
        return Err("the trace port's bytes are not a binary trace stream".into());
    }
    for line in transcript.lines() {
        if let Some(at) = line.find("@@TRACE-NAME ") {
            trace.names.add_line(&line[at + "@@TRACE-NAME ".len()..])?;
        }
    }
    Ok(trace)
}

/// The `N records on the trace port, D dropped` numbers of the power-off line.
fn streamed_counts(transcript: &str) -> Result<(usize, u64), String> {
    let line = transcript
        .lines()
        .find_map(|l| l.split("@@TRACE-STREAMED ").nth(1))
        .ok_or("no @@TRACE-STREAMED line: the kernel did not stream")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
    let dropped = words.iter().position(|w| w.starts_with("dropped")).and_then(|i| number(i - 1));
    match (number(0), dropped) {
        (Some(n), Some(d)) => Ok((n as usize, d)),
        _ => Err(format!("cannot read the @@TRACE-STREAMED line {line:?}")),
    }
}

/// Every record the kernel says it streamed arrived, and the `Dropped` records account for
/// exactly the records it says it lost. Returns the analysis.
fn stream_is_complete(transcript: &str, trace: &trace_analyzer::Trace) -> Result<trace_analyzer::Analysis, String> {
    let (sent, lost) = streamed_counts(transcript)?;
    if trace.records.len() != sent {
        return Err(format!("the kernel streamed {sent} records, the port received {}", trace.records.len()));
    }
    if let Some(w) = trace.warnings.first() {
        return Err(format!("decoding the stream: {w}"));
    }
    let analysis = trace_analyzer::analyze(trace, &trace_analyzer::Options::default());
    let reported: u64 = analysis.dropped.iter().map(|d| d.lost).sum();
    if reported != lost {
        return Err(format!("the kernel lost {lost} records, the Dropped records account for {reported}"));
    }
    Ok(analysis)
}

/// `cat /etc/passwd` traced over the live stream: every chain is there, nothing was lost.
fn stream_has_file_chains(transcript: &str, stream: &[u8]) -> Result<(), String> {
    let trace = streamed_trace(transcript, stream)?;
    let analysis = stream_is_complete(transcript, &trace)?;
    if !analysis.dropped.is_empty() {
        return Err(format!("{} Dropped records in a run that should lose nothing", analysis.dropped.len()));
    }
    file_chains(&trace)
}

/// A ring of 64 records overflows: the stream carries `Dropped` records adding up to the
/// kernel's count, and the analyzer's report says how many records were lost.
fn stream_shows_drops(transcript: &str, stream: &[u8]) -> Result<(), String> {
    let trace = streamed_trace(transcript, stream)?;
    let analysis = stream_is_complete(transcript, &trace)?;
    let lost: u64 = analysis.dropped.iter().map(|d| d.lost).sum();
    if lost == 0 {
        return Err("no records were dropped: the ring did not overflow".into());
    }
    let report = trace_analyzer::report::summary(&analysis);
    if !report.contains(&format!("WARNING: {lost} records were lost")) {
        return Err(format!("the report does not say that {lost} records were lost:\n{report}"));
    }
    Ok(())
}

/// The same overflow without a trace port: the power-off dump ends with the `Dropped` record
/// of what it could not hold, and the report counts them all.
fn dump_shows_drops(transcript: &str) -> Result<(), String> {
    let end = transcript.lines().find_map(|l| l.split("@@TRACE-END ").nth(1)).ok_or("no @@TRACE-END line")?;
    let words: Vec<&str> = end.split_whitespace().collect();
    let lost: u64 = words.get(2).and_then(|w| w.parse().ok()).ok_or(format!("cannot read {end:?}"))?;
    let trace = trace_analyzer::load(transcript.as_bytes())?;
    let analysis = trace_analyzer::analyze(&trace, &trace_analyzer::Options::default());
    let reported: u64 = analysis.dropped.iter().map(|d| d.lost).sum();
    if lost == 0 || reported != lost {
        return Err(format!("the kernel lost {lost} records, the Dropped records account for {reported}"));
    }
    Ok(())
}

/// The trace of a server killed mid-call shows the death, the request it failed, and the
/// restart.
fn trace_shows_death(transcript: &str) -> Result<(), String> {
    let trace = trace_analyzer::load(transcript.as_bytes())?;
    let analysis = trace_analyzer::analyze(&trace, &trace_analyzer::Options::default());
    let report = trace_analyzer::report::full(&analysis, &Default::default());
    for needle in ["DEATH    task", "RESTART  task", "IN FLIGHT AT THE DEATH", "failed with ServerDied"] {
        if !report.contains(needle) {
            return Err(format!("the trace report lacks {needle:?}"));
        }
    }
    Ok(())
}

/// The trace shows the request that died with the server and the same request sent again.
fn trace_shows_retry(transcript: &str) -> Result<(), String> {
    let trace = trace_analyzer::load(transcript.as_bytes())?;
    let analysis = trace_analyzer::analyze(&trace, &trace_analyzer::Options::default());
    let report = trace_analyzer::report::full(&analysis, &Default::default());
    for needle in ["DEATH    task", "DIED after", "RETRY"] {
        if !report.contains(needle) {
            return Err(format!("the trace report lacks {needle:?}"));
        }
    }
    Ok(())
}

/// Many system calls without a pause (redirections open, write and close `/dev/null`).
const TRACE_FLOOD_SCRIPT: &str = r#"#!/bin/sh
i=0
while [ $i -lt 200 ]; do echo $i > /dev/null; i=$((i + 1)); done
echo flooded
"#;

/// Tracing switched on and off from inside the guest (`/sys/kernel/tracing/tracing_on`).
const TRACE_CONTROL_SCRIPT: &str = r#"#!/bin/sh
echo "tracing $(cat /sys/kernel/tracing/tracing_on)"
echo 1 > /sys/kernel/tracing/tracing_on
echo "tracing $(cat /sys/kernel/tracing/tracing_on)"
cat /etc/hostname
echo 0 > /sys/kernel/tracing/tracing_on
"#;

/// The trace recorded between switching tracing on and off holds `cat`'s read chain.
fn trace_has_read(transcript: &str) -> Result<(), String> {
    let trace = trace_analyzer::load(transcript.as_bytes())?;
    let analysis = trace_analyzer::analyze(&trace, &trace_analyzer::Options::default());
    let chains = trace_analyzer::report::chains(&analysis, &Default::default());
    if chains.lines().any(|l| l.starts_with("read (fd 3)")) {
        Ok(())
    } else {
        Err("no read chain in the trace recorded under guest control".into())
    }
}

/// rename (files and directories, into themselves refused), hard and symbolic links, chmod,
/// link counts, timestamps, truncate, recursive copy and removal.
const FILE_OPS_SCRIPT: &str = r#"#!/bin/sh
cd /tmp && mkdir -p a/b && echo hello > a/f
mv a/f a/b/g && echo "moved:$(cat a/b/g)"
ln a/b/g hard && ln -s a/b/g soft && echo "soft:$(cat soft)"
echo "target:$(readlink soft)"
chmod 600 hard && stat -c '%a %h %s' a/b/g
touch -d '2020-01-02 03:04:05' a/b/g && date -r a/b/g '+%Y-%m-%d %H:%M:%S'
truncate -s 3 a/b/g && echo "trunc:$(cat a/b/g)"
mv a c && ls -R c
cp -r c d && rm -r c && echo "copied:$(ls d/b)"
mv d d/b 2>&1 | head -1
mkdir -p x/y && rmdir x 2>&1 | sed 's/.*rmdir/rmdir/'
echo end
"#;

/// Handlers run and return to the interrupted code (rt_sigreturn); default actions terminate
/// with the right wait status; `wait` wakes on SIGCHLD (rt_sigsuspend).
const SIGNALS_SCRIPT: &str = r#"#!/bin/sh
trap "echo got USR1" USR1
kill -USR1 $$
echo after-usr1
trap "echo got TERM" TERM
kill $$
echo after-term
trap - TERM
sleep 5 &
kill $!
wait $!
echo "sleep status $?"
sh -c 'kill -ABRT $$'
echo "child status $(($? - 128))"
echo end
"#;

/// The tests that run on `arch` and whose name contains `filter`.
pub fn select(arch: Arch, filter: Option<&str>) -> impl Iterator<Item = &'static GuestTest> + '_ {
    all().filter(move |t| t.runs_on(arch) && filter.is_none_or(|f| t.name.contains(f)))
}

/// Every guest test: the table, the fault-injection tests generated from the server table, and
/// the disk file system's (`ext2.rs`).
pub fn all() -> impl Iterator<Item = &'static GuestTest> {
    TESTS.iter().chain(crate::faults::tests().iter()).chain(crate::ext2::tests().iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: GuestTest = GuestTest { name: "t", expect: &["a", "b"], forbid: &["oops"], ..GuestTest::DEFAULT };

    #[test]
    fn the_table_is_well_formed() {
        let mut problems: Vec<String> = all().flat_map(GuestTest::lint).collect();
        let mut names: Vec<&str> = all().map(|t| t.name).collect();
        names.sort();
        for w in names.windows(2) {
            if w[0] == w[1] {
                problems.push(format!("{}: duplicate name", w[0]));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_initial_tests_exist() {
        for name in ["boot-banner", "initramfs-overlay", "page-fault-report", "timer-ticks"] {
            let t = TESTS.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(t.arches, BOTH);
        }
        let pf = TESTS.iter().find(|t| t.name == "page-fault-report").unwrap();
        assert!(pf.expect_poweroff.is_some_and(|c| c != 0));
        assert!(!pf.forbidden().contains(&"CPU EXCEPTION"));
        assert!(pf.forbidden().contains(&"NUCLEUS PANIC"));
    }

    #[test]
    fn check_verdicts() {
        assert_eq!(T.check("a\r\nb\r\n@@POWEROFF 0\r\n", Some(0)), Ok(()));
        assert!(T.check("b a", Some(0)).unwrap_err().contains("not after"));
        assert!(T.check("a", Some(0)).unwrap_err().contains("missing \"b\""));
        assert!(T.check("a b oops", Some(0)).unwrap_err().contains("forbidden \"oops\""));
        assert!(T.check("a b NUCLEUS PANIC", Some(0)).unwrap_err().contains("NUCLEUS PANIC"));
        assert!(T.check("a b\n@@TEST-FAIL x: y", Some(0)).unwrap_err().contains("@@TEST-FAIL"));
        assert_eq!(T.check("a b", Some(1)).unwrap_err(), "powered off with code 1, expected 0");
        assert_eq!(T.check("a b", None).unwrap_err(), "no @@POWEROFF line");
        let any = GuestTest { expect_poweroff: None, ..T };
        assert_eq!(any.check("a b", Some(7)), Ok(()));
        assert!(any.check("a b", None).is_err());
    }

    #[test]
    fn lint_catches_mistakes() {
        let one = GuestTest { arches: &[Arch::X86_64], ..T };
        assert!(one.lint().iter().any(|p| p.contains("why_one_arch")));
        let explained = GuestTest { why_one_arch: Some("PVH only"), ..one };
        assert!(explained.lint().is_empty(), "{:?}", explained.lint());
        assert!(GuestTest { name: "Bad Name", ..T }.lint().len() == 1);
        assert!(!GuestTest { overlay: &[("../x", "", false)], ..T }.lint().is_empty());
        assert!(!GuestTest { expect: &["@@POWEROFF 1"], ..T }.lint().is_empty());
        assert!(!GuestTest { forbid: &["a"], ..T }.lint().is_empty());
    }

    #[test]
    fn selection() {
        assert_eq!(select(Arch::X86_64, None).count(), all().filter(|t| t.runs_on(Arch::X86_64)).count());
        let names: Vec<&str> = select(Arch::Aarch64, Some("ipc-")).map(|t| t.name).collect();
        assert!(names.iter().all(|n| n.contains("ipc-")) && !names.is_empty());
        assert_eq!(select(Arch::X86_64, Some("no-such-test")).count(), 0);
    }
}
