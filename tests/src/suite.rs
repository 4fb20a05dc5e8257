//! Runs one guest test on one architecture: builds its initramfs (base root file system plus
//! the test's overlay files) at `build/<arch>/tests/<name>.cpio` and, if it has one, its disk
//! image at `build/<arch>/tests/<name>.img`, boots QEMU with them, judges the transcript (and
//! checks the image afterwards), and writes `build/test-logs/<arch>-<name>.log`.
//!
//! The verdict is the first of: the initramfs or QEMU could not be made/started; the deadline
//! passed; QEMU hung after `@@POWEROFF`; QEMU exited without `@@POWEROFF` (an abnormal end:
//! triple fault, QEMU error); the table entry's own checks ([`GuestTest::check`]); the disk
//! image's check ([`crate::guest::DiskSpec::check`]); the trace stream's check
//! ([`GuestTest::trace_stream`], on `build/<arch>/tests/<name>.trace`).

use crate::guest::GuestTest;
use crate::qemu::{Arch, QemuConfig};
use crate::runner::{End, Guest, Input, Options, Outcome};
use crate::transcript;
use std::fmt::Write as _;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long QEMU may keep running after the guest printed `@@POWEROFF`.
pub const POWEROFF_GRACE: Duration = Duration::from_secs(10);
/// Lines of transcript shown with a failure.
pub const TAIL_LINES: usize = 30;
/// Pause between the bytes of a test's console input.
const INPUT_PAUSE: Duration = Duration::from_millis(20);

/// Where things are, for every test of a run.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Bootable kernel per architecture.
    pub kernel_x86: PathBuf,
    pub kernel_arm: PathBuf,
    /// Base root file system directory per architecture (missing = empty).
    pub rootfs_x86: PathBuf,
    pub rootfs_arm: PathBuf,
    /// The `build/` directory: initramfs images and logs go below it.
    pub build_dir: PathBuf,
    /// Overrides every test's timeout (`CAIRN_TEST_TIMEOUT`).
    pub timeout: Option<Duration>,
}

impl Setup {
    /// The defaults, relative to `root` (the workspace root).
    pub fn defaults(root: &Path) -> Setup {
        Setup {
            kernel_x86: root.join(Arch::X86_64.default_kernel()),
            kernel_arm: root.join(Arch::Aarch64.default_kernel()),
            rootfs_x86: root.join(Arch::X86_64.default_rootfs()),
            rootfs_arm: root.join(Arch::Aarch64.default_rootfs()),
            build_dir: root.join("build"),
            timeout: None,
        }
    }

    pub fn kernel(&self, arch: Arch) -> &Path {
        match arch {
            Arch::X86_64 => &self.kernel_x86,
            Arch::Aarch64 => &self.kernel_arm,
        }
    }

    pub fn rootfs(&self, arch: Arch) -> &Path {
        match arch {
            Arch::X86_64 => &self.rootfs_x86,
            Arch::Aarch64 => &self.rootfs_arm,
        }
    }

    pub fn initramfs_path(&self, arch: Arch, t: &GuestTest) -> PathBuf {
        self.build_dir.join(arch.name()).join("tests").join(format!("{}.cpio", t.name))
    }

    pub fn disk_path(&self, arch: Arch, t: &GuestTest) -> PathBuf {
        self.build_dir.join(arch.name()).join("tests").join(format!("{}.img", t.name))
    }

    pub fn trace_path(&self, arch: Arch, t: &GuestTest) -> PathBuf {
        self.build_dir.join(arch.name()).join("tests").join(format!("{}.trace", t.name))
    }

    pub fn log_path(&self, arch: Arch, t: &GuestTest) -> PathBuf {
        self.build_dir.join("test-logs").join(format!("{}-{}.log", arch.name(), t.name))
    }

    pub fn timeout_for(&self, t: &GuestTest) -> Duration {
        self.timeout.unwrap_or(t.timeout)
    }
}

