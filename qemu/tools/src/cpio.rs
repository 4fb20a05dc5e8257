//! cpio "newc" archives, the initramfs format: a layered [`Tree`] builder and [`Writer`] that
//! produce deterministic archives, and a small [`Reader`] used by the host tests.
//!
//! What an archive from this module looks like (the contract with the kernel's own reader):
//! * every member has a `070701` header (110 bytes of ASCII: magic and thirteen 8-digit hex
//!   fields), then its name with a terminating NUL, padded with NULs to a multiple of 4 bytes,
//!   then its data, padded the same way; the last member is `TRAILER!!!`;
//! * names are relative paths without a leading `/` or `./` (`bin/busybox`), UTF-8, and there
//!   is no member for the root directory itself;
//! * members come in byte-wise sorted path order, so a directory always comes before the things
//!   in it; inode numbers count up from 1 in that order; uid, gid and the check field are 0;
//!   `nlink` is 2 for directories and 1 otherwise (hard links are stored as separate files);
//! * directories, regular files, symbolic links (data = the target, no NUL), character and
//!   block devices (major/minor in the `rdev` fields) and FIFOs. Sockets are skipped.
//!
//! Layering: [`Tree::add_dir_tree`] on several roots in order gives "later layers win" at the
//! same path. A non-directory replaces whatever was there, including a whole directory subtree;
//! a directory over a directory only takes the newer mode and mtime and merges the contents.
//! A later directory also replaces an earlier symlink of the same name.
//!
//! This module must not depend on anything but `std`; the archive it writes depends only on
//! the layers' contents and metadata (never on the host's inode numbers, users, or directory
//! iteration order).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The magic of a newc header without checksums (what we write).
pub const MAGIC: &[u8; 6] = b"070701";
/// The magic of a newc header with checksums (also accepted by the [`Reader`]).
pub const MAGIC_CRC: &[u8; 6] = b"070702";
/// The name of the member that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";
/// Length of a newc header (magic plus 13 fields of 8 hex digits).
pub const HEADER_LEN: usize = 110;

/// File type bits of `mode` (as in `st_mode`).
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// Where a regular file's contents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// Read from this host file when the archive is written; it must still be `size` bytes.
    Host { path: PathBuf, size: u64 },
    /// These bytes.
    Bytes(Vec<u8>),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Host { size, .. } => *size,
            Data::Bytes(b) => b.len() as u64,
        }
    }
}

/// What a path in a [`Tree`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Data),
    Symlink(String),
    /// A character (`block == false`) or block device.
    Device {
        block: bool,
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One path of a [`Tree`]: its kind, permission bits (`0o7777` part of the mode) and mtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub perm: u32,
    pub mtime: u32,
}

impl Node {
    /// The full `st_mode`: type bits and permission bits.
    pub fn mode(&self) -> u32 {
        let ty = match self.kind {
            Kind::Dir => S_IFDIR,
            Kind::File(_) => S_IFREG,
            Kind::Symlink(_) => S_IFLNK,
            Kind::Device { block: false, .. } => S_IFCHR,
            Kind::Device { block: true, .. } => S_IFBLK,
            Kind::Fifo => S_IFIFO,
        };
        ty | (self.perm & 0o7777)
    }
}

/// The file tree an archive is made of, keyed by normalized relative path.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Normalizes a path inside the archive: no leading `/`, no `.` or empty components; `..` and
/// the empty path are errors.
pub fn normalize(path: &str) -> io::Result<String> {
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(invalid(format!("path {path:?} contains `..`"))),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(invalid(format!("path {path:?} names the root")));
    }
    let joined = parts.join("/");
    if joined == TRAILER || joined.contains('\0') {
        return Err(invalid(format!("path {path:?} cannot be stored in a cpio archive")));
    }
    Ok(joined)
}

fn clamp_mtime(t: i64) -> u32 {
    t.clamp(0, u32::MAX as i64) as u32
}

