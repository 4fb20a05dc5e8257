//! Program loading (execve): `#!` scripts, ELF executables (ET_EXEC at their addresses, ET_DYN
//! at a fixed bias), dynamic ones with their program interpreter (`PT_INTERP`: the dynamic
//! loader, an ET_DYN loaded below the mmap base, where it starts, told where the program is by
//! AT_PHDR/AT_ENTRY and where it is itself by AT_BASE, as Linux does), and the initial stack
//! the System V ABI prescribes: argc, argv, envp, the auxiliary vector (AT_PHDR, AT_PHNUM,
//! AT_PAGESZ, AT_BASE, AT_ENTRY, AT_RANDOM, AT_EXECFN, AT_SYSINFO_EHDR...), the strings, 16
//! random bytes, and a 16-byte aligned stack pointer. Every image also holds the signal
//! trampoline page and the vDSO (`arch::vdso`, via `Kernel::vdso`) with its clock data page.
//!
//! Loaded images are cached (the role Linux's page cache plays for executables): the first
//! exec of a file builds a template address space with its segments and the signal
//! trampoline, and every exec of the same contents starts from a copy-on-write copy of it, so
//! text pages are shared by every process running the program and nothing is copied or zeroed
//! again. An entry is found by the file's id, size and change times (nanoseconds: any write
//! or attribute change moves ctime), so a changed file is loaded afresh and an unchanged one is
//! not even read; the least recently used of [`IMAGE_CACHE`] entries goes when it is full. A
//! dynamic program's template holds its interpreter too; the interpreter's path is walked
//! again at every exec and its identity compared, so a changed loader is loaded afresh as well.

use crate::elf;
use crate::process::{
    Creds, Mm, Rlimit, MMAP_BASE, PAGE, RLIMIT_STACK, RLIM_NLIMITS, SIGPAGE, STACK_TOP, VDSO_DATA, VDSO_IMAGE,
};
use crate::Linux;
use abi::proto::{vfs as vfsp, Attr, FileId, Timespec, PATH_MAX, S_IFMT, S_IFREG};
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
const AT_SYSINFO_EHDR: u64 = 33;

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

/// The size of an ELF64 file header.
const ELF_HEADER_BYTES: usize = 64;

/// How many loaded images are kept.
pub const IMAGE_CACHE: usize = 8;

/// A file's identity for the cache: a change of contents or attributes changes it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Identity {
    file: FileId,
    size: u64,
    mtime: Timespec,
    ctime: Timespec,
}

impl Identity {
    fn of(a: &Attr) -> Identity {
        Identity { file: a.file_id(), size: a.size, mtime: a.mtime, ctime: a.ctime }
    }
}

/// A dynamic program's interpreter, as loaded into a template.
#[derive(Clone)]
struct Interp {
    path: String,
    id: Identity,
    /// Its load bias (AT_BASE) and its entry point (biased).
    base: u64,
    entry: u64,
}

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
    interp: Option<Interp>,
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
    // Linux follows five levels of `#!` (the sixth nested script is ELOOP).
    for _ in 0..6 {
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
        let (template, mm, e, interp) = image(l, who, &attr)?;
        let bias = if e.dynamic { PIE_BASE } else { 0 };
        let aspace = k.aspace_copy(template, &[]).map_err(|e| match e {
            server_rt::MemError::Limit => Errno::EAGAIN,
            _ => Errno::ENOMEM,
        })?;
        let start = Start {
            entry: interp.as_ref().map_or(e.entry + bias, |i| i.entry),
            base: interp.as_ref().map_or(0, |i| i.base),
        };
        let result = finish(k, aspace, mm, &e, bias, start, &path, &argv, envp, &cx);
        if result.is_err() {
            let _ = k.aspace_destroy(aspace);
        }
        return result.map(|image| Image { exe, ..image });
    }
    Err(Errno::ELOOP)
}

