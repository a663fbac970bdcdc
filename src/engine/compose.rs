//! Team composition over one snapshot: builds the candidate pool and constraints from
//! the directory and capability index, runs `analytics::teams`, and explains the result.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{CapabilityIndex, Snapshot};
use crate::analytics::teams::{
    EXACT_POOL_LIMIT, Team, TeamCandidate, TeamProblem, TeamRequirement, exact, heuristic,
    upper_bound,
};
use crate::domain::{Directory, FieldViolation, Level, Person, PersonId, Scope, SkillId, TeamId};
use crate::error::{Error, Result};

/// One skill the team must cover.
#[derive(Clone, Debug)]
pub struct SkillAsk {
    /// Skill.
    pub skill: SkillId,
    /// Level that counts.
    pub level: f32,
    /// People wanted.
    pub people: u32,
    /// Importance.
    pub weight: f32,
}

/// A validated composition request.
#[derive(Clone, Debug, Default)]
pub struct TeamAsk {
    /// Requirements.
    pub requirements: Vec<SkillAsk>,
    /// Smallest team.
    pub min_size: usize,
    /// Largest team.
    pub max_size: usize,
    /// Pool: these subtrees (empty: everyone in the caller's scope).
    pub pool_teams: Vec<TeamId>,
    /// Added to the pool.
    pub include: Vec<PersonId>,
    /// Removed from the pool.
    pub exclude: Vec<PersonId>,
    /// Lowest availability.
    pub min_availability: f32,
    /// Levels with less confidence do not count.
    pub min_confidence: f32,
    /// Must be in the team.
    pub must_include: Vec<PersonId>,
    /// Most members per source team.
    pub max_per_team: Option<usize>,
    /// Keep a proficient person in every skill a source team's roles require.
    pub protect: bool,
    /// Alternatives wanted.
    pub alternatives: usize,
    /// Archetype of each person, when the team should mix archetypes.
    pub archetypes: Option<std::collections::HashMap<PersonId, usize>>,
    /// Labels of those archetypes.
    pub archetype_labels: Vec<String>,
}

/// One requirement's coverage by a proposal.
#[derive(Clone, Debug)]
pub struct CoverageView {
    /// Skill.
    pub skill: SkillId,
    /// Level that counts.
    pub level: f32,
    /// People wanted.
    pub wanted: u32,
    /// Members meeting it.
    pub people: Vec<PersonId>,
    /// Importance.
    pub weight: f32,
}

/// A member and why.
#[derive(Clone, Debug)]
pub struct MemberView {
    /// The person.
    pub person: Person,
    /// Requirements they meet.
    pub satisfies: Vec<SkillId>,
    /// Why chosen.
    pub reason: String,
    /// Archetype label, when diversity was asked for.
    pub archetype: Option<String>,
}

/// What a proposal takes from one source team.
#[derive(Clone, Debug)]
pub struct ImpactView {
    /// Source team.
    pub team: TeamId,
    /// Members taken.
    pub people: Vec<PersonId>,
    /// `(skill, proficient before, after)` for required skills that drop.
    pub bus_factor: Vec<(SkillId, u32, u32)>,
}

/// A proposed team.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// Members.
    pub members: Vec<MemberView>,
    /// Weighted coverage.
    pub coverage: f64,
    /// Objective.
    pub objective: f64,
    /// Per requirement.
    pub requirements: Vec<CoverageView>,
    /// Per source team.
    pub impacts: Vec<ImpactView>,
}

/// A candidate left out or limited to protect their team.
#[derive(Clone, Debug)]
pub struct Conflict {
    /// Candidate.
    pub person: PersonId,
    /// Their team.
    pub team: TeamId,
    /// Skills they are the last proficient holder of.
    pub skills: Vec<SkillId>,
}

/// The answer.
#[derive(Clone, Debug)]
pub struct Composition {
    /// Best team.
    pub best: Proposal,
    /// Different alternatives.
    pub alternatives: Vec<Proposal>,
    /// Proven optimal: by exact search or by reaching the upper bound.
    pub proven: bool,
    /// The exact search ran to completion.
    pub searched: bool,
    /// Upper bound on the objective.
    pub upper_bound: f64,
    /// Protection conflicts.
    pub conflicts: Vec<Conflict>,
    /// Candidates considered.
    pub pool_size: usize,
}

