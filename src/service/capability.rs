//! `CapabilityService`: what a team can do (now, at a past date, or as it changes), a
//! person's profile and gaps, experts, single points of failure and trends. The rules
//! live here: who may name which team or person, the limits of each question (at most
//! 20 expert requirements, 50 trend skills, 200 trend points) and their defaults.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::analytics::gaps::{Gap, Ranked};
use crate::analytics::privacy::MIN_GROUP_SIZE_FLOOR;
use crate::analytics::proficiency::Evidence;
use crate::analytics::trends;
use crate::domain::{
    AccessRole, Directory, FieldViolation, Grant, Level, Person, PersonId, RoleId, SkillId, TeamId,
    Timestamp, TokenId,
};
use crate::engine::queries::{
    ProfileView, SkillRiskView, find_experts, person_gaps, person_profile, skill_risks,
    team_capability, team_capability_as_of, team_members,
};
/// Results of this service that the engine computes as they are.
pub use crate::engine::queries::{RiskKind, TeamCapabilityView};
use crate::engine::{Engine, Snapshot};
use crate::error::{Error, Result};

use super::Answer;
use super::culture::Culture;
use super::page::{self, PageFields};
use super::scope::{admit_department, admit_person, admit_team, admit_team_for};

/// Page fields and sizes of a team view's members (Get/WatchTeamCapability): a member
/// row is about 1.6 KB in the CELLS layout over 500 skills, so a default page stays near
/// 1.6 MB.
pub const TEAM_MEMBER_PAGES: PageFields = PageFields {
    size: "member_page_size",
    token: "member_page_token",
    default: 1_000,
    most: 10_000,
};

/// Most points one skill's trend may have.
pub const MAX_TREND_POINTS: i64 = 200;
/// Trend interval when the request gives none, in days.
pub const DEFAULT_TREND_INTERVAL_DAYS: u32 = 30;
/// Most skills of one trend question.
pub const MAX_TREND_SKILLS: usize = 50;
/// Most requirements of one expert search.
pub const MAX_EXPERT_REQUIREMENTS: usize = 20;
/// People named as most improved in a trend.
pub const TOP_IMPROVEMENTS: usize = 10;

fn invalid(field: impl Into<String>, reason: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
}

/// The dates of a trend from `from` to `to` every `interval_days` (0: 30), refused when
/// they would be more than `MAX_TREND_POINTS`. Both times are within protobuf's range
/// (`Timestamp::parse_seconds`), so the span cannot overflow, and the count is checked
/// before anything is allocated.
pub fn trend_dates(from: Timestamp, to: Timestamp, interval_days: u32) -> Result<Vec<Timestamp>> {
    if to <= from {
        return Err(invalid("to", "must be after from"));
    }
    let days = if interval_days == 0 {
        DEFAULT_TREND_INTERVAL_DAYS
    } else {
        interval_days
    };
    let step_ms = i64::from(days) * 86_400_000;
    if (to.unix_millis() - from.unix_millis()) / step_ms >= MAX_TREND_POINTS {
        return Err(invalid(
            "interval_days",
            "gives more than 200 points; choose a longer interval",
        ));
    }
    Ok(trends::dates(from, to, step_ms))
}

/// A question about a team's capability.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TeamQuestion {
    /// The team.
    pub team: TeamId,
    /// With its subteams' members.
    pub include_subteams: bool,
    /// Only these skills; empty: the skills the team's roles require or anyone holds.
    pub skills: Vec<SkillId>,
}

/// A person's profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The person.
    pub person: Person,
    /// Their skills and evidence.
    pub view: ProfileView,
}

/// A question about a person's gaps.
#[derive(Clone, Debug)]
pub struct GapsQuery {
    /// The person.
    pub person: PersonId,
    /// Against this role; `None`: their own (or target) role.
    pub role: Option<RoleId>,
    /// Against their target role when `role` is `None`.
    pub target_role: bool,
}

/// A person's gaps against a role.
#[derive(Clone, Debug)]
pub struct Gaps {
    /// The role.
    pub role: RoleId,
    /// Per required skill, largest priority first.
    pub gaps: Vec<(SkillId, Gap)>,
    /// Share of the role's weighted requirements met (0-1).
    pub readiness: f32,
}

/// A search for experts.
#[derive(Clone, Debug)]
pub struct ExpertsQuery {
    /// `(skill, minimum level)` every expert must meet.
    pub requirements: Vec<(SkillId, f64)>,
    /// Least confidence of each level (0-1).
    pub min_confidence: f64,
    /// Only in this team subtree.
    pub scope: Option<TeamId>,
    /// Page size (0: 100).
    pub page_size: u32,
    /// Token of the page to continue.
    pub page_token: String,
}

/// One page of experts.
#[derive(Clone, Debug)]
pub struct Experts {
    /// Best first, with the person.
    pub experts: Vec<(Person, Ranked<PersonId>)>,
    /// Experts in every page.
    pub total: usize,
    /// Token of the next page; empty at the end.
    pub next_page_token: String,
}

