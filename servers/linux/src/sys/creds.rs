//! Credentials: real, effective, saved and file-system user and group ids and the
//! supplementary groups, with Linux's rules: an effective uid of 0 may set anything (it holds
//! CAP_SETUID and CAP_SETGID); anyone else may only move between the ids it already has, and
//! gets EPERM otherwise. Inherited across fork, kept across execve (set-uid files are not
//! honoured). The file code checks permissions against `process::creds`.

use crate::process::{read_bytes, write_bytes, Creds};
use crate::{Ctx, Linux, Outcome};
use abi::Errno;
use alloc::vec::Vec;

const NGROUPS_MAX: u64 = 65536;
/// -1 as a 32-bit id: "leave unchanged".
const KEEP: u32 = u32::MAX;

fn id(arg: u64) -> u32 {
    arg as u32
}

fn with_creds(l: &mut Linux, c: &Ctx, f: impl FnOnce(&mut Creds) -> Result<i64, Errno>) -> Outcome {
    let Some(p) = l.procs.get_mut(&c.pid) else { return Errno::ESRCH.into() };
    let mut new = p.creds.clone();
    match f(&mut new) {
        Ok(v) => {
            p.creds = new;
            crate::process::publish_identity(l, c.pid);
            Outcome::Done(v)
        }
        Err(e) => e.into(),
    }
}

pub fn getuid(l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(l.procs.get(&c.pid).map_or(0, |p| p.creds.ruid) as i64)
}

pub fn geteuid(l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(l.procs.get(&c.pid).map_or(0, |p| p.creds.euid) as i64)
}

pub fn getgid(l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(l.procs.get(&c.pid).map_or(0, |p| p.creds.rgid) as i64)
}

pub fn getegid(l: &mut Linux, c: &Ctx) -> Outcome {
    Outcome::Done(l.procs.get(&c.pid).map_or(0, |p| p.creds.egid) as i64)
}

/// The uid and gid fields as (real, effective, saved, fs) of either kind.
struct Ids<'a> {
    r: &'a mut u32,
    e: &'a mut u32,
    s: &'a mut u32,
    fs: &'a mut u32,
}

fn uids(c: &mut Creds) -> Ids<'_> {
    Ids { r: &mut c.ruid, e: &mut c.euid, s: &mut c.suid, fs: &mut c.fsuid }
}

fn gids(c: &mut Creds) -> Ids<'_> {
    Ids { r: &mut c.rgid, e: &mut c.egid, s: &mut c.sgid, fs: &mut c.fsgid }
}

/// setuid / setgid: the privileged set all three (and fs); others only the effective one, to
/// their real or saved id.
fn set_one(ids: Ids, privileged: bool, v: u32) -> Result<i64, Errno> {
    if v == KEEP {
        return Err(Errno::EINVAL);
    }
    if privileged {
        *ids.r = v;
        *ids.s = v;
    } else if v != *ids.r && v != *ids.s {
        return Err(Errno::EPERM);
    }
    *ids.e = v;
    *ids.fs = v;
    Ok(0)
}

/// setreuid / setregid: the real id may become the real or effective one, the effective any of
/// the three; the saved id follows the effective one when the real one is set (or the
/// effective one moves away from the real one).
fn set_re(ids: Ids, privileged: bool, r: u32, e: u32) -> Result<i64, Errno> {
    let (or, oe, os) = (*ids.r, *ids.e, *ids.s);
    if !privileged {
        if r != KEEP && r != or && r != oe {
            return Err(Errno::EPERM);
        }
        if e != KEEP && e != or && e != oe && e != os {
            return Err(Errno::EPERM);
        }
    }
    if r != KEEP {
        *ids.r = r;
    }
    if e != KEEP {
        *ids.e = e;
    }
    if r != KEEP || (e != KEEP && e != or) {
        *ids.s = *ids.e;
    }
    *ids.fs = *ids.e;
    Ok(0)
}

/// setresuid / setresgid: each may become any of the current three unless privileged.
fn set_res(ids: Ids, privileged: bool, r: u32, e: u32, s: u32) -> Result<i64, Errno> {
    let cur = [*ids.r, *ids.e, *ids.s];
    if !privileged && [r, e, s].iter().any(|&v| v != KEEP && !cur.contains(&v)) {
        return Err(Errno::EPERM);
    }
    if r != KEEP {
        *ids.r = r;
    }
    if e != KEEP {
        *ids.e = e;
    }
    if s != KEEP {
        *ids.s = s;
    }
    *ids.fs = *ids.e;
    Ok(0)
}

