//! The fuzz smoke run (issue 12): every target of `core::fuzz` over the committed
//! corpus (`fuzz/corpus/<target>/`) and a fixed number of structure-aware mutants of
//! it, in every `cargo test`. Long coverage-guided runs use the same targets through
//! cargo-fuzz (`scripts/fuzz`). Crashes found are kept as regression inputs in
//! `fuzz/corpus/<target>/` (named `crash-…`), so this run replays them.
//!
//! `write_fuzz_corpus` (ignored) writes the corpus from a simulated network: the raw
//! traffic of a direct chat and a group, inner frames, MLS messages, key packages,
//! segments, Reliable Channel messages, stored records, and the `receive` world (a
//! member's store taken before the traffic that follows, so that traffic is new to it).

use std::path::{Path, PathBuf};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::group::WINDOW;
use super::sim::{store_key, Net};
use crate::core::fuzz::{self, join_parts, World};
use crate::core::wire::{self, decode, encrypted_payload::Encryption, EncryptedPayload, EnvelopeV1};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!("{}: {e} (write it: cargo test write_fuzz_corpus -- --ignored)", dir.display())
        })
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// A small deterministic generator (xorshift64*), so a failing mutant is reproducible.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four mutations that know the formats' weak spots: bit flips, interesting
/// bytes, truncation, insertion, deletion, duplication, splicing with another input,
/// a protobuf varint inflated to 2^35, and an MLS length claiming 1 GiB.
fn mutate(g: &mut Gen, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..=g.below(4) {
        let at = g.below(b.len() + 1);
        match g.below(9) {
            0 if !b.is_empty() => {
                let i = g.below(b.len());
                b[i] ^= 1 << g.below(8);
            }
            1 if !b.is_empty() => {
                let i = g.below(b.len());
                b[i] = [0, 1, 0x7f, 0x80, 0xff][g.below(5)];
            }
            2 => b.truncate(at),
            3 => {
                let n = 1 + g.below(16);
                let extra: Vec<u8> = (0..n).map(|_| g.next() as u8).collect();
                b.splice(at..at, extra);
            }
            4 => {
                let end = (at + 1 + g.below(64)).min(b.len());
                b.drain(at.min(end)..end);
            }
            5 if !b.is_empty() => {
                let end = (at + 1 + g.below(256)).min(b.len());
                let chunk = b[at.min(end)..end].to_vec();
                b.splice(at..at, chunk);
            }
            6 => {
                let from = g.below(other.len() + 1);
                b.truncate(at);
                b.extend_from_slice(&other[from..]);
            }
            7 => drop(b.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0x7f])),
            _ => {
                let end = (at + 4).min(b.len());
                b.splice(at..end, [0xbf, 0xff, 0xff, 0xff]);
            }
        }
    }
    b
}

/// The corpus, then `n` mutants, through `f`.
fn smoke(target: &str, n: usize, mut f: impl FnMut(&[u8])) {
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "no corpus for {target}");
    for s in &seeds {
        f(s);
    }
    let mut g = Gen(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for _ in 0..n {
        let (a, b) = (&seeds[g.below(seeds.len())], &seeds[g.below(seeds.len())]);
        f(&mutate(&mut g, a, b));
    }
}

#[test]
fn every_stateless_target_survives_its_corpus_and_mutants() {
    for target in fuzz::TARGETS.iter().filter(|t| **t != "receive") {
        smoke(target, 20_000, |d| fuzz::run(target, d));
    }
}

