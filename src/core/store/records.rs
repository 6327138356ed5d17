//! The records the core persists, one protobuf message per record kind (the store
//! each lives in is named in `Store`).

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The `meta` record: schema version and a check value that proves the store key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaRecord {
    /// The schema version the store is at.
    #[prost(uint32, tag = "1")]
    pub schema_version: u32,
}

/// The `account` record. Secret: only ever stored sealed.
#[derive(Clone, PartialEq, prost::Message, Zeroize, ZeroizeOnDrop)]
pub struct AccountRecord {
    /// The account key's seed.
    #[prost(bytes = "vec", tag = "1")]
    pub account_seed: Vec<u8>,
    /// This installation's key seed.
    #[prost(bytes = "vec", tag = "2")]
    pub installation_seed: Vec<u8>,
    /// The lamport of the current device bundle.
    #[prost(uint64, tag = "3")]
    pub bundle_lamport: u64,
    /// This installation's last-resort key package (public; TLS bytes).
    #[prost(bytes = "vec", tag = "4")]
    pub key_package: Vec<u8>,
    /// The account's signed device list as last accepted (§2.2 payload); empty in
    /// stores written before installations could be linked (then it lists this one alone).
    #[prost(bytes = "vec", tag = "5")]
    pub bundle_payload: Vec<u8>,
    /// The account's signature over `bundle_payload`.
    #[prost(bytes = "vec", tag = "6")]
    pub bundle_signature: Vec<u8>,
    /// When each installation of the account was first seen here (hex id → ms).
    #[prost(btree_map = "string, uint64", tag = "7")]
    #[zeroize(skip)]
    pub added_at: std::collections::BTreeMap<String, u64>,
    /// Another installation removed this one from the account: it stops.
    #[prost(bool, tag = "8")]
    pub removed: bool,
    /// The account's log as last accepted (libchat's proposed format); empty in stores
    /// written before it (then a first log is made from the list).
    #[prost(bytes = "vec", tag = "9")]
    pub log_payload: Vec<u8>,
    /// The account's signature over `log_payload`.
    #[prost(bytes = "vec", tag = "10")]
    pub log_signature: Vec<u8>,
}

/// A `conversations` record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConversationRecord {
    /// The conversation id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// "direct" or "group".
    #[prost(string, tag = "2")]
    pub kind: String,
    /// The other account of a direct chat (32 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub peer: Vec<u8>,
    /// Lamport clock of the reliability channel.
    #[prost(int32, tag = "4")]
    pub lamport: i32,
    /// Causal history, oldest first.
    #[prost(message, repeated, tag = "5")]
    pub history: Vec<crate::core::wire::HistoryEntry>,
    /// Next message sequence number.
    #[prost(uint64, tag = "6")]
    pub next_seq: u64,
    /// Unread incoming messages.
    #[prost(uint32, tag = "7")]
    pub unread: u32,
    /// Last message time (ms).
    #[prost(uint64, tag = "8")]
    pub last_message_at: u64,
    /// When it was created (ms).
    #[prost(uint64, tag = "9")]
    pub created_at: u64,
    /// Recently seen message ids, oldest first (ack and missing detection).
    #[prost(string, repeated, tag = "10")]
    pub recent: Vec<String>,
    /// For each of `recent`: sent by this installation.
    #[prost(bool, repeated, tag = "11")]
    pub recent_own: Vec<bool>,
    /// A group's de-MLS state (an encoded `GroupStateRecord`); empty for a direct chat.
    #[prost(bytes = "vec", tag = "12")]
    pub group_state: Vec<u8>,
    /// Received messages held for causal order.
    #[prost(message, repeated, tag = "13")]
    pub held: Vec<HeldRecord>,
    /// A message request: started by a non-contact, not accepted yet.
    #[prost(bool, tag = "14")]
    pub request: bool,
    /// A preview of the last message (its first characters, or its content type).
    #[prost(string, tag = "15")]
    pub last_preview: String,
}

