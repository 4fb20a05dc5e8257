//! User threads and address spaces: the mechanism under the Linux ABI server's policy.
//!
//! The nucleus owns address spaces (page tables and the frames they map, shared copy-on-write
//! after fork) and user threads (tasks that run in one). The `linux` server decides everything else — where things are
//! mapped, what a fault means, when a process ends — and drives these objects through
//! `server_rt::Kernel`. A system call or a user fault becomes a request on the `linux`
//! endpoint, made by the thread itself from its kernel stack, so a thread waiting for its
//! system call is just a task blocked on a reply (and dies like one if `linux` dies).
//!
//! Handles carry generations: a stale handle is refused, never reaches a new object.

use crate::mem::frame;
use crate::sched;
use crate::task::{Task, TaskState, MAX_TASKS};
use arch::mm::PAGE_SIZE;
use arch::trap::TrapFrame;
use arch::user::{AddressSpace, FpuState, PageFlags, Visit, USER_TOP};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use server_rt::{AspaceRef, ClockCall, MemError, Prot, ThreadRef};
use spin::Mutex;

pub const MAX_ASPACES: usize = 128;

/// Per-thread user state, kept in its task.
pub struct UserCtx {
    pub aspace: usize,
    /// The page-table root of `aspace` (cached: it never changes while the space lives).
    pub root: u64,
    /// The thread pointer (FS base / TPIDR_EL0).
    pub tp: u64,
    /// The trap frame of the system call or fault being handled (null otherwise).
    pub frame: *mut TrapFrame,
    /// The frame a new thread starts from.
    pub start: Option<TrapFrame>,
    /// An execve to apply when the current system call returns: (aspace, pc, sp).
    pub exec: Option<(usize, u64, u64)>,
    /// The thread's floating-point/SIMD registers while it is off the CPU.
    pub fpu: alloc::boxed::Box<arch::user::FpuState>,
}

// SAFETY: the frame pointer is only dereferenced on the CPU that owns the task, while the task
// is inside the system call that set it.
unsafe impl Send for UserCtx {}

struct Slot {
    generation: u32,
    space: Option<AddressSpace>,
    pages: usize,
    /// The server task (slot, generation) that created it: its death destroys it.
    owner: (usize, u32),
}

/// Per task slot: the server asked to see this thread before it next runs user code.
static INTERRUPT: [AtomicBool; MAX_TASKS] = [const { AtomicBool::new(false) }; MAX_TASKS];
/// Per task slot: the thread gives up the CPU before it next runs user code (sched_yield).
static YIELD: [AtomicBool; MAX_TASKS] = [const { AtomicBool::new(false) }; MAX_TASKS];

/// Entries per thread in [`ANSWERS`].
const ANSWER_SLOTS: usize = 16;
/// Per task slot: system-call results the server published (`thread_publish`), answered by
/// the nucleus without a request. Direct-mapped by number: entry `nr % ANSWER_SLOTS` holds
/// `(nr + 1) << 32 | value`, 0 when empty; a number that collides with another simply goes
/// to the server. Cleared when the slot gets a new thread, so no answer outlives its thread.
static ANSWERS: [[AtomicU64; ANSWER_SLOTS]; MAX_TASKS] =
    [const { [const { AtomicU64::new(0) }; ANSWER_SLOTS] }; MAX_TASKS];

/// The result the server published for system call `nr` of task `slot`, if any.
#[inline]
pub fn published_answer(slot: usize, nr: u64) -> Option<u64> {
    let entry = ANSWERS.get(slot)?[nr as usize % ANSWER_SLOTS].load(Ordering::Relaxed);
    (entry >> 32 == nr.wrapping_add(1)).then_some(entry & 0xffff_ffff)
}

/// Publishes (`Some`) or withdraws (`None`) the result of system call `nr` for thread `t`.
/// Under the scheduler lock, like every use of a thread reference: a publish for a thread that
/// is gone (its slot maybe reused) is refused.
pub fn thread_publish(t: ThreadRef, nr: u32, value: Option<u32>) -> Result<(), MemError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let i = thread_slot(&mut st, t)?;
        let entry = &ANSWERS[i][nr as usize % ANSWER_SLOTS];
        match value {
            Some(v) => entry.store(((nr as u64 + 1) << 32) | v as u64, Ordering::Relaxed),
            // Only its own entry: a colliding number's stays.
            None if entry.load(Ordering::Relaxed) >> 32 == nr as u64 + 1 => entry.store(0, Ordering::Relaxed),
            None => {}
        }
        Ok(())
    })
}

