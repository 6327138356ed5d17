//! de-MLS group scenarios on the simulated network with a virtual clock.

use super::sim::Net;
use crate::core::demls::Config;
use crate::core::Event;

/// de-MLS 4.1.0's timers (§3.7): commit window 60 s, freeze 30 s, timeout 30 s.
pub(super) const WINDOW: u64 = 60_000 + 30_000 + 5_000 + 1;

impl Net {
    pub(super) fn create_group(
        &mut self,
        i: usize,
        name: &str,
        members: &[usize],
        config: Option<Config>,
    ) -> String {
        self.lookup(i);
        self.now += 1;
        let accounts: Vec<String> = members.iter().map(|m| self.account(*m)).collect();
        let (id, fx) = self.nodes[i].client.create_group(name, "", &accounts, config, self.now).unwrap();
        self.apply(i, fx);
        self.run();
        id
    }

    pub(super) fn add(&mut self, i: usize, id: &str, who: &[usize]) {
        self.lookup(i);
        self.now += 1;
        let accounts: Vec<String> = who.iter().map(|m| self.account(*m)).collect();
        let fx = self.nodes[i].client.add_members(id, &accounts, self.now).unwrap();
        self.apply(i, fx);
        self.run();
    }

    pub(super) fn remove(&mut self, i: usize, id: &str, who: &[usize]) {
        self.now += 1;
        let accounts: Vec<String> = who.iter().map(|m| self.account(*m)).collect();
        let fx = self.nodes[i].client.remove_members(id, &accounts, self.now).unwrap();
        self.apply(i, fx);
        self.run();
    }

    pub(super) fn leave(&mut self, i: usize, id: &str) {
        self.now += 1;
        let fx = self.nodes[i].client.leave_group(id, self.now).unwrap();
        self.apply(i, fx);
        self.run();
    }

    pub(super) fn epoch(&self, i: usize, id: &str) -> Option<u64> {
        self.nodes[i].client.group_epoch(id)
    }

    pub(super) fn member_accounts(&self, i: usize, id: &str) -> Vec<String> {
        self.nodes[i].client.group_members(id).unwrap().into_iter().map(|m| m.account_id).collect()
    }

    pub(super) fn index_of(&self, account: &str) -> usize {
        (0..self.nodes.len()).find(|i| self.account(*i) == account).unwrap()
    }

    pub(super) fn has_left(&self, i: usize, id: &str) -> bool {
        self.nodes[i].client.has_left_group(id)
    }

    pub(super) fn assert_converged(&self, id: &str, members: &[usize]) {
        self.assert_agree(id, members, members);
    }

    /// Every node of `nodes` is in the same epoch and sees exactly `members`.
    pub(super) fn assert_agree(&self, id: &str, nodes: &[usize], members: &[usize]) {
        let e = self.epoch(nodes[0], id);
        let mut want: Vec<String> = members.iter().map(|m| self.account(*m)).collect();
        want.sort();
        for m in nodes {
            assert_eq!(self.epoch(*m, id), e, "node {m} is in another epoch");
            assert_eq!(self.member_accounts(*m, id), want, "node {m} sees other members");
        }
    }
}

#[test]
fn three_members_with_two_stewards_converge_after_an_add_a_remove_and_a_leave() {
    let mut net = Net::default();
    let [alice, bob, carol, dave] = [net.join(1), net.join(2), net.join(3), net.join(4)];
    let g = net.create_group(alice, "team", &[bob, carol], None);
    net.assert_converged(&g, &[alice, bob, carol]);
    assert_eq!(net.nodes[alice].client.group_stewards(&g).unwrap().len(), 2, "two stewards");

    net.add(bob, &g, &[dave]);
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob, carol, dave]);

    net.remove(alice, &g, &[carol]);
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob, dave]);
    assert!(net.has_left(carol, &g), "carol knows she was removed");

    net.leave(dave, &g);
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob]);
    assert!(net.has_left(dave, &g));

    net.send(bob, &g, "just us");
    net.run();
    assert_eq!(net.texts(alice).last().map(|t| t.1.as_str()), Some("just us"));
    assert!(
        net.texts(carol).iter().all(|t| t.1 != "just us"),
        "a removed member cannot read the next message"
    );
    assert!(net.texts(dave).iter().all(|t| t.1 != "just us"));
    for n in [alice, bob] {
        assert!(net.errors(n).is_empty(), "node {n}: {:?}", net.errors(n));
    }
}

