//! Enterprise-size benchmark: every rpc of every service against a 100,000-person
//! organisation (500 skills, ~5M assessments) served by the release binary.
//!
//! The organisation is built once through the normal write path and kept in
//! `target/scale-<people>x<skills>/` between runs. Each run restarts the server on it
//! (start-up to SERVING, to the organisation's archetypes and to every insight the server
//! precomputes at start are timed),
//! then for every rpc: the first call after a write, the median of 5 calls with nothing
//! changed, and the first call after an erasure; each answer's size, and whether a client
//! with gRPC's default 4 MiB receive limit could read it. The first call ever on the
//! restarted server (cold) is shown beside; the rest are medians (min–max) of `--rounds`
//! rounds (default 3), each with its own writes and erasures. Budgets: first call < 1 s (a
//! result one version old may be served at once and says so), unchanged < 100 ms, answer
//! ≤ 4 MiB. Prints a table with PASS/MISS per row and the server's resident memory:
//! sampled every 250 ms through the rounds (steady = the median of the samples, budget
//! 2 GiB; 90th percentile; peak), at the end and 20 s after (once refreshes are done).
//! `CAPSIGHT_SCALE_RSS=1` also prints the memory after each call.
//!
//! `cargo bench --bench scale -- [--people 100000 --skills 500 --rounds 3]`. Without `--bench` (as
//! under `cargo test --all-targets`) it runs a 2,000-person smoke size in a temporary
//! directory.

mod support;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capsight::api::BearerToken;
use capsight::api::pb;
use prost::Message;
use support::Authed;
use tokio::process::Child;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The release binary serving `data` (loading the demo organisation when it is empty),
/// its address once it logs that it serves, and the time that took.
async fn serve(data: &Path, people: usize, skills: usize) -> (Child, String, Duration) {
    let started = Instant::now();
    let (people, skills) = (people.to_string(), skills.to_string());
    let extra = ["--demo-people", &people, "--demo-skills", &skills];
    let (child, address) = support::serve_demo(data, &extra).await;
    (child, address, started.elapsed())
}

/// `VmHWM` (peak) and `VmRSS` of process `pid`, in MiB.
fn rss(pid: u32) -> (f64, f64) {
    let mib = |name| support::proc_status(pid, name) as f64 / 1024.0;
    (mib("VmHWM:"), mib("VmRSS:"))
}

type Call = Pin<Box<dyn Future<Output = Result<usize, tonic::Status>>>>;

