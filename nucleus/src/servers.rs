//! Starting server instances from the server table (`server_rt::ServerSpec`, declared in
//! `boot/`). A new instance gets a fresh guard-paged stack, a fresh heap arena, an empty
//! capability table, and the endpoint named after it (created on first start, moved to a new
//! generation at every death).

use crate::endpoint::Endpoint;
use crate::kstack::KStack;
use crate::mem::arena;
use crate::sched::{self, State};
use crate::task::{Task, TaskId, TaskState, MAX_TASKS};
use core::sync::atomic::{AtomicU32, Ordering};
use ipc::IpcError;
use server_rt::ServerSpec;
use spin::Once;

pub const MAX_SERVERS: usize = 32;

static SPECS: Once<&'static [ServerSpec]> = Once::new();
static INSTANCES: [AtomicU32; MAX_SERVERS] = [const { AtomicU32::new(0) }; MAX_SERVERS];
static DEATHS: [AtomicU32; MAX_SERVERS] = [const { AtomicU32::new(0) }; MAX_SERVERS];
static LAST_DEATH: spin::Mutex<[Option<server_rt::DeathCause>; MAX_SERVERS]> = spin::Mutex::new([None; MAX_SERVERS]);

/// Records the death of server `spec` (called by `death::kill`, under the state lock).
pub fn record_death(spec: usize, cause: server_rt::DeathCause) {
    if spec < MAX_SERVERS {
        DEATHS[spec].fetch_add(1, Ordering::Relaxed);
        LAST_DEATH.lock()[spec] = Some(cause);
    }
}

/// Status of server `spec`.
pub fn info(spec: usize) -> Option<server_rt::ServerInfo> {
    specs().get(spec)?;
    arch::cpu::without_interrupts(|| {
        let st = sched::lock();
        let me = st.tasks.iter().flatten().find(|t| t.spec == Some(spec) && t.state != TaskState::Dead);
        let in_flight = me.and_then(|t| t.endpoint).map_or(0, |e| {
            st.tasks
                .iter()
                .flatten()
                .filter(|w| matches!(w.state, TaskState::BlockedReply { endpoint, .. } if endpoint == e))
                .count() as u32
        });
        Some(server_rt::ServerInfo {
            instance: instance(spec),
            alive: me.is_some(),
            deaths: DEATHS[spec].load(Ordering::Relaxed),
            last_death: LAST_DEATH.lock()[spec],
            in_flight,
            dma_pages: crate::dma::pages_of(spec),
        })
    })
}

pub fn install_table(specs: &'static [ServerSpec]) {
    assert!(specs.len() <= MAX_SERVERS, "server table too large");
    SPECS.call_once(|| specs);
}

pub fn specs() -> &'static [ServerSpec] {
    SPECS.get().copied().unwrap_or(&[])
}

/// Instance number of the newest start of server `i` (0 = never started).
pub fn instance(i: usize) -> u32 {
    INSTANCES[i].load(Ordering::Relaxed)
}

/// First function of every server task.
extern "C" fn server_start(spec: usize, _: usize) -> ! {
    arch::cpu::enable_interrupts();
    (specs()[spec].entry)();
    crate::death::kill_current(server_rt::DeathCause::Exited)
}

fn endpoint_for(st: &mut State, name: &'static str) -> Result<usize, IpcError> {
    if let Some(i) = st.endpoints.iter().position(|e| e.as_ref().is_some_and(|e| e.name == name)) {
        return Ok(i);
    }
    let i = st.endpoints.iter().position(|e| e.is_none()).ok_or(IpcError::NoSlots)?;
    st.endpoints[i] = Some(Endpoint::new(name));
    Ok(i)
}

/// Starts a new instance of server `spec`. Returns its instance number.
pub fn spawn(spec: usize) -> Result<u32, IpcError> {
    let s = specs().get(spec).ok_or(IpcError::NoSuchCap)?;
    // Memory first, outside the lock: it may be slow and cannot fail half-way inside it.
    let stack = KStack::new(s.stack_bytes).ok_or(IpcError::NoMemory)?;
    let arena = arena::create(s.arena_bytes).ok_or(IpcError::NoMemory)?;
    let top = stack.top();
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let live = st.tasks.iter().flatten().any(|t| t.spec == Some(spec) && t.state != TaskState::Dead);
        let slot = st.tasks.iter().skip(1).position(|t| t.is_none()).map(|p| p + 1);
        let (Some(index), false) = (slot, live) else {
            drop(st);
            arena::destroy(arena);
            return Err(if live { IpcError::Busy } else { IpcError::NoSlots });
        };
        let endpoint = if s.serves {
            match endpoint_for(&mut st, s.name) {
                Ok(e) => Some(e),
                Err(e) => {
                    drop(st);
                    arena::destroy(arena);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let generation = st.generations[index];
        // SAFETY: `top` is the end of the stack this task will own for its whole life.
        let context = unsafe { arch::context::Context::new(top, server_start, spec, 0) };
        let mut task = Task::new(index, generation, s.name, context);
        task.spec = Some(spec);
        task.priority = s.priority;
        task.stack = Some(stack);
        task.arena = Some(arena);
        task.endpoint = endpoint;
        st.tasks[index] = Some(task);
        if let Some(e) = endpoint {
            st.endpoints[e].as_mut().expect("endpoint just made").server = Some(TaskId { index, generation });
        }
        st.task(index).state = TaskState::Sleeping { until_ns: 0 };
        st.make_ready(index);
        let instance = INSTANCES[spec].fetch_add(1, Ordering::Relaxed) + 1;
        crate::trace::name_task(index, s.name);
        if let Some(e) = endpoint {
            crate::trace::name_endpoint(e, s.name);
        }
        let ep = endpoint.map_or(u32::MAX, |e| e as u32);
        crate::trace::record(ipc::trace::TraceKind::Restart, index, ep, spec as u32, 0, instance as u64, 0);
        Ok(instance)
    })
}

/// (instance, alive) of server `spec`.
pub fn state(spec: usize) -> Option<(u32, bool)> {
    specs().get(spec)?;
    let alive = arch::cpu::without_interrupts(|| {
        sched::lock().tasks.iter().flatten().any(|t| t.spec == Some(spec) && t.state != TaskState::Dead)
    });
    Some((instance(spec), alive))
}

/// Live tasks (excluding idle).
pub fn live_tasks() -> usize {
    arch::cpu::without_interrupts(|| sched::lock().tasks.iter().skip(1).flatten().count())
}

pub const _ASSERT_TASKS: () = assert!(MAX_TASKS <= u16::MAX as usize);
