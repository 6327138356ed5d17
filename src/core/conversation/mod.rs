//! Conversations: MLS groups and what travels inside them.
//!
//! `mls` is the shared MLS profile; `direct` is DirectV1, the 1:1 chat that is a
//! group of every installation of both accounts; `group` is a de-MLS group chat, with
//! its name and description in `metadata` (extension 0xFF01).

pub mod direct;
pub mod group;
pub mod metadata;
pub mod mls;
pub mod mls_shape;
pub mod mls_store;

pub use direct::{ConversationMeta, DirectConversation, Inbound};
pub use group::{GroupConversation, GroupOutput};
pub use metadata::Metadata;

use crate::core::conversation::mls_store::Provider;
use openmls::prelude::{GroupId, MlsGroup};
use openmls_traits::OpenMlsProvider;

use crate::core::address::ConversationId;
use crate::core::error::{CoreError, Result};
use crate::core::sds::Channel;
use crate::core::store::ConversationRecord;

/// The part of a conversation record every kind shares: id, chat channel, bookkeeping.
pub(crate) fn base_record(
    id: &ConversationId,
    kind: &str,
    channel: &Channel,
    meta: &ConversationMeta,
) -> ConversationRecord {
    let (lamport, history, recent) = channel.parts();
    ConversationRecord {
        id: id.as_str().to_owned(),
        kind: kind.into(),
        lamport,
        history,
        next_seq: meta.next_seq,
        unread: meta.unread,
        last_message_at: meta.last_message_at,
        created_at: meta.created_at,
        request: meta.request,
        last_preview: meta.last_preview.clone(),
        recent: recent.iter().map(|(id, _)| id.clone()).collect(),
        recent_own: recent.iter().map(|(_, own)| *own).collect(),
        ..ConversationRecord::default()
    }
}

/// The shared part back from a record, with the MLS group loaded from the provider.
/// The group's receive windows are brought to `join`'s (see [`mls::update_windows`]).
pub(crate) fn restore_base(
    provider: &Provider,
    rec: &mut ConversationRecord,
    join: &openmls::prelude::MlsGroupJoinConfig,
) -> Result<(ConversationId, MlsGroup, Channel, ConversationMeta)> {
    let corrupt = |why: &str| CoreError::StoreCorrupt(format!("{} record: {why}", rec.kind));
    let id = ConversationId::parse(&rec.id).map_err(|_| corrupt("id"))?;
    let group_id = hex::decode(&rec.id).map_err(|_| corrupt("id"))?;
    let mut group = MlsGroup::load(provider.storage(), &GroupId::from_slice(&group_id))
        .map_err(CoreError::mls)?
        .ok_or_else(|| corrupt("no MLS state"))?;
    mls::update_windows(&mut group, provider, join)?;
    let recent =
        std::mem::take(&mut rec.recent).into_iter().zip(std::mem::take(&mut rec.recent_own)).collect();
    let channel = Channel::restore(rec.lamport, std::mem::take(&mut rec.history), recent);
    let meta = ConversationMeta {
        next_seq: rec.next_seq,
        unread: rec.unread,
        last_message_at: rec.last_message_at,
        created_at: rec.created_at,
        request: rec.request,
        last_preview: std::mem::take(&mut rec.last_preview),
    };
    Ok((id, group, channel, meta))
}
