//! Open files and file-descriptor tables. An open file description (offset, status flags) is
//! shared between descriptors made by dup/fork, as on Linux; the close-on-exec flag belongs to
//! the descriptor. What a description refers to ([`Object`]) is a file of a file-system server
//! (named by its `FileId`), a device this server drives itself (null, zero, full, random) or
//! forwards (the terminal, to `tty`), a node of the pseudo file systems this server generates
//! (`/proc`, `/sys`), or one end of a pipe.
//!
//! Pipes are bounded buffers that count their readers and writers, so that a reader sees
//! end-of-file when the last writer closes and a writer gets EPIPE when no reader is left. A
//! FIFO (a named pipe) is the same buffer, found through its file: every open of the file
//! shares one while any end of it is open (`sys::fifo`).
//! When the last reference to a description of a file goes away (close, dup2 over it, exec's
//! close-on-exec, exit), its `FileId` goes on the release queue; the server loop tells the file
//! system (`fs::RELEASE`), which frees an unlinked file on its last close.

use abi::proto::FileId;
use abi::Errno;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

pub const PIPE_CAPACITY: usize = 64 * 1024;
/// The most descriptors a process may have (Linux's default fs.nr_open).
pub const MAX_FDS: usize = 1 << 20;

/// Writes of at most this many bytes go into a pipe whole or not at all (Linux's PIPE_BUF).
pub const PIPE_BUF: usize = 4096;

/// A pipe's bytes: a ring of [`PIPE_CAPACITY`] bytes, allocated (zeroed) at the first write
/// and never resized, so that a write copies the user's bytes straight into free space instead
/// of first zero-filling it (a `VecDeque` grows by `resize`): at 64 KiB per write that
/// zeroing was a quarter of the guest instructions of moving 64 MiB through a pipe.
#[derive(Default)]
pub struct PipeBuf {
    ring: Vec<u8>,
    head: usize,
    len: usize,
}

impl PipeBuf {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `n` bytes (at most the free space) that `fill` writes straight into the ring, in
    /// at most two pieces (`fill(offset in the n bytes, piece)`). If `fill` fails, nothing is
    /// appended.
    pub fn push_with<E>(&mut self, n: usize, mut fill: impl FnMut(usize, &mut [u8]) -> Result<(), E>) -> Result<(), E> {
        let n = n.min(PIPE_CAPACITY - self.len);
        if self.ring.is_empty() {
            self.ring = alloc::vec![0; PIPE_CAPACITY];
        }
        let tail = (self.head + self.len) % PIPE_CAPACITY;
        let first = n.min(PIPE_CAPACITY - tail);
        fill(0, &mut self.ring[tail..tail + first])?;
        if n > first {
            fill(first, &mut self.ring[..n - first])?;
        }
        self.len += n;
        Ok(())
    }

