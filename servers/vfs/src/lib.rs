//! The `vfs` server: the mount table and path resolution. The Linux ABI server sends it a path
//! (with the caller's credentials and a start directory) and gets back a `FileId` and the
//! file's attributes; everything after that — reads, writes, readdir, attributes of an open
//! file — goes from the Linux server straight to the file-system server that holds the file.
//! The VFS walks components one `LOOKUP` at a time across file-system servers, crosses mount
//! points in both directions (`..` out of a mounted root goes to the directory it covers),
//! follows symbolic links (ELOOP after 40), checks search/read/write permission with Linux's
//! rules, creates, truncates, links, unlinks and renames through the servers' protocol, and
//! refuses what crosses volumes (EXDEV) or touches a mount point (EBUSY).
//!
//! Pseudo file systems the Linux server serves itself (`proc`, `sysfs`) are mounts like any
//! other; a walk that enters one answers `REDIRECT` with the rest of the path, since the VFS
//! must never call its own client back (it is waiting for this answer).
//!
//! Restart policy *transparent*: the mount table is in the state area, and every change to a
//! file system carries the client's request id, so a retried request is not applied twice by a
//! server that keeps such records.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod mounts;

use abi::proto::fs as fsp;
use abi::proto::vfs as proto;
use abi::proto::{
    Attr, Cred, FileId, MAY_EXEC, MAY_READ, MAY_WRITE, NAMES_AT, PATH_MAX, S_IFDIR, S_IFMT, S_IFREG, S_ISVTX,
};
use abi::Errno;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use mounts::{Mount, Mounts};
use server_rt::{grant_put, kernel, log, Cqe, Kernel, Sqe, StateWrite, GRANT_READ, GRANT_WRITE};
use zerocopy::FromBytes;

/// Directories remembered from earlier walks (see [`Vfs::dirs`]).
const REMEMBERED_DIRS: usize = 32;

/// Symbolic links followed in one walk before ELOOP.
const MAX_LINKS: u32 = 40;
/// Retries of a call to a file-system server that is being restarted.
const FS_ATTEMPTS: u32 = 64;

/// A resolved file: its id and attributes. `synthetic`: the attributes were not asked of the
/// file system (a start directory walked by root, see `start_node`) and must be fetched before
/// anything but a search-permission check uses them.
#[derive(Clone, Copy, Debug)]
struct Node {
    id: FileId,
    attr: Attr,
    synthetic: bool,
}

/// The end of a walk inside this VFS: `node` is the file (None: the last component does not
/// exist); `parent` and `name` are the directory and the last component (None for paths like
/// "/", "." or "a/..").
struct Found {
    parent: Option<Node>,
    name: Vec<u8>,
    node: Option<Node>,
}

/// Where a walk ended. Not boxed: moving a `Found` costs less than allocating one per walk.
#[allow(clippy::large_enum_variant)]
enum Walked {
    At(Found),
    /// The walk entered a pseudo file system the client serves: its root, and the rest.
    Redirect {
        root: FileId,
        rest: Vec<u8>,
    },
}

struct Vfs {
    k: &'static dyn Kernel,
    mounts: Mounts,
    /// The client that serves pseudo file systems (the Linux ABI server's index).
    client: usize,
    /// Capabilities of the file servers (looked up once each).
    endpoints: server_rt::Endpoints,
    /// Directories found by earlier lookups, as (parent, name, node), newest last: a walk
    /// through `/etc` or `/usr/lib` asks the file system only for what lies below them. Only
    /// what a walk passes through comes from here (the search-permission check and the type),
    /// never a walk's result, whose attributes must be current. Everything that could change
    /// what is remembered empties it: every name-changing request and mount passes through
    /// this server, and the client sends [`proto::FORGET`] when it changes a mode or an owner
    /// behind it.
    dirs: RefCell<Vec<(FileId, Vec<u8>, Node)>>,
    /// The path of the walk being served (see [`Vfs::walk_and_check`]).
    path_buf: RefCell<Vec<u8>>,
    /// The buffer `fs_call` grants, allocated once.
    scratch: core::cell::Cell<Vec<u8>>,
}

fn errno_of(e: server_rt::IpcError) -> Errno {
    match e {
        server_rt::IpcError::Fault => Errno::EFAULT,
        _ => Errno::EIO,
    }
}

/// A request id for step `step` of the client's request `rid` (0 stays 0).
fn sub_rid(rid: u64, step: u64) -> u64 {
    if rid == 0 {
        0
    } else {
        rid ^ (step << 62)
    }
}

impl Vfs {
    /// Calls the server that holds `file` with names in the grant; the structure it writes at
    /// offset 0 comes back in `out` (if any).
    fn fs_call(
        &self,
        file: FileId,
        opcode: u32,
        args: [u64; 6],
        names: &[&[u8]],
        out: &mut [u8],
        rid: u64,
    ) -> Result<Cqe, Errno> {
        let spec = self.k.servers().get(file.server()).ok_or(Errno::ESTALE)?;
        let names_len: usize = names.iter().map(|n| n.len()).sum();
        let size = NAMES_AT as usize + names_len.max(out.len().saturating_sub(NAMES_AT as usize));
        // The buffer of every such call, kept (see `scratch`); what comes back starts zeroed.
        let mut buf = self.scratch.take();
        if buf.len() < size {
            buf.resize(size, 0);
        }
        buf[..out.len()].fill(0);
        let mut at = NAMES_AT as usize;
        for n in names {
            buf[at..at + n.len()].copy_from_slice(n);
            at += n.len();
        }
        let mut sqe = Sqe::new(opcode, args);
        sqe.rid = rid;
        sqe.grant = server_rt::grant(&buf[..size], GRANT_READ | GRANT_WRITE);
        let c = self.endpoints.call(spec.name, &sqe, FS_ATTEMPTS).map_err(errno_of);
        let n = out.len().min(size);
        out[..n].copy_from_slice(&buf[..n]);
        self.scratch.replace(buf);
        let c = c?;
        if c.result < 0 {
            return Err(Errno((-c.result) as i32));
        }
        Ok(c)
    }

