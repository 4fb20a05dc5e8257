//! Death as a normal event (DESIGN rule 4). Killing a task — blocked, ready, or running, for a
//! panic, a CPU fault, a stack overflow or an injected fault — marks it dead, takes it off the
//! run queue, moves its endpoint to a new generation (every capability to the dead instance is
//! now stale), completes every request waiting on that endpoint with `ServerDied`, and posts a
//! death notice for the supervisor. The devices it drove are reset at once (`device::on_death`:
//! lines masked and unbound, no more DMA). Its DMA memory, stack and arena are freed by [`reap`]
//! once it is off the CPU, because a task dying on its own stack cannot free that stack.

use crate::sched::{self, State};
use crate::task::{TaskState, IDLE, MAX_TASKS};
use core::sync::atomic::{AtomicUsize, Ordering};
use ipc::IpcError;
use server_rt::{DeathCause, DeathNotice};
use spin::MutexGuard;

/// Dead tasks queued for the reaper; lets the switch path skip the lock when there are none.
static TO_REAP: AtomicUsize = AtomicUsize::new(0);

/// Kills task slot `i` (generation-checked by callers that hold a `TaskId`). If it is the
/// current task, this does not return.
pub fn kill(mut st: MutexGuard<'static, State>, i: usize, cause: DeathCause) {
    assert!(i != IDLE, "the idle task cannot die");
    let Some(t) = st.tasks[i].as_mut() else { return };
    if t.state == TaskState::Dead {
        return;
    }
    let was_ready = t.state == TaskState::Ready;
    let priority = t.priority as usize;
    t.state = TaskState::Dead;
    t.death = Some(cause);
    let spec = t.spec;
    let id = t.id;
    // Its devices stop now (lines masked, device reset), before the reaper frees any memory
    // the devices might still write.
    crate::device::on_death(id);
    if let Some(s) = spec {
        crate::servers::record_death(s, cause);
    }
    let endpoint = t.endpoint;
    if was_ready {
        st.run_queues[priority.min(sched::PRIORITIES - 1)].remove(i);
    }

    let mut failed = 0u32;
    if let Some(e) = endpoint {
        if let Some(ep) = st.endpoints[e].as_mut() {
            ep.generation = ep.generation.wrapping_add(1).max(1);
            ep.server = None;
            while ep.queue.try_pop().is_some() {}
        }
        for c in 0..MAX_TASKS {
            let waiting = st.tasks[c]
                .as_ref()
                .is_some_and(|w| matches!(w.state, TaskState::BlockedReply { endpoint, .. } if endpoint == e));
            if waiting {
                st.task(c).reply = Some(Err(IpcError::ServerDied));
                st.make_ready(c);
                failed += 1;
            }
        }
    }
    crate::trace::record(
        ipc::trace::TraceKind::Death,
        i,
        endpoint.map_or(u32::MAX, |e| e as u32),
        spec.map_or(u32::MAX, |s| s as u32),
        0,
        failed as u64,
        0,
    );
    // The supervisor's own death is handled by the nucleus (see `reap`), not reported to it.
    let is_supervisor = spec.is_some_and(|s| crate::servers::specs().get(s).is_some_and(|s| s.supervisor));
    if let Some(server) = spec.filter(|_| !is_supervisor) {
        let instance = crate::servers::instance(server);
        post_notice(&mut st, DeathNotice { server, instance, cause, failed_requests: failed });
    }
    st.to_reap.push(i);
    TO_REAP.fetch_add(1, Ordering::Relaxed);
    if i == sched::current() {
        let next_state = TaskState::Dead;
        sched::block_current(st, next_state);
        unreachable!("a dead task was scheduled again");
    }
}

/// Kills the running task. Never returns.
pub fn kill_current(cause: DeathCause) -> ! {
    arch::cpu::disable_interrupts();
    let st = sched::lock();
    kill(st, sched::current(), cause);
    unreachable!("kill_current returned");
}

