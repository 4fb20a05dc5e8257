//! Names: directories and the namespace. getdents64 (from the file system, straight into the
//! user's buffer), getcwd/chdir/fchdir, mkdir/mknod, unlink/rmdir, rename, link, symlink,
//! readlink, mount/umount, and the sync family. Changes to names go through `vfs`, which walks
//! the paths and checks permissions; this server keeps only each process's cwd.

use crate::files::Object;
use crate::fsclient::Resolved;
use crate::process::{read_cstr, write_bytes};
use crate::sys::open::fd_file;
use crate::sys::AT_FDCWD;
use crate::{Ctx, Linux, Outcome};
use abi::proto::{fs as fsp, push_dirent64, vfs as vfsp, FileId, NAMES_AT, PATH_MAX, S_IFDIR, S_IFMT};
use abi::Errno;
use alloc::vec::Vec;

const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;

pub fn getdents64(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, buf, len, ..] = c.args;
    let file = match crate::sys::rw::file_of(l, c, fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let (object, cookie) = {
        let f = file.borrow();
        let o = match &f.object {
            Object::File { id, mode } if mode & S_IFMT == S_IFDIR => Ok(*id),
            Object::Pseudo(n) if n.is_dir() => Err(Some(*n)),
            _ => Err(None),
        };
        (o, f.dir_cookie)
    };
    let len = (len as usize).min(1 << 20);
    match object {
        Ok(id) => {
            let grant = match l.user_grant(c.pid, buf, len, true) {
                Ok(g) => g,
                Err(e) => return e.into(),
            };
            match l.fs(id, fsp::READDIR, [id.0, cookie, len as u64, 0, 0, 0], grant) {
                Ok(r) => {
                    file.borrow_mut().dir_cookie = r.aux;
                    Outcome::Done(r.result)
                }
                Err(e) => e.into(),
            }
        }
        Err(Some(node)) => {
            // /proc and /sys: ".", "..", then the entries; the cookie counts entries.
            let entries = match crate::pseudo::entries(l, node) {
                Ok(e) => e,
                Err(e) => return e.into(),
            };
            let mut out = Vec::new();
            let mut next = cookie;
            let all = [(alloc::string::String::from("."), node), (alloc::string::String::from(".."), node)];
            for (i, (name, n)) in all.iter().chain(entries.iter()).enumerate().skip(cookie as usize) {
                let dtype = abi::proto::dtype_of(n.mode());
                if !push_dirent64(&mut out, len, n.ino(), i as u64 + 1, dtype, name.as_bytes()) {
                    break;
                }
                next = i as u64 + 1;
            }
            if out.is_empty() && (next as usize) < entries.len() + 2 {
                return Errno::EINVAL.into();
            }
            file.borrow_mut().dir_cookie = next;
            write_bytes(l, c.pid, buf, &out).map(|_| out.len() as i64).into()
        }
        Err(None) => Errno::ENOTDIR.into(),
    }
}

/// The absolute path of directory `dir` (from `vfs`, or for /proc and /sys, from here).
pub fn path_of(l: &mut Linux, dir: FileId) -> Result<Vec<u8>, Errno> {
    if dir.server() == l.me {
        let root = if dir.volume() as u64 == vfsp::FSTYPE_SYSFS { "/sys" } else { "/proc" };
        return Ok(root.as_bytes().to_vec());
    }
    let mut out = alloc::vec![0u8; NAMES_AT as usize + PATH_MAX];
    let c = l.vfs(vfsp::GETPATH, [dir.0, 0, 0, 0, 0, 0], &[], &mut out)?;
    out.truncate(c.result as usize);
    Ok(out)
}

pub fn getcwd(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(cwd) = l.procs.get(&c.pid).map(|p| p.cwd) else { return Errno::ESRCH.into() };
    let mut path = match path_of(l, cwd) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    path.push(0);
    if path.len() > c.args[1] as usize {
        return Errno::ERANGE.into();
    }
    write_bytes(l, c.pid, c.args[0], &path).map(|_| path.len() as i64).into()
}

