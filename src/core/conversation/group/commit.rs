//! The commit side of a group: the plan every member derives from the approved queue,
//! what a staged commit does, minting our candidate, collecting peers' candidates, the
//! selection and merge (PROTOCOL.md §3.6), and the catch-up of later epochs that attests
//! a candidate.

use super::attest::Attested;
use super::*;

/// What a commit does, in accounts: compared with what was voted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Effect {
    pub(super) adds: BTreeSet<AccountId>,
    pub(super) removes: BTreeSet<AccountId>,
    /// Installations removed while their account stays (a removed or revoked device).
    pub(super) removed: BTreeSet<InstallationId>,
    pub(super) metadata: Option<Metadata>,
}

/// What removing `leaves` does, in accounts (every leaf of the account goes) and in
/// installations (some of its leaves go): the plan and a staged commit say it alike.
fn removal_effect(
    group: &MlsGroup,
    leaves: &BTreeSet<LeafNodeIndex>,
) -> (BTreeSet<AccountId>, BTreeSet<InstallationId>) {
    let (mut accounts, mut installations) = (BTreeSet::new(), BTreeSet::new());
    let members: Vec<_> = group.members().filter_map(|m| Some((m.index, leaf_credential(&m)?))).collect();
    for (_, cred) in members.iter().filter(|(i, _)| leaves.contains(i)) {
        let Some(account) = &cred.account else { continue };
        let all = members
            .iter()
            .filter(|(_, c)| c.account.as_ref() == Some(account))
            .all(|(i, _)| leaves.contains(i));
        if all {
            accounts.insert(account.clone());
        } else {
            installations.insert(cred.installation.clone());
        }
    }
    (accounts, installations)
}

/// The next commit, as every member derives it from the approved queue.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) effect: Effect,
    pub(super) key_packages: Vec<KeyPackage>,
    pub(super) remove_leaves: Vec<LeafNodeIndex>,
    pub(super) ids: Vec<u32>,
    pub(super) removes: Vec<AccountId>,
}

#[derive(Debug)]
pub(super) struct Candidate {
    pub(super) key: CandidateKey,
    pub(super) committer: Vec<u8>,
    pub(super) effect: Option<Effect>,
    pub(super) staged: Box<StagedCommit>,
}

#[derive(Debug, Clone)]
pub(super) struct Joiner {
    pub(super) installation: InstallationId,
    pub(super) kp_ref: Vec<u8>,
    pub(super) init_key: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct OwnCandidate {
    pub(super) commit: Vec<u8>,
    pub(super) welcome: Option<Vec<u8>>,
    /// Each joining installation with its key package's reference (its entry in the
    /// Welcome) and init key (what its tree ticket is sealed to).
    pub(super) joiners: Vec<Joiner>,
    pub(super) ids: Vec<u32>,
    pub(super) actions: usize,
}

/// The number of governance actions a commit carries (candidate rule 1).
pub(super) fn effect_size(e: &Effect) -> usize {
    e.adds
        .len()
        .saturating_add(e.removes.len())
        .saturating_add(e.removed.len())
        .saturating_add(usize::from(e.metadata.is_some()))
}

impl GroupConversation {
    /// The next commit as the approved queue defines it.
    pub(super) fn plan(&self, provider: &Provider) -> Plan {
        let mut plan = Plan::default();
        for a in &self.gov.approved {
            let Some(request) = &a.proposal.request else { continue };
            match request {
                Request::Add(add) => {
                    let Ok(acct) = <[u8; 32]>::try_from(add.account.as_slice()).map(AccountId::from_bytes)
                    else {
                        plan.ids.push(a.proposal.proposal_id);
                        continue;
                    };
                    // Installations already in the group are not added again: an Add for a
                    // member's account brings its newly linked installations.
                    let kps: Vec<KeyPackage> = add
                        .key_packages
                        .iter()
                        .filter_map(|k| parse_key_package(k, provider.crypto()).ok())
                        .filter(|kp| {
                            let key = kp.leaf_node().signature_key().as_slice();
                            !self.group.members().any(|m| m.signature_key.as_slice() == key)
                        })
                        .collect();
                    if plan.key_packages.len().saturating_add(kps.len()) > MAX_ADDS && !plan.ids.is_empty() {
                        break;
                    }
                    if !plan.effect.adds.contains(&acct) && !kps.is_empty() {
                        plan.effect.adds.insert(acct);
                        plan.key_packages.extend(kps);
                    }
                }
                Request::Remove(r) | Request::Leave(r) => {
                    if let Ok(acct) = <[u8; 32]>::try_from(r.account.as_slice()).map(AccountId::from_bytes) {
                        let leaves = self.leaves_of(&acct);
                        if !leaves.is_empty() && plan.effect.removes.insert(acct.clone()) {
                            plan.remove_leaves.extend(leaves);
                            plan.removes.push(acct);
                        }
                    }
                }
                Request::RemoveInstallations(r) => {
                    let gone: Vec<LeafNodeIndex> = self
                        .leaves_of_installations(&r.installations)
                        .into_iter()
                        .filter(|i| !plan.remove_leaves.contains(i))
                        .collect();
                    plan.remove_leaves.extend(gone);
                }
                Request::Metadata(m) => plan.effect.metadata = Metadata::new(&m.name, &m.description).ok(),
            }
            plan.ids.push(a.proposal.proposal_id);
        }
        let leaves: BTreeSet<LeafNodeIndex> = plan.remove_leaves.iter().copied().collect();
        (plan.effect.removes, plan.effect.removed) = removal_effect(&self.group, &leaves);
        plan
    }

