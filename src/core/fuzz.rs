//! Fuzz targets (issue 12): every decoder the network can reach, and
//! [`Client::receive`] on a client that holds real conversations.
//!
//! The same functions run in two harnesses: `fuzz/` (cargo-fuzz, libFuzzer,
//! coverage-guided, for long runs: `scripts/fuzz`) and the native test
//! `core::tests::fuzz`, which replays the committed corpus (`fuzz/corpus/<target>/`)
//! and a fixed number of structure-aware mutants of it in every `cargo test`. A
//! target panics only when an invariant breaks; bad input is an `Err`, never a panic.
//!
//! The `receive` target needs a world: a client with a direct chat and a group. It is
//! restored from a snapshot of its store (`fuzz/corpus/world.bin`, written with the
//! corpus from a simulated network), so the corpus's envelopes are addressed to it and
//! decrypt: mutations then reach past the AEAD into the MLS, de-MLS and SDS handlers.

use prost::Message as _;
use rand_core::CryptoRngCore;

use crate::core::conversation::group::tree;
use crate::core::conversation::mls::decode_mls_message;
use crate::core::conversation::mls_store::Provider;
use crate::core::conversation::Metadata;
use crate::core::directory::{parse_key_package, Directory, ACCOUNT_TOPIC, KEYPACKAGE_TOPIC};
use crate::core::reliable::bloom::Bloom;
use crate::core::reliable::{ChannelConfig, ReliableChannel};
use crate::core::segment::{self, Reassembler};
use crate::core::store::{self, LoadedRecord};
use crate::core::wire;
use crate::core::{Client, Effects};
use openmls_traits::OpenMlsProvider as _;

/// The targets, by the name of their corpus folder.
pub const TARGETS: &[&str] =
    &["envelope", "group_frames", "mls", "segments", "reliable", "records", "directory", "receive"];

/// Most bytes one call may write to the store for one input of `n` bytes: what a
/// message can legitimately cost (its record, the conversation's record, the digests),
/// never a multiple of the whole state.
fn write_budget(n: usize) -> usize {
    n.saturating_mul(4).saturating_add(256 * 1024)
}

/// Splits `data` into length-prefixed parts (u16 BE lengths; a short tail is one part):
/// how the targets that take a sequence of messages read their input.
pub fn parts(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < 64 {
        let (len, rest) = match data {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
            _ => (data.len(), &data[..0]),
        };
        let (part, tail) = rest.split_at(len.min(rest.len()));
        out.push(part);
        data = tail;
    }
    out
}

/// Joins parts the way [`parts`] splits them (for writing the corpus).
pub fn join_parts(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&p[..usize::from(len)]);
    }
    out
}

/// Runs one input through a stateless target (all but `receive`). Unknown names do nothing.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "envelope" => envelope(data),
        "group_frames" => group_frames(data),
        "mls" => mls(data),
        "segments" => segments(data),
        "reliable" => reliable(data),
        "records" => records(data),
        "directory" => directory(data),
        _ => {}
    }
}

/// Every protobuf that arrives in an envelope or in one of its layers.
fn envelope(data: &[u8]) {
    let _ = wire::decode::<wire::WakuMessage>("fuzz", data);
    let _ = wire::decode::<wire::EnvelopeV1>("fuzz", data);
    let _ = wire::decode::<wire::EncryptedPayload>("fuzz", data);
    let _ = wire::decode::<wire::Plaintext>("fuzz", data);
    let _ = wire::decode::<wire::InboxV2Frame>("fuzz", data);
    let _ = wire::decode::<wire::ReliablePayload>("fuzz", data);
    let _ = wire::decode::<wire::SdsMessage>("fuzz", data);
    // A decoded message encodes back to bytes that decode to the same message.
    if let Ok(e) = wire::decode::<wire::EnvelopeV1>("fuzz", data) {
        let again = wire::decode::<wire::EnvelopeV1>("fuzz", &e.encode_to_vec());
        assert_eq!(again.ok().as_ref(), Some(&e), "an envelope does not re-encode to itself");
    }
}

/// de-MLS frames, the invite and tree frames, and the group metadata extension.
fn group_frames(data: &[u8]) {
    let _ = wire::decode::<wire::GroupAppFrame>("fuzz", data);
    let _ = wire::decode::<wire::MemberWelcome>("fuzz", data);
    let _ = wire::decode::<wire::TreeTicket>("fuzz", data);
    let _ = wire::decode::<wire::GroupBundles>("fuzz", data);
    let _ = wire::decode::<wire::GroupSync>("fuzz", data);
    let _ = tree::parse(data);
    if let Ok(m) = Metadata::decode(data) {
        assert_eq!(Metadata::decode(&m.encode()).ok(), Some(m), "metadata does not re-encode to itself");
    }
}

