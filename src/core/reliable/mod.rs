//! The Reliable Channel of the Messaging API (LIP-173): end-to-end reliability for any
//! app's messages on one content topic, with SDS (LIP-109) as `@waku/sds` speaks it.
//!
//! Sans-IO like the rest of the core: [`ReliableChannel`] takes sends, received bytes,
//! outcomes and the time, and returns [`ChannelEffects`] (messages to publish, store
//! queries by retrieval hint, storage operations, events, the next wake-up). The
//! driver (`js/reliable.ts`) runs them. Outgoing: segment (LIP-243, only what does
//! not fit one message) → SDS → the app's encryption hook → dispatch. Incoming: the
//! reverse. Policy lives here: acknowledgement timeouts, retransmissions (the same
//! bytes), sync messages, repair queries with back-off, and the lost timeout.
//!
//! Bounds against a hostile topic: an SDS message is at most [`MAX_MESSAGE`] bytes;
//! the incoming buffer holds at most [`MAX_BUFFERED`] messages and
//! [`MAX_BUFFERED_BYTES`]; a Lamport time more than [`MAX_LAMPORT_AHEAD_MS`] ahead of
//! the clock is refused (it would drag our clock away for good); the log keeps the
//! last [`LOG_CAP`] ids (the bloom filter's capacity).

pub mod bloom;
mod channel;
mod persist;

pub use channel::ReliableChannel;

use serde::Serialize;

/// The most bytes of one SDS message taken in.
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// Most messages waiting for their dependencies.
pub const MAX_BUFFERED: usize = 1_000;
/// Most bytes waiting for their dependencies.
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;
/// Ids the log remembers (and the bloom filter holds).
pub const LOG_CAP: usize = 10_000;
/// How far ahead of our clock (ms) a Lamport time may be.
pub const MAX_LAMPORT_AHEAD_MS: u64 = 24 * 3600 * 1000;
/// Most messages that can wait for an acknowledgement.
pub const MAX_OUTGOING: usize = 1_000;

/// A channel's settings (LIP-173 defaults, and the Logos Delivery network's limits).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    /// Causal history entries per message (LIP-173: 2).
    pub causal_history: usize,
    /// A message unacknowledged this long is sent again (LIP-173: 5 s).
    pub ack_timeout_ms: u64,
    /// Re-sends before a message is reported undelivered (LIP-173: 5).
    pub max_retransmissions: u32,
    /// A missing message that did not come in this long is lost.
    pub lost_after_ms: u64,
    /// After delivering messages, acknowledge them with a sync message this long later
    /// unless a message of ours did first.
    pub sync_delay_ms: u64,
    /// Sightings in one participant's bloom filters that count as its acknowledgement (`@waku/sds`: 2).
    pub possible_acks: u32,
    /// Put the bloom filter (18 752 bytes) in content messages too, not only in syncs.
    pub bloom_in_content: bool,
    /// Largest serialized segment (LIP-243: 100 KiB); payloads that fit one SDS
    /// message of this size go unsegmented.
    pub segment_size: usize,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            causal_history: 2,
            ack_timeout_ms: 5_000,
            max_retransmissions: 5,
            lost_after_ms: 60_000,
            sync_delay_ms: 1_000,
            possible_acks: 2,
            bloom_in_content: false,
            segment_size: crate::core::segment::SEGMENT_SIZE,
        }
    }
}

/// An SDS message to dispatch (after the app's encryption hook, if any).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelOutbound {
    /// The SDS message id (a segment's, for segmented payloads).
    pub message_id: String,
    /// The encoded SDS message.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// The request it belongs to (none for sync messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// 0 for the first transmission.
    pub attempt: u32,
}

/// A store query by retrieval hints (Waku message hashes, hex).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelQuery {
    /// The hashes to read back.
    pub message_hashes: Vec<String>,
    /// 0 for the first query of these ids.
    pub attempt: u32,
}

/// A storage operation on the `reliable` object store: a put when `value` is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelOp {
    /// The record key (the channel's prefix, a kind byte, an id).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The record.
    #[serde(with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub value: Option<Vec<u8>>,
}

/// What happened, for the app (LIP-173 events).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ChannelEvent {
    /// `message:received`: a whole payload, in causal order, once.
    Received {
        /// The SDS id (of the last segment for segmented payloads).
        message_id: String,
        /// The sender's participant id (not authenticated: the encryption hook is).
        sender_id: String,
        /// The payload.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        /// Its Lamport time.
        lamport: u64,
    },
    /// `message:delivered`: another participant acknowledged every segment (the first
    /// acknowledgement, as LIP-173 says; re-sends go on until every active participant has).
    Delivered {
        /// The request id `send` returned.
        request_id: String,
        /// Who acknowledged the last segment, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// `message:delivery-error`: retransmissions ran out before every participant
    /// heard from in the last ten minutes acknowledged it (or before anyone did).
    DeliveryFailed {
        /// The request id.
        request_id: String,
        /// Participants that never acknowledged it (empty: nobody was heard from).
        unacked_by: Vec<String>,
    },
    /// A message that a causal history names has not come; repair is under way.
    Missing {
        /// The missing id.
        message_id: String,
        /// Its sender, when the history entry names one.
        #[serde(skip_serializing_if = "Option::is_none")]
        sender_id: Option<String>,
    },
    /// Repair gave up; what depended on it was delivered without it.
    Lost {
        /// The lost id.
        message_id: String,
        /// Its sender, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        sender_id: Option<String>,
    },
    /// Bad input from the network, dropped (state unchanged).
    Error {
        /// A `LogosChatError` code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
}

/// What a channel call asks the driver to do, in this order: persist `ops` (one
/// commit), publish `publish`, run `queries` (reporting each with `query_done`), emit
/// `events`, wake at `wake_at`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelEffects {
    /// Storage operations.
    pub ops: Vec<ChannelOp>,
    /// Messages to dispatch.
    pub publish: Vec<ChannelOutbound>,
    /// Store reads by hint.
    pub queries: Vec<ChannelQuery>,
    /// Events for the app.
    pub events: Vec<ChannelEvent>,
    /// When to call `tick` next (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<u64>,
}
