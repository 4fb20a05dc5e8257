//! Tasks: the unit the scheduler runs. Today every task is a server (or the idle task, which is
//! the boot context); user threads will join them. A task owns its stack, its heap arena and its
//! capability table; everything is released when it dies. Task ids carry a generation so that a
//! reply addressed to a dead task can never reach the task that reuses its slot.

use crate::cap::CapTable;
use crate::kstack::KStack;
use crate::mem::arena::ArenaId;
use arch::context::Context;
use ipc::{Cqe, IpcError, Sqe};
use server_rt::DeathCause;

pub const MAX_TASKS: usize = 256;
/// Slot of the idle task (the boot context).
pub const IDLE: usize = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId {
    pub index: usize,
    pub generation: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Ready,
    Running,
    /// Waiting for a request on its own endpoint, at most until `until_ns` (`u64::MAX`: forever).
    BlockedReceive {
        until_ns: u64,
    },
    /// Waiting for the reply to request `tag` sent to `endpoint`.
    BlockedReply {
        endpoint: usize,
        tag: u64,
    },
    /// The supervisor, waiting for a death notice.
    BlockedDeath,
    Sleeping {
        until_ns: u64,
    },
    /// Dead, waiting for the reaper to free its stack and arena.
    Dead,
}

pub struct Task {
    pub id: TaskId,
    pub name: &'static str,
    /// Index into the server table, for server tasks.
    pub spec: Option<usize>,
    pub state: TaskState,
    pub priority: u8,
    pub context: Context,
    pub stack: Option<KStack>,
    pub arena: Option<ArenaId>,
    pub caps: CapTable,
    /// The endpoint this task serves.
    pub endpoint: Option<usize>,
    /// A request handed over directly by the fast path, not yet returned by `receive`.
    pub request: Option<Sqe>,
    /// The reply (or error) to this task's outstanding call.
    pub reply: Option<Result<Cqe, IpcError>>,
    pub call_seq: u32,
    /// The request this task is serving (for causality in the trace), 0 if none.
    pub serving: u64,
    /// The tick at which this task's outstanding call was sent (for the hang deadline).
    pub call_started_tick: u64,
    /// The memory this task lent with its outstanding call (checked, resolved).
    pub grant: Option<crate::grant::Grant>,
    /// Ticks left in the current time slice.
    pub slice: u32,
    pub death: Option<DeathCause>,
    /// Notification bits set by other servers or device interrupts, not yet received.
    pub notify_bits: u64,
    /// An injected fault it suffers the next time it enters the nucleus (`inject::checkpoint`).
    pub pending_fault: Option<server_rt::FaultKind>,
    /// User-mode state, for user threads.
    pub user: Option<crate::user::UserCtx>,
    /// Ticks this task was running at (CPU time, tick granularity).
    pub ticks: u64,
    /// Ticks servers spent serving this task's requests (a user thread's system time).
    pub served_ticks: u64,
}

impl Task {
    /// A task in slot `index` with nothing yet: no stack, arena, endpoint or user state.
    pub fn new(index: usize, generation: u32, name: &'static str, context: Context) -> Task {
        Task {
            id: TaskId { index, generation },
            name,
            spec: None,
            state: TaskState::Ready,
            priority: 1,
            context,
            stack: None,
            arena: None,
            caps: CapTable::new(),
            endpoint: None,
            request: None,
            reply: None,
            call_seq: 0,
            serving: 0,
            call_started_tick: 0,
            grant: None,
            slice: crate::sched::SLICE_TICKS,
            death: None,
            notify_bits: 0,
            pending_fault: None,
            user: None,
            ticks: 0,
            served_ticks: 0,
        }
    }

    /// The tag of the last request this task sent.
    pub fn last_tag(&self) -> u64 {
        self.id.index as u64 | ((self.id.generation as u64 & 0xff_ffff) << 16) | ((self.call_seq as u64) << 40)
    }

    /// Request tags name the caller: slot (16 bits), generation (24 bits), sequence (24 bits).
    pub fn next_tag(&mut self) -> u64 {
        self.call_seq = self.call_seq.wrapping_add(1) & 0xff_ffff;
        self.id.index as u64 | ((self.id.generation as u64 & 0xff_ffff) << 16) | ((self.call_seq as u64) << 40)
    }
}

/// The caller a tag names: (slot, generation bits).
pub fn tag_caller(tag: u64) -> (usize, u32) {
    ((tag & 0xffff) as usize, ((tag >> 16) & 0xff_ffff) as u32)
}

/// Turns the boot context into the idle task (slot 0). Its context is filled in by the first
/// switch away from it.
pub fn install_idle() {
    arch::cpu::without_interrupts(|| {
        let mut st = crate::sched::lock();
        let mut idle = Task::new(IDLE, 0, "idle", Context::empty());
        idle.state = TaskState::Running;
        idle.priority = u8::MAX;
        st.tasks[IDLE] = Some(idle);
    })
}