/// An rpc by name, and how to make one call of it.
type Named = (&'static str, Box<dyn Fn() -> Call>);

/// The clients, one per service, on one connection with the admin token.
#[derive(Clone)]
struct Clients {
    directory: pb::directory_service_client::DirectoryServiceClient<Authed>,
    capability: pb::capability_service_client::CapabilityServiceClient<Authed>,
    insights: pb::org_insights_service_client::OrgInsightsServiceClient<Authed>,
    talent: pb::talent_service_client::TalentServiceClient<Authed>,
    access: pb::access_service_client::AccessServiceClient<Authed>,
    ingest: pb::ingest_service_client::IngestServiceClient<Authed>,
}

/// An answer's encoded size (the limit a client enforces applies to it).
fn size<T: Message>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<usize, tonic::Status> {
    r.map(|r| r.into_inner().encoded_len())
}

/// Every rpc asked as a dashboard, planner or review would, by name.
fn calls(c: &Clients, person: &str) -> Vec<Named> {
    let p = person.to_owned();
    let mut out: Vec<Named> = Vec::new();
    macro_rules! rpc {
        ($name:expr, $client:ident, $method:ident, $request:expr) => {{
            let c = c.clone();
            let p = p.clone();
            out.push((
                $name,
                Box::new(move || {
                    let mut client = c.$client.clone();
                    let _ = &p;
                    let request = $request(&p);
                    Box::pin(async move { size(client.$method(request).await) })
                }),
            ));
        }};
    }
    rpc!(
        "DirectoryService/GetPerson",
        directory,
        get_person,
        |p: &String| {
            pb::GetPersonRequest {
                person_id: p.clone(),
            }
        }
    );
    rpc!(
        "DirectoryService/ListPeople (page of 1,000)",
        directory,
        list_people,
        |_: &String| {
            pb::ListPeopleRequest {
                page_size: 1000,
                ..Default::default()
            }
        }
    );
    rpc!(
        "DirectoryService/ListTeams (page of 1,000)",
        directory,
        list_teams,
        |_: &String| {
            pb::ListTeamsRequest {
                page_size: 1000,
                ..Default::default()
            }
        }
    );
    rpc!(
        "DirectoryService/ListSkills",
        directory,
        list_skills,
        |_: &String| {
            pb::ListSkillsRequest {
                page_size: 1000,
                ..Default::default()
            }
        }
    );
    rpc!(
        "DirectoryService/ListRoles",
        directory,
        list_roles,
        |_: &String| { pb::ListRolesRequest::default() }
    );
    rpc!(
        "DirectoryService/ExportPerson",
        directory,
        export_person,
        |p: &String| {
            pb::ExportPersonRequest {
                person_id: p.clone(),
            }
        }
    );
    rpc!(
        "CapabilityService/GetPersonProfile",
        capability,
        get_person_profile,
        |p: &String| {
            pb::GetPersonProfileRequest {
                person_id: p.clone(),
            }
        }
    );
    rpc!(
        "CapabilityService/GetPersonGaps",
        capability,
        get_person_gaps,
        |p: &String| {
            pb::GetPersonGapsRequest {
                person_id: p.clone(),
                ..Default::default()
            }
        }
    );
    rpc!(
        "CapabilityService/GetTeamCapability, team",
        capability,
        get_team_capability,
        |_: &String| {
            pb::GetTeamCapabilityRequest {
                team_id: "team-00001".into(),
                ..Default::default()
            }
        }
    );
    rpc!(
        "CapabilityService/GetTeamCapability, department (CELLS, first page)",
        capability,
        get_team_capability,
        |_: &String| {
            pb::GetTeamCapabilityRequest {
                team_id: "dept-01".into(),
                include_subteams: true,
                ..Default::default()
            }
        }
    );
    rpc!(
        "CapabilityService/FindExperts, organisation",
        capability,
        find_experts,
        |_: &String| {
            pb::FindExpertsRequest {
                requirements: vec![pb::SkillRequirement {
                    skill_id: "rust".into(),
                    min_level: 3.0,
                }],
                ..Default::default()
            }
        }
    );
    rpc!(
        "CapabilityService/GetSkillRisks, department",
        capability,
        get_skill_risks,
        |_: &String| {
            pb::GetSkillRisksRequest {
                team_id: "dept-01".into(),
            }
        }
    );
    rpc!(
        "CapabilityService/GetCapabilityTrend, department",
        capability,
        get_capability_trend,
        |_: &String| {
            // The year to the start of the day, by month, for three skills (as a
            // dashboard asks: the same question all day, so a kept answer serves it).
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64 / 86_400 * 86_400);
            pb::GetCapabilityTrendRequest {
                team_id: "dept-01".into(),
                skill_ids: vec!["rust".into(), "sql".into(), "kubernetes".into()],
                from: Some(prost_types::Timestamp {
                    seconds: now - 365 * 86_400,
                    nanos: 0,
                }),
                to: Some(prost_types::Timestamp {
                    seconds: now,
                    nanos: 0,
                }),
                interval_days: 30,
            }
        }
    );
    rpc!(
        "OrgInsightsService/GetSkillArchetypes",
        insights,
        get_skill_archetypes,
        |_: &String| { pb::GetSkillArchetypesRequest::default() }
    );
    rpc!(
        "OrgInsightsService/GetSkillArchetypes, members (first page)",
        insights,
        get_skill_archetypes,
        |_: &String| {
            pb::GetSkillArchetypesRequest {
                include_members: true,
                ..Default::default()
            }
        }
    );
    for (name, group_by) in [
        (
            "OrgInsightsService/GetOrgSkillPatterns by department",
            pb::GroupBy::Department,
        ),
        (
            "OrgInsightsService/GetOrgSkillPatterns by team (first page)",
            pb::GroupBy::Team,
        ),
        (
            "OrgInsightsService/GetOrgSkillPatterns by role",
            pb::GroupBy::Role,
        ),
        (
            "OrgInsightsService/GetOrgSkillPatterns by archetype",
            pb::GroupBy::Archetype,
        ),
    ] {
        rpc!(name, insights, get_org_skill_patterns, move |_: &String| {
            pb::GetOrgSkillPatternsRequest {
                group_by: group_by.into(),
                ..Default::default()
            }
        });
    }
    rpc!(
        "TalentService/FindMentors",
        talent,
        find_mentors,
        |p: &String| {
            pb::FindMentorsRequest {
                person_id: p.clone(),
                ..Default::default()
            }
        }
    );
    rpc!(
        "TalentService/PlanMentoring, department",
        talent,
        plan_mentoring,
        |_: &String| {
            pb::PlanMentoringRequest {
                scope_team_id: "dept-01".into(),
                ..Default::default()
            }
        }
    );
    rpc!(
        "TalentService/PlanMentoring, organisation (latest)",
        talent,
        plan_mentoring,
        |_: &String| {
            pb::PlanMentoringRequest {
                result_policy: pb::ResultPolicy::Latest.into(),
                ..Default::default()
            }
        }
    );
    rpc!(
        "TalentService/ListMentorships",
        talent,
        list_mentorships,
        |_: &String| { pb::ListMentorshipsRequest::default() }
    );
    rpc!(
        "TalentService/ComposeTeam, organisation",
        talent,
        compose_team,
        |_: &String| {
            pb::ComposeTeamRequest {
                requirements: ["rust", "kubernetes", "sql", "api-design"]
                    .iter()
                    .map(|s| pb::TeamSkillRequirement {
                        skill_id: (*s).into(),
                        min_level: 3.5,
                        ..Default::default()
                    })
                    .collect(),
                max_size: 6,
                ..Default::default()
            }
        }
    );
    rpc!(
        "AccessService/ListTokens",
        access,
        list_tokens,
        |_: &String| { pb::ListTokensRequest::default() }
    );
    rpc!(
        "AccessService/ListAuditEvents",
        access,
        list_audit_events,
        |_: &String| { pb::ListAuditEventsRequest::default() }
    );
    out
}

