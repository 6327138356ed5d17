//! History for a newly linked installation (issue 13): the granting side seals each
//! chat's newest messages under the link's session; the new side stores them below its
//! own history, and keeps those of chats it has not joined yet (bounded) until it does.

use super::*;
use crate::core::link::{Archive, Kind, SessionKey, ARCHIVE_FRAME_BYTES, ARCHIVE_MAX_FRAMES};

/// Where a linked installation's own history of a chat it was added to starts: the
/// archive from the installation that linked it goes in below, in its order.
const ARCHIVE_SEQ: u64 = 1 << 20;
/// What an archived message counts against the waiting bound: every field, and a fixed
/// overhead, so that empty messages cannot fill memory either.
fn archived_size(m: &ChatMessage) -> usize {
    m.content
        .len()
        .saturating_add(m.id.len())
        .saturating_add(m.conversation_id.len())
        .saturating_add(m.content_type.len())
        .saturating_add(m.sender.installation_id.len())
        .saturating_add(m.sender.account_id.as_ref().map_or(0, String::len))
        .saturating_add(128)
}

/// Most bytes of archived messages kept for chats not joined yet.
const ARCHIVE_WAITING_BYTES: usize = 4 << 20;

impl Client {
    /// Sends the new installation of a link the history rows the driver read
    /// (`Event::HistoryWanted`): sealed under the link, each chat's newest messages in
    /// one frame of at most 96 KiB, at most 32 frames.
    pub fn send_history(&mut self, link: &str, rows: &[(Vec<u8>, Vec<u8>)]) -> Result<Effects> {
        let i = self
            .links
            .iter()
            .position(|l| l.topic == link && l.ready)
            .ok_or(CoreError::InvalidLink("no linked installation waits for history"))?;
        let mut by_chat: BTreeMap<String, Vec<MessageRecord>> = BTreeMap::new();
        for row in rows {
            // A row that does not open (another profile's, a damaged one) is left out.
            let Ok(mut m) = self.open_messages(std::slice::from_ref(row)) else { continue };
            let Some(m) = m.pop() else { continue };
            let rec = MessageRecord { seq: 0, outgoing: false, ..super::reliability::message_record(&m, 0) };
            by_chat.entry(m.conversation_id).or_default().push(rec);
        }
        let mut frames: Vec<Archive> = Vec::new();
        for (_, mut msgs) in by_chat {
            // The newest that fit one frame, oldest first.
            let mut kept = Vec::new();
            let mut bytes = 0usize;
            while let Some(m) = msgs.pop() {
                let size = m.content.len().saturating_add(256);
                if bytes.saturating_add(size) > ARCHIVE_FRAME_BYTES {
                    break;
                }
                bytes = bytes.saturating_add(size);
                kept.push(m);
            }
            kept.reverse();
            let fits = frames.last().is_some_and(|f| {
                f.messages
                    .iter()
                    .map(|m| m.content.len().saturating_add(256))
                    .sum::<usize>()
                    .saturating_add(bytes)
                    <= ARCHIVE_FRAME_BYTES
            });
            match frames.last_mut() {
                Some(f) if fits => f.messages.extend(kept),
                _ => frames.push(Archive { messages: kept }),
            }
        }
        let link = self.links.get(i).ok_or(CoreError::InvalidLink("no such link"))?;
        let (secret, topic) = (link.secret.clone(), link.topic.clone());
        let (_, shared) = link.session.as_ref().ok_or(CoreError::InvalidLink("no session on this link"))?;
        let session = SessionKey::derive(&link.secret, shared.as_slice());
        let mut fx = Effects::default();
        for f in frames.into_iter().filter(|f| !f.messages.is_empty()).take(ARCHIVE_MAX_FRAMES) {
            let plain = zeroize::Zeroizing::new(f.encode_to_vec());
            let inner = session.seal(self.rng.as_mut(), Kind::History, &plain)?;
            let payload = secret.seal(self.rng.as_mut(), Kind::History, &inner)?;
            fx.publish.push(Outbound { content_topic: topic.clone(), payload, outbox_id: 0 });
        }
        Ok(fx)
    }