    /// What a file system answered to request `rid`, if one applied it and still holds its
    /// record (`fsp::RECALL`). Every file system server in the mount table is asked: only the
    /// one that applied it can know the id.
    fn recall(&self, rid: u64) -> Option<i64> {
        if rid == 0 {
            return None;
        }
        let mut asked: Vec<usize> = Vec::new();
        for m in &self.mounts.list {
            let server = m.root.server();
            if server == self.client || asked.contains(&server) {
                continue;
            }
            asked.push(server);
            if let Ok(c) = self.fs_call(m.root, fsp::RECALL, [0; 6], &[], &mut [], rid) {
                return Some(c.result);
            }
        }
        None
    }

    fn getattr(&self, file: FileId) -> Result<Node, Errno> {
        if file.0 == 0 {
            return self.root(); // FileId 0 stands for the root
        }
        if file.server() == self.client {
            // A pseudo file system's root: its attributes are the client's business.
            return Ok(Node { id: file, attr: pseudo_root_attr(file), synthetic: false });
        }
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        self.fs_call(file, fsp::GETATTR, [file.0, 0, 0, 0, 0, 0], &[], &mut out, 0)?;
        Ok(Node { id: file, attr: Attr::read_from_bytes(&out).map_err(|_| Errno::EIO)?, synthetic: false })
    }

    fn root(&self) -> Result<Node, Errno> {
        let r = self.mounts.root().ok_or(Errno::ENOENT)?.root;
        self.getattr(r)
    }

    /// The child `name` of directory `dir` (without crossing mounts).
    fn fs_lookup(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        self.fs_call(dir.id, fsp::LOOKUP, [dir.id.0, name.len() as u64, 0, 0, 0, 0], &[name], &mut out, 0)?;
        let attr = Attr::read_from_bytes(&out).map_err(|_| Errno::EIO)?;
        Ok(Node { id: attr.file_id(), attr, synthetic: false })
    }

    /// [`Vfs::fs_lookup`] of a component a walk passes through: a remembered directory, or the
    /// file system's answer (remembered if it is a directory).
    fn lookup_passing(&self, dir: &Node, name: &[u8]) -> Result<Node, Errno> {
        if let Some((_, _, n)) = self.dirs.borrow().iter().rev().find(|(d, nm, _)| *d == dir.id && nm == name) {
            return Ok(*n);
        }
        let n = self.fs_lookup(dir, name)?;
        if n.attr.is_dir() {
            let mut dirs = self.dirs.borrow_mut();
            if dirs.len() >= REMEMBERED_DIRS {
                dirs.remove(0);
            }
            dirs.push((dir.id, name.to_vec(), n));
        }
        Ok(n)
    }

    /// Forgets every remembered directory (see [`Vfs::dirs`]).
    fn forget_dirs(&self) {
        self.dirs.borrow_mut().clear();
    }

    /// The directory a walk starts from. Its attributes are only needed for the search
    /// permission check, which root always passes (start directories are directories: the
    /// caller hands only those), so for root the file system is not asked.
    fn start_node(&self, dir: FileId, cred: Cred) -> Result<Node, Errno> {
        if cred.uid == 0 && dir.server() != self.client {
            let attr = Attr { file: dir.0, mode: S_IFDIR | 0o755, nlink: 2, ..Default::default() };
            return Ok(Node { id: dir, attr, synthetic: true });
        }
        self.getattr(dir)
    }

    /// `n` with its real attributes.
    fn real(&self, n: Node) -> Result<Node, Errno> {
        if n.synthetic {
            self.getattr(n.id)
        } else {
            Ok(n)
        }
    }

    /// `..` of `dir`: out of a mounted root to the parent of the directory it covers.
    fn parent_of(&self, dir: &Node) -> Result<Node, Errno> {
        let mut cur = *dir;
        for _ in 0..self.mounts.list.len() + 1 {
            match self.mounts.rooted_at(cur.id) {
                Some(m) if m.covers == m.root => return Ok(cur), // the root's parent is itself
                Some(m) => cur = self.getattr(m.covers)?,
                None => return self.fs_lookup(&cur, b".."),
            }
        }
        Err(Errno::ELOOP)
    }

    /// Follows mounts stacked on `node`.
    fn cross_down(&self, mut node: Node) -> Result<Node, Errno> {
        for _ in 0..self.mounts.list.len() {
            match self.mounts.covering(node.id) {
                Some(m) => node = self.getattr(m.root)?,
                None => break,
            }
        }
        Ok(node)
    }

    fn readlink(&self, link: &Node) -> Result<Vec<u8>, Errno> {
        let mut out = alloc::vec![0u8; PATH_MAX];
        let c = self.fs_call(link.id, fsp::READLINK, [link.id.0, PATH_MAX as u64, 0, 0, 0, 0], &[], &mut out, 0)?;
        out.truncate(c.result as usize);
        Ok(out)
    }

    /// Resolves `path` from `start` (0 = the root). The last component's symbolic link is
    /// followed if `follow` (or the path ends in '/').
    fn walk(&self, start: u64, path: &[u8], follow: bool, cred: Cred) -> Result<Walked, Errno> {
        let mut opened = None;
        self.walk_opening(start, path, follow, cred, None, true, &mut opened)
    }

