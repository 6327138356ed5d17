//! Taking messages in: checks, acknowledgements, missing dependencies, causal
//! delivery, reassembly and the lost timeout.

use prost::Message as _;

use super::{
    repair_backoff, Buffered, Missing, ReliableChannel, FULL_ACK_MAX, MAX_HISTORY, MAX_ID, MAX_PEERS,
    PEER_IDLE_MS, SEGMENT_ID, SYNC_LIST_MAX,
};
use crate::core::error::{CoreError, Result};
use crate::core::reliable::bloom::Bloom;
use crate::core::reliable::persist::{self, InRecord, OutRecord, SegRecord};
use crate::core::reliable::{
    ChannelEffects, ChannelEvent, MAX_BUFFERED, MAX_BUFFERED_BYTES, MAX_LAMPORT_AHEAD_MS, MAX_MESSAGE,
};
use crate::core::segment;
use crate::core::wire::{HistoryEntry, SdsMessage};

impl ReliableChannel {
    /// Decodes and checks a message; `Ok(None)` for what is simply not for us.
    pub(super) fn check(&self, bytes: &[u8], now: u64) -> Result<Option<SdsMessage>> {
        if bytes.len() > MAX_MESSAGE {
            return Err(CoreError::PayloadTooLarge { size: bytes.len(), limit: MAX_MESSAGE });
        }
        let msg = SdsMessage::decode(bytes).map_err(|e| CoreError::decode("SDS message", e))?;
        if msg.channel_id != self.channel_id || msg.sender_id == self.sender_id {
            return Ok(None);
        }
        let bad = |why: &str| CoreError::Decode { what: "SDS message", why: why.into() };
        if msg.message_id.is_empty() || msg.message_id.len() > MAX_ID || msg.sender_id.len() > MAX_ID {
            return Err(bad("message and sender ids have 1 to 256 bytes"));
        }
        if msg.causal_history.len() > MAX_HISTORY
            || msg.causal_history.iter().any(|e| e.message_id.len() > MAX_ID)
        {
            return Err(bad("causal history over 256 entries or ids over 256 bytes"));
        }
        if msg
            .lamport_timestamp
            .is_some_and(|l| l > now.max(self.lamport).saturating_add(MAX_LAMPORT_AHEAD_MS))
        {
            return Err(bad("Lamport time more than a day ahead"));
        }
        Ok(Some(msg))
    }

    pub(super) fn take(
        &mut self,
        msg: SdsMessage,
        hint: Vec<u8>,
        size: usize,
        now: u64,
        fx: &mut ChannelEffects,
    ) {
        self.peers.insert(msg.sender_id.clone(), now);
        while self.peers.len() > MAX_PEERS {
            let Some(oldest) = self.peers.iter().min_by_key(|(_, t)| **t).map(|(p, _)| p.clone()) else {
                break;
            };
            self.peers.remove(&oldest);
        }
        self.note_acks(&msg, now, fx);
        let content = msg.content.as_deref().unwrap_or_default();
        if msg.lamport_timestamp.is_none() {
            if !content.is_empty() {
                // Ephemeral: delivered at once, never logged or acknowledged.
                fx.events.push(ChannelEvent::Received {
                    message_id: msg.message_id.clone(),
                    sender_id: msg.sender_id.clone(),
                    payload: content.to_vec(),
                    lamport: 0,
                });
            }
            return;
        };
        if content.is_empty() {
            // A sync: acknowledgements, and news of messages we never saw.
            for d in &msg.causal_history {
                self.note_missing(d, now, fx);
            }
            return;
        }
        if self.log_index.contains_key(&msg.message_id) || self.incoming.contains_key(&msg.message_id) {
            // A duplicate. A re-send means its sender missed our acknowledgement: the
            // next sync names it again.
            if self.log_index.contains_key(&msg.message_id)
                && !self.reack.contains(&msg.message_id)
                && self.reack.len() < SYNC_LIST_MAX
            {
                self.reack.push(msg.message_id.clone());
                self.schedule_sync(now);
            }
            return;
        }
        self.missing.remove(&msg.message_id);
        let waiting: Vec<HistoryEntry> = msg
            .causal_history
            .iter()
            .filter(|d| !self.log_index.contains_key(&d.message_id))
            .cloned()
            .collect();
        if waiting.is_empty() {
            self.deliver(msg, hint, now, fx);
            self.sweep(now, fx);
            return;
        }
        for d in &waiting {
            self.note_missing(d, now, fx);
        }
        if self.incoming.len() >= MAX_BUFFERED
            || self.incoming_bytes.saturating_add(size) > MAX_BUFFERED_BYTES
        {
            // Full: the sender re-sends it, or a later message's history names it.
            fx.events.push(ChannelEvent::Error {
                code: "PAYLOAD_TOO_LARGE",
                message: "the buffer of messages waiting for their dependencies is full".into(),
            });
            return;
        }
        // We hold it now (persisted): say so in the bloom filter, as `@waku/sds` does.
        self.bloom.insert(&msg.message_id);
        let rec = InRecord { bytes: msg.encode_to_vec(), hint: hint.clone(), since: now };
        self.put(persist::IN, msg.message_id.as_bytes(), rec.encode_to_vec(), fx);
        self.incoming_bytes = self.incoming_bytes.saturating_add(size);
        self.incoming.insert(msg.message_id.clone(), Buffered { msg, hint, since: now, size });
    }

