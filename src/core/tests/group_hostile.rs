//! de-MLS groups against what a bad message or an outsider does (issue 12): no byte of
//! group traffic or of an invite names a member or links co-joiners, a metadata change
//! commits and leaves the group working, a copied message with a raised clear epoch
//! cannot end a freeze or relax the candidate check, and a call that fails leaves every
//! part of the group as it was.

use super::group::WINDOW;
use super::sim::Net;

fn name_of(net: &Net, i: usize, id: &str) -> Option<String> {
    net.nodes[i].client.conversations().into_iter().find(|c| c.id == id).and_then(|c| c.name)
}

#[test]
fn a_new_name_commits_at_every_member_and_the_group_keeps_working() {
    let mut net = Net::default();
    let [alice, bob, carol, dave] = [net.join(41), net.join(42), net.join(43), net.join(44)];
    let g = net.create_group(alice, "team", &[bob, carol], None);
    net.now += 1;
    let fx = net.nodes[bob].client.set_group_metadata(&g, "renamed", "the new topic", net.now).unwrap();
    net.apply(bob, fx);
    net.run();
    net.advance(WINDOW);
    for n in [alice, bob, carol] {
        assert_eq!(name_of(&net, n, &g).as_deref(), Some("renamed"), "node {n}");
        assert!(net.errors(n).is_empty(), "node {n}: {:?}", net.errors(n));
    }
    // Later changes still commit: the group is not wedged.
    net.add(carol, &g, &[dave]);
    net.advance(WINDOW);
    net.assert_converged(&g, &[alice, bob, carol, dave]);
    assert_eq!(name_of(&net, dave, &g).as_deref(), Some("renamed"));
    net.send(dave, &g, "hello after the rename");
    net.run();
    assert_eq!(net.texts(alice).last().map(|t| t.1.as_str()), Some("hello after the rename"));
    for n in [alice, bob, carol, dave] {
        assert!(net.errors(n).is_empty(), "node {n}: {:?}", net.errors(n));
    }
}

/// The epoch field of an MLS PrivateMessage (after version, wire format and the
/// varint-prefixed group id), rewritten.
fn with_epoch(mls: &[u8], epoch: u64) -> Vec<u8> {
    let mut out = mls.to_vec();
    let (len, prefix) = match mls[4] >> 6 {
        0 => (usize::from(mls[4] & 0x3f), 1),
        1 => ((usize::from(mls[4] & 0x3f) << 8) | usize::from(mls[5]), 2),
        _ => panic!("a group id over 16 KiB"),
    };
    let at = 4 + prefix + len;
    out[at..at + 8].copy_from_slice(&epoch.to_be_bytes());
    out
}

/// The MLS bytes of the last message the group's topic carried (not a tree).
fn last_group_mls(net: &Net, id: &str) -> Vec<u8> {
    use crate::core::wire::{decode, encrypted_payload::Encryption, EncryptedPayload, EnvelopeV1};
    let topic = crate::core::ConversationId::parse(id).unwrap().topic().as_str().to_owned();
    net.history
        .iter()
        .rev()
        .filter(|m| m.topic == topic)
        .filter_map(|m| decode::<EnvelopeV1>("envelope", &m.payload).ok())
        .filter(|env| env.conversation_hint == id)
        .find_map(|env| match decode::<EncryptedPayload>("payload", &env.payload).ok()?.encryption {
            Some(Encryption::Plaintext(p)) => Some(p.payload),
            _ => None,
        })
        .unwrap()
}

/// Two stewards; the second is cut off, so a member waits in the freeze for its
/// candidate with only the first one's in.
fn frozen_member(seed: u64) -> (Net, String, usize, usize, [usize; 5]) {
    let mut net = Net::default();
    let nodes =
        [net.join(seed), net.join(seed + 1), net.join(seed + 2), net.join(seed + 3), net.join(seed + 4)];
    let g = net.create_group(nodes[0], "team", &nodes[1..4], None);
    let stewards: Vec<usize> =
        net.nodes[nodes[0]].client.group_stewards(&g).unwrap().iter().map(|a| net.index_of(a)).collect();
    assert_eq!(stewards.len(), 2);
    let member = *nodes[..4].iter().find(|n| !stewards.contains(n)).unwrap();
    net.partition(&[stewards[1]]);
    net.add(member, &g, &[nodes[4]]);
    // The commit window ends: the first steward's candidate reaches the member.
    net.advance(60_000 + 1_000);
    (net, g, member, stewards[1], nodes)
}

