//! A bounds-checked reader of 64-bit little-endian ELF executables: the header and the program
//! headers, nothing else. Every field read is checked against the file; anything that does not
//! add up is `ENOEXEC`, never a panic (DESIGN rule 5).

/// A loadable segment.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub offset: u64,
    pub file_size: u64,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

#[derive(Clone, Debug)]
pub struct Elf {
    pub entry: u64,
    /// Position-independent (ET_DYN): needs a load bias.
    pub dynamic: bool,
    pub phoff: u64,
    pub phnum: u64,
    pub phentsize: u64,
    /// The program interpreter (dynamic loader) path, if any: its offset and size in the file,
    /// not yet checked against the file.
    pub interp: Option<(u64, u64)>,
    pub segments: [Option<Segment>; 16],
}

pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;

fn u16_at(b: &[u8], off: u64) -> Option<u16> {
    let o = usize::try_from(off).ok()?;
    Some(u16::from_le_bytes(b.get(o..o.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: u64) -> Option<u32> {
    let o = usize::try_from(off).ok()?;
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: u64) -> Option<u64> {
    let o = usize::try_from(off).ok()?;
    Some(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?))
}

/// The machine number this kernel runs (EM_X86_64 = 62, EM_AARCH64 = 183).
pub fn parse(b: &[u8], machine: u16) -> Option<Elf> {
    if b.get(..4)? != b"\x7fELF" || *b.get(4)? != 2 || *b.get(5)? != 1 {
        return None; // not ELF, not 64-bit, not little-endian
    }
    let etype = u16_at(b, 16)?;
    if (etype != 2 && etype != 3) || u16_at(b, 18)? != machine {
        return None;
    }
    let entry = u64_at(b, 24)?;
    let phoff = u64_at(b, 32)?;
    let phentsize = u16_at(b, 54)? as u64;
    let phnum = u16_at(b, 56)? as u64;
    if phentsize < 56 || phnum == 0 || phnum > 64 {
        return None;
    }
    let mut elf = Elf { entry, dynamic: etype == 3, phoff, phnum, phentsize, interp: None, segments: [None; 16] };
    let mut n = 0;
    for i in 0..phnum {
        let h = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let ptype = u32_at(b, h)?;
        let flags = u32_at(b, h + 4)?;
        let offset = u64_at(b, h + 8)?;
        let vaddr = u64_at(b, h + 16)?;
        let file_size = u64_at(b, h + 32)?;
        let mem_size = u64_at(b, h + 40)?;
        match ptype {
            PT_LOAD => {
                let end = offset.checked_add(file_size)?;
                if end > b.len() as u64 || file_size > mem_size || vaddr.checked_add(mem_size)? >= 1 << 47 {
                    return None;
                }
                if n == elf.segments.len() {
                    return None;
                }
                elf.segments[n] = Some(Segment {
                    vaddr,
                    mem_size,
                    offset,
                    file_size,
                    read: flags & 4 != 0,
                    write: flags & 2 != 0,
                    exec: flags & 1 != 0,
                });
                n += 1;
            }
            // Checked by the loader, which answers as Linux does (ENOEXEC, or EIO past the end).
            PT_INTERP => elf.interp = Some((offset, file_size)),
            _ => {}
        }
    }
    (n > 0).then_some(elf)
}

impl Elf {
    pub fn loads(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().flatten()
    }

    /// Where the program headers are in memory (before the load bias), if a segment maps them.
    pub fn phdr_vaddr(&self) -> Option<u64> {
        let size = self.phnum * self.phentsize;
        self.loads()
            .find(|s| self.phoff >= s.offset && self.phoff + size <= s.offset + s.file_size)
            .map(|s| s.vaddr + (self.phoff - s.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(parse(b"", 62).is_none());
        assert!(parse(b"\x7fELF", 62).is_none());
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16] = 2;
        h[18] = 62;
        h[32] = 0xff; // phoff far outside the file
        h[54] = 56;
        h[56] = 1;
        assert!(parse(&h, 62).is_none());
        for seed in 0..2000u32 {
            let mut x = h.to_vec();
            x.resize(256, 0);
            let mut r = seed.wrapping_mul(2654435761);
            for _ in 0..8 {
                r ^= r << 13;
                r ^= r >> 17;
                r ^= r << 5;
                let i = (r as usize) % x.len();
                x[i] = (r >> 8) as u8;
            }
            let _ = parse(&x, 62);
        }
    }
}
