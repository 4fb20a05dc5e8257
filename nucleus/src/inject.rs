//! Fault injection: requests to make a server suffer a fault at a chosen time, checked on every
//! timer tick. Killing from the tick handler exercises the hardest case, death at an arbitrary
//! instruction (running, blocked, or mid-call).

use crate::death;
use crate::sched;
use crate::task::TaskState;
use server_rt::{DeathCause, FaultKind};
use spin::Mutex;

const MAX_PENDING: usize = 16;

#[derive(Clone, Copy)]
struct Pending {
    server: usize,
    kind: FaultKind,
    at_ns: u64,
}

static PENDING: Mutex<[Option<Pending>; MAX_PENDING]> = Mutex::new([None; MAX_PENDING]);

/// Random injection from the command line: `fi=<server>:<period_ms>:<seed>` kills `server` at
/// pseudo-random intervals averaging `period_ms` (uniform in [period/2, 3·period/2)), with a
/// xorshift generator seeded by `seed`, so a run is reproducible by its seed.
struct Random {
    server: usize,
    period_ns: u64,
    state: u64,
    next_ns: u64,
    fired: u64,
}

static RANDOM: Mutex<Option<Random>> = Mutex::new(None);

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Parses `fi=` (`server:period_ms:seed`); unknown servers or malformed values are reported
/// and ignored.
pub fn configure(spec: &str, servers: &[server_rt::ServerSpec]) {
    let mut parts = spec.split(':');
    let (Some(name), Some(period), seed) = (parts.next(), parts.next(), parts.next()) else {
        crate::kprintln!("fi: expected <server>:<period_ms>:<seed>, got '{spec}'");
        return;
    };
    let Some(server) = servers.iter().position(|s| s.name == name) else {
        crate::kprintln!("fi: no server named '{name}'");
        return;
    };
    let (Ok(period_ms), Ok(seed)) = (period.parse::<u64>(), seed.unwrap_or("1").parse::<u64>()) else {
        crate::kprintln!("fi: bad period or seed in '{spec}'");
        return;
    };
    crate::kprintln!("fi: killing '{name}' every ~{period_ms} ms (seed {seed})");
    set_random(server, period_ms, seed);
}

/// Starts (or, with `period_ms` 0, stops) random kills of server `server`, reproducible by
/// `seed`; replaces any earlier random injection.
pub fn set_random(server: usize, period_ms: u64, seed: u64) {
    let r = (period_ms > 0).then(|| {
        let period_ns = period_ms * 1_000_000;
        let mut state = seed.max(1);
        let first = period_ns / 2 + xorshift(&mut state) % period_ns;
        Random { server, period_ns, state, next_ns: arch::timer::now_ns() + first, fired: 0 }
    });
    arch::cpu::without_interrupts(|| *RANDOM.lock() = r);
}

/// Random injections fired so far.
pub fn random_fired() -> u64 {
    arch::cpu::without_interrupts(|| RANDOM.lock().as_ref().map_or(0, |r| r.fired))
}

pub fn schedule(server: usize, kind: FaultKind, after_ns: u64) -> bool {
    let at_ns = arch::timer::now_ns().saturating_add(after_ns);
    arch::cpu::without_interrupts(|| {
        let mut p = PENDING.lock();
        match p.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(Pending { server, kind, at_ns });
                true
            }
            None => false,
        }
    })
}

/// How long a server may hold a request without answering before it counts as hung.
pub const HANG_DEADLINE_NS: u64 = 2_000_000_000;

/// A server that has held a caller's request past the deadline without answering, while not
/// waiting for requests itself (so a server that deliberately defers replies, like `linux`
/// with blocked system calls, is never hung) and not waiting for a reply from another server
/// (the one at the end of such a chain is the hung one), is killed as hung; the supervisor
/// restarts it.
fn check_hung() {
    let now = crate::time::ticks();
    let deadline = HANG_DEADLINE_NS / (1_000_000_000 / crate::TICK_HZ as u64);
    let st = sched::lock();
    let mut hung = None;
    for t in st.tasks.iter().flatten() {
        let TaskState::BlockedReply { endpoint, .. } = t.state else { continue };
        if t.user.is_some() || now.saturating_sub(t.call_started_tick) < deadline {
            continue;
        }
        let server = st.endpoints.get(endpoint).and_then(|e| e.as_ref()).and_then(|e| e.server);
        if let Some(s) = server {
            let busy = st.tasks[s.index].as_ref().is_some_and(|x| {
                !matches!(x.state, TaskState::BlockedReceive { .. } | TaskState::BlockedReply { .. } | TaskState::Dead)
                    && x.spec.is_some()
            });
            if busy {
                hung = Some((s.index, (now - t.call_started_tick) * 1000 / crate::TICK_HZ as u64));
                break;
            }
        }
    }
    match hung {
        Some((victim, ms)) => death::kill(st, victim, DeathCause::Hung { ms }),
        None => drop(st),
    }
}

