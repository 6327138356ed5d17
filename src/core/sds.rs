//! Reliability metadata of chat messages: libchat's `ReliablePayload` (PROTOCOL.md §2.9).
//!
//! Owns the per-conversation Lamport clock and causal history, derives message
//! ids and reports acks and missing messages. It never retransmits (repair is
//! a later layer) and never touches keys or the network.

use std::collections::{HashSet, VecDeque};

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;

use super::address::MessageId;
use super::wire::{HistoryEntry, ReliablePayload};

/// How many ids a payload's causal history carries (libchat: 10).
pub const CAUSAL_HISTORY_LEN: usize = 10;

/// `hex(B2b-256("deterministic_frame_id|" ‖ channel ‖ "|" ‖ sender ‖ "|" ‖ lamport i32 BE ‖ "|" ‖ content))`.
pub fn message_id(channel_id: &str, sender_id: &str, lamport: i32, content: &[u8]) -> MessageId {
    let mut out = [0u8; 32];
    if let Ok(mut h) = Blake2bVar::new(32) {
        for part in [
            b"deterministic_frame_id|".as_slice(),
            channel_id.as_bytes(),
            b"|",
            sender_id.as_bytes(),
            b"|",
            &lamport.to_be_bytes(),
            b"|",
            content,
        ] {
            h.update(part);
        }
        let _ = h.finalize_variable(&mut out);
    }
    MessageId(hex::encode(out))
}

/// What a received payload's history tells us.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HistoryReport {
    /// Our own messages that the sender has now seen.
    pub acked: Vec<MessageId>,
    /// Ids the sender had seen that we have not: (message id, sender hint).
    pub missing: Vec<(MessageId, String)>,
}

/// One conversation's reliability state. Bounded: it remembers the last
/// [`RECENT_CAP`] ids, which is what ack and missing detection look at (a peer's
/// causal history names its last 10), and it is what the store persists.
#[derive(Debug, Default, Clone)]
pub struct Channel {
    lamport: i32,
    history: VecDeque<HistoryEntry>,
    recent: VecDeque<(String, bool)>,
    recent_set: HashSet<String>,
    own: HashSet<String>,
    reported: HashSet<String>,
}

/// How many recent ids a channel remembers (and persists with every message, so it is
/// kept small: a peer's causal history names only its last 10).
pub const RECENT_CAP: usize = 64;

impl Channel {
    /// Rebuilds a channel from its persisted parts.
    pub fn restore(lamport: i32, history: Vec<HistoryEntry>, recent: Vec<(String, bool)>) -> Self {
        let mut c = Channel { lamport, history: history.into_iter().collect(), ..Channel::default() };
        for (id, own) in recent {
            c.note(&id, own);
        }
        c
    }

    /// The persisted parts: (lamport, causal history, recent ids with an own-flag).
    pub fn parts(&self) -> (i32, Vec<HistoryEntry>, Vec<(String, bool)>) {
        (self.lamport, self.history.iter().cloned().collect(), self.recent.iter().cloned().collect())
    }

    /// Wraps `content` for sending: increments the clock first (the first message carries 1).
    pub fn wrap(&mut self, channel_id: &str, sender_id: &str, content: Vec<u8>) -> ReliablePayload {
        self.lamport = self.lamport.saturating_add(1);
        let id = message_id(channel_id, sender_id, self.lamport, &content);
        let payload = ReliablePayload {
            message_id: id.0.clone(),
            channel_id: channel_id.to_owned(),
            sender_id: sender_id.to_owned(),
            lamport_timestamp: self.lamport,
            causal_history: self.history.iter().cloned().collect(),
            bloom_filter: Vec::new(),
            content,
        };
        self.remember(&id.0, sender_id, true);
        payload
    }

    /// Whether this id was recently seen (sent or received).
    pub fn has_seen(&self, id: &str) -> bool {
        self.recent_set.contains(id)
    }

