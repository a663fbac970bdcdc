//! The writer thread: the only code that changes the store and the directory.
//! Commands are drained in groups; each group is committed with one flush before any of
//! its writes is acknowledged or becomes visible (group commit). It is an OS thread,
//! not a task, because sled's flush blocks on fsync.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, watch};

use super::health::StorageHealth;
use super::tokens::TokenTable;
use super::{AuditQueue, ErasureReport, IngestOutcome, PersonExport, Snapshot};
use crate::domain::{
    AccessRole, Assessment, Directory, FieldViolation, Mentorship, Mentorships, Person, PersonId,
    Rejection, RejectionKind, Role, Skill, Team, Timestamp, TokenId, TokenInfo,
};
use crate::error::{Error, Result};
use crate::store::{ErasurePlan, LogKey, LogOp, Store, StoredToken};

/// Longest a read's audit event waits for a flush of its own (see `Writer::commit`).
const AUDIT_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Most writes committed by one flush; bounds the latency a group adds.
const MAX_GROUP: usize = 256;

/// Completes a write once the group's flush outcome is known.
pub(super) type Reply = Box<dyn FnOnce(Result<()>) + Send>;
/// A write to apply on the writer thread; returns how to reply.
pub(super) type Job = Box<dyn FnOnce(&mut Writer) -> Reply + Send>;

pub(super) enum Command {
    Write(Job),
    /// Take the queued audit events now (they are otherwise taken with the next group).
    DrainAudit,
    Close(oneshot::Sender<Result<()>>),
}

pub(crate) struct Writer {
    store: Store,
    directory: Arc<Directory>,
    capability: super::CapabilityIndex,
    tokens: Arc<TokenTable>,
    mentorships: Arc<Mentorships>,
    /// Audit events recorded since the last commit, stored as one block at the next.
    audit_queue: Arc<AuditQueue>,
    total: u64,
    version: u64,
    erasures: u64,
    /// Something was written to sled since the last flush.
    staged: bool,
    /// Something other than read-audit events was written since the last flush.
    data_staged: bool,
    /// When sled was last flushed by a commit.
    last_flush: std::time::Instant,
    /// Something visible to readers changed since the last publication.
    changed: bool,
    /// The directory or the evidence changed since the last publication.
    data_changed: bool,
    data_version: u64,
    poisoned: bool,
    ack_before_flush: bool,
    published: Arc<ArcSwap<Snapshot>>,
    notify: watch::Sender<u64>,
    /// Where flush outcomes are reported for everyone else.
    health: Arc<StorageHealth>,
    /// The time of the cluster-log entry being applied; the wall clock outside cluster
    /// mode. Everything time-dependent the writer derives uses it, so that every node
    /// derives the same.
    clock: Option<Timestamp>,
    /// Cluster mode: audit events reach the store as log entries, not from the queue.
    replicated: bool,
    /// Cluster mode: the time of the entry that made the data version.
    data_clock: Option<Timestamp>,
    /// Cluster mode: the keys of the people named by the entry being applied, kept
    /// with their records.
    entry_keys: HashMap<PersonId, LogKey>,
}

/// What a write did, by kind of write.
#[derive(Debug)]
pub(crate) enum Applied {
    /// Items written or confirmed (upserts).
    Count(usize),
    /// Per-item outcome of assessments.
    Ingest(IngestOutcome),
    /// The mentor's load after a mentorship started.
    Load(usize),
    /// The mentorship ended.
    Ended(Mentorship),
    /// What an erasure removed.
    Erased(ErasureReport),
    /// The token's listing after it was created or revoked.
    Token(TokenInfo),
    /// Whether the first admin token was stored.
    FirstAdmin(bool),
    /// Nothing to report (audit events).
    Done,
}

impl Writer {
    pub(super) fn new(
        store: Store,
        published: Arc<ArcSwap<Snapshot>>,
        notify: watch::Sender<u64>,
        audit_queue: Arc<AuditQueue>,
        ack_before_flush: bool,
        health: Arc<StorageHealth>,
    ) -> Self {
        let current = published.load_full();
        if ack_before_flush {
            tracing::warn!("TEST MODE: writes are acknowledged before they are durable");
        }
        Self {
            store,
            directory: Arc::clone(&current.directory),
            capability: current.capability.clone(),
            tokens: Arc::clone(&current.tokens),
            mentorships: Arc::clone(&current.mentorships),
            audit_queue,
            total: current.assessment_total,
            version: current.version,
            data_version: current.data_version,
            data_changed: false,
            erasures: current.erasures,
            staged: false,
            data_staged: false,
            last_flush: std::time::Instant::now(),
            changed: false,
            poisoned: false,
            ack_before_flush,
            published,
            notify,
            health,
            clock: None,
            replicated: false,
            data_clock: current.data_clock,
            entry_keys: HashMap::new(),
        }
    }