#[test]
fn the_epoch_steward_goes_silent_and_the_backup_commits() {
    let mut net = Net::default();
    let [a, b, c, d, e] = [net.join(11), net.join(12), net.join(13), net.join(14), net.join(15)];
    let g = net.create_group(a, "team", &[b, c, d], None);
    let stewards = net.nodes[a].client.group_stewards(&g).unwrap();
    let silent = net.index_of(&stewards[0]);
    net.set_online(silent, false);
    let others: Vec<usize> = [a, b, c, d].into_iter().filter(|n| *n != silent).collect();
    net.add(others[0], &g, &[e]);
    net.advance(WINDOW);
    let mut online = others.clone();
    online.push(e);
    net.assert_agree(&g, &online, &[a, b, c, d, e]);
    assert_eq!(net.epoch(others[0], &g), Some(2), "the backup committed the add");
    // The silent steward comes back and catches up from the store.
    net.set_online(silent, true);
    net.advance(WINDOW);
    net.assert_converged(&g, &[a, b, c, d, e]);
}

/// Five members with one steward per epoch, who goes offline; a newcomer to add; and a
/// member to propose it.
#[allow(clippy::type_complexity)]
fn silent_steward(seed: u64) -> (Net, String, Vec<usize>, usize, String, usize, usize) {
    let mut net = Net::default();
    let nodes: Vec<usize> = (0..5).map(|i| net.join(seed + i)).collect();
    let newcomer = net.join(seed + 10);
    let config = Config { stewards: 1, ..Config::default() };
    let g = net.create_group(nodes[0], "liveness", &nodes[1..], Some(config));
    let steward = net.nodes[nodes[0]].client.group_stewards(&g).unwrap()[0].clone();
    let silent = net.index_of(&steward);
    net.set_online(silent, false);
    let proposer = nodes.iter().copied().find(|n| *n != silent).unwrap();
    (net, g, nodes, newcomer, steward, silent, proposer)
}

#[test]
fn when_no_listed_steward_commits_a_re_election_in_the_same_epoch_picks_one_who_does() {
    let (mut net, g, nodes, newcomer, steward, silent, proposer) = silent_steward(380);
    let topic = format!("/logos-chat/1/{}/proto", net.nodes[proposer].client.group_topic_address(&g));
    let before = net.published_on.get(&topic).copied().unwrap_or(0);
    net.add(proposer, &g, &[newcomer]);
    // The window, the freeze and one retry window per re-election (two at most), then a freeze.
    net.advance(WINDOW + 2 * 5_000 + 30_000);
    let mut all = nodes.clone();
    all.push(newcomer);
    let online: Vec<usize> = all.iter().copied().filter(|n| *n != silent).collect();
    net.assert_agree(&g, &online, &all);
    // 1 proposal, 3 votes, then one candidate (a re-elected steward's) and its sealed tree;
    // recovery mode would have had all four members mint one.
    let published = net.published_on.get(&topic).copied().unwrap_or(0) - before;
    assert_eq!(published, 6, "one re-elected steward committed");
    assert!(net.nodes[proposer].client.group_score(&g, &steward) < 100, "the silent steward is penalised");
    net.set_online(silent, true);
    net.run();
    net.assert_converged(&g, &all);
}

/// With these seeds every re-election round draws the silent steward again, so the group
/// goes to recovery mode (anyone commits). Members reach it at slightly different times:
/// one that is not there yet must still take a recovery commit as a candidate (the
/// approved work is overdue), not refuse it and stay an epoch behind for good.
#[test]
fn when_every_round_draws_the_silent_steward_a_recovery_commit_reaches_every_member() {
    let (mut net, g, nodes, newcomer, _, silent, proposer) = silent_steward(80);
    net.add(proposer, &g, &[newcomer]);
    net.advance(WINDOW + 2 * 5_000 + 30_000);
    let mut all = nodes.clone();
    all.push(newcomer);
    let online: Vec<usize> = all.iter().copied().filter(|n| *n != silent).collect();
    net.assert_agree(&g, &online, &all);
    for n in &online {
        assert!(net.errors(*n).is_empty(), "node {n}: {:?}", net.errors(*n));
    }
    net.set_online(silent, true);
    net.run();
    net.assert_converged(&g, &all);
}

