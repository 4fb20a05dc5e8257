//! Moving data: read, write, their vector and positioned forms, sendfile, lseek. One pair of
//! functions, [`read_into`] and [`write_from`], knows every kind of open file: files go to their
//! file system with the user's buffer as a user-memory grant (no copy through this server),
//! the terminal goes to `tty` the same way, pipes, devices and `/proc` are served here.
//!
//! Blocking: an empty pipe or a terminal without input answers `Block` (nothing consumed);
//! the server loop runs the call again when something changes. A bad buffer is EFAULT and
//! loses no pipe data, because the range is checked before anything is taken.

use crate::files::{local_object, Anon, Device, FileRef, Local, Object};
use crate::process::{check_user_range, read_bytes, write_bytes};
use crate::{Ctx, Linux, Outcome};
use abi::proto::{fs as fsp, tty as ttyp, FileId, S_IFDIR, S_IFMT, S_IFREG};
use abi::Errno;
use alloc::vec::Vec;

pub const O_ACCMODE: u32 = 3;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;

/// The most one request to a file server moves, and the most a read or write of anything but
/// a regular file moves in one call.
pub const IO_MAX: usize = 1 << 20;

/// The most one read or write of a regular file moves (Linux's MAX_RW_COUNT): it is split
/// into requests of [`IO_MAX`] until one comes back short.
pub const RW_MAX: usize = 0x7fff_f000;

/// What a read that finds nothing answers: EAGAIN for a non-blocking one, `None` (wait)
/// otherwise.
pub fn nothing_yet(nonblock: bool) -> Result<Option<usize>, Errno> {
    if nonblock {
        Err(Errno::EAGAIN)
    } else {
        Ok(None)
    }
}

/// The open file behind descriptor `fd` of the caller.
pub fn file_of(l: &Linux, c: &Ctx, fd: u64) -> Result<FileRef, Errno> {
    Ok(l.procs.get(&c.pid).ok_or(Errno::ESRCH)?.fds.get(fd)?.file.clone())
}

/// Bytes of a generated `/proc` or `/sys` file at `offset`.
fn slice_at(text: &[u8], offset: u64, len: usize) -> &[u8] {
    let start = (offset as usize).min(text.len());
    &text[start..(start + len).min(text.len())]
}

