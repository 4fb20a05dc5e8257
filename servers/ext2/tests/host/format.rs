//! `format` makes file systems that mount, work and that e2fsck finds clean.

use crate::common::*;
use ext2::{format, Ext2, FormatOptions, MemDevice, MountOptions, Timespec, S_IFREG};

fn opts(block_size: u32) -> FormatOptions {
    FormatOptions {
        block_size,
        label: "cairn".into(),
        uuid: *b"0123456789abcdef",
        now: wall_clock(),
        ..FormatOptions::default()
    }
}

fn mount_opts() -> MountOptions {
    MountOptions { clock: wall_clock, ..MountOptions::default() }
}

#[test]
fn format_in_memory_then_use() {
    let mut dev = MemDevice::new(4 << 20);
    format(&mut dev, &opts(1024)).unwrap();
    let mut fs = Ext2::mount(dev, mount_opts()).unwrap();
    let root = fs.root();
    let f = fs.create(root, b"hello", S_IFREG | 0o644, 0, 1000, 1000).unwrap();
    assert_eq!(fs.write(f, 0, b"hello, world").unwrap(), 12);
    let mut buf = [0u8; 64];
    assert_eq!(fs.read(f, 0, &mut buf).unwrap(), 12);
    assert_eq!(&buf[..12], b"hello, world");
    let st = fs.statfs();
    assert_eq!(st.block_size, 1024);
    assert!(st.blocks_free > 3000);
    let dev = fs.unmount().unwrap();
    let mut fs = Ext2::mount(dev, mount_opts()).unwrap();
    let f2 = fs.lookup(root, b"hello").unwrap();
    assert_eq!(f2, f);
    assert_eq!(fs.getattr(f).unwrap().size, 12);
}

#[test]
fn format_on_a_zeroed_device_writes_only_what_holds_something() {
    // A 256 MiB device, like a ramfs volume: formatting it writes a handful of blocks.
    struct Counting(MemDevice, usize);
    impl ext2::BlockDevice for Counting {
        fn size_bytes(&self) -> u64 {
            self.0.size_bytes()
        }
        fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ext2::IoError> {
            self.0.read(offset, buf)
        }
        fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), ext2::IoError> {
            self.1 += buf.len();
            self.0.write(offset, buf)
        }
        fn flush(&mut self) -> Result<(), ext2::IoError> {
            Ok(())
        }
    }
    let mut dev = Counting(MemDevice::new(256 << 20), 0);
    let o = FormatOptions { assume_zeroed: true, lost_and_found: false, inodes: Some(65536), ..opts(4096) };
    format(&mut dev, &o).unwrap();
    assert!(dev.1 <= 16 * 4096, "{} bytes written", dev.1);
    let mut fs = Ext2::mount(dev.0, mount_opts()).unwrap();
    assert_eq!(fs.statfs().files, 65536);
    let root = fs.root();
    fs.create(root, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    if have_e2fsprogs("format_on_a_zeroed_device") {
        let scratch = Scratch::new("format-zeroed");
        let img = scratch.path("img");
        std::fs::write(&img, fs.unmount().unwrap().as_bytes()).unwrap();
        assert_fsck_clean(&img);
    }
}

#[test]
fn formatted_images_are_clean() {
    if !have_e2fsprogs("formatted_images_are_clean") {
        return;
    }
    let scratch = Scratch::new("format");
    for (bs, size, inode_size, lpf) in [
        (1024, 3 << 20, 128, true),
        (1024, 20 << 20, 256, true),
        (2048, 40 << 20, 256, true),
        (4096, 300 << 20, 256, true),
        (4096, 1 << 20, 256, false),
        (4096, (64 << 20) + 8192 * 5, 128, true),
    ] {
        let img = scratch.path(&format!("fmt-{bs}-{size}.img"));
        let dev = FileDevice::create(&img, size);
        let o = FormatOptions { inode_size, lost_and_found: lpf, ..opts(bs) };
        format(dev, &o).unwrap();
        let (clean, text) = e2fsck(&img);
        assert!(clean, "bs {bs} size {size}: {text}");
        // And it is still clean after some work.
        let mut fs = Ext2::mount(FileDevice::open(&img), mount_opts()).unwrap();
        let root = fs.root();
        let d = fs.mkdir(root, b"dir", 0o755, 0, 0).unwrap();
        let f = fs.create(d, b"file", S_IFREG | 0o600, 0, 0, 0).unwrap();
        fs.write(f, 0, &pattern(1, 100_000)).unwrap();
        fs.symlink(root, b"link", b"dir/file", 0, 0).unwrap();
        fs.sync().unwrap();
        drop(fs);
        assert_fsck_clean(&img);
        assert_eq!(debugfs_cat(&img, "/dir/file"), pattern(1, 100_000));
    }
}

#[test]
fn too_small_device_is_refused() {
    let dev = MemDevice::new(16 * 1024);
    assert!(format(dev, &opts(4096)).is_err());
    let dev = MemDevice::new(1 << 20);
    assert!(format(dev, &FormatOptions { block_size: 8192, ..opts(4096) }).is_err());
    let _ = Timespec::default();
}