/// MLS messages through the bounded decoder, and key packages.
fn mls(data: &[u8]) {
    let _ = decode_mls_message(data);
    if let Ok(provider) = Provider::new() {
        let _ = parse_key_package(data, provider.crypto());
    }
}

/// A sequence of segments into one reassembler: what completes must match its hash
/// and length (the reassembler checks; here we check it did).
fn segments(data: &[u8]) {
    let mut r = Reassembler::default();
    for part in parts(data) {
        let Some(s) = segment::parse(part) else { continue };
        let (hash, len) = (s.original_payload_hash.clone(), s.original_payload_length);
        if let Some(whole) = r.push(s) {
            assert_eq!(whole.len() as u64, len, "a reassembled payload of another length");
            use sha3::Digest as _;
            assert_eq!(
                sha3::Keccak256::digest(&whole).as_slice(),
                hash.as_slice(),
                "a reassembled payload of another hash"
            );
        }
    }
}

/// A sequence of SDS messages into one Reliable Channel, with the clock moving, and
/// its bloom filter decoder.
fn reliable(data: &[u8]) {
    let _ = Bloom::from_bytes(data);
    let Ok(mut ch) = ReliableChannel::new("fuzz-channel", "fuzz-me", ChannelConfig::default(), 1_000) else {
        return;
    };
    let mut now = 1_000u64;
    for (i, part) in parts(data).into_iter().enumerate() {
        now = now.saturating_add(700);
        let fx = ch.receive(part, &format!("{i:064x}"), now);
        let written: usize = fx.ops.iter().map(|o| o.key.len() + o.value.as_ref().map_or(0, Vec::len)).sum();
        assert!(
            written <= write_budget(part.len()),
            "{written} bytes written for a {}-byte message",
            part.len()
        );
        let _ = ch.tick(now);
    }
    let _ = ch.send(b"still sends", now);
}

/// Stored records, by a leading selector byte.
fn records(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 9 {
        0 => drop(store::decode_record::<store::MetaRecord>("fuzz", body)),
        1 => drop(store::decode_record::<store::AccountRecord>("fuzz", body)),
        2 => drop(store::decode_record::<store::ConversationRecord>("fuzz", body)),
        3 => drop(store::decode_record::<store::MessageRecord>("fuzz", body)),
        4 => drop(store::decode_record::<store::OutboxRecord>("fuzz", body)),
        5 => drop(store::decode_record::<store::HeldRecord>("fuzz", body)),
        6 => drop(store::decode_record::<store::MlsRecord>("fuzz", body)),
        7 => drop(store::decode_record::<store::SeenRecord>("fuzz", body)),
        _ => drop(store::decode_record::<crate::core::demls::GovernanceRecord>("fuzz", body)),
    }
}

/// Directory records on both directory topics (a leading byte picks the topic).
fn directory(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else { return };
    let Ok(provider) = Provider::new() else { return };
    let mut d = Directory::default();
    // Sealed records too: of a fixed account, on its list topic or a device's.
    let account = crate::core::address::AccountId::from_bytes([1; 32]);
    let sealed_topics = d.lookup_topics(std::slice::from_ref(&account));
    let topic = match kind % 4 {
        0 => ACCOUNT_TOPIC,
        1 => KEYPACKAGE_TOPIC,
        _ => sealed_topics
            .iter()
            .find(|t| t.starts_with(crate::core::directory::sealed::TOPIC_PREFIX))
            .map_or(ACCOUNT_TOPIC, String::as_str),
    };
    let _ = d.ingest(topic, body, provider.crypto());
    let _ = crate::core::directory::sealed::open(&account, topic, body);
    // Contact cards and account logs carry the same records.
    let _ = crate::core::card::open_bytes(body);
    let _ = crate::core::account_log::parse_unsigned(body);
    let _ = crate::core::card::open(&String::from_utf8_lossy(body));
}

/// A client restored from a snapshot, and the topics it follows.
pub struct World {
    /// The client under test.
    pub client: Client,
    /// Its inbox, conversation and directory topics.
    pub topics: Vec<String>,
    /// The virtual time of the snapshot (ms); inputs arrive a little later.
    pub now: u64,
}

