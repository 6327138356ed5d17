//! R1 and repair policy (DESIGN.md §1: the core decides, the driver executes).
//!
//! - **Exactly once.** A chat message is handled once per conversation, whatever brings
//!   it again (a retransmission, a store read, a restart): its id is remembered with the
//!   envelope digests (`seen`, persisted, bounded).
//! - **Causal order.** A message whose causal history names ids we have not delivered
//!   is held (persisted in its conversation's record) until they come, or until
//!   [`HOLD_MS`] has passed; then it is delivered and the ids still missing are reported
//!   `Lost`. An id we never saw is reported `Missing` once, with its sender.
//! - **Repair, receiving side.** While a conversation misses messages the core asks the
//!   driver to read its topic from the store ([`StoreQuery`]), with back-off, until the
//!   messages come or are given up.
//! - **Repair, sending side.** Our chat messages stay in the outbox after the transport
//!   accepted them, until every other installation of the conversation has named them
//!   in a causal history (one of them in a large group), and are re-sent, the same
//!   bytes, on [`RETRANSMIT_DELAYS_MS`].
//! - **Lookups and catch-up reads** that fail are tried again on the core's clock.

use super::*;
use crate::core::effects::StoreQuery;

mod held;
pub(super) use held::{chat_message, message_record};

/// How long a message waits for the messages it depends on before it is delivered
/// with the gap reported: longer than the sender's re-sends take, so that a message
/// re-sent to the end still lands in order.
pub const HOLD_MS: u64 = 100_000;
/// Tries of a directory lookup before the messages waiting on it are released.
pub const LOOKUP_TRIES: u32 = 6;
/// Most messages held per conversation, and their content bytes; beyond, the oldest is
/// delivered at once.
const MAX_HELD: usize = 512;
const MAX_HELD_BYTES: usize = 8 << 20;
/// How far before the first missing message was noticed a repair read starts.
const REPAIR_LOOKBACK_MS: u64 = 10 * 60_000;
/// The first repair read comes this long after a gap is noticed (the message may just
/// be late).
const REPAIR_FIRST_MS: u64 = 1_000;

/// Back-off between tries of a read the core depends on: 0.5 s doubling, 16 s at most.
pub fn backoff(attempt: u32) -> u64 {
    500u64.saturating_mul(1 << attempt.min(5)).min(16_000)
}

/// A received message held for causal order.
#[derive(Debug, Clone)]
pub(super) struct Held {
    message: ChatMessage,
    deps: Vec<String>,
    deadline: u64,
    claimed: Option<AccountId>,
    seq: u64,
    /// The payload's sender id and Lamport time, for the causal history on delivery.
    sender_id: String,
    lamport: i32,
}

/// A missing message: who the history entry said sent it, and since when we miss it.
#[derive(Debug, Clone)]
struct Wanted {
    sender_hint: String,
    since: u64,
}

/// The next try of something that failed or waits.
#[derive(Debug, Clone, Copy)]
struct Retry {
    attempt: u32,
    next_at: u64,
}

/// The client's reliability state (all of it rebuilt from persisted records at start).
#[derive(Debug, Default)]
pub(super) struct Reliability {
    held: BTreeMap<ConversationId, Vec<Held>>,
    wanted: BTreeMap<ConversationId, BTreeMap<String, Wanted>>,
    repair: BTreeMap<ConversationId, Retry>,
    lookups: BTreeMap<String, Retry>,
    catchups: BTreeMap<String, Retry>,
    /// Groups that hold messages of a later epoch than theirs: reads of the group topic
    /// for the commit they missed, with back-off, [`LOOKUP_TRIES`] at most per episode.
    behind: BTreeMap<ConversationId, Retry>,
    /// Message id → the outbox entries (segments) that carry it.
    pub(super) unacked: HashMap<String, Vec<u64>>,
}

/// One conversation's part of the reliability state, and the client-wide retries
/// (what a failed call puts back: `checkpoint`).
pub(super) struct RelSlice {
    held: Option<Vec<Held>>,
    wanted: Option<BTreeMap<String, Wanted>>,
    repair: Option<Retry>,
    behind: Option<Retry>,
    lookups: BTreeMap<String, Retry>,
    catchups: BTreeMap<String, Retry>,
}

