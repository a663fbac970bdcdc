//! Cluster mode: this node's side of the replicated log (`crate::cluster`).
//!
//! Every write is sent to the log as a `LogEntry`; one task reads the log in order and
//! hands each entry to the writer thread, which applies it exactly as a local write and
//! records the entry's sequence in the same flush. A write is answered once the log's
//! quorum acknowledged it **and** this node applied it, with the outcome this node
//! computed, which is the one every node computes (same entries, same order, same
//! clock: the entry's time).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::StreamExt;

use super::writer::Applied;
use super::{Engine, IngestOutcome, Pending, Snapshot};
use crate::cluster::ClusterLog;
use crate::domain::{Assessment, PersonId, Timestamp};
use crate::error::{Error, Result};
use crate::store::{LogEntry, LogOp};

/// Longest a write waits, after the log acknowledged it, for this node to apply it.
const APPLY_WAIT: Duration = Duration::from_secs(30);

/// How often queued audit events are sent to the log.
const AUDIT_INTERVAL: Duration = Duration::from_millis(200);

/// How long the reader waits before reading the log again after an error.
const RETRY: Duration = Duration::from_millis(500);

/// How often a node checks that the key stream still holds the keys it keeps.
const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Share of the log's message limit one assessment entry may fill (headroom for the
/// estimate's error).
const ENTRY_FILL: usize = 2;

type Waiter = oneshot::Sender<Result<Applied>>;

/// The replicated log as this node uses it.
pub(crate) struct Replica {
    log: Arc<ClusterLog>,
    /// Writes sent from this node, by entry id, waiting for their outcome.
    waiters: Mutex<HashMap<String, Waiter>>,
    /// The last entry applied and durable here.
    applied: watch::Sender<u64>,
    /// Set when the node stops reading the log.
    stop: watch::Sender<bool>,
    /// Entries are checkpointed every so many (0: never, unless after an erasure).
    checkpoint_every: u64,
    /// The log sequence of the latest checkpoint this node knows of.
    last_checkpoint: Mutex<u64>,
    /// A checkpoint is being considered or written by this node.
    checkpointing: std::sync::atomic::AtomicBool,
    /// The erasures found in the log by `erased_after`.
    erasures_seen: tokio::sync::Mutex<ErasureScan>,
}

/// Erasures in a stretch of the log.
#[derive(Default)]
struct ErasureScan {
    /// The stretch read: `from..=to` (empty when `to < from`).
    from: u64,
    to: u64,
    found: Vec<(u64, PersonId)>,
}

fn entry_id() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

impl Replica {
    pub(super) fn new(log: Arc<ClusterLog>, applied: u64, checkpoint_every: u64) -> Self {
        Self {
            log,
            waiters: Mutex::new(HashMap::new()),
            applied: watch::channel(applied).0,
            stop: watch::channel(false).0,
            checkpoint_every,
            last_checkpoint: Mutex::new(0),
            checkpointing: std::sync::atomic::AtomicBool::new(false),
            erasures_seen: tokio::sync::Mutex::default(),
        }
    }

