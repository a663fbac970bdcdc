//! Effective proficiency: a person's level in one skill, combined from the evidence about
//! it, with a confidence; and self-rating calibration.
//!
//! Each assessment weighs `trust(source) × 0.5^(age / half_life)`. The level is the
//! weighted mean of the scores. Confidence is `(1 − e^(−W)) / (1 + σ²)`, where `W` is
//! the total weight (one fresh objective test gives 0.63, two 0.86) and `σ` the weighted
//! standard deviation of the scores in levels (σ = 1 halves the confidence): it grows
//! with evidence and falls with disagreement. A pair with no evidence is *unknown*
//! (`None`), never level 0.
//!
//! Calibration is `mean(self − others)` over the pairs that have both a self-rating and
//! other evidence. The model does not shift self-ratings by it; it discounts them
//! through their low trust (0.3 by default) and reports calibration as a signal.

use crate::domain::{Assessment, Source, Timestamp};

const DAY_MS: f64 = 24.0 * 60.0 * 60.0 * 1000.0;

/// One piece of evidence, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence {
    /// Score 0-5.
    pub score: f32,
    /// Where it comes from.
    pub source: Source,
    /// When it was assessed.
    pub at: Timestamp,
}

impl From<&Assessment> for Evidence {
    fn from(a: &Assessment) -> Self {
        Self {
            score: a.score.value(),
            source: a.source,
            at: a.assessed_at,
        }
    }
}

/// Trust per source and how fast evidence ages.
#[derive(Clone, Debug, PartialEq)]
pub struct ProficiencyModel {
    /// Trust of self-ratings.
    pub self_rating: f32,
    /// Trust of peer ratings.
    pub peer: f32,
    /// Trust of manager ratings.
    pub manager: f32,
    /// Trust of observed practice.
    pub observed_practice: f32,
    /// Trust of objective tests.
    pub objective_test: f32,
    /// Trust of certifications.
    pub certification: f32,
    /// Age at which evidence counts half, in days.
    pub half_life_days: f32,
}

impl Default for ProficiencyModel {
    fn default() -> Self {
        Self {
            self_rating: 0.3,
            peer: 0.6,
            manager: 0.7,
            observed_practice: 0.9,
            objective_test: 1.0,
            certification: 0.8,
            half_life_days: 365.0,
        }
    }
}

/// The combined view of one (person, skill) pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proficiency {
    /// Effective level 0-5.
    pub level: f32,
    /// Confidence 0-1.
    pub confidence: f32,
    /// Pieces of evidence counted.
    pub evidence: u32,
    /// Most recent assessment counted.
    pub last_assessed: Timestamp,
}

impl ProficiencyModel {
    /// Trust of `source`.
    pub fn trust(&self, source: Source) -> f32 {
        match source {
            Source::SelfRating => self.self_rating,
            Source::Peer => self.peer,
            Source::Manager => self.manager,
            Source::ObservedPractice => self.observed_practice,
            Source::ObjectiveTest => self.objective_test,
            Source::Certification => self.certification,
        }
    }

    /// Weight of one piece of evidence at `as_of`; evidence from the future of `as_of`
    /// weighs nothing.
    pub fn weight(&self, evidence: &Evidence, as_of: Timestamp) -> f64 {
        let age_ms = as_of.unix_millis() - evidence.at.unix_millis();
        if age_ms < 0 {
            return 0.0;
        }
        let age_days = age_ms as f64 / DAY_MS;
        f64::from(self.trust(evidence.source))
            * 0.5f64.powf(age_days / f64::from(self.half_life_days))
    }

    /// The effective proficiency from `evidence` as of `as_of`, or `None` (unknown) when
    /// no evidence dates from then or before.
    pub fn effective_level(&self, evidence: &[Evidence], as_of: Timestamp) -> Option<Proficiency> {
        let (mut total, mut weighted, mut count) = (0.0f64, 0.0f64, 0u32);
        let mut last = None;
        for e in evidence.iter().filter(|e| e.at <= as_of) {
            let w = self.weight(e, as_of);
            total += w;
            weighted += w * f64::from(e.score);
            count += 1;
            last = last.max(Some(e.at));
        }
        let last_assessed = last?;
        if total <= 0.0 {
            // Only zero-trust sources: known to have been assessed, but no usable level.
            return None;
        }
        let level = weighted / total;
        let variance = evidence
            .iter()
            .filter(|e| e.at <= as_of)
            .map(|e| self.weight(e, as_of) * (f64::from(e.score) - level).powi(2))
            .sum::<f64>()
            / total;
        let confidence = (1.0 - (-total).exp()) / (1.0 + variance);
        Some(Proficiency {
            level: level.clamp(0.0, 5.0) as f32,
            confidence: confidence.clamp(0.0, 1.0) as f32,
            evidence: count,
            last_assessed,
        })
    }

