//! Extended attributes (xattr(7)) and file advice (posix_fadvise(2)).
//!
//! No file system here stores extended attributes: they answer as a Linux file system without
//! xattr support does (Linux 6.1's tmpfs for `user.` names). A file (which must exist:
//! ENOENT, ELOOP... from the walk) lists none (0 bytes), and getting, setting or removing one
//! is EOPNOTSUPP, which is what libc's and coreutils' callers take as "no ACLs, no labels".
//! Names are checked first (ERANGE for an empty one or one over 255 bytes), as there.
//!
//! fadvise64 checks its descriptor and advice like Linux and then has nothing to do: there
//! is no page cache to prefetch into or drop, so every valid hint is honoured by doing
//! nothing, which is what Linux does for advice its file system cannot use.

use crate::files::Object;
use crate::process::read_cstr;
use crate::sys::rw::file_of;
use crate::sys::stat::{path_attr, AT_SYMLINK_NOFOLLOW};
use crate::sys::AT_FDCWD;
use crate::{Ctx, Linux, Outcome};
use abi::Errno;

/// XATTR_NAME_MAX.
const NAME_MAX: usize = 255;

/// The file a path-based call names must exist (`follow`: the path's last link is followed).
fn check_path(l: &mut Linux, c: &Ctx, path: u64, follow: bool) -> Result<(), Errno> {
    let p = read_cstr(l, c.pid, path, 4096)?.into_bytes();
    path_attr(l, c, AT_FDCWD, &p, if follow { 0 } else { AT_SYMLINK_NOFOLLOW }).map(|_| ())
}

fn check_fd(l: &Linux, c: &Ctx, fd: u64) -> Result<(), Errno> {
    file_of(l, c, fd).map(|_| ())
}

fn check_name(l: &Linux, c: &Ctx, name: u64) -> Result<(), Errno> {
    let n =
        read_cstr(l, c.pid, name, NAME_MAX + 2)
            .map_err(|e| if e == Errno::ENAMETOOLONG { Errno::ERANGE } else { e })?;
    if n.is_empty() || n.len() > NAME_MAX {
        return Err(Errno::ERANGE);
    }
    Ok(())
}

fn answer(r: Result<(), Errno>, then: Errno) -> Outcome {
    match r {
        Ok(()) => then.into(),
        Err(e) => e.into(),
    }
}

pub fn getxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    let r = check_path(l, c, c.args[0], true).and_then(|_| check_name(l, c, c.args[1]));
    answer(r, Errno::EOPNOTSUPP)
}

pub fn lgetxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    let r = check_path(l, c, c.args[0], false).and_then(|_| check_name(l, c, c.args[1]));
    answer(r, Errno::EOPNOTSUPP)
}

pub fn fgetxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    let r = check_fd(l, c, c.args[0]).and_then(|_| check_name(l, c, c.args[1]));
    answer(r, Errno::EOPNOTSUPP)
}

pub fn removexattr(l: &mut Linux, c: &Ctx) -> Outcome {
    getxattr(l, c)
}

pub fn lremovexattr(l: &mut Linux, c: &Ctx) -> Outcome {
    lgetxattr(l, c)
}

pub fn fremovexattr(l: &mut Linux, c: &Ctx) -> Outcome {
    fgetxattr(l, c)
}

/// The empty list: 0 bytes, whatever the buffer.
fn listed(r: Result<(), Errno>) -> Outcome {
    match r {
        Ok(()) => Outcome::Done(0),
        Err(e) => e.into(),
    }
}

pub fn listxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    listed(check_path(l, c, c.args[0], true))
}

pub fn llistxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    listed(check_path(l, c, c.args[0], false))
}

pub fn flistxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    listed(check_fd(l, c, c.args[0]))
}

/// setxattr flags: XATTR_CREATE | XATTR_REPLACE.
fn check_set_flags(flags: u64) -> Result<(), Errno> {
    if flags & !3 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

pub fn setxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    let r = check_path(l, c, c.args[0], true)
        .and_then(|_| check_name(l, c, c.args[1]))
        .and_then(|_| check_set_flags(c.args[4]));
    answer(r, Errno::EOPNOTSUPP)
}

pub fn lsetxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    let r = check_path(l, c, c.args[0], false)
        .and_then(|_| check_name(l, c, c.args[1]))
        .and_then(|_| check_set_flags(c.args[4]));
    answer(r, Errno::EOPNOTSUPP)
}

pub fn fsetxattr(l: &mut Linux, c: &Ctx) -> Outcome {
    let r =
        check_fd(l, c, c.args[0]).and_then(|_| check_name(l, c, c.args[1])).and_then(|_| check_set_flags(c.args[4]));
    answer(r, Errno::EOPNOTSUPP)
}

/// fadvise64(fd, offset, len, advice): POSIX_FADV_NORMAL..=POSIX_FADV_NOREUSE (0..=5); a
/// pipe is ESPIPE, a negative length EINVAL.
pub fn fadvise64(l: &mut Linux, c: &Ctx) -> Outcome {
    let [fd, _offset, len, advice, ..] = c.args;
    let file = match file_of(l, c, fd) {
        Ok(f) => f,
        Err(e) => return e.into(),
    };
    if matches!(file.borrow().object, Object::Pipe { .. }) {
        return Errno::ESPIPE.into();
    }
    if advice > 5 || (len as i64) < 0 {
        return Errno::EINVAL.into();
    }
    Outcome::Done(0)
}