/// setfsuid / setfsgid: always return the old value; change it only if allowed.
fn set_fs(ids: Ids, privileged: bool, v: u32) -> Result<i64, Errno> {
    let old = *ids.fs;
    if v != KEEP && (privileged || [*ids.r, *ids.e, *ids.s, *ids.fs].contains(&v)) {
        *ids.fs = v;
    }
    Ok(old as i64)
}

pub fn setuid(l: &mut Linux, c: &Ctx) -> Outcome {
    with_creds(l, c, |cr| {
        let p = cr.euid == 0;
        set_one(uids(cr), p, id(c.args[0]))
    })
}

pub fn setgid(l: &mut Linux, c: &Ctx) -> Outcome {
    with_creds(l, c, |cr| {
        let p = cr.euid == 0;
        set_one(gids(cr), p, id(c.args[0]))
    })
}

pub fn setreuid(l: &mut Linux, c: &Ctx) -> Outcome {
    with_creds(l, c, |cr| {
        let p = cr.euid == 0;
        set_re(uids(cr), p, id(c.args[0]), id(c.args[1]))
    })
}

pub fn setregid(l: &mut Linux, c: &Ctx) -> Outcome {
    with_creds(l, c, |cr| {
        let p = cr.euid == 0;
        set_re(gids(cr), p, id(c.args[0]), id(c.args[1]))
    })
}

pub fn setresuid(l: &mut Linux, c: &Ctx) -> Outcome {
    with_creds(l, c, |cr| {
        let p = cr.euid == 0;
        set_res(uids(cr), p, id(c.args[0]), id(c.args[1]), id(c.args[2]))
    })
}

pub fn setresgid(l: &mut Linux, c: &Ctx) -> Outcome {
    with_creds(l, c, |cr| {
        let p = cr.euid == 0;
        set_res(gids(cr), p, id(c.args[0]), id(c.args[1]), id(c.args[2]))
    })
}

pub fn setfsuid(l: &mut Linux, c: &Ctx) -> Outcome {
    with_creds(l, c, |cr| {
        let p = cr.euid == 0;
        set_fs(uids(cr), p, id(c.args[0]))
    })
}

pub fn setfsgid(l: &mut Linux, c: &Ctx) -> Outcome {
    with_creds(l, c, |cr| {
        let p = cr.euid == 0;
        set_fs(gids(cr), p, id(c.args[0]))
    })
}

fn write_three(l: &Linux, c: &Ctx, v: [u32; 3]) -> Outcome {
    for (i, x) in v.iter().enumerate() {
        if let Err(e) = write_bytes(l, c.pid, c.args[i], &x.to_le_bytes()) {
            return e.into();
        }
    }
    Outcome::Done(0)
}

pub fn getresuid(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let v = [p.creds.ruid, p.creds.euid, p.creds.suid];
    write_three(l, c, v)
}

pub fn getresgid(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let v = [p.creds.rgid, p.creds.egid, p.creds.sgid];
    write_three(l, c, v)
}

/// getgroups(size, list): size 0 asks for the count; a list too small is EINVAL.
pub fn getgroups(l: &mut Linux, c: &Ctx) -> Outcome {
    let Some(p) = l.procs.get(&c.pid) else { return Errno::ESRCH.into() };
    let groups = p.creds.groups.clone();
    let size = c.args[0] as i32;
    if size < 0 {
        return Errno::EINVAL.into();
    }
    if size == 0 {
        return Outcome::Done(groups.len() as i64);
    }
    if (size as usize) < groups.len() {
        return Errno::EINVAL.into();
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    write_bytes(l, c.pid, c.args[1], &bytes).map(|_| groups.len() as i64).into()
}

/// setgroups(size, list): privileged only.
pub fn setgroups(l: &mut Linux, c: &Ctx) -> Outcome {
    let size = c.args[0];
    if size > NGROUPS_MAX {
        return Errno::EINVAL.into();
    }
    if l.procs.get(&c.pid).is_none_or(|p| p.creds.euid != 0) {
        return Errno::EPERM.into();
    }
    let raw = match size {
        0 => Vec::new(),
        n => match read_bytes(l, c.pid, c.args[1], n as usize * 4) {
            Ok(b) => b,
            Err(e) => return e.into(),
        },
    };
    let mut groups: Vec<u32> = raw.chunks(4).map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default())).collect();
    groups.sort_unstable();
    with_creds(l, c, |cr| {
        cr.groups = groups;
        Ok(0)
    })
}
