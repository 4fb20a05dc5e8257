//! The file tree of v0: an in-memory, read-write tree built from the initramfs (cpio newc).
//! It lives inside the `linux` server for now; DESIGN puts it in `vfs` + `ramfs` servers, and
//! that split is the next step (docs/caveats.md). Path walk handles `.`, `..` and symbolic links
//! (at most 40 per walk: ELOOP), and checks that every intermediate component is a directory.

use abi::Errno;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

pub type Ino = usize;
pub const ROOT: Ino = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Null,
    Zero,
    Console,
    Random,
    /// `/sys/kernel/tracing/tracing_on`: reads "0"/"1", writing "1" or "0" switches IPC tracing.
    TraceControl,
    /// A read-only file whose text is made when it is read (`/proc/...`).
    Generated(Generated),
    /// `/sys/kernel/servers/<name>/fault`: writing `kill` or `fault` injects that fault into
    /// server index `.0` (fault injection from inside the guest).
    ServerFault(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generated {
    Mounts,
    Meminfo,
    Uptime,
    Version,
    /// `/sys/kernel/servers/<name>/status` of server index `.0`.
    ServerStatus(usize),
}

pub enum Content {
    Dir(BTreeMap<String, Ino>),
    File(Vec<u8>),
    Symlink(String),
    Dev(Device),
}

pub struct Node {
    pub content: Content,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u64,
    pub parent: Ino,
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

pub struct Fs {
    nodes: Vec<Option<Node>>,
}

fn hex(field: &[u8]) -> Option<u32> {
    core::str::from_utf8(field).ok().and_then(|s| u32::from_str_radix(s, 16).ok())
}

impl Fs {
    pub fn new() -> Fs {
        let mut fs = Fs { nodes: Vec::new() };
        fs.nodes.push(None); // inode 0 is never used
        fs.nodes.push(Some(Node {
            content: Content::Dir(BTreeMap::new()),
            mode: S_IFDIR | 0o755,
            uid: 0,
            gid: 0,
            nlink: 2,
            mtime: 0,
            parent: ROOT,
        }));
        fs
    }

    /// Builds the tree from a cpio newc archive; malformed archives stop at the bad entry.
    pub fn from_cpio(data: &[u8]) -> Fs {
        let mut fs = Fs::new();
        let mut pos = 0usize;
        while let Some(h) = data.get(pos..pos + 110) {
            if &h[..6] != b"070701" && &h[..6] != b"070702" {
                break;
            }
            let (Some(mode), Some(mtime), Some(size), Some(namesize)) =
                (hex(&h[14..22]), hex(&h[46..54]), hex(&h[54..62]), hex(&h[94..102]))
            else {
                break;
            };
            let name_start = pos + 110;
            let Some(name) = data.get(name_start..name_start + namesize as usize) else { break };
            let name = core::str::from_utf8(name.strip_suffix(&[0]).unwrap_or(name)).unwrap_or("");
            let data_start = (name_start + namesize as usize).next_multiple_of(4);
            let Some(body) = data.get(data_start..data_start + size as usize) else { break };
            pos = (data_start + size as usize).next_multiple_of(4);
            if name == "TRAILER!!!" {
                break;
            }
            if name == "." || name.is_empty() {
                continue;
            }
            let path = alloc::format!("/{}", name.trim_start_matches("./"));
            let content = match mode & S_IFMT {
                S_IFDIR => Content::Dir(BTreeMap::new()),
                S_IFLNK => Content::Symlink(String::from_utf8_lossy(body).into_owned()),
                S_IFREG => Content::File(body.to_vec()),
                _ => continue,
            };
            let _ = fs.create_path(&path, content, mode, mtime as u64);
        }
        for (name, dev) in [
            ("null", Device::Null),
            ("zero", Device::Zero),
            ("console", Device::Console),
            ("tty", Device::Console),
            ("urandom", Device::Random),
            ("random", Device::Random),
        ] {
            let _ = fs.create_path(&alloc::format!("/dev/{name}"), Content::Dev(dev), S_IFCHR | 0o666, 0);
        }
        let _ =
            fs.create_path("/sys/kernel/tracing/tracing_on", Content::Dev(Device::TraceControl), S_IFREG | 0o644, 0);
        for (name, g) in [
            ("mounts", Generated::Mounts),
            ("meminfo", Generated::Meminfo),
            ("uptime", Generated::Uptime),
            ("version", Generated::Version),
        ] {
            let _ =
                fs.create_path(&alloc::format!("/proc/{name}"), Content::Dev(Device::Generated(g)), S_IFREG | 0o444, 0);
        }
        fs
    }

    /// `/sys/kernel/servers/<name>/{status,fault}` for every server, by index.
    pub fn add_server_files<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        for (i, name) in names.enumerate() {
            let dir = alloc::format!("/sys/kernel/servers/{name}");
            let status = Content::Dev(Device::Generated(Generated::ServerStatus(i)));
            let _ = self.create_path(&alloc::format!("{dir}/status"), status, S_IFREG | 0o444, 0);
            let fault = Content::Dev(Device::ServerFault(i));
            let _ = self.create_path(&alloc::format!("{dir}/fault"), fault, S_IFREG | 0o200, 0);
        }
    }

    /// Creates `path` (and missing parent directories), replacing nothing.
    fn create_path(&mut self, path: &str, content: Content, mode: u32, mtime: u64) -> Result<Ino, Errno> {
        let mut dir = ROOT;
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, parents)) = parts.split_last() else { return Ok(ROOT) };
        for p in parents {
            dir = match self.child(dir, p) {
                Some(i) => i,
                None => self.insert(dir, p, Content::Dir(BTreeMap::new()), S_IFDIR | 0o755, mtime)?,
            };
        }
        if let Some(existing) = self.child(dir, last) {
            return Ok(existing);
        }
        self.insert(dir, last, content, mode, mtime)
    }

    pub fn node(&self, i: Ino) -> Option<&Node> {
        self.nodes.get(i).and_then(|n| n.as_ref())
    }

    pub fn node_mut(&mut self, i: Ino) -> Option<&mut Node> {
        self.nodes.get_mut(i).and_then(|n| n.as_mut())
    }

    pub fn child(&self, dir: Ino, name: &str) -> Option<Ino> {
        match &self.node(dir)?.content {
            Content::Dir(m) => m.get(name).copied(),
            _ => None,
        }
    }

    /// Adds the entry `name` → `ino` to directory `dir` (the one place names enter a directory).
    fn add_entry(&mut self, dir: Ino, name: &str, ino: Ino) -> Result<(), Errno> {
        if name_too_long(name) {
            return Err(Errno::ENAMETOOLONG);
        }
        match self.node_mut(dir).map(|n| &mut n.content) {
            Some(Content::Dir(m)) => {
                if m.contains_key(name) {
                    return Err(Errno::EEXIST);
                }
                m.insert(name.to_string(), ino);
                Ok(())
            }
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    /// Adds `name` in `dir` as a new node.
    pub fn insert(&mut self, dir: Ino, name: &str, content: Content, mode: u32, mtime: u64) -> Result<Ino, Errno> {
        let is_dir = matches!(content, Content::Dir(_));
        let ino = self.nodes.len();
        self.add_entry(dir, name, ino)?;
        if is_dir {
            if let Some(d) = self.node_mut(dir) {
                d.nlink += 1;
            }
        }
        self.nodes.push(Some(Node {
            content,
            mode,
            uid: 0,
            gid: 0,
            nlink: if is_dir { 2 } else { 1 },
            mtime,
            parent: dir,
        }));
        Ok(ino)
    }

    /// Removes `name` from `dir` (the node itself stays while open files use it).
    pub fn remove(&mut self, dir: Ino, name: &str, want_dir: bool) -> Result<(), Errno> {
        let ino = self.child(dir, name).ok_or(Errno::ENOENT)?;
        let node = self.node(ino).ok_or(Errno::ENOENT)?;
        match (&node.content, want_dir) {
            (Content::Dir(m), true) if !m.is_empty() => return Err(Errno::ENOTEMPTY),
            (Content::Dir(_), false) => return Err(Errno::EISDIR),
            (c, true) if !matches!(c, Content::Dir(_)) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        if let Some(Content::Dir(m)) = self.node_mut(dir).map(|n| &mut n.content) {
            m.remove(name);
        }
        if want_dir {
            if let Some(d) = self.node_mut(dir) {
                d.nlink -= 1;
            }
        }
        if let Some(n) = self.node_mut(ino) {
            n.nlink = n.nlink.saturating_sub(1);
        }
        Ok(())
    }

    /// Adds another name for `ino` in `dir` (a hard link; not for directories).
    pub fn link(&mut self, dir: Ino, name: &str, ino: Ino) -> Result<(), Errno> {
        if matches!(self.node(ino).map(|n| &n.content), Some(Content::Dir(_))) {
            return Err(Errno::EPERM);
        }
        self.add_entry(dir, name, ino)?;
        if let Some(n) = self.node_mut(ino) {
            n.nlink += 1;
        }
        Ok(())
    }

    /// Whether `maybe_inner` is `dir` or below it.
    fn is_within(&self, mut maybe_inner: Ino, dir: Ino) -> bool {
        loop {
            if maybe_inner == dir {
                return true;
            }
            if maybe_inner == ROOT {
                return false;
            }
            maybe_inner = self.node(maybe_inner).map_or(ROOT, |n| n.parent);
        }
    }

    /// rename(2): moves `from_dir/from` to `to_dir/to`, replacing a compatible target.
    pub fn rename(&mut self, from_dir: Ino, from: &str, to_dir: Ino, to: &str) -> Result<(), Errno> {
        if matches!(from, "." | "..") || matches!(to, "." | "..") {
            return Err(Errno::EINVAL);
        }
        let ino = self.child(from_dir, from).ok_or(Errno::ENOENT)?;
        let is_dir = matches!(self.node(ino).map(|n| &n.content), Some(Content::Dir(_)));
        if is_dir && self.is_within(to_dir, ino) {
            return Err(Errno::EINVAL); // a directory cannot move below itself
        }
        if let Some(existing) = self.child(to_dir, to) {
            if existing == ino {
                return Ok(());
            }
            let target_dir = matches!(self.node(existing).map(|n| &n.content), Some(Content::Dir(_)));
            match (is_dir, target_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
            self.remove(to_dir, to, target_dir)?;
        }
        if name_too_long(to) {
            return Err(Errno::ENAMETOOLONG);
        }
        if let Some(Content::Dir(m)) = self.node_mut(from_dir).map(|n| &mut n.content) {
            m.remove(from);
        }
        match self.node_mut(to_dir).map(|n| &mut n.content) {
            Some(Content::Dir(m)) => {
                m.insert(to.to_string(), ino);
            }
            _ => return Err(Errno::ENOTDIR),
        }
        if is_dir && from_dir != to_dir {
            if let Some(d) = self.node_mut(from_dir) {
                d.nlink -= 1;
            }
            if let Some(d) = self.node_mut(to_dir) {
                d.nlink += 1;
            }
            if let Some(n) = self.node_mut(ino) {
                n.parent = to_dir;
            }
        }
        Ok(())
    }

    /// Resolves `path` relative to `cwd`. `follow` says whether a final symbolic link is
    /// followed.
    pub fn lookup(&self, cwd: Ino, path: &str, follow: bool) -> Result<Ino, Errno> {
        let mut budget = 40;
        self.walk(cwd, path, follow, &mut budget)
    }

    fn walk(&self, cwd: Ino, path: &str, follow: bool, budget: &mut u32) -> Result<Ino, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() > 4096 {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut cur = if path.starts_with('/') { ROOT } else { cwd };
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let node = self.node(cur).ok_or(Errno::ENOENT)?;
            if !matches!(node.content, Content::Dir(_)) {
                return Err(Errno::ENOTDIR);
            }
            if *part == ".." {
                cur = node.parent;
                continue;
            }
            let next = self.child(cur, part).ok_or(Errno::ENOENT)?;
            if let Some(Content::Symlink(target)) = self.node(next).map(|n| &n.content) {
                if !last || follow {
                    if *budget == 0 {
                        return Err(Errno::ELOOP);
                    }
                    *budget -= 1;
                    cur = self.walk(cur, target, true, budget)?;
                    continue;
                }
            }
            cur = next;
        }
        // A trailing slash requires a directory.
        if path.ends_with('/') && !matches!(self.node(cur).map(|n| &n.content), Some(Content::Dir(_))) {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }

    /// Splits `path` into (parent directory, last component).
    pub fn parent_of<'p>(&self, cwd: Ino, path: &'p str) -> Result<(Ino, &'p str), Errno> {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return if path.starts_with('/') { Err(Errno::EEXIST) } else { Err(Errno::ENOENT) };
        }
        let (dir, name) = match trimmed.rfind('/') {
            Some(0) => ("/", &trimmed[1..]),
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (".", trimmed),
        };
        let d = self.lookup(cwd, dir, true)?;
        if !matches!(self.node(d).map(|n| &n.content), Some(Content::Dir(_))) {
            return Err(Errno::ENOTDIR);
        }
        Ok((d, name))
    }

    /// The absolute path of directory `ino`.
    pub fn path_of(&self, mut ino: Ino) -> String {
        let mut parts = Vec::new();
        while ino != ROOT {
            let Some(n) = self.node(ino) else { break };
            let parent = n.parent;
            if let Some(Content::Dir(m)) = self.node(parent).map(|p| &p.content) {
                if let Some((name, _)) = m.iter().find(|(_, &i)| i == ino) {
                    parts.push(name.clone());
                }
            }
            ino = parent;
        }
        if parts.is_empty() {
            return "/".to_string();
        }
        parts.iter().rev().fold(String::new(), |mut s, p| {
            s.push('/');
            s.push_str(p);
            s
        })
    }
}

fn name_too_long(name: &str) -> bool {
    name.len() > 255
}

impl Default for Fs {
    fn default() -> Self {
        Self::new()
    }
}
