//! Block-device clients for the concurrency and kill tests: three servers (`blkc1`..`blkc3`)
//! that hammer `blk` at once, each in its own region of the disk, and check every byte they
//! read against what they last wrote there.
//!
//! The test driver configures a client ([`OP_CONFIGURE`]), starts it with the notification bit
//! [`GO`], and (for an open-ended run) stops it with [`STOP`]; the client then reads its whole
//! region back, notifies the driver (bit `1 << n` for client `n`) and answers [`OP_RESULT`].
//! A client does its work between two `receive`s, so the driver never waits in a call on a
//! busy client (which the nucleus's hang deadline would punish).
//!
//! Writes use a fresh tag each (client number in the high bits), and the client remembers the
//! tag of every sector, so a lost, stale, torn or misplaced write shows up as a wrong sector.

use crate::blkio::{self, fill, sector_ok};
use alloc::vec;
use server_rt::{kernel, log, Cqe, Sqe};

/// Configure a run: `args` = [region base (bytes), region size (bytes), seed, iterations (0 =
/// until [`STOP`])].
pub const OP_CONFIGURE: u32 = 1;
/// The last run's result: operations done, or a negative error.
pub const OP_RESULT: u32 = 2;
/// Notification bits from the driver.
pub const GO: u64 = 1;
pub const STOP: u64 = 2;

const SECTOR: u64 = 512;
/// Request sizes in sectors, picked at random.
const SIZES: [u64; 5] = [1, 8, 24, 64, 128];

#[derive(Clone, Copy, Default)]
struct Config {
    base: u64,
    size: u64,
    seed: u64,
    iterations: u64,
}

pub fn main1() {
    run(1)
}

pub fn main2() {
    run(2)
}

pub fn main3() {
    run(3)
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn run(me: u64) {
    let k = kernel();
    let mut cfg: Option<Config> = None;
    let mut result: i64 = -1;
    let mut next = k.receive();
    loop {
        let req = match next {
            Ok(r) => r,
            Err(e) => panic!("blkc{me}: receive failed: {e}"),
        };
        if req.is_notification() {
            let mut held = None;
            if let (true, Some(c)) = (req.args[0] & GO != 0, cfg) {
                result = match workload(me, c, &mut held) {
                    Ok(ops) => ops as i64,
                    Err(why) => {
                        log!("blkc{me}: FAILED: {why}");
                        -1
                    }
                };
                if let Ok(d) = k.lookup("testdriver") {
                    let _ = k.notify(d, 1 << me);
                }
            }
            next = match held {
                Some(r) => Ok(r),
                None => k.receive(),
            };
            continue;
        }
        let answer = match req.opcode {
            OP_CONFIGURE => {
                let a = req.args;
                cfg = Some(Config { base: a[0], size: a[1], seed: a[2].max(1), iterations: a[3] });
                0
            }
            OP_RESULT => result,
            _ => -38,
        };
        next = k.reply_and_receive(&Cqe::new(req.tag, answer));
    }
}

/// One run; a request that arrived while running (polled for STOP) is left in `held`.
fn workload(me: u64, c: Config, held: &mut Option<Sqe>) -> Result<u64, &'static str> {
    let k = kernel();
    let sectors = c.size / SECTOR;
    let first = c.base / SECTOR;
    if sectors == 0 || !c.base.is_multiple_of(SECTOR) {
        return Err("bad configuration");
    }
    let mut tags = vec![0u64; sectors as usize];
    let mut buf = vec![0u8; 128 * SECTOR as usize];
    let mut tag = me << 40;
    let mut rng = c.seed;
    let mut ops = 0u64;
    // The whole region first, so that every sector has a known tag.
    let mut s = 0;
    while s < sectors {
        let n = (sectors - s).min(128);
        tag += 1;
        let b = &mut buf[..(n * SECTOR) as usize];
        fill(b, first + s, tag);
        blkio::write((first + s) * SECTOR, b).map_err(|_| "initial write failed")?;
        tags[s as usize..(s + n) as usize].fill(tag);
        s += n;
        ops += 1;
    }
    let mut i = 0u64;
    loop {
        if c.iterations != 0 && i >= c.iterations {
            break;
        }
        if c.iterations == 0 {
            match k.poll_receive() {
                Some(m) if m.is_notification() && m.args[0] & STOP != 0 => break,
                Some(m) if !m.is_notification() => {
                    *held = Some(m);
                }
                _ => {}
            }
        }
        i += 1;
        let r = xorshift(&mut rng);
        let n = SIZES[(r % SIZES.len() as u64) as usize].min(sectors);
        let at = (r >> 8) % (sectors - n + 1);
        let b = &mut buf[..(n * SECTOR) as usize];
        if (r >> 40) & 1 == 1 {
            tag += 1;
            fill(b, first + at, tag);
            blkio::write((first + at) * SECTOR, b).map_err(|_| "a write failed for good")?;
            tags[at as usize..(at + n) as usize].fill(tag);
        } else {
            blkio::read((first + at) * SECTOR, b).map_err(|_| "a read failed for good")?;
            for j in 0..n {
                let sec = &b[(j * SECTOR) as usize..((j + 1) * SECTOR) as usize];
                if !sector_ok(sec, first + at + j, tags[(at + j) as usize]) {
                    log!("blkc{me}: sector {} holds the wrong data", first + at + j);
                    return Err("read back wrong data");
                }
            }
        }
        ops += 1;
    }
    // Everything, once more.
    let mut s = 0;
    while s < sectors {
        let n = (sectors - s).min(128);
        let b = &mut buf[..(n * SECTOR) as usize];
        blkio::read((first + s) * SECTOR, b).map_err(|_| "final read failed")?;
        for j in 0..n {
            if !sector_ok(&b[(j * SECTOR) as usize..], first + s + j, tags[(s + j) as usize]) {
                log!("blkc{me}: sector {} holds the wrong data at the end", first + s + j);
                return Err("final check found wrong data");
            }
        }
        s += n;
        ops += 1;
    }
    Ok(ops)
}
