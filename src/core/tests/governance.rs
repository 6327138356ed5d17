//! Group governance (issue 12, class 9): permissions fixed at creation and enforced in
//! every member's vote, a group id that commits to them, the app's vote hook, and a
//! per-member proposal allowance.

use super::group::WINDOW;
use super::sim::Net;
use crate::core::demls::{Config, Permissions, Role, PROPOSAL_BURST};
use crate::core::error::ErrorCode;
use crate::core::Event;

use super::lossy::{Faults, LossyNet};
use super::reliability::each_seed;

fn stewards_only() -> Config {
    let only = Permissions { add: Role::Stewards, remove: Role::Stewards, rename: Role::Stewards };
    Config { permissions: only, ..Config::default() }
}

/// A group of alice, bob and carol with `config`, and which of them is not a steward.
fn group(net: &mut Net, seed: u64, config: Config) -> (String, [usize; 4], usize) {
    let nodes = [net.join(seed), net.join(seed + 1), net.join(seed + 2), net.join(seed + 3)];
    let g = net.create_group(nodes[0], "team", &nodes[1..3], Some(config));
    let stewards = net.nodes[nodes[0]].client.group_stewards(&g).unwrap();
    let member = *nodes[..3].iter().find(|n| !stewards.contains(&net.account(**n))).unwrap();
    (g, nodes, member)
}

fn permissions(net: &Net, i: usize, g: &str) -> Permissions {
    net.nodes[i].client.group_for_tests(g).unwrap().gov.config.permissions
}

#[test]
fn only_stewards_add_when_the_group_says_so_and_a_rogue_members_add_is_voted_down() {
    let mut net = Net::default();
    let (g, [alice, bob, carol, dave], member) = group(&mut net, 301, stewards_only());
    for n in [alice, bob, carol] {
        assert_eq!(permissions(&net, n, &g), stewards_only().permissions, "node {n}");
    }
    // The member's own client refuses.
    net.lookup(member);
    let (who, now) = (net.account(dave), net.now);
    let err = net.nodes[member].client.add_members(&g, &[who], now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);
    let err = net.nodes[member].client.set_group_metadata(&g, "mine", "", now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PermissionDenied);

    // A member whose client ignores the rule: everyone else votes NO, nothing commits.
    let epoch = net.epoch(alice, &g);
    net.nodes[member].client.group_mut_for_tests(&g).unwrap().gov.config.permissions = Permissions::default();
    net.add(member, &g, &[dave]);
    net.advance(WINDOW);
    assert_eq!(net.epoch(alice, &g), epoch, "a forbidden add committed");
    net.assert_converged(&g, &[alice, bob, carol]);

    // A steward's add commits, and the joiner holds the same permissions.
    let steward = *[alice, bob, carol].iter().find(|n| **n != member).unwrap();
    net.add(steward, &g, &[dave]);
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob, carol, dave]);
    assert_eq!(permissions(&net, dave, &g), stewards_only().permissions);
}

#[test]
fn a_group_with_default_permissions_lets_any_member_add() {
    let mut net = Net::default();
    let (g, [alice, bob, carol, dave], member) = group(&mut net, 311, Config::default());
    net.add(member, &g, &[dave]);
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob, carol, dave]);
}

#[test]
fn a_welcomer_cannot_tell_a_joiner_other_permissions_than_the_group_id_commits_to() {
    let mut net = Net::default();
    let (g, [alice, bob, carol, dave], member) = group(&mut net, 321, Config::default());
    // Every steward lies to the joiner: "only stewards may add, remove, rename".
    for n in [alice, bob, carol] {
        net.nodes[n].client.group_mut_for_tests(&g).unwrap().gov.config.permissions =
            stewards_only().permissions;
    }
    let steward = *[alice, bob, carol].iter().find(|n| **n != member).unwrap();
    net.add(steward, &g, &[dave]);
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob, carol, dave]);
    assert_eq!(permissions(&net, dave, &g), Permissions::default(), "the joiner believed its welcomer");
}