fn set_cwd(l: &mut Linux, c: &Ctx, id: FileId) -> Outcome {
    if let Some(p) = l.procs.get_mut(&c.pid) {
        p.cwd = id;
    }
    Outcome::Done(0)
}

pub fn chdir(l: &mut Linux, c: &Ctx) -> Outcome {
    let path = match read_cstr(l, c.pid, c.args[0], 4096) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    if path.is_empty() {
        return Errno::ENOENT.into();
    }
    let start = match l.start_of(c.pid, AT_FDCWD, path.as_bytes()) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    let walk = vfsp::WALK_FOLLOW | vfsp::WALK_DIRECTORY | vfsp::WALK_EXEC | vfsp::WALK_ACCESS;
    match l.resolve(c.pid, start, path.as_bytes(), walk, 0) {
        Ok((Resolved::File(a), _)) => set_cwd(l, c, a.file_id()),
        Ok((Resolved::Pseudo(n), _)) if n.is_dir() => set_cwd(l, c, n.file_id(l.me)),
        Ok(_) => Errno::ENOTDIR.into(),
        Err(e) => e.into(),
    }
}

pub fn fchdir(l: &mut Linux, c: &Ctx) -> Outcome {
    let target = {
        let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
        match p.fds.get(c.args[0]) {
            Ok(f) => match &f.file.borrow().object {
                Object::File { id, mode } if mode & S_IFMT == S_IFDIR => Ok(*id),
                Object::Pseudo(n) if n.is_dir() => Ok(n.file_id(l.me)),
                _ => Err(Errno::ENOTDIR),
            },
            Err(e) => Err(e),
        }
    };
    match target {
        Ok(id) => set_cwd(l, c, id),
        Err(e) => e.into(),
    }
}

/// Reads a path argument and the start directory for it.
fn path_arg(l: &Linux, c: &Ctx, dirfd: u64, ptr: u64) -> Result<(FileId, Vec<u8>), Errno> {
    let path = read_cstr(l, c.pid, ptr, 4096)?.into_bytes();
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = l.start_of(c.pid, dirfd, &path)?;
    if start.server() == l.me {
        return Err(Errno::EPERM); // names in /proc and /sys are not the caller's to make
    }
    Ok((start, path))
}

fn do_mknod(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, mode: u32, rdev: u64) -> Outcome {
    let (start, path) = match path_arg(l, c, dirfd, path_ptr) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let kind = mode & S_IFMT;
    let cred = l.cred(c.pid);
    if matches!(kind, abi::proto::S_IFCHR | abi::proto::S_IFBLK) && cred.uid != 0 {
        return Errno::EPERM.into();
    }
    if !matches!(
        kind,
        0 | abi::proto::S_IFREG
            | abi::proto::S_IFCHR
            | abi::proto::S_IFBLK
            | abi::proto::S_IFIFO
            | abi::proto::S_IFSOCK
            | S_IFDIR
    ) {
        return Errno::EINVAL.into();
    }
    let umask = l.procs.get(&c.pid).map_or(0o022, |p| p.umask);
    let args = [start.0, path.len() as u64, mode as u64, rdev, cred.to_word(), umask as u64];
    l.vfs(vfsp::MKNOD, args, &[&path], &mut []).map(|_| 0).into()
}

pub fn mkdir(l: &mut Linux, c: &Ctx) -> Outcome {
    do_mknod(l, c, AT_FDCWD, c.args[0], S_IFDIR | (c.args[1] as u32 & 0o1777), 0)
}

pub fn mkdirat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_mknod(l, c, c.args[0], c.args[1], S_IFDIR | (c.args[2] as u32 & 0o1777), 0)
}

/// mknod(path, mode, dev): `dev` in the user's encoding (the same as the kernel's new_encode).
pub fn mknod(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[1] as u32 & S_IFMT == S_IFDIR {
        return Errno::EINVAL.into();
    }
    do_mknod(l, c, AT_FDCWD, c.args[0], c.args[1] as u32, c.args[2])
}

pub fn mknodat(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[2] as u32 & S_IFMT == S_IFDIR {
        return Errno::EINVAL.into();
    }
    do_mknod(l, c, c.args[0], c.args[1], c.args[2] as u32, c.args[3])
}

