//! The live, in-memory view of the data and the single writer that changes it.
//! Readers take an `Arc<Snapshot>` and never wait; the writer thread owns the store,
//! validates writes against the directory, commits queued writes with one flush (group
//! commit), and only then publishes the next snapshot and acknowledges.
//! Must never depend on tonic.

pub mod cache;
mod capability;
pub mod compose;
pub mod health;
pub mod insights;
pub mod jobs;
pub mod queries;
mod replica;
mod tokens;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, watch};

use crate::analytics::proficiency::{Evidence, ProficiencyModel};
use crate::domain::{
    AccessRole, Assessment, AuditEvent, Directory, Grant, Mentorship, Mentorships, Person,
    PersonId, Rejection, Role, Skill, Team, Text, Timestamp, TokenId, TokenInfo,
};
use crate::error::{Error, Result};
use crate::store::{AuditFilter, AuditReader, EvidenceReader, LogOp, Store, StoreOptions};
pub use cache::{Fresh, Want};
pub use capability::{CapabilityBuilder, CapabilityIndex, PersonCapability, SkillAxis};
use health::StorageHealth;
pub use insights::KChoice;
pub use jobs::{Cancel, JobRunner, RECOMMENDED_JOB_NICE, RunnerLoad};
pub use tokens::{AuthFailure, TokenTable};
use writer::{Applied, Job, Writer};

/// Longest an audit event waits in the queue when nothing else wakes the writer.
const AUDIT_DRAIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Queued audit events that make the writer take the queue at once.
const AUDIT_QUEUE_WAKE: usize = 1024;

/// Audit events waiting for the writer thread. Recording one is a push under a lock: a
/// read does not wake the writer (measured: a wake-up per read cost a quarter of
/// `GetTeamCapability`'s throughput). The writer takes the queue with its next group of
/// writes, or at the latest `AUDIT_DRAIN_INTERVAL` later, and stores it as one block.
#[derive(Default)]
pub(crate) struct AuditQueue {
    events: Mutex<Vec<AuditEvent>>,
}

impl AuditQueue {
    /// Adds an event; returns how many are queued.
    fn push(&self, event: AuditEvent) -> usize {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push(event);
        events.len()
    }

    /// Puts back events taken but not stored, ahead of those queued since.
    pub(crate) fn requeue(&self, mut taken: Vec<AuditEvent>) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        taken.append(&mut events);
        *events = taken;
    }

    /// Takes every queued event, oldest first.
    pub(crate) fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn is_empty(&self) -> bool {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Asks the writer every `AUDIT_DRAIN_INTERVAL` to take a non-empty queue, until the
    /// engine is gone.
    fn drain_periodically(
        self: Arc<Self>,
        commands: mpsc::WeakSender<writer::Command>,
    ) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("capsight-audit".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(AUDIT_DRAIN_INTERVAL);
                    let Some(commands) = commands.upgrade() else {
                        return;
                    };
                    // A full channel means the writer is busy and takes the queue soon.
                    if !self.is_empty() {
                        let _ = commands.try_send(writer::Command::DrainAudit);
                    }
                }
            })
            .map(drop)
    }
}

/// The error for a write whose outcome is not of its kind (a bug).
fn unexpected(applied: &Applied) -> Error {
    Error::Internal(format!("unexpected write outcome {applied:?}"))
}

/// One consistent, immutable view of the data, as of one acknowledged write.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Increases with every published change.
    pub version: u64,
    /// Increases when the directory or the evidence changes: what every analysis is
    /// computed from. Tokens and mentoring relationships do not move it, so they do not
    /// make cached results stale.
    pub data_version: u64,
    /// Competency model, org tree and people.
    pub directory: Arc<Directory>,
    /// Effective proficiency of everyone, and the evidence behind it.
    pub capability: CapabilityIndex,
    /// Number of assessments held in all.
    pub assessment_total: u64,
    /// Access tokens.
    pub tokens: Arc<TokenTable>,
    /// Erasures so far (since start): a cached result computed before the latest one
    /// may hold an erased person and is never served.
    pub erasures: u64,
    /// Active mentoring relationships.
    pub mentorships: Arc<Mentorships>,
    /// Assessment batches numbered below this are in the snapshot (see
    /// `EvidenceReader::assessments_about_many_before`).
    pub evidence_batches: u64,
    /// Cluster mode: the time of the log entry that made `data_version` (which is that
    /// entry's sequence), so that every node computes the same answers from it.
    pub data_clock: Option<Timestamp>,
}

