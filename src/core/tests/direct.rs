//! DirectV1 scenarios: two accounts find each other and chat.

use super::sim::Net;
use crate::core::{ErrorCode, Event};

fn pair() -> (Net, usize, usize, String) {
    let mut net = Net::default();
    let alice = net.join(1);
    let bob = net.join(2);
    let bob_id = net.account(bob);
    let convo = net.start_direct(alice, &bob_id).unwrap();
    net.run();
    (net, alice, bob, convo)
}

#[test]
fn alice_and_bob_chat_both_ways() {
    let (mut net, alice, bob, convo) = pair();
    assert!(net.nodes[bob].client.has_conversation(&convo), "bob joined from the Welcome");
    assert!(net.nodes[bob].events.iter().any(|e| matches!(e, Event::Conversation(c) if c.id == convo)));

    net.send(alice, &convo, "hello bob");
    net.run();
    net.send(bob, &convo, "hi alice");
    net.run();

    let (a, b) = (net.account(alice), net.account(bob));
    assert_eq!(net.texts(bob), vec![(Some(a), "hello bob".to_owned())]);
    assert_eq!(net.texts(alice), vec![(Some(b), "hi alice".to_owned())]);
    assert!(net.errors(alice).is_empty() && net.errors(bob).is_empty());
    // Bob's reply carries alice's message in its causal history: an ack.
    assert!(net.nodes[alice].events.iter().any(|e| matches!(e, Event::Ack { .. })));
}

#[test]
fn message_sent_while_peer_offline_arrives_after() {
    let (mut net, alice, bob, convo) = pair();
    net.set_online(bob, false);
    net.send(alice, &convo, "are you there?");
    net.send(alice, &convo, "second");
    net.run();
    assert!(net.texts(bob).is_empty());
    net.set_online(bob, true);
    net.run();
    let texts: Vec<String> = net.texts(bob).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, vec!["are you there?", "second"]);
}

#[test]
fn welcome_and_messages_sent_before_the_peer_ever_came_online_arrive() {
    let mut net = Net::default();
    let alice = net.join(10);
    let bob = net.join(11);
    net.set_online(bob, false);
    let convo = net.start_direct(alice, &net.account(bob)).unwrap();
    net.send(alice, &convo, "first");
    net.run();
    net.set_online(bob, true);
    net.run();
    assert_eq!(net.texts(bob).len(), 1);
    net.send(bob, &convo, "back");
    net.run();
    assert_eq!(net.texts(alice).len(), 1);
}

#[test]
fn start_direct_rejects_malformed_and_unknown_accounts() {
    let mut net = Net::default();
    let alice = net.join(3);
    let err = net.start_direct(alice, "not-an-account").unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let err = net.start_direct(alice, &"ab".repeat(32)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownAccount);
    let own = net.account(alice);
    assert_eq!(net.start_direct(alice, &own).unwrap_err().code(), ErrorCode::InvalidArgument);
    assert!(net.nodes[alice].client.conversations().is_empty());
}

#[test]
fn starting_twice_returns_the_same_conversation() {
    let (mut net, alice, bob, convo) = pair();
    let again = net.start_direct(alice, &net.account(bob)).unwrap();
    assert_eq!(again, convo);
    assert_eq!(net.nodes[alice].client.conversations().len(), 1);
}

#[test]
fn garbage_truncated_and_oversized_envelopes_change_nothing() {
    let (mut net, alice, bob, convo) = pair();
    let inbox = net.nodes[bob].client.installation_id().inbox_topic().as_str().to_owned();
    let convo_topic = crate::core::ConversationId::parse(&convo).unwrap().topic().as_str().to_owned();
    let before = net.nodes[bob].client.conversations();

    // A real message, then broken copies of it.
    net.set_online(bob, false);
    net.send(alice, &convo, "real");
    let real = net.history.last().unwrap().payload.clone();
    net.set_online(bob, true);
    net.nodes[bob].queue.clear();

    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        (convo_topic.clone(), vec![]),
        (convo_topic.clone(), vec![0xff; 64]),
        (convo_topic.clone(), real[..real.len() / 2].to_vec()),
        (convo_topic.clone(), vec![0x0a; 200_000]),
        (inbox.clone(), vec![0x12, 0xff, 0x01]),
        (inbox.clone(), vec![0; 1]),
    ];
    let mut flipped = real.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    inputs.push((convo_topic.clone(), flipped));
    for cut in (1..real.len()).step_by(97) {
        inputs.push((convo_topic.clone(), real[..cut].to_vec()));
    }
    for (t, p) in inputs {
        let fx = net.nodes[bob].client.receive(&t, &p, 1, 2);
        assert!(fx.publish.is_empty() && fx.subscribe.is_empty());
        assert!(!fx.events.iter().any(|e| matches!(e, Event::Message(_) | Event::Conversation(_))));
    }
    assert_eq!(net.nodes[bob].client.conversations(), before);
    // The real message still decrypts afterwards: state was untouched.
    let fx = net.nodes[bob].client.receive(&convo_topic, &real, 1, 2);
    net.apply(bob, fx);
    assert_eq!(
        net.texts(bob).last().map(|t| t.1.clone()),
        Some("real".to_owned()),
        "{:?}",
        net.nodes[bob].events.last()
    );
}

