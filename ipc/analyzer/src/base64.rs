//! Base64 (RFC 4648, standard alphabet), the encoding of `@@TRACE` transcript lines.
//!
//! It owns only the byte ↔ text mapping. The decoder ignores ASCII whitespace and accepts the
//! payload with or without `=` padding (a guest writing to a serial port may not bother), but
//! refuses any other character, padding in the middle, or a dangling 6-bit group: a damaged
//! line is an error for the caller to report, never silently-wrong bytes. The encoder always
//! pads; `decode(encode(x)) == x` for every `x`.

use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a payload is not base64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// A byte outside the alphabet, at this offset of the input.
    BadChar(usize),
    /// Data after `=` padding.
    DataAfterPadding,
    /// A final group of one character, which encodes no whole byte.
    Truncated,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::BadChar(at) => write!(f, "invalid base64 character at offset {at}"),
            Base64Error::DataAfterPadding => f.write_str("base64 data after '=' padding"),
            Base64Error::Truncated => f.write_str("truncated base64 (dangling character)"),
        }
    }
}

impl std::error::Error for Base64Error {}

fn value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as u32),
        b'a'..=b'z' => Some((c - b'a') as u32 + 26),
        b'0'..=b'9' => Some((c - b'0') as u32 + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The bytes `text` encodes.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let (mut acc, mut bits, mut padded) = (0u32, 0u32, false);
    let mut chars = 0usize;
    for (i, c) in text.bytes().enumerate() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padded = true;
            continue;
        }
        if padded {
            return Err(Base64Error::DataAfterPadding);
        }
        let v = value(c).ok_or(Base64Error::BadChar(i))?;
        chars += 1;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if chars % 4 == 1 {
        return Err(Base64Error::Truncated);
    }
    Ok(out)
}

/// `bytes` as padded base64.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
            assert_eq!(decode(coded.trim_end_matches('=')).unwrap(), plain.as_bytes(), "padding optional");
        }
    }

    #[test]
    fn round_trip_all_bytes() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for len in 0..40 {
            assert_eq!(decode(&encode(&bytes[..len])).unwrap(), &bytes[..len]);
        }
        assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn rejects_damage() {
        assert_eq!(decode("Zm9v!"), Err(Base64Error::BadChar(4)));
        assert_eq!(decode("Zg==Zg"), Err(Base64Error::DataAfterPadding));
        assert_eq!(decode("Zm9vY"), Err(Base64Error::Truncated));
        assert_eq!(decode(" Zm 9v\r\n").unwrap(), b"foo");
    }
}
