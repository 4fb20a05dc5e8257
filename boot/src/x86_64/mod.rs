//! x86_64 boot: the PVH entry (Xen's `XEN_ELFNOTE_PHYS32_ENTRY`, which QEMU's `-kernel` honours
//! on `pc`, `q35` and `microvm`), the first page tables, and the jump to long mode.
//!
//! At `pvh_start32` the CPU is in 32-bit protected mode, paging off, `ebx` = physical address of
//! the `hvm_start_info`. We build three mappings with 2 MiB pages:
//! * identity of the first 4 GiB (only needed until we run in the higher half; the nucleus
//!   drops it when it builds its own kernel page tables),
//! * the direct map of physical memory at `arch::mm::PHYS_OFFSET` (the same 4 GiB),
//! * the kernel image at -2 GiB (`KERNEL_VMA` in the linker script) → physical 0..1 GiB.
//!
//! then enable PAE, long mode, NX and paging, and far-jump to 64-bit code that moves to the
//! higher half, switches to the boot stack and calls [`x86_64_boot_main`].

use core::arch::global_asm;

/// Boot stack of the first CPU (the nucleus gives every task its own stack later).
const BOOT_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct BootStack([u8; BOOT_STACK_SIZE]);

/// Cold data: used only until the nucleus runs tasks (the linker script's cold rule).
#[no_mangle]
#[link_section = ".bss..cold.boot_stack"]
static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);

// The PVH note: name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY (18), desc = 32-bit entry address.
global_asm!(
    r#"
    .pushsection .note.pvh, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .balign 4
    .long pvh_start32
    .balign 4
    .popsection
"#
);

global_asm!(
    r#"
    .pushsection .boot.bss, "aw", @nobits
    .balign 4096
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096 * 4
    .popsection

    .pushsection .boot.data, "aw"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt
    .popsection

    .pushsection .boot.text, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov edi, ebx

    // PD entries: 2048 x 2 MiB covering 0..4 GiB; the last GiB (MMIO) uncached.
    lea ebx, [boot_pd]
    xor ecx, ecx
1:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83
    cmp ecx, 1536
    jb 2f
    or eax, 0x18
2:
    mov [ebx + ecx * 8], eax
    mov edx, ecx
    shr edx, 11
    mov [ebx + ecx * 8 + 4], edx
    inc ecx
    cmp ecx, 2048
    jne 1b

    // PDPT low: 4 entries → the 4 PDs.
    lea eax, [boot_pd + 0x3]
    mov [boot_pdpt_low], eax
    lea eax, [boot_pd + 0x1003]
    mov [boot_pdpt_low + 8], eax
    lea eax, [boot_pd + 0x2003]
    mov [boot_pdpt_low + 16], eax
    lea eax, [boot_pd + 0x3003]
    mov [boot_pdpt_low + 24], eax
    // PDPT high: entry 510 (-2 GiB) → first PD (physical 0..1 GiB).
    lea eax, [boot_pd + 0x3]
    mov [boot_pdpt_high + 510 * 8], eax

    // PML4: 0 = identity, 256 = direct map, 511 = kernel.
    lea eax, [boot_pdpt_low + 0x3]
    mov [boot_pml4], eax
    mov [boot_pml4 + 256 * 8], eax
    lea eax, [boot_pdpt_high + 0x3]
    mov [boot_pml4 + 511 * 8], eax

    // CR4: PAE | PGE | OSFXSR | OSXMMEXCPT.
    mov eax, cr4
    or eax, (1 << 5) | (1 << 7) | (1 << 9) | (1 << 10)
    mov cr4, eax
    lea eax, [boot_pml4]
    mov cr3, eax
    // EFER: LME | NXE.
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    // CR0: PE | MP | WP | PG, clear EM.
    mov eax, cr0
    and eax, ~(1 << 2)
    or eax, (1 << 0) | (1 << 1) | (1 << 16) | (1 << 31)
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    push 0x08
    lea eax, [pvh_start64]
    push eax
    retf

    .code64
pvh_start64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ax, ax
    mov fs, ax
    mov gs, ax
    movabs rax, offset pvh_higher_half
    jmp rax
    .popsection

    .section .text.pvh_higher_half, "ax"
pvh_higher_half:
    movabs rsp, offset BOOT_STACK + {stack_size}
    xor rbp, rbp
    // edi still holds the hvm_start_info physical address.
    call {main}
    ud2
"#,
    stack_size = const BOOT_STACK_SIZE,
    main = sym x86_64_boot_main,
);

extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
}

/// First Rust code, on the higher-half mapping and the boot stack.
extern "C" fn x86_64_boot_main(start_info_pa: u32) -> ! {
    // Only the addresses of these linker-script symbols are used, never their contents.
    let (kstart, kend) =
        (core::ptr::addr_of!(__kernel_phys_start) as u64, core::ptr::addr_of!(__kernel_phys_end) as u64);
    let info = arch::x86_64::pvh::boot_info(start_info_pa as u64, (kstart, kend));
    crate::kernel_entry(info)
}