impl Reliability {
    pub(super) fn slice(&self, id: &ConversationId) -> RelSlice {
        RelSlice {
            held: self.held.get(id).cloned(),
            wanted: self.wanted.get(id).cloned(),
            repair: self.repair.get(id).copied(),
            behind: self.behind.get(id).copied(),
            lookups: self.lookups.clone(),
            catchups: self.catchups.clone(),
        }
    }

    pub(super) fn put_slice(&mut self, id: &ConversationId, s: RelSlice) {
        fn put<T>(map: &mut BTreeMap<ConversationId, T>, id: &ConversationId, v: Option<T>) {
            match v {
                Some(v) => map.insert(id.clone(), v),
                None => map.remove(id),
            };
        }
        put(&mut self.held, id, s.held);
        put(&mut self.wanted, id, s.wanted);
        put(&mut self.repair, id, s.repair);
        put(&mut self.behind, id, s.behind);
        self.lookups = s.lookups;
        self.catchups = s.catchups;
    }

    /// Forgets the outbox entries from `first` on (written by a call that failed).
    pub(super) fn forget_outbox_from(&mut self, first: u64) {
        self.unacked.retain(|_, ids| {
            ids.retain(|i| *i < first);
            !ids.is_empty()
        });
    }
}

pub(super) fn msg_digest(conversation: &ConversationId, id: &str) -> [u8; 32] {
    blake2b::<32>(&[b"msg|", conversation.as_str().as_bytes(), b"|", id.as_bytes()])
}

fn lost_digest(conversation: &ConversationId, id: &str) -> [u8; 32] {
    blake2b::<32>(&[b"lost|", conversation.as_str().as_bytes(), b"|", id.as_bytes()])
}

impl Client {
    /// Whether a chat message was handled (delivered, held, or waiting for its sender).
    pub(super) fn seen_message(&self, conversation: &ConversationId, id: &str) -> bool {
        self.seen.contains_key(&msg_digest(conversation, id))
    }

    /// Whether a message that names `id` may be delivered: `id` was delivered, or given up.
    fn satisfied(&self, conversation: &ConversationId, id: &str) -> bool {
        if self.seen.contains_key(&lost_digest(conversation, id)) {
            return true;
        }
        self.seen_message(conversation, id)
            && !self.rel.held.get(conversation).is_some_and(|h| h.iter().any(|m| m.message.id == id))
            && !self
                .pending
                .iter()
                .any(|p| p.message.id == id && p.message.conversation_id == conversation.as_str())
    }

    /// The sender a history entry names: its installation, and its account once confirmed.
    fn hinted_sender(&self, hint: &str) -> Option<SenderInfo> {
        let cred = DelegateCredential::from_identity(hint.as_bytes()).ok()?;
        let account = cred
            .account
            .as_ref()
            .filter(|a| self.directory.confirms(a, &cred.installation))
            .map(AccountId::to_hex);
        Some(SenderInfo { account_id: account, installation_id: cred.installation.to_hex() })
    }