/// Parses `CAIRN_TEST_TIMEOUT` (seconds, may be fractional): `Ok(None)` when unset.
pub fn timeout_from_env() -> Result<Option<Duration>, String> {
    match std::env::var("CAIRN_TEST_TIMEOUT") {
        Err(_) => Ok(None),
        Ok(s) if s.trim().is_empty() => Ok(None),
        Ok(s) => {
            parse_seconds(&s).map(Some).ok_or_else(|| format!("CAIRN_TEST_TIMEOUT={s:?} is not a number of seconds"))
        }
    }
}

/// `"90"`, `"2.5"` → a positive duration.
pub fn parse_seconds(s: &str) -> Option<Duration> {
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| Duration::from_secs_f64(v))
}

/// Writes the test's initramfs: the base directory (if it exists) plus the overlay files.
/// Returns the number of members.
pub fn build_initramfs(t: &GuestTest, base: &Path, out: &Path) -> io::Result<usize> {
    let mut tree = qemu_tools::cpio::Tree::new();
    if base.exists() {
        tree.add_dir_tree(base)?;
    }
    for (path, contents, exec) in t.overlay {
        tree.add_file(path, contents.as_bytes(), if *exec { 0o755 } else { 0o644 })?;
    }
    tree.write_file(out)?;
    Ok(tree.len())
}

/// Writes a fresh disk image for `t` (if it has a disk) at `path`; `base` is the root file
/// system directory (for a disk that holds the root file system).
pub fn build_disk(t: &GuestTest, path: &Path, base: &Path) -> io::Result<()> {
    let Some(d) = t.disk else { return Ok(()) };
    let mut img = vec![0u8; d.mib as usize * 1024 * 1024];
    if d.root_fs {
        crate::ext2::root_image(&mut img, base, t.overlay);
    } else if let Some(fill) = d.fill {
        fill(&mut img);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, img)
}

/// Runs the disk's post-run check on the image at `path`.
pub fn check_disk(t: &GuestTest, path: &Path) -> Result<(), String> {
    let Some(check) = t.disk.and_then(|d| d.check) else { return Ok(()) };
    let img = std::fs::read(path).map_err(|e| format!("cannot read the disk image {}: {e}", path.display()))?;
    check(&img).map_err(|why| format!("disk image: {why}"))
}

/// The result of one test on one architecture.
#[derive(Clone, Debug)]
pub struct TestResult {
    pub name: &'static str,
    pub arch: Arch,
    /// `None` when it passed.
    pub failure: Option<String>,
    pub elapsed: Duration,
    /// The last lines of the transcript and of QEMU's stderr (for failure reports).
    pub tail: String,
    pub log: PathBuf,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// `PASS x86_64 boot-banner (1.3 s)` or `FAIL ... (2.0 s): reason`, then the tail and the
    /// log's path for a failure.
    pub fn report(&self) -> String {
        let head = format!("{} {} ({:.1} s)", self.arch, self.name, self.elapsed.as_secs_f64());
        match &self.failure {
            None => format!("PASS {head}"),
            Some(why) => {
                let mut s = format!("FAIL {head}: {why}\n");
                s.push_str(&self.tail);
                let _ = write!(s, "    log: {}", self.log.display());
                s
            }
        }
    }
}

