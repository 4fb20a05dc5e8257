//! `virtio-lib`: the glue between the `virtio-drivers` crate and Cairn's driver servers.
//!
//! **Why this crate exists, and why under `arch/`.** Servers are `#![deny(unsafe_code)]`, but
//! `virtio-drivers` needs three `unsafe` things from whoever uses it: an `unsafe impl Hal` (DMA
//! memory, the addresses of device registers, the physical address of a buffer), transports
//! built from raw register addresses, and non-blocking queue operations (`VirtQueue::add` and
//! `pop_used`) whose contract — a buffer stays put and untouched while the device owns it — the
//! caller must keep. Nothing else can host that code: the rules allow `unsafe` only in `arch/`,
//! `boot/` and `nucleus/`, and putting a virtio driver into the nucleus would move a device's
//! failures into the one component that must never fail. So this small crate holds exactly the
//! glue, each `unsafe` block with its `// SAFETY:` line, and hands servers safe handles
//! ([`blk::VirtioBlk`]).
//!
//! **What it relies on.** Only `server_rt::Kernel` — never nucleus or arch internals. Every
//! address it dereferences was handed out by the nucleus for the calling server: register
//! windows of a device the server opened (`device_mmio`, checked against its ownership) and DMA
//! regions it allocated (`dma_alloc`; `dma_phys` refuses buffers outside them, so a device is
//! only ever pointed at DMA memory). When the server dies, the nucleus resets the device before
//! it frees that memory, so the glue needs no destructor to be safe.
//!
//! **What it must not do.** Keep state outside the handles it returns, hand a server a
//! reference to memory the device may be writing, or block: completion is learnt from the
//! device's interrupt, delivered to the server as a notification.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod blk;
pub mod hal;

pub use hal::{CairnHal, DmaBuffer, KernelCam};
