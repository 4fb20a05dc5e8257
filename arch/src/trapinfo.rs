//! The arch-neutral view of a trap, given to the nucleus's handlers. Each architecture decodes
//! its own syndrome (x86 vector + error code + CR2, AArch64 ESR + FAR + ELR) into an
//! [`ExceptionInfo`] and keeps the raw values for the report.

use core::fmt;

/// Broad class of a synchronous CPU exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    PageFault,
    IllegalInstruction,
    Breakpoint,
    DivideError,
    GeneralProtection,
    Alignment,
    DoubleFault,
    Other,
}

/// A decoded CPU exception.
#[derive(Clone, Copy, Debug)]
pub struct ExceptionInfo {
    pub class: ExceptionClass,
    /// Human name of the exception (e.g. "#PF page fault", "data abort, same EL").
    pub name: &'static str,
    /// x86 vector number or AArch64 exception class (ESR.EC).
    pub vector: u64,
    /// Faulting instruction address (RIP / ELR_EL1).
    pub pc: u64,
    /// Faulting data address (CR2 / FAR_EL1), when the exception has one.
    pub addr: Option<u64>,
    /// x86 error code or AArch64 full ESR_EL1.
    pub code: u64,
    /// The stack pointer at the time of the exception.
    pub sp: u64,
    /// Whether the exception was taken from user mode.
    pub from_user: bool,
    /// For page faults: was it a write access?
    pub write: bool,
}

impl fmt::Display for ExceptionInfo {
    /// One uniform line on every architecture; tests grep for `addr=0x...` and `pc=0x...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (vector={} code={:#x}) pc={:#x} sp={:#x}", self.name, self.vector, self.code, self.pc, self.sp)?;
        if let Some(a) = self.addr {
            write!(f, " addr={a:#x}")?;
        }
        if self.class == ExceptionClass::PageFault {
            write!(f, " {}", if self.write { "write" } else { "read" })?;
        }
        write!(f, " from {}", if self.from_user { "user" } else { "kernel" })
    }
}

/// Where the arch layer delivers traps. Installed once by the nucleus.
pub struct TrapHooks {
    /// The periodic timer fired (interrupts are disabled while this runs).
    pub timer_tick: fn(),
    /// A CPU exception the arch layer cannot resolve itself. Must not return if the fault is
    /// fatal for the current context (it may switch away from a killed task instead). The frame
    /// may be changed (e.g. to deliver a signal) before the trap returns.
    pub exception: fn(&ExceptionInfo, &mut crate::current::trap::TrapFrame),
    /// A system call from user mode: the handler reads the number and arguments from the frame
    /// and stores the result in it.
    pub syscall: fn(&mut crate::current::trap::TrapFrame),
    /// Any other device interrupt (`irq` is the controller's line number).
    pub device_irq: fn(irq: u32),
    /// Last thing before any trap returns to user mode (after a system call, an exception or
    /// an interrupt taken in user mode): the nucleus may still change the frame (asynchronous
    /// signal delivery). Interrupts are masked.
    pub user_return: fn(&mut crate::current::trap::TrapFrame),
}
