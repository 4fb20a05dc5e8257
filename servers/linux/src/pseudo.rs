//! `/proc` and `/sys`: file systems whose contents are this server's own state (processes,
//! memory, mounts, the servers and the trace switch), generated when read. The VFS mounts them
//! like any other file system but leaves the walk inside them to this server (its answer is a
//! redirect), because it cannot call back into a client that is waiting for it.
//!
//! Nodes are named by a small code (`Node::ino`) inside the FileIds of this server, volume
//! `FSTYPE_PROC` or `FSTYPE_SYSFS`; nothing is stored, so there is nothing to lose when this
//! server restarts, and a stale node (a process that exited) gives ENOENT.

use crate::{Linux, Pid};
use abi::proto::vfs::{FSTYPE_PROC, FSTYPE_SYSFS};
use abi::proto::{FileId, S_IFDIR, S_IFLNK, S_IFREG};
use abi::Errno;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Files directly under /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcFile {
    Mounts,
    Meminfo,
    Uptime,
    Version,
    Cpuinfo,
    Loadavg,
    Filesystems,
    Stat,
}

const PROC_FILES: [(&str, ProcFile); 8] = [
    ("cpuinfo", ProcFile::Cpuinfo),
    ("filesystems", ProcFile::Filesystems),
    ("loadavg", ProcFile::Loadavg),
    ("meminfo", ProcFile::Meminfo),
    ("mounts", ProcFile::Mounts),
    ("stat", ProcFile::Stat),
    ("uptime", ProcFile::Uptime),
    ("version", ProcFile::Version),
];

/// Files under /proc/<pid>.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidFile {
    Stat,
    Status,
    Cmdline,
    Comm,
    Exe,
    Cwd,
    Mounts,
    FdDir,
}

const PID_FILES: [(&str, PidFile); 8] = [
    ("cmdline", PidFile::Cmdline),
    ("comm", PidFile::Comm),
    ("cwd", PidFile::Cwd),
    ("exe", PidFile::Exe),
    ("fd", PidFile::FdDir),
    ("mounts", PidFile::Mounts),
    ("stat", PidFile::Stat),
    ("status", PidFile::Status),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    ProcRoot,
    Proc(ProcFile),
    /// /proc/self: a link to the caller's /proc/<pid>.
    SelfLink,
    Pid(Pid),
    PidFile(Pid, PidFile),
    /// /proc/<pid>/fd/<n>: a link naming what descriptor n refers to.
    PidFd(Pid, u32),
    SysRoot,
    SysKernel,
    SysTracing,
    TracingOn,
    SysServers,
    Server(usize),
    ServerStatus(usize),
    ServerFault(usize),
}

/// Where a walk inside a pseudo file system ended.
pub enum Walk {
    Node(Node),
    /// It left the pseudo file system (an absolute link, or `..` out of its root): go on from
    /// `start` with `path` through the VFS.
    Elsewhere {
        start: FileId,
        path: Vec<u8>,
    },
}

impl Node {
    fn tag(self) -> (u64, u64, u64) {
        match self {
            Node::ProcRoot => (1, 0, 0),
            Node::Proc(f) => (2, 0, f as u64),
            Node::SelfLink => (3, 0, 0),
            Node::Pid(p) => (4, p as u64, 0),
            Node::PidFile(p, f) => (5, p as u64, f as u64),
            Node::PidFd(p, n) => (6, p as u64, n as u64),
            Node::SysRoot => (7, 0, 0),
            Node::SysKernel => (8, 0, 0),
            Node::SysTracing => (9, 0, 0),
            Node::TracingOn => (10, 0, 0),
            Node::SysServers => (11, 0, 0),
            Node::Server(i) => (12, 0, i as u64),
            Node::ServerStatus(i) => (13, 0, i as u64),
            Node::ServerFault(i) => (14, 0, i as u64),
        }
    }

    /// The inode number: a 6-bit kind, a 20-bit pid and a 14-bit index.
    pub fn ino(self) -> u64 {
        let (t, a, b) = self.tag();
        (t << 34) | ((a & 0xf_ffff) << 14) | (b & 0x3fff)
    }

