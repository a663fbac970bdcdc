//! A deterministic synthetic organisation (same seed, same organisation) for
//! `serve --demo`, tests and benchmarks. People belong to planted skill archetypes, so
//! clustering has real structure to find; self-ratings are inflated on average and
//! objective tests are noisy but unbiased, as in real assessment data.
//! Uses only `domain`.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::domain::{
    Assessment, AssessmentId, Availability, Indicator, Level, Person, PersonId, Requirement, Role,
    RoleId, Skill, SkillCategory, SkillId, Source, Team, TeamId, Text, Timestamp, Weight,
};

/// The demo's fixed "today" (2026-11-01T00:00:00Z): a constant keeps the output
/// identical whenever it is generated. Assessments span the two years before it.
pub const DEMO_AS_OF_MS: i64 = 1_793_491_200_000;
const TWO_YEARS_MS: i64 = 2 * 365 * 24 * 60 * 60 * 1000;
const TEAM_SIZE: usize = 13;

/// Size and seed of a demo organisation.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Random seed; the same seed gives the same organisation.
    pub seed: u64,
    /// Number of people (about 13 per team, 10 departments).
    pub people: usize,
    /// Number of skills: the 40 named ones, plus generated ones beyond that.
    pub skills: usize,
    /// 0: people belong to the 8 named archetypes, with dense evidence. Otherwise this
    /// many planted occupations with sparse evidence, like a real organisation: each has
    /// 10 core skills drawn at random from all skills (so occupations overlap); a person
    /// holds about 85 % of their occupation's core skills and 1–3 others, with three
    /// assessments (objective test, peer, manager) per held skill and no evidence
    /// anywhere else. Give it a few hundred skills (`skills`).
    pub occupations: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            people: 2_000,
            skills: 40,
            occupations: 0,
        }
    }
}

/// A generated organisation, ready to be written in field order.
#[derive(Clone, Debug)]
pub struct DemoOrg {
    /// Competency model: skills.
    pub skills: Vec<Skill>,
    /// Competency model: roles.
    pub roles: Vec<Role>,
    /// Org tree, without managers (people do not exist yet when it is written).
    pub teams: Vec<Team>,
    /// People.
    pub people: Vec<Person>,
    /// The teams again, now with their managers.
    pub managed_teams: Vec<Team>,
    /// Assessment results over two years.
    pub assessments: Vec<Assessment>,
    /// Names of the planted archetypes (or occupations).
    pub archetype_names: Vec<String>,
    /// Planted archetype (index into `archetype_names`) of each person, in `people` order.
    pub planted_archetypes: Vec<usize>,
}

const NAMED_SKILLS: [(&str, &str, SkillCategory); 40] = [
    ("rust", "Rust", SkillCategory::Technical),
    ("go", "Go", SkillCategory::Technical),
    ("java", "Java", SkillCategory::Technical),
    ("python", "Python", SkillCategory::Technical),
    ("typescript", "TypeScript", SkillCategory::Technical),
    ("react", "React", SkillCategory::Technical),
    ("css", "CSS and layout", SkillCategory::Technical),
    ("sql", "SQL", SkillCategory::Technical),
    ("api-design", "API design", SkillCategory::Technical),
    (
        "distributed-systems",
        "Distributed systems",
        SkillCategory::Technical,
    ),
    ("kubernetes", "Kubernetes", SkillCategory::Technical),
    ("aws", "AWS", SkillCategory::Technical),
    ("terraform", "Terraform", SkillCategory::Technical),
    ("linux", "Linux", SkillCategory::Technical),
    ("observability", "Observability", SkillCategory::Technical),
    ("security", "Application security", SkillCategory::Technical),
    ("networking", "Networking", SkillCategory::Technical),
    (
        "machine-learning",
        "Machine learning",
        SkillCategory::Technical,
    ),
    (
        "data-engineering",
        "Data engineering",
        SkillCategory::Technical,
    ),
    ("statistics", "Statistics", SkillCategory::Technical),
    (
        "test-automation",
        "Test automation",
        SkillCategory::Technical,
    ),
    ("accessibility", "Accessibility", SkillCategory::Technical),
    ("communication", "Communication", SkillCategory::Soft),
    ("collaboration", "Collaboration", SkillCategory::Soft),
    ("mentoring", "Mentoring", SkillCategory::Soft),
    ("coaching", "Coaching", SkillCategory::Soft),
    ("facilitation", "Facilitation", SkillCategory::Soft),
    ("presentation", "Presenting", SkillCategory::Soft),
    (
        "conflict-resolution",
        "Conflict resolution",
        SkillCategory::Soft,
    ),
    ("negotiation", "Negotiation", SkillCategory::Soft),
    (
        "stakeholder-management",
        "Stakeholder management",
        SkillCategory::Business,
    ),
    (
        "product-management",
        "Product management",
        SkillCategory::Business,
    ),
    (
        "business-analysis",
        "Business analysis",
        SkillCategory::Business,
    ),
    ("finance-basics", "Finance basics", SkillCategory::Business),
    (
        "market-analysis",
        "Market analysis",
        SkillCategory::Business,
    ),
    (
        "people-management",
        "People management",
        SkillCategory::Leadership,
    ),
    (
        "strategic-planning",
        "Strategic planning",
        SkillCategory::Leadership,
    ),
    ("hiring", "Hiring", SkillCategory::Leadership),
    ("payments-domain", "Payments domain", SkillCategory::Domain),
    (
        "regulatory-compliance",
        "Regulatory compliance",
        SkillCategory::Domain,
    ),
];

