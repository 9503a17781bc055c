//! The library's one source of pseudo-random numbers (no `rand` dependency): splitmix64,
//! seeded from the standard library's per-process random hasher keys. Used for the
//! reconnect jitter and, in the emulator, for SVCUIDs, ids and socket names. Not for
//! cryptography: an emulator token only has to be unguessable by a test neighbour.

use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

/// splitmix64 (Steele, Lea and Flood, 2014): 64 bits of state, a full period.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded from [`entropy`].
    pub(crate) fn from_entropy() -> Self {
        SplitMix64(entropy())
    }

    /// The next 64 bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// 64 fresh bits: every `RandomState` has new keys (random per process, then stepped per
/// instance), mixed with the time and the process id.
pub(crate) fn entropy() -> u64 {
    thread_local! {
        static START: Instant = Instant::now();
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(START.with(Instant::elapsed).as_nanos());
    h.write_u32(std::process::id());
    SplitMix64(h.finish()).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The reference implementation's first outputs for seed 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn entropy_differs_between_calls() {
        let values: std::collections::HashSet<u64> = (0..64).map(|_| entropy()).collect();
        assert_eq!(values.len(), 64);
    }
}
