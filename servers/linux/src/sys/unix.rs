//! Unix domain sockets (unix(7)): `SOCK_STREAM`, `SOCK_DGRAM` and `SOCK_SEQPACKET` sockets
//! between processes, named by a file (a socket node made in the file system at `bind`), by
//! an abstract name (a leading NUL byte), or by nothing (`socketpair`), carrying data,
//! descriptors (`SCM_RIGHTS`) and credentials (`SCM_CREDENTIALS`, `SO_PEERCRED`).
//!
//! Everything lives in this server, like pipes: a socket is a receive queue of packets (data,
//! the descriptions passed with it, the sender's credentials and name) and a weak link to
//! its peer; a connection to a listener makes the server side at `connect` and queues it on
//! the listener until `accept`. Stream sockets read across packets (but not past one that
//! carries descriptors), datagram and seqpacket sockets a packet per call. A socket goes
//! when its last description does: its peer sees end-of-file (stream) or ECONNREFUSED
//! (datagram), its name is free again (abstract) or names nothing (the file stays, as on
//! Linux). Waits are blocked requests, as everywhere in this server.
//!
//! Other families (AF_INET, AF_INET6, AF_NETLINK...) are EAFNOSUPPORT: there is no network
//! stack yet.

use crate::files::{Fd, FileRef, Object};
use crate::process::{read_bytes, word_at, write_bytes};
use crate::sys::rw::{file_of, O_NONBLOCK};
use crate::{Ctx, Linux, Outcome, Pid};
use abi::proto::{vfs as vfsp, FileId, S_IFSOCK};
use abi::Errno;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;

const AF_UNIX: u64 = 1;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const SOCK_RAW: u64 = 3;
const SOCK_SEQPACKET: u64 = 5;
const SOCK_NONBLOCK: u64 = 0o4000;
const SOCK_CLOEXEC: u64 = 0o2000000;

const MSG_PEEK: u64 = 2;
const MSG_CTRUNC: u32 = 8;
const MSG_TRUNC: u64 = 0x20;
const MSG_DONTWAIT: u64 = 0x40;
const MSG_NOSIGNAL: u64 = 0x4000;
const MSG_CMSG_CLOEXEC: u64 = 0x4000_0000;

const SOL_SOCKET: u64 = 1;
const SCM_RIGHTS: u32 = 1;
const SCM_CREDENTIALS: u32 = 2;
const SO_TYPE: u64 = 3;
const SO_ERROR: u64 = 4;
const SO_SNDBUF: u64 = 7;
const SO_RCVBUF: u64 = 8;
const SO_PASSCRED: u64 = 16;
const SO_PEERCRED: u64 = 17;
const SO_ACCEPTCONN: u64 = 30;
const SO_PROTOCOL: u64 = 38;
const SO_DOMAIN: u64 = 39;

/// What a socket's queue holds before senders wait (Linux's default buffer size).
pub const SOCKET_BUFFER: usize = 212_992;
/// The most descriptors one message may pass (Linux's SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;
/// `sun_path`'s size.
const SUN_PATH: usize = 108;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Stream,
    Dgram,
    SeqPacket,
}

impl Kind {
    fn number(self) -> u64 {
        match self {
            Kind::Stream => SOCK_STREAM,
            Kind::Dgram => SOCK_DGRAM,
            Kind::SeqPacket => SOCK_SEQPACKET,
        }
    }

    fn connection(self) -> bool {
        self != Kind::Dgram
    }
}

/// `struct ucred`.
#[derive(Clone, Copy, Default)]
pub struct Ucred {
    pub pid: Pid,
    pub uid: u32,
    pub gid: u32,
}

pub type SocketRef = Rc<RefCell<Socket>>;

pub enum State {
    Unconnected,
    Listening { backlog: usize, queue: VecDeque<SocketRef> },
    Connected { peer: Weak<RefCell<Socket>> },
}

/// What one send delivered.
pub struct Packet {
    data: Vec<u8>,
    /// Bytes of `data` already read (stream sockets read packets in pieces).
    read: usize,
    fds: Vec<FileRef>,
    cred: Ucred,
    from: Option<Vec<u8>>,
}

pub struct Socket {
    pub kind: Kind,
    pub state: State,
    /// The name it is bound to (`sun_path` bytes; abstract ones start with 0).
    pub name: Option<Vec<u8>>,
    rx: VecDeque<Packet>,
    rx_bytes: usize,
    /// shutdown(2) of this end: no more reading, no more writing.
    shut_rd: bool,
    shut_wr: bool,
    /// A connection was made (so a gone peer is end-of-file, not "not connected").
    was_connected: bool,
    /// Who made it (creds at socket/connect time), and who is at the other end.
    cred: Ucred,
    peer_cred: Option<Ucred>,
    pass_cred: bool,
    /// Bumped by every packet queued (`in_seq`) and taken (`out_seq`), for edge-triggered epoll.
    pub in_seq: u64,
    pub out_seq: u64,
}