#[test]
fn a_member_restarted_during_a_freeze_keeps_the_candidate_it_had_and_selects_it() {
    let mut net = Net::default();
    let [a, b, c, d, e] = [net.join(111), net.join(112), net.join(113), net.join(114), net.join(115)];
    let config = Config { stewards: 2, ..Config::default() };
    let g = net.create_group(a, "freeze", &[b, c, d], Some(config));
    let stewards: Vec<usize> =
        net.nodes[a].client.group_stewards(&g).unwrap().iter().map(|s| net.index_of(s)).collect();
    // The epoch steward is away: the backup's candidate alone opens a 30 s freeze.
    net.set_online(stewards[0], false);
    let others: Vec<usize> = [a, b, c, d].into_iter().filter(|n| !stewards.contains(n)).collect();
    let (proposer, member) = (others[0], others[1]);
    net.add(proposer, &g, &[e]);
    net.advance(60_000 + 1_000);
    assert_eq!(net.epoch(member, &g), Some(1), "the freeze is open");
    // A restart now: the candidate's commit cannot be processed again (its key
    // generation is spent), so only the persisted candidate lets the member follow.
    net.restart(member);
    net.advance(30_000 + 1_000);
    assert_eq!(net.epoch(member, &g), net.epoch(stewards[1], &g), "the member selected the candidate");
    assert_eq!(net.epoch(member, &g), Some(2));
    net.set_online(stewards[0], true);
    net.advance(WINDOW);
    net.assert_converged(&g, &[a, b, c, d, e]);
}

#[test]
fn two_stewards_commit_concurrently_and_every_member_picks_the_same_commit() {
    let mut net = Net::default();
    let [a, b, c, d] = [net.join(21), net.join(22), net.join(23), net.join(24)];
    let g = net.create_group(a, "team", &[b, c], None);
    let topic = format!("/logos-chat/1/{}/proto", net.nodes[a].client.group_topic_address(&g));
    let before = net.published_on.get(&topic).copied().unwrap_or(0);
    net.add(c, &g, &[d]);
    net.advance(WINDOW);
    net.assert_converged(&g, &[a, b, c, d]);
    // 1 proposal, 2 votes, 2 candidates (one per steward), then the winner's sealed tree
    // (its sync is in the Welcome).
    let commits = net.published_on.get(&topic).copied().unwrap_or(0) - before;
    assert_eq!(commits, 6, "both stewards minted a candidate");
    for (i, n) in [a, b, c, d].into_iter().enumerate() {
        net.send(n, &g, &format!("from {i}"));
    }
    net.run();
    for n in [a, b, c, d] {
        assert_eq!(net.texts(n).len(), 3, "node {n} reads everyone's message in the chosen epoch");
    }
}

#[test]
fn a_steward_commit_that_adds_someone_nobody_voted_for_is_rejected_and_penalised() {
    let mut net = Net::default();
    let [a, b, c, mallory_target] = [net.join(31), net.join(32), net.join(33), net.join(34)];
    let g = net.create_group(a, "team", &[b, c], None);
    let stewards = net.nodes[a].client.group_stewards(&g).unwrap();
    let rogue = net.index_of(&stewards[0]);
    net.lookup(rogue);
    let target = net.account(mallory_target);
    net.now += 1;
    let fx = net.nodes[rogue].client.rogue_add_for_tests(&g, &target, net.now).unwrap();
    net.apply(rogue, fx);
    net.advance(WINDOW);
    let honest: Vec<usize> = [a, b, c].into_iter().filter(|n| *n != rogue).collect();
    for n in &honest {
        assert_eq!(net.epoch(*n, &g), Some(1), "node {n} did not merge the rogue commit");
        assert!(net.errors(*n).iter().any(|e| e == "PROTOCOL"), "node {n} reported it");
        assert!(net.nodes[*n].client.group_score(&g, &stewards[0]) < 100, "and penalised the steward");
    }
    assert!(!net.nodes[mallory_target].client.has_conversation(&g), "nobody holds a Welcome they can use");
}

#[test]
fn exactly_one_transport_publish_per_group_message_at_2_and_50_members() {
    for n in [2usize, 50] {
        let mut net = Net::default();
        let nodes: Vec<usize> = (0..n).map(|i| net.join(100 + i as u64)).collect();
        let g = net.create_group(nodes[0], "big", &nodes[1..], None);
        net.run();
        assert_eq!(net.member_accounts(nodes[n - 1], &g).len(), n);
        let before = net.publishes;
        net.send(nodes[1], &g, "one message");
        assert_eq!(net.publishes - before, 1, "N = {n}: one publish");
        net.run();
        assert_eq!(net.publishes - before, 1, "N = {n}: receiving publishes nothing");
        assert!(net.texts(nodes[0]).iter().any(|t| t.1 == "one message"));
        assert!(net.texts(nodes[n - 1]).iter().any(|t| t.1 == "one message") || n == 2);
    }
}

