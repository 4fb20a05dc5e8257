//! Opening and descriptors: open/openat/creat (the path resolved by `vfs`, with creation,
//! O_EXCL, O_TRUNC, O_DIRECTORY, O_NOFOLLOW and the permission checks done there), close,
//! dup/dup2/dup3, fcntl, and pipes. Device files open the device their number names; files of
//! `/proc` and `/sys` open a node of this server.

use crate::files::{new_pipe, Device, Fd, Object, OpenFile};
use crate::fsclient::Resolved;
use crate::process::{read_cbytes_into, write_bytes};
use crate::sys::fifo;
use crate::sys::rw::{O_ACCMODE, O_APPEND, O_NONBLOCK, O_RDWR, O_WRONLY};
use crate::sys::AT_FDCWD;
use crate::{Ctx, Linux, Outcome};
use abi::proto::{vfs as vfsp, FileId, PATH_MAX, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFSOCK};
use abi::Errno;

pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_NOCTTY: u32 = 0o400;
pub const O_TRUNC: u32 = 0o1000;
pub const O_DIRECTORY: u32 = abi::syscall::layout::O_DIRECTORY;
pub const O_NOFOLLOW: u32 = abi::syscall::layout::O_NOFOLLOW;
pub const O_CLOEXEC: u32 = 0o2000000;
pub const O_PATH: u32 = 0o10000000;
pub const O_TMPFILE: u32 = 0o20000000 | O_DIRECTORY;

/// Resolves and opens `path` for the caller: the new open file description, and for a FIFO
/// end that must wait for the other side, the other side's open count to wait past.
pub fn open_path(
    l: &mut Linux,
    c: &Ctx,
    dirfd: u64,
    path: &[u8],
    flags: u32,
    mode: u32,
) -> Result<(OpenFile, Option<u64>), Errno> {
    if flags & O_TMPFILE == O_TMPFILE {
        return Err(Errno::EOPNOTSUPP);
    }
    let start = l.start_of(c.pid, dirfd, path)?;
    // Access mode 3 is Linux's "no data, ioctls only" mode: it needs read and write permission
    // but reads and writes fail with EBADF.
    let acc = flags & O_ACCMODE;
    let mut walk = 0u64;
    if flags & O_NOFOLLOW == 0 {
        walk |= vfsp::WALK_FOLLOW;
    }
    if flags & O_CREAT != 0 {
        walk |= vfsp::WALK_CREATE;
        if flags & O_EXCL != 0 {
            walk |= vfsp::WALK_EXCL;
            walk &= !vfsp::WALK_FOLLOW; // O_CREAT|O_EXCL never follows a final link
        }
    }
    if flags & O_DIRECTORY != 0 {
        walk |= vfsp::WALK_DIRECTORY;
    }
    if flags & O_PATH == 0 {
        if acc != O_WRONLY {
            walk |= vfsp::WALK_READ;
        }
        if acc != 0 {
            walk |= vfsp::WALK_WRITE;
        }
        if flags & O_TRUNC != 0 && acc != 0 {
            walk |= vfsp::WALK_TRUNC;
        }
    }
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    // The file system takes the open reference with the walk's last lookup if it can.
    walk |= vfsp::WALK_OPEN;
    let (resolved, walked) = l.resolve(c.pid, start, path, walk, mode)?;
    let opened = walked & vfsp::WALK_OPENED != 0;
    if let (true, Resolved::File(a)) = (opened, &resolved) {
        // File systems take it for regular files and directories only, which the last arm
        // below opens; anything else would be a reference for nothing: given back.
        if !matches!(a.mode & S_IFMT, abi::proto::S_IFREG | abi::proto::S_IFDIR) {
            l.releases.borrow_mut().push(a.file_id());
        }
    }
    let status = flags & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_PATH);
    let attr = match resolved {
        Resolved::Pseudo(n) => {
            if flags & O_DIRECTORY != 0 && !n.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if n.is_dir() && acc != 0 {
                return Err(Errno::EISDIR);
            }
            if flags & O_CREAT != 0 && flags & O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            return Ok((OpenFile::new(Object::Pseudo(n), status, &l.releases), None));
        }
        Resolved::File(a) => a,
    };
    let id = attr.file_id();
    let object = match attr.mode & S_IFMT {
        S_IFLNK => return Err(if flags & O_PATH != 0 { Errno::EOPNOTSUPP } else { Errno::ELOOP }),
        S_IFCHR if flags & O_PATH == 0 => match Device::from_rdev(attr.rdev) {
            Some(dev) => Object::Device { dev, node: Some(id) },
            None => return Err(Errno::ENXIO),
        },
        S_IFBLK | S_IFSOCK if flags & O_PATH == 0 => return Err(Errno::ENXIO),
        S_IFIFO if flags & O_PATH == 0 => return crate::sys::fifo::open(l, id, flags, status),
        _ => {
            if !opened {
                l.open_ref(id)?;
            }
            // Opening a regular file or a directory wakes nobody.
            l.quiet = true;
            Object::File { id, mode: attr.mode }
        }
    };
    Ok((OpenFile::new(object, status, &l.releases), None))
}

