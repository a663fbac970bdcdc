//! `TalentService`: mentors for a person, mentoring relationships, an organisation-wide
//! mentoring plan and team composition. The rules live here: who may name whom, which
//! mentors a caller is shown, the limits and defaults of every question, and how the
//! optimality of a composition is stated.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use crate::domain::{
    AccessRole, FieldViolation, Grant, MAX_MENTORING_SKILLS, Mentorship, PersonId, Scope, SkillId,
    TeamId, Timestamp,
};
use crate::engine::compose::{Composition, SkillAsk, TeamAsk};
use crate::engine::insights::{find_mentors, mentee_needs};
use crate::engine::{Engine, KChoice, Want};
/// Results of this service that the engine computes as they are.
pub use crate::engine::{
    compose::Proposal,
    insights::{MentorView, MentoringPlan},
};
use crate::error::{Error, Result};

use super::Answer;
use super::insights::Freshness;
use super::page::PageRequest;
use super::scope::{admit_aggregate, admit_person, admit_team};

/// Mentors suggested when the request gives no limit.
pub const DEFAULT_LIMIT: u32 = 5;
/// Most mentors suggested.
pub const MAX_LIMIT: u32 = 50;
/// Mentees a mentor takes when the request does not say.
pub const DEFAULT_CAPACITY: u32 = 3;
/// Most mentees per mentor a request may allow.
pub const MAX_CAPACITY: u32 = 50;
/// Mentors per mentee in a plan when the request does not say.
pub const DEFAULT_MENTORS_PER_MENTEE: u32 = 1;
/// Most mentors per mentee in a plan.
pub const MAX_MENTORS_PER_MENTEE: u32 = 5;
/// Largest team ComposeTeam builds.
pub const MAX_TEAM_SIZE: u32 = 50;
/// Most requirements of one ComposeTeam request.
pub const MAX_REQUIREMENTS: usize = 100;
/// Most alternative teams.
pub const MAX_ALTERNATIVES: u32 = 5;

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
}

/// `value`, or `default` when unset; refused outside `1..=max`.
fn bounded(value: Option<u32>, default: u32, max: u32, field: &str) -> Result<u32> {
    match value {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v) => Ok(v),
        Some(_) => Err(invalid(field, &format!("must be between 1 and {max}"))),
    }
}

/// `skills` that the directory knows; the others as violations of `skill_ids[i]`.
fn unknown_skills(engine: &Engine, skills: &[SkillId]) -> Vec<FieldViolation> {
    let snapshot = engine.snapshot();
    skills
        .iter()
        .enumerate()
        .filter(|(_, s)| !snapshot.directory.skills().contains_key(*s))
        .map(|(i, _)| FieldViolation::new(format!("skill_ids[{i}]"), "no such skill"))
        .collect()
}

/// A question for mentors of one person.
#[derive(Clone, Debug)]
pub struct MentorsQuery {
    /// The mentee.
    pub person: PersonId,
    /// Skills to grow; empty: the requirements of their role.
    pub skills: Vec<SkillId>,
    /// Grow towards the target role instead of the current one.
    pub use_target_role: bool,
    /// Mentors to suggest; `None`: `DEFAULT_LIMIT`.
    pub limit: Option<u32>,
    /// Mentees a mentor may have; `None`: `DEFAULT_CAPACITY`.
    pub capacity: Option<u32>,
    /// Whether mentors may come from the mentee's own team.
    pub allow_same_team: bool,
}

/// Mentors found for a person.
#[derive(Clone, Debug)]
pub struct Mentors {
    /// Best first.
    pub mentors: Vec<MentorView>,
    /// The skills they were chosen for.
    pub skills: Vec<SkillId>,
}

/// A question for an organisation-wide (or team) mentoring plan.
#[derive(Clone, Debug)]
pub struct PlanQuery {
    /// Team subtree; `None`: the whole organisation.
    pub scope: Option<TeamId>,
    /// Mentees per mentor; `None`: `DEFAULT_CAPACITY`.
    pub capacity: Option<u32>,
    /// Mentors per mentee; `None`: `DEFAULT_MENTORS_PER_MENTEE`.
    pub mentors_per_mentee: Option<u32>,
    /// Whether pairs may share a team.
    pub allow_same_team: bool,
    /// Fresh or at once.
    pub want: Want,
    /// Which pairs.
    pub page: PageRequest,
}

