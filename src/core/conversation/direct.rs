//! DirectV1: a 1:1 chat as an MLS group of both accounts' installations (PROTOCOL.md §2.7).
//!
//! Owns one MLS group and its reliability channel. Creating it yields the
//! Commit and the Welcome to send; processing inbound MLS messages yields
//! decrypted application bytes with the authenticated sender, applies commits,
//! and ignores past-epoch traffic. Never does I/O: the client routes bytes.

use crate::core::conversation::mls_store::Provider;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_traits::OpenMlsProvider;

use super::mls;
use crate::core::account::{DelegateCredential, InstallationKey};
use crate::core::address::{AccountId, ConversationId, InstallationId};
use crate::core::error::{CoreError, Result};
use crate::core::sds::Channel;
use crate::core::store::ConversationRecord;

/// What an inbound MLS message turned out to be.
#[derive(Debug)]
pub enum Inbound {
    /// Decrypted application bytes from an authenticated member.
    Application {
        /// The sender's credential, checked against its leaf key.
        sender: DelegateCredential,
        /// The plaintext (an encoded `ReliablePayload`).
        plaintext: Vec<u8>,
    },
    /// A commit that was applied; membership may have changed.
    Commit,
    /// Nothing to do (a proposal, or traffic from a past epoch).
    Ignored,
    /// A commit that removed this installation: the chat is over for it. `by` is the
    /// committing installation (a claim the client checks against our own signed list).
    Removed {
        /// The committer.
        by: InstallationId,
    },
    /// A copy of something already processed (our own message, a consumed generation,
    /// an old epoch): what replaying history after a restart produces. State is untouched.
    Replay,
}

/// One DirectV1 conversation (its `Debug` prints no MLS state).
pub struct DirectConversation {
    id: ConversationId,
    group: MlsGroup,
    /// The other account of this chat.
    pub peer: AccountId,
    /// Lamport clock and causal history.
    pub channel: Channel,
    /// Bookkeeping for the conversation list and history.
    pub meta: ConversationMeta,
}

impl std::fmt::Debug for DirectConversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectConversation")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("epoch", &self.group.epoch().as_u64())
            .finish_non_exhaustive()
    }
}

/// Per-conversation bookkeeping that is not protocol state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConversationMeta {
    /// The sequence number the next stored message gets.
    pub next_seq: u64,
    /// Incoming messages not yet read.
    pub unread: u32,
    /// Time of the last message (ms), 0 if none.
    pub last_message_at: u64,
    /// When this installation created or joined it (ms).
    pub created_at: u64,
    /// Started by an account that is not a contact, and not accepted yet.
    pub request: bool,
    /// A preview of the last message (`client::storage::preview`).
    pub last_preview: String,
}

/// The output of creating a conversation: it, the Commit and the Welcome (MLSMessage bytes).
pub type Created = (DirectConversation, Vec<u8>, Vec<u8>);

impl DirectConversation {
    /// Creates the group with `group_id`, adds every key package, merges, and
    /// returns the Commit and the Welcome to send.
    pub fn create(
        provider: &impl OpenMlsProvider,
        key: &InstallationKey,
        me: &DelegateCredential,
        peer: AccountId,
        group_id: [u8; 16],
        key_packages: &[KeyPackage],
    ) -> Result<Created> {
        if key_packages.is_empty() || key_packages.len() > mls::MAX_ADDS_PER_COMMIT {
            return Err(CoreError::InvalidArgument("a direct chat adds 1 to 50 installations".into()));
        }
        let mut group = MlsGroup::new_with_group_id(
            provider,
            key,
            &mls::create_config(),
            GroupId::from_slice(&group_id),
            mls::credential_with_key(me),
        )
        .map_err(CoreError::mls)?;
        let (commit, welcome, _info) =
            group.add_members(provider, key, key_packages).map_err(CoreError::mls)?;
        group.merge_pending_commit(provider).map_err(CoreError::mls)?;
        let commit = commit.tls_serialize_detached().map_err(CoreError::mls)?;
        let welcome = welcome.tls_serialize_detached().map_err(CoreError::mls)?;
        let id = ConversationId::from_group_id(&group_id);
        Ok((
            DirectConversation {
                id,
                group,
                peer,
                channel: Channel::default(),
                meta: ConversationMeta::default(),
            },
            commit,
            welcome,
        ))
    }

