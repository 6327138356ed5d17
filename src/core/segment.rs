//! Segmentation of payloads over the network's size limit (PROTOCOL.md §5.5, LIP-243):
//! a payload whose WakuMessage would pass [`NETWORK_LIMIT`] goes out as `SegmentMessage`s of at most
//! [`SEGMENT_SIZE`] bytes, and the receiver reassembles it once every data segment is in
//! and the Keccak-256 of the whole matches. Parity segments are not produced (LIP-243's
//! default) and are ignored on receipt.
//!
//! The payloads segmented here are envelopes of MLS messages, already encrypted; the
//! segments carry the hash of that ciphertext. Receivers keep at most
//! [`MAX_PARTIAL_SETS`] incomplete sets and [`MAX_BUFFERED`] bytes, dropping the oldest.
//! A forged segment can spoil a set (its hash check fails and the set is dropped); the
//! sender's outbox and the store make the real segments available again.

use std::collections::{BTreeMap, VecDeque};

use prost::Message as _;
use sha3::{Digest, Keccak256};

use super::wire::SegmentMessage;

/// Most bytes of one serialized segment (LIP-243 default).
pub const SEGMENT_SIZE: usize = 102_400;
/// The Logos networks' limit on an encoded message (150 KiB): an envelope whose message
/// fits goes whole, since libchat cannot reassemble segments (it would read a segment's
/// hash as an envelope's conversation hint); only larger ones are segmented.
pub const NETWORK_LIMIT: usize = 150 * 1024;
/// Most segments in a set, parity included (LIP-243).
pub const MAX_SEGMENTS: usize = 256;
/// Most incomplete sets a receiver keeps.
pub const MAX_PARTIAL_SETS: usize = 100;
/// Most bytes a receiver buffers across incomplete sets.
pub const MAX_BUFFERED: usize = 32 * 1024 * 1024;

/// Data bytes per segment: `alignDown64(segment − 128)` (room for the header fields).
const CHUNK: usize = (SEGMENT_SIZE - 128) / 64 * 64;

/// Splits `payload` into encoded segments; `None` if it needs more than 256.
pub fn split(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    split_into(payload, SEGMENT_SIZE)
}

/// Splits `payload` into encoded segments of at most `segment_size` bytes (at least
/// 4 KiB); `None` if it needs more than 256.
pub fn split_into(payload: &[u8], segment_size: usize) -> Option<Vec<Vec<u8>>> {
    let chunk = segment_size.max(4096).saturating_sub(128) & !63;
    let hash = Keccak256::digest(payload).to_vec();
    let chunks: Vec<&[u8]> = payload.chunks(chunk).collect();
    if chunks.len() > MAX_SEGMENTS {
        return None;
    }
    let count = u32::try_from(chunks.len()).ok()?;
    Some(
        chunks
            .into_iter()
            .zip(0u32..)
            .map(|(c, index)| {
                SegmentMessage {
                    original_payload_hash: hash.clone(),
                    original_payload_length: payload.len() as u64,
                    index,
                    data_segment_count: count,
                    parity_segment_count: None,
                    is_parity: false,
                    payload: c.to_vec(),
                }
                .encode_to_vec()
            })
            .collect(),
    )
}

/// Decodes a segment, if the bytes are one (a 32-byte hash, sane counts).
pub fn parse(bytes: &[u8]) -> Option<SegmentMessage> {
    let s = SegmentMessage::decode(bytes).ok()?;
    let count = s.data_segment_count as usize;
    let sane = s.original_payload_hash.len() == 32
        && count > 0
        && count <= MAX_SEGMENTS
        && (s.is_parity || (s.index as usize) < count)
        && s.original_payload_length <= count.saturating_mul(CHUNK) as u64
        && s.payload.len() <= CHUNK;
    sane.then_some(s)
}

/// Distinct payloads kept per segment index: a forged copy of a segment must not
/// displace the real one, whichever comes first.
const MAX_CANDIDATES: usize = 3;
/// Most combinations of candidates tried (each one hash of the whole payload).
const MAX_TRIES: usize = 16;

#[derive(Debug, Default)]
struct Partial {
    count: usize,
    parts: BTreeMap<u32, Vec<Vec<u8>>>,
    bytes: usize,
}

/// Incomplete sets, oldest first. A set is its payload hash, length and segment count
/// together (LIP-243), so a forged segment that claims other counts starts a set of its
/// own instead of shutting the real segments out.
#[derive(Debug, Default)]
pub struct Reassembler {
    sets: BTreeMap<Vec<u8>, Partial>,
    order: VecDeque<Vec<u8>>,
    buffered: usize,
}

fn set_key(s: &SegmentMessage) -> Vec<u8> {
    let mut k = s.original_payload_hash.clone();
    k.extend_from_slice(&s.original_payload_length.to_be_bytes());
    k.extend_from_slice(&s.data_segment_count.to_be_bytes());
    k
}

