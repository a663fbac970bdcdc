//! Scope admission: the one rule for every rpc that names a team or a person.
//!
//! A caller who may see everything learns whether the subject exists (NOT_FOUND). Any
//! other caller is denied a subject outside their scope whether or not it exists
//! (PERMISSION_DENIED), so that a denial never reveals existence.

use crate::domain::{AccessRole, Directory, Grant, Person, PersonId, Scope, TeamId};
use crate::error::{Error, Result};

/// Admits naming `team` under `scope`.
pub fn admit_team(scope: &Scope, directory: &Directory, team: &TeamId) -> Result<()> {
    match scope {
        Scope::Everything if directory.teams().contains_key(team) => Ok(()),
        Scope::Everything => Err(Error::NotFound { kind: "team" }),
        // A scope holds only existing teams (it is resolved against the org tree).
        s if s.covers_team(team) => Ok(()),
        _ => Err(Error::PermissionDenied),
    }
}

/// Admits `grant` naming `team` (its scope resolved against `directory`).
pub fn admit_team_for(grant: &Grant, directory: &Directory, team: &TeamId) -> Result<()> {
    admit_team(&grant.person_scope(directory), directory, team)
}

/// Admits naming the person `id` under `scope`; returns them.
pub fn admit_person<'a>(
    scope: &Scope,
    directory: &'a Directory,
    id: &PersonId,
) -> Result<&'a Person> {
    match directory.person(id.as_str()) {
        Some(person) if scope.covers_person(person) => Ok(person),
        None if *scope == Scope::Everything => Err(Error::NotFound { kind: "person" }),
        _ => Err(Error::PermissionDenied),
    }
}

/// The scope of an aggregate question (`None`: the whole organisation), if `grant` may
/// ask it. Analysts only ever ask about the whole organisation, so that nested scopes
/// cannot be differenced; scoped callers only about teams inside their scope; the whole
/// organisation needs a caller who sees everything.
pub fn admit_aggregate(
    grant: &Grant,
    directory: &Directory,
    team: Option<&TeamId>,
) -> Result<Option<TeamId>> {
    let scope = grant.person_scope(directory);
    match (grant.role, team) {
        (AccessRole::Analyst, None) => Ok(None),
        (AccessRole::Analyst, Some(_)) => Err(Error::PermissionDenied),
        (_, None) if scope == Scope::Everything => Ok(None),
        (_, None) => Err(Error::PermissionDenied),
        (_, Some(team)) => admit_team(&scope, directory, team).map(|()| Some(team.clone())),
    }
}

/// Admits an analyst following the trend of `team`: only whole departments (teams
/// directly under a root, or roots with no teams below). Departments are disjoint, so
/// no two answers can be differenced into a smaller group, which nested subtrees (a
/// root minus its departments, a department minus a team) would allow.
pub fn admit_department(directory: &Directory, team: &TeamId) -> Result<()> {
    let Some(found) = directory.teams().get(team) else {
        return Err(Error::NotFound { kind: "team" });
    };
    let department = directory.department_of(team) == team;
    let root_above_departments = found.parent.is_none()
        && directory
            .subtree(team.as_str())
            .is_some_and(|teams| teams.len() > 1);
    if department && !root_above_departments {
        Ok(())
    } else {
        Err(Error::PermissionDenied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Availability, Person, RoleId, Team, Text};

    fn id(raw: &str) -> TeamId {
        TeamId::parse(raw).unwrap()
    }

    /// org ⊃ {eng ⊃ backend, sales}; alice in backend, bob in sales.
    fn directory() -> Directory {
        let mut d = Directory::default();
        let teams = [
            ("org", None),
            ("eng", Some("org")),
            ("backend", Some("eng")),
            ("sales", Some("org")),
        ];
        d.upsert_teams(teams.map(|(team, parent)| Team {
            id: id(team),
            name: Text::name(team).unwrap(),
            parent: parent.map(id),
            manager: None,
        }));
        d.upsert_people(
            [("alice", "backend"), ("bob", "sales")].map(|(person, team)| Person {
                id: PersonId::parse(person).unwrap(),
                display_name: Text::name(person).unwrap(),
                team: id(team),
                role: RoleId::parse("dev").unwrap(),
                target_role: None,
                availability: Availability::parse(1.0).unwrap(),
            }),
        );
        d
    }

    fn grant(role: AccessRole, teams: &[&str], person: Option<&str>) -> Grant {
        Grant::parse(
            role,
            teams.iter().map(|t| id(t)).collect(),
            person.map(|p| PersonId::parse(p).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn analysts_follow_whole_departments_only() {
        let d = directory();
        for department in ["eng", "sales"] {
            assert!(
                admit_department(&d, &id(department)).is_ok(),
                "{department}"
            );
        }
        // The root minus its departments, or a department minus a team, would be a
        // smaller group by difference.
        for nested in ["org", "backend"] {
            assert!(
                matches!(
                    admit_department(&d, &id(nested)),
                    Err(Error::PermissionDenied)
                ),
                "{nested}"
            );
        }
        assert!(matches!(
            admit_department(&d, &id("ghost")),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn only_callers_who_see_everything_learn_that_a_team_does_not_exist() {
        let d = directory();
        let admin = grant(AccessRole::Admin, &[], None).person_scope(&d);
        let manager = grant(AccessRole::Manager, &["eng"], None).person_scope(&d);
        assert!(admit_team(&admin, &d, &id("sales")).is_ok());
        assert!(matches!(
            admit_team(&admin, &d, &id("ghost")),
            Err(Error::NotFound { .. })
        ));
        assert!(
            admit_team(&manager, &d, &id("backend")).is_ok(),
            "inside the subtree"
        );
        for outside in ["sales", "org", "ghost"] {
            assert!(
                matches!(
                    admit_team(&manager, &d, &id(outside)),
                    Err(Error::PermissionDenied)
                ),
                "{outside}"
            );
        }
    }

    #[test]
    fn people_outside_the_scope_are_denied_whether_or_not_they_exist() {
        let d = directory();
        let person = grant(AccessRole::Person, &[], Some("alice")).person_scope(&d);
        let alice = PersonId::parse("alice").unwrap();
        let ghost = PersonId::parse("ghost").unwrap();
        let bob = PersonId::parse("bob").unwrap();
        assert_eq!(admit_person(&person, &d, &alice).unwrap().id, alice);
        assert!(matches!(
            admit_person(&person, &d, &bob),
            Err(Error::PermissionDenied)
        ));
        assert!(matches!(
            admit_person(&person, &d, &ghost),
            Err(Error::PermissionDenied)
        ));
        assert!(matches!(
            admit_person(&Scope::Everything, &d, &ghost),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn analysts_ask_only_about_the_whole_organisation_and_managers_only_inside_their_scope() {
        let d = directory();
        let analyst = grant(AccessRole::Analyst, &[], None);
        let manager = grant(AccessRole::Manager, &["eng"], None);
        assert_eq!(admit_aggregate(&analyst, &d, None).unwrap(), None);
        assert!(admit_aggregate(&analyst, &d, Some(&id("eng"))).is_err());
        assert!(admit_aggregate(&manager, &d, None).is_err());
        assert_eq!(
            admit_aggregate(&manager, &d, Some(&id("backend"))).unwrap(),
            Some(id("backend"))
        );
        assert!(matches!(
            admit_aggregate(&manager, &d, Some(&id("sales"))),
            Err(Error::PermissionDenied)
        ));
    }
}
