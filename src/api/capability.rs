//! `capsight.v1.CapabilityService`: requests to `service::capability` questions and its
//! answers to response messages; GetTeamCapability's cached, pre-encoded answers are in
//! `team_capability`.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

mod convert;
mod live;

use super::auth::Caller;
use super::convert::required_id;
use super::pb;
use super::team_capability::{TeamAnswer, TeamCache, TeamQuery};
use crate::domain::{PersonId, TeamId};
use crate::error::Result;
use crate::service::capability::{Capability, ExpertsQuery, GapsQuery, RiskKind, TrendQuery};

/// The capability service.
pub struct CapabilityApi {
    service: Arc<Capability>,
    shutdown: watch::Receiver<bool>,
    cache: Arc<TeamCache>,
}

impl CapabilityApi {
    /// The gRPC face of `service`; watches end when `shutdown` turns true.
    pub fn new(service: Capability, shutdown: watch::Receiver<bool>) -> Self {
        let service = Arc::new(service);
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

        let (updates, stream) = mpsc::channel(4);
        tokio::spawn(live::follow(
            query,
            first,
            Arc::clone(&self.service),
            Arc::clone(&self.cache),
            caller,
            self.shutdown.clone(),
            updates,
        ));
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
