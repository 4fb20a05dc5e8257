//! Processes: identity and family (pid, parent, process group, session), the address-space
//! layout (VMAs, brk), file descriptors, cwd and umask, signal dispositions, and the life cycle:
//! start, fork, exit, zombie, wait, and reparenting to pid 1. When pid 1 exits the machine
//! powers off with its exit status (there is nothing left to run).

use crate::files::FdTable;
use crate::{Ctx, Linux, Outcome, Pid};
use abi::proto::{Cred, FileId};
use abi::Errno;
use alloc::string::String;
use alloc::vec::Vec;
use server_rt::{log, AspaceRef, Prot, ThreadRef};

pub const PAGE: u64 = 4096;
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;
pub const STACK_MAX: u64 = 8 << 20;
pub const MMAP_BASE: u64 = 0x7f00_0000_0000;
/// A read-only, executable page with the `rt_sigreturn` trampoline (above the stack).
pub const SIGPAGE: u64 = STACK_TOP;

/// A mapped range of the address space and its rights. Pages are mapped on first touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
}

#[derive(Clone, Debug, Default)]
pub struct Mm {
    pub vmas: Vec<Vma>,
    pub brk_start: u64,
    pub brk: u64,
    pub mmap_next: u64,
}

impl Mm {
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.vmas.iter().find(|v| addr >= v.start && addr < v.end)
    }

    /// Removes `[start, end)` from every VMA (splitting as needed).
    pub fn punch(&mut self, start: u64, end: u64) {
        let mut out = Vec::with_capacity(self.vmas.len() + 1);
        for v in self.vmas.drain(..) {
            if v.end <= start || v.start >= end {
                out.push(v);
                continue;
            }
            if v.start < start {
                out.push(Vma { start: v.start, end: start, prot: v.prot });
            }
            if v.end > end {
                out.push(Vma { start: end, end: v.end, prot: v.prot });
            }
        }
        self.vmas = out;
    }

    pub fn add(&mut self, start: u64, end: u64, prot: Prot) {
        self.punch(start, end);
        self.vmas.push(Vma { start, end, prot });
        self.vmas.sort_by_key(|v| v.start);
    }

    /// A free range of `len` bytes for mmap (top-down from `mmap_next`).
    pub fn find_free(&mut self, len: u64) -> Option<u64> {
        let mut candidate = self.mmap_next.checked_sub(len)? & !(PAGE - 1);
        loop {
            let clash = self.vmas.iter().find(|v| v.start < candidate + len && candidate < v.end);
            match clash {
                None => {
                    self.mmap_next = candidate;
                    return Some(candidate);
                }
                Some(v) => candidate = v.start.checked_sub(len)? & !(PAGE - 1),
            }
            if candidate < 0x1000_0000 {
                return None;
            }
        }
    }
}

/// Signal dispositions: handler 0 = default, 1 = ignore, other = a handler address.
pub const NSIG: usize = 65;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl Process {
    /// The credentials file access is checked with (fsuid/fsgid; root until credentials
    /// are kept per process).
    pub fn fs_cred(&self) -> Cred {
        Cred::ROOT
    }
}

pub struct Process {
    pub pid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    pub aspace: AspaceRef,
    pub threads: Vec<ThreadRef>,
    pub mm: Mm,
    pub fds: FdTable,
    /// The working directory (FileId(0): the root).
    pub cwd: FileId,
    pub umask: u32,
    pub sigactions: [SigAction; NSIG],
    pub sigmask: u64,
    /// Signals sent but not yet delivered (bit `n - 1` for signal `n`).
    pub pending: u64,
    /// Wait status once the process has exited (a zombie until its parent waits).
    pub exit_status: Option<i32>,
    pub exe: String,
}

