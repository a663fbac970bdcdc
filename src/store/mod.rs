//! The only module that touches sled: named trees, key layout, versioned records,
//! batched durable writes, assessment idempotency and erasure.
//! Must never depend on tonic or analytics.
//!
//! ## Layout (schema version 2)
//! | tree          | key                          | value                                  |
//! |---------------|------------------------------|----------------------------------------|
//! | `meta`        | `schema_version`             | u32, big-endian                        |
//! | `meta`        | `assessment_count`           | u64 BE: a sizing hint written at close |
//! | `meta`        | `commits`                    | u64 BE: commits made (see `marker`)     |
//! | `meta`        | `erasures_applied`           | u64 BE: ledger entries made (see `ledger`) |
//! | `meta`        | `log_sequence`, `log_clock`  | u64 / i64 BE: last cluster-log entry applied, its time |
//! | `meta`        | `log_data_sequence`, `log_data_clock` | the same for the last entry that changed the data |
//! | `skills`      | skill id (UTF-8)             | `SkillRecord`                          |
//! | `roles`       | role id                      | `RoleRecord`                           |
//! | `teams`       | team id                      | `TeamRecord`                           |
//! | `people`      | person id                    | `PersonRecord`                         |
//! | `assessments` | batch sequence, u64 BE       | `BatchRecord`: the items one write accepted |
//! | `tokens`      | token id                     | `TokenRecord` (SHA-256 of the secret, never the secret) |
//! | `audit`       | first event's sequence, u64 BE | `AuditBlock`: events appended together (older values: one `AuditRecord`) |
//! | `mentorships` | mentee id, 0, mentor id      | `MentorshipRecord`                     |
//!
//! Values are a format byte, an xxh3-64 checksum and a prost message (see `records`);
//! names and evidence inside them are sealed under per-person keys (see `keys`). Beside
//! sled: `commit.marker` (`marker`), `person.keys` (`keys`), `erasures.ledger`
//! (`ledger`); backups and restores are in `backup`.
//!
//! Assessments are stored one sled record per accepted batch rather than one per item:
//! sled manages ~100k single-record inserts/s, far below the ingest target, while a
//! batch record costs one insert for up to 10,000 items. Idempotency is checked against
//! an in-memory index (128-bit hash of the id → content fingerprint) rebuilt by
//! the scan at open; erasure rewrites just the batches that mention the person.

mod backup;
mod durable;
mod keys;
mod ledger;
mod log;
mod marker;
mod records;
mod verify;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use xxhash_rust::xxh3::xxh3_128;

use ahash::AHashMap;

use crate::domain::{
    Assessment, AuditEvent, Directory, Erasure, Level, Mentorship, Person, PersonId, Role, Skill,
    SkillId, Source, Team, Timestamp, TokenId, TokenInfo,
};
use crate::error::{Error, Result};
use records::{
    AssessmentRecord, AuditBlock, AuditRecord, BatchRecord, MentorshipRecord, PersonRecord,
    RoleRecord, SkillRecord, TeamRecord, TokenRecord, decode, decode_audit, encode,
};

/// Size an audit block reaches before the next starts. sled keeps up to 16 values in a
/// leaf and writes a leaf over 128 KiB as a blob file of its own; 4 KiB blocks keep the
/// audit tree's leaves inline in the log.
const AUDIT_BLOCK_BYTES: usize = 4 * 1024;

/// Layout version this build reads and writes.
/// 2: values carry a checksum and personal text is sealed under per-person keys. A
/// schema-1 store is upgraded when opened (its people's names sealed; older evidence
/// stays as it was written).
pub const SCHEMA_VERSION: u32 = 2;
const SCHEMA_KEY: &[u8] = b"schema_version";
/// `meta` key of the number of commits made (see `marker`).
const COMMITS_KEY: &[u8] = b"commits";
/// Entries of the erasure ledger this store has applied (u64 BE; see `ledger`).
const ERASURES_APPLIED_KEY: &[u8] = b"erasures_applied";
/// `meta` key of the last cluster-log entry applied (cluster mode).
const LOG_SEQUENCE_KEY: &[u8] = b"log_sequence";
/// `meta` key of that entry's time, the clock derived state is computed at.
const LOG_CLOCK_KEY: &[u8] = b"log_clock";
/// `meta` key of the last cluster-log entry that changed the data: the data version.
const LOG_DATA_SEQUENCE_KEY: &[u8] = b"log_data_sequence";
/// `meta` key of that entry's time.
const LOG_DATA_CLOCK_KEY: &[u8] = b"log_data_clock";
pub use backup::{
    BACKUP_FILE, ClusterKeys, MANIFEST_FILE, Manifest, Restored, holds_store, restore,
    restore_checkpoint,
};
pub use keys::KEYS_FILE;
pub use ledger::{Contents as LedgerContents, LEDGER_FILE};
pub use log::{LogEntry, LogKey, LogOp, new_log_key};
pub use marker::MARKER_FILE;
pub use verify::{Verified, verify};
/// How many assessments the store held at the last close: sizes the id index at open
/// (a hint only; a crash leaves it stale, which costs a few rehashes, nothing more).
const COUNT_HINT_KEY: &[u8] = b"assessment_count";

/// How the store is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// sled page-cache size in bytes.
    pub cache_bytes: u64,
    /// sled's background flush period; `None` flushes only when asked. Writes are made
    /// durable by explicit `flush` calls either way.
    pub flush_every_ms: Option<u64>,
    /// Test-only: faults injected into `flush` (debug builds).
    pub fault: FlushFault,
    /// Audit events older than this are removed (`None`: kept).
    pub audit_retention: Option<std::time::Duration>,
    /// The oldest audit events are removed while the log is larger than this many bytes
    /// (`None`: no limit).
    pub audit_max_bytes: Option<u64>,
    /// Open a store that is behind its commit marker (or whose marker is damaged)
    /// instead of refusing: the operator accepts the loss, which is logged and audited.
    pub accept_data_loss: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 256 * 1024 * 1024,
            flush_every_ms: Some(500),
            fault: FlushFault::default(),
            audit_retention: Some(std::time::Duration::from_secs(400 * 86_400)),
            audit_max_bytes: Some(1024 * 1024 * 1024),
            accept_data_loss: false,
        }
    }
}

/// What `append_assessments` did with each item.
#[derive(Debug, Default)]
pub struct AppendOutcome {
    /// Positions (in the given slice) of items newly stored.
    pub accepted: Vec<usize>,
    /// Positions of items already stored with the same content.
    pub duplicates: Vec<usize>,
    /// Positions of items whose id is stored with other content.
    pub conflicts: Vec<usize>,
}

/// What erasure removed from the assessment log, and the tokens it revoked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErasureCounts {
    /// Assessments about the person.
    pub assessments_erased: u64,
    /// Assessments by the person whose assessor was cleared.
    pub assessor_references_cleared: u64,
    /// Tokens bound to the person, now revoked and unbound.
    pub revoked_tokens: Vec<StoredToken>,
}

/// One stored assessment as the start-up scan shows it: ids shared with the directory.
#[derive(Clone, Copy, Debug)]
pub struct Loaded<'a> {
    /// Person assessed.
    pub person: &'a PersonId,
    /// The person's position in the directory's id order (a dense index for builders).
    pub person_index: u32,
    /// Skill assessed.
    pub skill: &'a SkillId,
    /// The skill's position in the directory's id order.
    pub skill_index: u32,
    /// Score.
    pub score: Level,
    /// Source.
    pub source: Source,
    /// When.
    pub assessed_at: Timestamp,
}

/// A token as stored: its listing and the SHA-256 hash of its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredToken {
    /// The listing.
    pub info: TokenInfo,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
}

/// What `Store::open` found.
pub struct Opened {
    /// The store, ready for writes.
    pub store: Store,
    /// Skills, roles, teams and people.
    pub directory: Directory,
    /// Every token, active or not.
    pub tokens: Vec<StoredToken>,
    /// Active mentoring relationships.
    pub mentorships: Vec<Mentorship>,
    /// What was lost, when the store was behind its commit marker and the operator
    /// accepted it (`StoreOptions::accept_data_loss`).
    pub accepted_loss: Option<String>,
}

/// Which audit events a page holds.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this token's events.
    pub token: Option<TokenId>,
    /// Only this rpc's events.
    pub rpc: Option<String>,
    /// Only events naming this subject.
    pub subject: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
}

impl AuditFilter {
    fn matches(&self, record: &AuditEvent) -> bool {
        self.token
            .as_ref()
            .is_none_or(|t| record.token.as_ref() == Some(t))
            && self.rpc.as_ref().is_none_or(|r| *r == record.rpc)
            && self
                .subject
                .as_ref()
                .is_none_or(|s| record.subjects.contains(s))
            && self.since.is_none_or(|since| record.at >= since)
    }
}

