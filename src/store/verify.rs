//! `capsight verify`: reads every record of a stopped server's store and checks what
//! opening it does not (opening already refuses a store behind its commit marker, a
//! damaged record or an assessment of an unknown person or skill).

use std::collections::HashSet;
use std::fmt;

use super::{Opened, Result, decode, decode_audit, id_key, seq_of};
use crate::domain::Directory;
use crate::store::records::BatchRecord;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Commits the store has made (see `marker`).
    pub commits: u64,
    /// Records per kind.
    pub counts: Vec<(&'static str, usize)>,
    /// Inconsistencies, one sentence each; empty when the store is sound.
    pub problems: Vec<String>,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "commits: {}", self.commits)?;
        for (kind, n) in &self.counts {
            writeln!(f, "{kind}: {n}")?;
        }
        if self.problems.is_empty() {
            write!(f, "no problems found")
        } else {
            writeln!(f, "{} problems:", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  {p}")?;
            }
            Ok(())
        }
    }
}

fn directory_problems(d: &Directory, problems: &mut Vec<String>) {
    for role in d.roles().values() {
        for r in &role.requirements {
            if !d.skills().contains_key(&r.skill) {
                problems.push(format!(
                    "role {} requires unknown skill {}",
                    role.id, r.skill
                ));
            }
        }
    }
    for team in d.teams().values() {
        if let Some(parent) = &team.parent
            && !d.teams().contains_key(parent)
        {
            problems.push(format!("team {} has unknown parent {parent}", team.id));
        }
        if let Some(manager) = &team.manager
            && !d.people().contains_key(manager)
        {
            problems.push(format!("team {} has unknown manager {manager}", team.id));
        }
    }
    for p in d.people().values() {
        if !d.teams().contains_key(&p.team) {
            problems.push(format!("person {} is in unknown team {}", p.id, p.team));
        }
        for role in std::iter::once(&p.role).chain(&p.target_role) {
            if !d.roles().contains_key(role) {
                problems.push(format!("person {} has unknown role {role}", p.id));
            }
        }
    }
}

/// Checks every record of `opened`.
pub fn verify(opened: &Opened) -> Result<Verified> {
    let store = &opened.store;
    let d = &opened.directory;
    let mut problems = Vec::new();
    directory_problems(d, &mut problems);
    grant_problems(opened, &mut problems);
    let (batches, items) = assessment_problems(opened, &mut problems)?;
    let events = audit_problems(store, &mut problems)?;
    // Keys: one per person, none unused (opening destroys those), and the erasure ledger
    // holds every erasure the store has made.
    for person in d.people().keys() {
        if !store.slots.contains_key(person.as_str()) {
            problems.push(format!("person {person} has no key"));
        }
    }
    let keys_used = store.keys.used().len();
    if keys_used != store.slots.len() {
        problems.push(format!(
            "{keys_used} keys are in use for {} people with keys",
            store.slots.len()
        ));
    }
    let ledger = store.ledger.contents().entries.len();
    let pending = store.pending_erasures(d).len();
    Ok(Verified {
        commits: store.commits,
        counts: vec![
            ("skills", d.skills().len()),
            ("roles", d.roles().len()),
            ("teams", d.teams().len()),
            ("people", d.people().len()),
            ("assessment batches", batches),
            ("assessments", items),
            ("tokens", opened.tokens.len()),
            ("mentorships", opened.mentorships.len()),
            ("audit events", events),
            ("keys", keys_used),
            ("erasure ledger entries", ledger),
            (
                "erasures made",
                usize::try_from(store.erasures_applied).unwrap_or(usize::MAX),
            ),
            ("erasures to make again at the next start", pending),
        ],
        problems,
    })
}

/// Active tokens and mentorships name only people and teams that exist.
fn grant_problems(opened: &Opened, problems: &mut Vec<String>) {
    let d = &opened.directory;
    for t in &opened.tokens {
        if let Some(person) = &t.info.grant.person
            && t.info.revoked_at.is_none()
            && !d.people().contains_key(person)
        {
            problems.push(format!(
                "active token {} is bound to unknown person {person}",
                t.info.id
            ));
        }
        for team in &t.info.grant.teams {
            if t.info.revoked_at.is_none() && !d.teams().contains_key(team) {
                problems.push(format!(
                    "active token {} covers unknown team {team}",
                    t.info.id
                ));
            }
        }
    }
    for m in &opened.mentorships {
        for who in [&m.mentee, &m.mentor] {
            if !d.people().contains_key(who) {
                problems.push(format!(
                    "mentorship {} → {} names unknown person {who}",
                    m.mentor, m.mentee
                ));
            }
        }
    }
}

/// Every assessment decodes, its evidence opens, it names a known person and skill, and
/// its id is unique (the idempotency index holds one fingerprint per id). Returns the
/// batches and assessments read.
fn assessment_problems(opened: &Opened, problems: &mut Vec<String>) -> Result<(usize, usize)> {
    let (store, d) = (&opened.store, &opened.directory);
    let (mut batches, mut items) = (0usize, 0usize);
    let mut ids: HashSet<u128> = HashSet::new();
    let ring = store.keys.ring();
    for entry in store.assessments.iter() {
        let (key, value) = entry?;
        let seq = seq_of(&key, "assessments")?;
        let batch: BatchRecord = decode("assessments", &value)?;
        batches += 1;
        for record in &batch.items {
            items += 1;
            // Its sealed evidence opens under its person's key.
            if let Err(e) = record.to_domain(&ring) {
                problems.push(format!("assessment {}: {e}", record.id));
            }
            if !ids.insert(id_key(&record.id)) {
                problems.push(format!("assessment id {} is stored twice", record.id));
            }
            if !d.people().contains_key(record.person_id.as_str()) {
                problems.push(format!(
                    "batch {seq} names unknown person {}",
                    record.person_id
                ));
            }
            if !d.skills().contains_key(record.skill_id.as_str()) {
                problems.push(format!(
                    "batch {seq} names unknown skill {}",
                    record.skill_id
                ));
            }
        }
    }
    if items != store.assessment_count() {
        problems.push(format!(
            "the idempotency index holds {} ids for {items} stored assessments",
            store.assessment_count()
        ));
    }
    Ok((batches, items))
}

/// Audit blocks decode and their sequences only grow. Returns the events read.
fn audit_problems(store: &super::Store, problems: &mut Vec<String>) -> Result<usize> {
    let (mut events, mut next) = (0usize, 0u64);
    for entry in store.audit.iter() {
        let (key, value) = entry?;
        let seq = seq_of(&key, "audit")?;
        let block = decode_audit(&value)?;
        if seq < next {
            problems.push(format!(
                "audit block {seq} overlaps the one before (ends at {next})"
            ));
        }
        next = seq + block.len() as u64;
        events += block.len();
    }
    Ok(events)
}