    /// Self-rating gap of one pair: mean self-rating minus the level from all other
    /// evidence, or `None` unless both exist.
    pub fn self_gap(&self, evidence: &[Evidence], as_of: Timestamp) -> Option<f32> {
        let (selves, others): (Vec<Evidence>, Vec<Evidence>) = evidence
            .iter()
            .filter(|e| e.at <= as_of)
            .partition(|e| e.source == Source::SelfRating);
        if selves.is_empty() {
            return None;
        }
        let others = self.effective_level(&others, as_of)?;
        let self_mean = selves.iter().map(|e| e.score).sum::<f32>() / selves.len() as f32;
        Some(self_mean - others.level)
    }
}

/// Reference time of `CellStats` weights (2025-01-01T00:00:00Z): recent, so that the
/// exponent `(t − ref) / half_life` stays small for any realistic assessment date.
const REFERENCE_MS: i64 = 1_735_689_600_000;

/// Running sums of one (person, skill) cell from which `effective_level` can be had
/// without rescanning its evidence. Decay multiplies every weight of a cell by the same
/// factor `0.5^((as_of − ref) / half_life)`, which cancels in the mean and variance and
/// only scales the total weight: so each piece of evidence adds
/// `a = trust · 2^((t − ref) / half_life)` to `S0`, `a·s` to `S1` and `a·s²` to `S2`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CellStats {
    s0: f64,
    s1: f64,
    s2: f64,
    count: u32,
    last: Option<Timestamp>,
}

impl CellStats {
    /// Adds one piece of evidence.
    pub fn add(&mut self, model: &ProficiencyModel, evidence: &Evidence) {
        let days = (evidence.at.unix_millis() - REFERENCE_MS) as f64 / DAY_MS;
        let a = f64::from(model.trust(evidence.source))
            * (days / f64::from(model.half_life_days)).exp2();
        let score = f64::from(evidence.score);
        self.s0 += a;
        self.s1 += a * score;
        self.s2 += a * score * score;
        self.count += 1;
        self.last = self.last.max(Some(evidence.at));
    }

    /// Pieces of evidence added.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The effective proficiency as of `as_of`, which must not be before the latest
    /// evidence (for past dates use `effective_level` on the evidence itself).
    pub fn proficiency(&self, model: &ProficiencyModel, as_of: Timestamp) -> Option<Proficiency> {
        let last_assessed = self.last?;
        if self.s0 <= 0.0 {
            return None;
        }
        let level = self.s1 / self.s0;
        let variance = (self.s2 / self.s0 - level * level).max(0.0);
        let days = (as_of.unix_millis() - REFERENCE_MS) as f64 / DAY_MS;
        let total = self.s0 * 0.5f64.powf(days / f64::from(model.half_life_days));
        let confidence = (1.0 - (-total).exp()) / (1.0 + variance);
        Some(Proficiency {
            level: level.clamp(0.0, 5.0) as f32,
            confidence: confidence.clamp(0.0, 1.0) as f32,
            evidence: self.count,
            last_assessed,
        })
    }
}