    /// Everything open or approved, as one effect (what an attested commit may carry).
    pub(super) fn proposed_effect(&self, provider: &Provider) -> Effect {
        let mut e = Effect::default();
        let requests =
            self.gov.approved.iter().map(|a| &a.proposal).chain(self.gov.open.values().map(|o| &o.proposal));
        for p in requests {
            let acct = |b: &[u8]| <[u8; 32]>::try_from(b).ok().map(AccountId::from_bytes);
            match &p.request {
                Some(Request::Add(a)) => {
                    let ok = a.key_packages.iter().any(|k| parse_key_package(k, provider.crypto()).is_ok());
                    if let Some(x) = acct(&a.account).filter(|_| ok) {
                        e.adds.insert(x);
                    }
                }
                Some(Request::Remove(r) | Request::Leave(r)) => {
                    if let Some(x) = acct(&r.account) {
                        e.removes.insert(x);
                    }
                }
                Some(Request::RemoveInstallations(r)) => {
                    let leaves: BTreeSet<LeafNodeIndex> =
                        self.leaves_of_installations(&r.installations).into_iter().collect();
                    let (accounts, installations) = removal_effect(&self.group, &leaves);
                    e.removes.extend(accounts);
                    e.removed.extend(installations);
                }
                Some(Request::Metadata(m)) => e.metadata = Metadata::new(&m.name, &m.description).ok(),
                None => {}
            }
        }
        e
    }

    /// After an attested commit: the proposals it carried are done, wherever our tally was.
    pub(super) fn settle(&mut self, effect: &Effect) {
        let carried = |p: &GroupProposal| match &p.request {
            Some(Request::Add(a)) => <[u8; 32]>::try_from(a.account.as_slice())
                .is_ok_and(|b| effect.adds.contains(&AccountId::from_bytes(b))),
            Some(Request::Remove(r) | Request::Leave(r)) => <[u8; 32]>::try_from(r.account.as_slice())
                .is_ok_and(|b| effect.removes.contains(&AccountId::from_bytes(b))),
            Some(Request::RemoveInstallations(r)) => {
                r.installations.iter().all(|i| {
                    <[u8; 32]>::try_from(i.as_slice())
                        .is_ok_and(|b| effect.removed.contains(&InstallationId::from_bytes(b)))
                }) || <[u8; 32]>::try_from(r.account.as_slice())
                    .is_ok_and(|b| effect.removes.contains(&AccountId::from_bytes(b)))
            }
            Some(Request::Metadata(_)) => effect.metadata.is_some(),
            None => false,
        };
        let done: Vec<u32> = self
            .gov
            .open
            .values()
            .map(|o| &o.proposal)
            .chain(self.gov.approved.iter().map(|a| &a.proposal))
            .filter(|p| carried(p))
            .map(|p| p.proposal_id)
            .collect();
        for id in &done {
            self.gov.open.remove(id);
            self.gov.decided.push(*id);
        }
        self.gov.committed(&done);
    }

