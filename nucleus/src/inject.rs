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

/// Called from the timer tick (interrupts masked): fires due injections.
pub fn on_tick() {
    let now = arch::timer::now_ns();
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
    let d = Pending { server, kind, at_ns: 0 };
    let st = sched::lock();
    let victim =
        st.tasks.iter().flatten().find(|t| t.spec == Some(d.server) && t.state != TaskState::Dead).map(|t| t.id.index);
    if let Some(v) = victim {
        crate::trace::record(ipc::trace::TraceKind::FaultInject, v, 0, d.kind as u32, 0, 0, 0);
    }
    let cause = match d.kind {
        FaultKind::Kill => DeathCause::Killed,
        FaultKind::BadAccess => DeathCause::Fault { name: "injected bad access", pc: 0, addr: 0 },
    };
    match victim {
        Some(v) => death::kill(st, v, cause),
        None => drop(st),
    }
}
