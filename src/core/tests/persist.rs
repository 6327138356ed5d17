//! Persistence scenarios: restarts, crashes between persist and publish, corruption.

use super::sim::{store_key, Net};
use crate::core::store::{Store, StoreCipher};
use crate::core::{Client, ErrorCode};

fn stored(net: &Net, i: usize, convo: &str) -> Vec<crate::core::ChatMessage> {
    let c = &net.nodes[i].client;
    let (from, to) = c.history_range(convo, None).unwrap();
    let records: Vec<(Vec<u8>, Vec<u8>)> = net.nodes[i]
        .disk
        .0
        .iter()
        .filter(|((s, k), _)| s == Store::Messages.name() && *k >= from && *k <= to)
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect();
    c.open_messages(&records).unwrap()
}

fn history(net: &Net, i: usize, convo: &str) -> Vec<String> {
    stored(net, i, convo).into_iter().map(|m| String::from_utf8(m.content).unwrap()).collect()
}

fn chatting() -> (Net, usize, usize, String) {
    let mut net = Net::default();
    let alice = net.join(21);
    let bob = net.join(22);
    let convo = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(alice, &convo, "before restart");
    net.run();
    net.send(bob, &convo, "reply before restart");
    net.run();
    (net, alice, bob, convo)
}

#[test]
fn alice_and_bob_chat_after_restart() {
    let (mut net, alice, bob, convo) = chatting();
    let (ids_a, ids_b) = (net.account(alice), net.account(bob));
    net.restart(alice);
    net.restart(bob);
    net.run();
    assert_eq!(net.account(alice), ids_a, "identity is back");
    assert_eq!(net.account(bob), ids_b);
    assert!(net.nodes[bob].client.has_conversation(&convo));
    assert_eq!(history(&net, alice, &convo), vec!["before restart", "reply before restart"]);
    let before = net.texts(bob).len();
    net.send(alice, &convo, "after restart");
    net.run();
    net.send(bob, &convo, "still here");
    net.run();
    let texts = net.texts(bob);
    assert_eq!(texts.len(), before + 1, "{texts:?}");
    assert_eq!(texts.last().unwrap(), &(Some(ids_a.clone()), "after restart".to_owned()));
    assert_eq!(net.texts(alice).last().unwrap(), &(Some(ids_b), "still here".to_owned()));
    assert!(net.errors(alice).is_empty() && net.errors(bob).is_empty(), "replayed history is not an error");
    assert_eq!(
        history(&net, bob, &convo),
        vec!["before restart", "reply before restart", "after restart", "still here"]
    );
    let info = net.nodes[bob].client.conversations();
    assert_eq!(info[0].unread, 2, "bob has not read alice's two messages");
}

#[test]
fn a_crash_between_persist_and_publish_sends_the_message_exactly_once() {
    let (mut net, alice, bob, convo) = chatting();
    // The driver commits the effects, then the process dies before publishing.
    net.now += 1;
    let (_, fx) = net.nodes[alice].client.send(&convo, b"written, never published", net.now).unwrap();
    assert_eq!(fx.publish.len(), 1);
    net.nodes[alice].disk.commit(&fx);
    let topic = crate::core::ConversationId::parse(&convo).unwrap().topic().as_str().to_owned();
    let on_topic = |net: &Net| net.history.iter().filter(|m| m.topic == topic).count();
    let before = on_topic(&net);
    net.restart(alice);
    net.run();
    assert_eq!(on_topic(&net), before + 1, "the outbox re-sends it once");
    // A second restart must not send it again: the outbox entry left on acceptance.
    net.restart(alice);
    net.run();
    assert_eq!(on_topic(&net), before + 1, "and never again");
    let got: Vec<String> = net.texts(bob).into_iter().map(|(_, t)| t).collect();
    assert_eq!(got.iter().filter(|t| *t == "written, never published").count(), 1, "{got:?}");
    net.send(alice, &convo, "and the next one");
    net.run();
    assert_eq!(net.texts(bob).last().unwrap().1, "and the next one", "no key was reused");
    assert!(net.errors(bob).is_empty(), "{:?}", net.errors(bob));
}

