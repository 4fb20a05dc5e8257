//! The protocol as `vfs` and `linux` use it, against a RAM-disk volume whose commits are
//! applied by hand (what a server does), with Linux's semantics and errno values.

use super::*;
use abi::proto::{makedev, S_IFCHR, S_IFLNK, S_IFREG};
use alloc::rc::Rc;
use core::cell::RefCell;
use ext2::{FormatOptions, IoError, MountOptions};
use std::string::String;
use std::vec::Vec;
use zerocopy::FromBytes;

/// A RAM disk the test can see while the volume owns it.
#[derive(Clone)]
struct Disk(Rc<RefCell<Vec<u8>>>);

impl BlockDevice for Disk {
    fn size_bytes(&self) -> u64 {
        self.0.borrow().len() as u64
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let d = self.0.borrow();
        buf.copy_from_slice(d.get(offset as usize..offset as usize + buf.len()).ok_or(IoError::OutOfRange)?);
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        let mut d = self.0.borrow_mut();
        d.get_mut(offset as usize..offset as usize + buf.len()).ok_or(IoError::OutOfRange)?.copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

fn clock() -> ext2::Timespec {
    ext2::Timespec::new(1_700_000_000, 5)
}

const ME: usize = 4;

fn volume() -> (Volume<Disk>, Disk) {
    let disk = Disk(Rc::new(RefCell::new(vec![0u8; 8 << 20])));
    let opts = FormatOptions { lost_and_found: false, now: clock(), ..Default::default() };
    ext2::format(disk.clone(), &opts).unwrap();
    let fs = Ext2::mount(disk.clone(), MountOptions { clock, atime: ext2::AtimeMode::NoAtime, ..Default::default() })
        .unwrap();
    let mut v = Volume::new(fs, ME, 3, 0x0102_1994);
    commit(&mut v, &disk);
    (v, disk)
}

/// What a server does after a request succeeded: apply the changes, mark them committed.
fn commit(v: &mut Volume<Disk>, disk: &Disk) {
    let freed: Vec<(u64, u64)> = v.freed().collect();
    let dirty: Vec<(u64, Vec<u8>)> = v.dirty().map(|(o, d)| (o, d.to_vec())).collect();
    let mut d = disk.0.borrow_mut();
    for (o, n) in freed {
        d[o as usize..(o + n) as usize].fill(0);
    }
    for (o, data) in dirty {
        d[o as usize..o as usize + data.len()].copy_from_slice(&data);
    }
    drop(d);
    v.committed();
}

/// A request with a grant of our own memory.
struct Req {
    opcode: u32,
    args: [u64; 6],
    grant: RefCell<Vec<u8>>,
    /// Device bytes the transport may copy from (`write_from_device`), if it can.
    device: Option<Vec<u8>>,
}

impl Request for Req {
    fn opcode(&self) -> u32 {
        self.opcode
    }
    fn args(&self) -> [u64; 6] {
        self.args
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
    fn write_from_device(&self, offset: u64, device_offset: u64, len: u64) -> Result<bool, Errno> {
        let Some(dev) = &self.device else { return Ok(false) };
        let src = &dev[device_offset as usize..(device_offset + len) as usize];
        self.write(offset, src)?;
        Ok(true)
    }
}

fn req(opcode: u32, args: [u64; 6], names: &[&[u8]], grant: usize) -> Req {
    let names_len: usize = names.iter().map(|n| n.len()).sum();
    let mut g = vec![0u8; grant.max(NAMES_AT as usize + names_len)];
    let mut at = NAMES_AT as usize;
    for n in names {
        g[at..at + n.len()].copy_from_slice(n);
        at += n.len();
    }
    Req { opcode, args, grant: RefCell::new(g), device: None }
}

struct T {
    v: Volume<Disk>,
    disk: Disk,
}

impl T {
    fn new() -> T {
        let (v, disk) = volume();
        T { v, disk }
    }
    fn root(&self) -> u64 {
        self.v.root().0
    }
    /// Serves and commits; the answer and the grant.
    fn call(&mut self, r: &Req) -> Result<Done, Errno> {
        let out = self.v.serve(r);
        match out {
            Ok(_) => commit(&mut self.v, &self.disk),
            Err(_) => assert!(!self.v.has_changes(), "a failed request left changes"),
        }
        out
    }
    fn attr_of(r: &Req) -> Attr {
        Attr::read_from_bytes(&r.grant.borrow()[..core::mem::size_of::<Attr>()]).unwrap()
    }
    fn create(&mut self, dir: u64, name: &str, mode: u32) -> Result<Attr, Errno> {
        let r = req(proto::CREATE, [dir, name.len() as u64, mode as u64, 0, (7 << 32) | 8, 0], &[name.as_bytes()], 0);
        let d = self.call(&r)?;
        let a = Self::attr_of(&r);
        assert_eq!(a.file as i64, d.result);
        Ok(a)
    }
    fn lookup(&mut self, dir: u64, name: &str) -> Result<Attr, Errno> {
        let r = req(proto::LOOKUP, [dir, name.len() as u64, 0, 0, 0, 0], &[name.as_bytes()], 0);
        self.call(&r)?;
        Ok(Self::attr_of(&r))
    }
    fn getattr(&mut self, f: u64) -> Result<Attr, Errno> {
        let r = req(proto::GETATTR, [f, 0, 0, 0, 0, 0], &[], 0);
        self.call(&r)?;
        Ok(Self::attr_of(&r))
    }
    fn write(&mut self, f: u64, off: u64, data: &[u8], append: bool) -> Result<Done, Errno> {
        let flags = if append { proto::WRITE_APPEND } else { 0 };
        let r = Req {
            opcode: proto::WRITE,
            args: [f, off, data.len() as u64, flags, 0, 0],
            grant: RefCell::new(data.to_vec()),
            device: None,
        };
        self.call(&r)
    }
    fn read(&mut self, f: u64, off: u64, len: usize, direct: bool) -> Result<Vec<u8>, Errno> {
        let device = direct.then(|| self.disk.0.borrow().clone());
        let r =
            Req { opcode: proto::READ, args: [f, off, len as u64, 0, 0, 0], grant: RefCell::new(vec![0; len]), device };
        let n = self.call(&r)?.result as usize;
        let out = r.grant.borrow()[..n].to_vec();
        Ok(out)
    }
    fn unlink(&mut self, dir: u64, name: &str, rmdir: bool) -> Result<Done, Errno> {
        let flags = if rmdir { proto::UNLINK_DIR } else { 0 };
        self.call(&req(proto::UNLINK, [dir, name.len() as u64, flags, 0, 0, 0], &[name.as_bytes()], 0))
    }
    fn rename(&mut self, from_dir: u64, from: &str, to_dir: u64, to: &str, flags: u64) -> Result<Done, Errno> {
        let args = [from_dir, to_dir, from.len() as u64, to.len() as u64, flags, 0];
        self.call(&req(proto::RENAME, args, &[from.as_bytes(), to.as_bytes()], 0))
    }
    fn simple(&mut self, op: u32, f: u64) -> Result<Done, Errno> {
        self.call(&req(op, [f, 0, 0, 0, 0, 0], &[], 0))
    }
    /// Every (d_ino, d_off, d_type, name) from `cookie` on, `len` bytes per READDIR.
    fn readdir(&mut self, dir: u64, cookie: u64, len: usize) -> Result<Vec<Dirent>, Errno> {
        let mut out = Vec::new();
        let mut cookie = cookie;
        loop {
            let r = req(proto::READDIR, [dir, cookie, len as u64, 0, 0, 0], &[], len);
            let d = self.call(&r)?;
            if d.result == 0 {
                return Ok(out);
            }
            let g = r.grant.borrow();
            let mut at = 0;
            while at < d.result as usize {
                let ino = u64::from_le_bytes(g[at..at + 8].try_into().unwrap());
                let off = u64::from_le_bytes(g[at + 8..at + 16].try_into().unwrap());
                let reclen = u16::from_le_bytes([g[at + 16], g[at + 17]]) as usize;
                let name: Vec<u8> = g[at + 19..at + reclen].iter().copied().take_while(|&c| c != 0).collect();
                out.push((ino, off, g[at + 18], name));
                at += reclen;
            }
            assert_eq!(out.last().unwrap().1, d.aux, "aux is the last d_off");
            cookie = d.aux;
        }
    }
    fn names(&mut self, dir: u64) -> Vec<String> {
        let mut v: Vec<String> =
            self.readdir(dir, 0, 4096).unwrap().into_iter().map(|e| String::from_utf8(e.3).unwrap()).collect();
        v.sort();
        v
    }
}

/// (d_ino, d_off, d_type, name).
type Dirent = (u64, u64, u8, Vec<u8>);

const DIR: u32 = S_IFDIR | 0o755;
const REG: u32 = S_IFREG | 0o644;

#[test]
fn create_lookup_and_link_counts() {
    let mut t = T::new();
    let root = t.root();
    let d = t.create(root, "d", DIR).unwrap();
    assert_eq!((d.mode, d.nlink, d.uid, d.gid), (DIR, 2, 7, 8));
    assert_eq!(FileId(d.file).server(), ME);
    assert_eq!(FileId(d.file).volume(), 3);
    assert_eq!(t.getattr(root).unwrap().nlink, 3);
    let f = t.create(d.file, "f", REG).unwrap();
    assert_eq!(t.lookup(d.file, "f").unwrap().file, f.file);
    assert_eq!(t.lookup(d.file, "..").unwrap().file, root);
    assert_eq!(t.lookup(d.file, ".").unwrap().file, d.file);
    assert_eq!(t.create(d.file, "f", REG), Err(Errno::EEXIST));
    assert_eq!(t.lookup(d.file, "nope"), Err(Errno::ENOENT));
    let r = req(proto::LINK, [f.file, root, 1, 0, 0, 0], &[b"g"], 0);
    t.call(&r).unwrap();
    assert_eq!(T::attr_of(&r).nlink, 2, "LINK answers the file's attributes");
    let r = req(proto::LINK, [d.file, root, 1, 0, 0, 0], &[b"h"], 0);
    assert_eq!(t.call(&r), Err(Errno::EPERM));
    assert_eq!(t.unlink(root, "d", true), Err(Errno::ENOTEMPTY));
    assert_eq!(t.unlink(root, "d", false), Err(Errno::EISDIR));
    assert_eq!(t.unlink(root, "g", true), Err(Errno::ENOTDIR));
    assert_eq!(t.unlink(root, ".", true), Err(Errno::EINVAL));
    assert_eq!(t.unlink(root, "..", true), Err(Errno::ENOTEMPTY));
    let long = "x".repeat(256);
    assert_eq!(t.create(root, &long, REG), Err(Errno::ENAMETOOLONG));
    let gone = t.unlink(root, "g", false).unwrap();
    assert_eq!(gone.aux, f.file, "UNLINK answers the removed file in aux");
    assert_eq!(t.getattr(f.file).unwrap().nlink, 1);
    let dev = t.create(root, "null", S_IFCHR | 0o666).unwrap();
    assert_eq!(dev.mode, S_IFCHR | 0o666);
    let r = req(proto::CREATE, [root, 4, (S_IFCHR | 0o600) as u64, makedev(4, 64), 0, 0], &[b"tty0"], 0);
    t.call(&r).unwrap();
    assert_eq!(T::attr_of(&r).rdev, makedev(4, 64));
}

#[test]
fn ids_of_other_servers_and_volumes() {
    let mut t = T::new();
    let root = t.root();
    let other_volume = FileId::new(ME, 4, 2).0;
    let other_server = FileId::new(ME + 1, 3, 2).0;
    assert_eq!(t.getattr(other_server), Err(Errno::ESTALE));
    assert_eq!(t.getattr(other_volume), Err(Errno::EXDEV));
    assert_eq!(t.getattr(FileId::new(ME, 3, 1 << 35).0), Err(Errno::ESTALE));
    let f = t.create(root, "f", REG).unwrap();
    let r = req(proto::LINK, [f.file, other_volume, 1, 0, 0, 0], &[b"g"], 0);
    assert_eq!(t.call(&r), Err(Errno::EXDEV));
    assert_eq!(t.rename(root, "f", other_volume, "g", 0), Err(Errno::EXDEV));
    let r = req(proto::NAME_OF, [root, other_volume, 0, 0, 0, 0], &[], 0);
    assert_eq!(t.call(&r), Err(Errno::ENOENT));
    assert_eq!(t.simple(99, root), Err(Errno::ENOSYS));
}

#[test]
fn unlinked_open_file_lives_until_its_last_release() {
    let mut t = T::new();
    let root = t.root();
    let f = t.create(root, "f", REG).unwrap();
    t.write(f.file, 0, b"data", false).unwrap();
    let ino = FileId(f.file).ino() as Ino;
    assert_eq!(t.simple(proto::OPEN, f.file).unwrap().open, Some((ino, 1)));
    assert_eq!(t.simple(proto::OPEN, f.file).unwrap().open, Some((ino, 2)));
    assert!(t.v.busy());
    t.unlink(root, "f", false).unwrap();
    assert_eq!(t.read(f.file, 0, 10, false).unwrap(), b"data");
    assert_eq!(t.getattr(f.file).unwrap().nlink, 0);
    assert_eq!(t.simple(proto::RELEASE, f.file).unwrap().open, Some((ino, 1)));
    assert_eq!(t.read(f.file, 0, 10, true).unwrap(), b"data");
    let free_before = t.v.fs().statfs().blocks_free;
    assert_eq!(t.simple(proto::RELEASE, f.file).unwrap().open, Some((ino, 0)));
    assert_eq!(t.getattr(f.file), Err(Errno::ESTALE));
    assert_eq!(t.v.fs().statfs().blocks_free, free_before + 1);
    assert!(!t.v.busy());
    // A release with nothing open is harmless (and reports no change).
    let g = t.create(root, "g", REG).unwrap();
    assert_eq!(t.simple(proto::RELEASE, g.file).unwrap().open, None);
}

#[test]
fn a_failed_open_or_release_is_undone() {
    let mut t = T::new();
    let root = t.root();
    let f = t.create(root, "f", REG).unwrap();
    t.simple(proto::OPEN, f.file).unwrap();
    // OPEN succeeds in ext2, then the server's commit fails: abort restores the count.
    let r = req(proto::OPEN, [f.file, 0, 0, 0, 0, 0], &[], 0);
    t.v.serve(&r).unwrap();
    assert_eq!(t.v.fs().open_count(FileId(f.file).ino() as Ino), 2);
    t.v.abort().unwrap();
    assert_eq!(t.v.fs().open_count(FileId(f.file).ino() as Ino), 1);
    // The same for the last release of an unlinked file: the file comes back.
    t.unlink(root, "f", false).unwrap();
    let r = req(proto::RELEASE, [f.file, 0, 0, 0, 0, 0], &[], 0);
    t.v.serve(&r).unwrap();
    assert!(t.v.has_changes());
    t.v.abort().unwrap();
    assert!(!t.v.has_changes());
    assert_eq!(t.getattr(f.file).unwrap().nlink, 0, "still alive, still open");
}

#[test]
fn rename_semantics() {
    let mut t = T::new();
    let root = t.root();
    let a = t.create(root, "a", DIR).unwrap();
    let b = t.create(a.file, "b", DIR).unwrap();
    assert_eq!(t.rename(root, "a", b.file, "x", 0), Err(Errno::EINVAL), "no move below itself");
    let f = t.create(root, "f", REG).unwrap();
    let g = t.create(root, "g", REG).unwrap();
    t.rename(root, "f", root, "g", 0).unwrap();
    assert_eq!(t.lookup(root, "g").unwrap().file, f.file);
    assert_eq!(t.getattr(g.file), Err(Errno::ESTALE), "the replaced file is gone");
    assert_eq!(t.rename(root, "g", root, "a", 0), Err(Errno::EISDIR));
    assert_eq!(t.rename(root, "a", root, "g", 0), Err(Errno::ENOTDIR));
    t.rename(a.file, "b", root, "b2", 0).unwrap();
    assert_eq!(t.getattr(a.file).unwrap().nlink, 2);
    assert_eq!(t.getattr(root).unwrap().nlink, 4);
    assert_eq!(t.lookup(b.file, "..").unwrap().file, root);
    t.rename(root, "g", root, "b2", proto::RENAME_EXCHANGE).unwrap();
    assert_eq!(t.lookup(root, "b2").unwrap().file, f.file);
    assert_eq!(t.lookup(root, "g").unwrap().file, b.file);
    assert_eq!(t.rename(root, "g", root, "b2", proto::RENAME_NOREPLACE), Err(Errno::EEXIST));
    assert_eq!(t.rename(root, "g", root, "b2", 3), Err(Errno::EINVAL));
    assert_eq!(t.rename(root, "nope", root, "x", 0), Err(Errno::ENOENT));
    assert_eq!(t.rename(root, ".", root, "x", 0), Err(Errno::EBUSY));
}

#[test]
fn readdir_records_and_cookies() {
    let mut t = T::new();
    let root = t.root();
    let d = t.create(root, "d", DIR).unwrap();
    for i in 0..10u8 {
        t.create(d.file, &String::from(char::from(b'a' + i)), REG).unwrap();
    }
    t.create(d.file, "sub", DIR).unwrap();
    let all = t.readdir(d.file, 0, 4096).unwrap();
    assert_eq!(all.len(), 13);
    assert_eq!((all[0].0, all[0].2, &all[0].3[..]), (FileId(d.file).ino(), 4, &b"."[..]));
    assert_eq!((all[1].0, &all[1].3[..]), (FileId(root).ino(), &b".."[..]));
    assert!(all.iter().filter(|e| e.3.len() == 1 && e.3[0] != b'.').all(|e| e.2 == 8), "DT_REG");
    assert_eq!(all.iter().find(|e| e.3 == b"sub").unwrap().2, 4, "DT_DIR");
    // Small buffers: one record at a time, same entries.
    assert_eq!(t.readdir(d.file, 0, 32).unwrap(), all);
    let r = req(proto::READDIR, [d.file, 0, 8, 0, 0, 0], &[], 8);
    assert_eq!(t.call(&r), Err(Errno::EINVAL), "a buffer too small for one entry");
    // Read five entries, remove three of them (as rm -r does), go on from the cookie: every
    // remaining entry exactly once.
    let first = t.readdir_part(d.file, 5);
    for e in &first[2..] {
        t.unlink(d.file, core::str::from_utf8(&e.3).unwrap(), false).unwrap();
    }
    let rest = t.readdir(d.file, first.last().unwrap().1, 4096).unwrap();
    assert_eq!(first.len() + rest.len(), 13, "{first:?} {rest:?}");
    assert_eq!(t.names(d.file).len(), 13 - 3);
    // NAME_OF finds a child's name; PARENT its `..`.
    let sub = t.lookup(d.file, "sub").unwrap();
    let r = req(proto::NAME_OF, [d.file, sub.file, 0, 0, 0, 0], &[], NAMES_AT as usize + 256);
    let n = t.call(&r).unwrap().result as usize;
    assert_eq!(&r.grant.borrow()[NAMES_AT as usize..NAMES_AT as usize + n], b"sub");
    let r = req(proto::PARENT, [sub.file, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(t.call(&r).unwrap().result as u64, d.file);
    let r = req(proto::NAME_OF, [root, sub.file, 0, 0, 0, 0], &[], NAMES_AT as usize + 256);
    assert_eq!(t.call(&r), Err(Errno::ENOENT));
}

impl T {
    /// The first `n` entries of a directory (one READDIR per entry).
    fn readdir_part(&mut self, dir: u64, n: usize) -> Vec<Dirent> {
        let mut out = Vec::new();
        let mut cookie = 0;
        while out.len() < n {
            let mut one = self.readdir_one(dir, cookie);
            cookie = one[0].1;
            out.append(&mut one);
        }
        out
    }
    fn readdir_one(&mut self, dir: u64, cookie: u64) -> Vec<Dirent> {
        let r = req(proto::READDIR, [dir, cookie, 32, 0, 0, 0], &[], 32);
        let d = self.call(&r).unwrap();
        let g = r.grant.borrow();
        let off = u64::from_le_bytes(g[8..16].try_into().unwrap());
        let name: Vec<u8> = g[19..32].iter().copied().take_while(|&c| c != 0).collect();
        assert_eq!(off, d.aux);
        vec![(u64::from_le_bytes(g[..8].try_into().unwrap()), off, g[18], name)]
    }
}

#[test]
fn reads_writes_sizes_and_holes() {
    let mut t = T::new();
    let root = t.root();
    let f = t.create(root, "f", REG).unwrap();
    assert_eq!(t.write(f.file, 10, b"xy", false).unwrap(), Done { result: 2, aux: 12, open: None });
    assert_eq!(t.read(f.file, 0, 100, false).unwrap(), b"\0\0\0\0\0\0\0\0\0\0xy");
    assert_eq!(t.write(f.file, 0, b"z", true).unwrap().aux, 13, "append goes to the end");
    // A big file with a hole, read buffered and direct, whole and in pieces.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 4096) as u8).collect();
    let g = t.create(root, "g", REG).unwrap();
    t.write(g.file, 0, &data[..100_000], false).unwrap();
    t.write(g.file, 200_000, &data[200_000..], false).unwrap();
    let mut want = data.clone();
    want[100_000..200_000].fill(0);
    for direct in [false, true] {
        assert!(t.read(g.file, 0, 400_000, direct).unwrap() == want, "whole, direct={direct}");
        assert!(t.read(g.file, 99_000, 5000, direct).unwrap() == want[99_000..104_000]);
        assert!(t.read(g.file, 299_990, 100, direct).unwrap() == want[299_990..]);
        assert!(t.read(g.file, 300_000, 100, direct).unwrap().is_empty());
    }
    // Truncate down and up (SETATTR with SET_SIZE), chmod, chown (MAX = unchanged), times.
    let times = proto::SetTimes { atime: Timespec { sec: 100, nsec: 5 }, mtime: Timespec { sec: 200, nsec: 6 } };
    let mut r = req(proto::SETATTR, [g.file, proto::SET_SIZE, 0, 0, 3, 0], &[], 0);
    t.call(&r).unwrap();
    assert_eq!(T::attr_of(&r).size, 3);
    let valid = proto::SET_MODE | proto::SET_OWNER | proto::SET_ATIME | proto::SET_MTIME;
    r = req(proto::SETATTR, [g.file, valid, 0o600, (5 << 32) | 0xffff_ffff, 0, 0], &[], 0);
    r.grant.borrow_mut()[..32].copy_from_slice(zerocopy::IntoBytes::as_bytes(&times));
    t.call(&r).unwrap();
    let a = T::attr_of(&r);
    assert_eq!((a.mode, a.uid, a.gid), (REG & !0o777 | 0o600, 5, 8));
    assert_eq!((a.atime, a.mtime), (times.atime, times.mtime));
    assert_eq!(t.read(g.file, 0, 10, true).unwrap(), &data[..3]);
    let d = t.create(root, "d", DIR).unwrap();
    assert_eq!(t.read(d.file, 0, 10, false), Err(Errno::EISDIR));
    assert_eq!(t.write(d.file, 0, b"x", false), Err(Errno::EISDIR));
    // Symlinks.
    let r = req(proto::SYMLINK, [root, 1, 6, 0, 0, 0], &[b"s", b"target"], 0);
    t.call(&r).unwrap();
    let s = T::attr_of(&r);
    assert_eq!((s.mode & S_IFMT, s.size), (S_IFLNK, 6));
    let r = req(proto::READLINK, [s.file, 100, 0, 0, 0, 0], &[], 100);
    assert_eq!(t.call(&r).unwrap().result, 6);
    assert_eq!(&r.grant.borrow()[..6], b"target");
    let r = req(proto::SYMLINK, [root, 1, 0, 0, 0, 0], &[b"e"], 0);
    assert_eq!(t.call(&r), Err(Errno::ENOENT), "empty target");
    assert_eq!(t.read(s.file, 0, 10, false), Err(Errno::EINVAL));
}

#[test]
fn statfs_counts_and_no_space() {
    let mut t = T::new();
    let root = t.root();
    let r = req(proto::STATFS, [root, 0, 0, 0, 0, 0], &[], 0);
    t.call(&r).unwrap();
    let s = StatFs::read_from_bytes(&r.grant.borrow()[..core::mem::size_of::<StatFs>()]).unwrap();
    assert_eq!((s.fs_type, s.block_size, s.name_max), (0x0102_1994, 4096, 255));
    assert!(s.blocks > 1900 && s.blocks_free < s.blocks && s.files >= 1024);
    // Filling the volume: writes come back short, then ENOSPC; nothing is left half done.
    let f = t.create(root, "big", REG).unwrap();
    let chunk = vec![0x5a; MAX_IO];
    let mut total = 0u64;
    loop {
        match t.write(f.file, total, &chunk, false) {
            Ok(d) if d.result > 0 => total += d.result as u64,
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e, Errno::ENOSPC);
                break;
            }
        }
    }
    assert!(total > 7 << 20, "{total}");
    assert_eq!(t.create(root, "d", DIR), Err(Errno::ENOSPC));
    assert_eq!(t.getattr(f.file).unwrap().size, total);
    t.unlink(root, "big", false).unwrap();
    t.create(root, "d", DIR).unwrap();
}

#[test]
fn large_requests_are_bounded() {
    let mut t = T::new();
    let root = t.root();
    let f = t.create(root, "f", REG).unwrap();
    let data = vec![1u8; MAX_IO + 4096];
    assert_eq!(t.write(f.file, 0, &data, false).unwrap().result as usize, MAX_IO, "short, not refused");
    assert_eq!(t.read(f.file, 0, MAX_IO + 4096, true).unwrap().len(), MAX_IO);
    // A grant shorter than the length asked: only what fits.
    let r = Req {
        opcode: proto::READ,
        args: [f.file, 0, 1 << 30, 0, 0, 0],
        grant: RefCell::new(vec![0; 10]),
        device: None,
    };
    assert_eq!(t.call(&r).unwrap().result, 10);
    let r = req(proto::LOOKUP, [root, 5000, 0, 0, 0, 0], &[], 0);
    assert_eq!(t.call(&r), Err(Errno::ENAMETOOLONG));
    let r = req(proto::LOOKUP, [root, 100, 0, 0, 0, 0], &[], 0);
    assert_eq!(t.call(&r), Err(Errno::EFAULT), "a name past the grant");
}

#[test]
fn cached_layouts_and_names_follow_changes() {
    let mut t = T::new();
    let root = t.root();
    let f = t.create(root, "x", REG).unwrap();
    t.write(f.file, 0, &[1u8; 5000], false).unwrap();
    assert_eq!(t.read(f.file, 0, 10_000, true).unwrap().len(), 5000, "layout cached here");
    assert_eq!(t.lookup(root, "x").unwrap().file, f.file, "name cached here");
    t.write(f.file, 0, &[2u8; 9000], true).unwrap();
    let data = t.read(f.file, 0, 20_000, true).unwrap();
    assert_eq!(data.len(), 14_000);
    assert!(data[5000..].iter().all(|&b| b == 2), "the appended blocks are read, not the old layout");
    t.rename(root, "x", root, "y", 0).unwrap();
    assert_eq!(t.lookup(root, "x"), Err(Errno::ENOENT), "the cached name went with the rename");
    assert_eq!(t.lookup(root, "y").unwrap().file, f.file);
    t.unlink(root, "y", false).unwrap();
    assert_eq!(t.read(f.file, 0, 10, true), Err(Errno::ESTALE));
    let g = t.create(root, "y", REG).unwrap();
    assert_eq!(g.file, f.file, "the inode number is reused");
    assert_eq!(t.read(g.file, 0, 10, true).unwrap(), b"", "and the old layout is not");
}

#[test]
fn lookup_with_open_takes_a_reference_on_files_and_directories_only() {
    let mut t = T::new();
    let root = t.root();
    let f = t.create(root, "f", REG).unwrap();
    let d = t.create(root, "d", DIR).unwrap();
    let open_lookup = |t: &mut T, name: &str| {
        let r = req(proto::LOOKUP, [root, name.len() as u64, proto::LOOKUP_OPEN, 0, 0, 0], &[name.as_bytes()], 0);
        let done = t.call(&r).unwrap();
        (T::attr_of(&r), done)
    };
    let (a, done) = open_lookup(&mut t, "f");
    assert_eq!(a.file, f.file);
    assert_eq!(done.result, f.file as i64);
    assert_eq!(done.aux, proto::LOOKUP_OPENED);
    let ino = FileId(f.file).ino() as Ino;
    assert_eq!(done.open, Some((ino, 1)));
    assert_eq!(t.v.fs().open_count(ino), 1);
    let (_, done) = open_lookup(&mut t, "d");
    assert_eq!(done.open, Some((FileId(d.file).ino() as Ino, 1)));
    // A device node is looked up, not opened.
    let c = t.create(root, "c", 0o020644).unwrap();
    let (a, done) = open_lookup(&mut t, "c");
    assert_eq!((a.file, done.aux, done.open), (c.file, 0, None));
    // Without the flag, nothing changes.
    t.lookup(root, "f").unwrap();
    assert_eq!(t.v.fs().open_count(ino), 1);
    // The reference is undone with the request if its commit fails.
    let r = req(proto::LOOKUP, [root, 1, proto::LOOKUP_OPEN, 0, 0, 0], &[b"f"], 0);
    t.v.serve(&r).unwrap();
    assert_eq!(t.v.fs().open_count(ino), 2);
    t.v.abort().unwrap();
    assert_eq!(t.v.fs().open_count(ino), 1);
}
