//! Hand-made traces shared by the integration tests, each a small story told with
//! [`TraceBuilder`] exactly as the record contract says the nucleus tells it.
//!
//! Cast (the same in every scenario): endpoints 1 `linux`, 2 `vfs`, 3 `ext2`, 4 `blk`,
//! 5 `dev`, 6 `net`; tasks 10 `sh` and 11 `cat` (user threads), 2 and 7 (two `linux`
//! workers), 3 `vfs`, 4 `ext2`, 5 `blk`, 6 `supervisor`, 9 `net`, 8 (the restarted `ext2`).
//! Syscall numbers are x86_64's unless a scenario says otherwise (read = 0, write = 1); as
//! in the nucleus, the request a syscall sends to `linux` has the syscall number as opcode.
//! Invariant: the scenarios only build traces; what to expect of them is in the tests.
#![allow(dead_code)]

use ipc::trace::TraceArch;
use trace_analyzer::names::Names;
use trace_analyzer::synth::TraceBuilder;
use trace_analyzer::{analyze, load, Analysis, Options};

pub const NAMES: &[&str] = &[
    "endpoint 1 linux",
    "endpoint 2 vfs",
    "endpoint 3 ext2",
    "endpoint 4 blk",
    "endpoint 5 dev",
    "endpoint 6 net",
    "task 10 sh",
    "task 11 cat",
    "task 2 linux",
    "task 7 linux-b",
    "task 3 vfs",
    "task 4 ext2",
    "task 6 supervisor",
    "opcode 2 2 read",
];

pub fn names() -> Names {
    Names::parse(&NAMES.join("\n")).unwrap()
}

/// Analyzes the bytes of a trace (binary or transcript) with the cast's names.
pub fn analyze_bytes(bytes: &[u8], options: &Options) -> Analysis {
    let mut trace = load(bytes).expect("trace loads");
    trace.names.merge(names());
    analyze(&trace, options)
}

/// Two `read`s on two CPUs at once. `sh` (cpu 0) reads fd 3: linux worker 2 → vfs → ext2.
/// `cat` (cpu 1) reads fd 4: linux worker 7 → vfs (served from its cache). Their records
/// interleave in time; vfs serves `sh`'s request on cpu 0 and then `cat`'s on cpu 1.
pub fn two_cpus() -> TraceBuilder {
    let mut b = TraceBuilder::new(TraceArch::X86_64, 2);
    // cpu 0: sh
    b.at(1_000, 0).switch(u32::MAX, 10, 0).syscall_enter(10, 0, 0x100, 3);
    b.at(1_010, 0).send(10, 1, 0, 0x100, 0).switch(10, 2, 1);
    b.at(1_050, 0).receive(2, 1, 0, 0x100);
    b.at(1_100, 0).send(2, 2, 2, 0x101, 0x100).switch(2, 3, 1);
    b.at(1_150, 0).receive(3, 2, 2, 0x101);
    b.at(1_200, 0).send(3, 3, 1, 0x102, 0x101).switch(3, 4, 1);
    b.at(1_250, 0).receive(4, 3, 1, 0x102);
    b.at(1_400, 0).reply(4, 3, 0x102, 0).switch(4, 3, 3);
    b.at(1_450, 0).reply(3, 2, 0x101, 512).switch(3, 2, 1);
    b.at(1_500, 0).reply(2, 1, 0x100, 512).switch(2, 10, 1);
    b.at(1_550, 0).syscall_exit(10, 0, 0x100, 512);
    b.at(2_000, 0).switch(10, u32::MAX, 3);
    // cpu 1: cat, interleaved with the above
    b.at(1_100, 1).switch(u32::MAX, 11, 0).syscall_enter(11, 0, 0x200, 4);
    b.at(1_120, 1).send(11, 1, 0, 0x200, 0).switch(11, 7, 1);
    b.at(1_150, 1).receive(7, 1, 0, 0x200);
    b.at(1_200, 1).send(7, 2, 2, 0x201, 0x200).switch(7, u32::MAX, 1);
    b.at(1_460, 1).switch(u32::MAX, 3, 0).receive(3, 2, 2, 0x201);
    b.at(1_600, 1).reply(3, 2, 0x201, 100).switch(3, 7, 1);
    b.at(1_650, 1).reply(7, 1, 0x200, 100).switch(7, 11, 1);
    b.at(1_700, 1).syscall_exit(11, 0, 0x200, 100);
    b.at(2_000, 1).switch(11, u32::MAX, 3);
    b
}

/// `sh` reads fd 3; ext2 dies (an injected fault) while serving vfs's request, which fails
/// with ServerDied; the supervisor restarts ext2 as task 8 and vfs retries with the same tag,
/// which the new instance answers. The syscall succeeds.
pub fn death_and_retry() -> TraceBuilder {
    let mut b = TraceBuilder::new(TraceArch::X86_64, 1);
    b.at(10_000, 0).syscall_enter(10, 0, 0x300, 3);
    b.at(10_010, 0).send(10, 1, 0, 0x300, 0);
    b.at(10_050, 0).receive(2, 1, 0, 0x300);
    b.at(10_100, 0).send(2, 2, 2, 0x301, 0x300);
    b.at(10_150, 0).receive(3, 2, 2, 0x301);
    b.at(10_200, 0).send(3, 3, 1, 0x302, 0x301);
    b.at(10_250, 0).receive(4, 3, 1, 0x302);
    b.at(10_300, 0).fault(4, 1);
    b.at(10_310, 0).death(4, Some(3), Some(3), 1);
    b.at(12_000, 0).restart(8, 3, 3, 2);
    b.at(12_100, 0).send(3, 3, 1, 0x302, 0x301);
    b.at(12_150, 0).receive(8, 3, 1, 0x302);
    b.at(12_400, 0).reply(8, 3, 0x302, 0);
    b.at(12_450, 0).reply(3, 2, 0x301, 512);
    b.at(12_500, 0).reply(2, 1, 0x300, 512);
    b.at(12_550, 0).syscall_exit(10, 0, 0x300, 512);
    b
}

/// Things that go wrong without a retry: `sh`'s write(fd 1) waits on a dev request nobody
/// ever receives; the supervisor's ping of blk is received and never answered; net dies
/// (no endpoint restart) and linux then sends to it; a reply names no request.
pub fn unanswered() -> TraceBuilder {
    let mut b = TraceBuilder::new(TraceArch::X86_64, 1);
    b.at(20_000, 0).syscall_enter(10, 1, 0x400, 1);
    b.at(20_010, 0).send(10, 1, 1, 0x400, 0);
    b.at(20_050, 0).receive(2, 1, 1, 0x400);
    b.at(20_100, 0).send(2, 5, 1, 0x401, 0x400);
    b.at(20_200, 0).send(6, 4, 9, 0x500, 0);
    b.at(20_250, 0).receive(5, 4, 9, 0x500);
    b.at(20_300, 0).death(9, Some(6), Some(5), 0);
    b.at(20_400, 0).send(2, 6, 3, 0x402, 0x400);
    b.at(20_500, 0).reply(5, 4, 0x999, 0);
    b.at(30_000, 0).wake(10);
    b
}
