//! Overload: thousands of concurrent heavy calls against `capsight serve --demo` (a child
//! process on loopback), while a health check and a cheap read keep asking. Shows what
//! admission control and the job runner promise: bounded memory and threads, health and
//! cheap reads that stay fast, excess heavy calls shed at once with RESOURCE_EXHAUSTED,
//! and no work left burning CPU once the load stops. Stops by itself.
//!
//! The heavy mix varies its parameters (archetypes for k = 2..50 and every department,
//! patterns by every grouping and department, mentoring plans per department with
//! varied capacities, team composition) and a writer moves the data version every 2 s,
//! so that caches cannot answer everything.
//!
//! `cargo bench --bench overload` (env: OVERLOAD_CALLERS, default 2,000; OVERLOAD_SECS,
//! default 30). Client and server share this machine's cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use capsight::api::BearerToken;
use capsight::api::pb;
use capsight::api::pb::capability_service_client::CapabilityServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use capsight::api::pb::org_insights_service_client::OrgInsightsServiceClient;
use capsight::api::pb::talent_service_client::TalentServiceClient;
use tokio::sync::Mutex;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

mod support;

use support::{Authed, env};

/// Latencies in microseconds.
#[derive(Default)]
struct Latencies(Mutex<Vec<u64>>);

impl Latencies {
    async fn add(&self, d: Duration) {
        self.0.lock().await.push(d.as_micros() as u64);
    }

