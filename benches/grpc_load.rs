//! End-to-end gRPC throughput of `GetTeamCapability` under concurrent load on loopback,
//! as a ratio to a no-op rpc (the health check) on the same server in the same run.
//! Client and server share this machine's cores, so only the ratio is meaningful.
//!
//! `cargo bench --bench grpc_load` (env: LOAD_SECS per round, LOAD_CONCURRENCY, LOAD_ROUNDS).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use capsight::api::BearerToken;
use capsight::api::pb;
use capsight::api::pb::capability_service_client::CapabilityServiceClient;
use capsight::demo::DemoConfig;
use capsight::server::{self, ServerConfig};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy)]
enum Rpc {
    Health,
    TeamCapability(pb::MatrixLayout),
}

/// Calls `rpc` from `concurrency` tasks for `secs`; returns completed calls per second.
async fn rate(channels: &[Channel], token: &str, rpc: Rpc, concurrency: u64, secs: f64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let channel = channels[task as usize % channels.len()].clone();
        let auth = BearerToken::new(token).expect("token");
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            let mut health = HealthClient::new(channel.clone());
            let mut capability = CapabilityServiceClient::with_interceptor(channel, auth);
            let mut n = task;
            while Instant::now() < deadline {
                n += 1;
                let ok = match rpc {
                    Rpc::Health => health.check(HealthCheckRequest::default()).await.is_ok(),
                    Rpc::TeamCapability(layout) => {
                        let team_id = format!("team-{:05}", n % 150 + 1);
                        let skill_ids = std::env::var("LOAD_SKILLS")
                            .map(|s| s.split(",").map(String::from).collect())
                            .unwrap_or_default();
                        let request = pb::GetTeamCapabilityRequest {
                            team_id,
                            skill_ids,
                            layout: layout.into(),
                            ..Default::default()
                        };
                        capability.get_team_capability(request).await.is_ok()
                    }
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
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
            channels.push(Channel::from_shared(address.clone()).expect("url").connect().await.expect("connect"));
        }
        let cells = Rpc::TeamCapability(pb::MatrixLayout::Cells);
        let dense = Rpc::TeamCapability(pb::MatrixLayout::Dense);
        // Warm-up, not measured: connections, caches, and the demo's start-up analyses.
        for rpc in [Rpc::Health, cells, dense] {
            rate(&channels, &token, rpc, concurrency, secs.min(1.0)).await;
        }
        let mut rates: [Vec<f64>; 5] = Default::default();
        for round in 0..rounds {
            let h = rate(&channels, &token, Rpc::Health, concurrency, secs).await;
            let c = rate(&channels, &token, cells, concurrency, secs).await;
            let d = rate(&channels, &token, dense, concurrency, secs).await;
            println!(
                "round {round}: health {h:.0}/s; GetTeamCapability cells {c:.0}/s (ratio {:.2}), dense {d:.0}/s (ratio {:.2})",
                c / h,
                d / h
            );
            for (series, value) in rates.iter_mut().zip([h, c, d, c / h, d / h]) {
                series.push(value);
            }
        }
        let [h, c, d, rc, rd] = rates.map(median);
        println!(
            "median of {rounds} ({concurrency} concurrent calls, 13-person teams): health {h:.0}/s; \
             GetTeamCapability cells layout {c:.0}/s, ratio {rc:.2}; dense layout {d:.0}/s, ratio {rd:.2}"
        );
        let _ = stop.send(());
        server.await.expect("server task").expect("server stopped");
    });
}
