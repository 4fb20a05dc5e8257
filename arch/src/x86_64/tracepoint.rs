//! Trace points that cost one `nop` when tracing is off, and nothing else.
//!
//! A trace point written as `if ENABLED { record(..) }` in Rust makes the compiler treat the
//! whole function as one that calls out: values live across the (cold) call move to callee-saved
//! registers, which the prologue then pushes on every path, and inlining decisions change. On
//! the IPC fast path that cost ~110 guest instructions per system call with tracing off. Here a
//! trace point is one `asm!` block that the compiler sees as clobbering nothing but the flags:
//! inline, a 5-byte `nop`; out of line (in `.text.trace_points`), a stub that saves every
//! caller-saved register, moves the six arguments into the C argument registers, aligns the
//! stack, calls the hook and jumps back. The block also records the pair (site, stub) in the
//! `.trace_sites` section, which the linker script brackets with `__trace_sites_start/_end`;
//! [`set_sites`] rewrites every site as `jmp stub` (tracing on) or back to the `nop` (off), as
//! Linux's jump labels do.
//!
//! An *inline* site ([`trace_record_scratch!`], on getpid's path) has its stub right after it
//! in the function: off, the site is a 5-byte `jmp` over the stub; on, a `nop` into it, so the
//! stub needs no jump back. Its table entry marks it by bit 63 of `stub` clear (the address
//! the `jmp` goes to, minus 2^63: every kernel address has the bit set).
//!
//! Invariants: the stub leaves every register but the flags as it found them (the kernel target
//! has no SSE state to save, and keeps the direction flag clear); it needs no red zone (the
//! kernel target has none) and about 130 bytes of stack plus the hook's frame. Sites are
//! rewritten only by [`set_sites`], with interrupts masked, through the direct map (kernel text
//! is at `KERNEL_VMA` + its physical address), on the one CPU that runs.
//!
//! Must not: be used where the stack may be unusable, or with a hook that is not an
//! `extern "C" fn(u64, u64, u64, u64, u64, u64)`; [`set_sites`] must not run on more than one
//! CPU at a time, or while another CPU may execute a site.

/// One trace point: the address of its `nop` and of its stub (for an inline site, of the code
/// after its stub, with bit 63 clear).
#[repr(C)]
struct Site {
    at: u64,
    stub: u64,
}

/// Bit 63 of [`Site::stub`]: clear for an inline site.
const OUT_OF_LINE: u64 = 1 << 63;

/// `jmp rel32` from the 5-byte site at `at` to `to`.
fn jmp5(at: u64, to: u64) -> [u8; 5] {
    let r = (to as i64).wrapping_sub(at as i64 + 5) as i32;
    let r = r.to_le_bytes();
    [0xe9, r[0], r[1], r[2], r[3]]
}

extern "C" {
    static __trace_sites_start: Site;
    static __trace_sites_end: Site;
}

/// The 5-byte `nop` (`nopl 0(%rax,%rax)`) of a site that is off.
const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

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

/// Turns every trace point on (`jmp` to its stub) or off (`nop`).
pub fn set_sites(on: bool) {
    super::cpu::without_interrupts(|| {
        for s in sites() {
            let code = match (s.stub & OUT_OF_LINE != 0, on) {
                (true, true) => jmp5(s.at, s.stub),
                (true, false) | (false, true) => NOP5,
                (false, false) => jmp5(s.at, s.stub | OUT_OF_LINE),
            };
            let alias = super::mm::phys_to_virt(s.at - super::mm::KERNEL_VMA) as *mut u8;
            for (i, b) in code.into_iter().enumerate() {
                // SAFETY: `alias` is the direct-map address of the site's five bytes of kernel
                // text (the kernel is linked at KERNEL_VMA + its physical address, and the
                // direct map covers it); interrupts are masked and no other CPU runs, so no one
                // executes the site while it is half written.
                unsafe { alias.add(i).write_volatile(b) };
            }
        }
        // The return from here is the jump that SDM vol. 3 §8.1.3 asks for before modified code
        // runs on the CPU that modified it (stores through another linear address to the same
        // physical page are detected too).
    })
}