impl Socket {
    fn new(kind: Kind, cred: Ucred) -> Socket {
        Socket {
            kind,
            state: State::Unconnected,
            name: None,
            rx: VecDeque::new(),
            rx_bytes: 0,
            shut_rd: false,
            shut_wr: false,
            was_connected: false,
            cred,
            peer_cred: None,
            pass_cred: false,
            in_seq: 0,
            out_seq: 0,
        }
    }

    fn peer(&self) -> Option<SocketRef> {
        match &self.state {
            State::Connected { peer } => peer.upgrade(),
            _ => None,
        }
    }

    fn room(&self) -> usize {
        SOCKET_BUFFER.saturating_sub(self.rx_bytes)
    }

    /// Nothing more will arrive: the peer is gone or shut its writing side.
    fn at_eof(&self) -> bool {
        self.shut_rd || (self.was_connected && self.peer().is_none_or(|p| p.borrow().shut_wr))
    }
}

/// Where names lead: socket files by their node, abstract names by their bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameKey {
    File(FileId),
    Abstract(Vec<u8>),
}

#[derive(Default)]
pub struct Names {
    bound: BTreeMap<NameKey, Weak<RefCell<Socket>>>,
}

/// The poll(2) events of socket `s`.
pub fn readiness(s: &SocketRef) -> u16 {
    const POLLIN: u16 = 1;
    const POLLOUT: u16 = 4;
    const POLLHUP: u16 = 0x10;
    const POLLRDHUP: u16 = 0x2000;
    let s = s.borrow();
    let mut rev = 0;
    if let State::Listening { queue, .. } = &s.state {
        return if queue.is_empty() { 0 } else { POLLIN };
    }
    if !s.rx.is_empty() || s.at_eof() {
        rev |= POLLIN;
    }
    let peer = s.peer();
    if s.was_connected && peer.as_ref().is_none_or(|p| p.borrow().shut_wr) {
        rev |= POLLRDHUP;
    }
    if s.kind.connection() && s.was_connected && (peer.is_none() || (s.shut_wr && s.at_eof())) {
        rev |= POLLHUP;
    }
    let writable = match &peer {
        Some(p) => !s.shut_wr && p.borrow().room() > 0,
        None => s.kind == Kind::Dgram && !s.was_connected,
    };
    if writable || (s.was_connected && peer.is_none()) {
        rev |= POLLOUT;
    }
    rev
}

fn caller_cred(l: &Linux, pid: Pid) -> Ucred {
    let p = l.procs.get(&pid);
    Ucred { pid, uid: p.map_or(0, |p| p.creds.euid), gid: p.map_or(0, |p| p.creds.egid) }
}

fn socket_of(l: &Linux, c: &Ctx, fd: u64) -> Result<(FileRef, SocketRef), Errno> {
    let file = file_of(l, c, fd)?;
    let s = match &file.borrow().object {
        Object::Socket(s) => s.clone(),
        _ => return Err(Errno::ENOTSOCK),
    };
    Ok((file, s))
}

fn install(l: &mut Linux, c: &Ctx, s: SocketRef, flags: u64) -> Result<u64, Errno> {
    crate::sys::open::install_object(l, c.pid, Object::Socket(s), flags)
}

/// The kind and flags of a `type` argument.
fn kind_of(domain: u64, ty: u64, protocol: u64) -> Result<(Kind, u64), Errno> {
    if domain != AF_UNIX {
        return Err(Errno::EAFNOSUPPORT);
    }
    let flags = ty & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    let kind = match ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC) {
        SOCK_STREAM => Kind::Stream,
        SOCK_DGRAM | SOCK_RAW => Kind::Dgram,
        SOCK_SEQPACKET => Kind::SeqPacket,
        t if t & !0xf != 0 => return Err(Errno::EINVAL),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    if protocol != 0 && protocol != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok((kind, flags))
}

pub fn socket(l: &mut Linux, c: &Ctx) -> Outcome {
    let (kind, flags) = match kind_of(c.args[0], c.args[1], c.args[2]) {
        Ok(k) => k,
        Err(e) => return e.into(),
    };
    let s = Rc::new(RefCell::new(Socket::new(kind, caller_cred(l, c.pid))));
    install(l, c, s, flags).map(|fd| fd as i64).into()
}

