//! Cluster mode's replicated log on NATS JetStream. Transport only: what an entry means
//! is `store::LogEntry`'s, how a node applies entries is the engine's (`engine::replica`).
//!
//! Three JetStream assets, each replicated `replicas` times (Raft):
//! - the stream `<name>` (subject `<name>.log`): every write as an encoded `LogEntry`,
//!   de-duplicated by the entry id (`Nats-Msg-Id`) within the stream's window;
//! - the stream `<name>_KEYS` (subjects `<name>.key.<hash of person id>`): each person's
//!   cluster key, one message per person, created with an expected subject sequence of
//!   0 so that racing nodes agree on one key. The stream is kept in memory (Raft log
//!   included), so no server writes a key to disk; erasure deletes the message. Every
//!   node keeps the keys of its people sealed with them and gives them back when the
//!   stream has lost them (all its servers restarted);
//! - the object store `<name>_checkpoints`: the latest checkpoints (backups of one
//!   node's store at a log sequence, named by it), from which new nodes start; the log
//!   is truncated behind the oldest one kept.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use tokio_stream::StreamExt;

use crate::domain::PersonId;
use crate::error::{Error, Result};
use crate::store::{LogEntry, LogKey, new_log_key};

/// Header of a key a node gave back to the key stream (`ClusterLog::restore_keys`).
const RESTORED_HEADER: &str = "Capsight-Restored";

/// How to reach the cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// NATS server URLs (`nats://host:4222`, `tls://…`).
    pub urls: Vec<String>,
    /// Name of the stream (and prefix of the other assets).
    pub name: String,
    /// Raft replicas of each asset (3 in production; 1 for a single NATS server).
    pub replicas: usize,
    /// A NATS credentials file (JWT + NKey).
    pub credentials: Option<PathBuf>,
    /// A CA certificate to trust for `tls://` servers.
    pub ca: Option<PathBuf>,
    /// Longest a write waits for the log's acknowledgement.
    pub timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            name: "CAPSIGHT".into(),
            replicas: 3,
            credentials: None,
            ca: None,
            timeout: Duration::from_secs(10),
        }
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("cluster log: {what}: {e}"))
}

/// Sends a log entry under its id (`Nats-Msg-Id`); returns the wait for its
/// acknowledgement.
async fn publish_entry(
    js: &jetstream::Context,
    subject: &str,
    id: &str,
    payload: &bytes::Bytes,
) -> Result<jetstream::context::PublishAckFuture> {
    let message = jetstream::message::PublishMessage::build()
        .payload(payload.clone())
        .message_id(id);
    js.send_publish(subject.to_owned(), message)
        .await
        .map_err(|e| unavailable("publish", e))
}

/// The sequence the log acknowledged `ack` with, waiting at most `timeout`.
async fn acknowledged(timeout: Duration, ack: jetstream::context::PublishAckFuture) -> Result<u64> {
    let ack = tokio::time::timeout(timeout, ack)
        .await
        .map_err(|_| unavailable("publish", "no acknowledgement in time"))?
        .map_err(|e| match e.kind() {
            PublishErrorKind::TimedOut => unavailable("publish", "timed out"),
            _ => unavailable("publish", e),
        })?;
    Ok(ack.sequence)
}

