//! A registry directory (`ChatOptions.directory = { url }` or the app's object): records
//! in libchat's chat-store format, libchat's retry policy, and a registry that lies.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::sim::Net;
use crate::core::account::{verify_ed25519, DeviceBundle};
use crate::core::address::AccountId;
use crate::core::directory::registry::{backoff_ms, Op, RETRIES, TIMEOUT_MS};
use crate::core::Client;

/// A node that publishes to and reads from the registry.
fn join_registry(net: &mut Net, seed: u64) -> usize {
    let i = net.join(seed);
    net.nodes[i].client.set_registry(true);
    net.now += 1;
    let fx = net.nodes[i].client.announce(net.now).unwrap();
    net.apply(i, fx);
    i
}

/// The store's retention ran out: every directory record on the topics is gone.
fn forget_directory(net: &mut Net) {
    net.history.retain(|m| !Client::is_directory_topic(&m.topic));
}

#[test]
fn an_account_that_went_offline_is_found_in_the_registry_after_the_store_forgot_it() {
    let mut net = Net::default();
    let alice = join_registry(&mut net, 301);
    let bob = join_registry(&mut net, 302);
    let bob_id = net.account(bob);
    net.set_online(bob, false);
    let published = net.history.len();
    forget_directory(&mut net);
    assert!(net.history.len() < published, "records of registering were on the topics");
    let on_topics = net.history.len();
    let dm = net.start_direct(alice, &bob_id).unwrap();
    assert!(
        net.history.iter().skip(on_topics).all(|m| !Client::is_directory_topic(&m.topic)),
        "a registry installation publishes nothing on the directory topics"
    );
    net.send(alice, &dm, "while you were away");
    net.set_online(bob, true);
    net.run();
    assert!(net.texts(bob).iter().any(|(_, t)| t == "while you were away"), "{:?}", net.texts(bob));
    let reply_fx = net.nodes[bob].client.send(&dm, b"back", net.now + 1).unwrap().1;
    net.apply(bob, reply_fx);
    net.run();
    let alice_id = net.account(alice);
    assert!(net.texts(alice).iter().any(|(who, t)| t == "back" && who.as_deref() == Some(bob_id.as_str())));

    // What the registry holds is libchat's format: the bundle signed by the account, the
    // key package `ts ‖ KeyPackage` signed by the installation.
    for (account, (payload, signature)) in &net.registry.accounts {
        let id = AccountId::parse(account).unwrap();
        let b = DeviceBundle::verify(&id, payload, signature).unwrap();
        assert!([&alice_id, &bob_id].contains(&account), "{account}");
        for d in &b.devices {
            let (kp, sig) = &net.registry.key_packages[&d.to_hex()];
            verify_ed25519(d.as_bytes(), kp, sig).unwrap();
        }
    }
    assert_eq!((net.registry.accounts.len(), net.registry.key_packages.len()), (2, 2));
}

