//! Reading a cpio "newc" archive (the initramfs format: `070701`/`070702` headers with hex
//! fields, names and data padded to 4 bytes) into a [`Tree`]. A malformed archive stops at the
//! bad entry: everything before it is kept, nothing after it is guessed at.

use crate::tree::Tree;
use abi::proto::{makedev, Timespec, S_IFMT};
use alloc::vec::Vec;

fn hex(field: &[u8]) -> Option<u32> {
    core::str::from_utf8(field).ok().and_then(|s| u32::from_str_radix(s, 16).ok())
}

/// Loads every entry of `data` into `tree`; returns how many entries were taken.
pub fn load(tree: &mut Tree, data: &[u8], now: Timespec) -> usize {
    let mut pos = 0usize;
    let mut count = 0;
    while let Some(h) = data.get(pos..pos + 110) {
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            break;
        }
        let field = |i: usize| hex(&h[6 + 8 * i..14 + 8 * i]);
        let (Some(mode), Some(uid), Some(gid), Some(mtime), Some(size), Some(rmaj), Some(rmin), Some(namesize)) =
            (field(1), field(2), field(3), field(5), field(6), field(9), field(10), field(11))
        else {
            break;
        };
        let name_start = pos + 110;
        let Some(name) = data.get(name_start..name_start + namesize as usize) else { break };
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        let data_start = (name_start + namesize as usize).next_multiple_of(4);
        let Some(body) = data.get(data_start..data_start + size as usize) else { break };
        pos = (data_start + size as usize).next_multiple_of(4);
        if name == b"TRAILER!!!" {
            break;
        }
        if name == b"." || name.is_empty() || mode & S_IFMT == 0 {
            continue;
        }
        let t = Timespec { sec: mtime as i64, nsec: 0 };
        let rdev = makedev(rmaj, rmin);
        let mut body_vec = Vec::new();
        if body_vec.try_reserve(body.len()).is_err() {
            break;
        }
        body_vec.extend_from_slice(body);
        if tree.create_path(name, mode, rdev, body_vec, (uid, gid), t).is_ok() {
            count += 1;
        }
    }
    let _ = now;
    count
}
