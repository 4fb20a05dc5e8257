//! The IDT and the common trap path. 256 stubs (16 bytes apart) push a dummy error code where
//! the CPU pushes none, then the vector, and jump to `trap_common`, which saves every
//! general-purpose register into a [`TrapFrame`] and calls [`trap_dispatch`].
//!
//! Exceptions (vectors 0..32) are decoded into an [`ExceptionInfo`] and handed to the nucleus's
//! hook, which decides (resume, kill the task, or halt with a report). The APIC timer calls the
//! tick hook after the EOI (the hook may switch tasks, so the EOI must not wait for it). A device
//! line (I/O APIC vector) is masked, then EOIed, then handed to the device hook.

use super::apic;
use super::gdt;
use crate::trapinfo::{ExceptionClass, ExceptionInfo, TrapHooks};
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicPtr, Ordering};

/// Registers saved on trap entry, lowest address first.
#[repr(C)]
#[derive(Debug, Default, Clone)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

global_asm!(
    r#"
    .section .text.trap, "ax"
    .balign 16
    .global trap_stubs
trap_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push 0
    .endif
    push vec
    jmp trap_common
    .set vec, vec + 1
    .endr

trap_common:
    // From user mode (CPL 3 in the saved CS): switch to the kernel's GS base.
    test qword ptr [rsp + 24], 3
    jz trap_common_saved
    swapgs
    .global trap_common_saved
trap_common_saved:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {dispatch}
    .global trap_return
trap_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    test qword ptr [rsp + 24], 3
    jz 2f
    // Back to user mode. `sysretq` is much cheaper than `iretq` (under TCG too) and gives
    // exactly the state the frame describes when RCX holds the return RIP and R11 the RFLAGS
    // (as `syscall` left them, unless the server replaced the registers) and the RIP is in the
    // lower half (a non-canonical RCX would fault in ring 0, on the user stack). CS and SS come
    // from STAR: the user selectors (see `syscall::init`).
    cmp rcx, [rsp + 16]
    jne 1f
    cmp r11, [rsp + 32]
    jne 1f
    mov r11, rcx
    shr r11, 47
    mov r11, [rsp + 32]
    jnz 1f
    swapgs
    mov rsp, [rsp + 40]
    sysretq
1:
    swapgs
2:
    add rsp, 16
    iretq
"#,
    dispatch = sym trap_dispatch,
);

extern "C" {
    static trap_stubs: u8;
}

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

static mut IDT: [Gate; 256] =
    [Gate { offset_low: 0, selector: 0, ist: 0, type_attr: 0, offset_mid: 0, offset_high: 0, reserved: 0 }; 256];

static HOOKS: AtomicPtr<TrapHooks> = AtomicPtr::new(core::ptr::null_mut());

/// Loads the GDT/TSS and the IDT and brings up the local APIC; interrupts stay masked.
pub fn init() {
    gdt::init();
    super::syscall::init();
    // SAFETY: single-threaded early boot; `trap_stubs` is the 256 x 16-byte stub table above.
    unsafe {
        let base = core::ptr::addr_of!(trap_stubs) as u64;
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (v, gate) in idt.iter_mut().enumerate() {
            let addr = base + 16 * v as u64;
            *gate = Gate {
                offset_low: addr as u16,
                selector: gdt::KERNEL_CS,
                ist: if v == 8 { gdt::DOUBLE_FAULT_IST } else { 0 },
                // Present, interrupt gate; breakpoint (3) callable from user mode.
                type_attr: if v == 3 { 0xee } else { 0x8e },
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            };
        }
        #[repr(C, packed)]
        struct Ptr {
            limit: u16,
            base: u64,
        }
        let ptr = Ptr { limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16, base: idt.as_ptr() as u64 };
        asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags));
    }
    apic::init();
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

fn exception_name(vector: u64) -> (&'static str, ExceptionClass) {
    use ExceptionClass::*;
    match vector {
        0 => ("#DE divide error", DivideError),
        1 => ("#DB debug", Other),
        2 => ("NMI", Other),
        3 => ("#BP breakpoint", Breakpoint),
        4 => ("#OF overflow", Other),
        5 => ("#BR bound range", Other),
        6 => ("#UD invalid opcode", IllegalInstruction),
        7 => ("#NM device not available", Other),
        8 => ("#DF double fault", DoubleFault),
        10 => ("#TS invalid TSS", Other),
        11 => ("#NP segment not present", GeneralProtection),
        12 => ("#SS stack-segment fault", GeneralProtection),
        13 => ("#GP general protection", GeneralProtection),
        14 => ("#PF page fault", PageFault),
        16 => ("#MF x87 floating point", Other),
        17 => ("#AC alignment check", Alignment),
        18 => ("#MC machine check", Other),
        19 => ("#XM SIMD floating point", Other),
        20 => ("#VE virtualization", Other),
        21 => ("#CP control protection", Other),
        _ => ("reserved exception", Other),
    }
}

fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Decodes an exception frame into the arch-neutral description.
pub fn decode(frame: &TrapFrame) -> ExceptionInfo {
    let (name, class) = exception_name(frame.vector);
    let is_pf = frame.vector == 14;
    // A double fault is most often a page fault that faulted again while pushing its frame (a
    // kernel stack overflow): CR2 still names the address, so report it.
    let has_addr = is_pf || frame.vector == 8;
    ExceptionInfo {
        class,
        name,
        vector: frame.vector,
        pc: frame.rip,
        addr: has_addr.then(read_cr2),
        code: frame.error_code,
        sp: frame.rsp,
        from_user: frame.cs & 3 == 3,
        write: is_pf && frame.error_code & 2 != 0,
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
    let vector = frame.vector;
    if vector == super::syscall::SYSCALL_VECTOR {
        match hooks() {
            Some(h) => (h.syscall)(frame),
            None => frame.rax = (-38i64) as u64, // ENOSYS
        }
    } else if vector < 32 {
        let info = decode(frame);
        match hooks() {
            Some(h) => (h.exception)(&info, frame),
            None => {
                let mut w = super::console::RawWriter;
                let _ = core::fmt::write(&mut w, format_args!("\r\nCPU EXCEPTION before trap hooks: {info}\r\n"));
                super::power::poweroff(3);
            }
        }
    } else if vector == apic::SPURIOUS_VECTOR as u64 || (0xe0..0xf0).contains(&vector) {
        // Spurious APIC interrupt or a stray legacy PIC line: nothing to acknowledge.
    } else if let Some(line) = super::dev::line_of_vector(vector) {
        // A device line: masked before the EOI (a level-triggered line still asserted would
        // fire again at once), unmasked by its driver's acknowledgement.
        super::ioapic::mask(line);
        apic::eoi();
        if let Some(h) = hooks() {
            (h.device_irq)(line);
        }
    } else {
        apic::eoi();
        if let Some(h) = hooks() {
            if vector == apic::TIMER_VECTOR as u64 {
                (h.timer_tick)();
            } else {
                let mut w = super::console::RawWriter;
                let _ = core::fmt::write(&mut w, format_args!("\r\nunexpected interrupt vector {vector:#x}\r\n"));
            }
        }
    }
}
