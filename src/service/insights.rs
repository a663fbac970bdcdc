//! `OrgInsightsService`: skill archetypes and organisation-wide skill patterns. The rules
//! of culture-review aggregates live here: who may ask about which scope, the limits of
//! each question, and suppression — no group, department share or archetype share under
//! the minimum group size is shown, and complementary suppression keeps a hidden group
//! from being recovered from its siblings and their total.

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::{ArrayView1, Axis};

use super::culture::{self, Culture};
/// Why a group's figures are hidden, and how patterns are grouped: part of this service's
/// questions and answers.
pub use crate::analytics::privacy::Suppression;
use crate::analytics::privacy::{MIN_GROUP_SIZE_FLOOR, suppress};
use crate::domain::{
    AccessRole, Directory, FieldViolation, Grant, SkillCategory, SkillId, TeamId, Timestamp,
};
pub use crate::engine::insights::GroupBy;
use crate::engine::insights::{ArchetypeView, CellSums, GroupData, PatternData};
use crate::engine::{Engine, Fresh, KChoice, Want};
use crate::error::{Error, Result};

use super::Answer;
use super::page::{PageFields, PageRequest};

/// Default trend period of skill patterns, in days.
pub const DEFAULT_TREND_DAYS: u32 = 180;
/// Longest trend period of skill patterns, in days.
pub const MAX_TREND_DAYS: u32 = 3650;
/// Largest k a caller may ask for.
pub const MAX_K: u32 = 50;

/// Computes the organisation's insights at start-up, off the request path and one at a
/// time, so that the first culture review, dashboard or plan after a restart is served
/// from the cache: the archetypes, the skill patterns by each grouping (default trend
/// period) and the mentoring plan with the default settings. Nothing is computed for an
/// organisation without people (its first data would make any result stale at once).
pub async fn precompute_organisation(engine: Arc<Engine>) {
    if engine.snapshot().directory.people().is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let mut failed = 0u32;
    let mut note = |what: &str, result: Result<()>| {
        if let Err(e) = result {
            failed += 1;
            tracing::debug!(error = %e, what, "not precomputed");
        }
    };
    let archetypes = engine.archetypes(None, KChoice::AUTO, Want::Latest).await;
    note("archetypes", archetypes.map(drop));
    for group_by in GroupBy::ALL {
        let patterns = engine
            .patterns(group_by, None, DEFAULT_TREND_DAYS, Want::Latest)
            .await;
        note("patterns", patterns.map(drop));
    }
    let plan = engine
        .mentoring_plan(
            None,
            super::talent::DEFAULT_CAPACITY,
            super::talent::DEFAULT_MENTORS_PER_MENTEE,
            false,
            Want::Latest,
        )
        .await;
    note("mentoring plan", plan.map(drop));
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        failed,
        "organisation insights precomputed"
    );
}

/// How fresh a derived result is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// Data version it was computed from.
    pub computed_version: u64,
    /// Data version now.
    pub current_version: u64,
    /// When it was computed.
    pub computed_at: Timestamp,
    /// Whether a newer result is being computed.
    pub refreshing: bool,
    /// Data version of the archetypes the result used, for results that use them.
    pub archetypes_version: Option<u64>,
}

impl Freshness {
    /// The freshness of `fresh`.
    pub fn of<T>(fresh: &Fresh<T>) -> Self {
        Self {
            computed_version: fresh.computed_version,
            current_version: fresh.current_version,
            computed_at: fresh.computed_at,
            refreshing: fresh.refreshing,
            archetypes_version: None,
        }
    }

    /// Whether the data changed since the result was computed, or it used archetypes
    /// of older data than its own.
    pub fn stale(&self) -> bool {
        self.computed_version != self.current_version
            || self
                .archetypes_version
                .is_some_and(|v| v < self.computed_version)
    }
}

/// A question about the archetypes of a scope.
#[derive(Clone, Debug)]
pub struct ArchetypesQuery {
    /// Team subtree; `None`: the whole organisation.
    pub scope: Option<TeamId>,
    /// Number of archetypes; `None`: chosen by silhouette.
    pub k: Option<u32>,
    /// Top of the range k is chosen from; `None`: grows with the population.
    pub max_k: Option<u32>,
    /// Whether to list each person's archetype (never for analysts).
    pub include_members: bool,
    /// Fresh or at once.
    pub want: Want,
    /// Which members, with `include_members`.
    pub members: PageRequest,
}

/// Page fields and sizes of archetype members: a member is about 50 bytes encoded, so a
/// full page stays near 1 MB.
pub const MEMBER_PAGES: PageFields = PageFields {
    size: "member_page_size",
    token: "member_page_token",
    default: 1_000,
    most: 20_000,
};