/// Runs `t` on `arch`.
pub fn run_test(t: &'static GuestTest, arch: Arch, setup: &Setup) -> TestResult {
    let start = Instant::now();
    let log = setup.log_path(arch, t);
    let fail = |why: String, tail: String| TestResult {
        name: t.name,
        arch,
        failure: Some(why),
        elapsed: start.elapsed(),
        tail,
        log: log.clone(),
    };
    let initrd = setup.initramfs_path(arch, t);
    if let Err(e) = build_initramfs(t, setup.rootfs(arch), &initrd) {
        let why = format!("cannot build the initramfs: {e}");
        write_log(&log, t, arch, "", &format!("FAIL: {why}"), None);
        return fail(why, String::new());
    }
    let kernel = setup.kernel(arch);
    if !kernel.is_file() {
        let why = format!("kernel not found: {} (build it with `just kernel {arch}`)", kernel.display());
        write_log(&log, t, arch, "", &format!("FAIL: {why}"), None);
        return fail(why, String::new());
    }
    let mut q = QemuConfig::new(arch, kernel);
    q.initrd = Some(initrd);
    q.append = t.append.to_string();
    let disk = setup.disk_path(arch, t);
    if let Some(d) = t.disk {
        if let Err(e) = build_disk(t, &disk, setup.rootfs(arch)) {
            let why = format!("cannot make the disk image: {e}");
            write_log(&log, t, arch, "", &format!("FAIL: {why}"), None);
            return fail(why, String::new());
        }
        q.attach_disk(&disk, d.read_only);
    }
    let trace = setup.trace_path(arch, t);
    let _ = std::fs::remove_file(&trace);
    let host_port = match host_port_listen(setup, arch, t) {
        Ok(Some((listener, sock))) => {
            q.attach_host_port(&sock, false);
            Some((listener, sock))
        }
        Ok(None) => {
            if t.trace_stream.is_some() {
                q.attach_trace_stream(&trace);
            }
            None
        }
        Err(e) => {
            let why = format!("cannot listen for the host port: {e}");
            write_log(&log, t, arch, "", &format!("FAIL: {why}"), None);
            return fail(why, String::new());
        }
    };
    let timeout = setup.timeout_for(t);
    let opts = Options { stdin: if t.input.is_empty() { Input::Null } else { Input::Piped }, ..Options::default() };
    let mut guest = match Guest::spawn(q.command(), opts) {
        Ok(g) => g,
        Err(e) => {
            let why = format!("cannot start {}: {e}", q.program());
            write_log(&log, t, arch, &q.display(), &format!("FAIL: {why}"), None);
            return fail(why, String::new());
        }
    };
    if let (false, Some(mut pipe)) = (t.input.is_empty(), guest.take_stdin()) {
        let watch = guest.watch();
        let steps = t.input;
        std::thread::spawn(move || {
            use std::io::Write as _;
            // Each step waits for its marker in the output that came after the previous step.
            let mut from = 0;
            for (marker, text) in steps {
                let Some(at) = watch.wait_until_contains_after(from, marker, timeout) else { return };
                from = at;
                for b in text.bytes() {
                    if pipe.write_all(&[b]).and_then(|_| pipe.flush()).is_err() {
                        return;
                    }
                    std::thread::sleep(INPUT_PAUSE);
                }
            }
            // Keep the pipe open until QEMU is gone (end of file would mean nothing to it).
            let _ = watch.wait_until_contains("\u{0}never\u{0}", timeout);
        });
    }
    if let Some((listener, _)) = &host_port {
        match listener.try_clone() {
            Ok(l) => serve_host_port(l, guest.watch(), t.host_control, trace.clone(), timeout),
            Err(e) => eprintln!("{}: host port: {e}", t.name),
        }
    }
    let out = guest.wait(Some(timeout), POWEROFF_GRACE);
    drop(guest);
    if let Some((_, sock)) = &host_port {
        let _ = std::fs::remove_file(sock);
    }
    let failure = judge(t, &out, timeout)
        .or_else(|| check_disk(t, &disk).err())
        .or_else(|| check_stream(t, &out.transcript, &trace).err());
    let verdict = match &failure {
        None => "PASS".to_string(),
        Some(why) => format!("FAIL: {why}"),
    };
    write_log(&log, t, arch, &q.display(), &verdict, Some(&out));
    let mut tail = transcript::tail(&out.transcript, TAIL_LINES, "    | ");
    if !out.stderr.trim().is_empty() {
        tail.push_str(&transcript::tail(&out.stderr, 10, "    qemu stderr: "));
    }
    TestResult { name: t.name, arch, failure, elapsed: start.elapsed(), tail, log }
}

/// For a test with `host_control` lines: a listening socket for QEMU's end of the trace port
/// (in the temporary directory: socket paths are short), and its path.
fn host_port_listen(setup: &Setup, arch: Arch, t: &GuestTest) -> io::Result<Option<(UnixListener, PathBuf)>> {
    if t.host_control.is_empty() {
        return Ok(None);
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&setup.build_dir, &mut hasher);
    let tag = std::hash::Hasher::finish(&hasher) % 1_000_000;
    let sock = std::env::temp_dir().join(format!("cairn-{}-{tag}-{}-{}.sock", std::process::id(), arch.name(), t.name));
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)?;
    listener.set_nonblocking(true)?;
    Ok(Some((listener, sock)))
}

