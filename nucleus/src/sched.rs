//! The scheduler and the one lock that guards the nucleus's object tables.
//!
//! Priorities 0 (highest) to `PRIORITIES - 1`, round-robin within a priority with a time slice
//! of `SLICE_TICKS` ticks; the idle task (slot 0, the boot context) runs when no task is ready
//! and sleeps the CPU with `hlt`/`wfi`.
//!
//! Locking: [`STATE`] is only taken with interrupts masked, so an interrupt can never find it
//! held on this CPU. A switch computes both context pointers under the lock, releases it, and
//! then switches with interrupts still masked (single CPU for now: nothing can run between the
//! release and the switch; SMP will need a per-CPU hand-off).

use crate::endpoint::{Endpoint, MAX_ENDPOINTS};
use crate::mem::arena::{self, NUCLEUS_ARENA};
use crate::task::{Task, TaskState, IDLE, MAX_TASKS};
use core::sync::atomic::{AtomicUsize, Ordering};
use server_rt::DeathNotice;
use spin::{Mutex, MutexGuard};

pub const PRIORITIES: usize = 4;
pub const SLICE_TICKS: u32 = 2;

/// A fixed-capacity FIFO of task slots.
pub struct Fifo<const N: usize> {
    items: [u16; N],
    head: usize,
    len: usize,
}

impl<const N: usize> Default for Fifo<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Fifo<N> {
    pub const fn new() -> Self {
        Fifo { items: [0; N], head: 0, len: 0 }
    }

    pub fn push(&mut self, v: usize) -> bool {
        if self.len == N {
            return false;
        }
        self.items[(self.head + self.len) % N] = v as u16;
        self.len += 1;
        true
    }

    pub fn pop(&mut self) -> Option<usize> {
        (self.len > 0).then(|| {
            let v = self.items[self.head] as usize;
            self.head = (self.head + 1) % N;
            self.len -= 1;
            v
        })
    }

