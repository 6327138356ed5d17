//! The inbound path: routing an envelope by its hint (our inbox, a direct chat, a group),
//! reassembling segments, and storing and reporting a chat payload (PROTOCOL.md §2.5, §5.5).

use super::*;
use crate::core::conversation::group::tree;

impl Client {
    pub(super) fn route(
        &mut self,
        topic: &str,
        payload: &[u8],
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Effects>> {
        let env = match decode::<EnvelopeV1>("envelope", payload) {
            Ok(env) if self.addressed_to_us(&env) => env,
            // A segment of a payload over the size limit (§5.5): an envelope once whole.
            other => match segment::parse(payload) {
                Some(seg) => return self.handle_segment(topic, seg, sent_at_ms, now_ms),
                // Undecodable bytes on our topics are reported; others' envelopes dropped.
                None => {
                    other?;
                    return Ok(None);
                }
            },
        };
        if env.conversation_hint == self.installation.id().inbox_conversation_id() {
            self.touch_joins();
            return self.handle_invite(&env.payload, now_ms);
        }
        if let Some(id) = env.conversation_hint.strip_suffix(tree::TREE_HINT_SUFFIX) {
            let Ok(id) = ConversationId::parse(id) else { return Ok(None) };
            self.touch_joins();
            return self.handle_tree(&id, &env.payload, now_ms);
        }
        let Ok(id) = ConversationId::parse(&env.conversation_hint) else { return Ok(None) };
        if !self.groups.contains_key(&id) && self.joins.awaits(&id) {
            // Traffic of a group we are joining: kept until its tree is here.
            self.joins.hold(&id, topic, payload, sent_at_ms);
            return Ok(None);
        }
        if self.groups.contains_key(&id) {
            return self.handle_group_v2(&id, &env.payload, sent_at_ms, now_ms).map(Some);
        }
        if !self.conversations.contains_key(&id) {
            return Ok(None);
        }
        self.handle_group_message(&id, &env.payload, sent_at_ms, now_ms).map(Some)
    }

    pub(super) fn addressed_to_us(&self, env: &EnvelopeV1) -> bool {
        let hint = &env.conversation_hint;
        let hint = hint.strip_suffix(tree::TREE_HINT_SUFFIX).unwrap_or(hint);
        env.conversation_hint == self.installation.id().inbox_conversation_id()
            || ConversationId::parse(hint).is_ok_and(|id| self.knows(&id) || self.joins.awaits(&id))
    }

    /// Buffers a segment; once its set is whole, handles the payload as if it had come in
    /// one piece (de-duplicated by its own digest). Incomplete sets are not remembered, so
    /// a restart can assemble them again from the store.
    pub(super) fn handle_segment(
        &mut self,
        topic: &str,
        seg: crate::core::wire::SegmentMessage,
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Effects>> {
        let Some(whole) = self.reassembler.push(seg) else { return Ok(None) };
        let digest = fx_digest(topic, &whole);
        if self.seen.contains_key(&digest) {
            return Ok(Some(Effects::default()));
        }
        let Some(mut fx) = self.route(topic, &whole, sent_at_ms, now_ms)? else { return Ok(None) };
        self.remember(&digest, &mut fx)?;
        Ok(Some(fx))
    }

    /// Stores and reports one chat payload of a direct or group conversation from an
    /// authenticated member; its account shows once the directory confirms it.
    pub(super) fn deliver_chat(
        &mut self,
        id: &ConversationId,
        sender: &DelegateCredential,
        reliable: ReliablePayload,
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Result<Effects> {
        let own = self.account.id();
        if reliable.channel_id != id.as_str() {
            return Err(CoreError::Verify("payload names another conversation"));
        }
        // The id and the sender are the sender's claims: the id must be the one its
        // content, clock and sender derive (§2.9), and the sender the MLS-authenticated
        // one, or a member could take another message's id (and have it dropped as a
        // duplicate) or write in another member's name in the causal history.
        if reliable.sender_id != sender.identity_id() {
            return Err(CoreError::Verify("payload names another sender than its MLS sender"));
        }
        let derived = crate::core::sds::message_id(
            &reliable.channel_id,
            &reliable.sender_id,
            reliable.lamport_timestamp,
            &reliable.content,
        );
        if derived.as_str() != reliable.message_id {
            return Err(CoreError::Verify("a message id that its content does not derive"));
        }
        // A read receipt or typing: an event, never a message.
        if let Some(fx) = self.receive_signal(id, sender, &reliable, sent_at_ms, now_ms) {
            return Ok(fx);
        }
        let mut fx = Effects::default();
        if self.seen_message(id, &reliable.message_id) {
            return Ok(fx); // a re-send, a store read, a restart's replay: handled once
        }
        let Some((channel, _)) = self.channel_meta(id) else {
            return Err(CoreError::UnknownConversation(id.as_str().to_owned()));
        };
        let acked = channel.receive(&reliable);
        let by = SenderInfo { account_id: None, installation_id: sender.installation.to_hex() };
        for m in acked {
            fx.events.push(Event::Ack {
                conversation_id: id.as_str().to_owned(),
                message_id: m.as_str().to_owned(),
                by: by.clone(),
            });
        }
        // What the bytes carry: raw text, or one of our content frames.
        let content = crate::core::content::decode(&reliable.content);
        let mut message = ChatMessage {
            id: MessageId(reliable.message_id.clone()).as_str().to_owned(),
            conversation_id: id.as_str().to_owned(),
            sender: by,
            content: content.body,
            content_type: content.content_type,
            reply_to: content.reply_to,
            remove: content.remove,
            sent_at: sent_at_ms as f64,
            received_at: now_ms as f64,
            outgoing: false,
        };
        let confirmed =
            sender.account.as_ref().is_some_and(|a| self.directory.confirms(a, &sender.installation));
        // Ours only once our own signed list shows the sending installation.
        message.outgoing = confirmed && sender.account.as_ref() == Some(&own);
        if confirmed {
            message.sender.account_id = sender.account.as_ref().map(AccountId::to_hex);
        }
        let claimed = if confirmed { None } else { sender.account.clone() };
        self.accept_chat(id, sender, &reliable, message, claimed, now_ms, &mut fx)?;
        Ok(fx)
    }
}