/// The template for the program `attr` (from the cache, or loaded now and cached): the
/// address space, its VMAs, the program's headers and its interpreter.
fn image(l: &mut Linux, who: &Runner, attr: &Attr) -> Result<(AspaceRef, Mm, elf::Elf, Option<Interp>), Errno> {
    let k = l.k;
    l.images.uses += 1;
    let now = l.images.uses;
    let id = Identity::of(attr);
    if let Some(i) = l.images.entries.iter().position(|c| Identity::of_cached(c) == id) {
        // A dynamic program is only as unchanged as its interpreter.
        let still = match l.images.entries[i].interp.clone() {
            Some(interp) => {
                open_program(l, who.pid, who.cwd, &interp.path).map(|(a, ..)| Identity::of(&a)) == Ok(interp.id)
            }
            None => true,
        };
        if still {
            let c = &mut l.images.entries[i];
            c.last_used = now;
            return Ok((c.template, c.mm.clone(), c.elf.clone(), c.interp.clone()));
        }
        let _ = k.aspace_destroy(l.images.entries.swap_remove(i).template);
    }
    let data = l.read_all(attr.file_id(), MAX_PROGRAM)?;
    let e = elf::parse(&data, abi::syscall::layout::ELF_MACHINE).ok_or(Errno::ENOEXEC)?;
    // The interpreter: named by the program, an ELF of this machine itself (ELIBBAD if not).
    let loader = match e.interp {
        Some((offset, len)) => {
            // Linux's rules: a name of 2..=PATH_MAX bytes ending in NUL, EIO if the file is
            // shorter than the header says, then the interpreter's own header (EIO if cut
            // short, ELIBBAD if not an ELF of this machine).
            if !(2..=PATH_MAX as u64).contains(&len) {
                return Err(Errno::ENOEXEC);
            }
            let name = usize::try_from(offset)
                .ok()
                .and_then(|o| data.get(o..o.checked_add(len as usize)?))
                .ok_or(Errno::EIO)?;
            if name.last() != Some(&0) {
                return Err(Errno::ENOEXEC);
            }
            let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
            let path = core::str::from_utf8(name).map_err(|_| Errno::ENOEXEC)?;
            if path.is_empty() {
                return Err(Errno::ENOENT);
            }
            let (iattr, _, _) = open_program(l, who.pid, who.cwd, path)?;
            let idata = l.read_all(iattr.file_id(), MAX_PROGRAM)?;
            if idata.len() < ELF_HEADER_BYTES {
                return Err(Errno::EIO);
            }
            let ie = elf::parse(&idata, abi::syscall::layout::ELF_MACHINE).ok_or(Errno::ELIBBAD)?;
            Some((String::from(path), Identity::of(&iattr), ie, idata))
        }
        None => None,
    };
    let bias = if e.dynamic { PIE_BASE } else { 0 };
    let template = k.aspace_create().map_err(|_| Errno::ENOMEM)?;
    let built = build_template(k, template, &e, bias, &data).and_then(|mut mm| {
        let interp = match &loader {
            Some((path, id, ie, idata)) => {
                let base = load_interpreter(k, template, &mut mm, ie, idata)?;
                Some(Interp { path: path.clone(), id: *id, base, entry: ie.entry + base })
            }
            None => None,
        };
        Ok((mm, interp))
    });
    let (mm, interp) = match built {
        Ok(b) => b,
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
        file: id.file,
        size: id.size,
        mtime: id.mtime,
        ctime: id.ctime,
        elf: e.clone(),
        template,
        mm: mm.clone(),
        interp: interp.clone(),
        last_used: now,
    });
    Ok((template, mm, e, interp))
}

impl Identity {
    fn of_cached(c: &Cached) -> Identity {
        Identity { file: c.file, size: c.size, mtime: c.mtime, ctime: c.ctime }
    }
}

/// Maps the interpreter `ie` below the mmap base of `mm` (top-down, as Linux places it) and
/// loads its segments; returns its load bias. An ET_EXEC interpreter goes at its own
/// addresses, if they are free.
fn load_interpreter(k: &dyn Kernel, aspace: AspaceRef, mm: &mut Mm, ie: &elf::Elf, data: &[u8]) -> Result<u64, Errno> {
    let low = ie.loads().map(|s| s.vaddr & !(PAGE - 1)).min().ok_or(Errno::ELIBBAD)?;
    let high = ie.loads().map(|s| (s.vaddr + s.mem_size).next_multiple_of(PAGE)).max().ok_or(Errno::ELIBBAD)?;
    let bias = if ie.dynamic {
        mm.find_free(high - low).ok_or(Errno::ENOMEM)? - low
    } else if mm.overlaps(low, high) {
        return Err(Errno::ELIBBAD);
    } else {
        0
    };
    load_segments(k, aspace, mm, ie, bias, data)?;
    Ok(bias)
}

