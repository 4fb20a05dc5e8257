//! Attributes: the stat family and statx, statfs, access, chmod, chown, utimensat, truncate,
//! umask. Attributes come from the file's file system (`fs::GETATTR`/`SETATTR`), or from this
//! server for pipes, the console it opened itself, and `/proc` and `/sys`. Ownership rules are
//! Linux's: only the owner (or root) changes a mode or times, only root gives a file away.

use crate::files::{Device, Object};
use crate::fsclient::Resolved;
use crate::process::{read_bytes, read_cstr, write_bytes};
use crate::sys::open::fd_file;
use crate::sys::AT_FDCWD;
use crate::{Ctx, Linux, Outcome};
use abi::proto::{fs as fsp, vfs as vfsp, Attr, FileId, StatFs, Timespec, S_IFCHR, S_IFIFO, S_IFMT, S_IFREG};
use abi::syscall::layout::{encode_stat, Stat};
use abi::Errno;
use zerocopy::{FromBytes, IntoBytes};

pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_EMPTY_PATH: u64 = 0x1000;

fn stat_of(a: &Attr) -> Stat {
    let id = a.file_id();
    Stat {
        dev: id.dev(),
        ino: id.ino(),
        nlink: a.nlink as u64,
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        size: a.size as i64,
        blksize: a.blksize as i64,
        blocks: a.blocks as i64,
        atime: (a.atime.sec, a.atime.nsec),
        mtime: (a.mtime.sec, a.mtime.nsec),
        ctime: (a.ctime.sec, a.ctime.nsec),
    }
}

/// Attributes of what descriptor `fd` refers to.
pub fn fd_attr(l: &mut Linux, c: &Ctx, fd: u64) -> Result<Attr, Errno> {
    let file = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?.fds.get(fd)?.file.clone();
    let (id, pseudo, console) = match &file.borrow().object {
        Object::File { id, .. } | Object::Device { node: Some(id), .. } => (Some(*id), None, None),
        Object::Pseudo(n) => (None, Some(*n), None),
        Object::Device { dev, node: None } => (None, None, Some(*dev)),
        // Linux's anonymous inodes: no type bits, owner read-write.
        Object::Anon(_) => return Ok(Attr { mode: 0o600, nlink: 1, blksize: 4096, ..Default::default() }),
        Object::Socket(_) => {
            return Ok(Attr { mode: abi::proto::S_IFSOCK | 0o777, nlink: 1, blksize: 4096, ..Default::default() })
        }
        Object::Pipe { pipe, .. } => match pipe.borrow().fifo {
            Some(id) => (Some(id), None, None),
            None => return Ok(Attr { mode: S_IFIFO | 0o600, nlink: 1, blksize: 4096, ..Default::default() }),
        },
    };
    if let Some(id) = id {
        return l.getattr(id);
    }
    if let Some(n) = pseudo {
        return Ok(crate::pseudo::attr(l, n));
    }
    // The console init got without opening a device file.
    let rdev = if console == Some(Device::Tty) { abi::proto::makedev(5, 1) } else { abi::proto::makedev(1, 3) };
    let now = l.k.realtime_ns();
    let t = Timespec { sec: (now / 1_000_000_000) as i64, nsec: 0 };
    Ok(Attr {
        mode: S_IFCHR | 0o620,
        nlink: 1,
        rdev,
        blksize: 1024,
        atime: t,
        mtime: t,
        ctime: t,
        ..Default::default()
    })
}

/// Attributes of `path` from `dirfd` (following a final link unless AT_SYMLINK_NOFOLLOW).
pub fn path_attr(l: &mut Linux, c: &Ctx, dirfd: u64, path: &[u8], flags: u64) -> Result<Attr, Errno> {
    if path.is_empty() {
        if flags & AT_EMPTY_PATH != 0 {
            if dirfd == AT_FDCWD || dirfd as u32 == AT_FDCWD as u32 {
                let cwd = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?.cwd;
                return attr_of_id(l, cwd);
            }
            return fd_attr(l, c, dirfd);
        }
        return Err(Errno::ENOENT);
    }
    let start = l.start_of(c.pid, dirfd, path)?;
    let walk = if flags & AT_SYMLINK_NOFOLLOW == 0 { vfsp::WALK_FOLLOW } else { 0 };
    match l.resolve(c.pid, start, path, walk, 0)?.0 {
        Resolved::File(a) => Ok(a),
        Resolved::Pseudo(n) => Ok(crate::pseudo::attr(l, n)),
    }
}

