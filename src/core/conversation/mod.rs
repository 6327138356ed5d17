//! Conversations: MLS groups and what travels inside them.
//!
//! `mls` is the shared MLS profile; `direct` is DirectV1, the 1:1 chat that is a
//! group of every installation of both accounts; `group` is a de-MLS group chat, with
//! its name and description in `metadata` (extension 0xFF01).

pub mod direct;
pub mod group;
pub mod metadata;
pub mod mls;

pub use direct::{ConversationMeta, DirectConversation, Inbound};
pub use group::{GroupConversation, GroupOutput};
pub use metadata::Metadata;