/// Maps and fills the PT_LOAD segments of `e` at `bias`, with their final rights (the union
/// over segments that share a page), and records their VMAs; returns the end of the highest.
fn load_segments(
    k: &dyn Kernel,
    aspace: AspaceRef,
    mm: &mut Mm,
    e: &elf::Elf,
    bias: u64,
    data: &[u8],
) -> Result<u64, Errno> {
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
    Ok(top)
}

/// Loads the segments of `e`, the signal trampoline page and the vDSO into `aspace`; returns
/// their VMAs.
fn build_template(k: &dyn Kernel, aspace: AspaceRef, e: &elf::Elf, bias: u64, data: &[u8]) -> Result<Mm, Errno> {
    let mut mm = Mm { mmap_next: MMAP_BASE, ..Default::default() };
    let top = load_segments(k, aspace, &mut mm, e, bias, data)?;
    mm.brk_start = top;
    mm.brk = top;

    // The signal trampoline page (Linux's vDSO `sigreturn`), for handlers without a restorer.
    let rx = Prot { read: true, write: false, exec: true };
    k.aspace_map(aspace, SIGPAGE, PAGE, Prot { read: true, write: true, exec: false }).map_err(|_| Errno::ENOMEM)?;
    k.aspace_write(aspace, SIGPAGE, abi::syscall::layout::SIGRETURN_TRAMPOLINE).map_err(|_| Errno::ENOMEM)?;
    k.aspace_protect(aspace, SIGPAGE, PAGE, rx).map_err(|_| Errno::ENOMEM)?;
    mm.add(SIGPAGE, SIGPAGE + PAGE, rx);

    // The vDSO: its data page (constant for the boot, so each template holds a copy) and the
    // image above it, mapped as the file is.
    let vdso = k.vdso();
    let data: Vec<u8> = vdso.data.iter().flat_map(|w| w.to_le_bytes()).collect();
    let image_end = VDSO_IMAGE + (vdso.image.len() as u64).next_multiple_of(PAGE);
    let ro = Prot { read: true, write: false, exec: false };
    k.aspace_map(aspace, VDSO_DATA, image_end - VDSO_DATA, Prot { read: true, write: true, exec: false })
        .map_err(|_| Errno::ENOMEM)?;
    k.aspace_write(aspace, VDSO_DATA, &data).map_err(|_| Errno::ENOMEM)?;
    k.aspace_write(aspace, VDSO_IMAGE, vdso.image).map_err(|_| Errno::ENOMEM)?;
    k.aspace_protect(aspace, VDSO_DATA, PAGE, ro).map_err(|_| Errno::ENOMEM)?;
    k.aspace_protect(aspace, VDSO_IMAGE, image_end - VDSO_IMAGE, rx).map_err(|_| Errno::ENOMEM)?;
    mm.add(VDSO_DATA, VDSO_IMAGE, ro);
    mm.add(VDSO_IMAGE, image_end, rx);
    Ok(mm)
}

/// Where a new image starts: the program's entry, or its interpreter's (and the
/// interpreter's load bias, AT_BASE; 0 without one).
#[derive(Clone, Copy)]
struct Start {
    entry: u64,
    base: u64,
}

/// Completes a new image: the stack with the strings, the random bytes and the pointer block.
#[allow(clippy::too_many_arguments)]
fn finish(
    k: &dyn Kernel,
    aspace: AspaceRef,
    mut mm: Mm,
    e: &elf::Elf,
    bias: u64,
    start: Start,
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
    let auxv: [(u64, u64); 18] = [
        (AT_SYSINFO_EHDR, VDSO_IMAGE),
        (AT_PHDR, phdr),
        (AT_PHENT, e.phentsize),
        (AT_PHNUM, e.phnum),
        (AT_PAGESZ, PAGE),
        (AT_BASE, start.base),
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
    Ok(Image { exe: String::new(), aspace, entry: start.entry, sp, mm })
}
