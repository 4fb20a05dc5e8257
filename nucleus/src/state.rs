//! State areas: memory a server keeps across its own death (DESIGN rule 4, the *transparent*
//! restart policy). Each server whose spec asks for one (`state_bytes`) owns a sparse byte
//! area held by the nucleus, not by the task: killing the task frees its arena and stack but
//! not its state area, and the next instance finds the area as the last one left it.
//!
//! The area is reached only by copying (`read`, `commit`, and `with_chunks` for copies
//! straight into a client's grant), never by address, so a server stays free of `unsafe` and
//! a dead instance's pointers cannot leak into the new one. A commit is a list of writes
//! applied **atomically**: the frames it needs are counted and taken first (all or none), then
//! every write is copied with interrupts masked, so a death (a tick's injected kill included)
//! happens before or after the whole commit, never inside it. That is what lets a server keep
//! its persistent state consistent at request boundaries: it computes an operation's effect,
//! commits it in one call (with a record of the request id and result, for retries), then
//! replies.
//!
//! Pages are allocated on first write and read as zeros before that; `Zero` writes give whole
//! pages back. The page table is two-level so that a large, sparse area (gigabytes of address
//! space, as a RAM file system wants) costs little: a top vector of one word per 2 MiB (in the
//! nucleus heap, made at first use) and one leaf frame of 512 page addresses per 2 MiB actually
//! written, freed again when its last page goes. The area lives until the supervisor discards
//! it (a *reset* restart).

use crate::mem::arena::with_nucleus_arena;
use crate::mem::frame;
use crate::servers::MAX_SERVERS;
use alloc::vec::Vec;
use arch::mm::{phys_to_virt, PAGE_SIZE};
use ipc::IpcError;
use server_rt::StateWrite;
use spin::Mutex;

/// Page addresses per leaf frame.
const ENTRIES: usize = (PAGE_SIZE / 8) as usize;
/// Bytes of area one leaf covers.
const LEAF_SPAN: u64 = ENTRIES as u64 * PAGE_SIZE;

static ZEROS: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];

struct Area {
    /// Physical frame of each leaf table, 0 where no page of its 2 MiB was written yet.
    leaves: Vec<u64>,
    /// Data pages held (not counting leaves).
    pages: usize,
}

impl Area {
    /// The leaf table at physical address `leaf`.
    fn table(leaf: u64) -> &'static mut [u64; ENTRIES] {
        // SAFETY: `leaf` is a frame this area owns as a leaf table (allocated zeroed by
        // `page_for_write`, freed only by `zero` and `discard`), reached through the direct
        // map; it is page-aligned and holds exactly ENTRIES words. Callers hold the AREAS lock
        // (or, in `discard`, own the area outright) for as long as they use the reference.
        unsafe { &mut *(phys_to_virt(leaf) as *mut [u64; ENTRIES]) }
    }

    /// The frame of page `page`, 0 if it was never written.
    fn page(&self, page: usize) -> u64 {
        match self.leaves[page / ENTRIES] {
            0 => 0,
            leaf => Self::table(leaf)[page % ENTRIES],
        }
    }
}

static AREAS: Mutex<[Option<Area>; MAX_SERVERS]> = Mutex::new([const { None }; MAX_SERVERS]);

/// Size of server `spec`'s state area in bytes (0: it has none).
pub fn size(spec: usize) -> u64 {
    crate::servers::specs().get(spec).map_or(0, |s| s.state_bytes.next_multiple_of(PAGE_SIZE))
}

fn with_area<R>(spec: usize, f: impl FnOnce(&mut Area) -> Result<R, IpcError>) -> Result<R, IpcError> {
    let leaves = size(spec).div_ceil(LEAF_SPAN) as usize;
    if leaves == 0 || spec >= MAX_SERVERS {
        return Err(IpcError::NoSuchCap);
    }
    arch::cpu::without_interrupts(|| {
        let mut areas = AREAS.lock();
        let slot = &mut areas[spec];
        if slot.is_none() {
            let table = with_nucleus_arena(|| {
                let mut v = Vec::new();
                v.try_reserve_exact(leaves).ok().map(|_| {
                    v.resize(leaves, 0);
                    v
                })
            });
            *slot = Some(Area { leaves: table.ok_or(IpcError::NoMemory)?, pages: 0 });
        }
        f(slot.as_mut().expect("just made"))
    })
}

