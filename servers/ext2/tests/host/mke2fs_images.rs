//! Images made by `mke2fs -d` from a generated tree read back exactly: contents, listings,
//! attributes, links; and an htree-indexed copy stays clean after it is modified.

use crate::common::*;
use ext2::{Errno, Ext2, FileType, Ino, MountOptions, RenameMode, S_IFREG};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

/// File sizes around the direct / single / double indirect boundaries at 1, 2 and 4 KiB.
const SIZES: &[u64] = &[
    0,
    1,
    1023,
    1024,
    1025,
    12 * 1024,
    12 * 1024 + 1,
    24 * 1024 + 1,
    268 * 1024,
    268 * 1024 + 1,
    300 * 1024 + 17,
    48 * 1024 + 1,
    (12 + 512) * 2048 + 3,
    (12 + 1024) * 4096 + 1000,
];

/// Offsets of data in the sparse file: the start, inside the double-indirect range, and past
/// it at 1 KiB blocks ((12 + 256 + 65536) KiB = 64.26 MiB), i.e. in the triple-indirect range.
const SPARSE_CHUNKS: &[(u64, usize)] = &[(0, 100), (1 << 20, 3000), (68 << 20, 5000), ((70 << 20) - 10, 10)];

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
}

/// Builds the source tree; returns whether device nodes could be made (needs root).
fn build_tree(root: &Path) -> bool {
    std::fs::create_dir_all(root.join("a/b/c/d")).unwrap();
    std::fs::create_dir_all(root.join("emptydir")).unwrap();
    write(&root.join("empty"), b"");
    write(&root.join("a/b/c/d/deep"), b"deep file\n");
    for (i, &size) in SIZES.iter().enumerate() {
        write(&root.join(format!("a/size-{size}")), &pattern(i as u64 + 100, size as usize));
    }
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(root.join("sparse")).unwrap();
        for (i, &(off, len)) in SPARSE_CHUNKS.iter().enumerate() {
            f.write_all_at(&pattern(i as u64 + 7, len), off).unwrap();
        }
        f.set_len(70 << 20).unwrap();
    }
    std::os::unix::fs::symlink("a/size-1", root.join("fast-link")).unwrap();
    std::os::unix::fs::symlink("x".repeat(59), root.join("fast-link-59")).unwrap();
    std::os::unix::fs::symlink("y".repeat(60), root.join("slow-link-60")).unwrap();
    std::os::unix::fs::symlink(format!("/{}", "long/".repeat(60)), root.join("a/slow-link")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    write(&root.join("hard1"), b"shared by two names");
    std::fs::hard_link(root.join("hard1"), root.join("a/b/hard2")).unwrap();
    std::fs::create_dir(root.join("big")).unwrap();
    for i in 0..1200 {
        let name = format!("entry-with-a-longish-name-{i:05}");
        write(&root.join("big").join(name), if i % 100 == 0 { b"x" } else { b"" });
    }
    let _ = Command::new("mkfifo").arg(root.join("fifo")).status();
    let ok = Command::new("mknod").arg(root.join("chardev")).args(["c", "1", "3"]).status().is_ok_and(|s| s.success())
        && Command::new("mknod")
            .arg(root.join("blockdev"))
            .args(["b", "259", "300"])
            .status()
            .is_ok_and(|s| s.success());
    std::fs::set_permissions(root.join("a/size-1"), std::os::unix::fs::PermissionsExt::from_mode(0o4751)).unwrap();
    ok
}

fn all_entries<D: ext2::BlockDevice>(fs: &mut Ext2<D>, dir: Ino) -> BTreeMap<Vec<u8>, (Ino, FileType)> {
    let mut out = BTreeMap::new();
    fs.readdir(dir, 0, |ino, name, ft, _| {
        out.insert(name.to_vec(), (ino, ft));
        true
    })
    .unwrap();
    out
}

fn host_type(ft: std::fs::FileType) -> FileType {
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_fifo() {
        FileType::Fifo
    } else if ft.is_char_device() {
        FileType::CharDev
    } else if ft.is_block_device() {
        FileType::BlockDev
    } else if ft.is_socket() {
        FileType::Socket
    } else {
        FileType::Regular
    }
}

