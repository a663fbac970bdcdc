//! The capability index: for every person a dense row over the skill axis — effective
//! level (NaN = unknown, never 0) and confidence — plus the running sums (`CellStats`) of
//! each assessed cell, from which an update recomputes a cell in O(1). Rows live in a
//! persistent map, so publishing a snapshot after a write copies only the touched rows
//! and O(log n) map nodes, not the organisation. Raw evidence stays in the store.
//!
//! Levels are as of each cell's last update. Decay changes a cell's level only through
//! new evidence; its confidence drifts down slowly with time (0.2% a day with a 365-day
//! half-life) and is refreshed on the next update or restart.

use ahash::AHashMap;
use std::sync::Arc;

use ndarray::Array1;

use crate::analytics::proficiency::{CellStats, Evidence, Proficiency, ProficiencyModel};
use crate::domain::{Assessment, PersonId, SkillId, Timestamp};

/// Column order of the skills in every row (skill ids in sorted order).
#[derive(Clone, Debug, Default)]
pub struct SkillAxis {
    ids: Vec<SkillId>,
    columns: AHashMap<SkillId, usize>,
}

impl SkillAxis {
    /// The axis of `ids` (sorted, deduplicated).
    pub fn new(ids: impl IntoIterator<Item = SkillId>) -> Self {
        let mut ids: Vec<SkillId> = ids.into_iter().collect();
        ids.sort();
        ids.dedup();
        let columns = ids
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        Self { ids, columns }
    }

    /// Column of a skill.
    pub fn column(&self, skill: &str) -> Option<usize> {
        self.columns.get(skill).copied()
    }