/// A pseudo-random byte stream for /dev/urandom (xorshift, seeded from the clock).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Reads up to `len` bytes of `file` into user memory at `buf`, at `at` or the file offset
/// (which moves on). `Ok(None)`: nothing yet, the caller blocks.
pub fn read_into(
    l: &mut Linux,
    c: &Ctx,
    file: &FileRef,
    buf: u64,
    len: usize,
    at: Option<u64>,
) -> Result<Option<usize>, Errno> {
    let (flags, offset) = {
        let f = file.borrow();
        (f.flags, f.offset)
    };
    if matches!(flags & O_ACCMODE, O_WRONLY | 3) {
        return Err(Errno::EBADF);
    }
    let nonblock = flags & O_NONBLOCK != 0;
    let pos = at.unwrap_or(offset);
    let object = match &file.borrow().object {
        Object::File { id, mode } => Ok((*id, *mode)),
        _ => Err(()),
    };
    if let Ok((id, mode)) = object {
        if mode & S_IFMT == S_IFDIR {
            return Err(Errno::EISDIR);
        }
        // Piece by piece until the file ends; an error after some bytes is a short read.
        let len = len.min(RW_MAX);
        let mut done = 0;
        while done < len {
            let piece = (len - done).min(IO_MAX);
            let (va, args) = (buf + done as u64, [id.0, pos + done as u64, piece as u64, 0, 0, 0]);
            // Straight into the buffer as it is mapped; only if that faults (a page not there
            // yet, or not writable) is the range made present and checked, and the read (at an
            // explicit offset, so the same read) sent again.
            let mut read = l.user_grant_unpopulated(c.pid, va, piece).and_then(|g| l.fs(id, fsp::READ, args, g));
            if read.as_ref().is_err_and(|e| *e == Errno::EFAULT) {
                read = l.user_grant(c.pid, va, piece, true).and_then(|g| l.fs(id, fsp::READ, args, g));
            }
            let n = match read {
                Ok(r) => (r.result as usize).min(piece),
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            done += n;
            if n < piece {
                break;
            }
        }
        if at.is_none() {
            file.borrow_mut().offset = pos + done as u64;
        }
        return Ok(Some(done));
    }
    let len = len.min(IO_MAX);
    match local_object(file) {
        Some(Local::Socket(s)) => return crate::sys::unix::read(l, c, file, &s, buf, len),
        Some(Local::Anon(Anon::EventFd(e))) => return crate::sys::eventfd::read(l, c, &e, nonblock, buf, len),
        Some(Local::Anon(Anon::TimerFd(t))) => return crate::sys::timerfd::read(l, c, &t, nonblock, buf, len),
        Some(Local::Anon(Anon::SignalFd(s))) => return crate::sys::signalfd::read(l, c, &s, nonblock, buf, len),
        Some(Local::Anon(Anon::Epoll(_))) => return Err(Errno::EINVAL),
        None => {}
    }
    check_user_range(l, c.pid, buf, len, true)?;
    let data: Vec<u8> = match &file.borrow().object {
        Object::Pipe { pipe, read: true, .. } => {
            let mut pipe = pipe.borrow_mut();
            if pipe.buf.is_empty() {
                return if pipe.writers == 0 {
                    Ok(Some(0))
                } else if nonblock {
                    Err(Errno::EAGAIN)
                } else {
                    Ok(None)
                };
            }
            // Straight from the pipe's buffer into the user's (the range was checked above).
            let n = len.min(pipe.buf.len());
            pipe.pop_with(n, |at, piece| write_bytes(l, c.pid, buf + at as u64, piece))?;
            return Ok(Some(n));
        }
        Object::Pipe { read: false, .. } => return Err(Errno::EBADF),
        Object::Device { dev: Device::Null, .. } => Vec::new(),
        Object::Device { dev: Device::Zero | Device::Full, .. } => alloc::vec![0; len],
        Object::Device { dev: Device::Random, .. } => random_bytes(l.k.now_ns() ^ buf, len),
        Object::Device { dev: Device::Tty, .. } => {
            match crate::sys::jobctl::check(l, c, crate::sys::jobctl::SIGTTIN, false) {
                Some(Outcome::Block) => return Ok(None),
                Some(Outcome::Done(e)) => return Err(Errno((-e) as i32)),
                _ => {}
            }
            if len == 0 {
                return Ok(Some(0));
            }
            let grant = l.user_grant(c.pid, buf, len, true)?;
            return match l.tty(ttyp::READ, [len as u64, 0, 0, 0, 0, 0], grant) {
                Ok(r) => Ok(Some(r.result as usize)),
                Err(Errno::EAGAIN) if !nonblock => Ok(None),
                Err(e) => Err(e),
            };
        }
        Object::Pseudo(_) | Object::File { .. } | Object::Anon(_) | Object::Socket(_) => Vec::new(),
    };
    let pseudo = match file.borrow().object {
        Object::Pseudo(n) => Some(n),
        _ => None,
    };
    let data = match pseudo {
        Some(n) => {
            let text = crate::pseudo::contents(l, n)?;
            let out = slice_at(&text, pos, len).to_vec();
            if at.is_none() {
                file.borrow_mut().offset = pos + out.len() as u64;
            }
            out
        }
        None => data,
    };
    write_bytes(l, c.pid, buf, &data)?;
    Ok(Some(data.len()))
}

/// Writes `len` bytes from user memory at `buf` to `file`, at `at` or the file offset.
pub fn write_from(l: &mut Linux, c: &Ctx, file: &FileRef, buf: u64, len: usize, at: Option<u64>) -> Outcome {
    let (flags, offset) = {
        let f = file.borrow();
        (f.flags, f.offset)
    };
    if matches!(flags & O_ACCMODE, 0 | 3) {
        return Errno::EBADF.into();
    }
    let object = match &file.borrow().object {
        Object::File { id, mode } => Some((*id, *mode)),
        _ => None,
    };
    if let Some((id, mode)) = object {
        if mode & S_IFMT == S_IFDIR {
            return Errno::EISDIR.into();
        }
        if len == 0 {
            return Outcome::Done(0);
        }
        // Piece by piece (each appending at the end it finds, if O_APPEND); an error after
        // some bytes is a short write. This server runs one request at a time, so no other
        // write comes between the pieces.
        let len = len.min(RW_MAX);
        let append = flags & O_APPEND != 0 && at.is_none();
        let wflags = if append { fsp::WRITE_APPEND } else { 0 };
        let mut pos = at.unwrap_or(offset);
        let mut done = 0;
        while done < len {
            let piece = (len - done).min(IO_MAX);
            let wrote = l
                .user_grant(c.pid, buf + done as u64, piece, false)
                .and_then(|grant| l.fs(id, fsp::WRITE, [id.0, pos, piece as u64, wflags, 0, 0], grant));
            match wrote {
                Ok(r) => {
                    let n = (r.result as usize).min(piece);
                    done += n;
                    pos = r.aux;
                    if at.is_none() {
                        file.borrow_mut().offset = r.aux;
                    }
                    if n < piece {
                        break;
                    }
                }
                Err(_) if done > 0 => break,
                Err(Errno::EFBIG) => {
                    crate::sys::signal::send(l, c.pid, 25); // SIGXFSZ, as Linux
                    return Errno::EFBIG.into();
                }
                Err(e) => return e.into(),
            }
        }
        return Outcome::Done(done as i64);
    }
    let len = len.min(IO_MAX);
    let is_tty = matches!(file.borrow().object, Object::Device { dev: Device::Tty, .. });
    if is_tty {
        if let Some(o) = crate::sys::jobctl::check(l, c, crate::sys::jobctl::SIGTTOU, true) {
            return o;
        }
        if len == 0 {
            return Outcome::Done(0);
        }
        let grant = match l.user_grant(c.pid, buf, len, false) {
            Ok(g) => g,
            Err(e) => return e.into(),
        };
        return l.tty(ttyp::WRITE, [len as u64, 0, 0, 0, 0, 0], grant).map(|r| r.result).into();
    }
    match local_object(file) {
        Some(Local::Socket(s)) => return crate::sys::unix::write(l, c, file, &s, buf, len),
        Some(Local::Anon(Anon::EventFd(e))) => {
            return crate::sys::eventfd::write(l, c, &e, flags & O_NONBLOCK != 0, buf, len)
        }
        Some(Local::Anon(_)) => return Errno::EINVAL.into(),
        None => {}
    }
    let pipe = match &file.borrow().object {
        Object::Pipe { pipe, write: true, .. } => Some(pipe.clone()),
        Object::Pipe { write: false, .. } => return Errno::EBADF.into(),
        _ => None,
    };
    if let Some(pipe) = pipe {
        let mut pipe = pipe.borrow_mut();
        if pipe.readers == 0 {
            drop(pipe);
            crate::sys::signal::send(l, c.pid, 13); // SIGPIPE
            if l.procs.get(&c.pid).is_some_and(|p| p.exit_status.is_some()) {
                return Outcome::NoReply;
            }
            return Errno::EPIPE.into();
        }
        let room = crate::files::PIPE_CAPACITY.saturating_sub(pipe.buf.len());
        if (room == 0 && len > 0) || (room < len && len <= crate::files::PIPE_BUF) {
            return if flags & O_NONBLOCK != 0 { Errno::EAGAIN.into() } else { Outcome::Block };
        }
        // Straight from the user's buffer into the pipe's.
        let n = room.min(len);
        return match pipe.push_with(n, |at, piece| crate::process::read_into(l, c.pid, buf + at as u64, piece)) {
            Ok(()) => Outcome::Done(n as i64),
            Err(e) => e.into(),
        };
    }
    let data = match read_bytes(l, c.pid, buf, len) {
        Ok(d) => d,
        Err(e) => return e.into(),
    };
    let node = match &file.borrow().object {
        Object::Device { dev: Device::Full, .. } => return Errno::ENOSPC.into(),
        Object::Device { .. } => return Outcome::Done(data.len() as i64),
        Object::Pseudo(n) => *n,
        _ => return Errno::EINVAL.into(),
    };
    crate::pseudo::write(l, node, &data).map(|n| n as i64).into()
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

/// Positioned I/O needs a seekable file.
fn seekable(file: &FileRef) -> Result<(), Errno> {
    match file.borrow().object {
        Object::Pipe { .. } | Object::Device { dev: Device::Tty, .. } | Object::Anon(_) | Object::Socket(_) => {
            Err(Errno::ESPIPE)
        }
        _ => Ok(()),
    }
}

fn pread_at(l: &mut Linux, c: &Ctx, at: Option<u64>) -> Outcome {
    let [fd, buf, len, ..] = c.args;
    let file = match file_of(l, c, fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    if at.is_some() {
        if let Err(e) = seekable(&file) {
            return e.into();
        }
    }
    // Reading a regular file wakes nobody.
    l.quiet = matches!(file.borrow().object, Object::File { .. });
    match read_into(l, c, &file, buf, len as usize, at) {
        Ok(Some(n)) => Outcome::Done(n as i64),
        Ok(None) => Outcome::Block,
        Err(e) => e.into(),
    }
}

pub fn write(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, buf, len, ..] = c.args;
    match file_of(l, c, fd) {
        Ok(f) => write_from(l, c, &f, buf, len as usize, None),
        Err(e) => e.into(),
    }
}

pub fn pwrite64(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, buf, len, off, ..] = c.args;
    if (off as i64) < 0 {
        return Errno::EINVAL.into();
    }
    let file = match file_of(l, c, fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    if let Err(e) = seekable(&file) {
        return e.into();
    }
    write_from(l, c, &file, buf, len as usize, Some(off))
}

fn iovecs(l: &Linux, c: &Ctx) -> Result<Vec<(u64, u64)>, Errno> {
    let count = c.args[2] as usize;
    if count > 1024 {
        return Err(Errno::EINVAL);
    }
    let raw = read_bytes(l, c.pid, c.args[1], count * 16)?;
    let v: Vec<(u64, u64)> = raw
        .chunks_exact(16)
        .map(|v| {
            (
                u64::from_le_bytes(v[..8].try_into().unwrap_or_default()),
                u64::from_le_bytes(v[8..].try_into().unwrap_or_default()),
            )
        })
        .collect();
    if v.iter().any(|&(_, len)| (len as i64) < 0)
        || v.iter().fold(0u64, |a, &(_, n)| a.saturating_add(n)) > i64::MAX as u64
    {
        return Err(Errno::EINVAL);
    }
    Ok(v)
}

pub fn writev(l: &mut Linux, c: &Ctx) -> Outcome {
    let iov = match iovecs(l, c) {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    let file = match file_of(l, c, c.args[0]) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let mut done = 0i64;
    for (base, len) in iov {
        if len == 0 {
            continue;
        }
        match write_from(l, c, &file, base, len as usize, None) {
            Outcome::Done(n) if n >= 0 => {
                done += n;
                if (n as u64) < len {
                    break;
                }
            }
            // Later vectors failing after earlier ones were written: the count so far.
            o if done > 0 => {
                let _ = o;
                break;
            }
            o => return o,
        }
    }
    Outcome::Done(done)
}

pub fn readv(l: &mut Linux, c: &Ctx) -> Outcome {
    let iov = match iovecs(l, c) {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    for &(base, len) in &iov {
        if let Err(e) = check_user_range(l, c.pid, base, (len as usize).min(IO_MAX), true) {
            return e.into();
        }
    }
    let file = match file_of(l, c, c.args[0]) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let mut done = 0usize;
    for (base, len) in iov {
        if len == 0 {
            continue;
        }
        match read_into(l, c, &file, base, len as usize, None) {
            Ok(Some(n)) => {
                done += n;
                if (n as u64) < len {
                    break;
                }
            }
            Ok(None) if done == 0 => return Outcome::Block,
            Ok(None) => break,
            Err(_) if done > 0 => break,
            Err(e) => return e.into(),
        }
    }
    Outcome::Done(done as i64)
}

pub fn lseek(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, off, whence, ..] = c.args;
    let file = match file_of(l, c, fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let (size, is_dir) = match &file.borrow().object {
        Object::File { id, mode } => (Some(*id), mode & S_IFMT == S_IFDIR),
        Object::Pipe { .. } | Object::Device { dev: Device::Tty, .. } | Object::Socket(_) => {
            return Errno::ESPIPE.into()
        }
        // Linux's anonymous inodes (eventfd, timerfd...) seek nowhere and say 0.
        Object::Device { .. } | Object::Anon(_) => return Outcome::Done(0),
        Object::Pseudo(_) => (None, false),
    };
    let size = match (size, whence) {
        (Some(id), 2) => match l.getattr(id) {
            Ok(a) => a.size as i64,
            Err(e) => return e.into(),
        },
        _ => 0,
    };
    let mut f = file.borrow_mut();
    let base = match whence {
        0 => 0,
        1 => f.offset as i64,
        2 => size,
        _ => return Errno::EINVAL.into(),
    };
    match base.checked_add(off as i64) {
        Some(n) if n >= 0 => {
            if is_dir && n == 0 {
                f.dir_cookie = 0; // rewinddir
            }
            f.offset = n as u64;
            Outcome::Done(n)
        }
        _ => Errno::EINVAL.into(),
    }
}

/// sendfile(out, in, offset*, count): the source must be a regular file (EINVAL otherwise, as
/// on Linux for pipes), read at an explicit position that only advances by what was written,
/// so nothing is lost when the output blocks. The data passes through this server.
pub fn sendfile(l: &mut Linux, c: &Ctx) -> Outcome {
    let [out_fd, in_fd, off_ptr, count, ..] = c.args;
    let src = match file_of(l, c, in_fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let dst = match file_of(l, c, out_fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let (id, mode, src_flags) = match &src.borrow().object {
        Object::File { id, mode } if mode & S_IFMT == S_IFREG => (*id, *mode, src.borrow().flags),
        _ => return Errno::EINVAL.into(),
    };
    let _ = mode;
    if src_flags & O_ACCMODE == O_WRONLY {
        return Errno::EBADF.into();
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
    // Stage the data in this server: read a chunk, then offer it to the output.
    let want = (count as usize).min(64 * 1024);
    let mut chunk = alloc::vec![0u8; want];
    let grant = server_rt::grant(&chunk, server_rt::GRANT_WRITE);
    let n = match l.fs(id, fsp::READ, [id.0, pos, want as u64, 0, 0, 0], grant) {
        Ok(r) => r.result as usize,
        Err(e) => return e.into(),
    };
    if n == 0 {
        return Outcome::Done(0);
    }
    chunk.truncate(n);
    let r = crate::sys::rw::write_buffer(l, c, &dst, &chunk);
    if let Outcome::Done(w) = r {
        if w > 0 {
            let end = pos + w as u64;
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

/// copy_file_range(fd_in, off_in, fd_out, off_out, len, flags): between regular files, through
/// this server in pieces of [`COPY_PIECE`] (Linux copies across file systems too since 5.19).
/// A given offset is used and updated instead of the file's; overlapping ranges of one file
/// are EINVAL, as are flags.
pub fn copy_file_range(l: &mut Linux, c: &Ctx) -> Outcome {
    match copy_range(l, c) {
        Ok(n) => Outcome::Done(n as i64),
        Err(e) => e.into(),
    }
}

/// How much copy_file_range stages at a time.
const COPY_PIECE: usize = 256 * 1024;

fn copy_range(l: &mut Linux, c: &Ctx) -> Result<u64, Errno> {
    let [in_fd, off_in, out_fd, off_out, len, flags] = c.args;
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let src = file_of(l, c, in_fd)?;
    let dst = file_of(l, c, out_fd)?;
    let regular = |f: &FileRef| -> Result<(FileId, u32, u64), Errno> {
        let f = f.borrow();
        match f.object {
            Object::File { mode, .. } if mode & S_IFMT == S_IFDIR => Err(Errno::EISDIR),
            Object::File { id, mode } if mode & S_IFMT == S_IFREG => Ok((id, f.flags, f.offset)),
            _ => Err(Errno::EINVAL),
        }
    };
    let (sid, sflags, soff) = regular(&src)?;
    let (did, dflags, doff) = regular(&dst)?;
    if sflags & O_ACCMODE == O_WRONLY || matches!(dflags & O_ACCMODE, 0 | 3) || dflags & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let offset = |ptr: u64, own: u64| -> Result<u64, Errno> {
        if ptr == 0 {
            return Ok(own);
        }
        match crate::process::read_u64(l, c.pid, ptr)? {
            v if (v as i64) < 0 => Err(Errno::EINVAL),
            v => Ok(v),
        }
    };
    let (mut pin, mut pout) = (offset(off_in, soff)?, offset(off_out, doff)?);
    let len = (len as usize).min(RW_MAX) as u64;
    if sid == did && pin < pout.saturating_add(len) && pout < pin.saturating_add(len) {
        return Err(Errno::EINVAL);
    }
    let mut done = 0u64;
    let mut piece = alloc::vec![0u8; COPY_PIECE.min(len as usize)];
    while done < len {
        let want = ((len - done) as usize).min(piece.len());
        let got =
            l.fs(sid, fsp::READ, [sid.0, pin, want as u64, 0, 0, 0], server_rt::grant(&piece, server_rt::GRANT_WRITE));
        let n = match got {
            Ok(r) => (r.result as usize).min(want),
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        let put = l.fs(
            did,
            fsp::WRITE,
            [did.0, pout, n as u64, 0, 0, 0],
            server_rt::grant(&piece[..n], server_rt::GRANT_READ),
        );
        let w = match put {
            Ok(r) => (r.result as usize).min(n),
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w as u64;
        pin += w as u64;
        pout += w as u64;
        if w < want {
            break;
        }
    }
    piece.clear();
    for (ptr, file, pos) in [(off_in, &src, pin), (off_out, &dst, pout)] {
        if ptr != 0 {
            write_bytes(l, c.pid, ptr, &pos.to_le_bytes())?;
        } else {
            file.borrow_mut().offset = pos;
        }
    }
    Ok(done)
}

/// Writes bytes this server holds to `file` (sendfile's output side).
pub fn write_buffer(l: &mut Linux, c: &Ctx, file: &FileRef, data: &[u8]) -> Outcome {
    let (flags, offset) = {
        let f = file.borrow();
        (f.flags, f.offset)
    };
    if flags & O_ACCMODE == 0 {
        return Errno::EBADF.into();
    }
    let target = match &file.borrow().object {
        Object::File { id, .. } => Ok(*id),
        Object::Pipe { pipe, write: true, .. } => Err(Some(pipe.clone())),
        _ => Err(None),
    };
    match target {
        Ok(id) => {
            let append = flags & O_APPEND != 0;
            let grant = server_rt::grant(data, server_rt::GRANT_READ);
            let wflags = if append { fsp::WRITE_APPEND } else { 0 };
            match l.fs(id, fsp::WRITE, [id.0, offset, data.len() as u64, wflags, 0, 0], grant) {
                Ok(r) => {
                    file.borrow_mut().offset = r.aux;
                    Outcome::Done(r.result)
                }
                Err(e) => e.into(),
            }
        }
        Err(Some(pipe)) => {
            let mut pipe = pipe.borrow_mut();
            if pipe.readers == 0 {
                drop(pipe);
                crate::sys::signal::send(l, c.pid, 13);
                return Errno::EPIPE.into();
            }
            let room = crate::files::PIPE_CAPACITY.saturating_sub(pipe.buf.len());
            if room == 0 || (room < data.len() && data.len() <= crate::files::PIPE_BUF) {
                return if flags & O_NONBLOCK != 0 { Errno::EAGAIN.into() } else { Outcome::Block };
            }
            let n = room.min(data.len());
            pipe.extend(&data[..n]);
            Outcome::Done(n as i64)
        }
        Err(None) => {
            let is_tty = matches!(file.borrow().object, Object::Device { dev: Device::Tty, .. });
            if is_tty {
                let grant = server_rt::grant(data, server_rt::GRANT_READ);
                l.tty(ttyp::WRITE, [data.len() as u64, 0, 0, 0, 0, 0], grant).map(|r| r.result).into()
            } else {
                Outcome::Done(data.len() as i64)
            }
        }
    }
}
