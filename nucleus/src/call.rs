//! Synchronous IPC, slow path: `call`, `receive`, `reply`, `reply_and_receive`, `lookup`.
//!
//! A call resolves the caller's capability, checks the endpoint's generation, stamps the
//! request with a tag naming the caller, and then either hands it straight to a waiting server
//! (the fast path, `fastpath.rs`) or queues it on the endpoint's ring and blocks. A reply is
//! checked against the tag: it must name a live task blocked on exactly that request, so a
//! forged, repeated or late reply (to a caller that died or gave up) is refused, never
//! delivered to the wrong task.

use crate::fastpath;
use crate::sched::{self, State};
use crate::task::{tag_caller, TaskState};
use ipc::{CapRef, Cqe, IpcError, Sqe};
use spin::MutexGuard;

/// Checks `cap` for the current task: the endpoint index it reaches.
fn resolve(st: &mut State, cur: usize, cap: CapRef) -> Result<usize, IpcError> {
    let c = st.task(cur).caps.resolve(cap)?;
    let ep = st.endpoints[c.endpoint].as_ref().ok_or(IpcError::NoSuchCap)?;
    if ep.server.is_none() {
        return Err(IpcError::ServerDied);
    }
    if ep.generation != c.generation {
        return Err(IpcError::StaleGeneration);
    }
    Ok(c.endpoint)
}

pub fn call(cap: CapRef, req: &Sqe) -> Result<Cqe, IpcError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        let e = resolve(&mut st, cur, cap)?;
        send_and_wait(st, cur, e, req)
    })
}

/// A call the nucleus makes for a user thread's trap (system calls, faults): no capability,
/// the endpoint is named by index. The critical section that sends also records `frame` as
/// the thread's current trap frame (what the server reads and rewrites meanwhile), and the one
/// that takes the reply clears it again: one lock in each direction instead of two. Also answers whether
/// the server arranged an `execve` to apply (`UserCtx::exec`). `NotPermitted` for a task that
/// is not a user thread.
pub fn call_user(e: usize, req: &Sqe, frame: *mut arch::trap::TrapFrame) -> (Result<Cqe, IpcError>, bool) {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        match st.endpoints.get(e).and_then(|x| x.as_ref()) {
            Some(ep) if ep.server.is_some() => {}
            _ => return (Err(IpcError::ServerDied), false),
        }
        let Some(u) = st.task(cur).user.as_mut() else { return (Err(IpcError::NotPermitted), false) };
        u.frame = frame;
        // User code may change its thread pointer without a system call (TPIDR_EL0 on
        // AArch64): the register itself is the truth while the thread is in the kernel.
        if arch::syscall::USER_WRITES_THREAD_POINTER {
            u.tp = arch::syscall::thread_pointer();
        }
        let (r, mut st) = send(st, cur, e, req, true);
        let u = st.task(cur).user.as_mut().expect("user thread");
        u.frame = core::ptr::null_mut();
        let exec = u.exec.is_some();
        (r.and_then(|()| take_reply(st, cur)), exec)
    })
}

fn send_and_wait(st: MutexGuard<'static, State>, cur: usize, e: usize, req: &Sqe) -> Result<Cqe, IpcError> {
    let (r, st) = send(st, cur, e, req, false);
    r?;
    take_reply(st, cur)
}

