//! `capsight.v1.OrgInsightsService`: requests to `service::insights` queries and its
//! answers to response messages. The rules (scope, limits, suppression) are the
//! service's.

use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{
    category_from_pb, category_to_pb, required_id, timestamp_to_pb, want_from_pb,
};
use super::pb;
use crate::domain::{FieldViolation, SkillId, TeamId};
use crate::error::{Error, Result};
use crate::service::Want;
use crate::service::insights::{
    ArchetypeEntry, Archetypes, ArchetypesQuery, Freshness, GroupPattern, Insights, MEMBER_PAGES,
    Patterns, PatternsQuery,
};
use crate::service::insights::{GroupBy, Suppression};
use crate::service::page::{self, PageRequest};

/// The insights service.
pub struct OrgInsightsApi {
    service: Insights,
}

impl OrgInsightsApi {
    /// The gRPC face of `service`.
    pub fn new(service: Insights) -> Self {
        Self { service }
    }
}

/// The team named by an optional `scope_team_id` (empty: the whole organisation).
pub(super) fn scope_team(raw: &str) -> Result<Option<TeamId>> {
    (!raw.is_empty())
        .then(|| required_id(raw, "scope_team_id", TeamId::parse))
        .transpose()
}

pub(super) fn want(raw: i32) -> Result<Want> {
    want_from_pb(raw, Want::Latest).map_err(|v| Error::InvalidArgument(vec![v]))
}

impl From<Freshness> for pb::Freshness {
    fn from(f: Freshness) -> Self {
        Self {
            computed_version: f.computed_version,
            current_version: f.current_version,
            stale: f.stale(),
            computed_at: Some(timestamp_to_pb(f.computed_at)),
            refreshing: f.refreshing,
            archetypes_version: f.archetypes_version,
        }
    }
}

fn suppression_to_pb(s: Suppression) -> i32 {
    match s {
        Suppression::Visible => pb::Suppression::None,
        Suppression::TooSmall => pb::Suppression::TooSmall,
        Suppression::Complementary => pb::Suppression::Complementary,
    }
    .into()
}

fn map_point([x, y]: [f32; 2]) -> Option<pb::MapPoint> {
    Some(pb::MapPoint {
        x: f64::from(x),
        y: f64::from(y),
    })
}

impl TryFrom<&pb::GetSkillArchetypesRequest> for ArchetypesQuery {
    type Error = Error;

    fn try_from(r: &pb::GetSkillArchetypesRequest) -> Result<Self> {
        let context = page::context(&[
            "GetSkillArchetypes",
            &r.scope_team_id,
            &format!("{:?}", r.k),
            &format!("{:?}", r.max_k),
        ]);
        Ok(Self {
            scope: scope_team(&r.scope_team_id)?,
            k: r.k,
            max_k: r.max_k,
            include_members: r.include_members,
            want: want(r.result_policy)?,
            members: PageRequest::parse_sized(
                r.member_page_size,
                &r.member_page_token,
                context,
                MEMBER_PAGES,
            )?,
        })
    }
}

impl From<ArchetypeEntry> for pb::Archetype {
    fn from(entry: ArchetypeEntry) -> Self {
        let mut out = Self {
            index: entry.index,
            suppression: suppression_to_pb(entry.suppression),
            ..Default::default()
        };
        let Some(a) = entry.figures else {
            out.label = "(suppressed)".into();
            return out;
        };
        out.label = a.label;
        out.size = a.size;
        out.spread = f64::from(a.spread);
        out.centroid = a.centroid.into_iter().map(f64::from).collect();
        out.defining_skills = a
            .defining
            .into_iter()
            .map(|c| pb::SkillContrast {
                skill_id: c.skill.to_string(),
                skill_name: c.name,
                level: f64::from(c.level),
                versus_mean: f64::from(c.versus_mean),
            })
            .collect();
        out.departments = a
            .departments
            .into_iter()
            .map(|d| pb::DepartmentShare {
                name: d.name,
                team_id: d.team.to_string(),
                count: d.count,
            })
            .collect();
        out.other_departments = a.other_departments;
        out.position = map_point(a.position);
        out
    }
}

impl From<Archetypes> for pb::GetSkillArchetypesResponse {
    fn from(a: Archetypes) -> Self {
        Self {
            skill_ids: a.skills.iter().map(ToString::to_string).collect(),
            archetypes: a.archetypes.into_iter().map(Into::into).collect(),
            silhouette: f64::from(a.silhouette),
            k_scores: a
                .k_scores
                .into_iter()
                .map(|(k, silhouette)| pb::KScore {
                    k,
                    silhouette: f64::from(silhouette),
                })
                .collect(),
            k_range_min: a.k_range.0,
            k_range_max: a.k_range.1,
            k_at_range_edge: a.k_at_edge,
            people: a.people,
            known_share: f64::from(a.known_share),
            unknown_level: f64::from(a.unknown_level),
            min_group_size: a.min_group_size,
            freshness: Some(a.freshness.into()),
            members: a
                .members
                .into_iter()
                .map(|m| pb::ArchetypeMember {
                    person_id: m.person,
                    archetype: m.archetype,
                    distance: f64::from(m.distance),
                    position: map_point(m.position),
                })
                .collect(),
            map_explained: a.map_explained.into_iter().map(f64::from).collect(),
            next_member_page_token: a.next_member_page_token,
        }
    }
}

