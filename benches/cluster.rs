//! Cluster mode against a single node, on this machine: `cargo bench --bench cluster`.
//!
//! - ingest: acknowledged assessments per second, batches of `CLUSTER_BATCH` (1,000)
//!   from `CLUSTER_WRITERS` (4) concurrent clients for `CLUSTER_SECONDS` (5) — a single
//!   node on sled (flush, then acknowledge) vs three nodes over a three-server JetStream
//!   cluster (replicas 3: quorum-durable in NATS and applied, flushed, on the node that
//!   answers), the clients spread over the three nodes;
//! - reads: GetTeamCapability of one team from `CLUSTER_READERS` (16) concurrent
//!   clients, one node vs the three cluster nodes.
//!
//! Everything (three NATS servers, three nodes, the clients) shares the machine's cores,
//! so on two cores this shows the cost of replication, not scaling (README, "Running a
//! cluster"). Medians of `CLUSTER_RUNS` (3) runs, with min–max. Needs `nats-server`
//! (`.ci/run` installs it); `cargo test` runs a one-second smoke pass.

use std::time::{Duration, Instant};

use capsight::api::pb;
use capsight::api::pb::capability_service_client::CapabilityServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;

#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "../tests/support/serving.rs"]
mod serving;

use cluster::{Authed, Nats, Node, first_admin_token, nats_server};

const PEOPLE: usize = 200;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn people() -> Vec<String> {
    (0..PEOPLE).map(|i| format!("p{i:04}")).collect()
}

/// Acknowledged assessments per second from `writers` clients over `channels`.
async fn ingest(
    channels: &[Authed],
    writers: usize,
    batch: usize,
    seconds: u64,
    run: usize,
) -> f64 {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let mut client = IngestServiceClient::new(channels[w % channels.len()].clone());
            tokio::spawn(async move {
                let mut acknowledged = 0usize;
                let mut n = 0usize;
                while Instant::now() < until {
                    let items = (0..batch)
                        .map(|i| {
                            let id = format!("r{run}-w{w}-{}", n + i);
                            serving::assessment(id, &format!("p{:04}", (n + i) % PEOPLE), "")
                        })
                        .collect();
                    n += batch;
                    let answer = client
                        .record_assessments(pb::RecordAssessmentsRequest { assessments: items })
                        .await
                        .expect("ingest")
                        .into_inner();
                    acknowledged += answer.accepted as usize;
                }
                acknowledged
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// GetTeamCapability calls per second from `readers` clients over `channels`.
async fn reads(channels: &[Authed], readers: usize, seconds: u64) -> f64 {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..readers)
        .map(|r| {
            let mut client = CapabilityServiceClient::new(channels[r % channels.len()].clone());
            tokio::spawn(async move {
                let mut calls = 0usize;
                while Instant::now() < until {
                    client
                        .get_team_capability(pb::GetTeamCapabilityRequest {
                            team_id: "bench".into(),
                            ..Default::default()
                        })
                        .await
                        .expect("read");
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("reader");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn summary(name: &str, values: &mut [f64], digits: usize, unit: &str) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "{name:<38} median {median:>9.digits$}{unit}  (min {:.digits$}, max {:.digits$}, {} runs)",
        values[0],
        values[values.len() - 1],
        values.len()
    );
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let Some(binary) = nats_server() else {
        return;
    };
    let seconds = if smoke {
        1
    } else {
        env("CLUSTER_SECONDS", 5) as u64
    };
    let runs = if smoke { 1 } else { env("CLUSTER_RUNS", 3) };
    let (writers, batch, readers) = (
        env("CLUSTER_WRITERS", 4),
        env("CLUSTER_BATCH", 1_000),
        env("CLUSTER_READERS", 16),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let root = tempfile::tempdir().expect("temp dir");
        // One node alone on sled.
        let (single, single_channel, _) = serving::start(&root.path().join("single")).await;
        serving::seed_org(single_channel.clone(), "bench", &people()).await;
        // Three nodes over three NATS servers.
        let nats = Nats::start(binary, root.path());
        let urls = nats.urls();
        let mut nodes: Vec<Node> = (0..3)
            .map(|i| Node::new(root.path(), &format!("node-{i}"), Vec::new()))
            .collect();
        for node in &mut nodes {
            node.launch(&urls, false).await;
        }
        let token = first_admin_token(&nodes);
        let mut cluster_channels = Vec::new();
        for node in &nodes {
            cluster_channels.push(node.channel(&token).await);
        }
        serving::seed_org(cluster_channels[0].clone(), "bench", &people()).await;

        let (mut single_in, mut cluster_in, mut single_reads, mut cluster_reads) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut ratios = Vec::new();
        for run in 0..runs {
            let one = ingest(
                std::slice::from_ref(&single_channel),
                writers,
                batch,
                seconds,
                run,
            )
            .await;
            let three = ingest(&cluster_channels, writers, batch, seconds, run).await;
            println!("run {run}: ingest single {one:.0}/s, cluster {three:.0}/s");
            ratios.push(three / one);
            single_in.push(one);
            cluster_in.push(three);
            let one = reads(std::slice::from_ref(&single_channel), readers, seconds).await;
            let three = reads(&cluster_channels, readers, seconds).await;
            println!("run {run}: reads single {one:.0}/s, three nodes {three:.0}/s");
            single_reads.push(one);
            cluster_reads.push(three);
        }
        summary("ingest, single node (sled)", &mut single_in, 0, "/s");
        summary(
            "ingest, 3 nodes over JetStream R3",
            &mut cluster_in,
            0,
            "/s",
        );
        summary("ingest, cluster / single (same run)", &mut ratios, 2, "x");
        summary("GetTeamCapability, 1 node", &mut single_reads, 0, "/s");
        summary("GetTeamCapability, 3 nodes", &mut cluster_reads, 0, "/s");
        serving::stop(single).await;
        for node in &mut nodes {
            node.kill().await;
        }
    });
}
