//! Proposals and votes (PROTOCOL.md §3.2, §3.4): opening one with our own YES, checking
//! what a member asks for, and the SDK's voting policy (YES on a valid request).

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
        let expected = if matches!(proposal.request, Some(Request::Leave(_))) {
            1
        } else {
            self.group.members().count()
        };
        let frame = GroupAppFrame { body: Some(Body::Proposal(proposal.clone())) }.encode_to_vec();
        let mut out = GroupOutput::default();
        out.publish.extend(self.seal(provider, key, frame)?);
        self.gov.open(proposal, &member_id(me), expected, now);
        Ok(out)
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
            Request::Add(a) => account(&a.account).is_some_and(|acct| {
                !a.key_packages.is_empty()
                    && a.key_packages.len() <= MAX_ADDS
                    && a.key_packages.iter().all(|kp| {
                        parse_key_package(kp, provider.crypto()).ok().and_then(|kp| account_of(&kp)).as_ref()
                            == Some(&acct)
                    })
            }),
            Request::Remove(r) => account(&r.account).is_some_and(|a| self.has_account(&a)),
            // Only an account itself may leave (§3.8: owner = MLS sender = target).
            Request::Leave(r) => account(&r.account).is_some_and(|a| Some(a) == owner.account),
            Request::Metadata(m) => Metadata::new(&m.name, &m.description).is_ok(),
        }
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
        let decided = self.gov.open(p, &member_id(owner), expected, now);
        if decided.is_none() && owner.installation != me.installation {
            // The SDK's policy: a valid request from a member gets YES, anything else NO.
            let frame = GroupAppFrame { body: Some(Body::Vote(GroupVote { proposal_id: id, vote: valid })) };
            out.publish.extend(self.seal(provider, key, frame.encode_to_vec())?);
            self.gov.vote(id, &member_id(me), valid, now);
        }
        Ok(())
    }
}
