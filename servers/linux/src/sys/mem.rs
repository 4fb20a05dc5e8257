//! Memory: brk, mmap (anonymous private and shared, and private file mappings by copying),
//! munmap, mprotect, mremap, madvise, msync, mincore, mlock. Private anonymous memory is only
//! reserved here (a VMA); pages are mapped on first touch by the fault path, which is also how
//! the stack and MAP_GROWSDOWN mappings grow. MAP_SHARED anonymous memory too, until a fork:
//! then every page is mapped first, so that parent and child keep the same frames
//! (`Kernel::aspace_copy`'s shared ranges).
//!
//! Shared file mappings need the file servers (a page cache): [`map_file`] is where they will
//! plug in; today a file mapping is a private copy of the file's bytes.

use crate::files::Object;
use crate::process::{Vma, PAGE, RLIMIT_MEMLOCK, VMA_GROWSDOWN, VMA_SHARED};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::Errno;
use alloc::vec::Vec;
use server_rt::Prot;

const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const PROT_GROWSDOWN: u64 = 0x0100_0000;
const PROT_GROWSUP: u64 = 0x0200_0000;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x0100;
const MAP_DENYWRITE: u64 = 0x0800;
const MAP_EXECUTABLE: u64 = 0x1000;
const MAP_LOCKED: u64 = 0x2000;
const MAP_NORESERVE: u64 = 0x4000;
const MAP_POPULATE: u64 = 0x8000;
const MAP_NONBLOCK: u64 = 0x1_0000;
const MAP_STACK: u64 = 0x2_0000;
const MAP_HUGETLB: u64 = 0x4_0000;
const MAP_SYNC: u64 = 0x8_0000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// Flags MAP_SHARED_VALIDATE accepts (anything else is EOPNOTSUPP).
const MAP_KNOWN: u64 = MAP_SHARED_VALIDATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | 0x40 // MAP_32BIT (x86_64) / unused
    | MAP_GROWSDOWN
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_FIXED_NOREPLACE;
/// Linux's vm.max_map_count: how many VMAs a process may have.
const MAX_MAP_COUNT: usize = 65530;
/// One past the highest user address a mapping may use.
const TASK_SIZE: u64 = 0x0000_7fff_ffff_f000;

fn prot(bits: u64) -> Prot {
    Prot { read: bits & PROT_READ != 0, write: bits & PROT_WRITE != 0, exec: bits & PROT_EXEC != 0 }
}

pub fn brk(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let mut mm = p.mm.borrow_mut();
    let want = c.args[0];
    let old = mm.brk;
    if want < mm.brk_start || want > mm.brk_start + (1 << 30) {
        return Outcome::Done(old as i64);
    }
    let (old_end, new_end) = (old.next_multiple_of(PAGE), want.next_multiple_of(PAGE));
    let rw = Prot { read: true, write: true, exec: false };
    if new_end > old_end {
        if mm.overlaps(old_end, new_end) {
            return Outcome::Done(old as i64);
        }
        let start = mm.brk_start;
        mm.add(start, new_end, rw);
    } else if new_end < old_end {
        mm.punch(new_end, old_end);
        let _ = l.k.aspace_unmap(p.aspace, new_end, old_end - new_end);
    }
    mm.brk = want;
    Outcome::Done(want as i64)
}

/// The bytes a private file mapping of `fd` at `offset` starts with (the hook for file-backed
/// mappings: shared ones will map the file servers' pages here instead).
fn map_file(l: &mut Linux, pid: Pid, fd: u64, offset: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let f = p.fds.get(fd)?;
    let id = match &f.file.borrow().object {
        Object::File { id, mode } if mode & abi::proto::S_IFMT == abi::proto::S_IFREG => *id,
        _ => return Err(Errno::ENODEV),
    };
    l.read_range(id, offset, len as usize)
}

