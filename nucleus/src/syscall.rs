//! System calls and user faults: the trap side of the Linux ABI. The nucleus decodes nothing
//! here; it turns the trap into a request on the `linux` server's endpoint (`Sqe::flags` says
//! which kind, see `server_rt::user_request`), made by the user thread itself, and applies the
//! reply: the result register, and any `execve` the server arranged meanwhile.

use crate::{call, sched};
use arch::trap::TrapFrame;
use arch::ExceptionInfo;
use ipc::{IpcError, Sqe};
use server_rt::user_request;

const ENOSYS: i64 = 38;
const EIO: i64 = 5;
/// A reply value meaning "the registers were set; leave them" (outside the errno range and
/// far from any valid result).
pub const REGS_SET: i64 = server_rt::REGS_SET;

/// The `linux` endpoint's index, found by name once (endpoints keep their index for good).
fn linux_endpoint() -> Option<usize> {
    static CACHED: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(usize::MAX);
    let e = CACHED.load(core::sync::atomic::Ordering::Relaxed);
    if e != usize::MAX {
        return Some(e);
    }
    let found = arch::cpu::without_interrupts(|| {
        sched::lock().endpoints.iter().position(|e| e.as_ref().is_some_and(|e| e.name == "linux"))
    })?;
    CACHED.store(found, core::sync::atomic::Ordering::Relaxed);
    Some(found)
}

/// Sends `sqe` to `linux` with `frame` recorded as the thread's current frame.
fn request(frame: &mut TrapFrame, sqe: &Sqe) -> Result<i64, IpcError> {
    let cur = sched::current();
    let e = linux_endpoint().ok_or(IpcError::ServerDied)?;
    // The server sees this thread now: a pending interrupt request is answered by this one.
    crate::user::take_interrupt(cur);
    // A full ring (more threads calling at once than it holds) is back-pressure: wait a turn.
    // (Only user threads make system calls: `NotPermitted` otherwise.)
    let (result, exec) = loop {
        match call::call_user(e, sqe, frame) {
            (Err(IpcError::Full), _) => sched::yield_now(),
            r => break r,
        }
    };
    if exec {
        apply_exec(cur, frame);
    }
    result.map(|c| c.result)
}

/// A published clock call (clock_gettime): the time of clock `args[0]` as a `struct timespec`
/// at `args[1]`, if the server named that clock and the thread can store there now; false
/// leaves the call to the server (other clocks, EINVAL, memory to fault in, EFAULT).
fn answer_clock(frame: &mut TrapFrame, nr: u64, clocks: server_rt::ClockCall) -> bool {
    let [clock, at, ..] = frame.syscall_args();
    let bit = if clock < 16 { 1u16 << clock } else { 0 };
    let ns = if clocks.monotonic & bit != 0 {
        arch::timer::now_ns()
    } else if clocks.realtime & bit != 0 {
        crate::time::realtime_ns()
    } else {
        return false;
    };
    let mut ts = [0u8; 16];
    ts[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    ts[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    if !crate::user::write_current(at, &ts) {
        return false;
    }
    crate::trace::trace!(SyscallAnswered, sched::current(), u32::MAX, nr, 0u64, 0u64, crate::call::ARCH_ID);
    frame.set_return(0);
    true
}

/// Applies the `execve` the server arranged during the system call that is returning: the
/// thread's new address space, FP state and registers.
#[cold]
fn apply_exec(cur: usize, frame: &mut TrapFrame) {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let u = st.task(cur).user.as_mut().expect("user thread");
        if let Some((space, pc, sp)) = u.exec.take() {
            u.aspace = space;
            u.tp = 0;
            // A fresh FP state for the new program, loaded now: no switch happens before the
            // thread returns to user mode.
            *u.fpu = arch::user::FpuState::new();
            u.fpu.restore();
            *frame = TrapFrame::new_user(pc, sp);
            let t = st.task(cur);
            crate::user::on_switch_to(t);
            crate::user::fpu_claim(cur);
        }
    });
}

pub fn on_syscall(frame: &mut TrapFrame) {
    let nr = frame.syscall_nr();
    // A result the server published for this thread (getpid, getuid...): answered here, with
    // no request. Pending signals still reach the thread: `on_user_return` runs next.
    if let Some(v) = crate::user::published_answer(sched::current(), nr) {
        // The number and the value are in registers already, and the scratch registers are
        // free: the stub writes the record from them (and reads the task itself). Interrupts
        // are masked (the system-call entry masks them), as a record's writer needs.
        crate::trace::trace!(@scratch SyscallAnswered, sched::CURRENT, nr, v; endpoint = u32::MAX, arg2 = crate::call::ARCH_ID);
        frame.set_return(v);
        return;
    }
    forward(frame, nr);
}

