//! `capsight.v1.DirectoryService`: competency model, org tree and people.

use std::collections::HashSet;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{batch, required_id};
use super::pb;
use crate::domain::{Directory, PersonId, Scope, TeamId};
use crate::engine::Engine;
use crate::error::Error;
use crate::service::page::{self, PageRequest};

/// The directory service, backed by the engine.
pub struct DirectoryApi {
    engine: Arc<Engine>,
}

impl DirectoryApi {
    /// A service writing through and reading from `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// The one shape of every upsert: convert the batch (all or nothing), write it through
    /// the engine, audit the ids written, answer with the count.
    async fn upsert<P, D, Fut, R>(
        &self,
        caller: Caller,
        items: Vec<P>,
        list: &str,
        id: impl Fn(&P) -> &String,
        write: impl FnOnce(Arc<Engine>, Vec<D>) -> Fut,
        answer: impl FnOnce(u32) -> R,
    ) -> Result<Response<R>, Status>
    where
        D: TryFrom<P, Error = Vec<crate::domain::FieldViolation>>,
        Fut: std::future::Future<Output = crate::error::Result<usize>>,
    {
        let subjects = items.iter().map(|item| id(item).clone()).collect();
        let converted = batch(items, list)?;
        let upserted = count(write(Arc::clone(&self.engine), converted).await?);
        caller.answer(Ok(Response::new(answer(upserted))), subjects)
    }
}

