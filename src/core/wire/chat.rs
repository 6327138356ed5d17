//! libchat Gen-2 protobufs (PROTOCOL.md §2.3, §2.5, §2.6, §2.9).
//!
//! Field numbers follow the reference encoder (prost), so encoding matches
//! byte for byte: ascending tags, proto3 defaults omitted.

/// `logoschat.envelope.EnvelopeV1` (§2.5). Gen-2 salt is always 0.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnvelopeV1 {
    /// The conversation id in clear (libchat has a TODO to obscure it).
    #[prost(string, tag = "1")]
    pub conversation_hint: String,
    /// Always 0 in Gen-2, so never on the wire.
    #[prost(uint64, tag = "2")]
    pub salt: u64,
    /// The frame.
    #[prost(bytes = "vec", tag = "5")]
    pub payload: Vec<u8>,
}

/// `logoschat.encryption.EncryptedPayload` (§2.5); Gen-2 uses only `plaintext`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncryptedPayload {
    /// The arm that is set.
    #[prost(oneof = "encrypted_payload::Encryption", tags = "1, 2, 3")]
    pub encryption: Option<encrypted_payload::Encryption>,
}

/// Arms of [`EncryptedPayload`].
pub mod encrypted_payload {
    /// The encryption arm.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Encryption {
        /// MLS groups: the MLSMessage travels as "plaintext" (MLS already encrypts).
        #[prost(message, tag = "1")]
        Plaintext(super::Plaintext),
        /// Gen-1 Double Ratchet (kept opaque here).
        #[prost(bytes = "vec", tag = "2")]
        Doubleratchet(Vec<u8>),
        /// Gen-1 inbox handshake (kept opaque here).
        #[prost(bytes = "vec", tag = "3")]
        InboxHandshake(Vec<u8>),
    }
}

/// `logoschat.encryption.Plaintext`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Plaintext {
    /// The carried bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
}

impl EncryptedPayload {
    /// Wraps bytes in the `plaintext` arm.
    pub fn plaintext(payload: Vec<u8>) -> Self {
        EncryptedPayload { encryption: Some(encrypted_payload::Encryption::Plaintext(Plaintext { payload })) }
    }
}

/// `InboxV2Frame` (§2.6): an invite addressed to one installation's inbox.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InboxV2Frame {
    /// The arm that is set.
    #[prost(oneof = "inbox_v2_frame::Payload", tags = "1, 2, 3")]
    pub payload: Option<inbox_v2_frame::Payload>,
}

/// Arms of [`InboxV2Frame`].
pub mod inbox_v2_frame {
    /// The invite arm.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Payload {
        /// A direct (GroupV1-framed) invite carrying an MLS Welcome.
        #[prost(message, tag = "1")]
        GroupV1(super::GroupV1HeavyInvite),
        /// An encoded de-MLS `MemberWelcome` (read from older builds, no longer sent).
        #[prost(bytes = "vec", tag = "2")]
        GroupV2(Vec<u8>),
        /// A `MemberWelcome` sealed with HPKE to the joiner's init key
        /// (`conversation::group::invite`).
        #[prost(bytes = "vec", tag = "3")]
        SealedGroupV2(Vec<u8>),
    }
}

/// `GroupV1HeavyInvite { welcome_bytes = 1 }`: an MLSMessage-framed Welcome (TLS).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupV1HeavyInvite {
    /// MLSMessage(Welcome), TLS-serialized.
    #[prost(bytes = "vec", tag = "1")]
    pub welcome_bytes: Vec<u8>,
}

/// libchat's `ReliablePayload` (§2.9; SDS fields numbered as chat_proto, not as the SDS spec).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReliablePayload {
    /// `hex(B2b-256("deterministic_frame_id|" ‖ channel ‖ "|" ‖ sender ‖ "|" ‖ lamport BE ‖ "|" ‖ content))`.
    #[prost(string, tag = "2")]
    pub message_id: String,
    /// The conversation id.
    #[prost(string, tag = "3")]
    pub channel_id: String,
    /// The sender's identity id (a routing hint; authorship comes from MLS).
    #[prost(string, tag = "7")]
    pub sender_id: String,
    /// Per-conversation Lamport clock, incremented before each send.
    #[prost(int32, tag = "10")]
    pub lamport_timestamp: i32,
    /// The last ids seen, oldest first.
    #[prost(message, repeated, tag = "11")]
    pub causal_history: Vec<HistoryEntry>,
    /// Always empty in libchat.
    #[prost(bytes = "vec", tag = "12")]
    pub bloom_filter: Vec<u8>,
    /// The app's bytes.
    #[prost(bytes = "vec", tag = "20")]
    pub content: Vec<u8>,
}

/// `HistoryEntry`, shared by SDS and libchat.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryEntry {
    /// The referenced message id.
    #[prost(string, tag = "1")]
    pub message_id: String,
    /// A retrieval hint (empty in libchat).
    #[prost(bytes = "vec", tag = "2")]
    pub retrieval_hint: Vec<u8>,
    /// The referenced message's sender id, when known.
    #[prost(string, tag = "3")]
    pub sender_id: String,
}

/// `logoschat.store.KeyPackageSubmissionV1` (§2.3), published raw, not in an envelope.
/// The ids and the signature are raw bytes (hex and base64 appear only in the HTTP
/// API's JSON). Field numbers 1–3 follow the declaration order; chat_proto@948f4ad
/// itself was not readable here, so they are unverified against it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyPackageSubmissionV1 {
    /// The delegate verifying key (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub device_id: Vec<u8>,
    /// `ts_ms u64 LE ‖ KeyPackage` (bare TLS).
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
    /// Ed25519 by the delegate key over `payload`.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}

/// `logoschat.store.AccountSubmissionV1` (§2.3), published raw, not in an envelope.
/// Same caveats as [`KeyPackageSubmissionV1`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct AccountSubmissionV1 {
    /// The account verifying key (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub account_pub: Vec<u8>,
    /// The signed device bundle payload (§2.2).
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
    /// Ed25519 by the account key over `payload`.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
}