/// Per task slot: the system call the server lets the nucleus answer from its clocks
/// (`thread_publish_clock`): `(nr + 1) << 32 | realtime << 16 | monotonic` (the two clock-id
/// masks of a [`ClockCall`]), 0 for none. Cleared with [`ANSWERS`].
static CLOCK_CALLS: [AtomicU64; MAX_TASKS] = [const { AtomicU64::new(0) }; MAX_TASKS];

/// The clocks system call `nr` of task `slot` reads from the nucleus, if it was published.
#[inline]
pub fn published_clock_call(slot: usize, nr: u64) -> Option<ClockCall> {
    let entry = CLOCK_CALLS.get(slot)?.load(Ordering::Relaxed);
    (entry >> 32 == nr.wrapping_add(1)).then_some(ClockCall { monotonic: entry as u16, realtime: (entry >> 16) as u16 })
}

/// Publishes (`Some`) or withdraws (`None`) system call `nr` as a clock read for thread `t`;
/// under the scheduler lock, like [`thread_publish`].
pub fn thread_publish_clock(t: ThreadRef, nr: u32, clocks: Option<ClockCall>) -> Result<(), MemError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let i = thread_slot(&mut st, t)?;
        let entry = match clocks {
            Some(c) => (nr as u64 + 1) << 32 | (c.realtime as u64) << 16 | c.monotonic as u64,
            None => 0,
        };
        CLOCK_CALLS[i].store(entry, Ordering::Relaxed);
        Ok(())
    })
}

/// Writes `buf` to the running user thread's memory at `va` as a store of the thread itself
/// would (a copy-on-write page is made private first), if every page is mapped so now. `false`:
/// a page is not mapped or not writable, or the range leaves user space (the pages before the
/// first such one may have been written, as a store of the thread's would have).
pub fn write_current(va: u64, buf: &[u8]) -> bool {
    with_current_space(|space| write_space(space, va, buf, Write::AsUser).is_ok())
}

/// Calls `f` with the running user thread's address space, with interrupts masked; false if
/// the running task is not a user thread (or its space is gone).
fn with_current_space(f: impl FnOnce(&AddressSpace) -> bool) -> bool {
    arch::cpu::without_interrupts(|| {
        let index = match sched::lock().task(sched::current()).user.as_ref() {
            Some(u) => u.aspace,
            None => return false,
        };
        let slots = ASPACES.lock();
        slots.get(index).and_then(|s| s.space.as_ref()).is_some_and(f)
    })
}

/// Whether task `slot` should yield before returning to user mode (and forgets it).
pub fn take_yield(slot: usize) -> bool {
    // A load first: the common case (no yield asked) stays a plain read.
    YIELD.get(slot).is_some_and(|f| f.load(Ordering::Relaxed) && f.swap(false, Ordering::Relaxed))
}

/// Whether task `slot` owes the server an `INTERRUPT` request.
pub fn interrupt_pending(slot: usize) -> bool {
    INTERRUPT.get(slot).is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Clears task `slot`'s interrupt mark (it is sending the server a request now).
pub fn take_interrupt(slot: usize) {
    if let Some(f) = INTERRUPT.get(slot).filter(|f| f.load(Ordering::Relaxed)) {
        f.store(false, Ordering::Relaxed);
    }
}

static ASPACES: Mutex<[Slot; MAX_ASPACES]> =
    Mutex::new([const { Slot { generation: 1, space: None, pages: 0, owner: (0, 0) } }; MAX_ASPACES]);

fn alloc_table() -> Option<u64> {
    frame::alloc_zeroed_page()
}

fn encode(index: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | index as u64
}

fn slot_of(a: AspaceRef, slots: &[Slot; MAX_ASPACES]) -> Result<usize, MemError> {
    let index = (a.0 & 0xffff_ffff) as usize;
    let s = slots.get(index).ok_or(MemError::BadHandle)?;
    if s.space.is_none() || s.generation as u64 != a.0 >> 32 {
        return Err(MemError::BadHandle);
    }
    Ok(index)
}

fn flags(p: Prot) -> PageFlags {
    PageFlags { write: p.write, exec: p.exec, cow: false, shared: false, none: !p.read && !p.write && !p.exec }
}

/// The page-table rights for rights `p` on a page mapping frame `pa` with rights `old`: a
/// writable page whose frame another address space also maps stays read-only, marked
/// copy-on-write, unless it is shared on purpose (MAP_SHARED).
fn flags_for(p: Prot, pa: u64, old: PageFlags) -> PageFlags {
    let cow = p.write && !old.shared && frame::refs(pa) > 1;
    PageFlags { write: p.write && !cow, exec: p.exec, cow, shared: old.shared, none: !p.read && !p.write && !p.exec }
}

fn check_range(va: u64, len: u64) -> Result<(u64, u64), MemError> {
    let end = va.checked_add(len).ok_or(MemError::Fault)?;
    if !va.is_multiple_of(PAGE_SIZE) || end > USER_TOP {
        return Err(MemError::Fault);
    }
    Ok((va, end.next_multiple_of(PAGE_SIZE)))
}

/// Whether `a` names a live address space.
pub fn aspace_valid(a: AspaceRef) -> bool {
    arch::cpu::without_interrupts(|| slot_of(a, &ASPACES.lock()).is_ok())
}

pub fn aspace_create() -> Result<AspaceRef, MemError> {
    let space = AddressSpace::new(&mut alloc_table).map_err(|_| MemError::NoMemory)?;
    arch::cpu::without_interrupts(|| {
        let mut slots = ASPACES.lock();
        let Some(i) = slots.iter().position(|s| s.space.is_none()) else {
            drop(slots);
            space.destroy(&mut |_, _| {}, &mut |t| frame::free_page(t));
            return Err(MemError::Limit);
        };
        slots[i].space = Some(space);
        slots[i].pages = 0;
        let cur = sched::current();
        slots[i].owner = (cur, sched::lock().tasks[cur].as_ref().map_or(0, |t| t.id.generation));
        Ok(AspaceRef(encode(i, slots[i].generation)))
    })
}

/// Destroys every address space (and so every thread in it) that the server task `owner`
/// (slot, generation) created: what a dead Linux ABI server leaves behind, since its new
/// instance knows none of it.
pub fn destroy_owned_by(owner: (usize, u32)) -> usize {
    let owned: alloc::vec::Vec<AspaceRef> = arch::cpu::without_interrupts(|| {
        let slots = ASPACES.lock();
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.space.is_some() && s.owner == owner)
            .map(|(i, s)| AspaceRef(encode(i, s.generation)))
            .collect()
    });
    for &a in &owned {
        let _ = aspace_destroy(a);
    }
    owned.len()
}