impl Reassembler {
    /// Takes one segment; returns the whole payload when it completes a set that checks out.
    pub fn push(&mut self, s: SegmentMessage) -> Option<Vec<u8>> {
        if s.is_parity {
            return None;
        }
        let key = set_key(&s);
        if !self.sets.contains_key(&key) {
            self.order.push_back(key.clone());
            self.sets
                .insert(key.clone(), Partial { count: s.data_segment_count as usize, ..Partial::default() });
        }
        let set = self.sets.get_mut(&key)?;
        let candidates = set.parts.entry(s.index).or_default();
        if candidates.contains(&s.payload) || candidates.len() >= MAX_CANDIDATES {
            return None; // a copy, or too many versions of this segment already
        }
        set.bytes = set.bytes.saturating_add(s.payload.len());
        self.buffered = self.buffered.saturating_add(s.payload.len());
        candidates.push(s.payload);
        if set.parts.len() == set.count {
            if let Some(whole) = assemble(set, s.original_payload_length, &s.original_payload_hash) {
                self.remove(&key);
                return Some(whole);
            }
            // Some segment is forged: keep the set, the real one may still come.
        }
        while self.sets.len() > MAX_PARTIAL_SETS || self.buffered > MAX_BUFFERED {
            let Some(oldest) = self.order.front().cloned() else { break };
            self.remove(&oldest);
        }
        None
    }

    /// Whether an incomplete set with this payload hash is held.
    pub fn holds(&self, hash: &[u8]) -> bool {
        self.sets.range(hash.to_vec()..).next().is_some_and(|(k, _)| k.starts_with(hash))
    }

    fn remove(&mut self, key: &[u8]) -> Option<Partial> {
        let set = self.sets.remove(key)?;
        self.order.retain(|k| k.as_slice() != key);
        self.buffered = self.buffered.saturating_sub(set.bytes);
        Some(set)
    }
}

/// Tries combinations of the candidates (the first of each, then the others) until one
/// has the set's length and hash, at most [`MAX_TRIES`].
fn assemble(set: &Partial, length: u64, hash: &[u8]) -> Option<Vec<u8>> {
    let parts: Vec<&Vec<Vec<u8>>> = set.parts.values().collect();
    let mut choice = vec![0usize; parts.len()];
    for _ in 0..MAX_TRIES {
        let whole: Vec<u8> =
            parts.iter().zip(&choice).filter_map(|(c, &i)| c.get(i)).flatten().copied().collect();
        if whole.len() as u64 == length && Keccak256::digest(&whole).as_slice() == hash {
            return Some(whole);
        }
        // The next combination, odometer style; done when every one was tried.
        let mut digits = choice.iter_mut().zip(&parts);
        loop {
            let (digit, candidates) = digits.next()?;
            *digit = digit.saturating_add(1);
            if *digit < candidates.len() {
                break;
            }
            *digit = 0;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_payload_splits_and_reassembles_in_any_order() {
        let payload: Vec<u8> = (0..350_000u32).map(|i| (i % 251) as u8).collect();
        let mut segs = split(&payload).unwrap();
        assert_eq!(segs.len(), 4);
        assert!(segs.iter().all(|s| s.len() <= SEGMENT_SIZE));
        segs.reverse();
        let mut r = Reassembler::default();
        let mut done = Vec::new();
        for (i, s) in segs.iter().chain(segs.iter()).enumerate() {
            if let Some(p) = r.push(parse(s).unwrap()) {
                done.push((i, p));
            }
        }
        // A replayed set assembles again; the client drops the copy by its digest.
        assert_eq!(done.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![3, 7]);
        assert!(done.iter().all(|(_, p)| p == &payload));
        assert_eq!(r.buffered, 0);
    }

    #[test]
    fn a_forged_segment_does_not_stop_the_real_message_whichever_comes_first() {
        let payload: Vec<u8> = (0..250_000u32).map(|i| (i % 253) as u8).collect();
        let segs = split(&payload).unwrap();
        assert_eq!(segs.len(), 3);
        let mut forged = parse(&segs[1]).unwrap();
        forged.payload[0] ^= 1;
        // Forged after the real one, and forged before it.
        for forged_first in [false, true] {
            let mut r = Reassembler::default();
            assert_eq!(r.push(parse(&segs[0]).unwrap()), None);
            if forged_first {
                r.push(forged.clone());
                assert_eq!(r.push(parse(&segs[2]).unwrap()), None, "the forged set fails its hash");
                assert_eq!(
                    r.push(parse(&segs[1]).unwrap()),
                    Some(payload.clone()),
                    "the real segment still completes it"
                );
            } else {
                r.push(parse(&segs[1]).unwrap());
                r.push(forged.clone());
                assert_eq!(r.push(parse(&segs[2]).unwrap()), Some(payload.clone()));
            }
            assert_eq!(r.buffered, 0);
        }
        // A forged segment claiming another length or count starts a set of its own.
        let mut other = parse(&segs[0]).unwrap();
        other.data_segment_count = 2;
        other.original_payload_length = 1;
        let mut r = Reassembler::default();
        r.push(other);
        let done: Vec<_> = segs.iter().filter_map(|s| r.push(parse(s).unwrap())).collect();
        assert_eq!(done, vec![payload.clone()]);
    }

    #[test]
    fn bounds_hold() {
        let mut r = Reassembler::default();
        for i in 0..(MAX_PARTIAL_SETS + 5) {
            let p = vec![i as u8; 150_000];
            r.push(parse(&split(&p).unwrap()[0]).unwrap());
        }
        assert_eq!(r.sets.len(), MAX_PARTIAL_SETS);
        // Versions of one segment are bounded too.
        let segs = split(&vec![9u8; 150_000]).unwrap();
        let mut r = Reassembler::default();
        for k in 0..10u8 {
            let mut f = parse(&segs[0]).unwrap();
            f.payload[0] = k;
            r.push(f);
        }
        assert!(r.buffered <= MAX_CANDIDATES * CHUNK);
        assert!(parse(b"\x0a\x03abc").is_none(), "not a segment");
        assert!(split(&vec![0u8; CHUNK * 257]).is_none(), "over 256 segments");
    }
}
