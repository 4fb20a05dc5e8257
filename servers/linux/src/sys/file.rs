//! Files and directories: read/write (and the vector and positioned forms), open/close, seek,
//! dup, fcntl, pipes, terminal ioctls, stat, getdents64, cwd, mkdir/unlink/rmdir, readlink,
//! access, umask, poll. Blocking reads (empty pipe, console without input) return `Block` and
//! are retried by the server loop.

use crate::files::{new_pipe, Fd, Object};
use crate::fs::{Content, Device, Ino, S_IFCHR, S_IFDIR, S_IFMT, S_IFREG};
use crate::process::{read_bytes, read_cstr, write_bytes};
use crate::sys::AT_FDCWD;
use crate::{Ctx, Linux, Outcome, Pid};
use abi::syscall::layout::{encode_stat, Stat};
use abi::Errno;
use alloc::vec::Vec;

const O_ACCMODE: u32 = 3;
const O_WRONLY: u32 = 1;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;
const O_NONBLOCK: u32 = 0o4000;
const O_DIRECTORY: u32 = 0o200000;
const O_NOFOLLOW: u32 = 0o400000;
const O_CLOEXEC: u32 = 0o2000000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EMPTY_PATH: u64 = 0x1000;

/// The most a single read or write moves.
const IO_MAX: usize = 1 << 20;

fn cwd(l: &Linux, pid: Pid) -> Ino {
    l.procs.get(&pid).map_or(crate::fs::ROOT, |p| p.cwd)
}

/// The directory a `*at` call is relative to.
fn dir_of(l: &Linux, pid: Pid, dirfd: u64, path: &str) -> Result<Ino, Errno> {
    if path.starts_with('/') || dirfd == AT_FDCWD || dirfd as u32 == AT_FDCWD as u32 {
        return Ok(cwd(l, pid));
    }
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let f = p.fds.get(dirfd)?;
    match f.file.borrow().object {
        Object::Node(ino) if matches!(l.fs.node(ino).map(|n| &n.content), Some(Content::Dir(_))) => Ok(ino),
        _ => Err(Errno::ENOTDIR),
    }
}

fn read_object(l: &mut Linux, c: &Ctx, fd: u64, len: usize, at: Option<u64>) -> Result<Option<Vec<u8>>, Errno> {
    let p = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?;
    let f = p.fds.get(fd)?.file.clone();
    let mut f = f.borrow_mut();
    if f.flags & O_ACCMODE == O_WRONLY {
        return Err(Errno::EBADF);
    }
    let nonblock = f.flags & O_NONBLOCK != 0;
    let len = len.min(IO_MAX);
    match &f.object {
        Object::PipeRead(pipe) => {
            let mut pipe = pipe.borrow_mut();
            if pipe.buf.is_empty() {
                return if pipe.writers == 0 {
                    Ok(Some(Vec::new()))
                } else if nonblock {
                    Err(Errno::EAGAIN)
                } else {
                    Ok(None)
                };
            }
            let n = len.min(pipe.buf.len());
            Ok(Some(pipe.buf.drain(..n).collect()))
        }
        Object::PipeWrite(_) => Err(Errno::EBADF),
        Object::Node(ino) => {
            let ino = *ino;
            match &l.fs.node(ino).ok_or(Errno::EBADF)?.content {
                Content::File(data) => {
                    let off = at.unwrap_or(f.offset) as usize;
                    let start = off.min(data.len());
                    let out = data[start..(start + len).min(data.len())].to_vec();
                    if at.is_none() {
                        f.offset += out.len() as u64;
                    }
                    Ok(Some(out))
                }
                Content::Dir(_) => Err(Errno::EISDIR),
                Content::Symlink(_) => Err(Errno::EINVAL),
                Content::Dev(Device::Null) => Ok(Some(Vec::new())),
                Content::Dev(Device::ServerFault(_)) => Err(Errno::EACCES),
                Content::Dev(Device::Generated(g)) => {
                    let text = crate::sys::info::generated(l, *g);
                    let off = (at.unwrap_or(f.offset) as usize).min(text.len());
                    let out = text.as_bytes()[off..(off + len).min(text.len())].to_vec();
                    if at.is_none() {
                        f.offset += out.len() as u64;
                    }
                    Ok(Some(out))
                }
                Content::Dev(Device::TraceControl) => {
                    let on = l.k.tracing();
                    let text: &[u8] = if on { b"1\n" } else { b"0\n" };
                    let off = (at.unwrap_or(f.offset) as usize).min(text.len());
                    let out = text[off..(off + len).min(text.len())].to_vec();
                    if at.is_none() {
                        f.offset += out.len() as u64;
                    }
                    Ok(Some(out))
                }
                Content::Dev(Device::Zero) => Ok(Some(alloc::vec![0; len])),
                Content::Dev(Device::Random) => {
                    let mut x = l.k.now_ns() | 1;
                    Ok(Some(
                        (0..len)
                            .map(|_| {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                x as u8
                            })
                            .collect(),
                    ))
                }
                Content::Dev(Device::Console) => {
                    drop(f);
                    let tty = &mut l.tty;
                    if tty.ready.is_empty() {
                        if tty.eof {
                            tty.eof = false;
                            return Ok(Some(Vec::new()));
                        }
                        return if nonblock { Err(Errno::EAGAIN) } else { Ok(None) };
                    }
                    let canonical = tty.termios.lflag & crate::tty::ICANON != 0;
                    let mut out = Vec::new();
                    while out.len() < len {
                        let Some(b) = tty.ready.pop_front() else { break };
                        out.push(b);
                        if canonical && b == b'\n' {
                            break;
                        }
                    }
                    Ok(Some(out))
                }
            }
        }
    }
}

