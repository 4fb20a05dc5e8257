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
//! Files are not here: paths go to `vfs`, file contents and attributes to the file system that
//! holds them (`ramfs`...), the terminal to `tty` (`fsclient.rs`); this server keeps what is
//! per process — descriptor tables, offsets, cwd, umask — and serves `/proc` and `/sys` itself
//! (`pseudo.rs`).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

pub mod elf;
pub mod exec;
pub mod files;
pub mod fsclient;
pub mod process;
pub mod pseudo;
pub mod sys;

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
    /// This server's index in the server table (the `server` of its FileIds).
    pub me: usize,
    pub procs: BTreeMap<Pid, process::Process>,
    pub threads: BTreeMap<u64, Pid>,
    /// The path of the open(2) being served, kept between calls (`sys::open`).
    pub path_buf: alloc::vec::Vec<u8>,
    pub next_pid: Pid,
    /// Request ids for calls that change something in another server.
    pub rids: server_rt::RequestIds,
    /// Files whose last open description went away, to be released.
    pub releases: files::ReleaseQueue,
    /// The canonical path of the last walk that asked for it (`vfs::WALK_PATH`).
    pub last_path: Vec<u8>,
    /// The console's foreground process group and TOSTOP, mirrored (`sys::jobctl`).
    pub tty_foreground: Pid,
    pub tty_tostop: bool,
    /// Blocked requests, retried in arrival order.
    pending: Vec<(Sqe, u64)>,
    /// System call numbers already reported as unimplemented.
    reported: Vec<u32>,
    /// `strace=1` on the command line: log every system call and its result.
    strace: bool,
    /// System call handlers by number.
    pub handlers: [Option<sys::Handler>; sys::MAX_NR],
    /// Capabilities of the servers this one calls (`fsclient`).
    pub endpoints: server_rt::Endpoints,
    /// The buffer requests with paths and structures grant (`fsclient::call_scratch`): one
    /// allocation for good instead of two zeroed ones of 4 KiB per path walk.
    pub scratch: Vec<u8>,
    /// The calls the nucleus answers from published values (`process::publish_identity`).
    pub identity_calls: Vec<(u32, process::Identity)>,
    /// clock_gettime as the nucleus answers it (`sys::info::clock_call`).
    pub clock_call: Option<(u32, server_rt::ClockCall)>,
    /// Set by a handler whose request changed nothing a blocked request can wait for (a read,
    /// an open or a close of a regular file), so that the blocked ones are not run again for
    /// it; cleared before every request. A wrong `true` costs a blocked request at most a
    /// tick, when they are all run again anyway.
    pub quiet: bool,
    /// Which numbers cannot unblock another request (`sys::PURE`).
    pure: [bool; sys::MAX_NR],
    /// Threads waiting on futexes.
    pub futexes: sys::futex::Futexes,
    /// FIFO buffers and opens waiting for the other side.
    pub fifos: sys::fifo::Fifos,
    /// Names of bound Unix domain sockets.
    pub unix: sys::unix::Names,
    /// Advisory file locks (fcntl record and OFD locks, flock).
    pub locks: sys::locks::Locks,
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
        Linux {
            k,
            me: k.whoami().0,
            procs: BTreeMap::new(),
            path_buf: alloc::vec::Vec::new(),
            threads: BTreeMap::new(),
            next_pid: 1,
            rids: server_rt::RequestIds::new(),
            releases: alloc::rc::Rc::new(core::cell::RefCell::new(Vec::new())),
            last_path: Vec::new(),
            tty_foreground: 1,
            tty_tostop: false,
            pending: Vec::new(),
            reported: Vec::new(),
            strace: k.cmdline_get("strace") == Some("1"),
            handlers: sys::table(),
            pure: sys::pure_table(),
            identity_calls: process::identity_calls(),
            clock_call: sys::info::clock_call(),
            quiet: false,
            endpoints: Default::default(),
            scratch: alloc::vec![0; abi::proto::NAMES_AT as usize + abi::proto::PATH_MAX],
            futexes: Default::default(),
            fifos: Default::default(),
            locks: Default::default(),
            unix: Default::default(),
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
        let outcome = self.handle_request(sqe, started_ns);
        self.drain_releases();
        outcome
    }

    /// Input or a signal from the terminal: deliver what it raised to the foreground group.
    fn on_tty_notice(&mut self) {
        if let Ok(r) = self.tty(abi::proto::tty::TAKE_SIGNALS, [0; 6], server_rt::GrantRef::NONE) {
            let (mask, pgid) = (r.result as u64, r.aux as Pid);
            for sig in 1..64u32 {
                if mask & (1 << sig) != 0 {
                    sys::signal::kill_group(self, pgid, sig);
                }
            }
        }
    }

    fn handle_request(&mut self, sqe: &Sqe, started_ns: u64) -> Outcome {
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
            let (mut sqe, mut have) = match next {
                Ok(Some(n)) => (n, true),
                Ok(None) => (Sqe::default(), false),
                Err(e) => panic!("linux: receive failed: {e}"),
            };
            // While requests answer at once and nothing waits, answer and take the next request
            // in one step: the nucleus switches straight to the caller (its fast path) and
            // writes the next request into `sqe`.
            while have {
                have = false;
                sys::timer::fire(self);
                if sqe.is_notification() {
                    self.on_tty_notice();
                    if !self.pending.is_empty() {
                        self.retry_pending();
                    }
                    continue;
                }
                let now = self.k.now_ns();
                self.quiet = false;
                let outcome = self.handle(&sqe, now);
                // What this request did may unblock others (a child's exit, data in a pipe).
                let pure = sqe.flags == user_request::SYSCALL
                    && (self.quiet || self.pure.get(sqe.opcode as usize) == Some(&true));
                if !self.pending.is_empty() && !pure {
                    self.retry_pending();
                }
                match outcome {
                    Outcome::Block => self.pending.push((sqe, now)),
                    Outcome::Done(result) => {
                        // With requests blocked, wake within a tick anyway to look at them.
                        let wait = self.wait_ns();
                        let reply = Cqe { tag: sqe.tag, result, ..Default::default() };
                        match self.k.reply_and_receive_into(&reply, wait, &mut sqe) {
                            Ok(got) => have = got,
                            Err(e) => panic!("linux: receive failed: {e}"),
                        }
                    }
                    Outcome::NoReply => {}
                }
            }
            sys::timer::fire(self);
            if !self.pending.is_empty() {
                self.retry_pending();
            }
        }
    }
}

