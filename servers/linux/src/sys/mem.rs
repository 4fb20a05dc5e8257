//! Memory: brk, mmap (anonymous, and private file mappings by copying), munmap, mprotect.
//! Anonymous memory is only reserved here (a VMA); pages are mapped on first touch by the
//! fault path, which is also how the stack grows.

use crate::files::Object;
use crate::process::{Vma, PAGE};
use crate::{Ctx, Linux, Outcome};
use abi::Errno;
use server_rt::Prot;

const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x100000;

fn prot(bits: u64) -> Prot {
    Prot { read: bits & PROT_READ != 0, write: bits & PROT_WRITE != 0, exec: bits & PROT_EXEC != 0 }
}

pub fn brk(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let want = c.args[0];
    let old = p.mm.brk;
    if want < p.mm.brk_start || want > p.mm.brk_start + (1 << 30) {
        return Outcome::Done(old as i64);
    }
    let (old_end, new_end) = (old.next_multiple_of(PAGE), want.next_multiple_of(PAGE));
    let rw = Prot { read: true, write: true, exec: false };
    if new_end > old_end {
        if p.mm.vmas.iter().any(|v| v.start < new_end && old_end < v.end && v.start >= old_end) {
            return Outcome::Done(old as i64);
        }
        p.mm.add(p.mm.brk_start, new_end, rw);
    } else if new_end < old_end {
        p.mm.punch(new_end, old_end);
        let _ = l.k.aspace_unmap(p.aspace, new_end, old_end - new_end);
    }
    p.mm.brk = want;
    Outcome::Done(want as i64)
}

pub fn mmap(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, prot_bits, flags, fd, offset] = c.args;
    if len == 0 || offset % PAGE != 0 || addr % PAGE != 0 {
        return Errno::EINVAL.into();
    }
    if flags & (MAP_SHARED | MAP_PRIVATE) == 0 {
        return Errno::EINVAL.into();
    }
    let Some(len) = len.checked_next_multiple_of(PAGE) else { return Errno::ENOMEM.into() };
    // File contents for a private file mapping (copied: MAP_SHARED of files is not supported).
    let contents = if flags & MAP_ANONYMOUS == 0 {
        let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
        let Ok(f) = p.fds.get(fd) else { return Errno::EBADF.into() };
        let id = match &f.file.borrow().object {
            Object::File { id, mode } if mode & abi::proto::S_IFMT == abi::proto::S_IFREG => *id,
            _ => return Errno::ENODEV.into(),
        };
        match l.read_range(id, offset, len as usize) {
            Ok(d) => Some(d),
            Err(e) => return e.into(),
        }
    } else {
        None
    };
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    let start = if fixed {
        if addr.checked_add(len).is_none_or(|e| e > 0x0000_7fff_ffff_f000) {
            return Errno::ENOMEM.into();
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && p.mm.vmas.iter().any(|v| v.start < addr + len && addr < v.end) {
            return Errno::EEXIST.into();
        }
        let _ = l.k.aspace_unmap(p.aspace, addr, len);
        addr
    } else {
        match p.mm.find_free(len) {
            Some(a) => a,
            None => return Errno::ENOMEM.into(),
        }
    };
    let pr = prot(prot_bits);
    p.mm.add(start, start + len, pr);
    if let Some(data) = contents {
        let aspace = p.aspace;
        let rw = Prot { read: true, write: true, exec: pr.exec };
        if l.k.aspace_map(aspace, start, len, rw).is_err() || l.k.aspace_write(aspace, start, &data).is_err() {
            return Errno::ENOMEM.into();
        }
        let _ = l.k.aspace_protect(aspace, start, len, pr);
    }
    Outcome::Done(start as i64)
}

pub fn munmap(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, ..] = c.args;
    if addr % PAGE != 0 || len == 0 {
        return Errno::EINVAL.into();
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let end = addr.saturating_add(len).next_multiple_of(PAGE);
    p.mm.punch(addr, end);
    let _ = l.k.aspace_unmap(p.aspace, addr, end - addr);
    Outcome::Done(0)
}

pub fn mprotect(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, bits, ..] = c.args;
    if addr % PAGE != 0 {
        return Errno::EINVAL.into();
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let end = addr.saturating_add(len).next_multiple_of(PAGE);
    // Every page must be mapped by some VMA (ENOMEM otherwise, as on Linux).
    let mut a = addr;
    while a < end {
        match p.mm.find(a) {
            Some(v) => a = v.end,
            None => return Errno::ENOMEM.into(),
        }
    }
    let pieces: alloc::vec::Vec<Vma> = p.mm.vmas.iter().filter(|v| v.start < end && addr < v.end).copied().collect();
    for v in pieces {
        let (s, e) = (v.start.max(addr), v.end.min(end));
        p.mm.add(s, e, prot(bits));
    }
    let _ = l.k.aspace_protect(p.aspace, addr, end - addr, prot(bits));
    Outcome::Done(0)
}