    fn note_missing(&mut self, d: &HistoryEntry, now: u64, fx: &mut ChannelEffects) {
        if d.message_id.is_empty()
            || d.sender_id == self.sender_id
            || self.log_index.contains_key(&d.message_id)
            || self.incoming.contains_key(&d.message_id)
            || self.missing.contains_key(&d.message_id)
            || self.missing.len() >= MAX_BUFFERED
        {
            return;
        }
        let sender = (!d.sender_id.is_empty()).then(|| d.sender_id.clone());
        fx.events.push(ChannelEvent::Missing { message_id: d.message_id.clone(), sender_id: sender.clone() });
        self.missing.insert(
            d.message_id.clone(),
            Missing {
                sender,
                hint: d.retrieval_hint.clone(),
                since: now,
                attempt: 0,
                next_at: now.saturating_add(repair_backoff(0)),
            },
        );
    }

    fn note_acks(&mut self, msg: &SdsMessage, now: u64, fx: &mut ChannelEffects) {
        let by = msg.sender_id.clone();
        for d in &msg.causal_history {
            if self.outgoing.contains_key(&d.message_id) {
                self.acked(&d.message_id.clone(), &by, now, fx);
            }
        }
        let Some(bloom) = msg.bloom_filter.as_deref().and_then(Bloom::from_bytes) else { return };
        let seen: Vec<String> = self.outgoing.keys().filter(|id| bloom.contains(id)).cloned().collect();
        for id in seen {
            let Some(rec) = self.outgoing.get_mut(&id) else { continue };
            if rec.acked_by.contains(&by) {
                continue;
            }
            // A bloom filter can lie (0.1% when full): the second sighting from the same
            // participant counts (`@waku/sds`: two sightings).
            let sightings = rec.possibly_by.iter().filter(|p| **p == by).count().saturating_add(1);
            if sightings >= usize::try_from(self.config.possible_acks).unwrap_or(usize::MAX) {
                self.acked(&id, &by, now, fx);
            } else {
                rec.possibly_by.push(by.clone());
                let value = rec.encode_to_vec();
                self.put(persist::OUT, id.as_bytes(), value, fx);
            }
        }
    }

    /// Whether every active participant has it (or one has, in a crowd).
    pub(super) fn settled(&self, rec: &OutRecord, now: u64) -> bool {
        if rec.acked_by.is_empty() {
            return false;
        }
        let mut active =
            self.peers.iter().filter(|(_, t)| t.saturating_add(PEER_IDLE_MS) > now).map(|(p, _)| p);
        if self.peers.len() > FULL_ACK_MAX {
            return true;
        }
        active.all(|p| rec.acked_by.contains(p))
    }

    fn acked(&mut self, id: &str, by: &str, now: u64, fx: &mut ChannelEffects) {
        let Some(rec) = self.outgoing.get_mut(id) else { return };
        if !rec.acked_by.iter().any(|p| p == by) {
            rec.acked_by.push(by.into());
        }
        let request = rec.request_id.clone();
        let first = !rec.reported;
        if first && !self.outgoing.values().any(|r| r.request_id == request && r.acked_by.is_empty()) {
            for r in self.outgoing.values_mut().filter(|r| r.request_id == request) {
                r.reported = true;
            }
            fx.events.push(ChannelEvent::Delivered { request_id: request.clone(), by: Some(by.into()) });
            let ids: Vec<String> = self
                .outgoing
                .iter()
                .filter(|(_, r)| r.request_id == request)
                .map(|(i, _)| i.clone())
                .collect();
            for i in ids {
                if let Some(r) = self.outgoing.get(&i) {
                    let value = r.encode_to_vec();
                    self.put(persist::OUT, i.as_bytes(), value, fx);
                }
            }
        }
        let Some(rec) = self.outgoing.get(id) else { return };
        if self.settled(rec, now) {
            self.outgoing.remove(id);
            self.delete(persist::OUT, id.as_bytes(), fx);
        } else {
            let value = rec.encode_to_vec();
            self.put(persist::OUT, id.as_bytes(), value, fx);
        }
    }

