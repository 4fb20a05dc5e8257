//! System call dispatch: the number is turned into its name with the architecture's table from
//! `abi/`, so that one server serves both the x86_64 table and the asm-generic one (where
//! `open`, `fork`, `stat`... do not exist and `openat`, `clone`, `newfstatat` are used).
//! Every handler has the same signature: `fn(&mut Linux, &Ctx) -> Outcome`.

pub mod creds;
pub mod dir;
pub mod epoll;
pub mod eventfd;
pub mod fifo;
pub mod futex;
pub mod info;
pub mod ioctl;
pub mod jobctl;
pub mod locks;
pub mod mem;
pub mod open;
pub mod poll;
pub mod proc;
pub mod rw;
pub mod signal;
pub mod signalfd;
pub mod stat;
pub mod timer;
pub mod timerfd;
pub mod unix;
pub mod xattr;

use crate::{Ctx, Linux, Outcome};
use abi::Errno;

/// `AT_FDCWD` as the 64-bit register value.
pub const AT_FDCWD: u64 = (-100i64) as u64;

/// A system call handler.
pub type Handler = fn(&mut Linux, &Ctx) -> Outcome;

/// Syscall numbers the table covers (every number of both architectures is below this).
pub const MAX_NR: usize = 512;

/// The handler table by number, built once from the names (so that dispatch is an index).
pub fn table() -> [Option<Handler>; MAX_NR] {
    let mut t: [Option<Handler>; MAX_NR] = [None; MAX_NR];
    for (nr, slot) in t.iter_mut().enumerate() {
        if let Some(name) = abi::syscall::name(abi::syscall::CURRENT, nr) {
            *slot = handler(name);
        }
    }
    t
}

/// System calls that cannot unblock another request (they change no pipe, process, signal,
/// file or terminal state another call waits on): after them the server does not re-run its
/// blocked requests. Anything not listed is assumed to be able to.
const PURE: &[&str] = &[
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "getrusage",
    "times",
    "getitimer",
    "getpriority",
    "sched_getaffinity",
    "sched_getscheduler",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_yield",
    "rt_sigpending",
    "sigaltstack",
    "get_robust_list",
    "mincore",
    "getpgid",
    "getpgrp",
    "getsid",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "uname",
    "sysinfo",
    "getrandom",
    "getcwd",
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "fstat",
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "lseek",
    "readlink",
    "readlinkat",
    "access",
    "faccessat",
    "faccessat2",
    "prlimit64",
    "getrlimit",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prctl",
    "umask",
    "getdents64",
    "pread64",
];

/// `table()`'s companion: whether number `nr` is one of the [`PURE`] calls.
pub fn pure_table() -> [bool; MAX_NR] {
    let mut t = [false; MAX_NR];
    for (nr, slot) in t.iter_mut().enumerate() {
        *slot = abi::syscall::name(abi::syscall::CURRENT, nr).is_some_and(|n| PURE.contains(&n));
    }
    t
}

/// Runs system call `c.nr` (ENOSYS, logged once, for those without a handler).
pub fn dispatch(l: &mut Linux, c: &Ctx) -> Outcome {
    match l.handlers.get(c.nr as usize).copied().flatten() {
        Some(h) => h(l, c),
        None => {
            l.report_enosys(c.nr);
            Errno::ENOSYS.into()
        }
    }
}