impl TryFrom<&pb::GetOrgSkillPatternsRequest> for PatternsQuery {
    type Error = Error;

    fn try_from(r: &pb::GetOrgSkillPatternsRequest) -> Result<Self> {
        let mut violations = Vec::new();
        let group_by = match pb::GroupBy::try_from(r.group_by) {
            Ok(pb::GroupBy::Department) => Some(GroupBy::Department),
            Ok(pb::GroupBy::Team) => Some(GroupBy::Team),
            Ok(pb::GroupBy::Role) => Some(GroupBy::Role),
            Ok(pb::GroupBy::Archetype) => Some(GroupBy::Archetype),
            Ok(pb::GroupBy::Unspecified) | Err(_) => {
                violations.push(FieldViolation::new(
                    "group_by",
                    "must be DEPARTMENT, TEAM, ROLE or ARCHETYPE",
                ));
                None
            }
        };
        let mut skills = Vec::with_capacity(r.skill_ids.len());
        for (i, raw) in r.skill_ids.iter().enumerate() {
            match SkillId::parse(raw) {
                Ok(id) => skills.push(id),
                Err(v) => violations.push(v.under(&format!("skill_ids[{i}]"))),
            }
        }
        let mut categories = Vec::new();
        for (i, &raw) in r.categories.iter().enumerate() {
            match category_from_pb(raw) {
                Ok(c) => categories.push(c),
                Err(v) => violations.push(v.under(&format!("categories[{i}]"))),
            }
        }
        let scope = scope_team(&r.scope_team_id);
        let want = want(r.result_policy);
        let mut filters: Vec<String> = vec![
            "GetOrgSkillPatterns".into(),
            r.group_by.to_string(),
            r.scope_team_id.clone(),
            format!("{:?}", r.min_group_size),
            format!("{:?}", r.trend_days),
        ];
        filters.extend(r.skill_ids.iter().cloned());
        filters.push(format!("{:?}", r.categories));
        let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
        let page = match PageRequest::parse(r.page_size, &r.page_token, page::context(&filters)) {
            Ok(page) => Some(page),
            Err(Error::InvalidArgument(v)) => {
                violations.extend(v);
                None
            }
            Err(e) => return Err(e),
        };
        match (group_by, page, violations.is_empty()) {
            (Some(group_by), Some(page), true) => Ok(Self {
                scope: scope?,
                group_by,
                skills,
                categories,
                trend_days: r.trend_days,
                min_group_size: r.min_group_size,
                want: want?,
                page,
            }),
            _ => Err(Error::InvalidArgument(violations)),
        }
    }
}

impl From<GroupPattern> for pb::GroupPattern {
    fn from(g: GroupPattern) -> Self {
        let mut out = Self {
            group_id: g.id,
            name: g.name,
            parent_id: g.parent,
            suppression: suppression_to_pb(g.suppression),
            ..Default::default()
        };
        let Some(f) = g.figures else {
            return out;
        };
        out.size = f.size;
        out.skills = f
            .skills
            .into_iter()
            .map(|s| pb::SkillPattern {
                skill_id: s.skill.to_string(),
                mean_level: s.mean_level,
                known: s.known,
                proficient: s.proficient,
                suppression: suppression_to_pb(s.suppression),
            })
            .collect();
        out.categories = f
            .categories
            .into_iter()
            .map(|(category, mean_level, known)| pb::CategoryLevel {
                category: category_to_pb(category).into(),
                mean_level,
                known,
            })
            .collect();
        out.archetypes = f
            .archetypes
            .into_iter()
            .map(|(label, count)| pb::ArchetypeShare { label, count })
            .collect();
        out.other_archetypes = f.other_archetypes;
        out.calibration = f.calibration;
        out.calibration_cells = f.calibration_cells;
        out.trend = f.trend;
        out.trend_cells = f.trend_cells;
        out
    }
}

impl From<Patterns> for pb::GetOrgSkillPatternsResponse {
    fn from(p: Patterns) -> Self {
        Self {
            groups: p.groups.into_iter().map(Into::into).collect(),
            total: Some(p.total.into()),
            min_group_size: p.min_group_size,
            trend_days: p.trend_days,
            freshness: Some(p.freshness.into()),
            next_page_token: p.next_page_token,
        }
    }
}

#[tonic::async_trait]
impl pb::org_insights_service_server::OrgInsightsService for OrgInsightsApi {
    #[tracing::instrument(skip_all)]
    async fn get_skill_archetypes(
        &self,
        request: Request<pb::GetSkillArchetypesRequest>,
    ) -> Result<Response<pb::GetSkillArchetypesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match ArchetypesQuery::try_from(request.get_ref()) {
            Ok(query) => self.service.archetypes(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn get_org_skill_patterns(
        &self,
        request: Request<pb::GetOrgSkillPatternsRequest>,
    ) -> Result<Response<pb::GetOrgSkillPatternsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match PatternsQuery::try_from(request.get_ref()) {
            Ok(query) => self.service.patterns(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }
}