#[test]
fn the_apps_vote_hook_decides_and_two_no_votes_reject_an_add() {
    let mut net = Net::default();
    let nodes = [net.join(331), net.join(332), net.join(333), net.join(334), net.join(335)];
    let [alice, bob, carol, dave, erin] = nodes;
    let g = net.create_group(alice, "team", &[bob, carol, dave], None);
    for n in [carol, dave] {
        net.nodes[n].client.set_vote_hook(true);
    }
    let epoch = net.epoch(alice, &g);
    net.add(bob, &g, &[erin]);
    for n in [carol, dave] {
        let asked: Vec<(u32, &str, Vec<String>)> = net.nodes[n]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::VoteRequest { proposal_id, kind, accounts, by, .. } => {
                    assert_eq!(by.as_deref(), Some(net.account(bob).as_str()));
                    Some((*proposal_id, *kind, accounts.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(asked.len(), 1, "node {n} was asked {asked:?}");
        assert_eq!((asked[0].1, asked[0].2.clone()), ("add", vec![net.account(erin)]));
        net.now += 1;
        let fx = net.nodes[n].client.vote(&g, asked[0].0, false, net.now).unwrap();
        net.apply(n, fx);
    }
    net.run();
    net.advance(WINDOW);
    assert_eq!(net.epoch(alice, &g), epoch, "an add two members voted down committed");
    assert!(!net.member_accounts(alice, &g).contains(&net.account(erin)));

    // Answered YES (or not at all), the next one goes through.
    net.add(bob, &g, &[erin]);
    let pending: Vec<u32> = net.nodes[carol]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::VoteRequest { proposal_id, .. } => Some(*proposal_id),
            _ => None,
        })
        .collect();
    net.now += 1;
    let fx = net.nodes[carol].client.vote(&g, *pending.last().unwrap(), true, net.now).unwrap();
    net.apply(carol, fx);
    net.run();
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob, carol, dave, erin]);
}

#[test]
fn a_member_cannot_make_the_group_vote_on_more_than_its_allowance() {
    let mut net = Net::default();
    let (g, [alice, bob, carol, _], _) = group(&mut net, 341, Config::default());
    // Bob's own client stops him at the allowance.
    for i in 0..PROPOSAL_BURST {
        net.now += 1;
        let fx = net.nodes[bob].client.set_group_metadata(&g, &format!("name {i}"), "", net.now).unwrap();
        net.apply(bob, fx);
    }
    let now = net.now;
    let err = net.nodes[bob].client.set_group_metadata(&g, "one more", "", now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    net.run();
    let votes_before = net.published_on.values().sum::<usize>();

    // A client that ignores it: the others open none of the extra proposals, and vote on none.
    for i in 0..40 {
        net.nodes[bob].client.group_mut_for_tests(&g).unwrap().gov.allowances.clear();
        let fx = net.nodes[bob].client.set_group_metadata(&g, &format!("spam {i}"), "", now).unwrap();
        net.apply(bob, fx);
    }
    net.run();
    let published = net.published_on.values().sum::<usize>() - votes_before;
    assert_eq!(published, 40, "other members voted on proposals beyond the allowance");
    let carol_open = net.nodes[carol].client.group_for_tests(&g).unwrap().gov.open.len();
    assert!(carol_open <= PROPOSAL_BURST as usize, "{carol_open} open at carol");

    // The allowance comes back with time, and the group still works.
    net.advance(WINDOW);
    net.now += 1;
    let fx = net.nodes[alice].client.set_group_metadata(&g, "settled", "", net.now).unwrap();
    net.apply(alice, fx);
    net.run();
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob, carol]);
}

/// A proposal of the next epoch read before the commit that leads there is kept, and
/// replayed after it: it must still reach our vote (here, the app's hook).
#[test]
fn a_proposal_read_before_the_commit_it_follows_still_asks_for_our_vote() {
    let mut net = Net::default();
    let [alice, bob, carol, dave] = [net.join(351), net.join(352), net.join(353), net.join(354)];
    let g = net.create_group(alice, "team", &[bob, carol, dave], None);
    net.nodes[bob].client.set_vote_hook(true);
    net.set_online(bob, false);
    net.leave(carol, &g);
    net.advance(WINDOW);
    net.now += 1;
    let fx = net.nodes[alice].client.set_group_metadata(&g, "later", "", net.now).unwrap();
    let proposal = fx.publish.first().unwrap().payload.clone();
    net.apply(alice, fx);
    net.run();
    // Bob reads the history back with the proposal first.
    net.set_online(bob, true);
    let queue = &mut net.nodes[bob].queue;
    let at = queue.iter().position(|m| m.payload == proposal).unwrap();
    let first = queue.remove(at).unwrap();
    queue.push_front(first);
    net.run();
    let asked = net.nodes[bob]
        .events
        .iter()
        .any(|e| matches!(e, Event::VoteRequest { kind: "rename", name: Some(n), .. } if n == "later"));
    assert!(asked, "the replayed proposal never reached bob's vote");
}

