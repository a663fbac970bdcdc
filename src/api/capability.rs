//! `capsight.v1.CapabilityService`: requests to `service::capability` questions and its
//! answers to response messages; GetTeamCapability's cached, pre-encoded answers are in
//! `team_capability`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{required_id, source_to_pb, timestamp_from_pb_any, timestamp_to_pb};
use super::pb;
use super::team_capability::{TeamAnswer, TeamCache, TeamQuery};
use crate::domain::{PersonId, RoleId, SkillId, TeamId, Timestamp};
use crate::engine::Engine;
use crate::engine::queries::RiskKind;
use crate::error::{Error, Result};
use crate::service::capability::{
    Capability, Experts, ExpertsQuery, Gaps, GapsQuery, Profile, Trend, TrendQuery,
};
use crate::service::culture::Culture;

/// How long a watcher waits for more changes before sending, so a burst of writes
/// yields one update.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// The capability service.
pub struct CapabilityApi {
    service: Arc<Capability>,
    shutdown: watch::Receiver<bool>,
    cache: Arc<TeamCache>,
}

impl CapabilityApi {
    /// A service reading `engine`'s snapshots, showing analysts trends of `culture`'s
    /// published snapshot with no figure of fewer than `min_group_size` people; watches
    /// end when `shutdown` turns true.
    pub fn new(
        engine: Arc<Engine>,
        min_group_size: usize,
        culture: Arc<Culture>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let service = Arc::new(Capability::new(engine).for_analysts(min_group_size, culture));
        let cache = Arc::new(TeamCache::default());
        // Drop cached views as soon as anything changes, so that no result outlives the
        // data it came from (an erased person must not linger in a cached view).
        let mut changes = service.changes();
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                match weak.upgrade() {
                    Some(cache) => cache.clear(),
                    None => break,
                }
            }
        });
        Self {
            service,
            shutdown,
            cache,
        }
    }

    /// GetTeamCapability's answer and the people it shows. Not instrumented: the server's
    /// per-request `rpc` span already names it, and a second span costs the dashboard
    /// read ~1.5%.
    pub(super) async fn team_capability(
        &self,
        request: &Request<pb::GetTeamCapabilityRequest>,
    ) -> Result<Arc<TeamAnswer>, Status> {
        let caller = Caller::of(request)?;
        let r = request.get_ref();
        let query = TeamQuery::parse(
            &r.team_id,
            r.include_subteams,
            &r.skill_ids,
            r.layout,
            (r.member_page_size, &r.member_page_token),
        )?;
        let answer = match r.as_of {
            None => query.answer(&self.service, &caller.grant, &self.cache),
            Some(raw) => query.answer_as_of(&self.service, &caller.grant, raw).await,
        };
        let subjects = answer.as_ref().map(|a| a.subjects()).unwrap_or_default();
        caller.answer(answer.map_err(Status::from), subjects)
    }
}

impl From<Profile> for pb::GetPersonProfileResponse {
    fn from(p: Profile) -> Self {
        let skills = p
            .view
            .skills
            .into_iter()
            .map(|skill| pb::SkillProficiency {
                skill_id: skill.skill.to_string(),
                level: skill.proficiency.map(|p| f64::from(p.level)),
                confidence: skill.proficiency.map_or(0.0, |p| f64::from(p.confidence)),
                last_assessed: skill.proficiency.map(|p| timestamp_to_pb(p.last_assessed)),
                self_gap: skill.self_gap.map(f64::from),
                evidence: skill
                    .evidence
                    .into_iter()
                    .map(|(a, weight)| pb::EvidenceItem {
                        assessment_id: a.id.to_string(),
                        source: source_to_pb(a.source).into(),
                        score: f64::from(a.score.value()),
                        assessed_at: Some(timestamp_to_pb(a.assessed_at)),
                        assessor_id: a.assessor.map(|p| p.to_string()).unwrap_or_default(),
                        weight,
                    })
                    .collect(),
            })
            .collect();
        Self {
            person: Some((&p.person).into()),
            skills,
            calibration: p.view.calibration.map(f64::from),
        }
    }
}

impl TryFrom<&pb::GetPersonGapsRequest> for GapsQuery {
    type Error = Error;

    fn try_from(r: &pb::GetPersonGapsRequest) -> Result<Self> {
        Ok(Self {
            person: required_id(&r.person_id, "person_id", PersonId::parse)?,
            role: (!r.role_id.is_empty())
                .then(|| required_id(&r.role_id, "role_id", RoleId::parse))
                .transpose()?,
            target_role: r.target_role,
        })
    }
}