pub fn spawn_init(l: &mut Linux, path: &str) -> Result<Pid, Errno> {
    let pid = l.next_pid;
    l.next_pid += 1;
    let argv = alloc::vec![String::from(path)];
    let envp = alloc::vec![
        String::from("HOME=/"),
        String::from("PATH=/bin:/sbin:/usr/bin:/usr/sbin"),
        String::from("TERM=vt100")
    ];
    let image = crate::exec::load(l, 0, FileId(0), path, &argv, &envp)?;
    let thread = l.k.thread_start(image.aspace, image.entry, image.sp).map_err(|_| Errno::ENOMEM)?;
    let mut fds = FdTable::new();
    fds.install_console(&l.releases);
    l.procs.insert(
        pid,
        Process {
            pid,
            ppid: 0,
            pgid: pid,
            sid: pid,
            aspace: image.aspace,
            threads: alloc::vec![thread],
            mm: image.mm,
            fds,
            cwd: FileId(0),
            umask: 0o022,
            sigactions: [SigAction::default(); NSIG],
            sigmask: 0,
            pending: 0,
            exit_status: None,
            exe: image.exe.clone(),
        },
    );
    l.threads.insert(thread.0, pid);
    Ok(pid)
}

/// A user fault: map the page if a VMA allows the access, otherwise SIGSEGV.
pub fn on_fault(l: &mut Linux, c: &Ctx) -> Outcome {
    let (addr, write) = (c.args[0], c.args[2] != 0);
    let Some(p) = l.procs.get_mut(&c.pid) else { return Outcome::Done(-1) };
    let page = addr & !(PAGE - 1);
    // The stack grows down into its reserved VMA on demand; the VMA covers the whole limit.
    if let Some(v) = p.mm.find(addr) {
        let allowed = if write { v.prot.write } else { v.prot.read || v.prot.exec };
        let mapped = l.k.aspace_read(p.aspace, page, &mut [0u8; 1]).is_ok();
        if allowed && !mapped && l.k.aspace_map(p.aspace, page, PAGE, v.prot).is_ok() {
            return Outcome::Done(0);
        }
    }
    log!(
        "linux: pid {} segfault at {:#x} (pc {:#x}, {})",
        c.pid,
        addr,
        c.args[1],
        if write { "write" } else { "read" }
    );
    terminate(l, c.pid, 11 | 0x80);
    Outcome::NoReply
}

/// Ends a process with wait status `status`: closes its files, frees its memory, makes it a
/// zombie for its parent, and hands its children to pid 1.
pub fn terminate(l: &mut Linux, pid: Pid, status: i32) {
    let Some(p) = l.procs.get_mut(&pid) else { return };
    if p.exit_status.is_some() {
        return;
    }
    p.exit_status = Some(status);
    let threads = core::mem::take(&mut p.threads);
    let aspace = p.aspace;
    let mut fds = core::mem::take(&mut p.fds);
    fds.close_all();
    for t in threads {
        l.threads.remove(&t.0);
    }
    let _ = l.k.aspace_destroy(aspace); // kills the threads too
    let children: Vec<Pid> = l.procs.values().filter(|c| c.ppid == pid).map(|c| c.pid).collect();
    for c in children {
        if let Some(child) = l.procs.get_mut(&c) {
            child.ppid = 1;
        }
    }
    let ppid = l.procs.get(&pid).map_or(0, |p| p.ppid);
    // The parent hears about it (SIGCHLD is ignored unless it has a handler).
    crate::sys::signal::send(l, ppid, 17);
    if pid == 1 || ppid == 0 {
        let code = if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) };
        log!("linux: init exited with status {code}; powering off");
        l.k.poweroff(code as u32);
    }
    // Orphaned zombies of init are reaped at once.
    if ppid == 1 && !l.procs.contains_key(&1) {
        l.procs.remove(&pid);
    }
}

/// Builds the child of a fork/clone whose thread has already been created.
pub fn fork_process(l: &mut Linux, parent: Pid, child_as: AspaceRef, thread: ThreadRef) -> Pid {
    let pid = l.next_pid;
    l.next_pid += 1;
    let p = l.procs.get(&parent).expect("caller exists");
    let child = Process {
        pid,
        ppid: parent,
        pgid: p.pgid,
        sid: p.sid,
        aspace: child_as,
        threads: alloc::vec![thread],
        mm: p.mm.clone(),
        fds: p.fds.fork(),
        cwd: p.cwd,
        umask: p.umask,
        sigactions: p.sigactions,
        sigmask: p.sigmask,
        pending: 0,
        exit_status: None,
        exe: p.exe.clone(),
    };
    l.procs.insert(pid, child);
    l.threads.insert(thread.0, pid);
    pid
}

