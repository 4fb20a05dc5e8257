//! The `linux` server: the Linux ABI. It owns processes (ids, parents, credentials, address-space
//! layout, file descriptors, cwd, umask, signal dispositions) and answers every system call and
//! user fault, which reach it as typed requests on its endpoint (`server_rt::user_request`).
//!
//! Handlers have one signature, one file per family under `sys/`: they get a [`Ctx`] (the
//! calling process and thread, the arguments) and return an [`Outcome`]: a result, `Block`
//! (nothing was done; the request is kept and run again when something changes: data in a pipe,
//! a child's exit, console input, time passing), or `NoReply` (the thread is gone or replaced).
//! Nothing a program passes is trusted: every pointer goes through `Kernel::aspace_read/write`,
//! which fails with EFAULT outside the caller's mapped memory.
//!
//! v0 keeps the file tree (`fs.rs`) and the console line discipline (`tty.rs`) inside this
//! server; DESIGN puts them in `vfs`/`ramfs` and a tty server (see docs/caveats.md).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod elf;
pub mod exec;
pub mod files;
pub mod fs;
pub mod process;
pub mod sys;
pub mod tty;

use abi::Errno;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use server_rt::{kernel, log, user_request, Cqe, Kernel, Sqe, ThreadRef};

pub type Pid = u32;

/// What a handler did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done(i64),
    /// Could not make progress; nothing changed. Run again later.
    Block,
    /// The calling thread is gone (exit) or already answered.
    NoReply,
}

impl From<Errno> for Outcome {
    fn from(e: Errno) -> Self {
        Outcome::Done(e.as_return())
    }
}

impl From<Result<i64, Errno>> for Outcome {
    fn from(r: Result<i64, Errno>) -> Self {
        match r {
            Ok(v) => Outcome::Done(v),
            Err(e) => Outcome::Done(e.as_return()),
        }
    }
}

/// One request being handled.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub tag: u64,
    pub pid: Pid,
    pub thread: ThreadRef,
    pub nr: u32,
    pub args: [u64; 6],
    /// When the request first arrived (for timeouts and sleeps).
    pub started_ns: u64,
    /// The calling thread's id (`pid` for the main thread).
    pub tid: Pid,
}

/// The server's state.
pub struct Linux {
    pub k: &'static dyn Kernel,
    pub fs: fs::Fs,
    pub procs: BTreeMap<Pid, process::Process>,
    pub threads: BTreeMap<u64, Pid>,
    pub next_pid: Pid,
    pub tty: tty::Tty,
    /// Blocked requests, retried in arrival order.
    pending: Vec<(Sqe, u64)>,
    /// System call numbers already reported as unimplemented.
    reported: Vec<u32>,
    /// `strace=1` on the command line: log every system call and its result.
    strace: bool,
    /// System call handlers by number.
    pub handlers: [Option<sys::Handler>; sys::MAX_NR],
    /// Which numbers cannot unblock another request (`sys::PURE`).
    pure: [bool; sys::MAX_NR],
    /// Threads waiting on futexes.
    pub futexes: sys::futex::Futexes,
    /// Parents waiting in vfork for their children.
    pub vforks: Vec<sys::proc::VforkWait>,
    /// The earliest interval-timer expiry (monotonic ns; `u64::MAX` when none is armed).
    pub next_timer_ns: u64,
    /// Results of requests that finished as their process stopped: (tag, result), answered
    /// when it continues.
    pub held: Vec<(u64, i64)>,
    /// Loaded executables, shared copy-on-write by every exec of them.
    pub images: exec::ImageCache,
}

impl Linux {
    fn new() -> Linux {
        let k = kernel();
        let mut fs = fs::Fs::from_cpio(k.initrd());
        fs.add_server_files(k.servers().iter().map(|s| s.name));
        Linux {
            k,
            fs,
            procs: BTreeMap::new(),
            threads: BTreeMap::new(),
            next_pid: 1,
            tty: tty::Tty::new(),
            pending: Vec::new(),
            reported: Vec::new(),
            strace: k.cmdline_get("strace") == Some("1"),
            handlers: sys::table(),
            pure: sys::pure_table(),
            futexes: Default::default(),
            vforks: Vec::new(),
            next_timer_ns: u64::MAX,
            held: Vec::new(),
            images: Default::default(),
        }
    }

    /// Whether system calls are logged (`strace=1`).
    pub fn strace(&self) -> bool {
        self.strace
    }

    /// Logs an unimplemented system call once, by name.
    pub fn report_enosys(&mut self, nr: u32) {
        if !self.reported.contains(&nr) {
            self.reported.push(nr);
            let name = abi::syscall::name(abi::syscall::CURRENT, nr as usize).unwrap_or("no such call");
            log!("linux: unimplemented system call {nr} ({name}): ENOSYS");
        }
    }