    /// Cluster mode: audit events are stored only from log entries.
    pub(super) fn replicate(&mut self) {
        self.replicated = true;
    }

    /// The writer's clock (see `clock`).
    fn now(&self) -> Timestamp {
        self.clock.unwrap_or_else(Timestamp::now)
    }

    /// Applies one write; `plan` is an erasure's, read beforehand beside the writer.
    pub(super) fn apply(&mut self, op: LogOp, plan: Option<&ErasurePlan>) -> Result<Applied> {
        Ok(match op {
            LogOp::Skills(v) => Applied::Count(self.upsert_skills(v)?),
            LogOp::Roles(v) => Applied::Count(self.upsert_roles(v)?),
            LogOp::Teams(v) => Applied::Count(self.upsert_teams(v)?),
            LogOp::People(v) => Applied::Count(self.upsert_people(v)?),
            LogOp::Assessments(items) => Applied::Ingest(self.record_assessments(items)?),
            LogOp::StartMentoring(m, capacity) => {
                Applied::Load(self.start_mentoring(m, capacity as usize)?)
            }
            LogOp::EndMentoring(mentee, mentor) => {
                Applied::Ended(self.end_mentoring(&mentee, &mentor)?)
            }
            LogOp::DeletePerson(id) => {
                let plan = plan.ok_or_else(|| Error::Internal("erasure without a plan".into()))?;
                Applied::Erased(self.delete_person(&id, plan)?)
            }
            LogOp::CreateToken(stored) => Applied::Token(self.insert_token(stored)?),
            LogOp::FirstAdminToken(stored) => Applied::FirstAdmin(self.first_admin(stored)?),
            LogOp::RevokeToken(id) => Applied::Token(self.revoke_token(&id)?),
            LogOp::Audit(events) => {
                self.store_audit(events)?;
                Applied::Done
            }
        })
    }

    /// Applies cluster-log entry `sequence` (received at `at`): the writer's clock is
    /// the entry's time, and the store records the position with the entry's writes.
    pub(super) fn apply_entry(
        &mut self,
        sequence: u64,
        at: Timestamp,
        op: LogOp,
        plan: Option<&ErasurePlan>,
        keys: HashMap<PersonId, LogKey>,
    ) -> Result<Applied> {
        self.clock = Some(at);
        self.entry_keys = keys;
        let data_before = self.data_changed;
        self.data_changed = false;
        let applied = self.apply(op, plan);
        self.entry_keys.clear();
        let data = self.data_changed;
        self.data_changed |= data_before;
        if data {
            // In cluster mode the data version is the sequence of the entry that made it.
            self.data_version = sequence;
            self.data_clock = Some(at);
        }
        self.store
            .set_log_position(sequence, at.unix_millis(), data)?;
        self.staged = true;
        self.data_staged = true;
        applied
    }

    /// Flushes sled, telling `health` when it starts, ends or fails.
    fn flush(&mut self) -> Result<()> {
        self.health.begin_flush();
        let flushed = self.store.flush();
        self.health.end_flush();
        if let Err(e) = &flushed {
            self.poisoned = true;
            self.health.fail(format!("flush failed: {e}"));
        }
        flushed
    }