    /// Removes the first `n` bytes (at most the length) after `sink` took them, in at most two
    /// pieces; if `sink` fails, nothing is removed.
    pub fn pop_with<E>(&mut self, n: usize, mut sink: impl FnMut(usize, &[u8]) -> Result<(), E>) -> Result<(), E> {
        let n = n.min(self.len);
        let first = n.min(PIPE_CAPACITY - self.head);
        sink(0, &self.ring[self.head..self.head + first])?;
        if n > first {
            sink(first, &self.ring[..n - first])?;
        }
        self.head = (self.head + n) % PIPE_CAPACITY;
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct Pipe {
    pub buf: PipeBuf,
    pub readers: usize,
    pub writers: usize,
    /// How many read and write ends were ever opened: an open of a FIFO that waits for the
    /// other side is satisfied by an open that came and went (as Linux's counters do it).
    pub reads_opened: u64,
    pub writes_opened: u64,
    /// The FIFO this is the buffer of (None for pipe(2)).
    pub fifo: Option<FileId>,
    /// Bumped by every write (`in_seq`) and read (`out_seq`): edge-triggered epoll sees each
    /// as an event for the side it wakes.
    pub in_seq: u64,
    pub out_seq: u64,
}

impl Pipe {
    /// Appends `n` bytes that `fill` writes straight into the buffer's free space (at most two
    /// pieces: the ring may wrap). If `fill` fails, nothing is appended.
    pub fn push_with<E>(&mut self, n: usize, fill: impl FnMut(usize, &mut [u8]) -> Result<(), E>) -> Result<(), E> {
        self.buf.push_with(n, fill)?;
        self.in_seq += 1;
        Ok(())
    }

    /// Removes the first `n` bytes after `sink` took them (in at most two pieces); if `sink`
    /// fails, nothing is removed.
    pub fn pop_with<E>(&mut self, n: usize, sink: impl FnMut(usize, &[u8]) -> Result<(), E>) -> Result<(), E> {
        self.buf.pop_with(n, sink)?;
        self.out_seq += 1;
        Ok(())
    }

    /// Appends `data` (at most the free space: callers check).
    pub fn extend(&mut self, data: &[u8]) {
        let _ = self.push_with(data.len(), |at, piece| {
            piece.copy_from_slice(&data[at..at + piece.len()]);
            Ok::<(), ()>(())
        });
    }
}

/// Devices the Linux server implements itself, by their device numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// 1,3
    Null,
    /// 1,5
    Zero,
    /// 1,7: reads zeros, writes fail with ENOSPC.
    Full,
    /// 1,8 and 1,9
    Random,
    /// 5,0 / 5,1 / 4,64: the console, served by `tty`.
    Tty,
}

impl Device {
    /// The device a character-special file's number names, if this kernel has it.
    pub fn from_rdev(rdev: u64) -> Option<Device> {
        Some(match (abi::proto::major(rdev), abi::proto::minor(rdev)) {
            (1, 3) => Device::Null,
            (1, 5) => Device::Zero,
            (1, 7) => Device::Full,
            (1, 8) | (1, 9) => Device::Random,
            (5, 0) | (5, 1) | (4, 64) => Device::Tty,
            _ => return None,
        })
    }
}

pub enum Object {
    /// A file of a file-system server; `mode` is its type and permissions when opened.
    File { id: FileId, mode: u32 },
    /// A character device (`node`: the device file it was opened through, for fstat).
    Device { dev: Device, node: Option<FileId> },
    /// A node of `/proc` or `/sys`, generated by this server.
    Pseudo(crate::pseudo::Node),
    /// An end of a pipe or FIFO; a FIFO opened O_RDWR is both.
    Pipe { pipe: Rc<RefCell<Pipe>>, read: bool, write: bool },
    /// An object with no file behind it (Linux's anonymous inodes).
    Anon(Anon),
    /// A Unix domain socket.
    Socket(crate::sys::unix::SocketRef),
}

/// The anonymous-inode objects, each kept by the descriptions that share it.
#[derive(Clone)]
pub enum Anon {
    EventFd(Rc<RefCell<crate::sys::eventfd::EventFd>>),
    TimerFd(Rc<RefCell<crate::sys::timerfd::TimerFd>>),
    SignalFd(Rc<RefCell<crate::sys::signalfd::SignalFd>>),
    Epoll(Rc<RefCell<crate::sys::epoll::Epoll>>),
}

/// An object this server implements itself, taken out of an open file (a clone, so that no
/// borrow of the description is held while it is served).
pub enum Local {
    Socket(crate::sys::unix::SocketRef),
    Anon(Anon),
}

pub fn local_object(file: &FileRef) -> Option<Local> {
    match &file.borrow().object {
        Object::Socket(s) => Some(Local::Socket(s.clone())),
        Object::Anon(a) => Some(Local::Anon(a.clone())),
        _ => None,
    }
}

impl Anon {
    /// The name /proc/<pid>/fd shows (`anon_inode:[eventfd]`...).
    pub fn name(&self) -> &'static str {
        match self {
            Anon::EventFd(_) => "[eventfd]",
            Anon::TimerFd(_) => "[timerfd]",
            Anon::SignalFd(_) => "[signalfd]",
            Anon::Epoll(_) => "[eventpoll]",
        }
    }
}

/// Files whose last open description went away, for the file systems to hear of.
pub type ReleaseQueue = Rc<RefCell<Vec<FileId>>>;

pub struct OpenFile {
    pub object: Object,
    pub offset: u64,
    /// O_ACCMODE | O_APPEND | O_NONBLOCK ...
    pub flags: u32,
    /// For directories read with getdents64: the file system's cookie of the next entry.
    pub dir_cookie: u64,
    release: Option<ReleaseQueue>,
}

impl OpenFile {
    /// A description of `object`; files are announced to `release` when it goes away.
    pub fn new(object: Object, flags: u32, release: &ReleaseQueue) -> OpenFile {
        if let Object::Pipe { pipe, read, write } = &object {
            let mut p = pipe.borrow_mut();
            if *read {
                p.readers += 1;
                p.reads_opened += 1;
            }
            if *write {
                p.writers += 1;
                p.writes_opened += 1;
            }
        }
        let release = matches!(object, Object::File { .. }).then(|| release.clone());
        OpenFile { object, offset: 0, flags, dir_cookie: 0, release }
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        match &self.object {
            Object::Pipe { pipe, read, write } => {
                let mut p = pipe.borrow_mut();
                p.readers -= usize::from(*read);
                p.writers -= usize::from(*write);
            }
            Object::File { id, .. } => {
                if let Some(q) = &self.release {
                    q.borrow_mut().push(*id);
                }
            }
            _ => {}
        }
    }
}

pub type FileRef = Rc<RefCell<OpenFile>>;

