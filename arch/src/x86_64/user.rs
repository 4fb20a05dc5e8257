//! User address spaces: one PML4 per process. The lower half (slots 0..256) belongs to the
//! process and is built page by page; the upper half is a copy of the kernel's PML4 entries,
//! which all exist before the first address space is made (`mm::prepare_kernel_half`), so every
//! later kernel mapping is visible in every address space.
//!
//! Every operation takes a user virtual address and refuses anything outside the lower half
//! (`MapError::BadAddress`): the callers pass addresses that come from user programs.

use super::mm::{
    invalidate, kernel_root, phys_to_virt, walk, MapError, ADDR_MASK, NO_EXECUTE, PAGE_SIZE, PRESENT, USER, WRITABLE,
};

/// One past the highest user address (the canonical lower half).
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;

/// Access rights of a user page. `cow` marks a page that is read-only in the page table
/// but writable after copy-on-write (a software bit the CPU ignores); `write` and `cow` are
/// never both set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PageFlags {
    pub write: bool,
    pub exec: bool,
    pub cow: bool,
    /// The frame is shared on purpose (MAP_SHARED): never copied on write.
    pub shared: bool,
    /// No access at all (PROT_NONE): the entry keeps its frame but is not valid for the MMU.
    pub none: bool,
}

/// PTE bit 9, available to software: "writable after copy-on-write".
const COW: u64 = 1 << 9;
/// PTE bit 10, available to software: "shared on purpose" (MAP_SHARED).
const SHARED: u64 = 1 << 10;
/// In a non-present PTE (where the CPU ignores every other bit): "a PROT_NONE page of this
/// frame".
const PROTNONE: u64 = 1 << 58;

/// Whether a leaf entry maps a frame (accessible or PROT_NONE).
fn mapped(v: u64) -> bool {
    v & (PRESENT | PROTNONE) != 0
}

fn leaf_bits(pa: u64, flags: PageFlags) -> u64 {
    if flags.none {
        return (pa & ADDR_MASK) | PROTNONE | if flags.shared { SHARED } else { 0 };
    }
    let mut bits = (pa & ADDR_MASK) | PRESENT | USER;
    if flags.write {
        bits |= WRITABLE;
    } else if flags.cow {
        bits |= COW;
    }
    if !flags.exec {
        bits |= NO_EXECUTE;
    }
    if flags.shared {
        bits |= SHARED;
    }
    bits
}

fn leaf_flags(v: u64) -> PageFlags {
    let none = v & PRESENT == 0;
    PageFlags {
        write: !none && v & WRITABLE != 0,
        exec: !none && v & NO_EXECUTE == 0,
        cow: v & COW != 0,
        shared: v & SHARED != 0,
        none,
    }
}

/// A user address space, named by the physical address of its root table.
#[derive(Debug, PartialEq, Eq)]
pub struct AddressSpace {
    root: u64,
}

fn check(va: u64) -> Result<(), MapError> {
    if va >= USER_TOP {
        Err(MapError::BadAddress)
    } else {
        Ok(())
    }
}

