//! Reads and erasures must not stall ingest. Against `capsight serve --demo` at
//! enterprise size (a child process on loopback), one writer acknowledges one assessment
//! every 10 ms and a reader asks for a person's profile every 10 ms:
//! - at rest (the baseline);
//! - while organisation-wide patterns are recomputed after a write;
//! - while people are erased one after another.
//!
//! `cargo bench --bench contention` (env: CONTENTION_PEOPLE, default 100,000;
//! CONTENTION_SKILLS, default 500; CONTENTION_ERASURES, default 5; CONTENTION_SERVER_ARGS,
//! server flags, default `--job-nice 10`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use capsight::api::BearerToken;
use capsight::api::pb;
use capsight::api::pb::capability_service_client::CapabilityServiceClient;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use capsight::api::pb::org_insights_service_client::OrgInsightsServiceClient;
use tokio::sync::Mutex;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

mod support;

use support::{Authed, env};

fn summary(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    format!(
        "n={:>4} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        v.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// Ingest and profile latencies measured while `work` runs.
async fn measured<F: std::future::Future<Output = ()>>(
    channel: &Authed,
    people: u64,
    tag: &str,
    work: F,
) -> (Vec<Duration>, Vec<Duration>) {
    let running = Arc::new(AtomicBool::new(true));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let profiles = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (running, acks) = (Arc::clone(&running), Arc::clone(&acks));
        let mut ingest = IngestServiceClient::new(channel.clone());
        let tag = tag.to_owned();
        tokio::spawn(async move {
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                let started = Instant::now();
                ingest
                    .record_assessments(pb::RecordAssessmentsRequest {
                        assessments: vec![support::rust_rating(
                            format!("contention-{tag}-{n}"),
                            format!("p-{:06}", n * 7 % people + 1),
                        )],
                    })
                    .await
                    .expect("ingest");
                acks.lock().await.push(started.elapsed());
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let reader = {
        let (running, profiles) = (Arc::clone(&running), Arc::clone(&profiles));
        let mut capability = CapabilityServiceClient::new(channel.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                let started = Instant::now();
                // A person erased meanwhile is NOT_FOUND: still an answer.
                let _ = capability
                    .get_person_profile(pb::GetPersonProfileRequest {
                        person_id: format!("p-{:06}", n * 13 % people + 1),
                    })
                    .await;
                profiles.lock().await.push(started.elapsed());
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    work.await;
    running.store(false, Ordering::Relaxed);
    let _ = writer.await;
    let _ = reader.await;
    let acks = acks.lock().await.clone();
    let profiles = profiles.lock().await.clone();
    (acks, profiles)
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let people = if smoke {
        300
    } else {
        env("CONTENTION_PEOPLE", 100_000)
    };
    let skills = if smoke {
        40
    } else {
        env("CONTENTION_SKILLS", 500)
    };
    let erasures = if smoke {
        1
    } else {
        env("CONTENTION_ERASURES", 5)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(people, skills, erasures));
}

async fn run(people: u64, skills: u64, erasures: u64) {
    let started = Instant::now();
    let (people_arg, skills_arg) = (people.to_string(), skills.to_string());
    // CONTENTION_SERVER_ARGS: server flags (default "--job-nice 10", the setting for a
    // machine capsight has to itself; "--job-nice 0" for the default).
    let extra =
        std::env::var("CONTENTION_SERVER_ARGS").unwrap_or_else(|_| "--job-nice 10".to_owned());
    let mut args = vec!["--demo-people", &people_arg, "--demo-skills", &skills_arg];
    args.extend(extra.split_whitespace());
    let server = support::start_demo(&args).await;
    let mut child = server.child;
    let (address, token) = (server.address, server.token);
    println!(
        "contention: {people} people x {skills} skills, serving after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let channel = InterceptedService::new(channel, BearerToken::new(&token).expect("ascii"));

    let (acks, profiles) = measured(&channel, people, "rest", async {
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    println!("  at rest:            ingest ack {}", summary(acks));
    println!("                      profile    {}", summary(profiles));

    let mut insights = OrgInsightsServiceClient::new(channel.clone());
    let (acks, profiles) = measured(&channel, people, "patterns", async {
        for group_by in [pb::GroupBy::Department, pb::GroupBy::Role] {
            let asked = Instant::now();
            insights
                .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
                    group_by: group_by.into(),
                    result_policy: pb::ResultPolicy::Current.into(),
                    ..Default::default()
                })
                .await
                .expect("patterns");
            println!(
                "  patterns {group_by:?} computed in {:.1} s",
                asked.elapsed().as_secs_f64()
            );
        }
    })
    .await;
    println!("  patterns refresh:   ingest ack {}", summary(acks));
    println!("                      profile    {}", summary(profiles));

    let mut directory = DirectoryServiceClient::new(channel.clone());
    let (acks, profiles) = measured(&channel, people, "erasure", async {
        for i in 0..erasures {
            let asked = Instant::now();
            directory
                .delete_person(pb::DeletePersonRequest {
                    person_id: format!("p-{:06}", i * 997 % people + 2),
                })
                .await
                .expect("erasure");
            println!(
                "  erasure {i} took {:.0} ms",
                asked.elapsed().as_secs_f64() * 1000.0
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    println!("  erasures:           ingest ack {}", summary(acks));
    println!("                      profile    {}", summary(profiles));
    let _ = child.kill().await;
}
