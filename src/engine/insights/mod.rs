//! Organisation-wide insights — archetypes and skill patterns — computed off the request
//! path and cached by data version, plus mentor matching over one snapshot.
//!
//! A cached result is served at once while data has changed since (the response says how
//! stale it is) and its successor is computed in the background; a query waits only when
//! nothing usable exists. After an erasure, cached archetypes and plans are kept without
//! the person (`Insights::scrub`), patterns are recomputed, and results computed on the
//! snapshots before it are discarded.

mod archetypes;
mod mentoring;
mod patterns;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use super::cache::{Cache, Fresh, Want};
use super::compose::{Composition, TeamAsk, compose_team};
use super::{Engine, Snapshot};
use crate::domain::{PersonId, Scope, TeamId};
use crate::error::{Error, Result};
pub use archetypes::{ArchetypeView, KChoice, carry_labels, compute_archetypes, people_in};
pub use mentoring::{
    MentorSkillView, MentorView, MentoringPlan, PlannedPair, find_mentors, mentee_needs,
    plan_mentoring,
};
pub use patterns::{CellSums, GroupBy, GroupData, PatternData, compute_patterns, patterns_at};

/// Archetypes by (scope, k).
type ArchetypeCache = Cache<(Option<TeamId>, KChoice), ArchetypeView>;
/// Patterns by (grouping, scope, trend days).
type PatternCache = Cache<(GroupBy, Option<TeamId>, u32), PatternData>;

/// Mentoring plans by (scope, capacity per mentor, mentors per mentee, same team).
type PlanCache = Cache<(Option<TeamId>, u32, u32, bool), MentoringPlan>;

/// Team compositions by the whole question (see `Engine::composition`).
type CompositionCache = Cache<String, Composition>;

/// The last archetypes computed per question, whose labels the next result keeps.
type LastMap = HashMap<(Option<TeamId>, KChoice), Arc<ArchetypeView>>;
type LastArchetypes = Mutex<LastMap>;

/// Most questions whose last archetypes are kept.
const LAST_ARCHETYPES_LIMIT: usize = 32;

fn lock(last: &LastArchetypes) -> MutexGuard<'_, LastMap> {
    // Only whole-entry inserts and clears happen under the lock: a poisoned one is coherent.
    last.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The insight caches of an engine.
pub(super) struct Insights {
    archetypes: Arc<ArchetypeCache>,
    last_archetypes: LastArchetypes,
    patterns: Arc<PatternCache>,
    plans: Arc<PlanCache>,
    compositions: Arc<CompositionCache>,
}

impl Insights {
    pub(super) fn new(snapshot: &Arc<ArcSwap<Snapshot>>) -> Self {
        let data = |s: &Snapshot| s.data_version;
        // A plan also depends on the mentoring relationships, which move only `version`.
        let any = |s: &Snapshot| s.version;
        Self {
            archetypes: Arc::new(Cache::new(Arc::clone(snapshot), data).named("archetypes")),
            last_archetypes: Mutex::default(),
            patterns: Arc::new(Cache::new(Arc::clone(snapshot), data).named("patterns")),
            plans: Arc::new(Cache::new(Arc::clone(snapshot), any).named("plans")),
            // Compositions read availability and relationships too: any change counts.
            compositions: Arc::new(Cache::new(Arc::clone(snapshot), any).named("compositions")),
        }
    }

    /// Before `person` is erased: the cached patterns without them, computed while
    /// their evidence can still be read (each result's own evidence bound, team, role
    /// and archetype). Results computed after this are dropped by `scrub`.
    pub(super) fn prepare_scrub(
        &self,
        person: &PersonId,
        before: &Snapshot,
        reader: &crate::store::EvidenceReader,
    ) -> PreparedScrub {
        let mut patterns = Vec::new();
        for data in self.patterns.latest() {
            let evidence = match reader.assessments_about_many_before(
                std::slice::from_ref(person),
                data.basis.evidence_batches,
            ) {
                Ok(mut found) => found.pop().map(|(_, a)| a).unwrap_or_default(),
                // Unreadable: the result is dropped and recomputed.
                Err(_) => continue,
            };
            let without = data
                .without(person, before.capability.model(), &evidence)
                .map_or_else(|| Arc::clone(&data), Arc::new);
            patterns.push((data, without));
        }
        PreparedScrub { patterns }
    }

    /// After `person` was erased (`before`: the snapshot that still held them; the
    /// snapshot now counts `erasures`): archetypes, plans and patterns are kept without
    /// them (patterns as `prepared` took them out), served at once as stale while
    /// current ones are computed.
    pub(super) fn scrub(
        &self,
        person: &PersonId,
        before: &Snapshot,
        erasures: u64,
        prepared: &PreparedScrub,
    ) {
        let department = before
            .directory
            .person(person.as_str())
            .map(|p| before.directory.department_of(&p.team).clone());
        let levels = before.capability.row(person).map(|r| r.levels.clone());
        let axis = before.capability.axis();
        let without = |view: &Arc<ArchetypeView>| match (&department, &levels) {
            (Some(department), Some(levels)) => Some(
                view.without(person, department, (axis, levels.view()))
                    .map_or_else(|| Arc::clone(view), Arc::new),
            ),
            // Not clustered (no evidence): the view never held them.
            _ => Some(Arc::clone(view)),
        };
        self.archetypes.scrub(erasures, without);
        let mut last = lock(&self.last_archetypes);
        let kept: LastMap = last
            .drain()
            .filter_map(|(key, view)| Some((key, without(&view)?)))
            .collect();
        *last = kept;
        drop(last);
        self.plans.scrub(erasures, |plan| {
            Some(
                plan.without(person)
                    .map_or_else(|| Arc::clone(plan), Arc::new),
            )
        });
        self.patterns.scrub(erasures, |data| {
            prepared
                .patterns
                .iter()
                .find(|(original, _)| Arc::ptr_eq(original, data))
                .map(|(_, without)| Arc::clone(without))
        });
    }
}