/// One department's share of an archetype.
#[derive(Clone, Debug, PartialEq)]
pub struct DepartmentShare {
    /// The department.
    pub team: TeamId,
    /// Its display name.
    pub name: String,
    /// Members of the archetype in it.
    pub count: u32,
}

/// A skill an archetype stands out in.
#[derive(Clone, Debug, PartialEq)]
pub struct Contrast {
    /// The skill.
    pub skill: SkillId,
    /// Its display name.
    pub name: String,
    /// The archetype's level.
    pub level: f32,
    /// Minus the population mean.
    pub versus_mean: f32,
}

/// What may be shown of an archetype at least the minimum group size.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchetypeFigures {
    /// Generated label.
    pub label: String,
    /// Members.
    pub size: u32,
    /// Root mean squared distance of the members to the centroid.
    pub spread: f32,
    /// Centroid over every skill column.
    pub centroid: Vec<f32>,
    /// Most distinctive skills first.
    pub defining: Vec<Contrast>,
    /// Departments with at least the minimum number of its members.
    pub departments: Vec<DepartmentShare>,
    /// Members in the departments not listed.
    pub other_departments: u32,
    /// The centroid on the archetype map.
    pub position: [f32; 2],
}

/// One archetype: suppressed, or its figures.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchetypeEntry {
    /// Position, largest first.
    pub index: u32,
    /// Whether (and why) it is hidden.
    pub suppression: Suppression,
    /// Its figures when visible.
    pub figures: Option<ArchetypeFigures>,
}

/// One person's archetype.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The person.
    pub person: String,
    /// Index of their archetype.
    pub archetype: u32,
    /// Distance to its centroid.
    pub distance: f32,
    /// Position on the archetype map.
    pub position: [f32; 2],
}

/// The archetypes of a scope, as the caller may see them.
#[derive(Clone, Debug)]
pub struct Archetypes {
    /// Skill columns of the centroids.
    pub skills: Vec<SkillId>,
    /// Largest first.
    pub archetypes: Vec<ArchetypeEntry>,
    /// Silhouette of the clustering.
    pub silhouette: f32,
    /// Silhouette of every k tried.
    pub k_scores: Vec<(u32, f32)>,
    /// The range k was chosen from.
    pub k_range: (u32, u32),
    /// The chosen k is the top of the range: there may be more archetypes.
    pub k_at_edge: bool,
    /// People clustered.
    pub people: u32,
    /// Share of cells backed by evidence.
    pub known_share: f32,
    /// Level assumed without evidence.
    pub unknown_level: f32,
    /// Smallest group shown.
    pub min_group_size: u32,
    /// Freshness of the clustering.
    pub freshness: Freshness,
    /// Each person's archetype, if asked for.
    pub members: Vec<Member>,
    /// Token for the next page of members; empty on the last.
    pub next_member_page_token: String,
    /// Variance share of each map axis.
    pub map_explained: Vec<f32>,
}

/// A question about skill patterns.
#[derive(Clone, Debug)]
pub struct PatternsQuery {
    /// Team subtree; `None`: the whole organisation.
    pub scope: Option<TeamId>,
    /// How people are grouped.
    pub group_by: GroupBy,
    /// Only these skills (with `categories`; both empty: every skill).
    pub skills: Vec<SkillId>,
    /// Only skills of these categories.
    pub categories: Vec<SkillCategory>,
    /// Trend period in days; `None`: `DEFAULT_TREND_DAYS`.
    pub trend_days: Option<u32>,
    /// Smallest group the caller wants shown (never below the server's minimum).
    pub min_group_size: Option<u32>,
    /// Fresh or at once.
    pub want: Want,
    /// Which groups.
    pub page: PageRequest,
}

/// One skill of a group: its figures only when they rest on the minimum group size of
/// people and cannot be recovered by difference (`suppression` says why not).
#[derive(Clone, Debug, PartialEq)]
pub struct SkillFigure {
    /// The skill.
    pub skill: SkillId,
    /// Whether (and why) its figures are hidden.
    pub suppression: Suppression,
    /// Mean level of the people with evidence.
    pub mean_level: Option<f64>,
    /// People with evidence.
    pub known: u32,
    /// People at or above proficient.
    pub proficient: u32,
}

/// What may be shown of a group at least the minimum size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupFigures {
    /// People.
    pub size: u32,
    /// Selected skills.
    pub skills: Vec<SkillFigure>,
    /// Per category with evidence: `(category, mean level, known cells)`.
    pub categories: Vec<(SkillCategory, f64, u32)>,
    /// Archetypes with at least the minimum number of the group's members.
    pub archetypes: Vec<(String, u32)>,
    /// Members in archetypes not listed.
    pub other_archetypes: u32,
    /// Mean self-rating minus other evidence.
    pub calibration: Option<f64>,
    /// Cells it rests on.
    pub calibration_cells: u32,
    /// Mean level change over the trend period.
    pub trend: Option<f64>,
    /// Cells it rests on.
    pub trend_cells: u32,
}