/// A mentoring plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The plan.
    pub plan: Arc<MentoringPlan>,
    /// The pairs of this page.
    pub page: Range<usize>,
    /// Token for the next page; empty on the last.
    pub next_page_token: String,
    /// Mentees with at least one mentor.
    pub mentees_matched: u32,
    /// Freshness of the plan.
    pub freshness: Freshness,
}

/// A request to start mentoring.
#[derive(Clone, Debug)]
pub struct StartQuery {
    /// Mentee.
    pub mentee: PersonId,
    /// Mentor.
    pub mentor: PersonId,
    /// Skills the relationship is about.
    pub skills: Vec<SkillId>,
    /// Mentees the mentor may have; `None`: `DEFAULT_CAPACITY`.
    pub capacity: Option<u32>,
}

/// A relationship started, with the mentor's load after it.
#[derive(Clone, Debug)]
pub struct Started {
    /// The relationship.
    pub mentorship: Mentorship,
    /// The mentor's mentees now.
    pub mentor_load: u32,
}

/// A question for mentoring relationships.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// Only those of this person (as mentee or mentor).
    pub person: Option<PersonId>,
    /// Only those whose mentee is in this team subtree.
    pub scope: Option<TeamId>,
    /// The page.
    pub page: PageRequest,
}

/// One page of relationships.
#[derive(Clone, Debug)]
pub struct Listed {
    /// By mentee, then mentor.
    pub mentorships: Vec<Mentorship>,
    /// Token of the next page; empty at the end.
    pub next_page_token: String,
}

/// One requirement of a team, as asked.
#[derive(Clone, Debug)]
pub struct Requirement {
    /// The skill.
    pub skill: SkillId,
    /// Level each counted member must reach (0-5).
    pub min_level: f64,
    /// Members wanted at that level; 0 means 1.
    pub min_people: u32,
    /// Weight in the objective; 0 means 1.
    pub weight: f64,
}

/// A request to compose a team.
#[derive(Clone, Debug, Default)]
pub struct ComposeQuery {
    /// What the team must cover.
    pub requirements: Vec<Requirement>,
    /// Smallest team; 0 means 1.
    pub min_size: u32,
    /// Largest team (1-50).
    pub max_size: u32,
    /// Candidates only from these team subtrees (empty: the caller's scope).
    pub pool_teams: Vec<TeamId>,
    /// More candidates.
    pub include: Vec<PersonId>,
    /// Never these people.
    pub exclude: Vec<PersonId>,
    /// These people in every proposal.
    pub must_include: Vec<PersonId>,
    /// Least availability of a member (0-1).
    pub min_availability: f64,
    /// Least confidence of a level that counts (0-1).
    pub min_confidence: f64,
    /// Most members from one source team.
    pub max_per_source_team: Option<u32>,
    /// Never take a source team's only holder of a skill it needs.
    pub protect_source_teams: bool,
    /// Alternative teams (0-5).
    pub alternatives: u32,
    /// Prefer members of different archetypes.
    pub prefer_archetype_diversity: bool,
}

/// How good a composition is known to be.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimality {
    /// Proven optimal by an exact search.
    pub proven: bool,
    /// No team scores above this.
    pub upper_bound: f64,
    /// Relative distance of the best team to the bound (0 when proven).
    pub gap: f64,
    /// The same, in a sentence for people.
    pub statement: String,
}

/// A composed team, its alternatives and how good it is.
#[derive(Clone, Debug)]
pub struct Composed {
    /// The composition.
    pub composition: Composition,
    /// How good the best team is known to be.
    pub optimality: Optimality,
}

/// The optimality of `c`, stated.
pub fn optimality(c: &Composition) -> Optimality {
    let objective = c.best.objective;
    let gap = if c.proven || c.upper_bound <= 0.0 {
        0.0
    } else {
        ((c.upper_bound - objective) / c.upper_bound).max(0.0)
    };
    let statement = if c.searched {
        format!(
            "Proven optimal: an exact search of all {} candidates found no better team.",
            c.pool_size
        )
    } else if c.proven {
        format!(
            "Proven optimal: the team reaches the upper bound on what any team from the {} candidates can score.",
            c.pool_size
        )
    } else {
        format!(
            "Best found by greedy search and swaps; no team can score above {:.4}, so this one is within {:.1}% of the optimum.",
            c.upper_bound,
            gap * 100.0
        )
    };
    Optimality {
        proven: c.proven,
        upper_bound: c.upper_bound,
        gap,
        statement,
    }
}