/// Read access to the audit log from any thread (sled trees are thread-safe).
#[derive(Clone)]
pub struct AuditReader {
    tree: sled::Tree,
}

/// Which audit blocks name a person, found off the writer before an erasure, and how far
/// the log was read: the erasure itself then reads only those blocks and the ones written
/// since (blocks are append-only; a tombstone only removes names, never adds one).
#[derive(Clone, Debug, Default)]
pub struct AuditScan {
    /// Keys of blocks whose bytes contain the person's id.
    named: Vec<sled::IVec>,
    /// The last key read; `None` when the log was empty.
    upto: Option<sled::IVec>,
}

impl AuditReader {
    /// The blocks that may name `person` (a byte search; the erasure decodes them).
    pub fn scan_for(&self, person: &str) -> Result<AuditScan> {
        let needle = person.as_bytes();
        let mut scan = AuditScan::default();
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            if !needle.is_empty() && value.windows(needle.len()).any(|w| w == needle) {
                scan.named.push(key.clone());
            }
            scan.upto = Some(key);
        }
        Ok(scan)
    }

    /// Up to `limit` events matching `filter`, newest first, older than sequence
    /// `before` if given; and the sequence to continue from, if more may match.
    pub fn page(
        &self,
        filter: &AuditFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<AuditEvent>, Option<u64>)> {
        let end = before.map_or(std::ops::Bound::Unbounded, |b| {
            std::ops::Bound::Excluded(b.to_be_bytes())
        });
        let mut events = Vec::new();
        for entry in self.tree.range((std::ops::Bound::Unbounded, end)).rev() {
            let (key, value) = entry?;
            let first = seq_of(&key, "audit")?;
            for (offset, record) in decode_audit(&value)?.into_iter().enumerate().rev() {
                let sequence = first + offset as u64;
                if before.is_some_and(|b| sequence >= b) {
                    continue;
                }
                let event = record.into_domain(sequence)?;
                if !filter.matches(&event) {
                    continue;
                }
                if events.len() == limit {
                    return Ok((events, Some(sequence + 1)));
                }
                events.push(event);
            }
        }
        Ok((events, None))
    }

    /// Number of events naming `subject`.
    pub fn count_subject(&self, subject: &str) -> Result<u64> {
        let mut count = 0;
        for value in self.tree.iter().values() {
            for record in decode_audit(&value?)? {
                count += u64::from(record.subjects.iter().any(|s| s == subject));
            }
        }
        Ok(count)
    }
}

/// Opens sled in `dir`; a lock held by another process, or a store sled cannot open,
/// is a clear error.
fn open_sled(dir: &Path, options: &StoreOptions) -> Result<sled::Db> {
    sled::Config::new()
        .path(dir)
        .cache_capacity(options.cache_bytes)
        .flush_every_ms(options.flush_every_ms)
        .open()
        .map_err(|e| match e {
            // sled wraps the lock failure in an `Other` error around `WouldBlock`.
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock") =>
            {
                Error::DataDir(format!("{} is in use by another process", dir.display()))
            }
            other => Error::DataDir(format!(
                "the store in {} cannot be opened: {other}. If its files were damaged, \
                 restore the data directory from a backup",
                dir.display()
            )),
        })
}

/// The erasure ledger, and how many of its erasures the store says it has made (never
/// more than it records).
fn open_ledger(dir: &Path, meta: &sled::Tree) -> Result<(ledger::Ledger, u64)> {
    let ledger = ledger::Ledger::open(dir).map_err(|e| {
        Error::DataDir(format!(
            "the erasure ledger is damaged or unreadable: {e}. Restore the data \
             directory from a backup"
        ))
    })?;
    let erasures_applied = meta_u64(meta, ERASURES_APPLIED_KEY)?;
    let recorded = ledger.contents().entries.len() as u64;
    if erasures_applied > recorded {
        return Err(Error::DataDir(format!(
            "the store has made {erasures_applied} erasures but {} records {recorded}: \
             the ledger lost entries. Restore the data directory from a backup",
            dir.join(LEDGER_FILE).display()
        )));
    }
    Ok((ledger, erasures_applied))
}

/// Compares the store's commit count with its marker: `Ok(None)` when the store holds
/// every commit the marker recorded, `Ok(Some(what))` when it does not but the operator
/// accepts the loss, else an error naming the files and what to do.
fn check_marker(dir: &Path, commits: u64, accept: bool) -> Result<Option<String>> {
    let path = dir.join(MARKER_FILE);
    let recorded = marker::read(dir)
        .map_err(|e| Error::DataDir(format!("cannot read {}: {e}", path.display())))?;
    let problem = match recorded {
        marker::Recorded::Absent => return Ok(None),
        marker::Recorded::Commits(made) if made <= commits => return Ok(None),
        marker::Recorded::Commits(made) => format!(
            "the store in {} holds {commits} commits but {} recorded {made} made durable: \
             acknowledged writes are missing (the store was rolled back, truncated or \
             damaged; sled opens a damaged log at its last intact entry)",
            dir.display(),
            path.display()
        ),
        marker::Recorded::Unreadable(why) => format!(
            "the commit marker {} is damaged ({why}), so the store in {} cannot be checked \
             for lost writes",
            path.display(),
            dir.display()
        ),
    };
    if accept {
        tracing::warn!(%problem, "starting anyway: --accept-data-loss");
        return Ok(Some(problem));
    }
    Err(Error::DataDir(format!(
        "{problem}. Restore the data directory from a backup, or start with \
         --accept-data-loss to serve what the store holds (the loss is audited)"
    )))
}

/// One stored key and value, with the name of its tree.
pub type RawEntry = (String, Vec<u8>, Vec<u8>);

/// The durable store.
pub struct Store {
    db: sled::Db,
    /// Syncs what sled's flush leaves out (see `durable`).
    durability: durable::Durability,
    /// Commits made (each flush is one), also in the `meta` tree.
    commits: u64,
    meta: sled::Tree,
    /// Records the commits made durable (see `marker`).
    marker: marker::CommitMarker,
    /// Per-person keys that seal personal text (see `keys`).
    keys: keys::Keys,
    /// Each stored person's key slot.
    slots: AHashMap<String, u32>,
    /// Every erasure made, kept beside the store for restores (see `ledger`).
    ledger: ledger::Ledger,
    /// Ledger entries whose erasure this store has made.
    erasures_applied: u64,
    skills: sled::Tree,
    roles: sled::Tree,
    teams: sled::Tree,
    people: sled::Tree,
    assessments: sled::Tree,
    tokens: sled::Tree,
    audit: sled::Tree,
    mentorships: sled::Tree,
    /// 128-bit hash of each stored assessment id → content fingerprint. A collision
    /// needs ~2^64 ids, far beyond any organisation.
    ids: AHashMap<u128, u64>,
    /// Batches that mention each person, shared with `EvidenceReader`s.
    batches_by_person: BatchIndex,
    next_batch: u64,
    next_audit: u64,
    fault: FlushFault,
    /// Bytes of the `audit` tree's values, kept for the size limit.
    audit_bytes: u64,
    audit_retention: Option<std::time::Duration>,
    audit_max_bytes: Option<u64>,
}