pub fn socketpair(l: &mut Linux, c: &Ctx) -> Outcome {
    let (kind, flags) = match kind_of(c.args[0], c.args[1], c.args[2]) {
        Ok(k) => k,
        Err(e) => return e.into(),
    };
    let cred = caller_cred(l, c.pid);
    let a = Rc::new(RefCell::new(Socket::new(kind, cred)));
    let b = Rc::new(RefCell::new(Socket::new(kind, cred)));
    for (x, y) in [(&a, &b), (&b, &a)] {
        let mut x = x.borrow_mut();
        x.state = State::Connected { peer: Rc::downgrade(y) };
        x.was_connected = true;
        x.peer_cred = Some(cred);
    }
    let fa = match install(l, c, a, flags) {
        Ok(fd) => fd,
        Err(e) => return e.into(),
    };
    let fb = match install(l, c, b, flags) {
        Ok(fd) => fd,
        Err(e) => {
            close_quietly(l, c, fa);
            return e.into();
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(fa as u32).to_le_bytes());
    out[4..].copy_from_slice(&(fb as u32).to_le_bytes());
    if let Err(e) = write_bytes(l, c.pid, c.args[3], &out) {
        close_quietly(l, c, fa);
        close_quietly(l, c, fb);
        return e.into();
    }
    Outcome::Done(0)
}

fn close_quietly(l: &mut Linux, c: &Ctx, fd: u64) {
    if let Some(p) = l.procs.get_mut(&c.pid) {
        let _ = p.fds.close(fd);
    }
}

/// The `sun_path` bytes of a `sockaddr_un` of `len` bytes at `addr`: the name as given
/// (a path ends at its first NUL; an abstract name is every byte after the leading NUL).
fn read_name(l: &Linux, c: &Ctx, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    if !(2..=(2 + SUN_PATH) as u64).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let b = read_bytes(l, c.pid, addr, len as usize)?;
    if u16::from_le_bytes([b[0], b[1]]) as u64 != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &b[2..];
    if path.first() == Some(&0) {
        return Ok(path.to_vec());
    }
    let end = path.iter().position(|&x| x == 0).unwrap_or(path.len());
    if end == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(path[..end].to_vec())
}

/// Writes `name` as a `sockaddr_un` to `addr`, with its length to `len_ptr` (truncated to
/// the room the caller gave, as Linux does; the length says what it would have been).
fn write_name(l: &Linux, c: &Ctx, name: Option<&[u8]>, addr: u64, len_ptr: u64) -> Result<(), Errno> {
    if addr == 0 || len_ptr == 0 {
        return Ok(());
    }
    let room = read_bytes(l, c.pid, len_ptr, 4)?;
    let room = i32::from_le_bytes([room[0], room[1], room[2], room[3]]);
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let mut sa = Vec::with_capacity(2 + SUN_PATH);
    sa.extend_from_slice(&(AF_UNIX as u16).to_le_bytes());
    let mut full = 2;
    if let Some(n) = name {
        sa.extend_from_slice(n);
        full += n.len();
        if n.first() != Some(&0) {
            sa.push(0); // a path's terminating NUL, counted as Linux counts it
            full += 1;
        }
    }
    let copy = sa.len().min(room as usize);
    write_bytes(l, c.pid, addr, &sa[..copy])?;
    write_bytes(l, c.pid, len_ptr, &(full as u32).to_le_bytes())
}

/// The registry key of `name` for `pid`: a socket file's node (ENOENT if there is none;
/// `create` makes it, EADDRINUSE if something is there), or the abstract bytes.
fn key_of(l: &mut Linux, c: &Ctx, name: &[u8], create: bool) -> Result<NameKey, Errno> {
    if name.first() == Some(&0) {
        return Ok(NameKey::Abstract(name.to_vec()));
    }
    let start = l.start_of(c.pid, crate::sys::AT_FDCWD, name)?;
    if create {
        let cred = l.cred(c.pid);
        let umask = l.procs.get(&c.pid).map_or(0o022, |p| p.umask);
        let args = [start.0, name.len() as u64, (S_IFSOCK | 0o777) as u64, 0, cred.to_word(), umask as u64];
        l.vfs(vfsp::MKNOD, args, &[name], &mut [])
            .map_err(|e| if e == Errno::EEXIST { Errno::EADDRINUSE } else { e })?;
    }
    let attr = l.resolve_file(c.pid, start, name, vfsp::WALK_FOLLOW, Errno::ECONNREFUSED)?;
    if attr.mode & abi::proto::S_IFMT != S_IFSOCK {
        return Err(Errno::ECONNREFUSED);
    }
    Ok(NameKey::File(attr.file_id()))
}

pub fn bind(l: &mut Linux, c: &Ctx) -> Outcome {
    match do_bind(l, c) {
        Ok(()) => Outcome::Done(0),
        Err(e) => e.into(),
    }
}

fn do_bind(l: &mut Linux, c: &Ctx) -> Result<(), Errno> {
    let (_, s) = socket_of(l, c, c.args[0])?;
    let name = read_name(l, c, c.args[1], c.args[2])?;
    if s.borrow().name.is_some() {
        return Err(Errno::EINVAL);
    }
    l.unix.bound.retain(|_, w| w.strong_count() > 0);
    if name.first() == Some(&0) && l.unix.bound.contains_key(&NameKey::Abstract(name.clone())) {
        return Err(Errno::EADDRINUSE);
    }
    let key = key_of(l, c, &name, true)?;
    l.unix.bound.insert(key, Rc::downgrade(&s));
    s.borrow_mut().name = Some(name);
    Ok(())
}

pub fn listen(l: &mut Linux, c: &Ctx) -> Outcome {
    let (_, s) = match socket_of(l, c, c.args[0]) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let backlog = (c.args[1] as i64 as i32).clamp(0, 4096) as usize;
    let cred = caller_cred(l, c.pid);
    let mut s = s.borrow_mut();
    if !s.kind.connection() {
        return Errno::EOPNOTSUPP.into();
    }
    if s.name.is_none() {
        return Errno::EINVAL.into();
    }
    match &mut s.state {
        State::Listening { backlog: b, .. } => *b = backlog,
        State::Unconnected => s.state = State::Listening { backlog, queue: VecDeque::new() },
        State::Connected { .. } => return Errno::EINVAL.into(),
    }
    s.cred = cred;
    Outcome::Done(0)
}

pub fn connect(l: &mut Linux, c: &Ctx) -> Outcome {
    match do_connect(l, c) {
        Ok(o) => o,
        Err(e) => e.into(),
    }
}

fn find(l: &mut Linux, c: &Ctx, name: &[u8]) -> Result<SocketRef, Errno> {
    let key = key_of(l, c, name, false)?;
    l.unix.bound.get(&key).and_then(Weak::upgrade).ok_or(Errno::ECONNREFUSED)
}

fn do_connect(l: &mut Linux, c: &Ctx) -> Result<Outcome, Errno> {
    let (file, s) = socket_of(l, c, c.args[0])?;
    let name = read_name(l, c, c.args[1], c.args[2])?;
    let target = find(l, c, &name)?;
    let kind = s.borrow().kind;
    if target.borrow().kind != kind {
        return Err(Errno::EPROTOTYPE);
    }
    let cred = caller_cred(l, c.pid);
    if kind == Kind::Dgram {
        // A datagram socket's default destination (perhaps itself).
        let peer_cred = target.borrow().cred;
        let mut me = s.borrow_mut();
        me.state = State::Connected { peer: Rc::downgrade(&target) };
        me.peer_cred = Some(peer_cred);
        return Ok(Outcome::Done(0));
    }
    match s.borrow().state {
        State::Connected { .. } => return Err(Errno::EISCONN),
        State::Listening { .. } => return Err(Errno::EINVAL),
        State::Unconnected => {}
    }
    let nonblock = file.borrow().flags & O_NONBLOCK != 0;
    let mut t = target.borrow_mut();
    let listener_cred = t.cred;
    let listener_name = t.name.clone();
    let State::Listening { backlog, queue } = &mut t.state else { return Err(Errno::ECONNREFUSED) };
    if queue.len() > *backlog {
        return if nonblock { Err(Errno::EAGAIN) } else { Ok(Outcome::Block) };
    }
    // The server's end, made now and waiting in the listener's queue for accept.
    let mut server_end = Socket::new(kind, listener_cred);
    server_end.state = State::Connected { peer: Rc::downgrade(&s) };
    server_end.was_connected = true;
    server_end.peer_cred = Some(cred);
    server_end.name = listener_name;
    let server_end = Rc::new(RefCell::new(server_end));
    queue.push_back(server_end.clone());
    t.in_seq += 1;
    drop(t);
    let mut me = s.borrow_mut();
    me.state = State::Connected { peer: Rc::downgrade(&server_end) };
    me.was_connected = true;
    me.peer_cred = Some(listener_cred);
    me.cred = cred;
    Ok(Outcome::Done(0))
}

pub fn accept(l: &mut Linux, c: &Ctx) -> Outcome {
    do_accept(l, c, 0)
}

pub fn accept4(l: &mut Linux, c: &Ctx) -> Outcome {
    if c.args[3] & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Errno::EINVAL.into();
    }
    do_accept(l, c, c.args[3])
}