    /// The people erased by log entries after `sequence` (up to the log's end now).
    /// A key missing for a person an entry names was destroyed by their erasure, which
    /// then follows in the log; or lost, if every server of the key stream restarted
    /// (it is held in memory) before a node gave it back.
    async fn erased_after(&self, sequence: u64) -> Result<HashSet<PersonId>> {
        let (last, _) = self.log.bounds().await?;
        let mut scan = self.erasures_seen.lock().await;
        if sequence < scan.from || scan.to < sequence {
            *scan = ErasureScan {
                from: sequence,
                to: sequence,
                found: Vec::new(),
            };
        }
        if last > scan.to {
            let mut entries = Box::pin(self.log.entries_from(scan.to + 1).await?);
            while let Some(item) = entries.next().await {
                let (at, bytes) = item?;
                if let Some(person) = LogEntry::erases(&bytes)? {
                    scan.found.push((at, person));
                }
                scan.to = at;
                if at >= last {
                    break;
                }
            }
        }
        Ok(scan
            .found
            .iter()
            .filter(|(at, _)| *at > sequence)
            .map(|(_, person)| person.clone())
            .collect())
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiter>> {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sequence applied here so far.
    pub(super) fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits (up to `timeout`) until entry `sequence` is applied here.
    pub(super) async fn wait_for(&self, sequence: u64, timeout: Duration) -> Result<u64> {
        let mut applied = self.applied.subscribe();
        match tokio::time::timeout(timeout, applied.wait_for(|&a| a >= sequence)).await {
            Ok(Ok(a)) => Ok(*a),
            Ok(Err(_)) => Err(Error::ShuttingDown),
            Err(_) => Err(Error::Unavailable(format!(
                "this node has applied the log up to {}, not yet {sequence}",
                self.applied()
            ))),
        }
    }

    /// Sends `op` to the log; the returned future answers with this node's outcome.
    async fn send(
        &self,
        op: LogOp,
    ) -> Result<impl std::future::Future<Output = Result<Applied>> + use<>> {
        let entry = LogEntry {
            id: entry_id(),
            at: Timestamp::now(),
            op,
        };
        let (tx, rx) = oneshot::channel();
        self.waiters().insert(entry.id.clone(), tx);
        let acked = match self.log.send(&entry).await {
            Ok(acked) => acked,
            Err(e) => {
                self.waiters().remove(&entry.id);
                return Err(e);
            }
        };
        let applied = self.applied.subscribe();
        Ok(async move {
            let sequence = acked.await?;
            match tokio::time::timeout(APPLY_WAIT, rx).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(Error::ShuttingDown),
                Err(_) => Err(Error::Unavailable(format!(
                    "the write is in the cluster log at {sequence} but this node has applied \
                     only up to {}",
                    *applied.borrow()
                ))),
            }
        })
    }

    /// Applies a write through the log and returns this node's outcome.
    pub(super) async fn submit(&self, op: LogOp) -> Result<Applied> {
        self.send(op).await?.await
    }

    /// Sends a batch of assessments (split into entries the log accepts, in order) and
    /// answers, through the returned `Pending`, once all of them are applied here.
    pub(super) async fn enqueue_assessments(
        &self,
        items: Vec<(u32, Assessment)>,
        health: Arc<super::StorageHealth>,
    ) -> Result<Pending<IngestOutcome>> {
        let mut outcomes = Vec::new();
        for part in split(items, self.log.max_payload() / ENTRY_FILL) {
            outcomes.push(self.send(LogOp::Assessments(part)).await?);
        }
        let (reply, pending) = oneshot::channel();
        tokio::spawn(async move {
            let mut total = IngestOutcome::default();
            for outcome in outcomes {
                match outcome.await {
                    Ok(Applied::Ingest(part)) => {
                        total.accepted += part.accepted;
                        total.duplicates += part.duplicates;
                        total.rejections.extend(part.rejections);
                    }
                    Ok(other) => {
                        let _ = reply.send(Err(super::unexpected(&other)));
                        return;
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                }
            }
            total.rejections.sort_by_key(|r| r.index);
            let _ = reply.send(Ok(total));
        });
        Ok(Pending {
            reply: pending,
            health,
        })
    }

    /// Destroys a person's cluster key (after their erasure was applied).
    pub(super) async fn erase_key(&self, person: &PersonId) -> Result<()> {
        self.log.erase_key(person).await
    }

    /// Sends every audit event queued so far and waits until they are applied here.
    pub(super) async fn settle_audit(&self, queue: &super::AuditQueue) -> Result<()> {
        self.submit(LogOp::Audit(queue.take())).await.map(drop)
    }

    /// Stops reading the log and sending audit events.
    pub(super) fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Answers the write `id` if this node sent it; returns whether it did.
    fn answer(&self, id: &str, outcome: Result<Applied>) -> bool {
        match self.waiters().remove(id) {
            Some(waiter) => {
                let _ = waiter.send(outcome);
                true
            }
            None => false,
        }
    }
}

/// Rough encoded size of an assessment in a log entry.
fn estimated_size(a: &Assessment) -> usize {
    64 + a.id.as_str().len()
        + a.person.as_str().len()
        + a.skill.as_str().len()
        + a.assessor.as_ref().map_or(0, |p| p.as_str().len())
        + a.evidence.as_str().len()
        // Sealing: nonce and tag.
        + if a.evidence.as_str().is_empty() { 0 } else { 28 }
}

/// Splits `items` into consecutive parts of at most `limit` estimated bytes.
fn split(items: Vec<(u32, Assessment)>, limit: usize) -> Vec<Vec<(u32, Assessment)>> {
    let mut parts = Vec::new();
    let mut part = Vec::new();
    let mut size = 0;
    for item in items {
        let bytes = estimated_size(&item.1);
        if !part.is_empty() && size + bytes > limit {
            parts.push(std::mem::take(&mut part));
            size = 0;
        }
        size += bytes;
        part.push(item);
    }
    if !part.is_empty() || parts.is_empty() {
        parts.push(part);
    }
    parts
}

/// An entry handed to the writer, in log order, waiting to be durable.
struct InFlight {
    sequence: u64,
    id: String,
    pending: Pending<Applied>,
    /// An erasure: the person, the snapshot before it and the cached insights without
    /// them (to scrub cached insights).
    erased: Option<(PersonId, Arc<Snapshot>, super::insights::PreparedScrub)>,
    /// The entry's time (Unix milliseconds).
    at: i64,
}

impl Engine {
    /// Joins the cluster: reads the log from after the last entry this store applied,
    /// returns once this node has caught up with the log as it was when called, and
    /// keeps applying after that. From then on every write goes through the log.
    pub async fn join_cluster(
        self: &Arc<Self>,
        log: Arc<ClusterLog>,
        checkpoint_every: u64,
    ) -> Result<()> {
        let (last, first) = log.bounds().await?;
        let start = self.log_sequence + 1;
        if first > start {
            return Err(Error::DataDir(format!(
                "this node's store has the log up to {}, but the log now starts at {first} \
                 (older entries are in the checkpoint): start the node with an empty data \
                 directory to begin from the checkpoint",
                self.log_sequence
            )));
        }
        let replica = Arc::new(Replica::new(
            Arc::clone(&log),
            self.log_sequence,
            checkpoint_every,
        ));
        if let Some(info) = log.checkpoint_info().await? {
            *replica
                .last_checkpoint
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = info.sequence;
        }
        self.replica
            .set(Arc::clone(&replica))
            .map_err(|_| Error::Internal("joined the cluster twice".into()))?;
        let (flights, in_flight) = mpsc::channel(1024);
        tokio::spawn(read_log(Arc::downgrade(self), start, flights));
        tokio::spawn(complete(Arc::downgrade(self), in_flight));
        tokio::spawn(send_audit(Arc::downgrade(self)));
        tokio::spawn(restore_keys(Arc::downgrade(self)));
        tracing::info!(from = start, to = last, "catching up with the cluster log");
        let mut stop = replica.stop.subscribe();
        tokio::select! {
            caught_up = replica.wait_for(last, Duration::from_secs(24 * 3600)) => caught_up?,
            _ = stop.wait_for(|&s| s) => return Err(Error::ShuttingDown),
        };
        tracing::info!(
            applied = replica.applied(),
            "caught up with the cluster log"
        );
        Ok(())
    }

    /// The last cluster-log entry the store had applied when opened.
    pub fn log_sequence(&self) -> u64 {
        self.log_sequence
    }

    /// In cluster mode, the log sequence this node has applied.
    pub fn log_applied(&self) -> Option<u64> {
        self.replica.get().map(|r| r.applied())
    }

    /// In cluster mode, waits (up to `timeout`) until this node has applied the log up
    /// to `sequence` (read-your-writes across nodes). Outside cluster mode, at once.
    pub async fn wait_for_log(&self, sequence: u64, timeout: Duration) -> Result<()> {
        match self.replica.get() {
            Some(replica) => replica.wait_for(sequence, timeout).await.map(drop),
            None => Ok(()),
        }
    }

    /// Writes a checkpoint of this node's store to the cluster if it is due: `force`
    /// (after an erasure), or `checkpoint_every` entries since the latest. The log is
    /// then truncated up to the checkpoint before it.
    pub async fn checkpoint(&self, force: bool) -> Result<Option<u64>> {
        let Some(replica) = self.replica.get() else {
            return Ok(None);
        };
        let applied = replica.applied();
        let known = replica
            .log
            .checkpoint_info()
            .await?
            .map_or(0, |i| i.sequence);
        {
            let mut last = replica
                .last_checkpoint
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *last = (*last).max(known);
        }
        let due = (replica.checkpoint_every > 0 && applied >= known + replica.checkpoint_every)
            || (force && applied > known);
        if !due {
            return Ok(None);
        }
        // After an erasure the checkpoint waits for one being written (or a backup).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let backup = loop {
            match self.copy(true).await {
                Err(Error::Overloaded { .. })
                    if force && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => break other?,
            }
        };
        // After an erasure only the new checkpoint is kept (the others hold the person);
        // otherwise the one before too, so that a node downloading it is not cut off.
        let keep = if force { 1 } else { 2 };
        let oldest_kept = replica
            .log
            .put_checkpoint(applied, &backup.path, &backup.manifest.to_text(), keep)
            .await?;
        if !force && oldest_kept < applied {
            replica.log.truncate_before(oldest_kept + 1).await?;
        }
        *replica
            .last_checkpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = applied;
        metrics::gauge!("capsight_cluster_checkpoint_sequence").set(applied as f64);
        tracing::info!(
            sequence = applied,
            bytes = backup.manifest.bytes,
            "checkpoint written"
        );
        Ok(Some(applied))
    }
}

/// Reads the log in order and hands each entry to the writer.
async fn read_log(engine: Weak<Engine>, start: u64, flights: mpsc::Sender<InFlight>) {
    let mut next = start;
    loop {
        let Some(current) = engine.upgrade() else {
            return;
        };
        let Some(replica) = current.replica.get().cloned() else {
            return;
        };
        let mut stop = replica.stop.subscribe();
        drop(current);
        let mut entries = match replica.log.entries_from(next).await {
            Ok(entries) => Box::pin(entries),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster log; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            let item = tokio::select! {
                item = entries.next() => item,
                _ = stop.wait_for(|&s| s) => return,
            };
            let (sequence, bytes) = match item {
                Some(Ok(item)) => item,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading the cluster log failed; resuming");
                    break;
                }
                None => break,
            };
            if sequence < next {
                continue;
            }
            let Some(engine) = engine.upgrade() else {
                return;
            };
            match hand_over(&engine, &replica, sequence, &bytes).await {
                Ok(flight) => {
                    next = sequence + 1;
                    if flights.send(flight).await.is_err() {
                        return;
                    }
                }
                Err(Error::Unavailable(e)) => {
                    tracing::warn!(error = %e, "cluster key lookup failed; resuming");
                    break;
                }
                Err(e) => {
                    // An entry this node cannot apply: applying later ones would make
                    // its state differ from the others', so it stops taking writes.
                    engine.health.fail(format!(
                        "cluster log entry {sequence} cannot be applied: {e}"
                    ));
                    replica.shutdown();
                    return;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Decodes entry `sequence` and queues it to the writer.
async fn hand_over(
    engine: &Engine,
    replica: &Replica,
    sequence: u64,
    bytes: &[u8],
) -> Result<InFlight> {
    let needed = LogEntry::sealed_in(bytes)?;
    let keys = replica.log.keys(&needed).await?;
    if keys.len() < needed.len() {
        let erased = replica.erased_after(sequence).await?;
        if needed
            .iter()
            .any(|p| !keys.contains_key(p) && !erased.contains(p))
        {
            return Err(Error::Unavailable(format!(
                "the cluster key of someone log entry {sequence} names is missing, and \
                 they were not erased: the key stream lost it (all its servers \
                 restarted); waiting for a node to give it back"
            )));
        }
    }
    let entry = LogEntry::decode(bytes, &keys)?;
    let (plan, erased) = match &entry.op {
        LogOp::DeletePerson(id) => {
            let before = engine.snapshot();
            let prepared = engine.insights.prepare_scrub(id, &before, &engine.evidence);
            (
                Some(engine.erasure_plan(id).await?),
                Some((id.clone(), before, prepared)),
            )
        }
        _ => (None, None),
    };
    let (at, op) = (entry.at, entry.op);
    let pending = engine
        .enqueue(move |w| w.apply_entry(sequence, at, op, plan.as_ref(), keys))
        .await?;
    Ok(InFlight {
        sequence,
        at: at.unix_millis(),
        id: entry.id,
        pending,
        erased,
    })
}

/// Answers writes as their entries become durable here, in log order.
async fn complete(engine: Weak<Engine>, mut in_flight: mpsc::Receiver<InFlight>) {
    while let Some(flight) = in_flight.recv().await {
        let outcome = flight.pending.durable().await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let Some(replica) = engine.replica.get() else {
            return;
        };
        if matches!(outcome, Err(Error::StoragePoisoned | Error::ShuttingDown)) {
            replica.answer(&flight.id, outcome);
            replica.shutdown();
            return;
        }
        if let Some((person, before, prepared)) = &flight.erased {
            engine.scrub_after(person, before, prepared);
            // Every node destroys the key (not only the one that took the call): a key
            // this node gave back meanwhile (`restore_keys`) goes too.
            if let Err(e) = replica.log.erase_key_applied(person, flight.at).await {
                tracing::warn!(error = %e, "cluster key not erased here; the erasing node does");
            }
        }
        replica.applied.send_replace(flight.sequence);
        metrics::gauge!("capsight_cluster_applied_sequence").set(flight.sequence as f64);
        let sent_here = replica.answer(&flight.id, outcome);
        // The node that sent the entry crossing the interval writes the checkpoint:
        // one node each time, and never the same one while it is down.
        let due = sent_here
            && replica.checkpoint_every > 0
            && flight.sequence
                >= *replica
                    .last_checkpoint
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    + replica.checkpoint_every;
        if due
            && !replica
                .checkpointing
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move {
                if let Err(e) = engine.checkpoint(false).await {
                    tracing::warn!(error = %e, "checkpoint not written");
                }
                if let Some(replica) = engine.replica.get() {
                    replica
                        .checkpointing
                        .store(false, std::sync::atomic::Ordering::Release);
                }
            });
        }
    }
}

/// Gives the key stream back the keys this node keeps whenever it holds fewer keys than
/// this node has people, or restarted empty (it is kept in memory, so a restart of all
/// its servers loses it).
async fn restore_keys(engine: Weak<Engine>) {
    let mut highest = 0;
    let mut short = false;
    loop {
        let Some(current) = engine.upgrade() else {
            return;
        };
        let Some(replica) = current.replica.get().cloned() else {
            return;
        };
        let people = current.snapshot().directory.people().len() as u64;
        let reader = current.cluster_keys.clone();
        drop(current);
        let mut stop = replica.stop.subscribe();
        match replica.log.key_stream_state().await {
            Ok((held, last)) => {
                let reset = last < highest;
                highest = highest.max(last);
                // Fewer keys than people for a moment is an erasure in flight: only
                // twice running counts.
                let missing = held < people;
                if reset || (missing && (short || held == 0)) {
                    match give_back(&replica, &reader).await {
                        Ok(0) => {}
                        Ok(n) => tracing::warn!(keys = n, "gave keys back to the key stream"),
                        Err(e) => tracing::warn!(error = %e, "keys not given back; retrying"),
                    }
                    highest = 0;
                }
                short = missing && !short;
            }
            Err(e) => tracing::debug!(error = %e, "key stream state unknown"),
        }
        tokio::select! {
            () = tokio::time::sleep(KEY_CHECK_INTERVAL) => {}
            _ = stop.wait_for(|&s| s) => return,
        }
    }
}

/// Publishes the keys this node keeps that the key stream lacks; a key of someone erased
/// meanwhile is destroyed again.
async fn give_back(replica: &Replica, reader: &crate::store::ClusterKeyReader) -> Result<usize> {
    let reader_all = reader.clone();
    let kept = tokio::task::spawn_blocking(move || reader_all.all())
        .await
        .map_err(|e| Error::Internal(format!("key reader: {e}")))??;
    let restored = replica.log.restore_keys(&kept).await?;
    for (person, _) in &kept {
        // Published after this node applied their erasure (whose own key deletion it
        // may have preceded): delete it again.
        if !reader.holds(person)? {
            replica.log.erase_key(person).await?;
        }
    }
    Ok(restored)
}

/// Sends the audit events recorded on this node to the log, every `AUDIT_INTERVAL`.
async fn send_audit(engine: Weak<Engine>) {
    loop {
        tokio::time::sleep(AUDIT_INTERVAL).await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let Some(replica) = engine.replica.get() else {
            return;
        };
        if *replica.stop.borrow() {
            return;
        }
        let events = engine.audit_queue.take();
        if events.is_empty() {
            continue;
        }
        let count = events.len();
        match replica.send(LogOp::Audit(events.clone())).await {
            // Applied in the background; nobody waits for an audit entry's outcome.
            Ok(applied) => drop(tokio::spawn(applied)),
            Err(e) => {
                // Not sent: kept for the next attempt rather than lost.
                tracing::warn!(error = %e, events = count, "audit events not replicated yet");
                engine.audit_queue.requeue(events);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AssessmentId, Level, Source, Text};

    fn item(n: u32, evidence: &str) -> (u32, Assessment) {
        let a = Assessment {
            id: AssessmentId::parse(&format!("a{n}")).unwrap(),
            person: PersonId::parse("p").unwrap(),
            skill: crate::domain::SkillId::parse("s").unwrap(),
            score: Level::parse(3.0).unwrap(),
            source: Source::Peer,
            assessor: None,
            assessed_at: Timestamp::from_unix_millis(1),
            evidence: Text::long(evidence).unwrap(),
        };
        (n, a)
    }

    #[test]
    fn a_batch_is_split_in_order_into_parts_under_the_limit() {
        let evidence = "x".repeat(1_000);
        let items: Vec<_> = (0..100).map(|n| item(n, &evidence)).collect();
        let parts = split(items, 10_000);
        assert!(parts.len() > 1);
        let flat: Vec<u32> = parts.iter().flatten().map(|(n, _)| *n).collect();
        assert_eq!(flat, (0..100).collect::<Vec<_>>(), "order and items kept");
        for part in &parts {
            let size: usize = part.iter().map(|(_, a)| estimated_size(a)).sum();
            assert!(size <= 10_000 || part.len() == 1);
        }
        // An item bigger than the limit still goes, alone; an empty batch is one part.
        let big = split(vec![item(0, &"y".repeat(3_000))], 1_000);
        assert_eq!(big.len(), 1);
        assert_eq!(split(Vec::new(), 10_000).len(), 1);
    }
}