    /// Processes the kept later-epoch messages that the current epoch can now read.
    pub(super) fn replay_future(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        loop {
            let epoch = self.epoch();
            let Some(pos) = self.future.iter().position(|(e, _, _)| *e == epoch) else { break };
            let (_, bytes, sent_at) = self.future.remove(pos);
            // A message that no longer processes is dropped, as it would have been live.
            if let Ok(more) = self.process(provider, key, me, &bytes, sent_at, now) {
                out.absorb(more, sent_at);
            }
            if self.left {
                break;
            }
        }
        self.future.retain(|(e, _, _)| *e > self.group.epoch().as_u64());
        Ok(())
    }

    /// What a staged commit does, or `None` if it does something no vote can ask for,
    /// including adding a key package that no approved request, or valid open one,
    /// carried (a committer cannot swap in another installation under a voted account,
    /// nor slip in one from an invalid request of its own).
    pub(super) fn effect_of(&self, provider: &Provider, staged: &StagedCommit) -> Option<Effect> {
        let approved = self.gov.approved.iter().map(|a| (&a.proposal, true));
        let open = self.gov.open.values().map(|o| (&o.proposal, false));
        let requested: BTreeSet<&[u8]> = approved
            .chain(open)
            .filter_map(|(p, approved)| match &p.request {
                Some(Request::Add(a)) if approved || self.valid_add(provider, a) => {
                    Some(a.key_packages.iter())
                }
                _ => None,
            })
            .flatten()
            .map(Vec::as_slice)
            .collect();
        for add in staged.add_proposals() {
            let kp = add.add_proposal().key_package().tls_serialize_detached().ok()?;
            if !requested.contains(kp.as_slice()) {
                return None;
            }
        }
        Self::effect_in(&self.group, staged)
    }

