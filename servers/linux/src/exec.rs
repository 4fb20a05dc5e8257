//! Program loading (execve): `#!` scripts, static ELF executables (ET_EXEC, and ET_DYN without
//! an interpreter, loaded at a fixed bias), and the initial stack the System V ABI prescribes:
//! argc, argv, envp, the auxiliary vector (AT_PHDR, AT_PHNUM, AT_PAGESZ, AT_ENTRY, AT_RANDOM,
//! AT_EXECFN...), the strings, 16 random bytes, and a 16-byte aligned stack pointer.
//!
//! Loaded images are cached (the role Linux's page cache plays for executables): the first
//! exec of a file builds a template address space with its segments and the signal
//! trampoline, and every exec of the same contents starts from a copy-on-write copy of it, so
//! text pages are shared by every process running the program and nothing is copied or zeroed
//! again. An entry is found by the file's id, size and change times (nanoseconds: any write
//! or attribute change moves ctime), so a changed file is loaded afresh and an unchanged one is
//! not even read; the least recently used of [`IMAGE_CACHE`] entries goes when it is full.

use crate::elf;
use crate::process::{Creds, Mm, Rlimit, MMAP_BASE, PAGE, RLIMIT_STACK, RLIM_NLIMITS, SIGPAGE, STACK_TOP};
use crate::Linux;
use abi::proto::{vfs as vfsp, Attr, FileId, Timespec, S_IFMT, S_IFREG};
use abi::Errno;
use alloc::string::String;
use alloc::vec::Vec;
use server_rt::{AspaceRef, Kernel, Prot};

pub struct Image {
    /// The canonical path of the program file (links resolved): /proc/<pid>/exe.
    pub exe: String,
    pub aspace: AspaceRef,
    pub entry: u64,
    pub sp: u64,
    pub mm: Mm,
}

/// Bias for position-independent executables.
const PIE_BASE: u64 = 0x5555_5555_4000;

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_EXECFN: u64 = 31;

/// The largest program this loader reads.
const MAX_PROGRAM: usize = 256 << 20;

/// Bytes read to tell a script (`#!`) from a program and to parse an ELF header.
const HEAD_BYTES: usize = 4096;

/// The executable file at `path`, which `pid` must be allowed to execute: its attributes, its
/// canonical path, and its first bytes (EACCES unless it is a regular file).
fn open_program(l: &mut Linux, pid: crate::Pid, cwd: FileId, path: &str) -> Result<(Attr, String, Vec<u8>), Errno> {
    let walk = vfsp::WALK_FOLLOW | vfsp::WALK_EXEC | vfsp::WALK_ACCESS | vfsp::WALK_PATH;
    l.last_path.clear();
    let attr = l.resolve_file(pid, cwd, path.as_bytes(), walk, Errno::EACCES)?;
    if attr.mode & S_IFMT != S_IFREG {
        return Err(Errno::EACCES);
    }
    let exe = String::from_utf8(core::mem::take(&mut l.last_path)).unwrap_or_else(|_| String::from(path));
    let head = l.read_range(attr.file_id(), 0, HEAD_BYTES)?;
    Ok((attr, if exe.is_empty() { String::from(path) } else { exe }, head))
}

/// How many loaded images are kept.
pub const IMAGE_CACHE: usize = 8;

/// A loaded program kept for the next exec of the same file.
struct Cached {
    file: FileId,
    size: u64,
    mtime: Timespec,
    ctime: Timespec,
    /// Its parsed headers.
    elf: elf::Elf,
    /// The segments and the trampoline page, never run.
    template: AspaceRef,
    /// Their VMAs, and the brk start.
    mm: Mm,
    last_used: u64,
}

/// Loaded images by file (see the module comment).
#[derive(Default)]
pub struct ImageCache {
    entries: Vec<Cached>,
    uses: u64,
}

/// The most stack a program may get (RLIMIT_STACK unlimited or larger than this).
const STACK_RESERVE_MAX: u64 = 4 << 30;

/// What the new program runs as and with.
struct Context<'a> {
    creds: &'a Creds,
    /// The stack's size: RLIMIT_STACK's soft limit.
    stack: u64,
}

/// Who runs the new program: the process, where its relative paths start, its credentials
/// and resource limits.
pub struct Runner<'a> {
    pub pid: crate::Pid,
    pub cwd: FileId,
    pub creds: &'a Creds,
    pub rlimits: &'a [Rlimit; RLIM_NLIMITS],
}

