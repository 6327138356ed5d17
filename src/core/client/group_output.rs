//! A [`GroupOutput`] turned into effects: its messages through the outbox, its Welcomes
//! to the joiners' inboxes, its vote requests, events and the conversation's record.

use prost::Message as _;

use super::group::group_info;
use super::group::members_of;
use super::{fx_digest, group_envelope, outbox, Client};
use crate::core::address::{AccountId, ConversationId, InstallationId};
use crate::core::conversation::group::{tree, VoteRequest};
use crate::core::conversation::GroupOutput;
use crate::core::directory::account_submission;
use crate::core::effects::{Effects, Event};
use crate::core::error::Result;
use crate::core::wire::{group_proposal::Request, inbox_v2_frame, EnvelopeV1, InboxV2Frame};

impl Client {
    /// Publishes a group output's messages through the outbox, sends its Welcomes, emits
    /// its events, persists the conversation and sets the next wake-up.
    pub(super) fn apply_group_output(
        &mut self,
        id: &ConversationId,
        mut out: GroupOutput,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<()> {
        // Signed lists that came with Add requests: verified like directory records
        // (a rollback is refused), so the added installations are confirmed.
        for list in std::mem::take(&mut out.lists) {
            let crypto = openmls_traits::OpenMlsProvider::crypto(&self.provider);
            let _ = self.directory.ingest_member_list(&list, crypto);
        }
        if self.directory.bundle(&self.account.id()).is_some_and(|b| b.lamport > self.bundle.lamport) {
            if let Err(e) = self.follow_own_bundle(now_ms, fx) {
                fx.events.push(Event::Error { code: e.code().as_str(), message: e.to_string() });
            }
        }
        // Later-epoch chat that the call made readable (a selection ends a freeze in a
        // message, a timer or a command alike).
        for (sender, reliable, sent_at) in std::mem::take(&mut out.replayed_chat) {
            let more = self.deliver_chat(id, &sender, reliable, sent_at, now_ms)?;
            fx.extend(more);
        }
        for r in std::mem::take(&mut out.vote_requests) {
            if self.votes_by_app {
                fx.events.push(vote_request_event(id, &r));
            } else if let Some(g) = self.groups.get_mut(id) {
                let more = g.cast_vote(
                    &self.provider,
                    &self.installation,
                    &self.credential,
                    r.proposal_id,
                    true,
                    now_ms,
                )?;
                out.publish.extend(more.publish);
            }
        }
        let topic = id.topic().as_str().to_owned();
        let others =
            self.groups.get(id).map(|g| g.credentials().into_iter().map(|c| c.installation).collect());
        let (awaiting, _) = self.ack_set(others.unwrap_or_default());
        for (i, m) in out.publish.into_iter().enumerate() {
            let env = group_envelope(id, m);
            self.remember(&fx_digest(&topic, &env), fx)?;
            let track =
                out.chat_published.iter().find(|(j, _)| *j == i).map(|(_, message_id)| outbox::Track {
                    conversation: id.clone(),
                    message_id: message_id.clone(),
                    awaiting: awaiting.clone(),
                    now: now_ms,
                });
            self.enqueue_tracked(fx, topic.clone(), env, track.as_ref())?;
        }
        let tree_hint = format!("{}{}", id.as_str(), tree::TREE_HINT_SUFFIX);
        for mut sealed in out.trees {
            sealed.add_bundles(&self.provider, self.member_bundles(id))?;
            let env = EnvelopeV1 { conversation_hint: tree_hint.clone(), salt: 0, payload: sealed.frame() }
                .encode_to_vec();
            self.remember(&fx_digest(&topic, &env), fx)?;
            self.enqueue(fx, topic.clone(), env)?;
        }
        for (joiner, welcome) in out.welcomes {
            self.send_welcome(&joiner, welcome, fx)?;
        }
        for why in out.rejected {
            fx.events.push(Event::Error { code: "PROTOCOL", message: why });
        }
        if out.behind {
            self.note_behind(id, now_ms);
        }
        if let Some(g) = self.groups.get(id) {
            if out.members_changed {
                fx.events.push(Event::Members {
                    conversation_id: id.as_str().to_owned(),
                    members: members_of(g, &self.directory),
                });
                fx.events.push(Event::Conversation(group_info(g)));
            }
        }
        self.put_conversation(id, fx)?;
        fx.wake_at = self.next_wake(now_ms);
        Ok(())
    }

    /// The signed bundles this client holds of a group's member accounts (its own too),
    /// encoded as directory records, for the joiners of a commit.
    fn member_bundles(&self, id: &ConversationId) -> Vec<Vec<u8>> {
        let Some(g) = self.groups.get(id) else { return Vec::new() };
        g.members()
            .into_iter()
            .filter_map(|(account, _)| self.directory.bundle(&account).map(account_submission))
            .collect()
    }

    /// Sends a sealed invite (`group::invite`) to a joiner's inbox.
    pub(super) fn send_welcome(
        &mut self,
        joiner: &InstallationId,
        welcome: Vec<u8>,
        fx: &mut Effects,
    ) -> Result<()> {
        let frame =
            InboxV2Frame { payload: Some(inbox_v2_frame::Payload::SealedGroupV2(welcome)) }.encode_to_vec();
        let env = EnvelopeV1 { conversation_hint: joiner.inbox_conversation_id(), salt: 0, payload: frame };
        self.enqueue(fx, joiner.inbox_topic().as_str().to_owned(), env.encode_to_vec())
    }
}

/// The event that puts a permitted proposal to the app's vote hook.
fn vote_request_event(id: &ConversationId, r: &VoteRequest) -> Event {
    let account =
        |b: &[u8]| <[u8; 32]>::try_from(b).map(|a| AccountId::from_bytes(a).to_hex()).unwrap_or_default();
    let (kind, accounts, name, description) = match &r.request {
        Request::Add(a) => ("add", vec![account(&a.account)], None, None),
        Request::Remove(x) => ("remove", vec![account(&x.account)], None, None),
        Request::Leave(x) => ("leave", vec![account(&x.account)], None, None),
        Request::RemoveInstallations(x) => ("remove", vec![account(&x.account)], None, None),
        Request::Metadata(m) => ("rename", Vec::new(), Some(m.name.clone()), Some(m.description.clone())),
    };
    Event::VoteRequest {
        conversation_id: id.as_str().to_owned(),
        proposal_id: r.proposal_id,
        kind,
        by: r.owner.as_ref().map(AccountId::to_hex),
        accounts,
        name,
        description,
    }
}