#[test]
fn a_copied_message_with_a_raised_epoch_does_not_end_a_freeze() {
    let (mut net, g, member, cut_off, nodes) = frozen_member(61);
    let epoch = net.epoch(member, &g).unwrap();
    let real = last_group_mls(&net, &g);
    let forged = with_epoch(&real, epoch + 1);
    let env = crate::core::client::group_envelope(&crate::core::ConversationId::parse(&g).unwrap(), forged);
    let topic = crate::core::ConversationId::parse(&g).unwrap().topic().as_str().to_owned();
    net.now += 1;
    let fx = net.nodes[member].client.receive(&topic, &env, net.now, net.now);
    net.apply(member, fx);
    assert_eq!(net.epoch(member, &g), Some(epoch), "a forged epoch ended the freeze");

    // The freeze ends on its timer; the cut-off steward catches up; all agree.
    net.advance(30_000);
    assert_eq!(net.epoch(member, &g), Some(epoch + 1));
    net.heal();
    net.advance(WINDOW);
    net.assert_converged(&g, &nodes);
    assert!(net.epoch(cut_off, &g).is_some());
}

#[test]
fn a_genuine_next_epoch_message_ends_the_freeze_with_the_candidate_it_proves() {
    let (mut net, g, member, _, nodes) = frozen_member(71);
    let epoch = net.epoch(member, &g).unwrap();
    // Another member ends the freeze on its timer and speaks in the new epoch; the
    // member under test (offline meanwhile) comes back still frozen, and reads it.
    net.set_online(member, false);
    net.advance(30_000);
    let other = *nodes[..4].iter().find(|n| **n != member && net.epoch(**n, &g) == Some(epoch + 1)).unwrap();
    net.send(other, &g, "in the new epoch");
    net.run();
    net.set_online(member, true);
    net.run();
    assert_eq!(net.epoch(member, &g), Some(epoch + 1), "attested by an authenticated message");
    assert!(net.texts(member).iter().any(|t| t.1 == "in the new epoch"));
    assert!(net.errors(member).is_empty(), "{:?}", net.errors(member));
}

#[test]
fn a_call_that_fails_after_a_selection_leaves_the_member_able_to_select_again() {
    let (mut net, g, member, _, nodes) = frozen_member(81);
    let epoch = net.epoch(member, &g).unwrap();
    let before = net.nodes[member].client.group_record_for_tests(&g).unwrap();
    // The freeze ends in a call that then fails: the selection (merge, candidates,
    // governance, the freeze) must all be undone, not only openmls's storage.
    let at = net.now + 30_000;
    net.nodes[member].client.fail_after_for_tests(|c| {
        let _ = c.tick(at);
    });
    assert_eq!(net.epoch(member, &g), Some(epoch));
    assert_eq!(
        net.nodes[member].client.group_record_for_tests(&g).unwrap(),
        before,
        "state was left changed"
    );
    net.advance(30_000);
    assert_eq!(net.epoch(member, &g), Some(epoch + 1), "the member selected again");
    net.heal();
    net.advance(WINDOW);
    net.assert_converged(&g, &nodes);
}

#[test]
fn no_group_traffic_byte_names_a_member() {
    let mut net = Net::default();
    let [a, b, c, d] = [net.join(41), net.join(42), net.join(43), net.join(44)];
    let start = net.history.len();
    let g = net.create_group(a, "private", &[b, c], None);
    net.send(b, &g, "hello");
    net.add(c, &g, &[d]);
    net.advance(WINDOW);
    net.remove(a, &g, &[c]);
    net.advance(WINDOW);
    let group_traffic: Vec<Vec<u8>> = net.history[start..]
        .iter()
        .filter(|m| !crate::core::Client::is_directory_topic(&m.topic))
        .map(|m| m.payload.clone())
        .collect();
    assert!(group_traffic.len() > 10);
    for n in [a, b, c, d] {
        let acct = net.nodes[n].client.account_id();
        let inst = net.nodes[n].client.installation_id();
        let needles: Vec<Vec<u8>> = vec![
            acct.as_bytes().to_vec(),
            inst.as_bytes().to_vec(),
            acct.to_hex().into_bytes(),
            inst.to_hex().into_bytes(),
        ];
        for bytes in &group_traffic {
            for needle in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "node {n}'s identity is on the wire"
                );
            }
        }
    }
    // Each joiner's Welcome holds only its own entry: the full Welcome would list every
    // joiner's key package reference, which the public directory ties to installations.
    use openmls::prelude::tls_codec::Deserialize as _;
    use prost::Message as _;
    // Only inbox traffic is read as frames: a group message's ciphertext can happen to parse
    // as an envelope, and that would not be a Welcome.
    let inboxes: Vec<String> = [b, c, d]
        .iter()
        .map(|&n| net.nodes[n].client.installation_id().inbox_topic().as_str().to_owned())
        .collect();
    let mut welcomes = 0;
    let mut sealed_invites: Vec<Vec<u8>> = Vec::new();
    for m in net.history[start..].iter().filter(|m| inboxes.contains(&m.topic)) {
        let Ok(env) = crate::core::wire::EnvelopeV1::decode(m.payload.as_slice()) else { continue };
        let Ok(frame) = crate::core::wire::InboxV2Frame::decode(env.payload.as_slice()) else { continue };
        let payload = frame.payload.expect("an inbox frame");
        let crate::core::wire::inbox_v2_frame::Payload::SealedGroupV2(sealed) = payload else {
            panic!("an invite went unsealed: {payload:?}")
        };
        // Only its joiner opens it; inside, a Welcome that names that joiner alone.
        let joiner = [b, c, d][inboxes.iter().position(|t| *t == m.topic).unwrap()];
        let mw = net.nodes[joiner].client.open_invite_for_tests(&sealed).expect("the joiner opens it");
        assert!(
            net.nodes[a].client.open_invite_for_tests(&sealed).is_none(),
            "another installation opens it"
        );
        let mw = crate::core::wire::MemberWelcome::decode(mw.as_slice()).unwrap();
        let msg = openmls::prelude::MlsMessageIn::tls_deserialize_exact(&mw.welcome_bytes).unwrap();
        let openmls::prelude::MlsMessageBodyIn::Welcome(w) = msg.extract() else { panic!("a Welcome") };
        assert_eq!(w.secrets().len(), 1, "a Welcome names one joiner");
        sealed_invites.push(sealed);
        welcomes += 1;
    }
    // No 32-byte run of an invite appears in another invite or in the group's traffic:
    // co-joiners are not linkable by shared bytes, nor an invite to its group.
    let group_id = crate::core::ConversationId::parse(&g).unwrap();
    let topic = group_id.topic().as_str().to_owned();
    let on_topic: Vec<&Vec<u8>> =
        net.history[start..].iter().filter(|m| m.topic == topic).map(|m| &m.payload).collect();
    for (i, inv) in sealed_invites.iter().enumerate() {
        let others = sealed_invites.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| o);
        let runs: std::collections::HashSet<&[u8]> =
            others.chain(on_topic.iter().copied()).flat_map(|o| o.windows(32)).collect();
        assert!(!inv.windows(32).any(|w| runs.contains(w)), "an invite shares 32 bytes with other traffic");
    }
    assert_eq!(welcomes, 3, "b and c at creation, d when added");
    // The delivery address is the random group id's, not a function of the members.
    assert_ne!(net.nodes[a].client.group_topic_address(&g), net.nodes[a].client.account_id().to_hex());
}