    /// [`Vfs::walk`], and with `open` (a request id), the last lookup also takes an open
    /// reference on the file it finds (`fsp::LOOKUP_OPEN`): that node is left in `opened`
    /// when the walk ends there, for the caller to hand over or release. Released here when
    /// the walk goes on past it (a mount on it) or fails.
    #[allow(clippy::too_many_arguments)]
    fn walk_opening(
        &self,
        start: u64,
        path: &[u8],
        follow: bool,
        cred: Cred,
        open: Option<u64>,
        keep_name: bool,
        opened: &mut Option<Node>,
    ) -> Result<Walked, Errno> {
        let r = self.walk_inner(start, path, follow, cred, open, keep_name, opened);
        if r.is_err() {
            if let Some(n) = opened.take() {
                self.release_open(&n, open.unwrap_or(0));
            }
        }
        r
    }

    /// Gives back the open reference a walk took on `n` (`rid`: the walk's open id).
    fn release_open(&self, n: &Node, rid: u64) {
        let _ = self.fs_call(n.id, fsp::RELEASE, [n.id.0, 0, 0, 0, 0, 0], &[], &mut [], sub_rid(rid, 3));
    }

    /// The last lookup of a walk: with `open`, taking the open reference too.
    fn lookup_last(&self, dir: &Node, name: &[u8], open: Option<u64>) -> Result<(Node, bool), Errno> {
        let Some(rid) = open else { return self.fs_lookup(dir, name).map(|n| (n, false)) };
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        let args = [dir.id.0, name.len() as u64, fsp::LOOKUP_OPEN, 0, 0, 0];
        let c = self.fs_call(dir.id, fsp::LOOKUP, args, &[name], &mut out, rid)?;
        let attr = Attr::read_from_bytes(&out).map_err(|_| Errno::EIO)?;
        Ok((Node { id: attr.file_id(), attr, synthetic: false }, c.aux & fsp::LOOKUP_OPENED != 0))
    }

