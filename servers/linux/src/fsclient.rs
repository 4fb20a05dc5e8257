//! This server as a client of the file servers: path resolution through `vfs` (with the
//! redirect into `/proc` and `/sys`, which this server serves itself), operations on open files
//! straight to the file system that holds them (`ramfs`, `ext2`), and the terminal (`tty`).
//!
//! Requests carry the caller's buffers as *user-memory grants* where the data is the user's
//! (read(2) lands in the user buffer without a copy through this server) and this server's own
//! buffers for paths and structures. Every request that changes something carries a fresh
//! request id (`Sqe::rid`), so that a file server restarted under it (the *transparent*
//! policy) answers the retry instead of applying it twice; `server_rt::Endpoints` does the retrying.

use crate::pseudo;
use crate::{Linux, Pid};
use abi::proto::{fs as fsp, tty as ttyp, vfs as vfsp, Attr, Cred, FileId, NAMES_AT, PATH_MAX};
use abi::Errno;
use alloc::vec::Vec;
use server_rt::{Cqe, GrantRef, IpcError, Sqe, GRANT_READ, GRANT_WRITE};
use zerocopy::FromBytes;

/// Retries of a call whose server is being restarted before the system call fails with EIO.
const ATTEMPTS: u32 = 64;

/// What a path names.
#[derive(Clone, Copy, Debug)]
pub enum Resolved {
    /// A file of a file-system server.
    File(Attr),
    /// A node of `/proc` or `/sys`.
    Pseudo(pseudo::Node),
}

fn errno_of(e: IpcError) -> Errno {
    match e {
        IpcError::Fault => Errno::EFAULT,
        _ => Errno::EIO,
    }
}

/// The answer of a file server as a result: negative values are errnos.
fn checked(c: Cqe) -> Result<Cqe, Errno> {
    if c.result < 0 {
        Err(Errno((-c.result).min(4095) as i32))
    } else {
        Ok(c)
    }
}

impl Linux {
    /// The credentials file access by `pid` is checked with.
    pub fn cred(&self, pid: Pid) -> Cred {
        self.procs.get(&pid).map_or(Cred::ROOT, |p| p.fs_cred())
    }

    /// A user-memory grant of `[va, va + len)` in `pid`'s address space, made present first
    /// (as a fault would) and checked against the mapping's rights.
    pub fn user_grant(&self, pid: Pid, va: u64, len: usize, write: bool) -> Result<GrantRef, Errno> {
        crate::process::populate(self, pid, va, len, write)?;
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        let rights = if write { GRANT_WRITE } else { GRANT_READ };
        Ok(GrantRef::user(p.aspace.0, va, len as u64, rights))
    }

    /// A user-memory grant of `[va, va + len)` for the server to write into, neither made
    /// present nor checked here: the nucleus writes it with the user's rights (a page must be
    /// mapped writable or copy-on-write), so the server's write fails with `EFAULT` where
    /// [`Linux::user_grant`] would have mapped a page or refused the range. For requests that
    /// can simply be sent again after that (a read at a given offset).
    pub fn user_grant_unpopulated(&self, pid: Pid, va: u64, len: usize) -> Result<GrantRef, Errno> {
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        Ok(GrantRef::user(p.aspace.0, va, len as u64, GRANT_WRITE))
    }

    /// Calls the server named `name` with `sqe` (retrying across its restarts).
    fn call(&mut self, name: &'static str, mut sqe: Sqe, changes: bool) -> Result<Cqe, Errno> {
        if changes {
            sqe.rid = self.rids.fresh();
        }
        checked(self.endpoints.call(name, &sqe, ATTEMPTS).map_err(errno_of)?)
    }

