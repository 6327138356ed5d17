//! DirectV1 through the client: start a 1:1 chat, send to it, join from an invite, and
//! process its MLS messages (PROTOCOL.md §2.7).

use super::*;
use crate::core::conversation::group::invite;

impl Client {
    /// Starts (or returns the existing) 1:1 chat with `account`. The directory
    /// must already hold the peer's bundle and key packages (the driver looks
    /// them up first). Fails with `UnknownAccount` when it does not.
    pub fn start_direct(&mut self, account: &str, now_ms: u64) -> Result<(String, Effects)> {
        self.guarded(|c| c.start_direct_inner(account, now_ms))
    }

    pub(super) fn start_direct_inner(&mut self, account: &str, now_ms: u64) -> Result<(String, Effects)> {
        let peer = AccountId::parse(account)?;
        if peer == self.account.id() {
            return Err(CoreError::InvalidArgument("cannot start a direct chat with yourself".into()));
        }
        if self.blocked(Some(&peer), &[]) {
            return Err(CoreError::Blocked);
        }
        self.check_active()?;
        // Only a chat whose peer installations the peer's signed list shows is theirs: a
        // stranger's Welcome that claims the account is not reused.
        if let Some(c) =
            self.conversations.values().find(|c| c.peer == peer && direct_verified(c, &self.directory))
        {
            return Ok((c.id().as_str().to_owned(), Effects::default()));
        }
        let peer_devices = self
            .directory
            .bundle(&peer)
            .ok_or_else(|| CoreError::UnknownAccount(peer.to_hex()))?
            .devices
            .clone();
        let me = self.installation.id();
        let mut invitees: Vec<InstallationId> = peer_devices.clone();
        invitees.extend(self.bundle.devices.iter().filter(|d| **d != me).cloned());
        let mut key_packages: Vec<KeyPackage> = Vec::new();
        let mut recipients: Vec<InstallationId> = Vec::new();
        for d in invitees {
            if let Some(kp) = self.directory.key_package(&d, self.provider.crypto()) {
                key_packages.push(kp);
                recipients.push(d);
            }
        }
        if !recipients.iter().any(|r| peer_devices.contains(r)) {
            return Err(CoreError::UnknownAccount(format!("{}: no key package found", peer.to_hex())));
        }
        let mut group_id = [0u8; 16];
        self.rng.fill_bytes(&mut group_id);
        let (mut convo, commit, welcome) = DirectConversation::create(
            &self.provider,
            &self.installation,
            &self.credential,
            peer,
            group_id,
            &key_packages,
        )?;
        convo.meta = ConversationMeta { created_at: now_ms, ..ConversationMeta::default() };
        let id = convo.id().clone();
        let mut fx = Effects { subscribe: vec![id.topic().as_str().to_owned()], ..Effects::default() };
        let invite = InboxV2Frame {
            payload: Some(inbox_v2_frame::Payload::GroupV1(GroupV1HeavyInvite { welcome_bytes: welcome })),
        }
        .encode_to_vec();
        for r in &recipients {
            let env =
                EnvelopeV1 { conversation_hint: r.inbox_conversation_id(), salt: 0, payload: invite.clone() };
            self.enqueue(&mut fx, r.inbox_topic().as_str().to_owned(), env.encode_to_vec())?;
        }
        let commit_env = group_envelope(&id, commit);
        self.remember(&fx_digest(id.topic().as_str(), &commit_env), &mut fx)?;
        self.enqueue(&mut fx, id.topic().as_str().to_owned(), commit_env)?;
        fx.events.push(Event::Conversation(info(&convo, &self.directory)));
        self.conversations.insert(id.clone(), convo);
        self.put_conversation(&id, &mut fx)?;
        self.sync_mls(&mut fx)?;
        Ok((id.as_str().to_owned(), fx))
    }

    pub(super) fn send_direct(
        &mut self,
        id: &ConversationId,
        content: &[u8],
        now_ms: u64,
    ) -> Result<(String, Effects)> {
        let id = id.clone();
        self.touch(&id);
        let sender_id = self.credential.identity_id();
        let convo = self
            .conversations
            .get_mut(&id)
            .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        // Wrap on a copy of the channel: the clock moves only if encryption succeeds.
        let mut channel = convo.channel.clone();
        let reliable = channel.wrap(id.as_str(), &sender_id, content.to_vec());
        let mls_bytes = convo.encrypt(&self.provider, &self.installation, &reliable.encode_to_vec())?;
        convo.channel = channel;
        let env = group_envelope(&id, mls_bytes);
        let topic = id.topic().as_str().to_owned();
        let mut fx = Effects::default();
        self.remember(&fx_digest(&topic, &env), &mut fx)?;
        let message = self.outgoing(&id, &reliable.message_id, content, now_ms);
        self.store_message(&message, &mut fx)?;
        let others =
            self.conversations.get(&id).map(|c| c.members().into_iter().map(|m| m.installation).collect());
        let (awaiting, _) = self.ack_set(others.unwrap_or_default());
        let track = outbox::Track {
            conversation: id.clone(),
            message_id: reliable.message_id.clone(),
            awaiting,
            now: now_ms,
        };
        self.enqueue_tracked(&mut fx, topic, env, Some(&track))?;
        self.sync_mls(&mut fx)?;
        Ok((reliable.message_id, fx))
    }

