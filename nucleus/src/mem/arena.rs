//! Heap arenas and the global allocator (DESIGN rule 1: a server owns its memory).
//!
//! An arena is a contiguous run of physical frames, reached through the direct map, managed by a
//! first-fit free list. Arena 0 is the nucleus's own. Every task runs with a *current arena*
//! (switched by the scheduler): `alloc` takes memory from it, and `dealloc` returns memory to
//! whichever arena's address range contains the pointer, so a `Box` made by one task and
//! dropped by another still goes home. Destroying an arena returns its frames wholesale: that
//! is how a dead server's heap is reclaimed without running its destructors.
//!
//! Nucleus code that allocates on behalf of the system while a server is current must use
//! [`with_nucleus_arena`], or the memory would die with the server.

use super::frame::{self, PhysRange};
use arch::mm::{phys_to_virt, PAGE_SIZE};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use linked_list_allocator::Heap;
use spin::Mutex;

/// Maximum number of live arenas (the nucleus's plus one per task that has one).
pub const MAX_ARENAS: usize = 128;
/// Arena id of the nucleus.
pub const NUCLEUS_ARENA: usize = 0;

struct ArenaState {
    heap: Heap,
    frames: PhysRange,
}

/// `[base, end)` of every arena, readable without locks for `dealloc`'s lookup (0,0 = unused).
struct Range {
    base: AtomicU64,
    end: AtomicU64,
}

static RANGES: [Range; MAX_ARENAS] = [const { Range { base: AtomicU64::new(0), end: AtomicU64::new(0) } }; MAX_ARENAS];
static ARENAS: [Mutex<Option<ArenaState>>; MAX_ARENAS] = [const { Mutex::new(None) }; MAX_ARENAS];
static USED: [AtomicUsize; MAX_ARENAS] = [const { AtomicUsize::new(0) }; MAX_ARENAS];
static CURRENT: AtomicUsize = AtomicUsize::new(NUCLEUS_ARENA);

/// Identifies an arena; plain index into the tables above.
pub type ArenaId = usize;

fn install(id: ArenaId, frames: PhysRange) {
    let base = phys_to_virt(frames.start);
    let mut heap = Heap::empty();
    // SAFETY: the frames were just allocated to this arena and are mapped by the direct map.
    unsafe { heap.init(base as *mut u8, frames.len as usize) };
    *ARENAS[id].lock() = Some(ArenaState { heap, frames });
    USED[id].store(0, Ordering::Relaxed);
    RANGES[id].end.store(base + frames.len, Ordering::Release);
    RANGES[id].base.store(base, Ordering::Release);
}

/// Creates the nucleus arena; call once after the frame allocator.
pub fn init_nucleus(bytes: u64) {
    let frames = frame::alloc((bytes / PAGE_SIZE) as usize, 1).expect("no memory for the nucleus heap");
    install(NUCLEUS_ARENA, frames);
}

/// Creates a new arena of `bytes` (rounded up to pages). `None` when out of frames or slots.
pub fn create(bytes: u64) -> Option<ArenaId> {
    let pages = bytes.div_ceil(PAGE_SIZE) as usize;
    arch::cpu::without_interrupts(|| {
        let id = (1..MAX_ARENAS).find(|&i| {
            RANGES[i].base.load(Ordering::Acquire) == 0 && ARENAS[i].try_lock().is_some_and(|g| g.is_none())
        })?;
        let frames = frame::alloc(pages, 1)?;
        install(id, frames);
        Some(id)
    })
}

/// Destroys an arena and frees its frames. Every object in it is gone; pointers into it must
/// not be used again (the owning task is dead).
pub fn destroy(id: ArenaId) {
    assert!(id != NUCLEUS_ARENA, "the nucleus arena is never destroyed");
    arch::cpu::without_interrupts(|| {
        RANGES[id].base.store(0, Ordering::Release);
        RANGES[id].end.store(0, Ordering::Release);
        if let Some(state) = ARENAS[id].lock().take() {
            frame::free(state.frames);
        }
        USED[id].store(0, Ordering::Relaxed);
    })
}

/// Selects the arena that new allocations come from (the scheduler calls this on a switch).
pub fn set_current(id: ArenaId) {
    CURRENT.store(id, Ordering::Relaxed);
}

pub fn current() -> ArenaId {
    CURRENT.load(Ordering::Relaxed)
}

/// Runs `f` with the nucleus arena current.
pub fn with_nucleus_arena<R>(f: impl FnOnce() -> R) -> R {
    arch::cpu::without_interrupts(|| {
        let prev = CURRENT.swap(NUCLEUS_ARENA, Ordering::Relaxed);
        let r = f();
        CURRENT.store(prev, Ordering::Relaxed);
        r
    })
}

/// Bytes currently allocated from arena `id`.
pub fn used(id: ArenaId) -> usize {
    USED[id].load(Ordering::Relaxed)
}

/// The address range `[base, end)` of arena `id` (empty if it does not exist).
pub fn range(id: ArenaId) -> (u64, u64) {
    (RANGES[id].base.load(Ordering::Acquire), RANGES[id].end.load(Ordering::Acquire))
}

/// Capacity of arena `id` in bytes (0 if it does not exist).
pub fn capacity(id: ArenaId) -> u64 {
    RANGES[id].end.load(Ordering::Acquire) - RANGES[id].base.load(Ordering::Acquire)
}

fn owner_of(addr: u64) -> Option<ArenaId> {
    (0..MAX_ARENAS).find(|&i| {
        let base = RANGES[i].base.load(Ordering::Acquire);
        base != 0 && addr >= base && addr < RANGES[i].end.load(Ordering::Acquire)
    })
}

/// The kernel's global allocator: routes by the current arena and by address.
pub struct ArenaAllocator;

// SAFETY: every heap is behind its own lock taken with interrupts masked; `dealloc` finds the
// owning arena from the address, so memory is only ever returned to the heap it came from.
unsafe impl GlobalAlloc for ArenaAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        arch::cpu::without_interrupts(|| {
            let id = CURRENT.load(Ordering::Relaxed);
            let mut guard = ARENAS[id].lock();
            let Some(state) = guard.as_mut() else {
                return core::ptr::null_mut();
            };
            match state.heap.allocate_first_fit(layout) {
                Ok(p) => {
                    USED[id].fetch_add(layout.size(), Ordering::Relaxed);
                    p.as_ptr()
                }
                Err(()) => core::ptr::null_mut(),
            }
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        arch::cpu::without_interrupts(|| {
            // Memory of a destroyed arena is simply forgotten: the arena took it back wholesale.
            let Some(id) = owner_of(ptr as u64) else {
                return;
            };
            let mut guard = ARENAS[id].lock();
            if let (Some(state), Some(p)) = (guard.as_mut(), NonNull::new(ptr)) {
                // SAFETY: `ptr` lies in this arena and was returned by its `allocate_first_fit`
                // with the same layout (GlobalAlloc contract).
                unsafe { state.heap.deallocate(p, layout) };
                USED[id].fetch_sub(layout.size(), Ordering::Relaxed);
            }
        })
    }
}

/// Number of live arenas (including the nucleus's).
pub fn live() -> usize {
    RANGES.iter().filter(|r| r.base.load(Ordering::Acquire) != 0).count()
}