fn do_accept(l: &mut Linux, c: &Ctx, flags: u64) -> Outcome {
    let (file, s) = match socket_of(l, c, c.args[0]) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let nonblock = file.borrow().flags & O_NONBLOCK != 0;
    let next = {
        let mut s = s.borrow_mut();
        if !s.kind.connection() {
            return Errno::EOPNOTSUPP.into();
        }
        let State::Listening { queue, .. } = &mut s.state else { return Errno::EINVAL.into() };
        // Connections whose client went already are still accepted (and read as EOF).
        queue.pop_front()
    };
    let Some(conn) = next else {
        return if nonblock { Errno::EAGAIN.into() } else { Outcome::Block };
    };
    s.borrow_mut().out_seq += 1;
    let peer_name = conn.borrow().peer().and_then(|p| p.borrow().name.clone());
    let fd = match install(l, c, conn, flags) {
        Ok(fd) => fd,
        Err(e) => return e.into(),
    };
    if let Err(e) = write_name(l, c, peer_name.as_deref(), c.args[1], c.args[2]) {
        close_quietly(l, c, fd);
        return e.into();
    }
    Outcome::Done(fd as i64)
}

pub fn getsockname(l: &mut Linux, c: &Ctx) -> Outcome {
    let (_, s) = match socket_of(l, c, c.args[0]) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let name = s.borrow().name.clone();
    write_name(l, c, name.as_deref(), c.args[1], c.args[2]).map(|_| 0).into()
}

