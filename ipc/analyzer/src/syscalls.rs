//! Naming syscalls and their values, for either architecture.
//!
//! A trace may come from x86_64 or AArch64, whose syscall numbers differ (`read` is 0 on one
//! and 63 on the other). This module decides which table a syscall's number is read with
//! (see [`syscall_arch`]), names numbers with `abi`'s generated tables, matches a
//! `--syscall` filter (a name matches that syscall on both architectures; a number matches
//! that number), and renders first arguments and results (`fd 3`, `-2 (ENOENT)`,
//! `-4099 (ServerDied)`).
//!
//! Invariant: every function here is total — an unknown number becomes `syscall_N`, an odd
//! result is printed as a plain number. It owns no table of numbers itself.

use abi::syscall::{self, Arch};
use ipc::msg::IpcError;
use ipc::trace::TraceArch;

/// The architecture whose numbering a syscall uses: the `--arch` override if any, else the
/// `SyscallEnter.arg2` field (0 = x86_64, 1 = aarch64), else the stream header's arch, else
/// x86_64.
pub fn syscall_arch(override_arch: Option<Arch>, arg2: u64, header: TraceArch) -> Arch {
    if let Some(arch) = override_arch {
        return arch;
    }
    match arg2 {
        0 => Arch::X86_64,
        1 => Arch::Aarch64,
        _ => header_arch(header).unwrap_or(Arch::X86_64),
    }
}

/// The `abi` arch of a stream header's arch.
pub fn header_arch(arch: TraceArch) -> Option<Arch> {
    match arch {
        TraceArch::X86_64 => Some(Arch::X86_64),
        TraceArch::Aarch64 => Some(Arch::Aarch64),
        TraceArch::Unknown => None,
    }
}

/// Reads `x86_64` / `aarch64` (and the common aliases `amd64`, `x86`, `arm64`).
pub fn parse_arch(s: &str) -> Option<Arch> {
    match s.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" | "amd64" | "x86" => Some(Arch::X86_64),
        "aarch64" | "arm64" => Some(Arch::Aarch64),
        _ => None,
    }
}

/// The short name of an arch.
pub fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
    }
}

/// The name of syscall `nr` on `arch`, or `syscall_N`.
pub fn name(arch: Arch, nr: u32) -> String {
    match syscall::name(arch, nr as usize) {
        Some(name) => name.to_string(),
        None => format!("syscall_{nr}"),
    }
}

/// Which syscalls a `--syscall` option selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyscallFilter {
    /// This number, on whatever arch.
    Number(u32),
    /// This name, on both arches.
    Name(String),
}

impl SyscallFilter {
    /// Reads `NR` or `NAME`; a name must exist in one of the tables.
    pub fn parse(s: &str) -> Result<SyscallFilter, String> {
        if let Some(nr) = crate::names::parse_u32(s) {
            return Ok(SyscallFilter::Number(nr));
        }
        let known = [syscall::x86_64::TABLE, syscall::aarch64::TABLE].iter().any(|t| t.iter().any(|&(_, n)| n == s));
        if known {
            Ok(SyscallFilter::Name(s.to_string()))
        } else {
            Err(format!("unknown syscall name `{s}` (not in the x86_64 or aarch64 table)"))
        }
    }

    /// Whether syscall `nr` on `arch` is selected.
    pub fn matches(&self, arch: Arch, nr: u32) -> bool {
        match self {
            SyscallFilter::Number(n) => *n == nr,
            SyscallFilter::Name(name) => syscall::name(arch, nr as usize) == Some(name.as_str()),
        }
    }
}

/// Syscalls whose first argument is a file descriptor.
const FD_FIRST: &[&str] = &[
    "read",
    "write",
    "close",
    "fstat",
    "lseek",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "ioctl",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "getdents",
    "getdents64",
    "fchdir",
    "fchmod",
    "fchown",
    "fstatfs",
    "dup",
    "dup2",
    "dup3",
    "sendfile",
    "socketpair",
    "bind",
    "connect",
    "listen",
    "accept",
    "accept4",
    "shutdown",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "splice",
    "tee",
    "sync_file_range",
    "syncfs",
    "timerfd_settime",
    "timerfd_gettime",
    "fgetxattr",
    "fsetxattr",
];

/// Syscalls whose first argument is a directory descriptor (`AT_FDCWD` = -100).
const DIRFD_FIRST: &[&str] = &[
    "openat",
    "openat2",
    "mkdirat",
    "mknodat",
    "fchownat",
    "futimesat",
    "newfstatat",
    "fstatat",
    "unlinkat",
    "renameat",
    "renameat2",
    "linkat",
    "readlinkat",
    "fchmodat",
    "fchmodat2",
    "faccessat",
    "faccessat2",
    "utimensat",
    "statx",
    "execveat",
    "name_to_handle_at",
];

