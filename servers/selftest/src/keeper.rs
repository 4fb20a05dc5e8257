//! The keeper server: a counter kept in its state area, the smallest *transparent* server. Each
//! `OP_ADD` computes the new total and commits it together with the request id and result in
//! one atomic state commit, then replies; a retry of a request whose commit happened (the
//! server died between commit and reply) is recognised by its id and answered from the record
//! instead of being applied twice. The test driver kills it at random points while adding and
//! checks that the total is exact.

use server_rt::{kernel, Cqe, StateWrite};

/// Adds `args[0]` to the total; answers the new total. Carries a request id. With `args[1]`
/// = 1 the keeper kills itself right after the commit, before answering: the worst moment,
/// which only the request-id record makes safe.
pub const OP_ADD: u32 = 1;
/// Answers the total.
pub const OP_TOTAL: u32 = 2;
/// Answers how many instances of the keeper have run (kept in the state area too).
pub const OP_STARTS: u32 = 3;

/// State layout: total, starts, then the last few (rid, result) records.
const RECORDS: usize = 8;
const STATE_WORDS: usize = 2 + 2 * RECORDS;

fn load() -> [u64; STATE_WORDS] {
    let mut bytes = [0u8; STATE_WORDS * 8];
    let _ = kernel().state_read(0, &mut bytes);
    let mut w = [0u64; STATE_WORDS];
    for (i, c) in bytes.chunks_exact(8).enumerate() {
        w[i] = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
    }
    w
}

fn store(w: &[u64; STATE_WORDS]) {
    let mut bytes = [0u8; STATE_WORDS * 8];
    for (i, v) in w.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    if let Err(e) = kernel().state_commit(&[StateWrite::Bytes { offset: 0, data: &bytes }]) {
        panic!("keeper: state commit failed: {e}");
    }
}

pub fn main() {
    let k = kernel();
    let mut w = load();
    w[1] += 1;
    store(&w);
    let mut req = k.receive().unwrap_or_else(|e| panic!("keeper: receive failed: {e}"));
    loop {
        let result = match req.opcode {
            OP_ADD => {
                let records = &w[2..];
                match (0..RECORDS).find(|&i| req.rid != 0 && records[2 * i] == req.rid) {
                    Some(i) => records[2 * i + 1] as i64,
                    None => {
                        let total = w[0].wrapping_add(req.args[0]);
                        let slot = 2 + 2 * (req.rid as usize % RECORDS);
                        let mut next = w;
                        next[0] = total;
                        next[slot] = req.rid;
                        next[slot + 1] = total;
                        store(&next);
                        w = next;
                        if req.args[1] == 1 {
                            k.fault_self(server_rt::FaultKind::Kill);
                        }
                        total as i64
                    }
                }
            }
            OP_TOTAL => w[0] as i64,
            OP_STARTS => w[1] as i64,
            _ => -38,
        };
        let reply = Cqe { tag: req.tag, result, ..Default::default() };
        req = k.reply_and_receive(&reply).unwrap_or_else(|e| panic!("keeper: receive failed: {e}"));
    }
}
