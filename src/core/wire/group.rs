//! Group (de-MLS) frames: what travels inside a group's MLS application messages and in
//! the Welcome sent to a joiner's inbox (PROTOCOL.md §2.8, §3.3).
//!
//! PRIV1: every governance message (proposal, vote) is an MLS application message, so
//! outsiders see only PrivateMessages; commits are MLS PrivateMessages too. The invite
//! reuses de-mls's `MemberWelcome` shape with `joiner_identities` left empty, so nothing in
//! clear names a member.

use super::chat::ReliablePayload;

/// The plaintext of a group's MLS application message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupAppFrame {
    /// The arm that is set.
    #[prost(oneof = "group_app_frame::Body", tags = "1, 2, 3, 4")]
    pub body: Option<group_app_frame::Body>,
}

/// Arms of [`GroupAppFrame`].
pub mod group_app_frame {
    /// The body of a group frame.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        /// A chat message (libchat's reliability envelope, as in DirectV1).
        #[prost(message, tag = "1")]
        Chat(super::ReliablePayload),
        /// A governance proposal (de-MLS `ConversationUpdateRequest`).
        #[prost(message, tag = "2")]
        Proposal(super::GroupProposal),
        /// A vote on a proposal (de-MLS `UserVote`).
        #[prost(message, tag = "3")]
        Vote(super::GroupVote),
        /// The de-MLS state a joiner needs (de-MLS `ConversationSync`); only inside a Welcome.
        #[prost(message, tag = "4")]
        Sync(super::GroupSync),
    }
}

/// A governance proposal. The owner is the MLS sender of the message that carries it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupProposal {
    /// A random 32-bit id; a leave uses `u32 BE(SHA-256(member)[0..4])` (§3.8).
    #[prost(uint32, tag = "1")]
    pub proposal_id: u32,
    /// What it asks for.
    #[prost(oneof = "group_proposal::Request", tags = "2, 3, 4, 5, 7")]
    pub request: Option<group_proposal::Request>,
    /// When it was opened (ms).
    #[prost(uint64, tag = "6")]
    pub created_at: u64,
}

/// Arms of [`GroupProposal`].
pub mod group_proposal {
    /// A governance request.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Request {
        /// Add an account with all its installations' key packages.
        #[prost(message, tag = "2")]
        Add(super::AddAccount),
        /// Remove an account (all its installations).
        #[prost(message, tag = "3")]
        Remove(super::RemoveAccount),
        /// The sender's account leaves (self-removal, approved by its owner alone).
        #[prost(message, tag = "4")]
        Leave(super::RemoveAccount),
        /// New name and description (extension 0xFF01).
        #[prost(message, tag = "5")]
        Metadata(super::GroupMetadata),
        /// Take out installations that their account's signed list no longer shows
        /// (a removed or revoked device): anyone may ask, the list proves it.
        #[prost(message, tag = "7")]
        RemoveInstallations(super::RemoveInstallations),
    }
}

/// `MemberInvite` for an account: its id and one key package per installation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddAccount {
    /// The account (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub account: Vec<u8>,
    /// TLS-serialized KeyPackages.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub key_packages: Vec<Vec<u8>>,
    /// The account's signed device list (an encoded `AccountSubmissionV1`): every key
    /// package must be of an installation it shows, or members vote NO (an account in a
    /// credential is a claim).
    #[prost(bytes = "vec", tag = "3")]
    pub account_bundle: Vec<u8>,
}

/// Installations of an account to take out, with the account's signed list that no
/// longer shows them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveInstallations {
    /// The account (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub account: Vec<u8>,
    /// The installations (32 bytes each).
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub installations: Vec<Vec<u8>>,
    /// The account's signed device list (an encoded `AccountSubmissionV1`).
    #[prost(bytes = "vec", tag = "3")]
    pub account_bundle: Vec<u8>,
}

/// `RemoveMember` for an account.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveAccount {
    /// The account (32 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub account: Vec<u8>,
}

/// Group name and description.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupMetadata {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The description.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// A vote; the voter is the MLS sender, which binds the vote to a leaf (§3.9 defect 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupVote {
    /// The proposal voted on.
    #[prost(uint32, tag = "1")]
    pub proposal_id: u32,
    /// YES or NO.
    #[prost(bool, tag = "2")]
    pub vote: bool,
}

