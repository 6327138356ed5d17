//! The outbox and the sending side of R1 (DESIGN.md §1): every envelope is persisted
//! before the driver is asked to publish it, and a chat message stays after the
//! transport accepted it, re-sent (the same bytes) on [`RETRANSMIT_DELAYS_MS`] until
//! every other installation of its conversation has named it in a causal history
//! (any one of them in a large group), or the re-sends are used up.

use std::collections::HashSet;

use super::*;
use crate::core::wire::HistoryEntry;

/// The waits before each re-send of an unacknowledged message (8 re-sends, the last
/// about 90 s after the first send).
pub const RETRANSMIT_DELAYS_MS: [u64; 8] = [2_000, 4_000, 8_000, 15_000, 15_000, 15_000, 15_000, 15_000];
/// A conversation with more other installations than this is acknowledged by any one
/// of them: waiting for every member of a large group would re-send every message.
pub const FULL_ACK_MAX: usize = 16;
/// Most of our messages kept for re-sending, and their bytes; beyond, the oldest is
/// no longer re-sent.
const MAX_UNACKED: usize = 2_000;
const MAX_UNACKED_BYTES: usize = 32 << 20;

/// How a chat message we send is kept for re-sending.
pub(super) struct Track {
    pub conversation: ConversationId,
    pub message_id: String,
    pub awaiting: Vec<String>,
    pub now: u64,
}

impl Client {
    /// Puts an envelope in the persisted outbox and asks the driver to publish it: as
    /// LIP-243 segments when it is over the threshold.
    pub(super) fn enqueue(
        &mut self,
        fx: &mut Effects,
        content_topic: String,
        payload: Vec<u8>,
    ) -> Result<()> {
        self.enqueue_tracked(fx, content_topic, payload, None)
    }

    /// As [`Client::enqueue`]; a chat message (`track`) stays in the outbox after it is
    /// accepted, to be re-sent until it is acknowledged (`reliability`). An envelope that
    /// fits the network's limit whole goes whole: libchat cannot reassemble segments.
    pub(super) fn enqueue_tracked(
        &mut self,
        fx: &mut Effects,
        content_topic: String,
        payload: Vec<u8>,
        track: Option<&Track>,
    ) -> Result<()> {
        if crate::core::wire::encoded_message_size(&content_topic, payload.len()) <= segment::NETWORK_LIMIT {
            return self.enqueue_one(fx, content_topic, payload, track);
        }
        let size = payload.len();
        let segments = segment::split(&payload).ok_or(CoreError::PayloadTooLarge {
            size,
            limit: segment::MAX_SEGMENTS * segment::SEGMENT_SIZE,
        })?;
        for s in segments {
            self.enqueue_one(fx, content_topic.clone(), s, track)?;
        }
        Ok(())
    }

    fn enqueue_one(
        &mut self,
        fx: &mut Effects,
        content_topic: String,
        payload: Vec<u8>,
        track: Option<&Track>,
    ) -> Result<()> {
        let id = self.next_outbox;
        self.next_outbox = self.next_outbox.saturating_add(1);
        let mut rec = OutboxRecord {
            id,
            content_topic: content_topic.clone(),
            payload: payload.clone(),
            ..OutboxRecord::default()
        };
        if let Some(t) = track {
            self.track(&mut rec, t);
        }
        self.outbox.insert(id, rec);
        if let Err(e) = self.persist_outbox(id, fx) {
            self.outbox.remove(&id);
            return Err(e);
        }
        fx.publish.push(Outbound { content_topic, payload, outbox_id: id });
        Ok(())
    }

    /// Writes an outbox entry as it now stands.
    fn persist_outbox(&mut self, oid: u64, fx: &mut Effects) -> Result<()> {
        let Some(rec) = self.outbox.get(&oid) else { return Ok(()) };
        let bytes = encode(rec);
        fx.store.push(self.cipher.put(self.rng.as_mut(), Store::Outbox, &oid.to_be_bytes(), &bytes)?);
        Ok(())
    }

    /// Everything the transport has not accepted yet, oldest first (the driver retries these).
    pub fn pending_outbox(&self) -> Vec<Outbound> {
        self.outbox
            .values()
            .filter(|r| !r.accepted)
            .map(|r| Outbound {
                content_topic: r.content_topic.clone(),
                payload: r.payload.clone(),
                outbox_id: r.id,
            })
            .collect()
    }

    /// The transport accepted an outbox entry: it leaves the outbox, unless it is a chat
    /// message kept until it is acknowledged.
    pub fn outbox_sent(&mut self, outbox_id: u64) -> Effects {
        let mut fx = Effects {
            wake_at: self
                .outbox
                .get(&outbox_id)
                .filter(|r| !r.message_id.is_empty())
                .map(|r| r.next_at as f64),
            ..Effects::default()
        };
        match self.outbox.get_mut(&outbox_id) {
            Some(rec) if !rec.message_id.is_empty() && !rec.accepted => {
                rec.accepted = true;
                // A failed write leaves the entry to be re-sent as unaccepted after a restart.
                let _ = self.persist_outbox(outbox_id, &mut fx);
                self.bound_unacked(&mut fx);
            }
            Some(rec) if !rec.message_id.is_empty() => {}
            Some(_) => {
                self.outbox.remove(&outbox_id);
                fx.store.push(self.cipher.delete(Store::Outbox, &outbox_id.to_be_bytes()));
            }
            None => {}
        }
        fx
    }