/// Required skills of each team (from its members' roles) and their proficient holders.
fn team_needs(snapshot: &Snapshot, team: &TeamId) -> BTreeMap<SkillId, Vec<PersonId>> {
    let directory = &snapshot.directory;
    let capability = &snapshot.capability;
    let members: Vec<&Person> = directory
        .members(team.as_str())
        .filter_map(|id| directory.person(id.as_str()))
        .collect();
    let mut needs: BTreeMap<SkillId, Vec<PersonId>> = BTreeMap::new();
    for person in &members {
        if let Some(role) = directory.roles().get(&person.role) {
            for r in &role.requirements {
                needs.entry(r.skill.clone()).or_default();
            }
        }
    }
    let rows: Vec<_> = members.iter().map(|p| capability.row(&p.id)).collect();
    for (skill, holders) in &mut needs {
        let Some(column) = capability.axis().column(skill.as_str()) else {
            continue;
        };
        for (person, row) in members.iter().zip(&rows) {
            if row.is_some_and(|r| r.levels[column] >= Level::PROFICIENT) {
                holders.push(person.id.clone());
            }
        }
    }
    needs
}

/// Composes a team for `ask` from the people `scope` covers.
pub fn compose_team(snapshot: &Snapshot, ask: &TeamAsk, scope: &Scope) -> Result<Composition> {
    let directory = &snapshot.directory;
    let capability = &snapshot.capability;
    let pool = pool_of(directory, ask, scope);
    let positions: HashMap<&PersonId, usize> =
        pool.iter().enumerate().map(|(i, p)| (&p.id, i)).collect();
    let index_of = |id: &PersonId| positions.get(id).copied();

    let (mut candidates, source_teams) = candidates_of(capability, ask, &pool);

    // Needs of every source team when protecting them; otherwise only of the teams a
    // proposal takes people from (for its impact), computed when explaining.
    let Protection {
        group_limits,
        conflicts,
        needs,
    } = match ask.protect {
        true => protect(snapshot, &source_teams, &positions, &mut candidates),
        false => Protection::default(),
    };
    let must_include: Vec<usize> = ask.must_include.iter().filter_map(index_of).collect();
    let problem = TeamProblem {
        requirements: ask
            .requirements
            .iter()
            .map(|r| TeamRequirement {
                level: r.level,
                people: r.people,
                weight: r.weight,
            })
            .collect(),
        candidates,
        min_size: ask.min_size,
        max_size: ask.max_size,
        must_include,
        max_per_team: ask.max_per_team,
        group_limits,
        diversity: ask.archetypes.is_some(),
    };
    if let Some(reason) = problem.infeasibility() {
        return Err(infeasible(ask, &conflicts, reason));
    }
    let found = heuristic(&problem, &[]).ok_or_else(|| {
        Error::InvalidArgument(vec![FieldViolation::new(
            "min_size",
            "no team of the requested size satisfies the constraints",
        )])
    })?;
    let (best, searched) = if pool.len() <= EXACT_POOL_LIMIT {
        match exact(&problem, Some(found.clone())) {
            Some(optimal) => (optimal, true),
            None => (found, false),
        }
    } else {
        (found, false)
    };
    // A team that reaches the upper bound is optimal whatever found it.
    let bound = upper_bound(&problem);
    let proven = searched || best.objective + 1e-12 >= bound;
    let bound = if proven {
        best.objective
    } else {
        bound.max(best.objective)
    };

    let alternatives = alternatives(&problem, &best, ask.alternatives);

    let explain = |team: &Team| explain(snapshot, ask, &problem, &pool, &needs, team);
    Ok(Composition {
        best: explain(&best),
        alternatives: alternatives.iter().map(explain).collect(),
        proven,
        searched,
        upper_bound: bound,
        conflicts: conflicts
            .into_iter()
            .map(|(person, (team, skills))| Conflict {
                person,
                team,
                skills,
            })
            .collect(),
        pool_size: pool.len(),
    })
}

