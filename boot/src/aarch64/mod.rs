//! AArch64 boot: the Linux arm64 `Image` header, the first instructions, the first translation
//! tables, and the hand-off to the nucleus.
//!
//! The loader (QEMU's `-kernel` on `virt`, or any arm64 Linux boot loader) places the raw image
//! at RAM base + `text_offset` and enters `_start` at EL1 (or EL2), MMU off, with x0 = physical
//! address of the device tree. From there, position-independent code (adr/adrp only) running at
//! the physical address:
//! 1. drops from EL2 to EL1 if needed (EL1 in AArch64, timers and FP not trapped);
//! 2. masks exceptions, enables FP/SIMD (the kernel is compiled with NEON), zeroes .bss;
//! 3. builds the boot tables with 1 GiB blocks: TTBR1 maps physical 0..1 GiB (devices: GIC,
//!    PL011, virtio-mmio) as Device-nGnRE and 1..8 GiB (RAM on `virt`) as Normal write-back at
//!    `arch::mm::PHYS_OFFSET`, which is where the kernel is linked (`linker.ld`); TTBR0 maps
//!    the same physical range at its own address (identity), only to survive turning the MMU on;
//! 4. turns the MMU on, jumps to the higher half, switches to the boot stack and calls
//!    [`aarch64_boot_main`], which installs the vector table and drops the identity map
//!    (`arch::aarch64::early_init`), reads the device tree into a `BootInfo`
//!    (`arch::aarch64::dtb`) and calls `kernel_entry`.
//!
//! The descriptor, MAIR, TCR and SCTLR values come from `arch::aarch64::mm`, which owns the
//! table format; only the instructions that apply them live here.

use arch::aarch64::mm::{
    virt_to_phys, DEVICE_BLOCK, DIRECT_MAP_GIB, MAIR, NORMAL_BLOCK, SCTLR_MMU_OFF, SCTLR_MMU_ON, TCR,
};
use core::arch::global_asm;

/// Boot stack of the first CPU (the nucleus gives every task its own stack later).
const BOOT_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct BootStack([u8; BOOT_STACK_SIZE]);

/// Cold data: used only until the nucleus runs tasks (the linker script's cold rule).
#[no_mangle]
#[link_section = ".bss..cold.boot_stack"]
static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

/// The loader places the image this far above a 2 MiB-aligned base (the classic arm64 value;
/// `linker.ld` links the kernel at RAM base + this).
const TEXT_OFFSET: u64 = 0x8_0000;
/// Image header flags: little-endian (bit 0 = 0), 4 KiB pages (bits 2:1 = 1), placed near the
/// start of RAM (bit 3 = 0).
const IMAGE_FLAGS: u64 = 1 << 1;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b 1f                        // code0
    .long 0                     // code1
    .quad {text_offset}         // text_offset
    .quad __kernel_size         // image_size (.bss included)
    .quad {flags}               // flags
    .quad 0                     // res2
    .quad 0                     // res3
    .quad 0                     // res4
    .long 0x644d5241            // magic "ARM\x64"
    .long 0                     // res5 (no PE/COFF header)

1:
    mov x19, x0                 // device tree, kept until Rust
    mrs x1, CurrentEL
    and x1, x1, #0xc
    cmp x1, #8
    b.ne 2f

    // At EL2: EL1 is AArch64, EL1 may use the physical counter and timer, no FP traps, EL1
    // sees the real MIDR/MPIDR, then eret to EL1h with every exception masked.
    mov x1, #(1 << 31)
    msr hcr_el2, x1
    mrs x1, cnthctl_el2
    orr x1, x1, #3
    msr cnthctl_el2, x1
    msr cntvoff_el2, xzr
    mov x1, #0x33ff
    msr cptr_el2, x1
    mrs x1, midr_el1
    msr vpidr_el2, x1
    mrs x1, mpidr_el1
    msr vmpidr_el2, x1
    ldr x1, ={sctlr_res1}
    msr sctlr_el1, x1
    mov x1, #0x3c5
    msr spsr_el2, x1
    adr x1, 2f
    msr elr_el2, x1
    isb
    eret