    /// `keep_name`: the `Found` of an existing last component carries its name (else an empty
    /// one, not allocated: the name of a component not found is always there).
    #[allow(clippy::too_many_arguments)]
    fn walk_inner(
        &self,
        start: u64,
        path: &[u8],
        follow: bool,
        cred: Cred,
        open: Option<u64>,
        keep_name: bool,
        opened: &mut Option<Node>,
    ) -> Result<Walked, Errno> {
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let trailing_slash = path.len() > 1 && path.ends_with(b"/");
        let first = if path.starts_with(b"/") || start == 0 {
            self.mounts.root().ok_or(Errno::ENOENT)?.root
        } else {
            FileId(start)
        };
        let mut cur = self.start_node(first, cred)?;
        let mut rest = Rest::new(path);
        let mut links = 0;
        let mut last: Option<(Node, Vec<u8>)> = None;
        while let Some((from, to)) = rest.next() {
            let comp = &rest.buf[from..to];
            let is_last = rest.is_done();
            if !cur.attr.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if !cred.may(cur.attr.mode, cur.attr.uid, cur.attr.gid, MAY_EXEC) {
                return Err(Errno::EACCES);
            }
            if comp.len() > abi::proto::NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            last = None;
            match comp {
                b"." => continue,
                b".." => {
                    cur = self.parent_of(&cur)?;
                    continue;
                }
                _ => {}
            }
            let found = if is_last {
                self.lookup_last(&cur, comp, open).map(|(n, took)| {
                    if took {
                        *opened = Some(n);
                    }
                    n
                })
            } else {
                self.lookup_passing(&cur, comp)
            };
            let child = match found {
                Ok(c) => {
                    let down = self.cross_down(c)?;
                    if down.id != c.id {
                        // A mount on it: the walk ends in the mounted root, not here.
                        if let Some(n) = opened.take() {
                            self.release_open(&n, open.unwrap_or(0));
                        }
                    }
                    down
                }
                Err(Errno::ENOENT) if is_last => {
                    return Ok(Walked::At(Found { parent: Some(cur), name: comp.to_vec(), node: None }));
                }
                Err(e) => return Err(e),
            };
            if child.id.server() == self.client {
                let mut rest = rest.remaining();
                if trailing_slash {
                    rest.push(b'/');
                }
                return Ok(Walked::Redirect { root: child.id, rest });
            }
            if child.attr.is_symlink() && (!is_last || follow || trailing_slash) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP);
                }
                let target = self.readlink(&child)?;
                if target.starts_with(b"/") {
                    cur = self.start_node(self.mounts.root().ok_or(Errno::ENOENT)?.root, cred)?;
                }
                rest.prepend(&target);
                continue;
            }
            if is_last {
                last = Some((cur, if keep_name { comp.to_vec() } else { Vec::new() }));
            }
            cur = child;
        }
        let cur = self.real(cur)?;
        if trailing_slash && !cur.attr.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(Walked::At(match last {
            Some((parent, name)) => Found { parent: Some(parent), name, node: Some(cur) },
            None => Found { parent: None, name: Vec::new(), node: Some(cur) },
        }))
    }

    /// A walk that must end in this VFS (no redirect), for operations on names.
    fn walk_local(&self, start: u64, path: &[u8], follow: bool, cred: Cred) -> Result<Found, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        match self.walk(start, path, follow, cred)? {
            Walked::At(found) => Ok(found),
            // Names inside /proc and /sys are the client's to create or remove: it has none.
            Walked::Redirect { .. } => Err(Errno::EPERM),
        }
    }

    fn may_change_dir(dir: &Node, cred: Cred) -> Result<(), Errno> {
        if cred.may(dir.attr.mode, dir.attr.uid, dir.attr.gid, MAY_WRITE | MAY_EXEC) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// The sticky-bit rule: in a sticky directory, only the owner of a file, the owner of the
    /// directory, or root may remove or rename it.
    fn sticky_ok(dir: &Node, victim: &Node, cred: Cred) -> Result<(), Errno> {
        if dir.attr.mode & S_ISVTX != 0 && cred.uid != 0 && cred.uid != victim.attr.uid && cred.uid != dir.attr.uid {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    fn is_mount_point(&self, n: &Node) -> bool {
        self.mounts.list.iter().skip(1).any(|m| m.covers == n.id || m.root == n.id)
    }

    /// The path of a request (at NAMES_AT of its grant).
    fn path(req: &Sqe, at: u64, len: u64) -> Result<Vec<u8>, Errno> {
        let mut path = Vec::new();
        Self::path_into(req, at, len, &mut path)?;
        Ok(path)
    }

    /// [`Vfs::path`] into `path` (its buffer reused).
    fn path_into(req: &Sqe, at: u64, len: u64, path: &mut Vec<u8>) -> Result<(), Errno> {
        if len as usize >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        path.clear();
        path.resize(len as usize, 0);
        kernel().grant_read(req.tag, NAMES_AT + at, path).map_err(|_| Errno::EFAULT)
    }

    fn put_attr(req: &Sqe, n: &Node) -> Result<i64, Errno> {
        grant_put(req.tag, 0, &n.attr).map_err(|_| Errno::EFAULT)?;
        Ok(n.id.0 as i64)
    }

    fn op_walk(&self, req: &Sqe, reply: &mut Cqe) -> Result<i64, Errno> {
        let open = (req.args[2] & proto::WALK_OPEN != 0).then_some(sub_rid(req.rid, 2));
        let mut opened = None;
        let r = self.walk_and_check(req, reply, open, &mut opened);
        if let Some(n) = opened {
            match r {
                Ok(_) => reply.aux |= proto::WALK_OPENED,
                Err(_) => self.release_open(&n, open.unwrap_or(0)),
            }
        }
        r
    }

    /// [`Vfs::walk_and_check_path`] with the request's path read into [`Vfs::path_buf`]
    /// (kept from request to request: a walk allocates no path).
    fn walk_and_check(
        &self,
        req: &Sqe,
        reply: &mut Cqe,
        open: Option<u64>,
        opened: &mut Option<Node>,
    ) -> Result<i64, Errno> {
        let mut path = self.path_buf.take();
        let r = Self::path_into(req, 0, req.args[1], &mut path)
            .and_then(|()| self.walk_and_check_path(req, reply, open, opened, &path));
        self.path_buf.replace(path);
        r
    }

    fn walk_and_check_path(
        &self,
        req: &Sqe,
        reply: &mut Cqe,
        open: Option<u64>,
        opened: &mut Option<Node>,
        path: &[u8],
    ) -> Result<i64, Errno> {
        let [start, _, flags, mode, cred, umask] = req.args;
        let cred = Cred::from_word(cred);
        if path.is_empty() {
            if flags & proto::WALK_EMPTY == 0 || start == 0 {
                return Err(Errno::ENOENT);
            }
            let n = self.getattr(FileId(start))?;
            return Self::put_attr(req, &n);
        }
        let follow = flags & proto::WALK_FOLLOW != 0;
        // The name of an existing file is needed only for its full path (`WALK_PATH`); that
        // of a missing one (to create it) is always kept.
        let keep_name = flags & proto::WALK_PATH != 0;
        let (parent, name, node) = match self.walk_opening(start, path, follow, cred, open, keep_name, opened)? {
            Walked::Redirect { root, rest } => {
                self.k.grant_write(req.tag, NAMES_AT, &rest).map_err(|_| Errno::EFAULT)?;
                reply.flags = proto::REDIRECT;
                reply.aux = rest.len() as u64;
                return Ok(root.0 as i64);
            }
            Walked::At(found) => (found.parent, found.name, found.node),
        };
        let node = match node {
            Some(n) => {
                if flags & proto::WALK_CREATE != 0 && flags & proto::WALK_EXCL != 0 {
                    // Unless this is the retry of the request that created it.
                    if self.recall(sub_rid(req.rid, 0)) != Some(n.id.0 as i64) {
                        return Err(Errno::EEXIST);
                    }
                    reply.aux = proto::WALK_CREATED;
                }
                n
            }
            None if flags & proto::WALK_CREATE != 0 => {
                let parent = self.real(parent.ok_or(Errno::ENOENT)?)?;
                if path.ends_with(b"/") {
                    return Err(Errno::EISDIR);
                }
                Self::may_change_dir(&parent, cred)?;
                let gid = if parent.attr.mode & 0o2000 != 0 { parent.attr.gid } else { cred.gid };
                let mode = S_IFREG | (mode as u32 & 0o7777 & !(umask as u32));
                let owner = Cred { uid: cred.uid, gid }.to_word();
                let mut out = [0u8; core::mem::size_of::<Attr>()];
                let args = [parent.id.0, name.len() as u64, mode as u64, 0, owner, 0];
                self.fs_call(parent.id, fsp::CREATE, args, &[&name], &mut out, sub_rid(req.rid, 0))?;
                let attr = Attr::read_from_bytes(&out).map_err(|_| Errno::EIO)?;
                reply.aux = proto::WALK_CREATED;
                let n = Node { id: attr.file_id(), attr, synthetic: false };
                return Self::put_attr(req, &n);
            }
            None => return Err(Errno::ENOENT),
        };
        let a = node.attr;
        if flags & proto::WALK_DIRECTORY != 0 && !a.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if flags & proto::WALK_WRITE != 0 && flags & proto::WALK_ACCESS == 0 && a.is_dir() {
            return Err(Errno::EISDIR);
        }
        let mut want = 0;
        if flags & proto::WALK_READ != 0 {
            want |= MAY_READ;
        }
        if flags & proto::WALK_WRITE != 0 {
            want |= MAY_WRITE;
        }
        if flags & proto::WALK_EXEC != 0 {
            want |= MAY_EXEC;
        }
        if want != 0 && !cred.may(a.mode, a.uid, a.gid, want) {
            return Err(Errno::EACCES);
        }
        if flags & proto::WALK_TRUNC != 0 && a.mode & S_IFMT == S_IFREG && a.size != 0 {
            if !cred.may(a.mode, a.uid, a.gid, MAY_WRITE) {
                return Err(Errno::EACCES);
            }
            // No times are set (SET_SIZE only): the SetTimes going in are zeros.
            let mut out = [0u8; core::mem::size_of::<Attr>()];
            let args = [node.id.0, fsp::SET_SIZE, 0, 0, 0, 0];
            self.fs_call_in_out(node.id, fsp::SETATTR, args, &mut out, sub_rid(req.rid, 1))?;
            let attr = Attr::read_from_bytes(&out[..core::mem::size_of::<Attr>()]).map_err(|_| Errno::EIO)?;
            return Self::put_attr(req, &Node { id: node.id, attr, synthetic: false });
        }
        if flags & proto::WALK_PATH != 0 {
            let mut full = match &parent {
                Some(p) => self.path_of(p)?,
                None => self.path_of(&node)?,
            };
            if parent.is_some() {
                if full != b"/" {
                    full.push(b'/');
                }
                full.extend_from_slice(&name);
            }
            if full.len() < PATH_MAX {
                self.k.grant_write(req.tag, NAMES_AT, &full).map_err(|_| Errno::EFAULT)?;
                reply.aux |= (full.len() as u64) << 8;
            }
        }
        Self::put_attr(req, &node)
    }

    /// Like `fs_call`, for a structure that goes in at offset 0 and comes back there.
    fn fs_call_in_out(
        &self,
        file: FileId,
        opcode: u32,
        args: [u64; 6],
        inout: &mut [u8],
        rid: u64,
    ) -> Result<Cqe, Errno> {
        let spec = self.k.servers().get(file.server()).ok_or(Errno::ESTALE)?;
        let mut buf = alloc::vec![0u8; NAMES_AT as usize];
        buf[..inout.len()].copy_from_slice(inout);
        let mut sqe = Sqe::new(opcode, args);
        sqe.rid = rid;
        sqe.grant = server_rt::grant(&buf, GRANT_READ | GRANT_WRITE);
        let c = self.endpoints.call(spec.name, &sqe, FS_ATTEMPTS).map_err(errno_of)?;
        inout.copy_from_slice(&buf[..inout.len()]);
        if c.result < 0 {
            return Err(Errno((-c.result) as i32));
        }
        Ok(c)
    }

    fn op_mknod(&self, req: &Sqe) -> Result<i64, Errno> {
        let [start, len, mode, rdev, cred, umask] = req.args;
        let cred = Cred::from_word(cred);
        let path = Self::path(req, 0, len)?;
        let Found { parent, name, node } = self.walk_local(start, &path, false, cred)?;
        if node.is_some() {
            return Err(Errno::EEXIST);
        }
        let parent = self.real(parent.ok_or(Errno::EEXIST)?)?;
        let mut mode = mode as u32;
        let kind = mode & S_IFMT;
        if path.ends_with(b"/") && kind != S_IFDIR {
            return Err(Errno::ENOENT);
        }
        if kind == 0 {
            mode |= S_IFREG;
        }
        mode = (mode & S_IFMT) | (mode & 0o7777 & !(umask as u32));
        Self::may_change_dir(&parent, cred)?;
        let gid = if parent.attr.mode & 0o2000 != 0 { parent.attr.gid } else { cred.gid };
        if kind == S_IFDIR && parent.attr.mode & 0o2000 != 0 {
            mode |= 0o2000;
        }
        let owner = Cred { uid: cred.uid, gid }.to_word();
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        let args = [parent.id.0, name.len() as u64, mode as u64, rdev, owner, 0];
        self.fs_call(parent.id, fsp::CREATE, args, &[&name], &mut out, req.rid)?;
        Ok(0)
    }

    fn op_unlink(&self, req: &Sqe) -> Result<i64, Errno> {
        let [start, len, flags, cred, ..] = req.args;
        let cred = Cred::from_word(cred);
        let path = Self::path(req, 0, len)?;
        let rmdir = flags & fsp::UNLINK_DIR != 0;
        if rmdir {
            match split(&path).back().map(|c| c.as_slice()) {
                Some(b".") => return Err(Errno::EINVAL),
                Some(b"..") => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        let Found { parent, name, node } = self.walk_local(start, &path, false, cred)?;
        let node = node.ok_or(Errno::ENOENT)?;
        let Some(parent) = parent else { return Err(if rmdir { Errno::EBUSY } else { Errno::EISDIR }) };
        if !rmdir && path.ends_with(b"/") {
            return Err(if node.attr.is_dir() { Errno::EISDIR } else { Errno::ENOTDIR });
        }
        Self::may_change_dir(&parent, cred)?;
        Self::sticky_ok(&parent, &node, cred)?;
        if self.is_mount_point(&node) {
            return Err(Errno::EBUSY);
        }
        self.fs_call(
            parent.id,
            fsp::UNLINK,
            [parent.id.0, name.len() as u64, flags, 0, 0, 0],
            &[&name],
            &mut [],
            req.rid,
        )?;
        Ok(0)
    }

    fn op_rename(&self, req: &Sqe) -> Result<i64, Errno> {
        let [old_start, new_start, old_len, new_len, flags, cred] = req.args;
        let cred = Cred::from_word(cred);
        let old = Self::path(req, 0, old_len)?;
        let new = Self::path(req, old_len, new_len)?;
        let Found { parent: op, name: oname, node: onode } = self.walk_local(old_start, &old, false, cred)?;
        let onode = onode.ok_or(Errno::ENOENT)?;
        let Found { parent: np, name: nname, node: nnode } = self.walk_local(new_start, &new, false, cred)?;
        let (Some(op), Some(np)) = (op, np) else { return Err(Errno::EBUSY) };
        if op.id.server() != np.id.server() || op.id.volume() != np.id.volume() {
            return Err(Errno::EXDEV);
        }
        if (old.ends_with(b"/") || new.ends_with(b"/")) && !onode.attr.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Self::may_change_dir(&op, cred)?;
        Self::may_change_dir(&np, cred)?;
        Self::sticky_ok(&op, &onode, cred)?;
        if let Some(n) = &nnode {
            Self::sticky_ok(&np, n, cred)?;
            if self.is_mount_point(n) {
                return Err(Errno::EBUSY);
            }
        }
        if self.is_mount_point(&onode) {
            return Err(Errno::EBUSY);
        }
        let args = [op.id.0, np.id.0, oname.len() as u64, nname.len() as u64, flags, 0];
        self.fs_call(op.id, fsp::RENAME, args, &[&oname, &nname], &mut [], req.rid)?;
        Ok(0)
    }

    fn op_link(&self, req: &Sqe) -> Result<i64, Errno> {
        let [old_start, new_start, old_len, new_len, flags, cred] = req.args;
        let cred = Cred::from_word(cred);
        let old = Self::path(req, 0, old_len)?;
        let new = Self::path(req, old_len, new_len)?;
        let Found { node: onode, .. } = self.walk_local(old_start, &old, flags & proto::WALK_FOLLOW != 0, cred)?;
        let onode = onode.ok_or(Errno::ENOENT)?;
        let Found { parent: np, name: nname, node: nnode } = self.walk_local(new_start, &new, false, cred)?;
        if nnode.is_some() {
            return Err(Errno::EEXIST);
        }
        let np = np.ok_or(Errno::EEXIST)?;
        if onode.attr.is_dir() {
            return Err(Errno::EPERM);
        }
        if onode.id.server() != np.id.server() || onode.id.volume() != np.id.volume() {
            return Err(Errno::EXDEV);
        }
        Self::may_change_dir(&np, cred)?;
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        self.fs_call(
            np.id,
            fsp::LINK,
            [onode.id.0, np.id.0, nname.len() as u64, 0, 0, 0],
            &[&nname],
            &mut out,
            req.rid,
        )?;
        Ok(0)
    }

    fn op_symlink(&self, req: &Sqe) -> Result<i64, Errno> {
        let [start, len, target_len, cred, ..] = req.args;
        let cred = Cred::from_word(cred);
        let path = Self::path(req, 0, len)?;
        let target = Self::path(req, len, target_len)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let Found { parent, name, node } = self.walk_local(start, &path, false, cred)?;
        if node.is_some() {
            return Err(Errno::EEXIST);
        }
        let parent = parent.ok_or(Errno::EEXIST)?;
        Self::may_change_dir(&parent, cred)?;
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        let args = [parent.id.0, name.len() as u64, target.len() as u64, cred.to_word(), 0, 0];
        self.fs_call(parent.id, fsp::SYMLINK, args, &[&name, &target], &mut out, req.rid)?;
        Ok(0)
    }

    /// The absolute path of directory `dir`, climbing `..` (and out of mounted roots) and asking
    /// each parent for the child's name.
    fn path_of(&self, dir: &Node) -> Result<Vec<u8>, Errno> {
        let mut cur = *dir;
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for _ in 0..PATH_MAX / 2 {
            if let Some(m) = self.mounts.rooted_at(cur.id) {
                if m.covers == m.root {
                    break; // the root
                }
                cur = self.getattr(m.covers)?;
                continue;
            }
            let parent = self.fs_lookup(&cur, b"..")?;
            if parent.id == cur.id {
                break;
            }
            let mut out = alloc::vec![0u8; NAMES_AT as usize + abi::proto::NAME_MAX + 1];
            let c = self.fs_call(parent.id, fsp::NAME_OF, [parent.id.0, cur.id.0, 0, 0, 0, 0], &[], &mut out, 0)?;
            let n = (c.result as usize).min(abi::proto::NAME_MAX);
            parts.push(out[NAMES_AT as usize..NAMES_AT as usize + n].to_vec());
            cur = parent;
        }
        let mut path = Vec::new();
        for p in parts.iter().rev() {
            path.push(b'/');
            path.extend_from_slice(p);
        }
        if path.is_empty() {
            path.push(b'/');
        }
        Ok(path)
    }

    fn op_getpath(&self, req: &Sqe) -> Result<i64, Errno> {
        let dir = self.getattr(FileId(req.args[0]))?;
        let path = self.path_of(&dir)?;
        if path.len() as u64 > req.grant.len {
            return Err(Errno::ERANGE);
        }
        self.k.grant_write(req.tag, 0, &path).map_err(|_| Errno::EFAULT)?;
        Ok(path.len() as i64)
    }

    fn save(&self) {
        let bytes = self.mounts.encode();
        if bytes.len() as u64 > self.k.state_size() {
            log!("vfs: mount table too large for the state area");
            return;
        }
        if let Err(e) = self.k.state_commit(&[StateWrite::Bytes { offset: 0, data: &bytes }]) {
            log!("vfs: cannot save the mount table: {e}");
        }
    }

    fn op_mount(&mut self, req: &Sqe) -> Result<i64, Errno> {
        let [fstype, flags, source_len, target_len, cred, ..] = req.args;
        let cred = Cred::from_word(cred);
        if cred.uid != 0 {
            return Err(Errno::EPERM);
        }
        let source = Self::path(req, 0, source_len)?;
        let target = Self::path(req, source_len, target_len)?;
        let found = match self.walk_local(0, &target, true, cred) {
            // The target is the root of a `linux`-served mount (/proc, /sys): another mount of
            // the same kind stacks on it, as on Linux (same contents, listed twice).
            Err(Errno::EPERM) if matches!(fstype, proto::FSTYPE_PROC | proto::FSTYPE_SYSFS) => {
                let same = self.mounts.list.iter().rev().find(|m| m.fstype == fstype && m.target.as_bytes() == target);
                let Some(m) = same else { return Err(Errno::EPERM) };
                let stacked = Mount { source: String::from_utf8_lossy(&source).into_owned(), flags, ..m.clone() };
                self.mounts.list.push(stacked);
                self.save();
                return Ok(0);
            }
            r => r?,
        };
        let node = found.node.ok_or(Errno::ENOENT)?;
        if !node.attr.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let root = match fstype {
            proto::FSTYPE_TMPFS | proto::FSTYPE_DEVTMPFS => {
                let ramfs = self.k.servers().iter().position(|s| s.name == "ramfs").ok_or(Errno::ENODEV)?;
                let mut out = [0u8; core::mem::size_of::<Attr>()];
                let c = self.fs_call(
                    FileId::new(ramfs, 0, 0),
                    fsp::MOUNT,
                    [fsp::MOUNT_TMPFS, flags, 0, 0, 0, 0],
                    &[],
                    &mut out,
                    req.rid,
                )?;
                FileId(c.result as u64)
            }
            proto::FSTYPE_PROC | proto::FSTYPE_SYSFS => FileId::new(self.client, fstype as u32, 1),
            proto::FSTYPE_EXT2 => self.mount_device(&source, flags, req.rid)?,
            _ => return Err(Errno::ENODEV),
        };
        let target = String::from_utf8_lossy(&self.path_of(&node).unwrap_or(target)).into_owned();
        self.mounts.list.push(Mount {
            fstype,
            flags,
            root,
            covers: node.id,
            source: String::from_utf8_lossy(&source).into_owned(),
            target,
        });
        self.save();
        Ok(0)
    }

    /// Asks the disk file-system server to mount the file system on device `source`
    /// (`/dev/vda`; the caller checked that it names the disk); its root.
    fn mount_device(&self, source: &[u8], flags: u64, rid: u64) -> Result<FileId, Errno> {
        let ext2 = self.k.servers().iter().position(|s| s.name == "ext2").ok_or(Errno::ENODEV)?;
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        let args = [fsp::MOUNT_DEVICE, flags, source.len() as u64, 0, 0, 0];
        let c = self.fs_call(FileId::new(ext2, 0, 0), fsp::MOUNT, args, &[source], &mut out, rid)?;
        Ok(FileId(c.result as u64))
    }

    fn op_umount(&mut self, req: &Sqe) -> Result<i64, Errno> {
        let [len, _flags, cred, ..] = req.args;
        let cred = Cred::from_word(cred);
        if cred.uid != 0 {
            return Err(Errno::EPERM);
        }
        let path = Self::path(req, 0, len)?;
        let root = match self.walk(0, &path, true, cred)? {
            Walked::At(found) if found.node.is_some() => found.node.map_or(FileId(0), |n| n.id),
            Walked::Redirect { root, rest } if rest.is_empty() => root,
            _ => return Err(Errno::EINVAL),
        };
        let i = self.mounts.list.iter().position(|m| m.root == root).ok_or(Errno::EINVAL)?;
        if i == 0 {
            return Err(Errno::EBUSY);
        }
        let m = self.mounts.list[i].clone();
        // Mounts inside it must go first.
        if self
            .mounts
            .list
            .iter()
            .any(|o| o.covers.server() == m.root.server() && o.covers.volume() == m.root.volume() && o.root != m.root)
        {
            return Err(Errno::EBUSY);
        }
        if m.root.server() != self.client {
            self.fs_call(m.root, fsp::UMOUNT, [m.root.0, 0, 0, 0, 0, 0], &[], &mut [], req.rid)?;
        }
        self.mounts.list.remove(i);
        self.save();
        Ok(0)
    }

    fn op_mounts(&self, req: &Sqe) -> Result<i64, Errno> {
        let mut text = String::new();
        for m in &self.mounts.list {
            let ro = if m.flags & 1 != 0 { "ro" } else { "rw" };
            text.push_str(&alloc::format!(
                "{} {} {} {},relatime 0 0\n",
                m.source,
                m.target,
                proto::fstype_name(m.fstype),
                ro
            ));
        }
        let n = text.len().min(req.grant.len as usize);
        self.k.grant_write(req.tag, 0, &text.as_bytes()[..n]).map_err(|_| Errno::EFAULT)?;
        Ok(n as i64)
    }

    fn handle(&mut self, req: &Sqe, reply: &mut Cqe) -> Result<i64, Errno> {
        if !matches!(req.opcode, proto::WALK | proto::GETPATH | proto::MOUNTS | proto::MOUNTPOINT_OF) {
            // It may change names or mounts (FORGET: modes or owners).
            self.forget_dirs();
        }
        match req.opcode {
            proto::WALK => self.op_walk(req, reply),
            proto::MKNOD | proto::UNLINK | proto::RENAME | proto::LINK | proto::SYMLINK => {
                let done = match req.opcode {
                    proto::MKNOD => self.op_mknod(req),
                    proto::UNLINK => self.op_unlink(req),
                    proto::RENAME => self.op_rename(req),
                    proto::LINK => self.op_link(req),
                    _ => self.op_symlink(req),
                };
                // A retry after this server's death finds the change already made (the name
                // gone, or there) if the file system applied it before the dead instance
                // answered: then the answer is the file system's record, not the error.
                match done {
                    Err(e) if e == Errno::ENOENT || e == Errno::EEXIST => self.recall(req.rid).map(|_| 0).ok_or(e),
                    other => other,
                }
            }
            proto::GETPATH => self.op_getpath(req),
            proto::MOUNT => self.op_mount(req),
            proto::UMOUNT => self.op_umount(req),
            proto::MOUNTS => self.op_mounts(req),
            proto::MOUNTPOINT_OF => match self.mounts.rooted_at(FileId(req.args[0])) {
                Some(m) if m.covers != m.root => {
                    reply.aux = m.covers.0;
                    Ok(1)
                }
                _ => Ok(0),
            },
            proto::FORGET => Ok(0),
            _ => Err(Errno::ENOSYS),
        }
    }
}

/// The attributes of a pseudo file system's root (the client fills in the rest itself).
fn pseudo_root_attr(file: FileId) -> Attr {
    Attr { file: file.0, mode: S_IFDIR | 0o555, nlink: 2, blksize: 4096, ..Default::default() }
}

/// What a walk has still to go through: a path and a position in it. A symbolic link's
/// target takes the place of what was walked, so components are slices, not allocations.
struct Rest<'a> {
    buf: alloc::borrow::Cow<'a, [u8]>,
    at: usize,
}

impl<'a> Rest<'a> {
    fn new(path: &'a [u8]) -> Rest<'a> {
        Rest { buf: alloc::borrow::Cow::Borrowed(path), at: 0 }
    }

    /// The next component, as a range of `buf` (slashes skipped).
    fn next(&mut self) -> Option<(usize, usize)> {
        let tail = self.buf.get(self.at..)?;
        let from = self.at + tail.iter().position(|&b| b != b'/')?;
        let to = self.buf[from..].iter().position(|&b| b == b'/').map_or(self.buf.len(), |n| from + n);
        self.at = to;
        Some((from, to))
    }

    /// Whether no component is left.
    fn is_done(&self) -> bool {
        self.buf.get(self.at..).is_none_or(|t| t.iter().all(|&b| b == b'/'))
    }

    /// `target`, then what is left.
    fn prepend(&mut self, target: &[u8]) {
        let mut buf = Vec::with_capacity(target.len() + 1 + self.buf.len() - self.at);
        buf.extend_from_slice(target);
        buf.push(b'/');
        buf.extend_from_slice(&self.buf[self.at..]);
        *self = Rest { buf: alloc::borrow::Cow::Owned(buf), at: 0 };
    }

    /// What is left, components joined by single slashes.
    fn remaining(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in self.buf[self.at..].split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(c);
        }
        out
    }
}

fn split(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty()).map(|c| c.to_vec()).collect()
}

/// The disk, as `root=` names it (the one virtio-blk device the `blk` server drives).
const ROOT_DEVICE: &str = "/dev/vda";

/// Server entry: the mount table from the state area, or a fresh one with the initramfs as
/// the root.
pub fn main() {
    let k = kernel();
    let client = k.servers().iter().position(|s| s.user_memory).unwrap_or(usize::MAX);
    let mut state = alloc::vec![0u8; k.state_size().min(64 * 1024) as usize];
    let _ = k.state_read(0, &mut state);
    let mounts = match Mounts::decode(&state) {
        Some(m) if !m.list.is_empty() => {
            log!("vfs: {} mount(s) carried over from the previous instance", m.list.len());
            m
        }
        _ => Mounts::default(),
    };
    let mut vfs = Vfs {
        k,
        mounts,
        client,
        endpoints: Default::default(),
        dirs: RefCell::new(Vec::new()),
        path_buf: RefCell::new(Vec::new()),
        scratch: Default::default(),
    };
    // `root=/dev/vda`: the root file system is the disk's (the initramfs if it cannot be
    // mounted, as a rescue system).
    if vfs.mounts.list.is_empty() && k.cmdline_get("root") == Some(ROOT_DEVICE) {
        match vfs.mount_device(ROOT_DEVICE.as_bytes(), 0, 0) {
            Ok(root) => {
                vfs.mounts.list.push(Mount {
                    fstype: proto::FSTYPE_EXT2,
                    flags: 0,
                    root,
                    covers: root,
                    source: ROOT_DEVICE.into(),
                    target: "/".into(),
                });
                vfs.save();
                log!("vfs: root file system: ext2 on {ROOT_DEVICE}");
            }
            Err(e) => log!("vfs: cannot mount {ROOT_DEVICE} as the root: errno {}; using the initramfs", e.0),
        }
    }
    if vfs.mounts.list.is_empty() {
        let ramfs = k.servers().iter().position(|s| s.name == "ramfs").unwrap_or(usize::MAX);
        let mut out = [0u8; core::mem::size_of::<Attr>()];
        match vfs.fs_call(FileId::new(ramfs, 0, 0), fsp::MOUNT, [fsp::MOUNT_INITRAMFS, 0, 0, 0, 0, 0], &[], &mut out, 0)
        {
            Ok(c) => {
                let root = FileId(c.result as u64);
                vfs.mounts.list.push(Mount {
                    fstype: proto::FSTYPE_TMPFS,
                    flags: 0,
                    root,
                    covers: root,
                    source: "rootfs".into(),
                    target: "/".into(),
                });
                vfs.save();
            }
            Err(e) => log!("vfs: no root file system: errno {}", e.0),
        }
    }
    let mut req = k.receive().unwrap_or_else(|e| panic!("vfs: receive failed: {e}"));
    loop {
        if req.is_notification() {
            req = k.receive().unwrap_or_else(|e| panic!("vfs: receive failed: {e}"));
            continue;
        }
        let mut reply = Cqe::new(req.tag, 0);
        reply.result = vfs.handle(&req, &mut reply).unwrap_or_else(|e| e.as_return());
        req = k.reply_and_receive(&reply).unwrap_or_else(|e| panic!("vfs: receive failed: {e}"));
    }
}
