//! Feature flags, revision 0, extended-attribute blocks and statfs against e2fsprogs.

use crate::common::*;
use ext2::{Errno, Ext2, MountOptions, S_IFREG};
use std::path::Path;

fn mount(img: &Path) -> Result<Ext2<FileDevice>, Errno> {
    Ext2::mount(FileDevice::open(img), MountOptions { clock: wall_clock, ..Default::default() })
}

/// Sets bits in a superblock feature word (`off` = 92 compat, 96 incompat, 100 ro_compat).
fn set_feature(img: &Path, off: u64, bits: u32) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(img).unwrap();
    let mut word = [0u8; 4];
    f.read_exact_at(&mut word, 1024 + off).unwrap();
    let v = u32::from_le_bytes(word) | bits;
    f.write_all_at(&v.to_le_bytes(), 1024 + off).unwrap();
}

fn dumpe2fs_field(img: &Path, field: &str) -> u64 {
    let out = std::process::Command::new("/usr/sbin/dumpe2fs").arg("-h").arg(img).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in dumpe2fs"));
    line[field.len()..].trim().parse().unwrap()
}

#[test]
fn unknown_features() {
    if !have_e2fsprogs("unknown_features") {
        return;
    }
    let scratch = Scratch::new("features");
    let img = scratch.path("img");
    mke2fs(&img, 1024, 2048, None, &[]);
    // An unknown COMPAT feature changes nothing.
    set_feature(&img, 92, 0x4000_0000);
    let mut fs = mount(&img).unwrap();
    assert!(!fs.is_read_only());
    let root = fs.root();
    fs.create(root, b"ok", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.sync().unwrap();
    drop(fs);
    // Unknown RO_COMPAT: read-only.
    set_feature(&img, 100, 0x4000_0000);
    let mut fs = mount(&img).unwrap();
    assert!(fs.is_read_only());
    assert!(fs.lookup(root, b"ok").is_ok());
    assert_eq!(fs.create(root, b"no", S_IFREG, 0, 0, 0), Err(Errno::EROFS));
    assert_eq!(fs.mkdir(root, b"no", 0o755, 0, 0), Err(Errno::EROFS));
    assert!(fs.statfs().read_only);
    drop(fs);
    // Unknown INCOMPAT (here: extents): refused.
    set_feature(&img, 96, 0x40);
    assert_eq!(mount(&img).err(), Some(Errno::EINVAL));
    // Not ext2 at all.
    let junk = scratch.path("junk");
    std::fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    assert_eq!(mount(&junk).err(), Some(Errno::EINVAL));
    // A device shorter than the file system.
    let short = scratch.path("short");
    mke2fs(&short, 1024, 2048, None, &[]);
    std::fs::OpenOptions::new().write(true).open(&short).unwrap().set_len(1 << 20).unwrap();
    assert_eq!(mount(&short).err(), Some(Errno::EINVAL));
}

#[test]
fn revision_0_images() {
    if !have_e2fsprogs("revision_0_images") {
        return;
    }
    let scratch = Scratch::new("rev0");
    let img = scratch.path("img");
    mke2fs(&img, 1024, 4096, None, &["-r", "0"]);
    let mut fs = mount(&img).unwrap();
    let root = fs.root();
    let d = fs.mkdir(root, b"dir", 0o755, 0, 0).unwrap();
    let f = fs.create(d, b"file", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, &pattern(1, 50_000)).unwrap();
    assert_eq!(fs.write(f, 1 << 31, b"x"), Err(Errno::EFBIG));
    fs.rename(d, b"file", root, b"moved", ext2::RenameMode::Replace).unwrap();
    fs.sync().unwrap();
    drop(fs);
    assert_fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/moved"), pattern(1, 50_000));
}

#[test]
fn large_file_flag_is_set_when_needed() {
    if !have_e2fsprogs("large_file_flag_is_set_when_needed") {
        return;
    }
    let scratch = Scratch::new("largefile");
    let img = scratch.path("img");
    mke2fs(&img, 4096, 8192, None, &["-O", "^large_file"]);
    let mut fs = mount(&img).unwrap();
    let root = fs.root();
    let f = fs.create(root, b"big", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, (3 << 30) + 5, b"past 2 GiB").unwrap();
    assert_eq!(fs.getattr(f).unwrap().size, (3 << 30) + 15);
    fs.sync().unwrap();
    drop(fs);
    assert_fsck_clean(&img);
    assert!(debugfs(&img, "features").contains("large_file"));
    let mut fs = mount(&img).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(fs.read(f, (3 << 30) + 5, &mut buf).unwrap(), 10);
    assert_eq!(&buf, b"past 2 GiB");
}

#[test]
fn xattr_blocks_are_released() {
    if !have_e2fsprogs("xattr_blocks_are_released") {
        return;
    }
    let scratch = Scratch::new("xattr");
    let src = scratch.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), b"with an attribute").unwrap();
    std::fs::write(src.join("b"), b"another").unwrap();
    let set = |name: &str| {
        std::process::Command::new("python3")
            .arg("-c")
            .arg(format!("import os; os.setxattr('{}', 'user.cairn', b'v' * 100)", src.join(name).display()))
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(set("a") && set("b")) {
        eprintln!("SKIPPED xattr_blocks_are_released: cannot set user xattrs on {}", src.display());
        return;
    }
    let img = scratch.path("img");
    // 128-byte inodes: the attributes must live in blocks.
    mke2fs(&img, 1024, 2048, Some(&src), &["-I", "128"]);
    let mut fs = mount(&img).unwrap();
    let root = fs.root();
    let a = fs.lookup(root, b"a").unwrap();
    assert_eq!(fs.getattr(a).unwrap().blocks, 4, "one data and one xattr block");
    let free = fs.statfs().blocks_free;
    fs.unlink(root, b"a").unwrap();
    fs.unlink(root, b"b").unwrap();
    assert!(fs.statfs().blocks_free >= free + 2);
    fs.sync().unwrap();
    drop(fs);
    assert_fsck_clean(&img);
}

#[test]
fn statfs_matches_dumpe2fs() {
    if !have_e2fsprogs("statfs_matches_dumpe2fs") {
        return;
    }
    let scratch = Scratch::new("statfs");
    let img = scratch.path("img");
    mke2fs(&img, 1024, 20 * 1024, None, &[]);
    let mut fs = mount(&img).unwrap();
    let root = fs.root();
    let f = fs.create(root, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    fs.write(f, 0, &pattern(2, 300_000)).unwrap();
    let st = fs.statfs();
    fs.sync().unwrap();
    drop(fs);
    assert_eq!(st.blocks_free, dumpe2fs_field(&img, "Free blocks:"));
    assert_eq!(st.files_free, dumpe2fs_field(&img, "Free inodes:"));
    assert_eq!(st.files, dumpe2fs_field(&img, "Inode count:"));
    let reserved = dumpe2fs_field(&img, "Reserved block count:");
    assert_eq!(st.blocks_avail, st.blocks_free - reserved);
    assert!(st.blocks < dumpe2fs_field(&img, "Block count:"));
    assert_eq!(st.name_max, 255);
}
