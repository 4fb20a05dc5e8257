//! The held write-back mode as a transaction mechanism: undo (`discard_changes`), the freed
//! set, open references restored from outside, and `read_map` against `read`.

use crate::common::*;
use ext2::{Errno, Ext2, MemDevice, MountOptions, WriteBack, S_IFREG};

fn held(dev: MemDevice) -> Ext2<MemDevice> {
    let opts = MountOptions { cache_blocks: 64, write_back: WriteBack::Hold, clock: wall_clock, ..Default::default() };
    Ext2::mount(dev, opts).unwrap()
}

fn fresh(bytes: usize, bs: u32) -> MemDevice {
    let mut dev = MemDevice::new(bytes);
    let opts = ext2::FormatOptions { block_size: bs, lost_and_found: false, now: wall_clock(), ..Default::default() };
    ext2::format(&mut dev, &opts).unwrap();
    dev
}

/// Applies the held dirty set to a copy of the device bytes (what a committer does), zeroing
/// the freed blocks, and marks the cache clean.
fn commit(fs: &mut Ext2<MemDevice>, image: &mut [u8]) -> usize {
    let bs = fs.block_size() as usize;
    let freed: Vec<u64> = fs.cache().freed_blocks().collect();
    for b in &freed {
        image[*b as usize * bs..(*b as usize + 1) * bs].fill(0);
    }
    let dirty: Vec<(u64, Vec<u8>)> = fs.cache().dirty_blocks().map(|(b, d)| (b, d.to_vec())).collect();
    for (b, data) in &dirty {
        image[*b as usize * bs..(*b as usize + 1) * bs].copy_from_slice(data);
    }
    fs.cache_mut().mark_all_clean();
    freed.len()
}

#[test]
fn discard_changes_undoes_a_half_done_operation() {
    let dev = fresh(8 << 20, 4096);
    let mut fs = held(dev);
    let root = fs.root();
    let before = fs.statfs();
    let d = fs.mkdir(root, b"d", 0o755, 0, 0).unwrap();
    let f = fs.create(d, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, &pattern(7, 100_000)).unwrap();
    assert!(fs.cache().dirty_count() > 20);
    fs.discard_changes().unwrap();
    assert_eq!(fs.cache().dirty_count(), 0);
    assert_eq!(fs.lookup(root, b"d"), Err(Errno::ENOENT), "the directory is gone");
    assert_eq!(fs.statfs(), before, "free counts are back (superblock and descriptors reloaded)");
    // The same operations again allocate the same way and commit cleanly.
    let d2 = fs.mkdir(root, b"d", 0o755, 0, 0).unwrap();
    assert_eq!(d2, d, "the undone inode is free again");
    let f = fs.create(d2, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, &pattern(7, 100_000)).unwrap();
    let mut image = fs.into_device().into_vec();
    let mut fs = held(MemDevice::from_vec(image.clone()));
    // Nothing reached the device while held: redo, commit by hand, check with e2fsck.
    let d = fs.mkdir(root, b"d", 0o755, 0, 0).unwrap();
    let f = fs.create(d, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, &pattern(7, 100_000)).unwrap();
    commit(&mut fs, &mut image);
    let scratch = Scratch::new("held-undo");
    let img = scratch.path("img");
    std::fs::write(&img, &image).unwrap();
    assert_fsck_clean(&img);
    assert!(debugfs_cat(&img, "/d/f") == pattern(7, 100_000));
}