fn do_unlink(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, flags: u64) -> Outcome {
    if flags & !AT_REMOVEDIR != 0 {
        return Errno::EINVAL.into();
    }
    let (start, path) = match path_arg(l, c, dirfd, path_ptr) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let f = if flags & AT_REMOVEDIR != 0 { fsp::UNLINK_DIR } else { 0 };
    let cred = l.cred(c.pid).to_word();
    l.vfs(vfsp::UNLINK, [start.0, path.len() as u64, f, cred, 0, 0], &[&path], &mut []).map(|_| 0).into()
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

fn do_rename(l: &mut Linux, c: &Ctx, olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> Outcome {
    if flags & !(fsp::RENAME_NOREPLACE | fsp::RENAME_EXCHANGE) != 0 {
        return Errno::EINVAL.into(); // RENAME_WHITEOUT needs overlay semantics: not here
    }
    let (os, op) = match path_arg(l, c, olddir, old) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let (ns, np) = match path_arg(l, c, newdir, new) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let cred = l.cred(c.pid).to_word();
    let args = [os.0, ns.0, op.len() as u64, np.len() as u64, flags, cred];
    l.vfs(vfsp::RENAME, args, &[&op, &np], &mut []).map(|_| 0).into()
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
    if flags & !(AT_SYMLINK_FOLLOW | crate::sys::stat::AT_EMPTY_PATH) != 0 {
        return Errno::EINVAL.into();
    }
    let (os, op) = match path_arg(l, c, olddir, old) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let (ns, np) = match path_arg(l, c, newdir, new) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 { vfsp::WALK_FOLLOW } else { 0 };
    let cred = l.cred(c.pid).to_word();
    let args = [os.0, ns.0, op.len() as u64, np.len() as u64, follow, cred];
    l.vfs(vfsp::LINK, args, &[&op, &np], &mut []).map(|_| 0).into()
}

pub fn link(l: &mut Linux, c: &Ctx) -> Outcome {
    do_link(l, c, AT_FDCWD, c.args[0], AT_FDCWD, c.args[1], 0)
}

pub fn linkat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_link(l, c, c.args[0], c.args[1], c.args[2], c.args[3], c.args[4])
}

fn do_symlink(l: &mut Linux, c: &Ctx, target: u64, newdir: u64, new: u64) -> Outcome {
    let target = match read_cstr(l, c.pid, target, 4096) {
        Ok(t) if !t.is_empty() => t.into_bytes(),
        Ok(_) => return Errno::ENOENT.into(),
        Err(e) => return e.into(),
    };
    let (start, path) = match path_arg(l, c, newdir, new) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let cred = l.cred(c.pid).to_word();
    let args = [start.0, path.len() as u64, target.len() as u64, cred, 0, 0];
    l.vfs(vfsp::SYMLINK, args, &[&path, &target], &mut []).map(|_| 0).into()
}

pub fn symlink(l: &mut Linux, c: &Ctx) -> Outcome {
    do_symlink(l, c, c.args[0], AT_FDCWD, c.args[1])
}

pub fn symlinkat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_symlink(l, c, c.args[0], c.args[1], c.args[2])
}

fn do_readlink(l: &mut Linux, c: &Ctx, dirfd: u64, path_ptr: u64, buf: u64, size: u64) -> Outcome {
    let path = match read_cstr(l, c.pid, path_ptr, 4096) {
        Ok(p) => p.into_bytes(),
        Err(e) => return e.into(),
    };
    if (size as i64) <= 0 {
        return Errno::EINVAL.into();
    }
    let start = match l.start_of(c.pid, dirfd, &path) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    if path.is_empty() {
        return Errno::ENOENT.into();
    }
    let target = match l.resolve(c.pid, start, &path, 0, 0) {
        Ok((Resolved::Pseudo(n), _)) => match crate::pseudo::readlink(l, c.pid, n) {
            Ok(t) => t,
            Err(e) => return e.into(),
        },
        Ok((Resolved::File(a), _)) if a.is_symlink() => {
            let id = a.file_id();
            let mut out = alloc::vec![0u8; PATH_MAX];
            let grant = server_rt::grant(&out, server_rt::GRANT_WRITE);
            match l.fs(id, fsp::READLINK, [id.0, PATH_MAX as u64, 0, 0, 0, 0], grant) {
                Ok(r) => {
                    out.truncate(r.result as usize);
                    out
                }
                Err(e) => return e.into(),
            }
        }
        Ok(_) => return Errno::EINVAL.into(),
        Err(e) => return e.into(),
    };
    let n = target.len().min(size as usize);
    write_bytes(l, c.pid, buf, &target[..n]).map(|_| n as i64).into()
}