fn do_open(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, flags: u32, mode: u32) -> Outcome {
    let (file, cloexec) = match fifo::waiting(l, c.tag) {
        fifo::Waiting::Still => return Outcome::Block,
        fifo::Waiting::Done(file, cloexec) => (file, cloexec),
        fifo::Waiting::No => {
            // The path goes into a buffer kept between calls: an open allocates nothing for it.
            let mut path = core::mem::take(&mut l.path_buf);
            let opened = read_cbytes_into(l, c.pid, path_ptr, PATH_MAX, &mut path)
                .and_then(|()| open_path(l, c, dirfd, &path, flags, mode));
            l.path_buf = path;
            let cloexec = flags & O_CLOEXEC != 0;
            match opened {
                Ok((file, None)) => (file, cloexec),
                Ok((file, Some(seen))) => {
                    fifo::wait(l, c.tag, c.thread.0, file, seen, cloexec);
                    return Outcome::Block;
                }
                Err(e) => return e.into(),
            }
        }
    };
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    p.fds.open(file, cloexec).map(|fd| fd as i64).into()
}

pub fn open(l: &mut Linux, c: &Ctx) -> Outcome {
    do_open(l, c, AT_FDCWD, c.args[0], c.args[1] as u32, c.args[2] as u32)
}

pub fn openat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_open(l, c, c.args[0], c.args[1], c.args[2] as u32, c.args[3] as u32)
}

/// A descriptor of `pid` for a new object of this server (a socket, an eventfd...), open
/// read-write, with the `O_NONBLOCK` and `O_CLOEXEC` bits of `flags` (what SOCK_, EFD_, TFD_,
/// SFD_ and EPOLL_ NONBLOCK and CLOEXEC are too).
pub fn install_object(l: &mut Linux, pid: crate::Pid, object: Object, flags: u64) -> Result<u64, Errno> {
    let file = OpenFile::new(object, O_RDWR | (flags as u32 & O_NONBLOCK), &l.releases);
    let p = l.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
    p.fds.open(file, flags & O_CLOEXEC as u64 != 0)
}

pub fn creat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_open(l, c, AT_FDCWD, c.args[0], O_CREAT | O_WRONLY | O_TRUNC, c.args[1] as u32)
}

pub fn close(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    match p.fds.close(c.args[0]) {
        Ok(file) => {
            // A regular file's descriptor, with no lock anywhere to release: nobody waits for it.
            l.quiet = file.is_some() && l.locks.none_held();
            crate::sys::locks::closed(l, c.pid, file.as_slice());
            Outcome::Done(0)
        }
        Err(e) => e.into(),
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
    match p.fds.place(f, new) {
        Ok((fd, closed)) => {
            crate::sys::locks::closed(l, c.pid, closed.as_slice());
            Outcome::Done(fd as i64)
        }
        Err(e) => e.into(),
    }
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

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
use crate::sys::locks::{F_GETLK, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_SETLK, F_SETLKW};
const F_DUPFD_CLOEXEC: u64 = 1030;
const F_GETPIPE_SZ: u64 = 1032;

pub fn fcntl(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, cmd, arg, ..] = c.args;
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let entry = match p.fds.get_mut(fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let f = Fd { file: entry.file.clone(), cloexec: cmd == F_DUPFD_CLOEXEC };
            p.fds.insert(f, arg as usize).map(|x| x as i64).into()
        }
        F_GETFD => Outcome::Done(entry.cloexec as i64),
        F_SETFD => {
            entry.cloexec = arg & 1 != 0;
            Outcome::Done(0)
        }
        F_GETFL => Outcome::Done(entry.file.borrow().flags as i64),
        F_SETFL => {
            let mut f = entry.file.borrow_mut();
            f.flags = (f.flags & !(O_APPEND | O_NONBLOCK)) | (arg as u32 & (O_APPEND | O_NONBLOCK));
            Outcome::Done(0)
        }
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => {
            crate::sys::locks::fcntl(l, c, fd, cmd, arg)
        }
        F_GETPIPE_SZ => match entry.file.borrow().object {
            Object::Pipe { .. } => Outcome::Done(crate::files::PIPE_CAPACITY as i64),
            _ => Errno::EBADF.into(),
        },
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
    let (r, w) = (OpenFile::new(r, nb, &l.releases), OpenFile::new(w, O_WRONLY | nb, &l.releases));
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let rfd = match p.fds.open(r, cloexec) {
        Ok(fd) => fd,
        Err(e) => return e.into(),
    };
    let wfd = match p.fds.open(w, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = p.fds.close(rfd);
            return e.into();
        }
    };
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&(rfd as u32).to_le_bytes());
    b[4..].copy_from_slice(&(wfd as u32).to_le_bytes());
    if let Err(e) = write_bytes(l, c.pid, fds_ptr, &b) {
        if let Some(p) = l.procs.get_mut(&c.pid) {
            let _ = p.fds.close(rfd);
            let _ = p.fds.close(wfd);
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

/// The file a descriptor refers to, if it is a file of a file system.
pub fn fd_file(l: &Linux, c: &Ctx, fd: u64) -> Result<FileId, Errno> {
    let p = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?;
    let f = p.fds.get(fd)?;
    let object = &f.file.borrow().object;
    match object {
        Object::File { id, .. } => Ok(*id),
        Object::Device { node: Some(id), .. } => Ok(*id),
        _ => Err(Errno::EINVAL),
    }
}

/// Whether a descriptor is a directory (for fchdir and the `*at` calls).
pub fn is_dir_fd(l: &Linux, c: &Ctx, fd: u64) -> bool {
    l.procs.get(&c.pid).and_then(|p| p.fds.get(fd).ok()).is_some_and(|f| match &f.file.borrow().object {
        Object::File { mode, .. } => mode & S_IFMT == S_IFDIR,
        Object::Pseudo(n) => n.is_dir(),
        _ => false,
    })
}
