//! Trace points that cost one `nop` when tracing is off, and nothing else.
//!
//! A trace point written as `if ENABLED { record(..) }` in Rust makes the compiler treat the
//! whole function as one that calls out: values live across the (cold) call move to callee-saved
//! registers, which the prologue then saves on every path, and inlining decisions change. Here a
//! trace point is one `asm!` block: inline, a `nop`; out of line (in `.text.trace_points`), a
//! stub that saves x0-x18 and the frame record, moves the six arguments into x0-x5, calls the
//! hook and branches back. The block records (site, stub) in `.trace_sites` (bracketed by
//! `__trace_sites_start/_end` in the linker script); [`set_sites`] rewrites every site as
//! `b stub` (tracing on) or `nop` (off), like Linux's jump labels. The vector registers the C
//! ABI lets a callee clobber (v0-v7, v16-v31) are declared clobbered instead of saved: the
//! nucleus keeps no vector values live across a trace point in practice, so this costs nothing
//! when off and saves 24 register stores per record when on.
//!
//! Invariants: the stub leaves every general register as it found them (flags and the
//! caller-saved vector registers are declared clobbered); SP stays 16-byte aligned; about 224
//! bytes of stack plus the hook's frame. Kernel text lies in the direct map, mapped read-write
//! at EL1; sites are rewritten only by [`set_sites`], with interrupts masked, followed by the
//! cache maintenance the architecture requires for modified instructions.
//!
//! Must not: be used where the stack may be unusable, or with a hook that is not an
//! `extern "C" fn(u64, u64, u64, u64, u64, u64)`; [`set_sites`] must not run while another CPU
//! may execute a site.

/// One trace point: the address of its `nop` and of its stub.
#[repr(C)]
struct Site {
    at: u64,
    stub: u64,
}

extern "C" {
    static __trace_sites_start: Site;
    static __trace_sites_end: Site;
}

const NOP: u32 = 0xd503_201f;

fn sites() -> &'static [Site] {
    // SAFETY: the linker script brackets the `.trace_sites` input sections, which hold only the
    // 16-byte `Site` records written by `trace_hook!`, with these two symbols; the section is
    // read-only data, never written.
    unsafe {
        let start = core::ptr::addr_of!(__trace_sites_start);
        let end = core::ptr::addr_of!(__trace_sites_end);
        core::slice::from_raw_parts(start, (end as usize - start as usize) / core::mem::size_of::<Site>())
    }
}

/// Number of trace points in the kernel.
pub fn site_count() -> usize {
    sites().len()
}

/// Turns every trace point on (`b` to its stub) or off (`nop`).
pub fn set_sites(on: bool) {
    super::cpu::without_interrupts(|| {
        for s in sites() {
            let offset = (s.stub as i64).wrapping_sub(s.at as i64) >> 2;
            let insn = if on { 0x1400_0000 | (offset as u32 & 0x03ff_ffff) } else { NOP };
            // SAFETY: `s.at` is a site's 4-byte instruction in kernel text, which is mapped
            // read-write (the direct map); interrupts are masked and no other CPU runs. The
            // stub is in the same image, well within a branch's ±128 MiB. Then the data cache
            // line is cleaned to the point of unification and the instruction cache line
            // invalidated (ARM ARM B2.4.4, "concurrent modification and execution").
            unsafe {
                (s.at as *mut u32).write_volatile(insn);
                core::arch::asm!("dc cvau, {0}", "dsb ish", "ic ivau, {0}", "dsb ish", in(reg) s.at, options(nostack, preserves_flags));
            }
        }
        // SAFETY: a context synchronisation event: later instructions are fetched anew.
        unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
    })
}

