//! What the harness reads in a console transcript: the markers the kernel prints and the
//! checks a guest test makes (ordered expectations, forbidden strings).
//!
//! Markers (each on its own line; leading whitespace and a trailing `\r` are tolerated, text
//! before the marker on the same line is not, so that a shell echoing a command that merely
//! mentions a marker does not count):
//! * `@@TEST-PASS <name>`
//! * `@@TEST-FAIL <name>: <reason>`
//! * `@@POWEROFF <code>` (decimal, may be negative): the last line before power-off; its code is
//!   the authoritative result of the run.
//!
//! A crash of the nucleus prints a report containing one of [`CRASH_SIGNS`] and powers off with
//! a nonzero code.

/// Printed by the nucleus when it crashes; forbidden in every test that does not expect them.
pub const CRASH_SIGNS: &[&str] = &["NUCLEUS PANIC", "CPU EXCEPTION"];

/// Forbidden in every guest test unless one of its expectations contains it.
pub const DEFAULT_FORBID: &[&str] = &["NUCLEUS PANIC", "CPU EXCEPTION", "@@TEST-FAIL"];

pub const PASS: &str = "@@TEST-PASS ";
pub const FAIL: &str = "@@TEST-FAIL ";
pub const POWEROFF: &str = "@@POWEROFF ";

/// A marker line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker<'a> {
    Pass(&'a str),
    Fail { name: &'a str, reason: &'a str },
    PowerOff(i32),
}

/// The marker on `line`, if it is one.
pub fn parse_marker(line: &str) -> Option<Marker<'_>> {
    let l = line.trim();
    if let Some(name) = l.strip_prefix(PASS) {
        let name = name.trim();
        return (!name.is_empty()).then_some(Marker::Pass(name));
    }
    if let Some(rest) = l.strip_prefix(FAIL) {
        let (name, reason) = rest.split_once(':').unwrap_or((rest, ""));
        let name = name.trim();
        return (!name.is_empty()).then_some(Marker::Fail { name, reason: reason.trim() });
    }
    poweroff_code(l).map(Marker::PowerOff)
}

/// The code of a `@@POWEROFF <code>` line.
pub fn poweroff_code(line: &str) -> Option<i32> {
    line.trim().strip_prefix(POWEROFF)?.trim().parse().ok()
}

/// The code of the last `@@POWEROFF` line of a transcript.
pub fn last_poweroff(text: &str) -> Option<i32> {
    text.lines().rev().find_map(poweroff_code)
}

/// Every marker of a transcript, in order.
pub fn markers(text: &str) -> Vec<Marker<'_>> {
    text.lines().filter_map(parse_marker).collect()
}

/// The transcript as the checks see it: `\r` removed (serial consoles end lines with `\r\n`).
pub fn normalize(text: &str) -> String {
    text.replace('\r', "")
}

/// Why an ordered expectation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmet<'a> {
    /// `expect` does not appear at all.
    Missing { expect: &'a str, after: Option<&'a str> },
    /// `expect` appears, but only before the end of the match of `after`.
    OutOfOrder { expect: &'a str, after: &'a str },
}

impl std::fmt::Display for Unmet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unmet::Missing { expect, after: None } => write!(f, "missing {expect:?}"),
            Unmet::Missing { expect, after: Some(a) } => write!(f, "missing {expect:?} (expected after {a:?})"),
            Unmet::OutOfOrder { expect, after } => write!(f, "{expect:?} appears, but not after {after:?}"),
        }
    }
}

/// Checks that every string of `expect` occurs in `text`, each after the end of the match of
/// the previous one. A trailing newline of an expectation does not count as consumed, so that
/// `"\n2\n"` followed by `"\n4\n"` matches the lines `2` and `4` in a row. `text` should be
/// [`normalize`]d.
pub fn match_in_order<'a>(text: &str, expect: &[&'a str]) -> Result<(), Unmet<'a>> {
    let mut at = 0;
    let mut prev: Option<&'a str> = None;
    for &e in expect {
        match text[at..].find(e) {
            Some(i) => at += i + e.trim_end_matches('\n').len(),
            None => {
                return Err(match prev {
                    Some(after) if text.contains(e) => Unmet::OutOfOrder { expect: e, after },
                    after => Unmet::Missing { expect: e, after },
                })
            }
        }
        prev = Some(e);
    }
    Ok(())
}

/// The first forbidden string that occurs in `text`.
pub fn first_forbidden<'a>(text: &str, forbid: &[&'a str]) -> Option<&'a str> {
    forbid.iter().copied().find(|f| text.contains(f))
}

/// [`DEFAULT_FORBID`] minus what `expect` asks for, plus `extra`.
pub fn effective_forbid<'a>(expect: &[&str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&'a str> =
        DEFAULT_FORBID.iter().copied().filter(|f| !expect.iter().any(|e| e.contains(f))).collect();
    for f in extra {
        if !v.contains(f) {
            v.push(f);
        }
    }
    v
}