    fn server_name(&self, file: FileId) -> Result<&'static str, Errno> {
        self.k.servers().get(file.server()).map(|s| s.name).ok_or(Errno::ESTALE)
    }

    /// Calls `name` with [`Linux::scratch`] granted: `input` at offset 0 and `names` at
    /// NAMES_AT going in; the answer (a structure at 0, a path at NAMES_AT) is left there.
    /// Bytes of earlier requests may follow what was written: this server's own, and the
    /// servers are told lengths.
    fn call_scratch(
        &mut self,
        name: &'static str,
        opcode: u32,
        args: [u64; 6],
        input: &[u8],
        names: &[&[u8]],
        changes: bool,
    ) -> Result<Cqe, Errno> {
        let names_len: usize = names.iter().map(|n| n.len()).sum();
        let size = (NAMES_AT as usize + names_len).max(input.len());
        let mut buf = core::mem::take(&mut self.scratch);
        if buf.len() < size {
            buf.resize(size, 0);
        }
        buf[..input.len()].copy_from_slice(input);
        let mut at = NAMES_AT as usize;
        for n in names {
            buf[at..at + n.len()].copy_from_slice(n);
            at += n.len();
        }
        let mut sqe = Sqe::new(opcode, args);
        sqe.grant = server_rt::grant(&buf, GRANT_READ | GRANT_WRITE);
        let r = self.call(name, sqe, changes);
        self.scratch = buf;
        r
    }

    /// Calls `name` with a buffer of ours: `out` at offset 0 and `names` at NAMES_AT going in,
    /// the structure the server writes at offset 0 coming back in `out`.
    fn call_buf(
        &mut self,
        name: &'static str,
        opcode: u32,
        args: [u64; 6],
        names: &[&[u8]],
        out: &mut [u8],
        changes: bool,
    ) -> Result<Cqe, Errno> {
        // `out` goes in too: a structure the request carries (SETATTR's times) sits there.
        let r = self.call_scratch(name, opcode, args, out, names, changes);
        let n = out.len().min(self.scratch.len());
        out[..n].copy_from_slice(&self.scratch[..n]);
        r
    }

    /// Tells `vfs` to forget the directories it remembers (`vfsp::FORGET`). A failure needs
    /// nothing more: a `vfs` that cannot be reached starts afresh.
    pub fn vfs_forget(&mut self) {
        let _ = self.call("vfs", Sqe::new(vfsp::FORGET, [0; 6]), false);
    }

    /// A request to `vfs` with paths.
    pub fn vfs(&mut self, opcode: u32, args: [u64; 6], paths: &[&[u8]], out: &mut [u8]) -> Result<Cqe, Errno> {
        let changes = !matches!(opcode, vfsp::WALK | vfsp::GETPATH | vfsp::MOUNTS | vfsp::MOUNTPOINT_OF);
        self.call_buf("vfs", opcode, args, paths, out, changes)
    }

    /// A request to the file system that holds `file`, with `grant` (user memory, usually).
    pub fn fs(&mut self, file: FileId, opcode: u32, args: [u64; 6], grant: GrantRef) -> Result<Cqe, Errno> {
        let name = self.server_name(file)?;
        let mut sqe = Sqe::new(opcode, args);
        sqe.grant = grant;
        let changes =
            !matches!(opcode, fsp::LOOKUP | fsp::GETATTR | fsp::READ | fsp::READDIR | fsp::READLINK | fsp::STATFS);
        self.call(name, sqe, changes)
    }

    /// A request to the file system that holds `file`, with a buffer of ours (structures).
    pub fn fs_buf(&mut self, file: FileId, opcode: u32, args: [u64; 6], out: &mut [u8]) -> Result<Cqe, Errno> {
        let name = self.server_name(file)?;
        let changes = matches!(opcode, fsp::SETATTR | fsp::OPEN | fsp::RELEASE | fsp::SYNC | fsp::FSYNC);
        self.call_buf(name, opcode, args, &[], out, changes)
    }

    /// The attributes of `file`.
    pub fn getattr(&mut self, file: FileId) -> Result<Attr, Errno> {
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        self.fs_buf(file, fsp::GETATTR, [file.0, 0, 0, 0, 0, 0], &mut out)?;
        Attr::read_from_bytes(&out).map_err(|_| Errno::EIO)
    }

    /// A request to `tty`.
    pub fn tty(&mut self, opcode: u32, args: [u64; 6], grant: GrantRef) -> Result<Cqe, Errno> {
        let mut sqe = Sqe::new(opcode, args);
        sqe.grant = grant;
        self.call("tty", sqe, opcode == ttyp::IOCTL)
    }

    /// The start directory of a `*at` call (`AT_FDCWD` = the cwd), as a FileId word.
    pub fn start_of(&self, pid: Pid, dirfd: u64, path: &[u8]) -> Result<FileId, Errno> {
        let p = self.procs.get(&pid).ok_or(Errno::ESRCH)?;
        if path.starts_with(b"/") || dirfd == crate::sys::AT_FDCWD || dirfd as u32 == crate::sys::AT_FDCWD as u32 {
            return Ok(p.cwd);
        }
        let f = p.fds.get(dirfd)?;
        let start = match &f.file.borrow().object {
            crate::files::Object::File { id, mode } if mode & abi::proto::S_IFMT == abi::proto::S_IFDIR => *id,
            crate::files::Object::Pseudo(n) if n.is_dir() => n.file_id(self.me),
            _ if path.is_empty() => return Err(Errno::EBADF),
            _ => return Err(Errno::ENOTDIR),
        };
        Ok(start)
    }

    /// Resolves `path` for `pid` from `start` with `flags` (vfs WALK_*), creating with `mode`
    /// when asked. The second value has the walk's `WALK_CREATED` and `WALK_OPENED` bits (the
    /// file was created; WALK_OPEN's reference was taken).
    pub fn resolve(
        &mut self,
        pid: Pid,
        start: FileId,
        path: &[u8],
        flags: u64,
        mode: u32,
    ) -> Result<(Resolved, u64), Errno> {
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        // Owned only once a redirect or a pseudo walk hands back the rest of it.
        let mut path = alloc::borrow::Cow::Borrowed(path);
        let mut start = start;
        let follow = flags & vfsp::WALK_FOLLOW != 0;
        for _ in 0..8 {
            if start.server() == self.me && !path.starts_with(b"/") {
                // Relative to a directory of /proc or /sys: this server walks it.
                match pseudo::walk(self, pid, pseudo::Node::from_file(start), &path, follow)? {
                    pseudo::Walk::Node(n) => return Ok((Resolved::Pseudo(n), 0)),
                    pseudo::Walk::Elsewhere { start: s, path: p } => {
                        start = s;
                        path = alloc::borrow::Cow::Owned(p);
                        continue;
                    }
                }
            }
            let umask = self.procs.get(&pid).map_or(0o022, |p| p.umask);
            let cred = self.cred(pid).to_word();
            let args = [start.0, path.len() as u64, flags, mode as u64, cred, umask as u64];
            let changes = flags & (vfsp::WALK_CREATE | vfsp::WALK_OPEN) != 0;
            let c = self.call_scratch("vfs", vfsp::WALK, args, &[], &[&path], changes)?;
            let out = &self.scratch;
            if c.flags & vfsp::REDIRECT != 0 {
                let rest = out[NAMES_AT as usize..NAMES_AT as usize + (c.aux as usize).min(PATH_MAX)].to_vec();
                start = FileId(c.result as u64);
                path = alloc::borrow::Cow::Owned(rest);
                if path.is_empty() {
                    return Ok((Resolved::Pseudo(pseudo::Node::from_file(start)), 0));
                }
                continue;
            }
            let attr = Attr::read_from_bytes(&out[..core::mem::size_of::<Attr>()]).map_err(|_| Errno::EIO)?;
            if flags & vfsp::WALK_PATH != 0 {
                let n = ((c.aux >> 8) as usize).min(PATH_MAX);
                self.last_path = out[NAMES_AT as usize..NAMES_AT as usize + n].to_vec();
            }
            return Ok((Resolved::File(attr), c.aux & (vfsp::WALK_CREATED | vfsp::WALK_OPENED)));
        }
        Err(Errno::ELOOP)
    }

    /// Resolves `path` to a file-system file (EPERM-free: pseudo nodes are refused with
    /// `pseudo_err`).
    pub fn resolve_file(
        &mut self,
        pid: Pid,
        start: FileId,
        path: &[u8],
        flags: u64,
        pseudo_err: Errno,
    ) -> Result<Attr, Errno> {
        match self.resolve(pid, start, path, flags, 0)?.0 {
            Resolved::File(a) => Ok(a),
            Resolved::Pseudo(_) => Err(pseudo_err),
        }
    }

    /// Reads all of `file` (at most `max` bytes) into a vector of ours.
    pub fn read_all(&mut self, file: FileId, max: usize) -> Result<Vec<u8>, Errno> {
        let mut data: Vec<u8> = Vec::new();
        let mut chunk = alloc::vec![0u8; 256 * 1024];
        loop {
            let grant = server_rt::grant(&chunk, GRANT_WRITE);
            let n = self.fs(file, fsp::READ, [file.0, data.len() as u64, chunk.len() as u64, 0, 0, 0], grant)?.result
                as usize;
            if n == 0 {
                return Ok(data);
            }
            if data.len() + n > max {
                return Err(Errno::EFBIG);
            }
            data.try_reserve(n).map_err(|_| Errno::ENOMEM)?;
            data.extend_from_slice(&chunk[..n.min(chunk.len())]);
            if n < chunk.len() {
                return Ok(data);
            }
            chunk.fill(0);
        }
    }

    /// Reads `len` bytes of `file` at `offset` into a vector of ours (shorter at the end).
    pub fn read_range(&mut self, file: FileId, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut data = alloc::vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let grant = server_rt::grant(&data[done..], GRANT_WRITE);
            let want = (len - done) as u64;
            let n = self.fs(file, fsp::READ, [file.0, offset + done as u64, want, 0, 0, 0], grant)?.result as usize;
            if n == 0 {
                break;
            }
            done += n;
        }
        data.truncate(done);
        Ok(data)
    }

    /// Sends the file systems the releases that closing files queued.
    pub fn drain_releases(&mut self) {
        loop {
            let next = self.releases.borrow_mut().pop();
            let Some(id) = next else { return };
            if id.server() != self.me {
                let _ = self.fs_buf(id, fsp::RELEASE, [id.0, 0, 0, 0, 0, 0], &mut []);
            }
        }
    }

    /// Tells the file system that a new open file description refers to `file`.
    pub fn open_ref(&mut self, file: FileId) -> Result<(), Errno> {
        self.fs_buf(file, fsp::OPEN, [file.0, 0, 0, 0, 0, 0], &mut []).map(|_| ())
    }
}
