//! Heap arenas and the global allocator (DESIGN rule 1: a server owns its memory).
//!
//! An arena is a contiguous run of physical frames, reached through the direct map, managed by a
//! first-fit free list, with a free list per size class in front of it: small blocks (up to
//! 4 KiB, alignment up to 16) come in powers of two from 16 bytes and go back to their class's
//! list, so the messages, names and buffers servers make and drop on every request cost a
//! pop and a push instead of a walk of the hole list (which was a fifth of a system call's
//! instructions). A class keeps at most 1/128 of the arena; when the heap runs out, every class
//! is given back to it first, so the lists never cause an allocation to fail. Arena 0 is the
//! nucleus's own. Every task runs with a *current arena*
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

/// Size classes: 16, 32, ... 4096 bytes.
const CLASSES: usize = 9;
const SMALLEST: usize = 16;
/// The alignment every class block has (and the most a request may ask for to use one).
const CLASS_ALIGN: usize = 16;

struct ArenaState {
    heap: Heap,
    frames: PhysRange,
    /// Per class: the first free block (its first word links to the next; 0 ends the list).
    free: [u64; CLASSES],
    /// Per class: bytes held in its list.
    held: [usize; CLASSES],
    /// The most a class list may hold.
    hold_limit: usize,
}

/// The class of `layout`, if it is small enough for one.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_ALIGN || layout.size() > SMALLEST << (CLASSES - 1) {
        return None;
    }
    Some((layout.size().max(SMALLEST).next_power_of_two().trailing_zeros() - SMALLEST.trailing_zeros()) as usize)
}

fn class_layout(c: usize) -> Layout {
    // A power of two from 16 to 4096 with alignment 16: always a valid layout.
    Layout::from_size_align(SMALLEST << c, CLASS_ALIGN).unwrap_or(Layout::new::<u128>())
}

impl ArenaState {
    /// Gives every block of every class list back to the heap.
    fn flush_classes(&mut self) {
        for c in 0..CLASSES {
            let mut block = core::mem::take(&mut self.free[c]);
            while block != 0 {
                // SAFETY: `block` is a free block of class `c` in this arena's heap (it was
                // allocated with `class_layout(c)` and pushed by `dealloc`); its first word is
                // the link this list wrote.
                let next = unsafe { *(block as *const u64) };
                if let Some(p) = NonNull::new(block as *mut u8) {
                    // SAFETY: as above: a block of this heap, with the layout it was allocated with.
                    unsafe { self.heap.deallocate(p, class_layout(c)) };
                }
                block = next;
            }
            self.held[c] = 0;
        }
    }
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

/// How many pages an arena of `len` bytes with id `id` leaves unused at its start: arenas
/// are carved from the frame allocator at similar offsets and servers allocate in similar
/// orders, so without this their hot first objects would sit a multiple of 256 pages apart
/// and share an entry of a direct-mapped TLB (QEMU's TCG has one: `docs/bench.md`, "Data
/// layout"). Only arenas of at least 1 MiB, which lose at most 1/16 of their room.
fn color_pages(id: ArenaId, len: u64) -> u64 {
    if len < 256 * PAGE_SIZE {
        return 0;
    }
    (id as u64 * 5) % 16
}

fn install(id: ArenaId, frames: PhysRange) {
    let base = phys_to_virt(frames.start);
    let skip = color_pages(id, frames.len) * PAGE_SIZE;
    let mut heap = Heap::empty();
    // SAFETY: the frames were just allocated to this arena and are mapped by the direct map;
    // `skip` is less than their length.
    unsafe { heap.init((base + skip) as *mut u8, (frames.len - skip) as usize) };
    let hold_limit = (frames.len as usize / 128).max(SMALLEST << (CLASSES - 1));
    *ARENAS[id].lock() = Some(ArenaState { heap, frames, free: [0; CLASSES], held: [0; CLASSES], hold_limit });
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
    let holds = |i: usize| {
        let base = RANGES[i].base.load(Ordering::Acquire);
        base != 0 && addr >= base && addr < RANGES[i].end.load(Ordering::Acquire)
    };
    // Mostly the current arena's own memory: that one first, before the scan.
    let current = CURRENT.load(Ordering::Relaxed);
    if current < MAX_ARENAS && holds(current) {
        return Some(current);
    }
    (0..MAX_ARENAS).find(|&i| holds(i))
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
            let class = class_of(layout);
            if let Some(c) = class {
                let block = state.free[c];
                if block != 0 {
                    // SAFETY: the head of class `c`'s list is a free block of this arena whose
                    // first word `dealloc` set to the next block.
                    state.free[c] = unsafe { *(block as *const u64) };
                    state.held[c] -= SMALLEST << c;
                    USED[id].fetch_add(layout.size(), Ordering::Relaxed);
                    return block as *mut u8;
                }
            }
            let from_heap = class.map_or(layout, class_layout);
            let p = match state.heap.allocate_first_fit(from_heap) {
                Ok(p) => Ok(p),
                Err(()) => {
                    // Out of heap: what the class lists hold goes back first.
                    state.flush_classes();
                    state.heap.allocate_first_fit(from_heap)
                }
            };
            match p {
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
                USED[id].fetch_sub(layout.size(), Ordering::Relaxed);
                match class_of(layout) {
                    Some(c) if state.held[c] + (SMALLEST << c) <= state.hold_limit => {
                        // SAFETY: `ptr` is a block of class `c` of this arena (same layout as
                        // its allocation, GlobalAlloc contract), at least 16 bytes and 16-byte
                        // aligned, no longer in use: its first word becomes the list link.
                        unsafe { *(ptr as *mut u64) = state.free[c] };
                        state.free[c] = ptr as u64;
                        state.held[c] += SMALLEST << c;
                    }
                    // SAFETY: `ptr` lies in this arena and was returned by its
                    // `allocate_first_fit` with this layout (its class's, for a small one).
                    Some(c) => unsafe { state.heap.deallocate(p, class_layout(c)) },
                    // SAFETY: as above, with the caller's own layout.
                    None => unsafe { state.heap.deallocate(p, layout) },
                }
            }
        })
    }
}

/// Number of live arenas (including the nucleus's).
pub fn live() -> usize {
    RANGES.iter().filter(|r| r.base.load(Ordering::Acquire) != 0).count()
}
