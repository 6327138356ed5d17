//! A channel's records: rebuilding a channel from them at open, and writing them as
//! its state changes (the record kinds are in `reliable::persist`).

use std::collections::BTreeMap;

use prost::Message as _;

use super::{Buffered, LogEntry, Missing, ReliableChannel};
use crate::core::error::{CoreError, Result};
use crate::core::reliable::persist::{self, InRecord, LogRecord, MetaRecord, OutRecord, SegRecord};
use crate::core::reliable::{ChannelConfig, ChannelEffects, ChannelOp};
use crate::core::wire::{HistoryEntry, SdsMessage};

impl ReliableChannel {
    /// Rebuilds a channel from its records (any order); `StoreCorrupt` if one does not decode.
    pub fn restore(
        channel_id: &str,
        sender_id: &str,
        config: ChannelConfig,
        records: Vec<(Vec<u8>, Vec<u8>)>,
        now: u64,
    ) -> Result<Self> {
        let mut c = Self::new(channel_id, sender_id, config, now)?;
        let corrupt = |what: &str| CoreError::StoreCorrupt(format!("reliable channel {what} record"));
        let mut log = BTreeMap::new();
        let mut segs = Vec::new();
        for (key, value) in records {
            let Some((head, rest)) = key.split_first_chunk::<8>() else { continue };
            let Some((&kind, tail)) = rest.split_first() else { continue };
            if *head != c.prefix {
                continue;
            }
            let id = String::from_utf8(tail.to_vec()).unwrap_or_default();
            match kind {
                persist::META => {
                    let m = MetaRecord::decode(value.as_slice()).map_err(|_| corrupt("meta"))?;
                    c.lamport = c.lamport.max(m.lamport);
                    c.peers = m.peers.into_iter().map(|p| (p.id, p.last_seen)).collect();
                }
                persist::LOG => {
                    let seq = <[u8; 8]>::try_from(tail).map_err(|_| corrupt("log"))?;
                    log.insert(
                        u64::from_be_bytes(seq),
                        LogRecord::decode(value.as_slice()).map_err(|_| corrupt("log"))?,
                    );
                }
                persist::OUT => {
                    c.outgoing
                        .insert(id, OutRecord::decode(value.as_slice()).map_err(|_| corrupt("outgoing"))?);
                }
                persist::IN => {
                    let r = InRecord::decode(value.as_slice()).map_err(|_| corrupt("incoming"))?;
                    let msg = SdsMessage::decode(r.bytes.as_slice()).map_err(|_| corrupt("incoming"))?;
                    c.incoming_bytes = c.incoming_bytes.saturating_add(r.bytes.len());
                    c.incoming
                        .insert(id, Buffered { msg, hint: r.hint, since: r.since, size: r.bytes.len() });
                }
                persist::SEG => {
                    segs.push(SegRecord::decode(value.as_slice()).map_err(|_| corrupt("segment"))?)
                }
                _ => {}
            }
        }
        if let Some((&first, _)) = log.iter().next() {
            c.first_seq = first;
        }
        for (seq, r) in log {
            // Sequence numbers are contiguous; a gap (a torn trim) restarts the numbering.
            if seq != c.first_seq.saturating_add(c.log.len() as u64) {
                c.first_seq = seq.saturating_sub(c.log.len() as u64);
            }
            if !r.lost {
                c.bloom.insert(&r.id);
            }
            c.log_index.insert(r.id.clone(), seq);
            c.log.push_back(LogEntry { id: r.id, hint: r.hint, sender: r.sender, lost: r.lost });
        }
        let mut fx = ChannelEffects::default();
        for r in segs {
            if let Ok(msg) = SdsMessage::decode(r.bytes.as_slice()) {
                c.take_segment(&msg, r.lamport, &mut fx);
            }
        }
        let waiting: Vec<(Vec<HistoryEntry>, u64)> =
            c.incoming.values().map(|b| (b.msg.causal_history.clone(), b.since)).collect();
        for (deps, since) in waiting {
            for d in deps {
                if !c.log_index.contains_key(&d.message_id) && !c.incoming.contains_key(&d.message_id) {
                    c.missing.entry(d.message_id.clone()).or_insert(Missing {
                        sender: (!d.sender_id.is_empty()).then(|| d.sender_id.clone()),
                        hint: d.retrieval_hint.clone(),
                        since,
                        attempt: 0,
                        next_at: now,
                    });
                }
            }
        }
        Ok(c)
    }

    pub(super) fn put_meta(&mut self, fx: &mut ChannelEffects) {
        let peers =
            self.peers.iter().map(|(id, t)| persist::PeerRecord { id: id.clone(), last_seen: *t }).collect();
        let rec = MetaRecord {
            lamport: self.lamport,
            next_seq: self.first_seq.saturating_add(self.log.len() as u64),
            peers,
        };
        self.put(persist::META, &[], rec.encode_to_vec(), fx);
    }

    pub(super) fn put(&self, kind: u8, id: &[u8], value: Vec<u8>, fx: &mut ChannelEffects) {
        let key = persist::key(&self.prefix, kind, id);
        fx.ops.retain(|op| op.key != key);
        fx.ops.push(ChannelOp { key, value: Some(value) });
    }

    pub(super) fn delete(&self, kind: u8, id: &[u8], fx: &mut ChannelEffects) {
        let key = persist::key(&self.prefix, kind, id);
        fx.ops.retain(|op| op.key != key);
        fx.ops.push(ChannelOp { key, value: None });
    }
}
