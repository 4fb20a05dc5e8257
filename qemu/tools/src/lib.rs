//! Host-side builders of guest images. Today: [`cpio`], the initramfs format (a layered,
//! deterministic newc writer and a reader for tests). Used by the `mkcpio` binary and by the
//! guest-test harness in `tests/`. Host code only: never linked into the kernel.

pub mod cpio;
