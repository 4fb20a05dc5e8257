//! The vDSO: a small shared object of user-mode code (`vdso/vdso.c`, built by `build.rs`) that
//! the `linux` server maps into every process so that `clock_gettime`, `gettimeofday` and
//! `time` need no system call, as on Linux. It computes the nucleus's own clock from the
//! counter user mode may read, with the numbers of its data page, which the loader maps just
//! below the image.

/// The vDSO's ELF image for this architecture, mapped as it is (its file layout is its memory
/// layout), page-aligned, at the address given to the process as `AT_SYSINFO_EHDR`.
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// `struct vdso_clock.magic`: the data page was filled in.
const MAGIC: u64 = 0x3176_6f64_6e72_6163;

/// The words of the data page (`struct vdso_clock`): magic, the counter at boot, the
/// multiplier, and `realtime_offset_ns` (CLOCK_REALTIME minus CLOCK_MONOTONIC).
pub fn data(realtime_offset_ns: u64) -> [u64; 4] {
    let (base, mult) = super::timer::user_clock();
    [MAGIC, base, mult, realtime_offset_ns]
}
