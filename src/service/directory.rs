//! `DirectoryService`: the competency model, the org tree and people. The rules live
//! here: who may read which person or list which subtree, that a team's manager is shown
//! only inside the caller's scope, and what each call records about whom (an erased
//! person's id is never written back).

use std::collections::HashSet;
use std::sync::Arc;

use crate::domain::{
    AuditEvent, Directory, Grant, Person, PersonId, Role, Scope, Skill, Team, TeamId,
};
use crate::engine::{Engine, ErasureReport, PersonExport};
use crate::error::{Error, Result};

use super::Answer;
use super::page::PageRequest;
use super::scope::{admit_person, admit_team};

/// One page of a listing.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token of the next page; empty at the end.
    pub next_page_token: String,
}

/// A team as listed: its manager is shown only to callers whose scope covers it.
#[derive(Clone, Debug)]
pub struct ListedTeam {
    /// The team.
    pub team: Team,
    /// Whether its manager may be shown.
    pub show_manager: bool,
}

/// A person and how much evidence is held about them.
#[derive(Clone, Debug)]
pub struct PersonRecord {
    /// The person.
    pub person: Person,
    /// Assessments about them.
    pub assessment_count: u64,
}

/// The directory service.
pub struct DirectoryService {
    engine: Arc<Engine>,
}

/// `id` as an audit subject if the person exists (asking for an erased person does not
/// write their id back).
fn subject_if_exists(directory: &Directory, id: &PersonId) -> Vec<String> {
    directory
        .person(id.as_str())
        .map(|p| p.id.to_string())
        .into_iter()
        .collect()
}

/// The teams of the subtree rooted at `root`, or `None` ("no filter"). A scoped caller
/// naming a team outside its scope is denied whether or not the team exists; scopes are
/// unions of subtrees, so a root inside covers its subtree.
fn subtree_filter(
    directory: &Directory,
    scope: &Scope,
    root: Option<&TeamId>,
) -> Result<Option<HashSet<TeamId>>> {
    let Some(root) = root else {
        return Ok(None);
    };
    admit_team(scope, directory, root)?;
    directory
        .subtree(root.as_str())
        .map(Some)
        .ok_or(Error::NotFound { kind: "team" })
}

impl DirectoryService {
    /// The service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Writes `skills`; subjects: their ids.
    pub async fn upsert_skills(&self, skills: Vec<Skill>) -> Result<Answer<usize>> {
        let subjects = skills.iter().map(|s| s.id.to_string()).collect();
        Ok(Answer::new(
            self.engine.upsert_skills(skills).await?,
            subjects,
        ))
    }

    /// Writes `roles`; subjects: their ids.
    pub async fn upsert_roles(&self, roles: Vec<Role>) -> Result<Answer<usize>> {
        let subjects = roles.iter().map(|r| r.id.to_string()).collect();
        Ok(Answer::new(
            self.engine.upsert_roles(roles).await?,
            subjects,
        ))
    }

    /// Writes `teams`; subjects: their ids.
    pub async fn upsert_teams(&self, teams: Vec<Team>) -> Result<Answer<usize>> {
        let subjects = teams.iter().map(|t| t.id.to_string()).collect();
        Ok(Answer::new(
            self.engine.upsert_teams(teams).await?,
            subjects,
        ))
    }

    /// Writes `people`; subjects: their ids.
    pub async fn upsert_people(&self, people: Vec<Person>) -> Result<Answer<usize>> {
        let subjects = people.iter().map(|p| p.id.to_string()).collect();
        Ok(Answer::new(
            self.engine.upsert_people(people).await?,
            subjects,
        ))
    }

    /// A person, if `grant` may read them. Subject: the person, if they exist, whether
    /// or not the read is allowed.
    pub fn person(&self, grant: &Grant, id: &PersonId) -> (Result<PersonRecord>, Vec<String>) {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let result = admit_person(&grant.person_scope(directory), directory, id).map(|person| {
            PersonRecord {
                person: person.clone(),
                assessment_count: snapshot.capability.evidence_count(id),
            }
        });
        (result, subject_if_exists(directory, id))
    }

    /// One page of the skills (readable by every role).
    pub fn skills(&self, page: &PageRequest) -> Page<Skill> {
        let snapshot = self.engine.snapshot();
        let (items, next_page_token) = page.apply(snapshot.directory.skills(), |_| true);
        Page {
            items: items.into_iter().cloned().collect(),
            next_page_token,
        }
    }

