//! Contacts, blocking, message requests and contact cards (issue 14).
//!
//! A contact is an account the user added (by id, or by a card that carries its signed
//! records, so that a chat can start with no directory at all). A blocked account's
//! invites are dropped (no conversation appears), its messages in direct chats and
//! groups are neither stored nor shown, and `start_direct` to it fails `BLOCKED`; its
//! installations known when it was blocked are blocked too, whatever account they
//! claim. A conversation another account started is a request until the app accepts
//! it, or adds that account as a contact. Contacts persist in the `contacts` store, one
//! record per account.

use super::*;
use crate::core::card::{self, ContactCard};
use crate::core::directory::KEYPACKAGE_TOPIC;
use crate::core::effects::ContactInfo;
use crate::core::store::ContactRecord;

/// The longest nickname kept (characters).
const MAX_NICKNAME_CHARS: usize = 256;
/// The most contacts and blocked accounts kept.
const MAX_CONTACTS: usize = 10_000;

fn contact_info(account: &AccountId, r: &ContactRecord) -> ContactInfo {
    ContactInfo {
        account_id: account.to_hex(),
        nickname: (!r.nickname.is_empty()).then(|| r.nickname.clone()),
        blocked: r.blocked,
    }
}

impl Client {
    /// This account's contact card (`logos_chatcard_…`): the signed device list, the
    /// log, and (unless `compact`) this installation's key package, signed as in the
    /// directory. A full card starts a chat with no directory at all, but an X-Wing key
    /// package is about 2.5 kB, so it is about 4.4 k characters: more than one QR code
    /// holds. A compact card (about 450 characters) fits one and names the account and
    /// its installations, whose key packages then come from the directory.
    pub fn contact_card(&self, compact: bool, now_ms: u64) -> Result<String> {
        self.check_active()?;
        let log = crate::core::wire::AccountSubmissionV1 {
            account_pub: self.account.id().as_bytes().to_vec(),
            payload: self.log.payload.clone(),
            signature: self.log.signature.to_vec(),
        }
        .encode_to_vec();
        let kp = directory::key_package_submission(&self.installation, now_ms, &self.key_package)?;
        let key_packages = if compact { Vec::new() } else { vec![kp] };
        let c = ContactCard { bundle: directory::account_submission(&self.bundle), log, key_packages };
        Ok(card::encode(&c))
    }

    /// Adds a contact by card or account id (again: the nickname changes). A card's
    /// records go into the directory, so a chat can start from it alone; a card whose
    /// list is older than one we know adds the contact and nothing else. A card that does
    /// not parse or verify is `INVALID_CARD`.
    pub fn add_contact(
        &mut self,
        card_or_account: &str,
        nickname: Option<&str>,
    ) -> Result<(ContactInfo, Effects)> {
        self.check_active()?;
        if nickname.is_some_and(|n| n.chars().count() > MAX_NICKNAME_CHARS) {
            return Err(CoreError::InvalidArgument(format!(
                "a nickname is at most {MAX_NICKNAME_CHARS} characters"
            )));
        }
        let account = if card::looks_like_card(card_or_account) {
            let opened = card::open(card_or_account)?;
            if opened.account == self.account.id() {
                return Err(CoreError::InvalidArgument("that is this account's own card".into()));
            }
            // A rolled-back card (an older list than one we know) brings nothing in.
            if self.directory.accept_bundle(opened.bundle).is_ok() {
                let _ = self.directory.accept_log(opened.log);
                for kp in &opened.key_packages {
                    let _ = self.directory.ingest(KEYPACKAGE_TOPIC, kp, self.provider.crypto());
                }
            }
            opened.account
        } else {
            let a = AccountId::parse(card_or_account.trim())?;
            if a == self.account.id() {
                return Err(CoreError::InvalidArgument("cannot add this account as its own contact".into()));
            }
            a
        };
        if !self.contacts.contains_key(&account) && self.contacts.len() >= MAX_CONTACTS {
            return Err(CoreError::InvalidArgument(format!("at most {MAX_CONTACTS} contacts")));
        }
        let mut fx = Effects::default();
        let rec = self.contacts.entry(account.clone()).or_insert_with(|| ContactRecord {
            account: account.as_bytes().to_vec(),
            ..ContactRecord::default()
        });
        rec.added = true;
        if let Some(n) = nickname {
            rec.nickname = n.to_owned();
        }
        let info = contact_info(&account, rec);
        self.put_contact(&account, &mut fx)?;
        // Their chats are no longer requests.
        let ids: Vec<ConversationId> = self
            .conversations
            .values()
            .filter(|c| c.peer == account && c.meta.request && direct_verified(c, &self.directory))
            .map(|c| c.id().clone())
            .collect();
        for id in ids {
            self.accept_request_into(&id, &mut fx)?;
        }
        self.flush_directory(&mut fx)?;
        Ok((info, fx))
    }

    /// Removes a contact (a blocked account stays blocked).
    pub fn remove_contact(&mut self, account: &str) -> Result<Effects> {
        self.change_contact(account, |rec| {
            rec.added = false;
            rec.nickname.clear();
        })
    }

