//! A call that fails leaves the client as it was (issue 12): not only openmls's storage
//! (put back from the mirror), but every conversation the call touched (a group's
//! governance, candidates, freeze, deferred frames, later-epoch messages, channel; a
//! direct chat's channel and bookkeeping), conversations it created, its outbox
//! entries, the handled-digests it added, messages held for order or for their
//! sender, retries, and joins in progress. A call is bracketed by `begin` and `end` (or
//! `rewind`); what it touches is noted as it is reached (`touch`), so the cost follows
//! what the call changes, not the client's whole state.

use std::collections::BTreeSet;

use super::reliability::RelSlice;
use super::*;
use crate::core::conversation::group::GroupSnapshot;

/// One conversation as it was before the call.
enum Touched {
    Group(Box<GroupSnapshot>, RelSlice),
    Direct(Box<(Channel, ConversationMeta)>, RelSlice),
}

/// What the open call may have changed, as it was.
pub(super) struct Checkpoint {
    /// Nested brackets (a call made from inside another) share the outermost one.
    depth: u32,
    known: BTreeSet<ConversationId>,
    touched: BTreeMap<ConversationId, Touched>,
    next_outbox: u64,
    seen_counter: u64,
    pending: usize,
    joins: Option<joining::Joins>,
    /// Mirror entries a nested call persisted, as they were (put back before openmls's
    /// storage is rolled back to the mirror).
    mirror: HashMap<Vec<u8>, Option<Secret>>,
    /// The account's side, once the call is about to change it (`touch_identity`): the
    /// list, the log, the key package, the open links, and what the directory holds of
    /// our own account (a removal or rotation that fails late must not leave a list
    /// that no chat followed, or a key package whose private key is gone).
    identity: Option<Box<Identity>>,
}

/// The account-level state a call can change, as it was.
struct Identity {
    bundle: DeviceBundle,
    log: AccountLog,
    key_package: KeyPackage,
    added_at: BTreeMap<InstallationId, u64>,
    removed: bool,
    links: Vec<links::OpenLink>,
    own: crate::core::directory::OwnRecords,
}

impl Client {
    /// Opens a bracket (or nests in the open one).
    pub(super) fn begin(&mut self) {
        if let Some(cp) = self.checkpoint.as_mut() {
            cp.depth = cp.depth.saturating_add(1);
            return;
        }
        self.checkpoint = Some(Checkpoint {
            depth: 0,
            known: self.conversations.keys().chain(self.groups.keys()).cloned().collect(),
            touched: BTreeMap::new(),
            next_outbox: self.next_outbox,
            seen_counter: self.seen_counter,
            pending: self.pending.len(),
            joins: None,
            mirror: HashMap::new(),
            identity: None,
        });
    }

    /// Notes that the call is about to change the account's side (once per call is enough).
    pub(super) fn touch_identity(&mut self) {
        if self.checkpoint.as_ref().is_none_or(|cp| cp.identity.is_some()) {
            return;
        }
        let identity = Box::new(Identity {
            bundle: self.bundle.clone(),
            log: self.log.clone(),
            key_package: self.key_package.clone(),
            added_at: self.added_at.clone(),
            removed: self.removed,
            links: self.links.clone(),
            own: self.directory.own_records(&self.account.id()),
        });
        if let Some(cp) = self.checkpoint.as_mut() {
            cp.identity = Some(identity);
        }
    }

    /// Notes that the call is about to change a conversation (once per call is enough).
    pub(super) fn touch(&mut self, id: &ConversationId) {
        let Some(cp) = self.checkpoint.as_ref() else { return };
        if cp.touched.contains_key(id) {
            return;
        }
        let t = if let Some(g) = self.groups.get(id) {
            Touched::Group(Box::new(g.snapshot()), self.rel.slice(id))
        } else if let Some(c) = self.conversations.get(id) {
            Touched::Direct(Box::new((c.channel.clone(), c.meta.clone())), self.rel.slice(id))
        } else {
            return;
        };
        if let Some(cp) = self.checkpoint.as_mut() {
            cp.touched.insert(id.clone(), t);
        }
    }

    /// Notes that the call is about to change the joins in progress.
    pub(super) fn touch_joins(&mut self) {
        if self.checkpoint.as_ref().is_some_and(|cp| cp.joins.is_none()) {
            let joins = self.joins.clone();
            if let Some(cp) = self.checkpoint.as_mut() {
                cp.joins = Some(joins);
            }
        }
    }

    /// Notes a mirror entry's value before `sync_mls` changed it.
    pub(super) fn mirror_changed(&mut self, key: Vec<u8>, old: Option<Secret>) {
        if let Some(cp) = self.checkpoint.as_mut() {
            cp.mirror.entry(key).or_insert(old);
        }
    }