/// `trace_hook!(HOOK; a [, b ..f])`: once [`set_sites`] has turned trace points on, calls
/// `HOOK(a, b, c, d, e, f)` (an `extern "C" fn` of six `u64`s; arguments not given are 0);
/// otherwise costs a `nop`. The given arguments are put in registers either way (keep them
/// cheap: values already at hand; leave trailing zeros out rather than pass them).
#[macro_export]
macro_rules! trace_hook {
    ($hook:path; $a:expr) => {
        $crate::__trace_site!($hook; "str {a}, [sp, #0]"; "ldr x0, [sp, #0]"; "mov x1, xzr\nmov x2, xzr\nmov x3, xzr\nmov x4, xzr\nmov x5, xzr"; a = $a)
    };
    ($hook:path; $a:expr, $b:expr) => {
        $crate::__trace_site!($hook; "stp {a}, {b}, [sp, #0]"; "ldp x0, x1, [sp, #0]"; "mov x2, xzr\nmov x3, xzr\nmov x4, xzr\nmov x5, xzr"; a = $a, b = $b)
    };
    ($hook:path; $a:expr, $b:expr, $c:expr) => {
        $crate::__trace_site!($hook; "stp {a}, {b}, [sp, #0]\nstr {c}, [sp, #16]"; "ldp x0, x1, [sp, #0]\nldr x2, [sp, #16]"; "mov x3, xzr\nmov x4, xzr\nmov x5, xzr"; a = $a, b = $b, c = $c)
    };
    ($hook:path; $a:expr, $b:expr, $c:expr, $d:expr) => {
        $crate::__trace_site!($hook; "stp {a}, {b}, [sp, #0]\nstp {c}, {d}, [sp, #16]"; "ldp x0, x1, [sp, #0]\nldp x2, x3, [sp, #16]"; "mov x4, xzr\nmov x5, xzr"; a = $a, b = $b, c = $c, d = $d)
    };
    ($hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        $crate::__trace_site!($hook; "stp {a}, {b}, [sp, #0]\nstp {c}, {d}, [sp, #16]\nstr {e}, [sp, #32]"; "ldp x0, x1, [sp, #0]\nldp x2, x3, [sp, #16]\nldr x4, [sp, #32]"; "mov x5, xzr"; a = $a, b = $b, c = $c, d = $d, e = $e)
    };
    ($hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        $crate::__trace_site!($hook; "stp {a}, {b}, [sp, #0]\nstp {c}, {d}, [sp, #16]\nstp {e}, {f}, [sp, #32]"; "ldp x0, x1, [sp, #0]\nldp x2, x3, [sp, #16]\nldp x4, x5, [sp, #32]"; ""; a = $a, b = $b, c = $c, d = $d, e = $e, f = $f)
    };
}

/// The start of every trace site (both macros): the inline `nop` at `6:` with `7:` after it,
/// the (site, stub) pair in `.trace_sites`, and the stub's label `8:` in `.text.trace_points`
/// (the template goes on there, up to its `b 7b` and `.popsection`).
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_site_head {
    () => {
        "6:\nnop\n7:\n.pushsection .trace_sites, \"a\"\n.balign 8\n.quad 6b\n.quad 8f\n.popsection\n.pushsection .text.trace_points, \"ax\"\n8:"
    };
}

/// A stub's saves around a call of a C hook: the frame record (x29 = the frame, what was
/// below SP before at `x29 + 16`), then x0-x18, keeping SP 16-byte aligned.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_save_for_call {
    () => {
        "stp x29, x30, [sp, #-16]!\nmov x29, sp\nstp x0, x1, [sp, #-16]!\nstp x2, x3, [sp, #-16]!\nstp x4, x5, [sp, #-16]!\nstp x6, x7, [sp, #-16]!\nstp x8, x9, [sp, #-16]!\nstp x10, x11, [sp, #-16]!\nstp x12, x13, [sp, #-16]!\nstp x14, x15, [sp, #-16]!\nstp x16, x17, [sp, #-16]!\nstr x18, [sp, #-16]!"
    };
}

/// Undoes [`__trace_save_for_call!`] after the call.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_restore_after_call {
    () => {
        "ldr x18, [sp], #16\nldp x16, x17, [sp], #16\nldp x14, x15, [sp], #16\nldp x12, x13, [sp], #16\nldp x10, x11, [sp], #16\nldp x8, x9, [sp], #16\nldp x6, x7, [sp], #16\nldp x4, x5, [sp], #16\nldp x2, x3, [sp], #16\nldp x0, x1, [sp], #16\nldp x29, x30, [sp], #16"
    };
}

/// The body of [`trace_hook!`]: `$push` spills the given arguments into a 48-byte area, `$pop`
/// loads them into x0.., `$zero` clears the other argument registers.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_site {
    ($hook:path; $push:literal; $pop:literal; $zero:literal; $($name:ident = $val:expr),+) => {
        // SAFETY: the stub saves and restores x0-x18, x29 and x30 around the call and keeps SP
        // 16-byte aligned; flags and the caller-saved vector registers are declared clobbered;
        // `$hook` is an `extern "C" fn` taking six `u64`s. The site is a `nop` until
        // `set_sites` makes it a branch.
        unsafe {
            core::arch::asm!(
                $crate::__trace_site_head!(),
                $crate::__trace_save_for_call!(),
                "sub sp, sp, #48",
                $push,
                $pop,
                "add sp, sp, #48",
                $zero,
                "bl {hook}",
                $crate::__trace_restore_after_call!(),
                "b 7b",
                ".popsection",
                hook = sym $hook,
                $($name = in(reg) ($val) as u64,)+
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _,
                out("v24") _, out("v25") _, out("v26") _, out("v27") _,
                out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            )
        }
    };
}