#[test]
fn a_member_survives_mutated_traffic_and_still_chats() {
    let snapshot = std::fs::read(corpus_dir().join("world.bin")).unwrap();
    let rng = || Box::new(ChaCha20Rng::seed_from_u64(7));
    let mut world = World::restore(&snapshot, rng())
        .expect("the world snapshot no longer restores: cargo test write_fuzz_corpus -- --ignored");
    smoke("receive", 3_000, |d| drop(world.receive(d)));
    // After all of it the member still sends in every conversation.
    for c in world.client.conversations() {
        world.now += 1;
        assert!(world.client.send(&c.id, b"still here", world.now).is_ok(), "{} wedged", c.id);
    }
    // The real traffic alone, on a fresh world, is taken without an error.
    let mut fresh = World::restore(&snapshot, rng()).unwrap();
    let (mut errors, mut texts) = (Vec::new(), Vec::new());
    for d in corpus("receive") {
        for e in fresh.receive(&d).events {
            match e {
                crate::core::Event::Error { .. } => errors.push(e),
                crate::core::Event::Message(m) => {
                    texts.push(String::from_utf8_lossy(&m.content).into_owned())
                }
                _ => {}
            }
        }
    }
    assert!(errors.is_empty(), "real traffic raised {errors:?}");
    // It reaches past the AEAD: the world decrypts the direct chat and the group.
    for t in ["a second direct message", "after the commit"] {
        assert!(texts.iter().any(|x| x == t), "{t:?} not delivered: {texts:?}");
    }
}

/// Writes a target's corpus, each file named by its position and digest: the smoke
/// run reads them in name order, so `receive` replays the traffic as it happened.
fn write(target: &str, inputs: &[Vec<u8>]) {
    let dir = corpus_dir().join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut unique: Vec<&Vec<u8>> = Vec::new();
    for i in inputs {
        if !unique.contains(&i) {
            unique.push(i);
        }
    }
    for (n, i) in unique.into_iter().enumerate() {
        let name = format!("{n:04}-{}", hex::encode(crate::core::address::blake2b::<8>(&[i])));
        std::fs::write(dir.join(name), i).unwrap();
    }
}

/// The plaintext layer of an envelope (what the MLS or inbox layer reads).
fn inner(payload: &[u8]) -> Option<Vec<u8>> {
    let env = decode::<EnvelopeV1>("envelope", payload).ok()?;
    match decode::<EncryptedPayload>("payload", &env.payload).ok()?.encryption {
        Some(Encryption::Plaintext(p)) => Some(p.payload),
        _ => None,
    }
}

