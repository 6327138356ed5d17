//! An account as a set of installations (issue 13): link, chat from both, remove,
//! restart; and impostors whose credentials claim someone else's account.

use super::sim::Net;
use crate::core::{ErrorCode, Event};

fn outgoing_texts(net: &Net, i: usize) -> Vec<(bool, String)> {
    net.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.outgoing, String::from_utf8_lossy(&m.content).into_owned())),
            _ => None,
        })
        .collect()
}

#[test]
fn two_installations_of_alice_chat_with_bob_and_see_each_others_sends() {
    let mut net = Net::default();
    let alice = net.join(1);
    let bob = net.join(2);
    let alice2 = net.link(alice, 3);
    let a = net.account(alice);
    assert_eq!(net.account(alice2), a, "the linked device is the same account");
    assert_ne!(net.nodes[alice2].client.installation_id(), net.nodes[alice].client.installation_id());
    for i in [alice, alice2] {
        let list = net.nodes[i].client.installations();
        assert_eq!(list.len(), 2, "both installations see both");
        assert_eq!(list.iter().filter(|d| d.current).count(), 1);
    }

    let convo = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    assert!(net.nodes[alice2].client.has_conversation(&convo), "alice's other device was invited too");
    net.send(alice, &convo, "from alice 1");
    net.run();
    net.send(alice2, &convo, "from alice 2");
    net.run();
    net.send(bob, &convo, "from bob");
    net.run();

    assert_eq!(
        net.texts(bob),
        vec![(Some(a.clone()), "from alice 1".to_owned()), (Some(a.clone()), "from alice 2".to_owned())],
        "bob confirms both installations as alice's"
    );
    assert_eq!(outgoing_texts(&net, alice), vec![(true, "from alice 2".into()), (false, "from bob".into())]);
    assert_eq!(outgoing_texts(&net, alice2), vec![(true, "from alice 1".into()), (false, "from bob".into())]);
    // Own sends from the other device are never unread.
    for i in [alice, alice2] {
        assert_eq!(net.nodes[i].client.conversations()[0].unread, 1);
        assert!(net.errors(i).is_empty(), "{:?}", net.errors(i));
    }
    assert!(net.errors(bob).is_empty());
}

#[test]
fn a_device_linked_later_is_added_to_existing_chats_and_a_removed_one_reads_nothing_more() {
    let mut net = Net::default();
    let alice = net.join(11);
    let bob = net.join(12);
    let convo = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(bob, &convo, "before the link");
    net.run();

    let alice2 = net.link(alice, 13);
    assert!(net.nodes[alice2].client.has_conversation(&convo), "added by alice's own commit");
    net.send(bob, &convo, "after the link");
    net.run();
    net.send(alice2, &convo, "hello from the new phone");
    net.run();
    // What bob sent before the link came in the archive: what follows is not held for it.
    let texts: Vec<String> = net.texts(alice2).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, vec!["after the link"]);
    let history: Vec<(String, bool)> = net
        .history(alice2, &convo)
        .into_iter()
        .map(|m| (String::from_utf8_lossy(&m.content).into_owned(), m.outgoing))
        .collect();
    assert_eq!(
        history,
        vec![
            ("before the link".to_owned(), false),
            ("after the link".to_owned(), false),
            ("hello from the new phone".to_owned(), true)
        ],
        "the new device's history starts before it joined"
    );
    assert_eq!(net.nodes[alice2].client.conversations()[0].unread, 1, "archived messages are not unread");
    let a = net.account(alice);
    assert!(net.texts(bob).contains(&(Some(a), "hello from the new phone".to_owned())));
    assert!(net.errors(bob).is_empty(), "{:?}", net.errors(bob));

    // Alice removes the new phone (a lost device): it cannot read what follows.
    let gone = net.nodes[alice2].client.installation_id().to_hex();
    net.now += 1;
    let fx = net.nodes[alice].client.remove_installation(&gone, net.now).unwrap();
    net.apply(alice, fx);
    net.run();
    assert_eq!(net.nodes[alice].client.installations().len(), 1);
    assert!(net.errors(alice2).contains(&"INSTALLATION_REMOVED".to_owned()), "it learns it was removed");
    net.send(bob, &convo, "after the removal");
    net.run();
    assert!(!net.texts(alice2).iter().any(|(_, t)| t == "after the removal"));
    assert!(net.texts(alice).iter().any(|(_, t)| t == "after the removal"));
    net.now += 1;
    let err = net.nodes[alice2].client.send(&convo, b"still here?", net.now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InstallationRemoved);
    assert!(net.errors(bob).is_empty(), "{:?}", net.errors(bob));

    // Both keep what they know across a restart (the list is persisted, not re-signed).
    net.restart(alice);
    assert_eq!(net.nodes[alice].client.installations().len(), 1);
    net.restart(alice2);
    assert_eq!(
        net.nodes[alice2].client.send(&convo, b"x", net.now).unwrap_err().code(),
        ErrorCode::InstallationRemoved
    );
}

