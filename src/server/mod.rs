//! Assembles and runs the tonic server: capsight services, gRPC health (per service),
//! reflection v1 and v1alpha, gRPC-Web with CORS and the embedded dashboard (see `web`),
//! message-size limits, request timeouts, a tracing span per
//! call, and graceful shutdown (health NOT_SERVING → streams stop taking batches →
//! in-flight calls drain, bounded by a grace period → the store is flushed).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic_web::GrpcWebLayer;

use crate::analytics::privacy::DEFAULT_MIN_GROUP_SIZE;
use crate::api::denials::Denials;
use crate::api::pb::access_service_server::AccessServiceServer;
use crate::api::pb::capability_service_server::CapabilityServiceServer;
use crate::api::pb::directory_service_server::DirectoryServiceServer;
use crate::api::pb::ingest_service_server::IngestServiceServer;
use crate::api::pb::org_insights_service_server::OrgInsightsServiceServer;
use crate::api::pb::talent_service_server::TalentServiceServer;
use crate::api::{
    AccessApi, AuthLayer, CapabilityApi, CapabilityRoutes, DirectoryApi, IngestApi, OrgInsightsApi,
    TalentApi, pb,
};
use crate::demo::{DemoConfig, DemoOrg};
use crate::engine::{Engine, EngineOptions};
use crate::error::{Error, Result};
use crate::service::{
    access::Access, capability::Capability, directory::DirectoryService, ingest::Ingest,
    insights::Insights, talent::Talent,
};
use crate::web::DashboardLayer;

mod admission;
mod connect;
mod connections;
pub mod consistency;
pub mod observe;
pub use admission::AdmissionLimits;
use admission::{Admission, AdmissionLayer};
pub use connections::{ConnInfo, ConnectionLimits, raise_open_file_limit};

/// Everything `run` needs besides the listener.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Directory of the sled store.
    pub data_dir: PathBuf,
    /// Load this demo organisation when the store holds no people.
    pub demo: Option<DemoConfig>,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// Longest a unary call may take before DEADLINE_EXCEEDED.
    pub request_timeout: Duration,
    /// How long in-flight calls may drain after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Engine and store options.
    pub engine: EngineOptions,
    /// PEM certificate chain and private key; serve TLS when set.
    pub tls: Option<TlsFiles>,
    /// Aggregates of culture reviews hide groups smaller than this (at least 3).
    pub min_group_size: usize,
    /// Analysts read a culture snapshot published at most once per this period (zero:
    /// the current data; see `service::culture`).
    pub culture_period: Duration,
    /// Browser origins allowed to call over gRPC-Web (`*`: any); the embedded
    /// dashboard is same-origin and needs none.
    pub cors_origins: Vec<String>,
    /// Concurrency limits per class of call (see `admission`).
    pub admission: AdmissionLimits,
    /// Connection limit and idle timeout (see `connections`).
    pub connections: ConnectionLimits,
    /// Most concurrent calls (HTTP/2 streams) one connection may open.
    pub max_streams_per_connection: u32,
    /// Start-up fails, with a clear error, when the data directory's filesystem has
    /// less free space than this (a store cannot recover or write on a full disk).
    pub min_free_bytes: u64,
    /// Cluster mode: the replicated log to join (`None`: this node alone).
    pub cluster: Option<ClusterConfig>,
}

/// Cluster mode's settings.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// How to reach the log.
    pub log: crate::cluster::ClusterOptions,
    /// Log entries between checkpoints (0: only after erasures).
    pub checkpoint_every: u64,
}

/// Every capsight service, by its gRPC name (for per-service health).
const SERVICES: [&str; 6] = [
    <DirectoryServiceServer<DirectoryApi> as NamedService>::NAME,
    <IngestServiceServer<IngestApi> as NamedService>::NAME,
    <AccessServiceServer<AccessApi> as NamedService>::NAME,
    <CapabilityServiceServer<CapabilityApi> as NamedService>::NAME,
    <OrgInsightsServiceServer<OrgInsightsApi> as NamedService>::NAME,
    <TalentServiceServer<TalentApi> as NamedService>::NAME,
];

