//! An account's records and links under attack (issue 13): nothing published names an
//! account, sealed records that are moved or altered, a code seen later, the account
//! log, calls that fail late, impostors of our own account, a used code.

use super::sim::Net;
use crate::core::{Client, ErrorCode};
use rand_chacha::rand_core::SeedableRng as _;

#[test]
fn nothing_published_while_registering_linking_rotating_or_removing_names_an_account() {
    let mut net = Net::default();
    let alice = net.join(131);
    let bob = net.join(132);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(bob, &dm, "hello");
    net.run();
    let phone = net.link(alice, 133);
    net.now += 1;
    let fx = net.nodes[phone].client.rotate_keys(net.now).unwrap();
    net.apply(phone, fx);
    net.run();
    let laptop = net.link(alice, 134);
    net.now += 1;
    let gone = net.nodes[laptop].client.installation_id().to_hex();
    let fx = net.nodes[alice].client.remove_installation(&gone, net.now).unwrap();
    net.apply(alice, fx);
    net.run();
    let mut ids: Vec<Vec<u8>> = Vec::new();
    for n in &net.nodes {
        let (a, i) = (n.client.account_id(), n.client.installation_id());
        ids.extend([
            a.as_bytes().to_vec(),
            a.to_hex().into_bytes(),
            i.as_bytes().to_vec(),
            i.to_hex().into_bytes(),
        ]);
    }
    assert!(net.history.len() > 20);
    for m in &net.history {
        assert!(!Client::directory_topics().contains(&m.topic.as_str()), "no plain record by default");
        for id in &ids {
            assert!(
                !m.payload.windows(id.len()).any(|w| w == id.as_slice()),
                "a record on {} carries an account address or installation key in clear",
                m.topic
            );
            assert!(!m.topic.as_bytes().windows(id.len()).any(|w| w == id.as_slice()));
        }
    }
    // What was sealed is still found by who knows the address: a new chat with alice works.
    let carol = net.join(135);
    let with_alice = net.start_direct(carol, &net.account(alice)).unwrap();
    net.run();
    assert!(net.nodes[phone].client.has_conversation(&with_alice), "the linked device is found too");
    assert!(!net.nodes[laptop].client.has_conversation(&with_alice), "the removed one is not");
    // With public records on, libchat's plain ones go too (and do name the account).
    net.nodes[carol].client.set_public_records(true);
    net.now += 1;
    let fx = net.nodes[carol].client.announce(net.now).unwrap();
    net.apply(carol, fx);
    let carol_id = net.nodes[carol].client.account_id();
    assert!(net.history.iter().any(|m| m.topic == Client::directory_topics()[0]
        && m.payload.windows(32).any(|w| w == carol_id.as_bytes())));
}