#[test]
fn link_codes_are_single_use_and_bad_codes_are_invalid_link() {
    let mut net = Net::default();
    let alice = net.join(21);
    assert_eq!(net.link_with("logos_link_nonsense", 22).unwrap_err().code(), ErrorCode::InvalidLink);
    net.now += 1;
    let (code, fx) = net.nodes[alice].client.create_link(net.now).unwrap();
    net.apply(alice, fx);
    let second = net.link_with(&code, 23).unwrap();
    assert_eq!(net.account(second), net.account(alice));
    // The same code again, from another device: refused, no grant.
    let before = net.nodes[alice].client.installations().len();
    assert_eq!(net.link_with(&code, 24).unwrap_err().code(), ErrorCode::InvalidLink);
    assert_eq!(net.nodes[alice].client.installations().len(), before);
    // A well-formed code nobody handed out: no installation answers.
    let other = net.link_with("logos_link_aaaaaaaaaaaaaaaaaaaaaaaaaa", 25);
    assert_eq!(other.map(|_| ()).unwrap_err().code(), ErrorCode::InvalidLink);
    // An expired code is refused.
    net.now += 1;
    let (code, fx) = net.nodes[alice].client.create_link(net.now).unwrap();
    net.apply(alice, fx);
    net.now += crate::core::link::LINK_TTL_MS + 1;
    assert_eq!(net.link_with(&code, 26).unwrap_err().code(), ErrorCode::InvalidLink);
    assert!(net.errors(alice).contains(&"INVALID_LINK".to_owned()));
}

#[test]
fn a_welcome_that_claims_another_account_is_not_that_accounts_chat() {
    let mut net = Net::default();
    let alice = net.join(31);
    let bob = net.join(32);
    let mallory = net.join(33);
    let bob_id = net.nodes[bob].client.account_id();
    net.lookup(mallory);
    let alice_id = net.account(alice);
    let fx = net.nodes[mallory].client.start_impostor_for_tests(&alice_id, &bob_id);
    net.apply(mallory, fx);
    net.run();
    let fake = net.nodes[alice].client.conversations();
    assert_eq!(fake.len(), 1, "alice joined the chat");
    assert!(!fake[0].verified, "but it is not verified as bob's");
    assert_eq!(fake[0].peer.as_deref(), Some(bob_id.to_hex().as_str()));
    // startDirect(bob) makes the real chat instead of reusing the impostor's.
    let real = net.start_direct(alice, &bob_id.to_hex()).unwrap();
    net.run();
    assert_ne!(real, fake[0].id);
    let list = net.nodes[alice].client.conversations();
    assert!(list.iter().any(|c| c.id == real && c.verified));
    // What the impostor writes does not carry bob's account.
    net.send(mallory, &fake[0].id, "it's me, bob");
    net.run();
    assert!(net.texts(alice).iter().all(|(who, _)| who.is_none()));
}

#[test]
fn a_commit_adding_another_accounts_installation_to_a_direct_chat_is_refused() {
    let mut net = Net::default();
    let alice = net.join(41);
    let bob = net.join(42);
    let carol = net.join(43);
    let convo = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    let epoch = net.nodes[bob].client.direct_epoch_for_tests(&convo);
    net.lookup(alice);
    let carol_inst = net.nodes[carol].client.installation_id();
    let fx = net.nodes[alice].client.add_foreign_for_tests(&convo, &carol_inst);
    net.apply(alice, fx);
    net.run();
    assert_eq!(net.nodes[bob].client.direct_epoch_for_tests(&convo), epoch, "bob's state is unchanged");
    assert!(net.errors(bob).contains(&"PROTOCOL".to_owned()), "{:?}", net.errors(bob));
}

