//! `run`: the interactive runner behind `just qemu-x86` / `just qemu-arm64`.
//!
//! usage: run --arch x86_64|aarch64 --kernel PATH [--initrd PATH] [--append ARGS]
//!            [--memory SIZE] [--smp N] [--disk IMAGE [--disk-read-only]] [--trace-stream FILE]
//!            [--control SOCKET] [--timeout SECONDS] [--dry-run] [-- QEMU ARGS...]
//!
//! `--disk` attaches a raw image as the guest's virtio-blk disk (`QemuConfig::attach_disk`);
//! `--trace-stream` gives the guest a trace port whose bytes land in FILE
//! (`QemuConfig::attach_trace_stream`: a virtio console on both architectures);
//! `--control` puts that port on a Unix socket QEMU listens at instead, the host's end of the
//! fault-injection channel (`socat - UNIX-CONNECT:SOCKET`, then lines like `vfs kill`).
//!
//! The guest's serial console is this process's stdin/stdout. Output is passed through
//! unchanged (byte for byte, as it arrives) while being scanned for `@@POWEROFF <code>`.
//! * stdin a terminal: QEMU reads it directly (it puts the terminal in raw mode and restores
//!   it); QEMU stays in our process group so that it may use the terminal;
//! * stdin a pipe or file (`printf 'ls\n' | run ...`): the bytes are forwarded once the kernel
//!   has printed its banner (`Cairn`: bytes sent while the firmware runs or before the kernel
//!   has set up its UART are lost), or after 60 s without one, at a modest pace (the guest
//!   UART has no flow control); at end of input a `^D` (after a newline if the input did not
//!   end with one) tells the guest's shell it is the end of file, so the guest can exit and
//!   power off. Empty input sends just the `^D`.
//!
//! Exit status: the guest's `@@POWEROFF` code; 125 (with a message on stderr) if QEMU ended
//! without one or could not be started; 124 if `--timeout` passed; 2 on a usage error. If QEMU
//! is still running 10 s after `@@POWEROFF`, it is killed (with a warning) and the code stands.
//! QEMU is killed (its process group, when it has one) when this process exits normally.

use harness::qemu::{Arch, QemuConfig};
use harness::runner::{End, Guest, Input, Options, Watch};
use harness::suite::parse_seconds;
use std::io::{IsTerminal, Read, Write};
use std::process::{exit, ChildStdin};
use std::time::Duration;

const USAGE: &str = "usage: run --arch x86_64|aarch64 --kernel PATH [--initrd PATH] [--append ARGS]
           [--memory SIZE] [--smp N] [--disk IMAGE [--disk-read-only]] [--trace-stream FILE]
           [--control SOCKET] [--timeout SECONDS] [--dry-run] [-- QEMU ARGS...]";

/// How long QEMU may keep running after `@@POWEROFF`.
const POWEROFF_GRACE: Duration = Duration::from_secs(10);
/// Forwarded input goes in slices of this many bytes...
const INPUT_SLICE: usize = 64;
/// ...with this pause after each (about 32 KB/s, a few times a 115200-baud line).
const INPUT_PAUSE: Duration = Duration::from_millis(2);
/// Forwarding starts when the console shows this (the kernel banner)...
const READY: &str = "Cairn";
/// ...or after this long.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn usage_error(why: &str) -> ! {
    eprintln!("run: {why}\n{USAGE}");
    exit(2)
}

struct Args {
    config: QemuConfig,
    timeout: Option<Duration>,
    dry_run: bool,
}