#[test]
fn sealed_records_copied_to_another_topic_or_altered_are_refused_and_change_nothing() {
    use crate::core::directory::sealed;
    let mut net = Net::default();
    let alice = net.join(141);
    let bob = net.join(142);
    let bob_id = net.nodes[bob].client.account_id();
    let list_topic = sealed::account_topic(&bob_id);
    let device_topic = sealed::device_topic(&bob_id, &net.nodes[bob].client.installation_id());
    let list = net.history.iter().find(|m| m.topic == list_topic).unwrap().payload.clone();
    let kp = net.history.iter().find(|m| m.topic == device_topic).unwrap().payload.clone();
    let client = &mut net.nodes[alice].client;
    client.lookup_topics(&[&bob_id.to_hex()]);
    // The list on the key-package topic (and the other way round) does not open there.
    assert!(client.ingest_directory(&device_topic, &list).is_err());
    for i in [0, 1, 30, list.len() - 1] {
        let mut bad = list.clone();
        bad[i] ^= 1;
        assert!(client.ingest_directory(&list_topic, &bad).is_err(), "byte {i}");
    }
    // A record sealed right under bob's address but signed by someone else is refused.
    let mallory = crate::core::account::AccountKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7));
    let forged_list = mallory.sign_bundle(99, vec![net.nodes[alice].client.installation_id()]).unwrap();
    let mut sub: crate::core::wire::AccountSubmissionV1 =
        crate::core::wire::decode("t", &crate::core::directory::account_submission(&forged_list)).unwrap();
    sub.account_pub = bob_id.as_bytes().to_vec();
    let forged = sealed::seal(
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(8),
        &bob_id,
        &list_topic,
        sealed::Kind::Bundle,
        &prost::Message::encode_to_vec(&sub),
    )
    .unwrap();
    let client = &mut net.nodes[alice].client;
    assert!(client.ingest_directory(&list_topic, &forged).is_err());
    assert!(client.ingest_directory(&list_topic, &list).is_ok());
    // The key package's topic is named once the list that shows the device is in.
    assert!(client.ingest_directory(&device_topic, &kp).is_err());
    assert!(client.lookup_topics(&[&bob_id.to_hex()]).contains(&device_topic));
    assert!(client.ingest_directory(&device_topic, &kp).is_ok());
    // Bob is found as he is, and a chat with him works.
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    assert!(net.nodes[bob].client.has_conversation(&dm));
}

#[test]
fn whoever_sees_the_code_later_reads_neither_the_account_key_nor_the_history() {
    use crate::core::link::{encode_request, Kind, LinkSecret};
    let mut net = Net::default();
    let alice = net.join(151);
    let bob = net.join(152);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(bob, &dm, "a secret history");
    net.run();
    net.now += 1;
    let (code, fx) = net.nodes[alice].client.create_link(net.now).unwrap();
    net.apply(alice, fx);
    let phone = net.link_with(&code, 153).unwrap();
    let got = net.history(phone, &dm);
    assert_eq!(
        got.first().map(|m| m.content.as_slice()),
        Some(&b"a secret history"[..]),
        "the phone read it"
    );
    // An observer with the code and every frame the store kept opens each frame's outer
    // seal, and finds neither the account key nor a word of the history inside.
    let secret = LinkSecret::parse(&code).unwrap();
    let seed = net.nodes[alice].client.export_recovery().unwrap();
    let seed = hex::decode(seed.trim_start_matches(crate::core::client::RECOVERY_PREFIX)).unwrap();
    let frames: Vec<Vec<u8>> =
        net.history.iter().filter(|m| m.topic == secret.topic()).map(|m| m.payload.clone()).collect();
    let mut opened = 0;
    for f in &frames {
        let Ok((kind, plain)) = secret.open(f) else { continue };
        opened += 1;
        assert!(!plain.windows(32).any(|w| w == seed.as_slice()), "{kind:?} shows the account key");
        assert!(!plain.windows(8).any(|w| w == b"a secret"), "{kind:?} shows the history");
    }
    assert!(opened >= 4);
    // Nor does a fresh device of theirs with the code: its grant would be sealed to
    // another key, and a request naming the phone with another key is not answered.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(154);
    let (thief, _) = crate::core::client::Linking::start(&mut rng, &code).unwrap();
    for f in &frames {
        assert!(!matches!(thief.open_grant(f), Ok(Some(_))), "the thief opened a grant");
    }
    let phone_id = net.nodes[phone].client.installation_id();
    let replay = secret.seal(&mut rng, Kind::Request, &encode_request(&phone_id, &[7u8; 1216])).unwrap();
    let topic = secret.topic();
    net.now += 1;
    let fx = net.nodes[alice].client.receive(&topic, &replay, net.now, net.now);
    assert!(fx.publish.is_empty() && fx.events.is_empty(), "{fx:?}");
}