/// Attributes of a FileId (this server's pseudo nodes included).
pub fn attr_of_id(l: &mut Linux, id: FileId) -> Result<Attr, Errno> {
    if id.server() == l.me {
        return Ok(crate::pseudo::attr(l, crate::pseudo::Node::from_file(id)));
    }
    l.getattr(id)
}

fn put_stat(l: &Linux, c: &Ctx, buf: u64, a: Result<Attr, Errno>) -> Outcome {
    match a {
        Ok(a) => write_bytes(l, c.pid, buf, &encode_stat(&stat_of(&a))).map(|_| 0).into(),
        Err(e) => e.into(),
    }
}

fn stat_path(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, buf: u64, flags: u64) -> Outcome {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | 0x800) != 0 {
        return Errno::EINVAL.into();
    }
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let a = path_attr(l, c, dirfd, path.as_bytes(), flags);
    put_stat(l, c, buf, a)
}

pub fn fstat(l: &mut Linux, c: &Ctx) -> Outcome {
    let a = fd_attr(l, c, c.args[0]);
    put_stat(l, c, c.args[1], a)
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

/// statx(dirfd, path, flags, mask, buf): the basic fields.
pub fn statx(l: &mut Linux, c: &Ctx) -> Outcome {
    let [dirfd, path_ptr, flags, _mask, buf, _] = c.args;
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let a = match path_attr(l, c, dirfd, path.as_bytes(), flags) {
        Ok(a) => a,
        Err(e) => return e.into(),
    };
    let id = a.file_id();
    let mut b = [0u8; 256];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &0x7ffu32.to_le_bytes()); // stx_mask: STATX_BASIC_STATS
    put(4, &a.blksize.to_le_bytes());
    put(16, &a.nlink.to_le_bytes());
    put(20, &a.uid.to_le_bytes());
    put(24, &a.gid.to_le_bytes());
    put(28, &(a.mode as u16).to_le_bytes());
    put(32, &id.ino().to_le_bytes());
    put(40, &a.size.to_le_bytes());
    put(48, &a.blocks.to_le_bytes());
    // atime, btime, ctime, mtime (statx_timestamp: sec i64, nsec u32)
    for (off, t) in [(64, a.atime), (80, a.ctime), (96, a.ctime), (112, a.mtime)] {
        put(off, &t.sec.to_le_bytes());
        put(off + 8, &(t.nsec as u32).to_le_bytes());
    }
    put(128, &abi::proto::major(a.rdev).to_le_bytes());
    put(132, &abi::proto::minor(a.rdev).to_le_bytes());
    put(136, &((id.dev() >> 8) as u32).to_le_bytes());
    put(140, &((id.dev() & 0xff) as u32).to_le_bytes());
    write_bytes(l, c.pid, buf, &b).map(|_| 0).into()
}

/// `struct statfs` (the same 120 bytes on both architectures) for the file system of `a`.
fn statfs_of(l: &mut Linux, a: &Attr) -> Result<[u8; 120], Errno> {
    let id = a.file_id();
    let s = if id.server() == l.me {
        let magic = if id.volume() as u64 == vfsp::FSTYPE_SYSFS { 0x6265_6572 } else { 0x9fa0 };
        StatFs { fs_type: magic, block_size: 4096, name_max: 255, ..Default::default() }
    } else {
        let mut out = [0u8; core::mem::size_of::<StatFs>()];
        l.fs_buf(id, fsp::STATFS, [id.0, 0, 0, 0, 0, 0], &mut out)?;
        StatFs::read_from_bytes(&out).map_err(|_| Errno::EIO)?
    };
    let mut b = [0u8; 120];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, s.fs_type);
    put(8, s.block_size);
    put(16, s.blocks);
    put(24, s.blocks_free);
    put(32, s.blocks_avail);
    put(40, s.files);
    put(48, s.files_free);
    put(56, id.dev());
    put(64, s.name_max);
    put(72, s.block_size);
    put(80, s.flags);
    Ok(b)
}