/// Tries `attempt` again, backing off from 100 ms to 2 s, while it fails unavailable
/// (a server restarting, a stream electing its leader) and `bound` has not passed;
/// the last error otherwise. Only for what is safe to repeat.
async fn persist<T, F, Fut>(bound: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    let mut pause = Duration::from_millis(100);
    loop {
        match attempt().await {
            Err(Error::Unavailable(reason)) if tokio::time::Instant::now() + pause < deadline => {
                tracing::debug!(%reason, "cluster log call tried again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// A checkpoint's description, stored as the object's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The log sequence the checkpoint includes everything up to.
    pub sequence: u64,
    /// Bytes of the backup file.
    pub bytes: u64,
}

/// The replicated log of one organisation.
pub struct ClusterLog {
    js: jetstream::Context,
    options: ClusterOptions,
    subject: String,
    keys: stream::Stream,
    log: stream::Stream,
    checkpoints: jetstream::object_store::ObjectStore,
    /// Keys fetched or created so far (a person's key never changes until erased).
    cache: Mutex<HashMap<PersonId, LogKey>>,
    client: async_nats::Client,
}

impl ClusterLog {
    /// Connects and creates (or checks) the stream, key stream and checkpoint bucket.
    pub async fn connect(options: ClusterOptions) -> Result<Self> {
        if options.urls.is_empty() {
            return Err(Error::Config(
                "--cluster needs at least one NATS URL".into(),
            ));
        }
        let mut connect = async_nats::ConnectOptions::new()
            .name("capsight")
            .connection_timeout(options.timeout)
            .request_timeout(Some(options.timeout))
            // Servers that are starting, or one that is down: keep trying (the assets
            // below are retried within a bound).
            .retry_on_initial_connect();
        if let Some(path) = &options.credentials {
            connect = connect
                .credentials_file(path)
                .await
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        }
        if let Some(ca) = &options.ca {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        let urls: Vec<async_nats::ServerAddr> = options
            .urls
            .iter()
            .map(|u| {
                u.parse()
                    .map_err(|e| Error::Config(format!("NATS URL {u:?}: {e}")))
            })
            .collect::<Result<_>>()?;
        let client = tokio::time::timeout(options.timeout * 3, connect.connect(urls))
            .await
            .map_err(|_| unavailable("connect", "timed out"))?
            .map_err(|e| unavailable("connect", e))?;
        let js = jetstream::new(client.clone());
        // A JetStream cluster that is starting (or lost a server) elects its leaders
        // first: creating the assets is retried for a while.
        let deadline = tokio::time::Instant::now() + options.timeout * 6;
        loop {
            match Self::assets(&js, &options).await {
                Ok((log, keys, checkpoints)) => {
                    return Ok(Self {
                        subject: format!("{}.log", options.name),
                        js,
                        options,
                        keys,
                        log,
                        checkpoints,
                        cache: Mutex::new(HashMap::new()),
                        client,
                    });
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "cluster log not ready yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates (or finds) the log stream, the key stream and the checkpoint bucket.
    async fn assets(
        js: &jetstream::Context,
        options: &ClusterOptions,
    ) -> Result<(
        stream::Stream,
        stream::Stream,
        jetstream::object_store::ObjectStore,
    )> {
        let name = options.name.clone();
        let subject = format!("{name}.log");
        let replicas = options.replicas;
        let log = js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![subject.clone()],
                num_replicas: replicas,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("log stream", e))?;
        let keys = js
            .get_or_create_stream(stream::Config {
                name: format!("{name}_KEYS"),
                subjects: vec![format!("{name}.key.*")],
                num_replicas: replicas,
                // In memory, Raft log included: no server ever writes a key to disk, so
                // an erased key is gone from every server once deleted. Nodes keep each
                // key sealed with the person and give it back if the stream loses it
                // (`restore_keys`).
                storage: stream::StorageType::Memory,
                max_messages_per_subject: 1,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("key stream", e))?;
        let bucket = format!("{name}_checkpoints");
        let checkpoints = match js.get_object_store(&bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(jetstream::object_store::Config {
                    bucket: bucket.clone(),
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable("checkpoint bucket", e))?,
        };
        Ok((log, keys, checkpoints))
    }

    /// Largest entry the servers accept, in bytes.
    pub fn max_payload(&self) -> usize {
        match self.client.server_info().max_payload {
            // Not known while reconnecting: NATS's default.
            0 => 1024 * 1024,
            known => known,
        }
    }

    fn key_subject(&self, person: &PersonId) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(person.as_str().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}.key.{hex}", self.options.name)
    }

    fn cached(&self, person: &PersonId) -> Option<LogKey> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(person)
            .copied()
    }

    fn remember(&self, person: &PersonId, key: LogKey) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(person.clone(), key);
    }

    /// Forgets a person's key here (after their erasure).
    pub fn forget(&self, person: &PersonId) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(person);
    }

    /// The person's key and its sequence, if it exists. A direct get may be answered by
    /// a replica that has not yet received a key the quorum already holds, so "not
    /// found" is confirmed by the stream's leader before it is believed: a key missing
    /// there was erased (every entry's keys are created before the entry is published).
    async fn stored_key(&self, person: &PersonId) -> Result<Option<(u64, LogKey)>> {
        Ok(self
            .stored_key_message(person)
            .await?
            .map(|(stored, key)| (stored.sequence, key)))
    }

    /// `stored_key`, with the message that holds it.
    async fn stored_key_message(
        &self,
        person: &PersonId,
    ) -> Result<Option<(jetstream::message::StreamMessage, LogKey)>> {
        let subject = self.key_subject(person);
        let message = match self
            .keys
            .direct_get_last_for_subject(subject.as_str())
            .await
        {
            Ok(message) => message,
            Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                match self.keys.get_last_raw_message_by_subject(&subject).await {
                    Ok(message) => message,
                    Err(e)
                        if e.kind()
                            == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
                    {
                        return Ok(None);
                    }
                    Err(e) => return Err(unavailable("key lookup", e)),
                }
            }
            Err(e) => return Err(unavailable("key lookup", e)),
        };
        let key: LogKey = message
            .payload
            .as_ref()
            .try_into()
            .map_err(|_| Error::Corrupt {
                tree: "cluster keys".into(),
                detail: "a key is not 32 bytes".into(),
            })?;
        Ok(Some((message, key)))
    }

    /// `keys`, for many people at once (a checkpoint's): above a few hundred, the whole
    /// key stream is read in one pass instead of asking for each key.
    pub async fn keys_of_many(&self, people: &[PersonId]) -> Result<HashMap<PersonId, LogKey>> {
        const ONE_BY_ONE: usize = 256;
        if people.len() <= ONE_BY_ONE {
            return self.keys(people).await;
        }
        let stored = tokio::time::timeout(self.options.timeout * 3, self.every_key())
            .await
            .map_err(|_| unavailable("key stream read", "timed out"))??;
        let mut found = HashMap::with_capacity(people.len());
        for person in people {
            if let Some(key) = stored.get(&self.key_subject(person)) {
                self.remember(person, *key);
                found.insert(person.clone(), *key);
            }
        }
        Ok(found)
    }

    /// Every key the key stream holds, by subject.
    async fn every_key(&self) -> Result<HashMap<String, LogKey>> {
        let mut keys = self.keys.clone();
        let info = keys
            .info()
            .await
            .map_err(|e| unavailable("key stream info", e))?;
        let mut stored = HashMap::with_capacity(usize::try_from(info.state.messages).unwrap_or(0));
        if info.state.messages == 0 {
            return Ok(stored);
        }
        let consumer = keys
            .create_consumer(consumer::pull::OrderedConfig {
                // One message per subject (`max_messages_per_subject`).
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("key stream read", e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable("key stream read", e))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| unavailable("key stream read", e))?;
            let pending = message
                .info()
                .map_err(|e| unavailable("key stream read", e))?
                .pending;
            if let Ok(key) = LogKey::try_from(message.payload.as_ref()) {
                stored.insert(message.subject.to_string(), key);
            }
            if pending == 0 {
                break;
            }
        }
        Ok(stored)
    }

    /// The keys of `people` that exist (erased people have none).
    pub async fn keys(&self, people: &[PersonId]) -> Result<HashMap<PersonId, LogKey>> {
        let mut found = HashMap::with_capacity(people.len());
        for person in people {
            if let Some(key) = self.cached(person) {
                found.insert(person.clone(), key);
            } else if let Some((_, key)) = self.stored_key(person).await? {
                self.remember(person, key);
                found.insert(person.clone(), key);
            }
        }
        Ok(found)
    }

    /// The keys of `people`, creating those that do not exist yet. When nodes race to
    /// create one, the log's expected-sequence check lets one win and the others read it.
    pub async fn keys_or_create(&self, people: &[PersonId]) -> Result<HashMap<PersonId, LogKey>> {
        let mut found = self.keys(people).await?;
        for person in people {
            if found.contains_key(person) {
                continue;
            }
            let key = new_log_key()?;
            let publish = jetstream::message::PublishMessage::build()
                .payload(key.to_vec().into())
                .expected_last_subject_sequence(0);
            let created = match self
                .js
                .send_publish(self.key_subject(person), publish)
                .await
            {
                Ok(ack) => ack.await.map(|_| ()),
                Err(e) => return Err(unavailable("key publish", e)),
            };
            let key = match created {
                Ok(()) => key,
                // Someone else created it first: use theirs.
                Err(_) => match self.stored_key(person).await? {
                    Some((_, theirs)) => theirs,
                    None => return Err(unavailable("key create", "key neither created nor found")),
                },
            };
            self.remember(person, key);
            found.insert(person.clone(), key);
        }
        Ok(found)
    }

    /// How many keys the key stream holds, and its last sequence (which drops to 0 when
    /// every server of the stream restarted: it is kept in memory).
    pub async fn key_stream_state(&self) -> Result<(u64, u64)> {
        let info = self
            .keys
            .get_info()
            .await
            .map_err(|e| unavailable("key stream info", e))?;
        Ok((info.state.messages, info.state.last_sequence))
    }

    /// Gives `keys` back to the key stream where it lacks them (after its servers all
    /// restarted), never replacing a key it holds. Returns how many were given back.
    pub async fn restore_keys(&self, keys: &[(PersonId, LogKey)]) -> Result<usize> {
        let mut restored = 0;
        for chunk in keys.chunks(256) {
            let mut acks = Vec::with_capacity(chunk.len());
            for (person, key) in chunk {
                let publish = jetstream::message::PublishMessage::build()
                    .payload(key.to_vec().into())
                    .header(RESTORED_HEADER, "1")
                    .expected_last_subject_sequence(0);
                let ack = self
                    .js
                    .send_publish(self.key_subject(person), publish)
                    .await
                    .map_err(|e| unavailable("key restore", e))?;
                acks.push(ack);
            }
            for ack in acks {
                // Refused: the stream holds a key for them already.
                if ack.await.is_ok() {
                    restored += 1;
                }
            }
        }
        Ok(restored)
    }

    /// Destroys a person's key: it is deleted from the key stream, whose replicas hold it
    /// in memory only. Entries sealed under it can no longer be read by anyone.
    /// A stream electing its leader (a server restarted) is waited for, within twice the
    /// write timeout.
    pub async fn erase_key(&self, person: &PersonId) -> Result<()> {
        self.forget(person);
        persist(self.options.timeout * 2, || async {
            if let Some((sequence, _)) = self.stored_key(person).await? {
                self.keys
                    .delete_message(sequence)
                    .await
                    .map_err(|e| unavailable("key erase", e))?;
            }
            Ok(())
        })
        .await
    }

    /// Destroys a person's key as a node applying their erasure (entry time `at`):
    /// the key they had then, or one given back since (`restore_keys`); not a key made
    /// for someone created again with the same id after the erasure.
    pub async fn erase_key_applied(&self, person: &PersonId, at: i64) -> Result<()> {
        self.forget(person);
        let Some((message, _)) = self.stored_key_message(person).await? else {
            return Ok(());
        };
        let made_ms =
            i64::try_from(message.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        if message.headers.get(RESTORED_HEADER).is_some() || made_ms <= at {
            self.keys
                .delete_message(message.sequence)
                .await
                .map_err(|e| unavailable("key erase", e))?;
        }
        Ok(())
    }

    /// Sends `entry` to the log (sealing names and evidence under their people's keys)
    /// and returns the wait for its sequence, known once a quorum of the stream's
    /// replicas holds it. Entries sent one after another by one node are ordered in the
    /// log as they were sent, unless the log lost one: unacknowledged, it is sent again
    /// (kept once, by its id) for up to twice the write timeout, after those sent since.
    pub async fn send(
        &self,
        entry: &LogEntry,
    ) -> Result<impl std::future::Future<Output = Result<u64>> + use<>> {
        let keys = self.keys_or_create(&entry.sealed_for()).await?;
        let bytes = entry.encode(&keys)?;
        // Headers and subject take a little of the limit.
        let max_payload = self.max_payload();
        if bytes.len() + 512 > max_payload {
            return Err(Error::InvalidArgument(vec![
                crate::domain::FieldViolation {
                    field: String::new(),
                    reason: format!(
                        "the write is {} bytes; the cluster accepts at most {} per write \
                     (send fewer items per request, or raise max_payload on the NATS servers)",
                        bytes.len(),
                        max_payload.saturating_sub(512)
                    ),
                },
            ]));
        }
        let (js, subject, id) = (self.js.clone(), self.subject.clone(), entry.id.clone());
        let payload: bytes::Bytes = bytes.into();
        let first = publish_entry(&js, &subject, &id, &payload).await?;
        let timeout = self.options.timeout;
        Ok(async move {
            match acknowledged(timeout, first).await {
                Ok(sequence) => Ok(sequence),
                // No acknowledgement does not mean not stored: the entry is sent again
                // under the same id, which the stream keeps once (its duplicate window)
                // and acknowledges with the first copy's sequence.
                Err(e) => {
                    tracing::debug!(error = %e, "log entry sent again");
                    persist(timeout * 2, || async {
                        let ack = publish_entry(&js, &subject, &id, &payload).await?;
                        acknowledged(timeout, ack).await
                    })
                    .await
                }
            }
        })
    }

    /// The sequence of the last entry in the log, and of the first still kept.
    pub async fn bounds(&self) -> Result<(u64, u64)> {
        let mut log = self.log.clone();
        let info = log.info().await.map_err(|e| unavailable("log info", e))?;
        Ok((info.state.last_sequence, info.state.first_sequence))
    }

    /// Entries from `start` on, in order, as (sequence, bytes). The stream is an
    /// ordered consumer: a gap or a lost connection recreates it where it left off.
    pub async fn entries_from(
        &self,
        start: u64,
    ) -> Result<impl tokio_stream::Stream<Item = Result<(u64, bytes::Bytes)>> + use<>> {
        let consumer = self
            .log
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("consumer", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable("consumer", e))?;
        Ok(messages.map(|message| {
            let message = message.map_err(|e| unavailable("read", e))?;
            let sequence = message
                .info()
                .map_err(|e| unavailable("read", e))?
                .stream_sequence;
            Ok((sequence, message.payload.clone()))
        }))
    }

    /// Drops every entry before `sequence` (they are in a checkpoint).
    pub async fn truncate_before(&self, sequence: u64) -> Result<()> {
        self.log
            .purge()
            .sequence(sequence)
            .await
            .map_err(|e| unavailable("truncate", e))?;
        Ok(())
    }

    /// Every checkpoint, newest first.
    async fn checkpoint_list(&self) -> Result<Vec<jetstream::object_store::ObjectInfo>> {
        // Listing an empty bucket waits for a timeout: look whether it is empty first.
        let mut stream = self
            .js
            .get_stream(format!("OBJ_{}_checkpoints", self.options.name))
            .await
            .map_err(|e| unavailable("checkpoint stream", e))?;
        let held = stream
            .info()
            .await
            .map_err(|e| unavailable("checkpoint stream", e))?
            .state
            .messages;
        if held == 0 {
            return Ok(Vec::new());
        }
        let mut list = self
            .checkpoints
            .list()
            .await
            .map_err(|e| unavailable("checkpoint list", e))?;
        let mut found = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| unavailable("checkpoint list", e))?;
            if !info.deleted && parse_checkpoint(&info).is_ok() {
                found.push(info);
            }
        }
        found.sort_by_key(|info| {
            std::cmp::Reverse(parse_checkpoint(info).map_or(0, |c| c.sequence))
        });
        Ok(found)
    }

    /// The latest checkpoint's description, if there is one.
    pub async fn checkpoint_info(&self) -> Result<Option<CheckpointInfo>> {
        match self.checkpoint_list().await?.first() {
            Some(info) => Ok(Some(parse_checkpoint(info)?)),
            None => Ok(None),
        }
    }

    /// Stores a checkpoint (a backup file and its manifest text) at `sequence`, then
    /// erases every checkpoint but the `keep` newest (erased, not only deleted: they may
    /// hold people erased since). Returns the sequence of the oldest one kept: the log
    /// before it is no longer needed.
    pub async fn put_checkpoint(
        &self,
        sequence: u64,
        backup: &std::path::Path,
        manifest: &str,
        keep: usize,
    ) -> Result<u64> {
        let mut file = tokio::fs::File::open(backup)
            .await
            .map_err(|e| Error::Internal(format!("checkpoint file: {e}")))?;
        let meta = jetstream::object_store::ObjectMetadata {
            name: format!("{CHECKPOINT_PREFIX}{sequence:020}"),
            description: Some(format!("capsight checkpoint at log sequence {sequence}")),
            metadata: HashMap::from([
                ("sequence".to_owned(), sequence.to_string()),
                ("manifest".to_owned(), manifest.to_owned()),
            ]),
            ..Default::default()
        };
        self.checkpoints
            .put(meta, &mut file)
            .await
            .map_err(|e| unavailable("checkpoint put", e))?;
        let list = self.checkpoint_list().await?;
        let keep = keep.max(1);
        for old in list.iter().skip(keep) {
            self.erase_chunks(&old.nuid).await?;
            match self.checkpoints.delete(&old.name).await {
                Ok(()) => {}
                // Another node deleted it first.
                Err(e) if e.kind() == jetstream::object_store::DeleteErrorKind::NotFound => {}
                Err(e) => return Err(unavailable("checkpoint delete", e)),
            }
        }
        let oldest_kept = list
            .iter()
            .take(keep)
            .filter_map(|info| parse_checkpoint(info).ok())
            .map(|c| c.sequence)
            .min()
            .unwrap_or(sequence);
        Ok(oldest_kept)
    }

    /// Erases what is left of an object's chunks (a replaced checkpoint).
    async fn erase_chunks(&self, nuid: &str) -> Result<()> {
        let stream = self
            .js
            .get_stream(format!("OBJ_{}_checkpoints", self.options.name))
            .await
            .map_err(|e| unavailable("checkpoint stream", e))?;
        let subject = format!("$O.{}_checkpoints.C.{nuid}", self.options.name);
        while let Ok(message) = stream.direct_get_first_for_subject(subject.as_str()).await {
            match stream.delete_message(message.sequence).await {
                Ok(_) => {}
                Err(e) if erased_meanwhile(&e) => {}
                Err(e) => return Err(unavailable("checkpoint erase", e)),
            }
        }
        Ok(())
    }

    /// Downloads the latest checkpoint into `dir` as a backup directory (`backup.bin`
    /// and `MANIFEST`), ready for `store::restore`. A download that stalls (the
    /// checkpoint was replaced and erased meanwhile) is retried with the newer one.
    pub async fn fetch_checkpoint(&self, dir: &std::path::Path) -> Result<Option<CheckpointInfo>> {
        let mut tries = 0;
        loop {
            tries += 1;
            let Some(latest) = self.checkpoint_list().await?.into_iter().next() else {
                return Ok(None);
            };
            match tokio::time::timeout(DOWNLOAD_TIMEOUT, self.download(&latest, dir)).await {
                Ok(Ok(info)) => return Ok(Some(info)),
                Ok(Err(e)) if tries >= 3 => return Err(e),
                Err(_) if tries >= 3 => {
                    return Err(unavailable("checkpoint download", "timed out"));
                }
                _ => tracing::warn!("checkpoint download failed; retrying with the latest"),
            }
        }
    }

    async fn download(
        &self,
        latest: &jetstream::object_store::ObjectInfo,
        dir: &std::path::Path,
    ) -> Result<CheckpointInfo> {
        let info = parse_checkpoint(latest)?;
        let manifest = latest
            .metadata
            .get("manifest")
            .cloned()
            .ok_or_else(|| unavailable("checkpoint", "no manifest"))?;
        let mut object = self
            .checkpoints
            .get(&latest.name)
            .await
            .map_err(|e| unavailable("checkpoint get", e))?;
        let io = |e: std::io::Error| Error::DataDir(format!("{}: {e}", dir.display()));
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let mut file = tokio::fs::File::create(dir.join(crate::store::BACKUP_FILE))
            .await
            .map_err(io)?;
        tokio::io::copy(&mut object, &mut file).await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        tokio::fs::write(dir.join(crate::store::MANIFEST_FILE), manifest)
            .await
            .map_err(io)?;
        Ok(info)
    }
}

/// Whether a delete failed only because another node deleted the message first.
fn erased_meanwhile(e: &stream::DeleteMessageError) -> bool {
    use jetstream::ErrorCode;
    match e.kind() {
        stream::DeleteMessageErrorKind::JetStream(e) => {
            let code = e.error_code();
            code == ErrorCode::SEQUENCE_NOT_FOUND
                || code == ErrorCode::NO_MESSAGE_FOUND
                // The server's generic delete failure, when the message is gone.
                || (code == ErrorCode::STREAM_MESSAGE_DELETE_FAILED
                    && e.to_string().contains("no message found"))
        }
        _ => false,
    }
}

/// Longest one checkpoint download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Checkpoint objects are named by this and their sequence (zero-padded).
const CHECKPOINT_PREFIX: &str = "checkpoint-";

fn parse_checkpoint(info: &jetstream::object_store::ObjectInfo) -> Result<CheckpointInfo> {
    let sequence = info
        .metadata
        .get("sequence")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| unavailable("checkpoint", "no sequence in its metadata"))?;
    Ok(CheckpointInfo {
        sequence,
        bytes: info.size as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn persist_tries_again_only_while_unavailable_and_within_its_bound() {
        // Unavailable twice, then answered.
        let calls = AtomicU32::new(0);
        let answer = persist(Duration::from_secs(5), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(unavailable("publish", "timed out")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Any other error is final at once.
        calls.store(0, Ordering::SeqCst);
        let answer: Result<u32> = persist(Duration::from_secs(5), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::Internal("no".into()))
        })
        .await;
        assert!(matches!(answer, Err(Error::Internal(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Unavailable for good: tried again (100, 200, 400 ms apart), then the last
        // error once the next pause would pass the bound.
        calls.store(0, Ordering::SeqCst);
        let answer: Result<u32> = persist(Duration::from_secs(1), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(unavailable("key erase", "down"))
        })
        .await;
        assert!(matches!(answer, Err(Error::Unavailable(_))));
        assert!((2..=4).contains(&calls.load(Ordering::SeqCst)));
    }
}