/// One group's pattern: suppressed, or its figures.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupPattern {
    /// Group id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Parent group id.
    pub parent: String,
    /// Whether (and why) it is hidden.
    pub suppression: Suppression,
    /// Its figures when visible.
    pub figures: Option<GroupFigures>,
}

/// Skill patterns of a scope, as the caller may see them.
#[derive(Clone, Debug)]
pub struct Patterns {
    /// Groups in id order.
    pub groups: Vec<GroupPattern>,
    /// The whole scope.
    pub total: GroupPattern,
    /// Smallest group shown.
    pub min_group_size: u32,
    /// Trend period in days.
    pub trend_days: u32,
    /// Freshness of the aggregates.
    pub freshness: Freshness,
    /// Token for the next page of groups; empty on the last.
    pub next_page_token: String,
}

/// Suppression decisions of one patterns result at one minimum: per group, and per
/// skill column per group.
type Decisions = (Vec<Suppression>, Vec<Vec<Suppression>>);

/// Results whose suppression decisions are kept (the latest few asked for).
const DECISIONS_KEPT: usize = 8;

/// Kept decisions: the result (held weakly), the minimum, the decisions.
type KeptDecisions = Vec<(std::sync::Weak<PatternData>, usize, Arc<Decisions>)>;

/// The insights service.
pub struct Insights {
    engine: Arc<Engine>,
    /// Suppression decisions by patterns result (held weakly) and minimum: computed once
    /// per result, not on every page read (at 100k people by team they take ~100 ms).
    decisions: std::sync::Mutex<KeptDecisions>,
    min_group_size: usize,
    /// What analysts read.
    culture: Arc<Culture>,
}

/// Splits counts into the ones shown and the hidden rest (0 or at least the minimum).
fn visible_counts<K: Clone>(counts: &[(K, u32)], minimum: usize) -> (Vec<(K, u32)>, u32) {
    let groups: Vec<(usize, usize)> = counts.iter().map(|(_, c)| (0, *c as usize)).collect();
    let decision = suppress(&groups, minimum);
    let mut shown = Vec::new();
    let mut hidden = 0;
    for ((key, count), d) in counts.iter().zip(decision) {
        if d == Suppression::Visible {
            shown.push((key.clone(), *count));
        } else {
            hidden += count;
        }
    }
    (shown, hidden)
}

fn map_point(point: ArrayView1<f32>) -> [f32; 2] {
    [point[0], point.get(1).copied().unwrap_or(0.0)]
}

impl Insights {
    /// The service over `engine`, hiding groups under `min_group_size` (at least 3).
    /// Analysts read a culture snapshot published at most once a day.
    pub fn new(engine: Arc<Engine>, min_group_size: usize) -> Self {
        Self {
            culture: Arc::new(Culture::new(Arc::clone(&engine), culture::DEFAULT_PERIOD)),
            engine,
            decisions: std::sync::Mutex::default(),
            min_group_size: min_group_size.max(MIN_GROUP_SIZE_FLOOR),
        }
    }

    /// The suppression decisions of `data` at `minimum`, from the last few computed.
    fn suppression_of(&self, data: &Arc<PatternData>, minimum: usize) -> Arc<Decisions> {
        let mut kept = self
            .decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.retain(|(d, _, _)| d.strong_count() > 0);
        if let Some((_, _, found)) = kept
            .iter()
            .find(|(d, m, _)| *m == minimum && std::ptr::eq(d.as_ptr(), Arc::as_ptr(data)))
        {
            return Arc::clone(found);
        }
        drop(kept);
        let computed = Arc::new(suppression_decisions(data, minimum));
        let mut kept = self
            .decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= DECISIONS_KEPT {
            kept.remove(0);
        }
        kept.push((Arc::downgrade(data), minimum, Arc::clone(&computed)));
        computed
    }

    /// The culture snapshot analysts read (shared with their trends).
    pub fn culture(&self) -> Arc<Culture> {
        Arc::clone(&self.culture)
    }

    /// Analysts' culture snapshot is published at most once per `period` (zero: they
    /// read the current data).
    pub fn with_culture_period(mut self, period: std::time::Duration) -> Self {
        self.culture = Arc::new(Culture::new(Arc::clone(&self.engine), period));
        self
    }

