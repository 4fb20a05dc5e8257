//! QEMU command lines per architecture: the single source of truth, used by the guest tests,
//! the interactive runner (`just qemu-x86`, `just qemu-arm64`) and later the benchmarks.
//!
//! Invariants of every command line built here:
//! * TCG only: never `-accel kvm` / `-enable-kvm` (the machines we run on have no KVM, and
//!   results must not depend on it);
//! * the guest console is the first serial port on QEMU's stdio (`signal=off`: ^C goes to the
//!   guest); `-monitor none`, so that every byte on stdin goes to the guest; `-nographic`;
//! * `-no-reboot`: a triple fault or reset ends QEMU instead of looping;
//! * one way to power off per architecture: `isa-debug-exit` on x86_64 (QEMU's status is
//!   `(code << 1) | 1`), semihosting `SYS_EXIT` (status = code) or PSCI `SYSTEM_OFF` (status 0)
//!   on AArch64. The authoritative code is the guest's `@@POWEROFF <code>` line, not QEMU's
//!   exit status;
//! * no default network card (`-nic none`); devices are added explicitly via `extra_args`
//!   ([`QemuConfig::attach_disk`] for a virtio-blk disk, [`QemuConfig::attach_trace_stream`]
//!   for the trace port).
//!
//! `extra_args` come last, so they can add devices (disks, a second serial port for traces) and
//! override earlier options where QEMU lets the last one win (`-smp`, `-m`, `-icount`).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// Both architectures, in the order the tests run them.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The canonical name (also the `build/<arch>/` directory and the Rust target prefix).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Accepts the canonical names and the usual aliases (`x86`, `amd64`, `arm64`).
    pub fn parse(s: &str) -> Option<Arch> {
        match s {
            "x86_64" | "x86" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" | "arm" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The QEMU system emulator for this architecture.
    pub fn qemu_program(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// Where the justfile leaves the bootable kernel, relative to the workspace root: the ELF
    /// with a PVH note on x86_64, the raw Linux `Image` on AArch64.
    pub fn default_kernel(self) -> PathBuf {
        match self {
            Arch::X86_64 => "target/x86_64-unknown-none/release/kernel".into(),
            Arch::Aarch64 => "build/aarch64/Image".into(),
        }
    }

    /// The base root file system directory (`qemu/rootfs.sh`), relative to the workspace root.
    pub fn default_rootfs(self) -> PathBuf {
        PathBuf::from("build").join(self.name()).join("rootfs")
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One QEMU invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuConfig {
    pub arch: Arch,
    pub kernel: PathBuf,
    /// The initial root file system (cpio newc), if any.
    pub initrd: Option<PathBuf>,
    /// The kernel command line (passed even when empty).
    pub append: String,
    /// Appended after everything else.
    pub extra_args: Vec<OsString>,
    /// Guest RAM in QEMU's syntax (`512M`, `1G`).
    pub memory: String,
    /// Number of CPUs.
    pub smp: u32,
}

impl QemuConfig {
    /// The standard machine for `arch`: 512 MiB, one CPU, no initrd, empty command line.
    pub fn new(arch: Arch, kernel: impl Into<PathBuf>) -> QemuConfig {
        QemuConfig {
            arch,
            kernel: kernel.into(),
            initrd: None,
            append: String::new(),
            extra_args: Vec::new(),
            memory: "512M".into(),
            smp: 1,
        }
    }

    pub fn program(&self) -> &'static str {
        self.arch.qemu_program()
    }

    /// The arguments (without the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(OsString::from));
        match self.arch {
            Arch::X86_64 => push(&["-M", "pc", "-cpu", "max"]),
            Arch::Aarch64 => push(&["-M", "virt", "-cpu", "cortex-a57"]),
        }
        push(&["-m", &self.memory, "-smp", &self.smp.to_string()]);
        // The console: stdio with signal=off, so that ^C reaches the guest's tty (and its
        // foreground process group) instead of stopping QEMU.
        push(&["-nographic", "-no-reboot", "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]);
        push(&["-monitor", "none", "-nic", "none"]);
        match self.arch {
            Arch::X86_64 => push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]),
            Arch::Aarch64 => push(&["-semihosting-config", "enable=on,target=native"]),
        }
        a.push("-kernel".into());
        a.push(self.kernel.clone().into());
        if let Some(i) = &self.initrd {
            a.push("-initrd".into());
            a.push(i.clone().into());
        }
        a.push("-append".into());
        a.push(self.append.clone().into());
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// Attaches the raw image `path` as a virtio-blk disk (after the other extra arguments):
    /// `virtio-blk-pci` on x86_64; `virtio-blk-device` on AArch64's virtio-mmio, in its modern
    /// (version 2) form.
    pub fn attach_disk(&mut self, path: &std::path::Path, read_only: bool) {
        let mut drive = OsString::from("file=");
        drive.push(path);
        drive.push(",if=none,format=raw,id=d0");
        if read_only {
            drive.push(",readonly=on");
        }
        self.extra_args.extend(["-drive".into(), drive, "-device".into()]);
        match self.arch {
            Arch::X86_64 => self.extra_args.push("virtio-blk-pci,drive=d0".into()),
            Arch::Aarch64 => self.extra_args.extend([
                "virtio-blk-device,drive=d0".into(),
                "-global".into(),
                "virtio-mmio.force-legacy=false".into(),
            ]),
        }
    }

    /// Connects the guest's trace port to the Unix socket `path`, where the caller listens:
    /// the trace stream arrives there and what the caller writes reaches the nucleus's control
    /// channel (`nucleus::control`). The same devices as [`Self::attach_trace_stream`]; QEMU
    /// connects at start, so the caller binds the socket first.
    /// With `listen`, QEMU makes the socket and listens itself (for a person connecting later,
    /// `run --control`); what the guest streams before anyone connects is dropped.
    pub fn attach_host_port(&mut self, path: &std::path::Path, listen: bool) {
        let sock = path.to_string_lossy().replace(',', ",,");
        let server = if listen { ",server=on,wait=off" } else { "" };
        self.extra_args.extend(["-chardev".into(), format!("socket,id=host,path={sock}{server}").into()]);
        self.attach_virtio_console("host");
    }

    /// Streams the guest's trace records into the file `path` (after the other extra
    /// arguments): a virtio console (`virtconsole` on port 0 of `virtio-serial-pci` on x86_64,
    /// of `virtio-serial-device` on AArch64's virtio-mmio, both modern transports), which the
    /// nucleus takes as its trace port at boot. QEMU truncates the file.
    pub fn attach_trace_stream(&mut self, path: &std::path::Path) {
        let file = path.to_string_lossy().replace(',', ",,");
        self.extra_args.extend(["-chardev".into(), format!("file,id=trace,path={file}").into()]);
        self.attach_virtio_console("trace");
    }

    /// The trace port's device: a virtio console on character device `chardev`.
    fn attach_virtio_console(&mut self, chardev: &str) {
        let console = format!("virtconsole,chardev={chardev}");
        match self.arch {
            // `ioeventfd=off`: QEMU then takes a notification in the vCPU's own thread, so a
            // transmit is complete when the notifying write returns, as on virtio-mmio; with
            // an event fd the main loop takes it later and the guest polls for buffers (under
            // icount, ~18,000 instructions per page instead of ~900).
            Arch::X86_64 => self
                .extra_args
                .extend(["-device", "virtio-serial-pci,ioeventfd=off", "-device", &console].map(OsString::from)),
            Arch::Aarch64 => self.extra_args.extend(
                ["-device", "virtio-serial-device", "-device", &console, "-global", "virtio-mmio.force-legacy=false"]
                    .map(OsString::from),
            ),
        }
    }

    /// The command, ready to spawn (stdio not configured: that is the runner's business).
    pub fn command(&self) -> Command {
        let mut c = Command::new(self.program());
        c.args(self.args());
        c
    }

    /// The command line as a shell would need it typed (for logs and `run --dry-run`).
    pub fn display(&self) -> String {
        let mut s = self.program().to_string();
        for a in self.args() {
            s.push(' ');
            s.push_str(&shell_quote(&a));
        }
        s
    }
}

/// Quotes `arg` for a POSIX shell when it needs it.
pub fn shell_quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(q: &QemuConfig) -> Vec<String> {
        q.args().iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn has_pair(args: &[String], a: &str, b: &str) -> bool {
        args.windows(2).any(|w| w[0] == a && w[1] == b)
    }

    #[test]
    fn x86_64_command_line() {
        let mut q = QemuConfig::new(Arch::X86_64, "target/x86_64-unknown-none/release/kernel");
        q.initrd = Some("build/x86_64/initramfs.cpio".into());
        let c = q.command();
        assert_eq!(c.get_program(), "qemu-system-x86_64");
        assert_eq!(
            strs(&q),
            [
                "-M",
                "pc",
                "-cpu",
                "max",
                "-m",
                "512M",
                "-smp",
                "1",
                "-nographic",
                "-no-reboot",
                "-chardev",
                "stdio,id=console,signal=off",
                "-serial",
                "chardev:console",
                "-monitor",
                "none",
                "-nic",
                "none",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-kernel",
                "target/x86_64-unknown-none/release/kernel",
                "-initrd",
                "build/x86_64/initramfs.cpio",
                "-append",
                "",
            ]
        );
    }

    #[test]
    fn aarch64_command_line() {
        let mut q = QemuConfig::new(Arch::Aarch64, "build/aarch64/Image");
        q.append = "test=ticks quiet".into();
        q.memory = "1G".into();
        q.smp = 2;
        q.extra_args = vec!["-icount".into(), "shift=0".into()];
        let a = strs(&q);
        assert_eq!(q.program(), "qemu-system-aarch64");
        assert_eq!(&a[..4], ["-M", "virt", "-cpu", "cortex-a57"]);
        assert!(has_pair(&a, "-semihosting-config", "enable=on,target=native"));
        assert!(has_pair(&a, "-m", "1G"));
        assert!(has_pair(&a, "-smp", "2"));
        assert!(has_pair(&a, "-append", "test=ticks quiet"));
        assert!(has_pair(&a, "-kernel", "build/aarch64/Image"));
        assert!(!a.iter().any(|x| x == "-initrd"));
        assert!(!a.iter().any(|x| x.contains("isa-debug-exit")));
        assert_eq!(&a[a.len() - 2..], ["-icount", "shift=0"], "extra args come last");
    }

    #[test]
    fn disks() {
        let mut q = QemuConfig::new(Arch::X86_64, "k");
        q.attach_disk(std::path::Path::new("/tmp/d.img"), false);
        let a = strs(&q);
        assert!(has_pair(&a, "-drive", "file=/tmp/d.img,if=none,format=raw,id=d0"));
        assert!(has_pair(&a, "-device", "virtio-blk-pci,drive=d0"));
        let mut q = QemuConfig::new(Arch::Aarch64, "k");
        q.attach_disk(std::path::Path::new("d.img"), true);
        let a = strs(&q);
        assert!(has_pair(&a, "-drive", "file=d.img,if=none,format=raw,id=d0,readonly=on"));
        assert!(has_pair(&a, "-device", "virtio-blk-device,drive=d0"));
        assert!(has_pair(&a, "-global", "virtio-mmio.force-legacy=false"));
    }

    #[test]
    fn trace_streams() {
        let mut q = QemuConfig::new(Arch::X86_64, "k");
        q.attach_trace_stream(std::path::Path::new("build/t.bin"));
        let a = strs(&q);
        assert!(has_pair(&a, "-serial", "chardev:console"), "the console stays the first serial port");
        assert!(has_pair(&a, "-chardev", "file,id=trace,path=build/t.bin"));
        assert!(has_pair(&a, "-device", "virtio-serial-pci,ioeventfd=off"));
        assert!(has_pair(&a, "-device", "virtconsole,chardev=trace"));
        let mut q = QemuConfig::new(Arch::Aarch64, "k");
        q.attach_trace_stream(std::path::Path::new("a,b.bin"));
        let a = strs(&q);
        assert!(has_pair(&a, "-chardev", "file,id=trace,path=a,,b.bin"));
        assert!(has_pair(&a, "-device", "virtio-serial-device"));
        assert!(has_pair(&a, "-device", "virtconsole,chardev=trace"));
    }

    #[test]
    fn never_kvm_and_monitor_off() {
        for arch in Arch::ALL {
            let a = strs(&QemuConfig::new(arch, "k"));
            assert!(!a.iter().any(|x| x.contains("kvm") || x == "-accel"), "{a:?}");
            assert!(has_pair(&a, "-monitor", "none"));
            assert!(has_pair(&a, "-serial", "chardev:console"));
            assert!(a.iter().any(|x| x == "-no-reboot"));
        }
    }

    #[test]
    fn display_quotes() {
        let mut q = QemuConfig::new(Arch::X86_64, "/k");
        q.append = "a b".into();
        let d = q.display();
        assert!(d.starts_with("qemu-system-x86_64 -M pc "), "{d}");
        assert!(d.ends_with("-kernel /k -append 'a b'"), "{d}");
        assert_eq!(shell_quote(OsStr::new("")), "''");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
    }

    #[test]
    fn arch_names() {
        for a in Arch::ALL {
            assert_eq!(Arch::parse(a.name()), Some(a));
        }
        assert_eq!(Arch::parse("arm64"), Some(Arch::Aarch64));
        assert_eq!(Arch::parse("x86"), Some(Arch::X86_64));
        assert_eq!(Arch::parse("riscv64"), None);
    }
}