/// Sends `req` on endpoint `e` and waits until the reply (or the server's death) is in the
/// caller's `reply` slot; returns with the lock held again either way. `user`: the caller is
/// a user thread (its send is traced with the syscall's enter record, through a hook; a
/// server's send is one record its trace point's stub writes).
#[inline(always)]
fn send(
    mut st: MutexGuard<'static, State>,
    cur: usize,
    e: usize,
    req: &Sqe,
    user: bool,
) -> (Result<(), IpcError>, MutexGuard<'static, State>) {
    // Most calls lend nothing: keep the (large) checked grant off their path.
    if req.grant.is_none() {
        st.task(cur).grant = None;
    } else {
        match crate::grant::check_grant(&mut st, cur, &req.grant) {
            Ok(grant) => st.task(cur).grant = grant,
            Err(err) => return (Err(err), st),
        }
    }
    if !cfg!(feature = "nosupervise") {
        // Ticks, not the clock: one load, and the 2 s deadline needs no finer grain.
        st.task(cur).call_started_tick = crate::time::ticks();
    }
    let tag = st.task(cur).next_tag();
    st.task(cur).reply = None;
    let blocked = TaskState::BlockedReply { endpoint: e, tag };
    if user {
        crate::trace::trace!(@hook send_hook; &mut *st as *mut State, cur, e, req as *const Sqe, tag);
    } else {
        let serving = st.task(cur).serving;
        crate::trace::trace!(Send, cur, e, req.opcode, tag, SQE_BYTES, serving);
    }
    // The fast path copies `req` once, straight into the server's request slot.
    match fastpath::call(st, cur, e, req, tag, blocked) {
        Ok(()) => (Ok(()), sched::lock()),
        Err(mut st) => {
            let mut sqe = *req;
            sqe.tag = tag;
            let ep = st.endpoints[e].as_mut().expect("resolved endpoint");
            if ep.queue.try_push(sqe).is_err() {
                return (Err(IpcError::Full), st);
            }
            let server = ep.server.expect("resolved endpoint has a server").index;
            if matches!(st.task(server).state, TaskState::BlockedReceive { .. }) {
                st.make_ready(server);
            }
            sched::block_current(st, blocked);
            (Ok(()), sched::lock())
        }
    }
}

/// The trace hook of a send: the syscall's enter record (for a user thread's system call) and
/// the send record. Called with tracing on, from `send`, which holds the scheduler
/// lock (`state`) and borrows `sqe` (whose tag is still the caller's: the nucleus's is `tag`)
/// until the hook returns.
extern "C" fn send_hook(state: u64, cur: u64, e: u64, sqe: u64, tag: u64, _: u64) {
    // SAFETY: `send` passes the state behind the guard it holds and the `Sqe` it was
    // given, and touches neither until this returns.
    let (st, sqe) = unsafe { (&mut *(state as *mut State), &*(sqe as *const Sqe)) };
    trace_send(st, cur as usize, e as usize, sqe, tag);
}

fn trace_send(st: &mut State, cur: usize, e: usize, sqe: &Sqe, tag: u64) {
    use ipc::trace::TraceKind;
    let t = st.task(cur);
    if t.user.is_some() && sqe.flags == server_rt::user_request::SYSCALL {
        crate::trace::emit(TraceKind::SyscallEnter, cur, e as u32, sqe.opcode, tag, sqe.args[0], ARCH_ID);
        crate::trace::note_syscall_tag(cur, tag);
    }
    let serving = t.serving;
    crate::trace::emit(TraceKind::Send, cur, e as u32, sqe.opcode, tag, SQE_BYTES, serving);
}

/// What a send record carries as its size.
const SQE_BYTES: u64 = core::mem::size_of::<Sqe>() as u64;

/// The architecture id used in trace records (0 = x86_64, 1 = aarch64).
pub(crate) const ARCH_ID: u64 = match arch::ARCH_NAME.as_bytes() {
    b"aarch64" => 1,
    _ => 0,
};

/// Notes that the current task took request `sqe` (causality). The trace point is the
/// returned [`Received`]'s, to be fired once the request has been moved to where it goes: a
/// trace point is opaque to the compiler, so a request still to be read from the state across
/// one would first be copied aside.
#[inline(always)]
#[must_use]
fn received(st: &mut State, cur: usize, e: usize, sqe: &Sqe) -> Received {
    st.task(cur).serving = sqe.tag;
    // `opcode` with `flags` as one word: read alone, the opcode splits the copy of the request
    // into 4-byte moves.
    Received { cur, e, opcode_flags: sqe.opcode as u64 | (sqe.flags as u64) << 32, tag: sqe.tag }
}

/// The trace point of a receive, fired by [`Received::trace`].
struct Received {
    cur: usize,
    e: usize,
    opcode_flags: u64,
    tag: u64,
}

impl Received {
    #[inline(always)]
    fn trace(self) {
        crate::trace::trace!(Receive, self.cur, self.e, self.opcode_flags, self.tag);
    }
}

fn take_reply(mut st: MutexGuard<'static, State>, cur: usize) -> Result<Cqe, IpcError> {
    st.task(cur).grant = None; // revoked: the request is over
    st.task(cur).reply.take().unwrap_or(Err(IpcError::ServerDied))
}