/// One call: its time and its answer's size (or why it failed).
async fn once(call: &dyn Fn() -> Call) -> (Duration, Result<usize, tonic::Status>) {
    let started = Instant::now();
    let result = call().await;
    (started.elapsed(), result)
}

fn cell(
    (time, result): &(Duration, Result<usize, tonic::Status>),
    budget: Duration,
) -> (String, bool) {
    match result {
        Ok(bytes) => {
            let ok = *time < budget && *bytes <= 4 << 20;
            (format!("{:.0} ms", time.as_secs_f64() * 1e3), ok)
        }
        Err(status) => (format!("{:?}", status.code()), false),
    }
}

/// Median (min–max) of `runs` and whether the median is within `budget` and every
/// answer fit in 4 MiB.
fn summary(
    runs: &mut [(Duration, Result<usize, tonic::Status>)],
    budget: Duration,
) -> (String, bool) {
    if let Some(failed) = runs.iter().find(|r| r.1.is_err()) {
        return cell(failed, budget);
    }
    runs.sort_by_key(|r| r.0);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = runs[runs.len() / 2].0;
    let fits = runs.iter().all(|r| matches!(r.1, Ok(n) if n <= 4 << 20));
    let text = match runs.len() {
        1 => format!("{:.0} ms", ms(median)),
        _ => format!(
            "{:.0} ms ({:.0}–{:.0})",
            ms(median),
            ms(runs[0].0),
            ms(runs[runs.len() - 1].0)
        ),
    };
    (text, median < budget && fits)
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let people = support::arg("--people", if smoke { 2_000 } else { 100_000 });
    let skills = support::arg("--skills", if smoke { 40 } else { 500 });
    let rounds = support::arg("--rounds", if smoke { 1 } else { 3 });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let temp = tempfile::tempdir().expect("temp dir");
        let data: PathBuf = match smoke {
            true => temp.path().join("data"),
            false => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join(format!("scale-{people}x{skills}")),
        };
        if !data.join("db").exists() {
            let building = Instant::now();
            let (mut child, _, _) = serve(&data, people, skills).await;
            println!("built the organisation in {:.0} s", building.elapsed().as_secs_f64());
            let _ = child.kill().await;
        }
        // Start-up on the existing store.
        let (child, address, to_serving) = serve(&data, people, skills).await;
        let pid = child.id().expect("pid");
        let token = std::fs::read_to_string(data.join(capsight::server::ADMIN_TOKEN_FILE))
            .expect("admin token")
            .trim()
            .to_owned();
        let channel = Channel::from_shared(format!("http://{address}"))
            .expect("address")
            .connect()
            .await
            .expect("connect");
        let auth = BearerToken::new(&token).expect("token");
        let with = |c: Channel| InterceptedService::new(c, auth.clone());
        let clients = Clients {
            directory: pb::directory_service_client::DirectoryServiceClient::new(with(channel.clone())),
            capability: pb::capability_service_client::CapabilityServiceClient::new(with(channel.clone())),
            insights: pb::org_insights_service_client::OrgInsightsServiceClient::new(with(channel.clone())),
            talent: pb::talent_service_client::TalentServiceClient::new(with(channel.clone())),
            access: pb::access_service_client::AccessServiceClient::new(with(channel.clone())),
            ingest: pb::ingest_service_client::IngestServiceClient::new(with(channel.clone())),
        };
        let ready = Instant::now();
        let _ = clients
            .insights
            .clone()
            .get_skill_archetypes(pb::GetSkillArchetypesRequest {
                result_policy: pb::ResultPolicy::Current.into(),
                ..Default::default()
            })
            .await;
        let to_insights = to_serving + ready.elapsed();
        // The rest the server precomputes at start: patterns by each grouping and the
        // organisation's mentoring plan (each asked for the current data, so a call
        // waits for a computation under way).
        for group_by in [
            pb::GroupBy::Department,
            pb::GroupBy::Role,
            pb::GroupBy::Archetype,
            pb::GroupBy::Team,
        ] {
            let _ = clients
                .insights
                .clone()
                .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
                    group_by: group_by.into(),
                    result_policy: pb::ResultPolicy::Current.into(),
                    page_size: 1,
                    ..Default::default()
                })
                .await;
        }
        let _ = clients
            .talent
            .clone()
            .plan_mentoring(pb::PlanMentoringRequest {
                result_policy: pb::ResultPolicy::Current.into(),
                page_size: 1,
                ..Default::default()
            })
            .await;
        let to_all = to_serving + ready.elapsed();
        let person = "p-000042";
        let calls = calls(&clients, person);
        let mut writes = 0u32;
        let mut write = || {
            writes += 1;
            let mut ingest = clients.ingest.clone();
            let id = format!("scale-{}-{writes}", std::process::id());
            async move {
                ingest
                    .record_assessments(pb::RecordAssessmentsRequest {
                        assessments: vec![support::rust_rating(id, "p-000007".into())],
                    })
                    .await
                    .expect("write");
            }
        };
        // The first call ever (cold), then rounds of: first calls after a write,
        // unchanged (5 each), first calls after an erasure.
        let mut cold = Vec::new();
        // CAPSIGHT_SCALE_RSS=1: the server's resident memory after each first call, to
        // see which answers hold memory.
        let trace = std::env::var_os("CAPSIGHT_SCALE_RSS").is_some();
        for (name, call) in &calls {
            cold.push(once(call.as_ref()).await);
            if trace {
                eprintln!("rss after the first {name}: {:.0} MiB", rss(pid).1);
            }
        }
        let rows = calls.len();
        // Resident memory through the rounds (writes, erasures and the refreshes they
        // start), every 250 ms: its median is the steady figure.
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = {
            let sampling = Arc::clone(&sampling);
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    samples.push(rss(pid).1);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                samples
            })
        };
        let (mut first, mut cached, mut erased) =
            (vec![Vec::new(); rows], vec![Vec::new(); rows], vec![Vec::new(); rows]);
        let mut erasures = 0;
        for _ in 0..rounds {
            for (i, (name, call)) in calls.iter().enumerate() {
                write().await;
                first[i].push(once(call.as_ref()).await);
                if trace {
                    eprintln!("rss after a write and {name}: {:.0} MiB", rss(pid).1);
                }
            }
            for (i, (_, call)) in calls.iter().enumerate() {
                for _ in 0..5 {
                    cached[i].push(once(call.as_ref()).await);
                }
            }
            for (i, (_, call)) in calls.iter().enumerate() {
                // The kept organisation loses the people erased: earlier runs took
                // some of the last ids already.
                loop {
                    erasures += 1;
                    let victim = format!("p-{:06}", people + 1 - erasures);
                    let request = pb::DeletePersonRequest { person_id: victim };
                    match clients.directory.clone().delete_person(request).await {
                        Ok(_) => break,
                        Err(status) if status.code() == tonic::Code::NotFound => continue,
                        Err(status) => panic!("erasure: {status:?}"),
                    }
                }
                erased[i].push(once(call.as_ref()).await);
                if trace {
                    eprintln!("rss after an erasure and {}: {:.0} MiB", calls[i].0, rss(pid).1);
                }
            }
        }
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        let mut samples = sampler.await.expect("sampler");
        samples.sort_by(f64::total_cmp);
        let steady = samples.get(samples.len() / 2).copied().unwrap_or_default();
        let p90 = samples.get(samples.len() * 9 / 10).copied().unwrap_or_default();
        let (peak, end) = rss(pid);
        // The refreshes the last writes and erasures started run on for a few seconds:
        // memory once they are done.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (_, settled) = rss(pid);
        println!(
            "\n{people} people × {skills} skills; start-up to SERVING {:.1} s, to the organisation's archetypes {:.1} s (budgets 5 s, 10 s); to every insight precomputed at start (archetypes, patterns by each grouping, the organisation's mentoring plan) {:.1} s",
            to_serving.as_secs_f64(),
            to_insights.as_secs_f64(),
            to_all.as_secs_f64()
        );
        println!(
            "server RSS through the mix (every 250 ms, {} samples): median {steady:.0} MiB (budget 2 GiB: {}), 90th percentile {p90:.0} MiB, peak {peak:.0} MiB; at its end {end:.0} MiB, 20 s later {settled:.0} MiB\n",
            samples.len(),
            if steady <= 2048.0 { "PASS" } else { "MISS" }
        );
        println!(
            "| rpc | answer | cold (first ever) | first after a write (< 1 s) | unchanged (< 100 ms) | first after an erasure (< 1 s) | verdict |"
        );
        println!("|---|---|---|---|---|---|---|");
        let mut misses = 0;
        for (i, (name, _)) in calls.iter().enumerate() {
            let (z, _) = cell(&cold[i], Duration::from_secs(1));
            let (a, a_ok) = summary(&mut first[i], Duration::from_secs(1));
            let (b, b_ok) = summary(&mut cached[i], Duration::from_millis(100));
            let (c, c_ok) = summary(&mut erased[i], Duration::from_secs(1));
            let bytes = match &cold[i].1 {
                Ok(n) => format!("{:.1} KiB", *n as f64 / 1024.0),
                Err(s) => format!("{:?}", s.code()),
            };
            let pass = a_ok && b_ok && c_ok;
            misses += usize::from(!pass);
            println!(
                "| {name} | {bytes} | {z} | {a} | {b} | {c} | {} |",
                if pass { "PASS" } else { "MISS" }
            );
        }
        println!("\n{} of {} rows PASS", calls.len() - misses, calls.len());
        drop(child);
    });
}