/// Kills every thread in the address space, then frees it and every frame it maps.
pub fn aspace_destroy(a: AspaceRef) -> Result<(), MemError> {
    arch::cpu::without_interrupts(|| {
        let index = slot_of(a, &ASPACES.lock())?;
        kill_threads_in(index);
        let space = {
            let mut slots = ASPACES.lock();
            let s = &mut slots[index];
            s.generation = s.generation.wrapping_add(1).max(1);
            s.pages = 0;
            s.space.take().ok_or(MemError::BadHandle)?
        };
        space.destroy(
            &mut |_, pa| {
                frame::put(pa);
            },
            &mut |t| frame::free_page(t),
        );
        Ok(())
    })
}

fn kill_threads_in(index: usize) {
    loop {
        let st = sched::lock();
        let victim = st
            .tasks
            .iter()
            .flatten()
            .find(|t| t.state != TaskState::Dead && t.user.as_ref().is_some_and(|u| u.aspace == index))
            .map(|t| t.id.index);
        match victim {
            Some(v) if v == sched::current() => {
                drop(st);
                return; // the caller is a thread of it: it dies when it returns to the nucleus
            }
            Some(v) => crate::death::kill(st, v, server_rt::DeathCause::Killed),
            None => return,
        }
    }
}

fn with_space<R>(
    a: AspaceRef,
    f: impl FnOnce(&AddressSpace, &mut usize) -> Result<R, MemError>,
) -> Result<R, MemError> {
    arch::cpu::without_interrupts(|| {
        let mut slots = ASPACES.lock();
        let i = slot_of(a, &slots)?;
        let s = &mut slots[i];
        let space = s.space.as_ref().ok_or(MemError::BadHandle)?;
        f(space, &mut s.pages)
    })
}

pub fn aspace_map(a: AspaceRef, va: u64, len: u64, prot: Prot) -> Result<(), MemError> {
    let (start, end) = check_range(va, len)?;
    with_space(a, |space, pages| {
        let mut page = start;
        while page < end {
            if let Some((pa, old)) = space.translate(page) {
                space.protect(page, flags_for(prot, pa, old)).map_err(|_| MemError::Fault)?;
            } else {
                let pa = frame::alloc_zeroed_page().ok_or(MemError::NoMemory)?;
                if space.map(page, pa, flags(prot), &mut alloc_table).is_err() {
                    frame::free_page(pa);
                    return Err(MemError::NoMemory);
                }
                *pages += 1;
            }
            page += PAGE_SIZE;
        }
        Ok(())
    })
}

pub fn aspace_unmap(a: AspaceRef, va: u64, len: u64) -> Result<(), MemError> {
    let (start, end) = check_range(va, len)?;
    with_space(a, |space, pages| {
        space.visit_range(start, end, &mut |_, pa, _| {
            frame::put(pa);
            *pages -= 1;
            Visit::Unmap
        });
        Ok(())
    })
}