/// Reads a NUL-terminated string from user memory (at most `max` bytes).
pub fn read_cstr(l: &Linux, pid: Pid, mut va: u64, max: usize) -> Result<String, Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let mut out = Vec::new();
    loop {
        let chunk = (PAGE - va % PAGE).min(64) as usize;
        let mut buf = [0u8; 64];
        l.k.aspace_read(p.aspace, va, &mut buf[..chunk]).map_err(|_| Errno::EFAULT)?;
        if let Some(z) = buf[..chunk].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..z]);
            break;
        }
        out.extend_from_slice(&buf[..chunk]);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        va += chunk as u64;
    }
    String::from_utf8(out).map_err(|_| Errno::EINVAL)
}

/// Maps the not-yet-touched pages of `[va, va+len)` that a VMA allows (as a fault would).
pub fn populate(l: &Linux, pid: Pid, va: u64, len: usize, write: bool) -> Result<(), Errno> {
    check_user_range(l, pid, va, len, write)?;
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let end = va.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    let mut page = va & !(PAGE - 1);
    while page < end {
        let v = p.mm.find(page).ok_or(Errno::EFAULT)?;
        if l.k.aspace_read(p.aspace, page, &mut [0u8; 1]).is_err() {
            l.k.aspace_map(p.aspace, page, PAGE, v.prot).map_err(|_| Errno::ENOMEM)?;
        }
        page += PAGE;
    }
    Ok(())
}

/// Checks that `[va, va + len)` lies in VMAs that allow writing (`write`) or reading: a cheap
/// test made *before* an operation consumes anything (a pipe read), so that a bad buffer gives
/// EFAULT and loses no data.
pub fn check_user_range(l: &Linux, pid: Pid, va: u64, len: usize, write: bool) -> Result<(), Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let end = va.checked_add(len as u64).ok_or(Errno::EFAULT)?;
    let mut page = va & !(PAGE - 1);
    while page < end {
        let v = p.mm.find(page).ok_or(Errno::EFAULT)?;
        if (write && !v.prot.write) || (!write && !v.prot.read) {
            return Err(Errno::EFAULT);
        }
        page = v.end.min(end.next_multiple_of(PAGE)).max(page + PAGE);
    }
    Ok(())
}

/// Copies user memory at `va` into `buf` (mapping untouched pages a VMA allows, as a fault
/// would).
pub fn read_into(l: &Linux, pid: Pid, va: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    if l.k.aspace_read(p.aspace, va, buf).is_err() {
        populate(l, pid, va, buf.len(), false)?;
        l.k.aspace_read(p.aspace, va, buf).map_err(|_| Errno::EFAULT)?;
    }
    Ok(())
}

pub fn read_bytes(l: &Linux, pid: Pid, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    if len > 64 << 20 {
        return Err(Errno::EINVAL);
    }
    let mut buf = alloc::vec![0u8; len];
    if l.k.aspace_read(p.aspace, va, &mut buf).is_err() {
        populate(l, pid, va, len, false)?;
        l.k.aspace_read(p.aspace, va, &mut buf).map_err(|_| Errno::EFAULT)?;
    }
    Ok(buf)
}

pub fn write_bytes(l: &Linux, pid: Pid, va: u64, data: &[u8]) -> Result<(), Errno> {
    let p = l.procs.get(&pid).ok_or(Errno::ESRCH)?;
    let aspace = p.aspace;
    // A kernel write must respect the user's rights: only writable VMAs.
    let end = va.checked_add(data.len() as u64).ok_or(Errno::EFAULT)?;
    let mut page = va & !(PAGE - 1);
    while page < end {
        if !p.mm.find(page).is_some_and(|v| v.prot.write) {
            return Err(Errno::EFAULT);
        }
        page += PAGE;
    }
    if l.k.aspace_write(aspace, va, data).is_err() {
        populate(l, pid, va, data.len(), true)?;
        l.k.aspace_write(aspace, va, data).map_err(|_| Errno::EFAULT)?;
    }
    Ok(())
}

pub fn read_u64(l: &Linux, pid: Pid, va: u64) -> Result<u64, Errno> {
    let b = read_bytes(l, pid, va, 8)?;
    Ok(u64::from_le_bytes(b.try_into().map_err(|_| Errno::EFAULT)?))
}