pub fn statfs(l: &mut Linux, c: &Ctx) -> Outcome {
    let path = match read_cstr(l, c.pid, c.args[0], 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let r = path_attr(l, c, AT_FDCWD, path.as_bytes(), 0).and_then(|a| statfs_of(l, &a));
    match r {
        Ok(b) => write_bytes(l, c.pid, c.args[1], &b).map(|_| 0).into(),
        Err(e) => e.into(),
    }
}

pub fn fstatfs(l: &mut Linux, c: &Ctx) -> Outcome {
    let r = fd_attr(l, c, c.args[0]).and_then(|a| statfs_of(l, &a));
    match r {
        Ok(b) => write_bytes(l, c.pid, c.args[1], &b).map(|_| 0).into(),
        Err(e) => e.into(),
    }
}

/// The file `path` (or, with an empty path and AT_EMPTY_PATH, `dirfd`) names, as a FileId of
/// a file system (pseudo nodes cannot be changed: EPERM).
fn target(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, flags: u64) -> Result<Attr, Errno> {
    let path = if path_ptr == 0 { alloc::string::String::new() } else { read_cstr(l, c.pid, path_ptr, 4096)? };
    let flags = if path_ptr == 0 { flags | AT_EMPTY_PATH } else { flags };
    let a = path_attr(l, c, dirfd, path.as_bytes(), flags)?;
    if a.file_id().server() == l.me || a.file == 0 {
        return Err(Errno::EPERM);
    }
    Ok(a)
}

/// SETATTR with `valid` bits; `times` for SET_ATIME/SET_MTIME.
fn setattr(
    l: &mut Linux,
    id: FileId,
    valid: u64,
    mode: u32,
    owner: (u32, u32),
    size: u64,
    times: fsp::SetTimes,
) -> Result<(), Errno> {
    let mut out = [0u8; core::mem::size_of::<Attr>()];
    out[..core::mem::size_of::<fsp::SetTimes>()].copy_from_slice(times.as_bytes());
    let owner = ((owner.0 as u64) << 32) | owner.1 as u64;
    l.fs_buf(id, fsp::SETATTR, [id.0, valid, mode as u64, owner, size, 0], &mut out)?;
    if valid & (fsp::SET_MODE | fsp::SET_OWNER) != 0 {
        // The VFS remembers directories' modes and owners for its walks: not this one's now.
        l.vfs_forget();
    }
    Ok(())
}

fn chmod_attr(l: &mut Linux, c: &Ctx, a: Result<Attr, Errno>, mode: u64) -> Outcome {
    let a = match a {
        Ok(a) => a,
        Err(e) => return e.into(),
    };
    let cred = l.cred(c.pid);
    if cred.uid != 0 && cred.uid != a.uid {
        return Errno::EPERM.into();
    }
    let mut mode = mode as u32 & 0o7777;
    // A non-member of the file's group cannot set its setgid bit.
    if cred.uid != 0 && cred.gid != a.gid {
        mode &= !0o2000;
    }
    setattr(l, a.file_id(), fsp::SET_MODE, mode, (0, 0), 0, Default::default()).map(|_| 0).into()
}

pub fn chmod(l: &mut Linux, c: &Ctx) -> Outcome {
    let a = target(l, c, AT_FDCWD, c.args[0], 0);
    chmod_attr(l, c, a, c.args[1])
}

pub fn fchmodat(l: &mut Linux, c: &Ctx) -> Outcome {
    let a = target(l, c, c.args[0], c.args[1], 0);
    chmod_attr(l, c, a, c.args[2])
}

pub fn fchmod(l: &mut Linux, c: &Ctx) -> Outcome {
    let a = fd_file(l, c, c.args[0]).and_then(|id| l.getattr(id)).map_err(|e| {
        if e == Errno::EINVAL {
            Errno::EPERM
        } else {
            e
        }
    });
    chmod_attr(l, c, a, c.args[1])
}

fn chown_attr(l: &mut Linux, c: &Ctx, a: Result<Attr, Errno>, uid: u64, gid: u64) -> Outcome {
    let a = match a {
        Ok(a) => a,
        Err(e) => return e.into(),
    };
    let (uid, gid) = (uid as u32, gid as u32);
    let cred = l.cred(c.pid);
    if cred.uid != 0 {
        // The owner may only change the group, to one of its own.
        let uid_change = uid != u32::MAX && uid != a.uid;
        let gid_change = gid != u32::MAX && gid != a.gid && gid != cred.gid;
        if uid_change || gid_change || cred.uid != a.uid {
            return Errno::EPERM.into();
        }
    }
    let mut valid = fsp::SET_OWNER | fsp::SET_CTIME;
    let mut mode = a.mode & 0o7777;
    // Changing the owner of a regular file clears its set-id bits (unless root changes nothing).
    if a.mode & S_IFMT == S_IFREG && mode & 0o6000 != 0 && (uid != u32::MAX || gid != u32::MAX) {
        mode &= !0o6000;
        valid |= fsp::SET_MODE;
    }
    setattr(l, a.file_id(), valid, mode, (uid, gid), 0, Default::default()).map(|_| 0).into()
}

pub fn chown(l: &mut Linux, c: &Ctx) -> Outcome {
    let a = target(l, c, AT_FDCWD, c.args[0], 0);
    chown_attr(l, c, a, c.args[1], c.args[2])
}

pub fn lchown(l: &mut Linux, c: &Ctx) -> Outcome {
    let a = target(l, c, AT_FDCWD, c.args[0], AT_SYMLINK_NOFOLLOW);
    chown_attr(l, c, a, c.args[1], c.args[2])
}

pub fn fchownat(l: &mut Linux, c: &Ctx) -> Outcome {
    let a = target(l, c, c.args[0], c.args[1], c.args[4]);
    chown_attr(l, c, a, c.args[2], c.args[3])
}

pub fn fchown(l: &mut Linux, c: &Ctx) -> Outcome {
    let a = fd_file(l, c, c.args[0]).and_then(|id| l.getattr(id));
    chown_attr(l, c, a, c.args[1], c.args[2])
}

/// utimensat(dirfd, path, times[2], flags). A null path means the file `dirfd` itself.
pub fn utimensat(l: &mut Linux, c: &Ctx) -> Outcome {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let [dirfd, path, times_ptr, flags, ..] = c.args;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Errno::EINVAL.into();
    }
    let now = l.k.realtime_ns();
    let now = Timespec { sec: (now / 1_000_000_000) as i64, nsec: (now % 1_000_000_000) as i64 };
    let mut t = [now, now];
    let mut explicit = false;
    let mut omit = [false, false];
    if times_ptr != 0 {
        let b = match read_bytes(l, c.pid, times_ptr, 32) {
            Ok(b) => b,
            Err(e) => return e.into(),
        };
        for i in 0..2 {
            let sec = i64::from_le_bytes(b[i * 16..i * 16 + 8].try_into().unwrap_or_default());
            let nsec = i64::from_le_bytes(b[i * 16 + 8..i * 16 + 16].try_into().unwrap_or_default());
            match nsec {
                UTIME_OMIT => omit[i] = true,
                UTIME_NOW => {}
                n if !(0..1_000_000_000).contains(&n) => return Errno::EINVAL.into(),
                _ => {
                    t[i] = Timespec { sec, nsec };
                    explicit = true;
                }
            }
        }
    }
    let a = match target(l, c, dirfd, path, flags) {
        Ok(a) => a,
        Err(e) => return e.into(),
    };
    let cred = l.cred(c.pid);
    if cred.uid != 0 && cred.uid != a.uid {
        // Setting times to now needs write permission; anything else, ownership.
        if explicit || !cred.may(a.mode, a.uid, a.gid, abi::proto::MAY_WRITE) {
            return (if explicit { Errno::EPERM } else { Errno::EACCES }).into();
        }
    }
    let mut valid = fsp::SET_CTIME;
    if !omit[0] {
        valid |= fsp::SET_ATIME;
    }
    if !omit[1] {
        valid |= fsp::SET_MTIME;
    }
    setattr(l, a.file_id(), valid, 0, (0, 0), 0, fsp::SetTimes { atime: t[0], mtime: t[1] }).map(|_| 0).into()
}

