//! User address spaces: one TTBR0 table tree per process, tagged with an ASID so that switching
//! address spaces needs no TLB flush. The kernel half lives in TTBR1 and is never copied.
//!
//! User pages are non-global (`nG`), never executable at EL1 (`PXN`), EL0-accessible (`AP[1]`),
//! read-only unless writable (`AP[2]`), and `UXN` unless executable. Only the lower
//! [`USER_TOP`] (128 TiB, L0 slots 0..256, as on x86_64) is handed out; the root's last slot,
//! an invalid descriptor the walker ignores, records the ASID (tagged with [`ASID_TAG`]), so that
//! [`activate_root`] can load `TTBR0_EL1` from a bare root address. An ASID's TLB entries are
//! flushed before it is reused.
//!
//! Every operation takes a user virtual address and refuses anything at or above [`USER_TOP`]
//! (`MapError::BadAddress`): the callers pass addresses that come from user programs.

use super::mm::{
    empty_root, entry, phys_to_virt, walk, MapError, ACCESS_FLAG, ADDR_MASK, AP_EL0, AP_RO, ATTR_NORMAL, DESC_TABLE,
    DESC_VALID, NOT_GLOBAL, PAGE_SIZE, PXN, SH_INNER, UXN,
};
use super::regs::{flush_asid, flush_user_page, publish_tables, sysreg_read, sysreg_write};
use spin::Mutex;

/// One past the highest user address.
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;

/// Marks the ASID record in a root's last slot (bit 0 clear: an invalid descriptor).
pub const ASID_TAG: u64 = 0x5a5d_0000_0000_0000;
const ASID_SLOT: u64 = 511;

/// Access rights of a user page. `cow` marks a page that is read-only in the page table
/// but writable after copy-on-write (a software bit the MMU ignores); `write` and `cow` are
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

/// Descriptor bit 55, reserved for software: "writable after copy-on-write".
const COW: u64 = 1 << 55;
/// Descriptor bit 56, reserved for software: "shared on purpose" (MAP_SHARED).
const SHARED: u64 = 1 << 56;
/// In an invalid descriptor (where the MMU ignores every other bit): "a PROT_NONE page of
/// this frame".
const PROTNONE: u64 = 1 << 57;

/// Whether a leaf entry maps a frame (accessible or PROT_NONE).
fn mapped(v: u64) -> bool {
    v & (DESC_VALID | PROTNONE) != 0
}

/// What [`AddressSpace::visit_range`] does with a mapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    Keep,
    Unmap,
    Protect(PageFlags),
}

/// A user address space, named by the physical address of its root table.
#[derive(Debug, PartialEq, Eq)]
pub struct AddressSpace {
    root: u64,
}

/// ASIDs handed out (bit set = in use); ASID 0 belongs to the empty table.
const MAX_ASIDS: usize = 1024;
static ASIDS: Mutex<[u64; MAX_ASIDS / 64]> = Mutex::new([1; MAX_ASIDS / 64]);

fn asid_limit() -> usize {
    // TCR_EL1.AS: 16-bit ASIDs if set, else 8-bit.
    if sysreg_read!("tcr_el1") & (1 << 36) != 0 {
        MAX_ASIDS
    } else {
        MAX_ASIDS.min(256)
    }
}

fn alloc_asid() -> Option<u16> {
    super::cpu::without_interrupts(|| {
        let mut map = ASIDS.lock();
        let a = (1..asid_limit()).find(|&a| map[a / 64] & (1 << (a % 64)) == 0)?;
        map[a / 64] |= 1 << (a % 64);
        Some(a as u16)
    })
}

fn free_asid(a: u16) {
    flush_asid(a);
    super::cpu::without_interrupts(|| {
        let a = a as usize;
        ASIDS.lock()[a / 64] &= !(1 << (a % 64));
    })
}

