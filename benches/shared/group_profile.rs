//! The group benchmark's profile, shared by the native bench (`benches/groups.rs`) and
//! the same code compiled to wasm under Node (`tests-wasm/bench.rs`): the MLS cost of
//! each group operation as logos-chat runs it. See `benches/groups.rs` for what is measured.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use logos_chat::core::account::{AccountKey, DelegateCredential, InstallationKey};
use logos_chat::core::conversation::mls;
use logos_chat::core::conversation::mls_store::Provider;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;

const LIMIT: usize = 150 * 1024;
/// Application messages per send / receive figure (one is below the clock's resolution in wasm).
const MESSAGES: usize = 20;

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

/// Runs the profile once at size `n`; `now` is a millisecond clock. Returns one JSON line.
pub fn run(suite: Ciphersuite, label: &str, n: usize, now: fn() -> f64) -> String {
    let ms = |t: f64| now() - t;
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
    let t = now();
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
    let t = now();
    let (commit, w, _) = group.add_members_without_update(&creator, &key, &more).unwrap();
    group.merge_pending_commit(&creator).unwrap();
    let refs: Vec<Vec<u8>> =
        more.iter().map(|k| k.hash_ref(creator.crypto()).unwrap().as_slice().to_vec()).collect();
    let refs: Vec<&[u8]> = refs.iter().map(Vec::as_slice).collect();
    let welcome = mls::welcomes_for(&w.tls_serialize_detached().unwrap(), &refs).unwrap().pop().unwrap();
    let tree = group.export_ratchet_tree().tls_serialize_detached().unwrap();
    let add50_ms = ms(t);
    let commit_len = commit.tls_serialize_detached().unwrap().len();

    let t = now();
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
    let t = now();
    let out: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|_| group.create_message(&creator, &key, &content).unwrap().tls_serialize_detached().unwrap())
        .collect();
    let send_ms = ms(t) / MESSAGES as f64;
    let t = now();
    for m in &out {
        let protocol = MlsMessageIn::tls_deserialize_exact(m).unwrap().try_into_protocol_message().unwrap();
        joiner.process_message(&others, protocol).unwrap();
    }
    let receive_ms = ms(t) / MESSAGES as f64;

    let victim = group.members().last().map(|m| m.index).unwrap();
    let t = now();
    let (remove, _, _) = group.remove_members(&creator, &key, &[victim]).unwrap();
    group.merge_pending_commit(&creator).unwrap();
    let remove_ms = ms(t);
    let remove_len = remove.tls_serialize_detached().unwrap().len();

    format!(
        "{{\"suite\":\"{label}\",\"n\":{n},\"createMs\":{create_ms:.1},\"add50Ms\":{add50_ms:.2},\"joinMs\":{join_ms:.2},\"removeMs\":{remove_ms:.2},\"sendMs\":{send_ms:.3},\"receiveMs\":{receive_ms:.3},\"welcomeBytes\":{},\"treeBytes\":{},\"addCommitBytes\":{commit_len},\"removeCommitBytes\":{remove_len},\"messageBytes\":{},\"limitBytes\":{LIMIT}}}",
        welcome.len(),
        tree.len(),
        out[0].len()
    )
}