pub fn getpeername(l: &mut Linux, c: &Ctx) -> Outcome {
    let (_, s) = match socket_of(l, c, c.args[0]) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let Some(peer) = s.borrow().peer() else { return Errno::ENOTCONN.into() };
    let name = peer.borrow().name.clone();
    write_name(l, c, name.as_deref(), c.args[1], c.args[2]).map(|_| 0).into()
}

pub fn shutdown(l: &mut Linux, c: &Ctx) -> Outcome {
    let (_, s) = match socket_of(l, c, c.args[0]) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let how = c.args[1];
    if how > 2 {
        return Errno::EINVAL.into();
    }
    // Linux shuts an unconnected socket down too (nothing to tell a peer).
    let mut s = s.borrow_mut();
    if how != 1 {
        s.shut_rd = true;
    }
    if how != 0 {
        s.shut_wr = true;
    }
    s.in_seq += 1;
    Outcome::Done(0)
}

/// One send: `data` (with `fds` and credentials) to the peer or to `to`.
#[allow(clippy::too_many_arguments)]
fn send_packet(
    l: &mut Linux,
    c: &Ctx,
    file: &FileRef,
    s: &SocketRef,
    data: Vec<u8>,
    fds: Vec<FileRef>,
    to: Option<Vec<u8>>,
    flags: u64,
) -> Outcome {
    let nonblock = flags & MSG_DONTWAIT != 0 || file.borrow().flags & O_NONBLOCK != 0;
    let (kind, shut_wr, from) = {
        let s = s.borrow();
        (s.kind, s.shut_wr, s.name.clone())
    };
    // What SCM_CREDENTIALS carries: the sender as it is now.
    let cred = caller_cred(l, c.pid);
    let epipe = |l: &mut Linux| -> Outcome {
        if flags & MSG_NOSIGNAL == 0 {
            crate::sys::signal::send(l, c.pid, 13); // SIGPIPE
        }
        Errno::EPIPE.into()
    };
    let target = if kind.connection() {
        if to.is_some() {
            return if matches!(s.borrow().state, State::Connected { .. }) {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            }
            .into();
        }
        if shut_wr {
            return epipe(l);
        }
        match s.borrow().peer() {
            Some(p) => p,
            None if s.borrow().was_connected => return epipe(l),
            None => return Errno::ENOTCONN.into(),
        }
    } else {
        match to {
            Some(name) => match find(l, c, &name) {
                Ok(t) if t.borrow().kind != Kind::Dgram => return Errno::EPROTOTYPE.into(),
                Ok(t) => t,
                Err(e) => return e.into(),
            },
            None => match s.borrow().peer() {
                Some(p) => p,
                None if matches!(s.borrow().state, State::Connected { .. }) => return Errno::ECONNREFUSED.into(),
                None => return Errno::ENOTCONN.into(),
            },
        }
    };
    let mut t = target.borrow_mut();
    if kind.connection() && t.shut_rd {
        drop(t);
        return epipe(l);
    }
    let len = data.len();
    if kind == Kind::Stream && len == 0 {
        return Outcome::Done(0); // nothing to queue (descriptors need a byte to ride on)
    }
    if kind == Kind::Stream {
        let room = t.room();
        if room == 0 && len > 0 {
            return if nonblock { Errno::EAGAIN.into() } else { Outcome::Block };
        }
        let n = len.min(room);
        let mut data = data;
        data.truncate(n);
        t.rx_bytes += n;
        t.rx.push_back(Packet { data, read: 0, fds, cred, from });
        t.in_seq += 1;
        return Outcome::Done(n as i64);
    }
    if len > SOCKET_BUFFER {
        return Errno::EMSGSIZE.into();
    }
    if t.room() < len.max(1) {
        return if nonblock { Errno::EAGAIN.into() } else { Outcome::Block };
    }
    t.rx_bytes += len.max(1);
    t.rx.push_back(Packet { data, read: 0, fds, cred, from });
    t.in_seq += 1;
    Outcome::Done(len as i64)
}

/// What one receive took.
struct Received {
    data: Vec<u8>,
    /// The packet's whole length (datagrams: what MSG_TRUNC reports).
    full: usize,
    fds: Vec<FileRef>,
    cred: Option<Ucred>,
    from: Option<Vec<u8>>,
}