/// Compares the image's directory `dir` with host directory `host`, recursively; counts
/// what it checked. `inodes` maps host inode numbers to image ones (hard links).
fn compare<D: ext2::BlockDevice>(
    fs: &mut Ext2<D>,
    dir: Ino,
    host: &Path,
    ns_times: bool,
    inodes: &mut BTreeMap<u64, Ino>,
    checked: &mut usize,
) {
    let mut listed = all_entries(fs, dir);
    assert_eq!(listed.remove(b".".as_slice()).map(|e| e.0), Some(dir));
    assert!(listed.remove(b"..".as_slice()).is_some());
    if dir == fs.root() {
        listed.remove(b"lost+found".as_slice());
    }
    let mut expected: Vec<Vec<u8>> =
        std::fs::read_dir(host).unwrap().map(|e| e.unwrap().file_name().into_encoded_bytes()).collect();
    expected.sort();
    let names: Vec<Vec<u8>> = listed.keys().cloned().collect();
    assert_eq!(names, expected, "listing of {}", host.display());
    for (name, (ino, ft)) in listed {
        let path = host.join(std::str::from_utf8(&name).unwrap());
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(fs.lookup(dir, &name).unwrap(), ino);
        assert_eq!(ft, host_type(meta.file_type()), "{}", path.display());
        let attr = fs.getattr(ino).unwrap();
        let what = path.display().to_string();
        assert_eq!(attr.mode, meta.mode(), "{what}");
        assert_eq!(attr.nlink, meta.nlink() as u32, "{what}");
        assert_eq!((attr.uid, attr.gid), (meta.uid(), meta.gid()), "{what}");
        assert_eq!(attr.mtime.sec, meta.mtime(), "{what}");
        if ns_times {
            assert_eq!(attr.mtime.nsec as i64, meta.mtime_nsec(), "{what}");
        }
        if let Some(prev) = inodes.insert(meta.ino(), ino) {
            assert_eq!(prev, ino, "hard links of {what}");
        }
        *checked += 1;
        match ft {
            FileType::Directory => compare(fs, ino, &path, ns_times, inodes, checked),
            FileType::Symlink => {
                let target = std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes();
                assert_eq!(fs.readlink(ino).unwrap(), target, "{what}");
                assert_eq!(attr.size, target.len() as u64);
            }
            FileType::Regular => {
                assert_eq!(attr.size, meta.len(), "{what}");
                let want = std::fs::read(&path).unwrap();
                let mut got = vec![0xAAu8; want.len() + 100];
                // One big read, then small unaligned reads of a few places.
                assert_eq!(fs.read(ino, 0, &mut got).unwrap(), want.len(), "{what}");
                assert!(got[..want.len()] == want[..], "contents of {what}");
                for off in [1u64, 1000, 4097, 70_000, 12 * 1024 - 3] {
                    let mut small = [0u8; 7];
                    let n = fs.read(ino, off, &mut small).unwrap();
                    let end = (off as usize + 7).min(want.len());
                    let exp = want.get(off as usize..end).unwrap_or(&[]);
                    assert_eq!(&small[..n], exp, "{what} at {off}");
                }
                assert!(attr.blocks * 512 >= attr.size.min(4096) || attr.size == 0 || name == b"sparse");
            }
            FileType::CharDev | FileType::BlockDev => assert_eq!(attr.rdev, meta.rdev(), "{what}"),
            _ => {}
        }
    }
}

fn ro() -> MountOptions {
    MountOptions { read_only: true, ..MountOptions::default() }
}

