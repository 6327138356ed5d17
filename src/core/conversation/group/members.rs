//! What a group is made of: its id, epoch, metadata, members by account, and this
//! epoch's stewards (read from the MLS group and the governance state).

use openmls::prelude::*;

use super::{leaf_credential, member_id, GroupConversation};
use crate::core::account::DelegateCredential;
use crate::core::address::{AccountId, ConversationId, InstallationId};
use crate::core::conversation::metadata::Metadata;
use crate::core::conversation::mls;
use crate::core::demls::{steward_list, MAX_REELECTIONS};

impl GroupConversation {
    /// The conversation id.
    pub fn id(&self) -> &ConversationId {
        &self.id
    }

    /// The MLS epoch.
    pub fn epoch(&self) -> u64 {
        self.group.epoch().as_u64()
    }

    /// Name and description (extension 0xFF01).
    pub fn metadata(&self) -> Metadata {
        self.group
            .extensions()
            .unknown(mls::GROUP_METADATA_EXTENSION)
            .and_then(|e| Metadata::decode(&e.0).ok())
            .unwrap_or_default()
    }

    /// Every member installation's credential.
    pub fn credentials(&self) -> Vec<DelegateCredential> {
        self.group.members().filter_map(|m| leaf_credential(&m)).collect()
    }

    /// Members by account, each with its installations, in account order.
    pub fn members(&self) -> Vec<(AccountId, Vec<InstallationId>)> {
        let mut by: std::collections::BTreeMap<AccountId, Vec<InstallationId>> = Default::default();
        for c in self.credentials() {
            if let Some(a) = c.account {
                by.entry(a).or_default().push(c.installation);
            }
        }
        by.into_iter().collect()
    }

    pub(super) fn member_ids(&self) -> Vec<Vec<u8>> {
        self.credentials().iter().map(member_id).collect()
    }

    /// This epoch's steward list (member ids) after its re-elections, the epoch steward first.
    pub fn stewards(&self) -> Vec<Vec<u8>> {
        self.stewards_of_round(self.gov.retry_round)
    }

    /// The steward list of one election round of this epoch.
    pub(super) fn stewards_of_round(&self, round: u32) -> Vec<Vec<u8>> {
        steward_list(
            self.epoch(),
            round,
            self.id.as_str(),
            &self.member_ids(),
            self.gov.config.stewards as usize,
        )
    }

    /// Whether `id` is a steward of any election round of this epoch. A candidate is
    /// accepted from any of them: members' clocks differ, so some may not have reached
    /// the round whose steward committed, and a valid commit of the approved work is
    /// harmless whoever of them makes it.
    pub(super) fn steward_of_some_round(&self, id: &[u8]) -> bool {
        (0..=MAX_REELECTIONS).any(|r| self.stewards_of_round(r).iter().any(|s| s == id))
    }

    /// The accounts of this epoch's stewards, in steward-list order (the epoch steward's
    /// first).
    pub fn steward_accounts(&self) -> Vec<AccountId> {
        let creds = self.credentials();
        let mut out: Vec<AccountId> = Vec::new();
        for id in self.stewards() {
            let account = creds.iter().find(|c| member_id(c) == id).and_then(|c| c.account.clone());
            if let Some(a) = account.filter(|a| !out.contains(a)) {
                out.push(a);
            }
        }
        out
    }

    pub(super) fn leaves_of(&self, account: &AccountId) -> Vec<LeafNodeIndex> {
        self.group
            .members()
            .filter(|m| leaf_credential(m).and_then(|c| c.account).as_ref() == Some(account))
            .map(|m| m.index)
            .collect()
    }

    /// The leaves of these installations (32-byte ids) that are in the group.
    pub(super) fn leaves_of_installations(&self, installations: &[Vec<u8>]) -> Vec<LeafNodeIndex> {
        self.group
            .members()
            .filter(|m| installations.iter().any(|i| i.as_slice() == m.signature_key.as_slice()))
            .map(|m| m.index)
            .collect()
    }

    /// Whether an account has an installation in the group.
    pub fn has_account(&self, account: &AccountId) -> bool {
        !self.leaves_of(account).is_empty()
    }
}
