//! A channel's persisted records (prost), in the driver's `reliable` object store.
//!
//! Keys: an 8-byte channel prefix (BLAKE2b of channel id and sender id), a kind byte,
//! then an id. The log is keyed by a sequence number so that trimming it deletes the
//! oldest records; the others by SDS message id.

use crate::core::address::blake2b;

/// Lamport clock and log sequence.
pub(super) const META: u8 = b'M';
/// One log entry.
pub(super) const LOG: u8 = b'L';
/// One message of ours waiting for an acknowledgement.
pub(super) const OUT: u8 = b'O';
/// One received message waiting for its dependencies.
pub(super) const IN: u8 = b'I';
/// One delivered segment of a payload not yet whole.
pub(super) const SEG: u8 = b'S';

/// The channel's record prefix.
pub(super) fn prefix(channel_id: &str, sender_id: &str) -> [u8; 8] {
    blake2b::<8>(&[b"logos-chat/reliable-channel", channel_id.as_bytes(), &[0], sender_id.as_bytes()])
}

pub(super) fn key(prefix: &[u8; 8], kind: u8, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len().saturating_add(9));
    k.extend_from_slice(prefix);
    k.push(kind);
    k.extend_from_slice(id);
    k
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct MetaRecord {
    #[prost(uint64, tag = "1")]
    pub lamport: u64,
    #[prost(uint64, tag = "2")]
    pub next_seq: u64,
    /// Participants heard from, with when (ms).
    #[prost(message, repeated, tag = "3")]
    pub peers: Vec<PeerRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct PeerRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(uint64, tag = "2")]
    pub last_seen: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct LogRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(bytes = "vec", tag = "2")]
    pub hint: Vec<u8>,
    #[prost(string, tag = "3")]
    pub sender: String,
    /// Declared lost: it satisfies dependencies but was never received.
    #[prost(bool, tag = "4")]
    pub lost: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct OutRecord {
    #[prost(string, tag = "1")]
    pub request_id: String,
    #[prost(bytes = "vec", tag = "2")]
    pub bytes: Vec<u8>,
    #[prost(uint32, tag = "3")]
    pub attempt: u32,
    #[prost(uint64, tag = "4")]
    pub next_at: u64,
    /// Participants whose bloom filter showed it once (twice is an acknowledgement).
    #[prost(string, repeated, tag = "5")]
    pub possibly_by: Vec<String>,
    /// Participants that acknowledged it.
    #[prost(string, repeated, tag = "6")]
    pub acked_by: Vec<String>,
    /// `Delivered` was reported for its request.
    #[prost(bool, tag = "7")]
    pub reported: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct InRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub bytes: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub hint: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub since: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct SegRecord {
    #[prost(bytes = "vec", tag = "1")]
    pub bytes: Vec<u8>,
    #[prost(string, tag = "2")]
    pub sender: String,
    #[prost(uint64, tag = "3")]
    pub lamport: u64,
}