/// `trace_hook!(HOOK; a [, b ..f])`: once [`set_sites`] has turned trace points on, calls
/// `HOOK(a, b, c, d, e, f)` (an `extern "C" fn` of six `u64`s; arguments not given are 0);
/// otherwise costs a `nop`. The given arguments are put in registers either way (keep them
/// cheap: values already at hand; leave trailing zeros out rather than pass them).
#[macro_export]
macro_rules! trace_hook {
    ($hook:path; $a:expr) => {
        $crate::__trace_site!($hook; "push {a}"; "pop rdi"; "xor esi, esi\nxor edx, edx\nxor ecx, ecx\nxor r8d, r8d\nxor r9d, r9d"; a = $a)
    };
    ($hook:path; $a:expr, $b:expr) => {
        $crate::__trace_site!($hook; "push {b}\npush {a}"; "pop rdi\npop rsi"; "xor edx, edx\nxor ecx, ecx\nxor r8d, r8d\nxor r9d, r9d"; a = $a, b = $b)
    };
    ($hook:path; $a:expr, $b:expr, $c:expr) => {
        $crate::__trace_site!($hook; "push {c}\npush {b}\npush {a}"; "pop rdi\npop rsi\npop rdx"; "xor ecx, ecx\nxor r8d, r8d\nxor r9d, r9d"; a = $a, b = $b, c = $c)
    };
    ($hook:path; $a:expr, $b:expr, $c:expr, $d:expr) => {
        $crate::__trace_site!($hook; "push {d}\npush {c}\npush {b}\npush {a}"; "pop rdi\npop rsi\npop rdx\npop rcx"; "xor r8d, r8d\nxor r9d, r9d"; a = $a, b = $b, c = $c, d = $d)
    };
    ($hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        $crate::__trace_site!($hook; "push {e}\npush {d}\npush {c}\npush {b}\npush {a}"; "pop rdi\npop rsi\npop rdx\npop rcx\npop r8"; "xor r9d, r9d"; a = $a, b = $b, c = $c, d = $d, e = $e)
    };
    ($hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        $crate::__trace_site!($hook; "push {f}\npush {e}\npush {d}\npush {c}\npush {b}\npush {a}"; "pop rdi\npop rsi\npop rdx\npop rcx\npop r8\npop r9"; ""; a = $a, b = $b, c = $c, d = $d, e = $e, f = $f)
    };
}

/// The start of every trace site (both macros): the inline 5-byte `nop` at `6:` with `7:`
/// after it, the (site, stub) pair in `.trace_sites`, and the stub's label `8:` in
/// `.text.trace_points` (the template goes on there, up to its `jmp 7b` and `.popsection`).
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_site_head {
    () => {
        "6:\n.byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n7:\n.pushsection .trace_sites, \"a\"\n.balign 8\n.quad 6b\n.quad 8f\n.popsection\n.pushsection .text.trace_points, \"ax\"\n8:"
    };
}

/// A stub's saves around a call of a C hook: every caller-saved register, then a frame in
/// `rbp` (the arguments pushed before sit at `rbp + 80`) and a 16-byte-aligned stack.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_save_for_call {
    () => {
        "push rax\npush rcx\npush rdx\npush rsi\npush rdi\npush r8\npush r9\npush r10\npush r11\npush rbp\nmov rbp, rsp\nand rsp, -16"
    };
}

/// Undoes [`__trace_save_for_call!`] after the call.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_restore_after_call {
    () => {
        "mov rsp, rbp\npop rbp\npop r11\npop r10\npop r9\npop r8\npop rdi\npop rsi\npop rdx\npop rcx\npop rax"
    };
}

/// The body of [`trace_hook!`]: `$push` spills the given arguments, `$pop` loads them into the
/// argument registers in order, `$zero` clears the others.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_site {
    ($hook:path; $push:literal; $pop:literal; $zero:literal; $($name:ident = $val:expr),+) => {
        // SAFETY: the stub saves and restores every register the hook may clobber except the
        // flags (declared clobbered by leaving out `preserves_flags`), keeps the stack 16-byte
        // aligned for the call and returns it to where it was; `$hook` is an `extern "C" fn`
        // taking six `u64`s. The site is a 5-byte nop until `set_sites` makes it a `jmp`.
        unsafe {
            core::arch::asm!(
                $crate::__trace_site_head!(),
                $crate::__trace_save_for_call!(),
                $push,
                $pop,
                $zero,
                "call {hook}",
                $crate::__trace_restore_after_call!(),
                "jmp 7b",
                ".popsection",
                hook = sym $hook,
                $($name = in(reg) ($val) as u64),+
            )
        }
    };
}

