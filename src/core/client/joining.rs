//! Joining a group from a Welcome whose ratchet tree travels apart (`group::tree`): the
//! Welcome is held (and persisted) with its opened ticket, the group topic is followed,
//! and the join happens when the sealed tree the ticket names comes in. What the group
//! topic carries meanwhile is kept and handled right after the join.

use std::collections::VecDeque;

use openmls::prelude::RatchetTreeIn;
use openmls_traits::OpenMlsProvider as _;
use prost::Message as _;

use super::group::group_info;
use super::{Client, ConversationId, ConversationRecord, CoreError, Effects, Event, Result, Store};
use crate::core::conversation::group::tree::{self, Ticket};
use crate::core::conversation::GroupConversation;
use crate::core::store::encode;
use crate::core::wire::MemberWelcome;

/// Most Welcomes held at once; the oldest goes first (a losing candidate's Welcome never
/// gets a tree, and anyone can seal a ticket to a published init key).
const MAX_JOINS: usize = 16;
/// Most group-topic envelopes kept for groups being joined, and their total size.
const MAX_HELD: usize = 2048;
const MAX_HELD_BYTES: usize = 32 << 20;
/// The record kind of a held Welcome.
pub(super) const PENDING_KIND: &str = "pending-group";

/// A Welcome waiting for its tree.
#[derive(Debug, Clone)]
struct Join {
    id: ConversationId,
    welcome: MemberWelcome,
    ticket: Ticket,
}

/// The client's joins in progress.
#[derive(Debug, Default, Clone)]
pub(super) struct Joins {
    waiting: Vec<Join>,
    held: VecDeque<(ConversationId, String, Vec<u8>, u64)>,
    held_bytes: usize,
    replay: Vec<(String, Vec<u8>, u64)>,
}

impl Joins {
    /// Whether a Welcome to this group waits for its tree.
    pub(super) fn awaits(&self, id: &ConversationId) -> bool {
        self.waiting.iter().any(|j| j.id == *id)
    }

    /// Keeps a group-topic envelope until the join (bounded; the oldest goes first).
    pub(super) fn hold(&mut self, id: &ConversationId, topic: &str, payload: &[u8], sent_at: u64) {
        let id = id.clone();
        self.held_bytes = self.held_bytes.saturating_add(payload.len());
        self.held.push_back((id, topic.to_owned(), payload.to_vec(), sent_at));
        while self.held.len() > MAX_HELD || self.held_bytes > MAX_HELD_BYTES {
            match self.held.pop_front() {
                Some((_, _, p, _)) => self.held_bytes = self.held_bytes.saturating_sub(p.len()),
                None => break,
            }
        }
    }

    /// What to handle now that a join happened.
    pub(super) fn take_replay(&mut self) -> Vec<(String, Vec<u8>, u64)> {
        std::mem::take(&mut self.replay)
    }

    fn joined(&mut self, id: &ConversationId) -> Vec<Join> {
        let (gone, keep): (Vec<Join>, Vec<Join>) = self.waiting.drain(..).partition(|j| j.id == *id);
        self.waiting = keep;
        let (mine, rest): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|(h, ..)| h == id);
        self.held = rest.into();
        self.held_bytes = self.held.iter().map(|(_, _, p, _)| p.len()).sum();
        self.replay.extend(mine.into_iter().map(|(_, t, p, s)| (t, p, s)));
        gone
    }
}

fn pending_key(ticket: &Ticket) -> Vec<u8> {
    [b"pending:".as_slice(), &ticket.digest].concat()
}

