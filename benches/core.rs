//! Native benchmarks of the sans-IO core (criterion): the same operations the wasm
//! harness in `bench/` measures in Node and Chromium, so the two give a wasm/native ratio.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logos_chat::core::{Client, Effects};

fn client() -> (Client, Effects) {
    Client::create(Box::new(rand_core::OsRng), &[9; 32], 1).unwrap()
}

/// Two clients with a DirectV1 conversation; returns (alice, bob, conversation id).
fn pair() -> (Client, Client, String) {
    let (mut alice, fa) = client();
    let (mut bob, fb) = client();
    // Each looks the other up as a driver does: the list first, then its key packages.
    let (a_id, b_id) = (alice.account_id().to_hex(), bob.account_id().to_hex());
    for _pass in 0..2 {
        alice.lookup_topics(&[&b_id]);
        bob.lookup_topics(&[&a_id]);
        for o in fa.publish.iter().chain(fb.publish.iter()) {
            let _ = alice.ingest_directory(&o.content_topic, &o.payload);
            let _ = bob.ingest_directory(&o.content_topic, &o.payload);
        }
    }
    let (convo, fx) = alice.start_direct(&bob.account_id().to_hex(), 2).unwrap();
    for o in fx.publish {
        bob.receive(&o.content_topic, &o.payload, 2, 3);
    }
    assert!(bob.has_conversation(&convo));
    (alice, bob, convo)
}

fn direct(c: &mut Criterion) {
    let mut g = c.benchmark_group("direct");
    g.throughput(Throughput::Elements(1));
    let (mut alice, mut bob, convo) = pair();
    let content = vec![b'x'; 1024];
    let mut now = 10u64;
    g.bench_function("send_receive_1KiB", |b| {
        b.iter(|| {
            now += 1;
            let (_, fx) = alice.send(&convo, &content, now).unwrap();
            let out = &fx.publish[0];
            let got = bob.receive(&out.content_topic, &out.payload, now, now);
            assert!(!got.events.is_empty());
        })
    });
    g.sample_size(10);
    g.bench_function("create_account", |b| b.iter(client));
    g.bench_function("start_direct", |b| b.iter(pair));
    g.finish();
}

criterion_group!(benches, direct);
criterion_main!(benches);