fn post_notice(st: &mut State, notice: DeathNotice) {
    if st.notice_count == st.notices.len() {
        st.notices.rotate_left(1);
        st.notice_count -= 1;
    }
    let n = st.notice_count;
    st.notices[n] = Some(notice);
    st.notice_count += 1;
    // Wake the supervisor if it waits.
    for i in 0..MAX_TASKS {
        if st.tasks[i].as_ref().is_some_and(|t| t.state == TaskState::BlockedDeath) {
            st.make_ready(i);
        }
    }
}

/// Takes the oldest death notice.
pub fn take_notice(st: &mut State) -> Option<DeathNotice> {
    if st.notice_count == 0 {
        return None;
    }
    let n = st.notices[0].take();
    st.notices.rotate_left(1);
    st.notice_count -= 1;
    n
}

/// Frees the stacks, arenas and slots of dead tasks that are off the CPU. Runs with
/// interrupts masked, after every switch and in the idle loop. Inlined: after a switch there is
/// almost never anything to reap, and the check is one load.
#[inline(always)]
pub fn reap() {
    if TO_REAP.load(Ordering::Relaxed) != 0 {
        reap_dead();
    }
}

#[cold]
#[inline(never)]
fn reap_dead() {
    loop {
        let mut st = sched::lock();
        let Some(i) = st.to_reap.pop() else { return };
        if i == sched::current() {
            // Still on its stack (cannot happen after a switch, but be safe): try later.
            st.to_reap.push(i);
            return;
        }
        TO_REAP.fetch_sub(1, Ordering::Relaxed);
        let Some(task) = st.tasks[i].take() else { continue };
        crate::user::fpu_forget(i);
        st.generations[i] = st.generations[i].wrapping_add(1);
        drop(st);
        // Its devices were reset when it was killed; now its DMA memory can go.
        crate::dma::release(task.id);
        if let Some(a) = task.arena {
            crate::mem::arena::destroy(a);
        }
        let spec = task.spec;
        let cause = task.death;
        let id = (i, task.id.generation);
        drop(task); // frees the stack
        if spec.and_then(|s| crate::servers::specs().get(s)).is_some_and(|s| s.user_memory) {
            // Its processes die with it: their memory is freed, their threads killed.
            let n = crate::mem::arena::with_nucleus_arena(|| crate::user::destroy_owned_by(id));
            if n > 0 {
                crate::kprintln!("nucleus: {n} address space(s) of the dead server freed");
            }
        }
        if let Some(s) = spec.filter(|&s| crate::servers::specs().get(s).is_some_and(|s| s.supervisor)) {
            restart_supervisor(s, cause);
        }
    }
}

/// Restarts of the supervisor within the current window, and when the window began.
static SUPERVISOR_RESTARTS: AtomicUsize = AtomicUsize::new(0);
static SUPERVISOR_WINDOW_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
const SUPERVISOR_LIMIT: usize = 5;
const SUPERVISOR_WINDOW: u64 = 10_000_000_000;

/// The nucleus supervises the supervisor: a dead supervisor is started again at once (death
/// notices posted meanwhile wait in the nucleus for the new instance), at most
/// `SUPERVISOR_LIMIT` times in `SUPERVISOR_WINDOW`; past that it stays down, visibly, and
/// servers that die are no longer restarted.
fn restart_supervisor(spec: usize, cause: Option<DeathCause>) {
    let now = arch::timer::now_ns();
    if now.saturating_sub(SUPERVISOR_WINDOW_NS.load(Ordering::Relaxed)) > SUPERVISOR_WINDOW {
        SUPERVISOR_WINDOW_NS.store(now, Ordering::Relaxed);
        SUPERVISOR_RESTARTS.store(0, Ordering::Relaxed);
    }
    let n = SUPERVISOR_RESTARTS.fetch_add(1, Ordering::Relaxed) + 1;
    let why = cause.map_or(DeathCause::Killed, |c| c);
    if n > SUPERVISOR_LIMIT {
        crate::kprintln!("nucleus: the supervisor died again ({why}); {n} deaths in 10 s: not restarting it");
        return;
    }
    match crate::servers::spawn(spec) {
        Ok(instance) => crate::kprintln!("nucleus: the supervisor died ({why}); restarted as instance {instance}"),
        Err(e) => crate::kprintln!("nucleus: the supervisor died ({why}) and cannot be restarted: {e}"),
    }
}