    /// Joins from an MLSMessage-framed Welcome (the `group_v1` invite arm).
    /// `me` names our own account, so the peer is the other account in the group.
    pub fn join(provider: &impl OpenMlsProvider, welcome_bytes: &[u8], me: &AccountId) -> Result<Self> {
        let msg = crate::core::conversation::mls::decode_mls_message(welcome_bytes)
            .map_err(|e| CoreError::decode("welcome", e))?;
        let MlsMessageBodyIn::Welcome(welcome) = msg.extract() else {
            return Err(CoreError::decode("welcome", "not a Welcome"));
        };
        let staged = StagedWelcome::new_from_welcome(provider, &mls::join_config(), welcome, None)
            .map_err(mls::welcome_error)?;
        let group = staged.into_group(provider).map_err(CoreError::mls)?;
        let id = ConversationId::from_group_id(group.group_id().as_slice());
        let mut peer = None;
        for m in group.members() {
            let cred = mls::member_credential(&m.credential, m.signature_key.as_slice())?;
            match cred.account {
                Some(a) if &a != me => peer = Some(a),
                _ => {}
            }
        }
        let peer = peer.ok_or(CoreError::Verify("a direct chat needs a peer account"))?;
        Ok(DirectConversation {
            id,
            group,
            peer,
            channel: Channel::default(),
            meta: ConversationMeta::default(),
        })
    }

    /// The conversation id (`hex(GroupId)`).
    pub fn id(&self) -> &ConversationId {
        &self.id
    }

    /// The current MLS epoch.
    pub fn epoch(&self) -> u64 {
        self.group.epoch().as_u64()
    }

    /// Every member's credential.
    pub fn members(&self) -> Vec<DelegateCredential> {
        self.group
            .members()
            .filter_map(|m| mls::member_credential(&m.credential, m.signature_key.as_slice()).ok())
            .collect()
    }

    /// Whether an installation has a leaf in the group.
    pub fn has_installation(&self, id: &InstallationId) -> bool {
        self.group.members().any(|m| m.signature_key.as_slice() == id.as_bytes())
    }

    /// Adds installations of our own account (a linked device) in one commit, merged
    /// at once; returns the Commit and the Welcome (MLSMessage bytes).
    pub fn add_installations(
        &mut self,
        provider: &impl OpenMlsProvider,
        key: &InstallationKey,
        key_packages: &[KeyPackage],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let (commit, welcome, _info) =
            self.group.add_members(provider, key, key_packages).map_err(CoreError::mls)?;
        self.group.merge_pending_commit(provider).map_err(CoreError::mls)?;
        let commit = commit.tls_serialize_detached().map_err(CoreError::mls)?;
        let welcome = welcome.tls_serialize_detached().map_err(CoreError::mls)?;
        Ok((commit, welcome))
    }

    /// Removes every leaf of an installation of our own account in one commit, merged at
    /// once; `None` when it has no leaf here.
    pub fn remove_installation(
        &mut self,
        provider: &impl OpenMlsProvider,
        key: &InstallationKey,
        id: &InstallationId,
    ) -> Result<Option<Vec<u8>>> {
        let leaves: Vec<LeafNodeIndex> = self
            .group
            .members()
            .filter(|m| m.signature_key.as_slice() == id.as_bytes())
            .map(|m| m.index)
            .collect();
        if leaves.is_empty() {
            return Ok(None);
        }
        let (commit, _welcome, _info) =
            self.group.remove_members(provider, key, &leaves).map_err(CoreError::mls)?;
        self.group.merge_pending_commit(provider).map_err(CoreError::mls)?;
        Ok(Some(commit.tls_serialize_detached().map_err(CoreError::mls)?))
    }

    /// A commit that replaces our leaf's HPKE keys (post-compromise security), merged at once.
    pub fn self_update(&mut self, provider: &impl OpenMlsProvider, key: &InstallationKey) -> Result<Vec<u8>> {
        let bundle =
            self.group.self_update(provider, key, LeafNodeParameters::default()).map_err(CoreError::mls)?;
        self.group.merge_pending_commit(provider).map_err(CoreError::mls)?;
        bundle.commit().tls_serialize_detached().map_err(CoreError::mls)
    }

