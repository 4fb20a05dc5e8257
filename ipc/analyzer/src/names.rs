//! Human names for endpoints, tasks and opcodes, which trace records cannot carry.
//!
//! Names arrive as lines, from a `--names FILE` or from `@@TRACE-NAME` lines of a console
//! transcript, in one grammar:
//!
//! ```text
//! # comment
//! endpoint <index> <name>
//! task <slot> <name>
//! opcode <endpoint index> <opcode> <name>
//! ```
//!
//! Numbers are decimal or `0x` hex; the name is the rest of the line, trimmed. A later line
//! for the same key replaces an earlier one (a transcript may rename a slot that was reused).
//!
//! It owns only the table. Invariant: lookups never fail — a missing name yields `None` and
//! the caller falls back to a numbered label; a malformed line is an error naming the line,
//! never a panic.

use std::collections::BTreeMap;

/// Names given to endpoints, tasks and (endpoint, opcode) pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// Endpoint index → name.
    pub endpoints: BTreeMap<u32, String>,
    /// Task slot → name.
    pub tasks: BTreeMap<u32, String>,
    /// (endpoint index, opcode) → name of the operation.
    pub opcodes: BTreeMap<(u32, u32), String>,
}

/// Parses a decimal or `0x`-prefixed hexadecimal `u32`.
pub fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Names {
    /// Adds the name one line gives. Blank lines and `#` comments are accepted and ignored.
    pub fn add_line(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let (what, rest) =
            line.split_once(char::is_whitespace).ok_or_else(|| format!("incomplete name line `{line}`"))?;
        let number = |s: &str| parse_u32(s).ok_or_else(|| format!("bad number `{s}` in name line `{line}`"));
        let split = |s: &str| -> Result<(u32, String), String> {
            let s = s.trim_start();
            let (n, name) = s.split_once(char::is_whitespace).ok_or_else(|| format!("missing name in `{line}`"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("missing name in `{line}`"));
            }
            Ok((number(n)?, name.to_string()))
        };
        match what {
            "endpoint" => {
                let (n, name) = split(rest)?;
                self.endpoints.insert(n, name);
            }
            "task" => {
                let (n, name) = split(rest)?;
                self.tasks.insert(n, name);
            }
            "opcode" => {
                let rest = rest.trim_start();
                let (ep, rest) =
                    rest.split_once(char::is_whitespace).ok_or_else(|| format!("incomplete name line `{line}`"))?;
                let (op, name) = split(rest)?;
                self.opcodes.insert((number(ep)?, op), name);
            }
            other => return Err(format!("unknown name kind `{other}` (expected endpoint, task or opcode)")),
        }
        Ok(())
    }

    /// Reads a whole names file; errors name the 1-based line.
    pub fn parse(text: &str) -> Result<Names, String> {
        let mut names = Names::default();
        for (i, line) in text.lines().enumerate() {
            names.add_line(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        }
        Ok(names)
    }

    /// Adds every name of `other`, replacing ours where both name the same thing.
    pub fn merge(&mut self, other: Names) {
        self.endpoints.extend(other.endpoints);
        self.tasks.extend(other.tasks);
        self.opcodes.extend(other.opcodes);
    }

    /// The name of endpoint `index`, if given.
    pub fn endpoint(&self, index: u32) -> Option<&str> {
        self.endpoints.get(&index).map(String::as_str)
    }

    /// The name of task `slot`, if given.
    pub fn task(&self, slot: u32) -> Option<&str> {
        self.tasks.get(&slot).map(String::as_str)
    }

    /// The name of `opcode` on endpoint `index`: given by a name line, or known from the
    /// protocol of the server the endpoint is named after (`abi::proto`).
    pub fn opcode(&self, index: u32, opcode: u32) -> Option<&str> {
        self.opcodes
            .get(&(index, opcode))
            .map(String::as_str)
            .or_else(|| abi::proto::opcode_name(self.endpoint(index)?, opcode))
    }

    /// A label for endpoint `index`: its name, or `endpoint N`.
    pub fn endpoint_label(&self, index: u32) -> String {
        match self.endpoint(index) {
            Some(name) => name.to_string(),
            None if index == u32::MAX => "no endpoint".to_string(),
            None => format!("endpoint {index}"),
        }
    }

    /// A label for `opcode` of endpoint `index`: `[name]` or `[opcode N]`.
    pub fn opcode_label(&self, index: u32, opcode: u32) -> String {
        match self.opcode(index, opcode) {
            Some(name) => format!("[{name}]"),
            None => format!("[opcode {opcode}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_kinds() {
        let names =
            Names::parse("# names\nendpoint 3 vfs\n\ntask 0x5 linux server\nopcode 3 2 open\n  endpoint 3 vfs2  \n")
                .unwrap();
        assert_eq!(names.endpoint(3), Some("vfs2"), "later lines replace earlier ones");
        assert_eq!(names.task(5), Some("linux server"));
        assert_eq!(names.opcode(3, 2), Some("open"));
        assert_eq!(names.endpoint_label(4), "endpoint 4");
        assert_eq!(names.opcode_label(3, 2), "[open]");
        assert_eq!(names.opcode_label(3, 1), "[opcode 1]");
    }

    #[test]
    fn errors_name_the_line() {
        assert!(Names::parse("endpoint 3 vfs\nendpoint x vfs").unwrap_err().starts_with("line 2:"));
        assert!(Names::parse("endpoint 3").is_err());
        assert!(Names::parse("endpoint 3   ").is_err());
        assert!(Names::parse("server 1 foo").is_err());
        assert!(Names::parse("opcode 1").is_err());
    }
}
