//! The relay server: lends a client's grant on to `echo` (a forwarded grant, no copy through
//! the relay) and notifies `echo`, so that the test driver can check both mechanisms between
//! two servers.

use crate::echo::{OP_GRANT_REVERSE, OP_NOTIFY_COUNT};
use server_rt::{kernel, Cqe, GrantRef, IpcError, Sqe};

/// Forwards an OP_GRANT_REVERSE to echo with the client's grant lent on (`args[0]` = the offset
/// inside the client's grant, `args[1]` = the length; `args[2]` = extra rights to ask for, which
/// must be refused if the client did not give them).
pub const OP_RELAY_REVERSE: u32 = 1;
/// Sets notification bits `args[0]` on echo `args[1]` times, then asks echo what it received.
pub const OP_RELAY_NOTIFY: u32 = 2;

fn relay_reverse(req: &Sqe) -> Result<i64, IpcError> {
    let k = kernel();
    let cap = k.lookup("echo")?;
    let rights = (req.grant.rights | req.args[2] as u32) & (server_rt::GRANT_READ | server_rt::GRANT_WRITE);
    let mut fwd = Sqe::new(OP_GRANT_REVERSE, [0; 6]);
    fwd.grant = GrantRef::forward(req.tag, req.args[0], req.args[1], rights);
    k.call(cap, &fwd).map(|c| c.result)
}

fn relay_notify(req: &Sqe) -> Result<i64, IpcError> {
    let k = kernel();
    let cap = k.lookup("echo")?;
    for _ in 0..req.args[1] {
        k.notify(cap, req.args[0])?;
    }
    k.call(cap, &Sqe::new(OP_NOTIFY_COUNT, [0; 6])).map(|c| c.result)
}

pub fn main() {
    let k = kernel();
    let mut req = k.receive().unwrap_or_else(|e| panic!("relay: receive failed: {e}"));
    loop {
        let result = match req.opcode {
            OP_RELAY_REVERSE => relay_reverse(&req).unwrap_or_else(|e| e.code()),
            OP_RELAY_NOTIFY => relay_notify(&req).unwrap_or_else(|e| e.code()),
            _ => -38,
        };
        let reply = Cqe { tag: req.tag, result, ..Default::default() };
        req = k.reply_and_receive(&reply).unwrap_or_else(|e| panic!("relay: receive failed: {e}"));
    }
}