/// Takes QEMU's connection to the host port, saves what the guest streams to `trace`, and
/// sends each control line once its marker shows on the console.
fn serve_host_port(
    listener: UnixListener,
    watch: crate::runner::Watch,
    steps: &'static [(&'static str, &'static str)],
    trace: PathBuf,
    timeout: Duration,
) {
    std::thread::spawn(move || {
        use std::io::Write as _;
        let deadline = Instant::now() + timeout;
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => return,
            }
        };
        let _ = stream.set_nonblocking(false);
        if let (Ok(mut from_guest), Ok(mut file)) = (stream.try_clone(), std::fs::File::create(&trace)) {
            std::thread::spawn(move || {
                let _ = io::copy(&mut from_guest, &mut file);
            });
        }
        let mut from = 0;
        for (marker, line) in steps {
            let Some(at) = watch.wait_until_contains_after(from, marker, timeout) else { return };
            from = at;
            if stream.write_all(format!("{line}\n").as_bytes()).is_err() {
                return;
            }
        }
    });
}

/// Runs the test's check of its trace stream on the file at `path`.
pub fn check_stream(t: &GuestTest, transcript: &str, path: &Path) -> Result<(), String> {
    let Some(check) = t.trace_stream else { return Ok(()) };
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the trace stream {}: {e}", path.display()))?;
    check(transcript, &bytes).map_err(|why| format!("trace stream: {why}"))
}

/// The reason a finished run fails, if it does.
pub fn judge(t: &GuestTest, out: &Outcome, timeout: Duration) -> Option<String> {
    let checked = t.check(&out.transcript, out.poweroff);
    let also = |e: &Result<(), String>| match e {
        Err(why) if why != "no @@POWEROFF line" => format!("; {why}"),
        _ => String::new(),
    };
    match out.end {
        End::Timeout => Some(format!("timed out after {:.0} s{}", timeout.as_secs_f64(), also(&checked))),
        End::HungAfterPowerOff => Some(format!(
            "QEMU did not exit within {} s of @@POWEROFF {}",
            POWEROFF_GRACE.as_secs(),
            out.poweroff.unwrap_or_default()
        )),
        End::Exited if out.poweroff.is_none() => {
            let qemu_said = out.stderr.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!(" ({})", l.trim()));
            Some(format!(
                "QEMU exited ({}) without @@POWEROFF{}{}",
                out.status_text(),
                qemu_said.unwrap_or_default(),
                also(&checked)
            ))
        }
        End::Exited => checked.err(),
    }
}

