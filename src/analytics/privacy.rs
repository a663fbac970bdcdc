//! Minimum group size for aggregates, with protection against recovery by difference.
//!
//! Groups are reported under a parent (teams under their department; departments,
//! roles and archetypes under the whole scope), and the scope's total is reported too.
//! Hiding the groups smaller than the minimum (primary suppression) is not enough: the
//! parent minus its visible groups is the union of its hidden groups, so one hidden
//! team could be recovered from its department. Complementary suppression therefore
//! also hides the smallest visible siblings until the hidden part of every parent is
//! empty or holds at least the minimum, and then does the same across the whole scope.
//! What any subtraction of reported aggregates can reveal is thus a union of at least
//! `minimum` people (or a parent that is itself below the minimum, and so hidden in its
//! own grouping).
//!
//! Not covered: differences between two different groupings that are not nested (e.g.
//! roles versus teams) and differences over time; analysts are limited to the
//! organisation-wide scope so that scopes cannot be nested either.

/// The smallest minimum group size the service accepts.
pub const MIN_GROUP_SIZE_FLOOR: usize = 3;
/// Default minimum group size.
pub const DEFAULT_MIN_GROUP_SIZE: usize = 5;

/// Why a group is hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suppression {
    /// Shown.
    Visible,
    /// Smaller than the minimum.
    TooSmall,
    /// Hidden so that a smaller hidden group cannot be recovered by difference.
    Complementary,
}

/// Decides, for groups given as `(parent, size)`, which are shown.
pub fn suppress(groups: &[(usize, usize)], minimum: usize) -> Vec<Suppression> {
    let mut out: Vec<Suppression> = groups
        .iter()
        .map(|&(_, size)| {
            if size < minimum {
                Suppression::TooSmall
            } else {
                Suppression::Visible
            }
        })
        .collect();
    let mut parents: Vec<usize> = groups.iter().map(|&(p, _)| p).collect();
    parents.sort_unstable();
    parents.dedup();
    for parent in parents {
        let members: Vec<usize> = (0..groups.len())
            .filter(|&g| groups[g].0 == parent)
            .collect();
        protect(&members, groups, minimum, &mut out);
    }
    let everything: Vec<usize> = (0..groups.len()).collect();
    protect(&everything, groups, minimum, &mut out);
    out
}

/// Hides the smallest visible groups among `members` until their hidden part is empty
/// or at least `minimum` (or nothing is left to hide).
fn protect(members: &[usize], groups: &[(usize, usize)], minimum: usize, out: &mut [Suppression]) {
    loop {
        let hidden: usize = members
            .iter()
            .filter(|&&g| out[g] != Suppression::Visible)
            .map(|&g| groups[g].1)
            .sum();
        if hidden == 0 || hidden >= minimum {
            return;
        }
        let smallest = members
            .iter()
            .copied()
            .filter(|&g| out[g] == Suppression::Visible)
            .min_by_key(|&g| (groups[g].1, g));
        match smallest {
            Some(g) => out[g] = Suppression::Complementary,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_small_team_takes_a_sibling_with_it() {
        // Department 0: teams of 2, 6 and 9 people; department 1: 7 and 8.
        let groups = [(0, 2), (0, 6), (0, 9), (1, 7), (1, 8)];
        let s = suppress(&groups, 5);
        assert_eq!(
            s,
            vec![
                Suppression::TooSmall,
                Suppression::Complementary,
                Suppression::Visible,
                Suppression::Visible,
                Suppression::Visible
            ]
        );
    }

    proptest! {
        #[test]
        fn nothing_below_the_minimum_is_revealed_directly_or_by_difference(
            groups in prop::collection::vec((0usize..4, 0usize..12), 1..24),
            minimum in 3usize..8,
        ) {
            let s = suppress(&groups, minimum);
            let hidden = |members: &mut dyn Iterator<Item = usize>| -> (usize, usize) {
                members.fold((0, 0), |(h, t), g| {
                    (h + if s[g] == Suppression::Visible { 0 } else { groups[g].1 }, t + groups[g].1)
                })
            };
            for g in 0..groups.len() {
                if s[g] == Suppression::Visible {
                    prop_assert!(groups[g].1 >= minimum);
                }
            }
            for parent in 0..4 {
                let (h, total) = hidden(&mut (0..groups.len()).filter(|&g| groups[g].0 == parent));
                // The parent's total minus its visible groups: nothing, at least the
                // minimum, or the whole parent, which is then itself below the minimum
                // and hidden where parents are reported.
                prop_assert!(h == 0 || h >= minimum || (h == total && total < minimum),
                    "parent {parent}: hidden {h} of {total}");
            }
            // The same for the scope's total, which is itself hidden below the minimum.
            let (h, total) = hidden(&mut (0..groups.len()));
            prop_assert!(h == 0 || h >= minimum || (h == total && total < minimum),
                "scope: hidden {h} of {total}");
        }
    }
}
