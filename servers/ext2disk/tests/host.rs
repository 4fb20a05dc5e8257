//! Host tests of the disk server: `DiskFs` over a fake state area (which can "crash" at any
//! commit, before or after applying it) and a fake disk (an image in memory that counts
//! flushes and refuses anything outside the device), on images made by `mke2fs -t ext2`.
//!
//! What they hold the server to: a workload through the protocol reads back exactly, and
//! after `sync` the image is `e2fsck -fn` clean and holds what was written; nothing reaches
//! the disk before a write-back, everything does after `sync`/`fsync`/`umount`; after a
//! crash at any commit, a new instance on the same area and disk answers the retried request
//! as the first would have and the final image is the same as without crashes; corrupt
//! images are refused or answered with errors, never a panic.

use abi::proto::blk::{BlkInfo, INFO_FLUSH};
use abi::proto::fs as proto;
use abi::proto::{Attr, NAMES_AT, S_IFDIR, S_IFLNK, S_IFREG};
use abi::Errno;
use ext2disk_server::overlay::Disk;
use ext2disk_server::server::{DiskFs, Incoming, DIRTY_LIMIT};
use ext2disk_server::store::{StateArea, StateWrite, STATE_BYTES};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use zerocopy::FromBytes;

const PAGE: u64 = 4096;
const ME: usize = 9;
const CRASH: &str = "simulated crash";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    Before,
    After,
}

#[derive(Default)]
struct AreaInner {
    pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
    commits: usize,
    crash: Option<(usize, When)>,
}

/// A sparse state area in host memory.
#[derive(Clone, Default)]
struct Area(Rc<RefCell<AreaInner>>);

impl StateArea for Area {
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
        u64::MAX
    }
}

#[derive(Default)]
struct DiskInner {
    image: Vec<u8>,
    writes: usize,
    flushes: usize,
    /// Writes fail with EIO (a failing disk).
    broken: bool,
}

/// The block server's disk, in memory: 512-byte blocks, a write cache.
#[derive(Clone, Default)]
struct MemDisk(Rc<RefCell<DiskInner>>);

impl MemDisk {
    fn new(image: Vec<u8>) -> MemDisk {
        MemDisk(Rc::new(RefCell::new(DiskInner { image, ..Default::default() })))
    }
    fn image(&self) -> Vec<u8> {
        self.0.borrow().image.clone()
    }
    fn range(&self, offset: u64, len: usize) -> Result<std::ops::Range<usize>, Errno> {
        let size = self.0.borrow().image.len() as u64;
        if !offset.is_multiple_of(512) || !len.is_multiple_of(512) || len == 0 || offset + len as u64 > size {
            return Err(Errno::EINVAL); // as blk answers
        }
        Ok(offset as usize..offset as usize + len)
    }
}

impl Disk for MemDisk {
    fn info(&self) -> Result<BlkInfo, Errno> {
        let size = self.0.borrow().image.len() as u64;
        Ok(BlkInfo { size_bytes: size, block_size: 512, flags: INFO_FLUSH, max_transfer: 65536, queue_depth: 16 })
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let r = self.range(offset, buf.len())?;
        buf.copy_from_slice(&self.0.borrow().image[r]);
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let r = self.range(offset, data.len())?;
        let mut d = self.0.borrow_mut();
        if d.broken {
            return Err(Errno::EIO);
        }
        d.image[r].copy_from_slice(data);
        d.writes += 1;
        Ok(())
    }
    fn flush(&self) -> Result<(), Errno> {
        self.0.borrow_mut().flushes += 1;
        Ok(())
    }
}

