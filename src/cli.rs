//! Command-line interface: `serve`, `import` and `demo`. Parses flags (with environment
//! fallbacks), sets up logging and the runtime, and hands over to the library.

mod backup;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::BearerToken;
use crate::api::pb;
use crate::api::pb::access_service_client::AccessServiceClient;
use crate::demo::{DemoConfig, DemoOrg};
use crate::engine::EngineOptions;
use crate::import::{self, ImportFiles};
use crate::server::{self, AdmissionLimits, ConnectionLimits, ServerConfig};
use crate::store::StoreOptions;

/// capsight: team-capability insights from skill assessments, over gRPC.
#[derive(Debug, Parser)]
#[command(name = "capsight", version, about)]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CAPSIGHT_LOG_FORMAT")]
    log_format: LogFormat,
    /// Export traces (a span per rpc) over OTLP/gRPC to this collector endpoint, e.g.
    /// http://127.0.0.1:4317.
    #[arg(long, global = true, env = "CAPSIGHT_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Log line format.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(ServeArgs),
    /// Import CSV files into a running server.
    Import(ImportArgs),
    /// Write the demo organisation as CSV files (the format `import` reads).
    Demo(DemoArgs),
    /// Create, list or revoke access tokens on a running server (admin token needed).
    Token(TokenArgs),
    /// Check a stopped server's store: its commit marker, every record, the references
    /// between them and the idempotency index. Exits 1 when it finds a problem.
    Verify(VerifyArgs),
    /// Back up a running server's store into a new directory (admin token needed).
    Backup(backup::BackupArgs),
    /// Restore a backup into a stopped server's data directory; erasures made after the
    /// backup are made again when the server next starts.
    Restore(backup::RestoreArgs),
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The stopped server's data directory.
    #[arg(long, env = "CAPSIGHT_DATA_DIR", default_value = "./capsight-data")]
    data_dir: PathBuf,
}

/// `verify`: opens the store (which checks the commit marker and decodes the records)
/// and checks every record.
async fn run_verify(args: VerifyArgs) -> Result<ExitCode, String> {
    use crate::store::{Store, StoreOptions, verify};
    if !args.data_dir.join("db").exists() {
        return Err(format!(
            "{} holds no capsight store",
            args.data_dir.display()
        ));
    }
    let dir = args.data_dir.clone();
    let report = tokio::task::spawn_blocking(move || {
        let opened = Store::open(&dir, &StoreOptions::default(), |_, _| {})?;
        verify(&opened)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{}: {e}", args.data_dir.display()))?;
    println!("{}: {report}", args.data_dir.display());
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How a client command reaches and authenticates to a running server.
#[derive(Debug, Args)]
struct ClientArgs {
    /// URL of the running server.
    #[arg(
        long,
        global = true,
        env = "CAPSIGHT_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// Bearer token; overrides --token-file.
    #[arg(long, global = true, env = "CAPSIGHT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the bearer token (the server writes the first admin token here).
    #[arg(
        long,
        global = true,
        env = "CAPSIGHT_TOKEN_FILE",
        default_value = "./capsight-data/admin.token"
    )]
    token_file: PathBuf,
    /// Certificate authority (PEM) that signed a TLS server's certificate, for
    /// `https://` servers with a private CA (default: the public web roots).
    #[arg(long, global = true, env = "CAPSIGHT_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

impl ClientArgs {
    fn endpoint(&self) -> Result<tonic::transport::Endpoint, String> {
        import::client_endpoint(&self.server, self.ca_cert.as_deref())
    }

    async fn connect(&self) -> Result<tonic::transport::Channel, String> {
        self.endpoint()?.connect().await.map_err(|e| {
            format!(
                "cannot connect to {}: {}",
                self.server,
                import::error_chain(&e)
            )
        })
    }

    fn token(&self) -> Result<String, String> {
        if let Some(token) = &self.token {
            return Ok(token.trim().to_owned());
        }
        std::fs::read_to_string(&self.token_file)
            .map(|t| t.trim().to_owned())
            .map_err(|e| {
                format!(
                    "no --token given and cannot read {}: {e}",
                    self.token_file.display()
                )
            })
    }
}

#[derive(Debug, Args)]
struct TokenArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print it (it is shown only once).
    Create {
        /// Role to grant.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Team subtree the token covers (manager, planner); repeatable.
        #[arg(long = "team")]
        teams: Vec<String>,
        /// Person the token is bound to (person role).
        #[arg(long)]
        person: Option<String>,
        /// Who or what holds the token.
        #[arg(long, default_value = "")]
        description: String,
        /// Lifetime in seconds; 0 never expires.
        #[arg(long, default_value_t = 0)]
        ttl_secs: u64,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id, as listed.
        token_id: String,
    },
    /// Locked out (every admin token lost or expired)? With the server stopped, create a
    /// new admin token directly in its data directory, write it to a new file there
    /// (0600) and print the file's path. The recovery is recorded as an audit event.
    Recover {
        /// The stopped server's data directory.
        #[arg(long, env = "CAPSIGHT_DATA_DIR", default_value = "./capsight-data")]
        data_dir: PathBuf,
    },
}

/// Access role on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Admin,
    Ingest,
    Manager,
    Planner,
    Analyst,
    Person,
}

