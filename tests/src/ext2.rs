//! The guest tests of the disk file system (`servers/ext2disk`): disks made by `mke2fs` on the
//! host (`tests/guest/ext2/mkimage.sh`, the same bytes every time), a BusyBox workload whose
//! output must equal what the same script printed on Debian's Linux kernel with the same
//! image (`tests/guest/ext2/workload.expected`, recorded by `record.sh`), `e2fsck -fn` on the
//! image after every run, a root file system on the disk, and hostile images that must be
//! refused or answered with errors without a panic, a hang, or a write outside the file
//! system.

use crate::guest::{DiskSpec, GuestTest};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The disk of the workload: 64 MiB, 1 KiB blocks (so a file past 64 MiB needs a triple
/// indirect block).
pub const WORKLOAD_MIB: u32 = 64;

fn script(name: &str) -> PathBuf {
    crate::workspace_root().join("tests/guest/ext2").join(name)
}

fn scratch(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cairn-ext2-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Runs `mkimage.sh` for an image of `img.len()` bytes with `block_size` (and `tree` as its
/// contents, if any) and copies it into `img`.
fn make_image(img: &mut [u8], block_size: u32, tree: Option<&Path>) {
    let dir = scratch("mk");
    let out = dir.join("disk.img");
    let mut cmd = Command::new("bash");
    cmd.arg(script("mkimage.sh")).arg(&out).arg(block_size.to_string()).arg((img.len() >> 20).to_string());
    if let Some(t) = tree {
        cmd.arg(t);
    }
    let st = cmd.status().expect("bash mkimage.sh");
    assert!(st.success(), "mkimage.sh failed");
    let bytes = std::fs::read(&out).expect("the image");
    img[..bytes.len()].copy_from_slice(&bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The workload's disk (`DiskSpec::fill`).
pub fn workload_image(img: &mut [u8]) {
    make_image(img, 1024, None);
}

/// The same tree with 4 KiB blocks.
pub fn workload_image_4k(img: &mut [u8]) {
    make_image(img, 4096, None);
}

/// A root file system: `base` (the test's root file system directory) with `overlay`.
pub fn root_image(img: &mut [u8], base: &Path, overlay: &[(&str, &str, bool)]) {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("root");
    let tree = dir.join("tree");
    let st = Command::new("cp").arg("-a").arg(base).arg(&tree).status().expect("cp");
    assert!(st.success());
    for (path, contents, exec) in overlay {
        let p = tree.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if *exec { 0o755 } else { 0o644 }))
            .expect("chmod");
    }
    make_image(img, 4096, Some(&tree));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `e2fsck -fn` finds nothing to fix (`DiskSpec::check`).
pub fn image_clean(img: &[u8]) -> Result<(), String> {
    let dir = scratch("fsck");
    let path = dir.join("disk.img");
    std::fs::write(&path, img).map_err(|e| e.to_string())?;
    let out = Command::new("e2fsck").arg("-fn").arg(&path).output().map_err(|e| format!("e2fsck: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stdout);
        Err(format!("e2fsck -fn: {}", text.lines().take(12).collect::<Vec<_>>().join(" | ")))
    }
}

/// The workload's output (between `== ext2_workload` and `== end N`) equals Linux's.
fn workload_matches_linux(transcript: &str) -> Result<(), String> {
    crate::guest::matches_linux(transcript, "ext2_workload", include_str!("../guest/ext2/workload.expected"))
}

/// The workload, and the lines around it that `record.sh` prints on Linux too.
const WORKLOAD_INIT: &str =
    "#!/bin/sh\necho '== ext2_workload'; /usr/libexec/cairn/ext2-workload; echo \"== end $?\"\n";

// ----- hostile disks -----

/// Byte offset of the superblock and a few of its fields (all little-endian).
const SB: usize = 1024;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Where inode `ino` of the 1 KiB-block workload image is (group 0's inode table).
fn inode_at(img: &[u8], ino: u32) -> usize {
    let bs = 1024usize << u32_at(img, SB + 24);
    let gdt = (u32_at(img, SB + 20) as usize + 1) * bs;
    let table = u32_at(img, gdt + 8) as usize;
    let isize = u16::from_le_bytes([img[SB + 88], img[SB + 89]]) as usize;
    table * bs + (ino as usize - 1) * isize
}

/// The block of the root directory's first entry block.
fn root_dir_block(img: &[u8]) -> usize {
    let bs = 1024usize << u32_at(img, SB + 24);
    u32_at(img, inode_at(img, 2) + 40) as usize * bs
}

/// The inode number of `/src/big` (found in the image's `/src` directory).
fn big_file_inode(img: &[u8]) -> u32 {
    let bs = 1024usize << u32_at(img, SB + 24);
    let find = |dir_block: usize, name: &[u8]| -> u32 {
        let mut at = dir_block;
        while at < dir_block + bs {
            let ino = u32_at(img, at);
            let rec = u16::from_le_bytes([img[at + 4], img[at + 5]]) as usize;
            let len = img[at + 6] as usize;
            if ino != 0 && &img[at + 8..at + 8 + len] == name {
                return ino;
            }
            if rec == 0 {
                break;
            }
            at += rec;
        }
        panic!("{} not in the image", String::from_utf8_lossy(name));
    };
    let src = find(root_dir_block(img), b"src");
    let src_block = u32_at(img, inode_at(img, src) + 40) as usize * bs;
    find(src_block, b"big")
}

/// After the file system's last block, the disk holds this pattern; no run may change it.
const TAIL_MIB: usize = 4;

fn tail_pattern(i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(7)
}

/// The workload image on a disk 4 MiB larger than its file system, the rest patterned.
fn with_tail(img: &mut [u8]) {
    let fs = img.len() - (TAIL_MIB << 20);
    make_image(&mut img[..fs], 1024, None);
    for (i, b) in img[fs..].iter_mut().enumerate() {
        *b = tail_pattern(i);
    }
}

/// The disk past the file system is as the host made it.
fn tail_untouched(img: &[u8]) -> Result<(), String> {
    let fs = img.len() - (TAIL_MIB << 20);
    match img[fs..].iter().enumerate().find(|&(i, &b)| b != tail_pattern(i)) {
        Some((i, _)) => Err(format!("byte {} past the file system was written", fs + i)),
        None => Ok(()),
    }
}

fn bad_magic(img: &mut [u8]) {
    with_tail(img);
    img[SB + 56] = 0x00;
}

/// The root directory's first entry claims a record length running past its block.
fn overrunning_dirent(img: &mut [u8]) {
    with_tail(img);
    let at = root_dir_block(img);
    img[at + 4..at + 6].copy_from_slice(&4000u16.to_le_bytes());
}

/// `/src/big`'s double-indirect block points at itself: a loop in the indirect tree.
fn indirect_loop(img: &mut [u8]) {
    with_tail(img);
    let big = inode_at(img, big_file_inode(img));
    let dind = u32_at(img, big + 40 + 13 * 4);
    let bs = 1024usize;
    put32(img, dind as usize * bs, dind);
    put32(img, dind as usize * bs + 4, dind);
}

/// `/src/big`'s first block pointer lies far outside the file system.
fn block_out_of_range(img: &mut [u8]) {
    with_tail(img);
    let big = inode_at(img, big_file_inode(img));
    put32(img, big + 40, 0x7fff_fff0);
}

/// Group 0's block bitmap says every block is free while the counts say otherwise.
fn disagreeing_bitmap(img: &mut [u8]) {
    with_tail(img);
    let gdt = 2 * 1024;
    let bitmap = u32_at(img, gdt) as usize * 1024;
    img[bitmap..bitmap + 1024].fill(0);
}

/// The image after a bad-disk run: nothing past the file system written.
fn bad_disk_check(img: &[u8]) -> Result<(), String> {
    tail_untouched(img)
}

/// `/init` of a bad-disk run: mount, walk and read everything, write a little, sync, umount;
/// every failure printed, none fatal. The kernel must go on (a command after it works).
const BAD_DISK_INIT: &str = r#"#!/bin/sh
mkdir -p /mnt
if mount -t ext2 /dev/vda /mnt 2>/dev/null; then
    echo "bad-disk: mounted"
    find /mnt > /dev/null 2>&1; echo "bad-disk: find status $?"
    find /mnt -type f 2>/dev/null | while read -r f; do cat "$f" > /dev/null 2>&1 || echo "bad-disk: read error: $f"; done
    ls -lR /mnt > /dev/null 2>&1; echo "bad-disk: ls status $?"
    echo data > /mnt/new-file 2>/dev/null; echo "bad-disk: write status $?"
    mkdir /mnt/src/newdir 2>/dev/null; echo "bad-disk: mkdir status $?"
    rm -rf /mnt/src/dir2 2>/dev/null; echo "bad-disk: rm status $?"
    sync
    umount /mnt; echo "bad-disk: umount status $?"
else
    echo "bad-disk: mount refused"
fi
echo "bad-disk: still alive: $(echo ok | tr a-z A-Z)"
"#;

fn bad_disk(name: &'static str, fill: fn(&mut [u8]), expect: &'static [&'static str]) -> GuestTest {
    GuestTest {
        name,
        overlay: Box::leak(Box::new([("init", BAD_DISK_INIT, true)])),
        disk: Some(DiskSpec {
            mib: WORKLOAD_MIB + TAIL_MIB as u32,
            read_only: false,
            fill: Some(fill),
            check: Some(bad_disk_check),
            root_fs: false,
        }),
        expect,
        timeout: Duration::from_secs(240),
        ..GuestTest::DEFAULT
    }
}

/// A reproducible xorshift generator for the mutated images.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The workload image with 1-6 seeded mutations of its metadata: superblock fields, group
/// descriptors, inodes of the inode table's first block, the root directory's block,
/// `/src/big`'s indirect blocks; random bytes, random words, or plausible block numbers.
fn mutated(img: &mut [u8], seed: u64) {
    with_tail(img);
    let bs = 1024usize;
    let big = inode_at(img, big_file_inode(img));
    let targets = [
        (SB, 100),
        (2 * bs, 32 * 8),
        (inode_at(img, 1), 16 * 128),
        (root_dir_block(img), bs),
        (u32_at(img, big + 40 + 12 * 4) as usize * bs, bs),
        (u32_at(img, big + 40 + 13 * 4) as usize * bs, bs),
    ];
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for _ in 0..1 + rng.below(6) {
        let (start, len) = targets[rng.below(targets.len())];
        let at = (start + rng.below(len)) & !3;
        match rng.below(3) {
            0 => img[at] = rng.next() as u8,
            1 => put32(img, at, rng.next() as u32),
            _ => put32(img, at, rng.below(70_000) as u32),
        }
    }
}

macro_rules! fuzz_case {
    ($f:ident, $seed:literal) => {
        fn $f(img: &mut [u8]) {
            mutated(img, $seed)
        }
    };
}
fuzz_case!(fuzz_1, 1);
fuzz_case!(fuzz_2, 2);
fuzz_case!(fuzz_3, 3);
fuzz_case!(fuzz_4, 4);
fuzz_case!(fuzz_5, 5);
fuzz_case!(fuzz_6, 6);

/// The guest sample of mutated images (the host fuzzes 1,800 against the library:
/// `servers/ext2/tests/host/fuzz.rs`).
/// A disk's `DiskSpec::fill`.
type Fill = fn(&mut [u8]);

const FUZZ_SAMPLE: [(&str, Fill); 6] = [
    ("ext2-fuzz-seed-1", fuzz_1),
    ("ext2-fuzz-seed-2", fuzz_2),
    ("ext2-fuzz-seed-3", fuzz_3),
    ("ext2-fuzz-seed-4", fuzz_4),
    ("ext2-fuzz-seed-5", fuzz_5),
    ("ext2-fuzz-seed-6", fuzz_6),
];

/// `/init` of a durability test: a file written, then made durable by `$call` (the only
/// write-back in the run: the file system was mounted just before), then the machine is
/// switched off without `umount`; what came after the call may be lost, as on Linux.
macro_rules! durable_init {
    ($call:literal) => {
        concat!(
            "#!/bin/sh\nmkdir -p /mnt\nmount -t ext2 /dev/vda /mnt || exit 1\n",
            "rm /mnt/src/a\nseq 1 3000 > /mnt/durable\n",
            $call,
            "\nseq 1 5000 > /mnt/not-synced\necho \"durable: done\"\n"
        )
    };
}

/// The disk after a durability test: consistent, `/durable` on it as written, `/src/a` gone.
fn durable_on_disk(img: &[u8]) -> Result<(), String> {
    image_clean(img)?;
    let dir = scratch("sync");
    let path = dir.join("disk.img");
    std::fs::write(&path, img).map_err(|e| e.to_string())?;
    let cat = |file: &str| -> Result<String, String> {
        let out = Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat /{file}"))
            .arg(&path)
            .output()
            .map_err(|e| format!("debugfs: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let want = (1..=3000).map(|i| format!("{i}\n")).collect::<String>();
    let durable = cat("durable")?;
    let gone = cat("src/a")?;
    let _ = std::fs::remove_dir_all(&dir);
    if durable != want {
        return Err(format!("/durable is not on the disk as written ({} bytes)", durable.len()));
    }
    if !gone.is_empty() {
        return Err("/src/a was removed before the call but is still on the disk".into());
    }
    Ok(())
}

/// One test per call that must reach the disk: fsync, fdatasync, syncfs, sync. (Without
/// one, `/durable` is not on the disk at power-off: the overlay holds it.)
const DURABLE: [(&str, &str); 4] = [
    ("ext2-durable-by-fsync", durable_init!("dd if=/mnt/durable of=/mnt/durable conv=notrunc,fsync 2>/dev/null")),
    ("ext2-durable-by-fdatasync", durable_init!("sync -d /mnt/durable")),
    ("ext2-durable-by-syncfs", durable_init!("sync -f /mnt/durable")),
    ("ext2-durable-by-sync", durable_init!("sync")),
];

/// `/init` of the root-on-disk test (it is in the disk's root file system, not the
/// initramfs's).
const ROOT_INIT: &str = r#"#!/bin/sh
echo "root-on-disk: $(sed -n 's/ \/ .*//p' /proc/mounts)"
stat -f -c 'root-on-disk: type %T' /
echo "written on the disk" > /on-disk
sync
cat /on-disk
echo "root-on-disk: $(cat /etc/disk-marker)"
"#;

/// The tests of this module (made once).
pub fn tests() -> &'static [GuestTest] {
    static TESTS: std::sync::OnceLock<Vec<GuestTest>> = std::sync::OnceLock::new();
    TESTS.get_or_init(generate)
}

fn generate() -> Vec<GuestTest> {
    let workload_disk = |fill: fn(&mut [u8])| DiskSpec {
        mib: WORKLOAD_MIB,
        read_only: false,
        fill: Some(fill),
        check: Some(image_clean),
        root_fs: false,
    };
    let workload_overlay: &'static [(&str, &str, bool)] = Box::leak(Box::new([
        ("init", WORKLOAD_INIT, true),
        ("usr/libexec/cairn/ext2-workload", include_str!("../guest/ext2/workload.sh"), true),
    ]));
    vec![
        GuestTest {
            name: "ext2-workload-vs-linux",
            overlay: workload_overlay,
            disk: Some(workload_disk(workload_image)),
            expect: &["== ext2_workload", "== end 0", "@@POWEROFF 0"],
            timeout: Duration::from_secs(400),
            post_check: Some(workload_matches_linux),
            ..GuestTest::DEFAULT
        },
        GuestTest {
            name: "ext2-workload-4k-blocks",
            overlay: workload_overlay,
            disk: Some(workload_disk(workload_image_4k)),
            // 4 KiB blocks put the sparse file's far block in the double-indirect range and
            // give other directory sizes and statfs numbers: only the file contents must
            // match, and the image must be clean.
            expect: &["== ext2_workload", "line 299999: 299999", "sparse tail: far-away", "== end 0", "@@POWEROFF 0"],
            timeout: Duration::from_secs(400),
            ..GuestTest::DEFAULT
        },
        bad_disk(
            "ext2-bad-magic-refused",
            bad_magic,
            &["bad-disk: mount refused", "bad-disk: still alive: OK", "@@POWEROFF 0"],
        ),
        bad_disk(
            "ext2-bad-dirent-overrun",
            overrunning_dirent,
            &["bad-disk: mounted", "bad-disk: umount status 0", "bad-disk: still alive: OK", "@@POWEROFF 0"],
        ),
        bad_disk(
            "ext2-bad-indirect-loop",
            indirect_loop,
            &["bad-disk: mounted", "bad-disk: read error: /mnt/src/big", "bad-disk: still alive: OK", "@@POWEROFF 0"],
        ),
        bad_disk(
            "ext2-bad-block-out-of-range",
            block_out_of_range,
            &["bad-disk: mounted", "bad-disk: read error: /mnt/src/big", "bad-disk: still alive: OK", "@@POWEROFF 0"],
        ),
        bad_disk(
            "ext2-bad-bitmap-disagrees",
            disagreeing_bitmap,
            &["bad-disk: mounted", "bad-disk: umount status 0", "bad-disk: still alive: OK", "@@POWEROFF 0"],
        ),
        GuestTest {
            name: "ext2-root-on-disk",
            append: "root=/dev/vda",
            overlay: Box::leak(Box::new([
                ("init", ROOT_INIT, true),
                ("etc/disk-marker", "from the disk image\n", false),
            ])),
            disk: Some(DiskSpec { mib: 64, read_only: false, fill: None, check: Some(image_clean), root_fs: true }),
            expect: &[
                "vfs: root file system: ext2 on /dev/vda",
                "root-on-disk: /dev/vda",
                "root-on-disk: type ext2",
                "written on the disk",
                "root-on-disk: from the disk image",
                "@@POWEROFF 0",
            ],
            timeout: Duration::from_secs(240),
            ..GuestTest::DEFAULT
        },
    ]
    .into_iter()
    .chain(DURABLE.iter().map(|&(name, init)| GuestTest {
        name,
        overlay: Box::leak(Box::new([("init", init, true)])),
        disk: Some(DiskSpec {
            mib: WORKLOAD_MIB,
            read_only: false,
            fill: Some(workload_image),
            check: Some(durable_on_disk),
            root_fs: false,
        }),
        expect: &["durable: done", "@@POWEROFF 0"],
        ..GuestTest::DEFAULT
    }))
    .chain(
        FUZZ_SAMPLE
            .iter()
            .map(|&(name, fill)| bad_disk(name, fill, &["bad-disk: ", "bad-disk: still alive: OK", "@@POWEROFF 0"])),
    )
    .collect()
}
