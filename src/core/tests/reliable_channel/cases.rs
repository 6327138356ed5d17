//! Single-channel cases: `@waku/sds` vectors, re-sends and delivery failure,
//! per-participant acknowledgements, restarts from records alone, hostile input.

use std::collections::BTreeMap;

use prost::Message as _;

use crate::core::reliable::{ChannelConfig, ChannelEffects, ChannelEvent, ReliableChannel, MAX_BUFFERED};
use crate::core::wire::{HistoryEntry, SdsMessage};

fn events(fx: &ChannelEffects) -> Vec<ChannelEvent> {
    fx.events.clone()
}

/// The payloads a call delivered, in order.
fn received(fx: &ChannelEffects) -> Vec<Vec<u8>> {
    fx.events
        .iter()
        .filter_map(|e| match e {
            ChannelEvent::Received { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

/// Ticks a channel until it sends a sync; returns its bytes.
fn next_sync(ch: &mut ReliableChannel) -> Vec<u8> {
    for _ in 0..10 {
        let fx = ch.tick(ch.next_wake().unwrap());
        if let Some(o) = fx.publish.into_iter().find(|o| o.request_id.is_none()) {
            return o.bytes;
        }
    }
    panic!("no sync");
}

#[test]
fn reads_waku_sds_messages_and_reports_their_gaps() {
    // @waku/sds 0.0.8: content [1,2,3] from "s" on "c", lamport 1000, naming the
    // message of content [0] (hint 0xdead) and carrying a 2-byte bloom (ignored).
    let vector = hex::decode("0a01731240303339303538633666326330636234393263353333623061346431346566373763633066373861626363636564353238376438346131613230313163666238311a016350e8075a490a40366533343062396366666233376139383963613534346536626237383061326337383930316433666233333733383736383531316133303631376166613031641202dead1a017362020102a20103010203").unwrap();
    let first = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
    let mut ch = ReliableChannel::new("c", "me", ChannelConfig::default(), 900).unwrap();
    let fx = ch.receive(&vector, "aa", 900);
    assert_eq!(
        events(&fx),
        vec![ChannelEvent::Missing { message_id: first.into(), sender_id: Some("s".into()) }]
    );
    let fx = ch.tick(fx.wake_at.unwrap());
    assert_eq!(fx.queries[0].message_hashes, vec!["dead".to_string()], "repair asks the store by hint");
    let prior = SdsMessage {
        sender_id: "s".into(),
        message_id: first.into(),
        channel_id: "c".into(),
        lamport_timestamp: Some(999),
        content: Some(vec![0]),
        ..SdsMessage::default()
    };
    let fx = ch.receive(&prior.encode_to_vec(), "dead", 2_000);
    let got = received(&fx);
    assert_eq!(got, vec![vec![0], vec![1, 2, 3]], "in causal order");
    // Our sync acknowledges both by name, without a bloom filter.
    let fx = ch.tick(fx.wake_at.unwrap());
    let sync = SdsMessage::decode(fx.publish[0].bytes.as_slice()).unwrap();
    assert!(sync.message_id.starts_with("sync-") && sync.content.is_none() && sync.bloom_filter.is_none());
    let named: Vec<&str> = sync.causal_history.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(named.len(), 2);
    assert!(named.contains(&first));
}

#[test]
fn retransmits_the_same_bytes_then_reports_delivery_failure() {
    let mut ch = ReliableChannel::new("c", "me", ChannelConfig::default(), 1_000).unwrap();
    let (request, fx) = ch.send(b"hello", 1_000).unwrap();
    let first = fx.publish[0].bytes.clone();
    let mut sends = 1;
    let mut failed = Vec::new();
    let mut t = fx.wake_at.unwrap();
    for _ in 0..10 {
        let fx = ch.tick(t);
        assert!(fx.publish.iter().all(|o| o.bytes == first), "never re-encoded");
        sends += fx.publish.len();
        failed.extend(fx.events.clone());
        match fx.wake_at {
            Some(w) => t = w,
            None => break,
        }
    }
    assert_eq!(sends, 6, "the first send and 5 retransmissions");
    assert_eq!(failed, vec![ChannelEvent::DeliveryFailed { request_id: request, unacked_by: vec![] }]);
    assert_eq!(ch.unacknowledged(), 0);
}

#[test]
fn acknowledgements_settle_once_every_active_participant_has_it() {
    let cfg = ChannelConfig::default;
    let mut a = ReliableChannel::new("c", "a", cfg(), 1_000).unwrap();
    let mut b = ReliableChannel::new("c", "b", cfg(), 1_000).unwrap();
    let mut c = ReliableChannel::new("c", "c", cfg(), 1_000).unwrap();
    // a hears from b and c first, so it knows both.
    for (who, ch) in [("b", &mut b), ("c", &mut c)] {
        let (_, fx) = ch.send(who.as_bytes(), 1_000).unwrap();
        a.receive(&fx.publish[0].bytes, "01", 1_001);
    }
    let (request, fx) = a.send(b"to both", 2_000).unwrap();
    let msg = fx.publish[0].bytes.clone();
    b.receive(&msg, "02", 2_001);
    let sync_b = next_sync(&mut b);
    let fx = a.receive(&sync_b, "03", 4_000);
    assert_eq!(
        events(&fx),
        vec![ChannelEvent::Delivered { request_id: request.clone(), by: Some("b".into()) }]
    );
    assert_eq!(a.unacknowledged(), 1, "c has not acknowledged it yet");
    let fx = a.tick(7_000);
    assert_eq!(fx.publish.len(), 1, "so it goes again");
    c.receive(&fx.publish[0].bytes, "04", 7_001);
    let sync_c = next_sync(&mut c);
    let fx = a.receive(&sync_c, "05", 9_000);
    assert!(events(&fx).is_empty(), "delivered is reported once");
    assert_eq!(a.unacknowledged(), 0);
}

#[test]
fn a_re_sent_message_is_acknowledged_even_when_a_message_of_ours_goes_before_the_sync() {
    let cfg = ChannelConfig::default;
    let mut a = ReliableChannel::new("c", "a", cfg(), 1_000).unwrap();
    let mut b = ReliableChannel::new("c", "b", cfg(), 1_000).unwrap();
    let (_, fx) = b.send(b"hi", 1_000).unwrap();
    a.receive(&fx.publish[0].bytes, "00", 1_001);
    // a sends three; b gets them all, but b's acknowledging sync is lost.
    let mut first = None;
    for (i, t) in [(0u8, 2_000), (1, 2_010), (2, 2_020)] {
        let (request, fx) = a.send(&[b'm', i], t).unwrap();
        first.get_or_insert((request, fx.publish[0].bytes.clone()));
        b.receive(&fx.publish[0].bytes, "01", t + 1);
    }
    let (request, m0) = first.unwrap();
    let _lost = next_sync(&mut b);
    // a re-sends the first (no acknowledgement came): b has it, so it owes an ack again…
    b.receive(&m0, "02", 3_000);
    // …and sends a message of its own before that sync is due.
    let (_, fx) = b.send(b"news", 3_001).unwrap();
    let named: Vec<String> = SdsMessage::decode(fx.publish[0].bytes.as_slice())
        .unwrap()
        .causal_history
        .into_iter()
        .map(|h| h.message_id)
        .collect();
    let fx = a.receive(&fx.publish[0].bytes, "03", 3_100);
    assert!(
        events(&fx).contains(&ChannelEvent::Delivered { request_id: request, by: Some("b".into()) }),
        "the re-sent message was acknowledged by the next message (it named {named:?})"
    );
}

#[test]
fn restarts_from_its_records_alone() {
    let cfg = ChannelConfig::default;
    let mut db: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let keep = |db: &mut BTreeMap<Vec<u8>, Vec<u8>>, fx: &ChannelEffects| {
        for op in &fx.ops {
            match &op.value {
                Some(v) => db.insert(op.key.clone(), v.clone()),
                None => db.remove(&op.key),
            };
        }
    };
    let mut a = ReliableChannel::new("c", "a", cfg(), 1_000).unwrap();
    let mut b = ReliableChannel::new("c", "b", cfg(), 1_000).unwrap();
    let (_, fx) = b.send(b"b1", 1_000).unwrap();
    let b1 = fx.publish[0].bytes.clone();
    let (_, fx) = b.send(b"b2", 1_100).unwrap();
    let b2 = fx.publish[0].bytes.clone();
    let fx = a.receive(&b2, "02", 1_200); // b1 is missing: b2 waits
    keep(&mut db, &fx);
    let (_, fx) = a.send(b"a1", 1_300).unwrap();
    keep(&mut db, &fx);
    let a1 = fx.publish[0].bytes.clone();
    // Crash: only the records remain. Other channels' records are skipped.
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = db.clone().into_iter().collect();
    records.push((b"elsewhere-key".to_vec(), b"junk".to_vec()));
    let mut a = ReliableChannel::restore("c", "a", cfg(), records, 2_000).unwrap();
    assert_eq!(a.missing_ids().len(), 1, "the gap is still known");
    let fx = a.tick(7_000);
    assert!(fx.publish.iter().any(|o| o.bytes == a1), "a1 is re-sent as the same bytes");
    let fx = a.receive(&b1, "01", 7_100);
    let got = received(&fx);
    assert_eq!(got, vec![b"b1".to_vec(), b"b2".to_vec()]);
    // A record that does not decode is corruption, never a silent reset.
    let (k, _) = db.iter().next().unwrap();
    let bad = vec![(k.clone(), vec![0xff; 3])];
    assert!(ReliableChannel::restore("c", "a", cfg(), bad, 2_000).is_err());
}

#[test]
fn hostile_input_is_reported_and_changes_nothing() {
    let mut ch = ReliableChannel::new("c", "me", ChannelConfig::default(), 1_000).unwrap();
    let code = |fx: &ChannelEffects| match fx.events.as_slice() {
        [ChannelEvent::Error { code, .. }] => *code,
        other => panic!("expected one error, got {other:?}"),
    };
    assert_eq!(code(&ch.receive(&[0xff, 0xff, 0xff], "00", 1_000)), "PROTOCOL");
    assert_eq!(code(&ch.receive(&vec![0u8; 2 * 1024 * 1024], "00", 1_000)), "PAYLOAD_TOO_LARGE");
    let msg = |id: &str, lamport: u64, deps: &[&str], content: &[u8]| {
        SdsMessage {
            sender_id: "x".into(),
            message_id: id.into(),
            channel_id: "c".into(),
            lamport_timestamp: Some(lamport),
            causal_history: deps
                .iter()
                .map(|d| HistoryEntry {
                    message_id: (*d).into(),
                    sender_id: "x".into(),
                    ..HistoryEntry::default()
                })
                .collect(),
            content: Some(content.to_vec()),
            ..SdsMessage::default()
        }
        .encode_to_vec()
    };
    // A Lamport time far ahead would drag our clock away for good.
    assert_eq!(code(&ch.receive(&msg("m", u64::MAX, &[], b"x"), "00", 1_000)), "PROTOCOL");
    // Not ours: another channel, or our own id echoed back.
    let mut other = SdsMessage::decode(msg("m", 5, &[], b"x").as_slice()).unwrap();
    other.channel_id = "d".into();
    assert!(ch.receive(&other.encode_to_vec(), "00", 1_000).events.is_empty());
    other.channel_id = "c".into();
    other.sender_id = "me".into();
    assert!(ch.receive(&other.encode_to_vec(), "00", 1_000).events.is_empty());
    // A copy with altered content under a known id is a duplicate, dropped.
    assert_eq!(ch.receive(&msg("m", 5, &[], b"real"), "00", 1_000).events.len(), 1);
    assert!(ch.receive(&msg("m", 5, &[], b"forged"), "00", 1_000).events.is_empty());
    // A flood of messages naming ids that never come is bounded.
    for i in 0..(MAX_BUFFERED + 50) {
        ch.receive(&msg(&format!("f{i}"), 6, &[&format!("ghost{i}")], b"x"), "00", 1_000);
    }
    let fx = ch.receive(&msg("last", 6, &["ghost-last"], b"x"), "00", 1_000);
    assert!(fx.events.iter().any(|e| matches!(e, ChannelEvent::Error { code: "PAYLOAD_TOO_LARGE", .. })));
    // After the lost timeout, what waited is delivered with the gaps reported.
    let fx = ch.tick(1_000 + ChannelConfig::default().lost_after_ms);
    let lost = fx.events.iter().filter(|e| matches!(e, ChannelEvent::Lost { .. })).count();
    let got = fx.events.iter().filter(|e| matches!(e, ChannelEvent::Received { .. })).count();
    assert_eq!((lost, got), (MAX_BUFFERED, MAX_BUFFERED));
}
