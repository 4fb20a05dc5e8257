//! The `ramfs` server: in-memory file systems. Volume 0 is the initramfs (the boot loader's cpio
//! archive, loaded at start); every `tmpfs`/`devtmpfs` mount is another volume. It speaks the
//! file-system protocol (`abi::proto::fs`): files by `FileId`, names and data by grant, no
//! paths and no permissions (the VFS walks and checks), so its logic (`tree.rs`) is plain and
//! host-tested.
//!
//! Restart policy today: *reset*. The trees live in this server's arena and die with it; a new
//! instance reloads the initramfs as it was at boot, and `FileId`s of other volumes are stale
//! (ESTALE). Keeping the volumes in the state area is what makes the restart transparent
//! (docs/caveats.md).
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod cpio;
pub mod tree;

use abi::proto::fs as proto;
use abi::proto::{push_dirent64, Attr, FileId, StatFs, Timespec, NAMES_AT};
use abi::Errno;
use alloc::vec::Vec;
use server_rt::{grant_bytes, grant_put, kernel, log, Cqe, Kernel, Sqe};
use tree::{Change, Ino, Tree};

/// The most file contents all volumes together may hold.
pub const CONTENT_LIMIT: u64 = 96 << 20;
const TMPFS_MAGIC: u64 = 0x0102_1994;
const MAX_VOLUMES: usize = 64;

struct Ramfs {
    k: &'static dyn Kernel,
    /// This server's index in the server table (the `server` part of its FileIds).
    me: usize,
    volumes: Vec<Option<Tree>>,
}

fn now(k: &dyn Kernel) -> Timespec {
    let ns = k.realtime_ns();
    Timespec { sec: (ns / 1_000_000_000) as i64, nsec: (ns % 1_000_000_000) as i64 }
}

impl Ramfs {
    fn file(&self, word: u64) -> Result<(usize, Ino), Errno> {
        let f = FileId(word);
        let v = f.volume() as usize;
        if f.server() != self.me || self.volumes.get(v).is_none_or(|t| t.is_none()) {
            return Err(Errno::ESTALE);
        }
        Ok((v, f.ino()))
    }

    fn tree(&mut self, v: usize) -> &mut Tree {
        self.volumes[v].as_mut().expect("checked by file()")
    }

    fn attr(&self, v: usize, ino: Ino) -> Result<Attr, Errno> {
        let t = self.volumes[v].as_ref().ok_or(Errno::ESTALE)?;
        let n = t.node(ino)?;
        let size = n.size();
        Ok(Attr {
            file: FileId::new(self.me, v as u32, ino).0,
            size,
            blocks: size.next_multiple_of(4096) / 512,
            rdev: n.rdev,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
            mode: n.mode,
            nlink: n.nlink,
            uid: n.uid,
            gid: n.gid,
            blksize: 4096,
            _pad: 0,
        })
    }

    fn put_attr(&self, req: &Sqe, v: usize, ino: Ino) -> Result<i64, Errno> {
        let a = self.attr(v, ino)?;
        grant_put(req.tag, 0, &a).map_err(|_| Errno::EFAULT)?;
        Ok(a.file as i64)
    }

    fn name(req: &Sqe, at: u64, len: u64) -> Result<Vec<u8>, Errno> {
        if len as usize > abi::proto::PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        grant_bytes(req.tag, NAMES_AT + at, len as usize).map_err(|_| Errno::EFAULT)
    }

    fn new_volume(&mut self, tree: Tree) -> Result<usize, Errno> {
        if let Some(i) = self.volumes.iter().skip(1).position(|v| v.is_none()) {
            self.volumes[i + 1] = Some(tree);
            return Ok(i + 1);
        }
        if self.volumes.len() >= MAX_VOLUMES {
            return Err(Errno::ENOMEM);
        }
        self.volumes.push(Some(tree));
        Ok(self.volumes.len() - 1)
    }

