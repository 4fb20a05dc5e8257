//! One in-memory file system (a volume): inodes in a table, directories as ordered maps with
//! stable cookies, file contents as byte vectors. Pure logic with Linux's semantics and errno
//! values, host-tested; no paths (the VFS walks them), no permissions (the VFS checks them),
//! no processes.
//!
//! Invariants: inode 1 is the root and its own parent; a directory's `nlink` is 2 plus its
//! subdirectories; an inode is freed when its last name is gone *and* no open file refers to
//! it (`opens`), so an unlinked open file stays readable; readdir cookies are per-directory
//! insertion numbers, so entries removed or added while a reader walks the directory never
//! make it skip or repeat the others.

use abi::proto::{dtype_of, Timespec, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

pub type Ino = u64;
pub const ROOT: Ino = 1;
/// Cookies 0 and 1 are "." and ".."; entries count from here.
const FIRST_COOKIE: u64 = 2;

#[derive(Default)]
pub struct Dir {
    by_name: BTreeMap<Vec<u8>, (u64, Ino)>,
    by_cookie: BTreeMap<u64, Vec<u8>>,
    next_cookie: u64,
}

impl Dir {
    fn new() -> Dir {
        Dir { next_cookie: FIRST_COOKIE, ..Default::default() }
    }

    pub fn get(&self, name: &[u8]) -> Option<Ino> {
        self.by_name.get(name).map(|&(_, ino)| ino)
    }

    fn insert(&mut self, name: &[u8], ino: Ino) {
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        self.by_name.insert(name.to_vec(), (cookie, ino));
        self.by_cookie.insert(cookie, name.to_vec());
    }

    fn remove(&mut self, name: &[u8]) -> Option<Ino> {
        let (cookie, ino) = self.by_name.remove(name)?;
        self.by_cookie.remove(&cookie);
        Some(ino)
    }

    /// Points an existing name at another inode, keeping its cookie.
    fn replace(&mut self, name: &[u8], ino: Ino) {
        if let Some(e) = self.by_name.get_mut(name) {
            e.1 = ino;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }
}

pub enum Content {
    Dir(Dir),
    File(Vec<u8>),
    Symlink(Vec<u8>),
    /// Devices, FIFOs, sockets: only attributes.
    Special,
}

pub struct Node {
    pub content: Content,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub rdev: u64,
    /// Open file descriptions referring to it.
    pub opens: u32,
    /// For directories: the parent (`..`).
    pub parent: Ino,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Node {
    pub fn size(&self) -> u64 {
        match &self.content {
            Content::File(d) | Content::Symlink(d) => d.len() as u64,
            Content::Dir(d) => 4096.max(d.len() as u64 * 32).next_multiple_of(4096),
            Content::Special => 0,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.content, Content::Dir(_))
    }
}

/// What SETATTR changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Change {
    pub mode: Option<u32>,
    pub owner: Option<(u32, u32)>,
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
    pub touch_ctime: bool,
}

pub struct Tree {
    nodes: Vec<Option<Node>>,
    free: Vec<Ino>,
    /// Bytes of file contents held (for statfs and the size limit).
    pub bytes: u64,
    /// The most file contents this volume may hold (ENOSPC beyond).
    pub limit: u64,
}

pub fn name_ok(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if name.len() > abi::proto::NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

impl Tree {
    pub fn new(now: Timespec, limit: u64) -> Tree {
        let root = Node {
            content: Content::Dir(Dir::new()),
            mode: S_IFDIR | 0o755,
            uid: 0,
            gid: 0,
            nlink: 2,
            rdev: 0,
            opens: 0,
            parent: ROOT,
            atime: now,
            mtime: now,
            ctime: now,
        };
        Tree { nodes: alloc::vec![None, Some(root)], free: Vec::new(), bytes: 0, limit }
    }

    pub fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.nodes.get(ino as usize).and_then(|n| n.as_ref()).ok_or(Errno::ESTALE)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(ino as usize).and_then(|n| n.as_mut()).ok_or(Errno::ESTALE)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir, Errno> {
        match &self.node(ino)?.content {
            Content::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir, Errno> {
        match &mut self.node_mut(ino)?.content {
            Content::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// Inodes in use.
    pub fn inodes(&self) -> u64 {
        (self.nodes.len() - 1 - self.free.len()) as u64
    }

    pub fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
        match name {
            b"." => {
                self.dir(dir)?;
                Ok(dir)
            }
            b".." => {
                self.dir(dir)?;
                Ok(self.node(dir)?.parent)
            }
            _ => self.dir(dir)?.get(name).ok_or(Errno::ENOENT),
        }
    }

    fn alloc(&mut self, node: Node) -> Ino {
        match self.free.pop() {
            Some(ino) => {
                self.nodes[ino as usize] = Some(node);
                ino
            }
            None => {
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as Ino
            }
        }
    }

    /// Frees `ino` if nothing names it and nothing has it open.
    fn maybe_free(&mut self, ino: Ino) {
        let Ok(n) = self.node(ino) else { return };
        if n.nlink == 0 && n.opens == 0 && ino != ROOT {
            if let Some(Some(n)) = self.nodes.get_mut(ino as usize).map(core::mem::take) {
                if let Content::File(d) = &n.content {
                    self.bytes -= d.len() as u64;
                }
            }
            self.free.push(ino);
        }
    }

    fn touch_dir(&mut self, dir: Ino, now: Timespec) {
        if let Ok(d) = self.node_mut(dir) {
            d.mtime = now;
            d.ctime = now;
        }
    }

    /// Adds a new inode under `name` in `dir`. `mode` carries the type.
    pub fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        rdev: u64,
        owner: (u32, u32),
        now: Timespec,
    ) -> Result<Ino, Errno> {
        self.make(dir, name, mode, rdev, owner, now, Vec::new())
    }

    #[allow(clippy::too_many_arguments)]
    fn make(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        rdev: u64,
        owner: (u32, u32),
        now: Timespec,
        data: Vec<u8>,
    ) -> Result<Ino, Errno> {
        name_ok(name)?;
        if self.node(dir)?.nlink == 0 {
            return Err(Errno::ENOENT); // a removed directory takes no new entries
        }
        if self.dir(dir)?.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let content = match mode & S_IFMT {
            S_IFDIR => Content::Dir(Dir::new()),
            S_IFREG => Content::File(Vec::new()),
            S_IFLNK => Content::Symlink(data),
            0 => return Err(Errno::EINVAL),
            _ => Content::Special,
        };
        let is_dir = matches!(content, Content::Dir(_));
        let ino = self.alloc(Node {
            content,
            mode,
            uid: owner.0,
            gid: owner.1,
            nlink: if is_dir { 2 } else { 1 },
            rdev,
            opens: 0,
            parent: dir,
            atime: now,
            mtime: now,
            ctime: now,
        });
        self.dir_mut(dir)?.insert(name, ino);
        if is_dir {
            self.node_mut(dir)?.nlink += 1;
        }
        self.touch_dir(dir, now);
        Ok(ino)
    }

    pub fn symlink(
        &mut self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        owner: (u32, u32),
        now: Timespec,
    ) -> Result<Ino, Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= abi::proto::PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.make(dir, name, S_IFLNK | 0o777, 0, owner, now, target.to_vec())
    }

    pub fn readlink(&self, ino: Ino) -> Result<&[u8], Errno> {
        match &self.node(ino)?.content {
            Content::Symlink(t) => Ok(t),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8], now: Timespec) -> Result<(), Errno> {
        name_ok(name)?;
        let n = self.node(ino)?;
        if n.is_dir() {
            return Err(Errno::EPERM);
        }
        if n.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if n.nlink >= 65000 {
            return Err(Errno::EMLINK);
        }
        if self.dir(dir)?.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        self.dir_mut(dir)?.insert(name, ino);
        let n = self.node_mut(ino)?;
        n.nlink += 1;
        n.ctime = now;
        self.touch_dir(dir, now);
        Ok(())
    }

    /// Removes `name` from `dir` (a directory only with `want_dir`, and only when empty).
    pub fn unlink(&mut self, dir: Ino, name: &[u8], want_dir: bool, now: Timespec) -> Result<Ino, Errno> {
        if name == b"." {
            return Err(Errno::EINVAL);
        }
        if name == b".." {
            return Err(Errno::ENOTEMPTY);
        }
        let ino = self.dir(dir)?.get(name).ok_or(Errno::ENOENT)?;
        let n = self.node(ino)?;
        match (&n.content, want_dir) {
            (Content::Dir(d), true) if !d.is_empty() => return Err(Errno::ENOTEMPTY),
            (Content::Dir(_), false) => return Err(Errno::EISDIR),
            (c, true) if !matches!(c, Content::Dir(_)) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        self.dir_mut(dir)?.remove(name);
        let n = self.node_mut(ino)?;
        n.ctime = now;
        if want_dir {
            n.nlink = 0;
            self.node_mut(dir)?.nlink -= 1;
        } else {
            n.nlink = n.nlink.saturating_sub(1);
        }
        self.touch_dir(dir, now);
        self.maybe_free(ino);
        Ok(ino)
    }

    /// Whether `inner` is `dir` or below it.
    fn is_within(&self, mut inner: Ino, dir: Ino) -> bool {
        for _ in 0..self.nodes.len() {
            if inner == dir {
                return true;
            }
            if inner == ROOT {
                return false;
            }
            inner = self.node(inner).map_or(ROOT, |n| n.parent);
        }
        false
    }

    /// rename(2) and renameat2's NOREPLACE/EXCHANGE.
    pub fn rename(
        &mut self,
        from_dir: Ino,
        from: &[u8],
        to_dir: Ino,
        to: &[u8],
        flags: u64,
        now: Timespec,
    ) -> Result<(), Errno> {
        use abi::proto::fs::{RENAME_EXCHANGE, RENAME_NOREPLACE};
        if flags & !(RENAME_EXCHANGE | RENAME_NOREPLACE) != 0 || flags == RENAME_EXCHANGE | RENAME_NOREPLACE {
            return Err(Errno::EINVAL);
        }
        for n in [from, to] {
            if matches!(n, b"." | b"..") {
                return Err(Errno::EBUSY);
            }
        }
        name_ok(to)?;
        let ino = self.dir(from_dir)?.get(from).ok_or(Errno::ENOENT)?;
        self.dir(to_dir)?;
        let is_dir = self.node(ino)?.is_dir();
        let existing = self.dir(to_dir)?.get(to);
        if flags & RENAME_EXCHANGE != 0 {
            let other = existing.ok_or(Errno::ENOENT)?;
            let other_dir = self.node(other)?.is_dir();
            if (is_dir && self.is_within(to_dir, ino)) || (other_dir && self.is_within(from_dir, other)) {
                return Err(Errno::EINVAL);
            }
            self.dir_mut(from_dir)?.replace(from, other);
            self.dir_mut(to_dir)?.replace(to, ino);
            if from_dir != to_dir {
                self.reparent(ino, is_dir, from_dir, to_dir)?;
                self.reparent(other, other_dir, to_dir, from_dir)?;
            }
            for i in [ino, other] {
                self.node_mut(i)?.ctime = now;
            }
            self.touch_dir(from_dir, now);
            self.touch_dir(to_dir, now);
            return Ok(());
        }
        if is_dir && self.is_within(to_dir, ino) {
            return Err(Errno::EINVAL); // a directory cannot move below itself
        }
        if let Some(e) = existing {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if e == ino {
                return Ok(()); // two names of one file: nothing happens
            }
            match (is_dir, self.node(e)?.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.dir(e)?.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            self.unlink(to_dir, to, is_dir, now)?;
        }
        self.dir_mut(from_dir)?.remove(from);
        self.dir_mut(to_dir)?.insert(to, ino);
        if from_dir != to_dir {
            self.reparent(ino, is_dir, from_dir, to_dir)?;
        }
        self.node_mut(ino)?.ctime = now;
        self.touch_dir(from_dir, now);
        self.touch_dir(to_dir, now);
        Ok(())
    }

    fn reparent(&mut self, ino: Ino, is_dir: bool, from_dir: Ino, to_dir: Ino) -> Result<(), Errno> {
        if is_dir {
            self.node_mut(ino)?.parent = to_dir;
            self.node_mut(from_dir)?.nlink -= 1;
            self.node_mut(to_dir)?.nlink += 1;
        }
        Ok(())
    }

    pub fn read(&self, ino: Ino, offset: u64, len: usize) -> Result<&[u8], Errno> {
        match &self.node(ino)?.content {
            Content::File(d) => {
                let start = (offset.min(d.len() as u64)) as usize;
                let end = start.saturating_add(len).min(d.len());
                Ok(&d[start..end])
            }
            Content::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Writes `data` at `offset` (at the end with `append`); returns the offset after it.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8], append: bool, now: Timespec) -> Result<u64, Errno> {
        let (limit, used) = (self.limit, self.bytes);
        let n = self.node_mut(ino)?;
        let Content::File(d) = &mut n.content else {
            return Err(if n.is_dir() { Errno::EISDIR } else { Errno::EINVAL });
        };
        let at = if append { d.len() as u64 } else { offset };
        let end = at.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > (1 << 40) {
            return Err(Errno::EFBIG);
        }
        let grow = end.saturating_sub(d.len() as u64);
        if used + grow > limit {
            return Err(Errno::ENOSPC);
        }
        if grow > 0 {
            d.try_reserve(grow as usize).map_err(|_| Errno::ENOSPC)?;
            d.resize(end as usize, 0);
        }
        d[at as usize..end as usize].copy_from_slice(data);
        n.mtime = now;
        n.ctime = now;
        self.bytes += grow;
        Ok(end)
    }

    pub fn setattr(&mut self, ino: Ino, c: &Change, now: Timespec) -> Result<(), Errno> {
        let (limit, used) = (self.limit, self.bytes);
        let n = self.node_mut(ino)?;
        let mut delta: i64 = 0;
        if let Some(size) = c.size {
            let Content::File(d) = &mut n.content else {
                return Err(if n.is_dir() { Errno::EISDIR } else { Errno::EINVAL });
            };
            if size > (1 << 40) {
                return Err(Errno::EFBIG);
            }
            let old = d.len() as u64;
            if size > old && used + (size - old) > limit {
                return Err(Errno::ENOSPC);
            }
            if size > old {
                d.try_reserve((size - old) as usize).map_err(|_| Errno::ENOSPC)?;
            }
            d.resize(size as usize, 0);
            if size < old {
                d.shrink_to(size as usize);
            }
            delta = size as i64 - old as i64;
            if size != old || c.mtime.is_none() {
                n.mtime = now;
            }
            n.ctime = now;
        }
        if let Some(mode) = c.mode {
            n.mode = (n.mode & S_IFMT) | (mode & 0o7777);
            n.ctime = now;
        }
        if let Some((uid, gid)) = c.owner {
            if uid != u32::MAX {
                n.uid = uid;
            }
            if gid != u32::MAX {
                n.gid = gid;
            }
            n.ctime = now;
        }
        if let Some(t) = c.atime {
            n.atime = t;
            n.ctime = now;
        }
        if let Some(t) = c.mtime {
            n.mtime = t;
            n.ctime = now;
        }
        if c.touch_ctime {
            n.ctime = now;
        }
        self.bytes = (self.bytes as i64 + delta) as u64;
        Ok(())
    }

    /// Calls `f(ino, next_cookie, dtype, name)` for entries from `cookie` on, while it
    /// returns true.
    pub fn readdir(&self, dir: Ino, cookie: u64, mut f: impl FnMut(Ino, u64, u8, &[u8]) -> bool) -> Result<(), Errno> {
        let d = self.dir(dir)?;
        if cookie == 0 && !f(dir, 1, 4, b".") {
            return Ok(());
        }
        if cookie <= 1 && !f(self.node(dir)?.parent, FIRST_COOKIE, 4, b"..") {
            return Ok(());
        }
        let mut entries = d.by_cookie.range(cookie.max(FIRST_COOKIE)..).peekable();
        while let Some((_, name)) = entries.next() {
            let next = entries.peek().map_or(d.next_cookie, |(c, _)| **c);
            let ino = d.get(name).unwrap_or(0);
            let dtype = self.node(ino).map_or(0, |n| dtype_of(n.mode));
            if !f(ino, next, dtype, name) {
                break;
            }
        }
        Ok(())
    }

    /// The name of `child` in `dir`.
    pub fn name_of(&self, dir: Ino, child: Ino) -> Result<&[u8], Errno> {
        self.dir(dir)?.by_name.iter().find(|(_, &(_, i))| i == child).map(|(n, _)| n.as_slice()).ok_or(Errno::ENOENT)
    }

    pub fn open(&mut self, ino: Ino) -> Result<(), Errno> {
        self.node_mut(ino)?.opens += 1;
        Ok(())
    }

    pub fn release(&mut self, ino: Ino) -> Result<(), Errno> {
        let n = self.node_mut(ino)?;
        n.opens = n.opens.saturating_sub(1);
        self.maybe_free(ino);
        Ok(())
    }

    /// Whether any file of the volume is open.
    pub fn busy(&self) -> bool {
        self.nodes.iter().flatten().any(|n| n.opens > 0)
    }

    /// Creates `path` (and missing parent directories) with `content`, for loading an archive.
    pub fn create_path(
        &mut self,
        path: &[u8],
        mode: u32,
        rdev: u64,
        data: Vec<u8>,
        owner: (u32, u32),
        now: Timespec,
    ) -> Result<Ino, Errno> {
        let parts: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|p| !p.is_empty() && *p != b".").collect();
        let Some((last, parents)) = parts.split_last() else { return Ok(ROOT) };
        let mut dir = ROOT;
        for p in parents {
            dir = match self.lookup(dir, p) {
                Ok(i) => i,
                Err(_) => self.create(dir, p, S_IFDIR | 0o755, 0, (0, 0), now)?,
            };
        }
        if let Ok(existing) = self.lookup(dir, last) {
            // An archive may list a directory after its contents: keep the entry, take the mode.
            let n = self.node_mut(existing)?;
            if n.mode & S_IFMT == mode & S_IFMT {
                n.mode = mode;
                n.uid = owner.0;
                n.gid = owner.1;
            }
            return Ok(existing);
        }
        if mode & S_IFMT == S_IFLNK {
            return self.symlink(dir, last, &data, owner, now);
        }
        let ino = self.create(dir, last, mode, rdev, owner, now)?;
        if mode & S_IFMT == S_IFREG && !data.is_empty() {
            self.write(ino, 0, &data, false, now)?;
        }
        Ok(ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::proto::S_IFCHR;

    const T: Timespec = Timespec { sec: 1, nsec: 0 };

    fn tree() -> Tree {
        Tree::new(T, 1 << 20)
    }

    fn names(t: &Tree, dir: Ino) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        t.readdir(dir, 0, |_, _, _, n| {
            v.push(n.to_vec());
            true
        })
        .unwrap();
        v
    }

    #[test]
    fn create_lookup_link_counts() {
        let mut t = tree();
        let d = t.create(ROOT, b"d", S_IFDIR | 0o755, 0, (0, 0), T).unwrap();
        assert_eq!(t.node(ROOT).unwrap().nlink, 3);
        let f = t.create(d, b"f", S_IFREG | 0o644, 0, (1, 2), T).unwrap();
        assert_eq!(t.lookup(d, b"f"), Ok(f));
        assert_eq!(t.lookup(d, b".."), Ok(ROOT));
        assert_eq!(t.create(d, b"f", S_IFREG, 0, (0, 0), T), Err(Errno::EEXIST));
        t.link(f, ROOT, b"g", T).unwrap();
        assert_eq!(t.node(f).unwrap().nlink, 2);
        assert_eq!(t.link(d, ROOT, b"h", T), Err(Errno::EPERM));
        assert_eq!(t.unlink(ROOT, b"d", true, T), Err(Errno::ENOTEMPTY));
        assert_eq!(t.unlink(ROOT, b"d", false, T), Err(Errno::EISDIR));
        assert_eq!(t.unlink(ROOT, b"g", true, T), Err(Errno::ENOTDIR));
        let long = [b'x'; 256];
        assert_eq!(t.create(ROOT, &long, S_IFREG, 0, (0, 0), T), Err(Errno::ENAMETOOLONG));
    }

    #[test]
    fn unlinked_open_file_lives_until_release() {
        let mut t = tree();
        let f = t.create(ROOT, b"f", S_IFREG | 0o644, 0, (0, 0), T).unwrap();
        t.write(f, 0, b"data", false, T).unwrap();
        t.open(f).unwrap();
        t.unlink(ROOT, b"f", false, T).unwrap();
        assert_eq!(t.read(f, 0, 10).unwrap(), b"data");
        assert_eq!(t.bytes, 4);
        t.release(f).unwrap();
        assert!(t.node(f).is_err());
        assert_eq!(t.bytes, 0);
    }

    #[test]
    fn rename_semantics() {
        let mut t = tree();
        let a = t.create(ROOT, b"a", S_IFDIR | 0o755, 0, (0, 0), T).unwrap();
        let b = t.create(a, b"b", S_IFDIR | 0o755, 0, (0, 0), T).unwrap();
        assert_eq!(t.rename(ROOT, b"a", b, b"x", 0, T), Err(Errno::EINVAL), "no move below itself");
        let f = t.create(ROOT, b"f", S_IFREG, 0, (0, 0), T).unwrap();
        let g = t.create(ROOT, b"g", S_IFREG, 0, (0, 0), T).unwrap();
        t.rename(ROOT, b"f", ROOT, b"g", 0, T).unwrap();
        assert_eq!(t.lookup(ROOT, b"g"), Ok(f));
        assert!(t.node(g).is_err(), "the replaced file is gone");
        assert_eq!(t.rename(ROOT, b"g", ROOT, b"a", 0, T), Err(Errno::EISDIR));
        assert_eq!(t.rename(ROOT, b"a", ROOT, b"g", 0, T), Err(Errno::ENOTDIR));
        t.rename(a, b"b", ROOT, b"b2", 0, T).unwrap();
        assert_eq!(t.node(a).unwrap().nlink, 2);
        assert_eq!(t.node(ROOT).unwrap().nlink, 4);
        assert_eq!(t.lookup(b, b".."), Ok(ROOT));
        t.rename(ROOT, b"g", ROOT, b"b2", abi::proto::fs::RENAME_EXCHANGE, T).unwrap();
        assert_eq!(t.lookup(ROOT, b"b2"), Ok(f));
        assert_eq!(t.lookup(ROOT, b"g"), Ok(b));
    }

    #[test]
    fn readdir_cookies_survive_removal() {
        let mut t = tree();
        for i in 0..10u8 {
            t.create(ROOT, &[b'a' + i], S_IFREG, 0, (0, 0), T).unwrap();
        }
        // Read three entries, delete them (as rm -r does), continue from the cookie.
        let mut seen = Vec::new();
        let mut cookie = 0;
        t.readdir(ROOT, 0, |_, next, _, n| {
            seen.push(n.to_vec());
            cookie = next;
            seen.len() < 5
        })
        .unwrap();
        for n in &seen[2..] {
            t.unlink(ROOT, n, false, T).unwrap();
        }
        t.readdir(ROOT, cookie, |_, _, _, n| {
            seen.push(n.to_vec());
            true
        })
        .unwrap();
        assert_eq!(seen.len(), 12, "every entry exactly once: {seen:?}");
        assert_eq!(names(&t, ROOT).len(), 2 + 7);
    }

    #[test]
    fn sizes_and_limits() {
        let mut t = Tree::new(T, 100);
        let f = t.create(ROOT, b"f", S_IFREG, 0, (0, 0), T).unwrap();
        assert_eq!(t.write(f, 10, b"xy", false, T), Ok(12));
        assert_eq!(t.read(f, 0, 100).unwrap(), b"\0\0\0\0\0\0\0\0\0\0xy");
        assert_eq!(t.write(f, 0, &[1; 200], false, T), Err(Errno::ENOSPC));
        t.setattr(f, &Change { size: Some(3), ..Default::default() }, T).unwrap();
        assert_eq!(t.bytes, 3);
        assert_eq!(t.write(f, 0, b"z", true, T), Ok(4));
        let dev = t.create(ROOT, b"null", S_IFCHR | 0o666, abi::proto::makedev(1, 3), (0, 0), T).unwrap();
        assert_eq!(t.node(dev).unwrap().rdev, abi::proto::makedev(1, 3));
    }
}
