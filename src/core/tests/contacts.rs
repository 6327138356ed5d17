//! Contacts, cards, blocking and message requests (issue 14).

use super::sim::Net;
use crate::core::{Client, ErrorCode};

/// A network whose store forgot every directory record: only cards find anyone.
fn forget_directory(net: &mut Net) {
    net.history.retain(|m| !Client::is_directory_topic(&m.topic));
}

#[test]
fn a_card_alone_starts_a_chat_and_a_flipped_or_rolled_back_card_is_refused_or_ignored() {
    let mut net = Net::default();
    let alice = net.join(201);
    let bob = net.join(202);
    net.now += 1;
    let card = net.nodes[alice].client.contact_card(false, net.now).unwrap();
    let compact = net.nodes[alice].client.contact_card(true, net.now).unwrap();
    assert!(card.starts_with("logos_chatcard_") && card.len() < 6000, "{}", card.len());
    assert!(compact.len() < 600, "a compact card fits a QR code: {}", compact.len());
    forget_directory(&mut net);
    let alice_id = net.account(alice);
    assert!(net.start_direct(bob, &alice_id).is_err(), "nothing to find without the card");
    // Every single changed character is INVALID_CARD, and changes nothing.
    let body = card.len() - "logos_chatcard_".len();
    let step = (body / 97).max(1);
    for i in ("logos_chatcard_".len()..card.len()).step_by(step) {
        let mut b = card.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(b).unwrap();
        let e = net.nodes[bob].client.add_contact(&bad, None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidCard, "char {i}");
    }
    assert!(net.nodes[bob].client.contacts().is_empty());
    let (c, fx) = net.nodes[bob].client.add_contact(&card, Some("Alice")).unwrap();
    net.apply(bob, fx);
    assert_eq!(
        (c.account_id.as_str(), c.nickname.as_deref(), c.blocked),
        (alice_id.as_str(), Some("Alice"), false)
    );
    let dm = net.start_direct(bob, &alice_id).unwrap();
    net.run();
    net.send(alice, &dm, "found by card");
    net.run();
    let got = net.texts(bob);
    assert!(
        got.iter().any(|(who, t)| t == "found by card" && who.as_deref() == Some(alice_id.as_str())),
        "{got:?}"
    );
    // A card from before alice linked a phone is ignored once bob knows the newer list.
    let phone = net.link(alice, 203);
    net.now += 1;
    let newer = net.nodes[alice].client.contact_card(false, net.now).unwrap();
    let (_, fx) = net.nodes[bob].client.add_contact(&newer, None).unwrap();
    net.apply(bob, fx);
    let phone_id = net.nodes[phone].client.installation_id();
    let alice_acct = net.nodes[alice].client.account_id();
    assert!(net.nodes[bob].client.confirms_for_tests(&alice_acct, &phone_id));
    let (again, fx) = net.nodes[bob].client.add_contact(&card, None).unwrap();
    net.apply(bob, fx);
    assert_eq!(again.nickname.as_deref(), Some("Alice"), "still the contact");
    assert!(
        net.nodes[bob].client.confirms_for_tests(&alice_acct, &phone_id),
        "the old list did not roll back"
    );
    let own_card = net.nodes[bob].client.contact_card(false, 1).unwrap();
    assert_eq!(
        net.nodes[bob].client.add_contact(&own_card, None).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn a_blocked_account_gets_no_chat_no_group_message_through_and_start_direct_is_blocked() {
    let mut net = Net::default();
    let alice = net.join(211);
    let bob = net.join(212);
    let mallory = net.join(213);
    let mallory_id = net.account(mallory);
    let fx = net.nodes[bob].client.block(&mallory_id).unwrap();
    net.apply(bob, fx);
    assert!(net.nodes[bob].client.contacts().iter().any(|c| c.account_id == mallory_id && c.blocked));
    // Mallory's invite: no conversation appears, and nothing is reported.
    let dm = net.start_direct(mallory, &net.account(bob)).unwrap();
    net.run();
    assert!(!net.nodes[bob].client.has_conversation(&dm));
    assert!(net.errors(bob).is_empty(), "{:?}", net.errors(bob));
    assert_eq!(net.start_direct(bob, &mallory_id).unwrap_err().code(), ErrorCode::Blocked);
    // In a group, what mallory says does not reach bob; what alice says does.
    let g = net.create_group(alice, "g", &[bob, mallory], None);
    net.advance(super::group::WINDOW);
    assert!(net.nodes[bob].client.has_conversation(&g) && net.nodes[mallory].client.has_conversation(&g));
    net.send(mallory, &g, "spam");
    net.send(alice, &g, "hello group");
    net.run();
    let texts: Vec<String> = net.texts(bob).into_iter().map(|(_, t)| t).collect();
    assert!(texts.contains(&"hello group".to_owned()) && !texts.contains(&"spam".to_owned()), "{texts:?}");
    assert!(!net.history(bob, &g).iter().any(|m| m.content == b"spam"), "not stored either");
    // A group mallory creates with bob (and alice in it): bob never joins it, silently;
    // alice does.
    let errors = net.errors(bob).len();
    let hers = net.create_group(mallory, "hers", &[alice, bob], None);
    net.advance(super::group::WINDOW);
    assert!(net.nodes[alice].client.has_conversation(&hers), "alice joins mallory's group");
    assert!(!net.nodes[bob].client.has_conversation(&hers), "bob does not");
    assert_eq!(net.errors(bob).len(), errors, "{:?}", net.errors(bob));
    // It survives a restart; after unblocking, a chat with mallory starts.
    net.restart(bob);
    assert!(net.nodes[bob].client.contacts().iter().any(|c| c.blocked));
    assert_eq!(net.start_direct(bob, &mallory_id).unwrap_err().code(), ErrorCode::Blocked);
    let fx = net.nodes[bob].client.unblock(&mallory_id).unwrap();
    net.apply(bob, fx);
    assert!(net.nodes[bob].client.contacts().is_empty());
    assert!(net.start_direct(bob, &mallory_id).is_ok());
}

#[test]
fn a_chat_from_a_non_contact_is_a_request_until_accepted_or_its_sender_added() {
    let mut net = Net::default();
    let alice = net.join(221);
    let bob = net.join(222);
    let carol = net.join(223);
    let request = net.start_direct(bob, &net.account(alice)).unwrap();
    net.run();
    let info = |net: &Net, id: &str| {
        net.nodes[alice].client.conversations().into_iter().find(|c| c.id == id).unwrap()
    };
    assert!(info(&net, &request).request, "bob is not alice's contact");
    assert!(!net.nodes[bob].client.conversations()[0].request, "what we start is never a request");
    let fx = net.nodes[alice].client.accept_request(&request).unwrap();
    net.apply(alice, fx);
    assert!(!info(&net, &request).request);
    // Persisted.
    net.restart(alice);
    assert!(!info(&net, &request).request);
    // From a contact, no request; adding the sender later accepts it too.
    let carol_id = net.account(carol);
    let (_, fx) = net.nodes[alice].client.add_contact(&carol_id, None).unwrap();
    net.apply(alice, fx);
    let from_carol = net.start_direct(carol, &net.account(alice)).unwrap();
    net.run();
    assert!(!info(&net, &from_carol).request);
    let dave = net.join(224);
    let from_dave = net.start_direct(dave, &net.account(alice)).unwrap();
    net.run();
    assert!(info(&net, &from_dave).request);
    let dave_id = net.account(dave);
    let (_, fx) = net.nodes[alice].client.add_contact(&dave_id, Some("Dave")).unwrap();
    net.apply(alice, fx);
    assert!(!info(&net, &from_dave).request);
    let fx = net.nodes[alice].client.remove_contact(&dave_id).unwrap();
    net.apply(alice, fx);
    assert_eq!(net.nodes[alice].client.contacts().len(), 1, "carol stays");
    assert_eq!(
        net.nodes[alice].client.accept_request("00").unwrap_err().code(),
        ErrorCode::UnknownConversation
    );
}

#[test]
fn an_open_installation_republishes_its_records_before_the_store_forgets_them() {
    use crate::core::client::REPUBLISH_MS;
    let mut net = Net::default();
    let alice = net.join(231);
    let bob = net.join(232);
    // A day on, with the store keeping only the last 13 hours: alice's first records are
    // gone, but she published them again while open.
    net.advance(2 * REPUBLISH_MS + 1);
    let cutoff = net.now - 13 * 60 * 60 * 1000;
    net.history.retain(|m| m.sent_at >= cutoff);
    let alice_id = net.account(alice);
    let dm = net.start_direct(bob, &alice_id).unwrap();
    net.run();
    assert!(net.nodes[alice].client.has_conversation(&dm), "found after the store forgot the first records");
    // One that went offline before its time came is not found once the store forgets it
    // (the HTTP registry and cached records are what find it: the directory issue's rest).
    let carol = net.join(233);
    net.nodes[carol].online = false;
    net.advance(REPUBLISH_MS + 1);
    let cutoff = net.now - 60 * 60 * 1000;
    net.history.retain(|m| m.sent_at >= cutoff);
    let dave = net.join(234);
    let carol_id = net.account(carol);
    assert!(net.start_direct(dave, &carol_id).is_err());
}

#[test]
fn mutated_cards_never_panic_and_never_verify() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let mut net = Net::default();
    let alice = net.join(241);
    let card = net.nodes[alice].client.contact_card(false, 1).unwrap();
    let body = card.trim_start_matches(crate::core::card::CARD_PREFIX).to_owned();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    for _ in 0..2_000 {
        let mut b = body.clone().into_bytes();
        match rng.next_u32() % 4 {
            0 => {
                let i = rng.next_u32() as usize % b.len();
                b[i] = alphabet[rng.next_u32() as usize % 64];
            }
            1 => b.truncate(rng.next_u32() as usize % b.len()),
            2 => {
                let i = rng.next_u32() as usize % b.len();
                let j = (i + 1 + rng.next_u32() as usize % 64).min(b.len());
                let chunk: Vec<u8> = b[i..j].to_vec();
                b.splice(i..i, chunk);
            }
            _ => b.retain(|_| rng.next_u32() % 50 != 0),
        }
        let mutated = format!("{}{}", crate::core::card::CARD_PREFIX, String::from_utf8(b).unwrap());
        if mutated == card {
            continue;
        }
        let r = crate::core::card::open(&mutated);
        assert!(r.is_err(), "a changed card verified");
    }
    assert!(crate::core::card::open(&card).is_ok());
}

#[test]
fn what_the_directory_knows_of_others_survives_a_restart_so_an_old_list_stays_refused() {
    let mut net = Net::default();
    let alice = net.join(251);
    let bob = net.join(252);
    let phone = net.link(alice, 253);
    let phone_id = net.nodes[phone].client.installation_id();
    let alice_acct = net.nodes[alice].client.account_id();
    // Alice's list that still shows the phone, before she removes it.
    let old_card = net.nodes[alice].client.contact_card(true, net.now).unwrap();
    net.now += 1;
    let fx = net.nodes[alice].client.remove_installation(&phone_id.to_hex(), net.now).unwrap();
    net.apply(alice, fx);
    net.run();
    net.lookup(bob);
    let fx = net.nodes[bob].client.lookup_complete_at(&alice_acct.to_hex(), net.now);
    net.apply(bob, fx);
    assert!(!net.nodes[bob].client.confirms_for_tests(&alice_acct, &phone_id));
    // Bob restarts, with no network to read: what he knew is still known.
    let store = std::mem::take(&mut net.history);
    net.restart(bob);
    assert!(
        net.nodes[bob].client.logs_for_tests(&alice_acct).1.is_some(),
        "the log came back from the store"
    );
    let (_, fx) = net.nodes[bob].client.add_contact(&old_card, None).unwrap();
    net.apply(bob, fx);
    assert!(!net.nodes[bob].client.confirms_for_tests(&alice_acct, &phone_id), "the old list was refused");
    net.history = store;
}

#[test]
fn blocking_an_account_whose_list_names_someone_elses_installation_blocks_only_it() {
    let mut net = Net::default();
    let alice = net.join(261);
    let bob = net.join(262);
    let mallory = net.join(263);
    // Mallory signs a list that names alice's installation too, and bob reads it.
    let seed = net.nodes[mallory].client.export_recovery().unwrap();
    let key = crate::core::account::AccountKey::from_seed(
        &hex::decode(seed.trim_start_matches(crate::core::client::RECOVERY_PREFIX))
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let devices =
        vec![net.nodes[mallory].client.installation_id(), net.nodes[alice].client.installation_id()];
    let list = crate::core::directory::account_submission(&key.sign_bundle(9, devices).unwrap());
    let mallory_id = net.account(mallory);
    net.nodes[bob].client.lookup_topics(&[&mallory_id]);
    net.nodes[bob].client.ingest_directory(Client::directory_topics()[0], &list).unwrap();
    let _ = net.start_direct(mallory, &net.account(bob)).unwrap();
    net.run();
    let fx = net.nodes[bob].client.block(&mallory_id).unwrap();
    net.apply(bob, fx);
    // Alice still reaches bob: her invite and her messages.
    let dm = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    assert!(net.nodes[bob].client.has_conversation(&dm), "alice's invite was not dropped");
    net.send(alice, &dm, "still me");
    net.run();
    assert!(net.texts(bob).iter().any(|t| t.1 == "still me"));
}

#[test]
fn the_directory_takes_lists_only_of_accounts_it_looks_up_and_a_stale_log_cannot_undo_a_removal() {
    use crate::core::account::AccountKey;
    use crate::core::account_log::AccountLog;
    use crate::core::directory::{account_submission, Directory, ACCOUNT_TOPIC};
    let provider = crate::core::conversation::mls_store::Provider::new().unwrap();
    let crypto = openmls_traits::OpenMlsProvider::crypto(&provider);
    let key = AccountKey::from_seed(&[7; 32]);
    let (a, x) = (
        crate::core::address::InstallationId::from_bytes([1; 32]),
        crate::core::address::InstallationId::from_bytes([2; 32]),
    );
    let mut d = Directory::default();
    let first = account_submission(&key.sign_bundle(0, vec![a.clone(), x.clone()]).unwrap());
    assert!(d.ingest(ACCOUNT_TOPIC, &first, crypto).is_err(), "nobody looked this account up");
    d.lookup_topics(&[key.id()]);
    d.ingest(ACCOUNT_TOPIC, &first, crypto).unwrap();
    // The log that still shows x, then a newer list without it: x is no longer confirmed.
    d.accept_log(AccountLog::first(&key, &[a.clone(), x.clone()]).unwrap()).unwrap();
    d.accept_bundle(key.sign_bundle(1, vec![a.clone()]).unwrap()).unwrap();
    assert!(d.confirms(&key.id(), &a) && !d.confirms(&key.id(), &x));
    // A list of too many installations is refused.
    let many: Vec<_> = (0..300u16)
        .map(|i| {
            let mut b = [0u8; 32];
            b[..2].copy_from_slice(&i.to_le_bytes());
            crate::core::address::InstallationId::from_bytes(b)
        })
        .collect();
    assert!(d
        .ingest(ACCOUNT_TOPIC, &account_submission(&key.sign_bundle(5, many).unwrap()), crypto)
        .is_err());
}

#[test]
fn a_stranger_claiming_a_contacts_account_stays_a_request() {
    let mut net = Net::default();
    let alice = net.join(271);
    let bob = net.join(272);
    let mallory = net.join(273);
    let bob_id = net.nodes[bob].client.account_id();
    let (_, fx) = net.nodes[alice].client.add_contact(&bob_id.to_hex(), None).unwrap();
    net.apply(alice, fx);
    net.lookup(mallory);
    let alice_id = net.account(alice);
    let fx = net.nodes[mallory].client.start_impostor_for_tests(&alice_id, &bob_id);
    net.apply(mallory, fx);
    net.run();
    let fake = net.nodes[alice].client.conversations();
    assert_eq!(fake.len(), 1);
    assert!(!fake[0].verified && fake[0].request, "an unverified chat claiming bob is a request");
    let real = net.start_direct(bob, &alice_id).unwrap();
    net.run();
    let info = net.nodes[alice].client.conversations().into_iter().find(|c| c.id == real).unwrap();
    assert!(info.verified && !info.request, "bob's real chat is not");
}

#[test]
fn a_message_held_for_its_senders_lookup_is_dropped_when_the_sender_is_blocked_meanwhile() {
    let mut net = Net::default();
    let bob = net.join(241);
    let mallory = net.join(242);
    let mallory_id = net.account(mallory);
    let dm = net.start_direct(mallory, &net.account(bob)).unwrap();
    net.send(mallory, &dm, "held");
    // Bob's driver has not finished looking mallory up when her invite and message come.
    let mut asked = 0;
    while let Some(m) = net.nodes[bob].queue.pop_front() {
        net.now += 1;
        let mut fx = net.nodes[bob].client.receive(&m.topic, &m.payload, m.sent_at, net.now);
        asked += fx.lookups.len();
        fx.lookups.clear();
        net.apply(bob, fx);
    }
    assert!(asked > 0, "mallory's installation waits for a lookup");
    assert!(!net.texts(bob).iter().any(|(_, t)| t == "held"), "held until then");
    let fx = net.nodes[bob].client.block(&mallory_id).unwrap();
    net.apply(bob, fx);
    net.lookup_accounts(bob, std::slice::from_ref(&mallory_id));
    let fx = net.nodes[bob].client.lookup_complete_at(&mallory_id, net.now);
    net.apply(bob, fx);
    assert!(!net.texts(bob).iter().any(|(_, t)| t == "held"), "{:?}", net.texts(bob));
    assert!(!net.history(bob, &dm).iter().any(|m| m.content == b"held"), "nor stored");
    let info = net.nodes[bob].client.conversations().into_iter().find(|c| c.id == dm).unwrap();
    assert_eq!(info.unread, 0, "nor counted");
}