    fn handle(&mut self, req: &Sqe, reply: &mut Cqe) -> Result<i64, Errno> {
        let k = self.k;
        let a = req.args;
        let t = now(k);
        match req.opcode {
            proto::LOOKUP => {
                let (v, dir) = self.file(a[0])?;
                let name = Self::name(req, 0, a[1])?;
                let ino = self.tree(v).lookup(dir, &name)?;
                self.put_attr(req, v, ino)
            }
            proto::GETATTR => {
                let (v, ino) = self.file(a[0])?;
                self.put_attr(req, v, ino).map(|_| 0)
            }
            proto::SETATTR => {
                let (v, ino) = self.file(a[0])?;
                let valid = a[1];
                let times: proto::SetTimes = server_rt::grant_get(req.tag, 0).map_err(|_| Errno::EFAULT)?;
                let c = Change {
                    mode: (valid & proto::SET_MODE != 0).then_some(a[2] as u32),
                    owner: (valid & proto::SET_OWNER != 0).then_some(((a[3] >> 32) as u32, a[3] as u32)),
                    size: (valid & proto::SET_SIZE != 0).then_some(a[4]),
                    atime: (valid & proto::SET_ATIME != 0).then_some(times.atime),
                    mtime: (valid & proto::SET_MTIME != 0).then_some(times.mtime),
                    touch_ctime: valid & proto::SET_CTIME != 0,
                };
                self.tree(v).setattr(ino, &c, t)?;
                self.put_attr(req, v, ino).map(|_| 0)
            }
            proto::READ => {
                let (v, ino) = self.file(a[0])?;
                let len = a[2].min(req.grant.len) as usize;
                let data = self.tree(v).read(ino, a[1], len)?;
                k.grant_write(req.tag, 0, data).map_err(|_| Errno::EFAULT)?;
                Ok(data.len() as i64)
            }
            proto::WRITE => {
                let (v, ino) = self.file(a[0])?;
                let len = a[2].min(req.grant.len) as usize;
                let data = grant_bytes(req.tag, 0, len).map_err(|_| Errno::EFAULT)?;
                let end = self.tree(v).write(ino, a[1], &data, a[3] & proto::WRITE_APPEND != 0, t)?;
                reply.aux = end;
                Ok(len as i64)
            }
            proto::READDIR => {
                let (v, dir) = self.file(a[0])?;
                let limit = a[2].min(req.grant.len) as usize;
                let mut out = Vec::new();
                let mut next = a[1];
                let me = self.me;
                self.tree(v).readdir(dir, a[1], |ino, n, dtype, name| {
                    let id = FileId::new(me, v as u32, ino).ino();
                    if push_dirent64(&mut out, limit, id, n, dtype, name) {
                        next = n;
                        true
                    } else {
                        false
                    }
                })?;
                if out.is_empty() && next != a[1] {
                    return Err(Errno::EINVAL); // the buffer cannot hold one entry
                }
                k.grant_write(req.tag, 0, &out).map_err(|_| Errno::EFAULT)?;
                reply.aux = next;
                Ok(out.len() as i64)
            }
            proto::CREATE => {
                let (v, dir) = self.file(a[0])?;
                let name = Self::name(req, 0, a[1])?;
                let ino = self.tree(v).create(dir, &name, a[2] as u32, a[3], ((a[4] >> 32) as u32, a[4] as u32), t)?;
                self.put_attr(req, v, ino)
            }
            proto::SYMLINK => {
                let (v, dir) = self.file(a[0])?;
                let name = Self::name(req, 0, a[1])?;
                let target = Self::name(req, a[1], a[2])?;
                let ino = self.tree(v).symlink(dir, &name, &target, ((a[3] >> 32) as u32, a[3] as u32), t)?;
                self.put_attr(req, v, ino)
            }
            proto::READLINK => {
                let (v, ino) = self.file(a[0])?;
                let target = self.tree(v).readlink(ino)?;
                let n = target.len().min(a[1] as usize).min(req.grant.len as usize);
                k.grant_write(req.tag, 0, &target[..n]).map_err(|_| Errno::EFAULT)?;
                Ok(n as i64)
            }
            proto::LINK => {
                let (v, ino) = self.file(a[0])?;
                let (dv, dir) = self.file(a[1])?;
                if dv != v {
                    return Err(Errno::EXDEV);
                }
                let name = Self::name(req, 0, a[2])?;
                self.tree(v).link(ino, dir, &name, t)?;
                self.put_attr(req, v, ino).map(|_| 0)
            }
            proto::UNLINK => {
                let (v, dir) = self.file(a[0])?;
                let name = Self::name(req, 0, a[1])?;
                let ino = self.tree(v).unlink(dir, &name, a[2] & proto::UNLINK_DIR != 0, t)?;
                reply.aux = FileId::new(self.me, v as u32, ino).0;
                Ok(0)
            }
            proto::RENAME => {
                let (v, from_dir) = self.file(a[0])?;
                let (tv, to_dir) = self.file(a[1])?;
                if tv != v {
                    return Err(Errno::EXDEV);
                }
                let from = Self::name(req, 0, a[2])?;
                let to = Self::name(req, a[2], a[3])?;
                self.tree(v).rename(from_dir, &from, to_dir, &to, a[4], t)?;
                Ok(0)
            }
            proto::OPEN => {
                let (v, ino) = self.file(a[0])?;
                self.tree(v).open(ino).map(|_| 0)
            }
            proto::RELEASE => {
                let (v, ino) = self.file(a[0])?;
                self.tree(v).release(ino).map(|_| 0)
            }
            proto::STATFS => {
                let (v, _) = self.file(a[0])?;
                let used: u64 = self.volumes.iter().flatten().map(|t| t.bytes).sum();
                let tree = self.tree(v);
                let s = StatFs {
                    fs_type: TMPFS_MAGIC,
                    block_size: 4096,
                    blocks: CONTENT_LIMIT / 4096,
                    blocks_free: CONTENT_LIMIT.saturating_sub(used) / 4096,
                    blocks_avail: CONTENT_LIMIT.saturating_sub(used) / 4096,
                    files: 1 << 20,
                    files_free: (1u64 << 20).saturating_sub(tree.inodes()),
                    name_max: 255,
                    flags: 0,
                };
                grant_put(req.tag, 0, &s).map_err(|_| Errno::EFAULT)?;
                Ok(0)
            }
            // Everything is in memory already: nothing to write back.
            proto::SYNC => Ok(0),
            proto::FSYNC => self.file(a[0]).map(|_| 0),
            proto::MOUNT => {
                let v = match a[0] {
                    proto::MOUNT_INITRAMFS => 0,
                    proto::MOUNT_TMPFS => self.new_volume(Tree::new(t, CONTENT_LIMIT))?,
                    _ => return Err(Errno::ENODEV),
                };
                self.put_attr(req, v, tree::ROOT)
            }
            proto::UMOUNT => {
                let (v, _) = self.file(a[0])?;
                if v == 0 {
                    return Err(Errno::EBUSY);
                }
                if self.tree(v).busy() {
                    return Err(Errno::EBUSY);
                }
                self.volumes[v] = None;
                Ok(0)
            }
            proto::NAME_OF => {
                let (v, dir) = self.file(a[0])?;
                let (cv, child) = self.file(a[1])?;
                if cv != v {
                    return Err(Errno::ENOENT);
                }
                let name = self.tree(v).name_of(dir, child)?;
                k.grant_write(req.tag, NAMES_AT, name).map_err(|_| Errno::EFAULT)?;
                Ok(name.len() as i64)
            }
            _ => Err(Errno::ENOSYS),
        }
    }
}

/// Server entry: load the initramfs into volume 0, then serve.
pub fn main() {
    let k = kernel();
    let (me, instance) = k.whoami();
    let mut root = Tree::new(now(k), CONTENT_LIMIT);
    let entries = cpio::load(&mut root, k.initrd(), now(k));
    if instance == 1 {
        log!("ramfs: initramfs loaded ({entries} entries, {} KiB)", root.bytes / 1024);
    } else {
        log!("ramfs: instance {instance}: initramfs reloaded; other volumes were lost");
    }
    let mut fs = Ramfs { k, me, volumes: alloc::vec![Some(root)] };
    let mut req = k.receive().unwrap_or_else(|e| panic!("ramfs: receive failed: {e}"));
    loop {
        if req.is_notification() {
            req = k.receive().unwrap_or_else(|e| panic!("ramfs: receive failed: {e}"));
            continue;
        }
        let mut reply = Cqe::new(req.tag, 0);
        reply.result = fs.handle(&req, &mut reply).unwrap_or_else(|e| e.as_return());
        req = k.reply_and_receive(&reply).unwrap_or_else(|e| panic!("ramfs: receive failed: {e}"));
    }
}