/// Planted archetypes: a name and the skills its members are strong in.
const ARCHETYPES: [(&str, &[&str]); 8] = [
    (
        "Backend",
        &[
            "rust",
            "go",
            "java",
            "sql",
            "api-design",
            "distributed-systems",
        ],
    ),
    (
        "Frontend & UX",
        &[
            "typescript",
            "react",
            "css",
            "accessibility",
            "presentation",
            "collaboration",
        ],
    ),
    (
        "Data & ML",
        &[
            "python",
            "sql",
            "statistics",
            "machine-learning",
            "data-engineering",
        ],
    ),
    (
        "Cloud platform",
        &[
            "kubernetes",
            "aws",
            "terraform",
            "linux",
            "observability",
            "networking",
        ],
    ),
    (
        "Product",
        &[
            "product-management",
            "stakeholder-management",
            "business-analysis",
            "market-analysis",
            "communication",
        ],
    ),
    (
        "People leadership",
        &[
            "people-management",
            "coaching",
            "mentoring",
            "hiring",
            "conflict-resolution",
            "strategic-planning",
        ],
    ),
    (
        "Security & quality",
        &[
            "security",
            "test-automation",
            "regulatory-compliance",
            "networking",
            "linux",
        ],
    ),
    (
        "Delivery",
        &[
            "facilitation",
            "communication",
            "negotiation",
            "stakeholder-management",
            "finance-basics",
            "payments-domain",
        ],
    ),
];

/// Roles: id, name, the archetype it mostly hires from, and (skill, level, weight).
/// Role id, name, the archetype it mostly hires from, and (skill, level, weight).
type RoleSpec = (
    &'static str,
    &'static str,
    usize,
    &'static [(&'static str, f64, f64)],
);