impl From<Gaps> for pb::GetPersonGapsResponse {
    fn from(g: Gaps) -> Self {
        Self {
            role_id: g.role.to_string(),
            gaps: g
                .gaps
                .into_iter()
                .map(|(skill, g)| pb::SkillGap {
                    skill_id: skill.to_string(),
                    required_level: f64::from(g.required),
                    level: g.level.map(f64::from),
                    gap: f64::from(g.gap),
                    weight: f64::from(g.weight),
                    priority: f64::from(g.priority),
                    confidence: f64::from(g.confidence),
                })
                .collect(),
            readiness: f64::from(g.readiness),
        }
    }
}

impl TryFrom<pb::FindExpertsRequest> for ExpertsQuery {
    type Error = Error;

    fn try_from(r: pb::FindExpertsRequest) -> Result<Self> {
        // Bounded before parsing; 21 are enough for the service to refuse more than 20.
        let asked = &r.requirements[..r.requirements.len().min(21)];
        let requirements = asked
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let field = format!("requirements[{i}].skill_id");
                Ok((
                    required_id(&q.skill_id, &field, SkillId::parse)?,
                    q.min_level,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            requirements,
            min_confidence: r.min_confidence,
            scope: (!r.scope_team_id.is_empty())
                .then(|| required_id(&r.scope_team_id, "scope_team_id", TeamId::parse))
                .transpose()?,
            page_size: r.page_size,
            page_token: r.page_token,
        })
    }
}

impl From<Experts> for pb::FindExpertsResponse {
    fn from(e: Experts) -> Self {
        Self {
            experts: e
                .experts
                .into_iter()
                .map(|(person, r)| pb::Expert {
                    person_id: person.id.to_string(),
                    display_name: person.display_name.as_str().to_owned(),
                    team_id: person.team.to_string(),
                    levels: r.levels.iter().map(|l| f64::from(*l)).collect(),
                    min_confidence: f64::from(r.min_confidence),
                    score: f64::from(r.score),
                })
                .collect(),
            total: u32::try_from(e.total).unwrap_or(u32::MAX),
            next_page_token: e.next_page_token,
        }
    }
}

impl TryFrom<pb::GetCapabilityTrendRequest> for TrendQuery {
    type Error = Error;

    fn try_from(r: pb::GetCapabilityTrendRequest) -> Result<Self> {
        let team = required_id(&r.team_id, "team_id", TeamId::parse)?;
        // Bounded before parsing; 51 are enough for the service to refuse more than 50.
        let asked = &r.skill_ids[..r.skill_ids.len().min(51)];
        let skills = asked
            .iter()
            .enumerate()
            .map(|(i, s)| required_id(s, &format!("skill_ids[{i}]"), SkillId::parse))
            .collect::<Result<Vec<_>>>()?;
        let at = |raw: Option<prost_types::Timestamp>, field: &str| -> Result<Timestamp> {
            let raw = raw.ok_or_else(|| {
                Error::InvalidArgument(vec![crate::domain::FieldViolation::new(
                    field,
                    "is required",
                )])
            })?;
            timestamp_from_pb_any(raw).map_err(|v| Error::InvalidArgument(vec![v.under(field)]))
        };
        Ok(Self {
            team,
            skills,
            from: at(r.from, "from")?,
            to: at(r.to, "to")?,
            interval_days: r.interval_days,
        })
    }
}

impl From<Trend> for pb::GetCapabilityTrendResponse {
    fn from(t: Trend) -> Self {
        Self {
            points: t
                .points
                .into_iter()
                .map(|(skill, p)| pb::TrendPoint {
                    at: Some(timestamp_to_pb(p.at)),
                    skill_id: skill.to_string(),
                    mean_level: p.mean.map(f64::from),
                    known_count: p.known,
                    proficient_count: p.proficient,
                })
                .collect(),
            improvements: t
                .improvements
                .into_iter()
                .map(|i| pb::Improvement {
                    person_id: i.person.to_string(),
                    skill_id: i.skill.to_string(),
                    from_level: f64::from(i.from),
                    to_level: f64::from(i.to),
                    delta: f64::from(i.to - i.from),
                })
                .collect(),
        }
    }
}

#[tonic::async_trait]
impl pb::capability_service_server::CapabilityService for CapabilityApi {
    /// Served by `CapabilityRoutes` from the encoded answer; this typed form is the
    /// same answer for in-process callers of the trait.
    async fn get_team_capability(
        &self,
        request: Request<pb::GetTeamCapabilityRequest>,
    ) -> Result<Response<pb::GetTeamCapabilityResponse>, Status> {
        let answer = self.team_capability(&request).await?;
        Ok(Response::new(pb::GetTeamCapabilityResponse {
            capability: Some(answer.view.clone()),
        }))
    }

