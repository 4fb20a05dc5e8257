//! The nucleus's answers to traps: timer ticks advance time (and, with the scheduler, preempt),
//! and CPU exceptions are attributed to the running task. An exception in the nucleus itself is
//! fatal and reported in full.

use arch::{ExceptionInfo, TrapHooks};

static HOOKS: TrapHooks = TrapHooks {
    timer_tick,
    exception,
    device_irq,
};

pub fn install() {
    arch::trap::install(&HOOKS);
}

fn timer_tick() {
    crate::time::tick();
}

fn device_irq(irq: u32) {
    crate::kprintln!("unexpected device interrupt {irq}");
}

fn exception(info: &ExceptionInfo) {
    arch::cpu::disable_interrupts();
    crate::log::print_unlocked(format_args!(
        "\nCPU EXCEPTION on cpu{} in task 'nucleus': {}\n",
        arch::cpu::current_cpu_id(),
        info
    ));
    crate::log::print_unlocked(format_args!("fatal: exception in the nucleus; halting\n"));
    crate::poweroff(crate::panic::EXIT_NUCLEUS_FAULT)
}