/// The snapshot of a world: `store key (32) ‖ now (u64 BE) ‖ topics ‖ records ‖
/// directory`, each topic, record field and directory record (topic, payload)
/// u32-BE length-prefixed, each list preceded by its u32-BE count. The directory
/// records are what a lookup would read (the directory is not persisted).
pub fn encode_world(
    store_key: &[u8; 32],
    now: u64,
    topics: &[String],
    records: &[LoadedRecord],
    directory: &[(String, Vec<u8>)],
) -> Vec<u8> {
    let mut out = store_key.to_vec();
    out.extend_from_slice(&now.to_be_bytes());
    let put = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(b);
    };
    out.extend_from_slice(&u32::try_from(topics.len()).unwrap_or(0).to_be_bytes());
    for t in topics {
        put(&mut out, t.as_bytes());
    }
    out.extend_from_slice(&u32::try_from(records.len()).unwrap_or(0).to_be_bytes());
    for (s, k, v) in records {
        put(&mut out, s.as_bytes());
        put(&mut out, k);
        put(&mut out, v);
    }
    out.extend_from_slice(&u32::try_from(directory.len()).unwrap_or(0).to_be_bytes());
    for (t, p) in directory {
        put(&mut out, t.as_bytes());
        put(&mut out, p);
    }
    out
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = (b.get(..n)?, b.get(n..)?);
    *b = tail;
    Some(head)
}

fn take_u32(b: &mut &[u8]) -> Option<usize> {
    let x = take(b, 4)?;
    usize::try_from(u32::from_be_bytes([x[0], x[1], x[2], x[3]])).ok()
}

fn take_field(b: &mut &[u8]) -> Option<Vec<u8>> {
    let n = take_u32(b)?;
    take(b, n).map(<[u8]>::to_vec)
}

impl World {
    /// Restores the world of a snapshot written by [`encode_world`].
    pub fn restore(mut snapshot: &[u8], rng: Box<dyn CryptoRngCore>) -> Option<World> {
        let key: [u8; 32] = take(&mut snapshot, 32)?.try_into().ok()?;
        let now = u64::from_be_bytes(take(&mut snapshot, 8)?.try_into().ok()?);
        let topics = (0..take_u32(&mut snapshot)?)
            .map(|_| take_field(&mut snapshot).and_then(|t| String::from_utf8(t).ok()))
            .collect::<Option<Vec<_>>>()?;
        let records = (0..take_u32(&mut snapshot)?)
            .map(|_| {
                let s = String::from_utf8(take_field(&mut snapshot)?).ok()?;
                Some((s, take_field(&mut snapshot)?, take_field(&mut snapshot)?))
            })
            .collect::<Option<Vec<_>>>()?;
        let (mut client, _) = Client::restore(rng, &key, records, now).ok()?;
        for _ in 0..take_u32(&mut snapshot)? {
            let topic = String::from_utf8(take_field(&mut snapshot)?).ok()?;
            let record = take_field(&mut snapshot)?;
            // The world's accounts are looked up, as a driver would before using them.
            if let Ok(s) = wire::decode::<wire::AccountSubmissionV1>("fuzz", &record) {
                if topic == ACCOUNT_TOPIC {
                    client.lookup_topics(&[&hex::encode(&s.account_pub)]);
                }
            }
            let _ = client.ingest_directory(&topic, &record);
        }
        Some(World { client, topics, now })
    }

    /// One input: a leading byte picks the topic, the rest is the payload. The call
    /// must not panic, and what it writes is bounded by what came in.
    pub fn receive(&mut self, data: &[u8]) -> Effects {
        let Some((&pick, payload)) = data.split_first() else { return Effects::default() };
        let Some(topic) = self.topics.get(usize::from(pick) % self.topics.len().max(1)) else {
            return Effects::default();
        };
        self.now = self.now.saturating_add(10);
        let fx = self.client.receive(topic, payload, self.now, self.now);
        let written: usize =
            fx.store.iter().map(|o| o.key.len() + o.value.as_ref().map_or(0, Vec::len)).sum();
        assert!(
            written <= write_budget(payload.len()).saturating_add(self.client_state_floor()),
            "{written} bytes written for a {}-byte message",
            payload.len()
        );
        fx
    }

    /// A legitimate message changes the conversation's record, which holds its MLS
    /// group: that much may be written for any input that authenticates.
    fn client_state_floor(&self) -> usize {
        2 << 20
    }
}