/// The de-MLS state shipped to joiners: the configuration and the committer's scores.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupSync {
    /// `commit_batch_window` (ms).
    #[prost(uint64, tag = "1")]
    pub commit_batch_window: u64,
    /// `freeze_duration` (ms).
    #[prost(uint64, tag = "2")]
    pub freeze_duration: u64,
    /// `consensus_timeout` (ms).
    #[prost(uint64, tag = "3")]
    pub consensus_timeout: u64,
    /// `retry_window` (ms).
    #[prost(uint64, tag = "4")]
    pub retry_window: u64,
    /// Stewards per epoch.
    #[prost(uint32, tag = "5")]
    pub stewards: u32,
    /// `liveness_criteria_yes`.
    #[prost(bool, tag = "6")]
    pub liveness_yes: bool,
    /// Scores that differ from the default.
    #[prost(message, repeated, tag = "7")]
    pub scores: Vec<PeerScore>,
    /// The epoch the founder's unvoted creation commits end at.
    #[prost(uint64, tag = "8")]
    pub founding_epoch: u64,
    /// Who may add, remove, rename (`Permissions::bits`; 0: any member).
    #[prost(uint32, tag = "9")]
    pub permissions: u32,
    /// The nonce the group id commits to with the permissions
    /// (`group_id = B2b-128("logos-chat group id v1" ‖ nonce ‖ permissions u32 BE)`), so
    /// that a joiner can check what its welcomer says against the MLS group id.
    #[prost(bytes = "vec", tag = "10")]
    pub permissions_nonce: Vec<u8>,
}

/// de-MLS `PeerScore`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PeerScore {
    /// The member id.
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
    /// Its score.
    #[prost(int64, tag = "2")]
    pub score: i64,
}

/// de-mls `MemberWelcome` (§3.3), sent to each joiner's inbox as the `group_v2` arm.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberWelcome {
    /// MLSMessage(Welcome), TLS bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub welcome_bytes: Vec<u8>,
    /// Unused: the de-MLS configuration travels in the group context (extension 0xFF02).
    #[prost(bytes = "vec", tag = "2")]
    pub conversation_sync_bytes: Vec<u8>,
    /// Always empty: a plaintext list of joiners would name members (PRIV1).
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub joiner_identities: Vec<Vec<u8>>,
    /// The `TreeTicket`, HPKE-sealed to the joiner's key package init key (TLS
    /// `HPKECiphertext`); empty when the Welcome carries the ratchet tree itself.
    #[prost(bytes = "vec", tag = "4")]
    pub tree_ticket: Vec<u8>,
}

/// What a joiner needs to find and open the ratchet tree its Welcome leaves out.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TreeTicket {
    /// The MLS group id.
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// The 32-byte XChaCha20-Poly1305 key the tree is sealed under.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// BLAKE2b-256 of the `GroupTree` frame.
    #[prost(bytes = "vec", tag = "3")]
    pub digest: Vec<u8>,
}

/// A ratchet tree sealed once for every joiner of a commit, published on the group topic.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupTree {
    /// XChaCha20-Poly1305 nonce (24 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub nonce: Vec<u8>,
    /// The TLS `RatchetTree`, sealed, with its tag.
    #[prost(bytes = "vec", tag = "2")]
    pub ciphertext: Vec<u8>,
    /// XChaCha20-Poly1305 nonce of `bundles` (24 bytes; empty when there are none).
    #[prost(bytes = "vec", tag = "3")]
    pub bundles_nonce: Vec<u8>,
    /// `GroupBundles` sealed under the tree's key, with its tag; outside the ticket's digest.
    #[prost(bytes = "vec", tag = "4")]
    pub bundles: Vec<u8>,
}

/// The signed account bundles of a group's members, sealed with its tree: a joiner
/// confirms members' installations from them instead of reading the directory.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupBundles {
    /// Encoded `AccountSubmissionV1`s, each signed by its account key.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub submissions: Vec<Vec<u8>>,
}

impl GroupAppFrame {
    /// A chat frame.
    pub fn chat(p: ReliablePayload) -> Self {
        GroupAppFrame { body: Some(group_app_frame::Body::Chat(p)) }
    }
}

/// LIP-243 `SegmentMessage` (PROTOCOL.md §5.5).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SegmentMessage {
    /// Keccak-256 of the whole payload.
    #[prost(bytes = "vec", tag = "1")]
    pub original_payload_hash: Vec<u8>,
    /// Length of the whole payload.
    #[prost(uint64, tag = "2")]
    pub original_payload_length: u64,
    /// This segment's index.
    #[prost(uint32, tag = "3")]
    pub index: u32,
    /// Data segments in the set.
    #[prost(uint32, tag = "4")]
    pub data_segment_count: u32,
    /// Parity segments in the set (none are produced).
    #[prost(uint32, optional, tag = "5")]
    pub parity_segment_count: Option<u32>,
    /// A parity segment.
    #[prost(bool, tag = "6")]
    pub is_parity: bool,
    /// The bytes.
    #[prost(bytes = "vec", tag = "7")]
    pub payload: Vec<u8>,
}