impl RoleArg {
    fn to_pb(self) -> pb::AccessRole {
        match self {
            Self::Admin => pb::AccessRole::Admin,
            Self::Ingest => pb::AccessRole::Ingest,
            Self::Manager => pb::AccessRole::Manager,
            Self::Planner => pb::AccessRole::Planner,
            Self::Analyst => pb::AccessRole::Analyst,
            Self::Person => pb::AccessRole::Person,
        }
    }
}

#[derive(Debug, Args)]
struct DemoShape {
    /// Seed of the demo organisation.
    #[arg(long = "demo-seed", default_value_t = 42)]
    seed: u64,
    /// People in the demo organisation (e.g. 100000 for benchmarks).
    #[arg(long = "demo-people", default_value_t = 2_000)]
    people: usize,
    /// Skills in the demo organisation (40 named, more are generated).
    #[arg(long = "demo-skills", default_value_t = 40)]
    skills: usize,
    /// Plant this many occupations with sparse evidence (10 core skills each, three
    /// assessments per held skill) instead of the 8 dense archetypes; use with a few
    /// hundred `--demo-skills`.
    #[arg(long = "demo-occupations", default_value_t = 0)]
    occupations: usize,
}

impl DemoShape {
    fn config(&self) -> DemoConfig {
        DemoConfig {
            seed: self.seed,
            people: self.people,
            skills: self.skills,
            occupations: self.occupations,
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Directory of the embedded store (created if missing).
    #[arg(long, env = "CAPSIGHT_DATA_DIR", default_value = "./capsight-data")]
    data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "CAPSIGHT_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Load the demo organisation if the store holds no people.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    shape: DemoShape,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "CAPSIGHT_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    max_message_bytes: usize,
    /// Longest a call may take before DEADLINE_EXCEEDED, in seconds.
    #[arg(long, env = "CAPSIGHT_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    request_timeout_secs: u64,
    /// How long in-flight calls may drain after SIGINT/SIGTERM, in seconds.
    #[arg(long, env = "CAPSIGHT_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    shutdown_grace_secs: u64,
    /// sled page-cache size, in MiB.
    #[arg(long, env = "CAPSIGHT_CACHE_MB", default_value_t = 256)]
    cache_mb: u64,
    /// Culture-review aggregates hide groups smaller than this (at least 3).
    #[arg(long, env = "CAPSIGHT_MIN_GROUP_SIZE", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(3..))]
    min_group_size: u32,
    /// Analysts' aggregates come from a culture snapshot of the data published at most
    /// once per this many hours (and at once after an erasure), so that two answers
    /// cannot be differenced to single out a change; 0 serves them the current data.
    #[arg(long, env = "CAPSIGHT_CULTURE_SNAPSHOT_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u64).range(0..=8760))]
    culture_snapshot_hours: u64,
    /// Browser origin allowed to call over gRPC-Web, e.g. https://dash.example.com
    /// (repeatable; `*` allows any). The embedded dashboard needs none.
    #[arg(
        long = "cors-origin",
        env = "CAPSIGHT_CORS_ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    /// PEM certificate chain to serve TLS with (needs --tls-key).
    #[arg(long, env = "CAPSIGHT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key to serve TLS with (needs --tls-cert).
    #[arg(long, env = "CAPSIGHT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Heavy reads (archetypes, patterns, plans, composition, trends) running at once;
    /// past them and a short queue, calls are answered RESOURCE_EXHAUSTED.
    #[arg(long, env = "CAPSIGHT_MAX_HEAVY_CALLS")]
    max_heavy_calls: Option<usize>,
    /// Cheap reads running at once (same rule).
    #[arg(long, env = "CAPSIGHT_MAX_CHEAP_CALLS")]
    max_cheap_calls: Option<usize>,
    /// Writes in flight at once (same rule).
    #[arg(long, env = "CAPSIGHT_MAX_WRITE_CALLS")]
    max_write_calls: Option<usize>,
    /// Audit events older than this many days are removed (0: kept for ever).
    #[arg(long, env = "CAPSIGHT_AUDIT_RETENTION_DAYS", default_value_t = 400)]
    audit_retention_days: u64,
    /// The oldest audit events are removed while the audit log is larger than this many
    /// MiB (0: no limit).
    #[arg(long, env = "CAPSIGHT_AUDIT_MAX_MB", default_value_t = 1024)]
    audit_max_mb: u64,
    /// Most open connections; by default 4,096, never more than the open-file limit
    /// (raised to its hard limit at start) minus 128 descriptors kept for the store.
    #[arg(long, env = "CAPSIGHT_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Close a connection with no call in flight for this long, in seconds.
    #[arg(long, env = "CAPSIGHT_IDLE_TIMEOUT_SECS", default_value_t = 300)]
    idle_timeout_secs: u64,
    /// Most concurrent calls one HTTP/2 connection may open.
    #[arg(
        long,
        env = "CAPSIGHT_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 256
    )]
    max_streams_per_connection: u32,
    /// Scheduling niceness of background computations (archetypes, patterns, plans): 10
    /// gives requests and writes the CPU first on a machine capsight has to itself.
    #[arg(long, env = "CAPSIGHT_JOB_NICE", default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    job_nice: i32,
    /// Age at which a piece of evidence counts half, in days: the organisation's evidence
    /// horizon. Shorter favours recent evidence and lowers confidence in old evidence
    /// (three agreeing objective tests two years old give confidence 0.53 at 365 days,
    /// 0.78 at 730, 0.17 at 180).
    #[arg(long, env = "CAPSIGHT_EVIDENCE_HALF_LIFE_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(7..=3650))]
    evidence_half_life_days: u32,
    /// Start even though the store is behind its commit marker (acknowledged writes are
    /// missing: rolled back, truncated or damaged) or the marker is damaged, serving what
    /// the store holds. The loss is logged and recorded as an audit event.
    #[arg(long, env = "CAPSIGHT_ACCEPT_DATA_LOSS")]
    accept_data_loss: bool,
    /// Refuse to start when the data directory's filesystem has less free space than
    /// this many MiB.
    #[arg(long, env = "CAPSIGHT_MIN_FREE_MB", default_value_t = 64)]
    min_free_mb: u64,
    /// Cluster mode: NATS server URLs (comma-separated, `nats://` or `tls://`) of a
    /// JetStream cluster; every write goes through its replicated log (see README,
    /// "Running a cluster"). Without it capsight runs alone on its sled store.
    #[arg(long, env = "CAPSIGHT_CLUSTER", value_delimiter = ',')]
    cluster: Vec<String>,
    /// Cluster mode: replicas of the log, keys and checkpoints (3: survives the loss
    /// of one NATS server; 1 only for a single test server).
    #[arg(long, env = "CAPSIGHT_CLUSTER_REPLICAS", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=5))]
    cluster_replicas: u8,
    /// Cluster mode: name of the JetStream stream (one per organisation).
    #[arg(long, env = "CAPSIGHT_CLUSTER_STREAM", default_value = "CAPSIGHT")]
    cluster_stream: String,
    /// Cluster mode: NATS credentials file (JWT and NKey seed).
    #[arg(long, env = "CAPSIGHT_CLUSTER_CREDENTIALS")]
    cluster_credentials: Option<PathBuf>,
    /// Cluster mode: CA certificate of the NATS servers' TLS.
    #[arg(long, env = "CAPSIGHT_CLUSTER_CA")]
    cluster_ca: Option<PathBuf>,
    /// Cluster mode: write a checkpoint of the store to the cluster every this many log
    /// entries (0: only after erasures); the log is truncated behind the checkpoint
    /// before the latest.
    #[arg(long, env = "CAPSIGHT_CHECKPOINT_EVERY", default_value_t = 10_000)]
    checkpoint_every: u64,
    /// TEST ONLY: acknowledge writes before they are flushed and disable background
    /// flushing (loses acknowledged data on a crash). Exists only in debug builds, for
    /// the crash test to show it detects loss; a release binary has no such switch.
    #[cfg(debug_assertions)]
    #[arg(long, hide = true)]
    unsafe_ack_before_flush: bool,
}