#[test]
fn garbage_on_a_known_hint_costs_no_write_no_rollback_and_one_event() {
    use crate::core::wire::EncryptedPayload;
    use prost::Message as _;
    let mut net = Net::default();
    let [a, b] = [net.join(91), net.join(92)];
    let g = net.create_group(a, "team", &[b], None);
    let id = crate::core::ConversationId::parse(&g).unwrap();
    let topic = id.topic().as_str().to_owned();
    let garbage = crate::core::wire::EnvelopeV1 {
        conversation_hint: g.clone(),
        salt: 0,
        payload: EncryptedPayload::plaintext(b"\x00\x01 not an MLS message".to_vec()).encode_to_vec(),
    }
    .encode_to_vec();
    let rollbacks = net.nodes[b].client.mls_rollbacks_for_tests();
    net.now += 1;
    let fx = net.nodes[b].client.receive(&topic, &garbage, net.now, net.now);
    assert!(fx.store.is_empty(), "refused input was persisted: {:?}", fx.store);
    let errors: Vec<_> = fx.events.iter().filter(|e| matches!(e, crate::core::Event::Error { .. })).collect();
    assert_eq!(errors.len(), 1, "one error event");
    assert_eq!(net.nodes[b].client.mls_rollbacks_for_tests(), rollbacks, "openmls's map was copied back");
    // The same bytes again are dropped without a word.
    let fx = net.nodes[b].client.receive(&topic, &garbage, net.now, net.now);
    assert!(fx.events.is_empty() && fx.store.is_empty());
    // A real message still flows.
    net.send(a, &g, "still here");
    net.run();
    assert!(net.texts(b).iter().any(|t| t.1 == "still here"));
}

#[test]
fn group_stewards_lists_the_epoch_steward_first() {
    use crate::core::conversation::group::member_id;
    let mut net = Net::default();
    let nodes: Vec<usize> = (0..8).map(|i| net.join(101 + i)).collect();
    let config = crate::core::demls::Config { stewards: 3, ..Default::default() };
    let g = net.create_group(nodes[0], "team", &nodes[1..], Some(config));
    let client = &net.nodes[nodes[0]].client;
    let group = client.group_for_tests(&g).unwrap();
    let list = group.stewards();
    let accounts = client.group_stewards(&g).unwrap();
    assert_eq!(accounts.len(), 3);
    // Each account's place on the steward list (member ids in election order).
    let place = |account: &str| {
        group
            .credentials()
            .iter()
            .filter(|c| c.account.as_ref().map(|a| a.to_hex()).as_deref() == Some(account))
            .filter_map(|c| list.iter().position(|s| *s == member_id(c)))
            .min()
            .unwrap()
    };
    let places: Vec<usize> = accounts.iter().map(|a| place(a)).collect();
    assert_eq!(places, vec![0, 1, 2], "group_stewards is not in steward-list order");
}