/// `trace_record!(KIND, MASK; BUFFER, HOOK; a [, b ..f])`: a trace point that writes its
/// record itself. Off, a `nop` like [`trace_hook!`]; on, its stub appends the 48-byte record
/// `{CNTVCT_EL0, cpu (MPIDR Aff0), KIND, a as u32, b as u32, c as u32, d, e, f}` (arguments
/// not given are 0) to the buffer in about 35 instructions, saving only the four registers it
/// uses, and calls `HOOK(a, .. f)` with everything saved (as [`trace_hook!`] does) only when
/// the buffer has no room.
///
/// The caller's side of the contract, checked by the nucleus at compile time: `BUFFER` is a
/// static whose first word counts the records written (the stub adds one), whose second counts
/// those taken, whose third is the most records that may wait (0 makes every record take the
/// hook), and whose record slots start at byte 64, `MASK + 1` of them; the stub runs with
/// interrupts masked and nothing else writes the buffer meanwhile. The timestamp is
/// `timer::clock_counter()`, the clock of every other record.
#[macro_export]
macro_rules! trace_record {
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "stp {a}, xzr, [sp, #32]\nstp xzr, xzr, [sp, #48]\nstp xzr, xzr, [sp, #64]"; a = $a)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "stp {a}, {b}, [sp, #32]\nstp xzr, xzr, [sp, #48]\nstp xzr, xzr, [sp, #64]"; a = $a, b = $b)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr, $c:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "stp {a}, {b}, [sp, #32]\nstp {c}, xzr, [sp, #48]\nstp xzr, xzr, [sp, #64]"; a = $a, b = $b, c = $c)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr, $c:expr, $d:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "stp {a}, {b}, [sp, #32]\nstp {c}, {d}, [sp, #48]\nstp xzr, xzr, [sp, #64]"; a = $a, b = $b, c = $c, d = $d)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "stp {a}, {b}, [sp, #32]\nstp {c}, {d}, [sp, #48]\nstp {e}, xzr, [sp, #64]"; a = $a, b = $b, c = $c, d = $d, e = $e)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "stp {a}, {b}, [sp, #32]\nstp {c}, {d}, [sp, #48]\nstp {e}, {f}, [sp, #64]"; a = $a, b = $b, c = $c, d = $d, e = $e, f = $f)
    };
}

/// The room test of a record stub: to `9:` unless written < the buffer's end (byte 16); then
/// `x9` is the buffer, `x10` the written count and `$slot` (`x10` or `x12`) the slot - 64:
/// buffer + (written & `{mask}`) * 48. Uses x9-x12.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_record_room {
    ($slot:literal) => {
        concat!(
            "adrp x9, {buf}\nadd x9, x9, :lo12:{buf}\nldr x10, [x9]\nldr x11, [x9, #16]\n",
            "cmp x10, x11\nb.hs 9f\nand ",
            $slot,
            ", x10, #{mask}\nmov x11, #48\nmadd ",
            $slot,
            ", ",
            $slot,
            ", x11, x9"
        )
    };
}

/// The first words of a record, after [`__trace_record_room!`]: CNTVCT_EL0 at byte 0 of the
/// slot (`$slot` + 64), then the CPU (MPIDR Aff0) and `{kind}`, built in `$word` (a 32-bit
/// register other than `$slot`'s). Uses x11.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_record_stamp {
    ($slot:literal, $word:literal) => {
        concat!(
            "mrs x11, cntvct_el0\nstr x11, [",
            $slot,
            ", #64]\nmrs x11, mpidr_el1\nmovz ",
            $word,
            ", #{kind}, lsl #16\nbfxil ",
            $word,
            ", w11, #0, #8\nstr ",
            $word,
            ", [",
            $slot,
            ", #72]"
        )
    };
}

