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
    let chunk = (segment_size.max(4096) - 128) / 64 * 64;
    let hash = Keccak256::digest(payload).to_vec();
    let chunks: Vec<&[u8]> = payload.chunks(chunk).collect();
    if chunks.len() > MAX_SEGMENTS {
        return None;
    }
    let count = chunks.len() as u32;
    Some(
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                SegmentMessage {
                    original_payload_hash: hash.clone(),
                    original_payload_length: payload.len() as u64,
                    index: i as u32,
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
        && s.original_payload_length <= (count * CHUNK) as u64
        && s.payload.len() <= CHUNK;
    sane.then_some(s)
}

#[derive(Debug, Default)]
struct Partial {
    length: u64,
    count: usize,
    parts: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
}

/// Incomplete sets by payload hash, oldest first.
#[derive(Debug, Default)]
pub struct Reassembler {
    sets: BTreeMap<Vec<u8>, Partial>,
    order: VecDeque<Vec<u8>>,
    buffered: usize,
}

impl Reassembler {
    /// Takes one segment; returns the whole payload when it completes a set that checks out.
    pub fn push(&mut self, s: SegmentMessage) -> Option<Vec<u8>> {
        if s.is_parity {
            return None;
        }
        let key = s.original_payload_hash.clone();
        if !self.sets.contains_key(&key) {
            self.order.push_back(key.clone());
            self.sets.insert(
                key.clone(),
                Partial {
                    length: s.original_payload_length,
                    count: s.data_segment_count as usize,
                    ..Partial::default()
                },
            );
        }
        let set = self.sets.get_mut(&key)?;
        if set.length != s.original_payload_length || set.count != s.data_segment_count as usize {
            return None; // a segment that disagrees with its set: ignored
        }
        if !set.parts.contains_key(&s.index) {
            set.bytes += s.payload.len();
            self.buffered += s.payload.len();
            set.parts.insert(s.index, s.payload);
        }
        if set.parts.len() == set.count {
            let set = self.remove(&key)?;
            let whole: Vec<u8> = set.parts.into_values().flatten().collect();
            let ok =
                whole.len() as u64 == set.length && Keccak256::digest(&whole).as_slice() == key.as_slice();
            return ok.then_some(whole);
        }
        while self.sets.len() > MAX_PARTIAL_SETS || self.buffered > MAX_BUFFERED {
            let Some(oldest) = self.order.front().cloned() else { break };
            self.remove(&oldest);
        }
        None
    }

    /// Whether an incomplete set with this payload hash is held.
    pub fn holds(&self, hash: &[u8]) -> bool {
        self.sets.contains_key(hash)
    }

    fn remove(&mut self, key: &[u8]) -> Option<Partial> {
        let set = self.sets.remove(key)?;
        self.order.retain(|k| k.as_slice() != key);
        self.buffered -= set.bytes;
        Some(set)
    }
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
    fn a_forged_segment_spoils_only_its_set_and_bounds_hold() {
        let payload = vec![7u8; 250_000];
        let segs = split(&payload).unwrap();
        let mut forged = parse(&segs[1]).unwrap();
        forged.payload[0] ^= 1;
        let mut r = Reassembler::default();
        r.push(parse(&segs[0]).unwrap());
        r.push(forged);
        assert_eq!(r.push(parse(&segs[2]).unwrap()), None, "the hash check fails");
        assert_eq!(r.buffered, 0);
        for i in 0..(MAX_PARTIAL_SETS + 5) {
            let p = vec![i as u8; 150_000];
            r.push(parse(&split(&p).unwrap()[0]).unwrap());
        }
        assert_eq!(r.sets.len(), MAX_PARTIAL_SETS);
        assert!(parse(b"\x0a\x03abc").is_none(), "not a segment");
        assert!(split(&vec![0u8; CHUNK * 257]).is_none(), "over 256 segments");
    }
}