#[test]
fn a_replayed_message_is_delivered_once() {
    let (mut net, alice, bob, convo) = pair();
    net.send(alice, &convo, "once");
    net.run();
    let all = net.history.clone();
    for m in all {
        let fx = net.nodes[bob].client.receive(&m.topic, &m.payload, m.sent_at, 99);
        net.apply(bob, fx);
    }
    assert_eq!(net.texts(bob).len(), 1);
    assert!(net.errors(bob).is_empty(), "{:?}", net.errors(bob));
}

#[test]
fn state_does_not_grow_with_each_message() {
    let (mut net, alice, bob, convo) = pair();
    let size = |net: &Net, i: usize| net.nodes[i].client.storage_footprint();
    net.send(alice, &convo, "warm-up");
    net.run();
    let (a0, b0) = (size(&net, alice), size(&net, bob));
    for i in 0..200 {
        net.send(alice, &convo, &format!("m{i}"));
        net.run();
    }
    let (a1, b1) = (size(&net, alice), size(&net, bob));
    assert!(a1.0 <= a0.0 + 2 && b1.0 <= b0.0 + 2, "entries grew: alice {a0:?}→{a1:?}, bob {b0:?}→{b1:?}");
    assert!(
        a1.1 <= a0.1 * 11 / 10 && b1.1 <= b0.1 * 11 / 10,
        "bytes grew: alice {a0:?}→{a1:?}, bob {b0:?}→{b1:?}"
    );
}

#[test]
fn a_forged_key_package_record_is_never_used() {
    use crate::core::directory::KEYPACKAGE_TOPIC;
    use crate::core::wire::KeyPackageSubmissionV1;
    use prost::Message as _;
    let mut net = Net::default();
    let alice = net.join(41);
    let bob = net.join(42);
    // A "newer" submission for bob's device that bob did not sign is refused at once.
    let bob_device = net.nodes[bob].client.installation_id();
    let real = net
        .plain_directory()
        .into_iter()
        .filter(|(t, _)| t == KEYPACKAGE_TOPIC)
        .map(|(_, p)| KeyPackageSubmissionV1::decode(p.as_slice()).unwrap())
        .find(|s| s.device_id == bob_device.as_bytes())
        .unwrap();
    let mut forged = real;
    forged.payload[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let forged = forged.encode_to_vec();
    net.lookup(alice);
    let err = net.nodes[alice].client.ingest_directory(KEYPACKAGE_TOPIC, &forged).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Protocol);
    // The real record still stands behind it.
    let bob_id = net.account(bob);
    assert!(net.start_direct(alice, &bob_id).is_ok());
}

#[test]
fn history_replayed_past_the_seen_window_is_quietly_recognised() {
    let (mut net, alice, bob, convo) = pair();
    net.send(alice, &convo, "once");
    net.run();
    net.send(bob, &convo, "reply");
    net.run();
    // The same envelopes arriving under another digest (as after the seen window has
    // forgotten them): our own message, and a generation already consumed.
    let all = net.history.clone();
    for m in all.iter().filter(|m| {
        m.topic.starts_with("/logos-chat/1/") && !crate::core::Client::is_directory_topic(&m.topic)
    }) {
        for who in [alice, bob] {
            let fx = net.nodes[who].client.receive("/logos-chat/1/replayed/proto", &m.payload, 1, 2);
            assert!(
                fx.events.iter().all(|e| !matches!(e, Event::Error { .. } | Event::Message(_))),
                "{:?}",
                fx.events
            );
        }
    }
    net.send(alice, &convo, "still fine");
    net.run();
    assert_eq!(net.texts(bob).last().unwrap().1, "still fine");
}