    /// What `staged` does to `group`, in accounts (`None`: not a governance commit).
    pub(super) fn effect_in(group: &MlsGroup, staged: &StagedCommit) -> Option<Effect> {
        if staged.update_proposals().next().is_some() || staged.psk_proposals().next().is_some() {
            return None;
        }
        let mut e = Effect::default();
        for add in staged.add_proposals() {
            e.adds.insert(account_of(add.add_proposal().key_package())?);
        }
        let mut leaves = BTreeSet::new();
        for r in staged.remove_proposals() {
            let idx = r.remove_proposal().removed();
            let m = group.members().find(|m| m.index == idx)?;
            leaf_credential(&m)?.account?;
            leaves.insert(idx);
        }
        (e.removes, e.removed) = removal_effect(group, &leaves);
        // Beside the metadata, a commit may change no group-context extension, except to
        // add the required capabilities of a group created without them.
        let others = other_extensions(staged.group_context().extensions());
        if others != other_extensions(group.extensions())
            && others != other_extensions(&metadata_extensions(&Metadata::default()).ok()?)
        {
            return None;
        }
        let next =
            staged.group_context().extensions().unknown(mls::GROUP_METADATA_EXTENSION).map(|x| x.0.clone());
        let now = group.extensions().unknown(mls::GROUP_METADATA_EXTENSION).map(|x| x.0.clone());
        if next != now {
            e.metadata = Some(Metadata::decode(&next?).ok()?);
        }
        Some(e)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_candidate(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        committer: DelegateCredential,
        staged: Box<StagedCommit>,
        bytes: &[u8],
        live: bool,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        let stewards = self.stewards();
        let id = member_id(&committer);
        // A member's commit may come from one that reached recovery mode before us (L3:
        // anyone commits), or that we read back after being away: once approved work is
        // past its commit window, or when it commits exactly our approved work, it is a
        // candidate, which the selection checks like any other. Refused, it would leave
        // us an epoch behind for good while the others merged it.
        let effect = self.effect_of(provider, &staged);
        let overdue = self.gov.commit_due().is_some_and(|t| now >= t);
        let approved_work =
            || effect.as_ref().is_some_and(|e| effect_size(e) > 0 && *e == self.plan(provider).effect);
        if !self.gov.recovery && !overdue && !self.steward_of_some_round(&id) && !approved_work() {
            self.penalise(&id, ScoreEvent::MisbehavingCommit);
            out.rejected.push("a commit from a member who is not a steward of this epoch".into());
            return Ok(());
        }
        let actions = effect.as_ref().map_or(0, effect_size);
        // The epoch steward of round 0: what every member agrees on, whatever its round.
        let epoch_steward = self.stewards_of_round(0).first() == Some(&id);
        let key_ = CandidateKey::new(actions, epoch_steward, id.clone(), bytes);
        self.candidates.retain(|c| c.committer != id);
        self.candidates.push(Candidate { key: key_, committer: id, effect, staged });
        self.freeze_until.get_or_insert(now.saturating_add(self.gov.config.freeze_duration));
        // A peer's candidate moves every steward into the freeze, and each mints its own (§3.6).
        if self.own.is_none() && live {
            self.mint(provider, key, me, now, out)?;
            if self.own.is_some() {
                return Ok(());
            }
        }
        if self.all_candidates_in(&stewards) {
            self.select(provider, key, me, now, out)?;
        }
        Ok(())
    }

    /// Every listed steward's candidate is in (in recovery, anyone may commit: wait for the freeze).
    pub(super) fn all_candidates_in(&self, stewards: &[Vec<u8>]) -> bool {
        let have = self.candidates.len().saturating_add(usize::from(self.own.is_some()));
        !self.gov.recovery && have >= stewards.len()
    }

    pub(super) fn build_commit(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        key_packages: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        metadata: Option<&Metadata>,
    ) -> Result<OwnCandidate> {
        let mut joiners = Vec::new();
        for kp in &key_packages {
            let leaf = kp.leaf_node();
            let Ok(c) = mls::member_credential(leaf.credential(), leaf.signature_key().as_slice()) else {
                continue;
            };
            let kp_ref = kp.hash_ref(provider.crypto()).map_err(CoreError::mls)?;
            joiners.push(Joiner {
                installation: c.installation,
                kp_ref: kp_ref.as_slice().to_vec(),
                init_key: kp.hpke_init_key().as_slice().to_vec(),
            });
        }
        let mut builder = self
            .group
            .commit_builder()
            .consume_proposal_store(false)
            .propose_adds(key_packages)
            .propose_removals(removes);
        if let Some(m) = metadata {
            builder =
                builder.propose_group_context_extensions(metadata_extensions(m)?).map_err(CoreError::mls)?;
        }
        let bundle = builder
            .load_psks(provider.storage())
            .map_err(CoreError::mls)?
            .build(provider.rand(), provider.crypto(), key, |_| true)
            .map_err(CoreError::mls)?
            .stage_commit(provider)
            .map_err(CoreError::mls)?;
        let commit = bundle.commit().tls_serialize_detached().map_err(CoreError::mls)?;
        let welcome = bundle
            .to_welcome_msg()
            .map(|w| w.tls_serialize_detached())
            .transpose()
            .map_err(CoreError::mls)?;
        Ok(OwnCandidate { commit, welcome, joiners, ids: Vec::new(), actions: 0 })
    }

    /// Mints our candidate when we are a steward (or in recovery) and there is work.
    pub(super) fn mint(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        let stewards = self.stewards();
        if self.own.is_some() || self.group.pending_commit().is_some() {
            return Ok(());
        }
        if !self.gov.recovery && !stewards.contains(&member_id(me)) {
            return Ok(());
        }
        let plan = self.plan(provider);
        if plan.ids.is_empty() {
            return Ok(());
        }
        if plan.effect == Effect::default() {
            // Everything approved is a no-op now (adds of members, removes of non-members).
            self.gov.committed(&plan.ids);
            return Ok(());
        }
        // A steward never commits its own removal (§3.6): another one will.
        if me.account.as_ref().is_some_and(|a| plan.removes.contains(a))
            || plan.effect.removed.contains(&me.installation)
        {
            return Ok(());
        }
        let mut own = self.build_commit(
            provider,
            key,
            plan.key_packages,
            plan.remove_leaves,
            plan.effect.metadata.as_ref(),
        )?;
        own.ids = plan.ids;
        own.actions = effect_size(&plan.effect);
        out.publish.push(own.commit.clone());
        self.own = Some(own);
        self.freeze_until.get_or_insert(now.saturating_add(self.gov.config.freeze_duration));
        if self.all_candidates_in(&stewards) {
            self.select(provider, key, me, now, out)?;
        }
        Ok(())
    }

    /// Picks the winning candidate, merges it, and sends what waited on it.
    pub(super) fn select(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        self.freeze_until = None;
        self.trials = 0;
        let plan = self.plan(provider);
        let round0 = self.stewards_of_round(0);
        let mut valid: Vec<(CandidateKey, Option<usize>)> = Vec::new();
        let attested = self.attested.take();
        let proposed = self.proposed_effect(provider);
        let mut broken = Vec::new();
        for (i, c) in self.candidates.iter().enumerate() {
            let within = |e: &Effect| {
                e != &Effect::default()
                    && e.adds.is_subset(&proposed.adds)
                    && e.removes.is_subset(&proposed.removes)
                    && e.removed.is_subset(&proposed.removed)
                    && (e.metadata.is_none() || e.metadata == proposed.metadata)
            };
            // Attested: only the candidate the traffic proved taken, if it does only what
            // was proposed. Otherwise: every candidate that commits exactly the plan.
            let ok = match &attested {
                Some(Attested::Peer(h)) if *h != c.key.commit_hash => continue,
                Some(Attested::Own) => continue,
                Some(Attested::Peer(_)) => c.effect.as_ref().is_some_and(within),
                None => c.effect.as_ref() == Some(&plan.effect),
            };
            if ok {
                valid.push((c.key.clone(), Some(i)));
            } else {
                broken.push(c.committer.clone());
            }
        }
        for committer in broken {
            self.penalise(&committer, ScoreEvent::BrokenMlsProposal);
            out.rejected.push("a commit whose proposals are not the approved ones".into());
        }
        let own_allowed = matches!(attested, None | Some(Attested::Own));
        if let Some(own) = self.own.as_ref().filter(|_| own_allowed) {
            let by_epoch_steward = round0.first() == Some(&member_id(me));
            valid.push((CandidateKey::new(own.actions, by_epoch_steward, member_id(me), &own.commit), None));
        }
        valid.sort_by(|a, b| a.0.cmp(&b.0));
        let Some((winner, source)) = valid.first().cloned() else {
            self.candidates.clear();
            return Ok(());
        };
        let candidates = std::mem::take(&mut self.candidates);
        let own = self.own.take();
        for (k, _) in valid.iter().skip(1) {
            if self.steward_of_some_round(&k.steward) {
                self.penalise(&k.steward, ScoreEvent::HonestCommitAttempt);
            }
        }
        self.penalise(&winner.steward, ScoreEvent::SuccessfulCommit);
        match source {
            None => {
                self.group.merge_pending_commit(provider).map_err(CoreError::mls)?;
                if let Some(own) = &own {
                    self.gov.committed(&own.ids);
                    self.send_welcomes(provider, key, own, out)?;
                }
            }
            Some(i) => {
                if self.group.pending_commit().is_some() {
                    self.group.clear_pending_commit(provider.storage()).map_err(CoreError::mls)?;
                }
                let Some(c) = candidates.into_iter().nth(i) else { return Ok(()) };
                let removed = c.staged.self_removed();
                let effect = c.effect.clone().unwrap_or_default();
                self.group.merge_staged_commit(provider, *c.staged).map_err(CoreError::mls)?;
                self.gov.committed(&plan.ids);
                if attested.is_some() {
                    self.settle(&effect);
                }
                if removed {
                    self.left = true;
                    self.deferred.clear();
                }
            }
        }
        out.members_changed = true;
        out.left = self.left;
        if !self.left {
            for frame in std::mem::take(&mut self.deferred) {
                let msg = self.group.create_message(provider, key, &frame).map_err(CoreError::mls)?;
                out.publish.push(msg.tls_serialize_detached().map_err(CoreError::mls)?);
                if let Ok(GroupAppFrame { body: Some(Body::Chat(p)) }) =
                    GroupAppFrame::decode(frame.as_slice())
                {
                    out.chat_published.push((out.publish.len().saturating_sub(1), p.message_id));
                }
            }
        }
        self.replay_future(provider, key, me, now, out)
    }
}