impl Client {
    /// A Welcome to a group (`group_v2` of our inbox). With a tree ticket it is held until
    /// the tree comes; without one (the tree inside) it is joined at once.
    pub(super) fn join_group(&mut self, welcome: &[u8], now_ms: u64) -> Result<Option<Effects>> {
        let Ok(mw) = MemberWelcome::decode(welcome) else { return Ok(None) };
        if mw.tree_ticket.is_empty() {
            return self.finish_join(&mw, None, now_ms);
        }
        let ticket = match tree::open_ticket(&self.provider, &mw) {
            Ok(t) => t,
            // For a key package we do not hold: not for us to act on.
            Err(CoreError::NotForUs) => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = ConversationId::from_group_id(&ticket.group_id);
        let waiting = self.joins.waiting.iter().any(|j| j.ticket.digest == ticket.digest);
        if self.groups.contains_key(&id) || waiting {
            return Ok(Some(Effects::default()));
        }
        let mut fx = Effects { subscribe: vec![id.topic().as_str().to_owned()], ..Effects::default() };
        if self.joins.waiting.len() >= MAX_JOINS {
            let old = self.joins.waiting.remove(0);
            fx.store.push(self.cipher.delete(Store::Conversations, &pending_key(&old.ticket)));
        }
        let rec = ConversationRecord {
            id: id.as_str().to_owned(),
            kind: PENDING_KIND.to_owned(),
            group_state: welcome.to_vec(),
            ..ConversationRecord::default()
        };
        fx.store.push(self.cipher.put(
            self.rng.as_mut(),
            Store::Conversations,
            &pending_key(&ticket),
            &encode(&rec),
        )?);
        self.joins.waiting.push(Join { id, welcome: mw, ticket });
        Ok(Some(fx))
    }

    /// A held Welcome again after a restart (its ticket opens with the restored key package).
    pub(super) fn restore_join(&mut self, rec: &ConversationRecord, fx: &mut Effects) {
        let Ok(mw) = MemberWelcome::decode(rec.group_state.as_slice()) else { return };
        let Ok(ticket) = tree::open_ticket(&self.provider, &mw) else { return };
        let id = ConversationId::from_group_id(&ticket.group_id);
        fx.subscribe.push(id.topic().as_str().to_owned());
        self.joins.waiting.push(Join { id, welcome: mw, ticket });
    }

    /// A sealed tree on a group topic: the join it completes, if we wait for it. Members
    /// ignore it.
    pub(super) fn handle_tree(
        &mut self,
        id: &ConversationId,
        frame: &[u8],
        now_ms: u64,
    ) -> Result<Option<Effects>> {
        if self.groups.contains_key(id) {
            return Ok(Some(Effects::default()));
        }
        let frame = tree::parse(frame)?;
        let digest = tree::digest_of(&frame);
        let Some(join) = self.joins.waiting.iter().find(|j| j.id == *id && j.ticket.digest == digest) else {
            return Ok(None);
        };
        let (tree, bundles) = tree::open_tree(&frame, &join.ticket)?;
        let welcome = join.welcome.clone();
        // Members' bundles, verified like any directory record; one that fails is skipped.
        for b in bundles {
            let _ = self.directory.ingest_member_list(&b, self.provider.crypto());
        }
        let Some(mut fx) = self.finish_join(&welcome, Some(tree), now_ms)? else { return Ok(None) };
        for j in self.joins.joined(id) {
            fx.store.push(self.cipher.delete(Store::Conversations, &pending_key(&j.ticket)));
        }
        Ok(Some(fx))
    }

    fn finish_join(
        &mut self,
        mw: &MemberWelcome,
        tree: Option<RatchetTreeIn>,
        now_ms: u64,
    ) -> Result<Option<Effects>> {
        let (mut g, inviter) = match GroupConversation::join(&self.provider, mw, tree) {
            Ok(joined) => joined,
            Err(CoreError::AlreadyJoined) => return Ok(Some(Effects::default())),
            // A Welcome of a losing candidate (or for someone else): not for us to act on.
            Err(CoreError::NotForUs) => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = g.id().clone();
        if self.groups.contains_key(&id) {
            return Ok(Some(Effects::default()));
        }
        // Whoever signed the Welcome let us in: a blocked account's invite is dropped
        // (rewound by the caller: no conversation appears, nothing is told).
        if inviter.is_some_and(|c| self.blocked(c.account.as_ref(), std::slice::from_ref(&c.installation))) {
            return Err(CoreError::Blocked);
        }
        g.meta.created_at = now_ms;
        let own = self.account.id();
        g.meta.request = !g.members().iter().any(|(a, ins)| {
            *a != own && self.is_contact(a) && ins.iter().all(|i| self.directory.confirms(a, i))
        });
        let mut fx = Effects {
            subscribe: vec![id.topic().as_str().to_owned()],
            events: vec![Event::Conversation(group_info(&g))],
            ..Effects::default()
        };
        fx.events.push(Event::Members {
            conversation_id: id.as_str().to_owned(),
            members: super::group::members_of(&g, &self.directory),
        });
        self.groups.insert(id.clone(), g);
        self.joined_conversation(&id, &mut fx)?;
        self.put_conversation(&id, &mut fx)?;
        fx.wake_at = self.next_wake(now_ms);
        Ok(Some(fx))
    }
}
