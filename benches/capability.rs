//! Capability benchmark on a generated organisation (default 100,000 people × 500
//! skills, millions of assessments): snapshot build from the store, incremental update
//! cost per ingested batch, in-process `GetTeamCapability` for a ~13-person team and a
//! whole department, and peak resident memory.
//!
//! `cargo bench --bench capability` (env: CAP_PEOPLE, CAP_SKILLS, CAP_QUERIES).
//! Without `--bench` (as under `cargo test --all-targets`) it runs a small smoke size.

use std::time::{Duration, Instant};

use capsight::demo::{DemoConfig, DemoOrg};
use capsight::domain::{Assessment, AssessmentId, Level, Source, Team, TeamId, Text, Timestamp};
use capsight::engine::queries::team_capability;
use capsight::engine::{Engine, EngineOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p) as usize]
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn time_queries(
    engine: &Engine,
    team: &TeamId,
    subteams: bool,
    n: usize,
) -> (Duration, Duration, usize) {
    let snapshot = engine.snapshot();
    let now = Timestamp::now();
    let mut samples = Vec::with_capacity(n);
    let mut members = 0;
    for _ in 0..n {
        let started = Instant::now();
        let view = team_capability(&snapshot, team, subteams, &[], now).expect("team view");
        samples.push(started.elapsed());
        members = view.members.len();
    }
    (
        percentile(samples.clone(), 0.5),
        percentile(samples, 0.99),
        members,
    )
}

// The allocator the capsight binary ships with (see src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let people = if smoke {
        2_000
    } else {
        env("CAP_PEOPLE", 100_000)
    };
    let skills = if smoke { 60 } else { env("CAP_SKILLS", 500) };
    let queries = if smoke { 20 } else { env("CAP_QUERIES", 1_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("data");

    let started = Instant::now();
    let org = DemoOrg::generate(&DemoConfig {
        seed: 42,
        people,
        skills,
        ..DemoConfig::default()
    });
    let assessments = org.assessments.len();
    println!(
        "generated {people} people × {skills} skills, {assessments} assessments in {:.1?}",
        started.elapsed()
    );
    let probe_person = org.people[0].id.clone();
    let probe_skill = org.skills[0].id.clone();

    runtime.block_on(async {
        let engine = Engine::open(&dir, &EngineOptions::default()).expect("open");
        let started = Instant::now();
        capsight::server::load_org(&engine, org)
            .await
            .expect("load");
        let load = started.elapsed();
        println!(
            "loaded through the engine in {load:.1?} = {:.0} assessments/s durable",
            assessments as f64 / load.as_secs_f64()
        );
        engine.close().await.expect("close");
    });

    // Snapshot build: open the store and rebuild every index, median of 3.
    let mut builds = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let opened = Engine::open(&dir, &EngineOptions::default()).expect("reopen");
        builds.push(started.elapsed());
        runtime.block_on(opened.close()).expect("close");
    }
    let build = percentile(builds, 0.5);
    println!(
        "snapshot build from the store: median {build:.2?} = {:.0} assessments/s",
        assessments as f64 / build.as_secs_f64()
    );
    let engine = Engine::open(&dir, &EngineOptions::default()).expect("reopen");

    let team = TeamId::parse("team-00001").expect("team id");
    let (p50, p99, members) = time_queries(&engine, &team, false, queries);
    println!("GetTeamCapability in-process, {members}-person team: p50 {p50:.1?}, p99 {p99:.1?}");
    // A 2,000-person division: the demo has departments and teams only, so the first
    // teams of dept-01 are moved under a new unit through the normal write path.
    let division = TeamId::parse("div-01").expect("division id");
    let mut units = vec![Team {
        id: division.clone(),
        name: Text::name("Division 1").expect("name"),
        parent: Some(TeamId::parse("dept-01").expect("department id")),
        manager: None,
    }];
    {
        let snapshot = engine.snapshot();
        let directory = &snapshot.directory;
        let mut people = 0;
        for team in directory
            .teams()
            .values()
            .filter(|t| t.parent.as_ref().is_some_and(|p| p.as_str() == "dept-01"))
        {
            if people >= 2_000.min(directory.people().len() / 10) {
                break;
            }
            people += directory.members(team.id.as_str()).count();
            units.push(Team {
                parent: Some(division.clone()),
                ..team.clone()
            });
        }
    }
    runtime
        .block_on(engine.upsert_teams(units))
        .expect("division");
    let (p50, p99, members) = time_queries(&engine, &division, true, (queries / 5).max(5));
    println!(
        "GetTeamCapability in-process, {members}-person division: p50 {p50:.1?}, p99 {p99:.1?}"
    );
    let department = TeamId::parse("dept-01").expect("department id");
    let (p50, p99, members) = time_queries(&engine, &department, true, (queries / 20).max(5));
    println!(
        "GetTeamCapability in-process, {members}-person department: p50 {p50:.1?}, p99 {p99:.1?}"
    );

    // Incremental update: batches of 1,000 new assessments through the writer (durable).
    runtime.block_on(async {
        let mut samples = Vec::new();
        for batch in 0..if smoke { 3 } else { 20 } {
            let items: Vec<(u32, Assessment)> = (0..1_000u32)
                .map(|i| {
                    let assessment = Assessment {
                        id: AssessmentId::parse(&format!("inc-{batch}-{i}")).expect("id"),
                        person: probe_person.clone(),
                        skill: probe_skill.clone(),
                        score: Level::parse(3.0).expect("level"),
                        source: Source::Peer,
                        assessor: None,
                        assessed_at: Timestamp::now(),
                        evidence: Text::default(),
                    };
                    (i, assessment)
                })
                .collect();
            let started = Instant::now();
            engine.record_assessments(items).await.expect("record");
            samples.push(started.elapsed());
        }
        let p50 = percentile(samples, 0.5);
        println!("incremental update, batch of 1,000 (validate, append, fsync, index, publish): p50 {p50:.2?}");
        engine.close().await.expect("close");
    });
    if let Some(rss) = peak_rss_mib() {
        println!("peak resident memory: {rss:.0} MiB");
    }
}
