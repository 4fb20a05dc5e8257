//! Time and system information: uname, clocks, sleeping, randomness, resource limits
//! (getrlimit, setrlimit, prlimit64), CPU time (getrusage, times), scheduling (sched_yield,
//! affinity, priorities), sysinfo.

use crate::process::{read_bytes, write_bytes, Rlimit, RLIMIT_NOFILE, RLIM_NLIMITS};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;

/// Wall-clock seconds (file timestamps, `time`).
pub fn wall_seconds(l: &Linux) -> u64 {
    l.k.realtime_ns() / 1_000_000_000
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

/// The clocks that read the real-time clock: REALTIME, REALTIME_COARSE, REALTIME_ALARM, TAI
/// (bit `n` = clock `n`).
const REALTIME_CLOCKS: u16 = 1 << 0 | 1 << 5 | 1 << 8 | 1 << 11;
/// The clocks Linux knows by number: 0..=11 but 10 (CLOCK_SGI_CYCLE, gone); the CPU-time
/// clocks of other processes and threads (negative ids) are not here (EINVAL).
const KNOWN_CLOCKS: u16 = 0x0fff & !(1 << 10);
/// Every other known clock reads the monotonic one, the CPU-time clocks of the caller too.
const MONOTONIC_CLOCKS: u16 = KNOWN_CLOCKS & !REALTIME_CLOCKS;

/// clock_gettime as the nucleus may answer it for every thread (`publish_identity`): the same
/// clocks as [`now`], so that both answers agree.
pub fn clock_call() -> Option<(u32, server_rt::ClockCall)> {
    let nr = abi::syscall::number(abi::syscall::CURRENT, "clock_gettime")? as u32;
    Some((nr, server_rt::ClockCall { monotonic: MONOTONIC_CLOCKS, realtime: REALTIME_CLOCKS }))
}

fn now(l: &Linux, clock: u64) -> (i64, i64) {
    let ns = if clock < 16 && REALTIME_CLOCKS & 1 << clock != 0 { l.k.realtime_ns() } else { l.k.now_ns() };
    ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
}

fn timespec(v: (i64, i64)) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&v.0.to_le_bytes());
    b[8..].copy_from_slice(&v.1.to_le_bytes());
    b
}

fn known_clock(clock: u64) -> bool {
    clock < 16 && KNOWN_CLOCKS & 1 << clock != 0
}

pub fn clock_gettime(l: &mut Linux, c: &Ctx) -> Outcome {
    if !known_clock(c.args[0]) {
        return Errno::EINVAL.into();
    }
    let t = timespec(now(l, c.args[0]));
    write_bytes(l, c.pid, c.args[1], &t).map(|_| 0).into()
}

/// Every clock here reads the same nanosecond counter, coarse ones included: 1 ns.
pub fn clock_getres(l: &mut Linux, c: &Ctx) -> Outcome {
    if !known_clock(c.args[0]) {
        return Errno::EINVAL.into();
    }
    if c.args[1] == 0 {
        return Outcome::Done(0);
    }
    write_bytes(l, c.pid, c.args[1], &timespec((0, 1))).map(|_| 0).into()
}

