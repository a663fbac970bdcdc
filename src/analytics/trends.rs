//! Capability over time: levels as of each date of a series, and the biggest individual
//! improvements between two dates.

use super::proficiency::{Evidence, ProficiencyModel};
use crate::domain::{Level, Timestamp};

/// One skill's aggregate at one date.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrendPoint {
    /// The date.
    pub at: Timestamp,
    /// Mean known level.
    pub mean: Option<f32>,
    /// Known levels.
    pub known: u32,
    /// Levels ≥ 3.
    pub proficient: u32,
}

/// The dates from `from` to `to` (inclusive) every `step_ms`.
pub fn dates(from: Timestamp, to: Timestamp, step_ms: i64) -> Vec<Timestamp> {
    let mut dates = Vec::new();
    let mut at = Some(from.unix_millis());
    while let Some(now) = at.filter(|&t| t <= to.unix_millis() && step_ms > 0) {
        dates.push(Timestamp::from_unix_millis(now));
        at = now.checked_add(step_ms);
    }
    dates
}

/// The trend of one skill over people, given each person's evidence in that skill.
pub fn skill_trend(
    model: &ProficiencyModel,
    people: &[Vec<Evidence>],
    dates: &[Timestamp],
) -> Vec<TrendPoint> {
    dates
        .iter()
        .map(|&at| {
            let levels: Vec<f32> = people
                .iter()
                .filter_map(|evidence| model.effective_level(evidence, at).map(|p| p.level))
                .collect();
            point(at, &levels)
        })
        .collect()
}

/// The aggregate at `at` of the known `levels` (summed in their order).
pub fn point(at: Timestamp, levels: &[f32]) -> TrendPoint {
    TrendPoint {
        at,
        mean: (!levels.is_empty()).then(|| levels.iter().sum::<f32>() / levels.len() as f32),
        known: levels.len() as u32,
        proficient: levels.iter().filter(|&&l| l >= Level::PROFICIENT).count() as u32,
    }
}

/// A person's level change in one skill between two dates, if known at both.
pub fn improvement(
    model: &ProficiencyModel,
    evidence: &[Evidence],
    from: Timestamp,
    to: Timestamp,
) -> Option<(f32, f32)> {
    let start = model.effective_level(evidence, from)?.level;
    let end = model.effective_level(evidence, to)?.level;
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Source;

    const DAY: i64 = 24 * 60 * 60 * 1000;

    fn test(score: f32, day: i64) -> Evidence {
        Evidence {
            score,
            source: Source::ObjectiveTest,
            at: Timestamp::from_unix_millis(day * DAY),
        }
    }

    #[test]
    fn a_series_by_hand() {
        let model = ProficiencyModel::default();
        // Person A: 2.0 on day 0, 4.0 on day 100. Person B: 3.5 on day 50.
        let people = vec![vec![test(2.0, 0), test(4.0, 100)], vec![test(3.5, 50)]];
        let at = dates(
            Timestamp::from_unix_millis(0),
            Timestamp::from_unix_millis(100 * DAY),
            50 * DAY,
        );
        let points = skill_trend(&model, &people, &at);
        assert_eq!(points.len(), 3);
        assert_eq!((points[0].known, points[0].mean), (1, Some(2.0)));
        assert_eq!((points[1].known, points[1].proficient), (2, 1));
        assert!((points[1].mean.unwrap() - 2.75).abs() < 1e-5);
        // Day 100, person A: weights 0.5^(100/365) = 0.82704 and 1 → (1.65408 + 4) / 1.82704
        let a = (2.0 * 0.827_04 + 4.0) / 1.827_04;
        assert!((points[2].mean.unwrap() - (a + 3.5) / 2.0).abs() < 1e-4);
        let (start, end) = improvement(&model, &people[0], at[0], at[2]).unwrap();
        assert!(
            (start - 2.0).abs() < 1e-6 && (end - a).abs() < 1e-4,
            "{start} {end} {a}"
        );
        assert_eq!(
            improvement(&model, &people[1], at[0], at[2]),
            None,
            "unknown at the start"
        );
    }
}