async fn set_health(
    health: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    for service in SERVICES {
        health.set_service_status(service, status).await;
    }
}

/// Where the server's TLS certificate chain and key are (PEM).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

impl ServerConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            demo: None,
            max_message_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            engine: EngineOptions::default(),
            tls: None,
            min_group_size: DEFAULT_MIN_GROUP_SIZE,
            culture_period: crate::service::culture::DEFAULT_PERIOD,
            cors_origins: Vec::new(),
            admission: AdmissionLimits::default(),
            connections: ConnectionLimits::default(),
            max_streams_per_connection: 256,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            cluster: None,
        }
    }
}

/// Serves capsight on `listener` until `shutdown` completes, then drains and flushes.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let cors = crate::web::cors(&config.cors_origins)?;
    let engine = open_engine(&config).await?;
    if let Some(demo) = &config.demo {
        load_demo_if_empty(&engine, demo).await?;
    }
    if let Err(e) = first_admin_token(&engine, &config.data_dir).await {
        let _ = engine.close().await;
        return Err(e);
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, tonic_health::ServingStatus::Serving).await;
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;

    let (stop_streams, streams_stopped) = watch::channel(false);
    let limit = config.max_message_bytes;
    let Services {
        gate,
        directory,
        ingest,
        access,
        capability,
        insights,
        talent,
    } = services(&engine, &config, streams_stopped);
    // The organisation's insights are computed once up front, off the request path, so
    // that the first culture review or plan after a start does not wait for them.
    tokio::spawn(crate::service::insights::precompute_organisation(
        Arc::clone(&engine),
    ));

    // Unauthenticated denials are counted by the auth layer and recorded once a minute.
    let denials = Arc::new(Denials::default());
    let denial_recorder = tokio::spawn(record_denials_each_minute(
        Arc::clone(&gate),
        Arc::clone(&denials),
    ));

    let ready = observe::Readiness::default();
    let (signalled, on_signal) = oneshot::channel();
    let signal = draining(
        shutdown,
        storage_failed(Arc::clone(&engine)),
        (health.clone(), ready.clone()),
        stop_streams,
        signalled,
    );

    let local = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    ready.set(true);
    announce(local, &config);
    let incoming = connections::incoming(listener, config.connections);
    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder
            .tls_config(tls_config(tls)?)
            .map_err(|e| Error::DataDir(format!("TLS: {e}")))?;
    }
    // HTTP/1.1 is accepted for gRPC-Web and the dashboard; gRPC proper stays on HTTP/2.
    let serve = builder
        .accept_http1(true)
        .max_concurrent_streams(Some(config.max_streams_per_connection))
        // Pings find dead peers; `connections` closes live but idle ones.
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .initial_connection_window_size(Some(8 * 1024 * 1024))
        .initial_stream_window_size(Some(2 * 1024 * 1024))
        .trace_fn(|request| tracing::info_span!("rpc", method = %request.uri().path()))
        .layer(connections::ActivityLayer)
        .layer(connect::ConnectLayer::new(
            connect::descriptor_pool().map_err(|e| Error::Internal(format!("descriptors: {e}")))?,
            limit,
        ))
        .layer(observe::ObserveLayer::new(
            Arc::clone(&engine),
            config.data_dir.clone(),
            ready.clone(),
        ))
        .layer(DashboardLayer)
        .layer(cors)
        .layer(GrpcWebLayer::new())
        // Before authentication: a token created on another node is a log entry too, so
        // a call that names the sequence of its creation is authenticated once this node
        // has applied it.
        .layer(consistency::ConsistencyLayer::new(Arc::clone(&engine)))
        .layer(AuthLayer::new(Arc::clone(&gate), Arc::clone(&denials)))
        .layer(AdmissionLayer::new(Arc::new(Admission::new(
            config.admission,
            config.request_timeout,
        ))))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(directory)
        .add_service(ingest)
        .add_service(access)
        .add_service(capability)
        .add_service(insights)
        .add_service(talent)
        .serve_with_incoming_shutdown(incoming, signal);

    let grace = config.shutdown_grace;
    let deadline = async move {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(grace).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = serve => {
            if let Err(e) = served {
                tracing::error!(error = %e, "server failed");
            }
        }
        () = deadline => tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing remaining calls"),
    }
    denial_recorder.abort();
    stop(&engine, &gate, &denials, grace).await
}

