//! The echo server. Its state (a call counter) lives in its own arena and dies with it, which
//! is how the tests see that a request was served by a fresh instance.

use alloc::vec;
use server_rt::{kernel, Cqe, FaultKind, IpcError};

pub const OP_ECHO: u32 = 1;
pub const OP_COUNT: u32 = 2;
pub const OP_PANIC: u32 = 3;
pub const OP_FAULT: u32 = 4;
pub const OP_OVERFLOW: u32 = 5;
pub const OP_HANG: u32 = 6;
/// Reads the granted buffer, returns the sum of its bytes, and writes it back reversed.
pub const OP_GRANT_REVERSE: u32 = 7;
/// Answers first, then tries to read the grant of the answered request (must be refused).
pub const OP_GRANT_AFTER_REPLY: u32 = 8;
/// 1 if the last OP_GRANT_AFTER_REPLY read was refused with BadGrant.
pub const OP_LAST_REVOKED: u32 = 9;
/// Sleeps `args[0]` milliseconds, then answers like OP_ECHO with `args[1]`.
pub const OP_SLOW: u32 = 10;
/// Answers (notification messages received) << 32 | (the OR of all bits received), and resets.
pub const OP_NOTIFY_COUNT: u32 = 11;

/// Recursion with a large frame; `black_box` keeps the frames real.
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 128]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(frame[(depth % 128) as usize])
}

fn grant_reverse(req: &server_rt::Sqe) -> Result<i64, IpcError> {
    let k = kernel();
    let mut data = vec![0u8; req.grant.len as usize];
    k.grant_read(req.tag, 0, &mut data)?;
    let sum: i64 = data.iter().map(|&b| b as i64).sum();
    data.reverse();
    k.grant_write(req.tag, 0, &data)?;
    Ok(sum)
}

pub fn main() {
    let k = kernel();
    let mut served: u64 = 0;
    let mut last_revoked = 0i64;
    let (mut notices, mut bits) = (0u64, 0u64);
    let mut req = match k.receive() {
        Ok(r) => r,
        Err(e) => panic!("echo: receive failed: {e}"),
    };
    loop {
        if req.is_notification() {
            notices += 1;
            bits |= req.args[0];
            req = match k.receive() {
                Ok(r) => r,
                Err(e) => panic!("echo: receive failed: {e}"),
            };
            continue;
        }
        served += 1;
        let result = match req.opcode {
            OP_ECHO => req.args[0].wrapping_add(1) as i64,
            OP_COUNT => served as i64,
            OP_PANIC => panic!("echo: asked to panic"),
            OP_FAULT => k.fault_self(FaultKind::BadAccess),
            OP_OVERFLOW => recurse(0) as i64,
            OP_HANG => loop {
                k.sleep_ns(u64::MAX / 2);
            },
            OP_GRANT_REVERSE => grant_reverse(&req).unwrap_or_else(|e| e.code()),
            OP_GRANT_AFTER_REPLY => {
                // Answer first, then try the grant of the request just answered.
                let _ = k.reply(&Cqe { tag: req.tag, result: 0, ..Default::default() });
                let mut b = [0u8; 1];
                last_revoked = (k.grant_read(req.tag, 0, &mut b) == Err(IpcError::BadGrant)) as i64;
                req = match k.receive() {
                    Ok(r) => r,
                    Err(e) => panic!("echo: receive failed: {e}"),
                };
                continue;
            }
            OP_LAST_REVOKED => last_revoked,
            OP_NOTIFY_COUNT => ((core::mem::take(&mut notices) << 32) | core::mem::take(&mut bits)) as i64,
            OP_SLOW => {
                k.sleep_ns(req.args[0].min(10_000) * 1_000_000);
                req.args[1].wrapping_add(1) as i64
            }
            _ => -38, // ENOSYS
        };
        let reply = Cqe { tag: req.tag, result, ..Default::default() };
        if let Err(e) = k.reply_and_receive_into(&reply, u64::MAX, &mut req) {
            panic!("echo: receive failed: {e}");
        }
    }
}
