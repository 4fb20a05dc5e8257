//! Workloads through the API on `mke2fs`-made images, then `e2fsck -fn` must be clean and
//! `debugfs` must see the expected contents; plus Linux semantics of each call.

use crate::common::*;
use ext2::{Errno, Ext2, FileType, Ino, MountOptions, RenameMode, SetAttr, SetTime, Timespec, WriteBack};
use ext2::{MemDevice, S_IFBLK, S_IFCHR, S_IFIFO, S_IFREG, S_IFSOCK};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

type Fs = Ext2<FileDevice>;

/// A clock the tests advance by hand (seconds past the wall-clock time at first use), so that
/// timestamp updates are observable and still not in the future for e2fsck.
static CLOCK_OFFSET: AtomicI64 = AtomicI64::new(0);
static CLOCK_BASE: AtomicI64 = AtomicI64::new(0);

fn test_clock() -> Timespec {
    let _ = CLOCK_BASE.compare_exchange(0, wall_clock().sec - 100_000, Ordering::Relaxed, Ordering::Relaxed);
    Timespec::new(CLOCK_BASE.load(Ordering::Relaxed) + CLOCK_OFFSET.load(Ordering::Relaxed), 123_000_000)
}

fn tick() -> Timespec {
    CLOCK_OFFSET.fetch_add(1, Ordering::Relaxed);
    test_clock()
}

fn mount(img: &Path) -> Fs {
    Ext2::mount(FileDevice::open(img), MountOptions { clock: test_clock, cache_blocks: 512, ..Default::default() })
        .unwrap()
}

fn read_all(fs: &mut Fs, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(ino).unwrap().size as usize;
    let mut buf = vec![0u8; size];
    assert_eq!(fs.read(ino, 0, &mut buf).unwrap(), size);
    buf
}

fn names(fs: &mut Fs, dir: Ino) -> Vec<String> {
    let mut out = Vec::new();
    fs.readdir(dir, 0, |_, name, _, _| {
        out.push(String::from_utf8(name.to_vec()).unwrap());
        true
    })
    .unwrap();
    out.retain(|n| n != "." && n != "..");
    out.sort();
    out
}

fn nlink(fs: &mut Fs, ino: Ino) -> u32 {
    fs.getattr(ino).unwrap().nlink
}

/// Expected contents of regular files by path, checked with debugfs at the end.
#[derive(Default)]
struct Model(BTreeMap<String, Vec<u8>>);

impl Model {
    fn write(&mut self, fs: &mut Fs, ino: Ino, path: &str, off: u64, data: &[u8]) {
        assert_eq!(fs.write(ino, off, data).unwrap(), data.len());
        let f = self.0.entry(path.into()).or_default();
        let end = off as usize + data.len();
        if f.len() < end {
            f.resize(end, 0);
        }
        f[off as usize..end].copy_from_slice(data);
    }
    fn truncate(&mut self, fs: &mut Fs, ino: Ino, path: &str, size: u64) {
        fs.setattr(ino, SetAttr { size: Some(size), ..Default::default() }).unwrap();
        self.0.entry(path.into()).or_default().resize(size as usize, 0);
    }
    fn rename(&mut self, from: &str, to: &str) {
        let data = self.0.remove(from).unwrap();
        self.0.insert(to.into(), data);
    }
    fn check(&self, fs: &mut Fs, img: &Path) {
        for (path, want) in &self.0 {
            let mut ino = fs.root();
            for part in path.split('/').filter(|p| !p.is_empty()) {
                ino = fs.lookup(ino, part.as_bytes()).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            }
            assert!(read_all(fs, ino) == *want, "our read of {path}");
            if want.len() < (80 << 20) {
                assert!(debugfs_cat(img, path) == *want, "debugfs cat {path}");
            }
        }
    }
}

