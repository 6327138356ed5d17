//! Held messages in a conversation's record, and chat messages as stored records.

use super::*;
use crate::core::store::HeldRecord;

impl Client {
    /// The held messages of a conversation, for its record: those waiting for causal
    /// order, and those waiting for the directory to confirm their sender (with no
    /// dependency and a deadline passed, so a restart hands them on at once).
    pub(in crate::core::client) fn held_records(&self, id: &ConversationId) -> Vec<HeldRecord> {
        let held = self.rel.held.get(id).into_iter().flatten().map(|h| HeldRecord {
            message: Some(message_record(&h.message, h.seq)),
            deps: h.deps.clone(),
            deadline: h.deadline,
            claimed_account: h.claimed.as_ref().map(AccountId::to_hex).unwrap_or_default(),
            sender_id: h.sender_id.clone(),
            lamport: h.lamport,
        });
        let waiting =
            self.pending.iter().filter(|p| p.message.conversation_id == id.as_str()).map(|p| HeldRecord {
                message: Some(message_record(&p.message, p.seq)),
                deps: Vec::new(),
                deadline: 0,
                claimed_account: p.account.to_hex(),
                sender_id: String::new(),
                lamport: 0,
            });
        held.chain(waiting).collect()
    }

    /// Puts a conversation's held messages back (after the seen digests are restored),
    /// and asks for repair of what they miss.
    pub(in crate::core::client) fn restore_held(
        &mut self,
        id: &ConversationId,
        records: Vec<HeldRecord>,
        now_ms: u64,
    ) -> Result<()> {
        for r in records {
            let m = r.message.ok_or_else(|| CoreError::StoreCorrupt("held message".into()))?;
            let claimed = (!r.claimed_account.is_empty())
                .then(|| AccountId::parse(&r.claimed_account))
                .transpose()
                .map_err(|_| CoreError::StoreCorrupt("held message: account".into()))?;
            let seq = m.seq;
            let message = chat_message(m);
            for d in &r.deps {
                if !self.seen_message(id, d) && !self.seen.contains_key(&lost_digest(id, d)) {
                    self.rel.wanted.entry(id.clone()).or_default().entry(d.clone()).or_insert(Wanted {
                        sender_hint: String::new(),
                        since: super::super::whole_ms(message.sent_at),
                    });
                    self.rel.repair.insert(
                        id.clone(),
                        Retry { attempt: 0, next_at: now_ms.saturating_add(REPAIR_FIRST_MS) },
                    );
                }
            }
            self.rel.held.entry(id.clone()).or_default().push(Held {
                message,
                deps: r.deps,
                deadline: r.deadline,
                claimed,
                seq,
                sender_id: r.sender_id,
                lamport: r.lamport,
            });
        }
        Ok(())
    }
}

/// A stored message record of a chat message.
pub(in crate::core::client) fn message_record(m: &ChatMessage, seq: u64) -> MessageRecord {
    MessageRecord {
        id: m.id.clone(),
        conversation_id: m.conversation_id.clone(),
        sender_account: m.sender.account_id.clone().unwrap_or_default(),
        sender_installation: m.sender.installation_id.clone(),
        content: m.content.clone(),
        content_type: m.content_type.clone(),
        sent_at: super::super::whole_ms(m.sent_at),
        received_at: super::super::whole_ms(m.received_at),
        outgoing: m.outgoing,
        seq,
        reply_to: m.reply_to.clone().unwrap_or_default(),
        remove: m.remove,
    }
}

/// A chat message from its stored record.
pub(in crate::core::client) fn chat_message(rec: MessageRecord) -> ChatMessage {
    ChatMessage {
        id: rec.id,
        conversation_id: rec.conversation_id,
        sender: SenderInfo {
            account_id: (!rec.sender_account.is_empty()).then_some(rec.sender_account),
            installation_id: rec.sender_installation,
        },
        content: rec.content,
        content_type: rec.content_type,
        reply_to: (!rec.reply_to.is_empty()).then_some(rec.reply_to),
        remove: rec.remove,
        sent_at: rec.sent_at as f64,
        received_at: rec.received_at as f64,
        outgoing: rec.outgoing,
    }
}
