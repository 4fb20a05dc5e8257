//! A read-only look at the initial root file system (cpio "newc") that the boot loader placed in
//! memory. The nucleus only lists it at boot; serving it as a file system is the ramfs server's
//! job. Every header field is checked against the archive's bounds: a corrupt archive stops the
//! listing with a message, never a fault.

use crate::kprintln;

/// One archive member.
pub struct Entry<'a> {
    pub name: &'a str,
    pub mode: u32,
    pub data: &'a [u8],
}

fn hex(field: &[u8]) -> Option<u32> {
    core::str::from_utf8(field).ok().and_then(|s| u32::from_str_radix(s, 16).ok())
}

/// Iterates over a newc archive; stops at `TRAILER!!!` or at the first malformed header.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    pub error: Option<&'static str>,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0, error: None }
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.error.is_some() {
            return None;
        }
        let fail = |me: &mut Self, why| {
            me.error = Some(why);
            None
        };
        let Some(h) = self.data.get(self.pos..self.pos + 110) else {
            return fail(self, "truncated header");
        };
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return fail(self, "bad magic");
        }
        let (Some(mode), Some(filesize), Some(namesize)) = (hex(&h[14..22]), hex(&h[54..62]), hex(&h[94..102])) else {
            return fail(self, "bad header field");
        };
        let name_start = self.pos + 110;
        let Some(name_bytes) = self.data.get(name_start..name_start + namesize as usize) else {
            return fail(self, "name overruns the archive");
        };
        let name = core::str::from_utf8(name_bytes.strip_suffix(&[0]).unwrap_or(name_bytes)).unwrap_or("?");
        let data_start = (name_start + namesize as usize).next_multiple_of(4);
        let Some(data) = self.data.get(data_start..data_start + filesize as usize) else {
            return fail(self, "file data overruns the archive");
        };
        self.pos = (data_start + filesize as usize).next_multiple_of(4);
        if name == "TRAILER!!!" {
            return None;
        }
        Some(Entry { name, mode, data })
    }
}

/// The initrd's bytes (empty if there is none).
pub fn bytes(info: &arch::BootInfo) -> &'static [u8] {
    match info.initrd {
        // SAFETY: the boot info's initrd range is RAM the frame allocator keeps reserved for
        // good, inside the direct map, and nothing writes to it.
        Some((start, len)) => unsafe {
            core::slice::from_raw_parts(arch::mm::phys_to_virt(start) as *const u8, len as usize)
        },
        None => &[],
    }
}

/// Prints the initrd's members (path, mode, size).
pub fn list(info: &arch::BootInfo) {
    if info.initrd.is_none() {
        kprintln!("initrd: none");
        return;
    }
    let data = bytes(info);
    let mut reader = Reader::new(data);
    let mut count = 0;
    for e in reader.by_ref() {
        if count < 16 {
            kprintln!("  /{:<40} {:06o} {:>9}", e.name, e.mode, e.data.len());
        }
        count += 1;
    }
    if count > 16 {
        kprintln!("  ... and {} more", count - 16);
    }
    kprintln!("initrd: {count} entries");
    if let Some(why) = reader.error {
        kprintln!("initrd: stopped early: {why}");
    }
}
