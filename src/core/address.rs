//! Identifiers and delivery addresses (PROTOCOL.md §2.4, §2.5).
//!
//! Ids are newtypes parsed once at the edge; the hash formulas here are the
//! Gen-2 ones (`blake2b_hex::<N>`), checked by the vectors of PROTOCOL.md §8 A/F.
//! This module owns no state and never touches keys.

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;
use std::fmt;

use super::error::{CoreError, Result};

/// `hex(B2b-N(part1 ‖ part2 ‖ …))` with the output-length parameter set to `BYTES`.
pub fn blake2b_hex<const BYTES: usize>(parts: &[&[u8]]) -> String {
    hex::encode(blake2b::<BYTES>(parts))
}

/// Unkeyed BLAKE2b with its output length parameter set to `BYTES`.
pub fn blake2b<const BYTES: usize>(parts: &[&[u8]]) -> [u8; BYTES] {
    let mut out = [0u8; BYTES];
    // Blake2bVar accepts every output length from 1 to 64; the sizes used here
    // (4, 6, 32) are constants, so the fallback branch is unreachable in practice.
    if let Ok(mut h) = Blake2bVar::new(BYTES) {
        for p in parts {
            h.update(p);
        }
        let _ = h.finalize_variable(&mut out);
    }
    out
}

fn parse_hex32(s: &str, what: &str) -> Result<[u8; 32]> {
    if s.len() != 64 {
        return Err(CoreError::InvalidArgument(format!("{what} must be 64 hex characters")));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| CoreError::InvalidArgument(format!("{what} must be lowercase hex")))?;
    if hex::encode(out) != s {
        return Err(CoreError::InvalidArgument(format!("{what} must be lowercase hex")));
    }
    Ok(out)
}

/// An account address: `hex(account Ed25519 verifying key)` (§2.1).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; 32]);

impl AccountId {
    /// Parses a 64-character lowercase hex account address.
    pub fn parse(s: &str) -> Result<Self> {
        parse_hex32(s, "account id").map(AccountId)
    }
    /// From the raw verifying-key bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        AccountId(b)
    }
    /// The raw verifying-key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// The address (64 hex chars).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.to_hex())
    }
}

/// An installation (delegate) id: `hex(delegate verifying key)`, the signer id of §2.1.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstallationId([u8; 32]);

impl InstallationId {
    /// Parses a 64-character lowercase hex signer id.
    pub fn parse(s: &str) -> Result<Self> {
        parse_hex32(s, "installation id").map(InstallationId)
    }
    /// From the raw verifying-key bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        InstallationId(b)
    }
    /// The raw verifying-key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// The signer id (64 hex chars).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// InboxV2 delivery address: `B2b-32("InboxV2|" ‖ "delivery_address|" ‖ S)` (§2.4).
    pub fn inbox_delivery_address(&self) -> String {
        blake2b_hex::<4>(&[b"InboxV2|", b"delivery_address|", self.to_hex().as_bytes()])
    }
    /// InboxV2 conversation id, the envelope hint: `B2b-48("InboxV2|" ‖ "conversation_id|" ‖ S)`.
    pub fn inbox_conversation_id(&self) -> String {
        blake2b_hex::<6>(&[b"InboxV2|", b"conversation_id|", self.to_hex().as_bytes()])
    }
    /// The content topic of this installation's inbox.
    pub fn inbox_topic(&self) -> ContentTopic {
        ContentTopic::for_address(&self.inbox_delivery_address())
    }
}

impl fmt::Debug for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstallationId({})", self.to_hex())
    }
}

/// A conversation id: `hex(MLS GroupId)` for DirectV1/GroupV1 (32 hex chars).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConversationId(String);

impl ConversationId {
    /// Parses an app-supplied conversation id (lowercase hex, 2 to 64 chars).
    pub fn parse(s: &str) -> Result<Self> {
        let ok = (2..=64).contains(&s.len())
            && s.len().is_multiple_of(2)
            && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if ok {
            Ok(ConversationId(s.to_owned()))
        } else {
            Err(CoreError::InvalidArgument("conversation id must be lowercase hex".into()))
        }
    }
    /// The id of the MLS group with this group id.
    pub fn from_group_id(group_id: &[u8]) -> Self {
        ConversationId(hex::encode(group_id))
    }
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Group delivery address: `B2b-48("delivery_addr|" ‖ convo_id as ASCII hex)` (§2.4).
    pub fn delivery_address(&self) -> String {
        blake2b_hex::<6>(&[b"delivery_addr|", self.0.as_bytes()])
    }
    /// The content topic this conversation is delivered on.
    pub fn topic(&self) -> ContentTopic {
        ContentTopic::for_address(&self.delivery_address())
    }
}

/// A message id: 64 hex chars (§2.9).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct MessageId(pub(crate) String);

impl MessageId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Logos Delivery content topic, `/{application}/{version}/{name}/{encoding}` (§5.4).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ContentTopic(String);

/// The prefix of every chat topic (§2.5).
pub const CHAT_TOPIC_PREFIX: &str = "/logos-chat/1/";

impl ContentTopic {
    /// `/logos-chat/1/{addr}/proto` (§2.5).
    pub fn for_address(addr: &str) -> Self {
        ContentTopic(format!("{CHAT_TOPIC_PREFIX}{addr}/proto"))
    }
    /// Parses and checks the four-part form (an optional `/0` generation prefix is allowed).
    pub fn parse(s: &str) -> Result<Self> {
        content_topic_parts(s)?;
        Ok(ContentTopic(s.to_owned()))
    }
    /// The topic as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Splits a content topic into (application, version), rejecting malformed ones (§5.4).
pub fn content_topic_parts(s: &str) -> Result<(&str, &str)> {
    let bad = || CoreError::InvalidArgument(format!("malformed content topic {s:?}"));
    let rest = s.strip_prefix('/').ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let parts = match parts.len() {
        4 => parts.as_slice(),
        5 if parts.first() == Some(&"0") => parts.get(1..).unwrap_or_default(),
        _ => return Err(bad()),
    };
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    match parts {
        [app, version, _, _] => Ok((app, version)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PROTOCOL.md §8 A.
    #[test]
    fn inbox_and_group_addresses_match_vectors_a() {
        let s = InstallationId::parse("8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c")
            .unwrap();
        assert_eq!(s.inbox_delivery_address(), "c919078a");
        assert_eq!(s.inbox_conversation_id(), "1c8d408ab943");
        assert_eq!(s.inbox_topic().as_str(), "/logos-chat/1/c919078a/proto");
        let c = ConversationId::parse("00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(c.delivery_address(), "7f8b6137a904");
        // §8 F: a GroupV2 id has 10 hex chars.
        let g = ConversationId::parse("0011223344").unwrap();
        assert_eq!(g.delivery_address(), "6952c7f35055");
    }

    #[test]
    fn ids_reject_malformed_input() {
        assert!(AccountId::parse("").is_err());
        assert!(AccountId::parse(&"g".repeat(64)).is_err());
        assert!(AccountId::parse(&"A".repeat(64)).is_err());
        assert!(AccountId::parse(&"a".repeat(63)).is_err());
        assert!(AccountId::parse(&"é".repeat(32)).is_err());
        assert!(ConversationId::parse("xyz").is_err());
        assert!(ContentTopic::parse("/a/1/b").is_err());
        assert!(ContentTopic::parse("/a/1/b/proto").is_ok());
        assert!(ContentTopic::parse("/0/a/1/b/proto").is_ok());
        assert!(ContentTopic::parse("/1/a/1/b/proto").is_err());
    }
}