pub fn aspace_protect(a: AspaceRef, va: u64, len: u64, prot: Prot) -> Result<(), MemError> {
    let (start, end) = check_range(va, len)?;
    with_space(a, |space, _| {
        space.visit_range(start, end, &mut |_, pa, old| Visit::Protect(flags_for(prot, pa, old)));
        Ok(())
    })
}

/// Moves the pages of `[from, from + len)` to `[to, to + len)`; whatever `to..` mapped is
/// dropped first. The ranges must not overlap.
pub fn aspace_move(a: AspaceRef, from: u64, to: u64, len: u64) -> Result<(), MemError> {
    let (start, end) = check_range(from, len)?;
    let (dst, _) = check_range(to, len)?;
    if start < dst + (end - start) && dst < end {
        return Err(MemError::Fault);
    }
    with_space(a, |space, pages| {
        space.visit_range(dst, dst + (end - start), &mut |_, pa, _| {
            frame::put(pa);
            *pages -= 1;
            Visit::Unmap
        });
        // Each page leaves its old place as it takes the new one (the new tables are outside
        // the range being walked).
        let mut err = None;
        space.visit_range(start, end, &mut |va, pa, fl| {
            if err.is_some() {
                return Visit::Keep;
            }
            if space.map(dst + (va - start), pa, fl, &mut alloc_table).is_err() {
                err = Some(MemError::NoMemory);
                return Visit::Keep;
            }
            Visit::Unmap
        });
        err.map_or(Ok(()), Err)
    })
}

/// Marks in `out` (one byte per page from `va`) which pages are mapped (mincore).
pub fn aspace_resident(a: AspaceRef, va: u64, out: &mut [u8]) -> Result<(), MemError> {
    let (start, end) = check_range(va, out.len() as u64 * PAGE_SIZE)?;
    out.fill(0);
    with_space(a, |space, _| {
        space.visit_range(start, end, &mut |v, _, _| {
            out[((v - start) / PAGE_SIZE) as usize] = 1;
            Visit::Keep
        });
        Ok(())
    })
}

/// The rights of page `va`, if it is mapped.
pub fn aspace_query(a: AspaceRef, va: u64) -> Option<Prot> {
    if va >= USER_TOP {
        return None;
    }
    with_space(a, |space, _| {
        Ok(space.translate(va & !(PAGE_SIZE - 1)).map(|(_, fl)| Prot {
            read: !fl.none,
            write: fl.write || fl.cow,
            exec: fl.exec,
        }))
    })
    .ok()
    .flatten()
}

/// Makes mapped page `va` private to `space` before a write: a frame that other address
/// spaces share is copied (the copy keeps the page's rights, writable if it was
/// copy-on-write); a copy-on-write page whose frame is no longer shared just becomes writable.
/// Returns the frame now mapped, `None` if nothing is mapped at `va` (or, `as_user`, nothing
/// the user could write: neither writable nor copy-on-write).
fn make_private(space: &AddressSpace, va: u64, as_user: bool) -> Result<Option<u64>, MemError> {
    let va = va & !(PAGE_SIZE - 1);
    let Some((pa, fl)) = space.translate(va) else { return Ok(None) };
    if as_user && !(fl.write || fl.cow) {
        return Ok(None);
    }
    let own = PageFlags { write: fl.write || fl.cow, cow: false, ..fl };
    if fl.shared || frame::refs(pa) <= 1 {
        if fl.cow {
            space.protect(va, own).map_err(|_| MemError::Fault)?;
        }
        return Ok(Some(pa));
    }
    let new = frame::alloc(1, 1).ok_or(MemError::NoMemory)?.start;
    // SAFETY: both frames are RAM in the direct map; `new` is freshly ours, `pa` is mapped.
    unsafe {
        core::ptr::copy_nonoverlapping(
            arch::mm::phys_to_virt(pa) as *const u8,
            arch::mm::phys_to_virt(new) as *mut u8,
            PAGE_SIZE as usize,
        )
    };
    match space.remap(va, new, own) {
        Ok(old) => {
            frame::put(old);
            Ok(Some(new))
        }
        Err(_) => {
            frame::free_page(new);
            Err(MemError::Fault)
        }
    }
}

/// A write fault of the running user thread at `addr`: if the page is copy-on-write, gives
/// the thread its own writable copy and returns true (the instruction is retried at once,
/// without asking the `linux` server). Anything else is the server's to decide.
pub fn resolve_write_fault(addr: u64) -> bool {
    with_current_space(|space| {
        space.translate(addr & !(PAGE_SIZE - 1)).is_some_and(|(_, fl)| fl.cow)
            && make_private(space, addr, false).is_ok_and(|p| p.is_some())
    })
}

