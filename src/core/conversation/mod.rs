//! Conversations: MLS groups and what travels inside them.
//!
//! `mls` is the shared MLS profile; `direct` is DirectV1, the 1:1 chat that is a
//! group of every installation of both accounts. Group chat (de-MLS) lands in
//! `group` with its own issue.

pub mod direct;
pub mod mls;

pub use direct::{ConversationMeta, DirectConversation, Inbound};
