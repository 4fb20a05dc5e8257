//! DMA memory: physically contiguous runs of frames that a driver server hands to its device
//! (virtqueues, request headers, data buffers). Each region is recorded with the task that
//! allocated it and counted against its spec's `dma_bytes`; the driver reaches it through the
//! direct map (the address [`alloc`] returns) and tells the device its physical address, which
//! [`phys`] gives only for ranges inside the caller's own regions.
//!
//! Lifetime: a region lives until its owner frees it or dies. On death the devices the task
//! owned are reset first (`device::on_death`, at the kill), and the regions are freed by the
//! reaper ([`release`]), after the task is off the CPU. The record is made in the same
//! interrupts-masked step as the frame allocation, so a kill at any instruction either finds a
//! recorded region (freed by the reaper) or none.
//!
//! Must not: hand out memory above the direct-map limit (the frame allocator never does), or
//! give a task the physical address of memory it does not own.

use crate::mem::frame::{self, PhysRange};
use crate::sched;
use crate::task::TaskId;
use arch::mm::{phys_to_virt, PAGE_SIZE};
use ipc::IpcError;
use server_rt::DmaRegion;
use spin::Mutex;

pub const MAX_REGIONS: usize = 128;
/// Largest single region (1 MiB).
pub const MAX_REGION_PAGES: usize = 256;

#[derive(Clone, Copy, Debug)]
struct Region {
    owner: TaskId,
    spec: usize,
    start: u64,
    pages: usize,
}

static REGIONS: Mutex<[Option<Region>; MAX_REGIONS]> = Mutex::new([None; MAX_REGIONS]);

fn current() -> (TaskId, Option<usize>) {
    let mut st = sched::lock();
    let cur = sched::current();
    let t = st.task(cur);
    (t.id, t.spec)
}

/// `pages` zeroed contiguous frames for the running server.
pub fn alloc(pages: usize) -> Result<DmaRegion, IpcError> {
    if pages == 0 || pages > MAX_REGION_PAGES {
        return Err(IpcError::NoMemory);
    }
    let start = arch::cpu::without_interrupts(|| {
        let (me, spec) = current();
        let spec = spec.ok_or(IpcError::NotPermitted)?;
        let budget = crate::servers::specs().get(spec).map_or(0, |s| s.dma_bytes / PAGE_SIZE) as usize;
        if budget == 0 {
            return Err(IpcError::NotPermitted);
        }
        let mut regions = REGIONS.lock();
        let held: usize = regions.iter().flatten().filter(|r| r.owner == me).map(|r| r.pages).sum();
        if held + pages > budget {
            return Err(IpcError::NoMemory);
        }
        let slot = regions.iter().position(|r| r.is_none()).ok_or(IpcError::NoSlots)?;
        let run = frame::alloc(pages, 1).ok_or(IpcError::NoMemory)?;
        regions[slot] = Some(Region { owner: me, spec, start: run.start, pages });
        Ok(run.start)
    })?;
    // SAFETY: the frames were just allocated and recorded as this task's; nothing else refers
    // to them yet. A kill during the zeroing leaves them to the reaper.
    unsafe { core::ptr::write_bytes(phys_to_virt(start) as *mut u8, 0, pages * PAGE_SIZE as usize) };
    Ok(DmaRegion { paddr: start, vaddr: phys_to_virt(start), pages })
}

/// Frees the running server's region starting at `paddr`.
pub fn free(paddr: u64) -> Result<(), IpcError> {
    let r = arch::cpu::without_interrupts(|| {
        let (me, _) = current();
        let mut regions = REGIONS.lock();
        let slot = regions.iter().position(|r| r.is_some_and(|r| r.owner == me && r.start == paddr));
        slot.and_then(|s| regions[s].take()).ok_or(IpcError::NotPermitted)
    })?;
    frame::free(PhysRange { start: r.start, len: r.pages as u64 * PAGE_SIZE });
    Ok(())
}

/// The physical address of `[vaddr, vaddr + len)`, which must lie inside one of the running
/// server's regions.
pub fn phys(vaddr: u64, len: u64) -> Result<u64, IpcError> {
    let end = vaddr.checked_add(len).ok_or(IpcError::BadGrant)?;
    arch::cpu::without_interrupts(|| {
        let (me, _) = current();
        let regions = REGIONS.lock();
        regions
            .iter()
            .flatten()
            .filter(|r| r.owner == me)
            .find(|r| {
                let base = phys_to_virt(r.start);
                vaddr >= base && end <= base + r.pages as u64 * PAGE_SIZE
            })
            .map(|r| r.start + (vaddr - phys_to_virt(r.start)))
            .ok_or(IpcError::BadGrant)
    })
}

/// Frees every region of task `id` (the reaper, after the task's devices were reset).
pub fn release(id: TaskId) {
    loop {
        let r = arch::cpu::without_interrupts(|| {
            let mut regions = REGIONS.lock();
            let slot = regions.iter().position(|r| r.is_some_and(|r| r.owner == id))?;
            regions[slot].take()
        });
        match r {
            Some(r) => frame::free(PhysRange { start: r.start, len: r.pages as u64 * PAGE_SIZE }),
            None => return,
        }
    }
}

/// Pages held by live regions of server `spec`.
pub fn pages_of(spec: usize) -> usize {
    arch::cpu::without_interrupts(|| REGIONS.lock().iter().flatten().filter(|r| r.spec == spec).map(|r| r.pages).sum())
}