/// Copies between user memory of `space` and a kernel buffer, page by page, through the
/// direct map (a fault stops it at the page that faults). A write (`write`) first makes each
/// page private to this address space (copy-on-write).
fn copy_space(
    space: &AddressSpace,
    va: u64,
    len: usize,
    write: Write,
    mut f: impl FnMut(*mut u8, usize, usize),
) -> Result<(), MemError> {
    let end = va.checked_add(len as u64).ok_or(MemError::Fault)?;
    if end > USER_TOP {
        return Err(MemError::Fault);
    }
    let mut done = 0usize;
    while done < len {
        let addr = va + done as u64;
        let pa = if write != Write::No {
            make_private(space, addr, write == Write::AsUser)?.ok_or(MemError::Fault)?
        } else {
            space.translate(addr).ok_or(MemError::Fault)?.0
        };
        let offset = addr % PAGE_SIZE;
        let n = ((PAGE_SIZE - offset) as usize).min(len - done);
        f(arch::mm::phys_to_virt(pa + offset) as *mut u8, done, n);
        done += n;
    }
    Ok(())
}

pub fn aspace_read(a: AspaceRef, va: u64, buf: &mut [u8]) -> Result<(), MemError> {
    let dst = buf.as_mut_ptr();
    with_space(a, |space, _| {
        copy_space(space, va, buf.len(), Write::No, |user, at, n| {
            // SAFETY: `user..user+n` is a mapped user frame seen through the direct map; `dst+at`
            // is inside `buf` (at + n <= buf.len()); they cannot overlap (kernel buffer vs frame).
            unsafe { core::ptr::copy_nonoverlapping(user, dst.add(at), n) }
        })
    })
}

pub fn aspace_write(a: AspaceRef, va: u64, buf: &[u8]) -> Result<(), MemError> {
    with_space(a, |space, _| write_space(space, va, buf, Write::AsKernel))
}

/// Copies `buf` into `space` at `va` with the rights `write` says ([`copy_space`]).
fn write_space(space: &AddressSpace, va: u64, buf: &[u8], write: Write) -> Result<(), MemError> {
    let src = buf.as_ptr();
    copy_space(space, va, buf.len(), write, |user, at, n| {
        // SAFETY: as in `aspace_read`, in the other direction.
        unsafe { core::ptr::copy_nonoverlapping(src.add(at), user, n) }
    })
}

/// [`aspace_write`] with the user's own rights: every page must be mapped writable (or
/// copy-on-write), as a store of the thread itself would need, else `Fault` (the page may
/// just not be there yet: the caller maps it and retries). What a grant of user memory
/// writes (a `read` into a buffer), so that one over a read-only mapping fails as on Linux
/// even when the `linux` server did not check the range first.
pub fn aspace_write_as_user(a: AspaceRef, va: u64, buf: &[u8]) -> Result<(), MemError> {
    with_space(a, |space, _| write_space(space, va, buf, Write::AsUser))
}

/// How [`copy_space`] writes: not at all, with the kernel's rights (any mapped page: the loader
/// fills read-only segments), or with the user's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    No,
    AsKernel,
    AsUser,
}

