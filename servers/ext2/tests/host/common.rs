//! Shared helpers of the host tests: a file-backed device, scratch directories, and the
//! e2fsprogs tools (`mke2fs`, `e2fsck`, `debugfs`) that judge what the crate writes.

use ext2::{BlockDevice, IoError, Timespec};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A device backed by an image file.
pub struct FileDevice {
    file: File,
    size: u64,
}

impl FileDevice {
    pub fn open(path: &Path) -> FileDevice {
        let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
        let size = file.metadata().unwrap().len() & !511;
        FileDevice { file, size }
    }

    /// A new sparse image file of `size` bytes.
    pub fn create(path: &Path, size: u64) -> FileDevice {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).unwrap();
        file.set_len(size).unwrap();
        FileDevice { file, size }
    }
}

impl BlockDevice for FileDevice {
    fn size_bytes(&self) -> u64 {
        self.size
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        if !offset.is_multiple_of(512) || !buf.len().is_multiple_of(512) || offset + buf.len() as u64 > self.size {
            return Err(IoError::OutOfRange);
        }
        self.file.read_exact_at(buf, offset).map_err(|_| IoError::Device)
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        if !offset.is_multiple_of(512) || !buf.len().is_multiple_of(512) || offset + buf.len() as u64 > self.size {
            return Err(IoError::OutOfRange);
        }
        self.file.write_all_at(buf, offset).map_err(|_| IoError::Device)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// The host's wall clock, for timestamps e2fsck will not call "in the future".
pub fn wall_clock() -> Timespec {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Timespec::new(d.as_secs() as i64, d.subsec_nanos())
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ext2-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// Whether e2fsprogs is installed; if not, prints why the calling test is skipped.
pub fn have_e2fsprogs(test: &str) -> bool {
    let ok = ["mke2fs", "e2fsck", "debugfs"].iter().all(|t| Command::new(tool(t)).arg("-V").output().is_ok());
    if !ok {
        eprintln!("SKIPPED {test}: e2fsprogs (mke2fs, e2fsck, debugfs) not installed; apt-get install e2fsprogs");
    }
    ok
}

/// `mke2fs -q -t ext2 -b <bs> [-d <dir>] [extra...] <img> <size_kib>k`.
pub fn mke2fs(img: &Path, block_size: u32, size_kib: u64, from: Option<&Path>, extra: &[&str]) {
    let mut cmd = Command::new(tool("mke2fs"));
    cmd.args(["-q", "-F", "-t", "ext2", "-b", &block_size.to_string()]);
    if let Some(dir) = from {
        cmd.arg("-d").arg(dir);
    }
    cmd.args(extra).arg(img).arg(format!("{size_kib}k"));
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "mke2fs failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `e2fsck -fn` and returns (clean, transcript).
pub fn e2fsck(img: &Path) -> (bool, String) {
    let out = Command::new(tool("e2fsck")).arg("-fn").arg(img).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code() == Some(0), text)
}

/// Asserts that `e2fsck -fn` finds the image clean.
pub fn assert_fsck_clean(img: &Path) {
    let (clean, text) = e2fsck(img);
    assert!(clean, "e2fsck -fn {} is not clean:\n{text}", img.display());
}

/// Runs `e2fsck -fyD` (fix, and optimize/index directories).
pub fn e2fsck_index_dirs(img: &Path) {
    let out = Command::new(tool("e2fsck")).arg("-fyD").arg(img).output().unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "e2fsck -fyD failed: {}", String::from_utf8_lossy(&out.stdout));
}

/// The contents of `path` in the image, via `debugfs -R 'cat path'`.
pub fn debugfs_cat(img: &Path, path: &str) -> Vec<u8> {
    let out = Command::new(tool("debugfs")).arg("-R").arg(format!("cat {path}")).arg(img).output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// The output of a `debugfs -R <request>` command.
pub fn debugfs(img: &Path, request: &str) -> String {
    let out = Command::new(tool("debugfs")).arg("-R").arg(request).arg(img).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deterministic pseudo-random bytes (SplitMix64), reproducible from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A file's expected contents: `len` bytes derived from `seed` (cheap, position-dependent).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}
