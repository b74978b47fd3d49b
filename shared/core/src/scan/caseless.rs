//! The exception index's keys: ids equal ignoring case, hashed once with a
//! hash that is the same in any case, and a map hasher that takes the hash as
//! it comes.

use std::collections::HashMap;

/// An exception id as the index keys it: two are equal when they are equal
/// lower-cased (ids match ignoring case). An ASCII id, as vulnerability ids
/// are, is kept as written and compared with `eq_ignore_ascii_case`, so a
/// finding's id is looked up without being copied; any other is lower-cased
/// once (`to_lowercase`), after which that comparison is the same equality
/// (lower-casing never yields an ASCII capital).
#[derive(Debug)]
struct Caseless<'a> {
    text: std::borrow::Cow<'a, str>,
    /// [`caseless_hash`] of `text`, computed in the same pass that finds
    /// whether it is ASCII.
    hash: u64,
}

impl<'a> Caseless<'a> {
    /// Inlined where ids are looked up (a call per finding cost as much as
    /// the hash); the rare non-ASCII id takes [`Caseless::lowered`].
    #[inline(always)]
    fn new(id: &'a str) -> Self {
        match caseless_hash(id.as_bytes()) {
            Some(hash) => Self { text: std::borrow::Cow::Borrowed(id), hash },
            None => Self::lowered(id),
        }
    }

    #[cold]
    fn lowered(id: &str) -> Self {
        let lower = id.to_lowercase();
        let hash = caseless_hash(lower.as_bytes()).unwrap_or_else(|| fold_bytes(lower.as_bytes()));
        Self { text: std::borrow::Cow::Owned(lower), hash }
    }
}

impl PartialEq for Caseless<'_> {
    fn eq(&self, other: &Self) -> bool {
        // Ids are written alike far more often than not: bytes first.
        self.hash == other.hash && (self.text == other.text || self.text.eq_ignore_ascii_case(&other.text))
    }
}

impl Eq for Caseless<'_> {}

impl std::hash::Hash for Caseless<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A hash of ASCII `bytes` that is the same in any case, or `None` when
/// they are not all ASCII (the caller lower-cases those first).
#[inline]
fn caseless_hash(bytes: &[u8]) -> Option<u64> {
    let mut words = 0u64;
    let h = fold_words(bytes, |word| {
        words |= word;
        word | 0x2020_2020_2020_2020
    });
    (words & 0x8080_8080_8080_8080 == 0).then_some(h)
}

/// Lower-cased text that is still not ASCII: hashed as it is.
fn fold_bytes(bytes: &[u8]) -> u64 {
    fold_words(bytes, |word| word)
}

/// Every byte ORed with 0x20 maps `A` and `a` alike; eight bytes at a time
/// with a folded multiply (as foldhash mixes), so every byte reaches every
/// bit a table looks at. SipHash, the standard map's, was most of the
/// engine's time; the keys are the policy's own ids, and a finding's id only
/// looks one up, so a crafted id cannot grow the table.
#[inline]
fn fold_words(bytes: &[u8], mut each: impl FnMut(u64) -> u64) -> u64 {
    const SEED: u64 = 0x243f_6a88_85a3_08d3;
    const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut fold = |h: u64, word: [u8; 8]| {
        let product = u128::from(h ^ each(u64::from_le_bytes(word))) * u128::from(MUL);
        (product as u64) ^ ((product >> 64) as u64)
    };
    let mut h = SEED ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = fold(h, word);
    }
    match (chunks.remainder().len(), bytes.len().checked_sub(8)) {
        (0, Some(_)) => h,
        // Eight bytes or more: the last eight, overlapping the chunk before
        // (one load, where `CVE-2026-12345`'s six-byte tail took six).
        (_, Some(last)) => {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[last..]);
            fold(h, word)
        }
        // Shorter: the bytes shifted into place (a slice copy of unknown
        // length would be a call to memcpy per id).
        (_, None) => {
            let tail = bytes.iter().rev().fold(0u64, |w, b| (w << 8) | u64::from(*b));
            fold(h, tail.to_le_bytes())
        }
    }
}

/// The id index's hasher: [`Caseless`] keys arrive hashed.
#[derive(Clone, Copy, Default)]
struct Prehashed;

struct PrehashedHasher(u64);

impl std::hash::BuildHasher for Prehashed {
    type Hasher = PrehashedHasher;
    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

impl std::hash::Hasher for PrehashedHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fold_bytes(bytes) ^ self.0.rotate_left(7);
    }
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Items by id, ignoring case: one hash lookup per id asked. The map holds
/// an id's first and last item; `next` chains the items sharing an id, in
/// the order they were given.
pub(super) struct IdIndex<'a> {
    by_id: HashMap<Caseless<'a>, (usize, usize), Prehashed>,
    next: Vec<Option<usize>>,
}

impl<'a> IdIndex<'a> {
    pub(super) fn new(ids: impl ExactSizeIterator<Item = &'a str>) -> Self {
        let mut by_id = HashMap::with_capacity_and_hasher(ids.len(), Prehashed);
        let mut next = vec![None; ids.len()];
        for (i, id) in ids.enumerate() {
            let (_, last) = by_id.entry(Caseless::new(id)).or_insert((i, i));
            if *last != i {
                next[*last] = Some(i);
                *last = i;
            }
        }
        Self { by_id, next }
    }

    /// The positions of the items whose id is `id`, ignoring case, in order.
    #[inline]
    pub(super) fn positions(&self, id: &str) -> impl Iterator<Item = usize> + '_ {
        let first = self.by_id.get(&Caseless::new(id)).map(|&(first, _)| first);
        std::iter::successors(first, |&i| self.next[i])
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ids_sharing_a_key_come_back_in_the_order_given() {
        let index = IdIndex::new(["CVE-1", "cve-2", "Cve-1", "CVE-3", "cve-1"].into_iter());
        assert_eq!(index.positions("cve-1").collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(index.positions("CVE-2").collect::<Vec<_>>(), [1]);
        assert_eq!(index.positions("CVE-4").count(), 0);
    }

    proptest! {
        /// The id index's equality and hash are `to_lowercase` equality, for
        /// any text: ASCII ids in any case, and the odd non-ASCII one (the
        /// Kelvin sign lower-cases to an ASCII `k`).
        #[test]
        fn ids_are_one_key_exactly_when_they_lower_case_alike(
            a in "[aAkKzZ\u{212A}\u{C4}\u{E4}0-9:-]{0,20}",
            flips in prop::collection::vec(any::<bool>(), 20),
            other in "[aAkKzZ\u{212A}\u{C4}\u{E4}0-9:-]{0,20}",
        ) {
            let flipped: String = a
                .chars()
                .zip(flips.iter().chain(std::iter::repeat(&false)))
                .map(|(c, flip)| if *flip { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            for b in [flipped, other] {
                let (ka, kb) = (Caseless::new(&a), Caseless::new(&b));
                prop_assert_eq!(ka == kb, a.to_lowercase() == b.to_lowercase(), "{:?} {:?}", a, b);
                if a.to_lowercase() == b.to_lowercase() {
                    prop_assert_eq!(ka.hash, kb.hash, "{:?} {:?}", a, b);
                }
            }
        }
    }
}