/// The body of [`trace_record!`]: the stub's frame is 80 bytes, x9-x12 at 0..32 and the six
/// record arguments at 32..80 (`$push` stores them, before x9-x12 are touched).
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_record_site {
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $push:literal; $($name:ident = $val:expr),+) => {
        // SAFETY: the stub restores every general register but the flags (declared clobbered)
        // and SP; it writes only the slot the buffer's protocol gives the writer (the caller's
        // contract, see `trace_record!`) and the buffer's write count; the slow path is
        // `__trace_site!`'s call of `$hook`, an `extern "C" fn` of six `u64`s, with the vector
        // registers the C ABI lets it clobber declared clobbered.
        unsafe {
            core::arch::asm!(
                $crate::__trace_site_head!(),
                "sub sp, sp, #80",
                $push,
                "stp x9, x10, [sp, #0]",
                "stp x11, x12, [sp, #16]",
                $crate::__trace_record_room!("x10"),
                $crate::__trace_record_stamp!("x10", "w12"),
                "ldp x11, x12, [sp, #32]",
                "stp w11, w12, [x10, #76]",
                "ldr x11, [sp, #48]",
                "str w11, [x10, #84]",
                "ldr x11, [sp, #56]",
                "str x11, [x10, #88]",
                "ldp x11, x12, [sp, #64]",
                "stp x11, x12, [x10, #96]",
                "ldr x11, [x9]",
                "add x11, x11, #1",
                "str x11, [x9]",
                "ldp x11, x12, [sp, #16]",
                "ldp x9, x10, [sp, #0]",
                "add sp, sp, #80",
                "b 7b",
                // No room, or a drop count to report first: the hook, everything saved.
                "9:",
                "ldp x11, x12, [sp, #16]",
                "ldp x9, x10, [sp, #0]",
                $crate::__trace_save_for_call!(),
                "ldp x0, x1, [x29, #48]",
                "ldp x2, x3, [x29, #64]",
                "ldp x4, x5, [x29, #80]",
                "bl {hook}",
                $crate::__trace_restore_after_call!(),
                "add sp, sp, #80",
                "b 7b",
                ".popsection",
                buf = sym $buf,
                hook = sym $hook,
                mask = const $mask,
                kind = const $kind,
                $($name = in(reg) ($val) as u64,)+
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _,
                out("v24") _, out("v25") _, out("v26") _, out("v27") _,
                out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            )
        }
    };
}

/// `trace_record_scratch!(KIND, MASK; BUFFER, HOOK; TASK, opcode, arg; endpoint = E, arg2 = F)`:
/// [`trace_record!`] for a record with two fields that vary, one read from memory and three
/// that do not (`{CNTVCT_EL0, cpu (MPIDR Aff0), KIND, TASK as u32, E, opcode, tag 0, arg, F}`),
/// at a site where the scratch registers are free anyway (the end of a function): the block
/// declares x9-x13 clobbered instead of saving them and stores the fields from the registers
/// they are in, ~27 instructions in all. `TASK` is a `usize` static, read by the stub (so that
/// the site keeps no register alive for it); `E` and `F` are constants a single `mov` loads.
/// The slow path calls `HOOK(TASK, E, opcode, 0, arg, F)`. Same contract as [`trace_record!`].
#[macro_export]
macro_rules! trace_record_scratch {
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $task:path, $opcode:expr, $arg:expr; endpoint = $endpoint:expr, arg2 = $arg2:expr) => {
        // SAFETY: as `__trace_record_site!`'s, except that the stub clobbers x9-x13, declared
        // so, instead of restoring them; the slow path saves the rest around the hook and
        // takes its two register arguments from the stack.
        unsafe {
            core::arch::asm!(
                $crate::__trace_site_head!(),
                $crate::__trace_record_room!("x12"),
                $crate::__trace_record_stamp!("x12", "w13"),
                "adrp x11, {task}",
                "ldr w11, [x11, :lo12:{task}]",
                "mov w13, #{endpoint}",
                "stp w11, w13, [x12, #76]",
                "str {opcode:w}, [x12, #84]",
                "stp xzr, {arg}, [x12, #88]",
                "mov x11, #{arg2}",
                "str x11, [x12, #104]",
                "add x10, x10, #1",
                "str x10, [x9]",
                "b 7b",
                "9:",
                "stp {opcode}, {arg}, [sp, #-16]!",
                $crate::__trace_save_for_call!(),
                "adrp x0, {task}",
                "ldr x0, [x0, :lo12:{task}]",
                "mov x1, #{endpoint}",
                "ldr x2, [x29, #16]",
                "mov x3, xzr",
                "ldr x4, [x29, #24]",
                "mov x5, #{arg2}",
                "bl {hook}",
                $crate::__trace_restore_after_call!(),
                "add sp, sp, #16",
                "b 7b",
                ".popsection",
                buf = sym $buf,
                hook = sym $hook,
                mask = const $mask,
                kind = const $kind,
                endpoint = const $endpoint,
                arg2 = const $arg2,
                task = sym $task,
                opcode = in(reg) ($opcode) as u64,
                arg = in(reg) ($arg) as u64,
                out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                out("v4") _, out("v5") _, out("v6") _, out("v7") _,
                out("v16") _, out("v17") _, out("v18") _, out("v19") _,
                out("v20") _, out("v21") _, out("v22") _, out("v23") _,
                out("v24") _, out("v25") _, out("v26") _, out("v27") _,
                out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            )
        }
    };
}