/// A group of five on the lossy network's clean start, one of them not a steward, and
/// two outsiders: (net, group, members, the non-steward, a steward, outsider 1, outsider 2).
fn lossy_group(seed: u64) -> (LossyNet, String, Vec<usize>, usize, usize, usize, usize) {
    let mut net = LossyNet::new(seed, CLEAN);
    let nodes: Vec<usize> = (0..5).map(|k| net.join(70_000 + seed * 8 + k)).collect();
    let (one, two) = (net.join(70_000 + seed * 8 + 5), net.join(70_000 + seed * 8 + 6));
    let g = net.create_group(nodes[0], &nodes[1..], stewards_only());
    let t = net.now + 5_000;
    net.run_until(t);
    let stewards = net.client(nodes[0]).group_stewards(&g).unwrap();
    let member = *nodes.iter().find(|n| !stewards.contains(&net.account(**n))).unwrap();
    let steward = *nodes.iter().find(|n| stewards.contains(&net.account(**n))).unwrap();
    assert_eq!(net.members(nodes[0], &g).len(), 5, "seed {seed}: everyone joined");
    (net, g, nodes, member, steward, one, two)
}

const CLEAN: Faults = Faults { loss: 0.0, dup: 0.0, max_delay: 1, store_miss: 0.0 };
const HOSTILE: Faults = Faults { loss: 0.3, dup: 0.1, max_delay: 200, store_miss: 0.0 };

/// Governance on the lossy network (30% loss, duplicates, reordering): a member outside
/// the steward list whose client ignores "stewards only" never gets its add committed at
/// any member, however its proposal and the votes are lost or repeated, and while the
/// group keeps talking.
#[test]
fn on_a_lossy_network_a_forbidden_add_never_commits() {
    each_seed(3, |seed| {
        let (mut net, g, nodes, member, steward, outsider, _) = lossy_group(seed);
        net.set_faults(HOSTILE);
        net.client(member).group_mut_for_tests(&g).unwrap().gov.config.permissions = Permissions::default();
        net.add_members(member, &g, &[outsider]).unwrap();
        for k in 0..40 {
            net.send(if k % 2 == 0 { steward } else { member }, &g, &format!("m{k}"));
            let t = net.now + WINDOW / 10;
            net.run_until(t);
        }
        let outsider = net.account(outsider);
        for &n in &nodes {
            assert!(
                !net.members(n, &g).contains(&outsider),
                "seed {seed}: node {n} committed a forbidden add"
            );
        }
    });
}

/// A member that lost a commit (and everything before the next epoch's traffic) reads
/// the group topic back when it sees that traffic, and merges the commit.
#[test]
fn a_member_that_lost_a_commit_reads_it_back_when_the_next_epoch_talks() {
    let (mut net, g, nodes, _, steward, _, late) = lossy_group(7);
    let behind = *nodes.iter().find(|n| **n != steward).unwrap();
    net.set_deaf(behind, true);
    net.add_members(steward, &g, &[late]).unwrap();
    let t = net.now + 2 * WINDOW;
    net.run_until(t);
    let joined = net.account(late);
    assert!(net.members(steward, &g).contains(&joined), "the add committed");
    // It hears again, with nothing to tell it that it missed a commit but what follows.
    net.set_deaf(behind, false);
    assert!(!net.members(behind, &g).contains(&joined));
    net.send(steward, &g, "in the new epoch");
    let t = net.now + 30_000;
    net.run_until(t);
    assert!(net.members(behind, &g).contains(&joined), "the member stayed an epoch behind");
    assert!(net.delivered(behind, &g).iter().any(|m| !m.is_empty()), "and reads the new epoch's chat");
}

/// A steward's add under 30% loss commits at every member. Without re-sent proposals and
/// votes (`group/resend`) and votes kept until their proposal comes (`Governance::early`),
/// members' tallies differed from the steward's: it merged its commit, those that had
/// lost votes refused it as unapproved, and the group forked (seeds 1 and 4).
#[test]
fn on_a_lossy_network_a_permitted_add_commits_at_every_member() {
    each_seed(3, |seed| {
        let (mut net, g, nodes, _, steward, _, late) = lossy_group(seed);
        net.set_faults(HOSTILE);
        net.add_members(steward, &g, &[late]).unwrap();
        let t = net.now + 4 * WINDOW;
        net.run_until(t);
        net.set_faults(CLEAN);
        let joined = net.account(late);
        for k in 0..20 {
            net.send(steward, &g, &format!("m{k}"));
            let t = net.now + WINDOW / 2;
            net.run_until(t);
        }
        for &n in &nodes {
            assert!(net.members(n, &g).contains(&joined), "seed {seed}: node {n} never committed the add");
        }
    });
}
