//! Streaming-ingest benchmark over loopback: 1M assessments in batches of 1,000 on one
//! pipelined `StreamAssessments` call, against a real server in this process.
//! Reports assessments/s acknowledged-durable, the same run with acknowledgement before
//! flush (what durability costs), and bytes on disk per assessment. Each mode runs
//! several times, alternating, on a fresh data directory; medians are reported.
//!
//! `cargo bench --bench ingest` (env: INGEST_TOTAL, INGEST_BATCH, INGEST_RUNS, and
//! INGEST_EVIDENCE: characters of evidence text per assessment, default 0, which the
//! store seals under the assessed person's key).

use std::time::{Duration, Instant};

use capsight::api::BearerToken;
use capsight::api::pb;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use capsight::server::{self, ServerConfig};
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel that sends the admin token with every call.
type Authed = InterceptedService<Channel, BearerToken>;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const PEOPLE: usize = 1_000;
const SKILLS: usize = 50;

fn batches(total: usize, batch: usize, evidence: usize) -> Vec<pb::StreamAssessmentsRequest> {
    let sources = [
        pb::AssessmentSource::Self_,
        pb::AssessmentSource::Peer,
        pb::AssessmentSource::ObjectiveTest,
        pb::AssessmentSource::Manager,
    ];
    (0..total.div_ceil(batch))
        .map(|b| pb::StreamAssessmentsRequest {
            sequence: b as u64,
            assessments: (b * batch..((b + 1) * batch).min(total))
                .map(|i| pb::Assessment {
                    id: format!("bench-{i:08}"),
                    person_id: format!("p{:05}", i % PEOPLE),
                    skill_id: format!("s{:03}", (i / PEOPLE) % SKILLS),
                    score: (i % 11) as f64 / 2.0,
                    source: sources[i % sources.len()].into(),
                    assessor_id: String::new(),
                    assessed_at: Some(prost_types::Timestamp {
                        seconds: 1_700_000_000 + (i as i64 % 50_000_000),
                        nanos: 0,
                    }),
                    evidence: if evidence == 0 {
                        String::new()
                    } else {
                        format!("{:<evidence$}", format!("observed in review {i}:"))
                    },
                })
                .collect(),
        })
        .collect()
}

async fn seed(channel: Authed) {
    let mut d = DirectoryServiceClient::new(channel);
    let skills = (0..SKILLS)
        .map(|s| pb::Skill {
            id: format!("s{s:03}"),
            name: format!("Skill {s}"),
            category: pb::SkillCategory::Technical.into(),
            ..Default::default()
        })
        .collect();
    d.upsert_skills(pb::UpsertSkillsRequest { skills })
        .await
        .expect("skills");
    d.upsert_roles(pb::UpsertRolesRequest {
        roles: vec![pb::Role {
            id: "r".into(),
            name: "R".into(),
            requirements: vec![],
        }],
    })
    .await
    .expect("roles");
    d.upsert_teams(pb::UpsertTeamsRequest {
        teams: vec![pb::Team {
            id: "t".into(),
            name: "T".into(),
            ..Default::default()
        }],
    })
    .await
    .expect("teams");
    let people = (0..PEOPLE)
        .map(|p| pb::Person {
            id: format!("p{p:05}"),
            display_name: format!("Person {p}"),
            team_id: "t".into(),
            role_id: "r".into(),
            availability: 1.0,
            ..Default::default()
        })
        .collect();
    d.upsert_people(pb::UpsertPeopleRequest { people })
        .await
        .expect("people");
}

struct Run {
    elapsed: Duration,
    bytes_on_disk: u64,
}

async fn run_once(durable: bool, requests: Vec<pb::StreamAssessmentsRequest>, total: usize) -> Run {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let mut config = ServerConfig::new(data_dir.clone());
    config.engine.ack_before_flush = !durable;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let channel = loop {
        if let Ok(c) = Channel::from_shared(address.clone())
            .expect("url")
            .connect()
            .await
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let token_file = data_dir.join(capsight::server::ADMIN_TOKEN_FILE);
    let token = loop {
        // Written at start-up, before serving; the TCP connect can win that race.
        match std::fs::read_to_string(&token_file) {
            Ok(token) if !token.trim().is_empty() => break token,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    let channel = InterceptedService::new(channel, BearerToken::new(&token).expect("ascii"));
    seed(channel.clone()).await;
    let mut ingest = IngestServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);

    let started = Instant::now();
    let mut acks = ingest
        .stream_assessments(tokio_stream::iter(requests))
        .await
        .expect("stream")
        .into_inner();
    let mut accepted = 0usize;
    while let Some(ack) = acks.next().await {
        accepted += ack.expect("ack").accepted as usize;
    }
    let elapsed = started.elapsed();
    assert_eq!(accepted, total, "every assessment acknowledged as accepted");
    let _ = stop.send(());
    server.await.expect("server task").expect("server stopped");
    let bytes_on_disk = dir_size(&data_dir);
    Run {
        elapsed,
        bytes_on_disk,
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run tiny then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total = if smoke {
        5_000
    } else {
        env("INGEST_TOTAL", 1_000_000)
    };
    let batch = env("INGEST_BATCH", 1_000);
    let runs = if smoke { 1 } else { env("INGEST_RUNS", 3) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let requests = batches(total, batch, env("INGEST_EVIDENCE", 0));
    let mut durable = Vec::new();
    let mut unflushed = Vec::new();
    let mut bytes = Vec::new();
    for run in 0..runs {
        for mode in [true, false] {
            let result = runtime.block_on(run_once(mode, requests.clone(), total));
            let rate = total as f64 / result.elapsed.as_secs_f64();
            println!(
                "run {run} {:<22} {total} in {:>7.3}s = {rate:>9.0} assessments/s, {:.1} bytes on disk/assessment",
                if mode {
                    "durable (flush→ack)"
                } else {
                    "ack-before-flush"
                },
                result.elapsed.as_secs_f64(),
                result.bytes_on_disk as f64 / total as f64
            );
            if mode {
                durable.push(rate);
                bytes.push(result.bytes_on_disk as f64 / total as f64);
            } else {
                unflushed.push(rate);
            }
        }
    }
    let (d, u) = (median(durable), median(unflushed));
    println!(
        "median of {runs}: durable {d:.0}/s, ack-before-flush {u:.0}/s, durable/unflushed = {:.2}, {:.1} bytes on disk per assessment",
        d / u,
        median(bytes)
    );
}
