//! Servers that exercise the nucleus from the outside, through the same runtime every server
//! uses: `echo` (answers calls, and misbehaves on request: panics, faults, overflows its stack,
//! hangs), `relay` (lends grants on and sends notifications), `keeper` (a counter in a state
//! area that survives its death), `blkc1`..`blkc3` (block-device clients that hammer `blk` at
//! once, `blkclient.rs`) and `testdriver` (runs the test named by `test=` on the command line,
//! prints `@@TEST-PASS`/`@@TEST-FAIL`, and powers off; its block-device cases are in
//! `blktests.rs`).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod blkclient;
pub mod blkio;
pub mod blktests;
pub mod driver;
pub mod echo;
pub mod keeper;
pub mod relay;
