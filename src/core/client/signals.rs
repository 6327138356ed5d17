//! Read receipts and typing (issue 15): signals, not messages. They travel in the
//! conversation's encryption as SDS ephemeral payloads (no Lamport time, no causal
//! history): never stored, never unread, never acknowledged, re-sent or repaired. A
//! typing start expires at the receiver on the core's clock unless it is renewed.

use super::*;
use crate::core::content::{decode_signal, encode_signal, Signal};
use crate::core::wire::ReliablePayload;

/// How long a typing start lasts at the receiver without another (ms).
pub const TYPING_TTL_MS: u64 = 6_000;
/// A sender renews a typing start at most this often (ms).
pub const TYPING_RENEW_MS: u64 = 3_000;
/// The most typing members tracked at once.
const MAX_TYPING: usize = 1024;

/// What the signals of this installation are doing.
#[derive(Debug, Default)]
pub(super) struct Signals {
    /// Sending receipts and typing is off (`ChatOptions.signals = false`).
    pub off: bool,
    /// Typing members by (conversation, installation): until when, and who.
    typing: BTreeMap<(ConversationId, InstallationId), (u64, SenderInfo)>,
    /// When we last told a conversation we were typing (renewals are throttled).
    sent_typing: BTreeMap<ConversationId, u64>,
    /// The newest message a read receipt named, per conversation (not sent twice).
    sent_read: BTreeMap<ConversationId, String>,
}

impl Client {
    /// Whether this installation sends read receipts and typing (default on). Receiving
    /// them is never off.
    pub fn set_signals(&mut self, on: bool) {
        self.signals.off = !on;
    }

    /// Tells the conversation we are typing (or stopped). A start is renewed at most every
    /// 3 s and expires at the others 6 s after the last one; a stop goes at once.
    pub fn set_typing(&mut self, conversation: &str, typing: bool, now_ms: u64) -> Result<Effects> {
        self.check_active()?;
        let id = ConversationId::parse(conversation)?;
        if !self.knows(&id) {
            return Err(CoreError::UnknownConversation(id.as_str().to_owned()));
        }
        if self.signals.off {
            return Ok(Effects::default());
        }
        let last = self.signals.sent_typing.get(&id).copied();
        if typing && last.is_some_and(|t| now_ms.saturating_sub(t) < TYPING_RENEW_MS) {
            return Ok(Effects::default());
        }
        if !typing && last.is_none() {
            return Ok(Effects::default()); // never said we were
        }
        let fx = self.send_signal(&id, &Signal::Typing(typing), now_ms)?;
        if typing {
            self.signals.sent_typing.insert(id, now_ms);
        } else {
            self.signals.sent_typing.remove(&id);
        }
        Ok(fx)
    }

    /// Marks a conversation read up to `message_id`: unread drops to 0, and the message's
    /// sender gets a read receipt (unless signals are off, or it was sent already).
    pub fn mark_read_at(&mut self, conversation: &str, message_id: &str, now_ms: u64) -> Result<Effects> {
        let mut fx = self.mark_read(conversation)?;
        let id = ConversationId::parse(conversation)?;
        let fresh = self.signals.sent_read.get(&id).map(String::as_str) != Some(message_id);
        if !self.signals.off && fresh && !message_id.is_empty() {
            fx.extend(self.send_signal(&id, &Signal::Read(vec![message_id.to_owned()]), now_ms)?);
            self.signals.sent_read.insert(id, message_id.to_owned());
        }
        Ok(fx)
    }