pub fn mmap(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, prot_bits, flags, fd, offset] = c.args;
    if len == 0 || !offset.is_multiple_of(PAGE) {
        return Errno::EINVAL.into();
    }
    if prot_bits & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return Errno::EINVAL.into();
    }
    let kind = flags & MAP_SHARED_VALIDATE;
    if kind == 0 {
        return Errno::EINVAL.into();
    }
    if kind == MAP_SHARED_VALIDATE && flags & !(MAP_KNOWN | MAP_SYNC) != 0 {
        return Errno::EOPNOTSUPP.into();
    }
    if flags & MAP_HUGETLB != 0 {
        return Errno::ENOMEM.into(); // no huge pages reserved (Linux's default)
    }
    let shared = kind != MAP_PRIVATE;
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    if fixed && !addr.is_multiple_of(PAGE) {
        return Errno::EINVAL.into();
    }
    let Some(len) = len.checked_next_multiple_of(PAGE).filter(|&l| l <= TASK_SIZE) else {
        return Errno::ENOMEM.into();
    };
    let anonymous = flags & MAP_ANONYMOUS != 0;
    // Linux's heuristic overcommit: one mapping larger than all of memory is refused unless
    // MAP_NORESERVE says it will not all be used (read-only private mappings cost nothing).
    let accounted = shared || prot_bits & PROT_WRITE != 0;
    if accounted && flags & MAP_NORESERVE == 0 && len > l.k.mem_stats().frames_total as u64 * PAGE {
        return Errno::ENOMEM.into();
    }
    // File contents for a private file mapping (copied: MAP_SHARED of files is not supported).
    let contents = if anonymous {
        None
    } else {
        match map_file(l, c.pid, fd, offset, len) {
            Ok(d) => Some(d),
            Err(e) => return e.into(),
        }
    };
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let aspace = p.aspace;
    let mut mm = p.mm.borrow_mut();
    if mm.vmas.len() >= MAX_MAP_COUNT {
        return Errno::ENOMEM.into();
    }
    let start = if fixed {
        if addr.checked_add(len).is_none_or(|e| e > TASK_SIZE) {
            return Errno::ENOMEM.into();
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && mm.overlaps(addr, addr + len) {
            return Errno::EEXIST.into();
        }
        let _ = l.k.aspace_unmap(aspace, addr, len);
        addr
    } else {
        // A free hint is taken as it is (rounded to a page); otherwise the next free range.
        let hint = addr & !(PAGE - 1);
        if hint >= 0x1_0000 && hint.checked_add(len).is_some_and(|e| e <= TASK_SIZE) && !mm.overlaps(hint, hint + len) {
            hint
        } else {
            match mm.find_free(len) {
                Some(a) => a,
                None => return Errno::ENOMEM.into(),
            }
        }
    };
    let pr = prot(prot_bits);
    let mut vflags = 0;
    if shared && anonymous {
        vflags |= VMA_SHARED;
    }
    if flags & MAP_GROWSDOWN != 0 {
        vflags |= VMA_GROWSDOWN;
    }
    // The pages of a file mapping past the file's end are SIGBUS.
    let file_end =
        contents.as_ref().map(|d| start + (d.len() as u64).next_multiple_of(PAGE)).filter(|&e| e < start + len);
    mm.insert(Vma { start, end: start + len, prot: pr, flags: vflags, eof: file_end.unwrap_or(0) });
    drop(mm);
    if let Some(data) = contents {
        let rw = Prot { read: true, write: true, exec: pr.exec };
        let mapped = file_end.unwrap_or(start + len) - start;
        if mapped != 0
            && (l.k.aspace_map(aspace, start, mapped, rw).is_err() || l.k.aspace_write(aspace, start, &data).is_err())
        {
            return Errno::ENOMEM.into();
        }
        if mapped != 0 {
            let _ = l.k.aspace_protect(aspace, start, mapped, pr);
        }
    } else if flags & (MAP_POPULATE | MAP_LOCKED) != 0 {
        // MAP_POPULATE and MAP_LOCKED fault everything in now.
        if l.k.aspace_map(aspace, start, len, pr).is_err() {
            if let Some(p) = l.procs.get(&c.pid) {
                p.mm.borrow_mut().punch(start, start + len);
            }
            let _ = l.k.aspace_unmap(aspace, start, len);
            return Errno::ENOMEM.into();
        }
    }
    Outcome::Done(start as i64)
}

