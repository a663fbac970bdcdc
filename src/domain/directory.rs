//! The organisation directory: competency model, org tree and people, with the
//! referential rules a write must satisfy before it is stored.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{
    Assessment, FieldViolation, Person, PersonId, Role, RoleId, Skill, SkillId, Team, TeamId,
};

/// Skills, roles, teams and people, indexed for lookups and subtree queries.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    skills: BTreeMap<SkillId, Skill>,
    roles: BTreeMap<RoleId, Role>,
    teams: BTreeMap<TeamId, Team>,
    people: BTreeMap<PersonId, Person>,
    children: HashMap<TeamId, BTreeSet<TeamId>>,
    members: HashMap<TeamId, BTreeSet<PersonId>>,
}

/// What erasing a person changed besides removing their record.
#[derive(Clone, Debug)]
pub struct Erasure {
    /// The erased person.
    pub person: Person,
    /// Teams they managed, now without a manager.
    pub unmanaged_teams: Vec<Team>,
}

/// Violations for ids that occur twice in one request (`"people[4].id"`).
fn duplicate_ids<'a>(ids: impl Iterator<Item = &'a str>, list: &str) -> Vec<FieldViolation> {
    let mut seen = HashSet::new();
    ids.enumerate()
        .filter(|(_, id)| !seen.insert(*id))
        .map(|(i, _)| FieldViolation::new(format!("{list}[{i}].id"), "duplicate id in request"))
        .collect()
}

impl Directory {
    /// Skills by id.
    pub fn skills(&self) -> &BTreeMap<SkillId, Skill> {
        &self.skills
    }

    /// Roles by id.
    pub fn roles(&self) -> &BTreeMap<RoleId, Role> {
        &self.roles
    }

    /// Teams by id.
    pub fn teams(&self) -> &BTreeMap<TeamId, Team> {
        &self.teams
    }

    /// People by id.
    pub fn people(&self) -> &BTreeMap<PersonId, Person> {
        &self.people
    }

    /// The stored id equal to `id` (a cheap clone of it shares the allocation).
    pub fn person_id(&self, id: &str) -> Option<&PersonId> {
        self.people.get_key_value(id).map(|(k, _)| k)
    }

    /// The stored skill id equal to `id`.
    pub fn skill_id(&self, id: &str) -> Option<&SkillId> {
        self.skills.get_key_value(id).map(|(k, _)| k)
    }