/// capsight's services, each behind its gRPC face, and the access service the auth layer
/// shares with them.
struct Services {
    gate: Arc<Access>,
    directory: DirectoryServiceServer<DirectoryApi>,
    ingest: IngestServiceServer<IngestApi>,
    access: AccessServiceServer<AccessApi>,
    capability: CapabilityRoutes,
    insights: OrgInsightsServiceServer<OrgInsightsApi>,
    talent: TalentServiceServer<TalentApi>,
}

/// Builds the services over `engine`; open streams end when `streams_stopped` turns true.
fn services(
    engine: &Arc<Engine>,
    config: &ServerConfig,
    streams_stopped: watch::Receiver<bool>,
) -> Services {
    let limit = config.max_message_bytes;
    let directory =
        DirectoryServiceServer::new(DirectoryApi::new(DirectoryService::new(Arc::clone(engine))))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);

    // Tokens and the audit trail: the auth layer, streams' audits and AccessService.
    let gate = Arc::new(Access::new(Arc::clone(engine)));
    let ingest = IngestServiceServer::new(IngestApi::new(
        Ingest::new(Arc::clone(engine)),
        Arc::clone(&gate),
        streams_stopped.clone(),
    ))
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let access = AccessServiceServer::new(AccessApi::new(Arc::clone(&gate)));
    let insights = Insights::new(Arc::clone(engine), config.min_group_size)
        .with_culture_period(config.culture_period);
    // Analysts' trends read the same published culture snapshot as their insights.
    let capability =
        Capability::new(Arc::clone(engine)).for_analysts(config.min_group_size, insights.culture());
    let capability = CapabilityRoutes::new(
        CapabilityApi::new(capability, streams_stopped.clone()),
        limit,
    );
    let insights = OrgInsightsApi::new(insights);
    let insights = OrgInsightsServiceServer::new(insights).max_encoding_message_size(limit);
    let talent = TalentServiceServer::new(TalentApi::new(Talent::new(Arc::clone(engine))))
        .max_encoding_message_size(limit);
    Services {
        gate,
        directory,
        ingest,
        access,
        capability,
        insights,
        talent,
    }
}

/// Makes sure an admin token exists, written to `data_dir`'s token file before it is
/// stored; refuses a store with no tokens beside a token file (not the store that wrote
/// it).
async fn first_admin_token(engine: &Engine, data_dir: &std::path::Path) -> Result<()> {
    // A store with no tokens beside an admin token file is not the store that wrote the
    // file (replaced, truncated or damaged): minting a new admin token would hide that
    // and overwrite the only way into the real one.
    let token_file = data_dir.join(ADMIN_TOKEN_FILE);
    if engine.snapshot().tokens.is_empty() && token_file.exists() {
        return Err(Error::DataDir(format!(
            "{} holds no access tokens, but {} exists: the store is not the one that \
             wrote that token (replaced, truncated or damaged?). Restore the store from a \
             backup, or remove {} to start a new, empty organisation",
            data_dir.display(),
            token_file.display(),
            token_file.display()
        )));
    }
    // The token file is written (and synced) before the token is stored: should that
    // fail, no token exists that nobody can read, and the next start tries again.
    let dir = data_dir.to_path_buf();
    let written = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let wrote = Arc::clone(&written);
    let created = engine
        .ensure_admin_token(move |token| {
            write_admin_token(&dir, token)?;
            wrote.store(true, std::sync::atomic::Ordering::Release);
            Ok(())
        })
        .await?;
    if written.load(std::sync::atomic::Ordering::Acquire) && !created {
        // Cluster mode: another node's first token reached the log first, so the one
        // written here was never stored. Its file would only mislead.
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        std::fs::remove_file(&path)
            .map_err(|e| Error::DataDir(format!("cannot remove {}: {e}", path.display())))?;
        tracing::info!("another node created the first admin token; its data directory holds it");
    }
    Ok(())
}

