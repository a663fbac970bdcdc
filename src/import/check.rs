//! Checks an import against the rules the server applies, without writing: every field
//! (the server's own conversions) and every reference (to the server's directory, read
//! first, and to the files' own rows). So every problem of every file is reported in
//! one run — also in files that are not sent because an earlier one has problems — and
//! `--dry-run` can report them without writing anything.

use crate::api::pb;
use crate::domain::{Directory, FieldViolation, Person, Role, Skill, Team, Timestamp};

use super::{Located, Origin, Problem, locate};

/// The directory the import is checked against: the server's, as it grows with the
/// files' rows. `None` when the token may not read the directory (an ingest token):
/// references are then checked by the server as it writes.
pub(super) struct Checker {
    directory: Option<Directory>,
}

/// Converts items, returning the valid ones (with their origins) and the problems.
fn convert<P: Clone, D>(
    file: &str,
    list: &str,
    items: &[Located<P>],
    problems: &mut Vec<Problem>,
) -> (Vec<Origin>, Vec<D>)
where
    D: TryFrom<P, Error = Vec<FieldViolation>>,
{
    let origins: Vec<Origin> = items.iter().map(|(o, _)| o.clone()).collect();
    let mut valid = (Vec::new(), Vec::new());
    for (i, (origin, item)) in items.iter().enumerate() {
        match D::try_from(item.clone()) {
            Ok(domain) => {
                valid.0.push(origin.clone());
                valid.1.push(domain);
            }
            Err(violations) => problems.extend(violations.into_iter().map(|v| {
                locate(
                    file,
                    &origins,
                    &format!("{list}[{i}].{}", v.field),
                    v.reason,
                )
            })),
        }
    }
    valid
}

fn located(file: &str, origins: &[Origin], violations: Vec<FieldViolation>) -> Vec<Problem> {
    violations
        .into_iter()
        .map(|v| locate(file, origins, &v.field, v.reason))
        .collect()
}

impl Checker {
    pub(super) fn new(directory: Option<Directory>) -> Self {
        Self { directory }
    }

    pub(super) fn skills(&mut self, file: &str, items: &[Located<pb::Skill>]) -> Vec<Problem> {
        let mut problems = Vec::new();
        let (origins, skills) = convert::<_, Skill>(file, "skills", items, &mut problems);
        if let Some(d) = &mut self.directory {
            problems.extend(located(file, &origins, d.check_skills(&skills)));
            d.upsert_skills(skills);
        }
        problems
    }

    pub(super) fn roles(&mut self, file: &str, items: &[Located<pb::Role>]) -> Vec<Problem> {
        let mut problems = Vec::new();
        let (origins, roles) = convert::<_, Role>(file, "roles", items, &mut problems);
        if let Some(d) = &mut self.directory {
            problems.extend(located(file, &origins, d.check_roles(&roles)));
            d.upsert_roles(roles);
        }
        problems
    }

    /// Teams without their managers (people come after teams); `managers` checks those.
    pub(super) fn teams(&mut self, file: &str, items: &[Located<pb::Team>]) -> Vec<Problem> {
        let unmanaged = super::without_managers(items);
        let mut problems = Vec::new();
        let (origins, teams) = convert::<_, Team>(file, "teams", &unmanaged, &mut problems);
        if let Some(d) = &mut self.directory {
            problems.extend(located(file, &origins, d.check_teams(&teams)));
            d.upsert_teams(teams);
        }
        problems
    }

    /// The managers of `items` exist (checked once the people are in).
    pub(super) fn managers(&self, file: &str, items: &[Located<pb::Team>]) -> Vec<Problem> {
        let Some(d) = &self.directory else {
            return Vec::new();
        };
        items
            .iter()
            .filter(|(_, t)| {
                !t.manager_id.is_empty() && !d.people().contains_key(t.manager_id.as_str())
            })
            .map(|(o, _)| Problem {
                file: file.to_owned(),
                line: o.line,
                column: "manager_id".into(),
                reason: "unknown person".into(),
            })
            .collect()
    }

    pub(super) fn people(&mut self, file: &str, items: &[Located<pb::Person>]) -> Vec<Problem> {
        let mut problems = Vec::new();
        let (origins, people) = convert::<_, Person>(file, "people", items, &mut problems);
        if let Some(d) = &mut self.directory {
            problems.extend(located(file, &origins, d.check_people(&people)));
            d.upsert_people(people);
        }
        problems
    }

    /// The server's verdict on one assessment row, short of idempotency (which needs
    /// the stored ids): the field checks, then the references.
    pub(super) fn assessment(&self, item: pb::Assessment) -> Result<(), FieldViolation> {
        let assessment = crate::api::assessment_from_pb(item, Timestamp::now())?;
        match &self.directory {
            Some(d) => d.check_assessment(&assessment),
            None => Ok(()),
        }
    }
}