impl AddressSpace {
    /// Makes an empty address space; `alloc_table` gives zeroed frames.
    pub fn new(alloc_table: &mut dyn FnMut() -> Option<u64>) -> Result<Self, MapError> {
        let root = alloc_table().ok_or(MapError::OutOfFrames)?;
        let kernel = kernel_root();
        for slot in 256..512u64 {
            // SAFETY: both tables are page-table frames reached through the direct map; the new
            // one is ours alone until returned.
            unsafe {
                let v = ((phys_to_virt(kernel) + slot * 8) as *const u64).read_volatile();
                ((phys_to_virt(root) + slot * 8) as *mut u64).write_volatile(v);
            }
        }
        Ok(AddressSpace { root })
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    /// Maps user page `va` to frame `pa`.
    pub fn map(
        &self,
        va: u64,
        pa: u64,
        flags: PageFlags,
        alloc_table: &mut dyn FnMut() -> Option<u64>,
    ) -> Result<(), MapError> {
        check(va)?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), Some(alloc_table), USER)?;
        // SAFETY: `e` is the leaf entry for `va` in this address space (see `walk`).
        unsafe {
            if mapped(e.read_volatile()) {
                return Err(MapError::AlreadyMapped);
            }
            e.write_volatile(leaf_bits(pa, flags));
        }
        Ok(())
    }

    /// Unmaps user page `va`; returns the frame it mapped.
    pub fn unmap(&self, va: u64) -> Option<u64> {
        check(va).ok()?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), None, USER).ok()?;
        // SAFETY: as in `map`; the stale TLB entry is dropped below.
        let v = unsafe { e.read_volatile() };
        if !mapped(v) {
            return None;
        }
        // SAFETY: as in `map`.
        unsafe { e.write_volatile(0) };
        if self.is_active() {
            invalidate(va);
        }
        Some(v & ADDR_MASK)
    }

    /// The frame and rights of user page `va`, if mapped.
    pub fn translate(&self, va: u64) -> Option<(u64, PageFlags)> {
        check(va).ok()?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), None, USER).ok()?;
        // SAFETY: as in `map`.
        let v = unsafe { e.read_volatile() };
        mapped(v).then(|| (v & ADDR_MASK, leaf_flags(v)))
    }

    /// Changes the rights of a mapped page.
    pub fn protect(&self, va: u64, flags: PageFlags) -> Result<(), MapError> {
        self.protect_deferred(va, flags)?;
        if self.is_active() {
            invalidate(va);
        }
        Ok(())
    }

    /// Changes the rights of a mapped page without dropping its TLB entry: the caller calls
    /// [`AddressSpace::flush`] after a batch of changes.
    pub fn protect_deferred(&self, va: u64, flags: PageFlags) -> Result<(), MapError> {
        let (pa, _) = self.translate(va).ok_or(MapError::NotMapped)?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), None, USER)?;
        // SAFETY: as in `map`.
        unsafe { e.write_volatile(leaf_bits(pa, flags)) };
        Ok(())
    }

    /// Points mapped page `va` at frame `pa` with `flags` (copy-on-write: the copy replaces
    /// the shared frame). Returns the frame it mapped before.
    pub fn remap(&self, va: u64, pa: u64, flags: PageFlags) -> Result<u64, MapError> {
        let (old, _) = self.translate(va).ok_or(MapError::NotMapped)?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), None, USER)?;
        // SAFETY: as in `map`; the stale TLB entry is dropped right after.
        unsafe { e.write_volatile(leaf_bits(pa, flags)) };
        if self.is_active() {
            invalidate(va);
        }
        Ok(old)
    }

    /// Drops every TLB entry of this address space (after `protect_deferred`).
    pub fn flush(&self) {
        if self.is_active() {
            // SAFETY: reloading CR3 with its own value only flushes non-global TLB entries.
            unsafe { core::arch::asm!("mov {0}, cr3", "mov cr3, {0}", out(reg) _, options(nostack, preserves_flags)) };
        }
    }

    fn is_active(&self) -> bool {
        current_root() == self.root
    }

    /// Loads this address space on the CPU.
    pub fn activate(&self) {
        activate_root(self.root)
    }

    /// Calls `f(va, pa)` for every mapped user page, then frees the lower-half page-table frames
    /// with `free_table`. The address space is gone afterwards.
    pub fn destroy(self, f: &mut dyn FnMut(u64, u64), free_table: &mut dyn FnMut(u64)) {
        if self.is_active() {
            activate_root(kernel_root());
        }
        fn visit(table: u64, level: u32, base: u64, f: &mut dyn FnMut(u64, u64), free_table: &mut dyn FnMut(u64)) {
            let span = 1u64 << (12 + 9 * level);
            for i in 0..512u64 {
                if level == 3 && i >= 256 {
                    break; // the kernel half is shared, never freed here
                }
                // SAFETY: a page table of this address space, through the direct map.
                let v = unsafe { ((phys_to_virt(table) + i * 8) as *const u64).read_volatile() };
                if v & PRESENT == 0 && !(level == 0 && mapped(v)) {
                    continue;
                }
                let va = base + i * span;
                if level == 0 {
                    f(va, v & ADDR_MASK);
                } else {
                    visit(v & ADDR_MASK, level - 1, va, f, free_table);
                }
            }
            free_table(table);
        }
        visit(self.root, 3, 0, f, free_table);
    }
}

pub fn current_root() -> u64 {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    cr3 & ADDR_MASK
}

/// Loads page-table root `root` unless it is already loaded.
pub fn activate_root(root: u64) {
    if current_root() != root {
        // SAFETY: `root` is a PML4 whose kernel half equals the kernel's, so the running code
        // and its stack stay mapped across the switch.
        unsafe { core::arch::asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
    }
}

/// Loads the kernel's own root (used when a task without an address space runs).
pub fn activate_kernel() {
    activate_root(kernel_root())
}

/// What [`AddressSpace::visit_range`] does with a mapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    Keep,
    Unmap,
    Protect(PageFlags),
}