/// The notification the current task has pending, as a message (clearing the bits).
fn take_notification(st: &mut State, cur: usize) -> Option<Sqe> {
    let t = st.task(cur);
    if t.notify_bits == 0 {
        return None;
    }
    let bits = core::mem::take(&mut t.notify_bits);
    let mut sqe = Sqe::new(ipc::msg::NOTIFICATION, [bits, 0, 0, 0, 0, 0]);
    sqe.tag = 0;
    Some(sqe)
}

/// Sets notification `bits` on task `i` and wakes it if it waits for requests.
pub fn notify_task(st: &mut State, i: usize, bits: u64) {
    let t = st.task(i);
    t.notify_bits |= bits;
    if matches!(t.state, TaskState::BlockedReceive { .. }) {
        st.make_ready(i);
    }
}

/// Sets notification `bits` on the server behind `cap` (never blocks).
pub fn notify(cap: CapRef, bits: u64) -> Result<(), IpcError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        let e = resolve(&mut st, cur, cap)?;
        let server = st.endpoints[e].as_ref().and_then(|ep| ep.server).ok_or(IpcError::ServerDied)?;
        notify_task(&mut st, server.index, bits);
        Ok(())
    })
}

/// The next request for the current task's endpoint, blocking while there is none.
pub fn receive() -> Result<Sqe, IpcError> {
    receive_until(u64::MAX).and_then(|r| r.ok_or(IpcError::ServerDied))
}

/// The next request, waiting at most `ns` (then `Ok(None)`).
pub fn receive_timeout(ns: u64) -> Result<Option<Sqe>, IpcError> {
    receive_until(arch::timer::now_ns().saturating_add(ns))
}

pub(crate) fn receive_until(until_ns: u64) -> Result<Option<Sqe>, IpcError> {
    let mut sqe = Sqe::default();
    let got = arch::cpu::without_interrupts(|| receive_locked(sched::lock(), until_ns, &mut sqe))?;
    Ok(got.then_some(sqe))
}

/// The receive loop, entered with the lock held: the next request into `out` (`Ok(true)`),
/// blocking while there is none, at most until `until_ns` (then `Ok(false)`).
fn receive_locked(mut st: MutexGuard<'static, State>, until_ns: u64, out: &mut Sqe) -> Result<bool, IpcError> {
    let cur = sched::current();
    loop {
        let e = st.task(cur).endpoint.ok_or(IpcError::NoSuchCap)?;
        if let Some(n) = take_notification(&mut st, cur) {
            *out = n;
            return Ok(true);
        }
        if let Some(sqe) = st.task(cur).request.take() {
            let r = received(&mut st, cur, e, &sqe);
            *out = sqe;
            r.trace();
            return Ok(true);
        }
        if let Some(sqe) = st.endpoints[e].as_mut().and_then(|ep| ep.queue.try_pop()) {
            // A queued request whose caller died meanwhile is dropped here.
            if caller_waiting(&st, e, sqe.tag) {
                let r = received(&mut st, cur, e, &sqe);
                *out = sqe;
                r.trace();
                return Ok(true);
            }
            continue;
        }
        if until_ns != u64::MAX && arch::timer::now_ns() >= until_ns {
            return Ok(false);
        }
        sched::block_current(st, TaskState::BlockedReceive { until_ns });
        crate::inject::checkpoint(); // woken, perhaps to suffer an injected fault
        st = sched::lock();
    }
}

/// The next request, if one is waiting (never blocks).
pub fn poll_receive() -> Option<Sqe> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        let e = st.task(cur).endpoint?;
        if let Some(n) = take_notification(&mut st, cur) {
            return Some(n);
        }
        if let Some(sqe) = st.task(cur).request.take() {
            received(&mut st, cur, e, &sqe).trace();
            return Some(sqe);
        }
        while let Some(sqe) = st.endpoints[e].as_mut().and_then(|ep| ep.queue.try_pop()) {
            if caller_waiting(&st, e, sqe.tag) {
                received(&mut st, cur, e, &sqe).trace();
                return Some(sqe);
            }
        }
        None
    })
}

