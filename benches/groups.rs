//! Group benchmarks (`npm run bench` runs it): the MLS cost of each group operation under
//! logos-chat's profile, at N = 10, 100, 1,000 (and 10,000 with the X25519 suite), for
//! X-Wing (0x004D, the default) and X25519 (0x0003, allowed for very large groups).
//! One-shot timings (criterion would repeat a 10,000-member create for minutes); prints
//! one JSON object per line for `bench/run.mjs`. `--quick` stops at N = 100.
//!
//! Measured: create (the founder adds N − 1 in one commit, as the engine does), add-50
//! (a steward's add-only commit of 50 more, without an UpdatePath, as de-MLS stewards make
//! them, with the Welcomes cut per joiner and the tree exported once), join (one of those
//! 50 processes its own Welcome with the ratchet tree that travels apart), remove (one
//! member, a commit with an UpdatePath), and
//! a 1 KiB application message (encrypt, decrypt), with the byte sizes of the per-joiner
//! Welcome, the tree (published once per commit), the commits and the message against
//! the 150 KiB limit.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use logos_chat::core::account::{AccountKey, DelegateCredential, InstallationKey};
use logos_chat::core::conversation::mls;
use logos_chat::core::conversation::mls_store::Provider;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;

const LIMIT: usize = 150 * 1024;

fn capabilities(suite: Ciphersuite) -> Capabilities {
    Capabilities::new(None, Some(&[suite]), Some(&[ExtensionType::LastResort]), None, None)
}

fn installation() -> (InstallationKey, DelegateCredential) {
    let key = InstallationKey::generate(&mut rand_core::OsRng);
    let account = AccountKey::generate(&mut rand_core::OsRng);
    let cred = DelegateCredential { installation: key.id(), account: Some(account.id()) };
    (key, cred)
}

fn key_package(provider: &Provider, suite: Ciphersuite) -> KeyPackage {
    let (key, cred) = installation();
    KeyPackage::builder()
        .leaf_node_capabilities(capabilities(suite))
        .build(suite, provider, &key, mls::credential_with_key(&cred))
        .unwrap()
        .key_package()
        .clone()
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn run(suite: Ciphersuite, label: &str, n: usize) {
    let creator = Provider::new().unwrap();
    let others = Provider::new().unwrap();
    let (key, cred) = installation();
    let kps: Vec<KeyPackage> = (1..n).map(|_| key_package(&others, suite)).collect();
    let more: Vec<KeyPackage> = (0..mls::MAX_ADDS_PER_COMMIT).map(|_| key_package(&others, suite)).collect();
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(suite)
        .use_ratchet_tree_extension(false)
        .capabilities(capabilities(suite))
        .build();
    // Create: the founder adds everyone in one commit, as the engine does (it does not
    // publish that commit: everyone in it joins from a Welcome).
    let t = Instant::now();
    let mut group = MlsGroup::new_with_group_id(
        &creator,
        &key,
        &config,
        GroupId::from_slice(&[7; 16]),
        mls::credential_with_key(&cred),
    )
    .unwrap();
    if !kps.is_empty() {
        let (_, w, _) = group.add_members_without_update(&creator, &key, &kps).unwrap();
        group.merge_pending_commit(&creator).unwrap();
        let refs: Vec<Vec<u8>> =
            kps.iter().map(|k| k.hash_ref(creator.crypto()).unwrap().as_slice().to_vec()).collect();
        let refs: Vec<&[u8]> = refs.iter().map(Vec::as_slice).collect();
        mls::welcomes_for(&w.tls_serialize_detached().unwrap(), &refs).unwrap();
    }
    let create_ms = ms(t);
    // Add-50 to the group of N: a steward's add-only commit (no UpdatePath), each joiner's
    // own Welcome entry, and the tree once.
    let t = Instant::now();
    let (commit, w, _) = group.add_members_without_update(&creator, &key, &more).unwrap();
    group.merge_pending_commit(&creator).unwrap();
    let refs: Vec<Vec<u8>> =
        more.iter().map(|k| k.hash_ref(creator.crypto()).unwrap().as_slice().to_vec()).collect();
    let refs: Vec<&[u8]> = refs.iter().map(Vec::as_slice).collect();
    let welcome = mls::welcomes_for(&w.tls_serialize_detached().unwrap(), &refs).unwrap().pop().unwrap();
    let tree = group.export_ratchet_tree().tls_serialize_detached().unwrap();
    let add50_ms = ms(t);
    let commit_len = commit.tls_serialize_detached().unwrap().len();

    let t = Instant::now();
    let msg = MlsMessageIn::tls_deserialize_exact(&welcome).unwrap();
    let MlsMessageBodyIn::Welcome(w) = msg.extract() else { panic!("a Welcome") };
    let join_config = MlsGroupJoinConfig::builder().use_ratchet_tree_extension(false).build();
    let ratchet_tree = RatchetTreeIn::tls_deserialize_exact(&tree).unwrap();
    let mut joiner = StagedWelcome::new_from_welcome(&others, &join_config, w, Some(ratchet_tree))
        .unwrap()
        .into_group(&others)
        .unwrap();
    let join_ms = ms(t);

    let content = vec![b'x'; 1024];
    let t = Instant::now();
    let out = group.create_message(&creator, &key, &content).unwrap().tls_serialize_detached().unwrap();
    let send_ms = ms(t);
    let t = Instant::now();
    let protocol = MlsMessageIn::tls_deserialize_exact(&out).unwrap().try_into_protocol_message().unwrap();
    joiner.process_message(&others, protocol).unwrap();
    let receive_ms = ms(t);

    let victim = group.members().last().map(|m| m.index).unwrap();
    let t = Instant::now();
    let (remove, _, _) = group.remove_members(&creator, &key, &[victim]).unwrap();
    group.merge_pending_commit(&creator).unwrap();
    let remove_ms = ms(t);
    let remove_len = remove.tls_serialize_detached().unwrap().len();

    println!(
        "{{\"suite\":\"{label}\",\"n\":{n},\"createMs\":{create_ms:.1},\"add50Ms\":{add50_ms:.2},\"joinMs\":{join_ms:.2},\"removeMs\":{remove_ms:.2},\"sendMs\":{send_ms:.3},\"receiveMs\":{receive_ms:.3},\"welcomeBytes\":{},\"treeBytes\":{},\"addCommitBytes\":{commit_len},\"removeCommitBytes\":{remove_len},\"messageBytes\":{},\"limitBytes\":{LIMIT}}}",
        welcome.len(),
        tree.len(),
        out.len()
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    for &n in sizes {
        run(mls::CIPHERSUITE, "X-Wing", n);
        run(Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, "X25519", n);
    }
    if !quick {
        run(mls::CIPHERSUITE, "X-Wing", 10_000);
        run(Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, "X25519", 10_000);
    }
}