/// One receive of at most `len` bytes: `Ok(None)` while it would block.
fn receive(file: &FileRef, s: &SocketRef, len: usize, flags: u64) -> Result<Option<Received>, Errno> {
    let nonblock = flags & MSG_DONTWAIT != 0 || file.borrow().flags & O_NONBLOCK != 0;
    let peek = flags & MSG_PEEK != 0;
    let mut s = s.borrow_mut();
    if matches!(s.state, State::Listening { .. }) || (s.kind.connection() && !s.was_connected) {
        return Err(Errno::EINVAL);
    }
    if s.rx.is_empty() {
        if s.at_eof() || (s.kind == Kind::Dgram && s.shut_rd) {
            return Ok(Some(Received { data: Vec::new(), full: 0, fds: Vec::new(), cred: None, from: None }));
        }
        return if nonblock { Err(Errno::EAGAIN) } else { Ok(None) };
    }
    let pass = s.pass_cred;
    if s.kind != Kind::Stream {
        let p = if peek { s.rx.front() } else { None };
        let (data, full, fds, cred, from) = match p {
            Some(p) => (p.data[..len.min(p.data.len())].to_vec(), p.data.len(), p.fds.clone(), p.cred, p.from.clone()),
            None => {
                let p = s.rx.pop_front().expect("not empty");
                s.rx_bytes -= p.data.len().max(1);
                s.out_seq += 1;
                let full = p.data.len();
                let mut data = p.data;
                data.truncate(len);
                (data, full, p.fds, p.cred, p.from)
            }
        };
        return Ok(Some(Received { data, full, fds, cred: pass.then_some(cred), from }));
    }
    // A stream: across packets, but not into a second one that carries descriptors.
    let mut out = Vec::new();
    let mut fds = Vec::new();
    let mut cred = None;
    let mut i = 0;
    while out.len() < len && i < s.rx.len() {
        let p = &s.rx[i];
        if i > 0 && !p.fds.is_empty() {
            break;
        }
        if i == 0 {
            cred = Some(p.cred);
            fds = p.fds.clone();
        }
        let take = (len - out.len()).min(p.data.len() - p.read);
        out.extend_from_slice(&p.data[p.read..p.read + take]);
        i += 1;
    }
    if !peek {
        let mut left = out.len();
        let mut first = true;
        while let Some(p) = s.rx.front_mut() {
            if !first && !p.fds.is_empty() {
                break;
            }
            // Descriptors go with the first byte read of their packet.
            if first {
                p.fds.clear();
            }
            first = false;
            let take = left.min(p.data.len() - p.read);
            p.read += take;
            left -= take;
            if p.read == p.data.len() {
                s.rx.pop_front();
            }
            if left == 0 {
                break;
            }
        }
        s.rx_bytes -= out.len();
        s.out_seq += 1;
    }
    let full = out.len();
    Ok(Some(Received { data: out, full, fds, cred: if pass { cred } else { None }, from: None }))
}

/// read(2) of a socket: `None` while it would block.
pub fn read(
    l: &mut Linux,
    c: &Ctx,
    file: &FileRef,
    s: &SocketRef,
    buf: u64,
    len: usize,
) -> Result<Option<usize>, Errno> {
    let Some(r) = receive(file, s, len, 0)? else { return Ok(None) };
    // Descriptors read with plain read(2) are closed, as on Linux.
    drop(r.fds);
    write_bytes(l, c.pid, buf, &r.data)?;
    Ok(Some(r.data.len()))
}

/// write(2) to a socket.
pub fn write(l: &mut Linux, c: &Ctx, file: &FileRef, s: &SocketRef, buf: u64, len: usize) -> Outcome {
    let data = match read_bytes(l, c.pid, buf, len.min(SOCKET_BUFFER)) {
        Ok(d) => d,
        Err(e) => return e.into(),
    };
    send_packet(l, c, file, s, data, Vec::new(), None, 0)
}

pub fn sendto(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, buf, len, flags, addr, addrlen] = c.args;
    let (file, s) = match socket_of(l, c, fd) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let to = if addr != 0 {
        match read_name(l, c, addr, addrlen) {
            Ok(n) => Some(n),
            Err(e) => return e.into(),
        }
    } else {
        None
    };
    let data = match read_bytes(l, c.pid, buf, (len as usize).min(SOCKET_BUFFER + 1)) {
        Ok(d) => d,
        Err(e) => return e.into(),
    };
    send_packet(l, c, &file, &s, data, Vec::new(), to, flags)
}

pub fn recvfrom(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, buf, len, flags, addr, addrlen] = c.args;
    let (file, s) = match socket_of(l, c, fd) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let r = match receive(&file, &s, (len as usize).min(SOCKET_BUFFER), flags) {
        Ok(Some(r)) => r,
        Ok(None) => return Outcome::Block,
        Err(e) => return e.into(),
    };
    if let Err(e) = write_bytes(l, c.pid, buf, &r.data) {
        return e.into();
    }
    if let Err(e) = write_name(l, c, r.from.as_deref(), addr, addrlen) {
        return e.into();
    }
    Outcome::Done(if flags & MSG_TRUNC != 0 { r.full } else { r.data.len() } as i64)
}

/// `struct msghdr`: name, namelen, iov, iovlen, control, controllen, flags.
struct MsgHdr {
    name: u64,
    namelen: u64,
    iov: Vec<(u64, u64)>,
    control: u64,
    controllen: u64,
}

const MSGHDR_LEN: usize = 56;

