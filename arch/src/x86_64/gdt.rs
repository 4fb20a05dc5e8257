//! The GDT and the TSS. Segments are flat; the GDT exists for the CPL switch (kernel/user code
//! and data selectors, in the order `syscall`/`sysret` require) and the TSS for the stacks the
//! CPU switches to: `RSP0` on entry from user mode, `IST1` for double faults so that a kernel
//! stack overflow (which faults again while pushing the #PF frame) still gets reported.

use core::arch::asm;
use core::mem::size_of;

pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_DS: u16 = 0x10;
pub const USER_DS: u16 = 0x18 | 3;
pub const USER_CS: u16 = 0x20 | 3;
pub const TSS_SEL: u16 = 0x28;

/// IST slot used by the double-fault handler (1-based as in the IDT gate).
pub const DOUBLE_FAULT_IST: u8 = 1;

#[repr(C, packed)]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

#[repr(C, align(16))]
struct Stack([u8; 16384]);

static mut TSS: Tss = Tss {
    _reserved0: 0,
    rsp: [0; 3],
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    iomap_base: size_of::<Tss>() as u16,
};
#[link_section = ".bss..cold.double_fault_stack"]
static mut DOUBLE_FAULT_STACK: Stack = Stack([0; 16384]);
static mut GDT: [u64; 7] = [0; 7];

#[repr(C, packed)]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// Loads the GDT and TSS of the boot CPU. Call once, before interrupts are enabled.
pub fn init() {
    // SAFETY: single-threaded early boot; nothing else references these statics yet, and the
    // descriptors written are valid long-mode descriptors for flat segments and a 64-bit TSS.
    unsafe {
        let tss = core::ptr::addr_of_mut!(TSS);
        let df_top = core::ptr::addr_of!(DOUBLE_FAULT_STACK) as u64 + size_of::<Stack>() as u64;
        (*tss).ist[(DOUBLE_FAULT_IST - 1) as usize] = df_top;
        let base = tss as u64;
        let limit = (size_of::<Tss>() - 1) as u64;
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        gdt[1] = 0x00af_9a00_0000_ffff; // kernel code, 64-bit
        gdt[2] = 0x00cf_9200_0000_ffff; // kernel data
        gdt[3] = 0x00cf_f200_0000_ffff; // user data
        gdt[4] = 0x00af_fa00_0000_ffff; // user code, 64-bit
        gdt[5] = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x89 << 40)
            | (((limit >> 16) & 0xf) << 48)
            | (((base >> 24) & 0xff) << 56);
        gdt[6] = base >> 32;
        let ptr = DescriptorPointer { limit: (size_of::<[u64; 7]>() - 1) as u16, base: gdt.as_ptr() as u64 };
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ss, {ds:x}",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = const KERNEL_CS as u64,
            ds = in(reg) KERNEL_DS as u64,
            tss = in(reg) TSS_SEL as u64,
            tmp = lateout(reg) _,
        );
    }
}

/// Sets the stack the CPU switches to on a trap from user mode.
pub fn set_kernel_stack(top: u64) {
    // SAFETY: RSP0 is read by the CPU only on a privilege change; a plain write suffices.
    unsafe { core::ptr::addr_of_mut!(TSS.rsp).cast::<u64>().write_unaligned(top) }
}