#[test]
fn the_account_log_follows_links_and_removals_survives_restarts_and_refuses_rewrites() {
    use crate::core::account_log::{AccountLog, Entry};
    let mut net = Net::default();
    let alice = net.join(161);
    let bob = net.join(162);
    let phone = net.link(alice, 163);
    let alice_id = net.nodes[alice].client.account_id();
    let (laptop_dev, phone_dev) =
        (net.nodes[alice].client.installation_id(), net.nodes[phone].client.installation_id());
    net.now += 1;
    let fx = net.nodes[alice].client.remove_installation(&phone_dev.to_hex(), net.now).unwrap();
    net.apply(alice, fx);
    net.run();
    let (log, _) = net.nodes[alice].client.logs_for_tests(&alice_id);
    assert_eq!(
        log.entries,
        vec![Entry::Add(laptop_dev.clone()), Entry::Add(phone_dev.clone()), Entry::Remove(1)]
    );
    assert_eq!(log.removed(), vec![phone_dev.clone()]);
    // Bob reads it (sealed, beside the lamport list) and goes by it.
    net.lookup(bob);
    let (_, seen) = net.nodes[bob].client.logs_for_tests(&alice_id);
    assert_eq!(seen.as_ref(), Some(&log));
    assert!(!net.nodes[bob].client.confirms_for_tests(&alice_id, &phone_dev));
    // Persisted: a restart keeps it, and the next change extends it.
    net.restart(alice);
    assert_eq!(net.nodes[alice].client.logs_for_tests(&alice_id).0, log);
    let tablet = net.link(alice, 164);
    let (longer, _) = net.nodes[alice].client.logs_for_tests(&alice_id);
    assert!(longer.extends(&log) && longer.entries.len() == 4);
    assert_eq!(net.nodes[tablet].client.logs_for_tests(&alice_id).0, longer, "the grant carried it");
    // Even signed by the account, a log that rewrites history (the phone never removed)
    // or an older one is refused, and changes nothing.
    let seed = net.nodes[alice].client.export_recovery().unwrap();
    let key = crate::core::account::AccountKey::from_seed(
        &hex::decode(seed.trim_start_matches(crate::core::client::RECOVERY_PREFIX))
            .unwrap()
            .try_into()
            .unwrap(),
    );
    net.lookup(bob);
    let rewrite = AccountLog::first(&key, &[laptop_dev.clone(), phone_dev.clone()]).unwrap();
    for bad in [rewrite, log.clone()] {
        let (topic, record) =
            crate::core::directory::sealed_log(&mut rand_chacha::ChaCha20Rng::seed_from_u64(9), &bad)
                .unwrap();
        assert!(net.nodes[bob].client.ingest_directory(&topic, &record).is_err());
    }
    assert_eq!(net.nodes[bob].client.logs_for_tests(&alice_id).1, Some(longer));
    assert!(!net.nodes[bob].client.confirms_for_tests(&alice_id, &phone_dev));
    // An old lamport list that still shows the phone does not bring it back either.
    let old = key.sign_bundle(0, vec![laptop_dev, phone_dev.clone()]).unwrap();
    let mut fresh = crate::core::directory::Directory::default();
    fresh.accept_bundle(old).unwrap();
    fresh.accept_log(net.nodes[bob].client.logs_for_tests(&alice_id).1.unwrap()).unwrap();
    assert!(!fresh.confirms(&alice_id, &phone_dev));
}

