//! FIFOs (named pipes): opening a FIFO file gives an end of a pipe buffer this server keeps
//! for that file while any end is open, so that every process opening the same file meets
//! in the same buffer. The file system only stores the node (`mknod`/`mkfifo`); the data
//! never reaches it, as on Linux.
//!
//! Opening follows fifo(7): `O_RDONLY` waits until a writer opens, `O_WRONLY` until a reader
//! does (with `O_NONBLOCK`, a reader opens at once and a writer fails with `ENXIO` if there is
//! no reader), `O_RDWR` opens at once as both. A waiting open already counts as its side's
//! end (the end is made before the wait), so two opens waiting for each other both complete;
//! it completes when the other side has *ever* been opened since it began waiting, even if
//! that end is closed again. The wait is a blocked request (`Outcome::Block`) recorded here by
//! its tag; an interrupted wait ([`forget`]) or a gone thread ([`forget_threads`]) drops the
//! end it held.

use crate::files::{Object, OpenFile, Pipe};
use crate::process::Thread;
use crate::sys::rw::{O_ACCMODE, O_NONBLOCK, O_RDWR, O_WRONLY};
use crate::Linux;
use abi::proto::FileId;
use abi::Errno;
use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

/// An open waiting for the other side.
pub struct Wait {
    tag: u64,
    thread: u64,
    /// The end it opened (counted already), handed over when the wait ends.
    file: OpenFile,
    /// The other side's open count when the wait began.
    seen: u64,
    cloexec: bool,
}

#[derive(Default)]
pub struct Fifos {
    /// The buffer of each FIFO with an end open.
    buffers: BTreeMap<FileId, Weak<RefCell<Pipe>>>,
    waits: Vec<Wait>,
}

/// What an open of FIFO `id` with `flags` gives: the end at once, or one that must wait for
/// the other side first (`Ok((file, Some(seen)))`).
pub fn open(l: &mut Linux, id: FileId, flags: u32, status: u32) -> Result<(OpenFile, Option<u64>), Errno> {
    let fifos = &mut l.fifos;
    fifos.buffers.retain(|_, b| b.strong_count() > 0);
    let pipe = match fifos.buffers.get(&id).and_then(Weak::upgrade) {
        Some(p) => p,
        None => {
            let p = Rc::new(RefCell::new(Pipe { fifo: Some(id), ..Pipe::default() }));
            fifos.buffers.insert(id, Rc::downgrade(&p));
            p
        }
    };
    let nonblock = flags & O_NONBLOCK != 0;
    let (read, write) = match flags & O_ACCMODE {
        O_RDWR => (true, true),
        O_WRONLY => (false, true),
        _ => (true, false),
    };
    let (readers, writes_opened, reads_opened) = {
        let p = pipe.borrow();
        (p.readers, p.writes_opened, p.reads_opened)
    };
    if write && !read && nonblock && readers == 0 {
        return Err(Errno::ENXIO);
    }
    let wait = match (read, write) {
        (true, true) => None,
        (true, false) if !nonblock && pipe.borrow().writers == 0 => Some(writes_opened),
        (false, true) if readers == 0 => Some(reads_opened),
        _ => None,
    };
    let file = OpenFile::new(Object::Pipe { pipe, read, write }, status, &l.releases);
    Ok((file, wait))
}

/// Makes request `tag` wait with the end `file` until the other side's count passes `seen`.
pub fn wait(l: &mut Linux, tag: u64, thread: u64, file: OpenFile, seen: u64, cloexec: bool) {
    l.fifos.waits.push(Wait { tag, thread, file, seen, cloexec });
}

/// Whether request `tag` is a waiting FIFO open, and if its wait is over, the end it opened.
pub enum Waiting {
    No,
    Still,
    Done(OpenFile, bool),
}

pub fn waiting(l: &mut Linux, tag: u64) -> Waiting {
    let Some(i) = l.fifos.waits.iter().position(|w| w.tag == tag) else { return Waiting::No };
    let w = &l.fifos.waits[i];
    let over = match &w.file.object {
        Object::Pipe { pipe, read, .. } => {
            let p = pipe.borrow();
            if *read {
                p.writes_opened != w.seen
            } else {
                p.reads_opened != w.seen
            }
        }
        _ => true,
    };
    if !over {
        return Waiting::Still;
    }
    let w = l.fifos.waits.remove(i);
    Waiting::Done(w.file, w.cloexec)
}

/// Forgets the wait of request `tag` (it was interrupted): its end closes.
pub fn forget(l: &mut Linux, tag: u64) {
    l.fifos.waits.retain(|w| w.tag != tag);
}

/// Forgets the waits of threads that are gone.
pub fn forget_threads(l: &mut Linux, threads: &[Thread]) {
    l.fifos.waits.retain(|w| !threads.iter().any(|t| t.r.0 == w.thread));
}