fn check(spec: usize, offset: u64, len: u64) -> Result<(), IpcError> {
    match offset.checked_add(len) {
        Some(end) if end <= size(spec) => Ok(()),
        _ => Err(IpcError::BadGrant),
    }
}

/// Calls `f` with the bytes `[offset, offset + len)` of server `spec`'s area, in order, one
/// piece per page (never-written pages as zeros), with the area locked and interrupts masked:
/// the pieces are valid only during the call. `f` may fail, which stops the walk.
pub fn with_chunks(
    spec: usize,
    offset: u64,
    len: u64,
    mut f: impl FnMut(&[u8]) -> Result<(), IpcError>,
) -> Result<(), IpcError> {
    check(spec, offset, len)?;
    with_area(spec, |area| {
        let mut at = offset;
        let end = offset + len;
        while at < end {
            let in_page = (at % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE - at % PAGE_SIZE).min(end - at) as usize;
            match area.page((at / PAGE_SIZE) as usize) {
                0 => f(&ZEROS[..n])?,
                pa => {
                    // SAFETY: `pa` is a frame of this area (allocated by `commit`, freed only
                    // under the lock held here), through the direct map; `in_page + n <=
                    // PAGE_SIZE`. Nothing writes it while the lock is held.
                    let bytes = unsafe { core::slice::from_raw_parts((phys_to_virt(pa) as *const u8).add(in_page), n) };
                    f(bytes)?
                }
            }
            at += n as u64;
        }
        Ok(())
    })
}

/// Copies `buf.len()` bytes at `offset` of server `spec`'s area into `buf`.
pub fn read(spec: usize, offset: u64, buf: &mut [u8]) -> Result<(), IpcError> {
    let mut done = 0usize;
    with_chunks(spec, offset, buf.len() as u64, |chunk| {
        buf[done..done + chunk.len()].copy_from_slice(chunk);
        done += chunk.len();
        Ok(())
    })
}

/// The pages a write of `len > 0` bytes at `offset` touches.
fn pages_of(offset: u64, len: u64) -> core::ops::RangeInclusive<u64> {
    offset / PAGE_SIZE..=(offset + len - 1) / PAGE_SIZE
}

/// The frame of page `page`, allocated (with its leaf) if it has none; zero-filled unless the
/// caller overwrites all of it (`whole`).
fn page_for_write(area: &mut Area, page: usize, whole: bool) -> Result<u64, IpcError> {
    let (leaf, index) = (page / ENTRIES, page % ENTRIES);
    if area.leaves[leaf] == 0 {
        area.leaves[leaf] = frame::alloc_zeroed_page().ok_or(IpcError::NoMemory)?;
    }
    let table = Area::table(area.leaves[leaf]);
    if table[index] == 0 {
        let pa = if whole { frame::alloc(1, 1).map(|r| r.start) } else { frame::alloc_zeroed_page() };
        table[index] = pa.ok_or(IpcError::NoMemory)?;
        area.pages += 1;
    }
    Ok(table[index])
}