#[test]
#[ignore = "writes fuzz/corpus: run by hand when a format changes"]
fn write_fuzz_corpus() {
    let mut net = Net::default();
    let nodes = [net.join(91), net.join(92), net.join(93)];
    let g = net.create_group(nodes[0], "fuzz", &nodes[1..], None);
    // The world is a member that is not a steward: a steward's own candidate may be the
    // one selected, and a copy of it would mint another.
    let stewards = net.nodes[nodes[0]].client.group_stewards(&g).unwrap();
    let w = *nodes.iter().find(|n| !stewards.contains(&net.account(**n))).unwrap();
    let [a, b]: [usize; 2] =
        nodes.iter().copied().filter(|n| *n != w).collect::<Vec<_>>().try_into().unwrap();
    let dm = net.start_direct(a, &net.account(w)).unwrap();
    net.run();
    net.send(a, &dm, "hello");
    net.send(w, &dm, "hello back");
    net.send(b, &g, "hello group");
    net.run();

    // The world, before the traffic that follows.
    let mut topics: Vec<String> = net.nodes[w].subs.iter().cloned().collect();
    topics.extend(crate::core::Client::directory_topics().iter().map(|t| (*t).to_owned()));
    let records = net.nodes[w].disk.start_records();
    let mark = net.history.len();
    let known = net.plain_directory();
    let world = fuzz::encode_world(&store_key(net.nodes[w].seed), net.now, &topics, &records, &known);

    net.send(a, &dm, "a second direct message");
    net.send(a, &g, &"a longer group message ".repeat(40));
    net.now += 1;
    let fx = net.nodes[b].client.set_group_metadata(&g, "renamed", "topic", net.now).unwrap();
    net.apply(b, fx);
    net.run();
    net.advance(WINDOW);
    net.send(b, &g, "after the commit");
    net.run();

    let later = &net.history[mark..];
    let pick = |topic: &str| topics.iter().position(|t| t == topic).map(|i| i as u8);
    // The world's own messages are left out: the world never sent them (it is a copy from
    // before), and its MLS state cannot read a message of its own leaf.
    let mut replay = World::restore(&world, Box::new(ChaCha20Rng::seed_from_u64(7))).unwrap();
    let receive: Vec<Vec<u8>> = later
        .iter()
        .filter_map(|m| Some([vec![pick(&m.topic)?], m.payload.clone()].concat()))
        .filter(|input| {
            let events = replay.receive(input).events;
            !events.iter().any(|e| matches!(e, crate::core::Event::Error { .. }))
        })
        .collect();
    write("receive", &receive);
    std::fs::write(corpus_dir().join("world.bin"), world).unwrap();

    let all = &net.history;
    write("envelope", &all.iter().map(|m| m.payload.clone()).take(64).collect::<Vec<_>>());
    let inners: Vec<Vec<u8>> = all.iter().filter_map(|m| inner(&m.payload)).collect();
    let mls: Vec<Vec<u8>> = inners
        .iter()
        .filter(|b| crate::core::conversation::mls::decode_mls_message(b).is_ok())
        .cloned()
        .collect();
    let dir_topics = crate::core::Client::directory_topics();
    let key_packages: Vec<Vec<u8>> = known
        .iter()
        .filter(|(t, _)| t == dir_topics[1])
        .filter_map(|(_, p)| decode::<wire::KeyPackageSubmissionV1>("kp", p).ok())
        .filter_map(|s| s.payload.get(8..).map(<[u8]>::to_vec))
        .collect();
    write("mls", &[mls.clone(), key_packages].concat());
    let directory: Vec<Vec<u8>> = known
        .iter()
        .filter_map(|(topic, p)| {
            dir_topics.iter().position(|t| t == topic).map(|i| [vec![i as u8], p.clone()].concat())
        })
        .collect();
    write("directory", &directory);

    use crate::core::wire::{group_app_frame::Body, GroupAppFrame, GroupVote};
    use prost::Message as _;
    let mut frames: Vec<Vec<u8>> = inners.iter().filter(|b| !mls.contains(b)).cloned().collect();
    frames.push(
        GroupAppFrame { body: Some(Body::Vote(GroupVote { proposal_id: 7, vote: true })) }.encode_to_vec(),
    );
    frames.push(crate::core::conversation::Metadata::new("team", "a topic").unwrap().encode());
    write("group_frames", &frames);

    let payload: Vec<u8> = (0..20_000u32).map(|i| (i * 7) as u8).collect();
    let segs = crate::core::segment::split_into(&payload, 4096).unwrap();
    write("segments", &[join_parts(&segs), join_parts(&segs[1..]), join_parts(&[segs[0].clone()])]);

    let config = crate::core::reliable::ChannelConfig { segment_size: 8192, ..Default::default() };
    let mut peer =
        crate::core::reliable::ReliableChannel::new("fuzz-channel", "peer-a", config, 1_000).unwrap();
    let mut msgs = Vec::new();
    for (i, body) in [b"one".to_vec(), b"two".to_vec(), vec![9u8; 20_000]].into_iter().enumerate() {
        let (_, fx) = peer.send(&body, 1_000 + i as u64 * 100).unwrap();
        msgs.extend(fx.publish.into_iter().map(|o| o.bytes));
    }
    msgs.extend(peer.tick(100_000).publish.into_iter().map(|o| o.bytes));
    write("reliable", &[join_parts(&msgs), join_parts(&msgs[..1]), join_parts(&msgs[1..])]);

    let cipher = crate::core::store::StoreCipher::new(&store_key(net.nodes[w].seed));
    let kinds = ["meta", "account", "conversations", "messages", "outbox", "held", "mls", "seen"];
    let recs: Vec<Vec<u8>> = records
        .iter()
        .filter_map(|(s, k, v)| {
            let kind = kinds.iter().position(|n| n == s)?;
            let plain = cipher.open(crate::core::store::Store::from_name(s)?, k, v).ok()?;
            Some([vec![kind as u8], plain].concat())
        })
        .take(48)
        .collect();
    write("records", &recs);
}