    /// Whether a topic is the link this installation came from.
    pub(super) fn link_in_topic(&self, topic: &str) -> bool {
        self.link_in.as_ref().is_some_and(|(l, _, _)| l.topic() == topic)
    }

    /// A frame on the link we came from: recent history from the installation that
    /// linked us (sealed under the code, so from our own account). Each message goes
    /// into the history before what we received ourselves; those of chats we have not
    /// joined yet wait for the join (bounded).
    pub(super) fn handle_link_in(&mut self, frame: &[u8], now_ms: u64) -> Result<Effects> {
        let Some((secret, session, until)) = self.link_in.clone() else { return Ok(Effects::default()) };
        if now_ms >= until {
            self.link_in = None;
            self.archive_waiting.clear();
            self.archive_waiting_bytes = 0;
            return Ok(Effects::default());
        }
        let Ok((Kind::History, outer)) = secret.open(frame) else { return Ok(Effects::default()) };
        // Under the session too: whoever saw the code but holds no session reads nothing.
        let plain = session.open(Kind::History, &outer)?;
        let archive =
            Archive::decode(plain.as_slice()).map_err(|e| CoreError::decode("history archive", e))?;
        let own = self.account.id().to_hex();
        let mut fx = Effects::default();
        let mut by_chat: BTreeMap<ConversationId, Vec<ChatMessage>> = BTreeMap::new();
        for rec in archive.messages {
            let Ok(id) = ConversationId::parse(&rec.conversation_id) else { continue };
            let mut m = super::reliability::chat_message(rec);
            m.outgoing = m.sender.account_id.as_deref() == Some(own.as_str());
            by_chat.entry(id).or_default().push(m);
        }
        for (id, msgs) in by_chat {
            if self.knows(&id) {
                self.store_archive(&id, msgs, &mut fx)?;
            } else {
                for m in msgs {
                    self.archive_waiting_bytes = self.archive_waiting_bytes.saturating_add(archived_size(&m));
                    self.archive_waiting.push(m);
                }
                while self.archive_waiting_bytes > ARCHIVE_WAITING_BYTES && !self.archive_waiting.is_empty() {
                    let m = self.archive_waiting.remove(0);
                    self.archive_waiting_bytes = self.archive_waiting_bytes.saturating_sub(archived_size(&m));
                }
            }
        }
        Ok(fx)
    }

    /// A chat was just joined: a linked installation starts its own history above the
    /// archive, and stores what of the archive waited for it.
    pub(super) fn joined_conversation(&mut self, id: &ConversationId, fx: &mut Effects) -> Result<()> {
        if self.link_in.is_none() {
            return Ok(());
        }
        if let Some((_, meta)) = self.channel_meta(id) {
            meta.next_seq = meta.next_seq.max(ARCHIVE_SEQ);
        }
        let (mine, rest): (Vec<ChatMessage>, Vec<ChatMessage>) = std::mem::take(&mut self.archive_waiting)
            .into_iter()
            .partition(|m| m.conversation_id == id.as_str());
        self.archive_waiting = rest;
        self.archive_waiting_bytes = self.archive_waiting.iter().map(archived_size).sum();
        if !mine.is_empty() {
            self.store_archive(id, mine, fx)?;
        }
        Ok(())
    }

    pub(super) fn store_archive(
        &mut self,
        id: &ConversationId,
        msgs: Vec<ChatMessage>,
        fx: &mut Effects,
    ) -> Result<()> {
        self.touch(id);
        let n = u64::try_from(msgs.len()).unwrap_or(u64::MAX);
        let base = ARCHIVE_SEQ.saturating_sub(n);
        for (i, m) in (0u64..).zip(msgs) {
            if self.seen_message(id, &m.id) {
                continue; // it reached us itself too
            }
            self.store_message_at(&m, base.saturating_add(i), false, fx)?;
        }
        // Messages held for one of these may go now.
        self.release_after_lookup(id, fx)?;
        if let Some(c) = self.conversations.get(id) {
            fx.events.push(Event::Conversation(info(c, &self.directory)));
        } else if let Some(g) = self.groups.get(id) {
            fx.events.push(Event::Conversation(super::group::group_info(g)));
        }
        Ok(())
    }
}
