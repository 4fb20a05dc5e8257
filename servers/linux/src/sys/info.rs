//! Time and system information: uname, clocks, sleeping, randomness, resource limits, sysinfo.

use crate::process::write_bytes;
use crate::{Ctx, Linux, Outcome};
use abi::Errno;

/// Wall-clock time at boot (seconds since the epoch) until an RTC driver reads the real one.
const BOOT_EPOCH_S: u64 = 1_795_000_000;

/// The text of a generated `/proc` file, made at read time.
pub fn generated(l: &Linux, g: crate::fs::Generated) -> alloc::string::String {
    use crate::fs::Generated;
    let m = l.k.mem_stats();
    let kib = |frames: usize| frames as u64 * 4;
    match g {
        Generated::Mounts => "rootfs / rootfs rw 0 0\n".into(),
        Generated::Meminfo => alloc::format!(
            "MemTotal: {:>12} kB\nMemFree: {:>13} kB\nMemAvailable: {:>8} kB\nBuffers: {:>13} kB\nCached: {:>14} kB\nSwapTotal: {:>11} kB\nSwapFree: {:>12} kB\n",
            kib(m.frames_total), kib(m.frames_free), kib(m.frames_free), 0, 0, 0, 0
        ),
        Generated::Uptime => {
            let ns = l.k.now_ns();
            alloc::format!("{}.{:02} 0.00\n", ns / 1_000_000_000, (ns / 10_000_000) % 100)
        }
        Generated::Version => "Linux version 6.1.0-cairn (Cairn capability microkernel) #1 SMP\n".into(),
        Generated::ServerStatus(i) => {
            let spec = l.k.servers().get(i);
            match (spec, l.k.server_info(i)) {
                (Some(s), Some(info)) => {
                    let policy = match s.policy {
                        server_rt::RestartPolicy::Transparent => "transparent",
                        server_rt::RestartPolicy::Reset => "reset",
                        server_rt::RestartPolicy::Never => "never",
                    };
                    let death = info.last_death.map_or(alloc::string::String::from("none"), |d| alloc::format!("{d}"));
                    alloc::format!(
                        "name: {}\nstate: {}\ninstance: {}\nrestarts: {}\npolicy: {}\nin-flight: {}\nlast-death: {}\ndma-pages: {}\n",
                        s.name,
                        match (info.alive, info.instance) {
                            (true, _) => "running",
                            (false, 0) => "not started",
                            (false, _) => "dead",
                        },
                        info.instance,
                        info.instance.saturating_sub(1),
                        policy,
                        info.in_flight,
                        death,
                        info.dma_pages
                    )
                }
                _ => "no such server\n".into(),
            }
        }
    }
}

/// Wall-clock seconds (file timestamps, `time`).
pub fn wall_seconds(l: &Linux) -> u64 {
    BOOT_EPOCH_S + l.k.now_ns() / 1_000_000_000
}

pub fn uname(l: &mut Linux, c: &Ctx) -> Outcome {
    let mut buf = [0u8; 65 * 6];
    let machine = match abi::syscall::CURRENT {
        abi::syscall::Arch::X86_64 => "x86_64",
        abi::syscall::Arch::Aarch64 => "aarch64",
    };
    for (i, s) in ["Linux", "cairn", "6.1.0-cairn", "#1 SMP Cairn", machine, "(none)"].iter().enumerate() {
        buf[i * 65..i * 65 + s.len()].copy_from_slice(s.as_bytes());
    }
    write_bytes(l, c.pid, c.args[0], &buf).map(|_| 0).into()
}

fn now(l: &Linux, clock: u64) -> (i64, i64) {
    let ns = l.k.now_ns();
    let s = match clock {
        0 | 8 | 11 => BOOT_EPOCH_S + ns / 1_000_000_000, // REALTIME, REALTIME_ALARM, TAI
        _ => ns / 1_000_000_000,
    };
    (s as i64, (ns % 1_000_000_000) as i64)
}

fn timespec(v: (i64, i64)) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&v.0.to_le_bytes());
    b[8..].copy_from_slice(&v.1.to_le_bytes());
    b
}

pub fn clock_gettime(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[0] > 11 {
        return Errno::EINVAL.into();
    }
    let t = timespec(now(l, c.args[0]));
    write_bytes(l, c.pid, c.args[1], &t).map(|_| 0).into()
}