    fn from_ino(ino: u64) -> Option<Node> {
        let (t, a, b) = (ino >> 34, ((ino >> 14) & 0xf_ffff) as Pid, ino & 0x3fff);
        let proc_file = |b: u64| PROC_FILES.iter().map(|&(_, f)| f).find(|&f| f as u64 == b);
        let pid_file = |b: u64| PID_FILES.iter().map(|&(_, f)| f).find(|&f| f as u64 == b);
        Some(match t {
            1 => Node::ProcRoot,
            2 => Node::Proc(proc_file(b)?),
            3 => Node::SelfLink,
            4 => Node::Pid(a),
            5 => Node::PidFile(a, pid_file(b)?),
            6 => Node::PidFd(a, b as u32),
            7 => Node::SysRoot,
            8 => Node::SysKernel,
            9 => Node::SysTracing,
            10 => Node::TracingOn,
            11 => Node::SysServers,
            12 => Node::Server(b as usize),
            13 => Node::ServerStatus(b as usize),
            14 => Node::ServerFault(b as usize),
            _ => return None,
        })
    }

    /// The node a FileId of this server names (a mount root names the file system's root).
    pub fn from_file(f: FileId) -> Node {
        let root = if f.volume() as u64 == FSTYPE_SYSFS { Node::SysRoot } else { Node::ProcRoot };
        if f.ino() <= 1 {
            return root;
        }
        Node::from_ino(f.ino()).unwrap_or(root)
    }

    fn fstype(self) -> u64 {
        match self {
            Node::SysRoot
            | Node::SysKernel
            | Node::SysTracing
            | Node::TracingOn
            | Node::SysServers
            | Node::Server(_)
            | Node::ServerStatus(_)
            | Node::ServerFault(_) => FSTYPE_SYSFS,
            _ => FSTYPE_PROC,
        }
    }

    pub fn file_id(self, me: usize) -> FileId {
        FileId::new(me, self.fstype() as u32, self.ino())
    }

    pub fn is_dir(self) -> bool {
        matches!(
            self,
            Node::ProcRoot
                | Node::Pid(_)
                | Node::PidFile(_, PidFile::FdDir)
                | Node::SysRoot
                | Node::SysKernel
                | Node::SysTracing
                | Node::SysServers
                | Node::Server(_)
        )
    }

    fn is_link(self) -> bool {
        matches!(self, Node::SelfLink | Node::PidFile(_, PidFile::Exe | PidFile::Cwd) | Node::PidFd(..))
    }

    /// File type and permissions.
    pub fn mode(self) -> u32 {
        if self.is_dir() {
            S_IFDIR | 0o555
        } else if self.is_link() {
            S_IFLNK | 0o777
        } else {
            match self {
                Node::TracingOn => S_IFREG | 0o644,
                Node::ServerFault(_) => S_IFREG | 0o200,
                _ => S_IFREG | 0o444,
            }
        }
    }
}

fn alive(l: &Linux, pid: Pid) -> bool {
    l.procs.get(&pid).is_some_and(|p| p.exit_status.is_none())
}