#[test]
fn a_joiner_holds_its_welcome_until_the_sealed_tree_comes_even_across_a_restart() {
    let mut net = Net::default();
    let [a, b, c, d] = [net.join(71), net.join(72), net.join(73), net.join(74)];
    net.set_online(c, false);
    net.set_online(d, false);
    let start = net.history.len();
    let g = net.create_group(a, "later", &[b, c, d], None);
    net.send(b, &g, "sent before the joiners had the tree");
    net.run();
    let topic = format!("/logos-chat/1/{}/proto", net.nodes[a].client.group_topic_address(&g));
    let of = |net: &Net, t: &str| -> Vec<super::sim::Msg> {
        net.history[start..].iter().filter(|m| m.topic == t).cloned().collect()
    };
    let group_traffic = of(&net, &topic);
    // Each joiner reads only its inbox: the Welcome is held, and the group topic followed.
    for n in [c, d] {
        let inbox = net.nodes[n].client.installation_id().inbox_topic().as_str().to_owned();
        for m in of(&net, &inbox) {
            net.now += 1;
            let fx = net.nodes[n].client.receive(&m.topic, &m.payload, m.sent_at, net.now);
            assert!(fx.subscribe.contains(&topic), "node {n} follows the group topic for its tree");
            assert!(fx.events.is_empty(), "nothing to report yet");
            net.persist(n, &fx);
        }
        assert!(!net.nodes[n].client.has_conversation(&g));
    }
    // c restarts while it waits: the held Welcome is on its disk, and the tree in the store.
    net.set_online(c, true);
    net.restart(c);
    net.run();
    assert!(net.texts(c).iter().any(|t| t.1 == "sent before the joiners had the tree"));
    // d gets b's message before the tree: it is kept and read once d has joined.
    let chat = group_traffic.last().unwrap().clone();
    let fx = net.nodes[d].client.receive(&chat.topic, &chat.payload, chat.sent_at, net.now);
    assert!(fx.events.is_empty(), "held, not an error");
    for m in &group_traffic {
        net.now += 1;
        let fx = net.nodes[d].client.receive(&m.topic, &m.payload, m.sent_at, net.now);
        net.apply(d, fx);
    }
    assert_eq!(net.texts(d).iter().filter(|t| t.1 == "sent before the joiners had the tree").count(), 1);
    net.set_online(d, true);
    net.run();
    net.send(d, &g, "joined");
    net.run();
    assert!(net.texts(c).iter().any(|t| t.1 == "joined"));
    net.assert_converged(&g, &[a, b, c, d]);
}

#[test]
fn a_group_survives_a_restart_of_every_member() {
    let mut net = Net::default();
    let [a, b, c] = [net.join(51), net.join(52), net.join(53)];
    let g = net.create_group(a, "durable", &[b, c], None);
    net.send(a, &g, "before");
    net.run();
    for n in [a, b, c] {
        net.restart(n);
    }
    net.run();
    net.send(c, &g, "after");
    net.run();
    assert!(net.texts(a).iter().any(|t| t.1 == "after"));
    assert!(net.texts(b).iter().any(|t| t.1 == "after"));
    assert!(net.nodes[b].events.iter().any(|e| matches!(e, Event::Members { .. })));
    net.assert_converged(&g, &[a, b, c]);
}

#[test]
fn a_20_member_group_split_7_13_for_two_epochs_heals_into_one_epoch() {
    let mut net = Net::default();
    let nodes: Vec<usize> = (0..20).map(|i| net.join(200 + i)).collect();
    let newcomers = [net.join(300), net.join(301)];
    let config = Config { stewards: 3, ..Config::default() };
    let g = net.create_group(nodes[0], "split", &nodes[1..], Some(config));
    net.assert_converged(&g, &nodes);
    let (minority, majority) = nodes.split_at(7);
    net.partition(minority);
    for who in newcomers {
        net.add(majority[0], &g, &[who]);
        net.advance(30_000 + WINDOW);
    }
    let mut big: Vec<usize> = majority.to_vec();
    big.extend(newcomers);
    let mut all = nodes.clone();
    all.extend(newcomers);
    net.assert_agree(&g, &big, &all);
    assert_eq!(
        net.epoch(minority[0], &g),
        Some(net.epoch(majority[0], &g).unwrap() - 2),
        "the minority stalled"
    );
    net.heal();
    net.advance(WINDOW);
    net.assert_converged(&g, &all);
    net.send(minority[0], &g, "back");
    net.run();
    assert!(
        net.texts(newcomers[1]).iter().any(|t| t.1 == "back"),
        "the healed minority chats in the new epoch"
    );
}