pub fn gettimeofday(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[0] != 0 {
        let (s, ns) = now(l, 0);
        if let Err(e) = write_bytes(l, c.pid, c.args[0], &timespec((s, ns / 1000))) {
            return e.into();
        }
    }
    Outcome::Done(0)
}

pub fn time(l: &mut Linux, c: &Ctx) -> Outcome {
    let (s, _) = now(l, 0);
    if c.args[0] != 0 {
        if let Err(e) = write_bytes(l, c.pid, c.args[0], &s.to_le_bytes()) {
            return e.into();
        }
    }
    Outcome::Done(s)
}

fn sleep_until(l: &mut Linux, c: &Ctx, ts_ptr: u64) -> Outcome {
    let b = match crate::process::read_bytes(l, c.pid, ts_ptr, 16) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let s = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let ns = i64::from_le_bytes(b[8..].try_into().unwrap_or_default());
    if s < 0 || !(0..1_000_000_000).contains(&ns) {
        return Errno::EINVAL.into();
    }
    let dur = (s as u64).saturating_mul(1_000_000_000).saturating_add(ns as u64);
    if l.k.now_ns() >= c.started_ns.saturating_add(dur) {
        Outcome::Done(0)
    } else {
        Outcome::Block
    }
}

pub fn nanosleep(l: &mut Linux, c: &Ctx) -> Outcome {
    sleep_until(l, c, c.args[0])
}

pub fn clock_nanosleep(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[1] & 1 != 0 {
        // TIMER_ABSTIME: compare against the clock itself.
        let b = match crate::process::read_bytes(l, c.pid, c.args[2], 16) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        let s = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
        let ns = i64::from_le_bytes(b[8..].try_into().unwrap_or_default());
        let (ns_now_s, ns_now) = now(l, c.args[0]);
        return if (ns_now_s, ns_now) >= (s, ns) { Outcome::Done(0) } else { Outcome::Block };
    }
    sleep_until(l, c, c.args[2])
}

pub fn getrandom(l: &mut Linux, c: &Ctx) -> Outcome {
    let len = (c.args[1] as usize).min(1 << 20);
    let mut x = l.k.now_ns() ^ 0x2545_f491_4f6c_dd1d ^ c.args[0];
    let mut buf = alloc::vec![0u8; len];
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    write_bytes(l, c.pid, c.args[0], &buf).map(|_| len as i64).into()
}

fn rlimit(resource: u64) -> Option<(u64, u64)> {
    const INF: u64 = u64::MAX;
    Some(match resource {
        3 => (8 << 20, INF), // STACK
        7 => (1024, 1024),   // NOFILE
        0..=15 => (INF, INF),
        _ => return None,
    })
}

pub fn prlimit64(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[0] != 0 && c.args[0] != c.pid as u64 {
        return Errno::ESRCH.into();
    }
    let Some((cur, max)) = rlimit(c.args[1]) else { return Errno::EINVAL.into() };
    if c.args[3] != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&cur.to_le_bytes());
        b[8..].copy_from_slice(&max.to_le_bytes());
        if let Err(e) = write_bytes(l, c.pid, c.args[3], &b) {
            return e.into();
        }
    }
    Outcome::Done(0)
}

pub fn getrlimit(l: &mut Linux, c: &Ctx) -> Outcome {
    let c2 = Ctx { args: [0, c.args[0], 0, c.args[1], 0, 0], ..*c };
    prlimit64(l, &c2)
}

pub fn sysinfo(l: &mut Linux, c: &Ctx) -> Outcome {
    let stats = l.k.mem_stats();
    let mut b = [0u8; 112];
    b[..8].copy_from_slice(&(l.k.now_ns() / 1_000_000_000).to_le_bytes());
    b[32..40].copy_from_slice(&(stats.frames_total as u64).to_le_bytes());
    b[40..48].copy_from_slice(&(stats.frames_free as u64).to_le_bytes());
    b[80..82].copy_from_slice(&(l.procs.len() as u16).to_le_bytes());
    b[104..108].copy_from_slice(&4096u32.to_le_bytes());
    write_bytes(l, c.pid, c.args[0], &b).map(|_| 0).into()
}