    /// The archetypes of `query.scope` as `grant` may see them; subjects are the members
    /// listed.
    pub async fn archetypes(
        &self,
        grant: &Grant,
        query: ArchetypesQuery,
    ) -> Result<Answer<Archetypes>> {
        let snapshot = self.engine.snapshot();
        let scope =
            super::scope::admit_aggregate(grant, &snapshot.directory, query.scope.as_ref())?;
        if query.include_members && grant.role == AccessRole::Analyst {
            return Err(Error::PermissionDenied);
        }
        let choice = k_choice(query.k, query.max_k)?;
        let fresh = if grant.role == AccessRole::Analyst {
            self.culture.archetypes(choice, query.want).await?
        } else {
            self.engine.archetypes(scope, choice, query.want).await?
        };
        let view = &fresh.value;
        let minimum = self.min_group_size;
        let directory = &snapshot.directory;
        let archetypes = entries(view, directory, minimum);
        // Only people who still exist (the cached result may predate changes).
        let (members, next_member_page_token) = match query.include_members {
            true => members(view, directory, &query.members),
            false => (Vec::new(), String::new()),
        };
        let subjects = members.iter().map(|m| m.person.clone()).collect();
        let archetypes = Archetypes {
            skills: view.skills.clone(),
            archetypes,
            silhouette: view.set.silhouette,
            k_scores: view
                .set
                .k_scores
                .iter()
                .map(|&(k, s)| (k as u32, s))
                .collect(),
            k_range: (view.set.k_range.0 as u32, view.set.k_range.1 as u32),
            k_at_edge: view.set.k_at_edge,
            people: u32::try_from(view.people.len()).unwrap_or(u32::MAX),
            known_share: view.set.known_share,
            unknown_level: view.unknown_level,
            min_group_size: minimum as u32,
            freshness: Freshness::of(&fresh),
            members,
            next_member_page_token,
            map_explained: view.set.projection.explained.to_vec(),
        };
        Ok(Answer::new(archetypes, subjects))
    }

