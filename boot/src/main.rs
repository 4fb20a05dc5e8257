//! The kernel image: boot headers, the first instructions, and the hand-off to the nucleus.
//!
//! Each architecture has a folder here with its boot protocol (`x86_64/`: a PVH ELF note and a
//! 32-bit entry that builds the first page tables and enters long mode; `aarch64/`: a Linux
//! `Image` header and an EL1 entry that turns the MMU on) and its linker script. Both end in
//! [`kernel_entry`], on the higher-half mapping with a boot stack, with a filled-in `BootInfo`.
//! This crate owns nothing after that point: the nucleus takes over for good.
#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

/// The common landing point of every architecture's boot path.
fn kernel_entry(info: &'static arch::BootInfo) -> ! {
    nucleus::main(info, &server_table::SERVERS)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    nucleus::panic::on_panic(info)
}