const DAY_MS: i64 = 86_400_000;

impl Snapshot {
    /// The time answers are computed at (proficiency decays with the age of evidence):
    /// now; in cluster mode, the time of the last data change, or today's start (UTC)
    /// if later, which every node agrees on.
    pub fn as_of(&self) -> Timestamp {
        let now = Timestamp::now();
        match self.data_clock {
            Some(clock) => {
                let today = now.unix_millis() - now.unix_millis().rem_euclid(DAY_MS);
                clock.max(Timestamp::from_unix_millis(today))
            }
            None => now,
        }
    }

    /// Whether this is a cluster node's snapshot (answers must depend on the data version
    /// only, never on what this node computed before).
    pub fn replicated(&self) -> bool {
        self.data_clock.is_some()
    }
}

/// How the engine runs.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// How the store is opened.
    pub store: StoreOptions,
    /// TEST ONLY: acknowledge writes before they are flushed, and turn sled's background
    /// flush off so that acknowledged data stays in sled's in-process buffers until they
    /// fill. Exists so the crash test can show that it detects lost acknowledged writes;
    /// never use it for real data.
    pub ack_before_flush: bool,
    /// How long one flush may take before storage is considered failed.
    pub flush_stall: Option<std::time::Duration>,
    /// Niceness of the background computation threads (0, the default: as the rest of
    /// the process; see `RECOMMENDED_JOB_NICE`).
    pub job_nice: i32,
    /// Age at which evidence counts half, in days (`None`: the model's default, 365).
    pub evidence_half_life_days: Option<f32>,
    /// Cluster mode: every write goes through the replicated log (`join_cluster`), and
    /// derived state is computed at the log's clock rather than the wall clock.
    pub replicated: bool,
}

/// Result of recording one batch of assessments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Items newly stored.
    pub accepted: u32,
    /// Items already stored with the same content.
    pub duplicates: u32,
    /// Items not stored, by position in the request.
    pub rejections: Vec<Rejection>,
}

/// Result of erasing a person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErasureReport {
    /// Assessments about the person that were removed.
    pub assessments_erased: u64,
    /// Assessments by the person whose assessor was cleared.
    pub assessor_references_cleared: u64,
    /// Teams whose manager was cleared.
    pub teams_unmanaged: u32,
}

/// Everything held about one person (data-subject access).
#[derive(Clone, Debug)]
pub struct PersonExport {
    /// The person.
    pub person: Person,
    /// Assessments about them.
    pub assessments_about: Vec<Assessment>,
    /// Assessments they made.
    pub assessments_by: Vec<Assessment>,
    /// Teams they manage.
    pub managed_teams: Vec<Team>,
    /// Audit events naming them.
    pub audit_event_count: u64,
    /// Their active mentoring relationships.
    pub mentorships: Vec<Mentorship>,
}

/// An acknowledgement that will arrive once the write is durable.
pub struct Pending<T> {
    reply: oneshot::Receiver<Result<T>>,
    health: Arc<StorageHealth>,
}

/// How often a waiting write looks whether storage failed meanwhile.
const HEALTH_POLL: std::time::Duration = std::time::Duration::from_millis(100);

impl<T> Pending<T> {
    /// Waits for the write to be durable (or to fail). Should storage fail meanwhile (a
    /// flush that errs or never returns), answers `StoragePoisoned` without waiting for
    /// the writer: the write's outcome is then unknown, never acknowledged.
    pub async fn durable(self) -> Result<T> {
        let Self { mut reply, health } = self;
        loop {
            tokio::select! {
                answer = &mut reply => return answer.map_err(|_| Error::ShuttingDown)?,
                () = tokio::time::sleep(HEALTH_POLL) => health.check()?,
            }
        }
    }
}

