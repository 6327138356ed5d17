//! The Reliable Channel state machine (see the module docs of `reliable`): its state,
//! the public calls, sending and the log; `incoming.rs` takes messages in.

mod incoming;
mod records;

use std::collections::{BTreeMap, HashMap, VecDeque};

use prost::Message as _;
use sha3::{Digest, Keccak256};

use super::bloom::Bloom;
use super::persist::{self, LogRecord, OutRecord};
use super::{
    ChannelConfig, ChannelEffects, ChannelEvent, ChannelOutbound, ChannelQuery, LOG_CAP, MAX_OUTGOING,
};
use crate::core::error::{CoreError, Result};
use crate::core::segment::{self, Reassembler};
use crate::core::wire::{HistoryEntry, SdsMessage};

/// SDS ids of segments start with this (so a payload that happens to parse as a
/// segment is never mistaken for one); sync messages' ids start with `sync-`, as
/// `@waku/sds` writes them.
const SEGMENT_ID: &str = "seg-";
/// Most causal history entries taken from one message.
const MAX_HISTORY: usize = 256;
/// Longest message or sender id taken in.
const MAX_ID: usize = 256;
/// Bytes an SDS message adds around its content, with room to spare (ids, history).
const OVERHEAD: usize = 2_048;
/// Most participants remembered (the oldest heard from is forgotten first).
const MAX_PEERS: usize = 64;
/// A participant not heard from for this long is no longer waited for.
pub const PEER_IDLE_MS: u64 = 10 * 60 * 1000;
/// With more active participants than this, one acknowledgement settles a message
/// (otherwise a quiet crowd would have every message re-sent).
pub const FULL_ACK_MAX: usize = 16;
/// Most ids a sync lists; past that it carries the bloom filter instead.
const SYNC_LIST_MAX: usize = 32;

#[derive(Debug, Clone)]
struct LogEntry {
    id: String,
    hint: Vec<u8>,
    sender: String,
    lost: bool,
}

#[derive(Debug, Clone)]
struct Buffered {
    msg: SdsMessage,
    hint: Vec<u8>,
    since: u64,
    size: usize,
}

#[derive(Debug, Clone)]
struct Missing {
    sender: Option<String>,
    hint: Vec<u8>,
    since: u64,
    attempt: u32,
    next_at: u64,
}

/// One participant's end of a channel.
#[derive(Debug)]
pub struct ReliableChannel {
    channel_id: String,
    sender_id: String,
    prefix: [u8; 8],
    config: ChannelConfig,
    lamport: u64,
    /// Sequence number of `log[0]`.
    first_seq: u64,
    log: VecDeque<LogEntry>,
    log_index: HashMap<String, u64>,
    bloom: Bloom,
    trimmed: usize,
    outgoing: BTreeMap<String, OutRecord>,
    incoming: BTreeMap<String, Buffered>,
    incoming_bytes: usize,
    missing: BTreeMap<String, Missing>,
    reassembler: Reassembler,
    /// Payload hash → SDS ids of its delivered segments.
    segments: HashMap<Vec<u8>, Vec<String>>,
    sync_at: Option<u64>,
    /// Deliveries since our last message (what a sync must acknowledge).
    unacked_in: usize,
    /// Ids re-sent to us after we had them: their sender missed our acknowledgement.
    reack: Vec<String>,
    peers: BTreeMap<String, u64>,
    counter: u64,
}

fn repair_backoff(attempt: u32) -> u64 {
    1_000u64.saturating_mul(1 << attempt.min(4)).min(10_000)
}

impl ReliableChannel {
    /// A new channel end: the Lamport clock starts at `now` (LIP-109).
    pub fn new(channel_id: &str, sender_id: &str, config: ChannelConfig, now: u64) -> Result<Self> {
        if channel_id.is_empty()
            || channel_id.len() > MAX_ID
            || sender_id.is_empty()
            || sender_id.len() > MAX_ID
        {
            return Err(CoreError::InvalidArgument(format!(
                "channel and sender ids have 1 to {MAX_ID} bytes"
            )));
        }
        if config.causal_history == 0
            || config.causal_history > MAX_HISTORY
            || config.segment_size < 4 * OVERHEAD
        {
            return Err(CoreError::InvalidArgument(
                "causal history of 1 to 256, segments of at least 8 KiB".into(),
            ));
        }
        Ok(ReliableChannel {
            channel_id: channel_id.into(),
            sender_id: sender_id.into(),
            prefix: persist::prefix(channel_id, sender_id),
            config,
            lamport: now,
            first_seq: 0,
            log: VecDeque::new(),
            log_index: HashMap::new(),
            bloom: Bloom::default(),
            trimmed: 0,
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            incoming_bytes: 0,
            missing: BTreeMap::new(),
            reassembler: Reassembler::default(),
            segments: HashMap::new(),
            sync_at: None,
            unacked_in: 0,
            reack: Vec::new(),
            peers: BTreeMap::new(),
            counter: 0,
        })
    }