    fn deliver(&mut self, msg: SdsMessage, hint: Vec<u8>, now: u64, fx: &mut ChannelEffects) {
        let lamport = msg.lamport_timestamp.unwrap_or_default();
        self.lamport = self.lamport.max(lamport);
        self.append_log(&msg.message_id, hint, &msg.sender_id, false, fx);
        if msg.message_id.starts_with(SEGMENT_ID) {
            let rec = SegRecord { bytes: msg.encode_to_vec(), sender: msg.sender_id.clone(), lamport };
            self.put(persist::SEG, msg.message_id.as_bytes(), rec.encode_to_vec(), fx);
            self.take_segment(&msg, lamport, fx);
        } else {
            fx.events.push(ChannelEvent::Received {
                message_id: msg.message_id,
                sender_id: msg.sender_id,
                payload: msg.content.unwrap_or_default(),
                lamport,
            });
        }
        self.unacked_in = self.unacked_in.saturating_add(1);
        self.schedule_sync(now);
        self.put_meta(fx);
    }

    fn schedule_sync(&mut self, now: u64) {
        let jitter = u64::from(self.prefix[0]).saturating_mul(self.config.sync_delay_ms) / 255;
        self.sync_at.get_or_insert(now.saturating_add(self.config.sync_delay_ms).saturating_add(jitter));
    }

    /// Feeds a delivered segment to the reassembler; emits the payload once whole.
    pub(super) fn take_segment(&mut self, msg: &SdsMessage, lamport: u64, fx: &mut ChannelEffects) {
        let Some(seg) = msg.content.as_deref().and_then(segment::parse) else {
            fx.events.push(ChannelEvent::Error {
                code: "PROTOCOL",
                message: "a segment that does not decode".into(),
            });
            self.delete(persist::SEG, msg.message_id.as_bytes(), fx);
            return;
        };
        let hash = seg.original_payload_hash.clone();
        self.segments.entry(hash.clone()).or_default().push(msg.message_id.clone());
        if let Some(payload) = self.reassembler.push(seg) {
            fx.events.push(ChannelEvent::Received {
                message_id: msg.message_id.clone(),
                sender_id: msg.sender_id.clone(),
                payload,
                lamport,
            });
        }
        let dropped: Vec<Vec<u8>> =
            self.segments.keys().filter(|h| !self.reassembler.holds(h)).cloned().collect();
        for h in dropped {
            for id in self.segments.remove(&h).unwrap_or_default() {
                self.delete(persist::SEG, id.as_bytes(), fx);
            }
        }
    }

    /// Delivers every buffered message whose dependencies are now all in the log, in
    /// Lamport order (then by id).
    fn sweep(&mut self, now: u64, fx: &mut ChannelEffects) {
        loop {
            let ready = self
                .incoming
                .values()
                .filter(|b| b.msg.causal_history.iter().all(|d| self.log_index.contains_key(&d.message_id)))
                .map(|b| (b.msg.lamport_timestamp.unwrap_or_default(), b.msg.message_id.clone()))
                .min();
            let Some((_, id)) = ready else { return };
            let Some(b) = self.incoming.remove(&id) else { return };
            self.incoming_bytes = self.incoming_bytes.saturating_sub(b.size);
            self.delete(persist::IN, id.as_bytes(), fx);
            self.deliver(b.msg, b.hint, now, fx);
        }
    }

    /// Declares lost what waited too long, then delivers what waited on it. A held
    /// message past its time forces the held messages it depends on too (they go
    /// first, in order), so nothing stays held past its time.
    pub(super) fn expire(&mut self, now: u64, fx: &mut ChannelEffects) {
        let lost_after = self.config.lost_after_ms;
        let mut gone: Vec<(String, Option<String>)> = self
            .missing
            .iter()
            .filter(|(_, m)| m.since.saturating_add(lost_after) <= now)
            .map(|(id, m)| (id.clone(), m.sender.clone()))
            .collect();
        let mut forced: Vec<String> = self
            .incoming
            .values()
            .filter(|b| b.since.saturating_add(lost_after) <= now)
            .map(|b| b.msg.message_id.clone())
            .collect();
        let mut i = 0;
        while let Some(f) = forced.get(i) {
            let deps = self.incoming.get(f).map(|b| b.msg.causal_history.clone()).unwrap_or_default();
            for d in deps {
                if self.log_index.contains_key(&d.message_id) {
                    continue;
                }
                if self.incoming.contains_key(&d.message_id) {
                    if !forced.contains(&d.message_id) {
                        forced.push(d.message_id.clone());
                    }
                } else if !gone.iter().any(|(id, _)| id == &d.message_id) {
                    gone.push((d.message_id.clone(), (!d.sender_id.is_empty()).then(|| d.sender_id.clone())));
                }
            }
            i = i.saturating_add(1);
        }
        if gone.is_empty() {
            return;
        }
        for (id, sender) in gone {
            self.missing.remove(&id);
            self.append_log(&id, Vec::new(), sender.as_deref().unwrap_or_default(), true, fx);
            fx.events.push(ChannelEvent::Lost { message_id: id, sender_id: sender });
        }
        self.sweep(now, fx);
    }
}
