//! The Waku message: encoding, hash and autosharding (PROTOCOL.md §5.3–§5.6).
//!
//! The Messaging API enforces the network's size limit on the encoded message
//! and computes the same hash a store node keys messages by.

use sha2::{Digest, Sha256};

use crate::core::address::content_topic_parts;
use crate::core::error::Result;

/// The Logos networks' limit on an encoded WakuMessage: 150 KiB (§5.5).
pub const MAX_MESSAGE_SIZE: usize = 150 * 1024;

/// Shards per cluster under autosharding on logos.test / logos.dev (§5.1).
pub const DEFAULT_SHARD_COUNT: u64 = 8;

/// `WakuMessage` (14/WAKU2-MESSAGE, §5.3), the fields logos-chat sets.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WakuMessage {
    /// The application payload.
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
    /// The content topic.
    #[prost(string, tag = "2")]
    pub content_topic: String,
    /// Payload version (unused, 0).
    #[prost(uint32, optional, tag = "3")]
    pub version: Option<u32>,
    /// Unix nanoseconds; always set (§5.6).
    #[prost(sint64, optional, tag = "10")]
    pub timestamp: Option<i64>,
    /// Up to 64 bytes of metadata.
    #[prost(bytes = "vec", optional, tag = "11")]
    pub meta: Option<Vec<u8>>,
    /// Not stored by relays when true.
    #[prost(bool, optional, tag = "31")]
    pub ephemeral: Option<bool>,
}

/// The size of the encoded WakuMessage that carries `payload` on `content_topic`
/// with a timestamp (an upper bound: a timestamp is counted at its widest, 10 bytes),
/// which is what the network's limit applies to.
pub fn encoded_message_size(content_topic: &str, payload_len: usize) -> usize {
    fn varint_len(mut v: u64) -> usize {
        let mut n = 1usize;
        while v >= 0x80 {
            v >>= 7;
            n = n.saturating_add(1);
        }
        n
    }
    let field =
        |len: usize| if len == 0 { 0 } else { varint_len(len as u64).saturating_add(len).saturating_add(1) };
    // payload, content topic, and a 10-byte zigzag nanosecond timestamp (tag 10).
    field(payload_len).saturating_add(field(content_topic.len())).saturating_add(1 + 10)
}

/// The autoshard of a content topic: `u64 BE(sha256(app ‖ version)[24..32]) mod shards` (§5.4).
pub fn content_topic_shard(content_topic: &str, shard_count: u64) -> Result<u64> {
    let (app, version) = content_topic_parts(content_topic)?;
    let digest = Sha256::new().chain_update(app).chain_update(version).finalize();
    let tail = digest.last_chunk::<8>().copied().unwrap_or_default();
    Ok(u64::from_be_bytes(tail).checked_rem(shard_count).unwrap_or(0))
}

/// The pubsub topic `/waku/2/rs/{cluster}/{shard}` of a content topic under autosharding.
pub fn pubsub_topic(cluster: u32, content_topic: &str, shard_count: u64) -> Result<String> {
    Ok(format!("/waku/2/rs/{cluster}/{}", content_topic_shard(content_topic, shard_count)?))
}

/// The deterministic message hash of 14/WAKU2-MESSAGE (§5.6):
/// `sha256(pubsub ‖ payload ‖ content_topic ‖ meta? ‖ timestamp i64 BE)`.
/// A `None` timestamp omits the 8 bytes, as js-waku does.
pub fn message_hash(
    pubsub_topic: &str,
    payload: &[u8],
    content_topic: &str,
    meta: Option<&[u8]>,
    timestamp_ns: Option<i64>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(pubsub_topic.as_bytes());
    h.update(payload);
    h.update(content_topic.as_bytes());
    if let Some(m) = meta {
        h.update(m);
    }
    if let Some(ts) = timestamp_ns {
        h.update(ts.to_be_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    // PROTOCOL.md §8 D.
    #[test]
    fn autoshard_matches_vectors_d() {
        for (t, s) in [
            ("/logos-chat/1/relay-test/proto", 0),
            ("/myapp/1/latest/proto", 0),
            ("/waku/2/default-content/proto", 1),
            ("/toychat/2/huilong/proto", 3),
        ] {
            assert_eq!(content_topic_shard(t, 8).unwrap(), s, "{t}");
        }
        assert_eq!(pubsub_topic(2, "/logos-chat/1/c919078a/proto", 8).unwrap(), "/waku/2/rs/2/0");
    }

    #[test]
    fn message_hash_matches_vectors_d() {
        let pubsub = "/waku/2/default-waku/proto";
        let payload = hex::decode("010203045445535405060708").unwrap();
        let ct = "/waku/2/default-content/proto";
        let ts = 0x175789bfa23f8400i64;
        let h = |meta, ts| hex::encode(message_hash(pubsub, &payload, ct, meta, ts));
        assert_eq!(
            h(Some(b"super-secret".as_slice()), Some(ts)),
            "64cce733fed134e83da02b02c6f689814872b1a0ac97ea56b76095c3c72bfe05"
        );
        assert_eq!(h(None, Some(ts)), "a2554498b31f5bcdfcbf7fa58ad1c2d45f0254f3f8110a85588ec3cf10720fd8");
        assert_eq!(h(None, None), "87619d05e563521d9126749b45bd4cc2430df0607e77e23572d874ed9c1aaa62");
        assert_eq!(h(None, Some(0)), "c48c6ee8b33803e846aa47eff1fca3dce7ec15720aad77d0a1a1cbb41b005651");
    }

    #[test]
    fn encoded_size_bounds_the_real_encoding() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 150_000] {
            let m = WakuMessage {
                payload: vec![7; len],
                content_topic: "/logos-chat/1/c919078a/proto".into(),
                timestamp: Some(i64::MIN),
                ..Default::default()
            };
            assert_eq!(m.encoded_len(), encoded_message_size(&m.content_topic, len));
        }
    }
}