/// The devices of `/dev` (a devtmpfs): name, type, major, minor.
const DEVICES: [(&str, u32, u32, u32); 9] = [
    ("null", abi::proto::S_IFCHR | 0o666, 1, 3),
    ("zero", abi::proto::S_IFCHR | 0o666, 1, 5),
    ("full", abi::proto::S_IFCHR | 0o666, 1, 7),
    ("random", abi::proto::S_IFCHR | 0o666, 1, 8),
    ("urandom", abi::proto::S_IFCHR | 0o666, 1, 9),
    ("tty", abi::proto::S_IFCHR | 0o666, 5, 0),
    ("console", abi::proto::S_IFCHR | 0o600, 5, 1),
    ("ttyS0", abi::proto::S_IFCHR | 0o660, 4, 64),
    ("ttyAMA0", abi::proto::S_IFCHR | 0o660, 4, 64),
];

/// The disk's device number (`/dev/vda`: Linux's virtio-blk major, 254, minor 0).
pub const DISK_RDEV: u64 = abi::proto::makedev(254, 0);

/// The servers that hold file systems (`sync(2)` asks each to write everything back).
pub const FILE_SERVERS: [&str; 2] = ["ramfs", "ext2"];

/// Mounts `/dev` (devtmpfs with the devices), `/proc` and `/sys`, as an init system would
/// before anything else runs, creating the directories if the initramfs lacks them. A mount
/// that already exists (a restarted `vfs` kept its table) is left alone.
fn mount_system(l: &mut Linux) {
    let mut mounts = alloc::vec![0u8; 16 * 1024];
    let have = match l.vfs(abi::proto::vfs::MOUNTS, [0; 6], &[], &mut mounts) {
        Ok(c) => alloc::string::String::from_utf8_lossy(&mounts[..c.result as usize]).into_owned(),
        Err(e) => {
            log!("linux: no vfs: errno {}", e.0);
            return;
        }
    };
    let root = abi::proto::Cred::ROOT.to_word();
    for (path, kind, source) in [
        ("/dev", abi::proto::vfs::FSTYPE_DEVTMPFS, "devtmpfs"),
        ("/proc", abi::proto::vfs::FSTYPE_PROC, "proc"),
        ("/sys", abi::proto::vfs::FSTYPE_SYSFS, "sysfs"),
    ] {
        if have.lines().any(|m| m.split(' ').nth(1) == Some(path)) {
            continue;
        }
        let p = path.as_bytes();
        let _ = l.vfs(
            abi::proto::vfs::MKNOD,
            [0, p.len() as u64, (abi::proto::S_IFDIR | 0o755) as u64, 0, root, 0],
            &[p],
            &mut [],
        );
        let s = source.as_bytes();
        if let Err(e) =
            l.vfs(abi::proto::vfs::MOUNT, [kind, 0, s.len() as u64, p.len() as u64, root, 0], &[s, p], &mut [])
        {
            log!("linux: cannot mount {source} on {path}: errno {}", e.0);
        }
    }
    // The terminal's foreground group is init's (a restarted server starts init again).
    let init_group = 1u32.to_le_bytes();
    let _ =
        l.tty(abi::proto::tty::IOCTL, [0x5410, 0, 0, 0, 0, 0], server_rt::grant(&init_group, server_rt::GRANT_READ));
    for (name, mode, major, minor) in DEVICES {
        let path = alloc::format!("/dev/{name}");
        let p = path.as_bytes();
        let rdev = abi::proto::makedev(major, minor);
        let _ = l.vfs(abi::proto::vfs::MKNOD, [0, p.len() as u64, mode as u64, rdev, root, 0], &[p], &mut []);
    }
    // The disk, if there is one (the nucleus starts `blk` only then).
    let blk = l.k.servers().iter().position(|s| s.name == abi::proto::blk::SERVICE);
    if blk.and_then(|i| l.k.server_info(i)).is_some_and(|i| i.instance > 0) {
        let p = b"/dev/vda";
        let mode = abi::proto::S_IFBLK | 0o660;
        let _ = l.vfs(abi::proto::vfs::MKNOD, [0, p.len() as u64, mode as u64, DISK_RDEV, root, 0], &[p], &mut []);
    }
}