/// After serving: records the last denials, then flushes and closes the store; an error
/// if the storage had failed (the writer may be stuck: closed within `grace`).
async fn stop(engine: &Engine, gate: &Access, denials: &Denials, grace: Duration) -> Result<()> {
    if engine.storage_failure().is_none() {
        crate::api::auth::record_denials(gate, denials.take_all()).await;
    }
    if let Some(reason) = engine.storage_failure() {
        // The writer may be stuck inside sled: close what can be closed, briefly.
        let _ = tokio::time::timeout(grace, engine.close()).await;
        return Err(Error::DataDir(format!(
            "storage failed ({reason}); stopped. Restart capsight once the cause \
             (disk space, permissions, open-file limit) is fixed"
        )));
    }
    engine.close().await?;
    tracing::info!("store flushed; stopped");
    Ok(())
}

/// Logs where capsight serves, its dashboard, and how to query it with the admin token
/// (the file's path, never the token).
fn announce(local: std::net::SocketAddr, config: &ServerConfig) {
    tracing::info!(address = %local, "capsight serving");
    let web_scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!("dashboard: {web_scheme}://{local}/ (sign in with a token)");
    let token_file = config.data_dir.join(ADMIN_TOKEN_FILE);
    let scheme = if config.tls.is_some() {
        ""
    } else {
        "-plaintext "
    };
    tracing::info!(
        "query with the admin token: grpcurl {scheme}-H \"authorization: Bearer $(cat {})\" {local} list",
        token_file.display()
    );
}

/// Completes when the server should stop taking calls: `shutdown` completed, or the
/// storage failed (then NOT_SERVING is reported for a moment first, while still
/// answering, so that health checks and load balancers see it before connections
/// close). Then reports not ready, ends open streams and tells `signalled`.
async fn draining(
    shutdown: impl Future<Output = ()>,
    failed: impl Future<Output = String>,
    (health, ready): (tonic_health::server::HealthReporter, observe::Readiness),
    stop_streams: watch::Sender<bool>,
    signalled: oneshot::Sender<()>,
) {
    tokio::select! {
        () = shutdown => tracing::info!("shutdown requested; draining"),
        reason = failed => {
            tracing::error!(
                reason = %reason,
                "storage failed; writes are refused, stopping so that a supervisor restarts capsight"
            );
            set_health(&health, tonic_health::ServingStatus::NotServing).await;
            tokio::time::sleep(FAILURE_NOTICE).await;
        }
    }
    ready.set(false);
    set_health(&health, tonic_health::ServingStatus::NotServing).await;
    let _ = stop_streams.send(true);
    let _ = signalled.send(());
}

/// Records the counts of unauthenticated denials of each minute once it is over.
async fn record_denials_each_minute(gate: Arc<Access>, denials: Arc<Denials>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ended = denials.take_ended(crate::domain::Timestamp::now());
        crate::api::auth::record_denials(&gate, ended).await;
    }
}

/// How long a server whose storage failed keeps answering (NOT_SERVING, writes refused)
/// before it stops.
const FAILURE_NOTICE: Duration = Duration::from_secs(1);

/// Resolves with the reason once storage has failed (checked four times a second).
async fn storage_failed(engine: Arc<Engine>) -> String {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(reason) = engine.storage_failure() {
            return reason;
        }
    }
}

/// Reflection over every service served, so that clients of either reflection version
/// (grpcurl 1.8 and grpcio speak v1alpha only) can list and call all of them.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details (BadRequest, RetryInfo…), so that clients using
        // reflection can decode the details capsight's errors carry.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

fn tls_config(files: &TlsFiles) -> Result<tonic::transport::ServerTlsConfig> {
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| Error::DataDir(format!("cannot read {}: {e}", path.display())))
    };
    let identity = tonic::transport::Identity::from_pem(read(&files.cert)?, read(&files.key)?);
    Ok(tonic::transport::ServerTlsConfig::new().identity(identity))
}