/// The ASID recorded in `root`, if it is a user root made by [`AddressSpace::new`].
fn asid_of(root: u64) -> Option<u16> {
    // SAFETY: `root` is a page-table frame, read through the direct map.
    let v = unsafe { entry(root, ASID_SLOT).read_volatile() };
    (v & !0x1_fffe == ASID_TAG).then_some(((v >> 1) & 0xffff) as u16)
}

fn check(va: u64) -> Result<(), MapError> {
    if va >= USER_TOP {
        Err(MapError::BadAddress)
    } else {
        Ok(())
    }
}

fn leaf_bits(pa: u64, flags: PageFlags) -> u64 {
    if flags.none {
        return (pa & ADDR_MASK) | PROTNONE | if flags.shared { SHARED } else { 0 };
    }
    let mut bits = (pa & ADDR_MASK) | DESC_VALID | DESC_TABLE | ATTR_NORMAL | SH_INNER | ACCESS_FLAG | NOT_GLOBAL;
    bits |= AP_EL0 | PXN;
    if !flags.write {
        bits |= AP_RO;
        if flags.cow {
            bits |= COW;
        }
    }
    if !flags.exec {
        bits |= UXN;
    }
    if flags.shared {
        bits |= SHARED;
    }
    bits
}

fn leaf_flags(v: u64) -> PageFlags {
    let none = v & DESC_VALID == 0;
    PageFlags {
        write: !none && v & AP_RO == 0,
        exec: !none && v & UXN == 0,
        cow: v & COW != 0,
        shared: v & SHARED != 0,
        none,
    }
}