/// Applies `writes` to server `spec`'s area, all or nothing: on `NoMemory` (not enough free
/// frames for the pages and leaves it needs) nothing is visible.
pub fn commit(spec: usize, writes: &[StateWrite]) -> Result<(), IpcError> {
    for w in writes {
        let (offset, len) = match *w {
            StateWrite::Bytes { offset, data } => (offset, data.len() as u64),
            StateWrite::Zero { offset, len } => (offset, len),
        };
        check(spec, offset, len)?;
    }
    with_area(spec, |area| {
        // Count the frames first (interrupts are masked: nobody allocates in between), so that
        // taking them cannot fail half way. A page or leaf two writes need is counted twice,
        // which only makes the check stricter.
        let mut need = 0usize;
        let mut new_leaves = 0usize;
        let mut last_leaf = usize::MAX;
        for w in writes {
            if let StateWrite::Bytes { offset, data } = *w {
                if data.is_empty() {
                    continue;
                }
                for p in pages_of(offset, data.len() as u64) {
                    let leaf = p as usize / ENTRIES;
                    if area.leaves[leaf] == 0 && leaf != last_leaf {
                        new_leaves += 1;
                        last_leaf = leaf;
                    }
                    if area.page(p as usize) == 0 {
                        need += 1;
                    }
                }
            }
        }
        if need + new_leaves > 0 && need + new_leaves > frame::stats().free {
            return Err(IpcError::NoMemory);
        }
        // Apply in order, taking frames as pages are first written: at most what was counted
        // (a `Zero` earlier in the list only gives frames back), so this cannot fail.
        for w in writes {
            match *w {
                StateWrite::Bytes { offset, data } => {
                    let mut done = 0usize;
                    while done < data.len() {
                        let at = offset + done as u64;
                        let in_page = (at % PAGE_SIZE) as usize;
                        let n = (PAGE_SIZE as usize - in_page).min(data.len() - done);
                        let pa = page_for_write(area, (at / PAGE_SIZE) as usize, n == PAGE_SIZE as usize)?;
                        // SAFETY: as in `with_chunks`: a frame of this area (just made present),
                        // through the direct map, `in_page + n <= PAGE_SIZE`, from the
                        // caller's slice.
                        unsafe {
                            core::ptr::copy_nonoverlapping(
                                data[done..].as_ptr(),
                                (phys_to_virt(pa) as *mut u8).add(in_page),
                                n,
                            )
                        }
                        done += n;
                    }
                }
                StateWrite::Zero { offset, len } => zero(area, offset, len),
            }
        }
        Ok(())
    })
}

/// Zeroes `[offset, offset + len)`, giving whole pages (and leaves left empty) back to the
/// frame allocator.
fn zero(area: &mut Area, offset: u64, len: u64) {
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let page = (at / PAGE_SIZE) as usize;
        let leaf_index = page / ENTRIES;
        let leaf = area.leaves[leaf_index];
        if leaf == 0 {
            at = ((leaf_index as u64 + 1) * LEAF_SPAN).min(end);
            continue;
        }
        let table = Area::table(leaf);
        let leaf_end = ((leaf_index as u64 + 1) * LEAF_SPAN).min(end);
        while at < leaf_end {
            let in_page = at % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(leaf_end - at);
            let slot = &mut table[(at / PAGE_SIZE) as usize % ENTRIES];
            if *slot != 0 {
                if n == PAGE_SIZE {
                    frame::free_page(*slot);
                    *slot = 0;
                    area.pages -= 1;
                } else {
                    // SAFETY: a frame of this area, through the direct map, within the page.
                    unsafe {
                        core::ptr::write_bytes((phys_to_virt(*slot) as *mut u8).add(in_page as usize), 0, n as usize)
                    }
                }
            }
            at += n;
        }
        if table.iter().all(|&pa| pa == 0) {
            frame::free_page(leaf);
            area.leaves[leaf_index] = 0;
        }
    }
}

/// Frees server `spec`'s whole area (its next instance starts from zeros).
pub fn discard(spec: usize) {
    if spec >= MAX_SERVERS {
        return;
    }
    let area = arch::cpu::without_interrupts(|| AREAS.lock()[spec].take());
    if let Some(area) = area {
        for &leaf in area.leaves.iter().filter(|&&l| l != 0) {
            for &pa in Area::table(leaf).iter().filter(|&&pa| pa != 0) {
                frame::free_page(pa);
            }
            frame::free_page(leaf);
        }
        drop(area);
    }
}

/// Pages in use by server `spec`'s area (data pages, not leaf tables).
pub fn pages_used(spec: usize) -> usize {
    if spec >= MAX_SERVERS {
        return 0;
    }
    arch::cpu::without_interrupts(|| AREAS.lock()[spec].as_ref().map_or(0, |a| a.pages))
}