fn write_log(path: &Path, t: &GuestTest, arch: Arch, command: &str, verdict: &str, out: Option<&Outcome>) {
    let mut s = String::new();
    let _ = writeln!(s, "# test: {} ({arch})", t.name);
    let _ = writeln!(s, "# command: {command}");
    let _ = writeln!(s, "# result: {verdict}");
    if let Some(o) = out {
        let poweroff = o.poweroff.map_or("none".to_string(), |c| c.to_string());
        let _ = writeln!(
            s,
            "# elapsed: {:.1} s; end: {:?}; qemu: {}; @@POWEROFF: {poweroff}",
            o.elapsed.as_secs_f64(),
            o.end,
            o.status_text()
        );
        let _ = writeln!(s, "# ---- serial console ----");
        s.push_str(&o.transcript);
        if !o.transcript.is_empty() && !o.transcript.ends_with('\n') {
            s.push('\n');
        }
        if !o.stderr.is_empty() {
            let _ = writeln!(s, "# ---- qemu stderr ----");
            s.push_str(&o.stderr);
        }
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(path, s) {
        eprintln!("guest-tests: cannot write {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qemu_tools::cpio::Reader;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cairn-suite-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_seconds(" 2.5 "), Some(Duration::from_millis(2500)));
        assert_eq!(parse_seconds("0"), None);
        assert_eq!(parse_seconds("-3"), None);
        assert_eq!(parse_seconds("soon"), None);
    }

    #[test]
    fn initramfs_is_base_plus_overlay() {
        let d = tmp("initramfs");
        let base = d.join("rootfs");
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::write(base.join("etc/hostname"), "cairn\n").unwrap();
        std::fs::write(base.join("init"), "old").unwrap();
        let t = GuestTest {
            name: "x",
            overlay: &[("etc/hello.txt", "hello from the host\n", false), ("/init", "#!/bin/sh\n", true)],
            expect: &["x"],
            ..GuestTest::DEFAULT
        };
        let out = d.join("build/x86_64/tests/x.cpio");
        assert_eq!(build_initramfs(&t, &base, &out).unwrap(), 4);
        let bytes = std::fs::read(&out).unwrap();
        let e = Reader::read_all(&bytes).unwrap();
        let got: Vec<(&str, u32, &[u8])> = e.iter().map(|e| (e.name, e.perm(), e.data)).collect();
        assert_eq!(
            got,
            [
                ("etc", 0o755, &b""[..]),
                ("etc/hello.txt", 0o644, b"hello from the host\n"),
                ("etc/hostname", 0o644, b"cairn\n"),
                ("init", 0o755, b"#!/bin/sh\n"),
            ]
        );
        // A missing base is an empty one.
        let out2 = d.join("y.cpio");
        assert_eq!(build_initramfs(&t, &d.join("missing"), &out2).unwrap(), 3);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn paths() {
        let s = Setup::defaults(Path::new("/ws"));
        let t = GuestTest { name: "boot-banner", ..GuestTest::DEFAULT };
        assert_eq!(s.initramfs_path(Arch::Aarch64, &t), Path::new("/ws/build/aarch64/tests/boot-banner.cpio"));
        assert_eq!(s.log_path(Arch::X86_64, &t), Path::new("/ws/build/test-logs/x86_64-boot-banner.log"));
        assert_eq!(s.kernel(Arch::X86_64), Path::new("/ws/target/x86_64-unknown-none/release/kernel"));
        assert_eq!(s.kernel(Arch::Aarch64), Path::new("/ws/build/aarch64/Image"));
        assert_eq!(s.rootfs(Arch::Aarch64), Path::new("/ws/build/aarch64/rootfs"));
        let s2 = Setup { timeout: Some(Duration::from_secs(5)), ..s };
        assert_eq!(s2.timeout_for(&t), Duration::from_secs(5));
    }

    fn outcome(end: End, transcript: &str, stderr: &str) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        Outcome {
            end,
            status: Some(std::process::ExitStatus::from_raw(1 << 8)),
            poweroff: transcript::last_poweroff(transcript),
            transcript: transcript.into(),
            stderr: stderr.into(),
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn verdicts() {
        let t = GuestTest { name: "t", expect: &["Cairn", "@@POWEROFF 0"], ..GuestTest::DEFAULT };
        let d = Duration::from_secs(120);
        assert_eq!(judge(&t, &outcome(End::Exited, "Cairn\r\n@@POWEROFF 0\r\n", ""), d), None);
        assert_eq!(
            judge(&t, &outcome(End::Timeout, "Cairn\r\n", ""), d).unwrap(),
            "timed out after 120 s; missing \"@@POWEROFF 0\" (expected after \"Cairn\")"
        );
        assert_eq!(
            judge(&t, &outcome(End::Exited, "", "qemu-system-x86_64: Error loading uncompressed kernel\n"), d).unwrap(),
            "QEMU exited (exit 1) without @@POWEROFF (qemu-system-x86_64: Error loading uncompressed kernel); missing \"Cairn\""
        );
        assert!(judge(&t, &outcome(End::HungAfterPowerOff, "Cairn\n@@POWEROFF 0\n", ""), d)
            .unwrap()
            .contains("did not exit"));
        assert_eq!(
            judge(&t, &outcome(End::Exited, "Cairn\n@@POWEROFF 2\n", ""), d).unwrap(),
            "missing \"@@POWEROFF 0\" (expected after \"Cairn\")"
        );
    }
}