/// A request with a grant of test memory.
struct Req {
    opcode: u32,
    args: [u64; 6],
    rid: u64,
    grant: RefCell<Vec<u8>>,
    /// Direct disk reads into the grant (as the kernel transport does), through this disk.
    direct: Option<MemDisk>,
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
    fn disk_to_grant(&self, offset: u64, disk_offset: u64, len: u64) -> Result<bool, Errno> {
        let Some(disk) = &self.direct else { return Ok(false) };
        let mut buf = vec![0u8; len as usize];
        disk.read(disk_offset, &mut buf)?;
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
    Req { opcode, args, rid, grant: RefCell::new(g), direct: None }
}

fn clock() -> ext2::Timespec {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    ext2::Timespec::new(d.as_secs() as i64, 0)
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

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-V").output().is_ok()
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ext2disk-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An image made by `mke2fs -t ext2` with `block_size`, `mib` MiB, from `tree` if any.
fn mke2fs(dir: &Path, block_size: u32, mib: u64, tree: Option<&Path>) -> Vec<u8> {
    let img = dir.join(format!("mk-{block_size}.img"));
    let _ = std::fs::remove_file(&img);
    std::fs::File::create(&img).unwrap().set_len(mib << 20).unwrap();
    let mut cmd = Command::new("mke2fs");
    cmd.args(["-q", "-F", "-t", "ext2", "-b", &block_size.to_string()]);
    if let Some(t) = tree {
        cmd.arg("-d").arg(t);
    }
    let out = cmd.arg(&img).output().unwrap();
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&img).unwrap()
}

/// `e2fsck -fn` on `image`: Ok or its report.
fn fsck(dir: &Path, image: &[u8]) -> Result<(), String> {
    let img = dir.join("check.img");
    std::fs::write(&img, image).unwrap();
    let out = Command::new("e2fsck").args(["-fn"]).arg(&img).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// The server, its area and disk, and a client's request ids.
struct Rig {
    area: Area,
    disk: MemDisk,
    fs: DiskFs<Area, MemDisk>,
    root: u64,
    rid: u64,
    direct: bool,
}

impl Rig {
    fn new(image: Vec<u8>) -> Rig {
        quiet_crashes();
        let area = Area::default();
        let disk = MemDisk::new(image);
        let (fs, started) = DiskFs::start(area.clone(), disk.clone(), ME, clock).unwrap();
        assert!(!started.remounted);
        let mut rig = Rig { area, disk, fs, root: 0, rid: 0, direct: false };
        let (r, _) = rig.call(proto::MOUNT, [proto::MOUNT_DEVICE, 0, 8, 0, 0, 0], &[b"/dev/vda"], &[], 256);
        assert!(r > 0, "mount: {r}");
        rig.root = r as u64;
        rig
    }

    fn restart(&mut self) {
        self.area.0.borrow_mut().crash = None;
        let (fs, started) = DiskFs::start(self.area.clone(), self.disk.clone(), ME, clock).unwrap();
        assert!(started.remounted);
        self.fs = fs;
    }

    fn make(&mut self, opcode: u32, args: [u64; 6], names: &[&[u8]], data: &[u8], grant: usize) -> Req {
        self.rid += 1;
        let mut r = req(opcode, args, self.rid, names, data, grant);
        if self.direct {
            r.direct = Some(self.disk.clone());
        }
        r
    }

    fn call(&mut self, opcode: u32, args: [u64; 6], names: &[&[u8]], data: &[u8], grant: usize) -> (i64, u64) {
        let r = self.make(opcode, args, names, data, grant);
        self.fs.handle(&r)
    }

    /// Like `call`, but the server crashes at its `n`-th commit from now (`when`); it is
    /// restarted and the request retried with the same rid, as `call_named` does.
    fn call_crashing(&mut self, r: &Req, n: usize, when: When) -> (i64, u64) {
        let base = self.area.0.borrow().commits;
        self.area.0.borrow_mut().crash = Some((base + n, when));
        match catch_unwind(AssertUnwindSafe(|| self.fs.handle(r))) {
            Ok(answer) => {
                self.area.0.borrow_mut().crash = None;
                answer
            }
            Err(_) => {
                self.restart();
                self.fs.handle(r)
            }
        }
    }

    fn lookup(&mut self, path: &str) -> Result<u64, Errno> {
        let mut dir = self.root;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            let r = req(proto::LOOKUP, [dir, c.len() as u64, 0, 0, 0, 0], 0, &[c.as_bytes()], &[], 256);
            let (res, _) = self.fs.handle(&r);
            if res < 0 {
                return Err(Errno(-res as i32));
            }
            dir = res as u64;
        }
        Ok(dir)
    }

    fn parent(&mut self, path: &str) -> (u64, String) {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        (self.lookup(dir).unwrap(), name.to_string())
    }

    fn attr(&mut self, file: u64) -> Attr {
        let r = req(proto::GETATTR, [file, 0, 0, 0, 0, 0], 0, &[], &[], 256);
        assert_eq!(self.fs.handle(&r).0, 0);
        let attr = Attr::read_from_bytes(&r.grant.borrow()[..core::mem::size_of::<Attr>()]).unwrap();
        attr
    }

    fn read_all(&mut self, path: &str) -> Vec<u8> {
        let f = self.lookup(path).unwrap();
        let size = self.attr(f).size as usize;
        let mut out = Vec::new();
        while out.len() < size {
            let r = self.make(proto::READ, [f, out.len() as u64, 1 << 20, 0, 0, 0], &[], &[], 1 << 20);
            let (n, _) = self.fs.handle(&r);
            assert!(n > 0, "read {path} at {}: {n}", out.len());
            out.extend_from_slice(&r.grant.borrow()[..n as usize]);
        }
        out
    }
}

/// One step of the workload.
#[derive(Clone, Debug)]
enum Op {
    Mkdir(&'static str),
    Create(&'static str),
    Write(&'static str, u64, Vec<u8>),
    Truncate(&'static str, u64),
    Rename(&'static str, &'static str),
    Link(&'static str, &'static str),
    Symlink(&'static str, &'static str),
    Unlink(&'static str),
    Rmdir(&'static str),
    Fsync(&'static str),
    Sync,
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2654435761) >> 13).wrapping_add(seed) as u8).collect()
}

/// The workload: directories, files in every size class of the block map (direct, single,
/// double and triple indirect through a write far out), renames, links, truncation, removal.
fn workload(block_size: u32) -> Vec<Op> {
    // Past the double-indirect range: 12 + k + k² blocks (k pointers per block).
    let k = u64::from(block_size / 4);
    let far = (12 + k + k * k + 3) * u64::from(block_size) + 123;
    vec![
        Op::Mkdir("d"),
        Op::Mkdir("d/e"),
        Op::Create("d/small"),
        Op::Write("d/small", 0, b"hello, disk\n".to_vec()),
        Op::Create("d/e/mid"),
        Op::Write("d/e/mid", 0, pattern(1, 300_000)),
        Op::Create("sparse"),
        Op::Write("sparse", far, pattern(2, 5000)),
        Op::Write("sparse", 7, b"head".to_vec()),
        Op::Fsync("sparse"),
        Op::Link("d/small", "hard"),
        Op::Symlink("soft", "d/e/mid"),
        Op::Rename("d/e/mid", "moved"),
        Op::Write("moved", 299_990, pattern(3, 20_000)),
        Op::Truncate("moved", 150_001),
        Op::Create("gone"),
        Op::Write("gone", 0, pattern(4, 70_000)),
        Op::Sync,
        Op::Unlink("gone"),
        Op::Mkdir("d/empty"),
        Op::Rmdir("d/empty"),
        Op::Create("d/e/last"),
        Op::Write("d/e/last", 0, pattern(5, 4096)),
    ]
}

fn apply(rig: &mut Rig, op: &Op, crash: Option<(usize, When)>) {
    let run = |rig: &mut Rig, r: Req| -> i64 {
        match crash {
            Some((n, when)) => rig.call_crashing(&r, n, when).0,
            None => rig.fs.handle(&r).0,
        }
    };
    let res = match op {
        Op::Mkdir(p) | Op::Create(p) => {
            let (dir, name) = rig.parent(p);
            let mode = if matches!(op, Op::Mkdir(_)) { S_IFDIR | 0o755 } else { S_IFREG | 0o644 };
            let r =
                rig.make(proto::CREATE, [dir, name.len() as u64, mode as u64, 0, 0, 0], &[name.as_bytes()], &[], 256);
            run(rig, r)
        }
        Op::Write(p, at, data) => {
            let f = rig.lookup(p).unwrap();
            let r = rig.make(proto::WRITE, [f, *at, data.len() as u64, 0, 0, 0], &[], data, 0);
            let n = run(rig, r);
            assert_eq!(n, data.len() as i64, "{op:?}");
            0
        }
        Op::Truncate(p, size) => {
            let f = rig.lookup(p).unwrap();
            let r = rig.make(proto::SETATTR, [f, proto::SET_SIZE, 0, 0, *size, 0], &[], &[], 256);
            run(rig, r)
        }
        Op::Rename(from, to) => {
            let (fd, fname) = rig.parent(from);
            let (td, tname) = rig.parent(to);
            let args = [fd, td, fname.len() as u64, tname.len() as u64, 0, 0];
            let r = rig.make(proto::RENAME, args, &[fname.as_bytes(), tname.as_bytes()], &[], 256);
            run(rig, r)
        }
        Op::Link(target, path) => {
            let f = rig.lookup(target).unwrap();
            let (dir, name) = rig.parent(path);
            let r = rig.make(proto::LINK, [f, dir, name.len() as u64, 0, 0, 0], &[name.as_bytes()], &[], 256);
            run(rig, r)
        }
        Op::Symlink(path, target) => {
            let (dir, name) = rig.parent(path);
            let args = [dir, name.len() as u64, target.len() as u64, 0, 0, 0];
            let r = rig.make(proto::SYMLINK, args, &[name.as_bytes(), target.as_bytes()], &[], 256);
            run(rig, r)
        }
        Op::Unlink(p) | Op::Rmdir(p) => {
            let (dir, name) = rig.parent(p);
            let flags = if matches!(op, Op::Rmdir(_)) { proto::UNLINK_DIR } else { 0 };
            let r = rig.make(proto::UNLINK, [dir, name.len() as u64, flags, 0, 0, 0], &[name.as_bytes()], &[], 256);
            run(rig, r)
        }
        Op::Fsync(p) => {
            let f = rig.lookup(p).unwrap();
            let r = rig.make(proto::FSYNC, [f, 0, 0, 0, 0, 0], &[], &[], 0);
            run(rig, r)
        }
        Op::Sync => {
            let r = rig.make(proto::SYNC, [0; 6], &[], &[], 0);
            run(rig, r)
        }
    };
    assert!(res >= 0, "{op:?}: {res}");
}

/// What the workload leaves: path -> contents (symlinks as "-> target").
fn expected(block_size: u32) -> BTreeMap<&'static str, Vec<u8>> {
    let k = u64::from(block_size / 4);
    let far = ((12 + k + k * k + 3) * u64::from(block_size) + 123) as usize;
    let mut sparse = vec![0u8; far + 5000];
    sparse[far..].copy_from_slice(&pattern(2, 5000));
    sparse[7..11].copy_from_slice(b"head");
    let mut moved = pattern(1, 300_000);
    moved.resize(319_990, 0);
    moved[299_990..].copy_from_slice(&pattern(3, 20_000));
    moved.truncate(150_001);
    BTreeMap::from([
        ("d/small", b"hello, disk\n".to_vec()),
        ("hard", b"hello, disk\n".to_vec()),
        ("sparse", sparse),
        ("moved", moved),
        ("d/e/last", pattern(5, 4096)),
    ])
}

/// Checks the files through the server, then (after sync) the image with e2fsck and, if
/// `thorough`, every file's bytes on the disk alone with debugfs. Without `thorough` the
/// sparse file (tens of MiB of hole) is checked at its head and tail only.
fn check(rig: &mut Rig, dir: &Path, block_size: u32, thorough: bool) {
    for (path, want) in expected(block_size) {
        if !thorough && path == "sparse" {
            let f = rig.lookup(path).unwrap();
            assert_eq!(rig.attr(f).size, want.len() as u64);
            for at in [0, want.len() - 6000] {
                let r = rig.make(proto::READ, [f, at as u64, 6000, 0, 0, 0], &[], &[], 6000);
                assert_eq!(rig.fs.handle(&r).0, 6000);
                assert!(r.grant.borrow()[..] == want[at..at + 6000], "sparse at {at}");
            }
            continue;
        }
        let got = rig.read_all(path);
        assert!(got == want, "{path}: {} bytes, want {}", got.len(), want.len());
    }
    let soft = rig.lookup("soft").unwrap();
    assert_eq!(rig.attr(soft).mode & 0o170000, S_IFLNK);
    assert_eq!(rig.lookup("gone"), Err(Errno::ENOENT));
    assert_eq!(rig.lookup("d/e/mid"), Err(Errno::ENOENT));
    let r = rig.make(proto::SYNC, [0; 6], &[], &[], 0);
    assert_eq!(rig.fs.handle(&r).0, 0);
    assert_eq!(rig.fs.dirty_bytes(), 0, "sync leaves nothing in the overlay");
    let image = rig.disk.image();
    fsck(dir, &image).unwrap();
    if !thorough {
        return;
    }
    // The disk alone (no overlay) holds the files: dump them with debugfs.
    let img = dir.join("dump.img");
    std::fs::write(&img, &image).unwrap();
    for (path, want) in expected(block_size) {
        let out = dir.join("dump.out");
        let _ = std::fs::remove_file(&out);
        let st = Command::new("debugfs")
            .arg("-R")
            .arg(format!("dump /{path} {}", out.display()))
            .arg(&img)
            .output()
            .unwrap();
        assert!(st.status.success());
        assert!(std::fs::read(&out).unwrap() == want, "debugfs {path}");
    }
}

#[test]
fn workload_reads_back_and_leaves_a_clean_disk() {
    if !have("mke2fs") || !have("e2fsck") {
        eprintln!("skipped: no e2fsprogs");
        return;
    }
    for (bs, direct) in [(1024, false), (4096, true)] {
        let dir = scratch(&format!("workload-{bs}"));
        let mut rig = Rig::new(mke2fs(&dir, bs, 32, None));
        rig.direct = direct;
        for op in workload(bs) {
            apply(&mut rig, &op, None);
        }
        check(&mut rig, &dir, bs, true);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn nothing_reaches_the_disk_before_a_write_back() {
    if !have("mke2fs") {
        return;
    }
    let dir = scratch("writeback");
    let image = mke2fs(&dir, 1024, 16, None);
    let mut rig = Rig::new(image.clone());
    let before = rig.disk.0.borrow().writes;
    apply(&mut rig, &Op::Create("f"), None);
    apply(&mut rig, &Op::Write("f", 0, pattern(9, 100_000)), None);
    assert_eq!(rig.disk.0.borrow().writes, before, "held in the overlay");
    assert!(rig.fs.dirty_bytes() > 100_000);
    // A new instance finds the data in the overlay, not on the disk.
    rig.restart();
    assert_eq!(rig.read_all("f"), pattern(9, 100_000));
    // fsync writes it back and flushes.
    let flushes = rig.disk.0.borrow().flushes;
    apply(&mut rig, &Op::Fsync("f"), None);
    assert!(rig.disk.0.borrow().flushes > flushes);
    assert_eq!(rig.fs.dirty_bytes(), 0);
    // Past the bound, a write-back comes by itself.
    apply(&mut rig, &Op::Create("big"), None);
    let chunk = pattern(10, 1 << 20);
    for i in 0..(DIRTY_LIMIT >> 20) + 2 {
        apply(&mut rig, &Op::Write("big", i << 20, chunk.clone()), None);
    }
    assert!(rig.fs.dirty_bytes() < DIRTY_LIMIT);
    assert!(rig.fs.stats.writebacks >= 2);
    // Unmounting writes everything back; the next instance has nothing mounted.
    apply(&mut rig, &Op::Create("tail"), None);
    let root = rig.root;
    let (r, _) = rig.call(proto::UMOUNT, [root, 0, 0, 0, 0, 0], &[], &[], 0);
    assert_eq!(r, 0);
    assert_eq!(rig.fs.dirty_bytes(), 0);
    fsck(&dir, &rig.disk.image()).unwrap();
    let (fs, started) = DiskFs::start(rig.area.clone(), rig.disk.clone(), ME, clock).unwrap();
    assert!(!started.remounted && started.dirty_units == 0 && fs.root().is_none());
    // Stale ids of the old mount are refused.
    let r = req(proto::GETATTR, [root, 0, 0, 0, 0, 0], 0, &[], &[], 256);
    assert_eq!(rig.fs.handle(&r).0, Errno::ESTALE.as_return());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_crash_at_any_commit_loses_nothing() {
    if !have("mke2fs") || !have("e2fsck") {
        return;
    }
    let bs = 1024;
    let dir = scratch("crash");
    let image = mke2fs(&dir, bs, 12, None);
    let ops = workload(bs);
    // Each op crashes at its first, second or third commit (write-back slices count too),
    // before or after the commit is applied.
    let mut crashes = 0;
    for (i, op) in ops.iter().enumerate() {
        for when in [When::Before, When::After] {
            for n in 1..=3 {
                let mut rig = Rig::new(image.clone());
                for earlier in &ops[..i] {
                    apply(&mut rig, earlier, None);
                }
                let commits = rig.area.0.borrow().commits;
                apply(&mut rig, op, Some((n, when)));
                if rig.area.0.borrow().commits > commits + n {
                    crashes += 1;
                }
                for later in &ops[i + 1..] {
                    apply(&mut rig, later, None);
                }
                check(&mut rig, &dir, bs, false);
            }
        }
    }
    assert!(crashes > ops.len(), "only {crashes} crashes happened");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mke2fs_trees_read_back_through_the_overlay() {
    if !have("mke2fs") {
        return;
    }
    let dir = scratch("tree");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    let mut files = BTreeMap::new();
    for i in 0..40u32 {
        let path = match i % 3 {
            0 => format!("f{i}"),
            1 => format!("a/g{i}"),
            _ => format!("a/b/c/h{i}"),
        };
        let data = pattern(i, (i as usize * 7919) % 200_000);
        std::fs::write(tree.join(&path), &data).unwrap();
        files.insert(path, data);
    }
    for bs in [1024, 4096] {
        let mut rig = Rig::new(mke2fs(&dir, bs, 16, Some(&tree)));
        for (path, data) in &files {
            assert!(&rig.read_all(path) == data, "{path} on {bs}");
        }
        let s = rig.make(proto::STATFS, [rig.root, 0, 0, 0, 0, 0], &[], &[], 256);
        assert_eq!(rig.fs.handle(&s).0, 0);
        let st = abi::proto::StatFs::read_from_bytes(&s.grant.borrow()[..core::mem::size_of::<abi::proto::StatFs>()])
            .unwrap();
        assert_eq!((st.fs_type, st.block_size), (0xEF53, u64::from(bs)));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_disks_are_refused_or_answered_with_errors() {
    if !have("mke2fs") {
        return;
    }
    quiet_crashes();
    let dir = scratch("bad");
    let good = mke2fs(&dir, 1024, 8, None);
    // Wrong magic, a block count past the disk, a zero-sized disk.
    let mut magic = good.clone();
    magic[1024 + 56] ^= 0xff;
    let mut count = good.clone();
    count[1024 + 4..1024 + 8].copy_from_slice(&(1u32 << 30).to_le_bytes());
    for (what, image) in [("magic", magic), ("blocks", count)] {
        let area = Area::default();
        let (mut fs, _) = DiskFs::start(area.clone(), MemDisk::new(image), ME, clock).unwrap();
        let r = req(proto::MOUNT, [proto::MOUNT_DEVICE, 0, 8, 0, 0, 0], 1, &[b"/dev/vda"], &[], 256);
        let got = fs.handle(&r).0;
        assert!(got == Errno::EINVAL.as_return() || got == Errno::EUCLEAN.as_return(), "{what}: {got}");
        assert!(fs.root().is_none());
        // A refused mount leaves nothing behind: a new instance has nothing mounted.
        let (fs, started) = DiskFs::start(area, MemDisk::new(good.clone()), ME, clock).unwrap();
        assert!(!started.remounted && fs.root().is_none(), "{what}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_disk_reports_eio_and_keeps_the_data() {
    if !have("mke2fs") || !have("e2fsck") {
        return;
    }
    let dir = scratch("broken");
    let mut rig = Rig::new(mke2fs(&dir, 4096, 16, None));
    apply(&mut rig, &Op::Create("f"), None);
    apply(&mut rig, &Op::Write("f", 0, pattern(11, 50_000)), None);
    rig.disk.0.borrow_mut().broken = true;
    let f = rig.lookup("f").unwrap();
    let (r, _) = rig.call(proto::FSYNC, [f, 0, 0, 0, 0, 0], &[], &[], 0);
    assert_eq!(r, Errno::EIO.as_return(), "fsync reports the disk's error");
    let (r, _) = rig.call(proto::SYNC, [0; 6], &[], &[], 0);
    assert_eq!(r, Errno::EIO.as_return());
    assert!(rig.fs.dirty_bytes() > 0, "the overlay keeps what the disk refused");
    rig.restart();
    assert_eq!(rig.read_all("f"), pattern(11, 50_000));
    rig.disk.0.borrow_mut().broken = false;
    let (r, _) = rig.call(proto::SYNC, [0; 6], &[], &[], 0);
    assert_eq!(r, 0);
    assert_eq!(rig.fs.dirty_bytes(), 0);
    fsck(&dir, &rig.disk.image()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