#[test]
fn freed_blocks_are_reported_until_committed() {
    let dev = fresh(8 << 20, 4096);
    let mut image = dev.as_bytes().to_vec();
    let mut fs = held(dev);
    let root = fs.root();
    let f = fs.create(root, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, &pattern(1, 20 * 4096)).unwrap();
    commit(&mut fs, &mut image);
    assert_eq!(fs.cache().freed_blocks().count(), 0);
    // 12 direct blocks, one indirect block and 8 data blocks under it.
    fs.unlink(root, b"f").unwrap();
    let freed: Vec<u64> = fs.cache().freed_blocks().collect();
    assert_eq!(freed.len(), 21, "{freed:?}");
    // A freed block taken again in the same operation is dirty, not freed.
    let g = fs.create(root, b"g", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(g, 0, &[1u8; 4096]).unwrap();
    assert_eq!(fs.cache().freed_blocks().count(), 20);
    assert_eq!(commit(&mut fs, &mut image), 20);
    let scratch = Scratch::new("held-freed");
    let img = scratch.path("img");
    std::fs::write(&img, &image).unwrap();
    assert_fsck_clean(&img);
}

#[test]
fn open_references_restored_after_a_restart() {
    let dev = fresh(8 << 20, 4096);
    let mut image = dev.as_bytes().to_vec();
    let mut fs = held(dev);
    let root = fs.root();
    let f = fs.create(root, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, b"still here").unwrap();
    fs.open_ref(f).unwrap();
    fs.open_ref(f).unwrap();
    fs.unlink(root, b"f").unwrap();
    assert_eq!(fs.open_count(f), 2);
    assert_eq!(fs.open_refs().collect::<Vec<_>>(), vec![(f, 2)]);
    commit(&mut fs, &mut image);
    drop(fs);
    // A new instance: the inode has no links; only the restored references keep it.
    let mut fs = held(MemDevice::from_vec(image.clone()));
    assert_eq!(fs.getattr(f), Err(Errno::ESTALE));
    fs.set_open_count(f, 2);
    let mut buf = [0u8; 32];
    assert_eq!(fs.read(f, 0, &mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], b"still here");
    fs.release(f).unwrap();
    assert!(fs.getattr(f).is_ok());
    fs.release(f).unwrap();
    assert_eq!(fs.getattr(f), Err(Errno::ESTALE), "freed with the last reference");
    assert!(fs.cache().freed_blocks().count() == 1);
    commit(&mut fs, &mut image);
    let scratch = Scratch::new("held-opens");
    let img = scratch.path("img");
    std::fs::write(&img, &image).unwrap();
    assert_fsck_clean(&img);
}

#[test]
fn read_map_names_what_read_returns() {
    for bs in [1024u32, 4096] {
        let dev = fresh(16 << 20, bs);
        let mut image = dev.as_bytes().to_vec();
        let mut fs = held(dev);
        let root = fs.root();
        let f = fs.create(root, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
        let b = u64::from(bs);
        // Data, a hole, data past the single-indirect range, and an interleaved second file
        // so that the first one's blocks are not all contiguous.
        fs.write(f, 0, &pattern(1, 5 * bs as usize + 17)).unwrap();
        let g = fs.create(root, b"g", S_IFREG | 0o644, 0, 0, 0).unwrap();
        fs.write(g, 0, &pattern(2, bs as usize)).unwrap();
        fs.write(f, 5 * b + 17, &pattern(3, 20 * bs as usize)).unwrap();
        fs.write(f, 400 * b + 3, &pattern(4, 3 * bs as usize)).unwrap();
        let far = (12 + b / 4 + 10) * b;
        fs.write(f, far, &pattern(5, 2 * bs as usize + 1)).unwrap();
        commit(&mut fs, &mut image);
        let size = fs.getattr(f).unwrap().size;
        let mut whole = vec![0u8; size as usize];
        fs.read(f, 0, &mut whole).unwrap();
        for (off, len) in [
            (0u64, size as usize),
            (1, 10),
            (b - 1, 2),
            (5 * b, 40 * b as usize),
            (far - 5, 100),
            (size - 1, 9),
            (size, 1),
        ] {
            let spans = fs.read_map(f, off, len).unwrap();
            let mut got = Vec::new();
            for s in &spans {
                match s.device_offset {
                    Some(at) => got.extend_from_slice(&image[at as usize..at as usize + s.len]),
                    None => got.resize(got.len() + s.len, 0),
                }
            }
            let end = (off as usize + len).min(whole.len());
            let want = whole.get(off as usize..end).unwrap_or(&[]);
            assert!(got == want, "bs {bs}: read_map({off}, {len}) differs from read ({} spans)", spans.len());
            // Adjacent spans are never mergeable.
            for w in spans.windows(2) {
                let mergeable = match (w[0].device_offset, w[1].device_offset) {
                    (None, None) => true,
                    (Some(a), Some(c)) => a + w[0].len as u64 == c,
                    _ => false,
                };
                assert!(!mergeable, "bs {bs}: spans {w:?} should be one");
            }
        }
        assert_eq!(fs.read_map(g, 0, 10).unwrap().len(), 1);
        assert_eq!(fs.read_map(root, 0, 10), Err(Errno::EISDIR));
    }
}

/// A RAM disk the test also holds (the file system reads what the test commits to it).
#[derive(Clone)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl ext2::BlockDevice for Shared {
    fn size_bytes(&self) -> u64 {
        self.0.borrow().len() as u64
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ext2::IoError> {
        let d = self.0.borrow();
        buf.copy_from_slice(d.get(offset as usize..offset as usize + buf.len()).ok_or(ext2::IoError::OutOfRange)?);
        Ok(())
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), ext2::IoError> {
        Err(ext2::IoError::Device) // only commits write it
    }
    fn flush(&mut self) -> Result<(), ext2::IoError> {
        Ok(())
    }
}

/// Committing only the dirty ranges (over a device whose free blocks read as zeros) gives
/// exactly the image that committing whole blocks gives, operation after operation, with a
/// cache small enough that blocks are evicted and read back from what was committed.
#[test]
fn dirty_ranges_commit_the_same_image_as_whole_blocks() {
    for bs in [1024u32, 4096] {
        let dev = fresh(8 << 20, bs);
        let mut whole = dev.as_bytes().to_vec();
        let disk = Shared(std::rc::Rc::new(std::cell::RefCell::new(whole.clone())));
        let opts =
            MountOptions { cache_blocks: 32, write_back: WriteBack::Hold, clock: wall_clock, ..Default::default() };
        let mut fs = Ext2::mount(disk.clone(), opts).unwrap();
        fs.cache_mut().set_free_blocks_read_zero(true);
        let root = fs.root();
        let b = bs as usize;
        let mut rng = Rng(u64::from(bs));
        let mut files: Vec<u32> = Vec::new();
        let d = fs.mkdir(root, b"d", 0o755, 0, 0).unwrap();
        for step in 0..600u64 {
            let name = format!("f{}", rng.below(40)).into_bytes();
            let dir = if rng.below(2) == 0 { root } else { d };
            let pick = rng.below(files.len() as u64 + 1) as usize;
            let op = rng.below(9);
            let _ = match (op, files.get(pick)) {
                (0 | 1, _) => fs.create(dir, &name, S_IFREG | 0o644, 0, 0, 0).map(|i| files.push(i)),
                (2 | 3, Some(&ino)) => {
                    let off = rng.below(20 * b as u64);
                    let len = 1 + rng.below(3 * b as u64) as usize;
                    fs.write(ino, off, &pattern(step, len)).map(|_| ())
                }
                (4, Some(&ino)) => {
                    let size = rng.below(8 * b as u64);
                    fs.setattr(ino, ext2::SetAttr { size: Some(size), ..Default::default() }).map(|_| ())
                }
                (5, _) => fs.unlink(dir, &name),
                (6, _) => fs.mkdir(dir, &name, 0o755, 0, 0).map(|_| ()),
                (7, _) => fs.rename(dir, &name, if dir == root { d } else { root }, &name, ext2::RenameMode::Replace),
                (8, _) => {
                    let target: Vec<u8> =
                        pattern(step, 1 + rng.below(200) as usize).iter().map(|c| b'a' + c % 26).collect();
                    fs.symlink(dir, &name, &target, 0, 0).map(|_| ())
                }
                _ => Ok(()),
            };
            let mut ranged = disk.0.borrow_mut();
            for blk in fs.cache().freed_blocks() {
                whole[blk as usize * b..(blk as usize + 1) * b].fill(0);
                ranged[blk as usize * b..(blk as usize + 1) * b].fill(0);
            }
            for (blk, data) in fs.cache().dirty_blocks() {
                whole[blk as usize * b..(blk as usize + 1) * b].copy_from_slice(data);
            }
            for (blk, at, data) in fs.cache().dirty_ranges() {
                let start = blk as usize * b + at;
                ranged[start..start + data.len()].copy_from_slice(data);
            }
            if whole != *ranged {
                let first = whole.iter().zip(ranged.iter()).position(|(x, y)| x != y).unwrap_or(0);
                panic!("bs {bs} step {step} op {op}: the ranges miss a change at byte {first} (block {})", first / b);
            }
            drop(ranged);
            fs.cache_mut().mark_all_clean();
        }
        assert!(fs.cache().stats().evictions > 100, "the cache was too big to test reloading");
        let scratch = Scratch::new("held-ranges");
        let img = scratch.path("img");
        std::fs::write(&img, &whole).unwrap();
        assert_fsck_clean(&img);
    }
}