/// A `messages` record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MessageRecord {
    /// The message id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The conversation.
    #[prost(string, tag = "2")]
    pub conversation_id: String,
    /// The sender's account when confirmed.
    #[prost(string, tag = "3")]
    pub sender_account: String,
    /// The sending installation.
    #[prost(string, tag = "4")]
    pub sender_installation: String,
    /// The content.
    #[prost(bytes = "vec", tag = "5")]
    pub content: Vec<u8>,
    /// The content type.
    #[prost(string, tag = "6")]
    pub content_type: String,
    /// Sent (ms).
    #[prost(uint64, tag = "7")]
    pub sent_at: u64,
    /// Received (ms).
    #[prost(uint64, tag = "8")]
    pub received_at: u64,
    /// Sent by this account.
    #[prost(bool, tag = "9")]
    pub outgoing: bool,
    /// Sequence within the conversation.
    #[prost(uint64, tag = "10")]
    pub seq: u64,
    /// The message this one answers or reacts to (empty: none).
    #[prost(string, tag = "11")]
    pub reply_to: String,
    /// A reaction taken back.
    #[prost(bool, tag = "12")]
    pub remove: bool,
}

/// A `message_index` record: where a message id lives.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MessageIndexRecord {
    /// The conversation.
    #[prost(string, tag = "1")]
    pub conversation_id: String,
    /// The sequence.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
}

/// An `outbox` record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutboxRecord {
    /// The outbox id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The content topic.
    #[prost(string, tag = "2")]
    pub content_topic: String,
    /// The envelope.
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    /// For a chat message kept for retransmission: its conversation.
    #[prost(string, tag = "4")]
    pub conversation_id: String,
    /// For a chat message kept for retransmission: its message id (empty: not kept).
    #[prost(string, tag = "5")]
    pub message_id: String,
    /// The installations that have not acknowledged it yet (hex ids).
    #[prost(string, repeated, tag = "6")]
    pub awaiting: Vec<String>,
    /// How many times it was re-sent.
    #[prost(uint32, tag = "7")]
    pub retransmits: u32,
    /// When it is re-sent next (ms).
    #[prost(uint64, tag = "8")]
    pub next_at: u64,
    /// The transport accepted it at least once (it leaves the publish queue).
    #[prost(bool, tag = "9")]
    pub accepted: bool,
    /// One acknowledgement from any awaited installation is enough (a large group).
    #[prost(bool, tag = "10")]
    pub any_ack: bool,
}

/// A received chat message held back until the messages its causal history names have
/// come (or a timeout): part of its conversation's record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeldRecord {
    /// The message, as stored in the history.
    #[prost(message, optional, tag = "1")]
    pub message: Option<MessageRecord>,
    /// The ids it waits for.
    #[prost(string, repeated, tag = "2")]
    pub deps: Vec<String>,
    /// When it is delivered anyway, with the gap reported (ms).
    #[prost(uint64, tag = "3")]
    pub deadline: u64,
    /// The account its credential claims, not yet confirmed (hex; empty if none).
    #[prost(string, tag = "4")]
    pub claimed_account: String,
    /// Its `ReliablePayload` sender id and Lamport time: it enters the causal history
    /// when it is delivered.
    #[prost(string, tag = "5")]
    pub sender_id: String,
    /// See `sender_id`.
    #[prost(int32, tag = "6")]
    pub lamport: i32,
}

/// An `mls` record: one openmls storage entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MlsRecord {
    /// openmls's key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// openmls's value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// A `seen` record: the digest of a handled inbound envelope, and when.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SeenRecord {
    /// The digest.
    #[prost(bytes = "vec", tag = "1")]
    pub digest: Vec<u8>,
    /// Insertion order.
    #[prost(uint64, tag = "2")]
    pub order: u64,
}

/// A `contacts` record: an account the user added or blocked.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContactRecord {
    /// The account address (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub account: Vec<u8>,
    /// The name the user gave it; empty for none.
    #[prost(string, tag = "2")]
    pub nickname: String,
    /// Blocked: its invites are dropped and its messages not delivered.
    #[prost(bool, tag = "3")]
    pub blocked: bool,
    /// A contact (added), as opposed to an account only blocked.
    #[prost(bool, tag = "4")]
    pub added: bool,
    /// The account's installations known when it was blocked (their messages are
    /// dropped too, whatever account they claim).
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub installations: Vec<Vec<u8>>,
}

/// An `installations` record: what the directory knows of another account.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KnownAccountRecord {
    /// The account's newest signed device list (`AccountSubmissionV1`), if one was read.
    #[prost(bytes = "vec", tag = "1")]
    pub bundle: Vec<u8>,
    /// Its newest log (`AccountSubmissionV1`), if one was read.
    #[prost(bytes = "vec", tag = "2")]
    pub log: Vec<u8>,
    /// The account address (32 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub account: Vec<u8>,
}
