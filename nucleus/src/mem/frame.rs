//! The physical frame allocator: one bit per 4 KiB frame of RAM below the direct-map limit
//! (1 = in use). Built from the firmware memory map: usable regions start free, everything the
//! boot info calls reserved (kernel image, initrd, DTB, firmware tables) and the first MiB stay
//! used, and the bitmap reserves its own frames. Contiguous runs are found first-fit from a
//! rotating hint. Invariant: `free` equals the number of zero bits.
//!
//! Frames can be shared (copy-on-write after fork): next to the bitmap, one 16-bit count per
//! frame of *extra* references (0 = one owner). [`share`] adds a reference, [`put`] drops one
//! and frees the frame with the last; [`free`] is only for frames nobody shares.

use arch::mm::{phys_to_virt, DIRECT_MAP_LIMIT, PAGE_SIZE};
use arch::{BootInfo, MemKind};
use spin::Mutex;

/// A physical address range `[start, start + len)`, page-aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    pub start: u64,
    pub len: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameStats {
    pub total: usize,
    pub free: usize,
}

struct Bitmap {
    words: &'static mut [u64],
    /// Extra references per frame (a frame mapped by n address spaces has n - 1 here).
    refs: &'static mut [u16],
    nframes: usize,
    free: usize,
    hint: usize,
}

impl Bitmap {
    fn is_used(&self, f: usize) -> bool {
        self.words[f / 64] & (1 << (f % 64)) != 0
    }

    fn set(&mut self, f: usize, used: bool) {
        let was = self.is_used(f);
        if used && !was {
            self.words[f / 64] |= 1 << (f % 64);
            self.free -= 1;
        } else if !used && was {
            self.words[f / 64] &= !(1 << (f % 64));
            self.free += 1;
        }
    }

    fn mark(&mut self, start: u64, len: u64, used: bool) {
        let first = (start / PAGE_SIZE) as usize;
        let end = (start.saturating_add(len).div_ceil(PAGE_SIZE) as usize).min(self.nframes);
        for f in first.min(end)..end {
            self.set(f, used);
        }
    }

    /// First-fit search for `count` free frames aligned to `align` frames.
    fn find_run(&self, count: usize, align: usize, from: usize) -> Option<usize> {
        let mut f = from.next_multiple_of(align);
        while f + count <= self.nframes {
            // Skip whole used words quickly.
            if f.is_multiple_of(64) && self.words[f / 64] == u64::MAX {
                f += 64;
                continue;
            }
            match (f..f + count).find(|&g| self.is_used(g)) {
                None => return Some(f),
                Some(used) => f = (used + 1).next_multiple_of(align),
            }
        }
        None
    }
}

static FRAMES: Mutex<Option<Bitmap>> = Mutex::new(None);

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

/// Builds the allocator from the boot memory map. Returns the stats after reservations.
pub fn init(info: &BootInfo) -> FrameStats {
    let top = info
        .regions()
        .iter()
        .filter(|r| r.kind == MemKind::Usable)
        .map(|r| (r.start + r.len).min(DIRECT_MAP_LIMIT))
        .max()
        .unwrap_or(0);
    let nframes = (top / PAGE_SIZE) as usize;
    let bitmap_bytes = nframes.div_ceil(64) as u64 * 8;
    let bytes = (bitmap_bytes + nframes as u64 * 2).next_multiple_of(8);

    let kernel = (info.kernel_phys.0, info.kernel_phys.1 - info.kernel_phys.0);
    let initrd = info.initrd.unwrap_or((0, 0));
    let reserved: [(u64, u64); 3] = [(0, 1 << 20), kernel, initrd];

    // Place the bitmap in the first usable, unreserved, page-aligned spot big enough for it.
    let mut spot = None;
    'regions: for r in info.regions().iter().filter(|r| r.kind == MemKind::Usable) {
        let mut start = r.start.next_multiple_of(PAGE_SIZE);
        let end = (r.start + r.len).min(top);
        while start + bytes <= end {
            let cand = (start, bytes);
            let clash = reserved
                .iter()
                .copied()
                .chain(info.regions().iter().filter(|x| x.kind != MemKind::Usable).map(|x| (x.start, x.len)))
                .find(|&res| res.1 > 0 && overlaps(cand, res));
            match clash {
                None => {
                    spot = Some(start);
                    break 'regions;
                }
                Some(res) => start = (res.0 + res.1).next_multiple_of(PAGE_SIZE),
            }
        }
    }
    let Some(spot) = spot else {
        panic!("no room for the frame bitmap ({bytes} bytes) in the memory map");
    };
    // SAFETY: `spot..spot+bytes` is usable RAM below the direct-map limit that nothing else
    // uses (checked against every reservation above); it becomes the bitmap's for good.
    let words = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(spot) as *mut u64, bitmap_bytes as usize / 8) };
    words.fill(u64::MAX);
    // SAFETY: the counts follow the bitmap inside the same reserved spot (`bytes` covers both);
    // the bitmap's size is a multiple of 8, so they are 2-byte aligned.
    let refs = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(spot + bitmap_bytes) as *mut u16, nframes) };
    refs.fill(0);
    let mut bm = Bitmap { words, refs, nframes, free: 0, hint: 0 };
    for r in info.regions().iter().filter(|r| r.kind == MemKind::Usable) {
        bm.mark(r.start, r.len, false);
    }
    for r in info.regions().iter().filter(|r| r.kind != MemKind::Usable) {
        bm.mark(r.start, r.len, true);
    }
    for (start, len) in reserved {
        bm.mark(start, len, true);
    }
    bm.mark(spot, bytes, true);
    let stats = FrameStats { total: nframes, free: bm.free };
    *FRAMES.lock() = Some(bm);
    stats
}

