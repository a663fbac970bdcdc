//! `capsight.v1.TalentService`: requests to `service::talent` queries and its answers to
//! response messages. The rules (who may name whom, limits, defaults, optimality) are
//! the service's.

use tonic::{Request, Response, Status};

mod compose;
mod mentoring;

use super::auth::Caller;
use super::pb;
use crate::domain::FieldViolation;
use crate::error::{Error, Result};
use crate::service::talent::{
    ComposeQuery, ListQuery, MentorsQuery, PlanQuery, StartQuery, Talent,
};
pub(super) use mentoring::mentorship_to_pb;
use mentoring::pair_ids;

/// The talent service.
pub struct TalentApi {
    service: Talent,
}

impl TalentApi {
    /// The gRPC face of `service`.
    pub fn new(service: Talent) -> Self {
        Self { service }
    }
}

/// Parses each of `raw` with `parse`, recording violations under `field[i]`.
fn parse_all<T>(
    raw: &[String],
    field: &str,
    parse: fn(&str) -> Result<T, FieldViolation>,
    violations: &mut Vec<FieldViolation>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, id) in raw.iter().enumerate() {
        match parse(id) {
            Ok(v) => out.push(v),
            Err(v) => violations.push(v.under(&format!("{field}[{i}]"))),
        }
    }
    out
}

fn checked<T>(value: T, violations: Vec<FieldViolation>) -> Result<T> {
    if violations.is_empty() {
        Ok(value)
    } else {
        Err(Error::InvalidArgument(violations))
    }
}

#[tonic::async_trait]
impl pb::talent_service_server::TalentService for TalentApi {
    #[tracing::instrument(skip_all)]
    async fn compose_team(
        &self,
        request: Request<pb::ComposeTeamRequest>,
    ) -> Result<Response<pb::ComposeTeamResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match ComposeQuery::try_from(request.get_ref()) {
            Ok(query) => self.service.compose(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn find_mentors(
        &self,
        request: Request<pb::FindMentorsRequest>,
    ) -> Result<Response<pb::FindMentorsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = MentorsQuery::try_from(request.get_ref())
            .and_then(|query| self.service.mentors(&caller.grant, query));
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn start_mentoring(
        &self,
        request: Request<pb::StartMentoringRequest>,
    ) -> Result<Response<pb::StartMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match StartQuery::try_from(request.get_ref()) {
            Ok(query) => self.service.start(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn end_mentoring(
        &self,
        request: Request<pb::EndMentoringRequest>,
    ) -> Result<Response<pb::EndMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.get_ref();
        let answer = match pair_ids(&r.mentee_id, &r.mentor_id) {
            Ok((mentee, mentor)) => self.service.end(&caller.grant, mentee, mentor).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn list_mentorships(
        &self,
        request: Request<pb::ListMentorshipsRequest>,
    ) -> Result<Response<pb::ListMentorshipsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = ListQuery::try_from(request.get_ref())
            .and_then(|query| self.service.list(&caller.grant, query));
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn plan_mentoring(
        &self,
        request: Request<pb::PlanMentoringRequest>,
    ) -> Result<Response<pb::PlanMentoringResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match PlanQuery::try_from(request.get_ref()) {
            Ok(query) => self.service.plan(&caller.grant, query).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer)
    }
}