/// Loads `path` into a fresh address space with `argv`/`envp`, for `who` (the stack is
/// RLIMIT_STACK big). Interprets `#!` lines (up to four levels).
pub fn load(l: &mut Linux, who: &Runner, path: &str, argv: &[String], envp: &[String]) -> Result<Image, Errno> {
    let (pid, cwd, creds, rlimits) = (who.pid, who.cwd, who.creds, who.rlimits);
    let stack = rlimits[RLIMIT_STACK].0.clamp(16 * PAGE, STACK_RESERVE_MAX) & !(PAGE - 1);
    let cx = Context { creds, stack };
    let mut path = String::from(path);
    let mut argv: Vec<String> = argv.to_vec();
    for _ in 0..4 {
        let (attr, exe, data) = open_program(l, pid, cwd, &path)?;
        if data.starts_with(b"#!") {
            let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len()).min(256);
            let line = core::str::from_utf8(&data[2..line_end]).map_err(|_| Errno::ENOEXEC)?.trim();
            let (interp, arg) = match line.split_once(char::is_whitespace) {
                Some((i, a)) => (i, Some(a.trim())),
                None => (line, None),
            };
            if interp.is_empty() {
                return Err(Errno::ENOEXEC);
            }
            let mut new_argv = alloc::vec![String::from(interp)];
            if let Some(a) = arg.filter(|a| !a.is_empty()) {
                new_argv.push(String::from(a));
            }
            new_argv.push(path.clone());
            new_argv.extend(argv.iter().skip(1).cloned());
            argv = new_argv;
            path = String::from(interp);
            continue;
        }
        let k = l.k;
        l.images.uses += 1;
        let now = l.images.uses;
        let key = |c: &Cached| {
            c.file == attr.file_id() && c.size == attr.size && c.mtime == attr.mtime && c.ctime == attr.ctime
        };
        let found = l.images.entries.iter_mut().find(|c| key(c));
        let (template, mm, e) = match found {
            Some(c) => {
                c.last_used = now;
                (c.template, c.mm.clone(), c.elf.clone())
            }
            None => {
                let data = l.read_all(attr.file_id(), MAX_PROGRAM)?;
                let e = elf::parse(&data, abi::syscall::layout::ELF_MACHINE).ok_or(Errno::ENOEXEC)?;
                if e.interp.is_some() {
                    // Dynamic executables need the loader mapped too: not yet (docs/caveats.md).
                    return Err(Errno::ENOEXEC);
                }
                let bias = if e.dynamic { PIE_BASE } else { 0 };
                let template = k.aspace_create().map_err(|_| Errno::ENOMEM)?;
                let mm = match build_template(k, template, &e, bias, &data) {
                    Ok(mm) => mm,
                    Err(err) => {
                        let _ = k.aspace_destroy(template);
                        return Err(err);
                    }
                };
                let cache = &mut l.images;
                if cache.entries.len() >= IMAGE_CACHE {
                    if let Some(i) = (0..cache.entries.len()).min_by_key(|&i| cache.entries[i].last_used) {
                        let _ = k.aspace_destroy(cache.entries.swap_remove(i).template);
                    }
                }
                cache.entries.push(Cached {
                    file: attr.file_id(),
                    size: attr.size,
                    mtime: attr.mtime,
                    ctime: attr.ctime,
                    elf: e.clone(),
                    template,
                    mm: mm.clone(),
                    last_used: now,
                });
                (template, mm, e)
            }
        };
        let bias = if e.dynamic { PIE_BASE } else { 0 };
        let aspace = k.aspace_copy(template, &[]).map_err(|e| match e {
            server_rt::MemError::Limit => Errno::EAGAIN,
            _ => Errno::ENOMEM,
        })?;
        let result = finish(k, aspace, mm, &e, bias, &path, &argv, envp, &cx);
        if result.is_err() {
            let _ = k.aspace_destroy(aspace);
        }
        return result.map(|image| Image { exe, ..image });
    }
    Err(Errno::ELOOP)
}

/// Loads the segments of `e` and the signal trampoline page into `aspace`; returns their VMAs.
fn build_template(k: &dyn Kernel, aspace: AspaceRef, e: &elf::Elf, bias: u64, data: &[u8]) -> Result<Mm, Errno> {
    let mut mm = Mm { mmap_next: MMAP_BASE, ..Default::default() };
    let mut top = 0;
    for s in e.loads() {
        let start = (s.vaddr + bias) & !(PAGE - 1);
        let end = (s.vaddr + bias + s.mem_size).next_multiple_of(PAGE);
        k.aspace_map(aspace, start, end - start, Prot { read: true, write: true, exec: true })
            .map_err(|_| Errno::ENOMEM)?;
        let file = &data[s.offset as usize..(s.offset + s.file_size) as usize];
        k.aspace_write(aspace, s.vaddr + bias, file).map_err(|_| Errno::ENOEXEC)?;
        top = top.max(end);
    }
    // Final rights: the union over segments that share a page.
    for s in e.loads() {
        let start = (s.vaddr + bias) & !(PAGE - 1);
        let end = (s.vaddr + bias + s.mem_size).next_multiple_of(PAGE);
        let mut prot = Prot { read: s.read, write: s.write, exec: s.exec };
        for o in e.loads() {
            let (os, oe) = ((o.vaddr + bias) & !(PAGE - 1), (o.vaddr + bias + o.mem_size).next_multiple_of(PAGE));
            if os < end && start < oe && (o.vaddr != s.vaddr) {
                prot.read |= o.read;
                prot.write |= o.write;
                prot.exec |= o.exec;
            }
        }
        k.aspace_protect(aspace, start, end - start, prot).map_err(|_| Errno::ENOMEM)?;
        mm.add(start, end, prot);
    }
    mm.brk_start = top;
    mm.brk = top;

    // The signal trampoline page (Linux's vDSO `sigreturn`), for handlers without a restorer.
    let rx = Prot { read: true, write: false, exec: true };
    k.aspace_map(aspace, SIGPAGE, PAGE, Prot { read: true, write: true, exec: false }).map_err(|_| Errno::ENOMEM)?;
    k.aspace_write(aspace, SIGPAGE, abi::syscall::layout::SIGRETURN_TRAMPOLINE).map_err(|_| Errno::ENOMEM)?;
    k.aspace_protect(aspace, SIGPAGE, PAGE, rx).map_err(|_| Errno::ENOMEM)?;
    mm.add(SIGPAGE, SIGPAGE + PAGE, rx);
    Ok(mm)
}