fn set_size(l: &mut Linux, id: FileId, len: u64) -> Outcome {
    if (len as i64) < 0 {
        return Errno::EINVAL.into();
    }
    setattr(l, id, fsp::SET_SIZE, 0, (0, 0), len, Default::default()).map(|_| 0).into()
}

pub fn truncate(l: &mut Linux, c: &Ctx) -> Outcome {
    let path = match read_cstr(l, c.pid, c.args[0], 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let start = match l.start_of(c.pid, AT_FDCWD, path.as_bytes()) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    match l.resolve_file(c.pid, start, path.as_bytes(), vfsp::WALK_FOLLOW | vfsp::WALK_WRITE, Errno::EPERM) {
        Ok(a) if a.mode & S_IFMT != S_IFREG => Errno::EINVAL.into(),
        Ok(a) => set_size(l, a.file_id(), c.args[1]),
        Err(e) => e.into(),
    }
}

pub fn ftruncate(l: &mut Linux, c: &Ctx) -> Outcome {
    let writable = l
        .procs
        .get(&c.pid)
        .and_then(|p| p.fds.get(c.args[0]).ok())
        .map(|f| f.file.borrow().flags & crate::sys::rw::O_ACCMODE != 0);
    let regular =
        l.procs.get(&c.pid).and_then(|p| p.fds.get(c.args[0]).ok()).and_then(|f| match &f.file.borrow().object {
            Object::File { id, mode } if mode & S_IFMT == S_IFREG => Some(*id),
            _ => None,
        });
    match (writable, regular) {
        (None, _) => Errno::EBADF.into(),
        (Some(true), Some(id)) => set_size(l, id, c.args[1]),
        _ => Errno::EINVAL.into(),
    }
}

fn do_access(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, mode: u64, flags: u64) -> Outcome {
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    if mode & !7 != 0 || flags & !(AT_SYMLINK_NOFOLLOW | 0x200 | AT_EMPTY_PATH) != 0 {
        return Errno::EINVAL.into();
    }
    let start = match l.start_of(c.pid, dirfd, path.as_bytes()) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let mut walk = vfsp::WALK_ACCESS;
    if flags & AT_SYMLINK_NOFOLLOW == 0 {
        walk |= vfsp::WALK_FOLLOW;
    }
    if mode & 4 != 0 {
        walk |= vfsp::WALK_READ;
    }
    if mode & 2 != 0 {
        walk |= vfsp::WALK_WRITE;
    }
    if mode & 1 != 0 {
        walk |= vfsp::WALK_EXEC;
    }
    if path.is_empty() {
        return Errno::ENOENT.into();
    }
    match l.resolve(c.pid, start, path.as_bytes(), walk, 0) {
        Ok((Resolved::Pseudo(n), _)) => {
            let m = n.mode();
            let want = (mode & 7) as u32;
            if l.cred(c.pid).may(m, 0, 0, want) {
                Outcome::Done(0)
            } else {
                Errno::EACCES.into()
            }
        }
        Ok(_) => Outcome::Done(0),
        Err(e) => e.into(),
    }
}

pub fn access(l: &mut Linux, c: &Ctx) -> Outcome {
    do_access(l, c, AT_FDCWD, c.args[0], c.args[1], 0)
}

pub fn faccessat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_access(
        l,
        c,
        c.args[0],
        c.args[1],
        c.args[2],
        if c.nr as usize == abi::syscall::current::FACCESSAT2 { c.args[3] } else { 0 },
    )
}

pub fn umask(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let old = p.umask;
    p.umask = c.args[0] as u32 & 0o777;
    Outcome::Done(old as i64)
}
