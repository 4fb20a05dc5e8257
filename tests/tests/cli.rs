//! The `run` and `guest-tests` binaries end to end, with a fake `qemu-system-x86_64` (a shell
//! script) first on PATH: argument handling, passthrough, stdin forwarding with the final ^D,
//! exit codes, per-test initramfs and logs, and the summary line.

use qemu_tools::cpio::Reader;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Fake {
    dir: PathBuf,
}

impl Fake {
    /// A temporary directory holding `qemu-system-x86_64` with the given body.
    fn new(tag: &str, body: &str) -> Fake {
        let dir = std::env::temp_dir().join(format!("cairn-cli-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        let qemu = dir.join("bin/qemu-system-x86_64");
        fs::write(&qemu, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&qemu, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("kernel"), "not really a kernel").unwrap();
        Fake { dir }
    }

    fn cmd(&self, exe: &str) -> Command {
        let mut c = Command::new(exe);
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", self.dir.join("bin").display()));
        c.env_remove("CAIRN_TEST_TIMEOUT");
        c
    }

    fn kernel(&self) -> PathBuf {
        self.dir.join("kernel")
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn run_with_input(mut c: Command, input: &[u8]) -> Output {
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const RUN: &str = env!("CARGO_BIN_EXE_run");
const GUEST_TESTS: &str = env!("CARGO_BIN_EXE_guest-tests");

/// A fake that reads `$N` bytes of input, shows them, and powers off with code 3.
const ECHO_INPUT: &str = r#"printf 'Cairn\r\n/ # '
od -An -c -N "$N" | tr -s ' '
printf '\r\n@@POWEROFF 3\r\n'
exit 7"#;

#[test]
fn run_forwards_input_then_eof_and_exits_with_the_code() {
    let f = Fake::new("run-input", ECHO_INPUT);
    for (input, n, shown) in [(&b"ls\n"[..], 4, " l s \\n 004"), (b"ls", 4, " l s \\n 004"), (b"", 1, " 004")] {
        let mut c = f.cmd(RUN);
        c.env("N", n.to_string()).args(["--arch", "x86_64", "--kernel"]).arg(f.kernel());
        let out = run_with_input(c, input);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "input {input:?}: {stdout:?} {}", text(&out.stderr));
        assert!(stdout.starts_with("Cairn\r\n/ # "), "{stdout:?}");
        assert!(stdout.contains(shown), "input {input:?}: {stdout:?}");
        assert!(stdout.ends_with("\r\n@@POWEROFF 3\r\n"), "passthrough is unchanged: {stdout:?}");
    }
}

#[test]
fn run_without_poweroff_is_125() {
    let f = Fake::new("run-125", "echo 'qemu-system-x86_64: something broke' >&2; exit 1");
    let mut c = f.cmd(RUN);
    c.args(["--arch", "x86_64", "--kernel"]).arg(f.kernel());
    let out = run_with_input(c, b"");
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(err.contains("something broke") && err.contains("without @@POWEROFF"), "{err}");
}

#[test]
fn run_passes_arguments_and_extra_qemu_args() {
    let f = Fake::new("run-args", r#"for a in "$@"; do printf '[%s]' "$a"; done; echo; echo '@@POWEROFF 0'"#);
    let initrd = f.dir.join("initrd.cpio");
    fs::write(&initrd, "").unwrap();
    let mut c = f.cmd(RUN);
    c.args(["--arch", "x86", "--kernel"]).arg(f.kernel()).arg("--initrd").arg(&initrd);
    c.args(["--append", "test=ticks x=1", "--smp", "2", "--", "-icount", "shift=1"]);
    let out = run_with_input(c, b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in ["[-append][test=ticks x=1]", "[-smp][2]", "[-monitor][none]", "[-icount][shift=1]\n"] {
        assert!(s.contains(want), "{want} in {s}");
    }
    assert!(s.contains(&format!("[-initrd][{}]", initrd.display())), "{s}");
}

#[test]
fn run_usage_errors_and_dry_run() {
    let f = Fake::new("run-usage", "exit 0");
    let out = run_with_input(f.cmd(RUN), b"");
    assert_eq!(out.status.code(), Some(2));
    let mut c = f.cmd(RUN);
    c.args(["--arch", "sparc", "--kernel", "k"]);
    assert_eq!(run_with_input(c, b"").status.code(), Some(2));
    let mut c = f.cmd(RUN);
    c.args(["--arch", "aarch64", "--kernel", "/nonexistent/Image"]);
    let out = run_with_input(c, b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("kernel not found"));
    let mut c = f.cmd(RUN);
    c.args(["--arch", "aarch64", "--kernel", "Image", "--append", "a b", "--dry-run"]);
    let out = run_with_input(c, b"");
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert!(s.starts_with("qemu-system-aarch64 -M virt -cpu cortex-a57 ") && s.contains("-append 'a b'"), "{s}");
}

#[test]
fn run_timeout_is_124() {
    let f = Fake::new("run-timeout", "echo started; exec sleep 300");
    let mut c = f.cmd(RUN);
    c.args(["--arch", "x86_64", "--timeout", "0.5", "--kernel"]).arg(f.kernel());
    let start = std::time::Instant::now();
    let out = run_with_input(c, b"");
    assert_eq!(out.status.code(), Some(124));
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

/// A fake kernel+QEMU that prints what `boot-banner` expects when the initrd has an `init`.
const FAKE_BOOT: &str = r#"initrd=
while [ $# -gt 0 ]; do [ "$1" = -initrd ] && initrd=$2; shift; done
printf 'Cairn 0.1.0 (fake)\r\nmemory map (1 region):\r\nframes: 1\r\n'
if [ -s "$initrd" ]; then printf 'init-ran\r\n'; fi
printf '@@POWEROFF 0\r\n'
exit 1"#;

fn guest_tests(f: &Fake, build: &Path, extra: &[&str]) -> Output {
    let mut c = f.cmd(GUEST_TESTS);
    c.args(["--arch", "x86_64", "--kernel-x86"]).arg(f.kernel());
    c.arg("--rootfs-x86").arg(f.dir.join("no-rootfs")).arg("--build-dir").arg(build);
    c.args(extra);
    run_with_input(c, b"")
}

#[test]
fn guest_tests_pass_and_write_logs() {
    let f = Fake::new("gt-pass", FAKE_BOOT);
    let build = f.dir.join("build");
    let out = guest_tests(&f, &build, &["--filter", "boot-banner"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("PASS x86_64 boot-banner ("), "{stdout}");
    assert_eq!(lines.last(), Some(&"1 passed, 0 failed"));
    let cpio = fs::read(build.join("x86_64/tests/boot-banner.cpio")).unwrap();
    let names: Vec<String> = Reader::read_all(&cpio).unwrap().iter().map(|e| e.name.to_string()).collect();
    assert_eq!(names, ["init"]);
    let log = fs::read_to_string(build.join("test-logs/x86_64-boot-banner.log")).unwrap();
    assert!(log.contains("# result: PASS") && log.contains("init-ran\r\n@@POWEROFF 0"), "{log}");
}

#[test]
fn guest_tests_report_failures() {
    let f = Fake::new("gt-fail", "echo 'Cairn'; echo 'qemu-system-x86_64: cannot boot' >&2; exit 1");
    let build = f.dir.join("build");
    let out = guest_tests(&f, &build, &["--filter", "timer-ticks"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("FAIL x86_64 timer-ticks ("), "{stdout}");
    assert!(stdout.contains("without @@POWEROFF (qemu-system-x86_64: cannot boot)"), "{stdout}");
    assert!(stdout.contains("    | Cairn\n"), "tail of the transcript: {stdout}");
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed"));
}

#[test]
fn guest_tests_timeout_from_the_environment() {
    let f = Fake::new("gt-timeout", "echo Cairn; exec sleep 300");
    let build = f.dir.join("build");
    let mut c = f.cmd(GUEST_TESTS);
    c.env("CAIRN_TEST_TIMEOUT", "0.5").args(["--arch", "x86_64", "--filter", "heap", "--kernel-x86"]).arg(f.kernel());
    c.arg("--build-dir").arg(&build);
    let start = std::time::Instant::now();
    let out = run_with_input(c, b"");
    let stdout = text(&out.stdout);
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert!(stdout.contains("timed out after 0 s") || stdout.contains("timed out after 1 s"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed"));
}

#[test]
fn guest_tests_missing_kernel_and_bad_usage() {
    let f = Fake::new("gt-usage", "exit 0");
    let build = f.dir.join("build");
    let mut c = f.cmd(GUEST_TESTS);
    c.args(["--arch", "aarch64", "--filter", "boot-banner", "--kernel-arm", "/nonexistent/Image", "--build-dir"]);
    c.arg(&build);
    let out = run_with_input(c, b"");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("kernel not found: /nonexistent/Image"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("0 passed, 1 failed"));
    let out = guest_tests(&f, &build, &["--filter", "no-such-test"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().last(), Some("0 passed, 0 failed"));
    let out = guest_tests(&f, &build, &["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let out = guest_tests(&f, &build, &["--list"]);
    assert!(text(&out.stdout).lines().any(|l| l == "x86_64 boot-banner"));
}