    /// One page of the roles (readable by every role).
    pub fn roles(&self, page: &PageRequest) -> Page<Role> {
        let snapshot = self.engine.snapshot();
        let (items, next_page_token) = page.apply(snapshot.directory.roles(), |_| true);
        Page {
            items: items.into_iter().cloned().collect(),
            next_page_token,
        }
    }

    /// One page of the org tree (visible to every reader), under `root` if given; who
    /// manages a team is shown only to callers whose scope covers it.
    pub fn teams(
        &self,
        grant: &Grant,
        root: Option<&TeamId>,
        page: &PageRequest,
    ) -> Result<Page<ListedTeam>> {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let scope = grant.person_scope(directory);
        let subtree = match root {
            None => None,
            Some(root) => Some(
                directory
                    .subtree(root.as_str())
                    .ok_or(Error::NotFound { kind: "team" })?,
            ),
        };
        let (teams, next_page_token) = page.apply(directory.teams(), |team| {
            subtree.as_ref().is_none_or(|s| s.contains(&team.id))
        });
        let items = teams
            .into_iter()
            .map(|team| ListedTeam {
                show_manager: scope.covers_team(&team.id),
                team: team.clone(),
            })
            .collect();
        Ok(Page {
            items,
            next_page_token,
        })
    }

    /// One page of the people in the caller's scope, under `root` if given. Subjects:
    /// the people listed, or the team asked about when refused.
    pub fn people(
        &self,
        grant: &Grant,
        root: Option<&TeamId>,
        page: &PageRequest,
    ) -> (Result<Page<Person>>, Vec<String>) {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let scope = grant.person_scope(directory);
        let listed = subtree_filter(directory, &scope, root).map(|subtree| {
            page.apply(directory.people(), |person| {
                scope.covers_person(person)
                    && subtree.as_ref().is_none_or(|s| s.contains(&person.team))
            })
        });
        match listed {
            Ok((people, next_page_token)) => {
                let subjects = people.iter().map(|p| p.id.to_string()).collect();
                let items = people.into_iter().cloned().collect();
                (
                    Ok(Page {
                        items,
                        next_page_token,
                    }),
                    subjects,
                )
            }
            Err(e) => (Err(e), root.map(ToString::to_string).into_iter().collect()),
        }
    }

    /// Erases a person (admins only, by the access rules). Subject: `erased`, never the
    /// id just removed from the audit trail.
    pub async fn delete_person(&self, id: PersonId) -> Result<Answer<ErasureReport>> {
        let report = self.engine.delete_person(id).await?;
        tracing::info!(
            assessments_erased = report.assessments_erased,
            "person erased"
        );
        Ok(Answer::new(report, vec![AuditEvent::ERASED.to_owned()]))
    }