/// A question about trends.
#[derive(Clone, Debug)]
pub struct TrendQuery {
    /// The team (with its subtree).
    pub team: TeamId,
    /// Skills to follow (1-50).
    pub skills: Vec<SkillId>,
    /// Start.
    pub from: Timestamp,
    /// End.
    pub to: Timestamp,
    /// Interval in days (0: 30).
    pub interval_days: u32,
}

/// One person's growth in one skill over a trend period.
#[derive(Clone, Debug, PartialEq)]
pub struct Improvement {
    /// The person.
    pub person: PersonId,
    /// The skill.
    pub skill: SkillId,
    /// Level at the start.
    pub from: f32,
    /// Level at the end.
    pub to: f32,
}

/// A team's trend.
#[derive(Clone, Debug)]
pub struct Trend {
    /// Per date, per skill (in the order asked).
    pub points: Vec<(SkillId, trends::TrendPoint)>,
    /// The most improved, largest gain first.
    pub improvements: Vec<Improvement>,
}

impl Trend {
    /// What an aggregate-only caller may see: nobody named, and every point of fewer
    /// than `minimum` people with a known level left without figures.
    pub fn aggregate_only(mut self, minimum: usize) -> Self {
        self.improvements.clear();
        for (_, point) in &mut self.points {
            if (point.known as usize) < minimum {
                *point = trends::TrendPoint {
                    at: point.at,
                    mean: None,
                    known: 0,
                    proficient: 0,
                };
            }
        }
        self
    }
}

/// The capability service.
pub struct Capability {
    engine: Arc<Engine>,
    /// Smallest group an aggregate-only caller (an analyst) is shown a figure of.
    min_group_size: usize,
    /// The culture snapshot analysts read (`None`: the current data).
    culture: Option<Arc<Culture>>,
    /// Skill risks by team, for the data version they were computed at.
    risks: VersionMemo<TeamId, Vec<SkillRiskView>>,
    /// Trends by question, for the data version they were computed at.
    trends: VersionMemo<TrendKey, Trend>,
    /// The last trend of each question, person by person, to update for the people
    /// whose evidence changed since instead of reading everyone's again.
    bases: Mutex<HashMap<TrendKey, Arc<TrendBasis>>>,
}

/// A trend question: (team, skills, from and to in ms, interval).
type TrendKey = (TeamId, Vec<SkillId>, i64, i64, u32);

/// A trend person by person (`Capability::bases`).
struct TrendBasis {
    /// The evidence batches it read all of: a member without a batch numbered this or
    /// above has the same evidence now.
    mark: u64,
    /// Members in id order, each with their row.
    members: Vec<PersonId>,
    rows: Vec<Arc<TrendRow>>,
    at: Instant,
}

/// One member's part of a trend.
struct TrendRow {
    /// Level per (skill, date), skill-major; `None` where unknown.
    levels: Vec<Option<f32>>,
    /// (level at the start, at the end) per skill, where both are known.
    changes: Vec<Option<(f32, f32)>>,
}

/// Most trend bases kept, and most (member, skill, date) cells in one (8 bytes each).
const BASES_LIMIT: usize = 16;
const BASIS_CELLS: usize = 4_000_000;

/// Answers of one kind kept for the data version they were computed at: only a write or
/// time moves them, and within `MEMO_AGE` time moves effective levels negligibly (the
/// evidence half-life is counted in days). Access is checked before every lookup.
struct VersionMemo<K, T> {
    entries: Mutex<Kept<K, T>>,
}

/// The version answers are kept for, and each with when it was computed.
type Kept<K, T> = (u64, HashMap<K, (Instant, Answer<T>)>);

/// How long a kept answer is reused while the data stays the same.
const MEMO_AGE: Duration = Duration::from_secs(600);

/// Most answers kept per kind and version.
const MEMO_LIMIT: usize = 1_024;