fn write_object(l: &mut Linux, c: &Ctx, fd: u64, data: &[u8], at: Option<u64>) -> Outcome {
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let f = match p.fds.get(fd) {
        Ok(f) => f.file.clone(),
        Err(e) => return e.into(),
    };
    let mut f = f.borrow_mut();
    if f.flags & O_ACCMODE == 0 {
        return Errno::EBADF.into();
    }
    match &f.object {
        Object::PipeWrite(pipe) => {
            let mut pipe = pipe.borrow_mut();
            if pipe.readers == 0 {
                drop(pipe);
                drop(f);
                crate::sys::signal::send(l, c.pid, 13); // SIGPIPE
                if l.procs.get(&c.pid).is_some_and(|p| p.exit_status.is_some()) {
                    return Outcome::NoReply;
                }
                return Errno::EPIPE.into();
            }
            let room = crate::files::PIPE_CAPACITY.saturating_sub(pipe.buf.len());
            if room == 0 {
                return if f.flags & O_NONBLOCK != 0 { Errno::EAGAIN.into() } else { Outcome::Block };
            }
            let n = room.min(data.len());
            pipe.buf.extend(&data[..n]);
            Outcome::Done(n as i64)
        }
        Object::PipeRead(_) => Errno::EBADF.into(),
        Object::Node(ino) => {
            let ino = *ino;
            let append = f.flags & O_APPEND != 0;
            let now = crate::sys::info::wall_seconds(l);
            let Some(node) = l.fs.node_mut(ino) else { return Errno::EBADF.into() };
            match &mut node.content {
                Content::File(bytes) => {
                    let off = if append { bytes.len() } else { at.unwrap_or(f.offset) as usize };
                    if off.saturating_add(data.len()) > 256 << 20 {
                        return Errno::EFBIG.into();
                    }
                    if bytes.len() < off + data.len() {
                        bytes.resize(off + data.len(), 0);
                    }
                    bytes[off..off + data.len()].copy_from_slice(data);
                    node.mtime = now;
                    if at.is_none() {
                        f.offset = (off + data.len()) as u64;
                    }
                    Outcome::Done(data.len() as i64)
                }
                Content::Dir(_) => Errno::EISDIR.into(),
                Content::Symlink(_) => Errno::EINVAL.into(),
                Content::Dev(Device::Console) => {
                    drop(f);
                    l.tty.write(l.k, data);
                    Outcome::Done(data.len() as i64)
                }
                Content::Dev(Device::TraceControl) => match data.first() {
                    Some(b'1') => {
                        l.k.set_tracing(true);
                        Outcome::Done(data.len() as i64)
                    }
                    Some(b'0') => {
                        l.k.set_tracing(false);
                        Outcome::Done(data.len() as i64)
                    }
                    _ => Errno::EINVAL.into(),
                },
                Content::Dev(Device::Generated(_)) => Errno::EACCES.into(),
                Content::Dev(Device::ServerFault(i)) => {
                    let i = *i;
                    let kind = match core::str::from_utf8(data).unwrap_or("").trim() {
                        "kill" => server_rt::FaultKind::Kill,
                        "fault" => server_rt::FaultKind::BadAccess,
                        _ => return Errno::EINVAL.into(),
                    };
                    drop(f);
                    let name = l.k.servers().get(i).map(|s| s.name).unwrap_or("");
                    // Killing this very server from its own request would lose the answer: a
                    // zero delay still fires on the next tick, after the reply.
                    let delay = if name == "linux" { 1 } else { 0 };
                    match l.k.inject(name, kind, delay) {
                        Ok(()) => Outcome::Done(data.len() as i64),
                        Err(_) => Errno::EINVAL.into(),
                    }
                }
                Content::Dev(_) => Outcome::Done(data.len() as i64),
            }
        }
    }
}

pub fn read(l: &mut Linux, c: &Ctx) -> Outcome {
    pread_at(l, c, None)
}

pub fn pread64(l: &mut Linux, c: &Ctx) -> Outcome {
    if (c.args[3] as i64) < 0 {
        return Errno::EINVAL.into();
    }
    pread_at(l, c, Some(c.args[3]))
}

fn pread_at(l: &mut Linux, c: &Ctx, at: Option<u64>) -> Outcome {
    let [fd, buf, len, ..] = c.args;
    let len = (len as usize).min(IO_MAX);
    if let Err(e) = crate::process::check_user_range(l, c.pid, buf, len, true) {
        return e.into();
    }
    match read_object(l, c, fd, len, at) {
        Ok(Some(data)) => write_bytes(l, c.pid, buf, &data).map(|_| data.len() as i64).into(),
        Ok(None) => Outcome::Block,
        Err(e) => e.into(),
    }
}

pub fn write(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, buf, len, ..] = c.args;
    match read_bytes(l, c.pid, buf, (len as usize).min(IO_MAX)) {
        Ok(data) => write_object(l, c, fd, &data, None),
        Err(e) => e.into(),
    }
}

pub fn pwrite64(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, buf, len, off, ..] = c.args;
    if (off as i64) < 0 {
        return Errno::EINVAL.into();
    }
    match read_bytes(l, c.pid, buf, (len as usize).min(IO_MAX)) {
        Ok(data) => write_object(l, c, fd, &data, Some(off)),
        Err(e) => e.into(),
    }
}

fn iovecs(l: &Linux, c: &Ctx) -> Result<Vec<(u64, u64)>, Errno> {
    let count = c.args[2] as usize;
    if count > 1024 {
        return Err(Errno::EINVAL);
    }
    let raw = read_bytes(l, c.pid, c.args[1], count * 16)?;
    Ok(raw
        .chunks_exact(16)
        .map(|v| {
            (
                u64::from_le_bytes(v[..8].try_into().unwrap_or_default()),
                u64::from_le_bytes(v[8..].try_into().unwrap_or_default()),
            )
        })
        .collect())
}

pub fn writev(l: &mut Linux, c: &Ctx) -> Outcome {
    let iov = match iovecs(l, c) {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    let mut data = Vec::new();
    for (base, len) in iov {
        match read_bytes(l, c.pid, base, (len as usize).min(IO_MAX)) {
            Ok(d) => data.extend_from_slice(&d),
            Err(e) => return e.into(),
        }
    }
    write_object(l, c, c.args[0], &data, None)
}

pub fn readv(l: &mut Linux, c: &Ctx) -> Outcome {
    let iov = match iovecs(l, c) {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    for &(base, len) in &iov {
        if let Err(e) = crate::process::check_user_range(l, c.pid, base, (len as usize).min(IO_MAX), true) {
            return e.into();
        }
    }
    let total = iov.iter().fold(0u64, |a, v| a.saturating_add(v.1));
    let data = match read_object(l, c, c.args[0], total as usize, None) {
        Ok(Some(d)) => d,
        Ok(None) => return Outcome::Block,
        Err(e) => return e.into(),
    };
    let mut done = 0usize;
    for (base, len) in iov {
        let n = (len as usize).min(data.len() - done);
        if let Err(e) = write_bytes(l, c.pid, base, &data[done..done + n]) {
            return e.into();
        }
        done += n;
    }
    Outcome::Done(done as i64)
}

fn do_open(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, flags: u32, mode: u32) -> Outcome {
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let base = match dir_of(l, c.pid, dirfd, &path) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let umask = l.procs.get(&c.pid).map_or(0o022, |p| p.umask);
    let ino = match l.fs.lookup(base, &path, flags & O_NOFOLLOW == 0) {
        Ok(ino) => {
            if flags & O_CREAT != 0 && flags & O_EXCL != 0 {
                return Errno::EEXIST.into();
            }
            ino
        }
        Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
            let (dir, name) = match l.fs.parent_of(base, &path) {
                Ok(x) => x,
                Err(e) => return e.into(),
            };
            let now = crate::sys::info::wall_seconds(l);
            match l.fs.insert(dir, name, Content::File(Vec::new()), S_IFREG | (mode & 0o7777 & !umask), now) {
                Ok(i) => i,
                Err(e) => return e.into(),
            }
        }
        Err(e) => return e.into(),
    };
    let Some(node) = l.fs.node_mut(ino) else { return Errno::ENOENT.into() };
    let is_dir = matches!(node.content, Content::Dir(_));
    if flags & O_DIRECTORY != 0 && !is_dir {
        return Errno::ENOTDIR.into();
    }
    if is_dir && flags & O_ACCMODE != 0 {
        return Errno::EISDIR.into();
    }
    if matches!(node.content, Content::Symlink(_)) {
        return Errno::ELOOP.into();
    }
    if flags & O_TRUNC != 0 && flags & O_ACCMODE != 0 {
        if let Content::File(d) = &mut node.content {
            d.clear();
        }
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let status = flags & (O_ACCMODE | O_APPEND | O_NONBLOCK);
    p.fds.open(Object::Node(ino), status, flags & O_CLOEXEC != 0).map(|fd| fd as i64).into()
}

pub fn open(l: &mut Linux, c: &Ctx) -> Outcome {
    do_open(l, c, AT_FDCWD, c.args[0], c.args[1] as u32, c.args[2] as u32)
}

pub fn openat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_open(l, c, c.args[0], c.args[1], c.args[2] as u32, c.args[3] as u32)
}

pub fn creat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_open(l, c, AT_FDCWD, c.args[0], O_CREAT | O_WRONLY | O_TRUNC, c.args[1] as u32)
}