/// What protecting the source teams asks of a team: per (team, required skill) a limit
/// of holders − 1 taken from its proficient holders in the pool (`groups` of the
/// candidates), the people who are the last holder of something, and each team's needs.
#[derive(Default)]
struct Protection {
    group_limits: Vec<usize>,
    conflicts: BTreeMap<PersonId, (TeamId, Vec<SkillId>)>,
    needs: BTreeMap<TeamId, BTreeMap<SkillId, Vec<PersonId>>>,
}

/// Protection of `source_teams`, marking the limited candidates (by their `positions` in
/// the pool).
fn protect(
    snapshot: &Snapshot,
    source_teams: &[TeamId],
    positions: &HashMap<&PersonId, usize>,
    candidates: &mut [TeamCandidate],
) -> Protection {
    let index_of = |id: &PersonId| positions.get(id).copied();
    let mut p = Protection::default();
    for team in source_teams {
        let skills = team_needs(snapshot, team);
        for (skill, holders) in &skills {
            let in_pool: Vec<usize> = holders.iter().filter_map(index_of).collect();
            if holders.is_empty() || in_pool.is_empty() {
                continue;
            }
            if holders.len() == 1 {
                p.conflicts
                    .entry(holders[0].clone())
                    .or_insert_with(|| (team.clone(), Vec::new()))
                    .1
                    .push(skill.clone());
            }
            for &c in &in_pool {
                candidates[c].groups.push(p.group_limits.len());
            }
            p.group_limits.push(holders.len() - 1);
        }
        p.needs.insert(team.clone(), skills);
    }
    p
}

/// The people a team may be drawn from, in id order: in `scope`, in the pool teams (or
/// named to include), available enough and not excluded; and those who must be in it.
fn pool_of<'a>(directory: &'a Directory, ask: &TeamAsk, scope: &Scope) -> Vec<&'a Person> {
    let pool_teams: Option<BTreeSet<TeamId>> = (!ask.pool_teams.is_empty()).then(|| {
        ask.pool_teams
            .iter()
            .filter_map(|t| directory.subtree(t.as_str()))
            .flatten()
            .collect()
    });
    let mut pool: Vec<&Person> = directory
        .people()
        .values()
        .filter(|p| scope.covers_person(p))
        .filter(|p| {
            let in_pool = pool_teams.as_ref().is_none_or(|t| t.contains(&p.team))
                || ask.include.contains(&p.id);
            let available = p.availability.value() >= ask.min_availability;
            (in_pool && available && !ask.exclude.contains(&p.id))
                || ask.must_include.contains(&p.id)
        })
        .collect();
    pool.sort_by(|a, b| a.id.cmp(&b.id));
    pool
}

