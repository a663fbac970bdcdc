//! End-to-end gRPC throughput of `GetTeamCapability` under concurrent load on loopback,
//! as a ratio to a no-op rpc (the health check) on the same server in the same run.
//! Client and server share this machine's cores, so only the ratio is meaningful.
//!
//! Two load generators, each measuring health and `GetTeamCapability` (CELLS and DENSE
//! matrix layouts) in turn:
//! - **raw**: sends pre-encoded requests and counts the response bytes without decoding
//!   them, as h2load does, so that the client costs about the same for every rpc and the
//!   ratio reflects the server's work;
//! - **typed**: the generated tonic client, which also decodes every response on the same
//!   cores (a ~12 KB message for a 13-person team).
//!
//! `cargo bench --bench grpc_load` (env: LOAD_SECS per round, LOAD_CONCURRENCY, LOAD_ROUNDS).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use capsight::api::BearerToken;
use capsight::api::pb;
use capsight::api::pb::capability_service_client::CapabilityServiceClient;
use capsight::demo::DemoConfig;
use capsight::server::{self, ServerConfig};
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Teams the calls cycle through (the demo's 13-person teams).
const TEAMS: u64 = 150;

#[derive(Clone, Copy, PartialEq)]
enum Rpc {
    Health,
    TeamCapability(pb::MatrixLayout),
}

#[derive(Clone, Copy, PartialEq)]
enum Client {
    Raw,
    Typed,
}

fn team_request(n: u64, layout: pb::MatrixLayout) -> pb::GetTeamCapabilityRequest {
    pb::GetTeamCapabilityRequest {
        team_id: format!("team-{:05}", n % TEAMS + 1),
        skill_ids: std::env::var("LOAD_SKILLS")
            .map(|s| s.split(',').map(String::from).collect())
            .unwrap_or_default(),
        layout: layout.into(),
        ..Default::default()
    }
}

/// The raw load generator's codec: requests go out pre-encoded, responses are counted, not
/// decoded.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = usize;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = usize;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<usize>, Status> {
        let size = src.remaining();
        src.advance(size);
        Ok(Some(size))
    }
}

/// One call through the raw client; returns the response's size in bytes.
async fn raw_call(
    grpc: &mut tonic::client::Grpc<Channel>,
    path: &'static str,
    body: Bytes,
    bearer: Option<&MetadataValue<tonic::metadata::Ascii>>,
) -> Result<usize, Status> {
    let mut request = tonic::Request::new(body);
    if let Some(bearer) = bearer {
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
    }
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(path);
    Ok(grpc.unary(request, path, RawCodec).await?.into_inner())
}

