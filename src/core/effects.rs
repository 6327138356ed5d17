//! What a core call asks the driver to do: publish, subscribe, look up, emit.
//!
//! The driver applies a call's effects in order: (persist, with the storage
//! issue) → subscribe → publish → emit events → arm the wake-up. Plain data;
//! serialisable so the wasm layer can hand it to JavaScript as is.

use serde::Serialize;

use super::store::StoreOp;

/// An envelope to hand to the transport.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbound {
    /// The content topic.
    pub content_topic: String,
    /// The encoded message.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Its outbox entry: report acceptance with `Client::outbox_sent`.
    pub outbox_id: u64,
}

/// The sender of a message as the app sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SenderInfo {
    /// Set only once the directory confirms the installation belongs to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The sending installation.
    pub installation_id: String,
}

/// A chat message for the app.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// The message id (§2.9).
    pub id: String,
    /// Its conversation.
    pub conversation_id: String,
    /// Who sent it.
    pub sender: SenderInfo,
    /// The app's bytes.
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
    /// The content type.
    pub content_type: String,
    /// The message this one answers or reacts to (`core::content`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// A reaction taken back.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remove: bool,
    /// When it was sent (ms), from the delivery timestamp.
    pub sent_at: f64,
    /// When this client processed it (ms).
    pub received_at: f64,
    /// Sent by this account.
    pub outgoing: bool,
}

/// A conversation as listed to the app.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationInfo {
    /// The conversation id.
    pub id: String,
    /// "direct" or "group".
    pub kind: &'static str,
    /// The other account of a direct chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// A group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A group's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Time of the last message (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<f64>,
    /// A preview of the last message (its first 80 characters, or `[content type]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
    /// When it was created or joined (ms): the activity of a chat with no message yet.
    #[serde(skip)]
    pub created_at: u64,
    /// Messages received and not read.
    pub unread: u32,
    /// A direct chat: the peer's signed device list shows every installation in it
    /// that claims the peer's account (a chat an impostor started is not verified).
    /// Groups: always true here (members carry their own verification).
    pub verified: bool,
    /// Started by an account that is not a contact (a group: by someone, with no contact
    /// of ours in it), and not accepted yet: apps keep it out of the inbox.
    pub request: bool,
}

/// A contact, or an account only blocked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    /// The account address.
    pub account_id: String,
    /// The name the user gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// Blocked.
    pub blocked: bool,
}

/// The stored history of one conversation, as a key range of the `messages` store.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRange {
    /// The conversation.
    pub conversation_id: String,
    /// The first key.
    #[serde(with = "serde_bytes")]
    pub from: Vec<u8>,
    /// The last key.
    #[serde(with = "serde_bytes")]
    pub to: Vec<u8>,
}

/// An installation of this account (`Client::installations`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationInfo {
    /// Its id (hex Ed25519).
    pub installation_id: String,
    /// This installation.
    pub current: bool,
    /// When this installation first saw it in the account's list (ms).
    pub added_at: f64,
}

/// A member of a conversation as the app sees it (an account and its installations).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    /// The account.
    pub account_id: String,
    /// Its installations in the group.
    pub installations: Vec<String>,
    /// On this epoch's steward list.
    pub steward: bool,
    /// Added by a proposal that is not committed yet.
    pub pending: bool,
    /// The account's signed device list (as this installation knows it) shows every one
    /// of these installations: otherwise the account is their credentials' claim.
    pub verified: bool,
}