pub fn close(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    p.fds.close(c.args[0], &mut l.fs).map(|_| 0).into()
}

pub fn lseek(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, off, whence, ..] = c.args;
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let f = match p.fds.get(fd) {
        Ok(f) => f.file.clone(),
        Err(e) => return e.into(),
    };
    let mut f = f.borrow_mut();
    let Object::Node(ino) = f.object else { return Errno::ESPIPE.into() };
    let size = match l.fs.node(ino).map(|n| &n.content) {
        Some(Content::File(d)) => d.len() as i64,
        Some(Content::Dev(_)) => return Outcome::Done(0),
        _ => 0,
    };
    let base = match whence {
        0 => 0,
        1 => f.offset as i64,
        2 => size,
        _ => return Errno::EINVAL.into(),
    };
    match base.checked_add(off as i64) {
        Some(n) if n >= 0 => {
            f.offset = n as u64;
            Outcome::Done(n)
        }
        _ => Errno::EINVAL.into(),
    }
}

pub fn dup(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let f = match p.fds.get(c.args[0]) {
        Ok(f) => Fd { file: f.file.clone(), cloexec: false },
        Err(e) => return e.into(),
    };
    p.fds.insert(f, 0).map(|x| x as i64).into()
}

fn dup_to(l: &mut Linux, c: &Ctx, old: u64, new: u64, cloexec: bool) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let f = match p.fds.get(old) {
        Ok(f) => Fd { file: f.file.clone(), cloexec },
        Err(e) => return e.into(),
    };
    p.fds.place(f, new, &mut l.fs).map(|x| x as i64).into()
}

pub fn dup2(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[0] == c.args[1] {
        let ok = l.procs.get(&c.pid).is_some_and(|p| p.fds.get(c.args[0]).is_ok());
        return if ok { Outcome::Done(c.args[1] as i64) } else { Errno::EBADF.into() };
    }
    dup_to(l, c, c.args[0], c.args[1], false)
}

pub fn dup3(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[0] == c.args[1] || c.args[2] & !(O_CLOEXEC as u64) != 0 {
        return Errno::EINVAL.into();
    }
    dup_to(l, c, c.args[0], c.args[1], c.args[2] & O_CLOEXEC as u64 != 0)
}

pub fn fcntl(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, cmd, arg, ..] = c.args;
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let entry = match p.fds.get_mut(fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    match cmd {
        0 | 1030 => {
            // F_DUPFD, F_DUPFD_CLOEXEC
            let f = Fd { file: entry.file.clone(), cloexec: cmd == 1030 };
            p.fds.insert(f, arg as usize).map(|x| x as i64).into()
        }
        1 => Outcome::Done(entry.cloexec as i64),
        2 => {
            entry.cloexec = arg & 1 != 0;
            Outcome::Done(0)
        }
        3 => Outcome::Done(entry.file.borrow().flags as i64),
        4 => {
            let mut f = entry.file.borrow_mut();
            f.flags = (f.flags & !(O_APPEND | O_NONBLOCK)) | (arg as u32 & (O_APPEND | O_NONBLOCK));
            Outcome::Done(0)
        }
        _ => Errno::EINVAL.into(),
    }
}

fn make_pipe(l: &mut Linux, c: &Ctx, fds_ptr: u64, flags: u64) -> Outcome {
    if flags & !((O_CLOEXEC | O_NONBLOCK) as u64) != 0 {
        return Errno::EINVAL.into();
    }
    let cloexec = flags & O_CLOEXEC as u64 != 0;
    let nb = flags as u32 & O_NONBLOCK;
    let (r, w) = new_pipe();
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let rfd = match p.fds.open(r, nb, cloexec) {
        Ok(fd) => fd,
        Err(e) => return e.into(),
    };
    let wfd = match p.fds.open(w, O_WRONLY | nb, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = p.fds.close(rfd, &mut l.fs);
            return e.into();
        }
    };
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&(rfd as u32).to_le_bytes());
    b[4..].copy_from_slice(&(wfd as u32).to_le_bytes());
    if let Err(e) = write_bytes(l, c.pid, fds_ptr, &b) {
        if let Some(p) = l.procs.get_mut(&c.pid) {
            let _ = p.fds.close(rfd, &mut l.fs);
            let _ = p.fds.close(wfd, &mut l.fs);
        }
        return e.into();
    }
    Outcome::Done(0)
}

pub fn pipe(l: &mut Linux, c: &Ctx) -> Outcome {
    make_pipe(l, c, c.args[0], 0)
}

pub fn pipe2(l: &mut Linux, c: &Ctx) -> Outcome {
    make_pipe(l, c, c.args[0], c.args[1])
}

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const FIONREAD: u64 = 0x541b;

fn is_console(l: &Linux, c: &Ctx, fd: u64) -> Result<bool, Errno> {
    let p = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?;
    let f = p.fds.get(fd)?;
    let Object::Node(ino) = f.file.borrow().object else { return Ok(false) };
    Ok(matches!(l.fs.node(ino).map(|n| &n.content), Some(Content::Dev(Device::Console))))
}

