//! Proposals and votes (PROTOCOL.md §3.2, §3.4): opening one with our own YES, checking
//! what a member asks for, and the SDK's voting policy (issue 12): NO on a request that
//! cannot be done or that the group's permissions do not allow its owner; a permitted
//! one is put to the app's vote hook if it has one (`VoteRequest`), else YES. A member's
//! proposals beyond its allowance (`Governance::allow`) are not opened at all.

use super::*;

impl GroupConversation {
    /// Opens a proposal with our own YES and sends it to the group.
    pub fn propose(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        proposal: GroupProposal,
        now: u64,
    ) -> Result<GroupOutput> {
        if let Some(request) = &proposal.request {
            if !self.permitted(me, request) {
                return Err(CoreError::PermissionDenied(format!(
                    "this group lets only its stewards {}",
                    match request {
                        Request::Add(_) => "add members",
                        Request::RemoveInstallations(_) => "remove installations",
                        Request::Remove(_) => "remove members",
                        _ => "rename it",
                    }
                )));
            }
        }
        if !self.gov.allow(&member_id(me), now) {
            return Err(CoreError::RateLimited("too many proposals at once; try again in a few seconds"));
        }
        let expected = if matches!(proposal.request, Some(Request::Leave(_))) {
            1
        } else {
            self.group.members().count()
        };
        let frame = GroupAppFrame { body: Some(Body::Proposal(proposal.clone())) }.encode_to_vec();
        let mut out = GroupOutput::default();
        out.publish.extend(self.seal(provider, key, frame)?);
        self.keep_for_resend(proposal.proposal_id, &out, now);
        self.gov.open(proposal, &member_id(me), expected, now);
        Ok(out)
    }

    /// Whether an Add request is valid: its key packages claim the account, and the signed
    /// list that travels with it verifies and shows every one of their installations.
    pub(super) fn valid_add(&self, provider: &Provider, a: &crate::core::wire::AddAccount) -> bool {
        let account = |b: &[u8]| <[u8; 32]>::try_from(b).ok().map(AccountId::from_bytes);
        account(&a.account).is_some_and(|acct| {
            // The signed list that travels with the request must show every installation.
            let Some(devices) = listed_devices(&acct, &a.account_bundle) else { return false };
            !a.key_packages.is_empty()
                && a.key_packages.len() <= MAX_ADDS
                && a.key_packages.iter().all(|kp| {
                    parse_key_package(kp, provider.crypto()).ok().is_some_and(|kp| {
                        account_of(&kp).as_ref() == Some(&acct)
                            && devices
                                .iter()
                                .any(|d| d.as_bytes() == kp.leaf_node().signature_key().as_slice())
                    })
                })
        })
    }

    /// Whether a proposal from `owner` asks for something that can be done.
    pub(super) fn valid_request(
        &self,
        provider: &Provider,
        owner: &DelegateCredential,
        request: &Request,
    ) -> bool {
        let account = |b: &[u8]| <[u8; 32]>::try_from(b).ok().map(AccountId::from_bytes);
        match request {
            Request::Add(a) => self.valid_add(provider, a),
            Request::Remove(r) => account(&r.account).is_some_and(|a| self.has_account(&a)),
            // Only an account itself may leave (§3.8: owner = MLS sender = target).
            Request::Leave(r) => account(&r.account).is_some_and(|a| Some(a) == owner.account),
            Request::Metadata(m) => Metadata::new(&m.name, &m.description).is_ok(),
            // Installations in the group that the account's signed list no longer shows,
            // asked for by the account itself (a list carries no freshness a member can
            // check, so another member could replay an old one).
            Request::RemoveInstallations(r) => account(&r.account).is_some_and(|acct| {
                if owner.account.as_ref() != Some(&acct) {
                    return false;
                }
                let Some(devices) = listed_devices(&acct, &r.account_bundle) else { return false };
                !r.installations.is_empty()
                    && r.installations.iter().all(|i| {
                        !devices.iter().any(|d| d.as_bytes().as_slice() == i.as_slice())
                            && self.group.members().any(|m| {
                                m.signature_key.as_slice() == i.as_slice()
                                    && leaf_credential(&m).and_then(|c| c.account).as_ref() == Some(&acct)
                            })
                    })
            }),
        }
    }