/// Linux's encoding of `dev_t` (glibc `gnu_dev_major` / `gnu_dev_minor`).
fn split_dev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Number of members (without the trailer).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `path` (normalized), if any.
    pub fn get(&self, path: &str) -> Option<&Node> {
        normalize(path).ok().and_then(|p| self.nodes.get(&p))
    }

    /// All members in archive order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Inserts `node` at the normalized `path` with the layering rules of the module docs.
    /// Missing parent directories are created (mode 0755, mtime 0); parents that are not
    /// directories are replaced by directories.
    pub fn insert(&mut self, path: &str, node: Node) -> io::Result<()> {
        let path = normalize(path)?;
        // Parents.
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            match self.nodes.get(parent) {
                Some(Node { kind: Kind::Dir, .. }) => {}
                _ => {
                    self.nodes.insert(parent.to_string(), Node { kind: Kind::Dir, perm: 0o755, mtime: 0 });
                }
            }
            end += i + 1;
        }
        let is_dir = node.kind == Kind::Dir;
        match self.nodes.get_mut(&path) {
            Some(old) if old.kind == Kind::Dir && is_dir => *old = node,
            Some(old) if old.kind == Kind::Dir => {
                let prefix = format!("{path}/");
                let below: Vec<String> = self
                    .nodes
                    .range(prefix.clone()..)
                    .map(|(k, _)| k.clone())
                    .take_while(|k| k.starts_with(&prefix))
                    .collect();
                for k in below {
                    self.nodes.remove(&k);
                }
                self.nodes.insert(path, node);
            }
            _ => {
                self.nodes.insert(path, node);
            }
        }
        Ok(())
    }

    /// Adds a regular file with the given contents and permission bits (mtime 0).
    pub fn add_file(&mut self, path: &str, contents: impl Into<Vec<u8>>, perm: u32) -> io::Result<()> {
        self.insert(path, Node { kind: Kind::File(Data::Bytes(contents.into())), perm, mtime: 0 })
    }

    /// Adds a directory (mtime 0).
    pub fn add_dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.insert(path, Node { kind: Kind::Dir, perm, mtime: 0 })
    }

    /// Adds a symbolic link to `target` (mtime 0).
    pub fn add_symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.insert(path, Node { kind: Kind::Symlink(target.to_string()), perm: 0o777, mtime: 0 })
    }

    /// Adds everything below the host directory `root` (not `root` itself) as a new layer.
    /// File contents are read when the archive is written.
    pub fn add_dir_tree(&mut self, root: &Path) -> io::Result<()> {
        let meta = fs::metadata(root).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.display())))?;
        if !meta.is_dir() {
            return Err(invalid(format!("{} is not a directory", root.display())));
        }
        self.walk(root, "")
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> io::Result<()> {
        let ctx = |e: io::Error, p: &Path| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
        let mut entries: Vec<fs::DirEntry> =
            fs::read_dir(dir).map_err(|e| ctx(e, dir))?.collect::<Result<_, _>>().map_err(|e| ctx(e, dir))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let host = e.path();
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                return Err(invalid(format!("{}: file name is not UTF-8", host.display())));
            };
            let rel = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
            let meta = fs::symlink_metadata(&host).map_err(|e| ctx(e, &host))?;
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File(Data::Host { path: host.clone(), size: meta.len() })
            } else if ft.is_symlink() {
                let target = fs::read_link(&host).map_err(|e| ctx(e, &host))?;
                let Some(target) = target.to_str() else {
                    return Err(invalid(format!("{}: link target is not UTF-8", host.display())));
                };
                Kind::Symlink(target.to_string())
            } else if ft.is_char_device() || ft.is_block_device() {
                let (major, minor) = split_dev(meta.rdev());
                Kind::Device { block: ft.is_block_device(), major, minor }
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                continue; // sockets
            };
            let node = Node { kind, perm: meta.mode() & 0o7777, mtime: clamp_mtime(meta.mtime()) };
            let is_dir = node.kind == Kind::Dir;
            self.insert(&rel, node)?;
            if is_dir {
                self.walk(&host, &rel)?;
            }
        }
        Ok(())
    }

    /// Writes the archive (members and trailer) to `w`; returns the number of bytes written.
    pub fn write_to<W: Write>(&self, w: W) -> io::Result<u64> {
        let mut cw = Writer::new(w);
        for (path, node) in &self.nodes {
            match &node.kind {
                Kind::File(Data::Host { path: host, size }) => {
                    let f = fs::File::open(host)
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", host.display())))?;
                    cw.append(path, node, f.take(*size + 1)).map_err(|e| match e.kind() {
                        io::ErrorKind::InvalidData => {
                            io::Error::new(e.kind(), format!("{}: changed while being archived", host.display()))
                        }
                        _ => e,
                    })?;
                }
                Kind::File(Data::Bytes(b)) => cw.append(path, node, &b[..])?,
                Kind::Symlink(t) => cw.append(path, node, t.as_bytes())?,
                _ => cw.append(path, node, io::empty())?,
            }
        }
        cw.finish()
    }

    /// Writes the archive to the host file `out`, atomically (a temporary file in the same
    /// directory, then a rename); creates `out`'s parent directories.
    pub fn write_file(&self, out: &Path) -> io::Result<()> {
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", out.display()));
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(ctx)?;
        }
        let name = out.file_name().ok_or_else(|| invalid(format!("{}: not a file name", out.display())))?;
        let tmp = out.with_file_name(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
        let result = (|| {
            let f = fs::File::create(&tmp)?;
            let mut w = BufWriter::new(f);
            self.write_to(&mut w)?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            fs::rename(&tmp, out)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(ctx)
    }
}

/// Builds an archive at `out` from `layers` (host directories, later ones override earlier
/// ones at the same path): what the `mkcpio` binary does. Returns the number of members.
pub fn build(out: &Path, layers: &[&Path]) -> io::Result<usize> {
    let mut tree = Tree::new();
    for l in layers {
        tree.add_dir_tree(l)?;
    }
    tree.write_file(out)?;
    Ok(tree.len())
}

/// Streams members into a newc archive. Inode numbers are assigned in call order from 1.
pub struct Writer<W: Write> {
    w: W,
    offset: u64,
    next_ino: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(w: W) -> Writer<W> {
        Writer { w, offset: 0, next_ino: 1 }
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.offset % 4) as usize) % 4;
        self.w.write_all(&[0u8; 3][..n])?;
        self.offset += n as u64;
        Ok(())
    }

    fn header(&mut self, fields: [u32; 13], name: &str) -> io::Result<()> {
        let mut h = Vec::with_capacity(HEADER_LEN + name.len() + 1);
        h.extend_from_slice(MAGIC);
        for f in fields {
            h.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        h.extend_from_slice(name.as_bytes());
        h.push(0);
        self.w.write_all(&h)?;
        self.offset += h.len() as u64;
        self.pad()
    }

    /// Appends one member. `data` must yield exactly the node's size (the length of `Bytes`,
    /// the `size` of `Host`, the target of a symlink, nothing otherwise); more or fewer bytes
    /// are an `InvalidData` error.
    pub fn append(&mut self, path: &str, node: &Node, mut data: impl Read) -> io::Result<()> {
        let size: u64 = match &node.kind {
            Kind::File(d) => d.len(),
            Kind::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        let size32 = u32::try_from(size).map_err(|_| invalid(format!("{path}: larger than 4 GiB")))?;
        let (rmaj, rmin) = match node.kind {
            Kind::Device { major, minor, .. } => (major, minor),
            _ => (0, 0),
        };
        let nlink = if node.kind == Kind::Dir { 2 } else { 1 };
        let name_len = u32::try_from(path.len() + 1).map_err(|_| invalid(format!("{path}: name too long")))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.header([ino, node.mode(), 0, 0, nlink, node.mtime, size32, 0, 0, rmaj, rmin, name_len, 0], path)?;
        let copied = io::copy(&mut (&mut data).take(size), &mut self.w)?;
        let mut probe = [0u8; 1];
        if copied != size || data.read(&mut probe)? != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{path}: expected {size} bytes of data")));
        }
        self.offset += size;
        self.pad()
    }

    /// Writes the trailer, flushes, and returns the archive's length in bytes.
    pub fn finish(mut self) -> io::Result<u64> {
        self.header([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, TRAILER.len() as u32 + 1, 0], TRAILER)?;
        self.w.flush()?;
        Ok(self.offset)
    }
}