#[test]
fn rotating_keys_moves_every_direct_chat_to_a_new_epoch_and_keeps_it_working() {
    let mut net = Net::default();
    let alice = net.join(51);
    let bob = net.join(52);
    let carol = net.join(53);
    let convo = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(bob, &convo, "before");
    net.run();
    let epoch = net.nodes[bob].client.direct_epoch_for_tests(&convo);
    net.now += 1;
    let fx = net.nodes[alice].client.rotate_keys(net.now).unwrap();
    net.apply(alice, fx);
    net.run();
    assert_eq!(net.nodes[bob].client.direct_epoch_for_tests(&convo), epoch + 1, "bob took the update");
    assert_eq!(net.nodes[alice].client.direct_epoch_for_tests(&convo), epoch + 1);
    net.send(bob, &convo, "after");
    net.run();
    net.send(alice, &convo, "me too");
    net.run();
    let texts: Vec<String> = net.texts(alice).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, vec!["before", "after"]);
    assert!(net.texts(bob).iter().any(|(_, t)| t == "me too"));
    // The fresh key package is what others now find: a new chat with carol starts on it.
    let with_carol = net.start_direct(carol, &net.account(alice)).unwrap();
    net.run();
    assert!(net.nodes[alice].client.has_conversation(&with_carol));
    // History from before the rotation still opens.
    assert_eq!(net.history(alice, &convo).len(), 3);
    for i in [alice, bob, carol] {
        assert!(net.errors(i).is_empty(), "{i}: {:?}", net.errors(i));
    }
}