/// `trace_record!(KIND, MASK; BUFFER, HOOK; a [, b ..f])`: a trace point that writes its
/// record itself. Off, a `nop` like [`trace_hook!`]; on, its stub appends the 48-byte record
/// `{TSC, cpu 0, KIND, a as u32, b as u32, c as u32, d, e, f}` (arguments not given are 0) to
/// the buffer in about 35 instructions, saving only the three registers it uses, and calls
/// `HOOK(a, .. f)` with everything saved (as [`trace_hook!`] does) only when the buffer has no
/// room.
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
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "push 0\npush 0\npush 0\npush 0\npush 0\npush {a}"; a = $a)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "push 0\npush 0\npush 0\npush 0\npush {b}\npush {a}"; a = $a, b = $b)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr, $c:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "push 0\npush 0\npush 0\npush {c}\npush {b}\npush {a}"; a = $a, b = $b, c = $c)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr, $c:expr, $d:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "push 0\npush 0\npush {d}\npush {c}\npush {b}\npush {a}"; a = $a, b = $b, c = $c, d = $d)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "push 0\npush {e}\npush {d}\npush {c}\npush {b}\npush {a}"; a = $a, b = $b, c = $c, d = $d, e = $e)
    };
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        $crate::__trace_record_site!($kind, $mask; $buf, $hook; "push {f}\npush {e}\npush {d}\npush {c}\npush {b}\npush {a}"; a = $a, b = $b, c = $c, d = $d, e = $e, f = $f)
    };
}

/// The room test of a record stub: to `9:` unless written < the buffer's end (at byte 16);
/// then `rcx` is the slot's offset from the buffer's slots, (written & `{mask}`) * 48. Uses
/// `rcx`.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_record_room {
    () => {
        "mov rcx, qword ptr [rip + {buf}]\ncmp rcx, qword ptr [rip + {buf} + 16]\njae 9f\nand ecx, {mask}\nimul ecx, ecx, 48"
    };
}

/// The first words of a record, after [`__trace_record_room!`]: the TSC at byte 0, then the
/// CPU (0: the nucleus runs on one) and `{kind_cpu}`'s kind. Uses `rax` and `rdx`.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_record_stamp {
    () => {
        "rdtsc\nmov dword ptr [rcx + {buf} + 64], eax\nmov dword ptr [rcx + {buf} + 68], edx\nmov dword ptr [rcx + {buf} + 72], {kind_cpu}"
    };
}

/// The body of [`trace_record!`]: `$push` pushes the six record arguments (`a` last, so at the
/// lowest address). The slot is addressed as `[rcx + BUFFER + 64]`, an absolute 32-bit
/// displacement (the kernel code model puts every symbol in the top 2 GiB).
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_record_site {
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $push:literal; $($name:ident = $val:expr),+) => {
        // SAFETY: the stub restores every register but the flags (declared clobbered) and the
        // stack pointer; it writes only the slot the buffer's protocol gives the writer (the
        // caller's contract, see `trace_record!`) and the buffer's write count; the slow path
        // is `__trace_site!`'s call of `$hook`, an `extern "C" fn` of six `u64`s.
        unsafe {
            core::arch::asm!(
                $crate::__trace_site_head!(),
                $push,
                "push rax", "push rcx", "push rdx",
                $crate::__trace_record_room!(),
                $crate::__trace_record_stamp!(),
                "mov rax, qword ptr [rsp + 24]",
                "mov dword ptr [rcx + {buf} + 76], eax",
                "mov rax, qword ptr [rsp + 32]",
                "mov dword ptr [rcx + {buf} + 80], eax",
                "mov rax, qword ptr [rsp + 40]",
                "mov dword ptr [rcx + {buf} + 84], eax",
                "mov rax, qword ptr [rsp + 48]",
                "mov qword ptr [rcx + {buf} + 88], rax",
                "mov rax, qword ptr [rsp + 56]",
                "mov qword ptr [rcx + {buf} + 96], rax",
                "mov rax, qword ptr [rsp + 64]",
                "mov qword ptr [rcx + {buf} + 104], rax",
                "add qword ptr [rip + {buf}], 1",
                "pop rdx", "pop rcx", "pop rax",
                "add rsp, 48",
                "jmp 7b",
                // No room, or a drop count to report first: the hook, everything saved.
                "9:",
                "pop rdx", "pop rcx", "pop rax",
                $crate::__trace_save_for_call!(),
                "mov rdi, qword ptr [rbp + 80]",
                "mov rsi, qword ptr [rbp + 88]",
                "mov rdx, qword ptr [rbp + 96]",
                "mov rcx, qword ptr [rbp + 104]",
                "mov r8, qword ptr [rbp + 112]",
                "mov r9, qword ptr [rbp + 120]",
                "call {hook}",
                $crate::__trace_restore_after_call!(),
                "add rsp, 48",
                "jmp 7b",
                ".popsection",
                buf = sym $buf,
                hook = sym $hook,
                mask = const $mask,
                kind_cpu = const ($kind as u32) << 16,
                $($name = in(reg) ($val) as u64),+
            )
        }
    };
}

