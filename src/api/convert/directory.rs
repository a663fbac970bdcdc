//! The directory's entities (skills, roles, teams, people) to and from their messages.

use super::{category_from_pb, category_to_pb, optional_id, widen};
use crate::api::pb;
use crate::domain::{
    Availability, FieldViolation, Indicator, Level, Person, PersonId, Requirement, Role, RoleId,
    Skill, SkillId, Team, TeamId, Text, Violations, Weight,
};

impl TryFrom<pb::Skill> for Skill {
    type Error = Vec<FieldViolation>;

    fn try_from(value: pb::Skill) -> Result<Self, Self::Error> {
        let pb::Skill {
            id,
            name,
            category,
            description,
            indicators,
        } = value;
        let mut v = Violations::default();
        let id = v.take("id", SkillId::parse(&id));
        let name = v.take("name", Text::name(&name));
        let category = v.take("category", category_from_pb(category));
        let description = v.take("description", Text::long(&description));
        let mut parsed = Vec::with_capacity(indicators.len());
        for (i, indicator) in indicators.into_iter().enumerate() {
            let pb::BehaviouralIndicator { level, description } = indicator;
            let prefix = format!("indicators[{i}]");
            let text = v.take(&format!("{prefix}.description"), Text::long(&description));
            if let Some(indicator) = text.and_then(|t| v.take(&prefix, Indicator::parse(level, t)))
            {
                parsed.push(indicator);
            }
        }
        let (Some(id), Some(name), Some(category), Some(description), true) =
            (id, name, category, description, v.is_empty())
        else {
            return Err(v.into_vec());
        };
        let skill = Skill {
            id,
            name,
            category,
            description,
            indicators: parsed,
        };
        let cross = skill.check();
        if cross.is_empty() {
            Ok(skill)
        } else {
            Err(cross)
        }
    }
}

impl From<&Skill> for pb::Skill {
    fn from(skill: &Skill) -> Self {
        Self {
            id: skill.id.to_string(),
            name: skill.name.as_str().to_owned(),
            category: category_to_pb(skill.category).into(),
            description: skill.description.as_str().to_owned(),
            indicators: skill
                .indicators
                .iter()
                .map(|i| pb::BehaviouralIndicator {
                    level: u32::from(i.level),
                    description: i.description.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::Role> for Role {
    type Error = Vec<FieldViolation>;

    fn try_from(value: pb::Role) -> Result<Self, Self::Error> {
        let pb::Role {
            id,
            name,
            requirements,
        } = value;
        let mut v = Violations::default();
        let id = v.take("id", RoleId::parse(&id));
        let name = v.take("name", Text::name(&name));
        let mut parsed = Vec::with_capacity(requirements.len());
        for (i, requirement) in requirements.into_iter().enumerate() {
            let pb::RoleRequirement {
                skill_id,
                required_level,
                weight,
            } = requirement;
            let prefix = format!("requirements[{i}]");
            let skill = v.take(&format!("{prefix}.skill_id"), SkillId::parse(&skill_id));
            let level = v.take(
                &format!("{prefix}.required_level"),
                Level::parse(required_level),
            );
            let weight = v.take(&format!("{prefix}.weight"), Weight::parse(weight));
            if let (Some(skill), Some(level), Some(weight)) = (skill, level, weight) {
                parsed.push(Requirement {
                    skill,
                    level,
                    weight,
                });
            }
        }
        let (Some(id), Some(name), true) = (id, name, v.is_empty()) else {
            return Err(v.into_vec());
        };
        let role = Role {
            id,
            name,
            requirements: parsed,
        };
        let cross = role.check();
        if cross.is_empty() {
            Ok(role)
        } else {
            Err(cross)
        }
    }
}

impl From<&Role> for pb::Role {
    fn from(role: &Role) -> Self {
        Self {
            id: role.id.to_string(),
            name: role.name.as_str().to_owned(),
            requirements: role
                .requirements
                .iter()
                .map(|r| pb::RoleRequirement {
                    skill_id: r.skill.to_string(),
                    required_level: widen(r.level.value()),
                    weight: widen(r.weight.value()),
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::Team> for Team {
    type Error = Vec<FieldViolation>;

    fn try_from(value: pb::Team) -> Result<Self, Self::Error> {
        let pb::Team {
            id,
            name,
            parent_id,
            manager_id,
        } = value;
        let mut v = Violations::default();
        let id = v.take("id", TeamId::parse(&id));
        let name = v.take("name", Text::name(&name));
        let parent = v.take("parent_id", optional_id(&parent_id, TeamId::parse));
        let manager = v.take("manager_id", optional_id(&manager_id, PersonId::parse));
        match (id, name, parent, manager) {
            (Some(id), Some(name), Some(parent), Some(manager)) => Ok(Team {
                id,
                name,
                parent,
                manager,
            }),
            _ => Err(v.into_vec()),
        }
    }
}

impl From<&Team> for pb::Team {
    fn from(team: &Team) -> Self {
        Self {
            id: team.id.to_string(),
            name: team.name.as_str().to_owned(),
            parent_id: team
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            manager_id: team
                .manager
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

impl TryFrom<pb::Person> for Person {
    type Error = Vec<FieldViolation>;

    fn try_from(value: pb::Person) -> Result<Self, Self::Error> {
        let pb::Person {
            id,
            display_name,
            team_id,
            role_id,
            target_role_id,
            availability,
        } = value;
        let mut v = Violations::default();
        let id = v.take("id", PersonId::parse(&id));
        let display_name = v.take("display_name", Text::name(&display_name));
        let team = v.take("team_id", TeamId::parse(&team_id));
        let role = v.take("role_id", RoleId::parse(&role_id));
        let target_role = v.take(
            "target_role_id",
            optional_id(&target_role_id, RoleId::parse),
        );
        let availability = v.take("availability", Availability::parse(availability));
        match (id, display_name, team, role, target_role, availability) {
            (
                Some(id),
                Some(display_name),
                Some(team),
                Some(role),
                Some(target_role),
                Some(availability),
            ) => Ok(Person {
                id,
                display_name,
                team,
                role,
                target_role,
                availability,
            }),
            _ => Err(v.into_vec()),
        }
    }
}

impl From<&Person> for pb::Person {
    fn from(person: &Person) -> Self {
        Self {
            id: person.id.to_string(),
            display_name: person.display_name.as_str().to_owned(),
            team_id: person.team.to_string(),
            role_id: person.role.to_string(),
            target_role_id: person
                .target_role
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            availability: widen(person.availability.value()),
        }
    }
}