    /// Everything held about a person, if `grant` may read them. Subject: the person, if
    /// they exist.
    pub async fn export_person(
        &self,
        grant: &Grant,
        id: &PersonId,
    ) -> (Result<PersonExport>, Vec<String>) {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let subjects = subject_if_exists(directory, id);
        let result = match admit_person(&grant.person_scope(directory), directory, id) {
            Ok(_) => self.engine.export_person(id.clone()).await,
            Err(e) => Err(e),
        };
        (result, subjects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccessRole;
    use crate::service::page;
    use crate::service::{demo_engine, grant};

    fn first_page() -> PageRequest {
        PageRequest::parse(1_000, "", page::context(&["test"])).unwrap()
    }

    #[tokio::test]
    async fn managers_list_their_people_and_see_managers_of_their_teams_only() {
        let (_dir, engine) = demo_engine(80).await;
        let service = DirectoryService::new(Arc::clone(&engine));
        let manager = grant(AccessRole::Manager, &["dept-01"]);
        let snapshot = engine.snapshot();
        let teams = snapshot.directory.subtree("dept-01").unwrap();
        let (people, subjects) = service.people(&manager, None, &first_page());
        let people = people.unwrap();
        assert!(!people.items.is_empty());
        assert!(people.items.iter().all(|p| teams.contains(&p.team)));
        assert_eq!(subjects.len(), people.items.len());
        // Another department: denied, and the team asked about is what is recorded.
        let other = TeamId::parse("dept-02").unwrap();
        let (denied, subjects) = service.people(&manager, Some(&other), &first_page());
        assert!(matches!(denied, Err(Error::PermissionDenied)));
        assert_eq!(subjects, ["dept-02"]);
        // The whole tree is listed, managers only inside the scope.
        let listed = service.teams(&manager, None, &first_page()).unwrap();
        assert_eq!(listed.items.len(), snapshot.directory.teams().len());
        for team in &listed.items {
            assert_eq!(team.show_manager, teams.contains(&team.team.id));
        }
    }

    #[tokio::test]
    async fn reads_of_people_who_do_not_exist_record_no_one() {
        let (_dir, engine) = demo_engine(20).await;
        let service = DirectoryService::new(engine);
        let admin = grant(AccessRole::Admin, &[]);
        let nobody = PersonId::parse("p-999999").unwrap();
        let (result, subjects) = service.person(&admin, &nobody);
        assert!(matches!(result, Err(Error::NotFound { .. })));
        assert!(subjects.is_empty());
        let (result, subjects) = service.export_person(&admin, &nobody).await;
        assert!(matches!(result, Err(Error::NotFound { .. })));
        assert!(subjects.is_empty());
        let someone = PersonId::parse("p-000001").unwrap();
        let erased = service.delete_person(someone.clone()).await.unwrap();
        assert_eq!(erased.subjects, [AuditEvent::ERASED]);
        let (result, subjects) = service.person(&admin, &someone);
        assert!(result.is_err());
        assert!(subjects.is_empty());
    }

    #[tokio::test]
    async fn an_identical_upsert_changes_nothing_not_even_the_data_version() {
        let (_dir, engine) = demo_engine(120).await;
        let service = DirectoryService::new(Arc::clone(&engine));
        let insights = crate::service::insights::Insights::new(Arc::clone(&engine), 5);
        let analyst = grant(AccessRole::Analyst, &[]);
        let query = crate::service::insights::ArchetypesQuery {
            scope: None,
            k: Some(4),
            max_k: None,
            include_members: false,
            want: crate::engine::Want::Current,
            members: crate::service::page::PageRequest::parse(0, "", String::new()).unwrap(),
        };
        let before = insights.archetypes(&analyst, query.clone()).await.unwrap();
        let admin = grant(AccessRole::Admin, &[]);
        let patterns = |want| crate::service::insights::PatternsQuery {
            scope: None,
            group_by: crate::engine::insights::GroupBy::Team,
            skills: Vec::new(),
            categories: Vec::new(),
            trend_days: None,
            min_group_size: None,
            want,
            page: crate::service::page::PageRequest::parse(1000, "", String::new()).unwrap(),
        };
        let patterns_before = insights
            .patterns(&admin, patterns(crate::engine::Want::Current))
            .await
            .unwrap();
        let snapshot = engine.snapshot();
        let version = snapshot.data_version;
        // A nightly sync sends everything again, unchanged.
        let skills: Vec<Skill> = snapshot.directory.skills().values().cloned().collect();
        let roles: Vec<Role> = snapshot.directory.roles().values().cloned().collect();
        let teams: Vec<Team> = snapshot.directory.teams().values().cloned().collect();
        let people: Vec<Person> = snapshot.directory.people().values().cloned().collect();
        let n = people.len();
        assert_eq!(
            service.upsert_skills(skills).await.unwrap().value,
            snapshot.directory.skills().len()
        );
        service.upsert_roles(roles).await.unwrap();
        service.upsert_teams(teams).await.unwrap();
        assert_eq!(
            service.upsert_people(people.clone()).await.unwrap().value,
            n
        );
        assert_eq!(engine.snapshot().data_version, version);
        let latest = crate::service::insights::ArchetypesQuery {
            want: crate::engine::Want::Latest,
            ..query
        };
        let after = insights.archetypes(&analyst, latest).await.unwrap();
        assert_eq!(
            after.value.freshness.computed_version,
            before.value.freshness.computed_version
        );
        assert!(!after.value.freshness.stale() && !after.value.freshness.refreshing);
        let patterns_after = insights
            .patterns(&admin, patterns(crate::engine::Want::Latest))
            .await
            .unwrap();
        assert_eq!(
            patterns_after.value.freshness,
            patterns_before.value.freshness
        );
        assert!(!patterns_after.value.freshness.stale());
        // A real change still moves it.
        let mut moved = people[0].clone();
        moved.availability = crate::domain::Availability::parse(0.5).unwrap();
        if moved == people[0] {
            moved.availability = crate::domain::Availability::parse(0.25).unwrap();
        }
        service.upsert_people(vec![moved]).await.unwrap();
        assert!(engine.snapshot().data_version > version);
    }
}