/// Checks an (addr, len) range argument: page-aligned start, no wrap, below TASK_SIZE.
fn range(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let end = addr.checked_add(len).and_then(|e| e.checked_next_multiple_of(PAGE)).ok_or(Errno::EINVAL)?;
    if end > TASK_SIZE + PAGE {
        return Err(Errno::EINVAL);
    }
    Ok((addr, end))
}

/// Whether every page of `[start, end)` is in some VMA.
fn fully_mapped(vmas: &[Vma], start: u64, end: u64) -> bool {
    let mut a = start;
    while a < end {
        match vmas.iter().find(|v| a >= v.start && a < v.end) {
            Some(v) => a = v.end,
            None => return false,
        }
    }
    true
}

pub fn munmap(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, ..] = c.args;
    if len == 0 {
        return Errno::EINVAL.into();
    }
    let (start, end) = match range(addr, len) {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    p.mm.borrow_mut().punch(start, end);
    let _ = l.k.aspace_unmap(p.aspace, start, end - start);
    Outcome::Done(0)
}

pub fn mprotect(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, bits, ..] = c.args;
    if bits & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return Errno::EINVAL.into();
    }
    let (start, end) = match range(addr, len) {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    if start == end {
        return Outcome::Done(0);
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let mut mm = p.mm.borrow_mut();
    // Every page must be mapped by some VMA (ENOMEM otherwise, as on Linux), and splitting
    // may not make more than vm.max_map_count of them.
    if !fully_mapped(&mm.vmas, start, end) || mm.vmas.len() + 2 > MAX_MAP_COUNT {
        return Errno::ENOMEM.into();
    }
    let pieces: Vec<Vma> = mm.vmas.iter().filter(|v| v.start < end && start < v.end).copied().collect();
    for v in pieces {
        let (s, e) = (v.start.max(start), v.end.min(end));
        mm.insert(Vma { start: s, end: e, prot: prot(bits), ..v });
    }
    let _ = l.k.aspace_protect(p.aspace, start, end - start, prot(bits));
    Outcome::Done(0)
}

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;

/// mremap(old, old_size, new_size, flags, new_addr): shrink in place, grow in place when the
/// room after it is free, otherwise move (MREMAP_MAYMOVE) — the pages themselves move, nothing
/// is copied — or to exactly `new_addr` (MREMAP_FIXED). MREMAP_DONTUNMAP leaves the old range
/// mapped but empty.
pub fn mremap(l: &mut Linux, c: &Ctx) -> Outcome {
    let [old, old_size, new_size, flags, new_addr, ..] = c.args;
    if !old.is_multiple_of(PAGE) || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return Errno::EINVAL.into();
    }
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Errno::EINVAL.into();
    }
    let (Some(old_len), Some(new_len)) =
        (old_size.checked_next_multiple_of(PAGE), new_size.checked_next_multiple_of(PAGE))
    else {
        return Errno::EINVAL.into();
    };
    if new_len == 0 || old_len == 0 || old.checked_add(old_len).is_none_or(|e| e > TASK_SIZE) {
        return Errno::EINVAL.into();
    }
    if flags & MREMAP_DONTUNMAP != 0 && old_len != new_len {
        return Errno::EINVAL.into();
    }
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let aspace = p.aspace;
    let mut mm = p.mm.borrow_mut();
    // The old range must lie in one VMA.
    let Some(v) = mm.find(old).copied().filter(|v| old + old_len <= v.end) else { return Errno::EFAULT.into() };
    let fixed = flags & MREMAP_FIXED != 0;
    if fixed {
        if !new_addr.is_multiple_of(PAGE) || new_addr.checked_add(new_len).is_none_or(|e| e > TASK_SIZE) {
            return Errno::EINVAL.into();
        }
        if new_addr < old + old_len && old < new_addr + new_len {
            return Errno::EINVAL.into();
        }
    }
    if !fixed && flags & MREMAP_DONTUNMAP == 0 {
        if new_len <= old_len {
            // Shrink (or stay): the tail goes.
            if new_len < old_len {
                mm.punch(old + new_len, old + old_len);
                let _ = l.k.aspace_unmap(aspace, old + new_len, old_len - new_len);
            }
            return Outcome::Done(old as i64);
        }
        let grow_end = old + new_len;
        if grow_end <= TASK_SIZE && (v.end >= grow_end || !mm.overlaps(v.end.max(old + old_len), grow_end)) {
            if v.end < grow_end {
                mm.insert(Vma { end: grow_end, ..v });
            }
            return Outcome::Done(old as i64);
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Errno::ENOMEM.into();
        }
    }
    let dst = if fixed {
        mm.punch(new_addr, new_addr + new_len);
        let _ = l.k.aspace_unmap(aspace, new_addr, new_len);
        new_addr
    } else {
        match mm.find_free(new_len) {
            Some(a) => a,
            None => return Errno::ENOMEM.into(),
        }
    };
    let moved = old_len.min(new_len);
    if l.k.aspace_move(aspace, old, dst, moved).is_err() {
        return Errno::ENOMEM.into();
    }
    if flags & MREMAP_DONTUNMAP == 0 {
        mm.punch(old, old + old_len);
        let _ = l.k.aspace_unmap(aspace, old, old_len);
    }
    let eof = if v.eof != 0 { dst + (v.eof.saturating_sub(old)) } else { 0 };
    mm.insert(Vma { start: dst, end: dst + new_len, eof, ..v });
    if v.flags & VMA_SHARED != 0 && new_len > moved {
        let _ = l.k.aspace_map(aspace, dst + moved, new_len - moved, v.prot);
    }
    Outcome::Done(dst as i64)
}