    pub(super) fn handle_invite(&mut self, frame: &[u8], now_ms: u64) -> Result<Option<Effects>> {
        // The inbox address is shared broadcast space: frames that do not decode are ignored (§2.6).
        let Ok(frame) = InboxV2Frame::decode(frame) else { return Ok(None) };
        let invite = match frame.payload {
            Some(inbox_v2_frame::Payload::GroupV1(invite)) => invite,
            Some(inbox_v2_frame::Payload::GroupV2(welcome)) => return self.join_group(&welcome, now_ms),
            Some(inbox_v2_frame::Payload::SealedGroupV2(sealed)) => {
                let ours = std::slice::from_ref(&self.key_package);
                return match invite::open(&self.provider, ours, &sealed) {
                    Ok(welcome) => self.join_group(&welcome, now_ms),
                    // Sealed to someone else's key (the inbox is shared space) or garbage.
                    Err(_) => Ok(None),
                };
            }
            None => return Ok(None),
        };
        let mut convo =
            match DirectConversation::join(&self.provider, &invite.welcome_bytes, &self.account.id()) {
                Ok(c) => c,
                // A Welcome to a group we already hold: a replay of our inbox's history.
                Err(CoreError::AlreadyJoined) => return Ok(Some(Effects::default())),
                Err(e) => return Err(e),
            };
        let id = convo.id().clone();
        if self.conversations.contains_key(&id) {
            return Ok(Some(Effects::default()));
        }
        let own = self.account.id();
        let inviters: Vec<InstallationId> = convo
            .members()
            .into_iter()
            .filter(|m| m.account.as_ref() != Some(&own))
            .map(|m| m.installation)
            .collect();
        if self.blocked(Some(&convo.peer), &inviters) {
            // Rewound by the caller, and not reported: no conversation appears.
            return Err(CoreError::Blocked);
        }
        convo.meta.created_at = now_ms;
        // A contact's chat only once its installations verify as the contact's: a stranger
        // claiming a contact's account stays a request.
        convo.meta.request = !(self.is_contact(&convo.peer) && direct_verified(&convo, &self.directory));
        let mut fx = Effects {
            subscribe: vec![id.topic().as_str().to_owned()],
            events: vec![Event::Conversation(info(&convo, &self.directory))],
            ..Effects::default()
        };
        // The peer's account is the Welcome's claim until its signed list shows it.
        if !direct_verified(&convo, &self.directory) {
            fx.lookups.push(convo.peer.to_hex());
        }
        self.conversations.insert(id.clone(), convo);
        self.joined_conversation(&id, &mut fx)?;
        self.put_conversation(&id, &mut fx)?;
        Ok(Some(fx))
    }

    pub(super) fn handle_group_message(
        &mut self,
        id: &ConversationId,
        payload: &[u8],
        sent_at_ms: u64,
        now_ms: u64,
    ) -> Result<Effects> {
        let enc: EncryptedPayload = decode("encrypted payload", payload)?;
        let Some(encrypted_payload::Encryption::Plaintext(p)) = enc.encryption else {
            return Err(CoreError::decode("encrypted payload", "Gen-2 groups carry the plaintext arm"));
        };
        self.touch(id);
        let convo = self
            .conversations
            .get_mut(id)
            .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        let (sender, plaintext) = match convo.process(&self.provider, &p.payload)? {
            Inbound::Application { sender, plaintext } => (sender, plaintext),
            Inbound::Commit => {
                let mut fx = Effects::default();
                self.put_conversation(id, &mut fx)?;
                return Ok(fx);
            }
            Inbound::Removed { by } => {
                let mut fx = Effects::default();
                self.put_conversation(id, &mut fx)?;
                if self.bundle.devices.contains(&by) {
                    // Another installation of our own signed list took us out: we stop.
                    self.mark_removed(&mut fx);
                    self.put_account(&mut fx)?;
                } else {
                    // Anyone else (a stranger's chat whose leaf claims our account) only
                    // ends that chat for us.
                    fx.events.push(Event::Error {
                        code: CoreError::NotAMember(String::new()).code().as_str(),
                        message: format!(
                            "removed from the direct chat {} by an installation not ours",
                            id.as_str()
                        ),
                    });
                }
                return Ok(fx);
            }
            Inbound::Ignored | Inbound::Replay => return Ok(Effects::default()),
        };
        let reliable: ReliablePayload = decode("reliable payload", &plaintext)?;
        self.deliver_chat(id, &sender, reliable, sent_at_ms, now_ms)
    }
}

#[cfg(test)]
impl Client {
    /// Opens a sealed invite as this installation would (the encoded `MemberWelcome`).
    pub(crate) fn open_invite_for_tests(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        invite::open(&self.provider, std::slice::from_ref(&self.key_package), sealed).ok().map(|w| w.to_vec())
    }
}

#[cfg(test)]
impl Client {
    /// Sends a direct message whose payload `edit` has changed after wrapping, as a
    /// misbehaving member would.
    pub(crate) fn send_edited_for_tests(
        &mut self,
        conversation: &str,
        content: &[u8],
        edit: impl FnOnce(&mut ReliablePayload),
    ) -> Result<Effects> {
        let id = ConversationId::parse(conversation)?;
        let sender_id = self.credential.identity_id();
        let convo = self
            .conversations
            .get_mut(&id)
            .ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        let mut reliable = convo.channel.wrap(id.as_str(), &sender_id, content.to_vec());
        edit(&mut reliable);
        let mls_bytes = convo.encrypt(&self.provider, &self.installation, &reliable.encode_to_vec())?;
        let mut fx = Effects::default();
        self.enqueue(&mut fx, id.topic().as_str().to_owned(), group_envelope(&id, mls_bytes))?;
        self.sync_mls(&mut fx)?;
        Ok(fx)
    }
}