/// Allocates `count` contiguous frames aligned to `align` frames (a power of two). The memory is
/// not zeroed.
pub fn alloc(count: usize, align: usize) -> Option<PhysRange> {
    arch::cpu::without_interrupts(|| {
        let mut guard = FRAMES.lock();
        let bm = guard.as_mut()?;
        let start = bm.find_run(count, align.max(1), bm.hint).or_else(|| bm.find_run(count, align.max(1), 0))?;
        for f in start..start + count {
            bm.set(f, true);
        }
        bm.hint = start + count;
        Some(PhysRange { start: start as u64 * PAGE_SIZE, len: count as u64 * PAGE_SIZE })
    })
}

/// Allocates one zeroed frame.
pub fn alloc_zeroed_page() -> Option<u64> {
    let r = alloc(1, 1)?;
    // SAFETY: the frame was just allocated to us and is inside the direct map.
    unsafe { core::ptr::write_bytes(phys_to_virt(r.start) as *mut u8, 0, PAGE_SIZE as usize) };
    Some(r.start)
}

/// Returns frames to the allocator. Freeing a frame that is already free is a nucleus bug.
pub fn free(range: PhysRange) {
    arch::cpu::without_interrupts(|| {
        let mut guard = FRAMES.lock();
        let bm = guard.as_mut().expect("frame allocator not initialised");
        let first = (range.start / PAGE_SIZE) as usize;
        for f in first..first + (range.len / PAGE_SIZE) as usize {
            assert!(bm.is_used(f), "double free of frame {:#x}", f as u64 * PAGE_SIZE);
            assert!(bm.refs[f] == 0, "free of shared frame {:#x}", f as u64 * PAGE_SIZE);
            bm.set(f, false);
        }
        bm.hint = bm.hint.min(first);
    })
}

/// Whether frame `pa` is allocated.
pub fn is_used(pa: u64) -> bool {
    arch::cpu::without_interrupts(|| FRAMES.lock().as_ref().is_some_and(|b| b.is_used((pa / PAGE_SIZE) as usize)))
}

/// Frees one frame.
pub fn free_page(pa: u64) {
    free(PhysRange { start: pa, len: PAGE_SIZE });
}

/// Adds a reference to allocated frame `pa` (another address space maps it). Fails when the
/// count is saturated: the caller copies the frame instead.
pub fn share(pa: u64) -> bool {
    arch::cpu::without_interrupts(|| {
        let mut guard = FRAMES.lock();
        let bm = guard.as_mut().expect("frame allocator not initialised");
        let f = (pa / PAGE_SIZE) as usize;
        assert!(bm.is_used(f), "sharing free frame {pa:#x}");
        match bm.refs[f].checked_add(1) {
            Some(n) => {
                bm.refs[f] = n;
                true
            }
            None => false,
        }
    })
}

/// Drops a reference to frame `pa`; the last one frees it. Returns whether it was freed.
pub fn put(pa: u64) -> bool {
    arch::cpu::without_interrupts(|| {
        let mut guard = FRAMES.lock();
        let bm = guard.as_mut().expect("frame allocator not initialised");
        let f = (pa / PAGE_SIZE) as usize;
        assert!(bm.is_used(f), "double free of frame {pa:#x}");
        if bm.refs[f] > 0 {
            bm.refs[f] -= 1;
            false
        } else {
            bm.set(f, false);
            bm.hint = bm.hint.min(f);
            true
        }
    })
}

/// How many address spaces map frame `pa` (0 if it is free).
pub fn refs(pa: u64) -> usize {
    arch::cpu::without_interrupts(|| {
        let guard = FRAMES.lock();
        let Some(bm) = guard.as_ref() else { return 0 };
        let f = (pa / PAGE_SIZE) as usize;
        if f >= bm.nframes || !bm.is_used(f) {
            0
        } else {
            bm.refs[f] as usize + 1
        }
    })
}

pub fn stats() -> FrameStats {
    arch::cpu::without_interrupts(|| {
        FRAMES
            .lock()
            .as_ref()
            .map_or(FrameStats { total: 0, free: 0 }, |b| FrameStats { total: b.nframes, free: b.free })
    })
}
