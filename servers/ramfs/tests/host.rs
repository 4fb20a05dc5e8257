//! Host tests of ramfs v2: the server over a fake state area that can "crash" at any commit
//! (before it is applied, or after it is applied but before the reply), restarted from what
//! the area holds. After every crash the file systems must be exactly the state before or
//! after the interrupted request, the retried request (same rid) must get the first answer
//! and leave the state as one execution would, and every volume must be e2fsck-clean.

use abi::proto::fs as proto;
use abi::proto::{Attr, FileId, NAMES_AT, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use abi::Errno;
use ramfs_server::server::{Incoming, Ramfs};
use ramfs_server::store::{self, StateArea, StateWrite, MAX_VOLUMES, STATE_BYTES, VOLUME_BYTES};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::rc::Rc;
use zerocopy::FromBytes;

const PAGE: u64 = 4096;
const ME: usize = 4;
const CRASH: &str = "simulated crash";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    /// The commit is not applied (the server died before it).
    Before,
    /// The commit is applied, then the server dies (before its reply).
    After,
}

#[derive(Default)]
struct Inner {
    pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
    commits: usize,
    crash: Option<(usize, When)>,
    room: Option<u64>,
}

/// A state area in host memory, sparse like the nucleus's.
#[derive(Clone, Default)]
struct Fake(Rc<RefCell<Inner>>);

impl Fake {
    fn pages(&self) -> usize {
        self.0.borrow().pages.len()
    }
    fn commits(&self) -> usize {
        self.0.borrow().commits
    }
    fn arm(&self, commit: usize, when: When) {
        self.0.borrow_mut().crash = Some((commit, when));
    }
    /// The bytes of volume `v`'s region, as an image file (sparse).
    fn image(&self, v: usize, path: &Path) {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(path).unwrap();
        f.set_len(VOLUME_BYTES).unwrap();
        let base = store::region_at(v) / PAGE;
        for (p, data) in self.0.borrow().pages.range(base..base + VOLUME_BYTES / PAGE) {
            f.seek(SeekFrom::Start((p - base) * PAGE)).unwrap();
            f.write_all(&data[..]).unwrap();
        }
    }
}

impl StateArea for Fake {
    fn size(&self) -> u64 {
        STATE_BYTES
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let inner = self.0.borrow();
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let n = ((PAGE - at % PAGE) as usize).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            match inner.pages.get(&(at / PAGE)) {
                Some(p) => dst.copy_from_slice(&p[(at % PAGE) as usize..(at % PAGE) as usize + n]),
                None => dst.fill(0),
            }
            done += n;
        }
        Ok(())
    }
    fn commit(&self, writes: &[StateWrite]) -> Result<(), Errno> {
        let crash = {
            let mut inner = self.0.borrow_mut();
            inner.commits += 1;
            let n = inner.commits;
            inner.crash.filter(|c| c.0 == n).map(|c| c.1)
        };
        if crash == Some(When::Before) {
            panic!("{CRASH}");
        }
        let mut inner = self.0.borrow_mut();
        for w in writes {
            match *w {
                StateWrite::Bytes { offset, data } => {
                    assert!(offset + data.len() as u64 <= STATE_BYTES);
                    let mut done = 0usize;
                    while done < data.len() {
                        let at = offset + done as u64;
                        let n = ((PAGE - at % PAGE) as usize).min(data.len() - done);
                        let page = inner.pages.entry(at / PAGE).or_insert_with(|| Box::new([0; PAGE as usize]));
                        page[(at % PAGE) as usize..(at % PAGE) as usize + n].copy_from_slice(&data[done..done + n]);
                        done += n;
                    }
                }
                StateWrite::Zero { offset, len } => {
                    assert!(offset + len <= STATE_BYTES);
                    let mut at = offset;
                    while at < offset + len {
                        let n = (PAGE - at % PAGE).min(offset + len - at);
                        if n == PAGE {
                            inner.pages.remove(&(at / PAGE));
                        } else if let Some(p) = inner.pages.get_mut(&(at / PAGE)) {
                            p[(at % PAGE) as usize..(at % PAGE + n) as usize].fill(0);
                        }
                        at += n;
                    }
                }
            }
        }
        drop(inner);
        if crash == Some(When::After) {
            panic!("{CRASH}");
        }
        Ok(())
    }
    fn room(&self) -> u64 {
        self.0.borrow().room.unwrap_or(u64::MAX)
    }
}

/// A request with a grant of test memory; direct copies from the fake area when `direct`.
struct Req {
    opcode: u32,
    args: [u64; 6],
    rid: u64,
    grant: RefCell<Vec<u8>>,
    state: Option<Fake>,
}

impl Req {
    fn bytes(&self, at: usize, len: usize) -> Vec<u8> {
        self.grant.borrow()[at..at + len].to_vec()
    }
}