#[derive(Clone)]
pub struct Fd {
    pub file: FileRef,
    pub cloexec: bool,
}

impl Fd {
    /// The file a regular-file descriptor names (what record locks are on).
    pub fn file_id(&self) -> Option<FileId> {
        match self.file.borrow().object {
            Object::File { id, .. } => Some(id),
            _ => None,
        }
    }
}

pub struct FdTable {
    fds: Vec<Option<Fd>>,
    /// RLIMIT_NOFILE's soft limit: descriptors are below it.
    pub limit: usize,
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable::new()
    }
}

impl FdTable {
    pub fn new() -> FdTable {
        FdTable { fds: Vec::new(), limit: 1024 }
    }

    /// Opens the console as fds 0, 1 and 2.
    pub fn install_console(&mut self, release: &ReleaseQueue) {
        let console = Object::Device { dev: Device::Tty, node: None };
        let file = Rc::new(RefCell::new(OpenFile::new(console, 2, release)));
        for _ in 0..3 {
            let _ = self.insert(Fd { file: file.clone(), cloexec: false }, 0);
        }
    }

    pub fn get(&self, fd: u64) -> Result<&Fd, Errno> {
        self.fds.get(fd as usize).and_then(|f| f.as_ref()).ok_or(Errno::EBADF)
    }

    pub fn get_mut(&mut self, fd: u64) -> Result<&mut Fd, Errno> {
        self.fds.get_mut(fd as usize).and_then(|f| f.as_mut()).ok_or(Errno::EBADF)
    }

    /// Places `fd` in the lowest free slot >= `min`.
    pub fn insert(&mut self, fd: Fd, min: usize) -> Result<u64, Errno> {
        if min > 0 && min >= self.limit.min(MAX_FDS) {
            return Err(Errno::EINVAL); // F_DUPFD at or past RLIMIT_NOFILE
        }
        let slot = (min..self.limit.min(MAX_FDS))
            .find(|&i| self.fds.get(i).is_none_or(|f| f.is_none()))
            .ok_or(Errno::EMFILE)?;
        if self.fds.len() <= slot {
            self.fds.resize(slot + 1, None);
        }
        self.fds[slot] = Some(fd);
        Ok(slot as u64)
    }

    /// A new open file in the lowest free slot.
    pub fn open(&mut self, file: OpenFile, cloexec: bool) -> Result<u64, Errno> {
        self.insert(Fd { file: Rc::new(RefCell::new(file)), cloexec }, 0)
    }

    /// Puts a copy of `fd` at exactly `slot` (closing what was there): dup2/dup3. Returns the
    /// file of the descriptor it closed, if that was a regular file (see [`Fd::file_id`]).
    pub fn place(&mut self, fd: Fd, slot: u64) -> Result<(u64, Option<FileId>), Errno> {
        if slot as usize >= self.limit.min(MAX_FDS) {
            return Err(Errno::EBADF);
        }
        if self.fds.len() <= slot as usize {
            self.fds.resize(slot as usize + 1, None);
        }
        let old = self.fds[slot as usize].replace(fd);
        Ok((slot, old.and_then(|f| f.file_id())))
    }

    /// Closes `fd`; returns its file if it was a regular file.
    pub fn close(&mut self, fd: u64) -> Result<Option<FileId>, Errno> {
        let slot = self.fds.get_mut(fd as usize).ok_or(Errno::EBADF)?;
        Ok(slot.take().ok_or(Errno::EBADF)?.file_id())
    }

    /// Closes everything; returns the regular files it had open.
    pub fn close_all(&mut self) -> Vec<FileId> {
        self.fds.drain(..).flatten().filter_map(|f| f.file_id()).collect()
    }

    /// Closes the descriptors marked close-on-exec; returns the regular files among them.
    pub fn close_on_exec(&mut self) -> Vec<FileId> {
        let mut closed = Vec::new();
        for f in self.fds.iter_mut() {
            if f.as_ref().is_some_and(|f| f.cloexec) {
                closed.extend(f.take().and_then(|f| f.file_id()));
            }
        }
        closed
    }

    /// The table a forked child starts with: the same open files.
    pub fn fork(&self) -> FdTable {
        FdTable { fds: self.fds.clone(), limit: self.limit }
    }

    /// Open descriptors (for /proc/<pid>/fd).
    pub fn open_fds(&self) -> impl Iterator<Item = (u64, &Fd)> {
        self.fds.iter().enumerate().filter_map(|(i, f)| f.as_ref().map(|f| (i as u64, f)))
    }
}

pub fn new_pipe() -> (Object, Object) {
    let p = Rc::new(RefCell::new(Pipe::default()));
    (Object::Pipe { pipe: p.clone(), read: true, write: false }, Object::Pipe { pipe: p, read: false, write: true })
}