    /// Handles one authenticated chat payload: de-duplicates it, records acks, stores it,
    /// and delivers it or holds it for causal order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn accept_chat(
        &mut self,
        id: &ConversationId,
        sender: &DelegateCredential,
        reliable: &ReliablePayload,
        message: ChatMessage,
        claimed: Option<AccountId>,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<()> {
        self.note_acks(&sender.installation, &reliable.causal_history, fx)?;
        self.remember(&msg_digest(id, &message.id), fx)?;
        if let Some(w) = self.rel.wanted.get_mut(id) {
            w.remove(&message.id);
        }
        if self.blocked(sender.account.as_ref(), std::slice::from_ref(&sender.installation)) {
            // A blocked account's message: it counts as delivered for causal order (what
            // others send after it is not held for it), but it is neither stored nor shown.
            if let Some((channel, _)) = self.channel_meta(id) {
                channel.delivered(&message.id, &reliable.sender_id, reliable.lamport_timestamp);
            }
            return Ok(());
        }
        let seq = self.store_message(&message, fx)?;
        let mut deps = Vec::new();
        for e in &reliable.causal_history {
            if e.message_id == message.id || self.satisfied(id, &e.message_id) {
                continue;
            }
            deps.push(e.message_id.clone());
            if self.seen_message(id, &e.message_id) {
                continue; // held itself: no gap, just order
            }
            let wanted = self.rel.wanted.entry(id.clone()).or_default();
            if !wanted.contains_key(&e.message_id) {
                wanted
                    .insert(e.message_id.clone(), Wanted { sender_hint: e.sender_id.clone(), since: now_ms });
                self.rel
                    .repair
                    .entry(id.clone())
                    .or_insert(Retry { attempt: 0, next_at: now_ms.saturating_add(REPAIR_FIRST_MS) });
                fx.events.push(Event::Missing {
                    conversation_id: id.as_str().to_owned(),
                    message_id: e.message_id.clone(),
                    sender: self.hinted_sender(&e.sender_id),
                });
            }
        }
        let (sender_id, lamport) = (reliable.sender_id.clone(), reliable.lamport_timestamp);
        if deps.is_empty() {
            self.emit_chat(message, claimed, seq, &sender_id, lamport, fx)?;
        } else {
            let held = self.rel.held.entry(id.clone()).or_default();
            held.push(Held {
                message,
                deps,
                deadline: now_ms.saturating_add(HOLD_MS),
                claimed,
                seq,
                sender_id,
                lamport,
            });
            let bytes: usize = held.iter().map(|h| h.message.content.len()).sum();
            if held.len() > MAX_HELD || bytes > MAX_HELD_BYTES {
                if let Some(first) = held.first_mut() {
                    first.deadline = 0;
                }
            }
        }
        self.release_held(id, now_ms, fx)?;
        self.put_conversation(id, fx)
    }

    /// Hands a message to the app, or waits for the directory to confirm its account;
    /// either way it now enters the causal history.
    fn emit_chat(
        &mut self,
        mut message: ChatMessage,
        claimed: Option<AccountId>,
        seq: u64,
        sender_id: &str,
        lamport: i32,
        fx: &mut Effects,
    ) -> Result<()> {
        let installation = InstallationId::parse(&message.sender.installation_id)?;
        if let (Ok(id), false) = (ConversationId::parse(&message.conversation_id), sender_id.is_empty()) {
            if let Some((channel, _)) = self.channel_meta(&id) {
                channel.delivered(&message.id, sender_id, lamport);
            }
        }
        match claimed {
            Some(account) if self.directory.confirms(&account, &installation) => {
                message.sender.account_id = Some(account.to_hex());
                self.put_message(&message, seq, fx)?;
                fx.events.push(Event::Message(message));
            }
            Some(account) => {
                if !self.pending.iter().any(|p| p.account == account)
                    && !self.rel.lookups.contains_key(&account.to_hex())
                {
                    fx.lookups.push(account.to_hex());
                }
                self.pending.push(Pending { account, message, installation, seq });
            }
            None => fx.events.push(Event::Message(message)),
        }
        Ok(())
    }