const MADV_DONTNEED: u64 = 4;
const MADV_FREE: u64 = 8;
const MADV_REMOVE: u64 = 9;
const MADV_POPULATE_READ: u64 = 22;
const MADV_POPULATE_WRITE: u64 = 23;

/// madvise: MADV_DONTNEED and MADV_FREE drop private anonymous pages (they read as zero
/// afterwards, as on Linux); the POPULATE advice faults pages in; the other known advice
/// (WILLNEED reads ahead files and swap, neither of which exists here) is accepted. A range
/// with holes is ENOMEM (after the mapped parts are done).
pub fn madvise(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, advice, ..] = c.args;
    let (start, end) = match range(addr, len) {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    if !matches!(advice, 0..=4 | 8..=23 | 100 | 101) {
        return Errno::EINVAL.into();
    }
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let aspace = p.aspace;
    let vmas: Vec<Vma> = p.mm.borrow().vmas.iter().filter(|v| v.start < end && start < v.end).copied().collect();
    if advice == MADV_REMOVE {
        // Only for shared file mappings (not supported here): EINVAL elsewhere, as on Linux.
        return Errno::EINVAL.into();
    }
    for v in &vmas {
        let (s, e) = (v.start.max(start), v.end.min(end));
        match advice {
            MADV_DONTNEED | MADV_FREE if v.flags & VMA_SHARED == 0 => {
                let _ = l.k.aspace_unmap(aspace, s, e - s);
            }
            MADV_POPULATE_READ | MADV_POPULATE_WRITE => {
                if advice == MADV_POPULATE_WRITE && !v.prot.write || advice == MADV_POPULATE_READ && !v.prot.read {
                    return Errno::EINVAL.into();
                }
                if l.k.aspace_map(aspace, s, e - s, v.prot).is_err() {
                    return Errno::ENOMEM.into();
                }
            }
            _ => {}
        }
    }
    if !fully_mapped(&vmas, start, end) {
        return Errno::ENOMEM.into();
    }
    Outcome::Done(0)
}