/// A copy-on-write copy of the address space (fork): the child maps the parent's frames, each
/// gaining a reference, and every writable page becomes read-only and copy-on-write in both;
/// the first write to it (a fault resolved by [`resolve_write_fault`], or a kernel write) makes
/// a private copy. Read-only pages are simply shared.
pub fn aspace_copy(a: AspaceRef, shared: &[(u64, u64)]) -> Result<AspaceRef, MemError> {
    let is_shared = |va: u64| shared.iter().any(|&(s, l)| va >= s && va - s < l);
    let child = aspace_create()?;
    let result = arch::cpu::without_interrupts(|| {
        let mut slots = ASPACES.lock();
        let pi = slot_of(a, &slots)?;
        let ci = slot_of(child, &slots)?;
        let (mut mapped, mut err) = (0usize, None);
        let (ps, cs) = if pi < ci {
            let (lo, hi) = slots.split_at_mut(ci);
            (&lo[pi], &mut hi[0])
        } else {
            let (lo, hi) = slots.split_at_mut(pi);
            (&hi[0], &mut lo[ci])
        };
        let parent = ps.space.as_ref().ok_or(MemError::BadHandle)?;
        let dst = cs.space.as_ref().ok_or(MemError::BadHandle)?;
        parent.for_each_page(&mut |va, pa, fl| {
            if err.is_some() {
                return;
            }
            let writable = fl.write || fl.cow;
            let cow = PageFlags { write: false, cow: writable, shared: false, ..fl };
            let (child_pa, child_flags) = if (fl.shared || is_shared(va)) && frame::share(pa) {
                // MAP_SHARED: the same frame, writable in both, marked so that nothing copies it.
                let sh = PageFlags { shared: true, ..fl };
                if !fl.shared && parent.protect_deferred(va, sh).is_err() {
                    frame::put(pa);
                    err = Some(MemError::Fault);
                    return;
                }
                (pa, sh)
            } else if frame::share(pa) {
                if fl.write && parent.protect_deferred(va, cow).is_err() {
                    frame::put(pa);
                    err = Some(MemError::Fault);
                    return;
                }
                (pa, cow)
            } else {
                // The frame's count is saturated: this page is copied at once.
                let Some(new) = frame::alloc(1, 1) else {
                    err = Some(MemError::NoMemory);
                    return;
                };
                // SAFETY: both frames are RAM in the direct map; `new` is freshly ours.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        arch::mm::phys_to_virt(pa) as *const u8,
                        arch::mm::phys_to_virt(new.start) as *mut u8,
                        PAGE_SIZE as usize,
                    )
                };
                (new.start, PageFlags { write: writable, cow: false, shared: false, ..fl })
            };
            if dst.map(va, child_pa, child_flags, &mut alloc_table).is_err() {
                frame::put(child_pa);
                err = Some(MemError::NoMemory);
                return;
            }
            mapped += 1;
        });
        parent.flush();
        cs.pages = mapped;
        err.map_or(Ok(()), Err)
    });
    match result {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = aspace_destroy(child);
            Err(e)
        }
    }
}

/// Pages mapped in user address spaces, and live address spaces.
pub fn stats() -> (usize, usize) {
    arch::cpu::without_interrupts(|| {
        let slots = ASPACES.lock();
        (slots.iter().map(|s| s.pages).sum(), slots.iter().filter(|s| s.space.is_some()).count())
    })
}

/// The page-table root of address space slot `index` (for the context switch).
pub fn root_of(index: usize) -> Option<u64> {
    ASPACES.lock().get(index).and_then(|s| s.space.as_ref()).map(|s| s.root())
}

/// Thread references carry the slot and the low 24 bits of its generation: the same as a
/// request tag, so that the thread behind a request is known without taking a lock.
fn thread_ref(t: &Task) -> ThreadRef {
    ThreadRef(((t.id.generation as u64 & 0xff_ffff) << 32) | t.id.index as u64)
}

fn thread_slot(st: &mut sched::State, t: ThreadRef) -> Result<usize, MemError> {
    let index = (t.0 & 0xffff_ffff) as usize;
    match st.tasks.get(index).and_then(|x| x.as_ref()) {
        Some(task)
            if (task.id.generation as u64 & 0xff_ffff) == t.0 >> 32
                && task.user.is_some()
                && task.state != TaskState::Dead =>
        {
            Ok(index)
        }
        _ => Err(MemError::BadHandle),
    }
}

pub fn thread_of(tag: u64) -> ThreadRef {
    let (index, generation) = crate::task::tag_caller(tag);
    ThreadRef(((generation as u64) << 32) | index as u64)
}

/// Stack size of a user thread's kernel stack.
const USER_KSTACK: u64 = 16 * 1024;

extern "C" fn user_thread_start(slot: usize, _: usize) -> ! {
    let frame = {
        let mut st = sched::lock();
        st.task(slot).user.as_mut().and_then(|u| u.start.take()).expect("user thread without a start frame")
    };
    // SAFETY: the frame was built by `new_user` or copied from a user frame of this
    // address space, which the switch to this task made active.
    unsafe { arch::syscall::enter_user(&frame) }
}

fn create_thread(aspace: usize, frame: TrapFrame, tp: u64, fpu: FpuState) -> Result<ThreadRef, MemError> {
    let fpu = crate::mem::arena::with_nucleus_arena(|| alloc::boxed::Box::new(fpu));
    let stack = crate::kstack::KStack::new(USER_KSTACK).ok_or(MemError::NoMemory)?;
    let top = stack.top();
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let index = st.tasks.iter().skip(1).position(|t| t.is_none()).map(|p| p + 1).ok_or(MemError::Limit)?;
        INTERRUPT[index].store(false, Ordering::Relaxed);
        YIELD[index].store(false, Ordering::Relaxed);
        for a in &ANSWERS[index] {
            a.store(0, Ordering::Relaxed);
        }
        CLOCK_CALLS[index].store(0, Ordering::Relaxed);
        let generation = st.generations[index];
        // SAFETY: `top` is the end of the stack this task owns for its whole life.
        let context = unsafe { arch::context::Context::new(top, user_thread_start, index, 0) };
        let mut task = Task::new(index, generation, "user", context);
        task.priority = 2;
        task.stack = Some(stack);
        let root = root_of(aspace).ok_or(MemError::BadHandle)?;
        task.user =
            Some(UserCtx { aspace, root, tp, frame: core::ptr::null_mut(), start: Some(frame), exec: None, fpu });
        task.state = TaskState::Sleeping { until_ns: 0 };
        st.tasks[index] = Some(task);
        st.make_ready(index);
        crate::trace::name_task(index, "user");
        Ok(thread_ref(st.tasks[index].as_ref().expect("just made")))
    })
}