pub fn ioctl(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, req, arg, ..] = c.args;
    match is_console(l, c, fd) {
        Ok(true) => {}
        Ok(false) => return Errno::ENOTTY.into(),
        Err(e) => return e.into(),
    }
    match req {
        TCGETS => write_bytes(l, c.pid, arg, &l.tty.termios.encode()).map(|_| 0).into(),
        TCSETS | TCSETSW | TCSETSF => {
            match read_bytes(l, c.pid, arg, 36).ok().and_then(|b| crate::tty::Termios::decode(&b)) {
                Some(t) => {
                    l.tty.termios = t;
                    Outcome::Done(0)
                }
                None => Errno::EFAULT.into(),
            }
        }
        TIOCGPGRP => {
            let pg = l.procs.get(&l.tty.foreground).map_or(l.tty.foreground, |p| p.pgid);
            write_bytes(l, c.pid, arg, &pg.to_le_bytes()).map(|_| 0).into()
        }
        TIOCSPGRP => match read_bytes(l, c.pid, arg, 4) {
            Ok(b) => {
                let pgid = u32::from_le_bytes(b.try_into().unwrap_or_default());
                match l.procs.values().find(|p| p.pgid == pgid && p.exit_status.is_none()) {
                    Some(p) => {
                        l.tty.foreground = p.pid;
                        Outcome::Done(0)
                    }
                    None => Errno::EPERM.into(),
                }
            }
            Err(e) => e.into(),
        },
        TIOCGWINSZ => {
            let mut b = [0u8; 8];
            b[..2].copy_from_slice(&l.tty.rows.to_le_bytes());
            b[2..4].copy_from_slice(&l.tty.cols.to_le_bytes());
            write_bytes(l, c.pid, arg, &b).map(|_| 0).into()
        }
        TIOCSWINSZ => match read_bytes(l, c.pid, arg, 4) {
            Ok(b) => {
                l.tty.rows = u16::from_le_bytes([b[0], b[1]]);
                l.tty.cols = u16::from_le_bytes([b[2], b[3]]);
                Outcome::Done(0)
            }
            Err(e) => e.into(),
        },
        FIONREAD => write_bytes(l, c.pid, arg, &(l.tty.ready.len() as u32).to_le_bytes()).map(|_| 0).into(),
        _ => Errno::EINVAL.into(),
    }
}

fn stat_of(l: &Linux, ino: Ino) -> Result<Stat, Errno> {
    let n = l.fs.node(ino).ok_or(Errno::ENOENT)?;
    let size = match &n.content {
        Content::File(d) => d.len() as i64,
        Content::Symlink(t) => t.len() as i64,
        Content::Dir(_) => 4096,
        Content::Dev(_) => 0,
    };
    let rdev = match n.content {
        Content::Dev(Device::Null) => (1 << 8) | 3,
        Content::Dev(Device::Zero) => (1 << 8) | 5,
        Content::Dev(Device::Random) => (1 << 8) | 9,
        Content::Dev(Device::Console) => (5 << 8) | 1,
        Content::Dev(Device::TraceControl)
        | Content::Dev(Device::Generated(_))
        | Content::Dev(Device::ServerFault(_)) => 0,
        _ => 0,
    };
    let t = (n.mtime as i64, 0);
    Ok(Stat {
        dev: 1,
        ino: ino as u64,
        nlink: n.nlink as u64,
        mode: n.mode,
        uid: n.uid,
        gid: n.gid,
        rdev,
        size,
        blksize: 4096,
        blocks: (size + 511) / 512,
        atime: t,
        mtime: t,
        ctime: t,
    })
}

fn stat_path(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, buf: u64, flags: u64) -> Outcome {
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let ino = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
        let node = match p.fds.get(dirfd) {
            Ok(f) => match f.file.borrow().object {
                Object::Node(i) => Some(i),
                _ => None,
            },
            Err(e) => return e.into(),
        };
        match node {
            Some(i) => i,
            None => return fstat_pipe(l, c, buf),
        }
    } else {
        let base = match dir_of(l, c.pid, dirfd, &path) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        match l.fs.lookup(base, &path, flags & AT_SYMLINK_NOFOLLOW == 0) {
            Ok(i) => i,
            Err(e) => return e.into(),
        }
    };
    match stat_of(l, ino) {
        Ok(s) => write_bytes(l, c.pid, buf, &encode_stat(&s)).map(|_| 0).into(),
        Err(e) => e.into(),
    }
}

fn fstat_pipe(l: &mut Linux, c: &Ctx, buf: u64) -> Outcome {
    let s = Stat { mode: 0o010600, nlink: 1, blksize: 4096, ..Default::default() };
    write_bytes(l, c.pid, buf, &encode_stat(&s)).map(|_| 0).into()
}

pub fn fstat(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let obj = match p.fds.get(c.args[0]) {
        Ok(f) => match f.file.borrow().object {
            Object::Node(i) => Some(i),
            _ => None,
        },
        Err(e) => return e.into(),
    };
    match obj {
        Some(ino) => match stat_of(l, ino) {
            Ok(s) => write_bytes(l, c.pid, c.args[1], &encode_stat(&s)).map(|_| 0).into(),
            Err(e) => e.into(),
        },
        None => fstat_pipe(l, c, c.args[1]),
    }
}

pub fn stat(l: &mut Linux, c: &Ctx) -> Outcome {
    stat_path(l, c, AT_FDCWD, c.args[0], c.args[1], 0)
}

pub fn lstat(l: &mut Linux, c: &Ctx) -> Outcome {
    stat_path(l, c, AT_FDCWD, c.args[0], c.args[1], AT_SYMLINK_NOFOLLOW)
}

pub fn newfstatat(l: &mut Linux, c: &Ctx) -> Outcome {
    stat_path(l, c, c.args[0], c.args[1], c.args[2], c.args[3])
}

pub fn getdents64(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, buf, len, ..] = c.args;
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let f = match p.fds.get(fd) {
        Ok(f) => f.file.clone(),
        Err(e) => return e.into(),
    };
    let mut f = f.borrow_mut();
    let Object::Node(ino) = f.object else { return Errno::ENOTDIR.into() };
    let Some(node) = l.fs.node(ino) else { return Errno::EBADF.into() };
    let Content::Dir(entries) = &node.content else { return Errno::ENOTDIR.into() };
    let mut all: Vec<(alloc::string::String, Ino)> = alloc::vec![(".".into(), ino), ("..".into(), node.parent)];
    all.extend(entries.iter().map(|(n, &i)| (n.clone(), i)));
    let mut out = Vec::new();
    let mut index = f.offset as usize;
    while let Some((name, child)) = all.get(index) {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > len as usize {
            break;
        }
        let dtype = match l.fs.node(*child).map(|n| n.mode & S_IFMT) {
            Some(S_IFDIR) => 4,
            Some(S_IFREG) => 8,
            Some(crate::fs::S_IFLNK) => 10,
            Some(S_IFCHR) => 2,
            _ => 0,
        };
        let start = out.len();
        out.extend_from_slice(&(*child as u64).to_le_bytes());
        out.extend_from_slice(&((index + 1) as u64).to_le_bytes());
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        out.push(dtype);
        out.extend_from_slice(name.as_bytes());
        out.resize(start + reclen, 0);
        index += 1;
    }
    if out.is_empty() && index < all.len() {
        return Errno::EINVAL.into();
    }
    f.offset = index as u64;
    drop(f);
    write_bytes(l, c.pid, buf, &out).map(|_| out.len() as i64).into()
}

