//! Reliability metadata of chat messages: libchat's `ReliablePayload` (PROTOCOL.md §2.9).
//!
//! Owns the per-conversation Lamport clock and causal history, derives message
//! ids and reports acks. Missing messages, causal order and retransmission are the
//! client's (`client/reliability.rs`), which remembers far more ids than a channel.
//! Never touches keys or the network.

use std::collections::{HashSet, VecDeque};

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;

use super::address::MessageId;
use super::wire::{HistoryEntry, ReliablePayload};

/// How many ids a payload's causal history carries (libchat: 10).
pub const CAUSAL_HISTORY_LEN: usize = 10;

/// The most one received message may move our Lamport clock (issue 12): the clock
/// counts messages, so a legitimate peer is never a million ahead, while one payload
/// claiming `i32::MAX` would pin the clock there for good (every later message of ours
/// carrying the same time).
pub const MAX_LAMPORT_JUMP: i32 = 1 << 20;

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

/// One conversation's reliability state. Bounded: it remembers the last
/// [`RECENT_CAP`] ids, which is what ack detection looks at (a peer's causal history
/// names its last 10), and it is what the store persists.
#[derive(Debug, Default, Clone)]
pub struct Channel {
    lamport: i32,
    history: VecDeque<HistoryEntry>,
    recent: VecDeque<(String, bool)>,
    recent_set: HashSet<String>,
    own: HashSet<String>,
    reported: HashSet<String>,
    /// The Lamport time of each sender's entry in `history` (not persisted: a restored
    /// entry counts as the newest).
    frontier: std::collections::HashMap<String, i32>,
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
        self.remember_at(&id.0, sender_id, true, self.lamport);
        payload
    }

    /// Whether this id is one of our own recent messages.
    pub fn is_own(&self, id: &str) -> bool {
        self.own.contains(id)
    }

    /// Whether this id was recently seen (sent or received).
    pub fn has_seen(&self, id: &str) -> bool {
        self.recent_set.contains(id)
    }

    /// Records a received payload's clock and acks; returns our own messages its sender
    /// has now seen (each reported once per sender). The payload enters our causal
    /// history only once it is delivered ([`Channel::delivered`]): naming a message that
    /// is still held would tell its sender we have what it depends on.
    pub fn receive(&mut self, p: &ReliablePayload) -> Vec<MessageId> {
        let ceiling = self.lamport.saturating_add(MAX_LAMPORT_JUMP);
        self.lamport = self.lamport.max(p.lamport_timestamp.min(ceiling));
        let mut acked = Vec::new();
        if self.reported.len() > 4 * RECENT_CAP {
            self.reported.clear();
        }
        for e in &p.causal_history {
            if self.own.contains(&e.message_id)
                && self.reported.insert(format!("ack|{}|{}", e.message_id, p.sender_id))
            {
                acked.push(MessageId(e.message_id.clone()));
            }
        }
        acked
    }

    /// A received message was delivered (in causal order): it enters the history.
    pub fn delivered(&mut self, id: &str, sender_id: &str, lamport: i32) {
        self.remember_at(id, sender_id, false, lamport);
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

    /// Adds a message to the causal history, which is the conversation's frontier: the
    /// latest message of each sender (most recent last, 10 senders at most). Naming each
    /// sender's latest message, instead of the last 10 messages whoever sent them, keeps
    /// causality transitive: a receiver that waits for the named messages has, through
    /// their own histories, everything the sender had seen, however many messages of
    /// other senders came in between. An older message of a sender (one that arrived
    /// late) does not replace its newer one.
    fn remember_at(&mut self, id: &str, sender_id: &str, own: bool, lamport: i32) {
        if self.recent_set.contains(id) {
            return;
        }
        self.note(id, own);
        if let Some(pos) = self.history.iter().position(|e| e.sender_id == sender_id) {
            if self.frontier.get(sender_id).is_some_and(|l| *l > lamport) {
                return;
            }
            self.history.remove(pos);
        }
        self.frontier.insert(sender_id.to_owned(), lamport);
        if self.frontier.len() > 4 * CAUSAL_HISTORY_LEN {
            self.frontier.retain(|s, _| self.history.iter().any(|e| &e.sender_id == s));
        }
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
    fn lamport_starts_at_one_and_history_is_the_frontier() {
        let mut a = Channel::default();
        let first = a.wrap("c", "alice", b"1".to_vec());
        assert_eq!(first.lamport_timestamp, 1);
        assert_eq!(first.message_id, message_id("c", "alice", 1, b"1").0);
        let mut last = first.clone();
        for i in 0..15 {
            last = a.wrap("c", "alice", vec![i]);
        }
        assert_eq!(last.lamport_timestamp, 16);
        // One sender: its previous message only.
        assert_eq!(last.causal_history.len(), 1);
        // Twelve senders: the latest of the ten most recent.
        let mut b = Channel::default();
        for s in 0..12 {
            let mut peer = Channel::default();
            let p = peer.wrap("c", &format!("s{s}"), vec![s]);
            b.receive(&p);
            b.delivered(&p.message_id, &p.sender_id, p.lamport_timestamp);
        }
        let reply = b.wrap("c", "bob", b"x".to_vec());
        assert_eq!(reply.causal_history.len(), CAUSAL_HISTORY_LEN);
        assert!(reply.causal_history.iter().all(|e| e.sender_id != "s0" && e.sender_id != "s1"));
    }

    #[test]
    fn a_late_older_message_does_not_replace_its_senders_newer_one() {
        let mut peer = Channel::default();
        let older = peer.wrap("c", "p", b"1".to_vec());
        let newer = peer.wrap("c", "p", b"2".to_vec());
        let mut me = Channel::default();
        for p in [&newer, &older] {
            me.receive(p);
            me.delivered(&p.message_id, &p.sender_id, p.lamport_timestamp);
        }
        let reply = me.wrap("c", "me", b"x".to_vec());
        assert!(reply.causal_history.iter().any(|e| e.message_id == newer.message_id));
        assert!(!reply.causal_history.iter().any(|e| e.message_id == older.message_id));
    }

    #[test]
    fn acks_are_reported_once() {
        let (mut a, mut b) = (Channel::default(), Channel::default());
        let _m1 = a.wrap("c", "alice", b"x".to_vec());
        let m2 = a.wrap("c", "alice", b"y".to_vec());
        b.receive(&m2);
        b.delivered(&m2.message_id, &m2.sender_id, m2.lamport_timestamp);
        let reply = b.wrap("c", "bob", b"z".to_vec());
        let acked = a.receive(&reply);
        assert_eq!(acked, vec![MessageId(m2.message_id.clone())]);
        assert!(a.receive(&reply).is_empty());
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
        b.delivered(&m1.message_id, &m1.sender_id, m1.lamport_timestamp);
        let reply = b.wrap("c", "bob", b"y".to_vec());
        assert_eq!(back.receive(&reply), vec![MessageId(m1.message_id.clone())]);
        assert_eq!(back.wrap("c", "alice", b"z".to_vec()).lamport_timestamp, 3);
        for i in 0..(RECENT_CAP as u32 + 10) {
            back.wrap("c", "alice", i.to_be_bytes().to_vec());
        }
        assert_eq!(back.parts().2.len(), RECENT_CAP);
    }
}