pub(crate) fn caller_waiting(st: &State, e: usize, tag: u64) -> bool {
    let (i, generation) = tag_caller(tag);
    st.tasks.get(i).and_then(|t| t.as_ref()).is_some_and(|t| {
        (t.id.generation & 0xff_ffff) == generation && t.state == (TaskState::BlockedReply { endpoint: e, tag })
    })
}

/// Delivers `reply` to its caller and makes the caller ready. Returns the caller's slot.
/// (Inlined: it is most of a reply, on the fast path.)
#[inline(always)]
pub fn deliver(st: &mut State, cur: usize, reply: &Cqe) -> Result<usize, IpcError> {
    let e = st.task(cur).endpoint.ok_or(IpcError::NoSuchCap)?;
    if !caller_waiting(st, e, reply.tag) {
        return Err(IpcError::BadTag);
    }
    let (caller, _) = tag_caller(reply.tag);
    st.task(caller).reply = Some(Ok(*reply));
    if st.task(cur).serving == reply.tag {
        st.task(cur).serving = 0;
    }
    crate::trace::trace!(Reply, cur, e, 0u64, reply.tag, reply.result as u64);
    Ok(caller)
}

pub fn reply(reply: &Cqe) -> Result<(), IpcError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        let caller = deliver(&mut st, cur, reply)?;
        st.make_ready(caller);
        Ok(())
    })
}

pub fn reply_and_receive(reply: &Cqe) -> Result<Sqe, IpcError> {
    reply_and_receive_until(reply, u64::MAX).and_then(|r| r.ok_or(IpcError::ServerDied))
}

/// Answers `reply` and waits at most `ns` for the next request (`Ok(None)` when the time is up).
pub fn reply_and_receive_timeout(reply: &Cqe, ns: u64) -> Result<Option<Sqe>, IpcError> {
    reply_and_receive_until(reply, arch::timer::now_ns().saturating_add(ns))
}

fn reply_and_receive_until(reply: &Cqe, until_ns: u64) -> Result<Option<Sqe>, IpcError> {
    let mut sqe = Sqe::default();
    Ok(reply_and_receive_into(reply, until_ns, &mut sqe)?.then_some(sqe))
}

/// Answers `reply`, then the next request into `out` (`Ok(true)`), waiting at most until
/// `until_ns` (then `Ok(false)`). On the fast path (the caller waits for exactly this reply,
/// nothing is queued) the server switches straight to the caller; when it runs again, a
/// request handed over by the fast path is in its `request` slot and is copied once, into
/// `out`. A bad reply must not lose the server's turn: it still receives next.
pub fn reply_and_receive_into(reply: &Cqe, until_ns: u64, out: &mut Sqe) -> Result<bool, IpcError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        let st = match deliver(&mut st, cur, reply) {
            Ok(caller) => match fastpath::reply_and_wait(st, cur, caller, until_ns) {
                Ok(()) => {
                    let mut st = sched::lock();
                    let t = st.task(cur);
                    if let (Some(e), Some(sqe)) = (t.endpoint, t.request.take()) {
                        if t.notify_bits == 0 {
                            let r = received(&mut st, cur, e, &sqe);
                            *out = sqe;
                            r.trace();
                            return Ok(true);
                        }
                        st.task(cur).request = Some(sqe); // the notification goes first
                    }
                    st
                }
                Err(mut st) => {
                    st.make_ready(caller);
                    st
                }
            },
            Err(IpcError::BadTag) => st,
            Err(e) => return Err(e),
        };
        receive_locked(st, until_ns, out)
    })
}

/// A capability for endpoint `name`, if the current server's spec lists it.
pub fn lookup(name: &str) -> Result<CapRef, IpcError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let cur = sched::current();
        let spec = st.task(cur).spec.ok_or(IpcError::NoSuchCap)?;
        let allowed = crate::servers::specs()[spec].may_call.contains(&name);
        if !allowed {
            return Err(IpcError::NotPermitted);
        }
        let e = st
            .endpoints
            .iter()
            .position(|ep| ep.as_ref().is_some_and(|ep| ep.name == name))
            .ok_or(IpcError::ServerDied)?;
        let ep = st.endpoints[e].as_ref().expect("found");
        if ep.server.is_none() {
            return Err(IpcError::ServerDied);
        }
        let cap = crate::cap::EndpointCap { endpoint: e, generation: ep.generation };
        st.task(cur).caps.grant(cap)
    })
}