/// `trace_record_scratch!(KIND, MASK; BUFFER, HOOK; TASK, opcode, arg; endpoint = E, arg2 = F)`:
/// [`trace_record!`] for a record with two fields that vary, one read from memory and three
/// that do not (`{TSC, cpu 0, KIND, TASK as u32, E, opcode, tag 0, arg, F}`), at a site where
/// the scratch registers are free anyway (the end of a function): the block declares `rax`,
/// `rcx` and `rdx` clobbered instead of saving them and stores the fields from the registers
/// they are in, 18 instructions in all, written inline after the site (see the module
/// comment: tracing off jumps over them). `TASK` is a `usize` static, read by the stub (so that
/// the site keeps no register alive for it); `E` and `F` are constants that fit a 32-bit
/// immediate. The slow path calls `HOOK(TASK, E, opcode, 0, arg, F)`. Same contract as
/// [`trace_record!`].
#[macro_export]
macro_rules! trace_record_scratch {
    ($kind:expr, $mask:expr; $buf:path, $hook:path; $task:path, $opcode:expr, $arg:expr; endpoint = $endpoint:expr, arg2 = $arg2:expr) => {
        // SAFETY: as `__trace_record_site!`'s, except that the stub clobbers `rax`, `rcx` and
        // `rdx`, declared so, instead of restoring them; the slow path saves the rest around
        // the hook and takes its two register arguments from the stack.
        unsafe {
            core::arch::asm!(
                // An inline site: off, a jump over the stub (to `7:`); on, a `nop` into it.
                "6:",
                ".byte 0xe9",
                ".long 7f - 6b - 5",
                ".pushsection .trace_sites, \"a\"",
                ".balign 8",
                ".quad 6b",
                ".quad 7f - 0x8000000000000000",
                ".popsection",
                $crate::__trace_record_room!(),
                $crate::__trace_record_stamp!(),
                "mov eax, dword ptr [rip + {task}]",
                "mov dword ptr [rcx + {buf} + 76], eax",
                "mov dword ptr [rcx + {buf} + 80], {endpoint}",
                "mov dword ptr [rcx + {buf} + 84], {opcode:e}",
                "mov qword ptr [rcx + {buf} + 88], 0",
                "mov qword ptr [rcx + {buf} + 96], {arg}",
                "mov qword ptr [rcx + {buf} + 104], {arg2}",
                "add qword ptr [rip + {buf}], 1",
                "7:",
                ".pushsection .text.trace_points, \"ax\"",
                "9:",
                "push {arg}",
                "push {opcode}",
                $crate::__trace_save_for_call!(),
                "mov rdi, qword ptr [rip + {task}]",
                "mov esi, {endpoint}",
                "mov rdx, qword ptr [rbp + 80]",
                "xor ecx, ecx",
                "mov r8, qword ptr [rbp + 88]",
                "mov r9, {arg2}",
                "call {hook}",
                $crate::__trace_restore_after_call!(),
                "add rsp, 16",
                "jmp 7b",
                ".popsection",
                buf = sym $buf,
                hook = sym $hook,
                mask = const $mask,
                kind_cpu = const ($kind as u32) << 16,
                endpoint = const $endpoint,
                arg2 = const $arg2,
                task = sym $task,
                opcode = in(reg) ($opcode) as u64,
                arg = in(reg) ($arg) as u64,
                out("rax") _, out("rcx") _, out("rdx") _,
            )
        }
    };
}
