//! System call numbers. Both tables are always compiled (host tools decode traces from either
//! architecture); `current` is the one of the target being built. This module is the only place
//! in `abi/` that may `#[cfg]` on the architecture.

pub mod aarch64;
pub mod x86_64;

pub mod layout_aarch64;
pub mod layout_x86_64;

#[cfg(target_arch = "aarch64")]
pub use aarch64 as current;
#[cfg(not(target_arch = "aarch64"))]
pub use x86_64 as current;

/// Structure layouts that differ between the architectures (`struct stat`...).
#[cfg(target_arch = "aarch64")]
pub use layout_aarch64 as layout;
#[cfg(not(target_arch = "aarch64"))]
pub use layout_x86_64 as layout;

/// The architecture this crate is built for.
#[cfg(target_arch = "aarch64")]
pub const CURRENT: Arch = Arch::Aarch64;
#[cfg(not(target_arch = "aarch64"))]
pub const CURRENT: Arch = Arch::X86_64;

/// Which architecture's numbering a value uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// The name of system call `nr` on `arch`, if it has one.
pub fn name(arch: Arch, nr: usize) -> Option<&'static str> {
    let table = match arch {
        Arch::X86_64 => x86_64::TABLE,
        Arch::Aarch64 => aarch64::TABLE,
    };
    table.binary_search_by_key(&nr, |&(n, _)| n).ok().map(|i| table[i].1)
}

/// The number of the system call named `name` on `arch`, if it has one.
pub fn number(arch: Arch, name: &str) -> Option<usize> {
    let table = match arch {
        Arch::X86_64 => x86_64::TABLE,
        Arch::Aarch64 => aarch64::TABLE,
    };
    table.iter().find(|&&(_, n)| n == name).map(|&(nr, _)| nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_numbers() {
        assert_eq!(x86_64::READ, 0);
        assert_eq!(x86_64::EXIT_GROUP, 231);
        assert_eq!(aarch64::OPENAT, 56);
        assert_eq!(aarch64::EXIT_GROUP, 94);
        assert_eq!(name(Arch::X86_64, 39), Some("getpid"));
        assert_eq!(name(Arch::Aarch64, 172), Some("getpid"));
        assert_eq!(name(Arch::X86_64, 100_000), None);
        assert_eq!(number(Arch::X86_64, "getpid"), Some(39));
        assert_eq!(number(Arch::Aarch64, "gettid"), Some(178));
        assert_eq!(number(Arch::Aarch64, "fork"), None);
    }

    #[test]
    fn tables_sorted_and_unique() {
        for t in [x86_64::TABLE, aarch64::TABLE] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
}
