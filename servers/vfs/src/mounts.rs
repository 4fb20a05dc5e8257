//! The mount table: which file system is mounted where. Entry 0 is the root. An entry names the
//! root of the mounted volume and the directory it covers (both `FileId`s), the server that
//! serves it, and, for `/proc/mounts`, its source, target path and type. The table is encoded
//! into bytes for the state area, so that a restarted VFS finds the same mounts.

use abi::proto::FileId;
use alloc::string::String;
use alloc::vec::Vec;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub fstype: u64,
    pub flags: u64,
    /// The root directory of the mounted volume.
    pub root: FileId,
    /// The directory it is mounted on (the root's own id for the root mount).
    pub covers: FileId,
    pub source: String,
    pub target: String,
}

#[derive(Default)]
pub struct Mounts {
    pub list: Vec<Mount>,
}

const MAGIC: u64 = 0x7666_735f_6d6e_7431; // "vfs_mnt1"

impl Mounts {
    pub fn root(&self) -> Option<&Mount> {
        self.list.first()
    }

    /// The mount whose volume root is `file`.
    pub fn rooted_at(&self, file: FileId) -> Option<&Mount> {
        self.list.iter().find(|m| m.root == file)
    }

    /// The topmost mount covering directory `file` (the last mounted wins).
    pub fn covering(&self, file: FileId) -> Option<&Mount> {
        self.list.iter().skip(1).rev().find(|m| m.covers == file)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&(self.list.len() as u64).to_le_bytes());
        for m in &self.list {
            for w in [m.fstype, m.flags, m.root.0, m.covers.0, m.source.len() as u64, m.target.len() as u64] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(m.source.as_bytes());
            out.extend_from_slice(m.target.as_bytes());
        }
        out
    }

    /// The table encoded in `b`, or `None` if `b` holds none (a first start).
    pub fn decode(b: &[u8]) -> Option<Mounts> {
        let mut r = Reader { b, pos: 0 };
        if r.word()? != MAGIC {
            return None;
        }
        let n = r.word()?;
        let mut list = Vec::new();
        for _ in 0..n.min(256) {
            let (fstype, flags, root, covers, sl, tl) =
                (r.word()?, r.word()?, r.word()?, r.word()?, r.word()?, r.word()?);
            let source = String::from_utf8(r.bytes(sl as usize)?.to_vec()).ok()?;
            let target = String::from_utf8(r.bytes(tl as usize)?.to_vec()).ok()?;
            list.push(Mount { fstype, flags, root: FileId(root), covers: FileId(covers), source, target });
        }
        Some(Mounts { list })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn word(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Mounts {
            list: alloc::vec![
                Mount {
                    fstype: 1,
                    flags: 0,
                    root: FileId(5),
                    covers: FileId(5),
                    source: "rootfs".into(),
                    target: "/".into()
                },
                Mount {
                    fstype: 2,
                    flags: 3,
                    root: FileId(9),
                    covers: FileId(7),
                    source: "proc".into(),
                    target: "/proc".into()
                },
            ],
        };
        let back = Mounts::decode(&m.encode()).unwrap();
        assert_eq!(back.list, m.list);
        assert_eq!(back.covering(FileId(7)).unwrap().target, "/proc");
        assert!(Mounts::decode(&[0; 64]).is_none());
        assert!(Mounts::decode(&m.encode()[..20]).is_none());
    }
}