/// Mean of the self-rating gaps of many pairs (a person, a team, the organisation), with
/// the number of pairs it rests on; `None` when no pair has both kinds of evidence.
pub fn calibration(gaps: impl IntoIterator<Item = f32>) -> Option<(f32, usize)> {
    let (sum, n) = gaps
        .into_iter()
        .fold((0.0f64, 0usize), |(s, n), g| (s + f64::from(g), n + 1));
    (n > 0).then(|| ((sum / n as f64) as f32, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 24 * 60 * 60 * 1000;

    fn ev(score: f32, source: Source, days_ago: i64) -> Evidence {
        Evidence {
            score,
            source,
            at: Timestamp::from_unix_millis(NOW - days_ago * DAY),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(NOW)
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn no_evidence_is_unknown_not_zero() {
        assert_eq!(
            ProficiencyModel::default().effective_level(&[], now()),
            None
        );
    }

    #[test]
    fn trust_weights_the_mean_by_hand() {
        // Objective 4.0 (w 1.0) and self 5.0 (w 0.3), both today:
        // level = (4.0 + 1.5) / 1.3 = 4.230769
        let p = ProficiencyModel::default()
            .effective_level(
                &[
                    ev(4.0, Source::ObjectiveTest, 0),
                    ev(5.0, Source::SelfRating, 0),
                ],
                now(),
            )
            .unwrap();
        assert!(close(p.level, 5.5 / 1.3), "{}", p.level);
        assert_eq!(p.evidence, 2);
        // variance = (1.0·0.230769² + 0.3·0.769231²)/1.3 = 0.177515; W = 1.3
        let expected = (1.0 - (-1.3f64).exp()) / (1.0 + 0.177_515);
        assert!(close(p.confidence, expected as f32), "{}", p.confidence);
    }

    #[test]
    fn a_year_old_assessment_counts_half() {
        // Peer 2.0 a year ago (w 0.6·0.5 = 0.3) and peer 4.0 today (w 0.6):
        // level = (0.6 + 2.4) / 0.9 = 3.3333
        let p = ProficiencyModel::default()
            .effective_level(
                &[ev(2.0, Source::Peer, 365), ev(4.0, Source::Peer, 0)],
                now(),
            )
            .unwrap();
        assert!(close(p.level, 3.0 / 0.9), "{}", p.level);
    }

    #[test]
    fn one_fresh_objective_test_gives_the_documented_confidence() {
        let p = ProficiencyModel::default()
            .effective_level(&[ev(3.0, Source::ObjectiveTest, 0)], now())
            .unwrap();
        assert!(close(p.confidence, 1.0 - (-1.0f32).exp()));
    }

    #[test]
    fn as_of_ignores_later_evidence() {
        let model = ProficiencyModel::default();
        let evidence = [
            ev(2.0, Source::ObjectiveTest, 100),
            ev(4.0, Source::ObjectiveTest, 10),
        ];
        let then = Timestamp::from_unix_millis(NOW - 50 * DAY);
        let p = model.effective_level(&evidence, then).unwrap();
        assert!(close(p.level, 2.0));
        assert_eq!(p.last_assessed, evidence[0].at);
        let before_all = Timestamp::from_unix_millis(NOW - 200 * DAY);
        assert_eq!(model.effective_level(&evidence, before_all), None);
    }

    #[test]
    fn the_self_gap_compares_self_ratings_with_everything_else() {
        let model = ProficiencyModel::default();
        let gap = model
            .self_gap(
                &[ev(4.5, Source::SelfRating, 0), ev(3.0, Source::Manager, 0)],
                now(),
            )
            .unwrap();
        assert!(close(gap, 1.5));
        assert_eq!(
            model.self_gap(&[ev(4.5, Source::SelfRating, 0)], now()),
            None
        );
        assert_eq!(calibration([1.5, 0.5]), Some((1.0, 2)));
        assert_eq!(calibration([]), None);
    }

    fn source() -> impl Strategy<Value = Source> {
        prop::sample::select(Source::ALL.to_vec())
    }

    fn evidence() -> impl Strategy<Value = Evidence> {
        (0.0f32..=5.0, source(), 0i64..2_000)
            .prop_map(|(score, source, days)| ev(score, source, days))
    }

    proptest! {
        #[test]
        fn the_level_stays_on_the_scale_and_confidence_in_unit_range(
            items in prop::collection::vec(evidence(), 1..30)
        ) {
            let p = ProficiencyModel::default().effective_level(&items, now()).unwrap();
            prop_assert!((0.0..=5.0).contains(&p.level));
            prop_assert!((0.0..=1.0).contains(&p.confidence));
            prop_assert_eq!(p.evidence as usize, items.len());
        }

        #[test]
        fn running_sums_agree_with_the_direct_formula(
            items in prop::collection::vec(evidence(), 1..30)
        ) {
            let model = ProficiencyModel::default();
            let mut stats = CellStats::default();
            items.iter().for_each(|e| stats.add(&model, e));
            let direct = model.effective_level(&items, now()).unwrap();
            let running = stats.proficiency(&model, now()).unwrap();
            prop_assert!((direct.level - running.level).abs() < 1e-3, "{direct:?} {running:?}");
            prop_assert!((direct.confidence - running.confidence).abs() < 1e-3, "{direct:?} {running:?}");
            prop_assert_eq!(direct.evidence, running.evidence);
            prop_assert_eq!(direct.last_assessed, running.last_assessed);
        }

        #[test]
        fn arrival_order_does_not_matter(
            items in prop::collection::vec(evidence(), 1..20),
            seed in any::<u64>()
        ) {
            let model = ProficiencyModel::default();
            let mut shuffled = items.clone();
            let n = shuffled.len();
            for i in 0..n {
                shuffled.swap(i, (seed as usize).wrapping_mul(i + 7) % n);
            }
            let a = model.effective_level(&items, now()).unwrap();
            let b = model.effective_level(&shuffled, now()).unwrap();
            prop_assert!((a.level - b.level).abs() < 1e-4);
            prop_assert!((a.confidence - b.confidence).abs() < 1e-4);
        }

        #[test]
        fn a_new_objective_test_moves_the_level_toward_its_score(
            items in prop::collection::vec(evidence(), 0..20),
            score in 0.0f32..=5.0
        ) {
            let model = ProficiencyModel::default();
            let mut more = items.clone();
            more.push(ev(score, Source::ObjectiveTest, 0));
            let after = model.effective_level(&more, now()).unwrap();
            match model.effective_level(&items, now()) {
                Some(before) => prop_assert!((after.level - score).abs() <= (before.level - score).abs() + 1e-4),
                None => prop_assert!((after.level - score).abs() < 1e-4),
            }
        }
    }
}