/// Key of a mentoring relationship: mentee, a zero byte (never in an id), mentor.
fn mentorship_key(mentee: &PersonId, mentor: &PersonId) -> Vec<u8> {
    let mut key = Vec::with_capacity(mentee.as_str().len() + mentor.as_str().len() + 1);
    key.extend_from_slice(mentee.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(mentor.as_str().as_bytes());
    key
}

fn id_key(id: &str) -> u128 {
    xxh3_128(id.as_bytes())
}

/// Makes `dir` readable and listable by its owner only (0700).
fn restrict_to_owner(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) the store in `dir`, checks its schema version, rebuilds the
    /// in-memory indexes, and returns it with the directory. Every stored assessment is
    /// passed to `visit` as a `Loaded` view (ids shared with the directory, loaded first)
    /// during the single scan of the log.
    pub fn open(
        dir: &Path,
        options: &StoreOptions,
        mut visit: impl FnMut(&Directory, Loaded<'_>),
    ) -> Result<Opened> {
        // sled panics on some damaged logs instead of returning an error: a damaged
        // store is then refused with a clear error like any other.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::open_checked(dir, options, &mut visit).map_err(|e| match e {
                Error::Corrupt { .. } => Error::DataDir(format!(
                    "the store in {} is damaged: {e}. Restore the data directory from a backup",
                    dir.display()
                )),
                Error::Storage(sled::Error::Corruption { .. }) => Error::DataDir(format!(
                    "the store in {} is damaged: {e}. Restore the data directory from a backup",
                    dir.display()
                )),
                Error::Storage(_) => Error::DataDir(format!(
                    "the store in {} cannot be read: {e}. If its files were damaged, restore \
                     the data directory from a backup",
                    dir.display()
                )),
                e => e,
            })
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(Error::DataDir(format!(
                "the store in {} is damaged: sled failed while reading it ({what}). \
                 Restore the data directory from a backup",
                dir.display()
            )))
        })
    }

    fn open_checked(
        dir: &Path,
        options: &StoreOptions,
        visit: &mut impl FnMut(&Directory, Loaded<'_>),
    ) -> Result<Opened> {
        // Only capsight's user may list or read the store (names are in plain text).
        std::fs::create_dir_all(dir)
            .and_then(|()| restrict_to_owner(dir))
            .map_err(|e| Error::DataDir(format!("cannot use {}: {e}", dir.display())))?;
        let db = open_sled(dir, options)?;
        tracing::debug!("sled opened");
        let durability = durable::Durability::new(dir)
            .map_err(|e| Error::DataDir(format!("cannot sync {}: {e}", dir.display())))?;
        let keys = keys::Keys::open(dir).map_err(|e| {
            Error::DataDir(format!(
                "the key file is damaged or unreadable: {e}. Restore the data directory from \
                 a backup"
            ))
        })?;
        let meta = db.open_tree("meta")?;
        let commits = match meta.get(COMMITS_KEY)? {
            Some(bytes) => {
                u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| Error::Corrupt {
                    tree: "meta".into(),
                    detail: "commit count is not 8 bytes".into(),
                })?)
            }
            None => 0,
        };
        let loss = check_marker(dir, commits, options.accept_data_loss)?;
        let (ledger, erasures_applied) = open_ledger(dir, &meta)?;
        let marker = marker::CommitMarker::create(dir, commits).map_err(|e| {
            Error::DataDir(format!(
                "cannot write the commit marker in {}: {e}",
                dir.display()
            ))
        })?;
        let mut store = Self {
            durability,
            commits,
            meta,
            marker,
            keys,
            slots: AHashMap::new(),
            ledger,
            erasures_applied,
            skills: db.open_tree("skills")?,
            roles: db.open_tree("roles")?,
            teams: db.open_tree("teams")?,
            people: db.open_tree("people")?,
            assessments: db.open_tree("assessments")?,
            tokens: db.open_tree("tokens")?,
            audit: db.open_tree("audit")?,
            mentorships: db.open_tree("mentorships")?,
            db,
            ids: AHashMap::new(),
            batches_by_person: BatchIndex::default(),
            next_batch: 0,
            next_audit: 0,
            fault: options.fault.clone(),
            audit_bytes: 0,
            audit_retention: options.audit_retention,
            audit_max_bytes: options.audit_max_bytes,
        };
        let phase = std::time::Instant::now();
        let upgrade = store.check_schema()?;
        let directory = store.load_directory()?;
        tracing::debug!(
            elapsed_ms = phase.elapsed().as_millis() as u64,
            "directory loaded"
        );
        let phase = std::time::Instant::now();
        store.load_assessments(&directory, visit)?;
        tracing::debug!(
            elapsed_ms = phase.elapsed().as_millis() as u64,
            "assessments loaded"
        );
        let phase = std::time::Instant::now();
        store.settle_keys(&directory, upgrade)?;
        tracing::debug!(
            elapsed_ms = phase.elapsed().as_millis() as u64,
            "keys settled"
        );
        let phase = std::time::Instant::now();
        let (tokens, mentorships) = store.read_tokens_audit_and_mentorships()?;
        tracing::debug!(
            elapsed_ms = phase.elapsed().as_millis() as u64,
            "tokens, audit and mentorships read"
        );
        if let Some(problem) = &loss {
            store.record_accepted_loss(problem)?;
        }
        Ok(Opened {
            store,
            directory,
            tokens,
            mentorships,
            accepted_loss: loss,
        })
    }

    /// Every token and active mentorship; counts the audit log's bytes and finds its
    /// next sequence.
    fn read_tokens_audit_and_mentorships(&mut self) -> Result<(Vec<StoredToken>, Vec<Mentorship>)> {
        let tokens = self
            .tokens
            .iter()
            .values()
            .map(|v| decode::<TokenRecord>("tokens", &v?)?.into_domain())
            .collect::<Result<Vec<_>>>()?;
        for value in self.audit.iter().values() {
            self.audit_bytes += value?.len() as u64;
        }
        if let Some((key, value)) = self.audit.last()? {
            self.next_audit = seq_of(&key, "audit")? + decode_audit(&value)?.len() as u64;
        }
        let mentorships = self
            .mentorships
            .iter()
            .values()
            .map(|v| decode::<MentorshipRecord>("mentorships", &v?)?.into_domain())
            .collect::<Result<Vec<_>>>()?;
        Ok((tokens, mentorships))
    }

    /// Keeps the operator's decision to start with data lost where audits look.
    fn record_accepted_loss(&mut self, problem: &str) -> Result<()> {
        self.append_audit(vec![AuditEvent {
            sequence: 0,
            at: Timestamp::now(),
            token: None,
            role: None,
            rpc: "capsight.server/StartAcceptingDataLoss".into(),
            subjects: vec![problem.to_owned()],
            outcome: "DATA_LOSS".into(),
            source: None,
            count: 1,
        }])?;
        self.flush()
    }

    /// Checks the schema version; true when the store is schema 1 and is being upgraded.
    fn check_schema(&self) -> Result<bool> {
        let meta = self.db.open_tree("meta")?;
        match meta.get(SCHEMA_KEY)? {
            None => {
                let trees = [
                    &self.skills,
                    &self.roles,
                    &self.teams,
                    &self.people,
                    &self.assessments,
                    &self.tokens,
                    &self.audit,
                    &self.mentorships,
                ];
                if trees.iter().any(|t| !t.is_empty()) {
                    return Err(Error::DataDir(
                        "data present but no schema version; not a capsight data directory?".into(),
                    ));
                }
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                self.db.flush()?;
                Ok(false)
            }
            Some(raw) => {
                let bytes: [u8; 4] = raw
                    .as_ref()
                    .try_into()
                    .map_err(|_| Error::DataDir("schema version key is malformed".into()))?;
                match u32::from_be_bytes(bytes) {
                    SCHEMA_VERSION => Ok(false),
                    1 => Ok(true),
                    newer if newer > SCHEMA_VERSION => Err(Error::DataDir(format!(
                        "written by a newer capsight (schema {newer}); this build reads schema {SCHEMA_VERSION}"
                    ))),
                    older => Err(Error::DataDir(format!(
                        "schema {older} has no migration to schema {SCHEMA_VERSION}"
                    ))),
                }
            }
        }
    }

    fn load_directory(&mut self) -> Result<Directory> {
        let mut directory = Directory::default();
        let skills = self
            .skills
            .iter()
            .values()
            .map(|v| decode::<SkillRecord>("skills", &v?)?.into_domain());
        directory.upsert_skills(skills.collect::<Result<Vec<_>>>()?);
        let roles = self
            .roles
            .iter()
            .values()
            .map(|v| decode::<RoleRecord>("roles", &v?)?.into_domain());
        directory.upsert_roles(roles.collect::<Result<Vec<_>>>()?);
        let teams = self
            .teams
            .iter()
            .values()
            .map(|v| decode::<TeamRecord>("teams", &v?)?.into_domain());
        directory.upsert_teams(teams.collect::<Result<Vec<_>>>()?);
        let ring = self.keys.ring();
        let mut slots = AHashMap::new();
        let mut people = Vec::new();
        for value in self.people.iter().values() {
            let record = decode::<PersonRecord>("people", &value?)?;
            let slot = record.key_slot;
            let person = record.into_domain(&ring)?;
            if let Some(slot) = slot {
                slots.insert(person.id.as_str().to_owned(), slot);
            }
            people.push(person);
        }
        directory.upsert_people(people);
        self.slots = slots;
        Ok(directory)
    }

    /// After a successful load: gives people stored without a key (a schema-1 store) one,
    /// sealing their names, and zeroes keys no person references (an erasure or a new
    /// person cut short by a crash before its flush).
    fn settle_keys(&mut self, directory: &Directory, upgrade: bool) -> Result<()> {
        let unkeyed: Vec<Person> = directory
            .people()
            .values()
            .filter(|p| !self.slots.contains_key(p.id.as_str()))
            .cloned()
            .collect();
        let mut referenced: Vec<bool> = Vec::new();
        for &slot in self.slots.values() {
            let slot = slot as usize;
            if referenced.len() <= slot {
                referenced.resize(slot + 1, false);
            }
            referenced[slot] = true;
        }
        for slot in self.keys.used() {
            if !referenced.get(slot as usize).copied().unwrap_or(false) {
                self.keys.shred_later(slot);
            }
        }
        self.put_people(&unkeyed)?;
        if upgrade {
            self.meta
                .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
        }
        if upgrade || !unkeyed.is_empty() {
            self.flush()?;
        } else {
            self.keys.shred_pending().map_err(io_error)?;
        }
        Ok(())
    }

    /// Scans the log once: checks every record (ids resolve against the directory, so a
    /// dangling reference is reported as corruption), rebuilds the idempotency and
    /// per-person indexes, and shows each assessment to `visit` without allocating.
    /// Decoding runs on a second thread, one batch ahead of the indexing, so the two
    /// halves of the work overlap.
    fn load_assessments(
        &mut self,
        directory: &Directory,
        visit: &mut impl FnMut(&Directory, Loaded<'_>),
    ) -> Result<()> {
        let dangling = |what: &str| Error::Corrupt {
            tree: "assessments".into(),
            detail: format!("assessment names an unknown {what}"),
        };
        // People by id with their position in id order; one hash lookup per reference.
        let people: AHashMap<&str, (u32, &PersonId)> = directory
            .people()
            .keys()
            .enumerate()
            .map(|(i, id)| (id.as_str(), (i as u32, id)))
            .collect();
        let skills: AHashMap<&str, (u32, &SkillId)> = directory
            .skills()
            .keys()
            .enumerate()
            .map(|(i, id)| (id.as_str(), (i as u32, id)))
            .collect();
        let mut batches: Vec<Vec<u64>> = vec![Vec::new(); people.len()];
        let tree = self.assessments.clone();
        let hint = self
            .db
            .open_tree("meta")?
            .get(COUNT_HINT_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        let mut ids = std::mem::take(&mut self.ids);
        // The decoding thread also builds the id index (it needs nothing from the
        // directory), which leaves the indexing on this thread less to do.
        let ids = std::thread::scope(|scope| -> Result<AHashMap<u128, u64>> {
            let (decoded, received) =
                std::sync::mpsc::sync_channel::<Result<(u64, BatchRecord)>>(64);
            let decoder = scope.spawn(move || {
                ids.reserve(usize::try_from(hint).unwrap_or(0));
                for entry in tree.iter() {
                    let item = entry.map_err(Error::from).and_then(|(key, value)| {
                        Ok((
                            seq_of(&key, "assessments")?,
                            decode::<BatchRecord>("assessments", &value)?,
                        ))
                    });
                    if let Ok((_, batch)) = &item {
                        for record in &batch.items {
                            ids.insert(id_key(&record.id), record.fingerprint);
                        }
                    }
                    let failed = item.is_err();
                    if decoded.send(item).is_err() || failed {
                        break;
                    }
                }
                ids
            });
            for item in received {
                let (seq, batch) = item?;
                for record in &batch.items {
                    let (score, source, assessed_at) = record.check()?;
                    let &(index, person) = people
                        .get(record.person_id.as_str())
                        .ok_or_else(|| dangling("person"))?;
                    let &(skill_index, skill) = skills
                        .get(record.skill_id())
                        .ok_or_else(|| dangling("skill"))?;
                    let assessor = match record.assessor_id.as_str() {
                        "" => None,
                        id => Some(people.get(id).ok_or_else(|| dangling("assessor"))?.0),
                    };
                    for who in std::iter::once(index).chain(assessor) {
                        let list = &mut batches[who as usize];
                        if list.last() != Some(&seq) {
                            list.push(seq);
                        }
                    }
                    let loaded = Loaded {
                        person,
                        person_index: index,
                        skill,
                        skill_index,
                        score,
                        source,
                        assessed_at,
                    };
                    visit(directory, loaded);
                }
                self.next_batch = seq + 1;
            }
            decoder
                .join()
                .map_err(|_| Error::Internal("assessment decoder panicked".into()))
        })?;
        self.ids = ids;
        *self.batches_by_person.write() = directory
            .people()
            .keys()
            .zip(batches)
            .filter(|(_, list)| !list.is_empty())
            .map(|(id, list)| (id.clone(), list))
            .collect();
        Ok(())
    }

    fn index(
        &mut self,
        by_person: &mut AHashMap<PersonId, Vec<u64>>,
        record: &AssessmentRecord,
        batch: u64,
        assessment: &Assessment,
    ) {
        self.ids.insert(id_key(&record.id), record.fingerprint);
        let people = std::iter::once(&assessment.person).chain(assessment.assessor.as_ref());
        for person in people {
            let batches = by_person.entry(person.clone()).or_default();
            if batches.last() != Some(&batch) {
                batches.push(batch);
            }
        }
    }

    /// Number of assessments stored.
    pub fn assessment_count(&self) -> usize {
        self.ids.len()
    }

    /// The number the next assessment batch will get: every batch stored so far is
    /// numbered below it.
    pub fn next_batch(&self) -> u64 {
        self.next_batch
    }

    /// Stages skills (durable after `flush`).
    pub fn put_skills(&self, skills: &[Skill]) -> Result<()> {
        put_all(
            &self.skills,
            skills
                .iter()
                .map(|s| (s.id.as_str(), encode(&SkillRecord::from(s)))),
        )
    }

    /// Stages roles (durable after `flush`).
    pub fn put_roles(&self, roles: &[Role]) -> Result<()> {
        put_all(
            &self.roles,
            roles
                .iter()
                .map(|r| (r.id.as_str(), encode(&RoleRecord::from(r)))),
        )
    }

    /// Stages teams (durable after `flush`).
    pub fn put_teams(&self, teams: &[Team]) -> Result<()> {
        put_all(
            &self.teams,
            teams
                .iter()
                .map(|t| (t.id.as_str(), encode(&TeamRecord::from(t)))),
        )
    }

    /// Stages people (durable after `flush`), each name sealed under the person's key (a
    /// new key for a new person).
    pub fn put_people(&mut self, people: &[Person]) -> Result<()> {
        self.put_people_keyed(people, &HashMap::new())
    }

    /// `put_people`, keeping with each person their cluster key from `cluster_keys`
    /// (cluster mode), sealed under their local key.
    pub fn put_people_keyed(
        &mut self,
        people: &[Person],
        cluster_keys: &HashMap<PersonId, LogKey>,
    ) -> Result<()> {
        let mut values = Vec::with_capacity(people.len());
        for person in people {
            let slot = match self.slots.get(person.id.as_str()) {
                Some(&slot) => slot,
                None => {
                    let slot = self.keys.allocate().map_err(io_error)?;
                    self.slots.insert(person.id.as_str().to_owned(), slot);
                    slot
                }
            };
            let mut record = PersonRecord::from(person);
            record.seal(&mut self.keys, slot)?;
            if let Some(key) = cluster_keys.get(&person.id) {
                record.seal_cluster_key(&mut self.keys, slot, key)?;
            }
            values.push((person.id.as_str(), encode(&record)));
        }
        put_all(&self.people, values.into_iter())
    }

    /// Stages the new items of `items` as one batch record (durable after `flush`) and
    /// classifies every item as accepted, duplicate or conflict. The index is updated only
    /// once sled has taken the record.
    pub fn append_assessments(&mut self, items: &[Assessment]) -> Result<AppendOutcome> {
        let mut outcome = AppendOutcome::default();
        let mut fresh: HashMap<u128, u64> = HashMap::new();
        let mut records = Vec::new();
        for (position, assessment) in items.iter().enumerate() {
            let mut record = AssessmentRecord::new(assessment);
            let key = id_key(&record.id);
            let known = self
                .ids
                .get(&key)
                .copied()
                .or_else(|| fresh.get(&key).copied());
            match known {
                Some(fingerprint) if fingerprint == record.fingerprint => {
                    outcome.duplicates.push(position)
                }
                Some(_) => outcome.conflicts.push(position),
                None => {
                    fresh.insert(key, record.fingerprint);
                    if !assessment.evidence.as_str().is_empty() {
                        let slot =
                            *self.slots.get(assessment.person.as_str()).ok_or_else(|| {
                                Error::Internal("an assessment of a person with no key".into())
                            })?;
                        record.seal(&mut self.keys, slot)?;
                    }
                    outcome.accepted.push(position);
                    records.push(record);
                }
            }
        }
        if records.is_empty() {
            return Ok(outcome);
        }
        let seq = self.next_batch;
        let batch = BatchRecord { items: records };
        self.assessments.insert(seq.to_be_bytes(), encode(&batch))?;
        self.next_batch += 1;
        let shared = self.batches_by_person.clone();
        // One short write lock per batch: readers copy a person's list and let go.
        let mut by_person = shared.write();
        for (record, &position) in batch.items.iter().zip(&outcome.accepted) {
            self.index(&mut by_person, record, seq, &items[position]);
        }
        Ok(outcome)
    }

    /// Stages a token (durable after `flush`).
    pub fn put_token(&self, token: &StoredToken) -> Result<()> {
        self.tokens.insert(
            token.info.id.as_str().as_bytes(),
            encode(&TokenRecord::from(token)),
        )?;
        Ok(())
    }

    /// Stages a mentoring relationship (durable after `flush`).
    pub fn put_mentorship(&self, m: &Mentorship) -> Result<()> {
        self.mentorships.insert(
            mentorship_key(&m.mentee, &m.mentor),
            encode(&MentorshipRecord::from(m)),
        )?;
        Ok(())
    }

    /// Stages the end of a mentoring relationship (durable after `flush`).
    pub fn remove_mentorship(&self, mentee: &PersonId, mentor: &PersonId) -> Result<()> {
        self.mentorships.remove(mentorship_key(mentee, mentor))?;
        Ok(())
    }

    /// Stages audit events in blocks of about `AUDIT_BLOCK_BYTES`, numbering them in order
    /// from the next sequence; returns the sequences given (durable after `flush`).
    /// Plain inserts, not a sled batch: events need no cross-key atomicity, and a batch
    /// would make sled seal and write out its IO buffer on every call.
    pub fn append_audit(&mut self, events: Vec<AuditEvent>) -> Result<std::ops::Range<u64>> {
        let first = self.next_audit;
        let mut block = AuditBlock::default();
        let mut block_bytes = 0;
        let mut block_first = first;
        let total = events.len();
        for (i, event) in events.into_iter().enumerate() {
            let record = AuditRecord::from(event);
            block_bytes += record.encoded_len();
            block.events.push(record);
            if block_bytes >= AUDIT_BLOCK_BYTES || i + 1 == total {
                let count = block.events.len() as u64;
                let value = encode(&block);
                self.audit_bytes += value.len() as u64;
                self.audit.insert(block_first.to_be_bytes(), value)?;
                self.next_audit = block_first + count;
                block_first = self.next_audit;
                block = AuditBlock::default();
                block_bytes = 0;
            }
        }
        Ok(first..self.next_audit)
    }

    /// Removes the oldest audit blocks while they are past the retention age (judged by
    /// a block's newest event) or the log is over its size limit; returns how many
    /// blocks went. Cheap when nothing is due: it reads only the oldest block. Space is
    /// reclaimed as sled rewrites its segments.
    pub fn retain_audit(&mut self, now: Timestamp) -> Result<usize> {
        let cutoff = self.audit_retention.map(|age| {
            now.unix_millis()
                .saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        });
        let mut removed = 0;
        while let Some((key, value)) = self.audit.first()? {
            // Never the newest block: it holds the sequence the next one continues from.
            if self.audit.last()?.is_some_and(|(last, _)| last == key) {
                break;
            }
            let over_size = self
                .audit_max_bytes
                .is_some_and(|max| self.audit_bytes > max);
            let expired = match cutoff {
                Some(cutoff) => decode_audit(&value)?
                    .iter()
                    .map(AuditRecord::at_ms)
                    .max()
                    .is_some_and(|newest| newest < cutoff),
                None => false,
            };
            if !(over_size || expired) {
                break;
            }
            self.audit.remove(&key)?;
            self.audit_bytes = self.audit_bytes.saturating_sub(value.len() as u64);
            removed += 1;
        }
        Ok(removed)
    }

    /// A read handle on the audit log.
    pub fn audit_reader(&self) -> AuditReader {
        AuditReader {
            tree: self.audit.clone(),
        }
    }

    /// A read handle on the assessments, usable from any thread while the writer writes.
    /// A reader of the cluster keys the people records hold, for use off the writer.
    pub fn cluster_key_reader(&self) -> ClusterKeyReader {
        ClusterKeyReader {
            people: self.people.clone(),
            keys: self.keys.ring(),
        }
    }

    pub fn evidence_reader(&self) -> EvidenceReader {
        EvidenceReader {
            assessments: self.assessments.clone(),
            batches_by_person: self.batches_by_person.clone(),
            keys: self.keys.ring(),
        }
    }

    /// Every assessment about `person` and every assessment they made.
    pub fn assessments_of(&self, person: &str) -> Result<(Vec<Assessment>, Vec<Assessment>)> {
        self.evidence_reader().assessments_of(person)
    }

    /// Assessments about each of `people`, in the order given.
    pub fn assessments_about_many(
        &self,
        people: &[PersonId],
    ) -> Result<Vec<(PersonId, Vec<Assessment>)>> {
        self.evidence_reader().assessments_about_many(people)
    }

    /// Replaces `person` by a tombstone in every audit event and revokes and unbinds the
    /// tokens bound to them, returning those tokens. Runs before the erasure
    /// transaction: should the process die in between, the person is merely
    /// over-redacted, and the erasure, never acknowledged, is retried by the client.
    fn tombstone(
        &self,
        person: &str,
        scan: &AuditScan,
        now: Timestamp,
    ) -> Result<Vec<StoredToken>> {
        let since = match &scan.upto {
            Some(upto) => self.audit.range::<&[u8], _>((
                std::ops::Bound::Excluded(upto.as_ref()),
                std::ops::Bound::Unbounded,
            )),
            None => self.audit.iter(),
        };
        let mut blocks: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        for key in &scan.named {
            if let Some(value) = self.audit.get(key)? {
                blocks.push((key.clone(), value));
            }
        }
        for entry in since {
            blocks.push(entry?);
        }
        for (key, value) in blocks {
            let mut events = decode_audit(&value)?;
            let mut named = false;
            for subject in events
                .iter_mut()
                .flat_map(|e| e.subjects.iter_mut())
                .filter(|s| *s == person)
            {
                AuditEvent::ERASED.clone_into(subject);
                named = true;
            }
            if named {
                self.audit.insert(key, encode(&AuditBlock { events }))?;
            }
        }
        let mut revoked = Vec::new();
        for value in self.tokens.iter().values() {
            let mut token = decode::<TokenRecord>("tokens", &value?)?.into_domain()?;
            if token
                .info
                .grant
                .person
                .as_ref()
                .is_some_and(|p| p.as_str() == person)
            {
                token.info.grant.person = None;
                token.info.revoked_at.get_or_insert(now);
                self.put_token(&token)?;
                revoked.push(token);
            }
        }
        Ok(revoked)
    }

    /// Atomically removes a person's record, every assessment about them, their id from
    /// assessments they made and their mentoring relationships, and writes the teams they
    /// no longer manage (durable after `flush`).
    pub fn erase_person(&mut self, erasure: &Erasure, plan: &ErasurePlan) -> Result<ErasureCounts> {
        let id = erasure.person.id.as_str();
        let revoked_tokens = self.tombstone(id, &plan.audit, Timestamp::now())?;
        let batches = self.batches_by_person.of(id);
        let teams: Vec<(&str, Vec<u8>)> = erasure
            .unmanaged_teams
            .iter()
            .map(|t| (t.id.as_str(), encode(&TeamRecord::from(t))))
            .collect();
        // Mentoring relationships on either side (keys `mentee \0 mentor`).
        let mut mentoring_keys = Vec::new();
        for key in self.mentorships.iter().keys() {
            let key = key?;
            let mut sides = key.splitn(2, |&b| b == 0);
            let (mentee, mentor) = (sides.next(), sides.next());
            if mentee == Some(id.as_bytes()) || mentor == Some(id.as_bytes()) {
                mentoring_keys.push(key);
            }
        }
        let (erased_ids, cleared) = (
            &self.people,
            &self.teams,
            &self.assessments,
            &self.mentorships,
        )
            .transaction(|(people, team_tree, log, mentoring)| {
                people.remove(id.as_bytes())?;
                for key in &mentoring_keys {
                    mentoring.remove(key)?;
                }
                for (key, value) in &teams {
                    team_tree.insert(key.as_bytes(), value.as_slice())?;
                }
                let mut erased_ids = Vec::new();
                let mut cleared = 0u64;
                for seq in &batches {
                    let key = seq.to_be_bytes();
                    let Some(bytes) = log.get(key)? else { continue };
                    let fresh;
                    let (value, erased, count) = match plan.batches.get(seq) {
                        Some((original, prepared)) if *original == bytes => prepared,
                        // Written or rewritten since the plan: rewrite it here.
                        _ => {
                            fresh = rewrite_batch(&bytes, id)
                                .map_err(ConflictableTransactionError::Abort)?;
                            &fresh
                        }
                    };
                    erased_ids.extend(erased.iter().cloned());
                    cleared += count;
                    match value {
                        Some(value) => log.insert(&key, value.as_slice())?,
                        None => log.remove(&key)?,
                    };
                }
                Ok((erased_ids, cleared))
            })
            .map_err(|e| match e {
                TransactionError::Abort(inner) => inner,
                TransactionError::Storage(inner) => Error::Storage(inner),
            })?;
        for erased in &erased_ids {
            self.ids.remove(&id_key(erased));
        }
        // Recorded for restores of older backups, synced before the flush that makes
        // the erasure durable.
        let hash = self.ledger.hash(id);
        self.ledger
            .append(hash, Timestamp::now().unix_millis())
            .map_err(io_error)?;
        self.erasures_applied = self.ledger.contents().entries.len() as u64;
        self.meta
            .insert(ERASURES_APPLIED_KEY, &self.erasures_applied.to_be_bytes())?;
        // The key goes once the removal is durable (`flush`): then every copy of the
        // person's sealed text left in the log is unreadable.
        if let Some(slot) = self.slots.remove(id) {
            self.keys.shred_later(slot);
        }
        self.batches_by_person.write().remove(id);
        Ok(ErasureCounts {
            assessments_erased: erased_ids.len() as u64,
            assessor_references_cleared: cleared,
            revoked_tokens,
        })
    }

    /// The last cluster-log entry applied to this store and its time, and the last
    /// that changed the data and its time (cluster mode; zeros for a store that never
    /// applied one).
    pub fn log_position(&self) -> Result<(u64, i64, u64, i64)> {
        let time = |key| meta_u64(&self.meta, key).map(|t| i64::from_be_bytes(t.to_be_bytes()));
        Ok((
            meta_u64(&self.meta, LOG_SEQUENCE_KEY)?,
            time(LOG_CLOCK_KEY)?,
            meta_u64(&self.meta, LOG_DATA_SEQUENCE_KEY)?,
            time(LOG_DATA_CLOCK_KEY)?,
        ))
    }

    /// Records that the cluster-log entry `sequence`, received at `at_ms`, is applied,
    /// and whether it changed the data; durable with the same flush as its writes.
    pub fn set_log_position(&self, sequence: u64, at_ms: i64, data: bool) -> Result<()> {
        self.meta
            .insert(LOG_SEQUENCE_KEY, &sequence.to_be_bytes())?;
        self.meta.insert(LOG_CLOCK_KEY, &at_ms.to_be_bytes())?;
        if data {
            self.meta
                .insert(LOG_DATA_SEQUENCE_KEY, &sequence.to_be_bytes())?;
            self.meta.insert(LOG_DATA_CLOCK_KEY, &at_ms.to_be_bytes())?;
        }
        Ok(())
    }

    /// Records how many assessments the store holds, to size the index at next open.
    pub fn save_count_hint(&self) -> Result<()> {
        self.db
            .open_tree("meta")?
            .insert(COUNT_HINT_KEY, &(self.ids.len() as u64).to_be_bytes())?;
        Ok(())
    }

    /// Makes every staged write durable (sled flush + fsync).
    /// Makes everything written so far durable: sled's flush, then an `fdatasync` of its
    /// log and an `fsync` of new blob files and their directory (`durable`).
    pub fn flush(&mut self) -> Result<()> {
        self.fault.inject()?;
        // New keys before the records that reference them, the ledger before the
        // erasures it records.
        self.keys.sync().map_err(io_error)?;
        self.ledger.sync().map_err(io_error)?;
        let commits = self.commits + 1;
        self.meta.insert(COMMITS_KEY, &commits.to_be_bytes())?;
        self.db.flush()?;
        self.durability.sync().map_err(io_error)?;
        // Erased people's keys after the removal of their records.
        self.keys.shred_pending().map_err(io_error)?;
        self.commits = commits;
        self.marker
            .record(commits)
            .map_err(|e| Error::Storage(sled::Error::Io(e)))?;
        Ok(())
    }

    /// People of `directory` that the erasure ledger says were erased after the point this
    /// store's state was taken (a restored backup): the erasures to make again.
    pub fn pending_erasures(&self, directory: &Directory) -> Vec<PersonId> {
        let entries = &self.ledger.contents().entries;
        let pending: std::collections::HashSet<[u8; 32]> = entries
            .get(usize::try_from(self.erasures_applied).unwrap_or(usize::MAX)..)
            .unwrap_or_default()
            .iter()
            .map(|e| e.hash)
            .collect();
        if pending.is_empty() {
            return Vec::new();
        }
        directory
            .people()
            .keys()
            .filter(|id| pending.contains(&self.ledger.hash(id.as_str())))
            .cloned()
            .collect()
    }

    /// Records that every ledger entry has been applied (durable after `flush`).
    pub fn erasures_caught_up(&mut self) -> Result<()> {
        self.erasures_applied = self.ledger.contents().entries.len() as u64;
        self.meta
            .insert(ERASURES_APPLIED_KEY, &self.erasures_applied.to_be_bytes())?;
        Ok(())
    }

    /// Bytes of the audit log's stored values.
    pub fn audit_bytes(&self) -> u64 {
        self.audit_bytes
    }

    /// Bytes sled occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    /// Every key and value in every tree, for audits such as proving an id was erased.
    pub fn raw_entries(&self) -> Result<Vec<RawEntry>> {
        let mut entries = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            let name = String::from_utf8_lossy(&name).into_owned();
            for entry in tree.iter() {
                let (key, value) = entry?;
                entries.push((name.clone(), key.to_vec(), value.to_vec()));
            }
        }
        Ok(entries)
    }
}

