//! A set of report positions, a bit each.

/// Which findings count, as positions in the report's findings, one bit
/// each: what a broken threshold's message names, read again from the report
/// only then.
pub(super) struct Positions(Vec<u64>);

impl Positions {
    pub(super) fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    pub(super) fn insert(&mut self, position: usize) {
        self.0[position / 64] |= 1 << (position % 64);
    }

    /// In ascending order.
    pub(super) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(word, &bits)| {
            let mut rest = bits;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    word * 64 + bit
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_positions_come_back_in_order_across_words() {
        let mut positions = Positions::new(200);
        let inserted = [0, 1, 63, 64, 65, 127, 128, 199];
        for p in inserted.iter().rev() {
            positions.insert(*p);
        }
        positions.insert(64);
        assert_eq!(positions.iter().collect::<Vec<_>>(), inserted);
        assert_eq!(Positions::new(0).iter().count(), 0);
    }
}
