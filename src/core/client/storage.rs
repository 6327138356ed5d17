//! The client's storage side: restore from the records loaded at start, the openmls
//! mirror and its diff into each call's effects, conversation and message records,
//! history paging, and the digests of handled envelopes.

use super::*;
use zeroize::{Zeroize as _, Zeroizing};

impl Client {
    /// Runs `f`, and on failure puts back everything it touched (`checkpoint`).
    pub(super) fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.begin();
        let r = f(self);
        if r.is_err() {
            self.rewind();
        } else {
            self.end();
        }
        r
    }

    pub(super) fn account_record(&self) -> Result<AccountRecord> {
        Ok(AccountRecord {
            account_seed: self.account.seed().to_vec(),
            installation_seed: self.installation.seed().to_vec(),
            bundle_lamport: self.bundle.lamport,
            key_package: self.key_package.tls_serialize_detached().map_err(CoreError::mls)?,
            bundle_payload: self.bundle.payload.clone(),
            bundle_signature: self.bundle.signature.to_vec(),
            log_payload: self.log.payload.clone(),
            log_signature: self.log.signature.to_vec(),
            added_at: self.added_at.iter().map(|(d, t)| (d.to_hex(), *t)).collect(),
            removed: self.removed,
        })
    }

    /// Restores a client from every record of the stores loaded at start
    /// ([`Store::loaded_at_start`]). Fails with `StoreCorrupt` when a record does
    /// not authenticate or decode (a wrong store key looks the same), never resets.
    /// The effects re-subscribe every topic and re-publish the outbox.
    pub fn restore(
        rng: Box<dyn CryptoRngCore>,
        store_key: &[u8; 32],
        records: Vec<LoadedRecord>,
        now_ms: u64,
    ) -> Result<(Self, Effects)> {
        let cipher = StoreCipher::new(store_key);
        let mut by_store: BTreeMap<Store, Vec<Vec<u8>>> = BTreeMap::new();
        for (name, key, sealed) in records {
            let store = Store::from_name(&name)
                .ok_or_else(|| CoreError::StoreCorrupt(format!("unknown object store {name:?}")))?;
            by_store.entry(store).or_default().push(cipher.open(store, &key, &sealed)?);
        }
        let single = |store: Store, by: &BTreeMap<Store, Vec<Vec<u8>>>| -> Result<Vec<u8>> {
            match by.get(&store).map(Vec::as_slice) {
                Some([one]) => Ok(one.clone()),
                _ => Err(CoreError::StoreCorrupt(format!("expected one {} record", store.name()))),
            }
        };
        let meta: MetaRecord = decode_record("meta", &single(Store::Meta, &by_store)?)?;
        migrate(meta.schema_version)?;
        let acct: AccountRecord = decode_record("account", &single(Store::Account, &by_store)?)?;
        let seed = |b: &[u8]| <[u8; 32]>::try_from(b).map_err(|_| CoreError::StoreCorrupt("key seed".into()));
        let account = AccountKey::from_seed(&seed(&acct.account_seed)?);
        let installation = InstallationKey::from_seed(&seed(&acct.installation_seed)?);
        // Stores written before linking hold no list: it was this installation alone.
        let bundle = if acct.bundle_payload.is_empty() {
            account.sign_bundle(acct.bundle_lamport, vec![installation.id()])?
        } else {
            DeviceBundle::verify(&account.id(), &acct.bundle_payload, &acct.bundle_signature)
                .map_err(|_| CoreError::StoreCorrupt("the stored device list does not verify".into()))?
        };
        let provider = Provider::new().map_err(CoreError::mls)?;
        // The stored key package validates until its lifetime (84 days) ends; an
        // installation that was closed longer gets a fresh last-resort package, which
        // the next announce publishes.
        let stored_key_package = directory::parse_key_package(&acct.key_package, provider.crypto()).ok();
        let placeholder = match &stored_key_package {
            Some(kp) => kp.clone(),
            None => mls::new_key_package(
                &provider,
                &installation,
                &DelegateCredential { installation: installation.id(), account: Some(account.id()) },
            )?
            .key_package()
            .clone(),
        };
        // Stores written before the log hold none: a first one is made from the list.
        let log = if acct.log_payload.is_empty() {
            None
        } else {
            Some(
                crate::core::account_log::AccountLog::verify(
                    &account.id(),
                    &acct.log_payload,
                    &acct.log_signature,
                )
                .map_err(|_| CoreError::StoreCorrupt("the stored account log does not verify".into()))?,
            )
        };
        let mut client =
            Self::assemble(rng, provider, store_key, account, installation, (bundle, log), placeholder)?;
        client.removed = acct.removed;
        for (d, t) in &acct.added_at {
            if let Ok(d) = InstallationId::parse(d) {
                client.added_at.insert(d, *t);
            }
        }
        // Schema 1 kept openmls's entries in JSON: they migrate as openmls reads them.
        client.provider.storage().set_legacy(meta.schema_version == 1);
        {
            let mut values = client.provider.storage().values.write().map_err(CoreError::mls)?;
            for v in by_store.remove(&Store::Mls).unwrap_or_default() {
                let rec: MlsRecord = decode_record("mls", &v)?;
                let value = Zeroizing::new(rec.value);
                values.insert(rec.key.clone(), value.clone());
                client.mls_mirror.insert(rec.key, value);
            }
        }
        let mut fx = Effects {
            subscribe: vec![client.installation.id().inbox_topic().as_str().to_owned()],
            ..Effects::default()
        };
        if stored_key_package.is_none() {
            // The fresh package (its private parts are in the provider, not yet in the
            // mirror) is persisted now, with the account record that names it.
            let record = client.account_record()?;
            fx.store.push(client.cipher.put(
                client.rng.as_mut(),
                Store::Account,
                SINGLETON,
                &encode(&record),
            )?);
            client.sync_mls(&mut fx)?;
        }
        let mut held = Vec::new();
        for v in by_store.remove(&Store::Conversations).unwrap_or_default() {
            let mut rec: ConversationRecord = decode_record("conversation", &v)?;
            if !rec.held.is_empty() {
                if let Ok(id) = ConversationId::parse(&rec.id) {
                    held.push((id, std::mem::take(&mut rec.held)));
                }
            }
            if rec.kind == super::joining::PENDING_KIND {
                client.restore_join(&rec, &mut fx);
                continue;
            }
            if rec.kind == "group" {
                let group = GroupConversation::restore(&client.provider, rec, now_ms)?;
                if !group.left {
                    fx.subscribe.push(group.id().topic().as_str().to_owned());
                }
                client.groups.insert(group.id().clone(), group);
                continue;
            }
            let convo = DirectConversation::restore(&client.provider, rec)?;
            fx.subscribe.push(convo.id().topic().as_str().to_owned());
            client.conversations.insert(convo.id().clone(), convo);
        }
        let mut seen: Vec<SeenRecord> = Vec::new();
        for v in by_store.remove(&Store::Seen).unwrap_or_default() {
            seen.push(decode_record("seen", &v)?);
        }
        seen.sort_by_key(|r| r.order);
        for r in seen {
            if let Ok(d) = <[u8; 32]>::try_from(r.digest.as_slice()) {
                client.seen.insert(d, r.order);
                client.seen_order.push_back(d);
                client.seen_counter = client.seen_counter.max(r.order.saturating_add(1));
            }
        }
        for (id, records) in held {
            client.restore_held(&id, records, now_ms)?;
        }
        client.restore_contacts(by_store.remove(&Store::Contacts).unwrap_or_default())?;
        for v in by_store.remove(&Store::Installations).unwrap_or_default() {
            let rec: crate::core::store::KnownAccountRecord = decode_record("known account", &v)?;
            if let Ok(a) = <[u8; 32]>::try_from(rec.account.as_slice()) {
                client.directory.restore_known(&AccountId::from_bytes(a), &rec.bundle, &rec.log);
            }
        }
        for v in by_store.remove(&Store::Outbox).unwrap_or_default() {
            let rec: OutboxRecord = decode_record("outbox", &v)?;
            client.next_outbox = client.next_outbox.max(rec.id.saturating_add(1));
            client.outbox.insert(rec.id, rec);
        }
        client.restore_unacked();
        fx.wake_at = client.next_wake(now_ms);
        for rec in client.outbox.values().filter(|r| !r.accepted) {
            fx.publish.push(Outbound {
                content_topic: rec.content_topic.clone(),
                payload: rec.payload.clone(),
                outbox_id: rec.id,
            });
        }
        Ok((client, fx))
    }

    /// Adds the openmls entries this call changed to the effects, and moves the mirror along.
    pub(super) fn sync_mls(&mut self, fx: &mut Effects) -> Result<()> {
        // No write since the mirror last matched: nothing to diff (most calls).
        let writes = self.provider.storage().writes();
        if writes == self.mls_synced {
            return Ok(());
        }
        let values = self.provider.storage().values.read().map_err(CoreError::mls)?;
        let mut changed: Vec<(Vec<u8>, Secret)> = Vec::new();
        for (k, v) in values.iter() {
            if self.mls_mirror.get(k) != Some(v) {
                changed.push((k.clone(), v.clone()));
            }
        }
        let removed: Vec<Vec<u8>> =
            self.mls_mirror.keys().filter(|k| !values.contains_key(*k)).cloned().collect();
        drop(values);
        for (k, v) in changed {
            let mut rec = MlsRecord { key: k.clone(), value: v.to_vec() };
            let plain = Zeroizing::new(encode(&rec));
            rec.value.zeroize();
            fx.store.push(self.cipher.put(self.rng.as_mut(), Store::Mls, &mls_logical_key(&k), &plain)?);
            let old = self.mls_mirror.insert(k.clone(), v);
            self.mirror_changed(k, old);
        }
        for k in removed {
            fx.store.push(self.cipher.delete(Store::Mls, &mls_logical_key(&k)));
            let old = self.mls_mirror.remove(&k);
            self.mirror_changed(k, old);
        }
        self.mls_synced = writes;
        Ok(())
    }

    /// Puts openmls's storage back to what was last persisted (after a failed call) and
    /// reloads the conversations from it. If openmls wrote nothing since the mirror last
    /// matched (`force` unset), the map is not copied (most refused input costs no MLS
    /// work), and only `touched` conversations are reloaded: openmls may have changed a
    /// group in memory (a decryption burns its generation's key) without writing it.
    pub(super) fn rollback_mls(&mut self, force: bool, touched: &[ConversationId]) {
        let writes = self.provider.storage().writes();
        let provider = &self.provider;
        if !force && writes == self.mls_synced {
            for id in touched {
                if let Some(c) = self.conversations.get_mut(id) {
                    let _ = c.reload(provider);
                }
                if let Some(g) = self.groups.get_mut(id) {
                    let _ = g.reload(provider);
                }
            }
            return;
        }
        self.mls_synced = writes;
        self.mls_rollbacks = self.mls_rollbacks.saturating_add(1);
        if let Ok(mut values) = provider.storage().values.write() {
            *values = self.mls_mirror.clone();
        }
        for c in self.conversations.values_mut() {
            let _ = c.reload(provider);
        }
        for g in self.groups.values_mut() {
            let _ = g.reload(provider);
        }
    }

    pub(super) fn put_conversation(&mut self, id: &ConversationId, fx: &mut Effects) -> Result<()> {
        let mut rec = match (self.conversations.get(id), self.groups.get(id)) {
            (Some(c), _) => c.record(),
            (None, Some(g)) => g.record(),
            (None, None) => return Ok(()),
        };
        rec.held = self.held_records(id);
        fx.store.push(self.cipher.put(
            self.rng.as_mut(),
            Store::Conversations,
            id.as_str().as_bytes(),
            &encode(&rec),
        )?);
        Ok(())
    }

    /// Stores a message in its conversation's history; returns its sequence number.
    pub(super) fn store_message(&mut self, m: &ChatMessage, fx: &mut Effects) -> Result<u64> {
        let id = ConversationId::parse(&m.conversation_id)?;
        let Some((_, meta)) = self.channel_meta(&id) else {
            return Err(CoreError::UnknownConversation(m.conversation_id.clone()));
        };
        let seq = meta.next_seq;
        meta.next_seq = meta.next_seq.saturating_add(1);
        self.store_message_at(m, seq, !m.outgoing, fx)?;
        Ok(seq)
    }

    /// Stores a message at a given place in the history (an archive from another
    /// installation goes before what this one received itself).
    pub(super) fn store_message_at(
        &mut self,
        m: &ChatMessage,
        seq: u64,
        unread: bool,
        fx: &mut Effects,
    ) -> Result<()> {
        let id = ConversationId::parse(&m.conversation_id)?;
        let Some((_, meta)) = self.channel_meta(&id) else {
            return Err(CoreError::UnknownConversation(m.conversation_id.clone()));
        };
        let handled = super::reliability::msg_digest(&id, &m.id);
        if super::whole_ms(m.sent_at) >= meta.last_message_at {
            meta.last_preview = preview(m);
        }
        meta.last_message_at = meta.last_message_at.max(super::whole_ms(m.sent_at));
        if unread {
            meta.unread = meta.unread.saturating_add(1);
        }
        self.remember(&handled, fx)?;
        self.put_message(m, seq, fx)?;
        let index = MessageIndexRecord { conversation_id: m.conversation_id.clone(), seq };
        fx.store.push(self.cipher.put(
            self.rng.as_mut(),
            Store::MessageIndex,
            &index_key(&m.conversation_id, &m.id),
            &encode(&index),
        )?);
        self.put_conversation(&id, fx)
    }

    /// Deletes a stored message that is not to be kept after all (its sender was blocked
    /// while it waited), with its index entry and its unread count.
    pub(super) fn forget_message(&mut self, m: &ChatMessage, seq: u64, fx: &mut Effects) -> Result<()> {
        let id = ConversationId::parse(&m.conversation_id)?;
        let key = self.cipher.message_key(&m.conversation_id, seq);
        fx.store.push(StoreOp { store: Store::Messages.name(), key, value: None });
        fx.store.push(self.cipher.delete(Store::MessageIndex, &index_key(&m.conversation_id, &m.id)));
        if let Some((_, meta)) = self.channel_meta(&id) {
            if !m.outgoing {
                meta.unread = meta.unread.saturating_sub(1);
            }
        }
        self.put_conversation(&id, fx)
    }

    pub(super) fn put_message(&mut self, m: &ChatMessage, seq: u64, fx: &mut Effects) -> Result<()> {
        let rec = super::reliability::message_record(m, seq);
        let key = self.cipher.message_key(&m.conversation_id, seq);
        let value = self.cipher.seal(self.rng.as_mut(), Store::Messages, &key, &encode(&rec))?;
        fx.store.push(StoreOp { store: Store::Messages.name(), key, value: Some(value) });
        Ok(())
    }

    /// The key range of a conversation's history before `before_seq` (exclusive), for
    /// the driver to read newest first with a limit.
    pub fn history_range(&self, conversation: &str, before_seq: Option<u64>) -> Result<(Vec<u8>, Vec<u8>)> {
        let id = ConversationId::parse(conversation)?;
        if !self.knows(&id) {
            return Err(CoreError::UnknownConversation(id.as_str().to_owned()));
        }
        let from = self.cipher.message_key(id.as_str(), 0);
        let to = match before_seq {
            Some(0) => return Ok((from.clone(), from)),
            Some(s) => self.cipher.message_key(id.as_str(), s.saturating_sub(1)),
            None => self.cipher.message_key(id.as_str(), u64::MAX),
        };
        Ok((from, to))
    }

    /// The `message_index` keys of a message id in a conversation: the current one, then
    /// the one builds before 0.1.1 wrote (the id alone, so a member of one conversation
    /// could overwrite another's entry with a message of the same id; read only, and
    /// only trusted when the record names this conversation).
    pub fn message_index_keys(&self, conversation: &str, message_id: &str) -> [Vec<u8>; 2] {
        [
            self.cipher.key(Store::MessageIndex, &index_key(conversation, message_id)),
            self.cipher.key(Store::MessageIndex, message_id.as_bytes()),
        ]
    }

    /// Opens a `message_index` record: (conversation, sequence).
    pub fn open_message_index(&self, key: &[u8], sealed: &[u8]) -> Result<(String, u64)> {
        let rec: MessageIndexRecord =
            decode_record("message index", &self.cipher.open(Store::MessageIndex, key, sealed)?)?;
        Ok((rec.conversation_id, rec.seq))
    }

    /// Opens `messages` records read from a range.
    pub fn open_messages(&self, records: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<ChatMessage>> {
        records
            .iter()
            .map(|(k, v)| {
                let rec: MessageRecord = decode_record("message", &self.cipher.open(Store::Messages, k, v)?)?;
                Ok(super::reliability::chat_message(rec))
            })
            .collect()
    }

    /// Marks a conversation read up to now (local; read receipts come with their issue).
    pub fn mark_read(&mut self, conversation: &str) -> Result<Effects> {
        let id = ConversationId::parse(conversation)?;
        let (_, meta) =
            self.channel_meta(&id).ok_or_else(|| CoreError::UnknownConversation(id.as_str().to_owned()))?;
        meta.unread = 0;
        let mut fx = Effects::default();
        self.put_conversation(&id, &mut fx)?;
        Ok(fx)
    }

    /// (entries, bytes) held in the MLS store: what a restart would have to persist.
    pub fn storage_footprint(&self) -> (usize, usize) {
        self.provider.storage().values.read().map_or((0, 0), |v| {
            (v.len(), v.iter().fold(0usize, |n, (k, x)| n.saturating_add(k.len()).saturating_add(x.len())))
        })
    }

    /// Since when (ms) the driver needs a topic's history after a restart: a
    /// conversation's from ten minutes before its last message (clock skew), everything
    /// for the inbox and for conversations with no message yet.
    pub fn catch_up_since(&self, topic: &str) -> Option<u64> {
        let metas = self.conversations.values().map(|c| (c.id(), &c.meta));
        let metas = metas.chain(self.groups.values().map(|g| (g.id(), &g.meta)));
        metas
            .filter(|(id, _)| id.topic().as_str() == topic)
            .find_map(|(_, m)| (m.last_message_at > 0).then(|| m.last_message_at.saturating_sub(600_000)))
    }

    /// Remembers an envelope that was refused, for this session only.
    pub(super) fn refuse(&mut self, digest: [u8; 32]) {
        if self.refused.insert(digest) {
            self.refused_order.push_back(digest);
        }
        while self.refused_order.len() > REFUSED_CAP {
            if let Some(old) = self.refused_order.pop_front() {
                self.refused.remove(&old);
            }
        }
    }

    pub(super) fn remember(&mut self, digest: &[u8; 32], fx: &mut Effects) -> Result<()> {
        if self.seen.contains_key(digest) {
            return Ok(());
        }
        let order = self.seen_counter;
        self.seen_counter = self.seen_counter.saturating_add(1);
        self.seen.insert(*digest, order);
        self.seen_order.push_back(*digest);
        let rec = SeenRecord { digest: digest.to_vec(), order };
        fx.store.push(self.cipher.put(self.rng.as_mut(), Store::Seen, digest, &encode(&rec))?);
        while self.seen_order.len() > SEEN_CAP {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
                fx.store.push(self.cipher.delete(Store::Seen, &old));
            }
        }
        Ok(())
    }
}

/// The clear form of a `message_index` key: conversation id (hex) ‖ "/" ‖ message id.
/// The most characters of a message a conversation's preview keeps.
pub const PREVIEW_CHARS: usize = 80;

/// What the conversation list shows of a message: the first characters of text, else its
/// content type in brackets.
pub(super) fn preview(m: &ChatMessage) -> String {
    let textual = m.content_type.starts_with("text/")
        || m.content_type == "application/json"
        || m.content_type == crate::core::content::REACTION_TYPE;
    match std::str::from_utf8(&m.content) {
        Ok(t) if textual => t.chars().take(PREVIEW_CHARS).collect(),
        _ => format!("[{}]", m.content_type.chars().take(PREVIEW_CHARS).collect::<String>()),
    }
}

fn index_key(conversation: &str, message_id: &str) -> Vec<u8> {
    [conversation.as_bytes(), b"/", message_id.as_bytes()].concat()
}