    /// The skill patterns of `query.scope` as `grant` may see them (no subjects: no one
    /// is named).
    pub async fn patterns(&self, grant: &Grant, query: PatternsQuery) -> Result<Answer<Patterns>> {
        let snapshot = self.engine.snapshot();
        let scope =
            super::scope::admit_aggregate(grant, &snapshot.directory, query.scope.as_ref())?;
        let mut violations: Vec<FieldViolation> = query
            .skills
            .iter()
            .enumerate()
            .filter(|(_, s)| !snapshot.directory.skills().contains_key(*s))
            .map(|(i, _)| FieldViolation::new(format!("skill_ids[{i}]"), "no such skill"))
            .collect();
        let trend_days = query.trend_days.unwrap_or(DEFAULT_TREND_DAYS);
        if !(1..=MAX_TREND_DAYS).contains(&trend_days) {
            violations.push(FieldViolation::new(
                "trend_days",
                "must be between 1 and 3650",
            ));
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let minimum = query.min_group_size.map_or(self.min_group_size, |m| {
            (m as usize).max(self.min_group_size)
        });
        let fresh = if grant.role == AccessRole::Analyst {
            self.culture
                .patterns(query.group_by, trend_days, query.want)
                .await?
        } else {
            self.engine
                .patterns(query.group_by, scope, trend_days, query.want)
                .await?
        };
        let data = &fresh.value;
        let selected: Vec<usize> = (0..data.skills.len())
            .filter(|&c| {
                let (id, category) = &data.skills[c];
                (query.skills.is_empty() && query.categories.is_empty())
                    || query.skills.contains(id)
                    || query.categories.contains(category)
            })
            .collect();
        let (decisions, cell_decisions) = &*self.suppression_of(data, minimum);
        let (page, next_page_token) = query.page.apply_sorted(&data.groups, |g| g.id.clone());
        let groups = data
            .groups
            .iter()
            .enumerate()
            .zip(decisions)
            .skip(page.start)
            .take(page.len())
            .map(|((i, g), d)| {
                let cells: Vec<Suppression> = cell_decisions.iter().map(|c| c[i]).collect();
                group_pattern(g, *d, &cells, data, &selected, minimum)
            })
            .collect();
        let total_decision = if data.total.size >= minimum {
            Suppression::Visible
        } else {
            Suppression::TooSmall
        };
        let total_cells: Vec<Suppression> = (0..data.skills.len())
            .map(|c| {
                if data.total.cells.get(c).known as usize >= minimum {
                    Suppression::Visible
                } else {
                    Suppression::TooSmall
                }
            })
            .collect();
        let patterns = Patterns {
            groups,
            total: group_pattern(
                &data.total,
                total_decision,
                &total_cells,
                data,
                &selected,
                minimum,
            ),
            min_group_size: minimum as u32,
            trend_days,
            next_page_token,
            freshness: Freshness {
                archetypes_version: data.archetypes_version,
                ..Freshness::of(&fresh)
            },
        };
        Ok(Answer::new(patterns, Vec::new()))
    }
}

/// Which groups of `data`, and which skill cells of each, are shown at `minimum`.
fn suppression_decisions(data: &PatternData, minimum: usize) -> Decisions {
    // Parents: teams report under their department, everything else under the scope.
    let mut parents: Vec<&str> = data.groups.iter().map(|g| g.parent.as_str()).collect();
    parents.sort_unstable();
    parents.dedup();
    let sizes: Vec<(usize, usize)> = data
        .groups
        .iter()
        .map(|g| {
            let parent = parents.binary_search(&g.parent.as_str()).unwrap_or(0);
            (parent, g.size)
        })
        .collect();
    let decisions = suppress(&sizes, minimum);
    // Each skill's figures are suppressed per group as groups are: by the people with
    // evidence in it, with complementary suppression among siblings.
    // (Per skill: each group's parent and people with evidence; groups keep only the
    // skills they have evidence in, so the table is filled from what they keep.)
    let mut known: Vec<Vec<(usize, usize)>> = (0..data.skills.len())
        .map(|_| sizes.iter().map(|&(parent, _)| (parent, 0)).collect())
        .collect();
    for (i, g) in data.groups.iter().enumerate() {
        for (c, cell) in g.cells.iter() {
            if let Some(column) = known.get_mut(c) {
                column[i].1 = cell.known as usize;
            }
        }
    }
    let cell_decisions: Vec<Vec<Suppression>> = known
        .iter()
        .map(|column| suppress(column, minimum))
        .collect();
    (decisions, cell_decisions)
}

/// A group's pattern under `suppression`: its figures only when visible, each skill's
/// only when `cells` (per skill column) says so.
fn group_pattern(
    g: &GroupData,
    suppression: Suppression,
    cells: &[Suppression],
    data: &PatternData,
    selected: &[usize],
    minimum: usize,
) -> GroupPattern {
    GroupPattern {
        id: g.id.clone(),
        name: g.name.clone(),
        parent: g.parent.clone(),
        suppression,
        figures: (suppression == Suppression::Visible)
            .then(|| group_figures(g, cells, data, selected, minimum)),
    }
}

fn group_figures(
    g: &GroupData,
    cells: &[Suppression],
    data: &PatternData,
    selected: &[usize],
    minimum: usize,
) -> GroupFigures {
    let mut out = GroupFigures {
        size: u32::try_from(g.size).unwrap_or(u32::MAX),
        ..GroupFigures::default()
    };
    let mut by_category: BTreeMap<SkillCategory, (f64, u32)> = BTreeMap::new();
    for &c in selected {
        let cell = &g.cells.get(c);
        let (id, category) = &data.skills[c];
        let suppression = cells[c];
        let shown = suppression == Suppression::Visible;
        out.skills.push(SkillFigure {
            skill: id.clone(),
            suppression,
            mean_level: (shown && cell.known > 0).then(|| cell.level / f64::from(cell.known)),
            known: if shown { cell.known } else { 0 },
            proficient: if shown { cell.proficient } else { 0 },
        });
        // Category means rest on shown cells only, so a hidden cell cannot be
        // recovered from its category's mean.
        if shown {
            let entry = by_category.entry(*category).or_default();
            entry.0 += cell.level;
            entry.1 += cell.known;
        }
    }
    // Calibration and trend over every skill (a selection cannot be differenced), shown
    // when at least one skill brings the minimum number of people to them: then at
    // least that many people's cells are in the mean.
    let mut sum = CellSums::default();
    let (mut calibration_people, mut trend_people) = (0, 0);
    for (_, cell) in g.cells.iter() {
        sum.self_gap += cell.self_gap;
        sum.self_gap_cells += cell.self_gap_cells;
        sum.trend += cell.trend;
        sum.trend_cells += cell.trend_cells;
        calibration_people = calibration_people.max(cell.self_gap_cells as usize);
        trend_people = trend_people.max(cell.trend_cells as usize);
    }
    if calibration_people < minimum {
        (sum.self_gap, sum.self_gap_cells) = (0.0, 0);
    }
    if trend_people < minimum {
        (sum.trend, sum.trend_cells) = (0.0, 0);
    }
    out.categories = by_category
        .into_iter()
        .filter(|(_, (_, known))| *known > 0)
        .map(|(category, (level, known))| (category, level / f64::from(known), known))
        .collect();
    let mix: Vec<(usize, u32)> = g
        .archetypes
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, c)| *c > 0)
        .collect();
    let (shown, hidden) = visible_counts(&mix, minimum);
    out.archetypes = shown
        .into_iter()
        .map(|(a, count)| (data.archetype_labels[a].clone(), count))
        .collect();
    out.other_archetypes = hidden;
    out.calibration =
        (sum.self_gap_cells > 0).then(|| sum.self_gap / f64::from(sum.self_gap_cells));
    out.calibration_cells = sum.self_gap_cells;
    out.trend = (sum.trend_cells > 0).then(|| sum.trend / f64::from(sum.trend_cells));
    out.trend_cells = sum.trend_cells;
    out
}

