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
