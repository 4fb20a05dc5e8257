//! Mutated images: nothing may panic, loop, or write outside the file system.
//!
//! Three small base images are built once per run (1 KiB blocks by `mke2fs -d` with an
//! htree directory, 4 KiB by `mke2fs -d`, 2 KiB by our own `format` and API; without
//! e2fsprogs all three come from `format`). Each seed copies one, applies 1–4 mutations (random
//! byte flips in metadata, and targeted nasties: block pointers out of range, into metadata,
//! self-referential indirect blocks, cross-links, bad `rec_len`/`name_len`, huge sizes, zero
//! link counts, cleared bitmaps, bad superblock and descriptor fields), then mounts it, walks
//! the whole tree reading every file and link (bounded), does a few writes, creates, unlinks
//! and renames, syncs, remounts and walks again. Results are ignored; panics are caught and
//! reported with their seed, a watchdog reports a seed that stops making progress, and the
//! device panics on any write past the end of the file system the superblock describes.
//!
//! Reproduce one case: `EXT2_FUZZ_SEED=<seed> cargo test -p ext2 --test host fuzz -- --nocapture`.
//! More cases: `EXT2_FUZZ_CASES=<n per image>`.

use crate::common::*;
use ext2::{BlockDevice, Ext2, FileType, Ino, IoError, MemDevice, MountOptions, RenameMode, SetAttr, S_IFREG};
use std::collections::{BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const IMAGE_SIZE: u64 = 1 << 20;

/// Where things are in a base image, found once on the clean copy.
struct Layout {
    block_size: usize,
    blocks: u64,
    gdt_block: u64,
    /// (block bitmap, inode bitmap, inode table) per group.
    groups: Vec<(u64, u64, u64)>,
    inode_table_blocks: u64,
    /// Byte offsets of the records of inodes reachable from the root, with their type.
    inodes: Vec<(Ino, usize, FileType)>,
    dir_blocks: Vec<u64>,
    indirect_blocks: Vec<u64>,
    data_blocks: Vec<u64>,
}

struct Base {
    name: &'static str,
    image: Vec<u8>,
    layout: Layout,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Source tree for `mke2fs -d`.
fn build_tree(root: &Path) {
    std::fs::create_dir_all(root.join("d/e/f")).unwrap();
    std::fs::create_dir_all(root.join("many")).unwrap();
    std::fs::write(root.join("tiny"), b"tiny file").unwrap();
    std::fs::write(root.join("d/f13k"), pattern(1, 13 * 1024)).unwrap();
    std::fs::write(root.join("d/e/f60k"), pattern(2, 60 * 1024 + 5)).unwrap();
    std::fs::write(root.join("f280k"), pattern(3, 280 * 1024)).unwrap();
    std::fs::write(root.join("d/e/f/deep"), b"deep").unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(root.join("sparse")).unwrap();
        f.write_all_at(b"start", 0).unwrap();
        f.write_all_at(&pattern(4, 1024), 66 << 20).unwrap();
        f.set_len(70 << 20).unwrap();
    }
    for i in 0..80 {
        std::fs::write(
            root.join("many").join(format!("entry-number-{i:03}")),
            if i % 10 == 0 { &b"x"[..] } else { b"" },
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("d/e/f/deep", root.join("fast")).unwrap();
    std::os::unix::fs::symlink("s".repeat(100), root.join("d/slow")).unwrap();
    std::fs::hard_link(root.join("tiny"), root.join("d/e/tiny2")).unwrap();
    let _ = std::process::Command::new("mkfifo").arg(root.join("fifo")).status();
}

/// The same shapes through our own API, on our own `format`.
fn own_image(block_size: u32) -> Vec<u8> {
    let mut dev = MemDevice::new(IMAGE_SIZE as usize);
    let opts = ext2::FormatOptions { block_size, inodes: Some(128), ..Default::default() };
    ext2::format(&mut dev, &opts).unwrap();
    let mut fs = Ext2::mount(dev, MountOptions::default()).unwrap();
    let root = fs.root();
    let d = fs.mkdir(root, b"d", 0o755, 0, 0).unwrap();
    let e = fs.mkdir(d, b"e", 0o755, 0, 0).unwrap();
    let f = fs.mkdir(e, b"f", 0o755, 0, 0).unwrap();
    let many = fs.mkdir(root, b"many", 0o755, 0, 0).unwrap();
    let file = |fs: &mut Ext2<MemDevice>, dir: Ino, name: &str, data: &[u8], off: u64| {
        let ino = fs.create(dir, name.as_bytes(), S_IFREG | 0o644, 0, 0, 0).unwrap();
        fs.write(ino, off, data).unwrap();
        ino
    };
    let tiny = file(&mut fs, root, "tiny", b"tiny file", 0);
    file(&mut fs, d, "f13k", &pattern(1, 13 * 1024), 0);
    file(&mut fs, e, "f60k", &pattern(2, 60 * 1024 + 5), 0);
    file(&mut fs, root, "f280k", &pattern(3, 280 * 1024), 0);
    file(&mut fs, f, "deep", b"deep", 0);
    let sparse = file(&mut fs, root, "sparse", b"start", 0);
    fs.write(sparse, 66 << 20, &pattern(4, 1024)).unwrap();
    for i in 0..80 {
        file(&mut fs, many, &format!("entry-number-{i:03}"), if i % 10 == 0 { b"x" } else { b"" }, 0);
    }
    fs.symlink(root, b"fast", b"d/e/f/deep", 0, 0).unwrap();
    fs.symlink(d, b"slow", "s".repeat(100).as_bytes(), 0, 0).unwrap();
    fs.link(tiny, e, b"tiny2").unwrap();
    fs.create(root, b"fifo", ext2::S_IFIFO | 0o644, 0, 0, 0).unwrap();
    fs.unmount().unwrap().into_vec()
}

fn mke2fs_image(scratch: &Scratch, block_size: u32, index: bool) -> Vec<u8> {
    let src = scratch.path("src");
    if !src.exists() {
        build_tree(&src);
    }
    let img = scratch.path(&format!("base-{block_size}"));
    mke2fs(&img, block_size, IMAGE_SIZE / 1024, Some(&src), &["-N", "128"]);
    if index {
        e2fsck_index_dirs(&img);
    }
    assert_fsck_clean(&img);
    std::fs::read(&img).unwrap()
}

/// Finds the metadata of a clean image (raw parsing plus our own walk).
fn layout(image: &[u8]) -> Layout {
    let sb = &image[1024..2048];
    let block_size = 1024usize << u32_at(sb, 24);
    let blocks = u64::from(u32_at(sb, 4));
    let fdb = u64::from(u32_at(sb, 20));
    let bpg = u64::from(u32_at(sb, 32));
    let ipg = u32_at(sb, 40);
    let inode_size = usize::from(u16::from_le_bytes([sb[88], sb[89]]));
    let ngroups = (blocks - fdb).div_ceil(bpg);
    let gdt_block = fdb + 1;
    let groups: Vec<(u64, u64, u64)> = (0..ngroups as usize)
        .map(|g| {
            let off = gdt_block as usize * block_size + g * 32;
            (u64::from(u32_at(image, off)), u64::from(u32_at(image, off + 4)), u64::from(u32_at(image, off + 8)))
        })
        .collect();
    let inode_table_blocks = (u64::from(ipg) * inode_size as u64).div_ceil(block_size as u64);
    let record = |ino: Ino| {
        let (g, i) = (((ino - 1) / ipg) as usize, ((ino - 1) % ipg) as usize);
        groups[g].2 as usize * block_size + i * inode_size
    };
    let mut fs =
        Ext2::mount(MemDevice::from_vec(image.to_vec()), MountOptions { read_only: true, ..Default::default() })
            .unwrap();
    let mut layout = Layout {
        block_size,
        blocks,
        gdt_block,
        groups: groups.clone(),
        inode_table_blocks,
        inodes: Vec::new(),
        dir_blocks: Vec::new(),
        indirect_blocks: Vec::new(),
        data_blocks: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([fs.root()]);
    seen.insert(fs.root());
    while let Some(dir) = queue.pop_front() {
        let mut entries = Vec::new();
        fs.readdir(dir, 0, |ino, name, ft, _| {
            if name != b"." && name != b".." {
                entries.push((ino, ft));
            }
            true
        })
        .unwrap();
        for (ino, ft) in std::iter::once((dir, FileType::Directory)).chain(entries) {
            if ino != dir && !seen.insert(ino) {
                continue;
            }
            if ft == FileType::Directory && ino != dir {
                queue.push_back(ino);
            }
            if ino != dir || dir == fs.root() {
                layout.inodes.push((ino, record(ino), ft));
            }
            let attr = fs.getattr(ino).unwrap();
            let raw = &image[record(ino)..record(ino) + 128];
            if matches!(ft, FileType::Regular | FileType::Directory) || (ft == FileType::Symlink && attr.size >= 60) {
                if ino == dir && dir != fs.root() {
                    continue;
                }
                for lblk in 0..attr.size.div_ceil(block_size as u64) {
                    if let Some(p) = fs.bmap(ino, lblk).unwrap() {
                        if ft == FileType::Directory {
                            layout.dir_blocks.push(p);
                        } else {
                            layout.data_blocks.push(p);
                        }
                    }
                }
                let mut level: Vec<u64> = Vec::new();
                for (slot, depth) in [(12, 1), (13, 2), (14, 3)] {
                    level.clear();
                    let top = u64::from(u32_at(raw, 40 + 4 * slot));
                    if top == 0 {
                        continue;
                    }
                    level.push(top);
                    for _ in 1..depth {
                        let mut next = Vec::new();
                        for &b in &level {
                            layout.indirect_blocks.push(b);
                            let blk = &image[b as usize * block_size..(b as usize + 1) * block_size];
                            next.extend(blk.chunks(4).map(|c| u64::from(u32_at(c, 0))).filter(|&p| p != 0));
                        }
                        level = next;
                    }
                    layout.indirect_blocks.extend(&level);
                }
            }
        }
    }
    layout
}

fn bases() -> &'static [Base] {
    static BASES: OnceLock<Vec<Base>> = OnceLock::new();
    BASES.get_or_init(|| {
        let tools = have_e2fsprogs("fuzz base images from mke2fs (using our own format instead)");
        let scratch = Scratch::new("fuzz");
        let images = if tools {
            vec![
                ("mke2fs-1k-htree", mke2fs_image(&scratch, 1024, true)),
                ("mke2fs-4k", mke2fs_image(&scratch, 4096, false)),
            ]
        } else {
            vec![("own-1k", own_image(1024)), ("own-4k", own_image(4096))]
        };
        let mut bases: Vec<Base> =
            images.into_iter().map(|(name, image)| Base { name, layout: layout(&image), image }).collect();
        let image = own_image(2048);
        bases.push(Base { name: "own-2k", layout: layout(&image), image });
        for b in &bases {
            assert!(!b.layout.indirect_blocks.is_empty() && !b.layout.dir_blocks.is_empty(), "{}", b.name);
        }
        bases
    })
}

/// Applies 1–4 mutations; returns what it did.
fn mutate(base: &Base, rng: &mut Rng) -> (Vec<u8>, Vec<String>) {
    let mut img = base.image.clone();
    let l = &base.layout;
    let bs = l.block_size;
    let mut log = Vec::new();
    let pick = |rng: &mut Rng, v: &[u64]| v[rng.below(v.len() as u64) as usize];
    let interesting = |rng: &mut Rng| -> u32 {
        let (bb, ib, it) = l.groups[0];
        match rng.below(10) {
            0 => 0,
            1 => rng.next() as u32,
            2 => l.blocks as u32 + rng.below(5) as u32,
            3 => (1024 / bs) as u32,
            4 => l.gdt_block as u32,
            5 => bb as u32,
            6 => ib as u32,
            7 => (it + rng.below(l.inode_table_blocks)) as u32,
            8 => u32::MAX,
            _ => pick(rng, &l.data_blocks) as u32,
        }
    };
    for _ in 0..1 + rng.below(4) {
        match rng.below(12) {
            0 | 1 => {
                // Byte flips in a metadata region.
                let (bb, ib, it) = l.groups[rng.below(l.groups.len() as u64) as usize];
                let (what, start, len) = match rng.below(6) {
                    0 => ("superblock", 1024, 1024),
                    1 => ("gdt", l.gdt_block as usize * bs, bs),
                    2 => ("bitmap", (if rng.below(2) == 0 { bb } else { ib }) as usize * bs, bs),
                    3 => ("inode table", it as usize * bs, l.inode_table_blocks as usize * bs),
                    4 => ("dir block", pick(rng, &l.dir_blocks) as usize * bs, bs),
                    _ => ("indirect block", pick(rng, &l.indirect_blocks) as usize * bs, bs),
                };
                for _ in 0..1 + rng.below(8) {
                    let off = start + rng.below(len as u64) as usize;
                    img[off] ^= 1 << rng.below(8);
                }
                log.push(format!("flip {what}"));
            }
            2 | 3 => {
                // A block pointer of a live inode.
                let (ino, rec, _) = l.inodes[rng.below(l.inodes.len() as u64) as usize];
                let slot = rng.below(15) as usize;
                let v = interesting(rng);
                put32(&mut img, rec + 40 + 4 * slot, v);
                log.push(format!("inode {ino} i_block[{slot}] = {v}"));
            }
            4 => {
                // An entry of an indirect block: out of range, metadata, itself, another.
                let b = pick(rng, &l.indirect_blocks);
                let idx = rng.below((bs / 4) as u64) as usize;
                let v = if rng.below(3) == 0 { b as u32 } else { interesting(rng) };
                if rng.below(4) == 0 {
                    for i in 0..bs / 4 {
                        put32(&mut img, b as usize * bs + 4 * i, v);
                    }
                    log.push(format!("indirect {b}: every entry = {v}"));
                } else {
                    put32(&mut img, b as usize * bs + 4 * idx, v);
                    log.push(format!("indirect {b}[{idx}] = {v}"));
                }
            }
            5 | 6 => {
                // A directory entry: rec_len, name_len, inode.
                let b = pick(rng, &l.dir_blocks) as usize * bs;
                let mut offs = vec![0usize];
                let mut off = 0;
                while off < bs {
                    let rl = usize::from(u16::from_le_bytes([img[b + off + 4], img[b + off + 5]]));
                    if rl < 8 || off + rl >= bs {
                        break;
                    }
                    off += rl;
                    offs.push(off);
                }
                let e = b + offs[rng.below(offs.len() as u64) as usize];
                match rng.below(7) {
                    0 => put16(&mut img, e + 4, 0),
                    1 => put16(&mut img, e + 4, rng.below(16) as u16),
                    2 => put16(&mut img, e + 4, 0xfffc),
                    3 => img[e + 6] = 255,
                    4 => put32(&mut img, e, rng.next() as u32),
                    5 => put32(&mut img, e, rng.below(12) as u32),
                    _ => img[e + 8] = b'/',
                }
                log.push(format!("dirent at {e}"));
            }
            7 => {
                // Inode fields: size, links, mode, blocks, flags, xattr block.
                let (ino, rec, ft) = l.inodes[rng.below(l.inodes.len() as u64) as usize];
                match rng.below(8) {
                    0 => put32(&mut img, rec + 4, u32::MAX),
                    1 => {
                        put32(&mut img, rec + 4, rng.next() as u32);
                        put32(&mut img, rec + 108, rng.next() as u32);
                    }
                    2 => put16(&mut img, rec + 26, 0),
                    3 => put16(&mut img, rec, rng.next() as u16),
                    4 => put32(&mut img, rec + 28, rng.next() as u32),
                    5 => put32(&mut img, rec + 32, 0x1000 | rng.next() as u32),
                    6 => put32(&mut img, rec + 104, interesting(rng)),
                    _ => put16(&mut img, rec, 0),
                }
                log.push(format!("inode {ino} ({ft:?}) fields"));
            }
            8 => {
                // Bitmaps cleared or filled.
                let (bb, ib, _) = l.groups[rng.below(l.groups.len() as u64) as usize];
                let b = if rng.below(2) == 0 { bb } else { ib } as usize;
                let fill = if rng.below(2) == 0 { 0 } else { 0xff };
                img[b * bs..(b + 1) * bs].fill(fill);
                log.push(format!("bitmap {b} = {fill:#x}"));
            }
            9 => {
                // Group descriptor fields.
                let g = rng.below(l.groups.len() as u64) as usize;
                let off = l.gdt_block as usize * bs + g * 32 + 4 * rng.below(5) as usize;
                let v = if rng.below(2) == 0 { interesting(rng) } else { rng.next() as u32 };
                put32(&mut img, off, v);
                log.push(format!("gdt[{g}] +{} = {v}", off % 32));
            }
            10 => {
                // Superblock fields.
                let fields = [0usize, 4, 12, 16, 20, 24, 32, 40, 76, 84, 88, 92, 96, 100, 206];
                let off = 1024 + fields[rng.below(fields.len() as u64) as usize];
                let v = match rng.below(4) {
                    0 => 0,
                    1 => rng.below(64) as u32,
                    2 => 1 << rng.below(32),
                    _ => rng.next() as u32,
                };
                if off == 1024 + 88 || off == 1024 + 206 {
                    put16(&mut img, off, v as u16);
                } else {
                    put32(&mut img, off, v);
                }
                log.push(format!("superblock +{} = {v}", off - 1024));
            }
            _ => {
                // A directory's link count and `..`.
                let dirs: Vec<_> = l.inodes.iter().filter(|i| i.2 == FileType::Directory).collect();
                let (ino, rec, _) = *dirs[rng.below(dirs.len() as u64) as usize];
                put16(&mut img, rec + 26, rng.below(3) as u16);
                let b = pick(rng, &l.dir_blocks) as usize * bs;
                put32(&mut img, b + 12, ino);
                log.push(format!("dir {ino} links, a '..' = {ino}"));
            }
        }
    }
    (img, log)
}

/// A device that panics on a write past the file system the image's superblock describes.
struct GuardDevice {
    inner: MemDevice,
    limit: u64,
}

impl BlockDevice for GuardDevice {
    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.inner.read(offset, buf)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        assert!(
            offset + buf.len() as u64 <= self.limit,
            "write at {offset}+{} outside the fs ({})",
            buf.len(),
            self.limit
        );
        self.inner.write(offset, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

struct Found {
    dirs: Vec<Ino>,
    files: Vec<Ino>,
    entries: Vec<(Ino, Vec<u8>)>,
}

/// Walks the tree reading everything, with bounded work.
fn walk<D: BlockDevice>(fs: &mut Ext2<D>, rng: &mut Rng) -> Found {
    let mut found = Found { dirs: vec![fs.root()], files: Vec::new(), entries: Vec::new() };
    let mut seen = BTreeSet::from([fs.root()]);
    let mut queue = VecDeque::from([fs.root()]);
    let mut budget = 3000;
    let mut buf = vec![0u8; 16 << 10];
    while let Some(dir) = queue.pop_front() {
        let mut entries = Vec::new();
        let _ = tally(fs.readdir(dir, 0, |ino, name, ft, _| {
            entries.push((ino, name.to_vec(), ft));
            entries.len() < 1000
        }));
        let _ = fs.readdir(dir, rng.below(1 << 14), |_, _, _, _| rng.below(8) != 0);
        for (ino, name, _) in entries {
            budget -= 1;
            if budget == 0 {
                return found;
            }
            if name == b"." || name == b".." {
                continue;
            }
            found.entries.push((dir, name.clone()));
            let Ok(ino2) = tally(fs.lookup(dir, &name)) else { continue };
            let _ = ino;
            let Ok(attr) = fs.getattr(ino2) else { continue };
            if !seen.insert(ino2) {
                continue;
            }
            match attr.file_type() {
                FileType::Directory => {
                    found.dirs.push(ino2);
                    queue.push_back(ino2);
                }
                FileType::Regular => {
                    found.files.push(ino2);
                    let mut off = 0;
                    while off < attr.size.min(128 << 10) {
                        match tally(fs.read(ino2, off, &mut buf)) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => off += n as u64,
                        }
                    }
                    for off in [attr.size.saturating_sub(10), 66 << 20, rng.below(1 << 27)] {
                        let _ = fs.read(ino2, off, &mut buf[..3000]);
                    }
                }
                FileType::Symlink => {
                    let _ = tally(fs.readlink(ino2));
                }
                _ => {}
            }
        }
    }
    found
}

/// A few changes, whatever the image looks like.
fn change<D: BlockDevice>(fs: &mut Ext2<D>, rng: &mut Rng, found: &Found) {
    let pick = |rng: &mut Rng, v: &[Ino]| if v.is_empty() { 2 } else { v[rng.below(v.len() as u64) as usize] };
    let data = rng.bytes(20_000);
    for step in 0..10 {
        let dir = pick(rng, &found.dirs);
        let file = pick(rng, &found.files);
        let name = format!("fz{step}-{}", rng.below(1000));
        match rng.below(12) {
            0 => {
                if let Ok(f) = fs.create(dir, name.as_bytes(), S_IFREG | 0o644, 0, 0, 0) {
                    let _ = fs.write(f, rng.below(300 << 10), &data[..rng.below(20_000) as usize]);
                }
            }
            1 => {
                let size = fs.getattr(file).map_or(0, |a| a.size);
                let off = [0, size, rng.below(1 << 27), 68 << 20][rng.below(4) as usize];
                let _ = fs.write(file, off, &data[..rng.below(8192) as usize]);
            }
            2 => {
                let size = fs.getattr(file).map_or(0, |a| a.size);
                let new = [0, size / 2, size + 1000, 1 << 26][rng.below(4) as usize];
                let _ = fs.setattr(file, SetAttr { size: Some(new), mode: Some(0o600), ..Default::default() });
            }
            3 | 4 => {
                if let Some((d, n)) = found.entries.get(rng.below(found.entries.len().max(1) as u64) as usize) {
                    let _ = if rng.below(2) == 0 { fs.unlink(*d, n) } else { fs.rmdir(*d, n) };
                }
            }
            5 => {
                if let Some((d, n)) = found.entries.get(rng.below(found.entries.len().max(1) as u64) as usize) {
                    let mode =
                        [RenameMode::Replace, RenameMode::NoReplace, RenameMode::Exchange][rng.below(3) as usize];
                    let target = if rng.below(2) == 0 {
                        name.clone().into_bytes()
                    } else {
                        found.entries[rng.below(found.entries.len() as u64) as usize].1.clone()
                    };
                    let _ = fs.rename(*d, n, dir, &target, mode);
                }
            }
            6 => {
                if let Ok(d) = fs.mkdir(dir, name.as_bytes(), 0o755, 0, 0) {
                    let _ = fs.create(d, b"inner", S_IFREG, 0, 0, 0);
                }
            }
            7 => {
                let target = if rng.below(2) == 0 { "short".to_string() } else { "long/".repeat(30) };
                let _ = fs.symlink(dir, name.as_bytes(), target.as_bytes(), 0, 0);
            }
            8 => {
                let _ = fs.link(file, dir, name.as_bytes());
            }
            9 => {
                if fs.open_ref(file).is_ok() {
                    if let Some((d, n)) = found.entries.iter().find(|_| rng.below(4) == 0) {
                        let _ = fs.unlink(*d, n);
                    }
                    let _ = fs.write(file, 0, b"open");
                    let _ = fs.release(file);
                }
            }
            10 => {
                let _ = fs.statfs();
                for ino in [0, 1, 7, 11, rng.next() as u32, rng.below(300) as u32] {
                    let _ = fs.getattr(ino);
                    let _ = fs.lookup(ino, b"x");
                }
            }
            _ => {
                let _ = fs.fsync(file, rng.below(2) == 0);
            }
        }
    }
}

/// Size of the file system an image's superblock describes (`u64::MAX` if nonsense: mount
/// refuses those anyway).
fn fs_bytes(image: &[u8]) -> u64 {
    let log = u32_at(image, 1024 + 24);
    if log > 6 {
        return u64::MAX;
    }
    u64::from(u32_at(image, 1024 + 4)) << (10 + log)
}

static MOUNTED: AtomicU64 = AtomicU64::new(0);
static ERRORS: std::sync::Mutex<std::collections::BTreeMap<i32, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Counts an error the walk met (reported at the end, to show corruption is reached).
fn tally<T>(r: Result<T, ext2::Errno>) -> Result<T, ext2::Errno> {
    if let Err(e) = &r {
        *ERRORS.lock().unwrap().entry(e.0).or_default() += 1;
    }
    r
}
static FILES_READ: AtomicU64 = AtomicU64::new(0);

fn run_case(base: &Base, seed: u64) {
    let mut rng = Rng(seed);
    let (image, _) = mutate(base, &mut rng);
    let limit = fs_bytes(&image);
    let opts = MountOptions { cache_blocks: 32, ..Default::default() };
    let dev = GuardDevice { inner: MemDevice::from_vec(image), limit };
    let Ok(mut fs) = tally(Ext2::mount(dev, opts)) else { return };
    MOUNTED.fetch_add(1, Ordering::Relaxed);
    let found = walk(&mut fs, &mut rng);
    FILES_READ.fetch_add(found.files.len() as u64, Ordering::Relaxed);
    change(&mut fs, &mut rng, &found);
    let _ = fs.sync();
    let dev = fs.into_device();
    if let Ok(mut fs) = Ext2::mount(dev, opts) {
        let found = walk(&mut fs, &mut rng);
        change(&mut fs, &mut rng, &found);
        let _ = fs.sync();
    }
}

/// Runs `cases` seeds on base image `which` under a watchdog; panics listing failing seeds.
fn fuzz(which: usize, cases: u64) {
    let base_seed = (which as u64) << 32;
    let cases = std::env::var("EXT2_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    let only: Option<u64> = std::env::var("EXT2_FUZZ_SEED").ok().and_then(|v| v.parse().ok());
    let seeds: Vec<u64> = match only {
        Some(s) if s >> 32 == which as u64 => vec![s],
        Some(_) => return,
        None => (0..cases).map(|i| base_seed + i).collect(),
    };
    let count = seeds.len();
    let base = &bases()[which];
    if only.is_some() {
        let (_, log) = mutate(base, &mut Rng(seeds[0]));
        eprintln!("seed {} on {}: {log:?}", seeds[0], base.name);
    }
    let current = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (current, done) = (current.clone(), done.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            for seed in seeds {
                current.store(seed, Ordering::SeqCst);
                if catch_unwind(AssertUnwindSafe(|| run_case(base, seed))).is_err() {
                    let (_, log) = mutate(base, &mut Rng(seed));
                    eprintln!("FUZZ FAILURE: seed {seed} on {} ({log:?}); EXT2_FUZZ_SEED={seed}", base.name);
                    failures.push(seed);
                }
            }
            done.store(true, Ordering::SeqCst);
            failures
        })
    };
    let start = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        let now = current.load(Ordering::SeqCst);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(20) {
            panic!("seed {now} on {} made no progress for 20 s (a loop?); EXT2_FUZZ_SEED={now}", base.name);
        }
    }
    let failures = worker.join().unwrap();
    eprintln!(
        "fuzz {}: {} cases in {:?} (all images so far: {} mounted, {} files read, errors by errno {:?})",
        base.name,
        count,
        start.elapsed(),
        MOUNTED.load(Ordering::Relaxed),
        FILES_READ.load(Ordering::Relaxed),
        ERRORS.lock().unwrap()
    );
    assert!(failures.is_empty(), "failing seeds on {}: {failures:?}", base.name);
}

#[test]
fn fuzz_1k_blocks() {
    fuzz(0, 1000);
}

#[test]
fn fuzz_4k_blocks() {
    fuzz(1, 800);
}

#[test]
fn fuzz_own_format_2k_blocks() {
    fuzz(2, 600);
}