/// The number of archetypes asked for: `k`, or chosen automatically up to `max_k`.
fn k_choice(k: Option<u32>, max_k: Option<u32>) -> Result<KChoice> {
    let mut violations = Vec::new();
    for (field, value) in [("k", k), ("max_k", max_k)] {
        if value.is_some_and(|k| !(2..=MAX_K).contains(&k)) {
            violations.push(FieldViolation::new(field, "must be between 2 and 50"));
        }
    }
    if k.is_some() && max_k.is_some() {
        violations.push(FieldViolation::new(
            "max_k",
            "only when k is chosen automatically (k unset)",
        ));
    }
    if !violations.is_empty() {
        return Err(Error::InvalidArgument(violations));
    }
    Ok(KChoice {
        k: k.map(|k| k as usize),
        max_k: max_k.map(|k| k as usize),
    })
}

/// Each archetype with its figures, or only its suppression when it has fewer than
/// `minimum` people; departments under `minimum` are counted together, never named.
fn entries(view: &ArchetypeView, directory: &Directory, minimum: usize) -> Vec<ArchetypeEntry> {
    let sizes: Vec<(usize, usize)> = view.set.archetypes.iter().map(|a| (0, a.size)).collect();
    let decisions = suppress(&sizes, minimum);
    let team_name = |t: &TeamId| {
        directory
            .teams()
            .get(t)
            .map_or_else(|| t.to_string(), |t| t.name.as_str().to_owned())
    };
    view.set
        .archetypes
        .iter()
        .zip(decisions)
        .zip(&view.departments)
        .enumerate()
        .map(|(index, ((a, suppression), departments))| {
            let figures = (suppression == Suppression::Visible).then(|| {
                let (shown, hidden) = visible_counts(departments, minimum);
                let centre = view
                    .set
                    .projection
                    .project(a.centroid.view().insert_axis(Axis(0)));
                ArchetypeFigures {
                    label: a.label.clone(),
                    size: u32::try_from(a.size).unwrap_or(u32::MAX),
                    spread: a.spread,
                    centroid: a.centroid.to_vec(),
                    defining: a
                        .defining
                        .iter()
                        .map(|c| {
                            let skill = view.skills[c.column].clone();
                            let name = directory
                                .skills()
                                .get(&skill)
                                .map_or_else(|| skill.to_string(), |s| s.name.as_str().to_owned());
                            Contrast {
                                skill,
                                name,
                                level: c.level,
                                versus_mean: c.versus_mean,
                            }
                        })
                        .collect(),
                    departments: shown
                        .into_iter()
                        .map(|(team, count)| DepartmentShare {
                            name: team_name(&team),
                            team,
                            count,
                        })
                        .collect(),
                    other_departments: hidden,
                    position: map_point(centre.row(0)),
                }
            });
            ArchetypeEntry {
                index: index as u32,
                suppression,
                figures,
            }
        })
        .collect()
}