impl AddressSpace {
    /// Calls `f(va, pa, flags)` for every mapped page in `[start, end)`, in address order, and
    /// applies its answer; tables that are absent are skipped whole, so a huge sparse range
    /// costs little. Stale TLB entries are dropped before it returns.
    pub fn visit_range(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, u64, PageFlags) -> Visit) {
        #[allow(clippy::too_many_arguments)]
        fn walk(
            table: u64,
            level: u32,
            base: u64,
            start: u64,
            end: u64,
            f: &mut dyn FnMut(u64, u64, PageFlags) -> Visit,
            changed: &mut bool,
        ) {
            let span = 1u64 << (12 + 9 * level);
            let slots = if level == 3 { 256 } else { 512 };
            let first = start.saturating_sub(base) / span;
            let last = (end.saturating_sub(base).div_ceil(span)).min(slots);
            for i in first..last {
                let e = (phys_to_virt(table) + i * 8) as *mut u64;
                // SAFETY: a page table of this address space, through the direct map; the
                // nucleus serialises page-table changes (one writer, interrupts masked).
                let v = unsafe { e.read_volatile() };
                if v & PRESENT == 0 && !(level == 0 && mapped(v)) {
                    continue;
                }
                let va = base + i * span;
                if level > 0 {
                    if v & super::mm::HUGE == 0 {
                        walk(v & ADDR_MASK, level - 1, va, start, end, f, changed);
                    }
                    continue;
                }
                let new = match f(va, v & ADDR_MASK, leaf_flags(v)) {
                    Visit::Keep => continue,
                    Visit::Unmap => 0,
                    Visit::Protect(fl) => leaf_bits(v & ADDR_MASK, fl),
                };
                // SAFETY: as above; the TLB is flushed before `visit_range` returns.
                unsafe { e.write_volatile(new) };
                *changed = true;
            }
        }
        let mut changed = false;
        walk(self.root, 3, 0, start, end.min(USER_TOP), f, &mut changed);
        if changed {
            self.flush();
        }
    }

    /// Calls `f(va, pa, flags)` for every mapped user page, in address order.
    pub fn for_each_page(&self, f: &mut dyn FnMut(u64, u64, PageFlags)) {
        fn visit(table: u64, level: u32, base: u64, f: &mut dyn FnMut(u64, u64, PageFlags)) {
            let span = 1u64 << (12 + 9 * level);
            for i in 0..512u64 {
                if level == 3 && i >= 256 {
                    break;
                }
                // SAFETY: a page table of this address space, through the direct map.
                let v = unsafe { ((phys_to_virt(table) + i * 8) as *const u64).read_volatile() };
                if v & PRESENT == 0 && !(level == 0 && mapped(v)) {
                    continue;
                }
                let va = base + i * span;
                if level == 0 {
                    f(va, v & ADDR_MASK, leaf_flags(v));
                } else {
                    visit(v & ADDR_MASK, level - 1, va, f);
                }
            }
        }
        visit(self.root, 3, 0, f);
    }
}

/// The user floating-point/SIMD registers of a thread (x87, MMX, SSE: the FXSAVE area). The
/// kernel itself is built soft-float and never touches them, so they only need saving when the
/// CPU switches between user threads. (AVX state is not enabled: CR4.OSXSAVE stays clear, so
/// user code sees no AVX and FXSAVE covers everything it can use.)
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState([u8; 512]);

impl FpuState {
    /// The state after `fninit`: control word 0x37f, MXCSR 0x1f80 (all exceptions masked).
    pub fn new() -> FpuState {
        let mut s = [0u8; 512];
        s[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        s[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        s[28..32].copy_from_slice(&0xffffu32.to_le_bytes()); // MXCSR_MASK
        FpuState(s)
    }

    /// Saves the CPU's current user FP/SIMD registers here.
    pub fn save(&mut self) {
        // SAFETY: the area is 512 bytes, 16-byte aligned, as FXSAVE requires.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack, preserves_flags)) }
    }

    /// Loads these registers into the CPU.
    pub fn restore(&self) {
        // SAFETY: as for `save`; the contents came from FXSAVE or `new` (valid MXCSR bits).
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, preserves_flags)) }
    }
}

impl Default for FpuState {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes of a thread's FP/SIMD state as [`fp_read`] gives it: the FXSAVE image (what a
/// signal frame's `fpstate` holds).
pub const FP_BYTES: usize = 512;

/// MXCSR bits FXRSTOR accepts on every x86_64 CPU (all defined bits but DAZ, which the
/// earliest ones lack): a reserved bit would make the restore fault in the kernel.
const MXCSR_VALID: u32 = 0xffbf;

/// Copies a thread's FP/SIMD state (`fpu`, saved: see the nucleus's lazy switching) into `out`
/// (at most [`FP_BYTES`]).
pub fn fp_read(fpu: &FpuState, _frame: &super::trap::TrapFrame, out: &mut [u8]) {
    let n = out.len().min(FP_BYTES);
    out[..n].copy_from_slice(&fpu.0[..n]);
}

/// Replaces a thread's FP/SIMD state with `src` (an FXSAVE image from user memory: MXCSR is
/// masked to the bits FXRSTOR accepts, so that restoring it cannot fault).
pub fn fp_write(fpu: &mut FpuState, _frame: &mut super::trap::TrapFrame, src: &[u8]) {
    let n = src.len().min(FP_BYTES);
    fpu.0[..n].copy_from_slice(&src[..n]);
    let mxcsr = u32::from_le_bytes([fpu.0[24], fpu.0[25], fpu.0[26], fpu.0[27]]) & MXCSR_VALID;
    fpu.0[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    fpu.0[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
}