/// A system call as a request to the server. Out of line: its registers and stack would
/// otherwise be saved on the answered path too.
#[inline(never)]
fn forward(frame: &mut TrapFrame, nr: u64) {
    if let Some(clocks) = crate::user::published_clock_call(sched::current(), nr) {
        if answer_clock(frame, nr, clocks) {
            return;
        }
    }
    let mut sqe = Sqe { opcode: nr.min(u32::MAX as u64) as u32, flags: user_request::SYSCALL, ..Default::default() };
    sqe.args = frame.syscall_args();
    let result = request(frame, &sqe);
    // Pointers to what is in memory anyway: values would have to be kept in registers across
    // the call above.
    crate::trace::trace!(@hook exit_hook; &sqe as *const Sqe, &result as *const Result<i64, IpcError>);
    match result {
        // The server's answer is the result register, except when it replaced the registers
        // (execve, signal delivery, rt_sigreturn): then it says `REGS_SET` and the frame stands.
        Ok(v) if v == REGS_SET => {}
        Ok(v) => frame.set_return(v as u64),
        Err(IpcError::NotPermitted) => frame.set_return((-ENOSYS) as u64),
        Err(_) => frame.set_return((-EIO) as u64),
    }
}

/// The trace hook of a system call's return (tracing on): the exit record, tagged like the
/// request the call sent.
extern "C" fn exit_hook(sqe: u64, result: u64, _: u64, _: u64, _: u64, _: u64) {
    // SAFETY: `on_syscall` passes pointers to its own request and result, alive and untouched
    // until this returns.
    let (sqe, result) = unsafe { (&*(sqe as *const Sqe), &*(result as *const Result<i64, IpcError>)) };
    let opcode = sqe.opcode;
    let v = match *result {
        Ok(v) => v,
        Err(e) => e.code(),
    };
    let cur = sched::current();
    // Interrupts masked for the record (see `trace`: the buffer has one writer at a time);
    // the tag is the one the enter record noted, so no lock is taken.
    arch::cpu::without_interrupts(|| {
        let tag = crate::trace::syscall_tag(cur);
        crate::trace::emit(ipc::trace::TraceKind::SyscallExit, cur, 0, opcode, tag, v as u64, 0);
    });
}

/// A CPU exception in user mode: the `linux` server decides (map a page, or a signal).
/// Returns if the thread may retry the instruction.
pub fn on_user_fault(info: &ExceptionInfo, frame: &mut TrapFrame) {
    // Copy-on-write is mechanism: resolved here, without a round trip to the server.
    if info.class == arch::ExceptionClass::PageFault && info.write {
        if let Some(addr) = info.addr.filter(|&a| a < arch::user::USER_TOP) {
            if crate::user::resolve_write_fault(addr) {
                return;
            }
        }
    }
    let mut sqe = Sqe { opcode: 0, flags: user_request::FAULT, ..Default::default() };
    sqe.args[0] = info.addr.unwrap_or(0);
    sqe.args[1] = info.pc;
    sqe.args[2] = info.write as u64;
    sqe.args[3] = info.vector;
    sqe.args[4] = info.code;
    match request(frame, &sqe) {
        Ok(0 | REGS_SET) => {}
        _ => crate::death::kill_current(server_rt::DeathCause::Fault {
            name: info.name,
            pc: info.pc,
            addr: info.addr.unwrap_or(0),
        }),
    }
}

/// The last step before a trap returns to user mode: if the server asked to see this thread
/// (`user::thread_interrupt`), it sends an `INTERRUPT` request first, whose answer may replace
/// the registers (a signal handler) or come only later (a stopped process).
pub fn on_user_return(frame: &mut TrapFrame) {
    let cur = sched::current();
    if crate::user::take_yield(cur) {
        sched::yield_now();
    }
    if !crate::user::interrupt_pending(cur) {
        return;
    }
    let mut sqe = Sqe { opcode: 0, flags: user_request::INTERRUPT, ..Default::default() };
    sqe.args[0] = frame.pc();
    // Any answer leaves the frame as the server set it (REGS_SET) or as it was.
    let _ = request(frame, &sqe);
}