    pub fn remove(&mut self, v: usize) {
        let mut kept = Fifo::<N>::new();
        while let Some(x) = self.pop() {
            if x != v {
                kept.push(x);
            }
        }
        *self = kept;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

/// Pending death notices for the supervisor (bounded: a flood of deaths drops the oldest).
pub const MAX_NOTICES: usize = 32;

pub struct State {
    pub tasks: [Option<Task>; MAX_TASKS],
    pub generations: [u32; MAX_TASKS],
    pub endpoints: [Option<Endpoint>; MAX_ENDPOINTS],
    pub run_queues: [Fifo<MAX_TASKS>; PRIORITIES],
    pub notices: [Option<DeathNotice>; MAX_NOTICES],
    pub notice_count: usize,
    /// Dead tasks whose stacks and arenas are still to be freed.
    pub to_reap: Fifo<MAX_TASKS>,
}

impl State {
    const fn new() -> Self {
        State {
            tasks: [const { None }; MAX_TASKS],
            generations: [0; MAX_TASKS],
            endpoints: [const { None }; MAX_ENDPOINTS],
            run_queues: [const { Fifo::new() }; PRIORITIES],
            notices: [None; MAX_NOTICES],
            notice_count: 0,
            to_reap: Fifo::new(),
        }
    }

    pub fn task(&mut self, i: usize) -> &mut Task {
        self.tasks[i].as_mut().expect("task slot is empty")
    }

    /// Marks a task ready and queues it (no-op for dead tasks).
    pub fn make_ready(&mut self, i: usize) {
        let t = self.task(i);
        if t.state == TaskState::Dead || t.state == TaskState::Ready {
            return;
        }
        t.state = TaskState::Ready;
        let p = (t.priority as usize).min(PRIORITIES - 1);
        crate::trace::trace!(Wake, i);
        if i != IDLE {
            self.run_queues[p].push(i);
        }
    }

    fn pick_next(&mut self) -> usize {
        for q in self.run_queues.iter_mut() {
            if let Some(i) = q.pop() {
                return i;
            }
        }
        IDLE
    }

    pub fn highest_ready_priority(&self) -> Option<usize> {
        self.run_queues.iter().position(|q| !q.is_empty())
    }
}

pub static STATE: Mutex<State> = Mutex::new(State::new());
/// The running task's slot (read by the `SyscallAnswered` trace stub too).
pub(crate) static CURRENT: AtomicUsize = AtomicUsize::new(IDLE);

/// The server spec of the running task (`usize::MAX`: none), set with [`CURRENT`] by every
/// switch, so that the API calls that act on the caller's own server (its state area) need no
/// lock to find it. A task's spec never changes once it is in the table.
static CURRENT_SPEC: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Slot of the running task.
pub fn current() -> usize {
    let i = CURRENT.load(Ordering::Relaxed);
    // SAFETY: `CURRENT` starts at `IDLE` and is only stored by `switch_to`, with an index it
    // has just used in the task table. Said so, a table lookup by the current task needs no
    // bounds check (two instructions on getpid's path on each side of the system call: the
    // compiler cannot see this itself once a trace stub reads `CURRENT`).
    unsafe { core::hint::assert_unchecked(i < MAX_TASKS) };
    i
}

/// The server spec index of the running task, if it is a server.
pub fn current_spec() -> Option<usize> {
    Some(CURRENT_SPEC.load(Ordering::Relaxed)).filter(|&s| s != usize::MAX)
}

/// Locks the nucleus state. Interrupts must be masked (asserted in debug builds).
pub fn lock() -> MutexGuard<'static, State> {
    debug_assert!(!arch::cpu::interrupts_enabled());
    STATE.lock()
}

/// Switches from the current task to `next` (which must already be taken off the run queue).
/// Consumes the guard: the lock is released before the switch. Returns when the current task
/// runs again (never, if it is dead).
pub fn switch_to(mut st: MutexGuard<'static, State>, next: usize) {
    let cur = current();
    if next == cur {
        st.task(cur).state = TaskState::Running;
        drop(st);
        crate::death::reap();
        return;
    }
    crate::user::fpu_switch(&mut st, next);
    crate::trace::trace!(Switch, cur, next);
    let t = st.task(next);
    t.state = TaskState::Running;
    t.slice = SLICE_TICKS;
    arena::set_current(t.arena.unwrap_or(NUCLEUS_ARENA));
    let spec = t.spec.unwrap_or(usize::MAX);
    crate::user::on_switch_to(t);
    let to: *const arch::context::Context = &t.context;
    let from: *mut arch::context::Context = &mut st.task(cur).context;
    CURRENT.store(next, Ordering::Relaxed);
    CURRENT_SPEC.store(spec, Ordering::Relaxed);
    drop(st);
    // SAFETY: both contexts live in the static task table; `to` was saved by a previous switch
    // or built by `Context::new` on a stack that its task still owns (stacks are only freed by
    // the reaper, after their task is dead and off the CPU). Interrupts are masked.
    unsafe { arch::context::switch(from, to) };
    crate::death::reap();
}

/// Gives up the CPU: the current task is re-queued if it is still runnable.
pub fn reschedule(mut st: MutexGuard<'static, State>) {
    let cur = current();
    if st.task(cur).state == TaskState::Running {
        if cur == IDLE {
            st.task(cur).state = TaskState::Ready;
        } else {
            st.make_ready(cur);
        }
    }
    let next = st.pick_next();
    switch_to(st, next);
}

/// Blocks the current task in `state` and runs something else.
pub fn block_current(mut st: MutexGuard<'static, State>, state: TaskState) {
    let cur = current();
    st.task(cur).state = state;
    crate::trace::trace!(Block, cur);
    let next = st.pick_next();
    switch_to(st, next);
}

pub fn yield_now() {
    arch::cpu::without_interrupts(|| reschedule(lock()));
}

/// Timer tick: wake sleepers, account the time slice, preempt.
pub fn on_tick() {
    let mut st = lock();
    let now = arch::timer::now_ns();
    for i in 0..MAX_TASKS {
        if let Some(t) = st.tasks[i].as_ref() {
            let due = match t.state {
                TaskState::Sleeping { until_ns } | TaskState::BlockedReceive { until_ns } => until_ns <= now,
                _ => false,
            };
            if due {
                st.make_ready(i);
            }
        }
    }
    let cur = current();
    if cur != IDLE {
        st.task(cur).ticks += 1;
        let serving = st.task(cur).serving;
        if serving != 0 {
            let (caller, generation) = crate::task::tag_caller(serving);
            if let Some(t) = st.tasks.get_mut(caller).and_then(|t| t.as_mut()) {
                if t.id.generation & 0xff_ffff == generation {
                    t.served_ticks += 1;
                }
            }
        }
    }
    let preempt = {
        let prio = st.task(cur).priority as usize;
        let t = st.task(cur);
        t.slice = t.slice.saturating_sub(1);
        let expired = t.slice == 0;
        let higher = st.highest_ready_priority().is_some_and(|p| p < prio);
        let same = st.highest_ready_priority().is_some_and(|p| p <= prio);
        cur == IDLE && st.highest_ready_priority().is_some() || higher || (expired && same)
    };
    if preempt {
        reschedule(st);
    } else if st.task(cur).slice == 0 {
        st.task(cur).slice = SLICE_TICKS;
    }
}

/// Switches to the best ready task if it has a higher priority than the running one (after
/// an interrupt woke it); otherwise just releases the lock.
pub fn preempt_if_outranked(st: MutexGuard<'static, State>) {
    let cur = current();
    let prio = st.tasks[cur].as_ref().map_or(usize::MAX, |t| t.priority as usize);
    if st.highest_ready_priority().is_some_and(|p| p < prio) {
        reschedule(st);
    }
}

/// Sleeps the current task for at least `ns` (tick granularity).
pub fn sleep_ns(ns: u64) {
    arch::cpu::without_interrupts(|| {
        let until_ns = arch::timer::now_ns().saturating_add(ns);
        block_current(lock(), TaskState::Sleeping { until_ns });
    })
}

/// The idle loop, run by the boot context once servers exist: reap, then sleep until an
/// interrupt makes something ready.
pub fn idle_loop() -> ! {
    loop {
        arch::cpu::disable_interrupts();
        crate::death::reap();
        let st = lock();
        if st.highest_ready_priority().is_some() {
            reschedule(st);
            arch::cpu::enable_interrupts();
        } else {
            drop(st);
            if crate::trace::streamable() {
                arch::cpu::enable_interrupts();
                crate::trace::stream();
                continue;
            }
            arch::cpu::wait_for_interrupt();
        }
    }
}
