//! A fast hasher for byte-string keys held only in memory: row-lock keys,
//! a transaction's per-tree overlays. The standard SipHash resists chosen
//! keys at several times the cost; these tables are per process, bounded
//! by the work of the transactions that fill them, and were a tenth of a
//! bulk load's time under SipHash.

use std::hash::{BuildHasherDefault, Hasher};

/// Folded-multiply hashing, eight bytes at a time: each word is mixed in
/// with a 64×64→128-bit multiply whose halves are folded together, so
/// every input bit reaches every output bit (a plain multiply only carries
/// low bits upward, and hash tables index by the low bits).
#[derive(Debug, Default, Clone, Copy)]
pub struct BytesHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

fn fold_mul(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

impl BytesHasher {
    fn mix(&mut self, w: u64) {
        self.0 = fold_mul(self.0 ^ w, K);
    }
}

impl Hasher for BytesHasher {
    fn finish(&self) -> u64 {
        fold_mul(self.0, 0xD6E8_FEB8_6659_FD93)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length keeps "a" and "a\0" apart.
        self.mix(u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
}

/// Builds [`BytesHasher`]s.
pub type BuildBytesHasher = BuildHasherDefault<BytesHasher>;
/// A map with byte-string (or string) keys.
pub type BytesMap<K, V> = std::collections::HashMap<K, V, BuildBytesHasher>;
/// A set of byte strings.
pub type BytesSet<K> = std::collections::HashSet<K, BuildBytesHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keys_spread_and_equal_keys_agree() {
        let hash = |b: &[u8]| {
            let mut h = BytesHasher::default();
            h.write(b);
            h.finish()
        };
        assert_eq!(hash(b"row-17"), hash(b"row-17"));
        let mut seen = std::collections::HashSet::new();
        for i in 0u32..10_000 {
            seen.insert(hash(format!("r{i:08}").as_bytes()) % 4096);
        }
        // 10,000 keys thrown at 4,096 buckets at random fill about 3,740
        // of them (4,096 × (1 − e^(−10000/4096))); a weak mix fills far fewer.
        assert!(seen.len() > 3650, "{}", seen.len());
        // Tails of different lengths differ.
        assert_ne!(hash(b"a"), hash(b"a\0"));
    }
}