    /// Records a received payload and reports acks and missing ids.
    pub fn receive(&mut self, p: &ReliablePayload) -> HistoryReport {
        self.lamport = self.lamport.max(p.lamport_timestamp);
        let mut report = HistoryReport::default();
        if self.reported.len() > 4 * RECENT_CAP {
            self.reported.clear();
        }
        for e in &p.causal_history {
            if self.own.contains(&e.message_id) {
                if self.reported.insert(format!("ack|{}|{}", e.message_id, p.sender_id)) {
                    report.acked.push(MessageId(e.message_id.clone()));
                }
            } else if !self.recent_set.contains(&e.message_id)
                && self.reported.insert(format!("missing|{}", e.message_id))
            {
                report.missing.push((MessageId(e.message_id.clone()), e.sender_id.clone()));
            }
        }
        self.remember(&p.message_id, &p.sender_id, false);
        report
    }

    fn note(&mut self, id: &str, own: bool) {
        if !self.recent_set.insert(id.to_owned()) {
            return;
        }
        if own {
            self.own.insert(id.to_owned());
        }
        self.recent.push_back((id.to_owned(), own));
        while self.recent.len() > RECENT_CAP {
            if let Some((old, _)) = self.recent.pop_front() {
                self.recent_set.remove(&old);
                self.own.remove(&old);
            }
        }
    }

    fn remember(&mut self, id: &str, sender_id: &str, own: bool) {
        if self.recent_set.contains(id) {
            return;
        }
        self.note(id, own);
        self.history.push_back(HistoryEntry {
            message_id: id.to_owned(),
            retrieval_hint: Vec::new(),
            sender_id: sender_id.to_owned(),
        });
        while self.history.len() > CAUSAL_HISTORY_LEN {
            self.history.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PROTOCOL.md §8 F.
    #[test]
    fn message_id_matches_vector_f() {
        assert_eq!(
            message_id("c", "alice", 1, b"1").as_str(),
            "6aad9515d6c18e9afdfc9b2b048deb8c1fc4ba711381165126ce69e8ae09450b"
        );
    }

    #[test]
    fn lamport_starts_at_one_and_history_is_bounded_oldest_first() {
        let mut a = Channel::default();
        let first = a.wrap("c", "alice", b"1".to_vec());
        assert_eq!(first.lamport_timestamp, 1);
        assert_eq!(first.message_id, message_id("c", "alice", 1, b"1").0);
        let mut last = first.clone();
        for i in 0..15 {
            last = a.wrap("c", "alice", vec![i]);
        }
        assert_eq!(last.causal_history.len(), CAUSAL_HISTORY_LEN);
        assert_eq!(last.lamport_timestamp, 16);
    }

    #[test]
    fn acks_and_missing_are_reported_once() {
        let (mut a, mut b) = (Channel::default(), Channel::default());
        let m1 = a.wrap("c", "alice", b"x".to_vec());
        let m2 = a.wrap("c", "alice", b"y".to_vec());
        // b only gets m2: m1 is missing.
        let r = b.receive(&m2);
        assert_eq!(r.missing, vec![(MessageId(m1.message_id.clone()), "alice".to_owned())]);
        let reply = b.wrap("c", "bob", b"z".to_vec());
        let r = a.receive(&reply);
        assert_eq!(r.acked, vec![MessageId(m2.message_id.clone())]);
        assert!(a.receive(&reply).acked.is_empty());
        assert_eq!(reply.lamport_timestamp, 3);
    }

    #[test]
    fn a_restored_channel_keeps_clock_history_and_acks() {
        let mut a = Channel::default();
        let m1 = a.wrap("c", "alice", b"x".to_vec());
        let (lamport, history, recent) = a.parts();
        let mut back = Channel::restore(lamport, history, recent);
        let mut b = Channel::default();
        b.receive(&m1);
        let reply = b.wrap("c", "bob", b"y".to_vec());
        assert_eq!(back.receive(&reply).acked, vec![MessageId(m1.message_id.clone())]);
        assert_eq!(back.wrap("c", "alice", b"z".to_vec()).lamport_timestamp, 3);
        for i in 0..(RECENT_CAP as u32 + 10) {
            back.wrap("c", "alice", i.to_be_bytes().to_vec());
        }
        assert_eq!(back.parts().2.len(), RECENT_CAP);
    }
}
