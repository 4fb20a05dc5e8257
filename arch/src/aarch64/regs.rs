//! System-register access and the barriers that go with page-table and TLB changes. Reads are
//! wrapped here; writes stay `unsafe` at the call site, where the `// SAFETY:` line belongs.

/// Reads a system register by name (`sysreg_read!("cntvct_el0")`).
macro_rules! sysreg_read {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading a system register has no effect on memory or on other state.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Writes a system register by name; the caller wraps it in `unsafe` and says why.
macro_rules! sysreg_write {
    ($name:literal, $v:expr) => {
        core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) ($v as u64), options(nostack, preserves_flags))
    };
}

pub(crate) use {sysreg_read, sysreg_write};

/// Makes earlier page-table stores visible to the table walker and later instructions.
pub(crate) fn publish_tables() {
    // SAFETY: barriers only order memory accesses and instruction fetch.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags)) }
}

/// Drops the TLB entries for kernel (global) page `va` in every ASID.
pub(crate) fn flush_kernel_page(va: u64) {
    // SAFETY: TLB maintenance and barriers only; the table entry was updated before.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vaae1is, {}",
            "dsb ish",
            "isb",
            in(reg) (va >> 12) & 0x0fff_ffff_ffff,
            options(nostack, preserves_flags)
        )
    }
}

/// Drops the TLB entry for user page `va` of address space `asid`.
pub(crate) fn flush_user_page(asid: u16, va: u64) {
    // SAFETY: as for `flush_kernel_page`.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vale1is, {}",
            "dsb ish",
            "isb",
            in(reg) ((asid as u64) << 48) | ((va >> 12) & 0x0fff_ffff_ffff),
            options(nostack, preserves_flags)
        )
    }
}

/// Drops every TLB entry tagged with `asid` (before the ASID is reused).
pub(crate) fn flush_asid(asid: u16) {
    // SAFETY: as for `flush_kernel_page`.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi aside1is, {}",
            "dsb ish",
            "isb",
            in(reg) (asid as u64) << 48,
            options(nostack, preserves_flags)
        )
    }
}

/// Drops every EL1&0 TLB entry of this CPU.
pub(crate) fn flush_all() {
    // SAFETY: as for `flush_kernel_page`.
    unsafe { core::arch::asm!("dsb ishst", "tlbi vmalle1is", "dsb ish", "isb", options(nostack, preserves_flags)) }
}
