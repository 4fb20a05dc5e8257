//! Task stacks with guard pages. Each stack gets a fixed-size slot in the arch's stack area;
//! the lowest page of the slot is never mapped, so running off the end of a stack faults on
//! that page instead of overwriting a neighbour. Frames are allocated page by page and freed
//! when the stack is dropped (after its task is dead and off the CPU).
//!
//! Stacks are *coloured*: a slot is 64 pages, so the tops of every fourth slot would be a
//! multiple of 256 pages apart, and the hot top pages of the running stacks would share the few
//! entries of a direct-mapped TLB indexed by page number (QEMU's TCG has one, of 256 entries,
//! and evicts on every such clash: `docs/bench.md`, "Data layout"). Each top is lowered by
//! [`color_pages`] instead, a multiple of 4 pages that changes every 4 slots, which gives 32
//! consecutive slots 32 different 4-page bands.

use crate::mem::frame;
use arch::mm::{map_kernel_page, unmap_kernel_page, KSTACK_AREA_BASE, PAGE_SIZE};
use core::sync::atomic::{AtomicBool, Ordering};

/// Virtual size of a slot: the guard page plus the largest stack we hand out.
pub const SLOT_BYTES: u64 = 256 * 1024;
pub const MAX_STACKS: usize = 256;
const SLOT_PAGES: u64 = SLOT_BYTES / PAGE_SIZE;

/// How far below its slot's end the stack of `slot` ends, in pages (see the module comment).
const fn color_pages(slot: usize) -> u64 {
    (slot as u64 / 4) % 8 * 4
}

/// The largest stack a slot holds, in pages: the slot minus its guard page and its colour.
pub const MAX_STACK_PAGES: u64 = SLOT_PAGES - 1 - color_pages(28);

static SLOT_USED: [AtomicBool; MAX_STACKS] = [const { AtomicBool::new(false) }; MAX_STACKS];

/// A mapped kernel stack. Owned by exactly one task.
#[derive(Debug)]
pub struct KStack {
    slot: usize,
    pages: u64,
}

impl KStack {
    /// Maps a stack of `bytes` (rounded up to pages, at most [`MAX_STACK_PAGES`]).
    pub fn new(bytes: u64) -> Option<KStack> {
        let pages = bytes.div_ceil(PAGE_SIZE).clamp(1, MAX_STACK_PAGES);
        let slot = (0..MAX_STACKS)
            .find(|&i| SLOT_USED[i].compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok())?;
        let stack = KStack { slot, pages };
        for p in 0..pages {
            let Some(pa) = frame::alloc(1, 1) else {
                drop(KStack { slot, pages: p });
                return None;
            };
            let va = stack.top() - (p + 1) * PAGE_SIZE;
            if map_kernel_page(va, pa.start, &mut || frame::alloc_zeroed_page()).is_err() {
                frame::free(pa);
                drop(KStack { slot, pages: p });
                return None;
            }
        }
        Some(stack)
    }

    fn slot_base(&self) -> u64 {
        KSTACK_AREA_BASE + self.slot as u64 * SLOT_BYTES
    }

    /// One past the highest byte of the stack (16-byte aligned).
    pub fn top(&self) -> u64 {
        self.slot_base() + SLOT_BYTES - color_pages(self.slot) * PAGE_SIZE
    }

    /// Lowest mapped address.
    pub fn bottom(&self) -> u64 {
        self.top() - self.pages * PAGE_SIZE
    }

    /// The unmapped range below the stack: a fault here is a stack overflow.
    pub fn guard(&self) -> (u64, u64) {
        (self.slot_base(), self.bottom())
    }
}

impl Drop for KStack {
    fn drop(&mut self) {
        for p in 0..self.pages {
            if let Some(pa) = unmap_kernel_page(self.top() - (p + 1) * PAGE_SIZE) {
                frame::free(frame::PhysRange { start: pa, len: PAGE_SIZE });
            }
        }
        SLOT_USED[self.slot].store(false, Ordering::Release);
    }
}