pub fn readlink(l: &mut Linux, c: &Ctx) -> Outcome {
    do_readlink(l, c, AT_FDCWD, c.args[0], c.args[1], c.args[2])
}

pub fn readlinkat(l: &mut Linux, c: &Ctx) -> Outcome {
    do_readlink(l, c, c.args[0], c.args[1], c.args[2], c.args[3])
}

/// mount(source, target, fstype, flags, data): tmpfs/ramfs, devtmpfs, proc, sysfs, and ext2 on
/// the disk (`/dev/vda`).
pub fn mount(l: &mut Linux, c: &Ctx) -> Outcome {
    let [source, target, fstype, flags, _data, _] = c.args;
    const MS_RDONLY: u64 = 1;
    const MS_REMOUNT: u64 = 32;
    const MS_BIND: u64 = 4096;
    const MS_MOVE: u64 = 8192;
    let source = if source == 0 { Ok(Vec::new()) } else { read_cstr(l, c.pid, source, 4096).map(|s| s.into_bytes()) };
    let target = read_cstr(l, c.pid, target, 4096).map(|s| s.into_bytes());
    let (source, target) = match (source, target) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => return e.into(),
    };
    if l.cred(c.pid).uid != 0 {
        return Errno::EPERM.into();
    }
    if flags & (MS_REMOUNT | MS_BIND | MS_MOVE) != 0 {
        // Remounting (mount -o remount) changes nothing this kernel keeps; bind and move
        // mounts are not supported.
        return if flags & MS_REMOUNT != 0 { Outcome::Done(0) } else { Errno::EINVAL.into() };
    }
    let fstype = match read_cstr(l, c.pid, fstype, 64) {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let Some(kind) = vfsp::fstype_from_name(&fstype) else { return Errno::ENODEV.into() };
    if kind == vfsp::FSTYPE_EXT2 {
        // The source must be the disk's block device node (the ext2 server serves that one).
        let start = l.procs.get(&c.pid).map(|p| p.cwd).unwrap_or_default();
        match l.resolve_file(c.pid, start, &source, vfsp::WALK_FOLLOW, Errno::ENOTBLK) {
            Ok(a) if a.mode & abi::proto::S_IFMT != abi::proto::S_IFBLK => return Errno::ENOTBLK.into(),
            Ok(a) if a.rdev != crate::DISK_RDEV => return Errno::ENXIO.into(),
            Ok(_) => {}
            Err(e) => return e.into(),
        }
    }
    // Relative targets are the caller's cwd's business: make the path absolute.
    let target = if target.starts_with(b"/") {
        target
    } else {
        let cwd = l.procs.get(&c.pid).map(|p| p.cwd).unwrap_or_default();
        match path_of(l, cwd) {
            Ok(mut p) => {
                if p != b"/" {
                    p.push(b'/');
                }
                p.extend_from_slice(&target);
                p
            }
            Err(e) => return e.into(),
        }
    };
    let cred = l.cred(c.pid).to_word();
    let args = [kind, flags & MS_RDONLY, source.len() as u64, target.len() as u64, cred, 0];
    l.vfs(vfsp::MOUNT, args, &[&source, &target], &mut []).map(|_| 0).into()
}