#[test]
fn a_corrupted_record_or_a_wrong_key_is_store_corrupt_never_a_reset() {
    let (net, alice, _, _) = chatting();
    let records = net.nodes[alice].disk.start_records();
    let rng = || Box::new(rand_core::OsRng);
    let wrong = Client::restore(rng(), &[0xee; 32], records.clone(), 1).unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::StoreCorrupt);
    let mut flipped = records.clone();
    let last = flipped[0].2.len() - 1;
    flipped[0].2[last] ^= 1;
    assert_eq!(
        Client::restore(rng(), &store_key(21), flipped, 1).unwrap_err().code(),
        ErrorCode::StoreCorrupt
    );
    let missing_account: Vec<_> = records.iter().filter(|r| r.0 != "account").cloned().collect();
    assert_eq!(
        Client::restore(rng(), &store_key(21), missing_account, 1).unwrap_err().code(),
        ErrorCode::StoreCorrupt
    );
    assert!(Client::restore(rng(), &store_key(21), records, 1).is_ok());
}

#[test]
fn the_store_holds_no_plaintext_and_no_private_key() {
    let (net, alice, _, _) = chatting();
    let seed_a = net.nodes[alice].client.secret_seeds_for_tests();
    for ((store, key), value) in &net.nodes[alice].disk.0 {
        for needle in [b"before restart".as_slice(), b"reply before restart", &seed_a.0, &seed_a.1] {
            assert!(!value.windows(needle.len()).any(|w| w == needle), "{store} leaks");
            assert!(!key.windows(needle.len().min(key.len())).any(|w| w == needle), "{store} key leaks");
        }
        assert_eq!(value.first(), Some(&1), "every value is sealed");
    }
    // Sealed under the store key: it opens them, another key opens none.
    let (right, wrong) = (StoreCipher::new(&store_key(21)), StoreCipher::new(&[0; 32]));
    for ((store, key), value) in &net.nodes[alice].disk.0 {
        let store = Store::from_name(store).unwrap();
        assert!(right.open(store, key, value).is_ok(), "{} record does not open", store.name());
        assert!(wrong.open(store, key, value).is_err(), "{} record opens under another key", store.name());
    }
}

#[test]
fn an_expired_key_package_is_replaced_at_restore_and_chats_still_start() {
    use crate::core::store::{decode_record, encode, AccountRecord, SINGLETON};
    use rand_chacha::rand_core::SeedableRng;
    let mut net = Net::default();
    let alice = net.join(31);
    let bob = net.join(32);
    // Make bob's stored key package unreadable, as an expired one is.
    let cipher = StoreCipher::new(&store_key(32));
    let key = cipher.key(Store::Account, SINGLETON);
    let sealed = net.nodes[bob].disk.0.get(&("account".to_owned(), key.clone())).unwrap().clone();
    let mut rec: AccountRecord =
        decode_record("account", &cipher.open(Store::Account, &key, &sealed).unwrap()).unwrap();
    rec.key_package = vec![1, 2, 3];
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let op = cipher.put(&mut rng, Store::Account, SINGLETON, &encode(&rec)).unwrap();
    net.nodes[bob].disk.0.insert(("account".to_owned(), key), op.value.unwrap());
    net.restart(bob);
    net.run();
    let convo = net.start_direct(alice, &net.account(bob)).unwrap();
    net.run();
    net.send(alice, &convo, "to a fresh key package");
    net.run();
    assert_eq!(net.texts(bob).last().unwrap().1, "to a fresh key package");
    // And the fresh package itself survives another restart.
    net.restart(bob);
    net.run();
    net.send(alice, &convo, "again");
    net.run();
    assert_eq!(net.texts(bob).last().unwrap().1, "again");
}

#[test]
fn the_history_index_is_keyed_by_conversation_so_no_other_conversation_overwrites_it() {
    let (net, alice, _bob, convo) = chatting();
    let c = &net.nodes[alice].client;
    let id = stored(&net, alice, &convo)[0].id.clone();
    let on_disk = |key: &Vec<u8>| {
        net.nodes[alice].disk.0.contains_key(&(Store::MessageIndex.name().to_owned(), key.clone()))
    };
    let [current, legacy] = c.message_index_keys(&convo, &id);
    assert!(on_disk(&current), "written under conversation and id");
    assert!(!on_disk(&legacy), "never under the id alone");
    let other = "0".repeat(convo.len());
    let [elsewhere, _] = c.message_index_keys(&other, &id);
    assert_ne!(elsewhere, current, "the same id in another conversation is another entry");
    let (at, _) = c
        .open_message_index(
            &current,
            &net.nodes[alice].disk.0[&(Store::MessageIndex.name().to_owned(), current.clone())],
        )
        .unwrap();
    assert_eq!(at, convo);
}
