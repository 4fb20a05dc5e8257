//! The kernel command line: whitespace-separated `key=value` words and bare flags, then, after
//! a `--` word, the arguments of init (as on Linux: the kernel reads nothing after it).

pub struct Cmdline<'a>(pub &'a str);

impl<'a> Cmdline<'a> {
    /// The kernel's part: everything before a `--` word.
    fn params(&self) -> impl Iterator<Item = &'a str> {
        self.0.split_ascii_whitespace().take_while(|w| *w != "--")
    }

    /// The value of the last `key=value` word, if any.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.params().filter_map(|w| w.split_once('=')).filter(|(k, _)| *k == key).map(|(_, v)| v).last()
    }

    /// Whether a bare word `flag` (or `flag=...`) is present.
    pub fn has(&self, flag: &str) -> bool {
        self.params().any(|w| w == flag || w.split_once('=').is_some_and(|(k, _)| k == flag))
    }

    /// What follows the first `--` word (init's arguments), trimmed; empty without one.
    pub fn init_args(&self) -> &'a str {
        let mut rest = self.0;
        loop {
            let trimmed = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let end = trimmed.find(|c: char| c.is_ascii_whitespace()).unwrap_or(trimmed.len());
            if end == 0 {
                return "";
            }
            let (word, after) = trimmed.split_at(end);
            if word == "--" {
                return after.trim_matches(|c: char| c.is_ascii_whitespace());
            }
            rest = after;
        }
    }
}