    /// Whether the group's permissions let `owner` ask for `request`: a leave, or a
    /// removal of one's own account, always; the rest by the role the group was made with.
    pub(super) fn permitted(&self, owner: &DelegateCredential, request: &Request) -> bool {
        let p = self.gov.config.permissions;
        let own = |account: &[u8]| owner.account.as_ref().is_some_and(|a| a.as_bytes() == account);
        let role = match request {
            Request::Leave(_) => return true,
            // An account adds its own newly linked installations (checked against its
            // signed list in `valid_request`), whatever the group's permissions.
            Request::Add(a) if own(&a.account) => return true,
            // What the signed list proves (checked in `valid_request`).
            Request::RemoveInstallations(_) => return true,
            Request::Remove(r)
                if owner.account.as_ref().is_some_and(|a| a.as_bytes() == r.account.as_slice()) =>
            {
                return true
            }
            Request::Add(_) => p.add,
            Request::Remove(_) => p.remove,
            Request::Metadata(_) => p.rename,
        };
        let id = member_id(owner);
        // The epoch's elected stewards, and those of the re-election round we are in
        // (not every round's: a member who is a steward only in a later round is not one).
        role == Role::Members || self.stewards_of_round(0).contains(&id) || self.stewards().contains(&id)
    }

    /// Casts our vote on an open proposal (the app's answer to a `VoteRequest`); a
    /// proposal decided meanwhile takes no vote.
    pub fn cast_vote(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        proposal_id: u32,
        yes: bool,
        now: u64,
    ) -> Result<GroupOutput> {
        let mut out = GroupOutput::default();
        if !self.gov.is_open(proposal_id) || self.gov.has_voted(proposal_id, &member_id(me)) {
            return Ok(out);
        }
        let frame = GroupAppFrame { body: Some(Body::Vote(GroupVote { proposal_id, vote: yes })) };
        out.publish.extend(self.seal(provider, key, frame.encode_to_vec())?);
        self.keep_for_resend(proposal_id, &out, now);
        self.gov.vote(proposal_id, &member_id(me), yes, now);
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_proposal(
        &mut self,
        provider: &Provider,
        key: &InstallationKey,
        me: &DelegateCredential,
        owner: &DelegateCredential,
        p: GroupProposal,
        now: u64,
        out: &mut GroupOutput,
    ) -> Result<()> {
        let Some(request) = p.request.clone() else {
            return Err(CoreError::decode("group proposal", "no request"));
        };
        let id = p.proposal_id;
        let leave = matches!(request, Request::Leave(_));
        let valid = self.valid_request(provider, owner, &request);
        if leave && !valid {
            return Err(CoreError::Verify("a leave names another account than its sender"));
        }
        let expected = if leave { 1 } else { self.group.members().count() };
        if self.gov.is_open(id) || self.gov.decided.contains(&id) {
            return Ok(());
        }
        if !leave && owner.installation != me.installation && !self.gov.allow(&member_id(owner), now) {
            return Ok(()); // beyond its allowance: not opened, here or at any honest member
        }
        let yes = valid && self.permitted(owner, &request);
        match (valid, &request) {
            (true, Request::Add(a)) => out.lists.push(a.account_bundle.clone()),
            (true, Request::RemoveInstallations(r)) => out.lists.push(r.account_bundle.clone()),
            _ => {}
        }
        let decided = self.gov.open(p, &member_id(owner), expected, now);
        if decided.is_none() && owner.installation != me.installation {
            let own_add = matches!(&request, Request::Add(a) if owner.account.as_ref().is_some_and(|o| o.as_bytes() == a.account.as_slice()))
                || matches!(&request, Request::RemoveInstallations(_));
            if yes && own_add {
                // A member's own new installation, shown by its signed list: no one is asked.
                let frame =
                    GroupAppFrame { body: Some(Body::Vote(GroupVote { proposal_id: id, vote: true })) };
                let mut vote = GroupOutput::default();
                vote.publish.extend(self.seal(provider, key, frame.encode_to_vec())?);
                self.keep_for_resend(id, &vote, now);
                out.publish.extend(vote.publish);
                self.gov.vote(id, &member_id(me), true, now);
            } else if yes {
                // The app's hook decides, or the client votes YES at once.
                out.vote_requests.push(VoteRequest {
                    proposal_id: id,
                    owner: owner.account.clone(),
                    request,
                });
            } else {
                let frame =
                    GroupAppFrame { body: Some(Body::Vote(GroupVote { proposal_id: id, vote: false })) };
                out.publish.extend(self.seal(provider, key, frame.encode_to_vec())?);
                self.gov.vote(id, &member_id(me), false, now);
            }
        }
        Ok(())
    }
}