/// The teams of the subtree rooted at `raw`, or `None` ("no filter") when `raw` is
/// empty. A scoped caller naming a team outside its scope is denied whether or not the
/// team exists; scopes are unions of subtrees, so a root inside covers its subtree.
fn subtree_filter(
    directory: &Directory,
    scope: &Scope,
    raw: &str,
) -> Result<Option<HashSet<TeamId>>, Error> {
    if raw.is_empty() {
        return Ok(None);
    }
    let root = required_id(raw, "subtree_team_id", TeamId::parse)?;
    crate::service::scope::admit_team(scope, directory, &root)?;
    directory
        .subtree(root.as_str())
        .map(Some)
        .ok_or(Error::NotFound { kind: "team" })
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
        let caller = Caller::of(&request)?;
        let skills = request.into_inner().skills;
        self.upsert(
            caller,
            skills,
            "skills",
            |s| &s.id,
            |engine, v| async move { engine.upsert_skills(v).await },
            |upserted| pb::UpsertSkillsResponse { upserted },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().roles.len()))]
    async fn upsert_roles(
        &self,
        request: Request<pb::UpsertRolesRequest>,
    ) -> Result<Response<pb::UpsertRolesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let roles = request.into_inner().roles;
        self.upsert(
            caller,
            roles,
            "roles",
            |r| &r.id,
            |engine, v| async move { engine.upsert_roles(v).await },
            |upserted| pb::UpsertRolesResponse { upserted },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().teams.len()))]
    async fn upsert_teams(
        &self,
        request: Request<pb::UpsertTeamsRequest>,
    ) -> Result<Response<pb::UpsertTeamsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let teams = request.into_inner().teams;
        self.upsert(
            caller,
            teams,
            "teams",
            |t| &t.id,
            |engine, v| async move { engine.upsert_teams(v).await },
            |upserted| pb::UpsertTeamsResponse { upserted },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(items = request.get_ref().people.len()))]
    async fn upsert_people(
        &self,
        request: Request<pb::UpsertPeopleRequest>,
    ) -> Result<Response<pb::UpsertPeopleResponse>, Status> {
        let caller = Caller::of(&request)?;
        let people = request.into_inner().people;
        self.upsert(
            caller,
            people,
            "people",
            |p| &p.id,
            |engine, v| async move { engine.upsert_people(v).await },
            |upserted| pb::UpsertPeopleResponse { upserted },
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let snapshot = self.engine.snapshot();
        let result = caller
            .readable_person(&snapshot.directory, &id)
            .map(|person| {
                Response::new(pb::GetPersonResponse {
                    person: Some(person.into()),
                    assessment_count: snapshot.capability.evidence_count(&id),
                })
            })
            .map_err(Status::from);
        caller.answer(result, Caller::subject_if_exists(&snapshot.directory, &id))
    }

    #[tracing::instrument(skip_all)]
    async fn list_skills(
        &self,
        request: Request<pb::ListSkillsRequest>,
    ) -> Result<Response<pb::ListSkillsResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            page::context(&["ListSkills"]),
        )?;
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
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            page::context(&["ListRoles"]),
        )?;
        let snapshot = self.engine.snapshot();
        let (roles, next_page_token) = page.apply(snapshot.directory.roles(), |_| true);
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    /// The org tree is visible to every reader; who manages a team is shown only to
    /// callers whose scope covers that team.
    #[tracing::instrument(skip_all)]
    async fn list_teams(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            page::context(&["ListTeams", &request.subtree_team_id]),
        )?;
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let scope = caller.scope(directory);
        let root = match request.subtree_team_id.as_str() {
            "" => None,
            raw => Some(
                directory
                    .subtree(required_id(raw, "subtree_team_id", TeamId::parse)?.as_str())
                    .ok_or(Error::NotFound { kind: "team" })?,
            ),
        };
        let (teams, next_page_token) = page.apply(directory.teams(), |team| {
            root.as_ref().is_none_or(|s| s.contains(&team.id))
        });
        let teams = teams
            .into_iter()
            .map(|team| {
                let mut listed = pb::Team::from(team);
                if !scope.covers_team(&team.id) {
                    listed.manager_id.clear();
                }
                listed
            })
            .collect();
        Ok(Response::new(pb::ListTeamsResponse {
            teams,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_people(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Result<Response<pb::ListPeopleResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            page::context(&["ListPeople", &request.subtree_team_id]),
        )?;
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let scope = caller.scope(directory);
        let result = subtree_filter(directory, &scope, &request.subtree_team_id).map(|subtree| {
            page.apply(directory.people(), |person| {
                scope.covers_person(person)
                    && subtree.as_ref().is_none_or(|s| s.contains(&person.team))
            })
        });
        let result = result
            .map_err(Status::from)
            .map(|(people, next_page_token)| {
                Response::new(pb::ListPeopleResponse {
                    people: people.into_iter().map(Into::into).collect(),
                    next_page_token,
                })
            });
        let subjects = match &result {
            Ok(response) => response
                .get_ref()
                .people
                .iter()
                .map(|p| p.id.clone())
                .collect(),
            Err(_) => vec![request.subtree_team_id.clone()],
        };
        caller.answer(result, subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_person(
        &self,
        request: Request<pb::DeletePersonRequest>,
    ) -> Result<Response<pb::DeletePersonResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let result = self.engine.delete_person(id).await.map_err(Status::from);
        if let Ok(report) = &result {
            tracing::info!(
                assessments_erased = report.assessments_erased,
                "person erased"
            );
        }
        // The erased id is not written into the audit trail it was just removed from.
        let report = result?;
        let response = Response::new(pb::DeletePersonResponse {
            assessments_erased: report.assessments_erased,
            assessor_references_cleared: report.assessor_references_cleared,
            teams_unmanaged: report.teams_unmanaged,
        });
        caller.answer(
            Ok(response),
            vec![crate::domain::AuditEvent::ERASED.to_owned()],
        )
    }

    #[tracing::instrument(skip_all)]
    async fn export_person(
        &self,
        request: Request<pb::ExportPersonRequest>,
    ) -> Result<Response<pb::ExportPersonResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let snapshot = self.engine.snapshot();
        let result = match caller.readable_person(&snapshot.directory, &id) {
            Ok(_) => self.engine.export_person(id.clone()).await.map(|export| {
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
            }),
            Err(e) => Err(e),
        }
        .map_err(Status::from);
        caller.answer(result, Caller::subject_if_exists(&snapshot.directory, &id))
    }
}