    /// Delivers every held message of a conversation whose dependencies are now
    /// delivered or given up, or whose time is up (its gaps reported `Lost`), in order.
    fn release_held(&mut self, id: &ConversationId, now_ms: u64, fx: &mut Effects) -> Result<()> {
        loop {
            let Some(held) = self.rel.held.get(id) else { return Ok(()) };
            let is_held = |d: &String| held.iter().any(|o| &o.message.id == d);
            // A message whose time is up goes after the held messages it names (they are
            // given their time up first), so order holds even then; a cycle (hostile
            // input) is broken by releasing anyway once those are due too.
            let ready = held.iter().position(|h| {
                h.deps.iter().all(|d| d == &h.message.id || self.satisfied(id, d))
                    || (h.deadline <= now_ms
                        && h.deps.iter().filter(|d| *d != &h.message.id && is_held(d)).all(|d| {
                            held.iter().any(|o| {
                                &o.message.id == d && o.deadline <= now_ms && o.deps.contains(&h.message.id)
                            })
                        }))
            });
            let Some(i) = ready else {
                let due: Vec<String> = held
                    .iter()
                    .filter(|h| h.deadline <= now_ms)
                    .flat_map(|h| h.deps.iter().filter(|d| is_held(d)).cloned())
                    .collect();
                let Some(list) = self.rel.held.get_mut(id) else { return Ok(()) };
                let mut changed = false;
                for h in list.iter_mut().filter(|h| due.contains(&h.message.id) && h.deadline > now_ms) {
                    h.deadline = now_ms;
                    changed = true;
                }
                if changed {
                    continue;
                }
                return Ok(());
            };
            let Some(h) = self.rel.held.get_mut(id).map(|v| v.remove(i)) else { return Ok(()) };
            if self.rel.held.get(id).is_some_and(Vec::is_empty) {
                self.rel.held.remove(id);
            }
            for d in &h.deps {
                if self.satisfied(id, d) || self.seen_message(id, d) {
                    continue;
                }
                let hint = self.rel.wanted.get_mut(id).and_then(|w| w.remove(d)).map(|w| w.sender_hint);
                self.remember(&lost_digest(id, d), fx)?;
                fx.events.push(Event::Lost {
                    conversation_id: id.as_str().to_owned(),
                    message_id: d.clone(),
                    sender: hint.and_then(|s| self.hinted_sender(&s)),
                });
            }
            if self.rel.wanted.get(id).is_some_and(BTreeMap::is_empty) {
                self.rel.wanted.remove(id);
                self.rel.repair.remove(id);
            }
            self.emit_chat(h.message, h.claimed, h.seq, &h.sender_id, h.lamport, fx)?;
        }
    }

    /// The directory read for `account` failed: it is tried again with back-off, and
    /// after [`LOOKUP_TRIES`] the messages waiting on it are released unconfirmed.
    pub fn lookup_failed(&mut self, account: &str, now_ms: u64) -> Effects {
        let attempt = self.rel.lookups.get(account).map_or(1, |r| r.attempt.saturating_add(1));
        if attempt >= LOOKUP_TRIES {
            self.rel.lookups.remove(account);
            return self.lookup_complete(account);
        }
        self.rel.lookups.insert(
            account.to_owned(),
            Retry { attempt, next_at: now_ms.saturating_add(backoff(attempt.saturating_sub(1))) },
        );
        Effects { wake_at: self.next_wake(now_ms), ..Effects::default() }
    }

    /// The driver ran a store query (catch-up or repair): a failed catch-up read is tried
    /// again with back-off until it succeeds.
    pub fn query_done(&mut self, content_topic: &str, ok: bool, now_ms: u64) -> Effects {
        if ok {
            self.rel.catchups.remove(content_topic);
        } else {
            let attempt = self.rel.catchups.get(content_topic).map_or(0, |r| r.attempt.saturating_add(1));
            self.rel.catchups.insert(
                content_topic.to_owned(),
                Retry { attempt, next_at: now_ms.saturating_add(backoff(attempt)) },
            );
        }
        Effects { wake_at: self.next_wake(now_ms), ..Effects::default() }
    }

    /// The reliability timers due at `now`: held messages whose time is up, repair
    /// reads, lookup and catch-up retries, re-sends.
    pub(super) fn reliability_tick(&mut self, now_ms: u64, fx: &mut Effects) -> Result<()> {
        let ids: Vec<ConversationId> = self.rel.held.keys().cloned().collect();
        for id in ids {
            let before = self.rel.held.get(&id).map_or(0, Vec::len);
            self.release_held(&id, now_ms, fx)?;
            if self.rel.held.get(&id).map_or(0, Vec::len) != before {
                self.put_conversation(&id, fx)?;
            }
        }
        let due: Vec<ConversationId> =
            self.rel.repair.iter().filter(|(_, r)| r.next_at <= now_ms).map(|(id, _)| id.clone()).collect();
        for id in due {
            let Some(since) = self.rel.wanted.get(&id).and_then(|w| w.values().map(|w| w.since).min()) else {
                self.rel.repair.remove(&id);
                continue;
            };
            let Some(r) = self.rel.repair.get_mut(&id) else { continue };
            fx.queries.push(StoreQuery {
                content_topic: id.topic().as_str().to_owned(),
                since_ms: Some(since.saturating_sub(REPAIR_LOOKBACK_MS) as f64),
                attempt: r.attempt,
            });
            r.attempt = r.attempt.saturating_add(1);
            r.next_at = now_ms.saturating_add(backoff(r.attempt));
        }
        self.epoch_repair_tick(now_ms, fx);
        let due: Vec<String> =
            self.rel.lookups.iter().filter(|(_, r)| r.next_at <= now_ms).map(|(a, _)| a.clone()).collect();
        for account in due {
            if let Some(r) = self.rel.lookups.get_mut(&account) {
                r.next_at = u64::MAX; // until the driver reports this try
            }
            fx.lookups.push(account);
        }
        let due: Vec<(String, u32)> = self
            .rel
            .catchups
            .iter()
            .filter(|(_, r)| r.next_at <= now_ms)
            .map(|(t, r)| (t.clone(), r.attempt))
            .collect();
        for (topic, attempt) in due {
            if let Some(r) = self.rel.catchups.get_mut(&topic) {
                r.next_at = u64::MAX;
            }
            let since = self.catch_up_since(&topic).map(|s| s as f64);
            fx.queries.push(StoreQuery { content_topic: topic, since_ms: since, attempt });
        }
        self.resend_due(now_ms, fx)
    }

