//! The host-side test harness for Cairn.
//!
//! * [`qemu`]: the one set of QEMU command lines per architecture (used by the guest tests,
//!   the interactive `run` binary behind `just qemu-*`, and later the benchmarks);
//! * [`runner`]: starts QEMU in its own process group, collects the serial console on a thread,
//!   waits for markers or the end with a deadline, and always kills QEMU;
//! * [`transcript`]: the console markers (`@@TEST-PASS`, `@@TEST-FAIL`, `@@POWEROFF`) and the
//!   ordered-substring checks;
//! * [`guest`]: the table of guest tests;
//! * [`faults`]: the fault-injection tests, generated from the server table;
//! * [`ext2`]: the disk file system's tests (images made by `mke2fs`, checked by `e2fsck`);
//! * [`suite`]: runs one table entry (initramfs, QEMU, verdict, log file).
//!
//! Nothing here knows the kernel's internals: the contract is the command line, the initramfs
//! and the console text.

use std::path::{Path, PathBuf};

pub mod ext2;
pub mod faults;
pub mod guest;
pub mod qemu;
pub mod runner;
pub mod suite;
pub mod transcript;

/// The workspace root (the parent of this crate's directory), against which the default
/// paths (`build/...`, `target/...`) are resolved. Falls back to the current directory if the
/// source tree has moved since the harness was built.
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf);
    match root {
        Some(r) if r.join("Cargo.toml").is_file() => r,
        _ => PathBuf::from("."),
    }
}