    type WatchTeamCapabilityStream =
        ReceiverStream<Result<pb::WatchTeamCapabilityResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn watch_team_capability(
        &self,
        request: Request<pb::WatchTeamCapabilityRequest>,
    ) -> Result<Response<Self::WatchTeamCapabilityStream>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.get_ref();
        let query = TeamQuery::parse(
            &r.team_id,
            r.include_subteams,
            &r.skill_ids,
            r.layout,
            (r.member_page_size, &r.member_page_token),
        )?;
        // Changes are judged on the CELLS layout (NaN, the DENSE layout's unknown level,
        // never equals itself); each update is sent in the layout asked for.
        let first = query
            .cells()
            .answer(&self.service, &caller.grant, &self.cache)?;
        let answered = caller.clone();
        let subjects = first.subjects();
        let first = first.view.clone();
        let cache = Arc::clone(&self.cache);

        let (updates, stream) = mpsc::channel(4);
        let service = Arc::clone(&self.service);
        let mut changes = service.changes();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut last = first.clone();
            if updates
                .send(Ok(pb::WatchTeamCapabilityResponse {
                    capability: Some(query.lay_out(first).view.clone()),
                }))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { break },
                    _ = shutdown.wait_for(|stop| *stop) => break,
                    () = updates.closed() => break,
                }
                tokio::time::sleep(WATCH_DEBOUNCE).await;
                changes.mark_unchanged();
                if !service.token_active(&caller.token) {
                    let _ = updates
                        .send(Err(Status::unauthenticated("token revoked or expired")))
                        .await;
                    break;
                }
                let current = match query.cells().answer(&service, &caller.grant, &cache) {
                    Ok(current) => current.view.clone(),
                    Err(e) => {
                        let _ = updates.send(Err(e.into())).await;
                        break;
                    }
                };
                // Only a change in what the team looks like is news; other teams' writes
                // move the data version but not this view.
                let same = pb::TeamCapability {
                    data_version: last.data_version,
                    ..current.clone()
                } == last;
                if same {
                    continue;
                }
                last = current.clone();
                let update = pb::WatchTeamCapabilityResponse {
                    capability: Some(query.lay_out(current).view.clone()),
                };
                if updates.send(Ok(update)).await.is_err() {
                    break;
                }
            }
        });
        answered.answer(Ok(Response::new(ReceiverStream::new(stream))), subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn get_person_profile(
        &self,
        request: Request<pb::GetPersonProfileRequest>,
    ) -> Result<Response<pb::GetPersonProfileResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let (result, subjects) = self.service.profile(&caller.grant, &id);
        caller.answer(
            result
                .map(|p| Response::new(p.into()))
                .map_err(Status::from),
            subjects,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn get_person_gaps(
        &self,
        request: Request<pb::GetPersonGapsRequest>,
    ) -> Result<Response<pb::GetPersonGapsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let query = GapsQuery::try_from(request.get_ref())?;
        let (result, subjects) = self.service.gaps(&caller.grant, &query);
        caller.answer(
            result
                .map(|g| Response::new(g.into()))
                .map_err(Status::from),
            subjects,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn find_experts(
        &self,
        request: Request<pb::FindExpertsRequest>,
    ) -> Result<Response<pb::FindExpertsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = ExpertsQuery::try_from(request.into_inner())
            .and_then(|query| self.service.experts(&caller.grant, &query));
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn get_skill_risks(
        &self,
        request: Request<pb::GetSkillRisksRequest>,
    ) -> Result<Response<pb::GetSkillRisksResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = required_id(&request.get_ref().team_id, "team_id", TeamId::parse)
            .and_then(|team| self.service.risks(&caller.grant, &team))
            .map(|answer| {
                answer.map(|risks| pb::GetSkillRisksResponse {
                    risks: risks
                        .into_iter()
                        .map(|r| pb::SkillRisk {
                            skill_id: r.skill.to_string(),
                            kind: match r.kind {
                                RiskKind::SinglePoint => pb::RiskKind::SinglePoint,
                                RiskKind::Missing => pb::RiskKind::Missing,
                            }
                            .into(),
                            required_level: f64::from(r.required),
                            proficient_count: r.proficient,
                            holder_id: r.holder.map(|h| h.to_string()).unwrap_or_default(),
                            people_requiring: r.requiring,
                        })
                        .collect(),
                })
            });
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn get_capability_trend(
        &self,
        request: Request<pb::GetCapabilityTrendRequest>,
    ) -> Result<Response<pb::GetCapabilityTrendResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match TrendQuery::try_from(request.into_inner()) {
            Ok(query) => self.service.trend(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }
}