    /// A received causal history acknowledges our messages it names, for its sender, and
    /// every earlier one of the same conversation: histories name each sender's latest
    /// message, and a member that has it had every earlier one handed over first.
    pub(super) fn note_acks(
        &mut self,
        by: &InstallationId,
        history: &[HistoryEntry],
        fx: &mut Effects,
    ) -> Result<()> {
        let by = by.to_hex();
        for e in history {
            let Some(last) = self.rel.unacked.get(&e.message_id).and_then(|ids| ids.iter().max().copied())
            else {
                continue;
            };
            let Some(conversation) = self.outbox.get(&last).map(|r| r.conversation_id.clone()) else {
                continue;
            };
            let covered: Vec<u64> = self
                .outbox
                .range(..=last)
                .filter(|(_, r)| r.conversation_id == conversation && r.awaiting.contains(&by))
                .map(|(id, _)| *id)
                .collect();
            let mut done: Vec<String> = Vec::new();
            for oid in covered {
                let Some(rec) = self.outbox.get_mut(&oid) else { continue };
                rec.awaiting.retain(|a| a != &by);
                if rec.awaiting.is_empty() || rec.any_ack {
                    done.push(rec.message_id.clone());
                } else {
                    self.persist_outbox(oid, fx)?;
                }
            }
            for id in done {
                self.drop_unacked(&id, fx);
            }
        }
        Ok(())
    }

    /// Stops re-sending a message: its outbox entries go.
    pub(super) fn drop_unacked(&mut self, message_id: &str, fx: &mut Effects) {
        for oid in self.rel.unacked.remove(message_id).unwrap_or_default() {
            if self.outbox.remove(&oid).is_some() {
                fx.store.push(self.cipher.delete(Store::Outbox, &oid.to_be_bytes()));
            }
        }
    }

    /// The installations that must acknowledge a message to a conversation, and whether
    /// one of them is enough.
    pub(super) fn ack_set(&self, others: Vec<InstallationId>) -> (Vec<String>, bool) {
        let me = self.installation.id();
        let awaiting: Vec<String> = others.iter().filter(|i| **i != me).map(InstallationId::to_hex).collect();
        let any = awaiting.len() > FULL_ACK_MAX;
        (awaiting, any)
    }

    /// Starts keeping an outbox entry for re-sending (called as it is enqueued).
    pub(super) fn track(&mut self, rec: &mut OutboxRecord, track: &Track) {
        if track.awaiting.is_empty() {
            return;
        }
        rec.conversation_id = track.conversation.as_str().to_owned();
        rec.message_id = track.message_id.clone();
        rec.awaiting = track.awaiting.clone();
        rec.any_ack = track.awaiting.len() > FULL_ACK_MAX;
        rec.next_at = track.now.saturating_add(RETRANSMIT_DELAYS_MS.first().copied().unwrap_or_default());
        self.rel.unacked.entry(track.message_id.clone()).or_default().push(rec.id);
    }

    /// Drops the oldest kept messages beyond the bounds (they are no longer re-sent).
    pub(super) fn bound_unacked(&mut self, fx: &mut Effects) {
        loop {
            let kept: Vec<(&u64, &OutboxRecord)> =
                self.outbox.iter().filter(|(_, r)| !r.message_id.is_empty() && r.accepted).collect();
            let bytes: usize = kept.iter().map(|(_, r)| r.payload.len()).sum();
            if kept.len() <= MAX_UNACKED && bytes <= MAX_UNACKED_BYTES {
                return;
            }
            let Some(oldest) = kept.first().map(|(_, r)| r.message_id.clone()) else { return };
            self.drop_unacked(&oldest, fx);
        }
    }

    /// Rebuilds the re-send index from the restored outbox.
    pub(super) fn restore_unacked(&mut self) {
        for rec in self.outbox.values() {
            if !rec.message_id.is_empty() {
                self.rel.unacked.entry(rec.message_id.clone()).or_default().push(rec.id);
            }
        }
    }

    /// Re-sends the same bytes of every kept message whose time has come.
    pub(super) fn resend_due(&mut self, now_ms: u64, fx: &mut Effects) -> Result<()> {
        let due: Vec<u64> = self
            .outbox
            .values()
            .filter(|r| !r.message_id.is_empty() && r.accepted && r.next_at <= now_ms)
            .map(|r| r.id)
            .collect();
        let mut given_up: HashSet<String> = HashSet::new();
        for oid in due {
            let Some(rec) = self.outbox.get_mut(&oid) else { continue };
            if rec.retransmits as usize >= RETRANSMIT_DELAYS_MS.len() {
                given_up.insert(rec.message_id.clone());
                continue;
            }
            rec.retransmits = rec.retransmits.saturating_add(1);
            let last = RETRANSMIT_DELAYS_MS.last().copied().unwrap_or_default();
            let delay = RETRANSMIT_DELAYS_MS.get(rec.retransmits as usize).copied().unwrap_or(last);
            rec.next_at = now_ms.saturating_add(delay);
            let (content_topic, payload) = (rec.content_topic.clone(), rec.payload.clone());
            self.persist_outbox(oid, fx)?;
            fx.publish.push(Outbound { content_topic, payload, outbox_id: oid });
        }
        for id in given_up {
            self.drop_unacked(&id, fx);
        }
        Ok(())
    }
}
