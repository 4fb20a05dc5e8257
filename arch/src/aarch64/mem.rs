//! `memcpy` and `memset` for the kernel image, in assembly: 64 bytes per iteration through the
//! SIMD registers, then 32/16/8/4/2/1-byte tails, with unaligned accesses (allowed on Normal
//! memory: `SCTLR_EL1.A` is clear, and these are never used on device memory).
//!
//! They replace `compiler_builtins`' portable versions (weak symbols), which the
//! `aarch64-unknown-none` target (built for `strict-align`) reduces to 8-byte and byte loops:
//! message and frame copies are on every IPC and trap path, and under TCG every guest
//! instruction counts. Written in assembly so that the compiler cannot turn the loops back into
//! calls to themselves. `memmove` and `memcmp` stay `compiler_builtins`'.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.arch_mem, "ax"
    .global memcpy
    .type memcpy, %function
    // memcpy(dst = x0, src = x1, n = x2) -> dst; the regions must not overlap.
memcpy:
    mov x3, x0
    cmp x2, #64
    b.lo 2f
1:  ldp q0, q1, [x1]
    ldp q2, q3, [x1, #32]
    add x1, x1, #64
    sub x2, x2, #64
    stp q0, q1, [x3]
    stp q2, q3, [x3, #32]
    add x3, x3, #64
    cmp x2, #64
    b.hs 1b
2:  tbz x2, #5, 3f
    ldp q0, q1, [x1], #32
    stp q0, q1, [x3], #32
3:  tbz x2, #4, 4f
    ldr q0, [x1], #16
    str q0, [x3], #16
4:  tbz x2, #3, 5f
    ldr x4, [x1], #8
    str x4, [x3], #8
5:  tbz x2, #2, 6f
    ldr w4, [x1], #4
    str w4, [x3], #4
6:  tbz x2, #1, 7f
    ldrh w4, [x1], #2
    strh w4, [x3], #2
7:  tbz x2, #0, 8f
    ldrb w4, [x1]
    strb w4, [x3]
8:  ret
    .size memcpy, . - memcpy

    .global memset
    .type memset, %function
    // memset(dst = x0, c = w1, n = x2) -> dst.
memset:
    and x4, x1, #0xff
    mov x5, #0x0101010101010101
    mul x4, x4, x5
    dup v0.2d, x4
    mov x3, x0
    cmp x2, #64
    b.lo 2f
1:  stp q0, q0, [x3]
    stp q0, q0, [x3, #32]
    add x3, x3, #64
    sub x2, x2, #64
    cmp x2, #64
    b.hs 1b
2:  tbz x2, #5, 3f
    stp q0, q0, [x3], #32
3:  tbz x2, #4, 4f
    str q0, [x3], #16
4:  tbz x2, #3, 5f
    str x4, [x3], #8
5:  tbz x2, #2, 6f
    str w4, [x3], #4
6:  tbz x2, #1, 7f
    strh w4, [x3], #2
7:  tbz x2, #0, 8f
    strb w4, [x3]
8:  ret
    .size memset, . - memset
"#
);