#[test]
fn a_lost_message_is_reported_missing_once_and_known_once_it_is_read_back() {
    let (mut net, alice, bob, convo) = pair();
    let first = net.send(alice, &convo, "lost on the way");
    let lost = net.nodes[bob].queue.pop_back().unwrap();
    net.send(alice, &convo, "names the lost one in its causal history");
    net.send(alice, &convo, "names it again");
    net.run();
    let missing: Vec<&Event> = net.nodes[bob]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Missing { message_id, .. } if *message_id == first))
        .collect();
    assert_eq!(missing.len(), 1, "reported once, however many later messages name it");
    assert!(!net.nodes[bob].client.has_message(&convo, &first), "the driver keeps reading the store for it");
    // The driver's read of the store brings it back.
    net.now += 1;
    let fx = net.nodes[bob].client.receive(&lost.topic, &lost.payload, lost.sent_at, net.now);
    net.apply(bob, fx);
    assert!(net.nodes[bob].client.has_message(&convo, &first));
    assert!(net.texts(bob).iter().any(|t| t.1 == "lost on the way"));
    assert!(
        !net.nodes[bob].client.has_message(&convo, "not-an-id")
            && !net.nodes[bob].client.has_message("bad", &first)
    );
}

/// Issue 12, class 8: an SDS payload's id, sender and clock are its sender's claims.
fn edited(
    net: &mut Net,
    from: usize,
    dm: &str,
    text: &str,
    edit: impl FnOnce(&mut crate::core::wire::ReliablePayload),
) {
    let fx = net.nodes[from].client.send_edited_for_tests(dm, text.as_bytes(), edit).unwrap();
    net.apply(from, fx);
    net.run();
}

#[test]
fn a_message_id_its_content_does_not_derive_or_another_senders_name_is_refused() {
    let mut net = Net::default();
    let [alice, bob] = [net.join(401), net.join(402)];
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    // Alice claims the id her next real message will have, to have it dropped as a copy.
    let next =
        crate::core::sds::message_id(&dm, &net.nodes[alice].client.identity_id_for_tests(), 2, b"real");
    edited(&mut net, alice, &dm, "fake", |p| p.message_id = next.as_str().to_owned());
    edited(&mut net, alice, &dm, "not mine", |p| p.sender_id = "someone else".into());
    let texts: Vec<String> = net.texts(bob).into_iter().map(|t| t.1).collect();
    assert!(texts.is_empty(), "bob took {texts:?}");
    assert_eq!(net.errors(bob), ["PROTOCOL", "PROTOCOL"]);
    // The real message still arrives and bob still answers. (Alice's client names its
    // forgeries in her causal history, so bob holds "real" for them until the hold ends.)
    net.send(alice, &dm, "real");
    net.send(bob, &dm, "reply");
    net.advance(crate::core::client::HOLD_MS + 1_000);
    assert_eq!(net.texts(bob).last().map(|t| t.1.as_str()), Some("real"));
    assert_eq!(net.texts(alice).last().map(|t| t.1.as_str()), Some("reply"));
}

#[test]
fn a_lamport_time_far_ahead_moves_our_clock_only_so_far() {
    use crate::core::sds::{message_id, MAX_LAMPORT_JUMP};
    let mut net = Net::default();
    let [alice, bob] = [net.join(411), net.join(412)];
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    let me = net.nodes[alice].client.identity_id_for_tests();
    edited(&mut net, alice, &dm, "from the far future", |p| {
        p.lamport_timestamp = i32::MAX;
        p.message_id = message_id(&p.channel_id, &me, i32::MAX, &p.content).as_str().to_owned();
    });
    assert_eq!(
        net.texts(bob).last().map(|t| t.1.as_str()),
        Some("from the far future"),
        "delivered all the same"
    );
    // Bob's clock moved by at most the bound: his messages still count up, and two with
    // the same content get two ids.
    let a = net.send(bob, &dm, "ok");
    let b = net.send(bob, &dm, "ok");
    assert_ne!(a, b);
    // (Alice's client remembers the id before her edit: she holds bob's messages, which
    // name the edited one, until the hold ends.)
    net.advance(crate::core::client::HOLD_MS + 1_000);
    let lamport = net.nodes[bob].client.lamport_for_tests(&dm);
    assert!(lamport <= MAX_LAMPORT_JUMP + 10, "bob's clock is at {lamport}");
    assert_eq!(net.texts(alice).iter().filter(|t| t.1 == "ok").count(), 2);
}
