//! Active mentoring relationships. They are what bounds a mentor's load: mentor search
//! and planning leave out mentors who already have as many mentees as they can take.

use std::collections::{BTreeMap, HashMap};

use super::{Directory, FieldViolation, PersonId, SkillId, Timestamp};

/// Most skills named on one mentoring relationship.
pub const MAX_MENTORING_SKILLS: usize = 50;

/// `mentor` mentors `mentee`, for `skills`, since `started`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mentorship {
    /// Who learns.
    pub mentee: PersonId,
    /// Who teaches.
    pub mentor: PersonId,
    /// What for (may be empty).
    pub skills: Vec<SkillId>,
    /// When it started.
    pub started: Timestamp,
}

impl Mentorship {
    /// Violations of this relationship against `directory`: both people exist and differ,
    /// and every skill exists.
    pub fn check(&self, directory: &Directory) -> Vec<FieldViolation> {
        let mut v = Vec::new();
        if directory.person(self.mentee.as_str()).is_none() {
            v.push(FieldViolation::new("mentee_id", "no such person"));
        }
        if directory.person(self.mentor.as_str()).is_none() {
            v.push(FieldViolation::new("mentor_id", "no such person"));
        }
        if self.mentee == self.mentor {
            v.push(FieldViolation::new(
                "mentor_id",
                "a person cannot mentor themself",
            ));
        }
        if self.skills.len() > MAX_MENTORING_SKILLS {
            v.push(FieldViolation::new(
                "skill_ids",
                format!("at most {MAX_MENTORING_SKILLS} skills"),
            ));
        }
        for (i, skill) in self.skills.iter().enumerate() {
            if !directory.skills().contains_key(skill) {
                v.push(FieldViolation::new(
                    format!("skill_ids[{i}]"),
                    "no such skill",
                ));
            }
        }
        v
    }
}

/// Every active mentoring relationship, by mentee then mentor, with each mentor's load.
#[derive(Clone, Debug, Default)]
pub struct Mentorships {
    by_mentee: BTreeMap<PersonId, BTreeMap<PersonId, Mentorship>>,
    load: HashMap<PersonId, usize>,
    len: usize,
}

impl Mentorships {
    /// The relationships `items`.
    pub fn new(items: impl IntoIterator<Item = Mentorship>) -> Self {
        let mut all = Self::default();
        for m in items {
            all.insert(m);
        }
        all
    }

    /// Adds (or replaces) a relationship.
    pub fn insert(&mut self, m: Mentorship) {
        let mentor = m.mentor.clone();
        let mentors = self.by_mentee.entry(m.mentee.clone()).or_default();
        if mentors.insert(mentor.clone(), m).is_none() {
            *self.load.entry(mentor).or_default() += 1;
            self.len += 1;
        }
    }

    /// Removes a relationship, returning it.
    pub fn remove(&mut self, mentee: &PersonId, mentor: &PersonId) -> Option<Mentorship> {
        let mentors = self.by_mentee.get_mut(mentee)?;
        let removed = mentors.remove(mentor)?;
        if mentors.is_empty() {
            self.by_mentee.remove(mentee);
        }
        if let Some(load) = self.load.get_mut(mentor) {
            *load -= 1;
            if *load == 0 {
                self.load.remove(mentor);
            }
        }
        self.len -= 1;
        Some(removed)
    }

    /// The relationship of `mentee` with `mentor`, if active.
    pub fn get(&self, mentee: &PersonId, mentor: &PersonId) -> Option<&Mentorship> {
        self.by_mentee.get(mentee)?.get(mentor)
    }

    /// How many mentees `mentor` has.
    pub fn load(&self, mentor: &PersonId) -> usize {
        self.load.get(mentor).copied().unwrap_or(0)
    }

    /// How many mentors `mentee` has.
    pub fn mentors_of(&self, mentee: &PersonId) -> usize {
        self.by_mentee.get(mentee).map_or(0, BTreeMap::len)
    }

    /// Every relationship, by mentee then mentor.
    pub fn iter(&self) -> impl Iterator<Item = &Mentorship> {
        self.by_mentee.values().flat_map(BTreeMap::values)
    }

    /// The relationships `person` is in, on either side.
    pub fn involving(&self, person: &PersonId) -> Vec<Mentorship> {
        self.iter()
            .filter(|m| &m.mentee == person || &m.mentor == person)
            .cloned()
            .collect()
    }

    /// Number of relationships.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(mentee: &str, mentor: &str) -> Mentorship {
        Mentorship {
            mentee: PersonId::parse(mentee).unwrap(),
            mentor: PersonId::parse(mentor).unwrap(),
            skills: Vec::new(),
            started: Timestamp::from_unix_millis(0),
        }
    }

    #[test]
    fn loads_follow_inserts_and_removals() {
        let mut all = Mentorships::new([pair("a", "m"), pair("b", "m"), pair("a", "n")]);
        let (a, m, n) = (
            PersonId::parse("a").unwrap(),
            PersonId::parse("m").unwrap(),
            PersonId::parse("n").unwrap(),
        );
        assert_eq!((all.load(&m), all.load(&n), all.mentors_of(&a)), (2, 1, 2));
        all.insert(pair("a", "m")); // replacing is not a second relationship
        assert_eq!(all.load(&m), 2);
        assert!(all.remove(&a, &m).is_some());
        assert!(all.remove(&a, &m).is_none());
        assert_eq!((all.load(&m), all.mentors_of(&a), all.len()), (1, 1, 2));
        assert_eq!(all.involving(&n).len(), 1);
    }
}