    /// Checks a peer's commit: in a direct chat an account changes only its own
    /// installations (a linked device added, a removed one taken out), and a commit
    /// adds or removes nothing else.
    fn check_commit(&self, committer: &DelegateCredential, staged: &StagedCommit) -> Result<()> {
        let account = committer.account.as_ref().ok_or(CoreError::Verify("a commit from no account"))?;
        for add in staged.add_proposals() {
            let leaf = add.add_proposal().key_package().leaf_node();
            let cred = mls::member_credential(leaf.credential(), leaf.signature_key().as_slice())?;
            if cred.account.as_ref() != Some(account) {
                return Err(CoreError::Verify("a direct-chat commit adds another account's installation"));
            }
        }
        for remove in staged.remove_proposals() {
            let leaf = remove.remove_proposal().removed();
            let member = self
                .group
                .members()
                .find(|m| m.index == leaf)
                .ok_or(CoreError::Verify("a commit removes no member"))?;
            let cred = mls::member_credential(&member.credential, member.signature_key.as_slice())?;
            if cred.account.as_ref() != Some(account) {
                return Err(CoreError::Verify("a direct-chat commit removes another account's installation"));
            }
        }
        Ok(())
    }

    /// Encrypts application bytes to the group; returns MLSMessage bytes.
    pub fn encrypt(
        &mut self,
        provider: &impl OpenMlsProvider,
        key: &InstallationKey,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let out = self.group.create_message(provider, key, plaintext).map_err(CoreError::mls)?;
        out.tls_serialize_detached().map_err(CoreError::mls)
    }

    /// Processes one inbound MLSMessage (TLS bytes). On failure the caller must
    /// restore the provider's storage and call [`DirectConversation::reload`]:
    /// openmls consumes a generation's key before the AEAD check, so a corrupted
    /// copy would otherwise burn the real message's key.
    pub fn process(&mut self, provider: &Provider, bytes: &[u8]) -> Result<Inbound> {
        self.process_inner(provider, bytes)
    }

    /// Reloads the group from the provider's storage (after a rollback).
    pub fn reload(&mut self, provider: &Provider) -> Result<()> {
        let group = MlsGroup::load(provider.storage(), self.group.group_id())
            .map_err(CoreError::mls)?
            .ok_or_else(|| CoreError::StoreCorrupt("an MLS group vanished from the store".into()))?;
        self.group = group;
        Ok(())
    }

    /// The persisted form of this conversation (its MLS state is persisted apart).
    pub fn record(&self) -> ConversationRecord {
        ConversationRecord {
            peer: self.peer.as_bytes().to_vec(),
            ..super::base_record(&self.id, "direct", &self.channel, &self.meta)
        }
    }

    /// Rebuilds a conversation from its record and the MLS state in the provider.
    pub fn restore(provider: &Provider, mut rec: ConversationRecord) -> Result<Self> {
        let peer = <[u8; 32]>::try_from(rec.peer.as_slice())
            .map(AccountId::from_bytes)
            .map_err(|_| CoreError::StoreCorrupt("direct record: peer".into()))?;
        let (id, group, channel, meta) = super::restore_base(provider, &mut rec, &mls::join_config())?;
        Ok(DirectConversation { id, group, peer, channel, meta })
    }

    fn process_inner(&mut self, provider: &Provider, bytes: &[u8]) -> Result<Inbound> {
        let Some(protocol) = mls::inbound(&self.group, bytes)? else { return Ok(Inbound::Ignored) };
        let processed = match self.group.process_message(provider, protocol) {
            Ok(p) => p,
            Err(e) if mls::is_replay(&e) => return Ok(Inbound::Replay),
            Err(e) if mls::is_too_late(&e) => return Err(CoreError::TooLate(format!("{e:?}"))),
            Err(e) => return Err(CoreError::Decrypt(format!("{e:?}"))),
        };
        let sender = mls::sender_credential(&self.group, processed.sender())?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                let sender = sender.ok_or(CoreError::Verify("application message from a non-member"))?;
                Ok(Inbound::Application { sender, plaintext: app.into_bytes() })
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let committer = sender.ok_or(CoreError::Verify("a commit from a non-member"))?;
                self.check_commit(&committer, &staged)?;
                let removed = staged.self_removed();
                self.group.merge_staged_commit(provider, *staged).map_err(CoreError::mls)?;
                Ok(if removed { Inbound::Removed { by: committer.installation } } else { Inbound::Commit })
            }
            _ => Ok(Inbound::Ignored),
        }
    }
}
