//! Host tests of the ext2 library, one binary (one link) for all of them. `common` holds the
//! file-backed device and the e2fsprogs helpers; each other module is one area:
//! `format` (our mkfs), `mke2fs_images` (reading what mke2fs makes), `workload` (operations
//! judged by e2fsck and debugfs), `features` (feature flags, revision 0, xattrs, statfs),
//! `fuzz` (mutated images), `held` (the held dirty set as a transaction: undo, freed blocks,
//! restored open references, `read_map`).

mod common;
mod features;
mod format;
mod fuzz;
mod held;
mod mke2fs_images;
mod workload;
