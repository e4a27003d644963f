//! The bench's seeded randomness: a small generator, and a sha256 as a seed.

use tally_protocol::Sha256Hex;

/// SplitMix64: small, seedable, good enough for a simulation.
pub(super) struct Rng(u64);

impl Rng {
    /// A generator seeded from several numbers.
    pub(super) fn new(parts: &[u64]) -> Rng {
        let mut r = Rng(0x7a11_7a11_7a11_7a11);
        for &p in parts {
            r.0 ^= p;
            r.next();
        }
        r
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub(super) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// The first 64 bits of a sha256, as a number.
pub(super) fn key(h: &Sha256Hex) -> u64 {
    u64::from_str_radix(&h.as_str()[..16], 16).expect("a sha256 is hex")
}