const ROLES: [RoleSpec; 12] = [
    (
        "backend-engineer",
        "Backend engineer",
        0,
        &[
            ("rust", 3.0, 3.0),
            ("sql", 3.0, 2.0),
            ("api-design", 3.0, 2.0),
            ("distributed-systems", 2.5, 1.5),
            ("test-automation", 2.5, 1.0),
            ("collaboration", 3.0, 1.0),
        ],
    ),
    (
        "frontend-engineer",
        "Frontend engineer",
        1,
        &[
            ("typescript", 3.0, 3.0),
            ("react", 3.0, 2.5),
            ("css", 3.0, 1.5),
            ("accessibility", 2.5, 1.5),
            ("collaboration", 3.0, 1.0),
        ],
    ),
    (
        "ux-designer",
        "UX designer",
        1,
        &[
            ("accessibility", 3.5, 2.5),
            ("css", 2.5, 1.0),
            ("presentation", 3.0, 1.5),
            ("collaboration", 3.5, 2.0),
            ("communication", 3.0, 1.5),
        ],
    ),
    (
        "data-scientist",
        "Data scientist",
        2,
        &[
            ("python", 3.5, 3.0),
            ("statistics", 3.5, 3.0),
            ("machine-learning", 3.0, 2.5),
            ("sql", 3.0, 1.5),
            ("presentation", 2.5, 1.0),
        ],
    ),
    (
        "data-engineer",
        "Data engineer",
        2,
        &[
            ("python", 3.0, 2.0),
            ("sql", 3.5, 3.0),
            ("data-engineering", 3.5, 3.0),
            ("aws", 2.5, 1.0),
            ("observability", 2.0, 1.0),
        ],
    ),
    (
        "platform-engineer",
        "Platform engineer",
        3,
        &[
            ("kubernetes", 3.5, 3.0),
            ("terraform", 3.0, 2.5),
            ("aws", 3.0, 2.5),
            ("linux", 3.0, 2.0),
            ("observability", 3.0, 1.5),
            ("networking", 2.5, 1.0),
        ],
    ),
    (
        "security-engineer",
        "Security engineer",
        6,
        &[
            ("security", 3.5, 3.0),
            ("networking", 3.0, 2.0),
            ("linux", 3.0, 1.5),
            ("regulatory-compliance", 2.5, 1.5),
            ("go", 2.5, 1.0),
        ],
    ),
    (
        "qa-engineer",
        "QA engineer",
        6,
        &[
            ("test-automation", 3.5, 3.0),
            ("python", 2.5, 1.5),
            ("communication", 3.0, 1.5),
            ("security", 2.0, 1.0),
        ],
    ),
    (
        "product-manager",
        "Product manager",
        4,
        &[
            ("product-management", 3.5, 3.0),
            ("stakeholder-management", 3.5, 2.5),
            ("market-analysis", 3.0, 2.0),
            ("communication", 3.5, 2.0),
            ("business-analysis", 2.5, 1.0),
        ],
    ),
    (
        "business-analyst",
        "Business analyst",
        4,
        &[
            ("business-analysis", 3.5, 3.0),
            ("sql", 2.5, 1.5),
            ("stakeholder-management", 3.0, 2.0),
            ("finance-basics", 2.5, 1.0),
        ],
    ),
    (
        "engineering-manager",
        "Engineering manager",
        5,
        &[
            ("people-management", 3.5, 3.0),
            ("coaching", 3.0, 2.5),
            ("hiring", 3.0, 2.0),
            ("strategic-planning", 3.0, 1.5),
            ("conflict-resolution", 3.0, 1.5),
            ("mentoring", 3.0, 1.5),
        ],
    ),
    (
        "delivery-lead",
        "Delivery lead",
        7,
        &[
            ("facilitation", 3.5, 3.0),
            ("stakeholder-management", 3.0, 2.5),
            ("communication", 3.5, 2.0),
            ("negotiation", 3.0, 1.5),
            ("finance-basics", 2.5, 1.0),
        ],
    ),
];

/// Departments and the roles their teams mostly staff.
const DEPARTMENTS: [(&str, &[usize]); 10] = [
    ("Platform", &[5, 0, 6, 7]),
    ("Payments", &[0, 11, 8, 6]),
    ("Data", &[3, 4, 9]),
    ("Web", &[1, 2, 0, 7]),
    ("Mobile", &[1, 2, 7]),
    ("Security", &[6, 5, 7]),
    ("Product", &[8, 9, 2]),
    ("Delivery", &[11, 8, 9]),
    ("Engineering management", &[10, 11]),
    ("Analytics", &[3, 9, 4]),
];

const FIRST_NAMES: [&str; 24] = [
    "Ada", "Ben", "Chloé", "Dev", "Elif", "Farah", "Gus", "Hana", "Ivan", "Jun", "Kemi", "Luis",
    "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Vera", "Wen",
    "Yusuf",
];
const LAST_NAMES: [&str; 20] = [
    "Adeyemi", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Haddad", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Weber",
];