/// Checks a number against a range, recording a violation when outside it.
fn in_range(
    v: f64,
    low: f64,
    high: f64,
    field: String,
    violations: &mut Vec<FieldViolation>,
) -> f32 {
    if !(v.is_finite() && (low..=high).contains(&v)) {
        violations.push(FieldViolation::new(
            field,
            format!("must be between {low} and {high}"),
        ));
    }
    v as f32
}

/// The talent service.
pub struct Talent {
    engine: Arc<Engine>,
}

impl Talent {
    /// The service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Mentors for `query.person`. A person sees mentors anywhere (they look for their
    /// own); scoped callers see mentors inside their scope. Subjects: the mentee and the
    /// mentors suggested.
    pub fn mentors(&self, grant: &Grant, query: MentorsQuery) -> Result<Answer<Mentors>> {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let scope = grant.person_scope(directory);
        let mentee = admit_person(&scope, directory, &query.person)?;
        let limit = bounded(query.limit, DEFAULT_LIMIT, MAX_LIMIT, "limit")?;
        let capacity = bounded(
            query.capacity,
            DEFAULT_CAPACITY,
            MAX_CAPACITY,
            "mentor_capacity",
        )?;
        let mut violations = unknown_skills(&self.engine, &query.skills);
        let role_id = match (&mentee.target_role, query.use_target_role) {
            (Some(target), true) => target,
            (None, true) => {
                violations.push(FieldViolation::new(
                    "use_target_role",
                    "the person has no target role",
                ));
                &mentee.role
            }
            (_, false) => &mentee.role,
        };
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let needs = mentee_needs(
            &snapshot,
            mentee,
            directory.roles().get(role_id),
            &query.skills,
        );
        let pool_scope = match grant.role {
            AccessRole::Person => Scope::Everything,
            _ => scope,
        };
        let pool = directory
            .people()
            .values()
            .filter(|p| pool_scope.covers_person(p));
        let found = find_mentors(
            &snapshot,
            mentee,
            &needs,
            pool,
            query.allow_same_team,
            capacity as usize,
            limit as usize,
        );
        let mut subjects = vec![mentee.id.to_string()];
        subjects.extend(found.iter().map(|m| m.mentor.id.to_string()));
        let mentors = Mentors {
            mentors: found,
            skills: needs.into_iter().map(|(s, _)| s).collect(),
        };
        Ok(Answer::new(mentors, subjects))
    }

    /// A mentoring plan for `query.scope`: not for analysts (it names people); others for
    /// the scopes they may ask about. Subjects: everyone paired.
    pub async fn plan(&self, grant: &Grant, query: PlanQuery) -> Result<Answer<Plan>> {
        if grant.role == AccessRole::Analyst {
            return Err(Error::PermissionDenied);
        }
        let snapshot = self.engine.snapshot();
        let scope = admit_aggregate(grant, &snapshot.directory, query.scope.as_ref())?;
        let capacity = bounded(
            query.capacity,
            DEFAULT_CAPACITY,
            MAX_CAPACITY,
            "capacity_per_mentor",
        )?;
        let max_mentors = bounded(
            query.mentors_per_mentee,
            DEFAULT_MENTORS_PER_MENTEE,
            MAX_MENTORS_PER_MENTEE,
            "max_mentors_per_mentee",
        )?;
        let fresh = self
            .engine
            .mentoring_plan(
                scope,
                capacity,
                max_mentors,
                query.allow_same_team,
                query.want,
            )
            .await?;
        let (page, next_page_token) = query.page.apply_sorted(&fresh.value.pairs, |p| {
            format!("{}\u{1f}{}", p.mentee, p.mentor)
        });
        let mut subjects: Vec<String> = fresh.value.pairs[page.clone()]
            .iter()
            .flat_map(|p| [p.mentee.to_string(), p.mentor.to_string()])
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        let mut matched: Vec<&PersonId> = fresh.value.pairs.iter().map(|p| &p.mentee).collect();
        matched.dedup();
        let plan = Plan {
            page,
            next_page_token,
            mentees_matched: u32::try_from(matched.len()).unwrap_or(u32::MAX),
            freshness: Freshness::of(&fresh),
            plan: Arc::clone(&fresh.value),
        };
        Ok(Answer::new(plan, subjects))
    }