#[test]
fn a_removal_or_rotation_that_fails_late_leaves_the_account_as_it_was() {
    let mut net = Net::default();
    let alice = net.join(171);
    let bob = net.join(172);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    let phone = net.link(alice, 173);
    let alice_id = net.nodes[alice].client.account_id();
    let phone_id = net.nodes[phone].client.installation_id();
    let before = (net.nodes[alice].client.installations(), net.nodes[alice].client.logs_for_tests(&alice_id));
    let record = net.nodes[alice].client.account_record_for_tests();
    let now = net.now + 1;
    net.nodes[alice].client.fail_after_for_tests(|c| {
        c.remove_installation(&phone_id.to_hex(), now).unwrap();
        c.rotate_keys(now).unwrap();
    });
    assert_eq!(
        (net.nodes[alice].client.installations(), net.nodes[alice].client.logs_for_tests(&alice_id)),
        before
    );
    assert_eq!(
        net.nodes[alice].client.account_record_for_tests(),
        record,
        "list, log and key package as they were"
    );
    assert!(net.nodes[alice].client.confirms_for_tests(&alice_id, &phone_id));
    // A lookup of our own account finds nothing newer to follow, and the real removal works.
    net.lookup(alice);
    let fx = net.nodes[alice].client.lookup_complete_at(&alice_id.to_hex(), now);
    net.apply(alice, fx);
    assert_eq!(net.nodes[alice].client.installations().len(), 2);
    net.now += 1;
    let fx = net.nodes[alice].client.remove_installation(&phone_id.to_hex(), net.now).unwrap();
    net.apply(alice, fx);
    net.run();
    net.send(bob, &dm, "only the laptop");
    net.run();
    assert!(net.texts(alice).iter().any(|t| t.1 == "only the laptop"));
    assert!(!net.texts(phone).iter().any(|t| t.1 == "only the laptop"));
}

#[test]
fn an_impostor_whose_leaf_claims_our_account_cannot_stop_us_by_removing_us() {
    let mut net = Net::default();
    let alice = net.join(181);
    let bob = net.join(182);
    let mallory = net.join(183);
    let alice_id = net.nodes[alice].client.account_id();
    net.lookup(mallory);
    // Mallory's chat with alice, with a leaf that claims alice's own account.
    let fx = net.nodes[mallory].client.start_impostor_for_tests(&alice_id.to_hex(), &alice_id);
    net.apply(mallory, fx);
    net.run();
    let fake = net.nodes[mallory].client.conversations()[0].id.clone();
    // A chat whose other side claims alice's own account is refused at the Welcome ("a
    // direct chat needs a peer account": her own installations reach her chats by her
    // own commits, never by a Welcome of a "peer").
    assert!(!net.nodes[alice].client.has_conversation(&fake), "alice joined it");
    // So its commit that removes her leaf reaches nothing she holds, even fed to her.
    let me = net.nodes[alice].client.installation_id();
    let fx = net.nodes[mallory].client.remove_leaf_for_tests(&fake, &me);
    let commit = fx.publish[0].clone();
    net.apply(mallory, fx);
    net.run();
    net.now += 1;
    let fx = net.nodes[alice].client.receive(&commit.content_topic, &commit.payload, net.now, net.now);
    net.apply(alice, fx);
    // She is not stopped as a removed installation.
    assert!(
        net.errors(alice).iter().all(|e| e != ErrorCode::InstallationRemoved.as_str()),
        "{:?}",
        net.errors(alice)
    );
    assert_eq!(net.nodes[alice].client.installations().len(), 1);
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(bob, &dm, "still here");
    net.run();
    assert!(net.texts(alice).iter().any(|t| t.1 == "still here"));
}

#[test]
fn a_second_device_trying_a_used_code_is_refused_at_once() {
    let mut net = Net::default();
    let alice = net.join(191);
    net.now += 1;
    let (code, fx) = net.nodes[alice].client.create_link(net.now).unwrap();
    net.apply(alice, fx);
    let _phone = net.link_with(&code, 192).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(193);
    let (thief, fx) = crate::core::client::Linking::start(&mut rng, &code).unwrap();
    let topic = thief.topic();
    let request = fx.publish[0].payload.clone();
    net.now += 1;
    let fx = net.nodes[alice].client.receive(&topic, &request, net.now, net.now);
    assert!(!fx.publish.is_empty(), "a refusal is published");
    let refusal = thief.open_grant(&fx.publish[0].payload).err().map(|e| e.code());
    assert_eq!(refusal, Some(ErrorCode::InvalidLink));
}
