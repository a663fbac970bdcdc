//! `capsight.v1.OrgInsightsService`: skill archetypes and organisation-wide skill
//! patterns, every aggregate under the minimum group size.

use std::sync::Arc;

use ndarray::{ArrayView1, Axis};
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{
    category_from_pb, category_to_pb, known_skill_ids, required_id, timestamp_to_pb, want_from_pb,
};
use super::pb;
use crate::analytics::privacy::{MIN_GROUP_SIZE_FLOOR, Suppression, suppress};
use crate::domain::{AccessRole, Directory, FieldViolation, TeamId};
use crate::engine::Engine;
use crate::engine::insights::{CellSums, GroupBy, GroupData, PatternData};
use crate::engine::{Fresh, Want};
use crate::error::{Error, Result};

/// Default trend period of skill patterns.
const DEFAULT_TREND_DAYS: u32 = 180;
/// Largest k a caller may ask for.
const MAX_K: u32 = 50;

/// The insights service.
pub struct OrgInsightsApi {
    engine: Arc<Engine>,
    min_group_size: usize,
}

impl OrgInsightsApi {
    /// A service over `engine` that hides groups under `min_group_size` (at least 3).
    pub fn new(engine: Arc<Engine>, min_group_size: usize) -> Self {
        Self {
            engine,
            min_group_size: min_group_size.max(MIN_GROUP_SIZE_FLOOR),
        }
    }
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
}

/// The scope of an aggregate question named by `raw` (empty: the whole organisation),
/// if the caller may ask it (`service::scope::admit_aggregate`).
pub(super) fn aggregate_scope(
    caller: &Caller,
    directory: &Directory,
    raw: &str,
) -> Result<Option<TeamId>> {
    let team = (!raw.is_empty())
        .then(|| required_id(raw, "scope_team_id", TeamId::parse))
        .transpose()?;
    crate::service::scope::admit_aggregate(&caller.grant, directory, team.as_ref())
}

pub(super) fn freshness<T>(fresh: &Fresh<T>) -> pb::Freshness {
    pb::Freshness {
        computed_version: fresh.computed_version,
        current_version: fresh.current_version,
        stale: fresh.computed_version != fresh.current_version,
        computed_at: Some(timestamp_to_pb(fresh.computed_at)),
        refreshing: fresh.refreshing,
    }
}