    async fn summary(&self) -> String {
        let mut v = self.0.lock().await.clone();
        if v.is_empty() {
            return "none".into();
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
        format!(
            "n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
            v.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

/// The process's resident memory (KiB) and thread count, from /proc.
fn rss_and_threads(pid: u32) -> (u64, u64) {
    (
        support::proc_status(pid, "VmRSS:"),
        support::proc_status(pid, "Threads:"),
    )
}

/// CPU time (user + system) the process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

async fn heavy_call(
    clients: &(
        OrgInsightsServiceClient<Authed>,
        TalentServiceClient<Authed>,
    ),
    n: u64,
) -> Result<(), tonic::Status> {
    let (mut insights, mut talent) = (clients.0.clone(), clients.1.clone());
    let department = format!("dept-{:02}", n % 10 + 1);
    match n % 4 {
        0 => insights
            .get_skill_archetypes(pb::GetSkillArchetypesRequest {
                scope_team_id: department,
                k: Some(2 + (n / 4 % 49) as u32),
                result_policy: pb::ResultPolicy::Current.into(),
                ..Default::default()
            })
            .await
            .map(drop),
        1 => insights
            .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
                group_by: [
                    pb::GroupBy::Department,
                    pb::GroupBy::Team,
                    pb::GroupBy::Role,
                    pb::GroupBy::Archetype,
                ][(n / 4 % 4) as usize]
                    .into(),
                scope_team_id: department,
                trend_days: Some(30 + (n / 16 % 300) as u32),
                result_policy: pb::ResultPolicy::Current.into(),
                ..Default::default()
            })
            .await
            .map(drop),
        2 => talent
            .plan_mentoring(pb::PlanMentoringRequest {
                scope_team_id: department,
                capacity_per_mentor: Some(1 + (n / 4 % 5) as u32),
                max_mentors_per_mentee: Some(1 + (n / 20 % 3) as u32),
                ..Default::default()
            })
            .await
            .map(drop),
        _ => talent
            .compose_team(pb::ComposeTeamRequest {
                requirements: ["rust", "sql", "kubernetes"]
                    .iter()
                    .map(|s| pb::TeamSkillRequirement {
                        skill_id: (*s).into(),
                        min_level: 2.0 + (n % 3) as f64 * 0.5,
                        min_people: 1,
                        weight: 1.0,
                    })
                    .collect(),
                max_size: 5,
                pool_team_ids: vec![department],
                ..Default::default()
            })
            .await
            .map(drop),
    }
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let callers = if smoke {
        20
    } else {
        env("OVERLOAD_CALLERS", 2_000)
    };
    let secs = if smoke { 1 } else { env("OVERLOAD_SECS", 30) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(callers, secs));
}

async fn run(callers: u64, secs: u64) {
    let server = support::start_demo(&[]).await;
    let mut child = server.child;
    let (address, token) = (server.address, server.token);
    let pid = child.id().expect("pid");
    let auth = BearerToken::new(&token).expect("ascii");
    let connect = || async {
        Channel::from_shared(format!("http://{address}"))
            .expect("url")
            .connect()
            .await
            .expect("connect")
    };
    // Warm the organisation-wide archetypes, as a first dashboard visit would.
    let first = connect().await;
    OrgInsightsServiceClient::new(InterceptedService::new(first.clone(), auth.clone()))
        .get_skill_archetypes(pb::GetSkillArchetypesRequest::default())
        .await
        .expect("archetypes");
    let (rss_idle, threads_idle) = rss_and_threads(pid);

    let running = Arc::new(AtomicBool::new(true));
    let (ok, shed, other) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let shed_latency = Arc::new(Latencies::default());
    let mut tasks = Vec::new();
    // 16 connections: each carries at most 256 concurrent streams.
    let mut channels = Vec::new();
    for _ in 0..16 {
        channels.push(connect().await);
    }
    for i in 0..callers {
        let channel = channels[(i % 16) as usize].clone();
        let clients = (
            OrgInsightsServiceClient::new(InterceptedService::new(channel.clone(), auth.clone())),
            TalentServiceClient::new(InterceptedService::new(channel, auth.clone())),
        );
        let (running, ok, shed, other, shed_latency) = (
            Arc::clone(&running),
            Arc::clone(&ok),
            Arc::clone(&shed),
            Arc::clone(&other),
            Arc::clone(&shed_latency),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = i * 7919;
            while running.load(Ordering::Relaxed) {
                let started = Instant::now();
                match heavy_call(&clients, n).await {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(s) if s.code() == Code::ResourceExhausted => {
                        shed_latency.add(started.elapsed()).await;
                        // A well-behaved client honours the retry hint.
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        shed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(_) => other.fetch_add(1, Ordering::Relaxed),
                };
                n += 1;
            }
        }));
    }

    let health_latency = Arc::new(Latencies::default());
    let cheap_latency = Arc::new(Latencies::default());
    let probe = first.clone();
    let (probe_running, health_l, cheap_l, probe_auth) = (
        Arc::clone(&running),
        Arc::clone(&health_latency),
        Arc::clone(&cheap_latency),
        auth.clone(),
    );
    let probes = tokio::spawn(async move {
        let mut health = HealthClient::new(probe.clone());
        let mut capability =
            CapabilityServiceClient::new(InterceptedService::new(probe, probe_auth));
        let mut n = 0u64;
        while probe_running.load(Ordering::Relaxed) {
            let started = Instant::now();
            let checked = tokio::time::timeout(
                Duration::from_secs(5),
                health.check(HealthCheckRequest::default()),
            )
            .await;
            health_l
                .add(if matches!(checked, Ok(Ok(_))) {
                    started.elapsed()
                } else {
                    Duration::from_secs(5)
                })
                .await;
            let started = Instant::now();
            let gaps = tokio::time::timeout(
                Duration::from_secs(5),
                capability.get_person_gaps(pb::GetPersonGapsRequest {
                    person_id: format!("p-{:06}", n % 2_000 + 1),
                    ..Default::default()
                }),
            )
            .await;
            cheap_l
                .add(if matches!(gaps, Ok(Ok(_))) {
                    started.elapsed()
                } else {
                    Duration::from_secs(5)
                })
                .await;
            n += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let writer_running = Arc::clone(&running);
    let mut ingest = IngestServiceClient::new(InterceptedService::new(first, auth.clone()));
    let writer = tokio::spawn(async move {
        let mut n = 0u32;
        while writer_running.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = ingest
                .record_assessments(pb::RecordAssessmentsRequest {
                    assessments: vec![support::rust_rating(
                        format!("overload-{n}"),
                        format!("p-{:06}", n % 2_000 + 1),
                    )],
                })
                .await;
            n += 1;
        }
    });

    let (mut peak_rss, mut peak_threads) = (rss_idle, threads_idle);
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let (rss, threads) = rss_and_threads(pid);
        peak_rss = peak_rss.max(rss);
        peak_threads = peak_threads.max(threads);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.store(false, Ordering::Relaxed);
    let stopped = Instant::now();
    let cpu_at_stop = cpu_seconds(pid);
    for task in tasks {
        task.abort();
    }
    probes.abort();
    writer.abort();
    drop(channels);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_at_2s = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_at_3s = cpu_seconds(pid);

    println!("overload: {callers} concurrent heavy callers for {secs} s on the 2,000-person demo");
    println!(
        "  heavy calls: {} answered, {} shed (RESOURCE_EXHAUSTED), {} other errors",
        ok.load(Ordering::Relaxed),
        shed.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed)
    );
    println!("  shed latency:   {}", shed_latency.summary().await);
    println!("  health check:   {}", health_latency.summary().await);
    println!("  GetPersonGaps:  {}", cheap_latency.summary().await);
    println!(
        "  server RSS: idle {} MiB, peak {} MiB; threads: idle {threads_idle}, peak {peak_threads}",
        rss_idle / 1024,
        peak_rss / 1024
    );
    println!(
        "  server CPU after the load stopped: {:.2} s in the first 2 s, {:.2} s in the next 1 s (measured {:.1} s after stop)",
        cpu_at_2s - cpu_at_stop,
        cpu_at_3s - cpu_at_2s,
        stopped.elapsed().as_secs_f64()
    );
    let _ = child.kill().await;
}
