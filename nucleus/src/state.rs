//! State areas: memory a server keeps across its own death (DESIGN rule 4, the *transparent*
//! restart policy). Each server whose spec asks for one (`state_bytes`) owns a sparse byte
//! area held by the nucleus, not by the task: killing the task frees its arena and stack but
//! not its state area, and the next instance finds the area as the last one left it.
//!
//! The area is reached only by copying (`read`, `commit`), never by address, so a server stays
//! free of `unsafe` and a dead instance's pointers cannot leak into the new one. A commit is a
//! list of writes applied **atomically**: frames are allocated first, then every write is
//! copied with interrupts masked, so a death (a tick's injected kill included) happens before
//! or after the whole commit, never inside it. That is what lets a server keep its persistent
//! state consistent at request boundaries: it computes an operation's effect, commits it in one
//! call (with a record of the request id and result, for retries), then replies.
//!
//! Pages are allocated on first write and read as zeros before that; `Zero` writes give whole
//! pages back. The area lives until the supervisor discards it (a *reset* restart).

use crate::mem::arena::with_nucleus_arena;
use crate::mem::frame;
use crate::servers::MAX_SERVERS;
use alloc::vec::Vec;
use arch::mm::{phys_to_virt, PAGE_SIZE};
use ipc::IpcError;
use server_rt::StateWrite;
use spin::Mutex;

struct Area {
    /// Physical frame of each page, 0 where nothing was written yet.
    pages: Vec<u64>,
}

static AREAS: Mutex<[Option<Area>; MAX_SERVERS]> = Mutex::new([const { None }; MAX_SERVERS]);

/// Size of server `spec`'s state area in bytes (0: it has none).
pub fn size(spec: usize) -> u64 {
    crate::servers::specs().get(spec).map_or(0, |s| s.state_bytes.next_multiple_of(PAGE_SIZE))
}

fn with_area<R>(spec: usize, f: impl FnOnce(&mut Area) -> Result<R, IpcError>) -> Result<R, IpcError> {
    let pages = (size(spec) / PAGE_SIZE) as usize;
    if pages == 0 || spec >= MAX_SERVERS {
        return Err(IpcError::NoSuchCap);
    }
    arch::cpu::without_interrupts(|| {
        let mut areas = AREAS.lock();
        let slot = &mut areas[spec];
        if slot.is_none() {
            let table = with_nucleus_arena(|| {
                let mut v = Vec::new();
                v.try_reserve_exact(pages).ok().map(|_| {
                    v.resize(pages, 0);
                    v
                })
            });
            *slot = Some(Area { pages: table.ok_or(IpcError::NoMemory)? });
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

/// Copies `buf.len()` bytes at `offset` of server `spec`'s area into `buf`.
pub fn read(spec: usize, offset: u64, buf: &mut [u8]) -> Result<(), IpcError> {
    check(spec, offset, buf.len() as u64)?;
    with_area(spec, |area| {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let in_page = (at % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            match area.pages[(at / PAGE_SIZE) as usize] {
                0 => dst.fill(0),
                pa => {
                    // SAFETY: `pa` is a frame this area owns (allocated by `commit`, freed only
                    // by this module under the same lock), mapped by the direct map; `in_page +
                    // n <= PAGE_SIZE`; `dst` is the caller's buffer of `n` bytes.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            (phys_to_virt(pa) as *const u8).add(in_page),
                            dst.as_mut_ptr(),
                            n,
                        )
                    }
                }
            }
            done += n;
        }
        Ok(())
    })
}

/// Applies `writes` to server `spec`'s area, all or nothing: on `NoMemory` (frames ran out)
/// nothing is visible.
pub fn commit(spec: usize, writes: &[StateWrite]) -> Result<(), IpcError> {
    for w in writes {
        let (offset, len) = match *w {
            StateWrite::Bytes { offset, data } => (offset, data.len() as u64),
            StateWrite::Zero { offset, len } => (offset, len),
        };
        check(spec, offset, len)?;
    }
    with_area(spec, |area| {
        // Frames first: running out of memory must leave the area as it was (a frame that
        // was allocated but never written reads as zeros, like no frame at all).
        for w in writes {
            if let StateWrite::Bytes { offset, data } = *w {
                if data.is_empty() {
                    continue;
                }
                let first = offset / PAGE_SIZE;
                let last = (offset + data.len() as u64 - 1) / PAGE_SIZE;
                for p in first..=last {
                    let slot = &mut area.pages[p as usize];
                    if *slot == 0 {
                        *slot = frame::alloc_zeroed_page().ok_or(IpcError::NoMemory)?;
                    }
                }
            }
        }
        for w in writes {
            match *w {
                StateWrite::Bytes { offset, data } => {
                    let mut done = 0usize;
                    while done < data.len() {
                        let at = offset + done as u64;
                        let in_page = (at % PAGE_SIZE) as usize;
                        let n = (PAGE_SIZE as usize - in_page).min(data.len() - done);
                        let pa = area.pages[(at / PAGE_SIZE) as usize];
                        // SAFETY: as in `read`: a frame of this area (allocated above), through
                        // the direct map, `in_page + n <= PAGE_SIZE`, from the caller's slice.
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

/// Zeroes `[offset, offset + len)`, giving whole pages back to the frame allocator.
fn zero(area: &mut Area, offset: u64, len: u64) {
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let page = (at / PAGE_SIZE) as usize;
        let in_page = at % PAGE_SIZE;
        let n = (PAGE_SIZE - in_page).min(end - at);
        let pa = area.pages[page];
        if pa != 0 {
            if n == PAGE_SIZE {
                frame::free_page(pa);
                area.pages[page] = 0;
            } else {
                // SAFETY: a frame of this area, through the direct map, within the page.
                unsafe { core::ptr::write_bytes((phys_to_virt(pa) as *mut u8).add(in_page as usize), 0, n as usize) }
            }
        }
        at += n;
    }
}

/// Frees server `spec`'s whole area (its next instance starts from zeros).
pub fn discard(spec: usize) {
    if spec >= MAX_SERVERS {
        return;
    }
    let area = arch::cpu::without_interrupts(|| AREAS.lock()[spec].take());
    if let Some(area) = area {
        for &pa in area.pages.iter().filter(|&&pa| pa != 0) {
            frame::free_page(pa);
        }
        drop(area);
    }
}

/// Pages in use by server `spec`'s area.
pub fn pages_used(spec: usize) -> usize {
    if spec >= MAX_SERVERS {
        return 0;
    }
    arch::cpu::without_interrupts(|| {
        AREAS.lock()[spec].as_ref().map_or(0, |a| a.pages.iter().filter(|&&pa| pa != 0).count())
    })
}