    /// Blocks an account, and the installations its lists show now.
    pub fn block(&mut self, account: &str) -> Result<Effects> {
        self.check_active()?;
        let account = AccountId::parse(account)?;
        if account == self.account.id() {
            return Err(CoreError::InvalidArgument("cannot block this account".into()));
        }
        if !self.contacts.contains_key(&account) && self.contacts.len() >= MAX_CONTACTS {
            return Err(CoreError::InvalidArgument(format!("at most {MAX_CONTACTS} contacts")));
        }
        // Its installations we have met: leaves of our chats with it whose credentials
        // claim it. Not the ids its own lists name: anyone can sign a list that names
        // someone else's installation, and blocking it would block them.
        let me = self.installation.id();
        let known: Vec<InstallationId> = self
            .conversations
            .values()
            .filter(|c| c.peer == account)
            .flat_map(|c| c.members())
            .filter(|m| m.account.as_ref() == Some(&account) && m.installation != me)
            .map(|m| m.installation)
            .collect();
        let rec = self.contacts.entry(account.clone()).or_insert_with(|| ContactRecord {
            account: account.as_bytes().to_vec(),
            ..ContactRecord::default()
        });
        rec.blocked = true;
        for d in known {
            if !rec.installations.iter().any(|i| i.as_slice() == d.as_bytes()) {
                rec.installations.push(d.as_bytes().to_vec());
            }
        }
        let mut fx = Effects::default();
        self.put_contact(&account, &mut fx)?;
        Ok(fx)
    }

    /// Unblocks an account.
    pub fn unblock(&mut self, account: &str) -> Result<Effects> {
        self.change_contact(account, |rec| {
            rec.blocked = false;
            rec.installations.clear();
        })
    }

    /// Contacts and blocked accounts.
    pub fn contacts(&self) -> Vec<ContactInfo> {
        self.contacts.iter().filter(|(_, r)| r.added || r.blocked).map(|(a, r)| contact_info(a, r)).collect()
    }

    /// Accepts a message request: the conversation goes to the inbox.
    pub fn accept_request(&mut self, conversation: &str) -> Result<Effects> {
        let id = ConversationId::parse(conversation)?;
        if !self.knows(&id) {
            return Err(CoreError::UnknownConversation(id.as_str().to_owned()));
        }
        let mut fx = Effects::default();
        self.accept_request_into(&id, &mut fx)?;
        Ok(fx)
    }

    fn accept_request_into(&mut self, id: &ConversationId, fx: &mut Effects) -> Result<()> {
        let Some((_, meta)) = self.channel_meta(id) else { return Ok(()) };
        if !meta.request {
            return Ok(());
        }
        meta.request = false;
        self.put_conversation(id, fx)?;
        let info = self.conversations.get(id).map(|c| info(c, &self.directory));
        let info = info.or_else(|| self.groups.get(id).map(group::group_info));
        fx.events.extend(info.map(Event::Conversation));
        Ok(())
    }

    /// Whether an account is a contact (added, not blocked).
    pub(super) fn is_contact(&self, account: &AccountId) -> bool {
        self.contacts.get(account).is_some_and(|r| r.added && !r.blocked)
    }

    /// Whether what comes from this (claimed) account or these installations is blocked.
    pub(super) fn blocked(&self, account: Option<&AccountId>, installations: &[InstallationId]) -> bool {
        if account.and_then(|a| self.contacts.get(a)).is_some_and(|r| r.blocked) {
            return true;
        }
        self.contacts.values().filter(|r| r.blocked).any(|r| {
            r.installations
                .iter()
                .any(|i| installations.iter().any(|d| d.as_bytes().as_slice() == i.as_slice()))
        })
    }

    /// Changes the record of a known account and persists it (nothing for an unknown one).
    fn change_contact(&mut self, account: &str, change: impl FnOnce(&mut ContactRecord)) -> Result<Effects> {
        let account = AccountId::parse(account)?;
        let mut fx = Effects::default();
        if let Some(rec) = self.contacts.get_mut(&account) {
            change(rec);
            self.put_contact(&account, &mut fx)?;
        }
        Ok(fx)
    }

    /// Persists one contact record (deleted once it is neither added nor blocked).
    fn put_contact(&mut self, account: &AccountId, fx: &mut Effects) -> Result<()> {
        match self.contacts.get(account) {
            Some(r) if r.added || r.blocked => {
                let bytes = encode(r);
                fx.store.push(self.cipher.put(
                    self.rng.as_mut(),
                    Store::Contacts,
                    account.as_bytes(),
                    &bytes,
                )?);
            }
            _ => {
                self.contacts.remove(account);
                fx.store.push(self.cipher.delete(Store::Contacts, account.as_bytes()));
            }
        }
        Ok(())
    }

    /// Takes in the contact records read at start.
    pub(super) fn restore_contacts(&mut self, records: Vec<Vec<u8>>) -> Result<()> {
        for v in records {
            let rec: ContactRecord = decode_record("contact", &v)?;
            let account = <[u8; 32]>::try_from(rec.account.as_slice())
                .map(AccountId::from_bytes)
                .map_err(|_| CoreError::StoreCorrupt("contact record: account".into()))?;
            self.contacts.insert(account, rec);
        }
        Ok(())
    }
}