/// Name of the file, inside the data directory, holding the first admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Writes the first admin token where only the server's user can read it (0600), and
/// makes sure it is on disk before anyone is told where it is.
fn write_admin_token(data_dir: &std::path::Path, token: &str) -> Result<()> {
    use std::io::Write;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let mut options = std::fs::OpenOptions::new();
    // Never over an existing file: start-up refuses a store without tokens beside one.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let fail = |e: std::io::Error| Error::DataDir(format!("cannot write {}: {e}", path.display()));
    let mut file = options.open(&path).map_err(fail)?;
    writeln!(file, "{token}").map_err(fail)?;
    file.sync_all().map_err(fail)?;
    tracing::info!(path = %path.display(), "created the first admin token");
    Ok(())
}

/// Free space below which capsight does not start (64 MiB).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

/// Fails when the filesystem that holds (or will hold) `dir` has less than `min_free`
/// bytes available to capsight's user.
fn check_free_space(dir: &std::path::Path, min_free: u64) -> Result<()> {
    let existing = dir.ancestors().find(|p| p.exists()).unwrap_or(dir);
    let free = fs2::available_space(existing).map_err(|e| {
        Error::DataDir(format!(
            "cannot read the free space of {}: {e}",
            existing.display()
        ))
    })?;
    if free < min_free {
        return Err(Error::DataDir(format!(
            "only {} MiB free on the filesystem of {}; capsight needs at least {} MiB to \
             start (free space, or lower --min-free-mb)",
            free / (1024 * 1024),
            dir.display(),
            min_free.div_ceil(1024 * 1024)
        )));
    }
    Ok(())
}