impl ServeArgs {
    /// Whether the test-only early acknowledgement was asked for (never in release).
    fn unsafe_ack_before_flush(&self) -> bool {
        #[cfg(debug_assertions)]
        return self.unsafe_ack_before_flush;
        #[cfg(not(debug_assertions))]
        false
    }
}

#[derive(Debug, Args)]
struct ImportArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// skills.csv: id,name,category,description,indicator_1..indicator_5
    #[arg(long)]
    skills: Option<PathBuf>,
    /// roles.csv, one row per requirement: role_id,role_name,skill_id,required_level,weight
    #[arg(long)]
    roles: Option<PathBuf>,
    /// teams.csv: id,name,parent_id,manager_id (parents before children)
    #[arg(long)]
    teams: Option<PathBuf>,
    /// people.csv: id,display_name,team_id,role_id,target_role_id,availability
    #[arg(long)]
    people: Option<PathBuf>,
    /// assessments.csv: id,person_id,skill_id,score,source,assessor_id,assessed_at,evidence
    #[arg(long)]
    assessments: Option<PathBuf>,
    /// Assessments per streamed batch.
    #[arg(long, default_value_t = 1_000)]
    batch_size: usize,
    /// Check every file against the server's rules and directory, write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Directory to write skills.csv, roles.csv, teams.csv, people.csv, assessments.csv.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    shape: DemoShape,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("capsight: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = {
        let _inside = runtime.enter();
        crate::telemetry::init(
            matches!(cli.log_format, LogFormat::Json),
            cli.otlp_endpoint.as_deref(),
        )
    };
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("capsight: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Import(args) => run_import(args).await,
            Command::Demo(args) => write_demo(args),
            Command::Token(args) => run_token(args).await,
            Command::Verify(args) => run_verify(args).await,
            Command::Backup(args) => backup::run_backup(args).await,
            Command::Restore(args) => backup::run_restore(args).await,
        }
    });
    // Pending spans go out while the runtime still runs.
    let _ = runtime.block_on(runtime.spawn_blocking(move || telemetry.shutdown()));
    // A writer stuck inside sled after a storage failure must not hold up the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("capsight: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    // Every file the store creates (sled's log, blobs, the admin token) is readable by
    // capsight's user only.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let ack_before_flush = args.unsafe_ack_before_flush();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let defaults = AdmissionLimits::default();
    let admission = AdmissionLimits {
        heavy: args.max_heavy_calls.unwrap_or(defaults.heavy).max(1),
        cheap: args.max_cheap_calls.unwrap_or(defaults.cheap).max(1),
        write: args.max_write_calls.unwrap_or(defaults.write).max(1),
        ..defaults
    };
    let open_files = server::raise_open_file_limit();
    tracing::debug!(open_files, "open-file limit");
    let config = ServerConfig {
        admission,
        connections: ConnectionLimits {
            max_connections: args.max_connections,
            idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
        },
        max_streams_per_connection: args.max_streams_per_connection.max(1),
        min_free_bytes: args.min_free_mb.saturating_mul(1024 * 1024),
        cluster: (!args.cluster.is_empty()).then(|| server::ClusterConfig {
            log: crate::cluster::ClusterOptions {
                urls: args.cluster.clone(),
                name: args.cluster_stream.clone(),
                replicas: usize::from(args.cluster_replicas),
                credentials: args.cluster_credentials.clone(),
                ca: args.cluster_ca.clone(),
                ..Default::default()
            },
            checkpoint_every: args.checkpoint_every,
        }),
        data_dir: args.data_dir,
        demo: args.demo.then(|| args.shape.config()),
        min_group_size: args.min_group_size as usize,
        culture_period: Duration::from_secs(args.culture_snapshot_hours * 3600),
        cors_origins: args.cors_origins,
        max_message_bytes: args.max_message_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        engine: EngineOptions {
            store: StoreOptions {
                cache_bytes: args.cache_mb * 1024 * 1024,
                audit_retention: (args.audit_retention_days > 0)
                    .then(|| Duration::from_secs(args.audit_retention_days.saturating_mul(86_400))),
                audit_max_bytes: (args.audit_max_mb > 0)
                    .then(|| args.audit_max_mb.saturating_mul(1024 * 1024)),
                accept_data_loss: args.accept_data_loss,
                ..StoreOptions::default()
            },
            ack_before_flush,
            job_nice: args.job_nice,
            evidence_half_life_days: Some(args.evidence_half_life_days as f32),
            ..EngineOptions::default()
        },
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(server::TlsFiles { cert, key }),
            _ => None,
        },
    };
    server::run(listener, config, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM, caught from the moment this is called: a signal that
/// arrives while the store opens, or just as the server starts serving, stops it cleanly
/// once it serves (a handler installed only when first awaited left such a signal to
/// kill the process).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run_import(args: ImportArgs) -> Result<ExitCode, String> {
    let files = ImportFiles {
        skills: args.skills,
        roles: args.roles,
        teams: args.teams,
        people: args.people,
        assessments: args.assessments,
    };
    if files.given().is_empty() {
        return Err(
            "nothing to import: give at least one of --skills, --roles, --teams, --people, \
             --assessments"
                .into(),
        );
    }
    let token = args.client.token()?;
    let options = import::ImportOptions {
        batch_size: args.batch_size,
        dry_run: args.dry_run,
        progress: true,
    };
    let report = import::run_with(args.client.endpoint()?, &token, &files, &options)
        .await
        .map_err(|e| match e {
            import::ImportError::Rpc {
                code: tonic::Code::Unauthenticated,
                ..
            } => format!(
                "{e}\nhint: the server did not accept the token{}; give this server's token \
                 with --token-file (the `admin.token` in its data directory) or --token",
                if args.client.token.is_some() {
                    " given with --token".to_owned()
                } else {
                    format!(" from {}", args.client.token_file.display())
                }
            ),
            e => e.to_string(),
        })?;
    println!("{report}");
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A protobuf time as RFC 3339 (UTC, seconds), or "-" when unset.
fn when(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}

/// One token as a line of the listing: id, role, state, scope, times, description.
fn describe(info: &pb::TokenInfo) -> String {
    let scope = match (info.team_ids.is_empty(), info.person_id.is_empty()) {
        (false, _) => format!("teams {}", info.team_ids.join(",")),
        (_, false) => format!("person {}", info.person_id),
        _ => "everything".to_owned(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let state = if info.revoked_at.is_some() {
        "revoked"
    } else if info.expires_at.as_ref().is_some_and(|e| e.seconds <= now) {
        "expired"
    } else {
        "active"
    };
    let role = pb::AccessRole::try_from(info.role).map_or_else(
        |_| "?".to_owned(),
        |r| {
            r.as_str_name()
                .trim_start_matches("ACCESS_ROLE_")
                .to_lowercase()
        },
    );
    format!(
        "{:<18} {role:<8} {state:<8} {scope:<24} created {}  expires {}{}  {}",
        info.token_id,
        when(info.created_at.as_ref()),
        when(info.expires_at.as_ref()),
        info.revoked_at
            .as_ref()
            .map_or_else(String::new, |r| format!("  revoked {}", when(Some(r)))),
        info.description
    )
}

/// `token recover`: a new admin token made in the stopped server's store.
async fn recover_admin(data_dir: PathBuf) -> Result<ExitCode, String> {
    use crate::domain::{AccessRole, AuditEvent, Grant, Text, Timestamp};
    use crate::engine::{Engine, EngineOptions};
    if !data_dir.join("db").exists() {
        return Err(format!("{} holds no capsight store", data_dir.display()));
    }
    let dir = data_dir.clone();
    // Opening takes sled's lock: a running server on the directory makes this fail.
    let engine = tokio::task::spawn_blocking(move || Engine::open(&dir, &EngineOptions::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot open {}: {e}", data_dir.display()))?;
    let grant = Grant::parse(AccessRole::Admin, Vec::new(), None).map_err(|v| v.reason)?;
    let description = Text::long(&format!(
        "recovered admin token, created by `capsight token recover` at {}",
        when(Some(&prost_types::Timestamp {
            seconds: Timestamp::now().unix_millis() / 1000,
            nanos: 0
        }))
    ))
    .map_err(|v| v.reason)?;
    let (bearer, info) = engine
        .create_token(grant, description, None)
        .await
        .map_err(|e| e.to_string())?;
    let path = data_dir.join(format!("admin-recovered-{}.token", info.id.as_str()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&path).and_then(|mut file| {
        use std::io::Write;
        writeln!(file, "{bearer}")?;
        file.sync_all()
    });
    engine
        .record_audit(AuditEvent {
            sequence: 0,
            at: Timestamp::now(),
            token: Some(info.id.clone()),
            role: Some(AccessRole::Admin),
            rpc: "capsight.cli/TokenRecover".into(),
            subjects: vec![info.id.as_str().to_owned()],
            outcome: "OK".into(),
            source: None,
            count: 1,
        })
        .await
        .map_err(|e| e.to_string())?;
    engine.close().await.map_err(|e| e.to_string())?;
    written.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!(
        "created admin token {} (start the server again to use it)",
        info.id.as_str()
    );
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

async fn run_token(args: TokenArgs) -> Result<ExitCode, String> {
    if let TokenAction::Recover { data_dir } = args.action {
        return recover_admin(data_dir).await;
    }
    let token = args.client.token()?;
    let channel = args.client.connect().await?;
    let auth = BearerToken::new(&token).map_err(|e| e.to_string())?;
    let mut client = AccessServiceClient::with_interceptor(channel, auth);
    let status = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
    match args.action {
        TokenAction::Create {
            role,
            teams,
            person,
            description,
            ttl_secs,
        } => {
            let created = client
                .create_token(pb::CreateTokenRequest {
                    role: role.to_pb().into(),
                    team_ids: teams,
                    person_id: person.unwrap_or_default(),
                    description,
                    ttl_seconds: ttl_secs,
                })
                .await
                .map_err(status)?
                .into_inner();
            if let Some(info) = &created.info {
                eprintln!("created {}", describe(info));
            }
            println!("{}", created.token);
        }
        TokenAction::List => {
            println!(
                "{:<18} {:<8} {:<8} {:<24} times (UTC)  description",
                "ID", "ROLE", "STATE", "SCOPE"
            );
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_tokens(pb::ListTokensRequest {
                        page_size: 1000,
                        page_token,
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                page.tokens.iter().for_each(|t| println!("{}", describe(t)));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        TokenAction::Revoke { token_id } => {
            let revoked = client
                .revoke_token(pb::RevokeTokenRequest { token_id })
                .await
                .map_err(status)?
                .into_inner();
            if let Some(info) = &revoked.info {
                println!("revoked {}", describe(info));
            }
        }
        // Handled before connecting; kept here so that every action has its arm.
        TokenAction::Recover { data_dir } => return recover_admin(data_dir).await,
    }
    Ok(ExitCode::SUCCESS)
}

fn write_demo(args: DemoArgs) -> Result<ExitCode, String> {
    let org = DemoOrg::generate(&args.shape.config());
    import::write_org_csv(&org, &args.out).map_err(|e| e.to_string())?;
    println!(
        "wrote {} skills, {} roles, {} teams, {} people, {} assessments to {}",
        org.skills.len(),
        org.roles.len(),
        org.teams.len(),
        org.people.len(),
        org.assessments.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn client_options_are_accepted_before_or_after_the_subcommand() {
        for args in [
            &[
                "capsight",
                "token",
                "--server",
                "http://h:1",
                "--token-file",
                "t",
                "list",
            ][..],
            &[
                "capsight",
                "token",
                "list",
                "--server",
                "http://h:1",
                "--token-file",
                "t",
            ][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Token(token) = cli.command else {
                panic!("not a token command");
            };
            assert_eq!(token.client.server, "http://h:1");
            assert_eq!(token.client.token_file, PathBuf::from("t"));
        }
    }
}