    /// Both people of a relationship, if the caller may name them.
    fn admit_pair(&self, grant: &Grant, mentee: &PersonId, mentor: &PersonId) -> Result<()> {
        let snapshot = self.engine.snapshot();
        let scope = grant.person_scope(&snapshot.directory);
        admit_person(&scope, &snapshot.directory, mentee)?;
        admit_person(&scope, &snapshot.directory, mentor)?;
        Ok(())
    }

    /// Starts a relationship between two people the caller may name.
    pub async fn start(&self, grant: &Grant, query: StartQuery) -> Result<Answer<Started>> {
        self.admit_pair(grant, &query.mentee, &query.mentor)?;
        let capacity = bounded(
            query.capacity,
            DEFAULT_CAPACITY,
            MAX_CAPACITY,
            "mentor_capacity",
        )?;
        if query.skills.len() > MAX_MENTORING_SKILLS {
            return Err(invalid("skill_ids", "at most 50 skills"));
        }
        let violations = unknown_skills(&self.engine, &query.skills);
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let mentorship = Mentorship {
            mentee: query.mentee,
            mentor: query.mentor,
            skills: query.skills,
            started: Timestamp::now(),
        };
        let subjects = vec![mentorship.mentee.to_string(), mentorship.mentor.to_string()];
        let load = self
            .engine
            .start_mentoring(mentorship.clone(), capacity as usize)
            .await?;
        let started = Started {
            mentorship,
            mentor_load: u32::try_from(load).unwrap_or(u32::MAX),
        };
        Ok(Answer::new(started, subjects))
    }

    /// Ends a relationship between two people the caller may name.
    pub async fn end(
        &self,
        grant: &Grant,
        mentee: PersonId,
        mentor: PersonId,
    ) -> Result<Answer<Mentorship>> {
        self.admit_pair(grant, &mentee, &mentor)?;
        let subjects = vec![mentee.to_string(), mentor.to_string()];
        let ended = self.engine.end_mentoring(mentee, mentor).await?;
        Ok(Answer::new(ended, subjects))
    }

    /// Relationships with either side in the caller's scope (a manager sees who mentors
    /// their people, and whom their people mentor). Subjects: both sides of each listed.
    pub fn list(&self, grant: &Grant, query: ListQuery) -> Result<Answer<Listed>> {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let scope = grant.person_scope(directory);
        if let Some(person) = &query.person {
            admit_person(&scope, directory, person)?;
        }
        let subtree = match &query.scope {
            None => None,
            Some(team) => {
                admit_team(&scope, directory, team)?;
                directory.subtree(team.as_str())
            }
        };
        let visible = |id: &PersonId| {
            directory
                .person(id.as_str())
                .is_some_and(|p| scope.covers_person(p))
        };
        let selected: BTreeMap<String, &Mentorship> = snapshot
            .mentorships
            .iter()
            .filter(|m| visible(&m.mentee) || visible(&m.mentor))
            .filter(|m| {
                query
                    .person
                    .as_ref()
                    .is_none_or(|p| &m.mentee == p || &m.mentor == p)
            })
            .filter(|m| {
                subtree.as_ref().is_none_or(|teams| {
                    directory
                        .person(m.mentee.as_str())
                        .is_some_and(|p| teams.contains(&p.team))
                })
            })
            .map(|m| (format!("{}\u{0}{}", m.mentee, m.mentor), m))
            .collect();
        let (items, next_page_token) = query.page.apply(&selected, |_| true);
        let mut subjects: Vec<String> = items
            .iter()
            .flat_map(|m| [m.mentee.to_string(), m.mentor.to_string()])
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        let listed = Listed {
            mentorships: items.into_iter().map(|m| (*m).clone()).collect(),
            next_page_token,
        };
        Ok(Answer::new(listed, subjects))
    }