/// The pool as the optimiser sees it: each person's levels in the asked skills (unknown
/// below `min_confidence`), archetype and source team (an index into the returned
/// source teams, in id order).
fn candidates_of(
    capability: &CapabilityIndex,
    ask: &TeamAsk,
    pool: &[&Person],
) -> (Vec<TeamCandidate>, Vec<TeamId>) {
    let columns: Vec<Option<usize>> = ask
        .requirements
        .iter()
        .map(|r| capability.axis().column(r.skill.as_str()))
        .collect();
    let candidates: Vec<TeamCandidate> = pool
        .iter()
        .map(|p| {
            let row = capability.row(&p.id);
            let levels = columns
                .iter()
                .map(|c| match (c, row) {
                    (Some(c), Some(row)) if row.confidence[*c] >= ask.min_confidence => {
                        row.levels[*c]
                    }
                    _ => f32::NAN,
                })
                .collect();
            TeamCandidate {
                levels,
                archetype: ask.archetypes.as_ref().and_then(|a| a.get(&p.id).copied()),
                ..TeamCandidate::default()
            }
        })
        .collect();
    let source_teams: Vec<TeamId> = pool
        .iter()
        .map(|p| p.team.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let candidates: Vec<TeamCandidate> = candidates
        .into_iter()
        .zip(pool)
        .map(|(mut c, p)| {
            c.team = source_teams.binary_search(&p.team).unwrap_or(0);
            c
        })
        .collect();
    (candidates, source_teams)
}

/// Why no team can meet `ask`: the problem's own `reason`, or, when a person who must be
/// included is the last holder protection keeps in their team, that.
fn infeasible(
    ask: &TeamAsk,
    conflicts: &BTreeMap<PersonId, (TeamId, Vec<SkillId>)>,
    reason: String,
) -> Error {
    let field = if ask.must_include.is_empty() {
        "min_size"
    } else {
        "must_include_person_ids"
    };
    let reason = match conflicts.iter().find(|(p, _)| ask.must_include.contains(p)) {
        Some((p, (team, skills))) => format!(
            "{p} is the last proficient person of team {team} in {}; protect_source_teams forbids taking them",
            skills
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => reason,
    };
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
}

/// Up to `wanted` teams other than `best`, each differing from it and from one another by
/// at least a third of their members, best first.
fn alternatives(problem: &TeamProblem, best: &Team, wanted: usize) -> Vec<Team> {
    // Alternatives: the best team without a window of its free members, as many as an
    // alternative must differ by (a third of the team), for each starting member in turn.
    // Leaving out one member at a time is not enough: in a large pool the heuristic
    // then swaps in one replacement and keeps everyone else.
    let needed = best.members.len().div_ceil(3).max(1);
    let free: Vec<usize> = best
        .members
        .iter()
        .copied()
        .filter(|m| !problem.must_include.contains(m))
        .collect();
    let mut options: Vec<Team> = if wanted == 0 || free.is_empty() {
        Vec::new()
    } else {
        (0..free.len())
            .filter_map(|start| {
                let left_out: Vec<usize> = (0..needed.min(free.len()))
                    .map(|k| free[(start + k) % free.len()])
                    .collect();
                heuristic(problem, &left_out)
            })
            .collect()
    };
    options.sort_by(|a, b| {
        b.objective
            .total_cmp(&a.objective)
            .then_with(|| a.members.cmp(&b.members))
    });
    let differs = |a: &Team, b: &Team| {
        let shared = a.members.iter().filter(|m| b.members.contains(m)).count();
        let size = a.members.len().max(b.members.len());
        size - shared >= size.div_ceil(3).max(1)
    };
    let mut alternatives: Vec<Team> = Vec::new();
    for option in options {
        if alternatives.len() >= wanted {
            break;
        }
        if differs(&option, best) && alternatives.iter().all(|a| differs(&option, a)) {
            alternatives.push(option);
        }
    }
    alternatives
}

fn explain(
    snapshot: &Snapshot,
    ask: &TeamAsk,
    problem: &TeamProblem,
    pool: &[&Person],
    needs: &BTreeMap<TeamId, BTreeMap<SkillId, Vec<PersonId>>>,
    team: &Team,
) -> Proposal {
    let credited = credited_members(ask, problem, team);
    Proposal {
        members: team
            .members
            .iter()
            .map(|&c| {
                member_view(
                    snapshot,
                    ask,
                    &problem.candidates[c].levels,
                    pool[c],
                    c,
                    &credited,
                )
            })
            .collect(),
        coverage: problem.coverage(&team.members),
        objective: team.objective,
        requirements: coverage_views(ask, problem, pool, team),
        impacts: impacts(snapshot, pool, needs, team),
    }
}

/// Whether a candidate's `level` (NaN: not assessed) meets `required`.
fn meets(level: f32, required: f32) -> bool {
    !level.is_nan() && level >= required
}

fn skill_name(snapshot: &Snapshot, skill: &SkillId) -> String {
    snapshot
        .directory
        .skills()
        .get(skill)
        .map_or_else(|| skill.to_string(), |k| k.name.as_str().to_owned())
}

/// Each requirement with the members who meet it.
fn coverage_views(
    ask: &TeamAsk,
    problem: &TeamProblem,
    pool: &[&Person],
    team: &Team,
) -> Vec<CoverageView> {
    ask.requirements
        .iter()
        .enumerate()
        .map(|(r, req)| CoverageView {
            skill: req.skill.clone(),
            level: req.level,
            wanted: req.people.max(1),
            weight: req.weight,
            people: team
                .members
                .iter()
                .filter(|&&c| meets(problem.candidates[c].levels[r], req.level))
                .map(|&c| pool[c].id.clone())
                .collect(),
        })
        .collect()
}

/// Per requirement, the members it credits: its `wanted` strongest qualifying members
/// (a team larger than it needs to be, for `min_size`, has spares).
fn credited_members(ask: &TeamAsk, problem: &TeamProblem, team: &Team) -> Vec<Vec<usize>> {
    ask.requirements
        .iter()
        .enumerate()
        .map(|(r, req)| {
            let level = |c: usize| problem.candidates[c].levels[r];
            let mut holders: Vec<usize> = team
                .members
                .iter()
                .copied()
                .filter(|&c| meets(level(c), req.level))
                .collect();
            holders.sort_by(|&a, &b| level(b).total_cmp(&level(a)).then(a.cmp(&b)));
            holders.truncate(req.people.max(1) as usize);
            holders
        })
        .collect()
}

/// A member (candidate `c`, with `levels` per requirement) and why they are in the team.
fn member_view(
    snapshot: &Snapshot,
    ask: &TeamAsk,
    levels: &[f32],
    person: &Person,
    c: usize,
    credited: &[Vec<usize>],
) -> MemberView {
    let met: Vec<(usize, f32)> = levels
        .iter()
        .enumerate()
        .filter(|&(r, &l)| meets(l, ask.requirements[r].level))
        .map(|(r, &l)| (r, l))
        .collect();
    // The requirements this member is counted for.
    let needed: Vec<String> = met
        .iter()
        .filter(|(r, _)| credited[*r].contains(&c))
        .map(|&(r, l)| {
            format!(
                "{} {l:.1} (≥ {:.1})",
                skill_name(snapshot, &ask.requirements[r].skill),
                ask.requirements[r].level
            )
        })
        .collect();
    let must = ask.must_include.contains(&person.id);
    let reason = if !needed.is_empty() {
        let covers = if must {
            "Must be included; covers"
        } else {
            "Covers"
        };
        format!("{covers} {}.", needed.join(", "))
    } else if must {
        "Must be included (asked for by name); the others already cover what they meet.".to_owned()
    } else if met.is_empty() {
        format!(
            "Needed to reach the minimum team size of {}: the strongest remaining candidate over the required skills, though they meet none of the requirements.",
            ask.min_size
        )
    } else {
        format!(
            "Needed to reach the minimum team size of {}: meets {} as others in the team already do, and is the strongest such remaining candidate.",
            ask.min_size,
            met.iter()
                .map(|&(r, _)| skill_name(snapshot, &ask.requirements[r].skill))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    MemberView {
        archetype: ask
            .archetypes
            .as_ref()
            .and_then(|a| a.get(&person.id))
            .and_then(|&a| ask.archetype_labels.get(a).cloned()),
        person: person.clone(),
        satisfies: met
            .iter()
            .map(|&(r, _)| ask.requirements[r].skill.clone())
            .collect(),
        reason,
    }
}

/// What the team takes from each source team: the people, and the skills whose holders
/// there drop (before and after).
fn impacts(
    snapshot: &Snapshot,
    pool: &[&Person],
    needs: &BTreeMap<TeamId, BTreeMap<SkillId, Vec<PersonId>>>,
    team: &Team,
) -> Vec<ImpactView> {
    let mut taken: BTreeMap<TeamId, Vec<PersonId>> = BTreeMap::new();
    for &c in &team.members {
        taken
            .entry(pool[c].team.clone())
            .or_default()
            .push(pool[c].id.clone());
    }
    taken
        .into_iter()
        .map(|(t, people)| {
            let computed;
            let team_needs = match needs.get(&t) {
                Some(n) => n,
                None => {
                    computed = team_needs(snapshot, &t);
                    &computed
                }
            };
            let bus_factor = team_needs
                .iter()
                .filter_map(|(skill, holders)| {
                    let before = holders.len() as u32;
                    let after = holders.iter().filter(|h| !people.contains(h)).count() as u32;
                    (after < before).then(|| (skill.clone(), before, after))
                })
                .collect();
            ImpactView {
                team: t,
                people,
                bus_factor,
            }
        })
        .collect()
}