/// The entries of directory `n`.
pub fn entries(l: &Linux, n: Node) -> Result<Vec<(String, Node)>, Errno> {
    let mut v: Vec<(String, Node)> = Vec::new();
    match n {
        Node::ProcRoot => {
            v.extend(PROC_FILES.iter().map(|&(name, f)| (name.into(), Node::Proc(f))));
            v.push(("self".into(), Node::SelfLink));
            v.extend(
                l.procs.values().filter(|p| p.exit_status.is_none()).map(|p| (format!("{}", p.pid), Node::Pid(p.pid))),
            );
        }
        Node::Pid(pid) if alive(l, pid) => {
            v.extend(PID_FILES.iter().map(|&(name, f)| (name.into(), Node::PidFile(pid, f))));
        }
        Node::PidFile(pid, PidFile::FdDir) if alive(l, pid) => {
            let p = l.procs.get(&pid).ok_or(Errno::ENOENT)?;
            v.extend(p.fds.open_fds().map(|(fd, _)| (format!("{fd}"), Node::PidFd(pid, fd as u32))));
        }
        Node::SysRoot => v.push(("kernel".into(), Node::SysKernel)),
        Node::SysKernel => {
            v.push(("servers".into(), Node::SysServers));
            v.push(("tracing".into(), Node::SysTracing));
        }
        Node::SysTracing => v.push(("tracing_on".into(), Node::TracingOn)),
        Node::SysServers => {
            v.extend(l.k.servers().iter().enumerate().map(|(i, s)| (String::from(s.name), Node::Server(i))));
            v.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Node::Server(i) => {
            v.push(("fault".into(), Node::ServerFault(i)));
            v.push(("status".into(), Node::ServerStatus(i)));
        }
        _ if n.is_dir() => return Err(Errno::ENOENT),
        _ => return Err(Errno::ENOTDIR),
    }
    Ok(v)
}

fn child(l: &Linux, dir: Node, name: &str) -> Result<Node, Errno> {
    if !dir.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    entries(l, dir)?.into_iter().find(|(n, _)| n == name).map(|(_, node)| node).ok_or(Errno::ENOENT)
}

/// The parent of directory `n` (None: the root of its file system).
fn parent(n: Node) -> Option<Node> {
    Some(match n {
        Node::Proc(_) | Node::SelfLink | Node::Pid(_) => Node::ProcRoot,
        Node::PidFile(p, _) => Node::Pid(p),
        Node::PidFd(p, _) => Node::PidFile(p, PidFile::FdDir),
        Node::SysKernel => Node::SysRoot,
        Node::SysTracing | Node::SysServers => Node::SysKernel,
        Node::TracingOn => Node::SysTracing,
        Node::Server(_) => Node::SysServers,
        Node::ServerStatus(i) | Node::ServerFault(i) => Node::Server(i),
        Node::ProcRoot | Node::SysRoot => return None,
    })
}

/// Where a link points.
pub fn readlink(l: &mut Linux, caller: Pid, n: Node) -> Result<Vec<u8>, Errno> {
    Ok(match n {
        Node::SelfLink => format!("{caller}").into_bytes(),
        Node::PidFile(pid, PidFile::Exe) => l.procs.get(&pid).ok_or(Errno::ENOENT)?.exe.clone().into_bytes(),
        Node::PidFile(pid, PidFile::Cwd) => {
            let cwd = l.procs.get(&pid).ok_or(Errno::ENOENT)?.cwd;
            crate::sys::dir::path_of(l, cwd)?
        }
        Node::PidFd(pid, fd) => {
            let p = l.procs.get(&pid).ok_or(Errno::ENOENT)?;
            let f = p.fds.get(fd as u64)?.file.clone();
            let f = f.borrow();
            match &f.object {
                crate::files::Object::Pipe { pipe, .. } => match pipe.borrow().fifo {
                    Some(id) => format!("fifo:[{}]", id.ino()).into_bytes(),
                    None => format!("pipe:[{}]", alloc::rc::Rc::as_ptr(pipe) as usize % 100_000).into_bytes(),
                },
                crate::files::Object::Device { dev: crate::files::Device::Tty, .. } => b"/dev/console".to_vec(),
                crate::files::Object::Device { dev, .. } => format!(
                    "/dev/{}",
                    match dev {
                        crate::files::Device::Null => "null",
                        crate::files::Device::Zero => "zero",
                        crate::files::Device::Full => "full",
                        _ => "urandom",
                    }
                )
                .into_bytes(),
                crate::files::Object::Pseudo(n) => format!("/proc/{}", n.ino()).into_bytes(),
                crate::files::Object::Anon(a) => format!("anon_inode:{}", a.name()).into_bytes(),
                crate::files::Object::Socket(s) => {
                    format!("socket:[{}]", alloc::rc::Rc::as_ptr(s) as usize % 100_000).into_bytes()
                }
                crate::files::Object::File { id, mode } => {
                    let (id, mode) = (*id, *mode);
                    drop(f);
                    if mode & abi::proto::S_IFMT == S_IFDIR {
                        crate::sys::dir::path_of(l, id)?
                    } else {
                        format!("file:[{}]", id.ino()).into_bytes()
                    }
                }
            }
        }
        _ => return Err(Errno::EINVAL),
    })
}

/// Walks `path` (relative) from `start` inside the pseudo file systems.
pub fn walk(l: &mut Linux, caller: Pid, start: Node, path: &[u8], follow: bool) -> Result<Walk, Errno> {
    let mut cur = start;
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
    let trailing_slash = path.ends_with(b"/");
    let mut links = 0;
    let mut i = 0;
    let mut pending: Vec<Vec<u8>> = Vec::new();
    loop {
        let comp: Vec<u8> = if let Some(c) = pending.pop() {
            c
        } else if i < comps.len() {
            i += 1;
            comps[i - 1].to_vec()
        } else {
            break;
        };
        let is_last = pending.is_empty() && i == comps.len();
        if !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        match comp.as_slice() {
            b"." => continue,
            b".." => match parent(cur) {
                Some(p) => {
                    cur = p;
                    continue;
                }
                None => {
                    // Out of the mount: `..` of the directory it covers, then the rest.
                    let mut rest = b"..".to_vec();
                    for c in pending.iter().rev().map(|c| c.as_slice()).chain(comps[i..].iter().copied()) {
                        rest.push(b'/');
                        rest.extend_from_slice(c);
                    }
                    let root = cur.file_id(l.me);
                    let mut out = [0u8; 0];
                    let c = l.vfs(abi::proto::vfs::MOUNTPOINT_OF, [root.0, 0, 0, 0, 0, 0], &[], &mut out)?;
                    let covered = if c.result == 1 { FileId(c.aux) } else { root };
                    return Ok(Walk::Elsewhere { start: covered, path: rest });
                }
            },
            _ => {}
        }
        let name = core::str::from_utf8(&comp).map_err(|_| Errno::ENOENT)?;
        let next = child(l, cur, name)?;
        if next.is_link() && (!is_last || follow || trailing_slash) {
            links += 1;
            if links > 40 {
                return Err(Errno::ELOOP);
            }
            let target = readlink(l, caller, next)?;
            if target.starts_with(b"/") {
                let mut rest = target;
                for c in pending.iter().rev().map(|c| c.as_slice()).chain(comps[i..].iter().copied()) {
                    rest.push(b'/');
                    rest.extend_from_slice(c);
                }
                return Ok(Walk::Elsewhere { start: FileId(0), path: rest });
            }
            for c in target.split(|&b| b == b'/').filter(|c| !c.is_empty()).rev() {
                pending.push(c.to_vec());
            }
            continue;
        }
        cur = next;
    }
    if trailing_slash && !cur.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(Walk::Node(cur))
}

/// The text of a file node, made now.
pub fn contents(l: &mut Linux, n: Node) -> Result<Vec<u8>, Errno> {
    let m = l.k.mem_stats();
    let kib = |frames: usize| frames as u64 * 4;
    let text = match n {
        Node::Proc(ProcFile::Mounts) | Node::PidFile(_, PidFile::Mounts) => {
            let mut buf = alloc::vec![0u8; 16 * 1024];
            let c = l.vfs(abi::proto::vfs::MOUNTS, [0; 6], &[], &mut buf)?;
            buf.truncate(c.result as usize);
            return Ok(buf);
        }
        Node::Proc(ProcFile::Meminfo) => format!(
            "MemTotal: {:>12} kB\nMemFree: {:>13} kB\nMemAvailable: {:>8} kB\nBuffers: {:>13} kB\nCached: {:>14} kB\nSwapTotal: {:>11} kB\nSwapFree: {:>12} kB\n",
            kib(m.frames_total), kib(m.frames_free), kib(m.frames_free), 0, 0, 0, 0
        ),
        Node::Proc(ProcFile::Uptime) => {
            let ns = l.k.now_ns();
            format!("{}.{:02} 0.00\n", ns / 1_000_000_000, (ns / 10_000_000) % 100)
        }
        Node::Proc(ProcFile::Version) => "Linux version 6.1.0-cairn (Cairn capability microkernel) #1 SMP\n".into(),
        Node::Proc(ProcFile::Cpuinfo) => {
            let machine = match abi::syscall::CURRENT {
                abi::syscall::Arch::X86_64 => "x86_64",
                abi::syscall::Arch::Aarch64 => "aarch64",
            };
            format!("processor\t: 0\nmodel name\t: Cairn virtual CPU ({machine})\n\n")
        }
        Node::Proc(ProcFile::Loadavg) => format!("0.00 0.00 0.00 1/{} {}\n", l.procs.len(), l.next_pid - 1),
        Node::Proc(ProcFile::Filesystems) => "nodev\ttmpfs\nnodev\tproc\nnodev\tsysfs\nnodev\tdevtmpfs\n\text2\n".into(),
        Node::Proc(ProcFile::Stat) => {
            let ticks = l.k.now_ns() / 10_000_000;
            format!("cpu  0 0 0 {ticks} 0 0 0 0 0 0\ncpu0 0 0 0 {ticks} 0 0 0 0 0 0\nprocesses {}\nprocs_running 1\n", l.next_pid - 1)
        }
        Node::PidFile(pid, f) => {
            let p = l.procs.get(&pid).ok_or(Errno::ENOENT)?;
            let comm = p.exe.rsplit('/').next().unwrap_or("").chars().take(15).collect::<String>();
            match f {
                PidFile::Stat => format!(
                    "{} ({}) {} {} {} {} 0 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0\n",
                    p.pid,
                    comm,
                    if p.exit_status.is_some() { 'Z' } else { 'R' },
                    p.ppid,
                    p.pgid,
                    p.sid
                ),
                PidFile::Status => format!(
                    "Name:\t{}\nState:\t{}\nPid:\t{}\nPPid:\t{}\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n",
                    comm,
                    if p.exit_status.is_some() { "Z (zombie)" } else { "R (running)" },
                    p.pid,
                    p.ppid
                ),
                PidFile::Cmdline => {
                    let mut v = p.exe.clone().into_bytes();
                    v.push(0);
                    return Ok(v);
                }
                PidFile::Comm => format!("{comm}\n"),
                _ => return Err(Errno::EINVAL),
            }
        }
        Node::TracingOn => String::from(if l.k.tracing() { "1\n" } else { "0\n" }),
        Node::ServerStatus(i) => server_status(l, i),
        Node::ServerFault(_) => return Err(Errno::EACCES),
        _ if n.is_dir() => return Err(Errno::EISDIR),
        _ => return Err(Errno::EINVAL),
    };
    Ok(text.into_bytes())
}

fn server_status(l: &Linux, i: usize) -> String {
    let spec = l.k.servers().get(i);
    match (spec, l.k.server_info(i)) {
        (Some(s), Some(info)) => {
            let policy = match s.policy {
                server_rt::RestartPolicy::Transparent => "transparent",
                server_rt::RestartPolicy::Reset => "reset",
                server_rt::RestartPolicy::Never => "never",
            };
            let death = info.last_death.map_or(String::from("none"), |d| format!("{d}"));
            format!(
                "name: {}\nstate: {}\ninstance: {}\nrestarts: {}\npolicy: {}\nin-flight: {}\nlast-death: {}\ndma-pages: {}\n",
                s.name,
                match (info.alive, info.instance) {
                    (true, _) => "running",
                    (false, 0) => "not started",
                    (false, _) => "dead",
                },
                info.instance,
                info.instance.saturating_sub(1),
                policy,
                info.in_flight,
                death,
                info.dma_pages
            )
        }
        _ => "no such server\n".into(),
    }
}

/// A write to a file node: the trace switch and fault injection.
pub fn write(l: &mut Linux, n: Node, data: &[u8]) -> Result<usize, Errno> {
    match n {
        Node::TracingOn => match data.first() {
            Some(b'1') => {
                l.k.set_tracing(true);
                Ok(data.len())
            }
            Some(b'0') => {
                l.k.set_tracing(false);
                Ok(data.len())
            }
            _ => Err(Errno::EINVAL),
        },
        Node::ServerFault(i) => {
            let text = core::str::from_utf8(data).unwrap_or("");
            let name = l.k.servers().get(i).map(|s| s.name).ok_or(Errno::ENOENT)?;
            match server_rt::FaultCommand::parse(text).ok_or(Errno::EINVAL)? {
                server_rt::FaultCommand::Random { period_ms, seed } => {
                    l.k.inject_random(name, period_ms, seed).map(drop)
                }
                server_rt::FaultCommand::Stop => l.k.inject_random(name, 0, 0).map(drop),
                server_rt::FaultCommand::Now(kind) => {
                    // Killing this very server from its own request would lose the answer: a
                    // delay of 1 ns still fires on the next tick, after the reply.
                    let delay = if i == l.me { 1 } else { 0 };
                    l.k.inject(name, kind, delay)
                }
            }
            .map_err(|_| Errno::EINVAL)?;
            Ok(data.len())
        }
        _ if n.is_dir() => Err(Errno::EISDIR),
        _ => Err(Errno::EACCES),
    }
}

/// Attributes for stat.
pub fn attr(l: &Linux, n: Node) -> abi::proto::Attr {
    let now = l.k.realtime_ns();
    let t = abi::proto::Timespec { sec: (now / 1_000_000_000) as i64, nsec: (now % 1_000_000_000) as i64 };
    abi::proto::Attr {
        file: n.file_id(l.me).0,
        mode: n.mode(),
        nlink: if n.is_dir() { 2 } else { 1 },
        blksize: 1024,
        atime: t,
        mtime: t,
        ctime: t,
        ..Default::default()
    }
}