/// The handler of the system call named `name` on this architecture.
fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        // data
        "read" => rw::read,
        "write" => rw::write,
        "readv" => rw::readv,
        "writev" => rw::writev,
        "pread64" => rw::pread64,
        "pwrite64" => rw::pwrite64,
        "lseek" => rw::lseek,
        "sendfile" => rw::sendfile,
        "copy_file_range" => rw::copy_file_range,
        "sync_file_range" => dir::sync_file_range,
        // descriptors
        "open" => open::open,
        "openat" => open::openat,
        "creat" => open::creat,
        "close" => open::close,
        "dup" => open::dup,
        "dup2" => open::dup2,
        "dup3" => open::dup3,
        "fcntl" => open::fcntl,
        "flock" => locks::flock,
        "eventfd" => eventfd::eventfd,
        "eventfd2" => eventfd::eventfd2,
        "timerfd_create" => timerfd::timerfd_create,
        "timerfd_settime" => timerfd::timerfd_settime,
        "timerfd_gettime" => timerfd::timerfd_gettime,
        "signalfd" => signalfd::signalfd,
        "signalfd4" => signalfd::signalfd4,
        "getxattr" => xattr::getxattr,
        "lgetxattr" => xattr::lgetxattr,
        "fgetxattr" => xattr::fgetxattr,
        "listxattr" => xattr::listxattr,
        "llistxattr" => xattr::llistxattr,
        "flistxattr" => xattr::flistxattr,
        "setxattr" => xattr::setxattr,
        "lsetxattr" => xattr::lsetxattr,
        "fsetxattr" => xattr::fsetxattr,
        "removexattr" => xattr::removexattr,
        "lremovexattr" => xattr::lremovexattr,
        "fremovexattr" => xattr::fremovexattr,
        "fadvise64" => xattr::fadvise64,
        "socket" => unix::socket,
        "socketpair" => unix::socketpair,
        "bind" => unix::bind,
        "listen" => unix::listen,
        "connect" => unix::connect,
        "accept" => unix::accept,
        "accept4" => unix::accept4,
        "getsockname" => unix::getsockname,
        "getpeername" => unix::getpeername,
        "shutdown" => unix::shutdown,
        "sendto" => unix::sendto,
        "recvfrom" => unix::recvfrom,
        "sendmsg" => unix::sendmsg,
        "recvmsg" => unix::recvmsg,
        "getsockopt" => unix::getsockopt,
        "setsockopt" => unix::setsockopt,
        "epoll_create" => epoll::epoll_create,
        "epoll_create1" => epoll::epoll_create1,
        "epoll_ctl" => epoll::epoll_ctl,
        "epoll_wait" => epoll::epoll_wait,
        "epoll_pwait" => epoll::epoll_pwait,
        "epoll_pwait2" => epoll::epoll_pwait2,
        "pipe" => open::pipe,
        "pipe2" => open::pipe2,
        "ioctl" => ioctl::ioctl,
        "poll" => poll::poll,
        "ppoll" => poll::ppoll,
        "select" => poll::select,
        "pselect6" => poll::pselect6,
        // attributes
        "fstat" => stat::fstat,
        "stat" => stat::stat,
        "lstat" => stat::lstat,
        "newfstatat" => stat::newfstatat,
        "statx" => stat::statx,
        "statfs" => stat::statfs,
        "fstatfs" => stat::fstatfs,
        "access" => stat::access,
        "faccessat" | "faccessat2" => stat::faccessat,
        "umask" => stat::umask,
        "chmod" => stat::chmod,
        "fchmod" => stat::fchmod,
        "fchmodat" => stat::fchmodat,
        "chown" => stat::chown,
        "lchown" => stat::lchown,
        "fchown" => stat::fchown,
        "fchownat" => stat::fchownat,
        "utimensat" => stat::utimensat,
        "truncate" => stat::truncate,
        "ftruncate" => stat::ftruncate,
        // names
        "getdents64" => dir::getdents64,
        "getcwd" => dir::getcwd,
        "chdir" => dir::chdir,
        "fchdir" => dir::fchdir,
        "mkdir" => dir::mkdir,
        "mkdirat" => dir::mkdirat,
        "mknod" => dir::mknod,
        "mknodat" => dir::mknodat,
        "unlink" => dir::unlink,
        "rmdir" => dir::rmdir,
        "unlinkat" => dir::unlinkat,
        "rename" => dir::rename,
        "renameat" => dir::renameat,
        "renameat2" => dir::renameat2,
        "link" => dir::link,
        "linkat" => dir::linkat,
        "symlink" => dir::symlink,
        "symlinkat" => dir::symlinkat,
        "readlink" => dir::readlink,
        "readlinkat" => dir::readlinkat,
        "mount" => dir::mount,
        "umount2" => dir::umount2,
        "sync" => dir::sync,
        "syncfs" => dir::syncfs,
        "fsync" => dir::fsync,
        "fdatasync" => dir::fdatasync,
        // memory
        "brk" => mem::brk,
        "mmap" => mem::mmap,
        "munmap" => mem::munmap,
        "mprotect" => mem::mprotect,
        "mremap" => mem::mremap,
        "madvise" => mem::madvise,
        "msync" => mem::msync,
        "mincore" => mem::mincore,
        "mlock" | "munlock" | "mlock2" => mem::mlock,
        "mlockall" | "munlockall" => mem::mlockall,
        // processes and threads
        "exit" => proc::exit,
        "exit_group" => proc::exit_group,
        "fork" => proc::fork,
        "vfork" => proc::vfork,
        "clone" => proc::clone,
        "clone3" => proc::clone3,
        "execve" => proc::execve,
        "wait4" => proc::wait4,
        "waitid" => proc::waitid,
        "getpid" => proc::getpid,
        "getppid" => proc::getppid,
        "gettid" => proc::gettid,
        "set_tid_address" => proc::set_tid_address,
        "set_robust_list" => proc::set_robust_list,
        "get_robust_list" => proc::get_robust_list,
        "futex" => futex::futex,
        "getpgid" => proc::getpgid,
        "getpgrp" => proc::getpgrp,
        "setpgid" => proc::setpgid,
        "getsid" => proc::getsid,
        "setsid" => proc::setsid,
        "arch_prctl" => proc::arch_prctl,
        "prctl" => proc::prctl,
        // credentials
        "getuid" => creds::getuid,
        "geteuid" => creds::geteuid,
        "getgid" => creds::getgid,
        "getegid" => creds::getegid,
        "setuid" => creds::setuid,
        "setgid" => creds::setgid,
        "setreuid" => creds::setreuid,
        "setregid" => creds::setregid,
        "setresuid" => creds::setresuid,
        "setresgid" => creds::setresgid,
        "getresuid" => creds::getresuid,
        "getresgid" => creds::getresgid,
        "setfsuid" => creds::setfsuid,
        "setfsgid" => creds::setfsgid,
        "getgroups" => creds::getgroups,
        "setgroups" => creds::setgroups,
        // signals
        "rt_sigaction" => signal::rt_sigaction,
        "rt_sigprocmask" => signal::rt_sigprocmask,
        "rt_sigpending" => signal::rt_sigpending,
        "rt_sigtimedwait" => signal::rt_sigtimedwait,
        "rt_sigqueueinfo" | "rt_tgsigqueueinfo" => signal::rt_sigqueueinfo,
        "sigaltstack" => signal::sigaltstack,
        "kill" => signal::kill,
        "tgkill" | "tkill" => signal::tgkill,
        "rt_sigreturn" => signal::rt_sigreturn,
        "rt_sigsuspend" => signal::rt_sigsuspend,
        "pause" => signal::pause,
        // timers
        "alarm" => timer::alarm,
        "setitimer" => timer::setitimer,
        "getitimer" => timer::getitimer,
        "timer_create" => timer::timer_create,
        "timer_settime" => timer::timer_settime,
        "timer_gettime" => timer::timer_gettime,
        "timer_getoverrun" => timer::timer_getoverrun,
        "timer_delete" => timer::timer_delete,
        // time and information
        "uname" => info::uname,
        "clock_gettime" => info::clock_gettime,
        "clock_getres" => info::clock_getres,
        "gettimeofday" => info::gettimeofday,
        "time" => info::time,
        "nanosleep" => info::nanosleep,
        "clock_nanosleep" => info::clock_nanosleep,
        "getrandom" => info::getrandom,
        "prlimit64" => info::prlimit64,
        "getrlimit" => info::getrlimit,
        "setrlimit" => info::setrlimit,
        "getrusage" => info::getrusage,
        "times" => info::times,
        "sched_yield" => info::sched_yield,
        "sched_getaffinity" => info::sched_getaffinity,
        "sched_setaffinity" => info::sched_setaffinity,
        "sched_getscheduler" => info::sched_getscheduler,
        "sched_getparam" => info::sched_getparam,
        "sched_get_priority_max" | "sched_get_priority_min" => info::sched_get_priority,
        "getpriority" => info::getpriority,
        "setpriority" => info::setpriority,
        "sysinfo" => info::sysinfo,
        "reboot" => info::reboot,
        _ => return None,
    })
}
