//! Wire codecs: the protobufs of libchat Gen-2 and the Waku message (PROTOCOL.md §2, §5).
//!
//! Types here are plain data with prost encodings. Decoding is total: it
//! returns errors and never panics on any input. Nothing here holds keys.

mod chat;
mod group;
mod sds;
mod waku;

pub use chat::*;
pub use group::*;
pub use sds::*;
pub use waku::*;

use super::error::{CoreError, Result};

/// Decodes a protobuf message, naming what failed.
pub fn decode<M: prost::Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| CoreError::decode(what, e))
}
