//! A person's gaps against a role, and expert ranking.

use ndarray::ArrayView1;

use super::matrix::ColumnRequirement;

/// How far a person is from one requirement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    /// Skill column.
    pub column: usize,
    /// Level required.
    pub required: f32,
    /// The person's level, if known.
    pub level: Option<f32>,
    /// Required minus level, at least 0; the full requirement when unknown.
    pub gap: f32,
    /// Requirement weight.
    pub weight: f32,
    /// weight × gap.
    pub priority: f32,
    /// Confidence in the level.
    pub confidence: f32,
}

/// Every requirement's gap, highest priority first (then by column).
pub fn person_gaps(
    levels: ArrayView1<f32>,
    confidence: ArrayView1<f32>,
    requirements: &[ColumnRequirement],
) -> Vec<Gap> {
    let mut gaps: Vec<Gap> = requirements
        .iter()
        .map(|r| {
            let level = Some(levels[r.column]).filter(|l| !l.is_nan());
            let gap = (r.level - level.unwrap_or(0.0)).max(0.0);
            Gap {
                column: r.column,
                required: r.level,
                level,
                gap,
                weight: r.weight,
                priority: r.weight * gap,
                confidence: confidence[r.column],
            }
        })
        .collect();
    gaps.sort_by(|a, b| {
        b.priority
            .total_cmp(&a.priority)
            .then(a.column.cmp(&b.column))
    });
    gaps
}

/// A candidate's levels and confidences in each required skill, in requirement order.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate<K> {
    /// Who.
    pub key: K,
    /// Level per requirement (NaN = unknown).
    pub levels: Vec<f32>,
    /// Confidence per requirement.
    pub confidence: Vec<f32>,
}

/// A candidate who meets every requirement, with its ranking score.
#[derive(Clone, Debug, PartialEq)]
pub struct Ranked<K> {
    /// Who.
    pub key: K,
    /// Level per requirement.
    pub levels: Vec<f32>,
    /// Lowest confidence among them.
    pub min_confidence: f32,
    /// Mean of confidence × level.
    pub score: f32,
}

/// The candidates meeting every `min_levels` with at least `min_confidence`, best score
/// first (ties by key, so the order is stable).
pub fn rank_experts<K: Ord + Clone>(
    candidates: impl IntoIterator<Item = Candidate<K>>,
    min_levels: &[f32],
    min_confidence: f32,
) -> Vec<Ranked<K>> {
    let mut ranked: Vec<Ranked<K>> = candidates
        .into_iter()
        .filter(|c| {
            c.levels
                .iter()
                .zip(&c.confidence)
                .zip(min_levels)
                .all(|((l, conf), min)| !l.is_nan() && l >= min && *conf >= min_confidence)
        })
        .map(|c| {
            let n = c.levels.len().max(1) as f32;
            let score = c
                .levels
                .iter()
                .zip(&c.confidence)
                .map(|(l, conf)| l * conf)
                .sum::<f32>()
                / n;
            let min_confidence = c.confidence.iter().copied().fold(1.0, f32::min);
            Ranked {
                key: c.key,
                levels: c.levels,
                min_confidence,
                score,
            }
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn gaps_are_prioritised_by_weight_times_shortfall() {
        let levels = array![2.0, f32::NAN, 4.0];
        let confidence = array![0.5, 0.0, 0.9];
        let requirements = [
            ColumnRequirement {
                column: 0,
                level: 3.0,
                weight: 1.0,
            }, // gap 1, priority 1
            ColumnRequirement {
                column: 1,
                level: 2.0,
                weight: 2.0,
            }, // unknown: gap 2, priority 4
            ColumnRequirement {
                column: 2,
                level: 3.0,
                weight: 3.0,
            }, // met: gap 0
        ];
        let gaps = person_gaps(levels.view(), confidence.view(), &requirements);
        let order: Vec<(usize, f32)> = gaps.iter().map(|g| (g.column, g.priority)).collect();
        assert_eq!(order, [(1, 4.0), (0, 1.0), (2, 0.0)]);
        assert_eq!(gaps[0].level, None);
    }

    #[test]
    fn experts_must_meet_every_requirement_and_rank_by_confident_level() {
        let candidate = |key: &'static str, levels: Vec<f32>, confidence: Vec<f32>| Candidate {
            key,
            levels,
            confidence,
        };
        let ranked = rank_experts(
            [
                candidate("a", vec![4.0, 3.0], vec![0.5, 0.5]), // score (2 + 1.5)/2 = 1.75
                candidate("b", vec![3.5, 3.5], vec![0.9, 0.9]), // score 3.15
                candidate("c", vec![5.0, 2.5], vec![0.9, 0.9]), // below 3 in skill 2
                candidate("d", vec![5.0, f32::NAN], vec![0.9, 0.0]), // unknown
                candidate("e", vec![4.0, 4.0], vec![0.9, 0.1]), // too little confidence
            ],
            &[3.0, 3.0],
            0.2,
        );
        let keys: Vec<&str> = ranked.iter().map(|r| r.key).collect();
        assert_eq!(keys, ["b", "a"]);
        assert!((ranked[0].score - 3.15).abs() < 1e-5);
        assert!((ranked[1].min_confidence - 0.5).abs() < 1e-6);
    }
}
