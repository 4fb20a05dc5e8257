//! System call dispatch: the number is turned into its name with the architecture's table from
//! `abi/`, so that one server serves both the x86_64 table and the asm-generic one (where
//! `open`, `fork`, `stat`... do not exist and `openat`, `clone`, `newfstatat` are used).
//! Every handler has the same signature: `fn(&mut Linux, &Ctx) -> Outcome`.

pub mod file;
pub mod info;
pub mod mem;
pub mod proc;
pub mod signal;

use crate::{Ctx, Linux, Outcome};
use abi::Errno;

/// `AT_FDCWD` as the 64-bit register value.
pub const AT_FDCWD: u64 = (-100i64) as u64;

pub fn dispatch(l: &mut Linux, c: &Ctx) -> Outcome {
    let name = abi::syscall::name(abi::syscall::CURRENT, c.nr as usize).unwrap_or("");
    match name {
        // files
        "read" => file::read(l, c),
        "write" => file::write(l, c),
        "readv" => file::readv(l, c),
        "writev" => file::writev(l, c),
        "pread64" => file::pread64(l, c),
        "pwrite64" => file::pwrite64(l, c),
        "open" => file::open(l, c),
        "openat" => file::openat(l, c),
        "creat" => file::creat(l, c),
        "close" => file::close(l, c),
        "lseek" => file::lseek(l, c),
        "dup" => file::dup(l, c),
        "dup2" => file::dup2(l, c),
        "dup3" => file::dup3(l, c),
        "fcntl" => file::fcntl(l, c),
        "pipe" => file::pipe(l, c),
        "pipe2" => file::pipe2(l, c),
        "ioctl" => file::ioctl(l, c),
        "fstat" => file::fstat(l, c),
        "stat" => file::stat(l, c),
        "lstat" => file::lstat(l, c),
        "newfstatat" => file::newfstatat(l, c),
        "getdents64" => file::getdents64(l, c),
        "getcwd" => file::getcwd(l, c),
        "chdir" => file::chdir(l, c),
        "fchdir" => file::fchdir(l, c),
        "mkdir" => file::mkdir(l, c),
        "mkdirat" => file::mkdirat(l, c),
        "unlink" => file::unlink(l, c),
        "rmdir" => file::rmdir(l, c),
        "unlinkat" => file::unlinkat(l, c),
        "readlink" => file::readlink(l, c),
        "readlinkat" => file::readlinkat(l, c),
        "access" => file::access(l, c),
        "faccessat" | "faccessat2" => file::faccessat(l, c),
        "umask" => file::umask(l, c),
        "poll" => file::poll(l, c),
        "sendfile" => file::sendfile(l, c),
        "rename" => file::rename(l, c),
        "renameat" => file::renameat(l, c),
        "renameat2" => file::renameat2(l, c),
        "link" => file::link(l, c),
        "linkat" => file::linkat(l, c),
        "symlink" => file::symlink(l, c),
        "symlinkat" => file::symlinkat(l, c),
        "chmod" => file::chmod(l, c),
        "fchmod" => file::fchmod(l, c),
        "fchmodat" => file::fchmodat(l, c),
        "chown" => file::chown(l, c),
        "lchown" => file::lchown(l, c),
        "fchown" => file::fchown(l, c),
        "fchownat" => file::fchownat(l, c),
        "utimensat" => file::utimensat(l, c),
        "truncate" => file::truncate(l, c),
        "ftruncate" => file::ftruncate(l, c),
        "statfs" => file::statfs(l, c),
        "fstatfs" => file::fstatfs(l, c),
        "statx" => file::statx(l, c),
        "ppoll" => file::ppoll(l, c),
        // memory
        "brk" => mem::brk(l, c),
        "mmap" => mem::mmap(l, c),
        "munmap" => mem::munmap(l, c),
        "mprotect" => mem::mprotect(l, c),
        // processes
        "exit" | "exit_group" => proc::exit_group(l, c),
        "fork" | "vfork" => proc::fork(l, c),
        "clone" => proc::clone(l, c),
        "execve" => proc::execve(l, c),
        "wait4" => proc::wait4(l, c),
        "getpid" => proc::getpid(l, c),
        "getppid" => proc::getppid(l, c),
        "gettid" => proc::getpid(l, c),
        "set_tid_address" => proc::getpid(l, c),
        "getpgid" => proc::getpgid(l, c),
        "getpgrp" => proc::getpgrp(l, c),
        "setpgid" => proc::setpgid(l, c),
        "getsid" => proc::getsid(l, c),
        "setsid" => proc::setsid(l, c),
        "arch_prctl" => proc::arch_prctl(l, c),
        "getuid" | "geteuid" | "getgid" | "getegid" => Outcome::Done(0),
        "setuid" | "setgid" | "setgroups" => Outcome::Done(0),
        "set_robust_list" => Outcome::Done(0),
        "prctl" => proc::prctl(l, c),
        // signals
        "rt_sigaction" => signal::rt_sigaction(l, c),
        "rt_sigprocmask" => signal::rt_sigprocmask(l, c),
        "kill" => signal::kill(l, c),
        "tgkill" | "tkill" => signal::tgkill(l, c),
        "rt_sigreturn" => signal::rt_sigreturn(l, c),
        "rt_sigsuspend" => signal::rt_sigsuspend(l, c),
        // time and information
        "uname" => info::uname(l, c),
        "clock_gettime" => info::clock_gettime(l, c),
        "gettimeofday" => info::gettimeofday(l, c),
        "time" => info::time(l, c),
        "nanosleep" => info::nanosleep(l, c),
        "clock_nanosleep" => info::clock_nanosleep(l, c),
        "getrandom" => info::getrandom(l, c),
        "prlimit64" => info::prlimit64(l, c),
        "getrlimit" => info::getrlimit(l, c),
        "sysinfo" => info::sysinfo(l, c),
        _ => {
            l.report_enosys(c.nr);
            Errno::ENOSYS.into()
        }
    }
}