pub fn getcwd(l: &mut Linux, c: &Ctx) -> Outcome {
    let mut path = l.fs.path_of(cwd(l, c.pid)).into_bytes();
    path.push(0);
    if path.len() > c.args[1] as usize {
        return Errno::ERANGE.into();
    }
    write_bytes(l, c.pid, c.args[0], &path).map(|_| path.len() as i64).into()
}

fn set_cwd(l: &mut Linux, c: &Ctx, ino: Ino) -> Outcome {
    if !matches!(l.fs.node(ino).map(|n| &n.content), Some(Content::Dir(_))) {
        return Errno::ENOTDIR.into();
    }
    if let Some(p) = l.procs.get_mut(&c.pid) {
        p.cwd = ino;
    }
    Outcome::Done(0)
}

pub fn chdir(l: &mut Linux, c: &Ctx) -> Outcome {
    let path = match read_cstr(l, c.pid, c.args[0], 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    match l.fs.lookup(cwd(l, c.pid), &path, true) {
        Ok(ino) => set_cwd(l, c, ino),
        Err(e) => e.into(),
    }
}

pub fn fchdir(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let ino = match p.fds.get(c.args[0]) {
        Ok(f) => match f.file.borrow().object {
            Object::Node(i) => i,
            _ => return Errno::ENOTDIR.into(),
        },
        Err(e) => return e.into(),
    };
    set_cwd(l, c, ino)
}

/// Reads the path at `path_ptr` and splits it into (parent directory, last component), relative
/// to `dirfd` (the common start of mkdir, unlink, rmdir and their `*at` forms).
fn resolve_parent(l: &Linux, c: &Ctx, dirfd: u64, path_ptr: u64) -> Result<(Ino, alloc::string::String), Errno> {
    let path = read_cstr(l, c.pid, path_ptr, 4096)?;
    let base = dir_of(l, c.pid, dirfd, &path)?;
    let (dir, name) = l.fs.parent_of(base, &path)?;
    Ok((dir, name.into()))
}

fn do_mkdir(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, mode: u64) -> Outcome {
    let (dir, name) = match resolve_parent(l, c, dirfd, path_ptr) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let name = name.as_str();
    if name == "." || name == ".." {
        return Errno::EEXIST.into();
    }
    let umask = l.procs.get(&c.pid).map_or(0o022, |p| p.umask);
    let now = crate::sys::info::wall_seconds(l);
    let content = Content::Dir(alloc::collections::BTreeMap::new());
    l.fs.insert(dir, name, content, S_IFDIR | (mode as u32 & 0o7777 & !umask), now).map(|_| 0).into()
}

pub fn mkdir(l: &mut Linux, c: &Ctx) -> Outcome {
    do_mkdir(l, c, AT_FDCWD, c.args[0], c.args[1])
}

pub fn mkdirat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_mkdir(l, c, c.args[0], c.args[1], c.args[2])
}

fn do_unlink(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, flags: u64) -> Outcome {
    let (dir, name) = match resolve_parent(l, c, dirfd, path_ptr) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let name = name.as_str();
    if name == "." {
        return Errno::EINVAL.into();
    }
    if name == ".." {
        return Errno::ENOTEMPTY.into();
    }
    l.fs.remove(dir, name, flags & AT_REMOVEDIR != 0).map(|_| 0).into()
}

pub fn unlink(l: &mut Linux, c: &Ctx) -> Outcome {
    do_unlink(l, c, AT_FDCWD, c.args[0], 0)
}

pub fn rmdir(l: &mut Linux, c: &Ctx) -> Outcome {
    do_unlink(l, c, AT_FDCWD, c.args[0], AT_REMOVEDIR)
}

pub fn unlinkat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_unlink(l, c, c.args[0], c.args[1], c.args[2])
}

fn do_readlink(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, buf: u64, size: u64) -> Outcome {
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    if (size as i64) <= 0 {
        return Errno::EINVAL.into();
    }
    let target = if path == "/proc/self/exe" {
        l.procs.get(&c.pid).map(|p| p.exe.clone()).unwrap_or_default()
    } else {
        let base = match dir_of(l, c.pid, dirfd, &path) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        let ino = match l.fs.lookup(base, &path, false) {
            Ok(i) => i,
            Err(e) => return e.into(),
        };
        match l.fs.node(ino).map(|n| &n.content) {
            Some(Content::Symlink(t)) => t.clone(),
            _ => return Errno::EINVAL.into(),
        }
    };
    let n = target.len().min(size as usize);
    write_bytes(l, c.pid, buf, &target.as_bytes()[..n]).map(|_| n as i64).into()
}

pub fn readlink(l: &mut Linux, c: &Ctx) -> Outcome {
    do_readlink(l, c, AT_FDCWD, c.args[0], c.args[1], c.args[2])
}

pub fn readlinkat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_readlink(l, c, c.args[0], c.args[1], c.args[2], c.args[3])
}

fn do_access(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, mode: u64) -> Outcome {
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    if mode & !7 != 0 {
        return Errno::EINVAL.into();
    }
    let base = match dir_of(l, c.pid, dirfd, &path) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    match l.fs.lookup(base, &path, true) {
        Ok(ino) => {
            let m = l.fs.node(ino).map_or(0, |n| n.mode);
            // Root passes read/write checks; execute needs some x bit (or a directory).
            if mode & 1 != 0 && m & 0o111 == 0 && m & S_IFMT != S_IFDIR {
                Errno::EACCES.into()
            } else {
                Outcome::Done(0)
            }
        }
        Err(e) => e.into(),
    }
}

pub fn access(l: &mut Linux, c: &Ctx) -> Outcome {
    do_access(l, c, AT_FDCWD, c.args[0], c.args[1])
}

pub fn faccessat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_access(l, c, c.args[0], c.args[1], c.args[2])
}

pub fn umask(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let old = p.umask;
    p.umask = c.args[0] as u32 & 0o777;
    Outcome::Done(old as i64)
}

const POLLIN: u16 = 1;
const POLLOUT: u16 = 4;
const POLLHUP: u16 = 0x10;
const POLLNVAL: u16 = 0x20;

const POLLERR: u16 = 8;