impl Incoming for Req {
    fn opcode(&self) -> u32 {
        self.opcode
    }
    fn args(&self) -> [u64; 6] {
        self.args
    }
    fn rid(&self) -> u64 {
        self.rid
    }
    fn grant_len(&self) -> u64 {
        self.grant.borrow().len() as u64
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let g = self.grant.borrow();
        buf.copy_from_slice(g.get(offset as usize..offset as usize + buf.len()).ok_or(Errno::EFAULT)?);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let mut g = self.grant.borrow_mut();
        g.get_mut(offset as usize..offset as usize + data.len()).ok_or(Errno::EFAULT)?.copy_from_slice(data);
        Ok(())
    }
    fn state_to_grant(&self, offset: u64, state_offset: u64, len: u64) -> Result<bool, Errno> {
        let Some(state) = &self.state else { return Ok(false) };
        let mut buf = vec![0u8; len as usize];
        state.read(state_offset, &mut buf)?;
        self.write(offset, &buf)?;
        Ok(true)
    }
}

fn req(opcode: u32, args: [u64; 6], rid: u64, names: &[&[u8]], data: &[u8], grant: usize) -> Req {
    let names_len: usize = names.iter().map(|n| n.len()).sum();
    let mut g = vec![0u8; grant.max(NAMES_AT as usize + names_len).max(data.len())];
    g[..data.len()].copy_from_slice(data);
    let mut at = NAMES_AT as usize;
    for n in names {
        g[at..at + n.len()].copy_from_slice(n);
        at += n.len();
    }
    Req { opcode, args, rid, grant: RefCell::new(g), state: None }
}

fn clock() -> ext2::Timespec {
    ext2::Timespec::new(1_700_000_000, 0)
}

// ----- a boot archive -----

/// Appends one newc entry: (inode, name, mode, nlink, mtime), device (major, minor), data.
fn newc_entry(out: &mut Vec<u8>, head: (u32, &str, u32, u32, u32), rdev: (u32, u32), body: &[u8]) {
    let (ino, name, mode, nlink, mtime) = head;
    let fields = [ino, mode, 0, 0, nlink, mtime, body.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(body);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn archive() -> &'static [u8] {
    let mut a = Vec::new();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 31 + i / 977) as u8).collect();
    newc_entry(&mut a, (1, ".", S_IFDIR | 0o755, 2, 5), (0, 0), b"");
    newc_entry(&mut a, (2, "etc/passwd", S_IFREG | 0o644, 1, 100), (0, 0), b"root:x:0:0:root:/root:/bin/sh\n");
    newc_entry(&mut a, (3, "etc", S_IFDIR | 0o750, 2, 200), (0, 0), b"");
    newc_entry(&mut a, (4, "bin", S_IFDIR | 0o755, 2, 300), (0, 0), b"");
    newc_entry(&mut a, (5, "bin/busybox", S_IFREG | 0o755, 1, 400), (0, 0), &big);
    newc_entry(&mut a, (6, "bin/sh", S_IFLNK | 0o777, 1, 500), (0, 0), b"busybox");
    newc_entry(&mut a, (7, "dev/console", S_IFCHR | 0o600, 1, 600), (5, 1), b"");
    newc_entry(&mut a, (8, "bin/a", S_IFREG | 0o644, 2, 700), (0, 0), b"");
    newc_entry(&mut a, (8, "bin/b", S_IFREG | 0o644, 2, 700), (0, 0), b"linked data");
    newc_entry(&mut a, (9, "tmp", S_IFDIR | 0o1777, 2, 800), (0, 0), b"");
    newc_entry(&mut a, (0, "TRAILER!!!", 0, 1, 0), (0, 0), b"");
    Box::leak(a.into_boxed_slice())
}

// ----- a client -----

/// The server under test, its state area and the answers a client needs to go on.
struct Rig {
    state: Fake,
    fs: Ramfs<Fake>,
    initrd: &'static [u8],
    /// tmpfs roots by name.
    mounts: BTreeMap<String, u64>,
    /// Files opened (by OPEN) by name.
    opened: BTreeMap<String, u64>,
}

fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or("");
            if msg != CRASH {
                default(info);
            }
        }));
    });
}

impl Rig {
    fn new(initrd: &'static [u8]) -> Rig {
        quiet_crashes();
        let state = Fake::default();
        let (fs, started) = Ramfs::start(state.clone(), ME, clock, initrd).unwrap();
        assert!(started.fresh);
        Rig { state, fs, initrd, mounts: BTreeMap::new(), opened: BTreeMap::new() }
    }

    /// A new instance on the same area.
    fn restart(&mut self) {
        self.state.0.borrow_mut().crash = None;
        let (fs, started) = Ramfs::start(self.state.clone(), ME, clock, self.initrd).unwrap();
        assert!(!started.fresh);
        self.fs = fs;
    }

    fn call(&mut self, r: &Req) -> (i64, u64) {
        self.fs.handle(r)
    }

