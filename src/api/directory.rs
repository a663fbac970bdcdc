//! `capsight.v1.DirectoryService`: requests to `service::directory` calls and its
//! answers to response messages.

use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{batch, required_id};
use super::pb;
use crate::domain::{PersonId, TeamId};
use crate::error::Result;
use crate::service::directory::DirectoryService;
use crate::service::page::{self, PageRequest};

/// The directory service.
pub struct DirectoryApi {
    service: DirectoryService,
}

impl DirectoryApi {
    /// The gRPC face of `service`.
    pub fn new(service: DirectoryService) -> Self {
        Self { service }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An optional `subtree_team_id` (empty: no filter).
fn subtree(raw: &str) -> Result<Option<TeamId>> {
    (!raw.is_empty())
        .then(|| required_id(raw, "subtree_team_id", TeamId::parse))
        .transpose()
}

#[tonic::async_trait]
impl pb::directory_service_server::DirectoryService for DirectoryApi {
    #[tracing::instrument(skip_all, fields(items = request.get_ref().skills.len()))]
    async fn upsert_skills(
        &self,
        request: Request<pb::UpsertSkillsRequest>,
    ) -> Result<Response<pb::UpsertSkillsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let skills = batch(request.into_inner().skills, "skills")?;
        let answer = self.service.upsert_skills(skills).await;
        caller.respond_with(
            answer.map(|a| a.map(|n| pb::UpsertSkillsResponse { upserted: count(n) })),
        )
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().roles.len()))]
    async fn upsert_roles(
        &self,
        request: Request<pb::UpsertRolesRequest>,
    ) -> Result<Response<pb::UpsertRolesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let roles = batch(request.into_inner().roles, "roles")?;
        let answer = self.service.upsert_roles(roles).await;
        caller
            .respond_with(answer.map(|a| a.map(|n| pb::UpsertRolesResponse { upserted: count(n) })))
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().teams.len()))]
    async fn upsert_teams(
        &self,
        request: Request<pb::UpsertTeamsRequest>,
    ) -> Result<Response<pb::UpsertTeamsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let teams = batch(request.into_inner().teams, "teams")?;
        let answer = self.service.upsert_teams(teams).await;
        caller
            .respond_with(answer.map(|a| a.map(|n| pb::UpsertTeamsResponse { upserted: count(n) })))
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().people.len()))]
    async fn upsert_people(
        &self,
        request: Request<pb::UpsertPeopleRequest>,
    ) -> Result<Response<pb::UpsertPeopleResponse>, Status> {
        let caller = Caller::of(&request)?;
        let people = batch(request.into_inner().people, "people")?;
        let answer = self.service.upsert_people(people).await;
        caller.respond_with(
            answer.map(|a| a.map(|n| pb::UpsertPeopleResponse { upserted: count(n) })),
        )
    }

    #[tracing::instrument(skip_all)]
    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let (result, subjects) = self.service.person(&caller.grant, &id);
        let result = result.map(|r| {
            Response::new(pb::GetPersonResponse {
                person: Some((&r.person).into()),
                assessment_count: r.assessment_count,
            })
        });
        caller.answer(result.map_err(Status::from), subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn list_skills(
        &self,
        request: Request<pb::ListSkillsRequest>,
    ) -> Result<Response<pb::ListSkillsResponse>, Status> {
        let r = request.into_inner();
        let page = PageRequest::parse(r.page_size, &r.page_token, page::context(&["ListSkills"]))?;
        let listed = self.service.skills(&page);
        Ok(Response::new(pb::ListSkillsResponse {
            skills: listed.items.iter().map(Into::into).collect(),
            next_page_token: listed.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let r = request.into_inner();
        let page = PageRequest::parse(r.page_size, &r.page_token, page::context(&["ListRoles"]))?;
        let listed = self.service.roles(&page);
        Ok(Response::new(pb::ListRolesResponse {
            roles: listed.items.iter().map(Into::into).collect(),
            next_page_token: listed.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_teams(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let page = PageRequest::parse(
            r.page_size,
            &r.page_token,
            page::context(&["ListTeams", &r.subtree_team_id]),
        )?;
        let root = subtree(&r.subtree_team_id)?;
        let listed = self.service.teams(&caller.grant, root.as_ref(), &page)?;
        let teams = listed
            .items
            .iter()
            .map(|t| {
                let mut team = pb::Team::from(&t.team);
                if !t.show_manager {
                    team.manager_id.clear();
                }
                team
            })
            .collect();
        Ok(Response::new(pb::ListTeamsResponse {
            teams,
            next_page_token: listed.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_people(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Result<Response<pb::ListPeopleResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let page = PageRequest::parse(
            r.page_size,
            &r.page_token,
            page::context(&["ListPeople", &r.subtree_team_id]),
        )?;
        let root = subtree(&r.subtree_team_id)?;
        let (result, subjects) = self.service.people(&caller.grant, root.as_ref(), &page);
        let result = result.map(|listed| {
            Response::new(pb::ListPeopleResponse {
                people: listed.items.iter().map(Into::into).collect(),
                next_page_token: listed.next_page_token,
            })
        });
        caller.answer(result.map_err(Status::from), subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_person(
        &self,
        request: Request<pb::DeletePersonRequest>,
    ) -> Result<Response<pb::DeletePersonResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let answer = self.service.delete_person(id).await.map(|a| {
            a.map(|report| pb::DeletePersonResponse {
                assessments_erased: report.assessments_erased,
                assessor_references_cleared: report.assessor_references_cleared,
                teams_unmanaged: report.teams_unmanaged,
            })
        });
        caller.respond_with(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn export_person(
        &self,
        request: Request<pb::ExportPersonRequest>,
    ) -> Result<Response<pb::ExportPersonResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let (result, subjects) = self.service.export_person(&caller.grant, &id).await;
        let result = result.map(|export| {
            Response::new(pb::ExportPersonResponse {
                person: Some((&export.person).into()),
                assessments_about: export.assessments_about.iter().map(Into::into).collect(),
                assessments_by: export.assessments_by.iter().map(Into::into).collect(),
                managed_teams: export.managed_teams.iter().map(Into::into).collect(),
                audit_event_count: export.audit_event_count,
                mentorships: export
                    .mentorships
                    .iter()
                    .map(super::talent::mentorship_to_pb)
                    .collect(),
            })
        });
        caller.answer(result.map_err(Status::from), subjects)
    }
}