/// The last `n` lines of `text` for a failure report, each prefixed with `prefix`, with
/// control characters shown as `^X` so that escape sequences cannot garble a terminal.
pub fn tail(text: &str, n: usize, prefix: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for l in &lines[lines.len().saturating_sub(n)..] {
        out.push_str(prefix);
        for c in l.trim_end_matches('\r').chars() {
            match c {
                '\t' => out.push(c),
                c if (c as u32) < 0x20 => {
                    out.push('^');
                    out.push(char::from(c as u8 + 0x40));
                }
                '\u{7f}' => out.push_str("^?"),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse() {
        assert_eq!(parse_marker("@@TEST-PASS ticks\r"), Some(Marker::Pass("ticks")));
        assert_eq!(
            parse_marker("  @@TEST-FAIL heap: out of memory: 3 frames"),
            Some(Marker::Fail { name: "heap", reason: "out of memory: 3 frames" })
        );
        assert_eq!(parse_marker("@@TEST-FAIL heap"), Some(Marker::Fail { name: "heap", reason: "" }));
        assert_eq!(parse_marker("@@POWEROFF 0"), Some(Marker::PowerOff(0)));
        assert_eq!(parse_marker("@@POWEROFF 3\r\n"), Some(Marker::PowerOff(3)));
        assert_eq!(parse_marker("@@POWEROFF -1"), Some(Marker::PowerOff(-1)));
        assert_eq!(parse_marker("@@POWEROFF"), None);
        assert_eq!(parse_marker("@@POWEROFF x"), None);
        assert_eq!(parse_marker("@@POWEROFF 1 2"), None);
        assert_eq!(parse_marker("@@TEST-PASS "), None);
        assert_eq!(parse_marker("/ # echo @@POWEROFF 0"), None, "text before a marker");
        assert_eq!(parse_marker("hello"), None);
    }

    #[test]
    fn last_poweroff_and_all_markers() {
        let t = "boot\r\n@@TEST-PASS a\r\n@@TEST-FAIL b: no\r\n@@POWEROFF 1\r\n@@POWEROFF 4\r\n";
        assert_eq!(last_poweroff(t), Some(4));
        assert_eq!(last_poweroff("no marker"), None);
        assert_eq!(
            markers(t),
            [Marker::Pass("a"), Marker::Fail { name: "b", reason: "no" }, Marker::PowerOff(1), Marker::PowerOff(4)]
        );
    }

    #[test]
    fn ordered_expectations() {
        let t = normalize("Cairn 0.1\r\nmemory map (7 regions):\r\n2\r\n4\r\n@@POWEROFF 0\r\n");
        assert_eq!(match_in_order(&t, &["Cairn", "memory map", "@@POWEROFF 0"]), Ok(()));
        assert_eq!(match_in_order(&t, &[]), Ok(()));
        assert_eq!(match_in_order(&t, &["\n2\n", "\n4\n"]), Ok(()), "a trailing newline is shared");
        assert_eq!(
            match_in_order(&t, &["memory map", "Cairn"]),
            Err(Unmet::OutOfOrder { expect: "Cairn", after: "memory map" })
        );
        assert_eq!(
            match_in_order(&t, &["Cairn", "frames:"]),
            Err(Unmet::Missing { expect: "frames:", after: Some("Cairn") })
        );
        assert_eq!(match_in_order(&t, &["nope"]), Err(Unmet::Missing { expect: "nope", after: None }));
        // The same string twice needs two occurrences.
        assert_eq!(match_in_order("a a", &["a", "a"]), Ok(()));
        assert!(match_in_order("a", &["a", "a"]).is_err());
        let msg = match_in_order(&t, &["memory map", "Cairn"]).unwrap_err().to_string();
        assert_eq!(msg, r#""Cairn" appears, but not after "memory map""#);
    }

    #[test]
    fn forbidden_strings() {
        assert_eq!(first_forbidden("all good", DEFAULT_FORBID), None);
        assert_eq!(first_forbidden("x\nNUCLEUS PANIC at y", DEFAULT_FORBID), Some("NUCLEUS PANIC"));
        let f = effective_forbid(&["CPU EXCEPTION", "page fault"], &["NUCLEUS PANIC", "oops"]);
        assert_eq!(f, ["NUCLEUS PANIC", "@@TEST-FAIL", "oops"]);
        assert_eq!(effective_forbid(&["@@TEST-FAIL ipc: expected"], &[]), ["NUCLEUS PANIC", "CPU EXCEPTION"]);
    }

    #[test]
    fn tail_is_safe_to_print() {
        let t = "1\n2\n\x1b[2Jthree\r\n4\n";
        assert_eq!(tail(t, 2, "  | "), "  | ^[[2Jthree\n  | 4\n");
        assert_eq!(tail("", 30, "| "), "");
        assert_eq!(tail("a\nb", 30, ""), "a\nb\n");
    }
}