fn suppression_to_pb(s: Suppression) -> pb::Suppression {
    match s {
        Suppression::Visible => pb::Suppression::None,
        Suppression::TooSmall => pb::Suppression::TooSmall,
        Suppression::Complementary => pb::Suppression::Complementary,
    }
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

impl OrgInsightsApi {
    fn minimum(&self, requested: Option<u32>) -> usize {
        requested.map_or(self.min_group_size, |m| {
            (m as usize).max(self.min_group_size)
        })
    }

    async fn archetypes(
        &self,
        caller: &Caller,
        r: &pb::GetSkillArchetypesRequest,
    ) -> Result<(pb::GetSkillArchetypesResponse, Vec<String>)> {
        let snapshot = self.engine.snapshot();
        let scope = aggregate_scope(caller, &snapshot.directory, &r.scope_team_id)?;
        if r.include_members && caller.grant.role == AccessRole::Analyst {
            return Err(Error::PermissionDenied);
        }
        let k = match r.k {
            Some(k) if !(2..=MAX_K).contains(&k) => {
                return Err(invalid("k", "must be between 2 and 50"));
            }
            k => k.map(|k| k as usize),
        };
        let want = want_from_pb(r.result_policy, Want::Latest)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let fresh = self.engine.archetypes(scope, k, want).await?;
        let view = &fresh.value;
        let minimum = self.min_group_size;
        let sizes: Vec<(usize, usize)> = view.set.archetypes.iter().map(|a| (0, a.size)).collect();
        let decisions = suppress(&sizes, minimum);
        let team_name = |t: &TeamId| {
            snapshot
                .directory
                .teams()
                .get(t)
                .map_or_else(|| t.to_string(), |t| t.name.as_str().to_owned())
        };
        let archetypes =
            view.set
                .archetypes
                .iter()
                .zip(&decisions)
                .zip(&view.departments)
                .enumerate()
                .map(|(index, ((a, &decision), departments))| {
                    let mut out = pb::Archetype {
                        index: index as u32,
                        suppression: suppression_to_pb(decision).into(),
                        ..Default::default()
                    };
                    if decision != Suppression::Visible {
                        out.label = "(suppressed)".into();
                        return out;
                    }
                    let (shown, hidden) = visible_counts(departments, minimum);
                    out.label = a.label.clone();
                    out.size = a.size as u32;
                    out.spread = f64::from(a.spread);
                    out.centroid = a.centroid.iter().map(|&v| f64::from(v)).collect();
                    out.defining_skills =
                        a.defining
                            .iter()
                            .map(|c| {
                                let id = &view.skills[c.column];
                                pb::SkillContrast {
                                    skill_id: id.to_string(),
                                    skill_name: snapshot.directory.skills().get(id).map_or_else(
                                        || id.to_string(),
                                        |s| s.name.as_str().to_owned(),
                                    ),
                                    level: f64::from(c.level),
                                    versus_mean: f64::from(c.versus_mean),
                                }
                            })
                            .collect();
                    out.departments = shown
                        .into_iter()
                        .map(|(team, count)| pb::DepartmentShare {
                            name: team_name(&team),
                            team_id: team.to_string(),
                            count,
                        })
                        .collect();
                    out.other_departments = hidden;
                    let centre = view
                        .set
                        .projection
                        .project(a.centroid.view().insert_axis(Axis(0)));
                    out.position = Some(map_point(centre.row(0)));
                    out
                })
                .collect();
        // Members only of people who still exist (the cached result may predate changes).
        let members: Vec<pb::ArchetypeMember> = if r.include_members {
            view.people
                .iter()
                .zip(&view.set.assignments)
                .zip(&view.set.distances)
                .zip(view.set.points.outer_iter())
                .filter(|(((p, _), _), _)| snapshot.directory.person(p.as_str()).is_some())
                .map(|(((p, &a), &d), point)| pb::ArchetypeMember {
                    person_id: p.to_string(),
                    archetype: a as u32,
                    distance: f64::from(d),
                    position: Some(map_point(point)),
                })
                .collect()
        } else {
            Vec::new()
        };
        let subjects = members.iter().map(|m| m.person_id.clone()).collect();
        Ok((
            pb::GetSkillArchetypesResponse {
                skill_ids: view.skills.iter().map(ToString::to_string).collect(),
                archetypes,
                silhouette: f64::from(view.set.silhouette),
                k_scores: view
                    .set
                    .k_scores
                    .iter()
                    .map(|&(k, s)| pb::KScore {
                        k: k as u32,
                        silhouette: f64::from(s),
                    })
                    .collect(),
                people: view.people.len() as u32,
                known_share: f64::from(view.set.known_share),
                unknown_level: f64::from(view.unknown_level),
                min_group_size: minimum as u32,
                freshness: Some(freshness(&fresh)),
                members,
                map_explained: view
                    .set
                    .projection
                    .explained
                    .iter()
                    .map(|&e| f64::from(e))
                    .collect(),
            },
            subjects,
        ))
    }

    async fn patterns(
        &self,
        caller: &Caller,
        r: &pb::GetOrgSkillPatternsRequest,
    ) -> Result<pb::GetOrgSkillPatternsResponse> {
        let snapshot = self.engine.snapshot();
        let scope = aggregate_scope(caller, &snapshot.directory, &r.scope_team_id)?;
        let group_by = match pb::GroupBy::try_from(r.group_by) {
            Ok(pb::GroupBy::Department) => GroupBy::Department,
            Ok(pb::GroupBy::Team) => GroupBy::Team,
            Ok(pb::GroupBy::Role) => GroupBy::Role,
            Ok(pb::GroupBy::Archetype) => GroupBy::Archetype,
            Ok(pb::GroupBy::Unspecified) | Err(_) => {
                return Err(invalid(
                    "group_by",
                    "must be DEPARTMENT, TEAM, ROLE or ARCHETYPE",
                ));
            }
        };
        let mut violations = Vec::new();
        let skills = known_skill_ids(&r.skill_ids, &snapshot.directory, &mut violations);
        let mut categories = Vec::new();
        for (i, &raw) in r.categories.iter().enumerate() {
            match category_from_pb(raw) {
                Ok(c) => categories.push(c),
                Err(v) => violations.push(v.under(&format!("categories[{i}]"))),
            }
        }
        let trend_days = r.trend_days.unwrap_or(DEFAULT_TREND_DAYS);
        if !(1..=3650).contains(&trend_days) {
            violations.push(FieldViolation::new(
                "trend_days",
                "must be between 1 and 3650",
            ));
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let minimum = self.minimum(r.min_group_size);
        let want = want_from_pb(r.result_policy, Want::Latest)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let fresh = self
            .engine
            .patterns(group_by, scope, trend_days, want)
            .await?;
        let data = &fresh.value;
        let selected: Vec<usize> = (0..data.skills.len())
            .filter(|&c| {
                let (id, category) = &data.skills[c];
                (skills.is_empty() && categories.is_empty())
                    || skills.contains(id)
                    || categories.contains(category)
            })
            .collect();
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
        let groups = data
            .groups
            .iter()
            .zip(decisions)
            .map(|(g, d)| group_to_pb(g, d, data, &selected, minimum))
            .collect();
        let total_decision = if data.total.size >= minimum {
            Suppression::Visible
        } else {
            Suppression::TooSmall
        };
        Ok(pb::GetOrgSkillPatternsResponse {
            groups,
            total: Some(group_to_pb(
                &data.total,
                total_decision,
                data,
                &selected,
                minimum,
            )),
            min_group_size: minimum as u32,
            trend_days,
            freshness: Some(freshness(&fresh)),
        })
    }
}

fn group_to_pb(
    g: &GroupData,
    decision: Suppression,
    data: &PatternData,
    selected: &[usize],
    minimum: usize,
) -> pb::GroupPattern {
    let mut out = pb::GroupPattern {
        group_id: g.id.clone(),
        name: g.name.clone(),
        parent_id: g.parent.clone(),
        suppression: suppression_to_pb(decision).into(),
        ..Default::default()
    };
    if decision != Suppression::Visible {
        return out;
    }
    out.size = g.size as u32;
    let mut sum = CellSums::default();
    let mut by_category: std::collections::BTreeMap<i32, (f64, u32)> = Default::default();
    for &c in selected {
        let cell = &g.cells[c];
        let (id, category) = &data.skills[c];
        out.skills.push(pb::SkillPattern {
            skill_id: id.to_string(),
            mean_level: (cell.known > 0).then(|| cell.level / f64::from(cell.known)),
            known: cell.known,
            proficient: cell.proficient,
        });
        let entry = by_category
            .entry(category_to_pb(*category).into())
            .or_default();
        entry.0 += cell.level;
        entry.1 += cell.known;
        sum.self_gap += cell.self_gap;
        sum.self_gap_cells += cell.self_gap_cells;
        sum.trend += cell.trend;
        sum.trend_cells += cell.trend_cells;
    }
    out.categories = by_category
        .into_iter()
        .filter(|(_, (_, known))| *known > 0)
        .map(|(category, (level, known))| pb::CategoryLevel {
            category,
            mean_level: level / f64::from(known),
            known,
        })
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
        .map(|(a, count)| pb::ArchetypeShare {
            label: data.archetype_labels[a].clone(),
            count,
        })
        .collect();
    out.other_archetypes = hidden;
    out.calibration =
        (sum.self_gap_cells > 0).then(|| sum.self_gap / f64::from(sum.self_gap_cells));
    out.calibration_cells = sum.self_gap_cells;
    out.trend = (sum.trend_cells > 0).then(|| sum.trend / f64::from(sum.trend_cells));
    out.trend_cells = sum.trend_cells;
    out
}

#[tonic::async_trait]
impl pb::org_insights_service_server::OrgInsightsService for OrgInsightsApi {
    #[tracing::instrument(skip_all)]
    async fn get_skill_archetypes(
        &self,
        request: Request<pb::GetSkillArchetypesRequest>,
    ) -> Result<Response<pb::GetSkillArchetypesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.archetypes(&caller, request.get_ref()).await;
        caller.respond(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn get_org_skill_patterns(
        &self,
        request: Request<pb::GetOrgSkillPatternsRequest>,
    ) -> Result<Response<pb::GetOrgSkillPatternsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let result = self
            .patterns(&caller, request.get_ref())
            .await
            .map(Response::new)
            .map_err(Status::from);
        caller.answer(result, Vec::new())
    }
}

fn map_point(point: ArrayView1<f32>) -> pb::MapPoint {
    pb::MapPoint {
        x: f64::from(point[0]),
        y: point.get(1).map_or(0.0, |&y| f64::from(y)),
    }
}