const LEVEL_WORDS: [&str; 5] = [
    "awareness: knows what it is and when it matters",
    "working: does routine work with guidance",
    "proficient: does the work unaided",
    "advanced: handles hard cases and teaches others",
    "expert: sets the standard across the organisation",
];

// Generated ids and texts are valid by construction; a failure here is a bug in the
// constants above, so these helpers panic with the offending value.
fn skill_id(raw: &str) -> SkillId {
    SkillId::parse(raw).unwrap_or_else(|_| panic!("demo skill id {raw}"))
}
fn text(raw: &str) -> Text {
    Text::name(raw).unwrap_or_else(|_| panic!("demo text {raw}"))
}
fn long_text(raw: &str) -> Text {
    Text::long(raw).unwrap_or_else(|_| panic!("demo text {raw}"))
}
fn level(raw: f64) -> Level {
    // `+ 0.0` turns a negative zero into 0 (CSV exports would print "-0").
    Level::parse(raw.clamp(0.0, 5.0) + 0.0).unwrap_or_else(|_| panic!("demo level {raw}"))
}

impl DemoOrg {
    /// Generates the organisation described by `config`.
    pub fn generate(config: &DemoConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let skills = demo_skills(config.skills);
        let roles = demo_roles();
        let n_skills = skills.len();

        // Occupations (when asked for): 10 core skills each, drawn from all skills.
        let occupations: Option<Vec<Vec<usize>>> = (config.occupations > 0).then(|| {
            (0..config.occupations)
                .map(|_| rand::seq::index::sample(&mut rng, n_skills, 10.min(n_skills)).into_vec())
                .collect()
        });
        // Archetype profiles: strong in the core skills, weaker elsewhere. Generated
        // skills beyond the named 40 are spread over archetypes at random.
        let profiles: Vec<Vec<f64>> = match &occupations {
            Some(cores) => cores
                .iter()
                .map(|core| {
                    (0..n_skills)
                        .map(|i| {
                            if core.contains(&i) {
                                rng.random_range(3.6..4.4)
                            } else {
                                rng.random_range(0.6..1.8)
                            }
                        })
                        .collect()
                })
                .collect(),
            None => ARCHETYPES
                .iter()
                .map(|(_, core)| {
                    skills
                        .iter()
                        .enumerate()
                        .map(|(i, skill)| {
                            // About six generated skills per archetype are strong, however
                            // many skills are generated.
                            let strong = if i < NAMED_SKILLS.len() {
                                core.contains(&skill.id.as_str())
                            } else {
                                rng.random_bool(
                                    (6.0 / (n_skills - NAMED_SKILLS.len()) as f64).min(0.12),
                                )
                            };
                            if strong {
                                rng.random_range(3.6..4.4)
                            } else {
                                rng.random_range(0.6..1.8)
                            }
                        })
                        .collect()
                })
                .collect(),
        };

        let n_teams = config.people.div_ceil(TEAM_SIZE).max(DEPARTMENTS.len());
        let mut teams = vec![Team {
            id: TeamId::parse("org").unwrap_or_else(|_| panic!("demo team id")),
            name: text("Acme Group"),
            parent: None,
            manager: None,
        }];
        for (d, (name, _)) in DEPARTMENTS.iter().enumerate() {
            teams.push(Team {
                id: team_id(&format!("dept-{:02}", d + 1)),
                name: text(name),
                parent: teams.first().map(|t| t.id.clone()),
                manager: None,
            });
        }
        let mut leaf_teams = Vec::with_capacity(n_teams);
        for t in 0..n_teams {
            let d = t % DEPARTMENTS.len();
            let team = Team {
                id: team_id(&format!("team-{:05}", t + 1)),
                name: text(&format!(
                    "{} team {}",
                    DEPARTMENTS[d].0,
                    t / DEPARTMENTS.len() + 1
                )),
                parent: Some(teams[d + 1].id.clone()),
                manager: None,
            };
            leaf_teams.push((d, team.id.clone()));
            teams.push(team);
        }

        let normal = |sd: f64| Normal::new(0.0, sd).unwrap_or_else(|_| panic!("demo sd {sd}"));
        let person_noise = normal(0.45);
        let mut people = Vec::with_capacity(config.people);
        let mut planted = Vec::with_capacity(config.people);
        let mut true_levels: Vec<Vec<f64>> = Vec::with_capacity(config.people);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_teams];
        for p in 0..config.people {
            let t = p % n_teams;
            let (d, team) = &leaf_teams[t];
            let role = *DEPARTMENTS[*d].1.choose(&mut rng).unwrap_or(&0);
            let archetype = if let Some(cores) = &occupations {
                p % cores.len()
            } else if rng.random_bool(0.8) {
                ROLES[role].2
            } else {
                rng.random_range(0..ARCHETYPES.len())
            };
            let seniority = normal(0.3).sample(&mut rng);
            true_levels.push(
                profiles[archetype]
                    .iter()
                    .map(|base| (base + seniority + person_noise.sample(&mut rng)).clamp(0.0, 5.0))
                    .collect(),
            );
            let target = rng
                .random_bool(0.25)
                .then(|| ROLES.choose(&mut rng).map(|r| r.0))
                .flatten();
            people.push(Person {
                id: person_id(p),
                display_name: text(&format!(
                    "{} {}",
                    FIRST_NAMES[p % FIRST_NAMES.len()],
                    LAST_NAMES[(p / FIRST_NAMES.len() + p * 7) % LAST_NAMES.len()]
                )),
                team: team.clone(),
                role: role_id(ROLES[role].0),
                target_role: target.map(role_id),
                availability: Availability::parse(rng.random_range(0..=10) as f64 / 10.0)
                    .unwrap_or_else(|_| panic!("demo availability")),
            });
            planted.push(archetype);
            members[t].push(p);
        }