pub fn gettimeofday(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[0] != 0 {
        let (s, ns) = now(l, 0);
        if let Err(e) = write_bytes(l, c.pid, c.args[0], &timespec((s, ns / 1000))) {
            return e.into();
        }
    }
    // The time zone, if asked for: Linux's default (UTC, no DST), as the vDSO answers.
    if c.args[1] != 0 {
        if let Err(e) = write_bytes(l, c.pid, c.args[1], &[0u8; 8]) {
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

/// A `struct timespec` from user memory, in ns (EINVAL if it is negative or not normalized).
pub fn read_timespec(l: &Linux, pid: Pid, va: u64) -> Result<u64, Errno> {
    timespec_ns(&read_bytes(l, pid, va, 16)?)
}

/// The 16 bytes of a `struct timespec`, in ns (EINVAL if negative or not normalized).
pub fn timespec_ns(b: &[u8]) -> Result<u64, Errno> {
    let s = i64::from_le_bytes(b.get(..8).and_then(|w| w.try_into().ok()).unwrap_or_default());
    let ns = i64::from_le_bytes(b.get(8..16).and_then(|w| w.try_into().ok()).unwrap_or_default());
    if s < 0 || !(0..1_000_000_000).contains(&ns) {
        return Err(Errno::EINVAL);
    }
    Ok((s as u64).saturating_mul(1_000_000_000).saturating_add(ns as u64))
}

/// A CLOCK_REALTIME instant (ns since the epoch) as monotonic time.
pub fn realtime_to_monotonic(l: &Linux, ns: u64) -> u64 {
    let offset = l.k.realtime_ns().saturating_sub(l.k.now_ns());
    ns.saturating_sub(offset)
}

/// When a relative sleep of request `c` ends (the timespec at `ts_ptr`).
fn sleep_end(l: &Linux, c: &Ctx, ts_ptr: u64) -> Result<u64, Errno> {
    Ok(c.started_ns.saturating_add(read_timespec(l, c.pid, ts_ptr)?))
}

fn sleep_until(l: &mut Linux, c: &Ctx, ts_ptr: u64) -> Outcome {
    match sleep_end(l, c, ts_ptr) {
        Ok(end) if l.k.now_ns() >= end => Outcome::Done(0),
        Ok(_) => Outcome::Block,
        Err(e) => e.into(),
    }
}

/// A sleep interrupted by a handler: nanosleep and relative clock_nanosleep report the time
/// left in `rem` (if given).
pub fn interrupted_sleep(l: &mut Linux, c: &Ctx, name: &str) {
    let (ts, rem) = match name {
        "nanosleep" => (c.args[0], c.args[1]),
        "clock_nanosleep" if c.args[1] & 1 == 0 => (c.args[2], c.args[3]),
        _ => return,
    };
    if rem == 0 {
        return;
    }
    if let Ok(end) = sleep_end(l, c, ts) {
        let left = end.saturating_sub(l.k.now_ns());
        let _ = write_bytes(l, c.pid, rem, &timespec(((left / 1_000_000_000) as i64, (left % 1_000_000_000) as i64)));
    }
}

pub fn nanosleep(l: &mut Linux, c: &Ctx) -> Outcome {
    sleep_until(l, c, c.args[0])
}

pub fn clock_nanosleep(l: &mut Linux, c: &Ctx) -> Outcome {
    match c.args[0] {
        3 => return Errno::EINVAL.into(),     // CLOCK_THREAD_CPUTIME_ID, as on Linux
        2 => return Errno::EOPNOTSUPP.into(), // sleeping on CPU time: not here (caveats)
        c if !known_clock(c) => return Errno::EINVAL.into(),
        _ => {}
    }
    if c.args[1] & !1 != 0 {
        return Errno::EINVAL.into();
    }
    if c.args[1] & 1 != 0 {
        // TIMER_ABSTIME: compare against the clock itself.
        let t = match read_timespec(l, c.pid, c.args[2]) {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
        let (s, ns) = now(l, c.args[0]);
        return if (s as u64) * 1_000_000_000 + ns as u64 >= t { Outcome::Done(0) } else { Outcome::Block };
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

fn encode_rlimit(r: Rlimit) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&r.0.to_le_bytes());
    b[8..].copy_from_slice(&r.1.to_le_bytes());
    b
}

/// The most a hard limit on open files may be (fs.nr_open).
const NR_OPEN: u64 = crate::files::MAX_FDS as u64;

/// prlimit64(pid, resource, new, old): the limits of the caller or of a process it may act on
/// (same real uid, or root); raising a hard limit needs root; soft above hard is EINVAL.
pub fn prlimit64(l: &mut Linux, c: &Ctx) -> Outcome {
    let [pid, resource, new, old, ..] = c.args;
    let pid = if pid == 0 { c.pid } else { pid as Pid };
    if resource >= RLIM_NLIMITS as u64 {
        return Errno::EINVAL.into();
    }
    let r = resource as usize;
    let Some(me) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let root = me.creds.euid == 0;
    let my_uid = me.creds.ruid;
    let Some(target) = l.procs.get(&pid).filter(|p| !p.is_zombie()) else { return Errno::ESRCH.into() };
    if pid != c.pid && !root && target.creds.ruid != my_uid {
        return Errno::EPERM.into();
    }
    let cur = target.rlimits[r];
    let wanted = if new != 0 {
        let b = match read_bytes(l, c.pid, new, 16) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        let soft = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
        let hard = u64::from_le_bytes(b[8..].try_into().unwrap_or_default());
        if soft > hard {
            return Errno::EINVAL.into();
        }
        if hard > cur.1 && !root {
            return Errno::EPERM.into();
        }
        if r == RLIMIT_NOFILE && hard > NR_OPEN {
            return Errno::EPERM.into();
        }
        Some((soft, hard))
    } else {
        None
    };
    if old != 0 {
        if let Err(e) = write_bytes(l, c.pid, old, &encode_rlimit(cur)) {
            return e.into();
        }
    }
    if let (Some(w), Some(p)) = (wanted, l.procs.get_mut(&pid)) {
        p.rlimits[r] = w;
        if r == RLIMIT_NOFILE {
            p.fds.limit = w.0.min(NR_OPEN) as usize;
        }
    }
    Outcome::Done(0)
}

pub fn getrlimit(l: &mut Linux, c: &Ctx) -> Outcome {
    let c2 = Ctx { args: [0, c.args[0], 0, c.args[1], 0, 0], ..*c };
    prlimit64(l, &c2)
}

pub fn setrlimit(l: &mut Linux, c: &Ctx) -> Outcome {
    let c2 = Ctx { args: [0, c.args[0], c.args[1], 0, 0, 0], ..*c };
    prlimit64(l, &c2)
}

/// The CPU time of process `pid` so far: its exited threads' and its live threads'.
fn own_times(l: &Linux, pid: Pid, tid: Option<Pid>) -> (u64, u64) {
    let Some(p) = l.procs.get(&pid) else { return (0, 0) };
    let mut t = if tid.is_some() { (0, 0) } else { (p.times.utime, p.times.stime) };
    for th in p.threads.iter().filter(|th| tid.is_none_or(|x| x == th.tid)) {
        let (u, s) = l.k.thread_times(th.r);
        t.0 += u;
        t.1 += s;
    }
    t
}

/// getrusage(who, usage): RUSAGE_SELF, RUSAGE_CHILDREN (waited-for children), RUSAGE_THREAD.
/// Only the times are kept; the other fields are zero.
pub fn getrusage(l: &mut Linux, c: &Ctx) -> Outcome {
    let (u, s) = match c.args[0] as i64 {
        0 => own_times(l, c.pid, None),
        -1 => l.procs.get(&c.pid).map_or((0, 0), |p| (p.times.cutime, p.times.cstime)),
        1 => own_times(l, c.pid, Some(c.tid)),
        _ => return Errno::EINVAL.into(),
    };
    let mut b = [0u8; 144];
    for (off, ns) in [(0, u), (16, s)] {
        b[off..off + 8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        b[off + 8..off + 16].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
    }
    write_bytes(l, c.pid, c.args[1], &b).map(|_| 0).into()
}

/// times(buf): CPU times in clock ticks (100 Hz); returns the ticks since boot.
pub fn times(l: &mut Linux, c: &Ctx) -> Outcome {
    let tick = 10_000_000;
    if c.args[0] != 0 {
        let (u, s) = own_times(l, c.pid, None);
        let (cu, cs) = l.procs.get(&c.pid).map_or((0, 0), |p| (p.times.cutime, p.times.cstime));
        let mut b = [0u8; 32];
        for (i, v) in [u, s, cu, cs].iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&(v / tick).to_le_bytes());
        }
        if let Err(e) = write_bytes(l, c.pid, c.args[0], &b) {
            return e.into();
        }
    }
    Outcome::Done((l.k.now_ns() / tick) as i64)
}

/// sched_yield: the caller gives up the CPU before it runs again.
pub fn sched_yield(l: &mut Linux, c: &Ctx) -> Outcome {
    l.k.thread_yield(c.thread);
    Outcome::Done(0)
}

fn pid_exists(l: &Linux, c: &Ctx, pid: u64) -> bool {
    pid == 0 || l.procs.values().any(|p| !p.is_zombie() && p.thread(pid as Pid).is_some()) || pid == c.pid as u64
}

/// sched_getaffinity(pid, size, mask): one CPU. Returns the bytes of the mask written.
pub fn sched_getaffinity(l: &mut Linux, c: &Ctx) -> Outcome {
    let [pid, size, mask, ..] = c.args;
    if !pid_exists(l, c, pid) {
        return Errno::ESRCH.into();
    }
    if size < 8 || size % 8 != 0 {
        return Errno::EINVAL.into();
    }
    write_bytes(l, c.pid, mask, &1u64.to_le_bytes()).map(|_| 8).into()
}

/// sched_setaffinity(pid, size, mask): the mask must include CPU 0 (the only one).
pub fn sched_setaffinity(l: &mut Linux, c: &Ctx) -> Outcome {
    let [pid, size, mask, ..] = c.args;
    if !pid_exists(l, c, pid) {
        return Errno::ESRCH.into();
    }
    let b = match read_bytes(l, c.pid, mask, (size as usize).clamp(1, 8)) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    if b[0] & 1 == 0 {
        return Errno::EINVAL.into();
    }
    Outcome::Done(0)
}

/// sched_getscheduler(pid): SCHED_OTHER for everyone.
pub fn sched_getscheduler(l: &mut Linux, c: &Ctx) -> Outcome {
    if (c.args[0] as i64) < 0 {
        return Errno::EINVAL.into();
    }
    if !pid_exists(l, c, c.args[0]) {
        return Errno::ESRCH.into();
    }
    Outcome::Done(0)
}

/// sched_getparam(pid, param): priority 0.
pub fn sched_getparam(l: &mut Linux, c: &Ctx) -> Outcome {
    if (c.args[0] as i64) < 0 || c.args[1] == 0 {
        return Errno::EINVAL.into();
    }
    if !pid_exists(l, c, c.args[0]) {
        return Errno::ESRCH.into();
    }
    write_bytes(l, c.pid, c.args[1], &0u32.to_le_bytes()).map(|_| 0).into()
}

/// sched_get_priority_max / _min(policy): 99 and 1 for the real-time policies, 0 otherwise.
pub fn sched_get_priority(_l: &mut Linux, c: &Ctx) -> Outcome {
    let max = abi::syscall::name(abi::syscall::CURRENT, c.nr as usize) == Some("sched_get_priority_max");
    match c.args[0] {
        1 | 2 => Outcome::Done(if max { 99 } else { 1 }), // SCHED_FIFO, SCHED_RR
        0 | 3 | 5 => Outcome::Done(0),                    // OTHER, BATCH, IDLE
        _ => Errno::EINVAL.into(),
    }
}

/// The processes getpriority/setpriority(which, who) name.
fn prio_targets(l: &Linux, c: &Ctx, which: u64, who: u64) -> Result<alloc::vec::Vec<Pid>, Errno> {
    let me = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?;
    let live = l.procs.values().filter(|p| !p.is_zombie());
    let v: alloc::vec::Vec<Pid> = match which {
        0 => {
            let pid = if who == 0 { c.pid } else { who as Pid };
            live.filter(|p| p.pid == pid || p.thread(pid).is_some()).map(|p| p.pid).collect()
        }
        1 => {
            let g = if who == 0 { me.pgid } else { who as Pid };
            live.filter(|p| p.pgid == g).map(|p| p.pid).collect()
        }
        2 => {
            let u = if who == 0 { me.creds.ruid } else { who as u32 };
            live.filter(|p| p.creds.ruid == u).map(|p| p.pid).collect()
        }
        _ => return Err(Errno::EINVAL),
    };
    if v.is_empty() {
        Err(Errno::ESRCH)
    } else {
        Ok(v)
    }
}

/// getpriority(which, who): 20 - the lowest nice value among them (the raw system call
/// value; libc turns it back into a nice value).
pub fn getpriority(l: &mut Linux, c: &Ctx) -> Outcome {
    match prio_targets(l, c, c.args[0], c.args[1]) {
        Ok(v) => Outcome::Done(20 - v.iter().filter_map(|p| l.procs.get(p)).map(|p| p.nice).min().unwrap_or(0) as i64),
        Err(e) => e.into(),
    }
}

/// setpriority(which, who, nice): clamped to -20..19; lowering it needs root (EACCES), acting
/// on another user's process too (EPERM).
pub fn setpriority(l: &mut Linux, c: &Ctx) -> Outcome {
    let targets = match prio_targets(l, c, c.args[0], c.args[1]) {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    let nice = (c.args[2] as i32).clamp(-20, 19);
    let (euid, ruid) = l.procs.get(&c.pid).map_or((0, 0), |p| (p.creds.euid, p.creds.ruid));
    let mut result = Ok(0);
    for t in targets {
        let Some(p) = l.procs.get_mut(&t) else { continue };
        if euid != 0 && p.creds.ruid != euid && p.creds.euid != euid && p.creds.ruid != ruid {
            result = Err(Errno::EPERM);
            continue;
        }
        if nice < p.nice && euid != 0 {
            result = Err(Errno::EACCES);
            continue;
        }
        p.nice = nice;
    }
    result.into()
}

pub fn sysinfo(l: &mut Linux, c: &Ctx) -> Outcome {
    let stats = l.k.mem_stats();
    let mut b = [0u8; 112];
    b[..8].copy_from_slice(&(l.k.now_ns() / 1_000_000_000).to_le_bytes());
    b[32..40].copy_from_slice(&(stats.frames_total as u64).to_le_bytes());
    b[40..48].copy_from_slice(&(stats.frames_free as u64).to_le_bytes());
    let threads: usize = l.procs.values().map(|p| p.threads.len()).sum();
    b[80..82].copy_from_slice(&(threads as u16).to_le_bytes());
    b[104..108].copy_from_slice(&4096u32.to_le_bytes());
    write_bytes(l, c.pid, c.args[0], &b).map(|_| 0).into()
}

/// reboot(magic1, magic2, cmd, arg): power-off and halt end the machine (QEMU exits); restart
/// does too, since the machine is started afresh by whoever runs it (QEMU runs with
/// -no-reboot). The Ctrl-Alt-Del switch is accepted. Root only; bad magic is EINVAL.
pub fn reboot(l: &mut Linux, c: &Ctx) -> Outcome {
    const MAGIC1: u64 = 0xfee1_dead;
    const MAGIC2: [u64; 4] = [672_274_793, 85_072_278, 369_367_448, 537_993_216];
    const CMD_RESTART: u64 = 0x0123_4567;
    const CMD_HALT: u64 = 0xcdef_0123;
    const CMD_CAD_ON: u64 = 0x89ab_cdef;
    const CMD_CAD_OFF: u64 = 0;
    const CMD_POWER_OFF: u64 = 0x4321_fedc;
    const CMD_RESTART2: u64 = 0xa1b2_c3d4;
    let [m1, m2, cmd, ..] = c.args;
    if m1 as u32 as u64 != MAGIC1 || !MAGIC2.contains(&(m2 as u32 as u64)) {
        return Errno::EINVAL.into();
    }
    if crate::process::creds(l, c.pid).is_none_or(|cr| cr.euid != 0) {
        return Errno::EPERM.into();
    }
    match cmd as u32 as u64 {
        CMD_CAD_ON | CMD_CAD_OFF => Outcome::Done(0),
        CMD_POWER_OFF | CMD_HALT | CMD_RESTART | CMD_RESTART2 => {
            server_rt::log!("linux: reboot(2) by pid {}: powering off", c.pid);
            l.k.poweroff(0)
        }
        _ => Errno::EINVAL.into(),
    }
}
