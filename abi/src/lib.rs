//! The Linux ABI as data: system call numbers per architecture, errno values, and (as the Linux
//! server grows) the layouts of the structures user programs pass in (`stat`, `termios`,
//! `sigaction`...) and the protocols of every server (`proto/`). No logic, no `unsafe`.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod errno;
pub mod proto;
pub mod syscall;

pub use errno::Errno;
