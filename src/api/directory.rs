//! `capsight.v1.DirectoryService`: competency model, org tree and people.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::{batch, required_id};
use super::page::PageRequest;
use super::pb;
use crate::domain::{PersonId, TeamId};
use crate::engine::Engine;
use crate::error::Error;

/// The directory service, backed by the engine.
pub struct DirectoryApi {
    engine: Arc<Engine>,
}

impl DirectoryApi {
    /// A service writing through and reading from `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// The teams of the subtree rooted at `raw`, or every team when `raw` is empty.
    fn subtree_filter(
        &self,
        directory: &crate::domain::Directory,
        raw: &str,
    ) -> Result<Option<std::collections::HashSet<TeamId>>, Error> {
        if raw.is_empty() {
            return Ok(None);
        }
        let root = required_id(raw, "subtree_team_id", TeamId::parse)?;
        directory
            .subtree(root.as_str())
            .map(Some)
            .ok_or(Error::NotFound { kind: "team" })
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[tonic::async_trait]
impl pb::directory_service_server::DirectoryService for DirectoryApi {
    #[tracing::instrument(skip_all, fields(items = request.get_ref().skills.len()))]
    async fn upsert_skills(
        &self,
        request: Request<pb::UpsertSkillsRequest>,
    ) -> Result<Response<pb::UpsertSkillsResponse>, Status> {
        let skills = batch(request.into_inner().skills, "skills")?;
        let upserted = self.engine.upsert_skills(skills).await?;
        Ok(Response::new(pb::UpsertSkillsResponse {
            upserted: count(upserted),
        }))
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().roles.len()))]
    async fn upsert_roles(
        &self,
        request: Request<pb::UpsertRolesRequest>,
    ) -> Result<Response<pb::UpsertRolesResponse>, Status> {
        let roles = batch(request.into_inner().roles, "roles")?;
        let upserted = self.engine.upsert_roles(roles).await?;
        Ok(Response::new(pb::UpsertRolesResponse {
            upserted: count(upserted),
        }))
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().teams.len()))]
    async fn upsert_teams(
        &self,
        request: Request<pb::UpsertTeamsRequest>,
    ) -> Result<Response<pb::UpsertTeamsResponse>, Status> {
        let teams = batch(request.into_inner().teams, "teams")?;
        let upserted = self.engine.upsert_teams(teams).await?;
        Ok(Response::new(pb::UpsertTeamsResponse {
            upserted: count(upserted),
        }))
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().people.len()))]
    async fn upsert_people(
        &self,
        request: Request<pb::UpsertPeopleRequest>,
    ) -> Result<Response<pb::UpsertPeopleResponse>, Status> {
        let people = batch(request.into_inner().people, "people")?;
        let upserted = self.engine.upsert_people(people).await?;
        Ok(Response::new(pb::UpsertPeopleResponse {
            upserted: count(upserted),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let snapshot = self.engine.snapshot();
        let person = snapshot
            .directory
            .person(id.as_str())
            .ok_or(Error::NotFound { kind: "person" })?;
        Ok(Response::new(pb::GetPersonResponse {
            person: Some(person.into()),
            assessment_count: snapshot
                .assessments_per_person
                .get(&id)
                .copied()
                .unwrap_or(0),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_skills(
        &self,
        request: Request<pb::ListSkillsRequest>,
    ) -> Result<Response<pb::ListSkillsResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let snapshot = self.engine.snapshot();
        let (skills, next_page_token) = page.apply(snapshot.directory.skills(), |_| true);
        Ok(Response::new(pb::ListSkillsResponse {
            skills: skills.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let snapshot = self.engine.snapshot();
        let (roles, next_page_token) = page.apply(snapshot.directory.roles(), |_| true);
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_teams(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let snapshot = self.engine.snapshot();
        let subtree = self.subtree_filter(&snapshot.directory, &request.subtree_team_id)?;
        let (teams, next_page_token) = page.apply(snapshot.directory.teams(), |team| {
            subtree.as_ref().is_none_or(|s| s.contains(&team.id))
        });
        Ok(Response::new(pb::ListTeamsResponse {
            teams: teams.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_people(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Result<Response<pb::ListPeopleResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(request.page_size, &request.page_token)?;
        let snapshot = self.engine.snapshot();
        let subtree = self.subtree_filter(&snapshot.directory, &request.subtree_team_id)?;
        let (people, next_page_token) = page.apply(snapshot.directory.people(), |person| {
            subtree.as_ref().is_none_or(|s| s.contains(&person.team))
        });
        Ok(Response::new(pb::ListPeopleResponse {
            people: people.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_person(
        &self,
        request: Request<pb::DeletePersonRequest>,
    ) -> Result<Response<pb::DeletePersonResponse>, Status> {
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let report = self.engine.delete_person(id).await?;
        tracing::info!(
            assessments_erased = report.assessments_erased,
            "person erased"
        );
        Ok(Response::new(pb::DeletePersonResponse {
            assessments_erased: report.assessments_erased,
            assessor_references_cleared: report.assessor_references_cleared,
            teams_unmanaged: report.teams_unmanaged,
        }))
    }
}