pub fn thread_start(a: AspaceRef, pc: u64, sp: u64) -> Result<ThreadRef, MemError> {
    let index = arch::cpu::without_interrupts(|| slot_of(a, &ASPACES.lock()))?;
    create_thread(index, TrapFrame::new_user(pc, sp), 0, FpuState::new())
}

/// The task slot of the thread that sent `tag`, if it is still waiting in that request.
fn requester(st: &mut sched::State, tag: u64) -> Result<usize, MemError> {
    let (index, generation) = crate::task::tag_caller(tag);
    match st.tasks.get(index).and_then(|t| t.as_ref()) {
        Some(t)
            if t.id.generation & 0xff_ffff == generation
                && t.user.as_ref().is_some_and(|u| !u.frame.is_null())
                && matches!(t.state, TaskState::BlockedReply { tag: x, .. } if x == tag) =>
        {
            Ok(index)
        }
        _ => Err(MemError::BadHandle),
    }
}

pub fn thread_fork(tag: u64, a: AspaceRef, sp: Option<u64>, tp: Option<u64>) -> Result<ThreadRef, MemError> {
    let child_space = arch::cpu::without_interrupts(|| slot_of(a, &ASPACES.lock()))?;
    let (mut frame, parent_tp, fpu) = arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let p = requester(&mut st, tag)?;
        if FPU_OWNER.load(Ordering::Relaxed) == p {
            // The parent's FP state is live in the CPU (lazy switching): bring its copy up to date.
            st.task(p).user.as_mut().expect("requester is a user thread").fpu.save();
        }
        let u = st.task(p).user.as_ref().expect("requester is a user thread");
        // SAFETY: the parent is blocked inside the system call whose frame this is.
        Ok::<_, MemError>((unsafe { (*u.frame).clone() }, u.tp, (*u.fpu).clone()))
    })?;
    frame.set_return(0);
    if let Some(sp) = sp {
        frame.set_sp(sp);
    }
    create_thread(child_space, frame, tp.unwrap_or(parent_tp), fpu)
}

pub fn thread_exec(tag: u64, a: AspaceRef, pc: u64, sp: u64) -> Result<(), MemError> {
    let space = arch::cpu::without_interrupts(|| slot_of(a, &ASPACES.lock()))?;
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let t = requester(&mut st, tag)?;
        let u = st.task(t).user.as_mut().expect("user thread");
        // The thread belongs to the new address space from now on, so that destroying the old
        // one (which kills its threads) spares it; its frame is replaced when the call returns.
        u.aspace = space;
        u.root = root_of(space).ok_or(MemError::BadHandle)?;
        u.exec = Some((space, pc, sp));
        Ok(())
    })
}

pub fn thread_set_tp(t: ThreadRef, tp: u64) -> Result<(), MemError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let i = thread_slot(&mut st, t)?;
        st.task(i).user.as_mut().expect("user thread").tp = tp;
        if i == sched::current() {
            arch::syscall::set_thread_pointer(tp);
        }
        Ok(())
    })
}

pub fn thread_kill(t: ThreadRef) {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        if let Ok(i) = thread_slot(&mut st, t) {
            if i == sched::current() {
                return; // a thread never kills itself through the server; see `syscall.rs`
            }
            crate::death::kill(st, i, server_rt::DeathCause::Killed);
        }
    })
}

/// The task whose user FP/SIMD state is in the CPU registers now (`usize::MAX`: none).
/// Switching is lazy: servers never touch these registers, so a system call into a server and
/// back costs no save or restore; only a switch to a *different* user thread does.
static FPU_OWNER: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Makes the CPU's FP/SIMD registers hold user thread `next`'s state (before switching to it).
pub fn fpu_switch(st: &mut sched::State, next: usize) {
    if st.task(next).user.is_none() {
        return;
    }
    let owner = FPU_OWNER.load(Ordering::Relaxed);
    if owner == next {
        return;
    }
    if let Some(u) = st.tasks.get_mut(owner).and_then(|t| t.as_mut()).and_then(|t| t.user.as_mut()) {
        u.fpu.save();
    }
    st.task(next).user.as_ref().expect("checked").fpu.restore();
    FPU_OWNER.store(next, Ordering::Relaxed);
}