    /// The validated ask; ids outside the caller's scope are denied.
    fn team_ask(&self, grant: &Grant, q: &ComposeQuery) -> Result<(TeamAsk, Scope)> {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let scope = grant.person_scope(directory);
        let mut v = Vec::new();
        if q.requirements.is_empty() || q.requirements.len() > MAX_REQUIREMENTS {
            v.push(FieldViolation::new(
                "requirements",
                "between 1 and 100 requirements",
            ));
        }
        let mut requirements = Vec::new();
        for (i, r) in q.requirements.iter().enumerate() {
            let at = |f: &str| format!("requirements[{i}].{f}");
            if !directory.skills().contains_key(&r.skill) {
                v.push(FieldViolation::new(at("skill_id"), "no such skill"));
            }
            let level = in_range(r.min_level, 0.0, 5.0, at("min_level"), &mut v);
            let people = r.min_people.max(1);
            if people > MAX_TEAM_SIZE {
                v.push(FieldViolation::new(at("min_people"), "must be at most 50"));
            }
            let weight = if r.weight == 0.0 { 1.0 } else { r.weight };
            let weight = in_range(weight, 1e-6, 100.0, at("weight"), &mut v);
            requirements.push(SkillAsk {
                skill: r.skill.clone(),
                level,
                people,
                weight,
            });
        }
        if !(1..=MAX_TEAM_SIZE).contains(&q.max_size) {
            v.push(FieldViolation::new("max_size", "must be between 1 and 50"));
        }
        let min_size = q.min_size.max(1);
        if min_size > q.max_size {
            v.push(FieldViolation::new("min_size", "must not exceed max_size"));
        }
        let min_availability = in_range(
            q.min_availability,
            0.0,
            1.0,
            "min_availability".into(),
            &mut v,
        );
        let min_confidence = in_range(q.min_confidence, 0.0, 1.0, "min_confidence".into(), &mut v);
        if q.alternatives > MAX_ALTERNATIVES {
            v.push(FieldViolation::new("alternatives", "must be at most 5"));
        }
        if q.max_per_source_team == Some(0) {
            v.push(FieldViolation::new(
                "max_per_source_team",
                "must be at least 1",
            ));
        }
        for team in &q.pool_teams {
            admit_team(&scope, directory, team)?;
        }
        for person in q.include.iter().chain(&q.exclude).chain(&q.must_include) {
            admit_person(&scope, directory, person)?;
        }
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let ask = TeamAsk {
            requirements,
            min_size: min_size as usize,
            max_size: q.max_size as usize,
            pool_teams: q.pool_teams.clone(),
            include: q.include.clone(),
            exclude: q.exclude.clone(),
            min_availability,
            min_confidence,
            must_include: q.must_include.clone(),
            max_per_team: q.max_per_source_team.map(|m| m as usize),
            protect: q.protect_source_teams,
            alternatives: q.alternatives as usize,
            archetypes: None,
            archetype_labels: Vec::new(),
        };
        Ok((ask, scope))
    }