    pub(super) fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let mut replies: Vec<Reply> = Vec::new();
            let mut close = None;
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(command) = next.take() {
                taken += 1;
                match command {
                    Command::Write(job) => replies.push(job(&mut self)),
                    // The commit below stores the queue.
                    Command::DrainAudit => {}
                    Command::Close(reply) => {
                        close = Some(reply);
                        break;
                    }
                }
                if taken < MAX_GROUP {
                    next = commands.try_recv().ok();
                }
            }
            let started = std::time::Instant::now();
            self.commit(replies);
            metrics::histogram!("capsight_commit_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::gauge!("capsight_writer_queue_depth").set(commands.len() as f64);
            metrics::gauge!("capsight_audit_bytes").set(self.store.audit_bytes() as f64);
            if let Some(reply) = close {
                if let Err(e) = self.store.save_count_hint() {
                    tracing::warn!(error = %e, "assessment count hint not saved");
                }
                let _ = reply.send(self.flush());
                return;
            }
        }
        // Every sender is gone: make sure nothing staged is left unflushed.
        if let Err(e) = self.flush() {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    /// Flushes what the group staged, then publishes and acknowledges, in that order.
    fn commit(&mut self, replies: Vec<Reply>) {
        if let Err(e) = self.stage_audit() {
            tracing::error!(error = %e, "audit events not stored; refusing further writes");
            self.poisoned = true;
            self.health.fail(format!("audit events not stored: {e}"));
        }
        if self.ack_before_flush {
            self.publish();
            replies.into_iter().for_each(|reply| reply(Ok(())));
            return;
        }
        // Groups holding only audit events of reads are not flushed on their own more
        // often than every AUDIT_FLUSH_INTERVAL: under read load they would otherwise cost
        // an fsync per group. Such events become durable with the next flush (a write's,
        // the next interval's, or sled's background flush every 500 ms).
        let due = self.data_staged || self.last_flush.elapsed() >= AUDIT_FLUSH_INTERVAL;
        let durable = if self.staged && due {
            self.flush()
        } else {
            Ok(())
        };
        match durable {
            Ok(()) => {
                if due {
                    self.staged = false;
                    self.data_staged = false;
                    self.last_flush = std::time::Instant::now();
                }
                self.publish();
                replies.into_iter().for_each(|reply| reply(Ok(())));
            }
            Err(e) => {
                tracing::error!(error = %e, "flush failed; refusing further writes");
                self.poisoned = true;
                replies
                    .into_iter()
                    .for_each(|reply| reply(Err(Error::StoragePoisoned)));
            }
        }
    }

    fn publish(&mut self) {
        if !self.changed {
            return;
        }
        self.changed = false;
        self.version += 1;
        if self.data_changed {
            self.data_changed = false;
            if !self.replicated {
                self.data_version += 1;
            }
        }
        self.published.store(Arc::new(Snapshot {
            version: self.version,
            data_version: self.data_version,
            directory: Arc::clone(&self.directory),
            capability: self.capability.clone(),
            assessment_total: self.total,
            tokens: Arc::clone(&self.tokens),
            erasures: self.erasures,
            mentorships: Arc::clone(&self.mentorships),
            evidence_batches: self.store.next_batch(),
            data_clock: self.data_clock,
        }));
        self.notify.send_replace(self.version);
    }

    /// Marks a change to the directory or the evidence (what analyses are computed
    /// from): flushed, published, and a new data version.
    fn touch_data(&mut self) {
        self.data_changed = true;
        self.touch();
    }

    /// Marks a change that must be flushed and then published.
    fn touch(&mut self) {
        self.staged = true;
        self.data_staged = true;
        self.changed = true;
    }

    pub(super) fn guard(&self) -> Result<()> {
        if self.poisoned {
            Err(Error::StoragePoisoned)
        } else {
            Ok(())
        }
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn upsert_skills(&mut self, mut skills: Vec<Skill>) -> Result<usize> {
        reject_if_any(self.directory.check_skills(&skills))?;
        let count = skills.len();
        // What is stored already, unchanged, is not written again: an identical upsert
        // (a nightly directory sync) leaves the data version and every cached result.
        skills.retain(|s| self.directory.skills().get(&s.id) != Some(s));
        if skills.is_empty() {
            return Ok(count);
        }
        self.store.put_skills(&skills)?;
        Arc::make_mut(&mut self.directory).upsert_skills(skills);
        if self.directory.skills().len() != self.capability.axis().len() {
            // New skills widen every row; rare, so a rebuild is fine.
            let axis = super::SkillAxis::new(self.directory.skills().keys().cloned());
            self.capability = self.capability.with_axis(axis, self.now());
        }
        self.touch_data();
        Ok(count)
    }

    pub(super) fn upsert_roles(&mut self, mut roles: Vec<Role>) -> Result<usize> {
        reject_if_any(self.directory.check_roles(&roles))?;
        let count = roles.len();
        roles.retain(|r| self.directory.roles().get(&r.id) != Some(r));
        if roles.is_empty() {
            return Ok(count);
        }
        self.store.put_roles(&roles)?;
        Arc::make_mut(&mut self.directory).upsert_roles(roles);
        self.touch_data();
        Ok(count)
    }

    pub(super) fn upsert_teams(&mut self, mut teams: Vec<Team>) -> Result<usize> {
        reject_if_any(self.directory.check_teams(&teams))?;
        let count = teams.len();
        teams.retain(|t| self.directory.teams().get(&t.id) != Some(t));
        if teams.is_empty() {
            return Ok(count);
        }
        self.store.put_teams(&teams)?;
        Arc::make_mut(&mut self.directory).upsert_teams(teams);
        self.touch_data();
        Ok(count)
    }

    pub(super) fn upsert_people(&mut self, mut people: Vec<Person>) -> Result<usize> {
        reject_if_any(self.directory.check_people(&people))?;
        let count = people.len();
        people.retain(|p| self.directory.person(p.id.as_str()) != Some(p));
        if people.is_empty() {
            return Ok(count);
        }
        self.store.put_people_keyed(&people, &self.entry_keys)?;
        Arc::make_mut(&mut self.directory).upsert_people(people);
        self.touch_data();
        Ok(count)
    }

    pub(super) fn record_assessments(
        &mut self,
        items: Vec<(u32, Assessment)>,
    ) -> Result<IngestOutcome> {
        let mut outcome = IngestOutcome::default();
        let mut positions = Vec::with_capacity(items.len());
        let mut valid = Vec::with_capacity(items.len());
        for (index, assessment) in items {
            match self.directory.check_assessment(&assessment) {
                Ok(()) => {
                    positions.push(index);
                    valid.push(assessment);
                }
                Err(v) => outcome.rejections.push(Rejection {
                    index,
                    field: v.field,
                    reason: v.reason,
                    kind: RejectionKind::UnknownReference,
                }),
            }
        }
        let appended = self.store.append_assessments(&valid)?;
        outcome.duplicates = appended.duplicates.len() as u32;
        outcome.accepted = appended.accepted.len() as u32;
        outcome
            .rejections
            .extend(appended.conflicts.iter().map(|&p| Rejection {
                index: positions[p],
                field: "id".into(),
                reason: "assessment id already stored with other content".into(),
                kind: RejectionKind::Conflict,
            }));
        outcome.rejections.sort_by_key(|r| r.index);
        if !appended.accepted.is_empty() {
            let accepted: Vec<&Assessment> = appended.accepted.iter().map(|&p| &valid[p]).collect();
            self.capability.add(&accepted, self.now());
            self.total += u64::from(outcome.accepted);
            metrics::counter!("capsight_assessments_ingested_total")
                .increment(u64::from(outcome.accepted));
            self.touch_data();
        }
        Ok(outcome)
    }

    pub(super) fn delete_person(
        &mut self,
        id: &PersonId,
        plan: &ErasurePlan,
    ) -> Result<ErasureReport> {
        // Events queued in this group may name the person: tombstone them too.
        self.stage_audit()?;
        let erasure = self
            .directory
            .erasure_of(id.as_str())
            .ok_or(Error::NotFound { kind: "person" })?;
        let counts = self.store.erase_person(&erasure, plan)?;
        Arc::make_mut(&mut self.directory).apply_erasure(&erasure);
        let table = Arc::make_mut(&mut self.tokens);
        for token in counts.revoked_tokens {
            table.insert(token);
        }
        self.capability.remove(id);
        let mentorships = Arc::make_mut(&mut self.mentorships);
        for m in mentorships.involving(id) {
            mentorships.remove(&m.mentee, &m.mentor);
        }
        self.erasures += 1;
        self.total -= counts.assessments_erased;
        self.touch_data();
        Ok(ErasureReport {
            assessments_erased: counts.assessments_erased,
            assessor_references_cleared: counts.assessor_references_cleared,
            teams_unmanaged: erasure.unmanaged_teams.len() as u32,
        })
    }
}

impl Writer {
    /// Writes a backup of the store to `path` (see `Store::write_backup`), or a cluster
    /// checkpoint's (`Store::write_checkpoint`): on the writer, so that no write
    /// interleaves with the copy.
    pub(super) fn backup(
        &self,
        path: &std::path::Path,
        checkpoint: bool,
    ) -> Result<crate::store::Manifest> {
        let now = crate::domain::Timestamp::now().unix_millis();
        if checkpoint {
            self.store.write_checkpoint(path, now)
        } else {
            self.store.write_backup(path, now)
        }
    }

    /// People the erasure ledger says to erase again (a restored backup).
    pub(super) fn pending_erasures(&self) -> Vec<PersonId> {
        self.store.pending_erasures(&self.directory)
    }

    /// Records that every erasure of the ledger is made.
    pub(super) fn erasures_caught_up(&mut self) -> Result<()> {
        self.store.erasures_caught_up()?;
        self.touch();
        Ok(())
    }

    /// Stores a token minted by the engine (`tokens::mint`): only its secret's hash.
    fn insert_token(&mut self, stored: StoredToken) -> Result<TokenInfo> {
        reject_if_any(stored.info.grant.check(&self.directory))?;
        if self.tokens.get(stored.info.id.as_str()).is_some() {
            return Err(Error::AlreadyExists { kind: "token" });
        }
        self.store.put_token(&stored)?;
        let info = stored.info.clone();
        Arc::make_mut(&mut self.tokens).insert(stored);
        self.touch();
        Ok(info)
    }

    /// Stores the first admin token, unless a token exists already.
    fn first_admin(&mut self, stored: StoredToken) -> Result<bool> {
        if !self.tokens.is_empty() {
            return Ok(false);
        }
        self.insert_token(stored)?;
        Ok(true)
    }

    pub(super) fn revoke_token(&mut self, id: &TokenId) -> Result<TokenInfo> {
        let mut stored = self
            .tokens
            .stored(id.as_str())
            .cloned()
            .ok_or(Error::NotFound { kind: "token" })?;
        let now = self.now();
        // Revoking the last way in would leave no one able to administer the server.
        if stored.info.grant.role == AccessRole::Admin
            && stored.info.is_active(now)
            && self.tokens.other_active_admins(id, now) == 0
        {
            return Err(Error::FailedPrecondition(
                "this is the last active admin token; create another admin token before revoking it",
            ));
        }
        stored.info.revoked_at.get_or_insert(now);
        self.store.put_token(&stored)?;
        let info = stored.info.clone();
        Arc::make_mut(&mut self.tokens).insert(stored);
        self.touch();
        Ok(info)
    }

    /// Records that `m.mentor` now mentors `m.mentee`, unless the mentor already has
    /// `capacity` mentees; returns the mentor's load afterwards.
    pub(super) fn start_mentoring(&mut self, m: Mentorship, capacity: usize) -> Result<usize> {
        reject_if_any(m.check(&self.directory))?;
        if self.mentorships.get(&m.mentee, &m.mentor).is_some() {
            return Err(Error::AlreadyExists { kind: "mentorship" });
        }
        if self.mentorships.load(&m.mentor) >= capacity {
            return Err(Error::FailedPrecondition(
                "the mentor already has as many mentees as their capacity",
            ));
        }
        self.store.put_mentorship(&m)?;
        let mentor = m.mentor.clone();
        Arc::make_mut(&mut self.mentorships).insert(m);
        self.touch();
        Ok(self.mentorships.load(&mentor))
    }

    /// Ends an active mentoring relationship.
    pub(super) fn end_mentoring(
        &mut self,
        mentee: &PersonId,
        mentor: &PersonId,
    ) -> Result<Mentorship> {
        if self.mentorships.get(mentee, mentor).is_none() {
            return Err(Error::NotFound { kind: "mentorship" });
        }
        self.store.remove_mentorship(mentee, mentor)?;
        let ended = Arc::make_mut(&mut self.mentorships)
            .remove(mentee, mentor)
            .ok_or(Error::NotFound { kind: "mentorship" })?;
        self.touch();
        Ok(ended)
    }

    /// Writes the queued audit events to the store as one block (one sled insert for
    /// the whole group rather than one per event); they become durable with the flush
    /// that follows. Anything that reads or rewrites the audit tree stages them first.
    fn stage_audit(&mut self) -> Result<()> {
        if self.replicated {
            // Queued events are sent to the log (see `replica`).
            return Ok(());
        }
        let events = self.audit_queue.take();
        self.store_audit(events)
    }

    /// Stores audit events as one block, applying retention.
    fn store_audit(&mut self, events: Vec<crate::domain::AuditEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if self.poisoned {
            tracing::warn!(
                events = events.len(),
                "audit events dropped: storage refuses writes"
            );
            return Ok(());
        }
        self.store.append_audit(events)?;
        let removed = self.store.retain_audit(self.now())?;
        if removed > 0 {
            tracing::debug!(blocks = removed, "old audit events removed (retention)");
        }
        self.staged = true;
        Ok(())
    }

    pub(super) fn export_person(&mut self, id: &PersonId) -> Result<PersonExport> {
        let person = self
            .directory
            .person(id.as_str())
            .cloned()
            .ok_or(Error::NotFound { kind: "person" })?;
        let (assessments_about, assessments_by) = self.store.assessments_of(id.as_str())?;
        let managed_teams = self
            .directory
            .teams()
            .values()
            .filter(|t| t.manager.as_ref() == Some(id))
            .cloned()
            .collect();
        Ok(PersonExport {
            person,
            assessments_about,
            assessments_by,
            managed_teams,
            audit_event_count: 0,
            mentorships: self.mentorships.involving(id),
        })
    }
}

fn reject_if_any(violations: Vec<FieldViolation>) -> Result<()> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(violations))
    }
}
