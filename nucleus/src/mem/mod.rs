//! Physical memory: the frame allocator (every page of RAM, by physical address) and the heap
//! arenas built on it (the kernel's own and, per DESIGN rule 1, one per server task).

pub mod arena;
pub mod frame;

pub use frame::{FrameStats, PhysRange};