/// umount2(target, flags).
pub fn umount2(l: &mut Linux, c: &Ctx) -> Outcome {
    let target = match read_cstr(l, c.pid, c.args[0], 4096) {
        Ok(t) => t.into_bytes(),
        Err(e) => return e.into(),
    };
    if c.args[1] & !0xf != 0 {
        return Errno::EINVAL.into();
    }
    if l.cred(c.pid).uid != 0 {
        return Errno::EPERM.into();
    }
    let target = if target.starts_with(b"/") {
        target
    } else {
        let cwd = l.procs.get(&c.pid).map(|p| p.cwd).unwrap_or_default();
        match path_of(l, cwd) {
            Ok(mut p) => {
                if p != b"/" {
                    p.push(b'/');
                }
                p.extend_from_slice(&target);
                p
            }
            Err(e) => return e.into(),
        }
    };
    let cred = l.cred(c.pid).to_word();
    l.vfs(vfsp::UMOUNT, [target.len() as u64, c.args[1], cred, 0, 0, 0], &[&target], &mut []).map(|_| 0).into()
}

pub fn sync(l: &mut Linux, _c: &Ctx) -> Outcome {
    let servers: Vec<usize> =
        l.k.servers()
            .iter()
            .enumerate()
            .filter(|(_, s)| crate::FILE_SERVERS.contains(&s.name))
            .map(|(i, _)| i)
            .collect();
    for s in servers {
        let _ = l.fs_buf(FileId::new(s, 0, 0), fsp::SYNC, [0; 6], &mut []);
    }
    Outcome::Done(0)
}

pub fn syncfs(l: &mut Linux, c: &Ctx) -> Outcome {
    match fd_file(l, c, c.args[0]) {
        Ok(id) => l.fs_buf(id, fsp::SYNC, [id.0, 0, 0, 0, 0, 0], &mut []).map(|_| 0).into(),
        Err(Errno::EINVAL) => Outcome::Done(0),
        Err(e) => e.into(),
    }
}

fn do_fsync(l: &mut Linux, c: &Ctx, datasync: u64) -> Outcome {
    let is_file = l
        .procs
        .get(&c.pid)
        .and_then(|p| p.fds.get(c.args[0]).ok())
        .map(|f| matches!(f.file.borrow().object, Object::File { .. }));
    match is_file {
        None => Errno::EBADF.into(),
        Some(false) => Errno::EINVAL.into(),
        Some(true) => match fd_file(l, c, c.args[0]) {
            Ok(id) => l.fs_buf(id, fsp::FSYNC, [id.0, datasync, 0, 0, 0, 0], &mut []).map(|_| 0).into(),
            Err(e) => e.into(),
        },
    }
}

pub fn fsync(l: &mut Linux, c: &Ctx) -> Outcome {
    do_fsync(l, c, 0)
}

pub fn fdatasync(l: &mut Linux, c: &Ctx) -> Outcome {
    do_fsync(l, c, 1)
}

/// sync_file_range(fd, offset, nbytes, flags): writing back starts on its own here (the file
/// servers write back when they choose), so only SYNC_FILE_RANGE_WAIT_AFTER has something to
/// wait for: the data written back, as fdatasync does it. Linux's checks first (EINVAL for
/// unknown flags or a negative range, ESPIPE for a pipe, EBADF).
pub fn sync_file_range(l: &mut Linux, c: &Ctx) -> Outcome {
    const WAIT_BEFORE: u64 = 1;
    const WRITE: u64 = 2;
    const WAIT_AFTER: u64 = 4;
    let [fd, offset, nbytes, flags, ..] = c.args;
    let object = match l.procs.get(&c.pid).and_then(|p| p.fds.get(fd).ok()) {
        Some(f) => f.file.clone(),
        None => return Errno::EBADF.into(),
    };
    if flags & !(WAIT_BEFORE | WRITE | WAIT_AFTER) != 0 || (offset as i64) < 0 || (nbytes as i64) < 0 {
        return Errno::EINVAL.into();
    }
    if (offset as i64).checked_add(nbytes as i64).is_none() {
        return Errno::EINVAL.into();
    }
    let id = match object.borrow().object {
        Object::File { id, .. } => id,
        Object::Pipe { .. } => return Errno::ESPIPE.into(),
        _ => return Outcome::Done(0), // nothing behind it to write back
    };
    if flags & WAIT_AFTER == 0 {
        return Outcome::Done(0);
    }
    l.fs_buf(id, fsp::FSYNC, [id.0, 1, 0, 0, 0, 0], &mut []).map(|_| 0).into()
}
