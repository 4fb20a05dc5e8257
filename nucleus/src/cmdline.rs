//! The kernel command line: whitespace-separated `key=value` words and bare flags.

pub struct Cmdline<'a>(pub &'a str);

impl<'a> Cmdline<'a> {
    /// The value of the last `key=value` word, if any.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0
            .split_ascii_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .next_back()
    }

    /// Whether a bare word `flag` (or `flag=...`) is present.
    pub fn has(&self, flag: &str) -> bool {
        self.0.split_ascii_whitespace().any(|w| w == flag || w.split_once('=').is_some_and(|(k, _)| k == flag))
    }
}