/// One page of the people clustered, in person id order (the order they were clustered
/// in), without those erased since; and the next page's token.
fn members(
    view: &ArchetypeView,
    directory: &Directory,
    page: &PageRequest,
) -> (Vec<Member>, String) {
    debug_assert!(view.people.windows(2).all(|w| w[0] < w[1]));
    let (page, next) = page.apply_sorted(&view.people, ToString::to_string);
    let members = view
        .people
        .iter()
        .zip(&view.set.assignments)
        .zip(&view.set.distances)
        .zip(view.set.points.outer_iter())
        .skip(page.start)
        .take(page.len())
        .filter(|(((p, _), _), _)| directory.person(p.as_str()).is_some())
        .map(|(((p, &a), &d), point)| Member {
            person: p.to_string(),
            archetype: a as u32,
            distance: d,
            position: map_point(point),
        })
        .collect();
    (members, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{demo_engine, fields_of, grant};

    fn archetypes_query() -> ArchetypesQuery {
        ArchetypesQuery {
            scope: None,
            k: Some(4),
            max_k: None,
            include_members: false,
            want: Want::Current,
            members: PageRequest::parse_sized(0, "", String::new(), MEMBER_PAGES).unwrap(),
        }
    }

    fn patterns_query(group_by: GroupBy) -> PatternsQuery {
        PatternsQuery {
            scope: None,
            group_by,
            skills: Vec::new(),
            categories: Vec::new(),
            trend_days: None,
            min_group_size: None,
            want: Want::Current,
            page: PageRequest::parse(1000, "", String::new()).unwrap(),
        }
    }

    #[tokio::test]
    async fn the_organisations_insights_are_computed_before_anyone_asks() {
        let (_dir, engine) = demo_engine(200).await;
        precompute_organisation(Arc::clone(&engine)).await;
        let done = Timestamp::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // Each answer of the current data was computed before it was asked for.
        let archetypes = engine.archetypes(None, KChoice::AUTO, Want::Current).await;
        assert!(archetypes.unwrap().computed_at <= done);
        for group_by in GroupBy::ALL {
            let fresh = engine
                .patterns(group_by, None, DEFAULT_TREND_DAYS, Want::Current)
                .await
                .unwrap();
            assert!(fresh.computed_at <= done, "{group_by:?}");
        }
        let plan = engine
            .mentoring_plan(
                None,
                super::super::talent::DEFAULT_CAPACITY,
                super::super::talent::DEFAULT_MENTORS_PER_MENTEE,
                false,
                Want::Current,
            )
            .await
            .unwrap();
        assert!(plan.computed_at <= done);
        // A question nobody precomputes is computed when asked.
        let other = engine
            .patterns(GroupBy::Role, None, 30, Want::Current)
            .await
            .unwrap();
        assert!(other.computed_at > done);
    }

    #[tokio::test]
    async fn pages_of_patterns_add_up_to_the_whole_answer() {
        let (_dir, engine) = demo_engine(200).await;
        let insights = Insights::new(engine, 5);
        let admin = grant(AccessRole::Admin, &[]);
        let whole = insights
            .patterns(&admin, patterns_query(GroupBy::Team))
            .await
            .unwrap()
            .value;
        assert!(whole.next_page_token.is_empty());
        assert!(whole.groups.len() > 8, "{} teams", whole.groups.len());
        let (mut paged, mut token) = (Vec::new(), String::new());
        loop {
            let query = PatternsQuery {
                page: PageRequest::parse(4, &token, String::new()).unwrap(),
                ..patterns_query(GroupBy::Team)
            };
            let page = insights.patterns(&admin, query).await.unwrap().value;
            assert!(page.groups.len() <= 4);
            assert_eq!(page.total, whole.total, "the total is on every page");
            paged.extend(page.groups);
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        // Suppression decisions are taken over all groups, so pages show the same.
        assert_eq!(paged, whole.groups);
    }

    #[tokio::test]
    async fn analysts_ask_about_the_whole_organisation_only_and_never_see_members() {
        let (_dir, engine) = demo_engine(200).await;
        let insights = Insights::new(engine, 5);
        let analyst = grant(AccessRole::Analyst, &[]);
        let whole = insights
            .archetypes(&analyst, archetypes_query())
            .await
            .unwrap();
        assert!(whole.subjects.is_empty());
        assert!(whole.value.members.is_empty());
        let team = ArchetypesQuery {
            scope: Some(TeamId::parse("dept-01").unwrap()),
            ..archetypes_query()
        };
        assert!(matches!(
            insights.archetypes(&analyst, team).await,
            Err(Error::PermissionDenied)
        ));
        let members = ArchetypesQuery {
            include_members: true,
            ..archetypes_query()
        };
        assert!(matches!(
            insights.archetypes(&analyst, members.clone()).await,
            Err(Error::PermissionDenied)
        ));
        // An admin sees the members, and they are the answer's audit subjects.
        let admin = insights
            .archetypes(&grant(AccessRole::Admin, &[]), members.clone())
            .await
            .unwrap();
        assert_eq!(admin.value.members.len(), admin.value.people as usize);
        assert_eq!(admin.subjects.len(), admin.value.members.len());
        assert!(admin.value.next_member_page_token.is_empty());

        // In pages: every member once, in order, and only the page's members are the
        // answer's subjects.
        let (mut paged, mut token) = (Vec::new(), String::new());
        loop {
            let query = ArchetypesQuery {
                members: PageRequest::parse_sized(7, &token, String::new(), MEMBER_PAGES).unwrap(),
                ..members.clone()
            };
            let page = insights
                .archetypes(&grant(AccessRole::Admin, &[]), query)
                .await
                .unwrap();
            assert!(page.value.members.len() <= 7);
            assert_eq!(page.subjects.len(), page.value.members.len());
            paged.extend(page.value.members);
            token = page.value.next_member_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(paged, admin.value.members);
        let e = PageRequest::parse_sized(20_001, "", String::new(), MEMBER_PAGES).unwrap_err();
        assert_eq!(fields_of(&e), ["member_page_size"]);
        let e = PageRequest::parse_sized(0, "0123456789abcdef00", String::new(), MEMBER_PAGES)
            .unwrap_err();
        assert_eq!(fields_of(&e), ["member_page_token"]);
    }

    #[tokio::test]
    async fn out_of_range_k_trend_days_and_unknown_skills_are_refused_by_field() {
        let (_dir, engine) = demo_engine(60).await;
        let insights = Insights::new(engine, 5);
        let admin = grant(AccessRole::Admin, &[]);
        for k in [0, 1, 51, u32::MAX] {
            let query = ArchetypesQuery {
                k: Some(k),
                ..archetypes_query()
            };
            let e = insights.archetypes(&admin, query).await.unwrap_err();
            assert_eq!(fields_of(&e), ["k"]);
        }
        let query = PatternsQuery {
            skills: vec![SkillId::parse("no-such-skill").unwrap()],
            trend_days: Some(0),
            ..patterns_query(GroupBy::Team)
        };
        let e = insights.patterns(&admin, query).await.unwrap_err();
        assert_eq!(fields_of(&e), ["skill_ids[0]", "trend_days"]);
    }

    #[tokio::test]
    async fn no_visible_group_or_share_rests_on_fewer_people_than_the_minimum() {
        let (_dir, engine) = demo_engine(300).await;
        let minimum = 14;
        let snapshot = engine.snapshot();
        let insights = Insights::new(Arc::clone(&engine), minimum);
        let analyst = grant(AccessRole::Analyst, &[]);
        let mut hidden_cells = 0;
        for group_by in [
            GroupBy::Department,
            GroupBy::Team,
            GroupBy::Role,
            GroupBy::Archetype,
        ] {
            // A caller asking for a smaller minimum gets the server's.
            let query = PatternsQuery {
                min_group_size: Some(3),
                ..patterns_query(group_by)
            };
            let patterns = insights.patterns(&analyst, query).await.unwrap().value;
            assert_eq!(patterns.min_group_size as usize, minimum);
            let mut hidden: BTreeMap<&str, usize> = BTreeMap::new();
            for group in &patterns.groups {
                match &group.figures {
                    Some(f) => {
                        assert_eq!(group.suppression, Suppression::Visible);
                        assert!(f.size as usize >= minimum, "{group_by:?} {group:?}");
                        // Every skill's figures rest on the minimum, or are hidden.
                        for skill in &f.skills {
                            match skill.suppression {
                                Suppression::Visible => {
                                    assert!(skill.known as usize >= minimum, "{skill:?}");
                                    assert!(skill.mean_level.is_some());
                                }
                                _ => {
                                    assert_eq!((skill.known, skill.proficient), (0, 0));
                                    assert!(skill.mean_level.is_none());
                                    hidden_cells += 1;
                                }
                            }
                        }
                        // Category means are made of shown cells only.
                        for (category, _, known) in &f.categories {
                            let shown: u32 = f
                                .skills
                                .iter()
                                .filter(|s| s.suppression == Suppression::Visible)
                                .filter(|s| {
                                    snapshot.directory.skills()[&s.skill].category == *category
                                })
                                .map(|s| s.known)
                                .sum();
                            assert_eq!(*known, shown);
                        }
                        assert!(f.archetypes.iter().all(|(_, c)| *c as usize >= minimum));
                        assert!(f.other_archetypes == 0 || f.other_archetypes as usize >= minimum);
                    }
                    None => {
                        assert_ne!(group.suppression, Suppression::Visible);
                        *hidden.entry(group.parent.as_str()).or_default() += 1;
                    }
                }
            }
            // Never just one hidden under a parent: it could be recovered from the total.
            assert!(hidden.values().all(|&n| n != 1), "{group_by:?}: {hidden:?}");
            if group_by == GroupBy::Team {
                assert!(
                    !hidden.is_empty(),
                    "teams of 13 people: all under {minimum}"
                );
            }
        }
        // Demo departments of ~30 people with sparse evidence: some skills are hidden.
        assert!(hidden_cells > 0);
        let archetypes = insights
            .archetypes(&analyst, archetypes_query())
            .await
            .unwrap()
            .value;
        for a in &archetypes.archetypes {
            if let Some(f) = &a.figures {
                assert!(f.size as usize >= minimum);
                assert!(f.departments.iter().all(|d| d.count as usize >= minimum));
                assert!(f.other_departments == 0 || f.other_departments as usize >= minimum);
            }
        }
    }
}
