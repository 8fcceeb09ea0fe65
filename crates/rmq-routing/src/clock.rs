//! Instants stored in atomics as nanoseconds since a fixed base instant.

use std::time::Instant;

/// A base instant; later instants become `u64` nanoseconds after it (earlier ones clamp to 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Epoch(Instant);

impl Epoch {
    pub(crate) fn new(now: Instant) -> Self {
        Epoch(now)
    }

    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.0)
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64
    }

    pub(crate) fn instant(&self, nanos: u64) -> Instant {
        self.0 + std::time::Duration::from_nanos(nanos)
    }
}

/// A fast, non-cryptographic hasher for the small string-keyed maps on the routing path (topic and broker
/// names come from configuration and the name server, not from an adversary, so HashDoS resistance is not
/// needed; SipHash cost a third of a routing call).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastHash;

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

/// The FxHash mixing step over 8-byte words.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
