//! The nucleus's answers to traps. Timer ticks advance time, stream trace records (for a bounded
//! time), fire fault injections and preempt;
//! device interrupts become notifications to the drivers bound to the line (`device.rs`).
//! A CPU exception is charged to whoever caused it: if a server was running its own code, the
//! server dies (a stack overflow when the address is in its guard page) and the system goes on;
//! if the nucleus was running (no server current, or the nucleus lock held), it is fatal and
//! reported in full.

use crate::task::IDLE;
use crate::{death, sched};
use arch::{ExceptionClass, ExceptionInfo, TrapHooks};
use server_rt::DeathCause;

static HOOKS: TrapHooks = TrapHooks {
    timer_tick,
    exception,
    device_irq,
    syscall: crate::syscall::on_syscall,
    user_return: crate::syscall::on_user_return,
};

pub fn install() {
    arch::trap::install(&HOOKS);
}

fn timer_tick() {
    crate::time::tick();
    crate::trace::on_tick();
    if crate::SCHEDULING.load(core::sync::atomic::Ordering::Relaxed) {
        crate::inject::on_tick();
        crate::control::on_tick();
        sched::on_tick();
    }
}

/// A device line fired (the arch layer has masked it and ended the interrupt): the drivers
/// bound to it get their notification bits, and one of them runs at once if it outranks the
/// interrupted task.
fn device_irq(line: u32) {
    let w = crate::device::on_irq(line);
    if w.len == 0 {
        return;
    }
    let mut st = sched::lock();
    for &(id, bits) in &w.targets[..w.len] {
        let alive = st.tasks[id.index].as_ref().is_some_and(|t| t.id == id);
        if alive {
            crate::call::notify_task(&mut st, id.index, bits);
        }
    }
    sched::preempt_if_outranked(st);
}

/// Whether the running code is a server's own (not the nucleus, not the idle task).
pub fn server_is_running() -> bool {
    sched::current() != IDLE && !sched::STATE.is_locked()
}

fn exception(info: &ExceptionInfo, frame: &mut arch::trap::TrapFrame) {
    if info.from_user {
        crate::syscall::on_user_fault(info, frame);
        return;
    }
    if server_is_running() {
        let cur = sched::current();
        let guard = sched::lock().task(cur).stack.as_ref().map(|s| s.guard());
        let in_guard = |a: u64| guard.is_some_and(|(lo, hi)| a >= lo && a < hi);
        let cause = match info.addr {
            Some(a) if in_guard(a) && matches!(info.class, ExceptionClass::PageFault | ExceptionClass::DoubleFault) => {
                DeathCause::StackOverflow { addr: a }
            }
            _ => DeathCause::Fault { name: info.name, pc: info.pc, addr: info.addr.unwrap_or(0) },
        };
        death::kill_current(cause);
    }
    arch::cpu::disable_interrupts();
    crate::log::print_unlocked(format_args!(
        "\nCPU EXCEPTION on cpu{} in task '{}': {}\n",
        arch::cpu::current_cpu_id(),
        if sched::current() == IDLE { "nucleus" } else { "nucleus (on behalf of a server)" },
        info
    ));
    crate::log::print_unlocked(format_args!("fatal: exception in the nucleus; halting\n"));
    crate::poweroff(crate::panic::EXIT_NUCLEUS_FAULT)
}