    /// Encrypts and sends one signal (rewound if anything fails).
    fn send_signal(&mut self, id: &ConversationId, signal: &Signal, now_ms: u64) -> Result<Effects> {
        let id = id.clone();
        let content = encode_signal(signal);
        let (_, fx) = self.guarded(|c| {
            c.touch(&id);
            let sender_id = c.credential.identity_id();
            let message_id = crate::core::sds::message_id(id.as_str(), &sender_id, 0, &content).0;
            let reliable = ReliablePayload {
                message_id,
                channel_id: id.as_str().to_owned(),
                sender_id,
                lamport_timestamp: 0,
                causal_history: Vec::new(),
                bloom_filter: Vec::new(),
                content: content.clone(),
            };
            let mut fx = Effects::default();
            if let Some(g) = c.groups.get_mut(&id) {
                if g.left {
                    return Err(CoreError::NotAMember(id.as_str().to_owned()));
                }
                let mut out = g.send_chat(&c.provider, &c.installation, reliable)?;
                out.chat_published.clear(); // never re-sent
                c.apply_group_output(&id, out, now_ms, &mut fx)?;
            } else {
                let convo = c
                    .conversations
                    .get_mut(&id)
                    .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
                let mls = convo.encrypt(&c.provider, &c.installation, &reliable.encode_to_vec())?;
                let env = group_envelope(&id, mls);
                let topic = id.topic().as_str().to_owned();
                c.remember(&fx_digest(&topic, &env), &mut fx)?;
                c.enqueue(&mut fx, topic, env)?;
            }
            c.sync_mls(&mut fx)?;
            Ok((String::new(), fx))
        })?;
        Ok(fx)
    }

    /// A payload that is a signal: its event, or nothing (ours, a blocked sender's, a
    /// typing start that is stale when it comes). `None` when it is not a signal.
    pub(super) fn receive_signal(
        &mut self,
        id: &ConversationId,
        sender: &DelegateCredential,
        reliable: &ReliablePayload,
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Option<Effects> {
        if reliable.lamport_timestamp != 0 || !reliable.causal_history.is_empty() {
            return None;
        }
        let signal = decode_signal(&reliable.content)?;
        let mut fx = Effects::default();
        let claimed = sender.account.clone();
        if claimed.as_ref() == Some(&self.account.id())
            || self.blocked(claimed.as_ref(), std::slice::from_ref(&sender.installation))
        {
            return Some(fx);
        }
        let confirmed = claimed.filter(|a| self.directory.confirms(a, &sender.installation));
        let by = SenderInfo {
            account_id: confirmed.map(|a| a.to_hex()),
            installation_id: sender.installation.to_hex(),
        };
        match signal {
            Signal::Read(ids) => {
                let (channel, _) = self.channel_meta(id)?;
                let ours: Vec<String> = ids.into_iter().filter(|m| channel.is_own(m)).collect();
                for message_id in ours {
                    fx.events.push(Event::Receipt {
                        conversation_id: id.as_str().to_owned(),
                        message_id,
                        by: by.clone(),
                        state: "read",
                    });
                }
            }
            Signal::Typing(typing) => {
                if typing && now_ms.saturating_sub(sent_at_ms) > TYPING_TTL_MS {
                    return Some(fx); // read back from the store long after
                }
                let key = (id.clone(), sender.installation.clone());
                if typing {
                    if self.signals.typing.len() >= MAX_TYPING && !self.signals.typing.contains_key(&key) {
                        return Some(fx);
                    }
                    self.signals.typing.insert(key, (now_ms.saturating_add(TYPING_TTL_MS), by.clone()));
                } else if self.signals.typing.remove(&key).is_none() {
                    return Some(fx); // a stop we never saw start
                }
                fx.events.push(Event::Typing { conversation_id: id.as_str().to_owned(), by, typing });
                fx.wake_at = self.next_wake(now_ms);
            }
        }
        Some(fx)
    }

    /// Typing starts whose time ran out end (`tick`).
    pub(super) fn typing_due(&mut self, now_ms: u64, fx: &mut Effects) {
        let due: Vec<_> =
            self.signals.typing.iter().filter(|(_, (t, _))| *t <= now_ms).map(|(k, _)| k.clone()).collect();
        for key in due {
            if let Some((_, by)) = self.signals.typing.remove(&key) {
                fx.events.push(Event::Typing {
                    conversation_id: key.0.as_str().to_owned(),
                    by,
                    typing: false,
                });
            }
        }
    }

    /// When the next typing start runs out.
    pub(super) fn typing_wake(&self) -> Option<u64> {
        self.signals.typing.values().map(|(t, _)| *t).min()
    }
}