/// Something the app hears about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    /// A message arrived.
    Message(ChatMessage),
    /// A conversation started (by us or a peer).
    Conversation(ConversationInfo),
    /// A peer acknowledged one of our messages.
    #[serde(rename_all = "camelCase")]
    Ack {
        /// The conversation.
        conversation_id: String,
        /// Our message.
        message_id: String,
        /// Who acked it.
        by: SenderInfo,
    },
    /// A member read one of our messages (its read receipt).
    #[serde(rename_all = "camelCase")]
    Receipt {
        /// The conversation.
        conversation_id: String,
        /// Our message.
        message_id: String,
        /// Who read it.
        by: SenderInfo,
        /// "read" (delivery is `Ack`).
        state: &'static str,
    },
    /// A member started or stopped typing (a start expires by itself: `Client::tick`).
    #[serde(rename_all = "camelCase")]
    Typing {
        /// The conversation.
        conversation_id: String,
        /// Who.
        by: SenderInfo,
        /// Typing now, or not any more.
        typing: bool,
    },
    /// A peer had seen a message that we have not: it is being repaired (read back from
    /// the store, re-sent by its sender); messages that depend on it wait.
    #[serde(rename_all = "camelCase")]
    Missing {
        /// The conversation.
        conversation_id: String,
        /// The missing id.
        message_id: String,
        /// Who sent it, from the history entry that named it (the account only once
        /// the directory confirms the installation belongs to it).
        #[serde(skip_serializing_if = "Option::is_none")]
        sender: Option<SenderInfo>,
    },
    /// Repair gave up on a missing message: what waited for it is delivered without it.
    #[serde(rename_all = "camelCase")]
    Lost {
        /// The conversation.
        conversation_id: String,
        /// The lost id.
        message_id: String,
        /// Who sent it, as for `Missing`.
        #[serde(skip_serializing_if = "Option::is_none")]
        sender: Option<SenderInfo>,
    },
    /// A group's member list changed.
    #[serde(rename_all = "camelCase")]
    Members {
        /// The group.
        conversation_id: String,
        /// Its members now.
        members: Vec<MemberInfo>,
    },
    /// A member of a group asks for a change the permissions allow: the app's vote hook
    /// decides our vote (`Client::vote`); unanswered, it counts as YES at the timeout.
    #[serde(rename_all = "camelCase")]
    VoteRequest {
        /// The group.
        conversation_id: String,
        /// The proposal to answer.
        proposal_id: u32,
        /// `add`, `remove`, `leave` or `rename`.
        kind: &'static str,
        /// The account that asks (as its credential claims).
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// The accounts it would add or remove.
        accounts: Vec<String>,
        /// The new name (`rename`).
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The new description (`rename`).
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// The account's installations changed (a device linked or removed).
    Installations {
        /// Its installations now.
        installations: Vec<InstallationInfo>,
    },
    /// A linked installation is ready for recent history: the driver reads each range
    /// of the `messages` store (newest first, up to its limit) and hands the rows to
    /// `Client::send_history` with this link. Not for the app.
    #[serde(rename_all = "camelCase")]
    HistoryWanted {
        /// The link (its content topic).
        link: String,
        /// One key range per conversation.
        ranges: Vec<HistoryRange>,
    },
    /// Bad input from the network: dropped, state unchanged.
    Error {
        /// The public error code.
        code: &'static str,
        /// What happened (never content or secrets).
        message: String,
    },
}

/// A store query the core asks for: catch-up after a subscription, or repair of missing
/// messages. The driver feeds what it reads to `Client::receive`, then reports the
/// outcome with `Client::query_done`; retries are the core's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreQuery {
    /// The content topic to read.
    pub content_topic: String,
    /// From when (ms); the whole retained history if absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<f64>,
    /// Which try this is (0 first).
    pub attempt: u32,
}

/// The outputs of one core call.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effects {
    /// Storage operations, applied in one transaction before anything is published.
    pub store: Vec<StoreOp>,
    /// Topics to subscribe to, each followed by a history query to catch up.
    pub subscribe: Vec<String>,
    /// Envelopes to publish, in order, after anything persisted.
    pub publish: Vec<Outbound>,
    /// Accounts whose directory records the driver should fetch, then call
    /// `Client::lookup_complete`.
    pub lookups: Vec<String>,
    /// Store queries to run (catch-up retries, repair of missing messages).
    pub queries: Vec<StoreQuery>,
    /// Calls to run against a registry directory (`ChatOptions.directory = { url }` or
    /// the app's object); report each with `Client::registry_result`.
    pub registry: Vec<crate::core::directory::registry::Request>,
    /// Events for the app, in order.
    pub events: Vec<Event>,
    /// When to call `Client::tick` next (ms), if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<f64>,
}

impl Effects {
    /// Appends another call's effects.
    pub fn extend(&mut self, other: Effects) {
        self.store.extend(other.store);
        self.subscribe.extend(other.subscribe);
        self.publish.extend(other.publish);
        self.lookups.extend(other.lookups);
        self.queries.extend(other.queries);
        self.registry.extend(other.registry);
        self.events.extend(other.events);
        self.wake_at = match (self.wake_at, other.wake_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