#[test]
fn an_account_is_recovered_on_a_new_device_after_every_device_is_lost_and_revokes_them() {
    let mut net = Net::default();
    let alice = net.join(61);
    let bob = net.join(62);
    let phone = net.link(alice, 63);
    let convo = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    let secret = net.nodes[alice].client.export_recovery().unwrap();
    assert!(secret.starts_with("logos_recovery_"));
    assert_eq!(
        net.recover("logos_recovery_xyz", 64).map(|_| ()).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    // Both devices are lost.
    net.set_online(alice, false);
    net.set_online(phone, false);
    let restored = net.recover(&secret, 65).unwrap();
    assert_eq!(net.account(restored), net.account(alice));
    let listed = net.nodes[restored].client.installations();
    assert_eq!(listed.len(), 3, "the newest list, extended: {listed:?}");
    for lost in [alice, phone] {
        let id = net.nodes[lost].client.installation_id().to_hex();
        net.now += 1;
        let fx = net.nodes[restored].client.remove_installation(&id, net.now).unwrap();
        net.apply(restored, fx);
    }
    net.run();
    assert_eq!(net.nodes[restored].client.installations().len(), 1);
    // Bob's chat with the lost devices is no longer alice's: startDirect makes a new one
    // with the restored device, which reads bob.
    let again = net.start_direct(bob, &net.account(alice)).unwrap();
    net.run();
    assert_ne!(again, convo);
    assert!(net.nodes[restored].client.has_conversation(&again));
    net.send(bob, &again, "welcome back");
    net.run();
    let a = net.account(bob);
    assert_eq!(net.texts(restored), vec![(Some(a), "welcome back".to_owned())]);
    let old = net.nodes[bob].client.conversations().into_iter().find(|c| c.id == convo).unwrap();
    assert!(!old.verified, "the old chat shows as unverified once its devices are revoked");
}

#[test]
fn hostile_frames_on_a_link_topic_change_nothing() {
    use super::sim::Msg;
    let mut net = Net::default();
    let alice = net.join(71);
    net.now += 1;
    let (code, fx) = net.nodes[alice].client.create_link(net.now).unwrap();
    net.apply(alice, fx);
    let topic = crate::core::link::LinkSecret::parse(&code).unwrap().topic();
    // Junk, an empty frame, an oversized one, and a frame sealed under another code.
    let other = crate::core::link::LinkSecret::parse("logos_link_aaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let mut rng = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(9);
    let forged = other.seal(&mut rng, crate::core::link::Kind::Request, &[7; 32]).unwrap();
    for payload in [vec![], vec![1; 40], vec![2; 140 * 1024], forged] {
        net.broadcast(None, Msg { topic: topic.clone(), payload, sent_at: net.now });
    }
    net.run();
    assert_eq!(net.nodes[alice].client.installations().len(), 1, "nothing was added");
    assert!(net.errors(alice).iter().all(|e| e == "INVALID_LINK"), "{:?}", net.errors(alice));
    // A copied-then-altered request (one flipped byte) does not open either.
    let mut rng2 = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(10);
    let (linking, fx) = crate::core::client::Linking::start(&mut rng2, &code).unwrap();
    let mut altered = fx.publish[0].payload.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    net.broadcast(None, Msg { topic: topic.clone(), payload: altered, sent_at: net.now });
    net.run();
    assert_eq!(net.nodes[alice].client.installations().len(), 1);
    // The real code still works afterwards.
    drop(linking);
    let phone = net.link_with(&code, 72).unwrap();
    assert_eq!(net.account(phone), net.account(alice));
    assert_eq!(net.nodes[alice].client.installations().len(), 2);
}

#[test]
fn a_group_add_for_a_key_package_that_claims_someone_elses_account_is_refused() {
    use super::group::WINDOW;
    let mut net = Net::default();
    let [alice, bob, carol, mallory] = [net.join(81), net.join(82), net.join(83), net.join(84)];
    let g = net.create_group(alice, "team", &[bob], None);
    net.advance(WINDOW);
    let carol_id = net.nodes[carol].client.account_id();
    // Mallory's installation with a credential that claims carol's account, proposed by
    // bob with carol's real signed list, and once with no list at all.
    let forged = net.nodes[mallory].client.forged_key_package_for_tests(&carol_id);
    net.lookup(bob);
    let list = net.nodes[bob].client.account_submission_for_tests(&carol_id);
    for bundle in [list, Vec::new()] {
        net.now += 1;
        let fx =
            net.nodes[bob].client.propose_add_for_tests(&g, &carol_id, vec![forged.clone()], bundle, net.now);
        net.apply(bob, fx);
        net.run();
        net.advance(WINDOW);
    }
    for n in [alice, bob] {
        assert_eq!(net.member_accounts(n, &g).len(), 2, "node {n}: nobody was added");
    }
    assert!(!net.nodes[mallory].client.has_conversation(&g), "the impostor did not join");
    // Carol's real add still goes through.
    net.add(alice, &g, &[carol]);
    net.advance(WINDOW);
    assert!(net.nodes[carol].client.has_conversation(&g));
    assert_eq!(net.member_accounts(alice, &g).len(), 3);
}

#[test]
fn link_frames_name_neither_the_account_nor_an_installation() {
    let mut net = Net::default();
    let alice = net.join(91);
    let bob = net.join(92);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(bob, &dm, "some history");
    net.run();
    net.now += 1;
    let (code, fx) = net.nodes[alice].client.create_link(net.now).unwrap();
    net.apply(alice, fx);
    let phone = net.link_with(&code, 93).unwrap();
    let topic = crate::core::link::LinkSecret::parse(&code).unwrap().topic();
    let secrets = [
        net.nodes[alice].client.account_id().as_bytes().to_vec(),
        net.nodes[alice].client.account_id().to_hex().into_bytes(),
        net.nodes[alice].client.installation_id().as_bytes().to_vec(),
        net.nodes[alice].client.installation_id().to_hex().into_bytes(),
        net.nodes[phone].client.installation_id().as_bytes().to_vec(),
        net.nodes[phone].client.installation_id().to_hex().into_bytes(),
        code.as_bytes()[crate::core::link::LINK_PREFIX.len()..].to_vec(),
    ];
    let frames: Vec<&Vec<u8>> = net.history.iter().filter(|m| m.topic == topic).map(|m| &m.payload).collect();
    assert!(frames.len() >= 4, "request, grant, ready, history: {}", frames.len());
    for f in frames {
        for s in &secrets {
            assert!(
                !f.windows(s.len()).any(|w| w == s.as_slice()),
                "a link frame carries a clear identifier"
            );
        }
    }
    assert!(
        !topic.contains(&code[crate::core::link::LINK_PREFIX.len()..]),
        "the topic does not show the code"
    );
}

#[test]
fn a_linked_device_joins_the_accounts_groups_with_their_history() {
    use super::group::WINDOW;
    let mut net = Net::default();
    let [alice, bob] = [net.join(101), net.join(102)];
    let g = net.create_group(alice, "team", &[bob], None);
    net.advance(WINDOW);
    net.send(bob, &g, "before the link");
    net.run();
    let phone = net.link(alice, 103);
    net.advance(WINDOW);
    assert!(net.nodes[phone].client.has_conversation(&g), "the phone joined the group");
    let members = net.nodes[bob].client.group_members(&g).unwrap();
    let a = net.account(alice);
    let alice_member = members.iter().find(|m| m.account_id == a).unwrap();
    assert_eq!(alice_member.installations.len(), 2, "alice with both devices");
    assert!(alice_member.verified);
    let history: Vec<String> = net
        .history(phone, &g)
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.content).into_owned())
        .collect();
    assert_eq!(history, vec!["before the link"], "the archive of the group came too");
    net.send(bob, &g, "after the link");
    net.run();
    net.send(phone, &g, "from the phone");
    net.run();
    assert!(net.texts(phone).iter().any(|(_, t)| t == "after the link"));
    assert!(net.texts(bob).contains(&(Some(a.clone()), "from the phone".to_owned())));
    assert!(outgoing_texts(&net, alice).contains(&(true, "from the phone".to_owned())));
    for n in [alice, bob, phone] {
        assert!(net.errors(n).is_empty(), "node {n}: {:?}", net.errors(n));
    }
}

