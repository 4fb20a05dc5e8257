//! Open files and file-descriptor tables. An open file description (offset, status flags) is
//! shared between descriptors made by dup/fork, as on Linux; the close-on-exec flag belongs to
//! the descriptor. Pipes are bounded buffers that count their readers and writers, so that a
//! reader sees end-of-file when the last writer closes and a writer gets EPIPE when no reader is
//! left.

use crate::fs::{Fs, Ino};
use abi::Errno;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

pub const PIPE_CAPACITY: usize = 64 * 1024;
/// The most descriptors a process may have (Linux's default fs.nr_open).
pub const MAX_FDS: usize = 1 << 20;

pub struct Pipe {
    pub buf: VecDeque<u8>,
    pub readers: usize,
    pub writers: usize,
}

pub enum Object {
    /// A node of the file tree (regular file, directory, device, console).
    Node(Ino),
    PipeRead(Rc<RefCell<Pipe>>),
    PipeWrite(Rc<RefCell<Pipe>>),
}

pub struct OpenFile {
    pub object: Object,
    pub offset: u64,
    /// O_ACCMODE | O_APPEND | O_NONBLOCK ...
    pub flags: u32,
}

pub type FileRef = Rc<RefCell<OpenFile>>;

#[derive(Clone)]
pub struct Fd {
    pub file: FileRef,
    pub cloexec: bool,
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

fn opened(object: &Object) {
    match object {
        Object::PipeRead(p) => p.borrow_mut().readers += 1,
        Object::PipeWrite(p) => p.borrow_mut().writers += 1,
        Object::Node(_) => {}
    }
}

impl FdTable {
    pub fn new() -> FdTable {
        FdTable { fds: Vec::new(), limit: 1024 }
    }

    /// Opens the console as fds 0, 1 and 2.
    pub fn install_console(&mut self, fs: &mut Fs) {
        let console = fs.lookup(crate::fs::ROOT, "/dev/console", true).unwrap_or(crate::fs::ROOT);
        let file = Rc::new(RefCell::new(OpenFile { object: Object::Node(console), offset: 0, flags: 2 }));
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
    pub fn open(&mut self, object: Object, flags: u32, cloexec: bool) -> Result<u64, Errno> {
        opened(&object);
        let file = Rc::new(RefCell::new(OpenFile { object, offset: 0, flags }));
        let r = self.insert(Fd { file: file.clone(), cloexec }, 0);
        if r.is_err() {
            release(&file);
        }
        r
    }

    /// Puts a copy of `fd` at exactly `slot` (closing what was there): dup2/dup3.
    pub fn place(&mut self, fd: Fd, slot: u64, fs: &mut Fs) -> Result<u64, Errno> {
        if slot as usize >= self.limit.min(MAX_FDS) {
            return Err(Errno::EBADF);
        }
        let _ = self.close(slot, fs);
        if self.fds.len() <= slot as usize {
            self.fds.resize(slot as usize + 1, None);
        }
        self.fds[slot as usize] = Some(fd);
        Ok(slot)
    }

    pub fn close(&mut self, fd: u64, _fs: &mut Fs) -> Result<(), Errno> {
        let slot = self.fds.get_mut(fd as usize).ok_or(Errno::EBADF)?;
        let f = slot.take().ok_or(Errno::EBADF)?;
        if Rc::strong_count(&f.file) == 1 {
            release(&f.file);
        }
        Ok(())
    }

    pub fn close_all(&mut self, fs: &mut Fs) {
        for i in 0..self.fds.len() {
            let _ = self.close(i as u64, fs);
        }
    }

    /// Closes the descriptors marked close-on-exec.
    pub fn close_on_exec(&mut self, fs: &mut Fs) {
        for i in 0..self.fds.len() {
            if self.fds[i].as_ref().is_some_and(|f| f.cloexec) {
                let _ = self.close(i as u64, fs);
            }
        }
    }

    /// The table a forked child starts with: the same open files.
    pub fn fork(&self, _fs: &mut Fs) -> FdTable {
        FdTable { fds: self.fds.clone(), limit: self.limit }
    }
}

/// The last descriptor of an open file went away.
fn release(file: &FileRef) {
    match &file.borrow().object {
        Object::PipeRead(p) => p.borrow_mut().readers -= 1,
        Object::PipeWrite(p) => p.borrow_mut().writers -= 1,
        Object::Node(_) => {}
    }
}

pub fn new_pipe() -> (Object, Object) {
    let p = Rc::new(RefCell::new(Pipe { buf: VecDeque::new(), readers: 0, writers: 0 }));
    (Object::PipeRead(p.clone()), Object::PipeWrite(p))
}