    /// Skills in column order.
    pub fn skills(&self) -> &[SkillId] {
        &self.ids
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no skills.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One person's capability row.
#[derive(Clone, Debug)]
pub struct PersonCapability {
    /// Effective level per skill column; NaN where unknown.
    pub levels: Array1<f32>,
    /// Confidence per skill column; 0 where unknown.
    pub confidence: Array1<f32>,
    /// Running sums of the assessed columns, sorted by column.
    cells: Vec<(u32, CellStats)>,
}

impl PersonCapability {
    fn empty(width: usize) -> Self {
        Self {
            levels: Array1::from_elem(width, f32::NAN),
            confidence: Array1::zeros(width),
            cells: Vec::new(),
        }
    }

    /// The proficiency of one column as of `as_of` (not before its latest evidence).
    pub fn proficiency(
        &self,
        model: &ProficiencyModel,
        column: usize,
        as_of: Timestamp,
    ) -> Option<Proficiency> {
        let at = self
            .cells
            .binary_search_by_key(&(column as u32), |(c, _)| *c)
            .ok()?;
        self.cells[at].1.proficiency(model, as_of)
    }

    /// Pieces of evidence about the person.
    pub fn evidence_count(&self) -> u64 {
        self.cells.iter().map(|(_, s)| u64::from(s.count())).sum()
    }

    fn add(&mut self, model: &ProficiencyModel, column: usize, evidence: &Evidence) {
        let key = column as u32;
        let at = match self.cells.binary_search_by_key(&key, |(c, _)| *c) {
            Ok(at) => at,
            Err(at) => {
                self.cells.insert(at, (key, CellStats::default()));
                at
            }
        };
        self.cells[at].1.add(model, evidence);
    }

    fn refresh(&mut self, model: &ProficiencyModel, column: usize, as_of: Timestamp) {
        let known = self.proficiency(model, column, as_of);
        self.levels[column] = known.map_or(f32::NAN, |p| p.level);
        self.confidence[column] = known.map_or(0.0, |p| p.confidence);
    }

    fn refresh_all(&mut self, model: &ProficiencyModel, as_of: Timestamp) {
        let columns: Vec<usize> = self.cells.iter().map(|(c, _)| *c as usize).collect();
        for column in columns {
            self.refresh(model, column, as_of);
        }
    }
}

/// Collects evidence one assessment at a time (e.g. during the store's start-up scan),
/// then computes every row once. Rows are kept by a dense person index while building.
pub struct CapabilityBuilder {
    model: ProficiencyModel,
    axis: SkillAxis,
    people: Vec<PersonId>,
    /// `people[..sorted]` is in id order (binary-searchable); later ones are in `slots`.
    sorted: usize,
    slots: AHashMap<PersonId, u32>,
    rows: Vec<Option<PersonCapability>>,
    latest: Timestamp,
}

impl CapabilityBuilder {
    /// A builder over the skills `axis`, for `people` (whose positions are the dense
    /// indexes `push_indexed` takes).
    pub fn new(model: ProficiencyModel, axis: SkillAxis, people: Vec<PersonId>) -> Self {
        Self {
            model,
            axis,
            rows: vec![None; people.len()],
            sorted: people.len(),
            slots: AHashMap::new(),
            people,
            latest: Timestamp::from_unix_millis(0),
        }
    }

    /// Adds one assessment's evidence.
    pub fn push(&mut self, a: &Assessment) {
        self.push_evidence(&a.person, &a.skill, Evidence::from(a));
    }

    /// Adds one piece of evidence about `person` in `skill`.
    pub fn push_evidence(&mut self, person: &PersonId, skill: &SkillId, evidence: Evidence) {
        let index = match self.people[..self.sorted].binary_search(person) {
            Ok(index) => index as u32,
            Err(_) => *self.slots.entry(person.clone()).or_insert_with(|| {
                self.people.push(person.clone());
                self.rows.push(None);
                (self.people.len() - 1) as u32
            }),
        };
        self.push_indexed(index, skill, evidence);
    }

    /// Adds one piece of evidence about the person at dense index `index`.
    pub fn push_indexed(&mut self, index: u32, skill: &SkillId, evidence: Evidence) {
        if let Some(column) = self.axis.column(skill.as_str()) {
            self.push_cell(index, column, evidence);
        }
    }

    /// Adds one piece of evidence for a known person index and skill column.
    pub fn push_cell(&mut self, index: u32, column: usize, evidence: Evidence) {
        let width = self.axis.len();
        self.rows[index as usize]
            .get_or_insert_with(|| PersonCapability::empty(width))
            .add(&self.model, column, &evidence);
        self.latest = self.latest.max(evidence.at);
    }

    /// The index, with levels as of `as_of` (or the latest evidence, if later).
    pub fn finish(self, as_of: Timestamp) -> CapabilityIndex {
        let Self {
            model,
            axis,
            people,
            rows,
            latest,
            ..
        } = self;
        let as_of = as_of.max(latest);
        let rows = people
            .into_iter()
            .zip(rows)
            .filter_map(|(person, row)| {
                let mut row = row?;
                row.refresh_all(&model, as_of);
                Some((person, Arc::new(row)))
            })
            .collect();
        CapabilityIndex {
            axis: Arc::new(axis),
            rows,
            model: Arc::new(model),
        }
    }
}

/// Capability rows of everyone, over one skill axis.
#[derive(Clone, Debug, Default)]
pub struct CapabilityIndex {
    axis: Arc<SkillAxis>,
    rows: imbl::HashMap<PersonId, Arc<PersonCapability>>,
    model: Arc<ProficiencyModel>,
}

impl CapabilityIndex {
    /// Builds the index of `assessments` over the skills `axis`, with levels as of `as_of`.
    pub fn build<'a>(
        model: ProficiencyModel,
        axis: SkillAxis,
        assessments: impl IntoIterator<Item = &'a Assessment>,
        as_of: Timestamp,
    ) -> Self {
        let mut builder = CapabilityBuilder::new(model, axis, Vec::new());
        assessments.into_iter().for_each(|a| builder.push(a));
        builder.finish(as_of)
    }

    /// The skill axis.
    pub fn axis(&self) -> &SkillAxis {
        &self.axis
    }

    /// The proficiency model in use.
    pub fn model(&self) -> &ProficiencyModel {
        &self.model
    }

    /// A person's row, if they have any evidence.
    pub fn row(&self, person: &PersonId) -> Option<&Arc<PersonCapability>> {
        self.rows.get(person)
    }

    /// Number of pieces of evidence about `person`.
    pub fn evidence_count(&self, person: &PersonId) -> u64 {
        self.rows.get(person).map_or(0, |r| r.evidence_count())
    }

    /// Adds newly accepted assessments, recomputing only the touched cells (O(1) each),
    /// as of `as_of` (or the assessment's date, if later).
    pub fn add(&mut self, assessments: &[&Assessment], as_of: Timestamp) {
        let width = self.axis.len();
        for a in assessments {
            let Some(column) = self.axis.column(a.skill.as_str()) else {
                continue;
            };
            let row = self
                .rows
                .entry(a.person.clone())
                .or_insert_with(|| Arc::new(PersonCapability::empty(width)));
            let row = Arc::make_mut(row);
            row.add(&self.model, column, &Evidence::from(*a));
            row.refresh(&self.model, column, as_of.max(a.assessed_at));
        }
    }

    /// Removes a person entirely; returns how much evidence they had.
    pub fn remove(&mut self, person: &PersonId) -> u64 {
        self.rows.remove(person).map_or(0, |r| r.evidence_count())
    }

    /// The same sums over a new skill axis (skills were added or reordered).
    pub fn with_axis(&self, axis: SkillAxis, as_of: Timestamp) -> Self {
        let width = axis.len();
        let remap: Vec<Option<u32>> = self
            .axis
            .skills()
            .iter()
            .map(|s| axis.column(s.as_str()).map(|c| c as u32))
            .collect();
        let rows = self
            .rows
            .iter()
            .map(|(person, row)| {
                let mut wider = PersonCapability::empty(width);
                wider.cells = row
                    .cells
                    .iter()
                    .filter_map(|(c, stats)| remap[*c as usize].map(|c| (c, *stats)))
                    .collect();
                wider.cells.sort_by_key(|(c, _)| *c);
                wider.refresh_all(&self.model, as_of);
                (person.clone(), Arc::new(wider))
            })
            .collect();
        Self {
            axis: Arc::new(axis),
            rows,
            model: Arc::clone(&self.model),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AssessmentId, Level, Source, Text};

    fn assessment(id: &str, person: &str, skill: &str, score: f64, source: Source) -> Assessment {
        Assessment {
            id: AssessmentId::parse(id).unwrap(),
            person: PersonId::parse(person).unwrap(),
            skill: SkillId::parse(skill).unwrap(),
            score: Level::parse(score).unwrap(),
            source,
            assessor: None,
            assessed_at: Timestamp::from_unix_millis(1_000),
            evidence: Text::default(),
        }
    }

    fn axis() -> SkillAxis {
        SkillAxis::new(["sql", "rust", "go"].map(|s| SkillId::parse(s).unwrap()))
    }

    #[test]
    fn unknown_cells_stay_nan_and_known_ones_get_levels() {
        let now = Timestamp::from_unix_millis(1_000);
        let index = CapabilityIndex::build(
            ProficiencyModel::default(),
            axis(),
            &[assessment("a", "p", "rust", 4.0, Source::ObjectiveTest)],
            now,
        );
        let row = index.row(&PersonId::parse("p").unwrap()).unwrap();
        let rust = index.axis().column("rust").unwrap();
        assert_eq!(
            index.axis().skills()[0].as_str(),
            "go",
            "columns in id order"
        );
        assert!((row.levels[rust] - 4.0).abs() < 1e-6);
        assert!(row.levels[index.axis().column("go").unwrap()].is_nan());
    }

    #[test]
    fn adding_evidence_updates_only_the_touched_row_and_keeps_old_snapshots_intact() {
        let now = Timestamp::from_unix_millis(1_000);
        let before = CapabilityIndex::build(
            ProficiencyModel::default(),
            axis(),
            &[
                assessment("a", "p", "rust", 4.0, Source::ObjectiveTest),
                assessment("b", "q", "sql", 2.0, Source::ObjectiveTest),
            ],
            now,
        );
        let mut after = before.clone();
        let extra = assessment("c", "p", "rust", 2.0, Source::ObjectiveTest);
        after.add(&[&extra], now);
        let p = PersonId::parse("p").unwrap();
        let q = PersonId::parse("q").unwrap();
        let rust = before.axis().column("rust").unwrap();
        assert!(
            (before.row(&p).unwrap().levels[rust] - 4.0).abs() < 1e-6,
            "old snapshot untouched"
        );
        assert!((after.row(&p).unwrap().levels[rust] - 3.0).abs() < 1e-6);
        assert!(
            Arc::ptr_eq(before.row(&q).unwrap(), after.row(&q).unwrap()),
            "untouched rows are shared"
        );
        assert_eq!(after.evidence_count(&p), 2);
    }

    #[test]
    fn evidence_for_people_outside_the_initial_list_stays_in_one_row() {
        let now = Timestamp::from_unix_millis(1_000);
        let id = |s: &str| PersonId::parse(s).unwrap();
        let mut builder =
            CapabilityBuilder::new(ProficiencyModel::default(), axis(), vec![id("b"), id("d")]);
        for (n, person) in ["z", "a", "d", "z", "a", "b"].into_iter().enumerate() {
            builder.push(&assessment(
                &format!("x{n}"),
                person,
                "rust",
                3.0,
                Source::Peer,
            ));
        }
        let index = builder.finish(now);
        for (person, count) in [("a", 2), ("b", 1), ("d", 1), ("z", 2)] {
            assert_eq!(index.evidence_count(&id(person)), count, "{person}");
        }
    }

    #[test]
    fn a_new_skill_axis_keeps_every_level() {
        let now = Timestamp::from_unix_millis(1_000);
        let index = CapabilityIndex::build(
            ProficiencyModel::default(),
            axis(),
            &[assessment("a", "p", "rust", 4.0, Source::ObjectiveTest)],
            now,
        );
        let wider = index.with_axis(
            SkillAxis::new(["aws", "sql", "rust", "go"].map(|s| SkillId::parse(s).unwrap())),
            now,
        );
        let row = wider.row(&PersonId::parse("p").unwrap()).unwrap();
        assert_eq!(row.levels.len(), 4);
        assert!((row.levels[wider.axis().column("rust").unwrap()] - 4.0).abs() < 1e-6);
        assert_eq!(wider.evidence_count(&PersonId::parse("p").unwrap()), 1);
    }
}
