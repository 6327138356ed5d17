//! The sans-IO core: synchronous, no clock, no network, no JavaScript types.
//!
//! Every entry point of [`Client`] takes inputs and returns [`Effects`]; it
//! compiles natively (where the scenarios run on a simulated network) and to
//! wasm32, where `src/wasm` drives it.

pub mod account;
pub mod account_log;
pub mod address;
pub mod aead;
pub mod card;
pub mod client;
pub mod content;
pub mod conversation;
pub mod demls;
pub mod directory;
pub mod effects;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "the fuzz harness, not the product: a panic here is a finding"
)]
pub mod fuzz;
pub mod link;
pub mod reliable;
pub mod sds;
pub mod segment;
pub mod store;
pub mod wire;

#[cfg(test)]
mod tests;

pub use address::{AccountId, ContentTopic, ConversationId, InstallationId, MessageId};
pub use client::{backoff, Client, FULL_ACK_MAX, HOLD_MS, LOOKUP_TRIES, RETRANSMIT_DELAYS_MS};
pub use effects::{
    ChatMessage, ConversationInfo, Effects, Event, InstallationInfo, MemberInfo, Outbound, SenderInfo,
};
pub use error::{CoreError, ErrorCode, Result};