/// Records that the CPU's FP registers now hold task `slot`'s state.
pub fn fpu_claim(slot: usize) {
    FPU_OWNER.store(slot, Ordering::Relaxed);
}

/// Forgets the CPU's FP state if it belongs to task slot `slot` (it died or started over).
pub fn fpu_forget(slot: usize) {
    let _ = FPU_OWNER.compare_exchange(slot, usize::MAX, Ordering::Relaxed, Ordering::Relaxed);
}

/// Loads the user state of task `t` on the CPU (called by the scheduler on a switch).
pub fn on_switch_to(t: &Task) {
    if let (Some(u), Some(stack)) = (&t.user, &t.stack) {
        arch::user::activate_root(u.root);
        arch::syscall::set_kernel_stack(stack.top());
        arch::syscall::set_thread_pointer(u.tp);
    }
}

pub const _A: () = assert!(MAX_TASKS < u32::MAX as usize);

const _: () = assert!(arch::syscall::USER_REGS == server_rt::USER_REGS);

/// The registers of the thread waiting in request `tag`.
pub fn thread_regs(tag: u64) -> Result<[u64; server_rt::USER_REGS], MemError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let t = requester(&mut st, tag)?;
        let u = st.task(t).user.as_ref().expect("requester is a user thread");
        // SAFETY: the thread is blocked inside the request whose frame this is.
        Ok(unsafe { (*u.frame).user_regs() })
    })
}

pub fn thread_set_regs(tag: u64, regs: &[u64; server_rt::USER_REGS]) -> Result<(), MemError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let t = requester(&mut st, tag)?;
        let u = st.task(t).user.as_mut().expect("requester is a user thread");
        // SAFETY: as in `thread_regs`; the thread resumes from this frame after the reply.
        unsafe { (*u.frame).set_user_regs(regs) };
        Ok(())
    })
}

/// Asks user thread `t` to enter the server (an `INTERRUPT` request) before it next runs user
/// code. A thread inside a request already is left alone: the server sees it when it answers.
pub fn thread_interrupt(t: ThreadRef) {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        if let Ok(i) = thread_slot(&mut st, t) {
            if !matches!(st.task(i).state, TaskState::BlockedReply { .. }) {
                INTERRUPT[i].store(true, Ordering::Relaxed);
            }
        }
    })
}

/// Makes user thread `t` give up the CPU before it next runs user code.
pub fn thread_yield(t: ThreadRef) {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        if let Ok(i) = thread_slot(&mut st, t) {
            YIELD[i].store(true, Ordering::Relaxed);
        }
    })
}

/// The FP/SIMD registers of the thread waiting in request `tag` (`arch::user::fp_read`).
pub fn thread_fpu(tag: u64, buf: &mut [u8]) -> Result<usize, MemError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let t = requester(&mut st, tag)?;
        let u = st.task(t).user.as_mut().expect("requester is a user thread");
        if FPU_OWNER.load(Ordering::Relaxed) == t {
            u.fpu.save(); // live in the CPU (lazy switching): bring the copy up to date
        }
        // SAFETY: the thread is blocked inside the request whose frame this is.
        arch::user::fp_read(&u.fpu, unsafe { &*u.frame }, buf);
        Ok(buf.len().min(arch::user::FP_BYTES))
    })
}

/// Replaces them; they are loaded when the thread next runs.
pub fn thread_set_fpu(tag: u64, buf: &[u8]) -> Result<(), MemError> {
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        let t = requester(&mut st, tag)?;
        let u = st.task(t).user.as_mut().expect("requester is a user thread");
        // SAFETY: as in `thread_fpu`; the thread resumes from this frame after the reply.
        arch::user::fp_write(&mut u.fpu, unsafe { &mut *u.frame }, buf);
        // The CPU's copy (if it is this thread's) is stale now: load the new one on the switch.
        fpu_forget(t);
        Ok(())
    })
}

/// CPU time of thread `t`: (running, served by servers), in ns.
pub fn thread_times(t: ThreadRef) -> (u64, u64) {
    let tick = 1_000_000_000 / crate::TICK_HZ as u64;
    arch::cpu::without_interrupts(|| {
        let mut st = sched::lock();
        match thread_slot(&mut st, t) {
            Ok(i) => {
                let task = st.task(i);
                (task.ticks * tick, task.served_ticks * tick)
            }
            Err(_) => (0, 0),
        }
    })
}
