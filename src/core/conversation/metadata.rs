//! Group metadata, extension 0xFF01 (PROTOCOL.md §2.8): `version u16 BE (= 1) ‖
//! name opaque<V> ‖ desc opaque<V>`, where `<V>` is MLS's QUIC-style varint length.

use super::mls::{put_vec, take_vec};
use crate::core::error::{CoreError, Result};

/// The only version defined.
const VERSION: u16 = 1;
/// The most a name or description may hold (bytes): they travel in every commit.
pub const MAX_FIELD: usize = 4096;

/// Name and description of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The name.
    pub name: String,
    /// The description.
    pub description: String,
}

impl Metadata {
    /// Checks the app's input.
    pub fn new(name: &str, description: &str) -> Result<Self> {
        if name.trim().is_empty() || name.len() > MAX_FIELD || description.len() > MAX_FIELD {
            return Err(CoreError::InvalidArgument(format!(
                "a group name is 1 to {MAX_FIELD} bytes and a description at most {MAX_FIELD}"
            )));
        }
        Ok(Metadata { name: name.to_owned(), description: description.to_owned() })
    }

    /// The extension bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = VERSION.to_be_bytes().to_vec();
        put_vec(&mut out, self.name.as_bytes());
        put_vec(&mut out, self.description.as_bytes());
        out
    }

    /// Parses extension bytes; any version but 1 is an error.
    pub fn decode(mut b: &[u8]) -> Result<Self> {
        let (v, rest) =
            b.split_first_chunk::<2>().ok_or_else(|| CoreError::decode("group metadata", "truncated"))?;
        if u16::from_be_bytes(*v) != VERSION {
            return Err(CoreError::decode("group metadata", "unknown version"));
        }
        b = rest;
        let name = take_vec(&mut b)?;
        let desc = take_vec(&mut b)?;
        if !b.is_empty() {
            return Err(CoreError::decode("group metadata", "trailing bytes"));
        }
        let s = |x: &[u8]| String::from_utf8(x.to_vec()).map_err(|e| CoreError::decode("group metadata", e));
        Ok(Metadata { name: s(name)?, description: s(desc)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_one_and_two_byte_lengths() {
        let m = Metadata { name: "team".into(), description: "x".repeat(100) };
        let b = m.encode();
        assert_eq!(&b[..3], &[0, 1, 4], "version 1, then a 1-byte length");
        assert_eq!(&b[7..9], &[0x40, 100], "a 2-byte length for 100");
        assert_eq!(Metadata::decode(&b).unwrap(), m);
        assert!(Metadata::decode(&[0, 2, 0, 0]).is_err(), "version 2");
        assert!(Metadata::decode(&b[..b.len() - 1]).is_err(), "truncated");
        assert!(Metadata::new("", "").is_err());
    }
}
