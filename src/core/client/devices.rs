//! An account as a set of installations (issue 13): the account's signed device list (and
//! its log) as this installation knows it, and removal; links are `links`, their history
//! `archive`, recovery and rotation `recovery`. A linked installation is added
//! to every direct chat of the account by our own MLS commit (peers accept a direct-chat
//! commit only when it changes the committer's own account, `DirectConversation`); an
//! installation that is removed learns it from the removing commit or from the list,
//! and stops (`INSTALLATION_REMOVED`).

use super::*;
use crate::core::effects::InstallationInfo;

impl Client {
    /// This installation's key package (TLS bytes).
    pub(super) fn key_package_bytes(&self) -> Result<Vec<u8>> {
        self.key_package.tls_serialize_detached().map_err(CoreError::mls)
    }

    /// Fails once another installation has removed this one.
    pub(super) fn check_active(&self) -> Result<()> {
        if self.removed {
            return Err(CoreError::InstallationRemoved);
        }
        Ok(())
    }

    /// The account's installations as this one knows them.
    pub fn installations(&self) -> Vec<InstallationInfo> {
        let me = self.installation.id();
        self.bundle
            .devices
            .iter()
            .map(|d| InstallationInfo {
                installation_id: d.to_hex(),
                current: *d == me,
                added_at: self.added_at.get(d).copied().unwrap_or_default() as f64,
            })
            .collect()
    }

    /// Adds a linked installation of ours to every direct chat it is not in.
    pub(super) fn add_own_installation(
        &mut self,
        id: &InstallationId,
        kp: &KeyPackage,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<()> {
        let ids: Vec<ConversationId> = self
            .conversations
            .iter()
            .filter(|(_, c)| !c.has_installation(id))
            .map(|(k, _)| k.clone())
            .collect();
        let invite_for = |welcome: Vec<u8>| {
            InboxV2Frame {
                payload: Some(inbox_v2_frame::Payload::GroupV1(GroupV1HeavyInvite {
                    welcome_bytes: welcome,
                })),
            }
            .encode_to_vec()
        };
        for cid in ids {
            self.touch(&cid);
            let Some(convo) = self.conversations.get_mut(&cid) else { continue };
            let (commit, welcome) =
                convo.add_installations(&self.provider, &self.installation, std::slice::from_ref(kp))?;
            let env = group_envelope(&cid, commit);
            let topic = cid.topic().as_str().to_owned();
            self.remember(&fx_digest(&topic, &env), fx)?;
            self.enqueue(fx, topic, env)?;
            let invite = EnvelopeV1 {
                conversation_hint: id.inbox_conversation_id(),
                salt: 0,
                payload: invite_for(welcome),
            };
            self.enqueue(fx, id.inbox_topic().as_str().to_owned(), invite.encode_to_vec())?;
            self.put_conversation(&cid, fx)?;
        }
        self.sync_mls(fx)?;
        let _ = now_ms;
        Ok(())
    }

    /// Removes another installation of this account (a lost device is revoked the same
    /// way): a new signed list without it, published, and its leaf taken out of every
    /// direct chat, so it cannot read what follows.
    pub fn remove_installation(&mut self, installation: &str, now_ms: u64) -> Result<Effects> {
        self.guarded(|c| {
            c.check_active()?;
            c.touch_identity();
            let gone = InstallationId::parse(installation)?;
            if gone == c.installation.id() {
                return Err(CoreError::InvalidArgument("an installation cannot remove itself".into()));
            }
            if !c.bundle.devices.contains(&gone) {
                return Err(CoreError::InvalidArgument("not an installation of this account".into()));
            }
            let mut fx = Effects::default();
            let ids: Vec<ConversationId> = c.conversations.keys().cloned().collect();
            for cid in ids {
                c.touch(&cid);
                let Some(convo) = c.conversations.get_mut(&cid) else { continue };
                let Some(commit) = convo.remove_installation(&c.provider, &c.installation, &gone)? else {
                    continue;
                };
                let env = group_envelope(&cid, commit);
                let topic = cid.topic().as_str().to_owned();
                c.remember(&fx_digest(&topic, &env), &mut fx)?;
                c.enqueue(&mut fx, topic, env)?;
                c.put_conversation(&cid, &mut fx)?;
            }
            let devices: Vec<InstallationId> =
                c.bundle.devices.iter().filter(|d| **d != gone).cloned().collect();
            let bundle = c.account.sign_bundle(c.bundle.lamport.saturating_add(1), devices)?;
            c.adopt_bundle(bundle, now_ms, &mut fx)?;
            c.publish_bundle(&mut fx)?;
            c.links.retain(|l| l.claimed.as_ref() != Some(&gone));
            // Groups take it out by their own commit (the list proves it).
            c.remove_own_installation_from_groups(&gone, now_ms, &mut fx);
            c.sync_mls(&mut fx)?;
            Ok(fx)
        })
    }

    /// Takes a newer signed list of our own account: persisted (rollback protection
    /// across restarts), reported; if it no longer lists us, we were removed.
    pub(super) fn adopt_bundle(&mut self, bundle: DeviceBundle, now_ms: u64, fx: &mut Effects) -> Result<()> {
        if bundle.account != self.account.id() || bundle.lamport < self.bundle.lamport {
            return Err(CoreError::Verify("not a newer list of this account"));
        }
        self.touch_identity();
        self.directory.accept_bundle(bundle.clone())?;
        // The log follows: from the newest one of ours that extends what we hold (another
        // installation's change), brought to what the new list shows.
        let own = self.account.id();
        let base = match self.directory.log(&own) {
            Some(l) if l.extends(&self.log) => l.clone(),
            _ => self.log.clone(),
        };
        let log = base.follow(&self.account, &bundle.devices)?;
        // Ours, so never a rewrite of the directory's copy unless two of our
        // installations changed the list at once (then each keeps its own).
        let _ = self.directory.accept_log(log.clone());
        self.log = log;
        for d in &bundle.devices {
            self.added_at.entry(d.clone()).or_insert(now_ms);
        }
        self.added_at.retain(|d, _| bundle.devices.contains(d));
        self.bundle = bundle;
        if !self.bundle.devices.contains(&self.installation.id()) {
            self.mark_removed(fx);
        }
        self.put_account(fx)?;
        fx.events.push(Event::Installations { installations: self.installations() });
        Ok(())
    }

    /// After a lookup of our own account: a newer list from another installation.
    pub(super) fn follow_own_bundle(&mut self, now_ms: u64, fx: &mut Effects) -> Result<()> {
        let Some(b) = self.directory.bundle(&self.account.id()) else { return Ok(()) };
        if b.lamport <= self.bundle.lamport {
            return Ok(());
        }
        let b = b.clone();
        self.adopt_bundle(b, now_ms, fx)
    }

    /// This installation was removed: it says so once and refuses every later call.
    pub(super) fn mark_removed(&mut self, fx: &mut Effects) {
        if self.removed {
            return;
        }
        self.touch_identity();
        self.removed = true;
        self.links.clear();
        fx.events.push(Event::Error {
            code: CoreError::InstallationRemoved.code().as_str(),
            message: CoreError::InstallationRemoved.to_string(),
        });
    }

    /// Persists the account record.
    pub(super) fn put_account(&mut self, fx: &mut Effects) -> Result<()> {
        let record = self.account_record()?;
        fx.store.push(self.cipher.put(self.rng.as_mut(), Store::Account, SINGLETON, &encode(&record))?);
        Ok(())
    }
}

#[cfg(test)]
impl Client {
    /// The account record as it would be persisted now.
    pub(crate) fn account_record_for_tests(&self) -> AccountRecord {
        self.account_record().unwrap()
    }

