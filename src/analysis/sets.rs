//! Sets of integers kept as sorted, disjoint, inclusive ranges: addresses
//! (IPv4 in the low 32 bits, IPv6 in all 128), ports, interface names.

use std::fmt;

/// A set of values in `0..=max`, as sorted disjoint inclusive ranges that
/// never touch (adjacent ranges are merged).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct IntervalSet {
    ranges: Vec<(u128, u128)>,
}

impl fmt::Debug for IntervalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ranges.iter().map(|(a, b)| format!("{a:#x}-{b:#x}")))
            .finish()
    }
}

impl IntervalSet {
    /// No values.
    pub fn empty() -> Self {
        IntervalSet { ranges: Vec::new() }
    }

    /// Every value up to `max`.
    pub fn full(max: u128) -> Self {
        IntervalSet {
            ranges: vec![(0, max)],
        }
    }

    /// `lo..=hi` (empty when `lo > hi`).
    pub fn range(lo: u128, hi: u128) -> Self {
        if lo > hi {
            return Self::empty();
        }
        IntervalSet {
            ranges: vec![(lo, hi)],
        }
    }

    /// From any ranges (overlapping, unsorted).
    pub fn from_ranges(mut v: Vec<(u128, u128)>) -> Self {
        v.retain(|(a, b)| a <= b);
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        IntervalSet { ranges: out }
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    /// True when nothing is in it.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// True when it is all of `0..=max`.
    pub fn is_full(&self, max: u128) -> bool {
        self.ranges == [(0, max)]
    }

    /// True when `v` is in it.
    pub fn contains(&self, v: u128) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < v);
        self.ranges.get(i).is_some_and(|r| r.0 <= v)
    }

    /// Number of values (saturating at `u128::MAX`).
    pub fn count(&self) -> u128 {
        self.ranges
            .iter()
            .fold(0u128, |n, (a, b)| n.saturating_add(b - a).saturating_add(1))
    }

    /// The smallest value.
    pub fn first(&self) -> Option<u128> {
        self.ranges.first().map(|r| r.0)
    }

    /// Values in `0..=max` that are not in it.
    pub fn complement(&self, max: u128) -> Self {
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut next = Some(0u128);
        for &(a, b) in &self.ranges {
            if let Some(n) = next
                && a > n
            {
                out.push((n, a - 1));
            }
            next = b.checked_add(1);
        }
        if let Some(n) = next
            && n <= max
        {
            out.push((n, max));
        }
        IntervalSet { ranges: out }
    }

    /// Values in both.
    pub fn intersect(&self, o: &Self) -> Self {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < o.ranges.len() {
            let (a, b) = self.ranges[i];
            let (c, d) = o.ranges[j];
            let lo = a.max(c);
            let hi = b.min(d);
            if lo <= hi {
                out.push((lo, hi));
            }
            if b < d {
                i += 1;
            } else {
                j += 1;
            }
        }
        IntervalSet { ranges: out }
    }

    /// Values in either.
    pub fn union(&self, o: &Self) -> Self {
        let mut v = self.ranges.clone();
        v.extend_from_slice(&o.ranges);
        Self::from_ranges(v)
    }

    /// Values in `self` and not in `o`.
    pub fn minus(&self, o: &Self) -> Self {
        self.intersect(&o.complement(u128::MAX))
    }

    /// True when every value of `self` is in `o`.
    pub fn is_subset(&self, o: &Self) -> bool {
        self.minus(o).is_empty()
    }

    /// True when they share a value.
    pub fn intersects(&self, o: &Self) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < o.ranges.len() {
            let (a, b) = self.ranges[i];
            let (c, d) = o.ranges[j];
            if a.max(c) <= b.min(d) {
                return true;
            }
            if b < d {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(v: &[(u128, u128)]) -> IntervalSet {
        IntervalSet::from_ranges(v.to_vec())
    }

    #[test]
    fn merges_and_complements() {
        let s = set(&[(5, 9), (0, 2), (3, 4), (20, 30)]);
        assert_eq!(s.ranges(), &[(0, 9), (20, 30)]);
        assert_eq!(s.complement(40).ranges(), &[(10, 19), (31, 40)]);
        assert_eq!(
            IntervalSet::full(u128::MAX).complement(u128::MAX),
            IntervalSet::empty()
        );
        assert!(s.contains(9) && !s.contains(10) && s.contains(20));
        assert_eq!(s.count(), 21);
    }

    proptest! {
        #[test]
        fn ops_agree_with_membership(
            a in proptest::collection::vec((0u128..64, 0u128..8), 0..6),
            b in proptest::collection::vec((0u128..64, 0u128..8), 0..6),
        ) {
            let a = IntervalSet::from_ranges(a.into_iter().map(|(x, l)| (x, (x + l).min(63))).collect());
            let b = IntervalSet::from_ranges(b.into_iter().map(|(x, l)| (x, (x + l).min(63))).collect());
            let (i, u, m, c) = (a.intersect(&b), a.union(&b), a.minus(&b), a.complement(63));
            for v in 0..64u128 {
                prop_assert_eq!(i.contains(v), a.contains(v) && b.contains(v));
                prop_assert_eq!(u.contains(v), a.contains(v) || b.contains(v));
                prop_assert_eq!(m.contains(v), a.contains(v) && !b.contains(v));
                prop_assert_eq!(c.contains(v), !a.contains(v));
            }
            prop_assert_eq!(a.intersects(&b), !i.is_empty());
            prop_assert_eq!(a.is_subset(&b), m.is_empty());
        }
    }
}