        let mut managed_teams = Vec::new();
        for (t, (d, _)) in leaf_teams.iter().enumerate() {
            if let Some(&first) = members[t].first() {
                let mut team = teams[DEPARTMENTS.len() + 1 + t].clone();
                team.manager = Some(people[first].id.clone());
                managed_teams.push(team);
                if t < DEPARTMENTS.len() {
                    let mut department = teams[d + 1].clone();
                    department.manager = Some(people[first].id.clone());
                    managed_teams.push(department);
                }
            }
        }

        let assessments = demo_assessments(
            &mut rng,
            &people,
            &planted,
            &true_levels,
            &skills,
            &members,
            n_teams,
            occupations.as_deref(),
        );
        debug_assert_eq!(n_skills, skills.len());
        Self {
            skills,
            roles,
            teams,
            people,
            managed_teams,
            assessments,
            archetype_names: match &occupations {
                Some(cores) => (0..cores.len())
                    .map(|o| format!("Occupation {}", o + 1))
                    .collect(),
                None => ARCHETYPES
                    .iter()
                    .map(|(name, _)| (*name).to_owned())
                    .collect(),
            },
            planted_archetypes: planted,
        }
    }
}

fn team_id(raw: &str) -> TeamId {
    TeamId::parse(raw).unwrap_or_else(|_| panic!("demo team id {raw}"))
}
fn role_id(raw: &str) -> RoleId {
    RoleId::parse(raw).unwrap_or_else(|_| panic!("demo role id {raw}"))
}
fn person_id(p: usize) -> PersonId {
    PersonId::parse(&format!("p-{:06}", p + 1)).unwrap_or_else(|_| panic!("demo person id {p}"))
}

fn demo_skills(count: usize) -> Vec<Skill> {
    let mut skills: Vec<Skill> = NAMED_SKILLS
        .iter()
        .take(count)
        .map(|(id, name, category)| Skill {
            id: skill_id(id),
            name: text(name),
            category: *category,
            description: long_text(&format!("{name} as practised in day-to-day work.")),
            indicators: LEVEL_WORDS
                .iter()
                .zip(1u32..)
                .map(|(words, lvl)| {
                    Indicator::parse(lvl, long_text(&format!("{name}, {words}.")))
                        .unwrap_or_else(|_| panic!("demo indicator"))
                })
                .collect(),
        })
        .collect();
    for i in NAMED_SKILLS.len()..count {
        let category = SkillCategory::ALL[i % SkillCategory::ALL.len()];
        skills.push(Skill {
            id: skill_id(&format!("skill-{:04}", i + 1)),
            name: text(&format!("Skill {}", i + 1)),
            category,
            description: Text::default(),
            indicators: Vec::new(),
        });
    }
    skills
}