/// Cached results without a person about to be erased (`Insights::prepare_scrub`).
#[derive(Default)]
pub(super) struct PreparedScrub {
    /// (cached patterns, the same without the person).
    patterns: Vec<(Arc<PatternData>, Arc<PatternData>)>,
}

impl Engine {
    /// Archetypes of `scope` (everyone when `None`), from the cache when possible.
    pub async fn archetypes(
        self: &Arc<Self>,
        scope: Option<TeamId>,
        k: KChoice,
        want: Want,
    ) -> Result<Fresh<ArchetypeView>> {
        let key = (scope.clone(), k);
        let engine = Arc::clone(self);
        let last = &self.insights.last_archetypes;
        let previous = lock(last).get(&key).cloned();
        let fresh = self
            .insights
            .archetypes
            .get(key.clone(), want, move |snapshot, cancel| {
                Box::pin(async move {
                    engine
                        .jobs
                        .run(cancel, move |cancel| {
                            let mut view =
                                compute_archetypes(&snapshot, scope.as_ref(), k, cancel)?;
                            // In cluster mode every node must answer the same at the
                            // same data version, whatever earlier results it computed:
                            // labels then come from the data alone.
                            if let Some(previous) = previous.filter(|_| !snapshot.replicated()) {
                                carry_labels(&mut view, &previous);
                            }
                            Ok(view)
                        })
                        .await
                })
            })
            .await?;
        let mut last = lock(last);
        if last.len() >= LAST_ARCHETYPES_LIMIT && !last.contains_key(&key) {
            last.clear();
        }
        last.insert(key, Arc::clone(&fresh.value));
        Ok(fresh)
    }

    /// Skill patterns of `scope` grouped by `group_by`, from the cache when possible.
    pub async fn patterns(
        self: &Arc<Self>,
        group_by: GroupBy,
        scope: Option<TeamId>,
        trend_days: u32,
        want: Want,
    ) -> Result<Fresh<PatternData>> {
        let key = (group_by, scope.clone(), trend_days);
        let engine = Arc::clone(self);
        self.insights
            .patterns
            .get(key, want, move |snapshot, cancel| {
                Box::pin(async move {
                    // Archetype mix is reported for every grouping; a scope where they
                    // cannot be computed (too few people with evidence) has none.
                    let archetypes = match engine
                        .archetypes(scope.clone(), KChoice::AUTO, Want::Current)
                        .await
                    {
                        Ok(a) => Some((a.value, a.computed_version)),
                        Err(Error::FailedPrecondition(_)) => None,
                        Err(e) => return Err(e),
                    };
                    let reader = engine.evidence();
                    engine
                        .jobs
                        .run(cancel, move |cancel| {
                            patterns_at(
                                &snapshot,
                                &reader,
                                scope.as_ref(),
                                group_by,
                                archetypes.as_ref().map(|(a, v)| (a, *v)),
                                trend_days,
                                snapshot.as_of(),
                                cancel,
                            )
                        })
                        .await
                })
            })
            .await
    }

    /// A mentoring plan for `scope`, from the cache when possible.
    pub async fn mentoring_plan(
        self: &Arc<Self>,
        scope: Option<TeamId>,
        capacity: u32,
        max_mentors: u32,
        allow_same_team: bool,
        want: Want,
    ) -> Result<Fresh<MentoringPlan>> {
        let key = (scope.clone(), capacity, max_mentors, allow_same_team);
        let engine = Arc::clone(self);
        self.insights
            .plans
            .get(key, want, move |snapshot, cancel| {
                Box::pin(async move {
                    engine
                        .jobs
                        .run(cancel, move |cancel| {
                            let people = people_in(&snapshot, scope.as_ref())?;
                            plan_mentoring(
                                &snapshot,
                                &people,
                                capacity,
                                max_mentors,
                                allow_same_team,
                                cancel,
                            )
                        })
                        .await
                })
            })
            .await
    }

    /// The team composition `ask` asks of the people in `scope`, computed once per
    /// version of the data: `key` must name everything the answer depends on (the
    /// question, the scope and the archetypes used). A result from before an erasure is
    /// never served: it is computed again.
    pub async fn composition(
        self: &Arc<Self>,
        key: String,
        ask: TeamAsk,
        scope: Scope,
    ) -> Result<Fresh<Composition>> {
        let engine = Arc::clone(self);
        self.insights
            .compositions
            .get(key, Want::Current, move |snapshot, cancel| {
                Box::pin(async move {
                    engine
                        .jobs
                        .run(cancel, move |_| compose_team(&snapshot, &ask, &scope))
                        .await
                })
            })
            .await
    }
}