#[test]
fn a_failing_registry_is_tried_again_with_libchats_back_off_then_given_up() {
    let mut net = Net::default();
    let alice = join_registry(&mut net, 311);
    let bob = join_registry(&mut net, 312);
    let bob_id = net.account(bob);
    forget_directory(&mut net);
    // Three failures: the fourth try answers.
    net.registry.failing = 3;
    net.registry.calls.clear();
    net.lookup_accounts(alice, std::slice::from_ref(&bob_id));
    let tries: Vec<_> =
        net.registry.calls.iter().filter(|r| r.op == Op::GetAccount && r.key == bob_id).collect();
    assert_eq!(tries.iter().map(|r| r.attempt).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(tries[1].not_before_ms > 0.0, "the first retry waits");
    for pair in tries[1..].windows(2) {
        let waited = pair[1].not_before_ms - pair[0].not_before_ms;
        assert!(waited >= backoff_ms(pair[1].attempt) as f64, "{waited}");
    }
    assert!(tries.iter().all(|r| r.timeout_ms == TIMEOUT_MS as f64));
    let dm = net.start_direct(alice, &bob_id).unwrap();
    net.send(alice, &dm, "after retries");
    net.run();
    assert!(net.texts(bob).iter().any(|(_, t)| t == "after retries"));

    // A registry that never answers: 1 + RETRIES tries, then an error event, and the
    // account is not found.
    let carol = join_registry(&mut net, 313);
    let carol_id = net.account(carol);
    forget_directory(&mut net);
    net.registry.failing = u32::MAX;
    net.registry.calls.clear();
    let e = net.start_direct(alice, &carol_id).unwrap_err();
    assert_eq!(e.code(), crate::core::ErrorCode::UnknownAccount);
    assert_eq!(net.registry.calls.iter().filter(|r| r.key == carol_id).count(), 1 + RETRIES as usize);
    assert!(net.errors(alice).iter().any(|c| c == "TRANSPORT_UNAVAILABLE"), "{:?}", net.errors(alice));
    // Our own records that could not be put are told too.
    net.now += 1;
    let fx = net.nodes[alice].client.rotate_keys(net.now).unwrap();
    net.apply(alice, fx);
    assert!(net.errors(alice).iter().filter(|c| *c == "TRANSPORT_UNAVAILABLE").count() >= 2);
    net.registry.failing = 0;
}

#[test]
fn a_registry_on_a_seeded_lossy_link_still_finds_everyone() {
    for seed in super::reliability::seeds(20) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut net = Net::default();
        let nodes: Vec<usize> = (0..4).map(|k| join_registry(&mut net, 320 + k)).collect();
        forget_directory(&mut net);
        for (k, &from) in nodes.iter().enumerate() {
            // Up to three of the next calls fail: within the retries, so nobody is lost.
            net.registry.failing = rng.next_u32() % 4;
            let to = nodes[(k + 1) % nodes.len()];
            let to_id = net.account(to);
            let dm = net.start_direct(from, &to_id).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            net.send(from, &dm, &format!("hop {k}"));
        }
        net.run();
        for (k, &to) in nodes.iter().enumerate().map(|(k, _)| (k, &nodes[(k + 1) % nodes.len()])) {
            assert!(net.texts(to).iter().any(|(_, t)| *t == format!("hop {k}")), "seed {seed}: hop {k}");
        }
    }
}

#[test]
fn a_registry_cannot_substitute_alter_or_roll_back_records() {
    let mut net = Net::default();
    let alice = join_registry(&mut net, 331);
    let bob = join_registry(&mut net, 332);
    let mallory = join_registry(&mut net, 333);
    let bob_id = net.account(bob);
    let mallory_id = net.account(mallory);
    forget_directory(&mut net);
    // Mallory's list handed back for bob's id: it is signed, but not by bob.
    let mallorys = net.registry.accounts[&mallory_id].clone();
    net.registry.tamper = Some(Box::new(move |_, rec| if rec.0.len() > 64 { mallorys.clone() } else { rec }));
    assert!(net.start_direct(alice, &bob_id).is_err(), "another account's list");
    // One flipped byte of bob's list, or of his key package alone.
    let device = net.nodes[bob].client.installation_id().to_hex();
    for (target, at) in
        [(bob_id.clone(), 0usize), (bob_id.clone(), 40), (device.clone(), 0), (device.clone(), 100)]
    {
        let t = target.clone();
        net.registry.tamper = Some(Box::new(move |key, (mut p, s)| {
            if key == t {
                let i = at % p.len();
                p[i] ^= 1;
            }
            (p, s)
        }));
        assert!(net.start_direct(alice, &bob_id).is_err(), "{target} altered at {at}");
    }
    net.registry.tamper = None;
    let dm = net.start_direct(alice, &bob_id).unwrap();
    net.run();
    // Bob links a phone; the registry then serves his older list again.
    let old = net.registry.accounts[&bob_id].clone();
    let phone = net.link(bob, 334);
    let _ = net.start_direct(alice, &bob_id);
    let phone_id = net.nodes[phone].client.installation_id();
    let bob_acct = net.nodes[bob].client.account_id();
    assert!(net.nodes[alice].client.confirms_for_tests(&bob_acct, &phone_id), "the newer list read");
    net.registry.accounts.insert(bob_id.clone(), old);
    net.lookup_accounts(alice, std::slice::from_ref(&bob_id));
    assert!(
        net.nodes[alice].client.confirms_for_tests(&bob_acct, &phone_id),
        "the old list did not roll back"
    );
    net.send(alice, &dm, "still fine");
    net.run();
    assert!(net.texts(bob).iter().any(|(_, t)| t == "still fine"));
}
