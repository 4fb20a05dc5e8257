//! The exception vector table (VBAR_EL1) and the common trap path.
//!
//! Every vector entry makes room for a [`TrapFrame`] on the current stack (SP_EL1: the running
//! task's kernel stack, which is also where a trap from EL0 lands, see `syscall.rs`), saves
//! x0/x1, records which of the 16 vectors fired and jumps to `arch_trap_save`, which saves the
//! other general-purpose registers, ELR/SPSR, SP_EL0 (or the interrupted kernel SP),
//! TPIDR_EL0, ESR/FAR and the whole FP/SIMD state (the kernel itself is compiled with NEON, so
//! any trap would otherwise clobber user or interrupted-kernel vector registers), and calls
//! [`trap_dispatch`]. Returning from it restores everything and `eret`s: a handler that returns
//! resumes the interrupted context, possibly changed through the frame.
//!
//! Synchronous exceptions are decoded from ESR_EL1 into an [`ExceptionInfo`] for the nucleus's
//! hook; an SVC from EL0 is a system call (number in x8, arguments x0-x5, result x0). IRQs are
//! acknowledged at the GIC: the timer PPI re-arms the timer and calls the tick hook after the
//! end of interrupt (the hook may switch tasks, so the EOI must not wait for it); other lines go
//! to the device hook. FIQ, SError and the vectors we never use (current EL with SP_EL0, lower
//! EL in AArch32) are reported and stop the machine.
//!
//! Kernel stack overflow: the current-EL synchronous vector first checks (with `at s1e1w`, no
//! memory access) that the frame it is about to push is mapped. If not (a stack ran into its
//! guard page), it switches to a small emergency stack and reports the fault from there, so the
//! nucleus can kill the task instead of the CPU recursing on the unmapped stack forever.

use super::console::RawWriter;
use crate::trapinfo::{ExceptionClass, ExceptionInfo, TrapHooks};
use core::arch::{asm, global_asm};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicPtr, Ordering};

/// Registers saved on trap entry, lowest address first.
#[repr(C)]
#[derive(Debug, Default, Clone)]
pub struct TrapFrame {
    /// x0..x30 (x30 is the link register).
    pub x: [u64; 31],
    /// SP_EL0 for a trap from user mode; the interrupted SP_EL1 for a trap from the kernel.
    pub sp: u64,
    /// Exception link register: where `eret` resumes.
    pub elr: u64,
    /// Saved PSTATE (mode, interrupt masks, condition flags).
    pub spsr: u64,
    /// User thread pointer (TPIDR_EL0), restored when returning to user mode.
    pub tpidr: u64,
    /// Exception syndrome (ESR_EL1) and fault address (FAR_EL1) at entry.
    pub esr: u64,
    pub far: u64,
    /// Which vector fired (0..16, see [`VectorKind`]); bit 8 is set when the frame was built on
    /// the emergency stack.
    pub kind: u64,
    pub fpcr: u64,
    pub fpsr: u64,
    /// v0..v31.
    pub q: [u128; 32],
}

/// Bytes of a [`TrapFrame`] on the stack.
const FRAME_SIZE: usize = size_of::<TrapFrame>();
const _: () = assert!(FRAME_SIZE.is_multiple_of(16) && FRAME_SIZE < 4096);
const _: () = assert!(offset_of!(TrapFrame, sp) == 248);
const _: () = assert!(offset_of!(TrapFrame, elr) == 256);
const _: () = assert!(offset_of!(TrapFrame, tpidr) == 272);
const _: () = assert!(offset_of!(TrapFrame, far) == 288);
const _: () = assert!(offset_of!(TrapFrame, fpcr) == 304);
const _: () = assert!(offset_of!(TrapFrame, q) == 320);

/// The vector slots we handle (index = offset / 0x80 in the table).
pub struct VectorKind;
impl VectorKind {
    pub const EL1_SYNC: u64 = 4;
    pub const EL1_IRQ: u64 = 5;
    pub const EL1_FIQ: u64 = 6;
    pub const EL1_SERROR: u64 = 7;
    pub const EL0_SYNC: u64 = 8;
    pub const EL0_IRQ: u64 = 9;
    pub const EL0_FIQ: u64 = 10;
    pub const EL0_SERROR: u64 = 11;
    /// Set in `kind` when the frame lives on the emergency stack.
    pub const ON_EMERGENCY_STACK: u64 = 0x100;
}

const EMERGENCY_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct EmergencyStack([u8; EMERGENCY_STACK_SIZE]);