/// Server entry: mount the system file systems, start init, serve.
pub fn main() {
    let mut l = Linux::new();
    // A previous instance may have died between changing a directory's mode and telling the
    // VFS, which remembers directories for its walks.
    l.vfs_forget();
    mount_system(&mut l);
    // `init=` if given, else as Linux looks: the initramfs's /init, then the usual places.
    let exists = |l: &mut Linux, path: &str| {
        l.resolve(0, abi::proto::FileId(0), path.as_bytes(), abi::proto::vfs::WALK_FOLLOW, 0).is_ok()
    };
    let init = match l.k.cmdline_get("init") {
        Some(i) if exists(&mut l, i) => i,
        _ => ["/init", "/sbin/init", "/etc/init", "/bin/init"]
            .into_iter()
            .find(|p| exists(&mut l, p))
            .unwrap_or("/bin/sh"),
    };
    // Words after `--` on the command line are init's arguments, as on Linux.
    let args: alloc::vec::Vec<&str> = l.k.cmdline_init_args().split_ascii_whitespace().collect();
    match process::spawn_init(&mut l, init, &args) {
        Ok(pid) => log!("linux: started {init} as pid {pid}"),
        Err(e) => {
            log!("linux: cannot start {init}: errno {}", e.0);
            l.k.poweroff(127);
        }
    }
    l.serve();
}