impl<K: Eq + Hash, T: Clone> VersionMemo<K, T> {
    fn new() -> Self {
        Self {
            entries: Mutex::new((0, HashMap::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Kept<K, T>> {
        // Only whole-entry inserts and clears happen under the lock: a poisoned one is
        // coherent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, version: u64, key: &K) -> Option<Answer<T>> {
        let entries = self.lock();
        let (at, answer) = entries.1.get(key).filter(|_| entries.0 == version)?;
        (at.elapsed() < MEMO_AGE).then(|| answer.clone())
    }

    fn put(&self, version: u64, key: K, answer: &Answer<T>) {
        let mut entries = self.lock();
        if version < entries.0 {
            return;
        }
        if version > entries.0 || entries.1.len() >= MEMO_LIMIT {
            *entries = (version, HashMap::new());
        }
        entries.1.insert(key, (Instant::now(), answer.clone()));
    }
}

impl Capability {
    /// The service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            min_group_size: MIN_GROUP_SIZE_FLOOR,
            culture: None,
            risks: VersionMemo::new(),
            trends: VersionMemo::new(),
            bases: Mutex::default(),
        }
    }

    /// The same service, showing analysts no figure of fewer than `min_group_size`
    /// people (at least the floor of 3), from `culture`'s published snapshot.
    pub fn for_analysts(mut self, min_group_size: usize, culture: Arc<Culture>) -> Self {
        self.min_group_size = min_group_size.max(MIN_GROUP_SIZE_FLOOR);
        self.culture = Some(culture);
        self
    }

    /// Signals each new data version (for watches and caches).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.engine.changes()
    }

    /// Whether `token` may still be used (a watch ends when it may not).
    pub fn token_active(&self, token: &TokenId) -> bool {
        self.engine
            .snapshot()
            .tokens
            .is_active(token, Timestamp::now())
    }

    /// The data version now, if `grant` may see `team` (for cached views).
    pub fn admit_team(&self, grant: &Grant, team: &TeamId) -> Result<u64> {
        let snapshot = self.engine.snapshot();
        admit_team_for(grant, &snapshot.directory, team)?;
        Ok(snapshot.data_version)
    }

    /// The team's capability now, if `grant` may see the team: a scoped caller asking
    /// for a team outside its scope is denied whether or not the team exists.
    pub fn team(&self, grant: &Grant, q: &TeamQuestion) -> Result<TeamCapabilityView> {
        let snapshot = self.engine.snapshot();
        admit_team_for(grant, &snapshot.directory, &q.team)?;
        team_capability(
            &snapshot,
            &q.team,
            q.include_subteams,
            &q.skills,
            snapshot.as_of(),
        )
    }

    /// The team's capability at `as_of`, from the members' raw evidence (not cached).
    pub async fn team_as_of(
        &self,
        grant: &Grant,
        q: &TeamQuestion,
        as_of: Timestamp,
    ) -> Result<TeamCapabilityView> {
        let snapshot = self.engine.snapshot();
        admit_team_for(grant, &snapshot.directory, &q.team)?;
        let members = team_members(&snapshot, &q.team, q.include_subteams)?;
        let ids = members.iter().map(|p| p.id.clone()).collect();
        let evidence = self.engine.assessments_about_many(ids).await?;
        team_capability_as_of(
            &snapshot,
            &q.team,
            q.include_subteams,
            &q.skills,
            as_of,
            &evidence,
        )
    }

    /// `id` as an audit subject if the person exists (asking for an erased person does
    /// not write their id back).
    fn subject_if_exists(&self, id: &PersonId) -> Vec<String> {
        self.engine
            .snapshot()
            .directory
            .person(id.as_str())
            .map(|p| p.id.to_string())
            .into_iter()
            .collect()
    }

    /// A person's profile, read beside the writer. Subject: the person, if they exist,
    /// whether or not the read is allowed.
    pub fn profile(&self, grant: &Grant, id: &PersonId) -> (Result<Profile>, Vec<String>) {
        let snapshot = self.engine.snapshot();
        let result = (|| {
            let scope = grant.person_scope(&snapshot.directory);
            let person = admit_person(&scope, &snapshot.directory, id)?.clone();
            let assessments = self.engine.assessments_about(id)?;
            let view = person_profile(snapshot.capability.model(), assessments, snapshot.as_of());
            Ok(Profile { person, view })
        })();
        (result, self.subject_if_exists(id))
    }

    /// A person's gaps against a role. Subject: the person, if they exist, whether or not
    /// the read is allowed.
    pub fn gaps(&self, grant: &Grant, q: &GapsQuery) -> (Result<Gaps>, Vec<String>) {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        let result = (|| {
            let person = admit_person(&grant.person_scope(directory), directory, &q.person)?;
            let role_id = match (&q.role, q.target_role) {
                (Some(role), _) => role.clone(),
                (None, false) => person.role.clone(),
                (None, true) => person
                    .target_role
                    .clone()
                    .ok_or_else(|| invalid("target_role", "the person has no target role"))?,
            };
            let role = directory
                .roles()
                .get(&role_id)
                .ok_or_else(|| invalid("role_id", "unknown role"))?;
            let (gaps, readiness) = person_gaps(&snapshot, person, role);
            Ok(Gaps {
                role: role_id,
                gaps,
                readiness,
            })
        })();
        (result, self.subject_if_exists(&q.person))
    }

    /// One page of the people in the caller's scope meeting every requirement, best
    /// first. Subjects: the experts listed.
    pub fn experts(&self, grant: &Grant, q: &ExpertsQuery) -> Result<Answer<Experts>> {
        let snapshot = self.engine.snapshot();
        let directory = &snapshot.directory;
        if q.requirements.is_empty() || q.requirements.len() > MAX_EXPERT_REQUIREMENTS {
            return Err(invalid("requirements", "must contain 1 to 20 items"));
        }
        let mut requirements = Vec::with_capacity(q.requirements.len());
        for (i, (skill, level)) in q.requirements.iter().enumerate() {
            if !directory.skills().contains_key(skill) {
                return Err(invalid(
                    format!("requirements[{i}].skill_id"),
                    "unknown skill",
                ));
            }
            let level = Level::parse(*level).map_err(|v| {
                Error::InvalidArgument(vec![v.under(&format!("requirements[{i}].min_level"))])
            })?;
            requirements.push((skill.clone(), level.value()));
        }
        if !(0.0..=1.0).contains(&q.min_confidence) {
            return Err(invalid("min_confidence", "must be a number from 0 to 1"));
        }
        let size = page::page_size_or_default(q.page_size)?;
        let question = format!("{:?}", (&q.requirements, &q.scope, q.min_confidence));
        let bound_to = page::context(&["FindExperts", &question]);
        let offset = page::decode_token(&q.page_token, &bound_to)?
            .map(|cursor| <[u8; 8]>::try_from(cursor.as_slice()).map(u64::from_be_bytes))
            .transpose()
            .map_err(|_| invalid("page_token", "is not a token this server issued"))?
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let scope = grant.person_scope(directory);
        let within = match &q.scope {
            None => None,
            Some(team) => {
                admit_team(&scope, directory, team)?;
                Some(
                    directory
                        .subtree(team.as_str())
                        .ok_or(Error::NotFound { kind: "team" })?,
                )
            }
        };
        let people = directory.people().values().filter(|p| {
            scope.covers_person(p) && within.as_ref().is_none_or(|teams| teams.contains(&p.team))
        });
        let ranked = find_experts(&snapshot, &requirements, people, q.min_confidence as f32);
        let total = ranked.len();
        let experts: Vec<(Person, Ranked<PersonId>)> = ranked
            .into_iter()
            .skip(offset)
            .take(size)
            .filter_map(|r| Some((directory.person(r.key.as_str())?.clone(), r)))
            .collect();
        let next = offset.saturating_add(experts.len());
        let next_page_token = if next < total {
            page::encode_token(&bound_to, &(next as u64).to_be_bytes())
        } else {
            String::new()
        };
        let subjects = experts.iter().map(|(p, _)| p.id.to_string()).collect();
        let page = Experts {
            experts,
            total,
            next_page_token,
        };
        Ok(Answer::new(page, subjects))
    }

    /// A team's single points of failure and missing skills. Subjects: the people a
    /// skill hangs on.
    pub fn risks(&self, grant: &Grant, team: &TeamId) -> Result<Answer<Vec<SkillRiskView>>> {
        let snapshot = self.engine.snapshot();
        admit_team_for(grant, &snapshot.directory, team)?;
        if let Some(kept) = self.risks.get(snapshot.data_version, team) {
            return Ok(kept);
        }
        let risks = skill_risks(&snapshot, team, snapshot.as_of())?;
        let subjects = risks
            .iter()
            .filter_map(|r| r.holder.as_ref().map(ToString::to_string))
            .collect();
        let answer = Answer::new(risks, subjects);
        self.risks.put(snapshot.data_version, team.clone(), &answer);
        Ok(answer)
    }

    /// How a team's skills moved over a period, and who grew most. Subjects: the people
    /// named as most improved. Analysts (aggregates only) follow whole departments: they
    /// get no one named, and no point of fewer than the minimum group size.
    ///
    /// Analysts read the published culture snapshot (its org tree and the evidence
    /// stored by then), like their archetypes and patterns: two answers within one
    /// publication period are identical, so they cannot be differenced over time.
    pub async fn trend(&self, grant: &Grant, q: TrendQuery) -> Result<Answer<Trend>> {
        if grant.role == AccessRole::Analyst {
            let snapshot = match &self.culture {
                Some(culture) => culture.published(),
                None => self.engine.snapshot(),
            };
            let limit = snapshot.evidence_batches;
            let full = self.trend_of(&snapshot, limit, q, admit_department).await?;
            let value = full.value.aggregate_only(self.min_group_size);
            return Ok(Answer::new(value, Vec::new()));
        }
        let snapshot = self.engine.snapshot();
        self.trend_of(&snapshot, u64::MAX, q, |d, team| {
            admit_team_for(grant, d, team)
        })
        .await
    }

    /// The trend of `snapshot` with everyone named, from the evidence of its first
    /// `evidence_limit` batches, once `admit` lets the team be asked about.
    async fn trend_of(
        &self,
        snapshot: &Snapshot,
        evidence_limit: u64,
        q: TrendQuery,
        admit: impl FnOnce(&Directory, &TeamId) -> Result<()>,
    ) -> Result<Answer<Trend>> {
        let directory = &snapshot.directory;
        if q.skills.is_empty() || q.skills.len() > MAX_TREND_SKILLS {
            return Err(invalid("skill_ids", "must contain 1 to 50 items"));
        }
        if let Some(i) = q
            .skills
            .iter()
            .position(|s| !directory.skills().contains_key(s))
        {
            return Err(invalid(format!("skill_ids[{i}]"), "unknown skill"));
        }
        let dates = trend_dates(q.from, q.to, q.interval_days)?;
        admit(directory, &q.team)?;
        let key = (
            q.team.clone(),
            q.skills.clone(),
            q.from.unix_millis(),
            q.to.unix_millis(),
            q.interval_days,
        );
        if let Some(kept) = self.trends.get(snapshot.data_version, &key) {
            return Ok(kept);
        }
        let teams = directory
            .subtree(q.team.as_str())
            .ok_or(Error::NotFound { kind: "team" })?;
        let mut members: Vec<PersonId> = teams
            .iter()
            .flat_map(|t| directory.members(t.as_str()).cloned())
            .collect();
        // In id order: means are summed in the same order by every call, so the same
        // data gives the same answer to the last bit.
        members.sort_unstable();
        let mark = snapshot.evidence_batches.min(evidence_limit);
        let rows = self
            .trend_rows(snapshot, evidence_limit, &key, &members, &q, &dates)
            .await?;
        let answer = trend_answer(&q, &dates, &members, &rows);
        if members.len() * q.skills.len() * dates.len() <= BASIS_CELLS {
            let mut bases = self.lock_bases();
            if bases.len() >= BASES_LIMIT && !bases.contains_key(&key) {
                bases.clear();
            }
            let basis = TrendBasis {
                mark,
                members,
                rows,
                at: Instant::now(),
            };
            bases.insert(key.clone(), Arc::new(basis));
        }
        self.trends.put(snapshot.data_version, key, &answer);
        Ok(answer)
    }

    /// Each member's trend row. Rows of the last trend of this question serve the
    /// members whose evidence has not changed since (it read everything this call may
    /// read of theirs); the others' evidence is read from the first `evidence_limit`
    /// batches.
    async fn trend_rows(
        &self,
        snapshot: &Snapshot,
        evidence_limit: u64,
        key: &TrendKey,
        members: &[PersonId],
        q: &TrendQuery,
        dates: &[Timestamp],
    ) -> Result<Vec<Arc<TrendRow>>> {
        // Skills numbered by their place in the question (a skill asked twice counts
        // at its first place).
        let mut columns: HashMap<String, usize> = HashMap::new();
        let first: Vec<usize> = q
            .skills
            .iter()
            .enumerate()
            .map(|(i, skill)| *columns.entry(skill.to_string()).or_insert(i))
            .collect();
        let basis = self
            .lock_bases()
            .get(key)
            .filter(|b| b.mark <= evidence_limit && b.at.elapsed() < MEMO_AGE)
            .cloned();
        let kept: Vec<Option<Arc<TrendRow>>> = match &basis {
            Some(basis) => self
                .engine
                .evidence_touched_since(members, basis.mark)
                .into_iter()
                .zip(members)
                .map(|(touched, person)| {
                    let i = basis.members.binary_search(person).ok()?;
                    (!touched).then(|| Arc::clone(&basis.rows[i]))
                })
                .collect(),
            None => vec![None; members.len()],
        };
        let unread: Vec<PersonId> = members
            .iter()
            .zip(&kept)
            .filter(|(_, k)| k.is_none())
            .map(|(p, _)| p.clone())
            .collect();
        let evidence = if unread.is_empty() {
            Vec::new()
        } else {
            self.engine
                .scored_about_many_before(unread, evidence_limit, columns)
                .await?
        };
        let model = snapshot.capability.model();
        let mut read = evidence.into_iter();
        Ok(kept
            .into_iter()
            .map(|k| {
                k.unwrap_or_else(|| {
                    let items = read.next().unwrap_or_default();
                    Arc::new(trend_row(model, &items, &first, dates, q.from, q.to))
                })
            })
            .collect())
    }

    fn lock_bases(&self) -> MutexGuard<'_, HashMap<TrendKey, Arc<TrendBasis>>> {
        // Only whole-entry inserts and clears happen under the lock: a poisoned one is
        // coherent.
        self.bases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The trend of `members` (in id order) from their rows: each point summed over every
/// row in that order, as a computation from scratch would, and the biggest improvements.
fn trend_answer(
    q: &TrendQuery,
    dates: &[Timestamp],
    members: &[PersonId],
    rows: &[Arc<TrendRow>],
) -> Answer<Trend> {
    let points = (0..dates.len())
        .flat_map(|d| {
            q.skills.iter().enumerate().map(move |(i, skill)| {
                let levels: Vec<f32> = rows
                    .iter()
                    .filter_map(|r| r.levels[i * dates.len() + d])
                    .collect();
                (skill.clone(), trends::point(dates[d], &levels))
            })
        })
        .collect();
    let mut improvements: Vec<Improvement> = q
        .skills
        .iter()
        .enumerate()
        .flat_map(|(i, skill)| {
            rows.iter().zip(members).filter_map(move |(row, person)| {
                let (start, end) = row.changes[i]?;
                (end > start).then(|| Improvement {
                    person: person.clone(),
                    skill: skill.clone(),
                    from: start,
                    to: end,
                })
            })
        })
        .collect();
    improvements.sort_by(|a, b| {
        (b.to - b.from)
            .total_cmp(&(a.to - a.from))
            .then_with(|| a.person.cmp(&b.person))
            .then_with(|| a.skill.cmp(&b.skill))
    });
    improvements.truncate(TOP_IMPROVEMENTS);
    let subjects = improvements.iter().map(|i| i.person.to_string()).collect();
    Answer::new(
        Trend {
            points,
            improvements,
        },
        subjects,
    )
}

/// One member's trend row from their evidence (`first[i]`: the column of skill `i`).
fn trend_row(
    model: &crate::analytics::proficiency::ProficiencyModel,
    items: &[crate::store::Scored],
    first: &[usize],
    dates: &[Timestamp],
    from: Timestamp,
    to: Timestamp,
) -> TrendRow {
    let mut levels = Vec::with_capacity(first.len() * dates.len());
    let mut changes = Vec::with_capacity(first.len());
    for &column in first {
        let evidence: Vec<Evidence> = items
            .iter()
            .filter(|e| e.column == column)
            .map(|e| Evidence {
                score: e.score.value(),
                source: e.source,
                at: e.at,
            })
            .collect();
        levels.extend(
            dates
                .iter()
                .map(|&at| model.effective_level(&evidence, at).map(|p| p.level)),
        );
        changes.push(trends::improvement(model, &evidence, from, to));
    }
    TrendRow { levels, changes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccessRole;
    use crate::service::{demo_engine, fields_of, grant};
    use proptest::prelude::*;

    fn skill(raw: &str) -> SkillId {
        SkillId::parse(raw).unwrap()
    }

    fn team(raw: &str) -> TeamId {
        TeamId::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn kept_risks_are_still_refused_outside_the_scope_and_a_write_recomputes_them() {
        let (_dir, engine) = demo_engine(60).await;
        let service = Capability::new(Arc::clone(&engine));
        let admin = grant(AccessRole::Admin, &[]);
        let first = service.risks(&admin, &team("dept-01")).unwrap();
        let version = engine.snapshot().data_version;
        assert!(
            service.risks.get(version, &team("dept-01")).is_some(),
            "kept"
        );
        let again = service.risks(&admin, &team("dept-01")).unwrap();
        assert_eq!(again.subjects, first.subjects);
        // Access is checked before the kept answer is looked up.
        let other = grant(AccessRole::Manager, &["dept-02"]);
        assert!(matches!(
            service.risks(&other, &team("dept-01")),
            Err(Error::PermissionDenied)
        ));
        // Another version: nothing kept for it; an older answer never replaces a newer.
        assert!(service.risks.get(version + 1, &team("dept-01")).is_none());
        service.risks.put(version + 1, team("dept-02"), &first);
        service.risks.put(version, team("dept-03"), &first);
        assert!(service.risks.get(version + 1, &team("dept-03")).is_none());
        assert!(
            service.risks.get(version, &team("dept-01")).is_none(),
            "superseded"
        );
    }

    #[tokio::test]
    async fn a_person_outside_the_scope_is_denied_and_still_audited_if_they_exist() {
        let (_dir, engine) = demo_engine(60).await;
        let snapshot = engine.snapshot();
        let service = Capability::new(Arc::clone(&engine));
        let teams = snapshot.directory.subtree("dept-01").unwrap();
        let (inside, outside): (Vec<&Person>, Vec<&Person>) = snapshot
            .directory
            .people()
            .values()
            .partition(|p| teams.contains(&p.team));
        let manager = grant(AccessRole::Manager, &["dept-01"]);
        let (profile, subjects) = service.profile(&manager, &inside[0].id);
        assert_eq!(profile.unwrap().person.id, inside[0].id);
        assert_eq!(subjects, [inside[0].id.to_string()]);
        let (denied, subjects) = service.profile(&manager, &outside[0].id);
        assert!(matches!(denied, Err(Error::PermissionDenied)));
        assert_eq!(subjects, [outside[0].id.to_string()]);
        // No one by that id: denied the same way, and nothing recorded.
        let nobody = PersonId::parse("p-999999").unwrap();
        let (denied, subjects) = service.profile(&manager, &nobody);
        assert!(matches!(denied, Err(Error::PermissionDenied)));
        assert!(subjects.is_empty());
    }

    #[tokio::test]
    async fn a_trend_updated_for_new_evidence_and_an_erasure_equals_one_computed_afresh() {
        let (_dir, engine) = demo_engine(300).await;
        let service = Capability::new(Arc::clone(&engine));
        let admin = grant(AccessRole::Admin, &[]);
        let now = Timestamp::now();
        let q = TrendQuery {
            team: team("dept-01"),
            skills: ["rust", "python", "rust"].map(skill).to_vec(),
            from: Timestamp::from_unix_millis(now.unix_millis() - 365 * 86_400_000),
            to: now,
            interval_days: 30,
        };
        let afresh = || async {
            Capability::new(Arc::clone(&engine))
                .trend(&admin, q.clone())
                .await
                .unwrap()
        };
        let same = |a: &Answer<Trend>, b: &Answer<Trend>| {
            // Bit for bit: the same levels summed in the same order.
            assert_eq!(a.value.points, b.value.points);
            assert_eq!(a.value.improvements, b.value.improvements);
            assert_eq!(a.subjects, b.subjects);
        };
        let before = service.trend(&admin, q.clone()).await.unwrap();
        let snapshot = engine.snapshot();
        let mut members: Vec<PersonId> = snapshot
            .directory
            .people()
            .values()
            .filter(|p| snapshot.directory.department_of(&p.team).as_str() == "dept-01")
            .map(|p| p.id.clone())
            .collect();
        members.sort_unstable();
        // The most improved member improves further; another drops.
        let star = before.value.improvements.first().expect("someone improved");
        let star = star.person.clone();
        let other = members.iter().find(|&m| *m != star).unwrap().clone();
        let members = [star, other];
        // Two members gain evidence: a big improvement for one, a drop for the other.
        let write = |id: &str, person: &PersonId, score: f64| crate::domain::Assessment {
            id: crate::domain::AssessmentId::parse(id).unwrap(),
            person: person.clone(),
            skill: skill("rust"),
            score: Level::parse(score).unwrap(),
            source: crate::domain::Source::ObjectiveTest,
            assessor: None,
            // Before the last point (every 30 days from a year ago: 5 days ago).
            assessed_at: Timestamp::from_unix_millis(now.unix_millis() - 10 * 86_400_000),
            evidence: crate::domain::Text::default(),
        };
        let items = vec![
            (0, write("basis-1", &members[0], 5.0)),
            (1, write("basis-2", &members[1], 0.0)),
            (2, write("basis-3", &members[0], 5.0)),
        ];
        let version = engine.snapshot().data_version;
        let outcome = engine.record_assessments(items).await.unwrap();
        assert_eq!(outcome.accepted, 3, "{:?}", outcome.rejections);
        let mut changes = engine.changes();
        while engine.snapshot().data_version == version {
            changes.changed().await.unwrap();
        }
        let updated = service.trend(&admin, q.clone()).await.unwrap();
        assert_ne!(updated.value.points, before.value.points, "the writes show");
        same(&updated, &afresh().await);
        assert!(
            updated
                .value
                .improvements
                .iter()
                .any(|i| i.person == members[0]),
            "the most improved is still among the largest"
        );
        // An erased member leaves the kept rows with everything they contributed.
        engine.delete_person(members[0].clone()).await.unwrap();
        let erased = service.trend(&admin, q.clone()).await.unwrap();
        same(&erased, &afresh().await);
        assert!(
            erased
                .value
                .improvements
                .iter()
                .all(|i| i.person != members[0])
        );
        assert!(!erased.subjects.contains(&members[0].to_string()));
    }

    #[tokio::test]
    async fn analysts_follow_departments_with_nobody_named_and_no_small_group_shown() {
        let (_dir, engine) = demo_engine(400).await;
        let culture = Arc::new(Culture::new(Arc::clone(&engine), Duration::from_secs(3600)));
        let service = Capability::new(Arc::clone(&engine)).for_analysts(6, culture);
        let now = Timestamp::now();
        let q = |t: &str| TrendQuery {
            team: team(t),
            skills: ["python", "rust", "kubernetes", "negotiation"]
                .map(skill)
                .to_vec(),
            from: Timestamp::from_unix_millis(now.unix_millis() - 365 * 86_400_000),
            to: now,
            interval_days: 30,
        };
        let admin = service
            .trend(&grant(AccessRole::Admin, &[]), q("dept-01"))
            .await
            .unwrap();
        let analyst = grant(AccessRole::Analyst, &[]);
        let seen = service.trend(&analyst, q("dept-01")).await.unwrap();
        assert!(!admin.value.improvements.is_empty() && !admin.subjects.is_empty());
        assert!(seen.value.improvements.is_empty() && seen.subjects.is_empty());
        assert_eq!(seen.value.points.len(), admin.value.points.len());
        let (mut shown, mut hidden) = (0, 0);
        for ((skill, full), (same, point)) in admin.value.points.iter().zip(&seen.value.points) {
            assert_eq!(skill, same);
            if full.known >= 6 {
                assert_eq!(point, full, "a group large enough is shown as it is");
                shown += 1;
            } else {
                assert_eq!((point.mean, point.known, point.proficient), (None, 0, 0));
                hidden += 1;
            }
        }
        assert!(
            shown > 0 && hidden > 0,
            "both cases occur ({shown} shown, {hidden} hidden)"
        );
        // New evidence moves the admin's answer at once; the analysts' stays on the
        // published snapshot, so the two answers cannot be differenced.
        let snapshot = engine.snapshot();
        let person = snapshot
            .directory
            .people()
            .values()
            .find(|p| snapshot.directory.department_of(&p.team).as_str() == "dept-01")
            .unwrap()
            .id
            .clone();
        let items = (0..20)
            .map(|i| {
                let a = crate::domain::Assessment {
                    id: crate::domain::AssessmentId::parse(&format!("trend-pin-{i}")).unwrap(),
                    person: person.clone(),
                    skill: skill("rust"),
                    // Far from any level they could have had: their level moves.
                    score: Level::parse(0.0).unwrap(),
                    source: crate::domain::Source::ObjectiveTest,
                    assessor: None,
                    // Before the last point (every 30 days from a year ago).
                    assessed_at: Timestamp::from_unix_millis(now.unix_millis() - 30 * 86_400_000),
                    evidence: crate::domain::Text::default(),
                };
                (i, a)
            })
            .collect();
        let before = engine.snapshot().data_version;
        let outcome = engine.record_assessments(items).await.unwrap();
        assert_eq!(outcome.accepted, 20, "{:?}", outcome.rejections);
        let mut changes = engine.changes();
        while engine.snapshot().data_version == before {
            changes.changed().await.unwrap();
        }
        let admin_after = service
            .trend(&grant(AccessRole::Admin, &[]), q("dept-01"))
            .await
            .unwrap();
        let seen_after = service.trend(&analyst, q("dept-01")).await.unwrap();
        let points = |t: &Trend| t.points.iter().map(|(_, p)| *p).collect::<Vec<_>>();
        assert_ne!(
            points(&admin_after.value),
            points(&admin.value),
            "the write shows to the admin"
        );
        assert_eq!(
            points(&seen_after.value),
            points(&seen.value),
            "pinned for analysts"
        );
        // A team inside a department, or the root above the departments, could be
        // differenced against a department: refused.
        let team_inside = engine_team_below(&service, "dept-01");
        for nested in [team_inside.as_str(), "org"] {
            assert!(
                matches!(
                    service.trend(&analyst, q(nested)).await,
                    Err(Error::PermissionDenied)
                ),
                "{nested}"
            );
        }
    }

    /// A team below `department`.
    fn engine_team_below(service: &Capability, department: &str) -> String {
        let snapshot = service.engine.snapshot();
        let teams = snapshot.directory.subtree(department).unwrap();
        let below = teams.iter().find(|t| t.as_str() != department).unwrap();
        below.to_string()
    }

    #[tokio::test]
    async fn expert_and_trend_questions_are_bounded_and_name_whom_they_reveal() {
        let (_dir, engine) = demo_engine(120).await;
        let service = Capability::new(engine);
        let admin = grant(AccessRole::Admin, &[]);
        let experts = |requirements: Vec<(SkillId, f64)>, min_confidence| ExpertsQuery {
            requirements,
            min_confidence,
            scope: None,
            page_size: 5,
            page_token: String::new(),
        };
        let too_many = experts(vec![(skill("rust"), 1.0); 21], 0.0);
        let e = service.experts(&admin, &too_many).unwrap_err();
        assert_eq!(fields_of(&e), ["requirements"]);
        let e = service
            .experts(&admin, &experts(vec![(skill("rust"), 1.0)], f64::NAN))
            .unwrap_err();
        assert_eq!(fields_of(&e), ["min_confidence"]);
        let page = service
            .experts(&admin, &experts(vec![(skill("rust"), 0.0)], 0.0))
            .unwrap();
        assert!(page.value.experts.len() <= 5);
        let named: Vec<String> = page
            .value
            .experts
            .iter()
            .map(|(p, _)| p.id.to_string())
            .collect();
        assert_eq!(page.subjects, named);
        let now = Timestamp::now();
        let year_ago = Timestamp::from_unix_millis(now.unix_millis() - 365 * 86_400_000);
        let trend = |skills: Vec<SkillId>, interval_days| TrendQuery {
            team: team("dept-01"),
            skills,
            from: year_ago,
            to: now,
            interval_days,
        };
        let e = service
            .trend(&admin, trend(vec![skill("rust"); 51], 30))
            .await
            .unwrap_err();
        assert_eq!(fields_of(&e), ["skill_ids"]);
        let e = service
            .trend(&admin, trend(vec![skill("rust")], 1))
            .await
            .unwrap_err();
        assert_eq!(fields_of(&e), ["interval_days"]);
        let answer = service
            .trend(&admin, trend(vec![skill("rust")], 30))
            .await
            .unwrap();
        assert!(answer.value.improvements.len() <= TOP_IMPROVEMENTS);
        let improved: Vec<String> = answer
            .value
            .improvements
            .iter()
            .map(|i| i.person.to_string())
            .collect();
        assert_eq!(answer.subjects, improved);
    }

    proptest! {
        /// Whatever times and interval a request sends, a trend has at most 200 dates,
        /// or the request is refused; nothing panics or overflows.
        #[test]
        fn trend_dates_are_bounded_for_any_request(
            from_s in prop_oneof![any::<i64>(), Timestamp::MIN_SECONDS..=Timestamp::MAX_SECONDS],
            to_s in prop_oneof![any::<i64>(), Timestamp::MIN_SECONDS..=Timestamp::MAX_SECONDS],
            nanos in any::<i32>(),
            interval_days in any::<u32>(),
        ) {
            let (Ok(from), Ok(to)) = (
                Timestamp::parse_seconds(from_s, nanos.rem_euclid(1_000_000_000)),
                Timestamp::parse_seconds(to_s, 0),
            ) else {
                return Ok(());
            };
            if let Ok(dates) = trend_dates(from, to, interval_days) {
                prop_assert!(!dates.is_empty() && dates.len() as i64 <= MAX_TREND_POINTS);
            }
        }
    }

    #[test]
    fn the_widest_range_is_one_point_at_the_longest_interval_and_refused_at_the_shortest() {
        let (first, last) = (
            Timestamp::parse_seconds(Timestamp::MIN_SECONDS, 0).unwrap(),
            Timestamp::parse_seconds(Timestamp::MAX_SECONDS, 0).unwrap(),
        );
        assert_eq!(trend_dates(first, last, u32::MAX).unwrap().len(), 1);
        assert!(trend_dates(first, last, 1).is_err());
        assert!(trend_dates(last, first, 1).is_err());
    }
}