    /// One person.
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.get(id)
    }

    /// `root` and every team below it, or `None` if `root` does not exist.
    pub fn subtree(&self, root: &str) -> Option<HashSet<TeamId>> {
        let (root, _) = self.teams.get_key_value(root)?;
        let mut found = HashSet::from([root.clone()]);
        let mut stack = vec![root.clone()];
        while let Some(team) = stack.pop() {
            for child in self.children.get(&team).into_iter().flatten() {
                if found.insert(child.clone()) {
                    stack.push(child.clone());
                }
            }
        }
        Some(found)
    }

    /// The department of `team`: its ancestor directly under a root of the org tree (the
    /// team itself when it is a root or directly under one).
    pub fn department_of<'a>(&'a self, team: &'a TeamId) -> &'a TeamId {
        let mut current = team;
        // Bounded by the number of teams: the tree has no cycles (checked on upsert).
        for _ in 0..=self.teams.len() {
            let parent = self.teams.get(current).and_then(|t| t.parent.as_ref());
            match parent {
                Some(p) if self.teams.get(p).is_some_and(|t| t.parent.is_some()) => current = p,
                _ => return current,
            }
        }
        current
    }

    /// Members of one team (not of its subteams).
    pub fn members(&self, team: &str) -> impl Iterator<Item = &PersonId> {
        self.members.get(team).into_iter().flatten()
    }

    /// Reference violations of an upsert of `skills`.
    pub fn check_skills(&self, skills: &[Skill]) -> Vec<FieldViolation> {
        duplicate_ids(skills.iter().map(|s| s.id.as_str()), "skills")
    }

    /// Reference violations of an upsert of `roles`: every required skill must exist.
    pub fn check_roles(&self, roles: &[Role]) -> Vec<FieldViolation> {
        let mut violations = duplicate_ids(roles.iter().map(|r| r.id.as_str()), "roles");
        for (i, role) in roles.iter().enumerate() {
            for (j, requirement) in role.requirements.iter().enumerate() {
                if !self.skills.contains_key(&requirement.skill) {
                    violations.push(FieldViolation::new(
                        format!("roles[{i}].requirements[{j}].skill_id"),
                        "unknown skill",
                    ));
                }
            }
        }
        violations
    }

    /// Reference violations of an upsert of `teams`: parents (stored or in the request)
    /// and managers must exist, and no parent chain may loop.
    pub fn check_teams(&self, teams: &[Team]) -> Vec<FieldViolation> {
        let mut violations = duplicate_ids(teams.iter().map(|t| t.id.as_str()), "teams");
        let mut parent_of: HashMap<&str, Option<&str>> = self
            .teams
            .values()
            .map(|t| (t.id.as_str(), t.parent.as_ref().map(TeamId::as_str)))
            .collect();
        for team in teams {
            parent_of.insert(team.id.as_str(), team.parent.as_ref().map(TeamId::as_str));
        }
        for (i, team) in teams.iter().enumerate() {
            if let Some(parent) = &team.parent {
                if !parent_of.contains_key(parent.as_str()) {
                    violations.push(FieldViolation::new(
                        format!("teams[{i}].parent_id"),
                        "unknown team",
                    ));
                } else if Self::loops(&parent_of, team.id.as_str()) {
                    violations.push(FieldViolation::new(
                        format!("teams[{i}].parent_id"),
                        "parent links would form a cycle",
                    ));
                }
            }
            if let Some(manager) = &team.manager
                && !self.people.contains_key(manager)
            {
                violations.push(FieldViolation::new(
                    format!("teams[{i}].manager_id"),
                    "unknown person",
                ));
            }
        }
        violations
    }

    /// True when following parent links from `start` comes back to `start`.
    fn loops(parent_of: &HashMap<&str, Option<&str>>, start: &str) -> bool {
        let mut current = start;
        // A chain longer than the number of teams must revisit one.
        for _ in 0..=parent_of.len() {
            match parent_of.get(current).copied().flatten() {
                Some(parent) if parent == start => return true,
                Some(parent) => current = parent,
                None => return false,
            }
        }
        true
    }

    /// Reference violations of an upsert of `people`: team and roles must exist.
    pub fn check_people(&self, people: &[Person]) -> Vec<FieldViolation> {
        let mut violations = duplicate_ids(people.iter().map(|p| p.id.as_str()), "people");
        for (i, person) in people.iter().enumerate() {
            if !self.teams.contains_key(&person.team) {
                violations.push(FieldViolation::new(
                    format!("people[{i}].team_id"),
                    "unknown team",
                ));
            }
            if !self.roles.contains_key(&person.role) {
                violations.push(FieldViolation::new(
                    format!("people[{i}].role_id"),
                    "unknown role",
                ));
            }
            if let Some(target) = &person.target_role
                && !self.roles.contains_key(target)
            {
                violations.push(FieldViolation::new(
                    format!("people[{i}].target_role_id"),
                    "unknown role",
                ));
            }
        }
        violations
    }

    /// The reference violation of one assessment: person, skill and assessor must exist.
    pub fn check_assessment(&self, assessment: &Assessment) -> Result<(), FieldViolation> {
        if !self.people.contains_key(&assessment.person) {
            return Err(FieldViolation::new("person_id", "unknown person"));
        }
        if !self.skills.contains_key(&assessment.skill) {
            return Err(FieldViolation::new("skill_id", "unknown skill"));
        }
        match &assessment.assessor {
            Some(assessor) if !self.people.contains_key(assessor) => {
                Err(FieldViolation::new("assessor_id", "unknown person"))
            }
            _ => Ok(()),
        }
    }

    /// Stores `skills`, replacing those with the same id. Call `check_skills` first.
    pub fn upsert_skills(&mut self, skills: impl IntoIterator<Item = Skill>) {
        for skill in skills {
            self.skills.insert(skill.id.clone(), skill);
        }
    }

    /// Stores `roles`, replacing those with the same id. Call `check_roles` first.
    pub fn upsert_roles(&mut self, roles: impl IntoIterator<Item = Role>) {
        for role in roles {
            self.roles.insert(role.id.clone(), role);
        }
    }

    /// Stores `teams`, replacing those with the same id. Call `check_teams` first.
    pub fn upsert_teams(&mut self, teams: impl IntoIterator<Item = Team>) {
        for team in teams {
            if let Some(old_parent) = self.teams.get(&team.id).and_then(|t| t.parent.clone())
                && let Some(siblings) = self.children.get_mut(&old_parent)
            {
                siblings.remove(&team.id);
            }
            if let Some(parent) = &team.parent {
                self.children
                    .entry(parent.clone())
                    .or_default()
                    .insert(team.id.clone());
            }
            self.teams.insert(team.id.clone(), team);
        }
    }

    /// Stores `people`, replacing those with the same id. Call `check_people` first.
    pub fn upsert_people(&mut self, people: impl IntoIterator<Item = Person>) {
        for person in people {
            if let Some(old) = self.people.get(&person.id)
                && let Some(members) = self.members.get_mut(&old.team)
            {
                members.remove(&person.id);
            }
            self.members
                .entry(person.team.clone())
                .or_default()
                .insert(person.id.clone());
            self.people.insert(person.id.clone(), person);
        }
    }

    /// What erasing person `id` changes, without changing anything; `None` if the person
    /// does not exist. Planning first lets the store fail without leaving memory half-done.
    pub fn erasure_of(&self, id: &str) -> Option<Erasure> {
        let person = self.people.get(id)?.clone();
        let unmanaged_teams = self
            .teams
            .values()
            .filter(|t| t.manager.as_ref().is_some_and(|m| m.as_str() == id))
            .map(|t| Team {
                manager: None,
                ..t.clone()
            })
            .collect();
        Some(Erasure {
            person,
            unmanaged_teams,
        })
    }

    /// Applies a planned erasure: removes the person and their management of teams.
    pub fn apply_erasure(&mut self, erasure: &Erasure) {
        let id = &erasure.person.id;
        if let Some(person) = self.people.remove(id)
            && let Some(members) = self.members.get_mut(&person.team)
        {
            members.remove(id);
        }
        for team in &erasure.unmanaged_teams {
            if let Some(stored) = self.teams.get_mut(&team.id) {
                stored.manager = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Availability, Text};

    fn team(id: &str, parent: Option<&str>) -> Team {
        Team {
            id: TeamId::parse(id).unwrap(),
            name: Text::name(id).unwrap(),
            parent: parent.map(|p| TeamId::parse(p).unwrap()),
            manager: None,
        }
    }

    #[test]
    fn a_parent_may_come_in_the_same_request() {
        let dir = Directory::default();
        let teams = [team("child", Some("root")), team("root", None)];
        assert!(dir.check_teams(&teams).is_empty());
    }

    #[test]
    fn an_unknown_parent_is_reported_with_its_path() {
        let dir = Directory::default();
        let violations = dir.check_teams(&[team("a", None), team("b", Some("nope"))]);
        assert_eq!(
            violations,
            vec![FieldViolation::new("teams[1].parent_id", "unknown team")]
        );
    }

    #[test]
    fn cycles_are_rejected_including_through_stored_teams() {
        let mut dir = Directory::default();
        dir.upsert_teams([team("a", None), team("b", Some("a")), team("c", Some("b"))]);
        let violations = dir.check_teams(&[team("a", Some("c"))]);
        assert_eq!(violations[0].field, "teams[0].parent_id");
        assert!(!dir.check_teams(&[team("self", Some("self"))]).is_empty());
    }

    #[test]
    fn subtree_follows_moves() {
        let mut dir = Directory::default();
        dir.upsert_teams([
            team("org", None),
            team("d1", Some("org")),
            team("t1", Some("d1")),
        ]);
        dir.upsert_teams([team("d2", Some("org"))]);
        assert_eq!(dir.subtree("d1").unwrap().len(), 2);
        dir.upsert_teams([team("t1", Some("d2"))]);
        assert_eq!(dir.subtree("d1").unwrap().len(), 1);
        assert!(dir.subtree("d2").unwrap().contains("t1"));
        assert_eq!(dir.subtree("org").unwrap().len(), 4);
        assert!(dir.subtree("missing").is_none());
    }

    #[test]
    fn erasing_a_manager_clears_their_teams() {
        let mut dir = Directory::default();
        dir.upsert_teams([team("t", None)]);
        let role = Role {
            id: RoleId::parse("r").unwrap(),
            name: Text::name("R").unwrap(),
            requirements: vec![],
        };
        dir.upsert_roles([role]);
        dir.upsert_people([Person {
            id: PersonId::parse("p").unwrap(),
            display_name: Text::name("P").unwrap(),
            team: TeamId::parse("t").unwrap(),
            role: RoleId::parse("r").unwrap(),
            target_role: None,
            availability: Availability::parse(1.0).unwrap(),
        }]);
        let mut managed = team("t", None);
        managed.manager = Some(PersonId::parse("p").unwrap());
        dir.upsert_teams([managed]);
        let erasure = dir.erasure_of("p").unwrap();
        assert_eq!(erasure.unmanaged_teams.len(), 1);
        assert!(
            dir.teams()["t"].manager.is_some(),
            "planning changes nothing"
        );
        dir.apply_erasure(&erasure);
        assert!(dir.teams()["t"].manager.is_none());
        assert_eq!(dir.members("t").count(), 0);
        assert!(dir.erasure_of("p").is_none());
    }
}