/// A u64 (big-endian) in `meta`, 0 when absent.
fn meta_u64(meta: &sled::Tree, key: &[u8]) -> Result<u64> {
    match meta.get(key)? {
        Some(bytes) => Ok(u64::from_be_bytes(bytes.as_ref().try_into().map_err(
            |_| Error::Corrupt {
                tree: "meta".into(),
                detail: format!("{} is not 8 bytes", String::from_utf8_lossy(key)),
            },
        )?)),
        None => Ok(0),
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::Storage(sled::Error::Io(e))
}

fn seq_of(key: &[u8], tree: &str) -> Result<u64> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| Error::Corrupt {
        tree: tree.into(),
        detail: "sequence key is not 8 bytes".into(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn put_all<'a>(tree: &sled::Tree, entries: impl Iterator<Item = (&'a str, Vec<u8>)>) -> Result<()> {
    let mut batch = sled::Batch::default();
    for (key, value) in entries {
        batch.insert(key.as_bytes(), value);
    }
    tree.apply_batch(batch)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_data_directory_is_the_owners_only_and_flushes_sync_the_log() {
        use std::os::unix::fs::PermissionsExt;
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut store = open(&dir);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        store.flush().unwrap();
    }

    fn event(rpc: &str, subjects: &[&str]) -> AuditEvent {
        AuditEvent {
            sequence: 0,
            at: Timestamp::from_unix_millis(1_700_000_000_000),
            token: None,
            role: None,
            rpc: rpc.to_owned(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            outcome: "OK".to_owned(),
            source: None,
            count: 1,
        }
    }

    fn open(dir: &Path) -> Store {
        Store::open(dir, &StoreOptions::default(), |_, _| {})
            .unwrap()
            .store
    }

    /// Erases `person` (no unmanaged teams, no prepared plan) and flushes.
    fn erase(store: &mut Store, person: &Person) {
        let erasure = Erasure {
            person: person.clone(),
            unmanaged_teams: vec![],
        };
        store
            .erase_person(&erasure, &ErasurePlan::default())
            .unwrap();
        store.flush().unwrap();
    }

    /// A person in team `t` with role `r` (also used by `log`'s tests).
    pub(super) fn person(id: &str, name: &str) -> Person {
        use crate::domain::{Availability, RoleId, TeamId, Text};
        Person {
            id: PersonId::parse(id).unwrap(),
            display_name: Text::name(name).unwrap(),
            team: TeamId::parse("t").unwrap(),
            role: RoleId::parse("r").unwrap(),
            target_role: None,
            availability: Availability::parse(1.0).unwrap(),
        }
    }

    #[test]
    fn an_erasure_destroys_the_key_that_sealed_the_persons_name_and_evidence() {
        use crate::domain::{AssessmentId, Text};
        let temp = tempfile::tempdir().unwrap();
        let mut store = open(temp.path());
        let (ada, bob) = (person("ada", "Ada Canary"), person("bob", "Bob Keeper"));
        store.put_people(&[ada.clone(), bob.clone()]).unwrap();
        store
            .put_skills(&[Skill {
                id: SkillId::parse("s").unwrap(),
                name: Text::name("S").unwrap(),
                category: crate::domain::SkillCategory::Technical,
                description: Text::default(),
                indicators: vec![],
            }])
            .unwrap();
        let evidence = |id: &str, who: &Person| Assessment {
            id: AssessmentId::parse(id).unwrap(),
            person: who.id.clone(),
            skill: SkillId::parse("s").unwrap(),
            score: Level::parse(3.0).unwrap(),
            source: Source::Peer,
            assessor: None,
            assessed_at: Timestamp::from_unix_millis(1),
            evidence: Text::long(&format!("evidence about {}", who.display_name.as_str())).unwrap(),
        };
        store
            .append_assessments(&[evidence("a1", &ada), evidence("b1", &bob)])
            .unwrap();
        store.flush().unwrap();
        // Nothing personal is stored in the clear: not in the records, not in the log.
        let raw = store.raw_entries().unwrap();
        let clear = |needle: &[u8]| {
            raw.iter()
                .any(|(_, _, v)| v.windows(needle.len()).any(|w| w == needle))
        };
        assert!(!clear(b"Canary") && !clear(b"Keeper") && !clear(b"evidence about"));
        let sealed_name = store.people.get("ada").unwrap().unwrap().to_vec();
        let (about, _) = store.assessments_of("ada").unwrap();
        assert_eq!(about[0].evidence.as_str(), "evidence about Ada Canary");
        let slot = store.slots["ada"];
        let key_file = || std::fs::read(temp.path().join(KEYS_FILE)).unwrap();
        let ada_key = key_file()[16 + 40 * slot as usize..][..32].to_vec();

        erase(&mut store, &ada);
        // Her key is gone from memory and from the key file: the sealed copies of her name
        // that sled's log may still hold can no longer be opened.
        let record: PersonRecord = decode("people", &sealed_name).unwrap();
        assert!(record.into_domain(&store.keys.ring()).is_err());
        assert!(!key_file().windows(32).any(|w| w == ada_key.as_slice()));
        // Bob's text still opens, also after a reopen, and a new person reuses the slot.
        drop(store);
        let opened = Store::open(temp.path(), &StoreOptions::default(), |_, _| {}).unwrap();
        assert_eq!(
            opened.directory.people()[&bob.id].display_name.as_str(),
            "Bob Keeper"
        );
        let mut store = opened.store;
        assert_eq!(
            store.assessments_of("bob").unwrap().0[0].evidence.as_str(),
            "evidence about Bob Keeper"
        );
        store.put_people(&[person("cy", "Cy")]).unwrap();
        assert_eq!(store.slots["cy"], slot);
    }

    #[test]
    fn cluster_keys_are_kept_sealed_with_their_people_and_go_with_them() {
        let temp = tempfile::tempdir().unwrap();
        let mut store = open(temp.path());
        let (ada, bob) = (person("ada", "Ada"), person("bob", "Bob"));
        let ada_key: LogKey = [7; 32];
        let keys = HashMap::from([(ada.id.clone(), ada_key)]);
        store
            .put_people_keyed(&[ada.clone(), bob.clone()], &keys)
            .unwrap();
        store.flush().unwrap();
        let reader = store.cluster_key_reader();
        assert_eq!(reader.all().unwrap(), vec![(ada.id.clone(), ada_key)]);
        assert!(reader.holds(&ada.id).unwrap());
        // Sealed: the key's bytes are in no record.
        let raw = store.raw_entries().unwrap();
        assert!(
            !raw.iter()
                .any(|(_, _, v)| v.windows(32).any(|w| w == ada_key))
        );
        // Erased: no longer held, nothing to give back.
        erase(&mut store, &ada);
        assert!(!reader.holds(&ada.id).unwrap());
        assert!(reader.all().unwrap().is_empty());
    }

    #[test]
    fn a_key_no_person_references_is_zeroed_at_the_next_open() {
        // A new person's key is synced before the flush that stores them: a crash in
        // between leaves a key nobody uses, which the next open destroys.
        let temp = tempfile::tempdir().unwrap();
        let mut store = open(temp.path());
        store.put_people(&[person("ada", "Ada")]).unwrap();
        store.flush().unwrap();
        store.keys.allocate().unwrap();
        store.keys.sync().unwrap();
        drop(store);
        let store = open(temp.path());
        assert_eq!(store.keys.used(), vec![store.slots["ada"]]);
    }

    fn sequences(events: &[AuditEvent]) -> Vec<u64> {
        events.iter().map(|e| e.sequence).collect()
    }

    #[test]
    fn audit_blocks_page_count_and_continue_after_a_reopen_beside_older_single_records() {
        let temp = tempfile::tempdir().unwrap();
        {
            let mut store = open(temp.path());
            // A value as written before blocks: one bare record under sequence 0.
            let legacy = AuditRecord::from(event("/old", &["p1"]));
            store
                .audit
                .insert(0u64.to_be_bytes(), encode(&legacy))
                .unwrap();
            store.next_audit = 1;
            let block = vec![
                event("/a", &["p1", "p2"]),
                event("/b", &[]),
                event("/c", &["p2"]),
            ];
            assert_eq!(store.append_audit(block).unwrap(), 1..4);
            assert_eq!(store.append_audit(Vec::new()).unwrap(), 4..4);
            let block = vec![event("/d", &["p1"]), event("/e", &["p3"])];
            assert_eq!(store.append_audit(block).unwrap(), 4..6);
            assert_eq!(store.audit.len(), 3, "one record per block");
            store.flush().unwrap();
        }
        let mut store = open(temp.path());
        let reader = store.audit_reader();
        let all = AuditFilter::default();

        // Pages run newest first across and inside blocks.
        let (page, next) = reader.page(&all, None, 2).unwrap();
        assert_eq!((sequences(&page), next), (vec![5, 4], Some(4)));
        let (page, next) = reader.page(&all, next, 2).unwrap();
        assert_eq!((sequences(&page), next), (vec![3, 2], Some(2)));
        let (page, next) = reader.page(&all, next, 2).unwrap();
        assert_eq!((sequences(&page), next), (vec![1, 0], None));
        assert_eq!(page[1].rpc, "/old");

        let p1 = AuditFilter {
            subject: Some("p1".to_owned()),
            ..AuditFilter::default()
        };
        let (page, _) = reader.page(&p1, None, 10).unwrap();
        assert_eq!(sequences(&page), [4, 1, 0]);
        assert_eq!(reader.count_subject("p1").unwrap(), 3);
        assert_eq!(reader.count_subject("p2").unwrap(), 2);

        // The reopened store carries on after the last block's last event.
        assert_eq!(
            store.append_audit(vec![event("/f", &["p2"])]).unwrap(),
            6..7
        );

        // A large group is cut into blocks of about AUDIT_BLOCK_BYTES, numbered on.
        let team: Vec<String> = (0..13).map(|i| format!("person-{i:06}")).collect();
        let team: Vec<&str> = team.iter().map(String::as_str).collect();
        let many =
            (0..200).map(|_| event("/capsight.v1.CapabilityService/GetTeamCapability", &team));
        let before = store.audit.len();
        assert_eq!(store.append_audit(many.collect()).unwrap(), 7..207);
        let blocks = store.audit.len() - before;
        assert!(blocks > 1, "{blocks} blocks");
        for value in store.audit.iter().values().skip(before) {
            let size = value.unwrap().len();
            assert!(size < AUDIT_BLOCK_BYTES + 512, "a {size}-byte block");
        }
        let (page, next) = reader.page(&all, None, 205).unwrap();
        assert_eq!(page.len(), 205);
        assert_eq!(
            (page[0].sequence, page[204].sequence, next),
            (206, 2, Some(2))
        );

        // Tombstoning rewrites the events naming the person in every kind of value: the
        // blocks the scan found, and those written after it.
        let scan = reader.scan_for("p1").unwrap();
        store
            .append_audit(vec![event(
                "/capsight.v1.DirectoryService/GetPerson",
                &["p1"],
            )])
            .unwrap();
        store.tombstone("p1", &scan, Timestamp::now()).unwrap();
        assert_eq!(reader.count_subject("p1").unwrap(), 0);
        assert_eq!(reader.count_subject(AuditEvent::ERASED).unwrap(), 4);
        assert_eq!(reader.count_subject("p2").unwrap(), 3);
    }
}

/// One assessment batch as an erasure of `person` leaves it: the new value (`None`: the
/// batch is removed), the ids of the assessments erased, and how many assessor
/// references were cleared.
type Rewritten = (Option<Vec<u8>>, Vec<String>, u64);

fn rewrite_batch(bytes: &[u8], person: &str) -> Result<Rewritten> {
    let mut batch: BatchRecord = decode("assessments", bytes)?;
    let mut erased = Vec::new();
    batch.items.retain(|r| {
        let about = r.person_id == person;
        if about {
            erased.push(r.id.clone());
        }
        !about
    });
    let mut cleared = 0u64;
    for record in batch.items.iter_mut().filter(|r| r.assessor_id == person) {
        record.assessor_id.clear();
        cleared += 1;
    }
    let value = (!batch.items.is_empty()).then(|| encode(&batch));
    Ok((value, erased, cleared))
}

/// An erasure's heavy reading, done beside the writer: the audit blocks naming the
/// person, and every batch mentioning them already rewritten. The writer applies a
/// prepared batch only if it is unchanged since (else it rewrites it itself), and also
/// handles batches and audit blocks written after the preparation.
#[derive(Debug, Default)]
pub struct ErasurePlan {
    audit: AuditScan,
    batches: HashMap<u64, (sled::IVec, Rewritten)>,
}

impl EvidenceReader {
    /// Prepares the erasure of `person` (see `ErasurePlan`).
    pub fn plan_erasure(&self, person: &str, audit: AuditScan) -> Result<ErasurePlan> {
        let mut batches = HashMap::new();
        for seq in self.batches_by_person.of(person) {
            if let Some(bytes) = self.assessments.get(seq.to_be_bytes())? {
                let rewritten = rewrite_batch(&bytes, person)?;
                batches.insert(seq, (bytes, rewritten));
            }
        }
        Ok(ErasurePlan { audit, batches })
    }
}

/// Batch sequence numbers that mention each person, shared by the writer (which updates
/// it under a short write lock per batch) and every `EvidenceReader`.
#[derive(Clone, Default)]
struct BatchIndex(Arc<RwLock<AHashMap<PersonId, Vec<u64>>>>);

impl BatchIndex {
    fn read(&self) -> RwLockReadGuard<'_, AHashMap<PersonId, Vec<u64>>> {
        // Updates are plain inserts and removals; a poisoned map is still coherent.
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, AHashMap<PersonId, Vec<u64>>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The batches that mention `person`, copied so that no lock is held while reading.
    fn of(&self, person: &str) -> Vec<u64> {
        self.read().get(person).cloned().unwrap_or_default()
    }
}

/// Reads the cluster keys kept with people (`Store::put_people_keyed`).
#[derive(Clone)]
pub struct ClusterKeyReader {
    people: sled::Tree,
    keys: keys::KeyRing,
}

impl ClusterKeyReader {
    /// Every person's cluster key this store holds.
    pub fn all(&self) -> Result<Vec<(PersonId, LogKey)>> {
        let mut found = Vec::new();
        for item in self.people.iter() {
            let (_, bytes) = item?;
            let record: PersonRecord = decode("people", &bytes)?;
            if let Some(pair) = record.cluster_key(&self.keys)? {
                found.push(pair);
            }
        }
        Ok(found)
    }

    /// Whether the store still holds `person` (not erased).
    pub fn holds(&self, person: &PersonId) -> Result<bool> {
        Ok(self.people.contains_key(person.as_str().as_bytes())?)
    }
}

/// Reads assessments without going through the writer thread: sled trees are safe to
/// read concurrently with writes, and the batch index is shared. A read sees every
/// acknowledged batch; a batch rewritten by an erasure is read as rewritten.
#[derive(Clone)]
pub struct EvidenceReader {
    assessments: sled::Tree,
    batches_by_person: BatchIndex,
    keys: keys::KeyRing,
}

impl EvidenceReader {
    /// Every assessment about `person` and every assessment they made, reading only the
    /// batches that mention them.
    pub fn assessments_of(&self, person: &str) -> Result<(Vec<Assessment>, Vec<Assessment>)> {
        let (mut about, mut by) = (Vec::new(), Vec::new());
        for seq in self.batches_by_person.of(person) {
            let Some(bytes) = self.assessments.get(seq.to_be_bytes())? else {
                continue;
            };
            let batch: BatchRecord = decode("assessments", &bytes)?;
            for record in &batch.items {
                if record.person_id == person {
                    about.push(record.to_domain(&self.keys)?);
                } else if record.assessor_id == person {
                    by.push(record.to_domain(&self.keys)?);
                }
            }
        }
        Ok((about, by))
    }

    /// Assessments about each of `people`, in the order given; every stored batch is
    /// read and decoded at most once however many of them it mentions.
    pub fn assessments_about_many(
        &self,
        people: &[PersonId],
    ) -> Result<Vec<(PersonId, Vec<Assessment>)>> {
        self.assessments_about_many_before(people, u64::MAX)
    }

    /// Every assessment about each of `people` stored in batches numbered below
    /// `limit` (the evidence of an earlier snapshot, less what was erased since).
    pub fn assessments_about_many_before(
        &self,
        people: &[PersonId],
        limit: u64,
    ) -> Result<Vec<(PersonId, Vec<Assessment>)>> {
        let mut out: Vec<(PersonId, Vec<Assessment>)> =
            people.iter().map(|p| (p.clone(), Vec::new())).collect();
        self.each_record_about(people, limit, |i, record| {
            out[i].1.push(record.to_domain(&self.keys)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Which of `people` have a stored batch numbered `from` or above: whose evidence
    /// may differ from what the first `from` batches held.
    pub fn touched_since(&self, people: &[PersonId], from: u64) -> Vec<bool> {
        let index = self.batches_by_person.read();
        people
            .iter()
            .map(|p| {
                index
                    .get(p.as_str())
                    .is_some_and(|seqs| seqs.iter().any(|&seq| seq >= from))
            })
            .collect()
    }

    /// Calls `found` with the position in `people` and the record of every stored
    /// assessment about one of them in batches numbered below `limit`, reading and
    /// decoding each batch at most once.
    fn each_record_about(
        &self,
        people: &[PersonId],
        limit: u64,
        mut found: impl FnMut(usize, &AssessmentRecord) -> Result<()>,
    ) -> Result<()> {
        let position: AHashMap<&str, usize> = people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect();
        let mut batches: Vec<u64> = {
            let index = self.batches_by_person.read();
            people
                .iter()
                .flat_map(|p| index.get(p.as_str()).into_iter().flatten())
                .copied()
                .filter(|&seq| seq < limit)
                .collect()
        };
        batches.sort_unstable();
        batches.dedup();
        for seq in batches {
            let Some(bytes) = self.assessments.get(seq.to_be_bytes())? else {
                continue;
            };
            let batch: BatchRecord = decode("assessments", &bytes)?;
            for record in &batch.items {
                if let Some(&i) = position.get(record.person_id.as_str()) {
                    found(i, record)?;
                }
            }
        }
        Ok(())
    }
}

/// One piece of evidence as aggregates read it: its skill's column, score, source and
/// time; no ids parsed, no text unsealed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// The skill's column, as the reader's caller numbered skills.
    pub column: usize,
    /// Score.
    pub score: Level,
    /// Source.
    pub source: Source,
    /// When.
    pub at: Timestamp,
}

impl EvidenceReader {
    /// The evidence about each of `people` (in their order) from the first `limit`
    /// batches, each skill numbered by `column` (skills it gives no number are left
    /// out). For organisation-wide aggregates: millions of assessments read this way take
    /// a few bytes each, where `assessments_about_many_before` parses every id and
    /// unseals every text (about ten times the memory and time).
    pub fn scored_about_many_before(
        &self,
        people: &[PersonId],
        limit: u64,
        column: impl Fn(&str) -> Option<usize>,
    ) -> Result<Vec<Vec<Scored>>> {
        let mut out: Vec<Vec<Scored>> = vec![Vec::new(); people.len()];
        self.each_record_about(people, limit, |i, record| {
            if let Some(c) = column(record.skill_id()) {
                let (score, source, at) = record.check()?;
                out[i].push(Scored {
                    column: c,
                    score,
                    source,
                    at,
                });
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Test-only fault injection for `Store::flush`: set it to make flushes fail or hang.
/// Exists in every build so that options stay one type; only debug builds consult it.
#[derive(Clone, Debug, Default)]
pub struct FlushFault(Arc<std::sync::atomic::AtomicU8>);

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Flushes work.
    None = 0,
    /// Flushes fail with an I/O error (like a full disk).
    Error = 1,
    /// Flushes block until the fault is cleared (like sled after some I/O errors).
    Hang = 2,
}

impl FlushFault {
    /// Makes later flushes behave as `fault` says.
    pub fn set(&self, fault: Fault) {
        self.0
            .store(fault as u8, std::sync::atomic::Ordering::SeqCst);
    }

    fn current(&self) -> Fault {
        match self.0.load(std::sync::atomic::Ordering::SeqCst) {
            1 => Fault::Error,
            2 => Fault::Hang,
            _ => Fault::None,
        }
    }

    /// Applies the injected fault, in debug builds only.
    fn inject(&self) -> Result<()> {
        if !cfg!(debug_assertions) {
            return Ok(());
        }
        while self.current() == Fault::Hang {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        match self.current() {
            Fault::Error => Err(Error::Storage(sled::Error::Io(std::io::Error::other(
                "injected flush failure",
            )))),
            Fault::None | Fault::Hang => Ok(()),
        }
    }
}