/// One member of an archive, as the [`Reader`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    /// The member's data: file contents, or a symlink's target.
    pub data: &'a [u8],
}

impl Entry<'_> {
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.file_type() == S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }
}

/// Why an archive could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Byte offset of the header of the member that failed.
    pub offset: usize,
    pub what: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpio: at offset {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for Error {}

/// Iterates over the members of a newc archive in memory, up to (not including) the trailer.
/// Yields at most one `Err`, after which it stops. Anything after the trailer is ignored.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0, done: false }
    }

    /// Reads every member; the first error, if any.
    pub fn read_all(data: &'a [u8]) -> Result<Vec<Entry<'a>>, Error> {
        Reader::new(data).collect()
    }

    /// Offset just past the trailer once the iterator has returned `None` without error.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, Error> {
        let at = self.pos;
        let err = |what: String| Error { offset: at, what };
        let h = self.data.get(at..at + HEADER_LEN).ok_or_else(|| err("truncated header (no trailer)".into()))?;
        if &h[..6] != MAGIC && &h[..6] != MAGIC_CRC {
            return Err(err(format!("bad magic {:?}", String::from_utf8_lossy(&h[..6]))));
        }
        let mut f = [0u32; 13];
        for (i, v) in f.iter_mut().enumerate() {
            let s = &h[6 + 8 * i..14 + 8 * i];
            *v = std::str::from_utf8(s)
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok())
                .ok_or_else(|| err(format!("header field {i} is not hex: {:?}", String::from_utf8_lossy(s))))?;
        }
        let [ino, mode, uid, gid, nlink, mtime, size, dev_major, dev_minor, rdev_major, rdev_minor, namesize, _check] =
            f;
        let name_start = at + HEADER_LEN;
        let name = (namesize as usize)
            .checked_sub(1)
            .and_then(|n| self.data.get(name_start..name_start + n + 1))
            .ok_or_else(|| err(format!("bad or truncated name (namesize {namesize})")))?;
        let (name, nul) = name.split_at(name.len() - 1);
        if nul != [0] || name.contains(&0) {
            return Err(err("name is not NUL-terminated".into()));
        }
        let name = std::str::from_utf8(name).map_err(|_| err("name is not UTF-8".into()))?;
        let data_start = (name_start + namesize as usize).next_multiple_of(4);
        let data = self
            .data
            .get(data_start..data_start + size as usize)
            .ok_or_else(|| err(format!("{name}: truncated data ({size} bytes)")))?;
        self.pos = (data_start + size as usize).next_multiple_of(4);
        if name == TRAILER {
            return Ok(None);
        }
        Ok(Some(Entry { name, ino, mode, uid, gid, nlink, mtime, dev_major, dev_minor, rdev_major, rdev_minor, data }))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Entry<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh, empty temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let d = std::env::temp_dir().join(format!("cairn-cpio-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
        fn path(&self, rel: &str) -> PathBuf {
            self.0.join(rel)
        }
        fn write(&self, rel: &str, contents: &str, perm: u32) {
            let p = self.path(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, contents).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(perm)).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn archive(tree: &Tree) -> Vec<u8> {
        let mut out = Vec::new();
        let n = tree.write_to(&mut out).unwrap();
        assert_eq!(n as usize, out.len());
        out
    }

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("/etc//hello.txt").unwrap(), "etc/hello.txt");
        assert_eq!(normalize("./a/./b/").unwrap(), "a/b");
        assert!(normalize("a/../b").is_err());
        assert!(normalize("/").is_err());
        assert!(normalize("").is_err());
        assert!(normalize("TRAILER!!!").is_err());
    }

    #[test]
    fn header_layout_is_newc() {
        let mut t = Tree::new();
        t.add_file("a", "xyz", 0o644).unwrap();
        let a = archive(&t);
        // Header, "a\0" (2 bytes) padded to 112, data 3 bytes padded to 116, then the trailer.
        assert_eq!(&a[..6], b"070701");
        let field = |i: usize| std::str::from_utf8(&a[6 + 8 * i..14 + 8 * i]).unwrap().to_string();
        assert_eq!(field(0), "00000001"); // ino
        assert_eq!(field(1), "000081a4"); // mode 0100644
        assert_eq!(field(2), "00000000"); // uid
        assert_eq!(field(3), "00000000"); // gid
        assert_eq!(field(4), "00000001"); // nlink
        assert_eq!(field(6), "00000003"); // filesize
        assert_eq!(field(11), "00000002"); // namesize
        assert_eq!(&a[110..112], b"a\0");
        assert_eq!(&a[112..115], b"xyz");
        assert_eq!(a[115], 0);
        assert_eq!(&a[116..122], b"070701");
        assert_eq!(&a[116 + 110..116 + 121], b"TRAILER!!!\0");
        assert_eq!(a.len() % 4, 0);
        assert_eq!(a.len(), 116 + (110 + 11usize).next_multiple_of(4));
    }

    #[test]
    fn round_trip_of_every_kind() {
        let mut t = Tree::new();
        t.add_file("etc/hello.txt", "hello from the host\n", 0o644).unwrap();
        t.add_file("init", "#!/bin/sh\n", 0o755).unwrap();
        t.add_symlink("bin/sh", "busybox").unwrap();
        t.add_dir("tmp", 0o1777).unwrap();
        t.insert(
            "dev/console",
            Node { kind: Kind::Device { block: false, major: 5, minor: 1 }, perm: 0o600, mtime: 7 },
        )
        .unwrap();
        t.insert("dev/sda", Node { kind: Kind::Device { block: true, major: 8, minor: 0 }, perm: 0o660, mtime: 0 })
            .unwrap();
        t.insert("run/fifo", Node { kind: Kind::Fifo, perm: 0o644, mtime: 0 }).unwrap();
        let a = archive(&t);
        let entries = Reader::read_all(&a).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "dev/sda",
                "etc",
                "etc/hello.txt",
                "init",
                "run",
                "run/fifo",
                "tmp"
            ]
        );
        let by = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        assert!(by("bin").is_dir());
        assert_eq!(by("bin").mode, S_IFDIR | 0o755);
        assert_eq!(by("bin").nlink, 2);
        assert!(by("bin/sh").is_symlink());
        assert_eq!(by("bin/sh").data, b"busybox");
        assert_eq!(by("etc/hello.txt").data, b"hello from the host\n");
        assert_eq!(by("init").mode, S_IFREG | 0o755);
        assert_eq!(by("tmp").perm(), 0o1777);
        let c = by("dev/console");
        assert_eq!((c.file_type(), c.rdev_major, c.rdev_minor, c.mtime), (S_IFCHR, 5, 1, 7));
        assert_eq!(by("dev/sda").file_type(), S_IFBLK);
        assert_eq!(by("run/fifo").file_type(), S_IFIFO);
        // Inodes count up in archive order; everything is owned by root.
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.ino as usize, i + 1);
            assert_eq!((e.uid, e.gid), (0, 0));
        }
    }

    #[test]
    fn layers_override_in_order() {
        let a = TempDir::new("a");
        let b = TempDir::new("b");
        a.write("etc/x", "from a", 0o644);
        a.write("etc/only-a", "a", 0o600);
        a.write("keep", "kept", 0o755);
        std::os::unix::fs::symlink("keep", a.path("link")).unwrap();
        a.write("lib/deep/file", "gone", 0o644);
        b.write("etc/x", "from b", 0o640);
        b.write("lib", "a file now", 0o644);
        fs::create_dir_all(b.path("link")).unwrap();
        let mut t = Tree::new();
        t.add_dir_tree(&a.0).unwrap();
        t.add_dir_tree(&b.0).unwrap();
        let bytes = archive(&t);
        let entries = Reader::read_all(&bytes).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
        assert_eq!(names, ["etc", "etc/only-a", "etc/x", "keep", "lib", "link"]);
        let by = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(by("etc/x").data, b"from b");
        assert_eq!(by("etc/x").perm(), 0o640);
        assert_eq!(by("etc/only-a").perm(), 0o600);
        assert_eq!(by("keep").perm(), 0o755);
        assert!(by("lib").is_file());
        assert!(by("link").is_dir());
        // mtime comes from the host file.
        let host = fs::metadata(b.path("etc/x")).unwrap().mtime();
        assert_eq!(by("etc/x").mtime as i64, host);
    }

    #[test]
    fn deterministic_and_independent_of_creation_order() {
        let a = TempDir::new("det1");
        let b = TempDir::new("det2");
        for name in ["z", "a", "m/q", "m/b"] {
            a.write(name, name, 0o644);
        }
        for name in ["m/b", "m/q", "a", "z"] {
            b.write(name, name, 0o644);
        }
        for d in [&a, &b] {
            for p in ["z", "a", "m/q", "m/b", "m"] {
                let f = fs::File::options().write(true).open(d.path(p)).or_else(|_| fs::File::open(d.path(p))).unwrap();
                f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).unwrap();
            }
        }
        let out_a = a.path("../det-a.cpio");
        let out_b = b.path("../det-b.cpio");
        assert_eq!(build(&out_a, &[&a.0]).unwrap(), 5);
        build(&out_b, &[&b.0]).unwrap();
        let (xa, xb) = (fs::read(&out_a).unwrap(), fs::read(&out_b).unwrap());
        let _ = (fs::remove_file(&out_a), fs::remove_file(&out_b));
        assert_eq!(xa, xb);
    }

    #[test]
    fn a_file_that_changes_size_is_an_error() {
        let d = TempDir::new("grow");
        d.write("f", "short", 0o644);
        let mut t = Tree::new();
        t.add_dir_tree(&d.0).unwrap();
        d.write("f", "much longer now", 0o644);
        let err = t.write_to(io::sink()).unwrap_err();
        assert!(err.to_string().contains("changed while being archived"), "{err}");
        d.write("f", "", 0o644);
        assert!(t.write_to(io::sink()).is_err());
    }

    #[test]
    fn missing_layer_is_an_error() {
        let mut t = Tree::new();
        let err = t.add_dir_tree(Path::new("/nonexistent/cairn-layer")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cairn-layer"));
    }

    #[test]
    fn reader_rejects_damage() {
        let mut t = Tree::new();
        t.add_file("f", "data", 0o644).unwrap();
        let a = archive(&t);
        // Truncated anywhere before the end of the trailer: an error, never a panic.
        for cut in 0..a.len() - 1 {
            let r = Reader::read_all(&a[..cut]);
            assert!(r.is_err(), "cut at {cut}");
        }
        let mut bad = a.clone();
        bad[0] = b'1';
        assert!(Reader::read_all(&bad).unwrap_err().what.contains("magic"));
        let mut bad = a.clone();
        bad[20] = b'g';
        assert!(Reader::read_all(&bad).unwrap_err().what.contains("not hex"));
        // An absurd namesize.
        let mut bad = a.clone();
        bad[94..102].copy_from_slice(b"ffffffff");
        assert!(Reader::read_all(&bad).is_err());
        // Trailing zero padding after the trailer is fine.
        let mut padded = a.clone();
        padded.extend_from_slice(&[0; 512]);
        let mut r = Reader::new(&padded);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.position(), a.len());
    }

    #[test]
    fn gnu_cpio_agrees() {
        let have_cpio = std::process::Command::new("cpio").arg("--version").output().is_ok_and(|o| o.status.success());
        if !have_cpio {
            eprintln!("note: GNU cpio is not installed; skipping the cross-check against `cpio -t`");
            return;
        }
        let d = TempDir::new("gnu");
        d.write("bin/busybox", "\x7fELF...", 0o755);
        d.write("etc/hello.txt", "hello from the host\n", 0o644);
        std::os::unix::fs::symlink("busybox", d.path("bin/sh")).unwrap();
        fs::create_dir_all(d.path("tmp/empty")).unwrap();
        let out = d.path("../gnu-check.cpio");
        build(&out, &[&d.0]).unwrap();
        let listing = std::process::Command::new("cpio").args(["-t", "--quiet", "-F"]).arg(&out).output().unwrap();
        let verbose = std::process::Command::new("cpio").args(["-tv", "--quiet", "-F"]).arg(&out).output().unwrap();
        let extract = TempDir::new("gnu-x");
        let x = std::process::Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames", "-F"])
            .arg(&out)
            .current_dir(&extract.0)
            .output()
            .unwrap();
        let _ = fs::remove_file(&out);
        assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
        let names: Vec<String> = String::from_utf8_lossy(&listing.stdout).lines().map(str::to_string).collect();
        assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "etc", "etc/hello.txt", "tmp", "tmp/empty"]);
        let verbose = String::from_utf8_lossy(&verbose.stdout).into_owned();
        assert!(verbose.contains("lrwxrwxrwx") && verbose.contains("bin/sh -> busybox"), "{verbose}");
        assert!(verbose.lines().any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("bin/busybox")), "{verbose}");
        assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
        assert_eq!(fs::read_to_string(extract.path("etc/hello.txt")).unwrap(), "hello from the host\n");
        assert_eq!(fs::read_link(extract.path("bin/sh")).unwrap(), Path::new("busybox"));
    }
}