/// Where a trap runs when the interrupted stack has no room for its frame (a kernel stack ran
/// into its guard page). The asm below switches to it with every exception masked; the
/// nucleus's exception hook then runs on it and either stops the machine or kills the task and
/// switches away for good, so it is never in use twice (one CPU).
#[no_mangle]
#[link_section = ".bss..cold.emergency_stack"]
static mut ARCH_EMERGENCY_STACK: EmergencyStack = EmergencyStack([0; EMERGENCY_STACK_SIZE]);

global_asm!(
    r#"
    .macro cairn_ventry kind
    .balign 0x80
    sub sp, sp, #{frame}
    stp x0, x1, [sp]
    mov x0, #\kind
    b arch_trap_save
    .endm

    .section .text.vectors, "ax"
    .balign 2048
    .global arch_exception_vectors
arch_exception_vectors:
    cairn_ventry 0
    cairn_ventry 1
    cairn_ventry 2
    cairn_ventry 3

    // Current EL with SP_EL1, synchronous: check the stack first.
    .balign 0x80
    msr tpidr_el1, x0
    mov x0, sp
    sub x0, x0, #{frame}
    at s1e1w, x0
    isb
    mrs x0, par_el1
    tbnz x0, #0, arch_trap_overflow
    mrs x0, tpidr_el1
    sub sp, sp, #{frame}
    stp x0, x1, [sp]
    mov x0, #4
    b arch_trap_save

    cairn_ventry 5
    cairn_ventry 6
    cairn_ventry 7
    cairn_ventry 8
    cairn_ventry 9
    cairn_ventry 10
    cairn_ventry 11
    cairn_ventry 12
    cairn_ventry 13
    cairn_ventry 14
    cairn_ventry 15

    .balign 0x80
arch_trap_overflow:
    adrp x0, {emergency}
    add x0, x0, :lo12:{emergency}
    add x0, x0, #{emergency_size}
    sub x0, x0, #{frame}
    str x1, [x0, #8]
    mov x1, sp
    str x1, [x0, #248]
    mov sp, x0
    mrs x0, tpidr_el1
    str x0, [sp, #0]
    mov x0, #(4 | 0x100)
    b arch_trap_save

arch_trap_save:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    str x30, [sp, #240]
    mrs x2, elr_el1
    mrs x3, spsr_el1
    stp x2, x3, [sp, #256]
    mrs x4, tpidr_el0
    mrs x5, esr_el1
    stp x4, x5, [sp, #272]
    mrs x6, far_el1
    stp x6, x0, [sp, #288]
    tbnz x0, #8, 3f
    and x7, x3, #0xf
    cbz x7, 1f
    add x7, sp, #{frame}
    b 2f
1:
    mrs x7, sp_el0
2:
    str x7, [sp, #248]
3:
    mrs x8, fpcr
    mrs x9, fpsr
    stp x8, x9, [sp, #304]
    add x10, sp, #320
    stp q0, q1, [x10, #0]
    stp q2, q3, [x10, #32]
    stp q4, q5, [x10, #64]
    stp q6, q7, [x10, #96]
    stp q8, q9, [x10, #128]
    stp q10, q11, [x10, #160]
    stp q12, q13, [x10, #192]
    stp q14, q15, [x10, #224]
    stp q16, q17, [x10, #256]
    stp q18, q19, [x10, #288]
    stp q20, q21, [x10, #320]
    stp q22, q23, [x10, #352]
    stp q24, q25, [x10, #384]
    stp q26, q27, [x10, #416]
    stp q28, q29, [x10, #448]
    stp q30, q31, [x10, #480]
    mov x0, sp
    bl {dispatch}

    .global arch_trap_return
arch_trap_return:
    // ELR/SPSR must not be clobbered by an interrupt between here and `eret` (the handler may
    // have unmasked interrupts, e.g. by blocking in a system call).
    msr daifset, #0xf
    add x10, sp, #320
    ldp q0, q1, [x10, #0]
    ldp q2, q3, [x10, #32]
    ldp q4, q5, [x10, #64]
    ldp q6, q7, [x10, #96]
    ldp q8, q9, [x10, #128]
    ldp q10, q11, [x10, #160]
    ldp q12, q13, [x10, #192]
    ldp q14, q15, [x10, #224]
    ldp q16, q17, [x10, #256]
    ldp q18, q19, [x10, #288]
    ldp q20, q21, [x10, #320]
    ldp q22, q23, [x10, #352]
    ldp q24, q25, [x10, #384]
    ldp q26, q27, [x10, #416]
    ldp q28, q29, [x10, #448]
    ldp q30, q31, [x10, #480]
    // Each system register is written only if the frame's value differs from the one it
    // holds (a read is cheap): under TCG every `msr` to one ends the translation block and
    // returns to QEMU's loop, and after most traps none of them changed.
    ldp x8, x9, [sp, #304]
    mrs x10, fpcr
    cmp x10, x8
    b.eq 21f
    msr fpcr, x8
21: mrs x10, fpsr
    cmp x10, x9
    b.eq 22f
    msr fpsr, x9
22: ldp x2, x3, [sp, #256]
    mrs x10, elr_el1
    cmp x10, x2
    b.eq 23f
    msr elr_el1, x2
23: mrs x10, spsr_el1
    cmp x10, x3
    b.eq 24f
    msr spsr_el1, x3
24: and x7, x3, #0xf
    cbnz x7, 1f
    ldr x4, [sp, #248]
    mrs x10, sp_el0
    cmp x10, x4
    b.eq 25f
    msr sp_el0, x4
25: ldr x5, [sp, #272]
    mrs x10, tpidr_el0
    cmp x10, x5
    b.eq 1f
    msr tpidr_el0, x5
1:
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    ldr x30, [sp, #240]
    add sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
    emergency = sym ARCH_EMERGENCY_STACK,
    emergency_size = const EMERGENCY_STACK_SIZE,
    dispatch = sym trap_dispatch,
);

extern "C" {
    static arch_exception_vectors: u8;
}

static HOOKS: AtomicPtr<TrapHooks> = AtomicPtr::new(core::ptr::null_mut());

/// Points VBAR_EL1 at the vector table. Exceptions before [`install`] are reported on the
/// console and power the machine off with code 3. Called by the boot path (`early_init`) as
/// soon as it runs on the higher half.
pub fn set_vectors() {
    // SAFETY: the table is 2 KiB aligned code in the kernel image, mapped for good.
    unsafe {
        asm!(
            "msr vbar_el1, {}",
            "isb",
            in(reg) core::ptr::addr_of!(arch_exception_vectors) as u64,
            options(nostack, preserves_flags)
        )
    };
}

/// Installs the vector table and brings up the GIC and the system-call state; interrupts stay
/// masked.
pub fn init() {
    set_vectors();
    super::gic::init();
    super::syscall::init();
}

/// Routes traps to the nucleus from now on.
pub fn install(hooks: &'static TrapHooks) {
    init();
    HOOKS.store(hooks as *const TrapHooks as *mut TrapHooks, Ordering::Release);
}

fn hooks() -> Option<&'static TrapHooks> {
    let p = HOOKS.load(Ordering::Acquire);
    // SAFETY: only ever set from a `&'static TrapHooks`.
    (!p.is_null()).then(|| unsafe { &*p })
}

// Exception classes (ESR_EL1.EC).
pub const EC_UNKNOWN: u64 = 0x00;
pub const EC_SVC64: u64 = 0x15;
const EC_INSTR_ABORT_LOWER: u64 = 0x20;
const EC_INSTR_ABORT_SAME: u64 = 0x21;
const EC_DATA_ABORT_LOWER: u64 = 0x24;
const EC_DATA_ABORT_SAME: u64 = 0x25;

/// Name and class of an instruction (`data = false`) or data abort from its fault status code.
fn abort_name(data: bool, fsc: u64) -> (&'static str, ExceptionClass) {
    use ExceptionClass::*;
    let (d, i) = match fsc {
        0b000100..=0b000111 => (
            ("data abort (page fault: not mapped)", PageFault),
            ("instruction abort (page fault: not mapped)", PageFault),
        ),
        0b001000..=0b001011 => (
            ("data abort (page fault: access flag)", PageFault),
            ("instruction abort (page fault: access flag)", PageFault),
        ),
        0b001100..=0b001111 => (
            ("data abort (page fault: permission)", PageFault),
            ("instruction abort (page fault: permission)", PageFault),
        ),
        0b100001 => (("data abort (alignment fault)", Alignment), ("instruction abort (alignment fault)", Alignment)),
        0b000000..=0b000011 => {
            (("data abort (address size fault)", Other), ("instruction abort (address size fault)", Other))
        }
        0b110000 => (("data abort (TLB conflict)", Other), ("instruction abort (TLB conflict)", Other)),
        _ => (("data abort (external abort)", Other), ("instruction abort (external abort)", Other)),
    };
    if data {
        d
    } else {
        i
    }
}

fn exception_name(ec: u64, esr: u64) -> (&'static str, ExceptionClass) {
    use ExceptionClass::*;
    match ec {
        EC_UNKNOWN => ("undefined instruction", IllegalInstruction),
        0x01 => ("wfi/wfe trapped", Other),
        0x07 => ("FP/SIMD access trapped", Other),
        0x0e => ("illegal execution state", IllegalInstruction),
        EC_SVC64 => ("svc (system call) from the kernel", Other),
        0x16 => ("hvc", Other),
        0x17 => ("smc", Other),
        0x18 => ("system register access trapped", IllegalInstruction),
        EC_INSTR_ABORT_LOWER | EC_INSTR_ABORT_SAME => abort_name(false, esr & 0x3f),
        0x22 => ("pc alignment fault", Alignment),
        EC_DATA_ABORT_LOWER | EC_DATA_ABORT_SAME => abort_name(true, esr & 0x3f),
        0x26 => ("sp alignment fault", Alignment),
        0x28 | 0x2c => ("floating-point exception", Other),
        0x2f => ("SError (asynchronous abort)", Other),
        0x30 | 0x31 => ("hardware breakpoint", Breakpoint),
        0x32 | 0x33 => ("software step", Breakpoint),
        0x34 | 0x35 => ("watchpoint", Breakpoint),
        0x3c => ("brk (breakpoint)", Breakpoint),
        _ => ("unknown exception class", Other),
    }
}

/// Decodes a synchronous exception frame into the arch-neutral description.
pub fn decode(frame: &TrapFrame) -> ExceptionInfo {
    let ec = (frame.esr >> 26) & 0x3f;
    let (name, class) = exception_name(ec, frame.esr);
    let is_data_abort = matches!(ec, EC_DATA_ABORT_LOWER | EC_DATA_ABORT_SAME);
    let has_addr = is_data_abort || matches!(ec, EC_INSTR_ABORT_LOWER | EC_INSTR_ABORT_SAME | 0x22 | 0x34 | 0x35);
    ExceptionInfo {
        class,
        name,
        vector: ec,
        pc: frame.elr,
        addr: has_addr.then_some(frame.far),
        code: frame.esr,
        sp: frame.sp,
        from_user: frame.from_user(),
        // WnR (ISS bit 6); cache maintenance (CM, bit 8) reports as a write but is not one.
        write: is_data_abort && frame.esr & (1 << 6) != 0 && frame.esr & (1 << 8) == 0,
    }
}

fn report_and_stop(what: &dyn core::fmt::Display) -> ! {
    super::cpu::disable_interrupts();
    let _ = core::fmt::write(&mut RawWriter, format_args!("\r\nCPU EXCEPTION: {what}\r\n"));
    super::power::poweroff(3)
}

fn sync(frame: &mut TrapFrame) {
    let ec = (frame.esr >> 26) & 0x3f;
    if frame.from_user() && ec == EC_SVC64 {
        match hooks() {
            Some(h) => (h.syscall)(frame),
            None => frame.x[0] = (-38i64) as u64, // ENOSYS
        }
        return;
    }
    if ec == EC_UNKNOWN && !frame.from_user() && super::power::is_probe_instruction(frame.elr) {
        frame.elr += 4; // an unimplemented semihosting/PSCI call while powering off: skip it
        return;
    }
    let info = decode(frame);
    match hooks() {
        Some(h) => (h.exception)(&info, frame),
        None => report_and_stop(&format_args!("{info} (before trap hooks)")),
    }
}

fn irq() {
    let iar = super::gic::acknowledge();
    let id = iar & 0x3ff;
    if id >= super::gic::SPECIAL_INTID {
        return;
    }
    if id == super::timer::TIMER_INTID {
        super::timer::rearm();
        super::gic::end(iar);
        if let Some(h) = hooks() {
            (h.timer_tick)();
        }
    } else if id >= 32 {
        // A device line (SPI): disabled before the end of interrupt, so that a level line still
        // asserted does not fire again at once; its driver's acknowledgement enables it again.
        super::gic::disable(id);
        super::gic::end(iar);
        if let Some(h) = hooks() {
            (h.device_irq)(id);
        }
    } else {
        super::gic::end(iar);
        let _ = core::fmt::write(&mut RawWriter, format_args!("\r\nunexpected interrupt {id}\r\n"));
    }
}

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    dispatch(frame);
    if frame.from_user() {
        if let Some(h) = hooks() {
            (h.user_return)(frame);
        }
    }
}

fn dispatch(frame: &mut TrapFrame) {
    match frame.kind & 0xff {
        VectorKind::EL1_SYNC | VectorKind::EL0_SYNC => sync(frame),
        VectorKind::EL1_IRQ | VectorKind::EL0_IRQ => irq(),
        kind => {
            let what = match kind {
                VectorKind::EL1_FIQ | VectorKind::EL0_FIQ => "FIQ (never routed here)",
                VectorKind::EL1_SERROR | VectorKind::EL0_SERROR => "SError (asynchronous abort)",
                0..=3 => "exception taken on SP_EL0 in the kernel",
                _ => "exception from AArch32 user mode",
            };
            report_and_stop(&format_args!(
                "{what}: vector={kind} esr={:#x} elr={:#x} far={:#x} spsr={:#x} sp={:#x}",
                frame.esr, frame.elr, frame.far, frame.spsr, frame.sp
            ))
        }
    }
}
