//! The bloom filter that `@waku/sds` puts in SDS messages (PROTOCOL.md §6): capacity
//! 10 000 at error rate 0.001, so m = 150 000 bits and k = 10, serialized as 2 344
//! big-endian 64-bit words (18 752 bytes). Both sides must use these parameters: a
//! filter of any other length is ignored.
//!
//! Bit positions follow Nim's double hashing as js-waku compiles it:
//! `hashN(item, n, m) = |hA + n·hB| mod m`, `hA = |h(item)| mod m`,
//! `hB = |h(item ‖ " b")| mod m`, with `h` MurmurHash3-x86-32 (seed 0) read as a
//! signed 32-bit integer.

/// Bits in the filter.
pub const BITS: u64 = 150_000;
/// Hash functions.
pub const HASHES: u64 = 10;
/// 64-bit words on the wire.
#[allow(clippy::cast_possible_truncation, reason = "150,000 fits any usize of 32 bits or more")]
pub const WORDS: usize = (BITS as usize).div_ceil(64);
/// Serialized length in bytes.
pub const BYTES: usize = WORDS * 8;

/// MurmurHash3, x86 32-bit variant.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let (blocks, tail) = data.as_chunks::<4>();
    for b in blocks {
        let mut k = u32::from_le_bytes(*b);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    if !tail.is_empty() {
        let k = tail.iter().rev().fold(0u32, |k, &byte| k.wrapping_shl(8) | u32::from(byte));
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    #[allow(clippy::cast_possible_truncation, reason = "MurmurHash3 mixes in the length mod 2^32")]
    let len = data.len() as u32;
    h ^= len;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// `hashN` of the filter (see the module docs).
pub fn hash_n(item: &str, n: u64, m: u64) -> u64 {
    let h = |s: &[u8]| i64::from(murmur3_32(s, 0) as i32).unsigned_abs();
    let modulo = |x: u64| x.checked_rem(m).unwrap_or(0);
    let a = modulo(h(item.as_bytes()));
    let with_b = [item.as_bytes(), b" b"].concat();
    let b = modulo(h(&with_b));
    // a, b < m and n < HASHES: no wrap for the filter's m (Nim computes it in int64).
    modulo(a.wrapping_add(n.wrapping_mul(b)))
}

/// A fixed-size bloom filter of message ids.
#[derive(Clone, PartialEq, Eq)]
pub struct Bloom {
    words: Vec<u64>,
}

impl Default for Bloom {
    fn default() -> Self {
        Bloom { words: vec![0; WORDS] }
    }
}

impl std::fmt::Debug for Bloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set: u32 = self.words.iter().map(|w| w.count_ones()).sum();
        write!(f, "Bloom({set} bits set)")
    }
}

impl Bloom {
    /// Adds an id.
    pub fn insert(&mut self, id: &str) {
        for n in 0..HASHES {
            let bit = hash_n(id, n, BITS);
            if let Some(w) = usize::try_from(bit / 64).ok().and_then(|i| self.words.get_mut(i)) {
                *w |= 1 << (bit % 64);
            }
        }
    }

    /// Whether the id may have been added (false positives at about 0.1% when full).
    pub fn contains(&self, id: &str) -> bool {
        (0..HASHES).all(|n| {
            let bit = hash_n(id, n, BITS);
            let word = usize::try_from(bit / 64).ok().and_then(|i| self.words.get(i));
            word.is_some_and(|w| w & (1 << (bit % 64)) != 0)
        })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// Reads a filter; `None` unless it has exactly the expected length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Bloom> {
        if bytes.len() != BYTES {
            return None;
        }
        let words = bytes.as_chunks::<8>().0.iter().map(|c| u64::from_be_bytes(*c)).collect();
        Some(Bloom { words })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_nim_compiled_to_js() {
        // PROTOCOL.md §8 E.
        assert_eq!(murmur3_32(b"hello", 0) as i32, 613_153_351);
        assert_eq!(murmur3_32(b"hello b", 0) as i32, 950_010_874);
        assert_eq!([0, 1, 2].map(|n| hash_n("hello", n, 100)), [51, 25, 99]);
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"abc", 0), 0xb3dd_93fa);
    }

    #[test]
    fn sets_the_bits_waku_sds_sets() {
        // @waku/sds 0.0.8: a filter holding this one id has these bytes non-zero (offset, value).
        let mut b = Bloom::default();
        b.insert("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        let set: Vec<(usize, u8)> = b.to_bytes().into_iter().enumerate().filter(|(_, v)| *v != 0).collect();
        assert_eq!(
            set,
            [
                (1704, 0x40),
                (1837, 0x80),
                (5504, 0x01),
                (5637, 0x02),
                (9188, 0x02),
                (9305, 0x04),
                (12989, 0x08),
                (13106, 0x10),
                (16657, 0x10),
                (16790, 0x20)
            ]
        );
    }

    #[test]
    fn round_trips_and_rejects_other_sizes() {
        let mut b = Bloom::default();
        for i in 0..500 {
            b.insert(&format!("id-{i}"));
        }
        assert!((0..500).all(|i| b.contains(&format!("id-{i}"))));
        let false_hits = (0..10_000).filter(|i| b.contains(&format!("other-{i}"))).count();
        assert!(false_hits < 20, "{false_hits} false positives");
        let bytes = b.to_bytes();
        assert_eq!(bytes.len(), 18_752);
        assert_eq!(Bloom::from_bytes(&bytes), Some(b));
        assert_eq!(Bloom::from_bytes(&bytes[1..]), None);
    }
}