#[test]
fn mke2fs_images_read_back() {
    if !have_e2fsprogs("mke2fs_images_read_back") {
        return;
    }
    let scratch = Scratch::new("mke2fs");
    let src = scratch.path("src");
    let devices = build_tree(&src);
    for (bs, size_kib) in [(1024u32, 16 * 1024u64), (2048, 24 * 1024), (4096, 32 * 1024)] {
        let img = scratch.path(&format!("img-{bs}"));
        mke2fs(&img, bs, size_kib, Some(&src), &[]);
        let mut fs = Ext2::mount(FileDevice::open(&img), ro()).unwrap();
        assert!(fs.is_read_only());
        let mut checked = 0;
        let mut inodes = BTreeMap::new();
        let root = fs.root();
        // mke2fs -d copies whole seconds only.
        compare(&mut fs, root, &src, false, &mut inodes, &mut checked);
        assert!(checked > 1230, "only {checked} entries compared");
        if devices {
            let dev = fs.lookup(root, b"blockdev").unwrap();
            assert_eq!(fs.getattr(dev).unwrap().rdev, ext2::makedev(259, 300));
        }
        // Reading past the end, and reading a directory.
        let f = fs.lookup(root, b"hard1").unwrap();
        assert_eq!(fs.read(f, 1 << 40, &mut [0u8; 10]).unwrap(), 0);
        assert_eq!(fs.read(root, 0, &mut [0u8; 10]), Err(Errno::EISDIR));
        assert_eq!(fs.write(f, 0, b"x"), Err(Errno::EROFS));
        assert_eq!(fs.lookup(root, b"no-such"), Err(Errno::ENOENT));
        assert_eq!(fs.lookup(f, b"x"), Err(Errno::ENOTDIR));
        assert_eq!(fs.lookup(root, &[b'n'; 256]), Err(Errno::ENAMETOOLONG));
        // The sparse file is mapped where the host had data, and holes elsewhere.
        let sparse = fs.lookup(root, b"sparse").unwrap();
        assert_eq!(fs.bmap(sparse, (40 << 20) / u64::from(bs)).unwrap(), None);
        assert!(fs.bmap(sparse, (68 << 20) / u64::from(bs)).unwrap().is_some());
        // Resuming a listing at each cookie yields the same entries.
        let big = fs.lookup(root, b"big").unwrap();
        let full: Vec<Vec<u8>> = all_entries(&mut fs, big).into_keys().collect();
        let mut pieces = Vec::new();
        let mut cookie = 0;
        loop {
            let mut got = 0;
            fs.readdir(big, cookie, |_, name, _, next| {
                pieces.push(name.to_vec());
                cookie = next;
                got += 1;
                got < 97
            })
            .unwrap();
            if got == 0 {
                break;
            }
        }
        pieces.sort();
        assert_eq!(pieces, full);
    }
}

#[test]
fn indexed_directories_stay_clean_when_modified() {
    if !have_e2fsprogs("indexed_directories_stay_clean_when_modified") {
        return;
    }
    let scratch = Scratch::new("htree");
    let src = scratch.path("src");
    std::fs::create_dir_all(src.join("big")).unwrap();
    for i in 0..3000 {
        write(&src.join("big").join(format!("some-file-name-{i:06}")), b"");
    }
    let img = scratch.path("img");
    mke2fs(&img, 1024, 8 * 1024, Some(&src), &["-N", "4096"]);
    e2fsck_index_dirs(&img);
    let stat = debugfs(&img, "stat /big");
    assert!(stat.contains("Flags: 0x1000"), "e2fsck -D did not index /big:\n{stat}");
    let mut fs =
        Ext2::mount(FileDevice::open(&img), MountOptions { clock: wall_clock, ..MountOptions::default() }).unwrap();
    let root = fs.root();
    let big = fs.lookup(root, b"big").unwrap();
    assert_eq!(all_entries(&mut fs, big).len(), 3002);
    assert!(fs.getattr(big).unwrap().flags & 0x1000 != 0);
    for i in (0..3000).step_by(7) {
        fs.unlink(big, format!("some-file-name-{i:06}").as_bytes()).unwrap();
    }
    for i in 0..200 {
        let f = fs.create(big, format!("new-{i}").as_bytes(), S_IFREG | 0o644, 0, 0, 0).unwrap();
        fs.write(f, 0, &pattern(i, 10)).unwrap();
    }
    fs.rename(big, b"some-file-name-000001", root, b"moved", RenameMode::Replace).unwrap();
    assert_eq!(fs.getattr(big).unwrap().flags & 0x1000, 0, "index flag must be cleared");
    fs.sync().unwrap();
    drop(fs);
    assert_fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/big/new-5"), pattern(5, 10));
}
