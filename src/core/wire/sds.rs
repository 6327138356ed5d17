//! The SDS message of the Reliable Channel (LIP-109 field numbers as `@waku/sds` 0.0.8
//! encodes them, PROTOCOL.md §6). libchat's `ReliablePayload` (chat.rs) numbers the
//! same fields differently; the two never meet on one topic.

use super::chat::HistoryEntry;

/// `SdsMessage`: content, sync (empty content) or ephemeral (no Lamport time).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SdsMessage {
    /// The sender's participant id.
    #[prost(string, tag = "1")]
    pub sender_id: String,
    /// Unique per message (and per segment).
    #[prost(string, tag = "2")]
    pub message_id: String,
    /// The channel.
    #[prost(string, tag = "3")]
    pub channel_id: String,
    /// The Lamport time; absent on ephemeral messages.
    #[prost(uint64, optional, tag = "10")]
    pub lamport_timestamp: Option<u64>,
    /// The ids this message depends on (and acknowledges).
    #[prost(message, repeated, tag = "11")]
    pub causal_history: Vec<HistoryEntry>,
    /// A bloom filter of the sender's log: possible acknowledgements.
    #[prost(bytes = "vec", optional, tag = "12")]
    pub bloom_filter: Option<Vec<u8>>,
    /// SDS-R repair requests (read, never acted on).
    #[prost(message, repeated, tag = "13")]
    pub repair_request: Vec<HistoryEntry>,
    /// The app's bytes; absent or empty on sync messages.
    #[prost(bytes = "vec", optional, tag = "20")]
    pub content: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn encodes_as_waku_sds_does() {
        // PROTOCOL.md §8 E.
        let m = SdsMessage {
            sender_id: "s".into(),
            message_id: "m".into(),
            channel_id: "c".into(),
            lamport_timestamp: Some(5),
            bloom_filter: Some(vec![0xaa]),
            content: Some(vec![0xbb]),
            ..SdsMessage::default()
        };
        assert_eq!(hex::encode(m.encode_to_vec()), "0a017312016d1a016350056201aaa20101bb");
        assert_eq!(SdsMessage::decode(m.encode_to_vec().as_slice()).ok(), Some(m));
    }
}