/// The poll(2) events descriptor `fd` of `pid` has now (`POLLNVAL` if it is not open).
fn readiness(l: &Linux, pid: Pid, fd: u64) -> u16 {
    let Some(p) = l.procs.get(&pid) else { return POLLNVAL };
    let Ok(f) = p.fds.get(fd) else { return POLLNVAL };
    let object = &f.file.borrow().object;
    match object {
        Object::PipeRead(pipe) => {
            let pipe = pipe.borrow();
            let mut rev = 0;
            if !pipe.buf.is_empty() {
                rev |= POLLIN;
            }
            if pipe.writers == 0 {
                rev |= POLLHUP;
            }
            rev
        }
        Object::PipeWrite(pipe) => {
            if pipe.borrow().readers == 0 {
                POLLERR
            } else {
                POLLOUT
            }
        }
        Object::Node(ino) => {
            let console = matches!(l.fs.node(*ino).map(|n| &n.content), Some(Content::Dev(Device::Console)));
            if !console || !l.tty.ready.is_empty() || l.tty.eof {
                POLLOUT | POLLIN
            } else {
                POLLOUT
            }
        }
    }
}

/// select/pselect6 on up to `nfds` descriptors: the fd_set bitmaps are read, the ready bits
/// kept, and the count returned; a closed descriptor in a set is EBADF, as on Linux.
fn select_fds(l: &mut Linux, c: &Ctx, nfds: u64, sets: [u64; 3], timeout_ms: Option<u64>) -> Outcome {
    if nfds > 1024 {
        return Errno::EINVAL.into();
    }
    let bytes = (nfds as usize).div_ceil(64) * 8;
    let mut bits: [Vec<u8>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (i, &ptr) in sets.iter().enumerate() {
        if ptr != 0 {
            match read_bytes(l, c.pid, ptr, bytes) {
                Ok(b) => bits[i] = b,
                Err(e) => return e.into(),
            }
        }
    }
    let mut out: [Vec<u8>; 3] = [alloc::vec![0; bytes], alloc::vec![0; bytes], alloc::vec![0; bytes]];
    let mut ready = 0i64;
    for fd in 0..nfds as usize {
        let wanted = |i: usize| bits[i].get(fd / 8).is_some_and(|b| b & (1 << (fd % 8)) != 0);
        if !(wanted(0) || wanted(1) || wanted(2)) {
            continue;
        }
        let rev = readiness(l, c.pid, fd as u64);
        if rev & POLLNVAL != 0 {
            return Errno::EBADF.into();
        }
        let hits = [rev & (POLLIN | POLLHUP) != 0, rev & (POLLOUT | POLLERR) != 0, false];
        for i in 0..3 {
            if wanted(i) && hits[i] {
                out[i][fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
        }
    }
    let expired = timeout_ms.is_some_and(|t| l.k.now_ns() >= c.started_ns.saturating_add(t.saturating_mul(1_000_000)));
    if ready == 0 && !expired {
        return Outcome::Block;
    }
    for (i, &ptr) in sets.iter().enumerate() {
        if ptr != 0 {
            if let Err(e) = write_bytes(l, c.pid, ptr, &out[i]) {
                return e.into();
            }
        }
    }
    Outcome::Done(ready)
}

/// A user `timeval` (`per_second` = 1,000,000) or `timespec` (1,000,000,000) at `ptr`, in
/// milliseconds; a null pointer means no timeout. Negative or out-of-range parts are EINVAL.
fn user_timeout_ms(l: &Linux, pid: Pid, ptr: u64, per_second: i64) -> Result<Option<u64>, Errno> {
    if ptr == 0 {
        return Ok(None);
    }
    let b = read_bytes(l, pid, ptr, 16)?;
    let s = i64::from_le_bytes(b[..8].try_into().unwrap_or_default());
    let frac = i64::from_le_bytes(b[8..].try_into().unwrap_or_default());
    if s < 0 || !(0..per_second).contains(&frac) {
        return Err(Errno::EINVAL);
    }
    Ok(Some((s as u64).saturating_mul(1000).saturating_add((frac / (per_second / 1000)) as u64)))
}

/// select(nfds, readfds, writefds, exceptfds, struct timeval *timeout).
pub fn select(l: &mut Linux, c: &Ctx) -> Outcome {
    match user_timeout_ms(l, c.pid, c.args[4], 1_000_000) {
        Ok(t) => select_fds(l, c, c.args[0], [c.args[1], c.args[2], c.args[3]], t),
        Err(e) => e.into(),
    }
}

/// pselect6(nfds, readfds, writefds, exceptfds, struct timespec *timeout, sigmask): the mask is
/// not applied (signals are delivered on return either way).
pub fn pselect6(l: &mut Linux, c: &Ctx) -> Outcome {
    match user_timeout_ms(l, c.pid, c.args[4], 1_000_000_000) {
        Ok(t) => select_fds(l, c, c.args[0], [c.args[1], c.args[2], c.args[3]], t),
        Err(e) => e.into(),
    }
}

fn poll_fds(l: &mut Linux, c: &Ctx, fds_ptr: u64, nfds: u64, timeout_ms: Option<u64>) -> Outcome {
    if nfds > 1024 {
        return Errno::EINVAL.into();
    }
    let mut raw = match read_bytes(l, c.pid, fds_ptr, nfds as usize * 8) {
        Ok(b) => b,
        Err(e) => return e.into(),
    };
    let mut ready = 0;
    for e in raw.chunks_exact_mut(8) {
        let fd = i32::from_le_bytes(e[..4].try_into().unwrap_or_default());
        let events = u16::from_le_bytes([e[4], e[5]]);
        let mut rev = 0u16;
        if fd >= 0 {
            rev = readiness(l, c.pid, fd as u64) & (events | POLLHUP | POLLNVAL | POLLERR);
        }
        e[6..8].copy_from_slice(&rev.to_le_bytes());
        if rev != 0 {
            ready += 1;
        }
    }
    let expired = timeout_ms.is_some_and(|t| l.k.now_ns() >= c.started_ns.saturating_add(t.saturating_mul(1_000_000)));
    if ready == 0 && !expired {
        return Outcome::Block;
    }
    write_bytes(l, c.pid, fds_ptr, &raw).map(|_| ready).into()
}

pub fn poll(l: &mut Linux, c: &Ctx) -> Outcome {
    let t = c.args[2] as i64 as i32;
    poll_fds(l, c, c.args[0], c.args[1], (t >= 0).then_some(t as u64))
}

pub fn ppoll(l: &mut Linux, c: &Ctx) -> Outcome {
    match user_timeout_ms(l, c.pid, c.args[2], 1_000_000_000) {
        Ok(t) => poll_fds(l, c, c.args[0], c.args[1], t),
        Err(e) => e.into(),
    }
}

/// sendfile(out, in, offset*, count): copies through the server (no zero-copy in v0). The
/// source must be a regular file (EINVAL otherwise, as on Linux for pipes), read at an explicit
/// position that only advances by what was written, so nothing is lost when the output blocks.
pub fn sendfile(l: &mut Linux, c: &Ctx) -> Outcome {
    let [out_fd, in_fd, off_ptr, count, ..] = c.args;
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let src = match p.fds.get(in_fd) {
        Ok(f) => f.file.clone(),
        Err(e) => return e.into(),
    };
    let is_file = match src.borrow().object {
        Object::Node(ino) => matches!(l.fs.node(ino).map(|n| &n.content), Some(Content::File(_))),
        _ => false,
    };
    if !is_file {
        return Errno::EINVAL.into();
    }
    let pos = if off_ptr != 0 {
        match crate::process::read_u64(l, c.pid, off_ptr) {
            Ok(v) if (v as i64) >= 0 => v,
            Ok(_) => return Errno::EINVAL.into(),
            Err(e) => return e.into(),
        }
    } else {
        src.borrow().offset
    };
    let data = match read_object(l, c, in_fd, (count as usize).min(IO_MAX), Some(pos)) {
        Ok(Some(d)) => d,
        Ok(None) => return Outcome::Block,
        Err(e) => return e.into(),
    };
    if data.is_empty() {
        return Outcome::Done(0);
    }
    let r = write_object(l, c, out_fd, &data, None);
    if let Outcome::Done(n) = r {
        if n > 0 {
            let end = pos + n as u64;
            if off_ptr != 0 {
                if let Err(e) = write_bytes(l, c.pid, off_ptr, &end.to_le_bytes()) {
                    return e.into();
                }
            } else {
                src.borrow_mut().offset = end;
            }
        }
    }
    r
}

/// Reads the path at `path_ptr` and resolves it relative to `dirfd`.
fn lookup_at(l: &Linux, c: &Ctx, dirfd: u64, path_ptr: u64, follow: bool) -> Result<Ino, Errno> {
    let path = read_cstr(l, c.pid, path_ptr, 4096)?;
    let base = dir_of(l, c.pid, dirfd, &path)?;
    l.fs.lookup(base, &path, follow)
}

fn do_rename(l: &mut Linux, c: &Ctx, olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> Outcome {
    if flags != 0 {
        return Errno::EINVAL.into(); // RENAME_NOREPLACE/EXCHANGE/WHITEOUT: not supported
    }
    let (from_dir, from) = match resolve_parent(l, c, olddir, old) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let (to_dir, to) = match resolve_parent(l, c, newdir, new) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    l.fs.rename(from_dir, &from, to_dir, &to).map(|_| 0).into()
}

pub fn rename(l: &mut Linux, c: &Ctx) -> Outcome {
    do_rename(l, c, AT_FDCWD, c.args[0], AT_FDCWD, c.args[1], 0)
}

pub fn renameat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_rename(l, c, c.args[0], c.args[1], c.args[2], c.args[3], 0)
}

pub fn renameat2(l: &mut Linux, c: &Ctx) -> Outcome {
    do_rename(l, c, c.args[0], c.args[1], c.args[2], c.args[3], c.args[4])
}

fn do_link(l: &mut Linux, c: &Ctx, olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> Outcome {
    const AT_SYMLINK_FOLLOW: u64 = 0x400;
    let ino = match lookup_at(l, c, olddir, old, flags & AT_SYMLINK_FOLLOW != 0) {
        Ok(i) => i,
        Err(e) => return e.into(),
    };
    let (dir, name) = match resolve_parent(l, c, newdir, new) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    l.fs.link(dir, &name, ino).map(|_| 0).into()
}

pub fn link(l: &mut Linux, c: &Ctx) -> Outcome {
    do_link(l, c, AT_FDCWD, c.args[0], AT_FDCWD, c.args[1], 0)
}

pub fn linkat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_link(l, c, c.args[0], c.args[1], c.args[2], c.args[3], c.args[4])
}

fn do_symlink(l: &mut Linux, c: &Ctx, target: u64, newdir: u64, new: u64) -> Outcome {
    let target = match read_cstr(l, c.pid, target, 4096) {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => return Errno::ENOENT.into(),
        Err(e) => return e.into(),
    };
    let (dir, name) = match resolve_parent(l, c, newdir, new) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let now = crate::sys::info::wall_seconds(l);
    l.fs.insert(dir, &name, Content::Symlink(target), crate::fs::S_IFLNK | 0o777, now).map(|_| 0).into()
}

pub fn symlink(l: &mut Linux, c: &Ctx) -> Outcome {
    do_symlink(l, c, c.args[0], AT_FDCWD, c.args[1])
}

pub fn symlinkat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_symlink(l, c, c.args[0], c.args[1], c.args[2])
}

fn fd_node(l: &Linux, c: &Ctx, fd: u64) -> Result<Ino, Errno> {
    let p = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?;
    let f = p.fds.get(fd)?;
    let object = &f.file.borrow().object;
    match object {
        Object::Node(i) => Ok(*i),
        _ => Err(Errno::EINVAL),
    }
}

fn set_mode(l: &mut Linux, ino: Ino, mode: u64) -> Outcome {
    match l.fs.node_mut(ino) {
        Some(n) => {
            n.mode = (n.mode & S_IFMT) | (mode as u32 & 0o7777);
            Outcome::Done(0)
        }
        None => Errno::ENOENT.into(),
    }
}

pub fn chmod(l: &mut Linux, c: &Ctx) -> Outcome {
    match lookup_at(l, c, AT_FDCWD, c.args[0], true) {
        Ok(i) => set_mode(l, i, c.args[1]),
        Err(e) => e.into(),
    }
}

pub fn fchmodat(l: &mut Linux, c: &Ctx) -> Outcome {
    match lookup_at(l, c, c.args[0], c.args[1], true) {
        Ok(i) => set_mode(l, i, c.args[2]),
        Err(e) => e.into(),
    }
}

pub fn fchmod(l: &mut Linux, c: &Ctx) -> Outcome {
    match fd_node(l, c, c.args[0]) {
        Ok(i) => set_mode(l, i, c.args[1]),
        Err(e) => e.into(),
    }
}

fn set_owner(l: &mut Linux, ino: Ino, uid: u64, gid: u64) -> Outcome {
    let Some(n) = l.fs.node_mut(ino) else { return Errno::ENOENT.into() };
    if uid as u32 != u32::MAX {
        n.uid = uid as u32;
    }
    if gid as u32 != u32::MAX {
        n.gid = gid as u32;
    }
    Outcome::Done(0)
}

pub fn chown(l: &mut Linux, c: &Ctx) -> Outcome {
    match lookup_at(l, c, AT_FDCWD, c.args[0], true) {
        Ok(i) => set_owner(l, i, c.args[1], c.args[2]),
        Err(e) => e.into(),
    }
}

pub fn lchown(l: &mut Linux, c: &Ctx) -> Outcome {
    match lookup_at(l, c, AT_FDCWD, c.args[0], false) {
        Ok(i) => set_owner(l, i, c.args[1], c.args[2]),
        Err(e) => e.into(),
    }
}

pub fn fchownat(l: &mut Linux, c: &Ctx) -> Outcome {
    match lookup_at(l, c, c.args[0], c.args[1], c.args[4] & AT_SYMLINK_NOFOLLOW == 0) {
        Ok(i) => set_owner(l, i, c.args[2], c.args[3]),
        Err(e) => e.into(),
    }
}

pub fn fchown(l: &mut Linux, c: &Ctx) -> Outcome {
    match fd_node(l, c, c.args[0]) {
        Ok(i) => set_owner(l, i, c.args[1], c.args[2]),
        Err(e) => e.into(),
    }
}

/// utimensat(dirfd, path, times[2], flags): only the modification time is kept (v0 nodes have
/// one timestamp). A null path means the file `dirfd` itself.
pub fn utimensat(l: &mut Linux, c: &Ctx) -> Outcome {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let ino = if c.args[1] == 0 {
        fd_node(l, c, c.args[0])
    } else {
        lookup_at(l, c, c.args[0], c.args[1], c.args[3] & AT_SYMLINK_NOFOLLOW == 0)
    };
    let ino = match ino {
        Ok(i) => i,
        Err(e) => return e.into(),
    };
    let now = (crate::sys::info::wall_seconds(l)) as i64;
    let mtime = if c.args[2] == 0 {
        Some(now)
    } else {
        match read_bytes(l, c.pid, c.args[2], 32) {
            Ok(b) => {
                let sec = i64::from_le_bytes(b[16..24].try_into().unwrap_or_default());
                let nsec = i64::from_le_bytes(b[24..32].try_into().unwrap_or_default());
                match nsec {
                    UTIME_OMIT => None,
                    UTIME_NOW => Some(now),
                    n if !(0..1_000_000_000).contains(&n) => return Errno::EINVAL.into(),
                    _ => Some(sec),
                }
            }
            Err(e) => return e.into(),
        }
    };
    if let (Some(t), Some(n)) = (mtime, l.fs.node_mut(ino)) {
        n.mtime = t.max(0) as u64;
    }
    Outcome::Done(0)
}

fn set_size(l: &mut Linux, ino: Ino, len: u64) -> Outcome {
    if (len as i64) < 0 {
        return Errno::EINVAL.into();
    }
    if len > 256 << 20 {
        return Errno::EFBIG.into();
    }
    match l.fs.node_mut(ino).map(|n| &mut n.content) {
        Some(Content::File(d)) => {
            d.resize(len as usize, 0);
            Outcome::Done(0)
        }
        Some(Content::Dir(_)) => Errno::EISDIR.into(),
        Some(_) => Errno::EINVAL.into(),
        None => Errno::ENOENT.into(),
    }
}

pub fn truncate(l: &mut Linux, c: &Ctx) -> Outcome {
    match lookup_at(l, c, AT_FDCWD, c.args[0], true) {
        Ok(i) => set_size(l, i, c.args[1]),
        Err(e) => e.into(),
    }
}

pub fn ftruncate(l: &mut Linux, c: &Ctx) -> Outcome {
    let writable =
        l.procs.get(&c.pid).and_then(|p| p.fds.get(c.args[0]).ok()).map(|f| f.file.borrow().flags & O_ACCMODE != 0);
    match (writable, fd_node(l, c, c.args[0])) {
        (Some(true), Ok(i)) => set_size(l, i, c.args[1]),
        (Some(false), _) | (_, Err(Errno::EINVAL)) => Errno::EINVAL.into(),
        (_, Err(e)) => e.into(),
        (None, _) => Errno::EBADF.into(),
    }
}

/// struct statfs for the in-memory tree (type RAMFS_MAGIC; the counts are the memory's).
fn statfs_bytes(l: &Linux) -> [u8; 120] {
    let m = l.k.mem_stats();
    let mut b = [0u8; 120];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, 0x8584_58f6); // f_type: RAMFS_MAGIC
    put(8, 4096); // f_bsize
    put(16, m.frames_total as u64); // f_blocks
    put(24, m.frames_free as u64); // f_bfree
    put(32, m.frames_free as u64); // f_bavail
    put(40, 1 << 20); // f_files
    put(48, 1 << 20); // f_ffree
    put(64, 255); // f_namelen
    put(72, 4096); // f_frsize
    b
}

pub fn statfs(l: &mut Linux, c: &Ctx) -> Outcome {
    if let Err(e) = lookup_at(l, c, AT_FDCWD, c.args[0], true) {
        return e.into();
    }
    let b = statfs_bytes(l);
    write_bytes(l, c.pid, c.args[1], &b).map(|_| 0).into()
}

pub fn fstatfs(l: &mut Linux, c: &Ctx) -> Outcome {
    if l.procs.get(&c.pid).is_none_or(|p| p.fds.get(c.args[0]).is_err()) {
        return Errno::EBADF.into();
    }
    let b = statfs_bytes(l);
    write_bytes(l, c.pid, c.args[1], &b).map(|_| 0).into()
}

/// statx(dirfd, path, flags, mask, buf): the basic fields, from the same data as stat.
pub fn statx(l: &mut Linux, c: &Ctx) -> Outcome {
    let [dirfd, path_ptr, flags, _mask, buf, _] = c.args;
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let ino = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        fd_node(l, c, dirfd)
    } else {
        dir_of(l, c.pid, dirfd, &path).and_then(|b| l.fs.lookup(b, &path, flags & AT_SYMLINK_NOFOLLOW == 0))
    };
    let s = match ino.and_then(|i| stat_of(l, i)) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let mut b = [0u8; 256];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &0x7ffu32.to_le_bytes()); // stx_mask: STATX_BASIC_STATS
    put(4, &(s.blksize as u32).to_le_bytes());
    put(16, &(s.nlink as u32).to_le_bytes());
    put(20, &s.uid.to_le_bytes());
    put(24, &s.gid.to_le_bytes());
    put(28, &(s.mode as u16).to_le_bytes());
    put(32, &s.ino.to_le_bytes());
    put(40, &(s.size as u64).to_le_bytes());
    put(48, &(s.blocks as u64).to_le_bytes());
    for off in [64, 80, 96, 112] {
        // atime, btime, ctime, mtime (statx_timestamp: sec i64, nsec u32)
        put(off, &s.mtime.0.to_le_bytes());
    }
    put(128, &((s.rdev >> 8) as u32).to_le_bytes());
    put(132, &((s.rdev & 0xff) as u32).to_le_bytes());
    put(140, &1u32.to_le_bytes()); // stx_dev_minor
    write_bytes(l, c.pid, buf, &b).map(|_| 0).into()
}