    /// Our own account log, and the one the directory holds of `account`.
    pub(crate) fn logs_for_tests(
        &self,
        account: &AccountId,
    ) -> (crate::core::account_log::AccountLog, Option<crate::core::account_log::AccountLog>) {
        (self.log.clone(), self.directory.log(account).cloned())
    }

    /// Whether the directory confirms the installation as the account's.
    pub(crate) fn confirms_for_tests(&self, account: &AccountId, installation: &InstallationId) -> bool {
        self.directory.confirms(account, installation)
    }

    /// Adds another account's installation to a direct chat by our own commit, as a
    /// misbehaving member would: peers must refuse it.
    pub(crate) fn add_foreign_for_tests(&mut self, conversation: &str, other: &InstallationId) -> Effects {
        let id = ConversationId::parse(conversation).unwrap();
        let kp = self.directory.key_package(other, self.provider.crypto()).unwrap();
        let convo = self.conversations.get_mut(&id).unwrap();
        let (commit, _) = convo.add_installations(&self.provider, &self.installation, &[kp]).unwrap();
        let mut fx = Effects::default();
        self.enqueue(&mut fx, id.topic().as_str().to_owned(), group_envelope(&id, commit)).unwrap();
        self.sync_mls(&mut fx).unwrap();
        fx
    }

    /// Removes a leaf from a direct chat by our own commit, whoever's it is (as an
    /// impostor would).
    pub(crate) fn remove_leaf_for_tests(&mut self, conversation: &str, leaf: &InstallationId) -> Effects {
        let id = ConversationId::parse(conversation).unwrap();
        let convo = self.conversations.get_mut(&id).unwrap();
        let commit = convo.remove_installation(&self.provider, &self.installation, leaf).unwrap().unwrap();
        let mut fx = Effects::default();
        self.enqueue(&mut fx, id.topic().as_str().to_owned(), group_envelope(&id, commit)).unwrap();
        self.sync_mls(&mut fx).unwrap();
        fx
    }

    /// The epoch of a direct chat.
    pub(crate) fn direct_epoch_for_tests(&self, conversation: &str) -> u64 {
        self.conversations[&ConversationId::parse(conversation).unwrap()].epoch()
    }

    /// Starts a direct chat whose Welcome claims `claimed` as our account: an impostor.
    pub(crate) fn start_impostor_for_tests(&mut self, peer: &str, claimed: &AccountId) -> Effects {
        let peer = AccountId::parse(peer).unwrap();
        let devices = self.directory.bundle(&peer).unwrap().devices.clone();
        let kps: Vec<KeyPackage> =
            devices.iter().filter_map(|d| self.directory.key_package(d, self.provider.crypto())).collect();
        let credential =
            DelegateCredential { installation: self.installation.id(), account: Some(claimed.clone()) };
        let (convo, _commit, welcome) = DirectConversation::create(
            &self.provider,
            &self.installation,
            &credential,
            peer,
            [0x66; 16],
            &kps,
        )
        .unwrap();
        let invite = InboxV2Frame {
            payload: Some(inbox_v2_frame::Payload::GroupV1(GroupV1HeavyInvite { welcome_bytes: welcome })),
        }
        .encode_to_vec();
        let mut fx = Effects::default();
        for d in devices {
            let env =
                EnvelopeV1 { conversation_hint: d.inbox_conversation_id(), salt: 0, payload: invite.clone() };
            self.enqueue(&mut fx, d.inbox_topic().as_str().to_owned(), env.encode_to_vec()).unwrap();
        }
        let id = convo.id().clone();
        fx.subscribe.push(id.topic().as_str().to_owned());
        self.conversations.insert(id, convo);
        self.sync_mls(&mut fx).unwrap();
        fx
    }
}