fn workload(bs: u32) {
    let scratch = Scratch::new(&format!("work{bs}"));
    let img = scratch.path("img");
    mke2fs(&img, bs, 32 * 1024, None, &[]);
    let mut fs = mount(&img);
    let mut model = Model::default();
    let root = fs.root();
    let bsz = u64::from(bs);

    // Files: create, write, append, overwrite, truncate down and up, fill a hole.
    let t0 = tick();
    let f = fs.create(root, b"file", S_IFREG | 0o644, 0, 1000, 100).unwrap();
    let a = fs.getattr(f).unwrap();
    assert_eq!((a.mode, a.uid, a.gid, a.nlink, a.size, a.blocks), (S_IFREG | 0o644, 1000, 100, 1, 0, 0));
    assert_eq!((a.atime, a.mtime, a.ctime), (t0, t0, t0));
    assert_eq!(fs.getattr(root).unwrap().mtime, t0, "dir mtime on create");
    assert_eq!(fs.create(root, b"file", S_IFREG, 0, 0, 0), Err(Errno::EEXIST));
    let t1 = tick();
    model.write(&mut fs, f, "/file", 0, &pattern(1, 5000));
    let a = fs.getattr(f).unwrap();
    assert_eq!((a.mtime, a.ctime, a.size), (t1, t1, 5000));
    assert_eq!(a.blocks, 5000u64.div_ceil(bsz) * bsz / 512);
    model.write(&mut fs, f, "/file", 5000, &pattern(2, 3 * bsz as usize + 7));
    model.write(&mut fs, f, "/file", 100, &pattern(3, 10));
    model.truncate(&mut fs, f, "/file", 2 * bsz + 5);
    model.truncate(&mut fs, f, "/file", 20 * bsz);
    let mut buf = vec![1u8; bsz as usize];
    fs.read(f, 10 * bsz, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0), "truncated-up range reads zeros");
    assert_eq!(fs.bmap(f, 10).unwrap(), None, "truncate up leaves a hole");
    model.write(&mut fs, f, "/file", 15 * bsz + 3, b"into the hole");
    assert!(fs.bmap(f, 15).unwrap().is_some());
    assert_eq!(fs.bmap(f, 14).unwrap(), None);
    // Unaligned reads over holes and blocks.
    let whole = read_all(&mut fs, f);
    for (off, len) in [(0u64, 1usize), (149, 3), (bsz - 1, 2), (3, bsz as usize * 3)] {
        let mut b = vec![0u8; len];
        let n = fs.read(f, off, &mut b).unwrap();
        assert_eq!(&b[..n], &whole[off as usize..(off as usize + len).min(whole.len())]);
    }

    // Truncating to a mid-block size then growing again exposes zeros, not old bytes.
    model.write(&mut fs, f, "/file", 0, &[0xEE; 300]);
    model.truncate(&mut fs, f, "/file", 150);
    model.write(&mut fs, f, "/file", 400, b"x");

    // Directories.
    let d1 = fs.mkdir(root, b"d1", 0o755, 0, 0).unwrap();
    let d2 = fs.mkdir(root, b"d2", 0o700, 0, 0).unwrap();
    let sub = fs.mkdir(d1, b"sub", 0o755, 0, 0).unwrap();
    assert_eq!(nlink(&mut fs, root), 5, "root: ., .., and the .. of lost+found, d1, d2");
    assert_eq!(nlink(&mut fs, d1), 3);
    assert_eq!(nlink(&mut fs, sub), 2);
    assert_eq!(fs.lookup(sub, b"..").unwrap(), d1);
    assert_eq!(fs.mkdir(root, b"d1", 0o755, 0, 0), Err(Errno::EEXIST));
    assert_eq!(fs.mkdir(f, b"x", 0o755, 0, 0), Err(Errno::ENOTDIR));
    assert_eq!(fs.rmdir(root, b"d1"), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rmdir(root, b"file"), Err(Errno::ENOTDIR));
    assert_eq!(fs.rmdir(d1, b"."), Err(Errno::EINVAL));
    assert_eq!(fs.rmdir(d1, b".."), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.unlink(root, b"d1"), Err(Errno::EISDIR));
    let tmp = fs.mkdir(d2, b"tmp", 0o755, 0, 0).unwrap();
    let t = tick();
    fs.rmdir(d2, b"tmp").unwrap();
    assert_eq!(fs.getattr(tmp), Err(Errno::ESTALE));
    assert_eq!(nlink(&mut fs, d2), 2);
    assert_eq!(fs.getattr(d2).unwrap().mtime, t);
    assert_eq!(fs.create(root, &[b'n'; 256], S_IFREG, 0, 0, 0), Err(Errno::ENAMETOOLONG));
    let long = fs.create(d2, &[b'n'; 255], S_IFREG | 0o600, 0, 0, 0).unwrap();
    model.write(&mut fs, long, &format!("/d2/{}", "n".repeat(255)), 0, b"long name");
    assert_eq!(fs.create(root, b"a/b", S_IFREG, 0, 0, 0), Err(Errno::EINVAL));
    assert_eq!(fs.create(root, b"..", S_IFREG, 0, 0, 0), Err(Errno::EEXIST));

    // Many entries: the directory grows past one block, then entries are reused.
    let many = fs.mkdir(root, b"many", 0o755, 0, 0).unwrap();
    for i in 0..400 {
        fs.create(many, format!("entry-{i:04}").as_bytes(), S_IFREG | 0o644, 0, 0, 0).unwrap();
    }
    for i in (0..400).step_by(3) {
        fs.unlink(many, format!("entry-{i:04}").as_bytes()).unwrap();
    }
    let size_before = fs.getattr(many).unwrap().size;
    for i in 0..100 {
        fs.create(many, format!("again-{i}").as_bytes(), S_IFREG | 0o644, 0, 0, 0).unwrap();
    }
    assert_eq!(fs.getattr(many).unwrap().size, size_before, "freed entries are reused");
    assert_eq!(names(&mut fs, many).len(), 400 - 134 + 100);

    // Special files.
    let fifo = fs.create(d1, b"fifo", S_IFIFO | 0o644, 0, 0, 0).unwrap();
    let sock = fs.create(d1, b"sock", S_IFSOCK | 0o644, 0, 0, 0).unwrap();
    let chr = fs.create(d1, b"null", S_IFCHR | 0o666, ext2::makedev(1, 3), 0, 0).unwrap();
    let blk = fs.create(d1, b"nvme", S_IFBLK | 0o660, ext2::makedev(259, 70000), 0, 0).unwrap();
    assert_eq!(fs.getattr(chr).unwrap().rdev, ext2::makedev(1, 3));
    assert_eq!(fs.getattr(blk).unwrap().rdev, ext2::makedev(259, 70000));
    assert_eq!(fs.getattr(fifo).unwrap().file_type(), FileType::Fifo);
    assert_eq!(fs.getattr(sock).unwrap().file_type(), FileType::Socket);
    assert_eq!(fs.read(fifo, 0, &mut [0; 4]), Err(Errno::EINVAL));
    assert_eq!(fs.create(d1, b"bad", S_IFBLK, ext2::makedev(5000, 0), 0, 0), Err(Errno::EINVAL));

    // Symlinks, fast and slow.
    let fast = fs.symlink(root, b"fast", b"d1/sub", 0, 0).unwrap();
    let slow_target = "s/".repeat(100);
    let slow = fs.symlink(d1, b"slow", slow_target.as_bytes(), 0, 0).unwrap();
    assert_eq!(fs.readlink(fast).unwrap(), b"d1/sub");
    assert_eq!(fs.readlink(slow).unwrap(), slow_target.as_bytes());
    assert_eq!(fs.getattr(fast).unwrap().blocks, 0);
    assert_eq!(fs.getattr(slow).unwrap().blocks, bsz / 512);
    assert_eq!(fs.readlink(f), Err(Errno::EINVAL));
    assert_eq!(fs.symlink(root, b"e", b"", 0, 0), Err(Errno::ENOENT));
    assert_eq!(fs.symlink(root, b"e", &vec![b'x'; bs as usize], 0, 0), Err(Errno::ENAMETOOLONG));

    // Hard links.
    let h = fs.create(d1, b"h1", S_IFREG | 0o644, 0, 0, 0).unwrap();
    model.write(&mut fs, h, "/d1/h1", 0, b"linked");
    let t = tick();
    fs.link(h, d2, b"h2").unwrap();
    model.0.insert("/d2/h2".into(), b"linked".to_vec());
    let a = fs.getattr(h).unwrap();
    assert_eq!((a.nlink, a.ctime), (2, t));
    assert_eq!(fs.link(d1, d2, b"dirlink"), Err(Errno::EPERM));
    assert_eq!(fs.link(h, d2, b"h2"), Err(Errno::EEXIST));
    let t = tick();
    fs.unlink(d1, b"h1").unwrap();
    model.0.remove("/d1/h1");
    let a = fs.getattr(h).unwrap();
    assert_eq!((a.nlink, a.ctime), (1, t));

    // Unlink while open, then release.
    let free0 = fs.statfs().blocks_free;
    let o = fs.create(root, b"open", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(o, 0, &pattern(9, 40 * bs as usize)).unwrap();
    fs.open_ref(o).unwrap();
    fs.unlink(root, b"open").unwrap();
    assert_eq!(fs.lookup(root, b"open"), Err(Errno::ENOENT));
    assert_eq!(fs.getattr(o).unwrap().nlink, 0);
    assert_eq!(read_all(&mut fs, o), pattern(9, 40 * bs as usize));
    fs.write(o, 0, b"still writable").unwrap();
    assert!(fs.statfs().blocks_free < free0);
    fs.release(o).unwrap();
    assert_eq!(fs.getattr(o), Err(Errno::ESTALE));
    fs.sync().unwrap();
    let stat = debugfs(&img, &format!("stat <{o}>"));
    assert!(stat.contains("dtime:") && stat.contains("Links: 0"), "freed inode:\n{stat}");
    assert_eq!(fs.statfs().blocks_free, free0);
    assert_eq!(fs.release(o), Err(Errno::EINVAL));
    // And a directory removed while it is someone's cwd.
    let cwd = fs.mkdir(root, b"cwd", 0o755, 0, 0).unwrap();
    fs.open_ref(cwd).unwrap();
    fs.rmdir(root, b"cwd").unwrap();
    assert_eq!(fs.create(cwd, b"x", S_IFREG, 0, 0, 0), Err(Errno::ENOENT));
    assert!(names(&mut fs, cwd).is_empty());
    fs.release(cwd).unwrap();

    // Renames.
    let r = fs.create(root, b"r1", S_IFREG | 0o644, 0, 0, 0).unwrap();
    model.write(&mut fs, r, "/r1", 0, b"rename me");
    let t = tick();
    fs.rename(root, b"r1", root, b"r2", RenameMode::Replace).unwrap();
    model.rename("/r1", "/r2");
    assert_eq!(fs.getattr(r).unwrap().ctime, t);
    fs.rename(root, b"r2", d2, b"r3", RenameMode::Replace).unwrap();
    model.rename("/r2", "/d2/r3");
    // Over an existing file: the old target is freed.
    let victim = fs.create(d2, b"victim", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(victim, 0, &pattern(4, 3 * bs as usize)).unwrap();
    fs.rename(d2, b"r3", d2, b"victim", RenameMode::Replace).unwrap();
    model.rename("/d2/r3", "/d2/victim");
    assert_eq!(fs.getattr(victim), Err(Errno::ESTALE));
    assert_eq!(fs.lookup(d2, b"victim").unwrap(), r);
    // Same inode under both names: nothing happens.
    fs.rename(d2, b"h2", d2, b"h2", RenameMode::Replace).unwrap();
    fs.link(h, d2, b"h3").unwrap();
    fs.rename(d2, b"h2", d2, b"h3", RenameMode::Replace).unwrap();
    assert_eq!(names(&mut fs, d2).iter().filter(|n| n.starts_with('h')).count(), 2);
    fs.unlink(d2, b"h3").unwrap();
    // Errors.
    assert_eq!(fs.rename(root, b"nope", root, b"x", RenameMode::Replace), Err(Errno::ENOENT));
    assert_eq!(fs.rename(root, b"file", root, b"d1", RenameMode::Replace), Err(Errno::EISDIR));
    assert_eq!(fs.rename(root, b"d2", root, b"file", RenameMode::Replace), Err(Errno::ENOTDIR));
    assert_eq!(fs.rename(root, b"d2", root, b"d1", RenameMode::Replace), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rename(root, b"d1", sub, b"x", RenameMode::Replace), Err(Errno::EINVAL));
    assert_eq!(fs.rename(root, b"d1", d1, b"x", RenameMode::Replace), Err(Errno::EINVAL));
    assert_eq!(fs.rename(root, b"file", d2, b"victim", RenameMode::NoReplace), Err(Errno::EEXIST));
    assert_eq!(fs.rename(root, b".", d2, b"x", RenameMode::Replace), Err(Errno::EBUSY));
    assert_eq!(fs.rename(root, b"file", d2, b"absent", RenameMode::Exchange), Err(Errno::ENOENT));
    // A directory across directories: `..` and link counts follow.
    let mover = fs.mkdir(d1, b"mover", 0o755, 0, 0).unwrap();
    fs.mkdir(mover, b"inner", 0o755, 0, 0).unwrap();
    let (l1, l2) = (nlink(&mut fs, d1), nlink(&mut fs, d2));
    fs.rename(d1, b"mover", d2, b"moved", RenameMode::Replace).unwrap();
    assert_eq!((nlink(&mut fs, d1), nlink(&mut fs, d2)), (l1 - 1, l2 + 1));
    assert_eq!(fs.lookup(mover, b"..").unwrap(), d2);
    // A directory over an empty directory.
    let empty = fs.mkdir(d1, b"empty", 0o755, 0, 0).unwrap();
    let (l1, l2) = (nlink(&mut fs, d1), nlink(&mut fs, d2));
    fs.rename(d2, b"moved", d1, b"empty", RenameMode::Replace).unwrap();
    assert_eq!(fs.getattr(empty), Err(Errno::ESTALE));
    assert_eq!((nlink(&mut fs, d1), nlink(&mut fs, d2)), (l1, l2 - 1));
    assert_eq!(fs.lookup(mover, b"..").unwrap(), d1);
    // Exchange a file and a directory across directories.
    let xf = fs.create(d2, b"xf", S_IFREG | 0o644, 0, 0, 0).unwrap();
    model.write(&mut fs, xf, "/d2/xf", 0, b"exchanged");
    let (l1, l2) = (nlink(&mut fs, d1), nlink(&mut fs, d2));
    fs.rename(d1, b"empty", d2, b"xf", RenameMode::Exchange).unwrap();
    model.rename("/d2/xf", "/d1/empty");
    assert_eq!(fs.lookup(d1, b"empty").unwrap(), xf);
    assert_eq!(fs.lookup(d2, b"xf").unwrap(), mover);
    assert_eq!(fs.lookup(mover, b"..").unwrap(), d2);
    assert_eq!((nlink(&mut fs, d1), nlink(&mut fs, d2)), (l1 - 1, l2 + 1));
    // Dir within the same parent.
    fs.rename(d2, b"xf", d2, b"renamed-dir", RenameMode::NoReplace).unwrap();
    assert_eq!(fs.lookup(mover, b"..").unwrap(), d2);

    // Attributes.
    let t = tick();
    let a = fs
        .setattr(
            f,
            SetAttr {
                mode: Some(0o4755 | S_IFCHR),
                uid: Some(70000),
                gid: Some(5),
                atime: Some(SetTime::At(Timespec::new(1_000_000, 5))),
                mtime: Some(SetTime::Now),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((a.mode, a.uid, a.gid), (S_IFREG | 0o4755, 70000, 5));
    assert_eq!((a.atime, a.mtime, a.ctime), (Timespec::new(1_000_000, 5), t, t));
    assert_eq!(fs.setattr(d1, SetAttr { size: Some(0), ..Default::default() }), Err(Errno::EISDIR));

    // Larger than the double-indirect range (at 1 KiB blocks), sparse; then cut back.
    let p = u64::from(bs / 4);
    let beyond_double = (12 + p + p * p) * bsz;
    let huge = fs.create(root, b"huge", S_IFREG | 0o644, 0, 0, 0).unwrap();
    if bs == 1024 {
        model.write(&mut fs, huge, "/huge", beyond_double + 12345, &pattern(5, 3000));
        model.write(&mut fs, huge, "/huge", 1 << 20, &pattern(6, 3000));
        let before = fs.getattr(huge).unwrap().blocks;
        model.truncate(&mut fs, huge, "/huge", beyond_double - 5);
        assert!(fs.getattr(huge).unwrap().blocks < before);
        model.write(&mut fs, huge, "/huge", (70 << 20) + 1, &pattern(7, 5000));
    } else {
        model.write(&mut fs, huge, "/huge", 5 << 20, &pattern(5, 3000));
    }
    let limit = ext2::max_file_size(bs.trailing_zeros());
    assert_eq!(fs.write(huge, limit, b"x"), Err(Errno::EFBIG));
    assert_eq!(fs.setattr(huge, SetAttr { size: Some(limit + 1), ..Default::default() }), Err(Errno::EFBIG));

    // The dirty set shows what changed; sync empties it.
    assert!(fs.cache().dirty_count() > 0);
    fs.sync().unwrap();
    assert_eq!(fs.cache().dirty_count(), 0);
    drop(fs);
    assert_fsck_clean(&img);
    let mut fs = mount(&img);
    model.check(&mut fs, &img);
    let want: Vec<String> = ["h2", &"n".repeat(255), "renamed-dir", "victim"].iter().map(|s| s.to_string()).collect();
    assert_eq!(names(&mut fs, d2), want);
    // Delete everything we made; the file system must be clean and back to its free counts.
    fs.unlink(root, b"huge").unwrap();
    fs.unlink(root, b"file").unwrap();
    fs.sync().unwrap();
    drop(fs);
    assert_fsck_clean(&img);
}

#[test]
fn workload_1k() {
    if have_e2fsprogs("workload_1k") {
        workload(1024);
    }
}

#[test]
fn workload_4k() {
    if have_e2fsprogs("workload_4k") {
        workload(4096);
    }
}

#[test]
fn sequential_64mib_is_contiguous_and_fast() {
    if !have_e2fsprogs("sequential_64mib_is_contiguous_and_fast") {
        return;
    }
    let scratch = Scratch::new("seq");
    let img = scratch.path("img");
    mke2fs(&img, 4096, 160 * 1024, None, &[]);
    let mut fs = mount(&img);
    let root = fs.root();
    let f = fs.create(root, b"big", S_IFREG | 0o644, 0, 0, 0).unwrap();
    let chunk = pattern(11, 1 << 20);
    let start = Instant::now();
    for i in 0..64u64 {
        assert_eq!(fs.write(f, i << 20, &chunk).unwrap(), 1 << 20);
    }
    assert!(fs.cache().len() <= fs.cache().capacity(), "the cache stays bounded");
    fs.sync().unwrap();
    let write_time = start.elapsed();
    // Count physically contiguous extents of data.
    let mut extents = 0;
    let mut prev = None;
    for lblk in 0..(64 << 20) / 4096 {
        let p = fs.bmap(f, lblk).unwrap().unwrap();
        if prev.map(|q| q + 1) != Some(p) {
            extents += 1;
        }
        prev = Some(p);
    }
    let stats_before = fs.cache().stats();
    let start = Instant::now();
    let mut buf = vec![0u8; 4 << 20];
    for i in 0..16u64 {
        assert_eq!(fs.read(f, i << 22, &mut buf).unwrap(), 4 << 20);
        assert!(buf[..1 << 20] == chunk[..] && buf[3 << 20..] == chunk[..]);
    }
    let read_time = start.elapsed();
    let reads = fs.cache().stats().device_reads - stats_before.device_reads;
    eprintln!("64 MiB: write+sync {write_time:?}, read {read_time:?}, {extents} extents, {reads} device reads");
    assert!(extents <= 40, "{extents} extents for a sequential 64 MiB file");
    assert!(reads < 300, "{reads} device reads for 64 MiB of sequential reads");
    assert!(write_time.as_secs() < 20 && read_time.as_secs() < 20);
    drop(fs);
    assert_fsck_clean(&img);
    assert!(debugfs_cat(&img, "/big")[(63 << 20)..] == chunk[..]);
}

#[test]
fn out_of_space_is_clean() {
    if !have_e2fsprogs("out_of_space_is_clean") {
        return;
    }
    let scratch = Scratch::new("enospc");
    let img = scratch.path("img");
    mke2fs(&img, 1024, 1024, None, &["-N", "64"]);
    let mut fs = mount(&img);
    let root = fs.root();
    let f = fs.create(root, b"fill", S_IFREG | 0o644, 0, 0, 0).unwrap();
    let data = pattern(3, 64 << 10);
    let mut off = 0u64;
    loop {
        match fs.write(f, off, &data) {
            Ok(n) if n == data.len() => off += n as u64,
            Ok(n) => {
                off += n as u64;
                assert_eq!(fs.write(f, off, &data), Err(Errno::ENOSPC));
                break;
            }
            Err(e) => {
                assert_eq!(e, Errno::ENOSPC);
                break;
            }
        }
    }
    assert_eq!(fs.getattr(f).unwrap().size, off);
    assert_eq!(fs.statfs().blocks_free, 0);
    // Inodes run out too, and a directory cannot grow.
    let mut made = 0;
    while fs.create(root, format!("f{made}").as_bytes(), S_IFREG, 0, 0, 0).is_ok() {
        made += 1;
        assert!(made < 100);
    }
    assert_eq!(fs.mkdir(root, b"d", 0o755, 0, 0), Err(Errno::ENOSPC));
    fs.sync().unwrap();
    drop(fs);
    assert_fsck_clean(&img);
    let mut fs = mount(&img);
    fs.setattr(f, SetAttr { size: Some(1000), ..Default::default() }).unwrap();
    assert!(fs.statfs().blocks_free > 500);
    fs.sync().unwrap();
    drop(fs);
    assert_fsck_clean(&img);
}

#[test]
fn link_limit() {
    if !have_e2fsprogs("link_limit") {
        return;
    }
    let scratch = Scratch::new("emlink");
    let img = scratch.path("img");
    mke2fs(&img, 1024, 1024, None, &[]);
    let mut fs = mount(&img);
    let root = fs.root();
    let f = fs.create(root, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.mkdir(root, b"d", 0o755, 0, 0).unwrap();
    fs.sync().unwrap();
    drop(fs);
    let out = std::process::Command::new("/usr/sbin/debugfs")
        .args(["-w", "-R", "sif /f links_count 32000"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = std::process::Command::new("/usr/sbin/debugfs")
        .args(["-w", "-R", "sif / links_count 32000"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut fs = mount(&img);
    assert_eq!(fs.link(f, root, b"g"), Err(Errno::EMLINK));
    assert_eq!(fs.mkdir(root, b"e", 0o755, 0, 0), Err(Errno::EMLINK));
    let d = fs.lookup(root, b"d").unwrap();
    let sub = fs.mkdir(d, b"sub", 0o755, 0, 0).unwrap();
    assert_eq!(fs.rename(d, b"sub", root, b"sub", RenameMode::Replace), Err(Errno::EMLINK));
    let _ = sub;
}

/// The commit-at-request-boundaries flow: hold dirty blocks, take them, apply them elsewhere.
#[test]
fn held_dirty_set_is_the_whole_change() {
    let mut dev = MemDevice::new(8 << 20);
    ext2::format(&mut dev, &ext2::FormatOptions { block_size: 1024, ..Default::default() }).unwrap();
    let before = dev.as_bytes().to_vec();
    let opts = MountOptions { cache_blocks: 16, write_back: WriteBack::Hold, ..Default::default() };
    let mut fs = Ext2::mount(dev, opts).unwrap();
    let root = fs.root();
    let d = fs.mkdir(root, b"dir", 0o755, 0, 0).unwrap();
    let f = fs.create(d, b"file", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, &pattern(1, 200_000)).unwrap();
    let dirty: Vec<(u64, Vec<u8>)> = fs.cache().dirty_blocks().map(|(b, d)| (b, d.to_vec())).collect();
    assert!(dirty.len() > 196, "only {} dirty blocks", dirty.len());
    assert!(fs.cache().len() >= dirty.len(), "held blocks are never evicted");
    fs.cache_mut().mark_all_clean();
    assert_eq!(fs.cache().dirty_count(), 0);
    let dev = fs.into_device();
    assert!(dev.as_bytes() == &before[..], "nothing reached the device while held");
    // "Commit" the taken set to a copy of the device, and mount that.
    let mut image = before;
    for (b, data) in dirty {
        image[b as usize * 1024..(b as usize + 1) * 1024].copy_from_slice(&data);
    }
    let mut fs = Ext2::mount(MemDevice::from_vec(image), MountOptions::default()).unwrap();
    let d = fs.lookup(root, b"dir").unwrap();
    let f = fs.lookup(d, b"file").unwrap();
    let mut buf = vec![0u8; 200_000];
    assert_eq!(fs.read(f, 0, &mut buf).unwrap(), 200_000);
    assert!(buf == pattern(1, 200_000));
}

#[test]
fn fsync_writes_the_file() {
    let mut dev = MemDevice::new(4 << 20);
    ext2::format(&mut dev, &ext2::FormatOptions { block_size: 4096, ..Default::default() }).unwrap();
    let mut fs = Ext2::mount(dev, MountOptions::default()).unwrap();
    let root = fs.root();
    let a = fs.create(root, b"a", S_IFREG | 0o644, 0, 0, 0).unwrap();
    let b = fs.create(root, b"b", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(a, 0, &[1; 8192]).unwrap();
    fs.write(b, 0, &[2; 8192]).unwrap();
    let pa = fs.bmap(a, 0).unwrap().unwrap();
    let pb = fs.bmap(b, 0).unwrap().unwrap();
    fs.fsync(a, false).unwrap();
    let dirty: Vec<u64> = fs.cache().dirty_blocks().map(|(blk, _)| blk).collect();
    assert!(!dirty.contains(&pa) && dirty.contains(&pb), "fsync(a) writes a's data only: {dirty:?}");
    let _ = fs.unmount().unwrap();
}