impl AddressSpace {
    /// Makes an empty address space; `alloc_table` gives zeroed frames.
    pub fn new(alloc_table: &mut dyn FnMut() -> Option<u64>) -> Result<Self, MapError> {
        let asid = alloc_asid().ok_or(MapError::OutOfFrames)?;
        let Some(root) = alloc_table() else {
            free_asid(asid);
            return Err(MapError::OutOfFrames);
        };
        // SAFETY: the new root is ours alone until returned; slot 511 is never a user slot.
        unsafe { entry(root, ASID_SLOT).write_volatile(ASID_TAG | ((asid as u64) << 1)) };
        Ok(AddressSpace { root })
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    fn asid(&self) -> u16 {
        asid_of(self.root).unwrap_or(0)
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
        let e = walk(self.root, va & !(PAGE_SIZE - 1), Some(alloc_table))?;
        // SAFETY: `e` is the leaf entry for `va` in this address space (see `walk`). An invalid
        // entry is never cached, so the new one needs no TLB maintenance.
        unsafe {
            if mapped(e.read_volatile()) {
                return Err(MapError::AlreadyMapped);
            }
            e.write_volatile(leaf_bits(pa, flags));
        }
        publish_tables();
        Ok(())
    }

    /// Unmaps user page `va`; returns the frame it mapped.
    pub fn unmap(&self, va: u64) -> Option<u64> {
        check(va).ok()?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), None).ok()?;
        // SAFETY: as in `map`; the TLB entry (tagged with our ASID) is dropped below.
        let v = unsafe { e.read_volatile() };
        if !mapped(v) {
            return None;
        }
        // SAFETY: as in `map`.
        unsafe { e.write_volatile(0) };
        flush_user_page(self.asid(), va);
        Some(v & ADDR_MASK)
    }

    /// The frame and rights of user page `va`, if mapped.
    pub fn translate(&self, va: u64) -> Option<(u64, PageFlags)> {
        check(va).ok()?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), None).ok()?;
        // SAFETY: as in `map`.
        let v = unsafe { e.read_volatile() };
        mapped(v).then(|| (v & ADDR_MASK, leaf_flags(v)))
    }

    /// Changes the rights of a mapped page (same frame and memory type: no break-before-make).
    pub fn protect(&self, va: u64, flags: PageFlags) -> Result<(), MapError> {
        self.protect_deferred(va, flags)?;
        flush_user_page(self.asid(), va);
        Ok(())
    }

    /// Changes the rights of a mapped page without TLB maintenance: the caller calls
    /// [`AddressSpace::flush`] after a batch of changes.
    pub fn protect_deferred(&self, va: u64, flags: PageFlags) -> Result<(), MapError> {
        let (pa, _) = self.translate(va).ok_or(MapError::NotMapped)?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), None)?;
        // SAFETY: as in `map`.
        unsafe { e.write_volatile(leaf_bits(pa, flags)) };
        Ok(())
    }

    /// Points mapped page `va` at frame `pa` with `flags` (copy-on-write: the copy replaces
    /// the shared frame), with break-before-make: the entry is invalidated and its TLB entry
    /// dropped before the new one is written. Returns the frame it mapped before.
    pub fn remap(&self, va: u64, pa: u64, flags: PageFlags) -> Result<u64, MapError> {
        let (old, _) = self.translate(va).ok_or(MapError::NotMapped)?;
        let e = walk(self.root, va & !(PAGE_SIZE - 1), None)?;
        // SAFETY: as in `map`.
        unsafe { e.write_volatile(0) };
        flush_user_page(self.asid(), va);
        // SAFETY: as in `map`.
        unsafe { e.write_volatile(leaf_bits(pa, flags)) };
        publish_tables();
        Ok(old)
    }

    /// Drops every TLB entry of this address space (after `protect_deferred`).
    pub fn flush(&self) {
        let asid = self.asid();
        if asid != 0 {
            flush_asid(asid);
        }
    }

    /// Loads this address space on the CPU.
    pub fn activate(&self) {
        activate_root(self.root)
    }

    /// Calls `f(va, pa)` for every mapped user page, then frees the page-table frames with
    /// `free_table` and flushes and releases the ASID. The address space is gone afterwards.
    pub fn destroy(self, f: &mut dyn FnMut(u64, u64), free_table: &mut dyn FnMut(u64)) {
        if current_root() == self.root {
            activate_kernel();
        }
        let asid = self.asid();
        if asid != 0 {
            flush_asid(asid);
        }
        fn visit(table: u64, level: u32, base: u64, f: &mut dyn FnMut(u64, u64), free_table: &mut dyn FnMut(u64)) {
            let span = 1u64 << (12 + 9 * level);
            let slots = if level == 3 { 256 } else { 512 };
            for i in 0..slots {
                // SAFETY: a page table of this address space, through the direct map.
                let v = unsafe { entry(table, i).read_volatile() };
                if v & DESC_VALID == 0 && !(level == 0 && mapped(v)) {
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
        if asid != 0 {
            free_asid(asid);
        }
    }

    /// Calls `f(va, pa, flags)` for every mapped page in `[start, end)`, in address order, and
    /// applies its answer; tables that are absent are skipped whole, so a huge sparse range
    /// costs little. Stale TLB entries are dropped before it returns.
    pub fn visit_range(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, u64, PageFlags) -> Visit) {
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
                let e = entry(table, i);
                // SAFETY: a page table of this address space, through the direct map; the
                // nucleus serialises page-table changes (one writer, interrupts masked).
                let v = unsafe { e.read_volatile() };
                if v & DESC_VALID == 0 && !(level == 0 && mapped(v)) {
                    continue;
                }
                let va = base + i * span;
                if level > 0 {
                    if v & DESC_TABLE != 0 {
                        walk(v & ADDR_MASK, level - 1, va, start, end, f, changed);
                    }
                    continue;
                }
                let new = match f(va, v & ADDR_MASK, leaf_flags(v)) {
                    Visit::Keep => continue,
                    Visit::Unmap => 0,
                    Visit::Protect(fl) => leaf_bits(v & ADDR_MASK, fl),
                };
                // SAFETY: as above; the ASID's TLB entries are flushed before `visit_range`
                // returns (same frame for a protection change: no break-before-make needed).
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
            let slots = if level == 3 { 256 } else { 512 };
            for i in 0..slots {
                // SAFETY: a page table of this address space, through the direct map.
                let v = unsafe { entry(table, i).read_volatile() };
                if v & DESC_VALID == 0 && !(level == 0 && mapped(v)) {
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

/// The root table currently in `TTBR0_EL1` (the empty table when no user space is active).
pub fn current_root() -> u64 {
    sysreg_read!("ttbr0_el1") & ADDR_MASK
}

/// Loads user page-table root `root` (with its ASID) unless it is already loaded. A root that
/// carries no ASID record (not a user root) loads the empty table instead.
pub fn activate_root(root: u64) {
    let ttbr = match asid_of(root) {
        Some(asid) if asid != 0 => root | ((asid as u64) << 48),
        _ => empty_root(),
    };
    if sysreg_read!("ttbr0_el1") != ttbr {
        // SAFETY: TTBR0 only maps user addresses; the kernel runs from TTBR1, which is
        // unchanged. Entries of other ASIDs cannot hit, so no TLB flush is needed.
        unsafe {
            sysreg_write!("ttbr0_el1", ttbr);
            core::arch::asm!("isb", options(nostack, preserves_flags));
        }
    }
}

/// Loads the empty user table (used when a task without an address space runs).
pub fn activate_kernel() {
    activate_root(empty_root())
}

const _: () = assert!(USER_TOP >> 39 == 256 && phys_to_virt(0) != 0);

/// The user floating-point/SIMD registers of a thread. On AArch64 the kernel itself is built
/// with NEON, so the trap path already saves and restores v0-v31, FPCR and FPSR in every
/// [`TrapFrame`](super::trap::TrapFrame); a thread's FP state therefore lives in its frame and
/// this type carries nothing (saving and restoring are no-ops). `exec` resets it through
/// `TrapFrame::new_user`, `fork` copies it with the frame.
#[derive(Clone, Default)]
pub struct FpuState;

impl FpuState {
    pub fn new() -> FpuState {
        FpuState
    }

    /// Nothing to do: the trap frame holds the user FP/SIMD state.
    pub fn save(&mut self) {}

    /// Nothing to do: the trap frame holds the user FP/SIMD state.
    pub fn restore(&self) {}
}

/// Bytes of a thread's FP/SIMD state as [`fp_read`] gives it: v0..v31 (16 bytes each), then
/// FPSR and FPCR (32 bits each).
pub const FP_BYTES: usize = 520;

/// Copies a thread's FP/SIMD state (in its trap frame) into `out` (at most [`FP_BYTES`]).
pub fn fp_read(_fpu: &FpuState, frame: &super::trap::TrapFrame, out: &mut [u8]) {
    let mut b = [0u8; FP_BYTES];
    for (i, q) in frame.q.iter().enumerate() {
        b[i * 16..i * 16 + 16].copy_from_slice(&q.to_le_bytes());
    }
    b[512..516].copy_from_slice(&(frame.fpsr as u32).to_le_bytes());
    b[516..520].copy_from_slice(&(frame.fpcr as u32).to_le_bytes());
    let n = out.len().min(FP_BYTES);
    out[..n].copy_from_slice(&b[..n]);
}

/// Replaces a thread's FP/SIMD state (in its trap frame, restored by the return to user mode).
/// FPSR and FPCR keep only their architected bits.
pub fn fp_write(_fpu: &mut FpuState, frame: &mut super::trap::TrapFrame, src: &[u8]) {
    if src.len() < FP_BYTES {
        return;
    }
    for (i, q) in frame.q.iter_mut().enumerate() {
        *q = u128::from_le_bytes(src[i * 16..i * 16 + 16].try_into().unwrap_or_default());
    }
    let word = |o: usize| u32::from_le_bytes([src[o], src[o + 1], src[o + 2], src[o + 3]]) as u64;
    frame.fpsr = word(512) & 0xf800_009f;
    frame.fpcr = word(516) & 0x07f7_9f00;
}
