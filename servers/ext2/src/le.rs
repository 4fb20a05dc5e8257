//! Little-endian field access on byte slices.
//!
//! Every on-disk structure is read and written through these helpers. They are total: a field
//! that does not fit in the slice reads as zero and a store to it is dropped, so no image and no
//! arithmetic slip can turn a field access into a panic. Callers size their buffers from
//! validated geometry, so in practice the fallback never triggers; it exists so that the parsing
//! code needs no indexing at all.

/// Copies `N` bytes at `off`, or zeros if they are not all inside `b`.
fn field<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = off.checked_add(N).and_then(|end| b.get(off..end)) {
        out.copy_from_slice(src);
    }
    out
}

/// Stores `src` at `off` if it fits inside `b`.
pub(crate) fn put_bytes(b: &mut [u8], off: usize, src: &[u8]) {
    if let Some(dst) = off.checked_add(src.len()).and_then(|end| b.get_mut(off..end)) {
        dst.copy_from_slice(src);
    }
}

pub(crate) fn get_u8(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

pub(crate) fn get_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(field(b, off))
}

pub(crate) fn get_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(field(b, off))
}

pub(crate) fn put_u8(b: &mut [u8], off: usize, v: u8) {
    put_bytes(b, off, &[v]);
}

pub(crate) fn put_u16(b: &mut [u8], off: usize, v: u16) {
    put_bytes(b, off, &v.to_le_bytes());
}

pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    put_bytes(b, off, &v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_reads_zero_and_writes_nothing() {
        let mut b = [1u8, 2, 3];
        assert_eq!(get_u16(&b, 1), 0x0302);
        assert_eq!(get_u16(&b, 2), 0);
        assert_eq!(get_u32(&b, usize::MAX), 0);
        put_u32(&mut b, 1, 0xdead_beef);
        assert_eq!(b, [1, 2, 3]);
        put_u16(&mut b, 1, 0xaabb);
        assert_eq!(b, [1, 0xbb, 0xaa]);
    }
}