/// The engine: snapshot publication plus the handle to the writer thread.
pub struct Engine {
    snapshot: Arc<ArcSwap<Snapshot>>,
    commands: mpsc::Sender<writer::Command>,
    audit_queue: Arc<AuditQueue>,
    writer: Mutex<Option<JoinHandle<()>>>,
    changes: watch::Receiver<u64>,
    audit: AuditReader,
    evidence: EvidenceReader,
    /// Cluster mode: the people's cluster keys this node keeps (`replica::restore_keys`).
    cluster_keys: crate::store::ClusterKeyReader,
    insights: insights::Insights,
    /// The bounded pool that runs CPU-heavy derived results.
    jobs: JobRunner,
    /// Whether the store still takes writes.
    health: Arc<StorageHealth>,
    /// The data directory (backups are written there before they are sent).
    dir: std::path::PathBuf,
    /// Held while a backup is made or sent: one at a time.
    backup: Arc<tokio::sync::Semaphore>,
    /// Cluster mode: the replicated log and what this node applied of it.
    replica: std::sync::OnceLock<Arc<replica::Replica>>,
    /// The last log entry the store had applied when opened.
    log_sequence: u64,
}

/// A backup made by `Engine::backup`: its data file in the data directory, removed when
/// this is dropped, and its manifest.
pub struct BackupFile {
    /// The data file (`backup.bin`'s content).
    pub path: std::path::PathBuf,
    /// What it holds.
    pub manifest: crate::store::Manifest,
    _one_at_a_time: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for BackupFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(error = %e, path = %self.path.display(), "backup file not removed");
        }
    }
}

/// Names of backup files being written or sent; any left by a crash are removed at start.
const BACKUP_PREFIX: &str = "backup-in-progress-";