fn parse_args() -> Args {
    let mut arch = None;
    let mut kernel = None;
    let mut initrd = None;
    let mut append = String::new();
    let mut memory = None;
    let mut smp = None;
    let mut timeout = None;
    let mut dry_run = false;
    let mut disk: Option<std::path::PathBuf> = None;
    let mut disk_read_only = false;
    let mut trace_stream: Option<std::path::PathBuf> = None;
    let mut control: Option<std::path::PathBuf> = None;
    let mut extra = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(flag) = args.next() {
        let flag_s = flag.to_string_lossy().into_owned();
        let mut value = || args.next().unwrap_or_else(|| usage_error(&format!("{flag_s} needs a value")));
        match flag_s.as_str() {
            "--arch" => {
                let v = value().to_string_lossy().into_owned();
                arch = Some(Arch::parse(&v).unwrap_or_else(|| usage_error(&format!("unknown architecture {v:?}"))));
            }
            "--kernel" => kernel = Some(value()),
            "--initrd" => initrd = Some(value()),
            "--append" => append = value().to_string_lossy().into_owned(),
            "--memory" | "-m" => memory = Some(value().to_string_lossy().into_owned()),
            "--smp" => {
                let v = value().to_string_lossy().into_owned();
                smp = Some(
                    v.parse().ok().filter(|&n: &u32| n > 0).unwrap_or_else(|| usage_error(&format!("bad --smp {v:?}"))),
                );
            }
            "--timeout" => {
                let v = value().to_string_lossy().into_owned();
                timeout = Some(parse_seconds(&v).unwrap_or_else(|| usage_error(&format!("bad --timeout {v:?}"))));
            }
            "--dry-run" => dry_run = true,
            "--disk" => disk = Some(value().into()),
            "--disk-read-only" => disk_read_only = true,
            "--trace-stream" => trace_stream = Some(value().into()),
            "--control" => control = Some(value().into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            "--" => {
                extra.extend(args.by_ref());
                break;
            }
            other => usage_error(&format!("unknown option {other:?}")),
        }
    }
    let Some(arch) = arch else { usage_error("--arch is required") };
    let Some(kernel) = kernel else { usage_error("--kernel is required") };
    let mut config = QemuConfig::new(arch, kernel);
    config.initrd = initrd.map(Into::into);
    config.append = append;
    if let Some(m) = memory {
        config.memory = m;
    }
    if let Some(n) = smp {
        config.smp = n;
    }
    config.extra_args = extra;
    match disk {
        Some(d) if !d.is_file() && !dry_run => {
            eprintln!("run: disk image not found: {}", d.display());
            exit(125)
        }
        Some(d) => config.attach_disk(&d, disk_read_only),
        None if disk_read_only => usage_error("--disk-read-only needs --disk"),
        None => {}
    }
    match (trace_stream, control) {
        (Some(_), Some(_)) => usage_error("--trace-stream and --control share the trace port: pick one"),
        (Some(t), None) => config.attach_trace_stream(&t),
        (None, Some(c)) => {
            let _ = std::fs::remove_file(&c);
            config.attach_host_port(&c, true)
        }
        (None, None) => {}
    }
    Args { config, timeout, dry_run }
}

/// Copies our stdin to the guest once it is ready, paced, then the end-of-file `^D`; keeps the
/// pipe open.
fn forward_input(mut to_guest: ChildStdin, guest: Watch) {
    guest.wait_until_contains(READY, READY_TIMEOUT);
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    let mut last = None;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        last = Some(buf[n - 1]);
        for slice in buf[..n].chunks(INPUT_SLICE) {
            if to_guest.write_all(slice).and_then(|_| to_guest.flush()).is_err() {
                return; // QEMU is gone
            }
            std::thread::sleep(INPUT_PAUSE);
        }
    }
    let eof: &[u8] = if last.is_some_and(|b| b != b'\n') { b"\n\x04" } else { b"\x04" };
    let _ = to_guest.write_all(eof).and_then(|_| to_guest.flush());
    // Closing the pipe would tell the guest nothing more; keep it until we exit.
    loop {
        std::thread::park();
    }
}

fn main() {
    let a = parse_args();
    if a.dry_run {
        println!("{}", a.config.display());
        return;
    }
    for (what, p) in [("kernel", Some(&a.config.kernel)), ("initrd", a.config.initrd.as_ref())] {
        if let Some(p) = p.filter(|p| !p.is_file()) {
            eprintln!("run: {what} not found: {}", p.display());
            exit(125);
        }
    }
    let interactive = std::io::stdin().is_terminal();
    let opts = Options {
        stdin: if interactive { Input::Inherit } else { Input::Piped },
        // A background process group may not read or configure the terminal.
        own_process_group: !interactive,
        capture_stderr: false,
        echo: Some(Box::new(std::io::stdout())),
    };
    let mut guest = match Guest::spawn(a.config.command(), opts) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("run: cannot start {}: {e}", a.config.program());
            exit(125);
        }
    };
    if let Some(pipe) = guest.take_stdin() {
        let watch = guest.watch();
        std::thread::spawn(move || forward_input(pipe, watch));
    }
    let out = guest.wait(a.timeout, POWEROFF_GRACE);
    drop(guest);
    let _ = std::io::stdout().flush();
    match (out.end, out.poweroff) {
        (End::Timeout, _) => {
            eprintln!("\nrun: timed out after {:.0} s; QEMU killed", a.timeout.unwrap_or_default().as_secs_f64());
            exit(124);
        }
        (End::HungAfterPowerOff, Some(c)) => {
            eprintln!(
                "\nrun: warning: QEMU still running {} s after @@POWEROFF {c}; killed it",
                POWEROFF_GRACE.as_secs()
            );
        }
        _ => {}
    }
    match out.poweroff {
        Some(c) if (0..=255).contains(&c) => exit(c),
        Some(c) => {
            eprintln!("run: @@POWEROFF {c} does not fit an exit status; exiting with 1");
            exit(1)
        }
        None => {
            eprintln!("\nrun: QEMU ended ({}) without @@POWEROFF", out.status_text());
            exit(125)
        }
    }
}
