//! A small client of the block protocol (`abi::proto::blk`) for the test servers, and the data
//! pattern they write. Every call goes through `server_rt::call_named`, so a death of `blk`
//! is retried transparently; a negated errno comes back as `Err(errno)`.
//!
//! The pattern is also what the host harness writes into and checks in disk images
//! (`tests/src/guest.rs` uses [`pattern_word`] too), so both sides agree byte for byte.

use abi::proto::blk::{
    BlkInfo, BlkStats, ARG_GRANT_OFFSET, ARG_LEN, ARG_OFFSET, OP_FLUSH, OP_INFO, OP_READ, OP_STATS, OP_WRITE, SERVICE,
};
use server_rt::{call_named, grant, GrantRef, Sqe, GRANT_READ, GRANT_WRITE};
use zerocopy::FromBytes;

/// Retries across restarts of `blk` (the back-off of `call_named` reaches ~256 ms per try).
pub const ATTEMPTS: u32 = 64;

/// The tag the host writes into a fresh image.
pub const HOST_TAG: u64 = 0x4057;

/// Word `j` (0..64) of the 512-byte sector `sector` written with `tag`.
pub fn pattern_word(sector: u64, j: u64, tag: u64) -> u64 {
    let mut x = sector.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tag.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) ^ j;
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}

/// Fills `buf` (whole sectors) with the pattern of the sectors from `first` on, for `tag`.
pub fn fill(buf: &mut [u8], first: u64, tag: u64) {
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        let (s, j) = (first + (i / 64) as u64, (i % 64) as u64);
        w.copy_from_slice(&pattern_word(s, j, tag).to_le_bytes());
    }
}

/// Whether the sector at `buf[..512]` (sector number `sector`) holds the pattern for `tag`.
pub fn sector_ok(buf: &[u8], sector: u64, tag: u64) -> bool {
    buf.chunks_exact(8).take(64).enumerate().all(|(j, w)| w == pattern_word(sector, j as u64, tag).to_le_bytes())
}

/// A grant of `buf` that the server may write (the pointer comes from a `&mut`, so the
/// compiler knows the call may change the buffer).
pub fn grant_mut(buf: &mut [u8], rights: u32) -> GrantRef {
    GrantRef::own_memory(buf.as_mut_ptr() as u64, buf.len() as u64, rights)
}

/// Sends a request with `args` at `ARG_OFFSET`, `ARG_LEN`, `ARG_GRANT_OFFSET`.
pub fn call(opcode: u32, args: [u64; 3], g: GrantRef) -> Result<i64, i64> {
    let mut s = Sqe::new(opcode, [0; 6]);
    s.args[ARG_OFFSET] = args[0];
    s.args[ARG_LEN] = args[1];
    s.args[ARG_GRANT_OFFSET] = args[2];
    s.grant = g;
    match call_named(SERVICE, &s, ATTEMPTS) {
        Ok(c) if c.result >= 0 => Ok(c.result),
        Ok(c) => Err(c.result),
        Err(e) => Err(e.code()),
    }
}

pub fn info() -> Result<BlkInfo, i64> {
    let mut b = [0u8; core::mem::size_of::<BlkInfo>()];
    call(OP_INFO, [0; 3], grant_mut(&mut b, GRANT_WRITE))?;
    BlkInfo::read_from_bytes(&b[..]).map_err(|_| -5)
}

pub fn stats() -> Result<BlkStats, i64> {
    let mut b = [0u8; core::mem::size_of::<BlkStats>()];
    call(OP_STATS, [0; 3], grant_mut(&mut b, GRANT_WRITE))?;
    BlkStats::read_from_bytes(&b[..]).map_err(|_| -5)
}

/// Reads `buf.len()` bytes at device offset `offset`.
pub fn read(offset: u64, buf: &mut [u8]) -> Result<i64, i64> {
    let len = buf.len() as u64;
    call(OP_READ, [offset, len, 0], grant_mut(buf, GRANT_WRITE))
}

/// Writes `buf` at device offset `offset`.
pub fn write(offset: u64, buf: &[u8]) -> Result<i64, i64> {
    call(OP_WRITE, [offset, buf.len() as u64, 0], grant(buf, GRANT_READ))
}

pub fn flush() -> Result<i64, i64> {
    call(OP_FLUSH, [0; 3], GrantRef::NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_names_sector_and_tag() {
        let mut b = alloc::vec![0u8; 1024];
        fill(&mut b, 7, 3);
        assert!(sector_ok(&b, 7, 3) && sector_ok(&b[512..], 8, 3));
        assert!(!sector_ok(&b, 8, 3), "a sector's data names its number");
        assert!(!sector_ok(&b, 7, 4), "and the tag it was written with");
        assert_ne!(&b[..512], &b[512..], "sectors differ");
    }
}
