//! The echo server. Its state (a call counter) lives in its own arena and dies with it, which
//! is how the tests see that a request was served by a fresh instance.

use server_rt::{kernel, Cqe, FaultKind};

pub const OP_ECHO: u32 = 1;
pub const OP_COUNT: u32 = 2;
pub const OP_PANIC: u32 = 3;
pub const OP_FAULT: u32 = 4;
pub const OP_OVERFLOW: u32 = 5;
pub const OP_HANG: u32 = 6;

/// Recursion with a large frame; `black_box` keeps the frames real.
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 128]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(frame[(depth % 128) as usize])
}

pub fn main() {
    let k = kernel();
    let mut served: u64 = 0;
    let mut req = match k.receive() {
        Ok(r) => r,
        Err(e) => panic!("echo: receive failed: {e}"),
    };
    loop {
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
            _ => -38, // ENOSYS
        };
        let reply = Cqe { tag: req.tag, result, ..Default::default() };
        req = match k.reply_and_receive(&reply) {
            Ok(r) => r,
            Err(e) => panic!("echo: receive failed: {e}"),
        };
    }
}