impl Engine {
    /// Opens the store in `dir`, builds the first snapshot and starts the writer thread.
    /// Blocking (it scans the store): call it from `spawn_blocking` inside a runtime.
    pub fn open(dir: &Path, options: &EngineOptions) -> Result<Self> {
        let mut store_options = options.store.clone();
        if options.ack_before_flush {
            store_options.flush_every_ms = None;
        }
        let mut model = ProficiencyModel::default();
        if let Some(days) = options.evidence_half_life_days {
            model.half_life_days = days;
        }
        let axis_of = |d: &Directory| SkillAxis::new(d.skills().keys().cloned());
        let mut builder: Option<CapabilityBuilder> = None;
        let people_of = |d: &Directory| d.people().keys().cloned().collect::<Vec<_>>();
        let opened = Store::open(dir, &store_options, |directory, a| {
            builder
                .get_or_insert_with(|| {
                    CapabilityBuilder::new(model.clone(), axis_of(directory), people_of(directory))
                })
                .push_cell(
                    a.person_index,
                    // The axis is the directory's skills in id order, so the skill's
                    // position is its column.
                    a.skill_index as usize,
                    Evidence {
                        score: a.score.value(),
                        source: a.source,
                        at: a.assessed_at,
                    },
                );
        })?;
        tracing::debug!("store opened; building the capability matrix");
        let builder = builder.unwrap_or_else(|| {
            CapabilityBuilder::new(
                model,
                axis_of(&opened.directory),
                people_of(&opened.directory),
            )
        });
        let store = opened.store;
        // Backup files a crash left behind.
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(BACKUP_PREFIX)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let audit = store.audit_reader();
        let evidence = store.evidence_reader();
        let cluster_keys = store.cluster_key_reader();
        let (log_sequence, log_clock, data_sequence, data_clock) = store.log_position()?;
        let as_of = if options.replicated && log_sequence > 0 {
            Timestamp::from_unix_millis(log_clock)
        } else {
            Timestamp::now()
        };
        let initial = Snapshot {
            version: 0,
            data_version: if options.replicated { data_sequence } else { 0 },
            data_clock: options
                .replicated
                .then(|| Timestamp::from_unix_millis(data_clock)),
            directory: Arc::new(opened.directory),
            assessment_total: store.assessment_count() as u64,
            capability: builder.finish(as_of),
            tokens: Arc::new(TokenTable::new(opened.tokens)),
            erasures: 0,
            mentorships: Arc::new(Mentorships::new(opened.mentorships)),
            evidence_batches: store.next_batch(),
        };
        tracing::debug!("capability matrix built");
        let snapshot = Arc::new(ArcSwap::from_pointee(initial));
        let (commands, receiver) = mpsc::channel(1024);
        let (notify, changes) = watch::channel(0);
        let audit_queue = Arc::new(AuditQueue::default());
        let health = Arc::new(StorageHealth::new(
            options.flush_stall.unwrap_or(health::DEFAULT_STALL),
        ));
        let mut writer = Writer::new(
            store,
            Arc::clone(&snapshot),
            notify,
            Arc::clone(&audit_queue),
            options.ack_before_flush,
            Arc::clone(&health),
        );
        if options.replicated {
            writer.replicate();
        }
        let handle = std::thread::Builder::new()
            .name("capsight-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| Error::DataDir(format!("cannot start writer thread: {e}")))?;
        Arc::clone(&audit_queue)
            .drain_periodically(commands.downgrade())
            .map_err(|e| Error::DataDir(format!("cannot start audit thread: {e}")))?;
        Ok(Self {
            insights: insights::Insights::new(&snapshot),
            snapshot,
            commands,
            audit_queue,
            writer: Mutex::new(Some(handle)),
            changes,
            audit,
            evidence,
            cluster_keys,
            jobs: JobRunner::with_core_count(options.job_nice)?,
            health,
            dir: dir.to_path_buf(),
            backup: Arc::new(tokio::sync::Semaphore::new(1)),
            replica: std::sync::OnceLock::new(),
            log_sequence,
        })
    }

    /// Makes a consistent backup of the store into a file of the data directory (the
    /// writer pauses for the copy: writes wait, reads go on). One at a time: a second
    /// caller meanwhile is refused with RESOURCE_EXHAUSTED.
    pub async fn backup(&self) -> Result<BackupFile> {
        self.copy(false).await
    }

    /// `backup`, or with `checkpoint` a cluster checkpoint's copy (people's keys sealed
    /// under their cluster keys: see `Store::write_checkpoint`).
    async fn copy(&self, checkpoint: bool) -> Result<BackupFile> {
        let permit =
            Arc::clone(&self.backup)
                .try_acquire_owned()
                .map_err(|_| Error::Overloaded {
                    // Another backup is being made or sent.
                    retry_after: std::time::Duration::from_secs(10),
                })?;
        let path = self
            .dir
            .join(format!("{BACKUP_PREFIX}{}", Timestamp::now().unix_millis()));
        let target = path.clone();
        let written = self.write(move |w| w.backup(&target, checkpoint)).await;
        match written {
            Ok(manifest) => Ok(BackupFile {
                path,
                manifest,
                _one_at_a_time: permit,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Makes again the erasures a restored backup predates (see `store::restore`); returns
    /// how many people were erased. Called once at start, before serving.
    pub async fn reapply_erasures(&self) -> Result<usize> {
        let pending = self.write(|w| Ok(w.pending_erasures())).await?;
        for id in &pending {
            match self.delete_person(id.clone()).await {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.write(Writer::erasures_caught_up).await?;
        Ok(pending.len())
    }

    /// The current snapshot; cheap, never blocks on writers.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    async fn enqueue<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Writer) -> Result<T> + Send + 'static,
    ) -> Result<Pending<T>> {
        // Refused at once, not queued behind a writer that may never return.
        self.health.check()?;
        let (reply, pending) = oneshot::channel();
        let job: Job = Box::new(move |writer: &mut Writer| {
            let result = writer.guard().and_then(|()| job(writer));
            Box::new(move |durable: Result<()>| {
                // The caller may have gone away; the write stands either way.
                let _ = reply.send(durable.and(result));
            })
        });
        self.commands
            .send(writer::Command::Write(job))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        Ok(Pending {
            reply: pending,
            health: Arc::clone(&self.health),
        })
    }

    async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Writer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.enqueue(job).await?.durable().await
    }

    /// Applies a write: on this node's writer, or in cluster mode through the
    /// replicated log (answered once a quorum holds it and this node applied it).
    async fn submit(&self, op: LogOp) -> Result<Applied> {
        if let Some(replica) = self.replica.get() {
            return replica.submit(op).await;
        }
        let plan = match &op {
            LogOp::DeletePerson(id) => Some(self.erasure_plan(id).await?),
            _ => None,
        };
        self.write(move |w| w.apply(op, plan.as_ref())).await
    }

    /// What erasing `id` must rewrite, read beside the writer (the audit log grows with
    /// every read, and each batch mentioning the person is decoded and re-encoded); the
    /// writer then applies the plan, redoing only what changed since.
    async fn erasure_plan(&self, id: &PersonId) -> Result<crate::store::ErasurePlan> {
        let (audit, evidence) = (self.audit.clone(), self.evidence());
        let person = id.to_string();
        self.jobs
            .run(Cancel::new(), move |_| {
                let scan = audit.scan_for(&person)?;
                evidence.plan_erasure(&person, scan)
            })
            .await
    }

    /// Records an active mentoring relationship (see `Writer::start_mentoring`).
    pub async fn start_mentoring(&self, m: Mentorship, capacity: usize) -> Result<usize> {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX);
        match self.submit(LogOp::StartMentoring(m, capacity)).await? {
            Applied::Load(load) => Ok(load),
            other => Err(unexpected(&other)),
        }
    }

    /// Ends an active mentoring relationship.
    pub async fn end_mentoring(&self, mentee: PersonId, mentor: PersonId) -> Result<Mentorship> {
        match self.submit(LogOp::EndMentoring(mentee, mentor)).await? {
            Applied::Ended(m) => Ok(m),
            other => Err(unexpected(&other)),
        }
    }

    async fn count(&self, op: LogOp) -> Result<usize> {
        match self.submit(op).await? {
            Applied::Count(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates or replaces skills; all or nothing.
    pub async fn upsert_skills(&self, skills: Vec<Skill>) -> Result<usize> {
        self.count(LogOp::Skills(skills)).await
    }

    /// Creates or replaces roles; all or nothing.
    pub async fn upsert_roles(&self, roles: Vec<Role>) -> Result<usize> {
        self.count(LogOp::Roles(roles)).await
    }

    /// Creates or replaces teams; all or nothing.
    pub async fn upsert_teams(&self, teams: Vec<Team>) -> Result<usize> {
        self.count(LogOp::Teams(teams)).await
    }

    /// Creates or replaces people; all or nothing.
    pub async fn upsert_people(&self, people: Vec<Person>) -> Result<usize> {
        self.count(LogOp::People(people)).await
    }

    /// Queues a batch of assessments (each with its position in the request); the
    /// returned `Pending` resolves once the batch is durable. Batches queued one after
    /// another are committed in order, so a stream can pipeline them.
    pub async fn enqueue_assessments(
        &self,
        items: Vec<(u32, Assessment)>,
    ) -> Result<Pending<IngestOutcome>> {
        if let Some(replica) = self.replica.get() {
            // The log orders the batches; each is answered once applied here.
            return replica
                .enqueue_assessments(items, Arc::clone(&self.health))
                .await;
        }
        self.enqueue(move |w| match w.apply(LogOp::Assessments(items), None)? {
            Applied::Ingest(outcome) => Ok(outcome),
            other => Err(unexpected(&other)),
        })
        .await
    }

    /// Records a batch of assessments and waits until it is durable.
    pub async fn record_assessments(&self, items: Vec<(u32, Assessment)>) -> Result<IngestOutcome> {
        self.enqueue_assessments(items).await?.durable().await
    }

    /// Erases a person, every assessment about them and their id everywhere else.
    pub async fn delete_person(&self, id: PersonId) -> Result<ErasureReport> {
        if let Some(replica) = self.replica.get() {
            // Every node scrubs its cached insights as it applies the erasure.
            let report = match replica.submit(LogOp::DeletePerson(id.clone())).await? {
                Applied::Erased(report) => report,
                other => return Err(unexpected(&other)),
            };
            let key_erased = replica.erase_key(&id).await;
            // The checkpoint before held the person (sealed, with their local key):
            // it is replaced, and its chunks erased, now (the key or not).
            if let Err(e) = self.checkpoint(true).await {
                tracing::warn!(error = %e, "no checkpoint after an erasure; the next one replaces the old");
            }
            key_erased?;
            return Ok(report);
        }
        let before = self.snapshot();
        let erased = id.clone();
        let prepared = self.insights.prepare_scrub(&id, &before, &self.evidence);
        let report = self.submit(LogOp::DeletePerson(id)).await;
        // Cached insights may hold the person: kept only without them (see `scrub`).
        self.scrub_after(&erased, &before, &prepared);
        match report? {
            Applied::Erased(report) => Ok(report),
            other => Err(unexpected(&other)),
        }
    }

    /// Keeps cached insights only without `erased` if an erasure happened since `before`.
    fn scrub_after(
        &self,
        erased: &PersonId,
        before: &Snapshot,
        prepared: &insights::PreparedScrub,
    ) {
        let erasures = self.snapshot().erasures;
        if erasures != before.erasures {
            self.insights.scrub(erased, before, erasures, prepared);
        }
    }

    /// A receiver that sees the snapshot version each time a new snapshot is published;
    /// streams use it to re-check what they depend on (e.g. their token).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Creates a token for `grant`; returns the bearer string (shown once) and listing.
    pub async fn create_token(
        &self,
        grant: Grant,
        description: Text,
        ttl_ms: Option<i64>,
    ) -> Result<(String, TokenInfo)> {
        // Minted here, so that only the secret's hash is ever written or replicated.
        let (bearer, stored) = tokens::mint(grant, description, Timestamp::now(), ttl_ms);
        match self.submit(LogOp::CreateToken(stored)).await? {
            Applied::Token(info) => Ok((bearer, info)),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates the first admin token if no token exists yet: `persist` gets the bearer
    /// string first (to write it where the operator finds it), and the token is stored
    /// only once that succeeded, so a token nobody can read is never stored.
    pub async fn ensure_admin_token(
        &self,
        persist: impl FnOnce(&str) -> Result<()> + Send + 'static,
    ) -> Result<bool> {
        if !self.snapshot().tokens.is_empty() {
            return Ok(false);
        }
        let grant = Grant::parse(AccessRole::Admin, Vec::new(), None)
            .map_err(|v| Error::Internal(v.reason))?;
        let description = Text::long("first admin token, created at first start")
            .map_err(|v| Error::Internal(v.reason))?;
        let (bearer, stored) = tokens::mint(grant, description, Timestamp::now(), None);
        persist(&bearer)?;
        match self.submit(LogOp::FirstAdminToken(stored)).await? {
            Applied::FirstAdmin(created) => Ok(created),
            other => Err(unexpected(&other)),
        }
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, id: TokenId) -> Result<TokenInfo> {
        match self.submit(LogOp::RevokeToken(id)).await? {
            Applied::Token(info) => Ok(info),
            other => Err(unexpected(&other)),
        }
    }

    /// Appends an audit event. The writer stores it with its next group (see
    /// `AuditQueue`) without the caller waiting: reads pay neither a wake-up of the
    /// writer nor an fsync each. Every later audit read includes it.
    pub async fn record_audit(&self, event: AuditEvent) -> Result<()> {
        self.health.check()?;
        if self.commands.is_closed() {
            return Err(Error::ShuttingDown);
        }
        if self.audit_queue.push(event) >= AUDIT_QUEUE_WAKE {
            self.commands
                .send(writer::Command::DrainAudit)
                .await
                .map_err(|_| Error::ShuttingDown)?;
        }
        Ok(())
    }

    /// Waits until every audit event recorded so far is in the store (they are queued
    /// to the writer in order, so an empty job behind them does).
    async fn settle_audit(&self) -> Result<()> {
        if let Some(replica) = self.replica.get() {
            return replica.settle_audit(&self.audit_queue).await;
        }
        self.write(|_| Ok(())).await
    }

    /// A page of audit events, newest first, including every event recorded before.
    pub async fn audit_page(
        &self,
        filter: AuditFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<AuditEvent>, Option<u64>)> {
        self.settle_audit().await?;
        let reader = self.audit.clone();
        tokio::task::spawn_blocking(move || reader.page(&filter, before, limit))
            .await
            .map_err(|e| Error::Internal(format!("audit read panicked: {e}")))?
    }

    /// Everything held about one person.
    pub async fn export_person(&self, id: PersonId) -> Result<PersonExport> {
        let export = self.write(move |w| w.export_person(&id)).await?;
        self.settle_audit().await?;
        let reader = self.audit.clone();
        let subject = export.person.id.to_string();
        let count = tokio::task::spawn_blocking(move || reader.count_subject(&subject))
            .await
            .map_err(|e| Error::Internal(format!("audit read panicked: {e}")))??;
        Ok(PersonExport {
            audit_event_count: count,
            ..export
        })
    }

    /// A handle that reads assessments from the store without the writer thread.
    pub fn evidence(&self) -> EvidenceReader {
        self.evidence.clone()
    }

    /// Every assessment about each of `people`, read from the store as a job of the
    /// runner (a department's evidence is megabytes to decode).
    pub async fn assessments_about_many(
        &self,
        people: Vec<PersonId>,
    ) -> Result<Vec<(PersonId, Vec<Assessment>)>> {
        let reader = self.evidence();
        self.jobs
            .run(Cancel::new(), move |_| {
                reader.assessments_about_many(&people)
            })
            .await
    }

    /// The evidence about each of `people` (in their order) from the first `batches`
    /// evidence batches, skills numbered by `columns` (others left out), without ids or
    /// texts (`EvidenceReader::scored_about_many_before`), as a job of the runner.
    pub async fn scored_about_many_before(
        &self,
        people: Vec<PersonId>,
        batches: u64,
        columns: std::collections::HashMap<String, usize>,
    ) -> Result<Vec<Vec<crate::store::Scored>>> {
        let reader = self.evidence();
        self.jobs
            .run(Cancel::new(), move |_| {
                reader.scored_about_many_before(&people, batches, |s| columns.get(s).copied())
            })
            .await
    }

    /// Which of `people` have evidence stored in a batch numbered `from` or above (an
    /// index lookup per person).
    pub fn evidence_touched_since(&self, people: &[PersonId], from: u64) -> Vec<bool> {
        self.evidence.touched_since(people, from)
    }

    /// Every assessment about one person, read from the store (a few batches: cheap
    /// enough for the calling task, and never behind the writer).
    pub fn assessments_about(&self, id: &PersonId) -> Result<Vec<Assessment>> {
        Ok(self.evidence.assessments_of(id.as_str())?.0)
    }

    /// Why storage failed (a flush that erred or stalled), if it did: writes are then
    /// refused and the server should stop.
    pub fn storage_failure(&self) -> Option<String> {
        self.health.failure()
    }

    /// The bounded pool for CPU-heavy work.
    pub fn jobs(&self) -> &JobRunner {
        &self.jobs
    }

    /// Cancels every derived computation, flushes and stops the writer; later writes
    /// fail with `ShuttingDown`.
    pub async fn close(&self) -> Result<()> {
        if let Some(replica) = self.replica.get() {
            replica.shutdown();
        }
        self.jobs.shutdown();
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(writer::Command::Close(reply))
            .await
            .is_err()
        {
            return Ok(());
        }
        let flushed = done.await.map_err(|_| Error::ShuttingDown)?;
        let handle = self.writer.lock().map_or(None, |mut h| h.take());
        if let Some(handle) = handle {
            // The writer has replied to Close, so it is returning; joining is brief.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        flushed
    }

    /// Runs `f` with the store on the writer thread, after every queued write.
    /// For diagnostics and tests (e.g. scanning every tree after an erasure).
    pub async fn inspect_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.write(move |w| f(w.store())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(rpc: &str) -> AuditEvent {
        AuditEvent {
            sequence: 0,
            at: Timestamp::from_unix_millis(1),
            token: None,
            role: None,
            rpc: rpc.into(),
            subjects: Vec::new(),
            outcome: "OK".into(),
            source: None,
            count: 1,
        }
    }

    #[test]
    fn requeued_audit_events_go_back_ahead_of_newer_ones() {
        let queue = AuditQueue::default();
        queue.push(event("a"));
        queue.push(event("b"));
        let taken = queue.take();
        queue.push(event("c"));
        queue.requeue(taken);
        let order: Vec<String> = queue.take().into_iter().map(|e| e.rpc).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert!(queue.is_empty());
    }
}