#[test]
fn a_removed_installation_is_taken_out_of_the_accounts_groups() {
    use super::group::WINDOW;
    let mut net = Net::default();
    let [alice, bob] = [net.join(111), net.join(112)];
    let g = net.create_group(alice, "team", &[bob], None);
    net.advance(WINDOW);
    let phone = net.link(alice, 113);
    net.advance(WINDOW);
    assert!(net.nodes[phone].client.has_conversation(&g));
    let gone = net.nodes[phone].client.installation_id().to_hex();
    // Bob cannot take alice's phone out, even with a list of alice's that does not show it
    // (her first one, from before the link): only alice's own request counts.
    let old_list = {
        let alice_id = net.nodes[alice].client.account_id();
        net.plain_directory()
            .into_iter()
            .find(|(t, p)| {
                t == crate::core::Client::directory_topics()[0]
                    && crate::core::wire::decode::<crate::core::wire::AccountSubmissionV1>("t", p)
                        .unwrap()
                        .account_pub
                        == alice_id.as_bytes()
            })
            .unwrap()
            .1
    };
    let alice_id = net.nodes[alice].client.account_id();
    let forged = crate::core::wire::group_proposal::Request::RemoveInstallations(
        crate::core::wire::RemoveInstallations {
            account: alice_id.as_bytes().to_vec(),
            installations: vec![net.nodes[phone].client.installation_id().as_bytes().to_vec()],
            account_bundle: old_list,
        },
    );
    net.now += 1;
    let fx = net.nodes[bob].client.propose_request_for_tests(&g, forged, net.now);
    net.apply(bob, fx);
    net.run();
    net.advance(WINDOW);
    let a = net.account(alice);
    let mine =
        net.nodes[alice].client.group_members(&g).unwrap().into_iter().find(|m| m.account_id == a).unwrap();
    assert_eq!(mine.installations.len(), 2, "bob's request was refused");
    net.now += 1;
    let fx = net.nodes[alice].client.remove_installation(&gone, net.now).unwrap();
    net.apply(alice, fx);
    net.run();
    net.advance(WINDOW);
    for n in [alice, bob] {
        let members = net.nodes[n].client.group_members(&g).unwrap();
        let mine = members.iter().find(|m| m.account_id == a).unwrap();
        assert_eq!(mine.installations, vec![net.nodes[alice].client.installation_id().to_hex()], "node {n}");
    }
    net.send(bob, &g, "after the removal");
    net.run();
    assert!(net.texts(alice).iter().any(|(_, t)| t == "after the removal"));
    assert!(
        !net.texts(phone).iter().any(|(_, t)| t == "after the removal"),
        "the removed phone reads nothing new"
    );
    for n in [alice, bob] {
        assert!(net.errors(n).is_empty(), "node {n}: {:?}", net.errors(n));
    }
}
