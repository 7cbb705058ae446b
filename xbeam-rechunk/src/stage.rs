//! One executed stage of a rechunk: split, consolidate, both or neither.

use crate::chunks::DimChunks;

/// One stage a rechunk executes: chunks of `source` become chunks of
/// `target` by splitting each source chunk at the target boundaries and
/// consolidating the pieces of each target chunk (xarray-beam's
/// `RechunkStage`).
///
/// For regular chunks on both sides a split is needed if any target size is
/// not a multiple of the source size, and a consolidation if any source size
/// is not a multiple of the target size, as in xarray-beam. Along a
/// dimension with irregular chunks on either side, a split is needed if some
/// target boundary is not a source boundary, and a consolidation if some
/// source boundary is not a target boundary.
///
/// ```
/// use xbeam_rechunk::{DimChunks::{Irregular, Regular}, RechunkStage};
///
/// let stage = RechunkStage::new(vec![Regular(2), Regular(20)], vec![Regular(10), Regular(5)]);
/// assert!(stage.needs_split() && stage.needs_consolidate());
///
/// // Grouping whole years into pairs of years only consolidates.
/// let years = Irregular(vec![366, 365, 365, 365]);
/// let pairs = Irregular(vec![731, 730]);
/// let stage = RechunkStage::new(vec![years], vec![pairs]);
/// assert!(!stage.needs_split() && stage.needs_consolidate());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RechunkStage {
    /// The chunks this stage receives, one per dimension.
    pub source: Vec<DimChunks>,
    /// The chunks it emits, one per dimension.
    pub target: Vec<DimChunks>,
}

impl RechunkStage {
    /// The stage from `source` to `target` chunks (one per dimension,
    /// in the same order).
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, RechunkStage};
    /// let stage = RechunkStage::new(vec![Regular(5)], vec![Regular(5)]);
    /// assert!(stage.is_noop());
    /// ```
    pub fn new(source: Vec<DimChunks>, target: Vec<DimChunks>) -> RechunkStage {
        RechunkStage { source, target }
    }

    /// Whether some source chunk must be cut at a target boundary
    /// (`SplitChunks(target)`).
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, RechunkStage};
    /// assert!(RechunkStage::new(vec![Regular(14)], vec![Regular(7)]).needs_split());
    /// assert!(!RechunkStage::new(vec![Regular(5)], vec![Regular(15)]).needs_split());
    /// ```
    pub fn needs_split(&self) -> bool {
        self.dims().any(|(s, t)| match (s, t) {
            (DimChunks::Regular(s), DimChunks::Regular(t)) => t % s != 0,
            _ => t.has_cut_outside(s, dim_size(s, t)),
        })
    }

    /// Whether some target chunk gathers pieces of several source chunks
    /// (`ConsolidateChunks(target)`, a shuffle).
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, RechunkStage};
    /// assert!(RechunkStage::new(vec![Regular(5)], vec![Regular(15)]).needs_consolidate());
    /// assert!(!RechunkStage::new(vec![Regular(14)], vec![Regular(7)]).needs_consolidate());
    /// ```
    pub fn needs_consolidate(&self) -> bool {
        self.dims().any(|(s, t)| match (s, t) {
            (DimChunks::Regular(s), DimChunks::Regular(t)) => s % t != 0,
            _ => s.has_cut_outside(t, dim_size(s, t)),
        })
    }

    /// Whether the stage changes nothing (neither split nor consolidate).
    ///
    /// ```
    /// use xbeam_rechunk::{DimChunks::Regular, RechunkStage};
    /// assert!(RechunkStage::new(vec![Regular(14)], vec![Regular(14)]).is_noop());
    /// ```
    pub fn is_noop(&self) -> bool {
        !self.needs_split() && !self.needs_consolidate()
    }

    fn dims(&self) -> impl Iterator<Item = (&DimChunks, &DimChunks)> {
        self.source.iter().zip(&self.target)
    }
}

/// The size of a dimension where at least one side is irregular (its sizes
/// add up to the dimension).
fn dim_size(a: &DimChunks, b: &DimChunks) -> u64 {
    match (a, b) {
        (DimChunks::Irregular(sizes), _) | (_, DimChunks::Irregular(sizes)) => sizes.iter().sum(),
        (DimChunks::Regular(_), DimChunks::Regular(_)) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::DimChunks::{Irregular, Regular};
    use super::*;

    fn regular(c: &[u64]) -> Vec<DimChunks> {
        c.iter().map(|&c| Regular(c)).collect()
    }

    #[test]
    fn classification_as_xarray_beam() {
        // (source, target, split, consolidate)
        for (s, t, split, consolidate) in [
            (&[1, 20, 30][..], &[2, 20, 30][..], false, true),
            (&[2, 20, 30], &[10, 5, 25], true, true),
            (&[10, 5, 25], &[10, 5, 5], true, false),
            (&[5], &[14], true, true),
            (&[14], &[14], false, false),
            (&[14], &[7], true, false),
        ] {
            let stage = RechunkStage::new(regular(s), regular(t));
            assert_eq!(
                (stage.needs_split(), stage.needs_consolidate()),
                (split, consolidate),
                "{s:?} -> {t:?}"
            );
        }
    }

    #[test]
    fn irregular_boundaries() {
        let months = Irregular(vec![31, 28, 31, 30]);
        // Months to 30-day chunks: cut and regrouped.
        let stage = RechunkStage::new(vec![months.clone()], vec![Regular(30)]);
        assert!(stage.needs_split() && stage.needs_consolidate());
        // Months to the whole span: consolidate only.
        let stage = RechunkStage::new(vec![months.clone()], vec![Regular(120)]);
        assert!(!stage.needs_split() && stage.needs_consolidate());
        // Whole span to months: split only.
        let stage = RechunkStage::new(vec![Regular(120)], vec![months.clone()]);
        assert!(stage.needs_split() && !stage.needs_consolidate());
        // Same boundaries written both ways: nothing to do.
        let stage = RechunkStage::new(vec![Irregular(vec![3, 3, 1])], vec![Regular(3)]);
        assert!(stage.is_noop());
        let stage = RechunkStage::new(vec![months.clone()], vec![months]);
        assert!(stage.is_noop());
    }
}
