//! Reading a cpio "newc" archive (the initramfs format: `070701`/`070702` headers with hex
//! fields, names and data padded to 4 bytes) into an ext2 file system, one entry at a time, so
//! that loading can stop after any entry and go on from there (the server commits each entry
//! with the offset of the next: a restart during boot resumes, never starts over).
//!
//! Semantics, as Linux's initramfs unpacker: modes, owners and device numbers as archived;
//! missing parent directories are made (0755, root); an entry naming an existing file of the
//! same type updates its mode and owner (archives may list a directory after its contents);
//! regular files archived with `nlink >= 2` and the same inode number as an earlier entry are
//! hard links to it (the data comes with whichever entry carries it); modification times as
//! archived, directories' once everything is loaded ([`set_dir_times`]). A malformed archive
//! stops at the bad entry: everything before it is kept, nothing after it is guessed at.

use abi::Errno;
use alloc::vec::Vec;
use ext2::{BlockDevice, Ext2, Ino, SetAttr, SetTime, Timespec, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

/// One archive entry.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    pub name: &'a [u8],
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub rdev: u64,
    pub body: &'a [u8],
    /// Offset of the entry after this one.
    pub next: usize,
}

fn hex(field: &[u8]) -> Option<u32> {
    core::str::from_utf8(field).ok().and_then(|s| u32::from_str_radix(s, 16).ok())
}

/// The entry at byte `pos` of `data`; `None` at the trailer, at the end, or at a malformed
/// header.
pub fn entry_at(data: &[u8], pos: usize) -> Option<Entry<'_>> {
    let h = data.get(pos..pos.checked_add(110)?)?;
    if &h[..6] != b"070701" && &h[..6] != b"070702" {
        return None;
    }
    let field = |i: usize| hex(&h[6 + 8 * i..14 + 8 * i]);
    let (ino, mode, uid, gid, nlink, mtime, size) =
        (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?, field(5)?, field(6)?);
    let (rmaj, rmin, namesize) = (field(9)?, field(10)?, field(11)?);
    let name_start = pos + 110;
    let name = data.get(name_start..name_start.checked_add(namesize as usize)?)?;
    let name = name.strip_suffix(&[0]).unwrap_or(name);
    let data_start = (name_start + namesize as usize).next_multiple_of(4);
    let body = data.get(data_start..data_start.checked_add(size as usize)?)?;
    if name == b"TRAILER!!!" {
        return None;
    }
    let next = (data_start + size as usize).next_multiple_of(4);
    Some(Entry { name, ino, mode, uid, gid, nlink, mtime, rdev: ext2::makedev(rmaj, rmin), body, next })
}

/// Whether the entry is one to apply (not `.`, not typeless).
pub fn wanted(e: &Entry) -> bool {
    !(e.name == b"." || e.name.is_empty() || e.mode & S_IFMT == 0)
}

fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/').filter(|p| !p.is_empty() && *p != b".").collect()
}

/// The inode at `path` (from the root), if it exists.
fn resolve<D: BlockDevice>(fs: &mut Ext2<D>, path: &[u8]) -> Option<Ino> {
    let mut ino = fs.root();
    for c in components(path) {
        ino = fs.lookup(ino, c).ok()?;
    }
    Some(ino)
}

fn time(mtime: u32) -> SetTime {
    SetTime::At(Timespec::new(i64::from(mtime), 0))
}

/// Applies entry `e` (found before offset `pos` of `data`... at `pos` itself) to `fs`.
pub fn apply<D: BlockDevice>(fs: &mut Ext2<D>, data: &[u8], pos: usize, e: &Entry) -> Result<(), Errno> {
    let parts = components(e.name);
    let Some((last, parents)) = parts.split_last() else { return Ok(()) };
    let mut dir = fs.root();
    for p in parents {
        dir = match fs.lookup(dir, p) {
            Ok(i) => i,
            Err(Errno::ENOENT) => fs.mkdir(dir, p, 0o755, 0, 0)?,
            Err(err) => return Err(err),
        };
    }
    let kind = e.mode & S_IFMT;
    let perm = e.mode & 0o7777;
    if let Ok(existing) = fs.lookup(dir, last) {
        if fs.getattr(existing)?.mode & S_IFMT == kind {
            let change = SetAttr { mode: Some(perm), uid: Some(e.uid), gid: Some(e.gid), ..Default::default() };
            fs.setattr(existing, change)?;
        }
        return Ok(());
    }
    let ino = match kind {
        S_IFDIR => fs.mkdir(dir, last, perm, e.uid, e.gid)?,
        S_IFLNK => fs.symlink(dir, last, e.body, e.uid, e.gid)?,
        S_IFREG => {
            let ino = match earlier_link(data, pos, e).and_then(|name| resolve(fs, name)) {
                Some(target) => {
                    fs.link(target, dir, last)?;
                    target
                }
                None => fs.create(dir, last, e.mode, 0, e.uid, e.gid)?,
            };
            if !e.body.is_empty() {
                let n = fs.write(ino, 0, e.body)?;
                if n < e.body.len() {
                    return Err(Errno::ENOSPC);
                }
            }
            ino
        }
        _ => fs.create(dir, last, e.mode, e.rdev, e.uid, e.gid)?,
    };
    if kind != S_IFDIR {
        fs.setattr(ino, SetAttr { atime: Some(time(e.mtime)), mtime: Some(time(e.mtime)), ..Default::default() })?;
    }
    Ok(())
}

/// The name of an earlier entry `e` is a hard link to (same inode number, both with
/// `nlink >= 2`), scanning the archive before `pos`.
fn earlier_link<'a>(data: &'a [u8], pos: usize, e: &Entry) -> Option<&'a [u8]> {
    if e.nlink < 2 {
        return None;
    }
    let mut at = 0;
    while at < pos {
        let x = entry_at(data, at)?;
        if x.ino == e.ino && x.nlink >= 2 && x.mode & S_IFMT == S_IFREG && wanted(&x) {
            return Some(x.name);
        }
        at = x.next;
    }
    None
}

/// Gives every archived directory its archived times: done last, since creating entries in a
/// directory changes its modification time.
pub fn set_dir_times<D: BlockDevice>(fs: &mut Ext2<D>, data: &[u8]) -> Result<(), Errno> {
    let mut pos = 0;
    while let Some(e) = entry_at(data, pos) {
        if wanted(&e) && e.mode & S_IFMT == S_IFDIR {
            if let Some(ino) = resolve(fs, e.name) {
                fs.setattr(
                    ino,
                    SetAttr { atime: Some(time(e.mtime)), mtime: Some(time(e.mtime)), ..Default::default() },
                )?;
            }
        }
        pos = e.next;
    }
    Ok(())
}