const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

/// msync: anonymous and private memory has nothing to write back (shared file mappings would,
/// once they exist); flags and the range are checked as Linux does.
pub fn msync(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, flags, ..] = c.args;
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC {
        return Errno::EINVAL.into();
    }
    let (start, end) = match range(addr, len) {
        Ok(r) => r,
        Err(e) => return e.into(),
    };
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    if !fully_mapped(&p.mm.borrow().vmas, start, end) {
        return Errno::ENOMEM.into();
    }
    Outcome::Done(0)
}

/// mincore(addr, len, vec): one byte per page, 1 when it is in memory.
pub fn mincore(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, vec, ..] = c.args;
    if !addr.is_multiple_of(PAGE) {
        return Errno::EINVAL.into();
    }
    let Some(end) = addr.checked_add(len).and_then(|e| e.checked_next_multiple_of(PAGE)).filter(|&e| e <= TASK_SIZE)
    else {
        return Errno::ENOMEM.into();
    };
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    if !fully_mapped(&p.mm.borrow().vmas, addr, end) {
        return Errno::ENOMEM.into();
    }
    let aspace = p.aspace;
    // In chunks: a huge range costs a table walk and a vector write per chunk.
    const CHUNK: u64 = 64 * 1024;
    let mut buf = alloc::vec![0u8; CHUNK as usize];
    let mut page = addr;
    while page < end {
        let n = ((end - page) / PAGE).min(CHUNK) as usize;
        if l.k.aspace_resident(aspace, page, &mut buf[..n]).is_err() {
            return Errno::ENOMEM.into();
        }
        if let Err(e) = crate::process::write_bytes(l, c.pid, vec + (page - addr) / PAGE, &buf[..n]) {
            return e.into();
        }
        page += n as u64 * PAGE;
    }
    Outcome::Done(0)
}

/// mlock, munlock, mlock2: nothing is ever paged out here, so locking only faults the pages in
/// (mlock) and checks the range.
pub fn mlock(l: &mut Linux, c: &Ctx) -> Outcome {
    let [addr, len, ..] = c.args;
    let name = abi::syscall::name(abi::syscall::CURRENT, c.nr as usize).unwrap_or("");
    if name == "mlock2" && c.args[2] & !1 != 0 {
        return Errno::EINVAL.into();
    }
    let start = addr & !(PAGE - 1);
    let Some(end) = addr.checked_add(len).and_then(|e| e.checked_next_multiple_of(PAGE)) else {
        return Errno::EINVAL.into();
    };
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let vmas: Vec<Vma> = p.mm.borrow().vmas.iter().filter(|v| v.start < end && start < v.end).copied().collect();
    if !fully_mapped(&vmas, start, end) {
        return Errno::ENOMEM.into();
    }
    if name != "munlock" {
        // Without CAP_IPC_LOCK (root), RLIMIT_MEMLOCK bounds it.
        if p.creds.euid != 0 && end - start > p.rlimits[RLIMIT_MEMLOCK].0 {
            return Errno::ENOMEM.into();
        }
        for v in vmas.iter().filter(|v| v.prot.read || v.prot.write) {
            let (s, e) = (v.start.max(start), v.end.min(end));
            if l.k.aspace_map(p.aspace, s, e - s, v.prot).is_err() {
                return Errno::EAGAIN.into();
            }
        }
    }
    Outcome::Done(0)
}

/// mlockall(flags) / munlockall(): flags checked, nothing to do (no paging).
pub fn mlockall(_l: &mut Linux, c: &Ctx) -> Outcome {
    let name = abi::syscall::name(abi::syscall::CURRENT, c.nr as usize).unwrap_or("");
    if name == "mlockall" && (c.args[0] == 0 || c.args[0] & !7 != 0 || c.args[0] == 4) {
        return Errno::EINVAL.into();
    }
    Outcome::Done(0)
}