fn demo_roles() -> Vec<Role> {
    ROLES
        .iter()
        .map(|(id, name, _, requirements)| Role {
            id: role_id(id),
            name: text(name),
            requirements: requirements
                .iter()
                .map(|(skill, lvl, weight)| Requirement {
                    skill: skill_id(skill),
                    level: level(*lvl),
                    weight: Weight::parse(*weight).unwrap_or_else(|_| panic!("demo weight")),
                })
                .collect(),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn demo_assessments(
    rng: &mut StdRng,
    people: &[Person],
    planted: &[usize],
    true_levels: &[Vec<f64>],
    skills: &[Skill],
    members: &[Vec<usize>],
    n_teams: usize,
    occupations: Option<&[Vec<usize>]>,
) -> Vec<Assessment> {
    let normal = |sd: f64| Normal::new(0.0, sd).unwrap_or_else(|_| panic!("demo sd {sd}"));
    // (bias, noise) per source: self-ratings inflated, tests unbiased but noisy.
    let error_model = |source: Source| match source {
        Source::SelfRating => (0.6, 0.5),
        Source::Peer => (0.15, 0.55),
        Source::Manager => (0.1, 0.45),
        Source::ObservedPractice => (0.0, 0.35),
        Source::ObjectiveTest => (0.0, 0.6),
        Source::Certification => (0.0, 0.2),
    };
    let others = [
        Source::Peer,
        Source::Manager,
        Source::ObservedPractice,
        Source::ObjectiveTest,
        Source::Certification,
    ];
    let growth = normal(0.25);
    let mut assessments = Vec::with_capacity(people.len() * 40);
    for (p, person) in people.iter().enumerate() {
        let team = &members[p % n_teams];
        let role = ROLES.iter().find(|r| r.0 == person.role.as_str());
        let mut assessed: BTreeSet<usize> = BTreeSet::new();
        if let Some(cores) = occupations {
            // Sparse: most of the occupation's core skills and one to three others.
            assessed.extend(
                cores[planted[p]]
                    .iter()
                    .copied()
                    .filter(|_| rng.random_bool(0.85)),
            );
            for _ in 0..rng.random_range(1..=3) {
                assessed.insert(rng.random_range(0..skills.len()));
            }
        }
        for (i, skill) in skills.iter().enumerate().filter(|_| occupations.is_none()) {
            let required =
                role.is_some_and(|r| r.3.iter().any(|(s, _, _)| *s == skill.id.as_str()));
            let core = ARCHETYPES[planted[p]].1.contains(&skill.id.as_str())
                || (i >= NAMED_SKILLS.len() && true_levels[p][i] >= 3.0);
            // Besides required and core skills, about three others per person.
            if required || core || rng.random_bool(3.0 / skills.len() as f64) {
                assessed.insert(i);
            }
        }
        for i in assessed {
            let now_level = true_levels[p][i];
            let yearly_gain = 0.2 + growth.sample(rng);
            let chosen: Vec<Source> = if occupations.is_some() {
                vec![Source::ObjectiveTest, Source::Peer, Source::Manager]
            } else {
                let mut sources: Vec<Source> = others.to_vec();
                sources.shuffle(rng);
                let count = rng.random_range(1..=3);
                let mut chosen: Vec<Source> = sources.into_iter().take(count).collect();
                if rng.random_bool(0.75) {
                    chosen.push(Source::SelfRating);
                }
                chosen
            };
            for (n, source) in chosen.into_iter().enumerate() {
                if source == Source::Certification && now_level < 3.0 {
                    continue;
                }
                let age_ms = rng.random_range(0..TWO_YEARS_MS);
                let years_ago = age_ms as f64 / (365.0 * 24.0 * 3600.0 * 1000.0);
                let then = now_level - yearly_gain * years_ago;
                let (bias, noise) = error_model(source);
                let score = then + bias + normal(noise).sample(rng);
                let assessor = match source {
                    Source::SelfRating => Some(person.id.clone()),
                    Source::Peer => team
                        .iter()
                        .copied()
                        .filter(|&q| q != p)
                        .collect::<Vec<_>>()
                        .choose(rng)
                        .map(|&q| people[q].id.clone()),
                    Source::Manager => team
                        .first()
                        .filter(|&&m| m != p)
                        .map(|&m| people[m].id.clone()),
                    _ => None,
                };
                assessments.push(Assessment {
                    id: AssessmentId::parse(&format!("a-{}-{}-{n}", person.id, skills[i].id))
                        .unwrap_or_else(|_| panic!("demo assessment id")),
                    person: person.id.clone(),
                    skill: skills[i].id.clone(),
                    score: level((score * 2.0).round() / 2.0),
                    source,
                    assessor,
                    assessed_at: Timestamp::from_unix_millis(DEMO_AS_OF_MS - age_ms),
                    evidence: Text::default(),
                });
            }
        }
    }
    assessments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_organisation() {
        let config = DemoConfig {
            seed: 7,
            people: 120,
            skills: 40,
            ..DemoConfig::default()
        };
        let a = DemoOrg::generate(&config);
        let b = DemoOrg::generate(&config);
        assert_eq!(a.people, b.people);
        assert_eq!(a.assessments, b.assessments);
        let other = DemoOrg::generate(&DemoConfig { seed: 8, ..config });
        assert_ne!(a.assessments, other.assessments);
    }

    #[test]
    fn the_default_organisation_has_the_documented_shape() {
        let org = DemoOrg::generate(&DemoConfig::default());
        assert_eq!(org.people.len(), 2_000);
        assert_eq!(org.skills.len(), 40);
        assert_eq!(org.roles.len(), 12);
        // organisation + 10 departments + ~154 teams
        assert!(
            (150..=170).contains(&org.teams.len()),
            "{}",
            org.teams.len()
        );
        let per_person = org.assessments.len() as f64 / 2_000.0;
        assert!((15.0..80.0).contains(&per_person), "{per_person}");
        let ids: BTreeSet<_> = org.assessments.iter().map(|a| a.id.clone()).collect();
        assert_eq!(
            ids.len(),
            org.assessments.len(),
            "assessment ids are unique"
        );
    }

    #[test]
    fn self_ratings_are_inflated_relative_to_objective_tests() {
        let org = DemoOrg::generate(&DemoConfig::default());
        let mean = |source: Source| {
            let scores: Vec<f64> = org
                .assessments
                .iter()
                .filter(|a| a.source == source)
                .map(|a| f64::from(a.score.value()))
                .collect();
            scores.iter().sum::<f64>() / scores.len() as f64
        };
        assert!(mean(Source::SelfRating) > mean(Source::ObjectiveTest) + 0.3);
    }

    #[test]
    fn planted_occupations_have_sparse_evidence_three_assessments_per_held_skill() {
        let org = DemoOrg::generate(&DemoConfig {
            seed: 5,
            people: 300,
            skills: 320,
            occupations: 30,
        });
        assert_eq!(org.archetype_names.len(), 30);
        assert!(org.planted_archetypes.iter().all(|&o| o < 30));
        let mut per_cell: std::collections::HashMap<(&str, &str), usize> = Default::default();
        for a in &org.assessments {
            *per_cell
                .entry((a.person.as_str(), a.skill.as_str()))
                .or_default() += 1;
        }
        assert!(per_cell.values().all(|&n| n == 3));
        let known = per_cell.len() as f64 / (300.0 * 320.0);
        assert!((0.02..=0.10).contains(&known), "{known}");
    }

    #[test]
    fn more_skills_than_the_named_catalogue_can_be_generated() {
        let org = DemoOrg::generate(&DemoConfig {
            seed: 1,
            people: 50,
            skills: 120,
            ..DemoConfig::default()
        });
        assert_eq!(org.skills.len(), 120);
        assert!(
            org.assessments
                .iter()
                .any(|a| a.skill.as_str().starts_with("skill-"))
        );
    }
}
