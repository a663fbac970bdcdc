//! Mentoring-plan benchmark at enterprise size: loads the demo organisation (100,000
//! people × 500 skills by default) into an engine, then times the computation behind
//! `PlanMentoring` for the whole organisation and one department (what the
//! background job runs on a cold cache), with the size of each problem, the solver
//! used, the certified gap to the optimum and the greedy baseline. Medians (min–max).
//!
//! `cargo bench --bench mentoring -- --bench [--people 100000 --skills 500 --repeats 3]`.
//! Without `--bench` (as under `cargo test --all-targets`) it runs one small smoke size.

mod support;

use std::sync::Arc;
use std::time::Instant;

use capsight::demo::{DemoConfig, DemoOrg};
use capsight::domain::TeamId;
use capsight::engine::insights::{people_in, plan_mentoring};
use capsight::engine::{Cancel, Engine, EngineOptions};

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let config = DemoConfig {
        people: support::arg("--people", if smoke { 3_000 } else { 100_000 }),
        skills: support::arg("--skills", if smoke { 60 } else { 500 }),
        ..DemoConfig::default()
    };
    let repeats = support::arg("--repeats", if smoke { 1 } else { 3 });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let org = DemoOrg::generate(&config);
    let temp = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(temp.path(), &EngineOptions::default()).expect("engine"));
    let loading = Instant::now();
    runtime
        .block_on(capsight::server::load_org(&engine, org))
        .expect("load");
    println!(
        "{} people × {} skills loaded in {:.1} s",
        config.people,
        config.skills,
        loading.elapsed().as_secs_f64()
    );
    let snapshot = engine.snapshot();
    let scopes: [(&str, Option<TeamId>); 2] = [
        ("whole organisation", None),
        ("department dept-01", TeamId::parse("dept-01").ok()),
    ];
    println!(
        "| scope | people | candidate pairs | solver | mentees matched | total gain | bound | gap | greedy | time median (min–max) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, scope) in scopes {
        let people = people_in(&snapshot, scope.as_ref()).expect("scope");
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..repeats {
            let started = Instant::now();
            let plan =
                plan_mentoring(&snapshot, &people, 3, 1, false, &Cancel::new()).expect("plan");
            times.push(started.elapsed().as_secs_f64());
            last = Some(plan);
        }
        let plan = last.expect("one run");
        assert!(plan.total <= plan.upper_bound + 1e-9);
        assert!(plan.total + 1e-9 >= plan.greedy_total * 0.99);
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {} | {} | {} | {} | {:.1} | {:.1} | {:.3} % | {:.1} | {:.2} s ({:.2}–{:.2}) |",
            people.len(),
            plan.candidate_pairs,
            if plan.exact { "exact flow" } else { "auction" },
            {
                let mut mentees: Vec<_> = plan.pairs.iter().map(|p| &p.mentee).collect();
                mentees.dedup();
                mentees.len()
            },
            plan.total,
            plan.upper_bound,
            100.0 * (plan.upper_bound - plan.total) / plan.upper_bound.max(1e-9),
            plan.greedy_total,
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
        );
    }
}