    /// The best team for `query` from the caller's scope, computed as a job. Subjects:
    /// every member of every proposal.
    pub async fn compose(&self, grant: &Grant, query: ComposeQuery) -> Result<Answer<Composed>> {
        let (mut ask, scope) = self.team_ask(grant, &query)?;
        let mut archetypes_version = None;
        if query.prefer_archetype_diversity {
            // The organisation's archetypes (cached); too little evidence means none.
            match self
                .engine
                .archetypes(None, KChoice::AUTO, Want::Latest)
                .await
            {
                Ok(fresh) => {
                    archetypes_version = Some(fresh.computed_version);
                    let view = &fresh.value;
                    ask.archetypes = Some(
                        view.people
                            .iter()
                            .cloned()
                            .zip(view.set.assignments.iter().copied())
                            .collect(),
                    );
                    ask.archetype_labels = view
                        .set
                        .archetypes
                        .iter()
                        .map(|a| a.label.clone())
                        .collect();
                }
                Err(Error::FailedPrecondition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // The same question about the same data and archetypes has the same answer.
        let scope_key = match &scope {
            Scope::Everything => "everyone".to_owned(),
            Scope::Teams(teams) => {
                let mut ids: Vec<&str> = teams.iter().map(TeamId::as_str).collect();
                ids.sort_unstable();
                ids.join(",")
            }
            Scope::Person(person) => format!("person {person}"),
            Scope::Nothing => "no one".to_owned(),
        };
        let key = format!("{query:?}\u{1f}{scope_key}\u{1f}{archetypes_version:?}");
        let fresh = self.engine.composition(key, ask, scope).await?;
        let composition = Composition::clone(&fresh.value);
        let mut subjects: Vec<String> = std::iter::once(&composition.best)
            .chain(&composition.alternatives)
            .flat_map(|p| p.members.iter().map(|m| m.person.id.to_string()))
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        let composed = Composed {
            optimality: optimality(&composition),
            composition,
        };
        Ok(Answer::new(composed, subjects))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{demo_engine, fields_of, grant};

    fn person(raw: &str) -> PersonId {
        PersonId::parse(raw).unwrap()
    }

    fn mentors_query(who: &str) -> MentorsQuery {
        MentorsQuery {
            person: person(who),
            skills: Vec::new(),
            use_target_role: false,
            limit: Some(50),
            capacity: None,
            allow_same_team: true,
        }
    }

    fn compose_query(skill: &str) -> ComposeQuery {
        ComposeQuery {
            requirements: vec![Requirement {
                skill: SkillId::parse(skill).unwrap(),
                min_level: 2.0,
                min_people: 1,
                weight: 1.0,
            }],
            max_size: 3,
            ..ComposeQuery::default()
        }
    }

    #[tokio::test]
    async fn managers_are_shown_mentors_in_their_scope_and_people_anywhere() {
        let (_dir, engine) = demo_engine(260).await;
        let snapshot = engine.snapshot();
        let talent = Talent::new(Arc::clone(&engine));
        let department = TeamId::parse("dept-01").unwrap();
        let teams = snapshot.directory.subtree(department.as_str()).unwrap();
        let mentee = snapshot
            .directory
            .people()
            .values()
            .find(|p| teams.contains(&p.team))
            .unwrap()
            .id
            .clone();
        let manager = grant(AccessRole::Manager, &["dept-01"]);
        let found = talent
            .mentors(&manager, mentors_query(mentee.as_str()))
            .unwrap();
        assert!(!found.value.mentors.is_empty());
        assert!(
            found
                .value
                .mentors
                .iter()
                .all(|m| teams.contains(&m.mentor.team))
        );
        // Subjects: the mentee, then each mentor suggested.
        assert_eq!(found.subjects[0], mentee.as_str());
        assert_eq!(found.subjects.len(), found.value.mentors.len() + 1);
        let mut own = grant(AccessRole::Person, &[]);
        own.person = Some(mentee.clone());
        let anywhere = talent
            .mentors(&own, mentors_query(mentee.as_str()))
            .unwrap();
        assert!(
            anywhere
                .value
                .mentors
                .iter()
                .any(|m| !teams.contains(&m.mentor.team))
        );
        // Someone outside the manager's scope: denied, like an id that does not exist.
        let outsider = snapshot
            .directory
            .people()
            .values()
            .find(|p| !teams.contains(&p.team))
            .unwrap();
        for who in [outsider.id.as_str(), "p-999999"] {
            assert!(matches!(
                talent.mentors(&manager, mentors_query(who)),
                Err(Error::PermissionDenied)
            ));
        }
    }

    #[tokio::test]
    async fn limits_are_enforced_by_field_and_analysts_cannot_plan() {
        let (_dir, engine) = demo_engine(40).await;
        let talent = Talent::new(engine);
        let admin = grant(AccessRole::Admin, &[]);
        let who = "p-000001";
        let cases = [
            (
                MentorsQuery {
                    limit: Some(51),
                    ..mentors_query(who)
                },
                "limit",
            ),
            (
                MentorsQuery {
                    capacity: Some(0),
                    ..mentors_query(who)
                },
                "mentor_capacity",
            ),
            (
                MentorsQuery {
                    skills: vec![SkillId::parse("no-such-skill").unwrap()],
                    ..mentors_query(who)
                },
                "skill_ids[0]",
            ),
        ];
        for (query, field) in cases {
            let e = talent.mentors(&admin, query).unwrap_err();
            assert_eq!(fields_of(&e), [field]);
        }
        let plan = PlanQuery {
            scope: None,
            capacity: None,
            mentors_per_mentee: Some(6),
            allow_same_team: false,
            want: Want::Current,
            page: PageRequest::parse(0, "", String::new()).unwrap(),
        };
        let e = talent.plan(&admin, plan.clone()).await.unwrap_err();
        assert_eq!(fields_of(&e), ["max_mentors_per_mentee"]);
        assert!(matches!(
            talent.plan(&grant(AccessRole::Analyst, &[]), plan).await,
            Err(Error::PermissionDenied)
        ));
        let bad = ComposeQuery {
            min_size: 4,
            max_size: 3,
            min_confidence: f64::NAN,
            alternatives: 6,
            ..compose_query("rust")
        };
        let e = talent.compose(&admin, bad).await.unwrap_err();
        assert_eq!(
            fields_of(&e),
            ["min_size", "min_confidence", "alternatives"]
        );
        // A pool team outside a manager's scope is denied.
        let outside = ComposeQuery {
            pool_teams: vec![TeamId::parse("dept-02").unwrap()],
            ..compose_query("rust")
        };
        let manager = grant(AccessRole::Manager, &["dept-01"]);
        assert!(matches!(
            talent.compose(&manager, outside).await,
            Err(Error::PermissionDenied)
        ));
    }

    #[tokio::test]
    async fn a_kept_composition_answers_only_the_same_question_about_the_same_data() {
        let (_dir, engine) = demo_engine(260).await;
        let talent = Talent::new(Arc::clone(&engine));
        let admin = grant(AccessRole::Admin, &[]);
        let query = ComposeQuery {
            min_availability: 0.5,
            ..compose_query("rust")
        };
        let members = |c: &Answer<Composed>| -> Vec<PersonId> {
            let best = &c.value.composition.best;
            best.members.iter().map(|m| m.person.id.clone()).collect()
        };
        let first = talent.compose(&admin, query.clone()).await.unwrap();
        let again = talent.compose(&admin, query.clone()).await.unwrap();
        assert_eq!(members(&again), members(&first));
        // A manager asking the same gets a team of their own scope, not the one kept
        // for the organisation.
        let snapshot = engine.snapshot();
        let directory = &snapshot.directory;
        let first_team = &directory.person(members(&first)[0].as_str()).unwrap().team;
        let other = if directory.department_of(first_team).as_str() == "dept-01" {
            "dept-02"
        } else {
            "dept-01"
        };
        let teams = directory.subtree(other).unwrap();
        let manager = grant(AccessRole::Manager, &[other]);
        let theirs = talent.compose(&manager, query.clone()).await.unwrap();
        assert!(!members(&theirs).is_empty());
        for id in members(&theirs) {
            let person = directory.person(id.as_str()).unwrap();
            assert!(teams.contains(&person.team), "{id} outside {other}");
        }
        // Once the first member is no longer available, a new answer leaves them out.
        let gone = members(&first)[0].clone();
        let mut person = snapshot.directory.person(gone.as_str()).unwrap().clone();
        person.availability = crate::domain::Availability::parse(0.1).unwrap();
        engine.upsert_people(vec![person]).await.unwrap();
        let after = talent.compose(&admin, query).await.unwrap();
        assert!(!members(&after).contains(&gone));
    }

    #[tokio::test]
    async fn a_composition_names_its_members_and_states_its_optimality() {
        let (_dir, engine) = demo_engine(60).await;
        let talent = Talent::new(engine);
        let admin = grant(AccessRole::Admin, &[]);
        let composed = talent.compose(&admin, compose_query("rust")).await.unwrap();
        let best = &composed.value.composition.best;
        assert!(!best.members.is_empty());
        for member in &best.members {
            assert!(composed.subjects.contains(&member.person.id.to_string()));
        }
        let optimality = &composed.value.optimality;
        if optimality.proven {
            assert_eq!(optimality.gap, 0.0);
            assert!(optimality.statement.starts_with("Proven optimal"));
        } else {
            assert!((0.0..=1.0).contains(&optimality.gap));
            assert!(optimality.statement.contains("within"));
        }
    }
}