/// Completes a new image: the stack with the strings, the random bytes and the pointer block.
#[allow(clippy::too_many_arguments)]
fn finish(
    k: &dyn Kernel,
    aspace: AspaceRef,
    mut mm: Mm,
    e: &elf::Elf,
    bias: u64,
    path: &str,
    argv: &[String],
    envp: &[String],
    cx: &Context,
) -> Result<Image, Errno> {
    let rw = Prot { read: true, write: true, exec: false };
    // The stack: the whole limit is a VMA (mapped on fault); the top pages are mapped now.
    mm.add(STACK_TOP - cx.stack, STACK_TOP, rw);
    let initial = (32 * PAGE).min(cx.stack);
    k.aspace_map(aspace, STACK_TOP - initial, initial, rw).map_err(|_| Errno::ENOMEM)?;

    // Strings at the top, then the random bytes, then the pointer block.
    let mut strings: Vec<u8> = Vec::new();
    let mut offsets = Vec::new();
    for s in argv.iter().chain(envp.iter()) {
        offsets.push(strings.len() as u64);
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
    }
    let execfn_off = strings.len() as u64;
    strings.extend_from_slice(path.as_bytes());
    strings.push(0);
    // Linux allows arguments and environment a quarter of the stack limit; the strings must
    // also fit in the pages mapped now.
    if strings.len() as u64 > (initial / 2).min(cx.stack / 4) {
        return Err(Errno::E2BIG);
    }
    let strings_at = (STACK_TOP - strings.len() as u64) & !15;
    let random_at = strings_at - 16;
    let mut random = [0u8; 16];
    let seed = k.now_ns() ^ 0x9e37_79b9_7f4a_7c15;
    for (i, b) in random.iter_mut().enumerate() {
        *b = (seed.rotate_left(i as u32 * 7) >> (i % 8)) as u8;
    }
    let phdr = e.phdr_vaddr().map_or(0, |v| v + bias);
    let auxv: [(u64, u64); 17] = [
        (AT_PHDR, phdr),
        (AT_PHENT, e.phentsize),
        (AT_PHNUM, e.phnum),
        (AT_PAGESZ, PAGE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, e.entry + bias),
        (AT_UID, cx.creds.ruid as u64),
        (AT_EUID, cx.creds.euid as u64),
        (AT_GID, cx.creds.rgid as u64),
        (AT_EGID, cx.creds.egid as u64),
        (AT_HWCAP, 0),
        (AT_CLKTCK, 100),
        (AT_SECURE, 0),
        (AT_RANDOM, random_at),
        (AT_EXECFN, strings_at + execfn_off),
        (AT_NULL, 0),
    ];
    let words = 1 + argv.len() + 1 + envp.len() + 1 + auxv.len() * 2;
    let sp = (random_at - words as u64 * 8) & !15;
    let mut block: Vec<u8> = Vec::with_capacity(words * 8);
    let mut push = |v: u64| block.extend_from_slice(&v.to_le_bytes());
    push(argv.len() as u64);
    for off in &offsets[..argv.len()] {
        push(strings_at + off);
    }
    push(0);
    for off in &offsets[argv.len()..] {
        push(strings_at + off);
    }
    push(0);
    for (key, val) in auxv {
        push(key);
        push(val);
    }
    k.aspace_write(aspace, strings_at, &strings).map_err(|_| Errno::EFAULT)?;
    k.aspace_write(aspace, random_at, &random).map_err(|_| Errno::EFAULT)?;
    k.aspace_write(aspace, sp, &block).map_err(|_| Errno::EFAULT)?;
    Ok(Image { exe: String::new(), aspace, entry: e.entry + bias, sp, mm })
}