#[test]
fn a_100_member_x_wing_group_joins_and_commits_through_segments() {
    let mut net = Net::default();
    let nodes: Vec<usize> = (0..100).map(|i| net.join(400 + i)).collect();
    let start = net.history.len();
    let g = net.create_group(nodes[0], "big", &nodes[1..], None);
    net.assert_converged(&g, &nodes);
    // The tree travels once per commit, not in each of the 99 Welcomes (about 150 KB each).
    let inboxes: Vec<String> = nodes
        .iter()
        .map(|n| net.nodes[*n].client.installation_id().inbox_topic().as_str().to_owned())
        .collect();
    let created = &net.history[start..];
    let welcomes: Vec<usize> =
        created.iter().filter(|m| inboxes.contains(&m.topic)).map(|m| m.payload.len()).collect();
    assert_eq!(welcomes.len(), 99);
    assert!(welcomes.iter().all(|w| *w < 8 * 1024), "a Welcome without the tree: {welcomes:?}");
    let total: usize = created.iter().map(|m| m.payload.len()).sum();
    assert!(total < 1_000_000, "creation publishes {total} bytes");
    let before = net.publishes;
    net.remove(nodes[1], &g, &[nodes[99]]);
    net.advance(WINDOW);
    net.assert_converged(&g, &nodes[..99]);
    assert!(net.publishes - before > 100, "votes, and a remove commit in several segments");
    net.send(nodes[98], &g, "all 99 of us");
    net.run();
    assert!(net.texts(nodes[0]).iter().any(|t| t.1 == "all 99 of us"));
}

#[test]
fn a_steward_whose_score_falls_to_zero_is_voted_out_and_removed() {
    let mut net = Net::default();
    let [a, b, c, target] = [net.join(61), net.join(62), net.join(63), net.join(64)];
    let g = net.create_group(a, "team", &[b, c], None);
    let stewards = net.nodes[a].client.group_stewards(&g).unwrap();
    let rogue = net.index_of(&stewards[0]);
    net.lookup(rogue);
    let victim = net.account(target);
    // Each rejected commit costs −30 (BrokenMlsProposal): 100 → −20 after four.
    for _ in 0..4 {
        net.now += 1;
        let fx = net.nodes[rogue].client.rogue_add_for_tests(&g, &victim, net.now).unwrap();
        net.apply(rogue, fx);
        net.advance(WINDOW);
    }
    net.advance(WINDOW);
    let honest: Vec<usize> = [a, b, c].into_iter().filter(|n| *n != rogue).collect();
    net.assert_converged(&g, &honest);
    assert!(net.has_left(rogue, &g), "the rogue steward was removed");
    assert!(!net.nodes[target].client.has_conversation(&g));
}

#[test]
fn joiners_confirm_every_member_from_the_bundles_sealed_with_the_tree() {
    let mut net = Net::default();
    let [a, b, c, d] = [net.join(91), net.join(92), net.join(93), net.join(94)];
    let g = net.create_group(a, "confirmed", &[b, c], None);
    net.add(a, &g, &[d]);
    net.advance(WINDOW);
    assert!(net.nodes[d].client.has_conversation(&g));
    let reads: Vec<usize> = [b, c, d].iter().map(|&n| net.nodes[n].lookups).collect();
    net.send(b, &g, "from b");
    net.send(c, &g, "from c");
    net.run();
    let (acct_b, acct_c) = (Some(net.account(b)), Some(net.account(c)));
    for (n, sender, text) in [(c, &acct_b, "from b"), (d, &acct_b, "from b"), (d, &acct_c, "from c")] {
        assert!(
            net.texts(n).iter().any(|t| &t.0 == sender && t.1 == text),
            "node {n} shows {text:?} with its sender's account"
        );
    }
    let after: Vec<usize> = [b, c, d].iter().map(|&n| net.nodes[n].lookups).collect();
    assert_eq!(after, reads, "no directory read: each joiner's tree carried the members' bundles");
}