fn read_msghdr(l: &Linux, c: &Ctx, at: u64) -> Result<MsgHdr, Errno> {
    let b = read_bytes(l, c.pid, at, MSGHDR_LEN)?;
    let (iov_at, iovlen) = (word_at(&b, 16), word_at(&b, 24));
    if iovlen > 1024 {
        return Err(Errno::EMSGSIZE);
    }
    let raw = read_bytes(l, c.pid, iov_at, iovlen as usize * 16)?;
    let iov = raw.chunks_exact(16).map(|v| (word_at(v, 0), word_at(v, 8))).collect();
    Ok(MsgHdr {
        name: word_at(&b, 0),
        namelen: word_at(&b, 8) & 0xffff_ffff,
        iov,
        control: word_at(&b, 32),
        controllen: word_at(&b, 40),
    })
}

/// The descriptors an SCM_RIGHTS message names, and checks of SCM_CREDENTIALS.
fn read_control(l: &Linux, c: &Ctx, m: &MsgHdr) -> Result<Vec<FileRef>, Errno> {
    let mut fds = Vec::new();
    if m.control == 0 || m.controllen == 0 {
        return Ok(fds);
    }
    if m.controllen > 64 * 1024 {
        return Err(Errno::ENOBUFS);
    }
    let b = read_bytes(l, c.pid, m.control, m.controllen as usize)?;
    let mut at = 0;
    while at + 16 <= b.len() {
        let len = word_at(&b, at) as usize;
        let level = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap_or_default());
        let ty = u32::from_le_bytes(b[at + 12..at + 16].try_into().unwrap_or_default());
        if len < 16 || at + len > b.len() {
            return Err(Errno::EINVAL);
        }
        if level as u64 != SOL_SOCKET {
            return Err(Errno::EINVAL);
        }
        let data = &b[at + 16..at + len];
        match ty {
            SCM_RIGHTS => {
                let p = l.procs.get(&c.pid).ok_or(Errno::ESRCH)?;
                for fd in data.chunks_exact(4) {
                    let fd = i32::from_le_bytes(fd.try_into().unwrap_or_default());
                    if fd < 0 {
                        return Err(Errno::EBADF);
                    }
                    fds.push(p.fds.get(fd as u64)?.file.clone());
                }
                if fds.len() > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
            }
            SCM_CREDENTIALS => {
                if data.len() < 12 {
                    return Err(Errno::EINVAL);
                }
                let pid = u32::from_le_bytes(data[0..4].try_into().unwrap_or_default());
                let me = caller_cred(l, c.pid);
                if pid != c.pid && me.uid != 0 {
                    return Err(Errno::EPERM);
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        at += len.next_multiple_of(8);
    }
    Ok(fds)
}

pub fn sendmsg(l: &mut Linux, c: &Ctx) -> Outcome {
    let (file, s) = match socket_of(l, c, c.args[0]) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let m = match read_msghdr(l, c, c.args[1]) {
        Ok(m) => m,
        Err(e) => return e.into(),
    };
    let to = if m.name != 0 && m.namelen != 0 {
        match read_name(l, c, m.name, m.namelen) {
            Ok(n) => Some(n),
            Err(e) => return e.into(),
        }
    } else {
        None
    };
    let fds = match read_control(l, c, &m) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    let mut data = Vec::new();
    for &(base, len) in &m.iov {
        if data.len() + len as usize > SOCKET_BUFFER + 1 {
            return Errno::EMSGSIZE.into();
        }
        match read_bytes(l, c.pid, base, len as usize) {
            Ok(b) => data.extend_from_slice(&b),
            Err(e) => return e.into(),
        }
    }
    send_packet(l, c, &file, &s, data, fds, to, c.args[2])
}

pub fn recvmsg(l: &mut Linux, c: &Ctx) -> Outcome {
    let (file, s) = match socket_of(l, c, c.args[0]) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    let flags = c.args[2];
    let m = match read_msghdr(l, c, c.args[1]) {
        Ok(m) => m,
        Err(e) => return e.into(),
    };
    let room: u64 = m.iov.iter().map(|&(_, n)| n).sum();
    let r = match receive(&file, &s, (room as usize).min(SOCKET_BUFFER), flags) {
        Ok(Some(r)) => r,
        Ok(None) => return Outcome::Block,
        Err(e) => return e.into(),
    };
    let mut at = 0;
    for &(base, len) in &m.iov {
        if at >= r.data.len() {
            break;
        }
        let n = (len as usize).min(r.data.len() - at);
        if let Err(e) = write_bytes(l, c.pid, base, &r.data[at..at + n]) {
            return e.into();
        }
        at += n;
    }
    let mut msg_flags = 0u32;
    if r.full > r.data.len() {
        msg_flags |= MSG_TRUNC as u32;
    }
    // Control messages: credentials, then the descriptors (installed here, as many as fit).
    let mut control = Vec::new();
    if let Some(cr) = r.cred {
        let mut cm = cmsg_header(12, SCM_CREDENTIALS);
        cm.extend_from_slice(&cr.pid.to_le_bytes());
        cm.extend_from_slice(&cr.uid.to_le_bytes());
        cm.extend_from_slice(&cr.gid.to_le_bytes());
        if control.len() + cm.len() <= m.controllen as usize {
            pad8(&mut cm);
            control.extend_from_slice(&cm);
        } else {
            msg_flags |= MSG_CTRUNC;
        }
    }
    if !r.fds.is_empty() {
        let left = (m.controllen as usize).saturating_sub(control.len());
        let fit = left.saturating_sub(16) / 4;
        if fit < r.fds.len() {
            msg_flags |= MSG_CTRUNC;
        }
        let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
        let mut installed = Vec::new();
        if let Some(p) = l.procs.get_mut(&c.pid) {
            for f in r.fds.iter().take(fit) {
                match p.fds.insert(Fd { file: f.clone(), cloexec }, 0) {
                    Ok(fd) => installed.push(fd as u32),
                    Err(_) => {
                        msg_flags |= MSG_CTRUNC;
                        break;
                    }
                }
            }
        }
        if !installed.is_empty() {
            let mut cm = cmsg_header(installed.len() * 4, SCM_RIGHTS);
            for fd in installed {
                cm.extend_from_slice(&fd.to_le_bytes());
            }
            control.extend_from_slice(&cm);
        }
    }
    if !control.is_empty() {
        if let Err(e) = write_bytes(l, c.pid, m.control, &control) {
            return e.into();
        }
    }
    // msg_namelen, msg_controllen and msg_flags go back.
    if m.name != 0 {
        let _ = write_name(l, c, r.from.as_deref(), m.name, c.args[1] + 8);
    }
    let _ = write_bytes(l, c.pid, c.args[1] + 40, &(control.len() as u64).to_le_bytes());
    let _ = write_bytes(l, c.pid, c.args[1] + 48, &msg_flags.to_le_bytes());
    Outcome::Done(if flags & MSG_TRUNC != 0 { r.full } else { r.data.len() } as i64)
}

fn cmsg_header(data_len: usize, ty: u32) -> Vec<u8> {
    let mut cm = Vec::with_capacity(16 + data_len);
    cm.extend_from_slice(&((16 + data_len) as u64).to_le_bytes());
    cm.extend_from_slice(&(SOL_SOCKET as u32).to_le_bytes());
    cm.extend_from_slice(&ty.to_le_bytes());
    cm
}

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

pub fn getsockopt(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, level, name, val, len_ptr, ..] = c.args;
    let (_, s) = match socket_of(l, c, fd) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    if level != SOL_SOCKET {
        return Errno::ENOPROTOOPT.into();
    }
    let room = match read_bytes(l, c.pid, len_ptr, 4) {
        Ok(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        Err(e) => return e.into(),
    };
    if room < 0 {
        return Errno::EINVAL.into();
    }
    let value: Vec<u8> = {
        let s = s.borrow();
        let int = |v: u64| (v as i32).to_le_bytes().to_vec();
        match name {
            SO_TYPE => int(s.kind.number()),
            SO_ERROR => int(0),
            SO_DOMAIN => int(AF_UNIX),
            SO_PROTOCOL => int(0),
            SO_ACCEPTCONN => int(matches!(s.state, State::Listening { .. }) as u64),
            SO_PASSCRED => int(s.pass_cred as u64),
            SO_SNDBUF | SO_RCVBUF => int(SOCKET_BUFFER as u64),
            SO_PEERCRED => {
                let cr = s.peer_cred.unwrap_or(Ucred { pid: 0, uid: u32::MAX, gid: u32::MAX });
                let mut b = Vec::new();
                b.extend_from_slice(&cr.pid.to_le_bytes());
                b.extend_from_slice(&cr.uid.to_le_bytes());
                b.extend_from_slice(&cr.gid.to_le_bytes());
                b
            }
            _ => return Errno::ENOPROTOOPT.into(),
        }
    };
    let n = value.len().min(room as usize);
    if let Err(e) = write_bytes(l, c.pid, val, &value[..n]) {
        return e.into();
    }
    write_bytes(l, c.pid, len_ptr, &(n as u32).to_le_bytes()).map(|_| 0).into()
}

pub fn setsockopt(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, level, name, val, len, ..] = c.args;
    let (_, s) = match socket_of(l, c, fd) {
        Ok(x) => x,
        Err(e) => return e.into(),
    };
    if level != SOL_SOCKET {
        return Errno::ENOPROTOOPT.into();
    }
    if len < 4 {
        return Errno::EINVAL.into();
    }
    let v = match read_bytes(l, c.pid, val, 4) {
        Ok(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        Err(e) => return e.into(),
    };
    match name {
        SO_PASSCRED => s.borrow_mut().pass_cred = v != 0,
        // Accepted; the buffers stay their size (Linux doubles and clamps what it is given).
        SO_SNDBUF | SO_RCVBUF | 2 /* SO_REUSEADDR */ | 9 /* SO_KEEPALIVE */ => {}
        _ => return Errno::ENOPROTOOPT.into(),
    }
    Outcome::Done(0)
}
