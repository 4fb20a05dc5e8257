//! The host-side analyzer of Cairn trace streams (DESIGN section 5).
//!
//! It reads what the nucleus wrote into its per-CPU trace buffers — the binary format of
//! [`ipc::trace`], either as a raw stream or embedded in a console transcript — and answers
//! the questions a person debugging the system asks: how many messages of each kind went
//! where, how long syscalls and requests took (percentiles), which requests one syscall caused
//! and how long each hop took, which requests were never answered or went to dead servers.
//! It also exports Chrome trace-event JSON (for Perfetto) and a self-contained HTML timeline.
//!
//! # The record contract
//!
//! [`ipc::trace`] fixes the bytes; this section fixes what the nucleus puts in them, and the
//! analyzer relies on exactly this. Every record carries `timestamp` (the clock counter
//! as read, which the input converts to nanoseconds since boot with its stream header's clock;
//! the CPUs' clocks are assumed to be in step), `cpu` (the CPU that wrote it), `task`
//! (a nucleus task slot) and `kind`. Fields a kind does not list are 0 and are ignored.
//!
//! | kind | `task` | `endpoint` | `opcode` | `tag` | `arg` | `arg2` |
//! |---|---|---|---|---|---|---|
//! | `SyscallEnter` | user thread | ignored (the nucleus puts `linux`'s) | syscall number | request tag of the syscall | first syscall argument | arch: 0 = x86_64, 1 = aarch64 |
//! | `SyscallExit` | user thread | — | syscall number | same tag as the enter | result (`i64` as `u64`) | — |
//! | `Send` | sender | endpoint index | message opcode | request tag | size in bytes | tag of the request the sender is serving, 0 if none |
//! | `Receive` | server | endpoint index | message opcode | request tag | — | — |
//! | `Reply` | server | endpoint index | — | request tag | result (`Cqe.result`) | — |
//! | `Switch` | task switched away from | task switched to (a slot) | — | — | reason: 0 preempt, 1 block, 2 yield, 3 exit | 1 for a fast-path direct switch |
//! | `Block`, `Wake` | the task | — | — | — | — | — |
//! | `Death` | the dead task | endpoint it served, `u32::MAX` if none | server index, `u32::MAX` if no server | — | requests failed with `ServerDied` | — |
//! | `Restart` | the new task | endpoint it serves, `u32::MAX` if none | server index | — | instance number (1 = first start) | — |
//! | `FaultInject` | the victim | — | injection kind | — | — | — |
//! | `Dropped` | — | — | — | — | records lost on this CPU just before this one | — |
//! | `SyscallAnswered` | user thread | — | syscall number | — | result (`i64` as `u64`) | arch, as in `SyscallEnter` |
//!
//! How the analyzer reads them:
//!
//! * **Order.** Records are stably sorted by `timestamp`; records with equal timestamps
//!   keep their order in the stream, so one CPU's records (written in order) stay in order.
//! * **Tags.** A tag names one outstanding request. The tag of a syscall is the tag of the
//!   request the nucleus sends for it to `linux`, so `SyscallEnter(tag T)`, `Send(tag T)`,
//!   `Receive(tag T)`, `Reply(tag T)`, `SyscallExit(tag T)` form one call. Tags may be reused
//!   once their request is complete (a retry may even reuse the tag of the attempt that
//!   failed), never while it is outstanding.
//! * **Matching.** A `Receive`/`Reply` completes the outstanding `Send` with its tag, preferring
//!   one on the same endpoint. `SyscallExit` closes the open `SyscallEnter` with its tag (with
//!   tag 0, the open syscall of the same task). Latency is `Send` → `Reply` for a request and
//!   `SyscallEnter` → `SyscallExit` for a syscall; percentiles use the nearest-rank method.
//! * **Causality.** A `Send` whose `arg2` is `P ≠ 0` is a child of the outstanding request with
//!   tag `P` (preferring the one the sender received), or, if there is none, of the open
//!   syscall with tag `P`. A `Send` with `arg2 = 0` and tag `T` is a root request of the open
//!   syscall with tag `T`, or a top-level request if there is none. So
//!   `read` → `linux` → `vfs` → `ext2` → `blk` is: the nucleus sends `T` to `linux`
//!   (`arg2 = 0`), `linux`, serving `T`, sends `U` to `vfs` with `arg2 = T`, and so on.
//! * **Death.** A `Death` completes every outstanding request on its endpoint (or received by
//!   the dead task) as failed with `ServerDied`, and marks the endpoint dead until a `Restart`
//!   names it. A `Send` to a dead endpoint is reported as sent to a dead server. A request
//!   that follows a failed sibling (same parent, endpoint and opcode) is shown as its retry.
//!   A `Death` with neither endpoint nor server index is a task *exit* (a user thread ending,
//!   in `exit_group` or killed): no failure. The requests the dead task had sent and that
//!   are still outstanding are *abandoned*: a late `Reply` still matches them, and if none
//!   comes they are not reported as never answered.
//! * **Start.** The nucleus writes a `Restart` for every server start, the first included; one
//!   that follows a `Death` of the same endpoint (or, without endpoint, server index) is a
//!   restart, the others are first starts.
//! * **Never answered.** A `Send` with no `Reply` and no `Death` of its endpoint's server by the
//!   end of the trace (and whose sender did not die waiting).
//! * **Opcodes.** The request a syscall sends to `linux` carries the syscall number as its
//!   opcode, so it is labelled with the syscall's name (`linux [read]`) unless `--names`
//!   names the opcode. A result of `i64::MIN + 1` is `linux`'s `REGS_SET` ("registers
//!   replaced", execve and signal returns).
//! * **Running time.** On each CPU, a `Switch` ends the run of `task` and starts one of the
//!   task in `endpoint`. A CPU's first run starts at its first record, its last ends at its
//!   last record. Task slot `u32::MAX`, and any task named `idle…`, is the idle loop: not busy.
//! * **Arch.** Syscall numbers are named with the table of the arch in `SyscallEnter.arg2`
//!   (other values fall back to the stream header's arch, then x86_64); `--arch` overrides.
//!
//! Names are not in the records: they come from a side file (`--names`) or from
//! `@@TRACE-NAME` lines of a console transcript (see [`input`] and [`names`]).
//!
//! # Invariants
//!
//! * Nothing in the input can make the analyzer panic: malformed bytes, unknown kinds,
//!   replies without sends, lost records all become warnings and partial results.
//! * Analysis is a pure function of (records, names, options): the same trace gives the
//!   same report, byte for byte (maps are ordered, never hashed into output order).
//!
//! # What it must not do
//!
//! It owns no format: the record layout is [`ipc::trace`]'s, syscall names are `abi`'s. It
//! never needs the network; the HTML it writes loads nothing from elsewhere.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod base64;
pub mod chrome;
pub mod cli;
pub mod html;
pub mod input;
pub mod json;
pub mod lanes;
pub mod model;
pub mod names;
pub mod report;
pub mod stats;
pub mod synth;
pub mod syscalls;

pub use input::{load, Trace};
pub use model::{analyze, Analysis, Options};