    fn handle(&mut self, sqe: &Sqe, started_ns: u64) -> Outcome {
        let thread = self.k.thread_of(sqe.tag);
        let Some(&pid) = self.threads.get(&thread.0) else {
            return Outcome::Done(Errno::ESRCH.as_return());
        };
        let (tid, stopped) = process::tid_and_stopped(self, pid, thread);
        let ctx = Ctx { tag: sqe.tag, pid, thread, nr: sqe.opcode, args: sqe.args, started_ns, tid };
        // A stopped process's requests wait for SIGCONT (one that finished as the process
        // stopped keeps its result until then).
        if stopped {
            return Outcome::Block;
        }
        let outcome = match sys::signal::take_held(self, sqe.tag) {
            Some(result) => Outcome::Done(result),
            None => match sqe.flags {
                user_request::SYSCALL => sys::dispatch(self, &ctx),
                user_request::FAULT => process::on_fault(self, &ctx),
                user_request::INTERRUPT => sys::signal::on_interrupt(self, &ctx),
                _ => Outcome::Done(Errno::EINVAL.as_return()),
            },
        };
        // Signals are delivered on the way back to user mode; a blocked call is interrupted.
        let outcome = sys::signal::on_reply(self, &ctx, sqe.flags, outcome);
        if self.strace && outcome != Outcome::Block {
            let name = abi::syscall::name(abi::syscall::CURRENT, ctx.nr as usize).unwrap_or("?");
            let what = match sqe.flags {
                user_request::FAULT => "FAULT",
                user_request::INTERRUPT => "INTERRUPT",
                _ => name,
            };
            log!(
                "[{pid}] {what}({:#x}, {:#x}, {:#x}, {:#x}) = {outcome:?}",
                ctx.args[0],
                ctx.args[1],
                ctx.args[2],
                ctx.args[3]
            );
        }
        outcome
    }

    fn answer(&self, tag: u64, outcome: Outcome) {
        if let Outcome::Done(result) = outcome {
            let _ = self.k.reply(&Cqe { tag, result, ..Default::default() });
        }
    }

    /// Runs every blocked request again, keeping those that still block.
    fn retry_pending(&mut self) {
        let mut progress = true;
        while progress {
            progress = false;
            let pending = core::mem::take(&mut self.pending);
            for (sqe, started) in pending {
                match self.handle(&sqe, started) {
                    Outcome::Block => self.pending.push((sqe, started)),
                    o => {
                        self.answer(sqe.tag, o);
                        progress = true;
                    }
                }
            }
        }
    }

    /// How long to wait for the next request: a tick with requests blocked, until the next
    /// timer otherwise (`u64::MAX`: for ever).
    fn wait_ns(&self) -> u64 {
        let timers = sys::timer::next_wake_ns(self);
        if self.pending.is_empty() {
            timers
        } else {
            timers.min(1_000_000)
        }
    }

    fn serve(&mut self) -> ! {
        loop {
            // With requests blocked (waiting for input, a child, time), wake at least every tick
            // to look at them again; a new request wakes the server at once either way.
            // Interval timers wake the server too.
            let wait = self.wait_ns();
            let next = if wait == u64::MAX { self.k.receive().map(Some) } else { self.k.receive_timeout(wait) };
            let mut next = match next {
                Ok(n) => n,
                Err(e) => panic!("linux: receive failed: {e}"),
            };
            // While requests answer at once and nothing waits, answer and take the next request
            // in one step: the nucleus switches straight to the caller (its fast path). Leave
            // the loop at least every 10 ms to look at console input (^C while a program runs).
            let batch_start = self.k.now_ns();
            while let Some(sqe) = next.take() {
                sys::timer::fire(self);
                let now = self.k.now_ns();
                let fast = now < batch_start + 10_000_000;
                let outcome = self.handle(&sqe, now);
                // What this request did may unblock others (a child's exit, data in a pipe).
                let pure = sqe.flags == user_request::SYSCALL && self.pure.get(sqe.opcode as usize) == Some(&true);
                if !self.pending.is_empty() && !pure {
                    self.retry_pending();
                }
                match outcome {
                    Outcome::Block => self.pending.push((sqe, now)),
                    Outcome::Done(result) if fast && !self.tty.has_pending_signal() => {
                        // With requests blocked, wake within a tick anyway to look at them.
                        let wait = self.wait_ns();
                        let reply = Cqe { tag: sqe.tag, result, ..Default::default() };
                        match self.k.reply_and_receive_timeout(&reply, wait) {
                            Ok(r) => next = r,
                            Err(e) => panic!("linux: receive failed: {e}"),
                        }
                    }
                    o => self.answer(sqe.tag, o),
                }
            }
            self.tty.poll_input(self.k);
            tty::deliver_signals(self);
            sys::timer::fire(self);
            if !self.pending.is_empty() {
                self.retry_pending();
            }
        }
    }
}

/// Server entry: build the file tree, start init, serve.
pub fn main() {
    let mut l = Linux::new();
    let init = l.k.cmdline_get("init").unwrap_or("/init");
    let init = if l.fs.lookup(fs::ROOT, init, true).is_ok() { init } else { "/bin/sh" };
    match process::spawn_init(&mut l, init) {
        Ok(pid) => log!("linux: started {init} as pid {pid}"),
        Err(e) => {
            log!("linux: cannot start {init}: errno {}", e.0);
            l.k.poweroff(127);
        }
    }
    l.serve();
}