    /// (volume root, path inside it) of a test path: "@name/x" is in tmpfs `name`.
    fn split<'a>(&self, path: &'a str) -> (u64, &'a str) {
        match path.strip_prefix('@') {
            Some(rest) => {
                let (name, inner) = rest.split_once('/').unwrap_or((rest, ""));
                (self.mounts[name], inner)
            }
            None => (self.fs.root_of(0).unwrap().0, path),
        }
    }

    fn lookup_in(&mut self, mut dir: u64, path: &str) -> Result<u64, Errno> {
        for c in path.split('/').filter(|c| !c.is_empty()) {
            let (r, _) = self.call(&req(proto::LOOKUP, [dir, c.len() as u64, 0, 0, 0, 0], 0, &[c.as_bytes()], &[], 0));
            if r < 0 {
                return Err(Errno(-r as i32));
            }
            dir = r as u64;
        }
        Ok(dir)
    }

    fn resolve(&mut self, path: &str) -> Result<u64, Errno> {
        let (root, inner) = self.split(path);
        self.lookup_in(root, inner)
    }

    /// The directory and last name of a path.
    fn parent(&mut self, path: &str) -> (u64, String) {
        let (root, inner) = self.split(path);
        let (dir, name) = inner.rsplit_once('/').unwrap_or(("", inner));
        (self.lookup_in(root, dir).unwrap(), name.to_string())
    }
}