    /// Closes a bracket: what the call did stays.
    pub(super) fn end(&mut self) {
        match self.checkpoint.as_mut() {
            Some(cp) if cp.depth > 0 => cp.depth = cp.depth.saturating_sub(1),
            _ => self.checkpoint = None,
        }
    }

    /// Closes the outermost bracket after a failure: everything it noted is put back.
    /// A nested bracket leaves that to the outermost, which the failure reaches too.
    pub(super) fn rewind(&mut self) {
        match self.checkpoint.as_mut() {
            Some(cp) if cp.depth > 0 => {
                cp.depth = cp.depth.saturating_sub(1);
                return;
            }
            _ => {}
        }
        let cp = self.checkpoint.take();
        let mut mirror_put_back = false;
        if let Some(cp) = &cp {
            for (k, v) in &cp.mirror {
                mirror_put_back = true;
                match v {
                    Some(v) => self.mls_mirror.insert(k.clone(), v.clone()),
                    None => self.mls_mirror.remove(k),
                };
            }
        }
        let touched: Vec<ConversationId> = cp.iter().flat_map(|cp| cp.touched.keys().cloned()).collect();
        self.rollback_mls(mirror_put_back, &touched);
        let Some(cp) = cp else { return };
        self.conversations.retain(|id, _| cp.known.contains(id));
        self.groups.retain(|id, _| cp.known.contains(id));
        for (id, t) in cp.touched {
            match t {
                Touched::Group(s, rel) => {
                    if let Some(g) = self.groups.get_mut(&id) {
                        let _ = g.rewind(&self.provider, *s);
                    }
                    self.rel.put_slice(&id, rel);
                }
                Touched::Direct(direct, rel) => {
                    let (channel, meta) = *direct;
                    if let Some(c) = self.conversations.get_mut(&id) {
                        c.channel = channel;
                        c.meta = meta;
                    }
                    self.rel.put_slice(&id, rel);
                }
            }
        }
        self.outbox.retain(|id, _| *id < cp.next_outbox);
        self.rel.forget_outbox_from(cp.next_outbox);
        self.next_outbox = cp.next_outbox;
        let from = cp.seen_counter;
        self.seen.retain(|_, order| *order < from);
        self.seen_order.retain(|d| self.seen.contains_key(d));
        self.seen_counter = from;
        self.pending.truncate(cp.pending);
        if let Some(joins) = cp.joins {
            self.joins = joins;
        }
        if let Some(identity) = cp.identity {
            let Identity { bundle, log, key_package, added_at, removed, links, own } = *identity;
            self.directory.restore_own_records(&self.account.id(), own);
            (self.bundle, self.log, self.key_package, self.added_at, self.removed, self.links) =
                (bundle, log, key_package, added_at, removed, links);
        }
    }
}

#[cfg(test)]
impl Client {
    /// Runs `f` in a bracket that then fails: what `f` did must all be put back.
    pub(crate) fn fail_after_for_tests(&mut self, f: impl FnOnce(&mut Self)) {
        self.begin();
        f(self);
        self.rewind();
    }

    /// This installation's identity id (the SDS sender id).
    pub(crate) fn identity_id_for_tests(&self) -> String {
        self.credential.identity_id()
    }

    /// A direct chat's Lamport clock.
    pub(crate) fn lamport_for_tests(&self, id: &str) -> i32 {
        let id = ConversationId::parse(id).ok();
        id.and_then(|id| self.conversations.get(&id)).map_or(0, |c| c.channel.parts().0)
    }

    /// A group's state, to make a member misbehave.
    pub(crate) fn group_mut_for_tests(
        &mut self,
        id: &str,
    ) -> Option<&mut crate::core::conversation::GroupConversation> {
        self.groups.get_mut(&ConversationId::parse(id).ok()?)
    }

    /// A group's state (read-only).
    pub(crate) fn group_for_tests(&self, id: &str) -> Option<&crate::core::conversation::GroupConversation> {
        self.groups.get(&ConversationId::parse(id).ok()?)
    }

    /// How often openmls's storage was put back.
    pub(crate) fn mls_rollbacks_for_tests(&self) -> u64 {
        self.mls_rollbacks
    }

    /// A group's record as it would be persisted now (to compare states).
    pub(crate) fn group_record_for_tests(&self, id: &str) -> Option<Vec<u8>> {
        let id = ConversationId::parse(id).ok()?;
        let mut rec = self.groups.get(&id)?.record();
        rec.held = self.held_records(&id);
        Some(encode(&rec))
    }
}