    /// The key range of this channel's records: load them with the store's `range`.
    pub fn key_range(channel_id: &str, sender_id: &str) -> (Vec<u8>, Vec<u8>) {
        let p = persist::prefix(channel_id, sender_id);
        (p.to_vec(), persist::key(&p, 0xff, &[]))
    }

    /// This end's participant id.
    pub fn sender_id(&self) -> &str {
        &self.sender_id
    }

    /// Messages of ours not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.outgoing.len()
    }

    /// Ids named by others and not received.
    pub fn missing_ids(&self) -> Vec<String> {
        self.missing.keys().cloned().collect()
    }

    /// Sends a payload: one SDS message, or one per segment when it does not fit.
    /// Returns the request id (the first SDS message's id).
    pub fn send(&mut self, payload: &[u8], now: u64) -> Result<(String, ChannelEffects)> {
        if payload.is_empty() {
            return Err(CoreError::InvalidArgument(
                "an empty payload is a sync message; send at least one byte".into(),
            ));
        }
        let bloom_len = if self.config.bloom_in_content { super::bloom::BYTES } else { 0 };
        let room = self.config.segment_size.saturating_sub(OVERHEAD.saturating_add(bloom_len));
        let chunks: Vec<(bool, Vec<u8>)> = if payload.len() <= room {
            vec![(false, payload.to_vec())]
        } else {
            segment::split_into(payload, room)
                .ok_or(CoreError::PayloadTooLarge {
                    size: payload.len(),
                    limit: room.saturating_mul(segment::MAX_SEGMENTS),
                })?
                .into_iter()
                .map(|s| (true, s))
                .collect()
        };
        let mut fx = ChannelEffects::default();
        let mut request_id = String::new();
        for (segmented, content) in chunks {
            let msg = self.wrap(Some(content), segmented, now);
            let id = msg.message_id.clone();
            if request_id.is_empty() {
                request_id = id.clone();
            }
            let bytes = msg.encode_to_vec();
            self.append_log(&id, Vec::new(), &self.sender_id.clone(), false, &mut fx);
            let rec = OutRecord {
                request_id: request_id.clone(),
                bytes: bytes.clone(),
                attempt: 0,
                next_at: now.saturating_add(self.config.ack_timeout_ms),
                ..OutRecord::default()
            };
            self.put(persist::OUT, id.as_bytes(), rec.encode_to_vec(), &mut fx);
            self.outgoing.insert(id.clone(), rec);
            fx.publish.push(ChannelOutbound {
                message_id: id,
                bytes,
                request_id: Some(request_id.clone()),
                attempt: 0,
            });
        }
        while self.outgoing.len() > MAX_OUTGOING {
            let Some(oldest) = self.oldest_request() else { break };
            self.fail_request(&oldest, now, &mut fx);
        }
        if self.config.bloom_in_content || self.unacked_in <= self.config.causal_history {
            // This message acknowledges as much as a sync would.
            self.sync_at = None;
            self.unacked_in = 0;
        }
        self.put_meta(&mut fx);
        fx.wake_at = self.next_wake();
        Ok((request_id, fx))
    }

    /// Reports the network hash of one of our messages (its retrieval hint, hex).
    pub fn published(&mut self, message_id: &str, message_hash: &str) -> ChannelEffects {
        let mut fx = ChannelEffects::default();
        let Ok(hint) = hex::decode(message_hash) else { return fx };
        if let Some(&seq) = self.log_index.get(message_id) {
            if let Some(e) = self.log_pos(seq).and_then(|i| self.log.get_mut(i)) {
                e.hint = hint;
                let rec = LogRecord {
                    id: e.id.clone(),
                    hint: e.hint.clone(),
                    sender: e.sender.clone(),
                    lost: e.lost,
                };
                self.put(persist::LOG, &seq.to_be_bytes(), rec.encode_to_vec(), &mut fx);
            }
        }
        fx.wake_at = self.next_wake();
        fx
    }

    /// Takes one message from the topic (after the app's decryption hook), with its
    /// network hash (hex). Bad input gives an `Error` event and changes nothing.
    pub fn receive(&mut self, bytes: &[u8], message_hash: &str, now: u64) -> ChannelEffects {
        let mut fx = ChannelEffects::default();
        match self.check(bytes, now) {
            Err(e) => fx.events.push(ChannelEvent::Error { code: e.code().as_str(), message: e.to_string() }),
            Ok(None) => {}
            Ok(Some(msg)) => {
                let hint = hex::decode(message_hash).unwrap_or_default();
                self.take(msg, hint, bytes.len(), now, &mut fx);
            }
        }
        fx.wake_at = self.next_wake();
        fx
    }

    /// Runs what is due: retransmissions, repair queries, lost timeouts, syncs.
    pub fn tick(&mut self, now: u64) -> ChannelEffects {
        let mut fx = ChannelEffects::default();
        let due: Vec<String> =
            self.outgoing.iter().filter(|(_, r)| r.next_at <= now).map(|(id, _)| id.clone()).collect();
        for id in due {
            let Some(rec) = self.outgoing.get(&id) else { continue };
            if rec.attempt >= self.config.max_retransmissions {
                let request = rec.request_id.clone();
                self.fail_request(&request, now, &mut fx);
                continue;
            }
            let Some(rec) = self.outgoing.get_mut(&id) else { continue };
            rec.attempt = rec.attempt.saturating_add(1);
            rec.next_at = now.saturating_add(self.config.ack_timeout_ms);
            let (request_id, bytes, attempt) = (rec.request_id.clone(), rec.bytes.clone(), rec.attempt);
            let value = rec.encode_to_vec();
            self.put(persist::OUT, id.as_bytes(), value, &mut fx);
            fx.publish.push(ChannelOutbound { message_id: id, bytes, request_id: Some(request_id), attempt });
        }
        // Repair: one store query for every missing id that has a hint and is due.
        let mut hashes = Vec::new();
        let mut attempt = 0;
        for m in self.missing.values_mut() {
            if m.next_at <= now && m.since.saturating_add(self.config.lost_after_ms) > now {
                if !m.hint.is_empty() {
                    hashes.push(hex::encode(&m.hint));
                    attempt = attempt.max(m.attempt);
                }
                m.attempt = m.attempt.saturating_add(1);
                m.next_at = now.saturating_add(repair_backoff(m.attempt));
            }
        }
        if !hashes.is_empty() {
            fx.queries.push(ChannelQuery { message_hashes: hashes, attempt });
        }
        self.expire(now, &mut fx);
        let settled: Vec<String> =
            self.outgoing.iter().filter(|(_, r)| self.settled(r, now)).map(|(id, _)| id.clone()).collect();
        for id in settled {
            self.outgoing.remove(&id);
            self.delete(persist::OUT, id.as_bytes(), &mut fx);
        }
        if self.sync_at.is_some_and(|t| t <= now) {
            self.sync_at = None;
            let msg = self.wrap(None, false, now);
            self.unacked_in = 0;
            fx.publish.push(ChannelOutbound {
                message_id: msg.message_id.clone(),
                bytes: msg.encode_to_vec(),
                request_id: None,
                attempt: 0,
            });
            self.put_meta(&mut fx);
        }
        fx.wake_at = self.next_wake();
        fx
    }

    /// The earliest time something is due.
    pub fn next_wake(&self) -> Option<u64> {
        let out = self.outgoing.values().map(|r| r.next_at);
        let lost = self.config.lost_after_ms;
        let repair = self.missing.values().map(|m| m.next_at.min(m.since.saturating_add(lost)));
        let held = self.incoming.values().map(|b| b.since.saturating_add(lost));
        out.chain(repair).chain(held).chain(self.sync_at).min()
    }

    // ----- sending

    fn wrap(&mut self, content: Option<Vec<u8>>, segmented: bool, now: u64) -> SdsMessage {
        self.lamport = now.max(self.lamport.saturating_add(1));
        self.counter = self.counter.wrapping_add(1);
        let ns = now.saturating_mul(1_000_000).saturating_add(self.counter % 1_000_000);
        let mut h = Keccak256::new();
        h.update(self.sender_id.as_bytes());
        h.update(ns.to_be_bytes());
        h.update(content.as_deref().unwrap_or_default());
        let digest = hex::encode(h.finalize());
        let message_id = match (&content, segmented) {
            (None, _) => format!("sync-{}", &digest[..16]),
            (Some(_), true) => format!("{SEGMENT_ID}{digest}"),
            (Some(_), false) => digest,
        };
        let sync = content.is_none();
        // A sync lists what it acknowledges; past SYNC_LIST_MAX the bloom filter does.
        let listed = if sync {
            self.unacked_in.clamp(self.config.causal_history, SYNC_LIST_MAX)
        } else {
            self.config.causal_history
        };
        let bloom = (sync && self.unacked_in > SYNC_LIST_MAX) || self.config.bloom_in_content;
        let entry = |e: &LogEntry| HistoryEntry {
            message_id: e.id.clone(),
            retrieval_hint: e.hint.clone(),
            sender_id: e.sender.clone(),
        };
        let mut causal_history: Vec<HistoryEntry> =
            self.log.iter().rev().filter(|e| !e.lost).take(listed).map(entry).collect();
        // Always name our own previous message too: a receiver that missed it learns so
        // from whatever we send next (the last entries alone may all be others').
        if let Some(own) = self.log.iter().rev().find(|e| e.sender == self.sender_id && !e.lost) {
            if !causal_history.iter().any(|h| h.message_id == own.id) {
                causal_history.push(entry(own));
            }
        }
        // Ids re-sent to us after we had them go into whatever we send next: a message
        // of ours cancels the pending sync, so leaving them to the sync lost them.
        for id in std::mem::take(&mut self.reack) {
            let Some(&seq) = self.log_index.get(&id) else { continue };
            if let Some(e) = self.log_pos(seq).and_then(|i| self.log.get(i)) {
                if !causal_history.iter().any(|h| h.message_id == id) {
                    causal_history.push(entry(e));
                }
            }
        }
        causal_history.reverse();
        SdsMessage {
            sender_id: self.sender_id.clone(),
            message_id,
            channel_id: self.channel_id.clone(),
            lamport_timestamp: Some(self.lamport),
            causal_history,
            bloom_filter: bloom.then(|| self.bloom.to_bytes()),
            repair_request: Vec::new(),
            content,
        }
    }

    fn oldest_request(&self) -> Option<String> {
        self.outgoing.values().min_by_key(|r| r.next_at).map(|r| r.request_id.clone())
    }

    /// Retransmissions ran out: drop the request's records and say who never acknowledged.
    fn fail_request(&mut self, request: &str, now: u64, fx: &mut ChannelEffects) {
        let ids: Vec<String> =
            self.outgoing.iter().filter(|(_, r)| r.request_id == request).map(|(id, _)| id.clone()).collect();
        let mut unacked_by: Vec<String> = Vec::new();
        for id in ids {
            let Some(rec) = self.outgoing.remove(&id) else { continue };
            self.delete(persist::OUT, id.as_bytes(), fx);
            for (p, t) in &self.peers {
                if t.saturating_add(PEER_IDLE_MS) > now
                    && !rec.acked_by.contains(p)
                    && !unacked_by.contains(p)
                {
                    unacked_by.push(p.clone());
                }
            }
        }
        fx.events.push(ChannelEvent::DeliveryFailed { request_id: request.into(), unacked_by });
    }

    // ----- the log and storage

    /// Where the log entry of sequence number `seq` is, if it is still in the log.
    fn log_pos(&self, seq: u64) -> Option<usize> {
        seq.checked_sub(self.first_seq).and_then(|d| usize::try_from(d).ok())
    }

    fn append_log(&mut self, id: &str, hint: Vec<u8>, sender: &str, lost: bool, fx: &mut ChannelEffects) {
        if self.log_index.contains_key(id) {
            return;
        }
        let seq = self.first_seq.saturating_add(self.log.len() as u64);
        let rec = LogRecord { id: id.into(), hint: hint.clone(), sender: sender.into(), lost };
        self.put(persist::LOG, &seq.to_be_bytes(), rec.encode_to_vec(), fx);
        if !lost {
            self.bloom.insert(id);
        }
        self.log_index.insert(id.into(), seq);
        self.log.push_back(LogEntry { id: id.into(), hint, sender: sender.into(), lost });
        while self.log.len() > LOG_CAP {
            let Some(old) = self.log.pop_front() else { break };
            self.delete(persist::LOG, &self.first_seq.to_be_bytes(), fx);
            self.log_index.remove(&old.id);
            self.first_seq = self.first_seq.saturating_add(1);
            self.trimmed = self.trimmed.saturating_add(1);
        }
        if self.trimmed >= LOG_CAP / 10 {
            // A bloom filter cannot forget: rebuild it from what the log still holds.
            self.trimmed = 0;
            self.bloom = Bloom::default();
            for e in self.log.iter().filter(|e| !e.lost) {
                self.bloom.insert(&e.id);
            }
        }
    }
}
