//! DirectV1: a 1:1 chat as an MLS group of both accounts' installations (PROTOCOL.md §2.7).
//!
//! Owns one MLS group and its reliability channel. Creating it yields the
//! Commit and the Welcome to send; processing inbound MLS messages yields
//! decrypted application bytes with the authenticated sender, applies commits,
//! and ignores past-epoch traffic. Never does I/O: the client routes bytes.

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_libcrux_crypto::Provider;
use openmls_traits::OpenMlsProvider;

use super::mls;
use crate::core::account::{DelegateCredential, InstallationKey};
use crate::core::address::{AccountId, ConversationId};
use crate::core::error::{CoreError, Result};
use crate::core::sds::Channel;

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
}

/// One DirectV1 conversation.
#[derive(Debug)]
pub struct DirectConversation {
    id: ConversationId,
    group: MlsGroup,
    /// The other account of this chat.
    pub peer: AccountId,
    /// Lamport clock and causal history.
    pub channel: Channel,
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
        Ok((DirectConversation { id, group, peer, channel: Channel::default() }, commit, welcome))
    }

    /// Joins from an MLSMessage-framed Welcome (the `group_v1` invite arm).
    /// `me` names our own account, so the peer is the other account in the group.
    pub fn join(provider: &impl OpenMlsProvider, welcome_bytes: &[u8], me: &AccountId) -> Result<Self> {
        let msg = MlsMessageIn::tls_deserialize_exact(welcome_bytes)
            .map_err(|e| CoreError::decode("welcome", e))?;
        let MlsMessageBodyIn::Welcome(welcome) = msg.extract() else {
            return Err(CoreError::decode("welcome", "not a Welcome"));
        };
        let staged = StagedWelcome::new_from_welcome(provider, &mls::join_config(), welcome, None)
            .map_err(CoreError::mls)?;
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
        Ok(DirectConversation { id, group, peer, channel: Channel::default() })
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

    /// Processes one inbound MLSMessage (TLS bytes). On any failure the group is
    /// left exactly as it was: openmls consumes a generation's key before the
    /// AEAD check (a corrupted copy would burn the real message's key), so the
    /// state is snapshotted and restored. The storage issue replaces the full
    /// snapshot with a discarded write journal.
    pub fn process(&mut self, provider: &Provider, bytes: &[u8]) -> Result<Inbound> {
        let snapshot = provider.storage().values.read().map_err(CoreError::mls)?.clone();
        let result = self.process_inner(provider, bytes);
        if result.is_err() {
            *provider.storage().values.write().map_err(CoreError::mls)? = snapshot;
            if let Ok(Some(group)) = MlsGroup::load(provider.storage(), self.group.group_id()) {
                self.group = group;
            }
        }
        result
    }

    fn process_inner(&mut self, provider: &Provider, bytes: &[u8]) -> Result<Inbound> {
        let msg =
            MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| CoreError::decode("mls message", e))?;
        let protocol = msg
            .try_into_protocol_message()
            .map_err(|e| CoreError::decode("mls message", format!("{e:?}")))?;
        if protocol.group_id() != self.group.group_id() {
            return Err(CoreError::Verify("message for another group"));
        }
        // libchat drops past-epoch traffic (the creator's own commit reaches a
        // joiner that already holds the next epoch); that is not an error.
        if protocol.epoch() < self.group.epoch() && protocol.content_type() != ContentType::Application {
            return Ok(Inbound::Ignored);
        }
        let processed = self
            .group
            .process_message(provider, protocol)
            .map_err(|e| CoreError::Decrypt(format!("{e:?}")))?;
        let sender = match processed.sender() {
            Sender::Member(idx) => {
                let member = self
                    .group
                    .members()
                    .find(|m| m.index == *idx)
                    .ok_or(CoreError::Verify("sender is not a member"))?;
                Some(mls::member_credential(&member.credential, member.signature_key.as_slice())?)
            }
            _ => None,
        };
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                let sender = sender.ok_or(CoreError::Verify("application message from a non-member"))?;
                Ok(Inbound::Application { sender, plaintext: app.into_bytes() })
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                self.group.merge_staged_commit(provider, *staged).map_err(CoreError::mls)?;
                Ok(Inbound::Commit)
            }
            _ => Ok(Inbound::Ignored),
        }
    }
}