/// Called from the timer tick (interrupts masked): fires due injections.
pub fn on_tick() {
    let now = arch::timer::now_ns();
    if !cfg!(feature = "nosupervise") {
        check_hung();
    }
    let random = {
        let mut r = RANDOM.lock();
        match r.as_mut() {
            Some(r) if now >= r.next_ns => {
                r.next_ns = now + r.period_ns / 2 + xorshift(&mut r.state) % r.period_ns;
                r.fired += 1;
                Some(r.server)
            }
            _ => None,
        }
    };
    if let Some(server) = random {
        fire(server, FaultKind::Kill);
    }
    let due = {
        let mut p = PENDING.lock();
        let Some(slot) = p.iter_mut().find(|s| s.is_some_and(|s| s.at_ns <= now)) else { return };
        slot.take()
    };
    if let Some(d) = due {
        fire(d.server, d.kind);
    }
}

/// Applies a fault to the live instance of `server` now (nothing if none is alive). If that
/// instance is the caller, this does not return.
pub fn fire(server: usize, kind: FaultKind) {
    arch::cpu::without_interrupts(|| fire_locked_out(server, kind))
}

fn fire_locked_out(server: usize, kind: FaultKind) {
    let mut st = sched::lock();
    let victim =
        st.tasks.iter().flatten().find(|t| t.spec == Some(server) && t.state != TaskState::Dead).map(|t| t.id.index);
    let Some(v) = victim else { return };
    crate::trace::record(ipc::trace::TraceKind::FaultInject, v, 0, kind as u32, 0, 0, 0);
    match kind {
        FaultKind::Kill => death::kill(st, v, DeathCause::Killed),
        _ => {
            // Suffered by the server itself at its next entry into the nucleus; a server
            // waiting for requests is woken for it.
            st.task(v).pending_fault = Some(kind);
            ANY_PENDING.store(true, core::sync::atomic::Ordering::Relaxed);
            if matches!(st.task(v).state, TaskState::BlockedReceive { .. }) {
                st.make_ready(v);
            }
        }
    }
}

/// Set while some task has an injected fault pending: keeps [`checkpoint`] to one load on the
/// IPC paths when nothing is injected.
static ANY_PENDING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Called at the nucleus entries servers use (receive, call, reply, grants, state): an injected
/// fault pending for the current task happens now, in its context.
#[inline]
pub fn checkpoint() {
    if !cfg!(feature = "nosupervise") && ANY_PENDING.load(core::sync::atomic::Ordering::Relaxed) {
        checkpoint_slow();
    }
}

#[cold]
fn checkpoint_slow() {
    let cur = sched::current();
    let kind = arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let kind = st.tasks[cur].as_mut().and_then(|t| t.pending_fault.take());
        let more = st.tasks.iter().flatten().any(|t| t.pending_fault.is_some());
        ANY_PENDING.store(more, core::sync::atomic::Ordering::Relaxed);
        kind
    });
    match kind {
        None | Some(FaultKind::Kill) => {}
        Some(FaultKind::Panic) => panic!("injected panic"),
        Some(FaultKind::BadAccess) => bad_access(),
        Some(FaultKind::Hang) => loop {
            sched::sleep_ns(u64::MAX / 2);
        },
    }
}

/// A read of an unmapped kernel address by the current task: the CPU fault kills it.
pub fn bad_access() -> ! {
    // SAFETY: deliberately invalid; the fault is charged to (and kills) the current server.
    let v = unsafe { core::ptr::read_volatile(crate::selftest::UNMAPPED_KERNEL_ADDRESS as *const u64) };
    panic!("bad access read {v:#x} instead of faulting");
}