/// Calls `rpc` from `concurrency` tasks for `secs`; returns completed calls per second.
async fn rate(
    channels: &[Channel],
    token: &str,
    (client, rpc): (Client, Rpc),
    concurrency: u64,
    secs: f64,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    // Pre-encoded requests for the raw client, one per team.
    let bodies: Arc<Vec<Bytes>> = Arc::new(match rpc {
        Rpc::Health => vec![HealthCheckRequest::default().encode_to_vec().into()],
        Rpc::TeamCapability(layout) => (0..TEAMS)
            .map(|n| team_request(n, layout).encode_to_vec().into())
            .collect(),
    });
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse().expect("header");
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let channel = channels[task as usize % channels.len()].clone();
        let auth = BearerToken::new(token).expect("token");
        let (done, bodies, bearer) = (Arc::clone(&done), Arc::clone(&bodies), bearer.clone());
        tasks.push(tokio::spawn(async move {
            let mut raw = tonic::client::Grpc::new(channel.clone());
            let mut health = HealthClient::new(channel.clone());
            let mut capability = CapabilityServiceClient::with_interceptor(channel, auth);
            let mut n = task;
            while Instant::now() < deadline {
                n += 1;
                let body = bodies[(n % bodies.len() as u64) as usize].clone();
                let ok = match (client, rpc) {
                    (Client::Raw, Rpc::Health) => {
                        let path = "/grpc.health.v1.Health/Check";
                        raw_call(&mut raw, path, body, None).await.is_ok()
                    }
                    (Client::Raw, Rpc::TeamCapability(_)) => {
                        let path = "/capsight.v1.CapabilityService/GetTeamCapability";
                        let size = raw_call(&mut raw, path, body, Some(&bearer)).await;
                        // A real answer, not an error or an empty team.
                        size.is_ok_and(|s| s > 1_000)
                    }
                    (Client::Typed, Rpc::Health) => {
                        health.check(HealthCheckRequest::default()).await.is_ok()
                    }
                    (Client::Typed, Rpc::TeamCapability(layout)) => capability
                        .get_team_capability(team_request(n, layout))
                        .await
                        .is_ok(),
                };
                assert!(ok, "call failed");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await.expect("load task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// The allocator the capsight binary ships with (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs = if smoke {
        0.3
    } else {
        env("LOAD_SECS", 3) as f64
    };
    let concurrency = if smoke {
        4
    } else {
        env("LOAD_CONCURRENCY", 32)
    };
    let rounds = if smoke { 1 } else { env("LOAD_ROUNDS", 3) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut config = ServerConfig::new(data_dir.clone());
        config.demo = Some(DemoConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(server::run(listener, config, async {
            let _ = stopped.await;
        }));
        let token_file = data_dir.join(server::ADMIN_TOKEN_FILE);
        let token = loop {
            match std::fs::read_to_string(&token_file) {
                Ok(t) if !t.trim().is_empty() => break t.trim().to_owned(),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let mut channels = Vec::new();
        for _ in 0..4 {
            channels.push(
                Channel::from_shared(address.clone())
                    .expect("url")
                    .connect()
                    .await
                    .expect("connect"),
            );
        }
        let cells = Rpc::TeamCapability(pb::MatrixLayout::Cells);
        let dense = Rpc::TeamCapability(pb::MatrixLayout::Dense);
        let series = [
            (Client::Raw, Rpc::Health),
            (Client::Raw, cells),
            (Client::Raw, dense),
            (Client::Typed, Rpc::Health),
            (Client::Typed, cells),
            (Client::Typed, dense),
        ];
        // Warm-up, not measured: connections, caches, and the demo's start-up analyses.
        for s in series {
            rate(&channels, &token, s, concurrency, secs.min(1.0)).await;
        }
        // Per series: rates, then ratios to the same client's health rate in that round.
        let mut rates: [Vec<f64>; 6] = Default::default();
        let mut ratios: [Vec<f64>; 6] = Default::default();
        for round in 0..rounds {
            let measured: Vec<f64> = {
                let mut v = Vec::new();
                for s in series {
                    v.push(rate(&channels, &token, s, concurrency, secs).await);
                }
                v
            };
            for i in 0..series.len() {
                let health = measured[i / 3 * 3];
                rates[i].push(measured[i]);
                ratios[i].push(measured[i] / health);
            }
            println!(
                "round {round}: raw client: health {:.0}/s, cells {:.0}/s ({:.2}), dense {:.0}/s ({:.2}); \
                 typed client: health {:.0}/s, cells {:.0}/s ({:.2}), dense {:.0}/s ({:.2})",
                measured[0],
                measured[1],
                ratios[1][round as usize],
                measured[2],
                ratios[2][round as usize],
                measured[3],
                measured[4],
                ratios[4][round as usize],
                measured[5],
                ratios[5][round as usize],
            );
        }
        let rates = rates.map(median);
        let ratios = ratios.map(median);
        println!("median of {rounds} rounds ({concurrency} concurrent calls, 13-person teams):");
        for (i, client) in ["raw", "typed"].iter().enumerate() {
            let at = 3 * i;
            println!(
                "  {client} client: health {:.0}/s; GetTeamCapability CELLS {:.0}/s, ratio {:.2}; \
                 DENSE {:.0}/s, ratio {:.2}",
                rates[at],
                rates[at + 1],
                ratios[at + 1],
                rates[at + 2],
                ratios[at + 2],
            );
        }
        let _ = stop.send(());
        server.await.expect("server task").expect("server stopped");
    });
}