2:
    msr daifset, #0xf
    mov x1, #(3 << 20)          // CPACR_EL1.FPEN: FP/SIMD untrapped at EL1 and EL0
    msr cpacr_el1, x1
    isb

    // Zero .bss (physical addresses: adrp is PC-relative and we run where we were loaded).
    adrp x1, __bss_start
    add x1, x1, :lo12:__bss_start
    adrp x2, __bss_end
    add x2, x2, :lo12:__bss_end
3:
    cmp x1, x2
    b.hs 4f
    stp xzr, xzr, [x1], #16
    b 3b
4:

    // Boot tables: both L0[0] -> the one L1 table.
    adrp x20, boot_ttbr1_l0
    adrp x21, boot_ttbr0_l0
    adrp x22, boot_l1
    orr x1, x22, #3
    str x1, [x20]
    str x1, [x21]
    ldr x1, ={device_block}     // L1[0]: physical 0..1 GiB, devices
    str x1, [x22]
    ldr x1, ={normal_block}
    mov x3, #(1 << 30)
    add x1, x1, x3              // L1[1]: physical 1..2 GiB
    mov x2, #1
5:
    str x1, [x22, x2, lsl #3]
    add x1, x1, x3
    add x2, x2, #1
    cmp x2, #{ram_blocks_end}
    b.lo 5b

    // The tables were written with the MMU (and so the data cache) off: drop any stale lines.
    mov x1, x20
    add x2, x20, #(3 * 4096)
6:
    dc ivac, x1
    add x1, x1, #64
    cmp x1, x2
    b.lo 6b
    dsb sy

    ldr x1, ={mair}
    msr mair_el1, x1
    ldr x1, ={tcr}
    mrs x2, id_aa64mmfr0_el1
    and x2, x2, #0xf            // PARange, capped at 48 bits
    mov x3, #5
    cmp x2, x3
    csel x2, x2, x3, ls
    bfi x1, x2, #32, #3
    msr tcr_el1, x1
    msr ttbr0_el1, x21
    msr ttbr1_el1, x20
    isb
    tlbi vmalle1
    dsb nsh
    isb
    ldr x1, ={sctlr}
    msr sctlr_el1, x1
    isb
    ic iallu
    dsb nsh
    isb

    ldr x1, =arch_boot_high     // absolute: the higher-half address
    br x1
    .ltorg

    .section .text.boot, "ax"
arch_boot_high:
    adrp x1, {stack}
    add x1, x1, :lo12:{stack}
    add x1, x1, #{stack_size}
    mov sp, x1
    mov x29, #0
    mov x30, #0
    mov x0, x19
    bl {main}
    brk #0

    .section .bss.boot_tables, "aw", @nobits
    .balign 4096
boot_ttbr1_l0:  .skip 4096
boot_ttbr0_l0:  .skip 4096
boot_l1:        .skip 4096
"#,
    text_offset = const TEXT_OFFSET,
    flags = const IMAGE_FLAGS,
    sctlr_res1 = const SCTLR_MMU_OFF,
    device_block = const DEVICE_BLOCK,
    normal_block = const NORMAL_BLOCK,
    ram_blocks_end = const DIRECT_MAP_GIB,
    mair = const MAIR,
    tcr = const TCR,
    sctlr = const SCTLR_MMU_ON,
    stack = sym BOOT_STACK,
    stack_size = const BOOT_STACK_SIZE,
    main = sym aarch64_boot_main,
);

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// First Rust code, on the higher half, on the boot stack, every exception masked.
extern "C" fn aarch64_boot_main(dtb_pa: u64) -> ! {
    arch::aarch64::early_init();
    // Only the addresses of these linker-script symbols are used, never their contents.
    let kernel_phys = (
        virt_to_phys(core::ptr::addr_of!(__image_start) as u64),
        virt_to_phys(core::ptr::addr_of!(__image_end) as u64),
    );
    let info = arch::aarch64::dtb::boot_info(dtb_pa, kernel_phys);
    crate::kernel_entry(info)
}