/// `(fd 3)`, `(dirfd AT_FDCWD)`, `(0x7f00…)`: the first argument of syscall `name`.
pub fn describe_arg(name: &str, arg: u64) -> String {
    let signed = arg as i64 as i32;
    if FD_FIRST.contains(&name) {
        format!("(fd {signed})")
    } else if DIRFD_FIRST.contains(&name) {
        if signed == -100 {
            "(dirfd AT_FDCWD)".to_string()
        } else {
            format!("(dirfd {signed})")
        }
    } else if arg < 0x1_0000 {
        format!("({arg})")
    } else {
        format!("({arg:#x})")
    }
}

/// The Linux name of errno `n` (the asm-generic numbering both arches share), if common.
pub fn errno_name(n: i64) -> Option<&'static str> {
    const NAMES: [&str; 41] = [
        "",
        "EPERM",
        "ENOENT",
        "ESRCH",
        "EINTR",
        "EIO",
        "ENXIO",
        "E2BIG",
        "ENOEXEC",
        "EBADF",
        "ECHILD",
        "EAGAIN",
        "ENOMEM",
        "EACCES",
        "EFAULT",
        "ENOTBLK",
        "EBUSY",
        "EEXIST",
        "EXDEV",
        "ENODEV",
        "ENOTDIR",
        "EISDIR",
        "EINVAL",
        "ENFILE",
        "EMFILE",
        "ENOTTY",
        "ETXTBSY",
        "EFBIG",
        "ENOSPC",
        "ESPIPE",
        "EROFS",
        "EMLINK",
        "EPIPE",
        "EDOM",
        "ERANGE",
        "EDEADLK",
        "ENAMETOOLONG",
        "ENOLCK",
        "ENOSYS",
        "ENOTEMPTY",
        "ELOOP",
    ];
    match n {
        1..=40 => Some(NAMES[n as usize]),
        61 => Some("ENODATA"),
        75 => Some("EOVERFLOW"),
        95 => Some("EOPNOTSUPP"),
        104 => Some("ECONNRESET"),
        110 => Some("ETIMEDOUT"),
        111 => Some("ECONNREFUSED"),
        117 => Some("EUCLEAN"),
        _ => None,
    }
}

/// The `linux` server's answer "the registers were replaced, leave the frame alone" (execve,
/// signal delivery, `rt_sigreturn`): `server_rt::REGS_SET`, which a host tool under `ipc/`
/// may not depend on, so its value is repeated here.
pub const REGS_SET: i64 = i64::MIN + 1;

/// A result register (`i64` stored as `u64`): `42`, `-2 (ENOENT)`, `-4099 (ServerDied)`.
pub fn describe_result(raw: u64) -> String {
    let r = raw as i64;
    if r == REGS_SET {
        return "REGS_SET".to_string();
    }
    if let Some(e) = IpcError::from_code(r) {
        return format!("{r} ({e:?})");
    }
    if (-4095..0).contains(&r) {
        if let Some(name) = errno_name(-r) {
            return format!("{r} ({name})");
        }
    }
    if r > 0xffff {
        format!("{r:#x}")
    } else {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_choice() {
        assert_eq!(syscall_arch(None, 0, TraceArch::Aarch64), Arch::X86_64, "the record wins");
        assert_eq!(syscall_arch(None, 1, TraceArch::X86_64), Arch::Aarch64);
        assert_eq!(syscall_arch(None, 7, TraceArch::Aarch64), Arch::Aarch64, "bad field: header");
        assert_eq!(syscall_arch(None, 7, TraceArch::Unknown), Arch::X86_64);
        assert_eq!(syscall_arch(Some(Arch::Aarch64), 0, TraceArch::X86_64), Arch::Aarch64, "--arch wins");
        assert_eq!(parse_arch("arm64"), Some(Arch::Aarch64));
        assert_eq!(parse_arch("riscv"), None);
    }

    #[test]
    fn names_on_both_arches() {
        assert_eq!(name(Arch::X86_64, 0), "read");
        assert_eq!(name(Arch::Aarch64, 63), "read");
        assert_eq!(name(Arch::Aarch64, 99_999), "syscall_99999");
        let read = SyscallFilter::parse("read").unwrap();
        assert!(read.matches(Arch::X86_64, 0) && read.matches(Arch::Aarch64, 63));
        assert!(!read.matches(Arch::Aarch64, 0));
        assert_eq!(SyscallFilter::parse("63").unwrap(), SyscallFilter::Number(63));
        assert!(SyscallFilter::parse("no_such_call").is_err());
    }

    #[test]
    fn values() {
        assert_eq!(describe_arg("read", 3), "(fd 3)");
        assert_eq!(describe_arg("openat", (-100i64) as u64), "(dirfd AT_FDCWD)");
        assert_eq!(describe_arg("brk", 0x40_0000), "(0x400000)");
        assert_eq!(describe_arg("exit_group", 1), "(1)");
        assert_eq!(describe_result(42), "42");
        assert_eq!(describe_result((-2i64) as u64), "-2 (ENOENT)");
        assert_eq!(describe_result((-4099i64) as u64), "-4099 (ServerDied)");
        assert_eq!(describe_result((-3000i64) as u64), "-3000");
        assert_eq!(describe_result(REGS_SET as u64), "REGS_SET");
    }
}