/// Cluster mode, a node without a store: starts from the cluster's latest checkpoint
/// (restored into the data directory as a backup is), if there is one. Its people's
/// keys open with their cluster keys: while some are missing (the key stream restarted
/// and the other nodes have not given them back yet, or the person was erased and a
/// newer checkpoint is on its way) it tries again, with the latest checkpoint, for up
/// to two minutes.
async fn restore_checkpoint(
    config: &ServerConfig,
    log: &Arc<crate::cluster::ClusterLog>,
) -> Result<()> {
    if crate::store::holds_store(&config.data_dir) {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match restore_latest_checkpoint(config, log).await {
            Err(Error::Unavailable(reason)) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(%reason, "the checkpoint cannot be restored yet; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            other => return other,
        }
    }
}

async fn restore_latest_checkpoint(
    config: &ServerConfig,
    log: &Arc<crate::cluster::ClusterLog>,
) -> Result<()> {
    let download = config.data_dir.with_extension("checkpoint-download");
    let _ = tokio::fs::remove_dir_all(&download).await;
    let Some(info) = log.fetch_checkpoint(&download).await? else {
        return Ok(());
    };
    let (from, into) = (download.clone(), config.data_dir.clone());
    let (log, runtime) = (Arc::clone(log), tokio::runtime::Handle::current());
    let restored = tokio::task::spawn_blocking(move || {
        let cluster_keys = |people: &[String]| {
            let ids = people
                .iter()
                .map(|p| {
                    crate::domain::PersonId::parse(p).map_err(|_| {
                        Error::DataDir("the checkpoint is damaged: a person id is invalid".into())
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let found = runtime.block_on(log.keys_of_many(&ids))?;
            Ok(found
                .into_iter()
                .map(|(id, key)| (id.as_str().to_owned(), key))
                .collect())
        };
        crate::store::restore_checkpoint(&from, &into, &cluster_keys)
    })
    .await
    .map_err(|e| Error::Internal(format!("restoring the checkpoint panicked: {e}")))?;
    let _ = tokio::fs::remove_dir_all(&download).await;
    if let Err(e) = restored {
        // What was written goes: the next try (or start) restores into an empty directory.
        let _ = tokio::fs::remove_dir_all(&config.data_dir).await;
        return Err(e);
    }
    tracing::info!(
        sequence = info.sequence,
        bytes = info.bytes,
        "started from the cluster's checkpoint"
    );
    Ok(())
}

async fn open_engine(config: &ServerConfig) -> Result<Arc<Engine>> {
    check_free_space(&config.data_dir, config.min_free_bytes)?;
    let dir = config.data_dir.clone();
    let mut options = config.engine.clone();
    let started = std::time::Instant::now();
    let log = match &config.cluster {
        Some(cluster) => {
            let log = Arc::new(crate::cluster::ClusterLog::connect(cluster.log.clone()).await?);
            restore_checkpoint(config, &log).await?;
            options.replicated = true;
            Some((log, cluster.checkpoint_every))
        }
        None => None,
    };
    let open = |dir: PathBuf, options: EngineOptions| async move {
        tokio::task::spawn_blocking(move || Engine::open(&dir, &options))
            .await
            .map_err(|e| Error::Internal(format!("opening the store panicked: {e}")))?
            .map(Arc::new)
    };
    let mut engine = open(dir.clone(), options.clone()).await?;
    if let Some((log, checkpoint_every)) = log {
        let (_, first) = log.bounds().await?;
        if first > engine.log_sequence() + 1 {
            // The log was truncated past this store (the node was down through two
            // checkpoints): its state is the checkpoint's plus the log, so it starts
            // over from them. The old store goes: it may hold people erased since.
            tracing::warn!(
                store = engine.log_sequence(),
                log_starts = first,
                "this node's store is behind the cluster log's start; replacing it with the checkpoint"
            );
            engine.close().await?;
            drop(engine);
            tokio::fs::remove_dir_all(&config.data_dir)
                .await
                .map_err(|e| Error::DataDir(format!("{}: {e}", config.data_dir.display())))?;
            restore_checkpoint(config, &log).await?;
            engine = open(dir, options).await?;
        }
        // Erasures made since a checkpoint are in the log after it: applied in order.
        engine.join_cluster(log, checkpoint_every).await?;
        return Ok(engine);
    }
    // A restored backup predates some erasures: they are made again before serving.
    let reapplied = engine.reapply_erasures().await?;
    if reapplied > 0 {
        tracing::warn!(
            erased = reapplied,
            "erasures made after the restored backup were made again"
        );
        engine
            .record_audit(crate::domain::AuditEvent {
                sequence: 0,
                at: crate::domain::Timestamp::now(),
                token: None,
                role: None,
                rpc: "capsight.server/ReapplyErasures".into(),
                subjects: Vec::new(),
                outcome: "OK".into(),
                source: None,
                count: u32::try_from(reapplied).unwrap_or(u32::MAX),
            })
            .await?;
    }
    let snapshot = engine.snapshot();
    tracing::info!(
        data_dir = %config.data_dir.display(),
        people = snapshot.directory.people().len(),
        assessments = snapshot.assessment_total,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store opened"
    );
    Ok(engine)
}

/// Loads the demo organisation through the normal write path, unless people exist.
async fn load_demo_if_empty(engine: &Engine, config: &DemoConfig) -> Result<()> {
    if !engine.snapshot().directory.people().is_empty() {
        tracing::info!("store already holds data; demo organisation not loaded");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let org = DemoOrg::generate(config);
    load_org(engine, org).await?;
    let snapshot = engine.snapshot();
    tracing::info!(
        people = snapshot.directory.people().len(),
        teams = snapshot.directory.teams().len(),
        assessments = snapshot.assessment_total,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "demo organisation loaded"
    );
    Ok(())
}

/// Writes a generated organisation through the engine, in dependency order.
pub async fn load_org(engine: &Engine, org: DemoOrg) -> Result<()> {
    const CHUNK: usize = crate::domain::MAX_BATCH_ITEMS;
    let DemoOrg {
        skills,
        roles,
        teams,
        people,
        managed_teams,
        assessments,
        ..
    } = org;
    engine.upsert_skills(skills).await?;
    engine.upsert_roles(roles).await?;
    engine.upsert_teams(teams).await?;
    for chunk in people.chunks(CHUNK) {
        engine.upsert_people(chunk.to_vec()).await?;
    }
    engine.upsert_teams(managed_teams).await?;
    let mut pending = Vec::new();
    for chunk in assessments.chunks(CHUNK) {
        let items = (0u32..).zip(chunk.iter().cloned()).collect();
        pending.push(engine.enqueue_assessments(items).await?);
    }
    for batch in pending {
        let outcome = batch.durable().await?;
        if !outcome.rejections.is_empty() {
            return Err(Error::Internal(format!(
                "demo organisation rejected: {:?}",
                outcome.rejections.first()
            )));
        }
    }
    Ok(())
}