    /// A group kept a message of a later epoch: a read of its topic is due (after
    /// [`REPAIR_FIRST_MS`]: the commit may only be late), unless one is already.
    pub(super) fn note_behind(&mut self, id: &ConversationId, now_ms: u64) {
        let first = Retry { attempt: 0, next_at: now_ms.saturating_add(REPAIR_FIRST_MS) };
        self.rel.behind.entry(id.clone()).or_insert(first);
    }

    /// Reads the topic of each group still behind when its time comes: from a while
    /// before the oldest later-epoch message, then (from the third try) all the store
    /// holds. After [`LOOKUP_TRIES`] the episode ends; a later-epoch message starts
    /// another. A forged epoch costs at most that many reads per episode.
    fn epoch_repair_tick(&mut self, now_ms: u64, fx: &mut Effects) {
        let due: Vec<ConversationId> =
            self.rel.behind.iter().filter(|(_, r)| r.next_at <= now_ms).map(|(id, _)| id.clone()).collect();
        for id in due {
            let since = self.groups.get(&id).and_then(|g| g.behind_since());
            let Some((since, r)) = since.zip(self.rel.behind.get_mut(&id)) else {
                self.rel.behind.remove(&id);
                continue;
            };
            let since_ms = (r.attempt < 2).then(|| since.saturating_sub(REPAIR_LOOKBACK_MS) as f64);
            fx.queries.push(StoreQuery {
                content_topic: id.topic().as_str().to_owned(),
                since_ms,
                attempt: r.attempt,
            });
            r.attempt = r.attempt.saturating_add(1);
            r.next_at = now_ms.saturating_add(backoff(r.attempt));
            if r.attempt >= LOOKUP_TRIES {
                self.rel.behind.remove(&id);
            }
        }
    }

    /// The earliest reliability timer.
    pub(super) fn reliability_wake(&self) -> Option<u64> {
        let held = self.rel.held.values().flatten().map(|h| h.deadline);
        let repair = self.rel.repair.values().chain(self.rel.behind.values()).map(|r| r.next_at);
        let lookups = self.rel.lookups.values().map(|r| r.next_at);
        let catchups = self.rel.catchups.values().map(|r| r.next_at);
        let resend =
            self.outbox.values().filter(|r| !r.message_id.is_empty() && r.accepted).map(|r| r.next_at);
        held.chain(repair).chain(lookups).chain(catchups).chain(resend).filter(|t| *t != u64::MAX).min()
    }

    /// After a lookup released a conversation's messages: what waited behind them goes
    /// too, and the record is written without them.
    pub(super) fn release_after_lookup(&mut self, id: &ConversationId, fx: &mut Effects) -> Result<()> {
        self.release_held(id, 0, fx)?;
        self.put_conversation(id, fx)
    }

    /// A lookup finished (or was given up): its retry state goes.
    pub(super) fn lookup_settled(&mut self, account: &str) {
        self.rel.lookups.remove(account);
    }
}