/// One step of a workload.
#[derive(Clone, Debug)]
enum Op {
    Mkdir(&'static str),
    Create(&'static str, u32),
    Write(&'static str, u64, Vec<u8>),
    Append(&'static str, Vec<u8>),
    Truncate(&'static str, u64),
    Chmod(&'static str, u32),
    Rename(&'static str, &'static str, u64),
    Link(&'static str, &'static str),
    Symlink(&'static str, &'static str),
    Unlink(&'static str),
    Rmdir(&'static str),
    Open(&'static str),
    Release(&'static str),
    Mount(&'static str),
    Umount(&'static str),
}

/// What a request answered: result, aux and the structure at offset 0 of the grant.
type Answer = (i64, u64, Vec<u8>);

impl Rig {
    /// The request for `op` (with request id `rid`), resolved against the current state.
    fn request(&mut self, op: &Op, rid: u64) -> Req {
        let owner = (1000u64 << 32) | 100;
        match op {
            Op::Mkdir(p) | Op::Create(p, _) => {
                let mode = match op {
                    Op::Create(_, m) => *m,
                    _ => S_IFDIR | 0o755,
                };
                let (dir, name) = self.parent(p);
                req(proto::CREATE, [dir, name.len() as u64, mode as u64, 0, owner, 0], rid, &[name.as_bytes()], &[], 0)
            }
            Op::Write(p, off, data) => {
                let f = self.resolve(p).unwrap();
                req(proto::WRITE, [f, *off, data.len() as u64, 0, 0, 0], rid, &[], data, 0)
            }
            Op::Append(p, data) => {
                let f = self.resolve(p).unwrap();
                req(proto::WRITE, [f, 0, data.len() as u64, proto::WRITE_APPEND, 0, 0], rid, &[], data, 0)
            }
            Op::Truncate(p, size) => {
                let f = self.resolve(p).unwrap();
                req(proto::SETATTR, [f, proto::SET_SIZE, 0, 0, *size, 0], rid, &[], &[], 0)
            }
            Op::Chmod(p, mode) => {
                let f = self.resolve(p).unwrap();
                req(proto::SETATTR, [f, proto::SET_MODE, *mode as u64, 0, 0, 0], rid, &[], &[], 0)
            }
            Op::Rename(from, to, flags) => {
                let (fd, fname) = self.parent(from);
                let (td, tname) = self.parent(to);
                let args = [fd, td, fname.len() as u64, tname.len() as u64, *flags, 0];
                req(proto::RENAME, args, rid, &[fname.as_bytes(), tname.as_bytes()], &[], 0)
            }
            Op::Link(from, to) => {
                let f = self.resolve(from).unwrap();
                let (td, tname) = self.parent(to);
                req(proto::LINK, [f, td, tname.len() as u64, 0, 0, 0], rid, &[tname.as_bytes()], &[], 0)
            }
            Op::Symlink(p, target) => {
                let (dir, name) = self.parent(p);
                let args = [dir, name.len() as u64, target.len() as u64, owner, 0, 0];
                req(proto::SYMLINK, args, rid, &[name.as_bytes(), target.as_bytes()], &[], 0)
            }
            Op::Unlink(p) | Op::Rmdir(p) => {
                let (dir, name) = self.parent(p);
                let flags = if matches!(op, Op::Rmdir(_)) { proto::UNLINK_DIR } else { 0 };
                req(proto::UNLINK, [dir, name.len() as u64, flags, 0, 0, 0], rid, &[name.as_bytes()], &[], 0)
            }
            Op::Open(p) => {
                let f = self.resolve(p).unwrap();
                req(proto::OPEN, [f, 0, 0, 0, 0, 0], rid, &[], &[], 0)
            }
            Op::Release(p) => req(proto::RELEASE, [self.opened[*p], 0, 0, 0, 0, 0], rid, &[], &[], 0),
            Op::Mount(_) => req(proto::MOUNT, [proto::MOUNT_TMPFS, 0, 0, 0, 0, 0], rid, &[], &[], 0),
            Op::Umount(name) => req(proto::UMOUNT, [self.mounts[*name], 0, 0, 0, 0, 0], rid, &[], &[], 0),
        }
    }

    /// Sends `r` for `op`; notes what a client would (a tmpfs root).
    fn send(&mut self, op: &Op, r: &Req) -> Answer {
        let (result, aux) = self.call(r);
        match op {
            Op::Mount(name) if result >= 0 => {
                self.mounts.insert(name.to_string(), result as u64);
            }
            Op::Umount(name) if result >= 0 => {
                self.mounts.remove(*name);
            }
            Op::Open(p) if result >= 0 => {
                self.opened.insert(p.to_string(), r.args[0]);
            }
            _ => {}
        }
        (result, aux, r.bytes(0, std::mem::size_of::<Attr>()))
    }

    fn run(&mut self, op: &Op, rid: u64) -> Answer {
        let r = self.request(op, rid);
        self.send(op, &r)
    }

    /// Everything a client can see: every volume's tree (paths, types, modes, owners, link
    /// counts, sizes, times, contents, link targets) and the files held open.
    fn snapshot(&mut self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for v in 0..MAX_VOLUMES {
            if let Some(root) = self.fs.root_of(v) {
                self.walk(root.0, &format!("v{v}:"), &mut out);
            }
        }
        for (f, count) in self.fs.open_files() {
            out.insert(format!("open:{:x}", f.0), format!("{count} {}", self.describe(f.0)));
        }
        out
    }

    fn getattr(&mut self, f: u64) -> Result<Attr, Errno> {
        let r = req(proto::GETATTR, [f, 0, 0, 0, 0, 0], 0, &[], &[], 0);
        let (res, _) = self.call(&r);
        if res < 0 {
            return Err(Errno(-res as i32));
        }
        Ok(Attr::read_from_bytes(&r.bytes(0, std::mem::size_of::<Attr>())).unwrap())
    }

    fn read_file(&mut self, f: u64, size: u64, direct: bool) -> Vec<u8> {
        let mut r = req(proto::READ, [f, 0, size + 10, 0, 0, 0], 0, &[], &[], size as usize + 10);
        if direct {
            r.state = Some(self.state.clone());
        }
        let (n, _) = self.call(&r);
        assert!(n >= 0, "read: {n}");
        r.bytes(0, n as usize)
    }

    fn describe(&mut self, f: u64) -> String {
        let a = match self.getattr(f) {
            Ok(a) => a,
            Err(e) => return format!("gone {e:?}"),
        };
        let body = match a.mode & S_IFMT {
            S_IFREG => {
                let data = self.read_file(f, a.size, true);
                assert!(data == self.read_file(f, a.size, false), "direct and buffered reads agree");
                format!("{:x}", md5(&data))
            }
            S_IFLNK => {
                let r = req(proto::READLINK, [f, 4096, 0, 0, 0, 0], 0, &[], &[], 4096);
                let (n, _) = self.call(&r);
                String::from_utf8(r.bytes(0, n as usize)).unwrap()
            }
            _ => String::new(),
        };
        format!(
            "mode={:o} nlink={} uid={} gid={} size={} rdev={} mtime={:?} {body}",
            a.mode, a.nlink, a.uid, a.gid, a.size, a.rdev, a.mtime
        )
    }

    fn walk(&mut self, dir: u64, prefix: &str, out: &mut BTreeMap<String, String>) {
        out.insert(prefix.to_string(), self.describe(dir));
        let mut cookie = 0;
        let mut children = Vec::new();
        loop {
            let r = req(proto::READDIR, [dir, cookie, 4096, 0, 0, 0], 0, &[], &[], 4096);
            let (n, next) = self.call(&r);
            assert!(n >= 0);
            if n == 0 {
                break;
            }
            let g = r.grant.borrow();
            let mut at = 0;
            while at < n as usize {
                let reclen = u16::from_le_bytes([g[at + 16], g[at + 17]]) as usize;
                let name: Vec<u8> = g[at + 19..at + reclen].iter().copied().take_while(|&c| c != 0).collect();
                if name != b"." && name != b".." {
                    children.push(String::from_utf8(name).unwrap());
                }
                at += reclen;
            }
            cookie = next;
        }
        for c in children {
            let f = self.lookup_in(dir, &c).unwrap();
            let path = format!("{prefix}/{c}");
            if self.getattr(f).unwrap().mode & S_IFMT == S_IFDIR {
                self.walk(f, &path, out);
            } else {
                out.insert(path, self.describe(f));
            }
        }
    }

    /// Every mounted volume is e2fsck-clean (call with no unlinked file held open).
    fn fsck(&self, tag: &str) {
        let dir = std::env::temp_dir().join(format!("ramfs-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for v in 0..MAX_VOLUMES {
            if self.fs.root_of(v).is_none() {
                continue;
            }
            let img = dir.join(format!("v{v}.img"));
            self.state.image(v, &img);
            let out = Command::new("e2fsck").arg("-fn").arg(&img).output().expect("e2fsck (apt-get install e2fsprogs)");
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.code() == Some(0), "{tag}: volume {v} is not clean:\n{text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A tiny MD5-free content digest (FNV-1a 64) for snapshots.
fn md5(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn workload() -> Vec<Op> {
    let pattern =
        |seed: u32, n: usize| -> Vec<u8> { (0..n as u32).map(|i| (i.wrapping_mul(seed) >> 3) as u8).collect() };
    vec![
        Op::Mkdir("tmp/w"),
        Op::Create("tmp/w/a", S_IFREG | 0o644),
        Op::Write("tmp/w/a", 0, pattern(7, 10_000)),
        Op::Append("tmp/w/a", b"appended\n".to_vec()),
        Op::Write("tmp/w/a", 70_000, pattern(3, 200_000)),
        Op::Truncate("tmp/w/a", 50_000),
        Op::Chmod("tmp/w/a", 0o600),
        Op::Link("tmp/w/a", "tmp/hard"),
        Op::Symlink("tmp/w/s", "../hard"),
        Op::Rename("tmp/w/a", "tmp/w/b", 0),
        Op::Create("tmp/w/c", S_IFREG | 0o644),
        Op::Rename("tmp/w/b", "tmp/w/c", 0),
        Op::Rename("tmp/w", "etc/w", 0),
        Op::Open("etc/w/c"),
        Op::Unlink("etc/w/c"),
        Op::Write("bin/busybox", 1000, b"patched".to_vec()),
        Op::Mount("t"),
        Op::Mkdir("@t/d"),
        Op::Create("@t/d/f", S_IFREG | 0o644),
        Op::Write("@t/d/f", 0, pattern(11, 70_000)),
        Op::Unlink("tmp/hard"),
        Op::Release("etc/w/c"),
        Op::Unlink("bin/busybox"),
        Op::Unlink("@t/d/f"),
        Op::Rmdir("@t/d"),
        Op::Umount("t"),
        Op::Rmdir("etc/w/s"),
        Op::Unlink("etc/w/s"),
        Op::Rmdir("etc/w"),
    ]
}

fn rid(i: usize) -> u64 {
    0x0700_0000_0000_0000 | (i as u64 + 1)
}

/// The reference run: the answer to every op and the state after each.
fn reference(initrd: &'static [u8], ops: &[Op]) -> (Vec<Answer>, Vec<BTreeMap<String, String>>, Vec<usize>) {
    let mut rig = Rig::new(initrd);
    let mut answers = Vec::new();
    let mut states = vec![rig.snapshot()];
    let mut commits = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let before = rig.state.commits();
        answers.push(rig.run(op, rid(i)));
        commits.push(rig.state.commits() - before);
        states.push(rig.snapshot());
    }
    rig.fsck("reference");
    (answers, states, commits)
}

#[test]
fn the_workload_answers_as_linux_would() {
    let initrd = archive();
    let (answers, states, _) = reference(initrd, &workload());
    let errno = |i: usize| answers[i].0;
    assert!(answers.iter().take(26).all(|a| a.0 >= 0), "{answers:?}");
    assert_eq!(answers[3].1, 10_009, "append answers the offset after it");
    assert_eq!(errno(26), Errno::ENOTDIR.as_return(), "rmdir of a symlink");
    assert!(answers[27].0 == 0 && answers[28].0 == 0);
    let s = &states[16];
    assert!(!s.contains_key("v0:/etc/w/b") && !s.contains_key("v0:/etc/w/c"));
    let open: Vec<&String> = states[21].iter().filter(|(k, _)| k.starts_with("open:")).map(|(_, v)| v).collect();
    assert!(open.len() == 1 && open[0].starts_with("1 mode=100600 nlink=0 "), "unlinked, open: {open:?}");
    assert!(!states[22].keys().any(|k| k.starts_with("open:")), "freed at its last release");
    // The archive, as loaded.
    let boot = &states[0];
    assert!(boot["v0:/etc"].starts_with("mode=40750 nlink=2 uid=0 gid=0 size=4096 rdev=0 mtime=Timespec { sec: 200"));
    assert!(boot["v0:/bin/sh"].ends_with(" busybox"));
    assert!(boot["v0:/dev/console"].contains(&format!("rdev={}", abi::proto::makedev(5, 1))));
    assert!(boot["v0:/bin/a"].contains("nlink=2"), "hard link: {}", boot["v0:/bin/a"]);
    assert_eq!(boot["v0:/bin/a"], boot["v0:/bin/b"]);
    assert!(boot["v0:/bin/busybox"].contains("size=300000"));
    assert!(boot["v0:/tmp"].starts_with("mode=41777"));
}

#[test]
fn a_crash_at_any_commit_leaves_the_state_before_or_after() {
    let initrd = archive();
    let ops = workload();
    let (answers, states, commits) = reference(initrd, &ops);
    let mut scenarios = 0;
    for (i, op) in ops.iter().enumerate() {
        for c in 1..=commits[i] {
            for when in [When::Before, When::After] {
                scenarios += 1;
                let mut rig = Rig::new(initrd);
                for (j, o) in ops[..i].iter().enumerate() {
                    rig.run(o, rid(j));
                }
                let r = rig.request(op, rid(i));
                rig.state.arm(rig.state.commits() + c, when);
                let outcome = catch_unwind(AssertUnwindSafe(|| rig.send(op, &r)));
                assert!(outcome.is_err(), "op {i} {op:?}: commit {c} should have crashed");
                rig.restart();
                let now = rig.snapshot();
                let which = if now == states[i] {
                    "before"
                } else if now == states[i + 1] {
                    "after"
                } else {
                    let diff: Vec<_> = now.iter().filter(|(k, v)| states[i].get(*k) != Some(v)).collect();
                    panic!("op {i} {op:?}, crash {when:?} commit {c}: neither before nor after: {diff:?}");
                };
                if when == When::Before && c == 1 {
                    assert_eq!(which, "before", "op {i} {op:?}: nothing was committed");
                }
                // The client retries with the same request id.
                let again = rig.send(op, &r);
                assert_eq!(again, answers[i], "op {i} {op:?}, crash {when:?} commit {c}: the retry's answer");
                assert!(rig.snapshot() == states[i + 1], "op {i} {op:?}: state after the retry");
                for (j, o) in ops.iter().enumerate().skip(i + 1) {
                    assert_eq!(rig.run(o, rid(j)).0, answers[j].0, "op {j} after a crash in op {i}");
                }
                assert!(rig.snapshot() == *states.last().unwrap());
                if scenarios % 4 == 0 {
                    rig.fsck(&format!("crash-{i}-{c}-{when:?}"));
                }
            }
        }
    }
    assert!(scenarios > 50, "{scenarios} scenarios");
}

#[test]
fn loading_the_archive_resumes_after_a_crash_at_any_commit() {
    let initrd = archive();
    let want = Rig::new(initrd).snapshot();
    let state = Fake::default();
    quiet_crashes();
    let (_, _) = Ramfs::start(state.clone(), ME, clock, initrd).unwrap();
    let total = state.commits();
    assert!(total >= 10, "one commit per entry ({total})");
    for c in 1..=total {
        for when in [When::Before, When::After] {
            let state = Fake::default();
            state.arm(c, when);
            let crashed = catch_unwind(AssertUnwindSafe(|| Ramfs::start(state.clone(), ME, clock, initrd).map(|_| ())));
            assert!(crashed.is_err());
            state.0.borrow_mut().crash = None;
            let (fs, _) = Ramfs::start(state.clone(), ME, clock, initrd).unwrap();
            let mut rig = Rig { state, fs, initrd, mounts: BTreeMap::new(), opened: BTreeMap::new() };
            assert!(rig.snapshot() == want, "crash {when:?} at commit {c} of the load");
        }
    }
}

#[test]
fn an_unlinked_open_file_survives_restarts_and_its_memory_comes_back() {
    let initrd = archive();
    let mut rig = Rig::new(initrd);
    let empty = rig.state.pages();
    rig.run(&Op::Create("tmp/big", S_IFREG | 0o644), 1);
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i >> 5) as u8 | 1).collect();
    assert_eq!(rig.run(&Op::Write("tmp/big", 0, data.clone()), 2).0, 1 << 20);
    let full = rig.state.pages();
    assert!(full >= empty + 256, "{empty} -> {full}");
    rig.run(&Op::Open("tmp/big"), 3);
    rig.run(&Op::Unlink("tmp/big"), 4);
    for _ in 0..3 {
        rig.restart();
    }
    let f = rig.opened["tmp/big"];
    assert!(rig.read_file(f, 1 << 20, true) == data, "readable after restarts");
    assert_eq!(rig.getattr(f).unwrap().nlink, 0);
    rig.run(&Op::Release("tmp/big"), 5);
    assert_eq!(rig.getattr(f), Err(Errno::ESTALE));
    let after = rig.state.pages();
    assert!(after <= empty + 2, "pages: {empty} empty, {full} full, {after} after the last release");
    rig.restart();
    rig.fsck("unlinked-open");
    // A tmpfs gives everything back when it goes.
    rig.run(&Op::Mount("t"), 6);
    rig.run(&Op::Create("@t/f", S_IFREG | 0o644), 7);
    rig.run(&Op::Write("@t/f", 0, data), 8);
    rig.run(&Op::Umount("t"), 9);
    assert!(rig.state.pages() <= after, "umount frees the volume");
}

#[test]
fn running_out_of_memory_is_enospc_and_leaves_nothing_behind() {
    let initrd = archive();
    let mut rig = Rig::new(initrd);
    rig.run(&Op::Create("tmp/f", S_IFREG | 0o644), 1);
    let before = rig.snapshot();
    rig.state.0.borrow_mut().room = Some(64 << 10);
    let (r, _, _) = rig.run(&Op::Write("tmp/f", 0, vec![7u8; 256 << 10]), 2);
    assert_eq!(r, Errno::ENOSPC.as_return());
    assert!(rig.snapshot() == before);
    assert_eq!(rig.run(&Op::Write("tmp/f", 0, vec![7u8; 16 << 10]), 3).0, 16 << 10, "small writes still fit");
    rig.state.0.borrow_mut().room = None;
    assert_eq!(rig.run(&Op::Write("tmp/f", 0, vec![7u8; 256 << 10]), 4).0, 256 << 10);
    rig.fsck("enospc");
}

#[test]
fn stale_ids_and_the_volume_table() {
    let initrd = archive();
    let mut rig = Rig::new(initrd);
    let root = rig.fs.root_of(0).unwrap();
    assert_eq!(root.ino(), 2);
    let r = req(proto::MOUNT, [proto::MOUNT_INITRAMFS, 0, 0, 0, 0, 0], 0, &[], &[], 0);
    assert_eq!(rig.call(&r).0 as u64, root.0);
    let a = Attr::read_from_bytes(&r.grant.borrow()[..std::mem::size_of::<Attr>()]).unwrap();
    assert_eq!(a.mode & S_IFMT, S_IFDIR);
    assert_eq!(rig.call(&req(proto::UMOUNT, [root.0, 0, 0, 0, 0, 0], 9, &[], &[], 0)).0, Errno::EBUSY.as_return());
    let r = req(proto::MOUNT, [77, 0, 0, 0, 0, 0], 0, &[], &[], 0);
    assert_eq!(rig.call(&r).0, Errno::ENODEV.as_return());
    for (f, want) in [(FileId::new(ME, 9, 2), Errno::ESTALE), (FileId::new(ME + 1, 0, 2), Errno::ESTALE)] {
        let r = req(proto::GETATTR, [f.0, 0, 0, 0, 0, 0], 0, &[], &[], 0);
        assert_eq!(rig.call(&r).0, want.as_return());
    }
    // Mount until the table is full; every volume is distinct and survives a restart.
    let mut roots = Vec::new();
    loop {
        let r = req(proto::MOUNT, [proto::MOUNT_TMPFS, 0, 0, 0, 0, 0], 100 + roots.len() as u64, &[], &[], 0);
        let (res, _) = rig.call(&r);
        if res < 0 {
            assert_eq!(res, Errno::ENOMEM.as_return());
            break;
        }
        roots.push(res as u64);
    }
    assert_eq!(roots.len(), MAX_VOLUMES - 1);
    rig.restart();
    let r = req(proto::STATFS, [roots[5], 0, 0, 0, 0, 0], 0, &[], &[], 0);
    assert_eq!(rig.call(&r).0, 0);
    let s =
        abi::proto::StatFs::read_from_bytes(&r.grant.borrow()[..std::mem::size_of::<abi::proto::StatFs>()]).unwrap();
    assert_eq!(s.fs_type, 0x0102_1994);
    assert!(s.blocks > 60_000);
    for (i, root) in roots.iter().enumerate() {
        let r = req(proto::UMOUNT, [*root, 0, 0, 0, 0, 0], 200 + i as u64, &[], &[], 0);
        assert_eq!(rig.call(&r).0, 0);
    }
}

#[test]
fn recall_answers_what_a_committed_request_answered() {
    let mut rig = Rig::new(archive());
    let root = rig.fs.root_of(0).unwrap().0;
    let name = b"recalled";
    let create = req(proto::CREATE, [root, name.len() as u64, 0o100644, 0, 0, 0], 41, &[name], &[], 0);
    let (file, _) = rig.call(&create);
    assert!(file > 0);
    rig.restart();
    let recall = |rid| req(proto::RECALL, [0; 6], rid, &[], &[], 0);
    assert_eq!(rig.call(&recall(41)).0, file, "the record survives a restart");
    assert_eq!(rig.call(&recall(42)).0, Errno::ENOMSG.as_return(), "no record, no answer");
    assert_eq!(rig.call(&recall(0)).0, Errno::ENOMSG.as_return(), "rid 0 is never recorded");
}

/// Host timing of the request paths (`cargo test --release -p ramfs-server --test host -- --ignored --nocapture`).
#[test]
#[ignore]
fn bench_request_paths() {
    use std::time::Instant;
    let initrd = archive();
    let mut rig = Rig::new(initrd);
    let root = rig.fs.root_of(0).unwrap().0;
    let bin = rig.resolve("bin").unwrap();
    let bb = rig.resolve("bin/busybox").unwrap();
    let n = 20_000;
    let time = |rig: &mut Rig, what: &str, r: &Req| {
        let t = Instant::now();
        for _ in 0..n {
            rig.call(r);
        }
        println!("{what:>24}: {:>8.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
    };
    time(&mut rig, "GETATTR", &req(proto::GETATTR, [bb, 0, 0, 0, 0, 0], 0, &[], &[], 0));
    time(&mut rig, "LOOKUP bin", &req(proto::LOOKUP, [root, 3, 0, 0, 0, 0], 0, &[b"bin"], &[], 0));
    time(&mut rig, "LOOKUP busybox", &req(proto::LOOKUP, [bin, 7, 0, 0, 0, 0], 0, &[b"busybox"], &[], 0));
    let mut r = req(proto::READ, [bb, 0, 65536, 0, 0, 0], 0, &[], &[], 65536);
    time(&mut rig, "READ 64K buffered", &r);
    r.state = Some(rig.state.clone());
    time(&mut rig, "READ 64K direct(fake)", &r);
    let mut rid = 1000;
    let t = Instant::now();
    for _ in 0..n / 2 {
        rid += 1;
        rig.call(&req(proto::OPEN, [bb, 0, 0, 0, 0, 0], rid, &[], &[], 0));
        rid += 1;
        rig.call(&req(proto::RELEASE, [bb, 0, 0, 0, 0, 0], rid, &[], &[], 0));
    }
    println!("{:>24}: {:>8.0} ns", "OPEN+RELEASE", t.elapsed().as_nanos() as f64 / (n / 2) as f64);
    let f = rig.run(&Op::Create("tmp/f", S_IFREG | 0o644), 1).0 as u64;
    let data = vec![1u8; 4096];
    let t = Instant::now();
    for i in 0..n / 10 {
        rid += 1;
        rig.call(&req(proto::WRITE, [f, (i % 64) as u64 * 4096, 4096, 0, 0, 0], rid, &[], &data, 0));
    }
    println!("{:>24}: {:>8.0} ns", "WRITE 4K (overwrite)", t.elapsed().as_nanos() as f64 / (n / 10) as f64);
    let tmp = rig.resolve("tmp").unwrap();
    let t = Instant::now();
    for _ in 0..n / 10 {
        rid += 1;
        let (f, _) = rig.call(&req(proto::CREATE, [tmp, 1, (S_IFREG | 0o644) as u64, 0, 0, 0], rid, &[b"s"], &[], 0));
        let f = f as u64;
        rid += 1;
        rig.call(&req(proto::OPEN, [f, 0, 0, 0, 0, 0], rid, &[], &[], 0));
        rid += 1;
        rig.call(&req(proto::WRITE, [f, 0, 100, 0, 0, 0], rid, &[], &[7u8; 100], 0));
        rid += 1;
        rig.call(&req(proto::RELEASE, [f, 0, 0, 0, 0, 0], rid, &[], &[], 0));
        rid += 1;
        rig.call(&req(proto::UNLINK, [tmp, 1, 0, 0, 0, 0], rid, &[b"s"], &[], 0));
    }
    println!("{:>24}: {:>8.0} ns", "small file cycle", t.elapsed().as_nanos() as f64 / (n / 10) as f64);
}

/// The create/open/write/release/unlink cycle alone, for instruction counts under callgrind.
#[test]
#[ignore]
fn bench_small_file_cycle() {
    let mut rig = Rig::new(archive());
    let tmp = rig.resolve("tmp").unwrap();
    let mut rid = 1000;
    for _ in 0..2000 {
        rid += 1;
        let (f, _) = rig.call(&req(proto::CREATE, [tmp, 1, (S_IFREG | 0o644) as u64, 0, 0, 0], rid, &[b"s"], &[], 0));
        let f = f as u64;
        rid += 1;
        rig.call(&req(proto::OPEN, [f, 0, 0, 0, 0, 0], rid, &[], &[], 0));
        rid += 1;
        rig.call(&req(proto::WRITE, [f, 0, 100, 0, 0, 0], rid, &[], &[7u8; 100], 0));
        rid += 1;
        rig.call(&req(proto::RELEASE, [f, 0, 0, 0, 0, 0], rid, &[], &[], 0));
        rid += 1;
        rig.call(&req(proto::UNLINK, [tmp, 1, 0, 0, 0, 0], rid, &[b"s"], &[], 0));
    }
}

/// 64 KiB direct reads with a transport that copies nothing: the server's own cost.
#[test]
#[ignore]
fn bench_direct_read_overhead() {
    struct NoCopy(Req);
    impl Incoming for NoCopy {
        fn opcode(&self) -> u32 {
            self.0.opcode
        }
        fn args(&self) -> [u64; 6] {
            self.0.args
        }
        fn rid(&self) -> u64 {
            0
        }
        fn grant_len(&self) -> u64 {
            65536
        }
        fn read(&self, o: u64, b: &mut [u8]) -> Result<(), Errno> {
            self.0.read(o, b)
        }
        fn write(&self, o: u64, d: &[u8]) -> Result<(), Errno> {
            self.0.write(o, d)
        }
        fn state_to_grant(&self, _: u64, _: u64, _: u64) -> Result<bool, Errno> {
            Ok(true)
        }
    }
    let mut rig = Rig::new(archive());
    let bb = rig.resolve("bin/busybox").unwrap();
    for i in 0..10_000u64 {
        let r = NoCopy(req(proto::READ, [bb, (i % 4) * 65536, 65536, 0, 0, 0], 0, &[], &[], 0));
        assert_eq!(rig.fs.handle(&r).0, 65536);
    }
}
