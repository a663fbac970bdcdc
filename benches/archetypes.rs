//! Archetypes benchmark: the time to the first archetypes answer (automatic k) on the
//! planted-occupations demo: open a store, load the organisation, then run the
//! computation a cold cache runs for the first `GetSkillArchetypes` (the effective levels
//! the engine holds, imputation, the k search, the final assignment, the map). Reports k, ARI against the planted
//! occupations and the medians (min–max) over several runs.
//!
//! `cargo bench --bench archetypes -- --bench [--people 1200 --skills 320
//!  --occupations 30 --repeats 5]`. Without `--bench` (as under
//! `cargo test --all-targets`) it runs one small smoke size.

mod support;

use std::sync::Arc;
use std::time::Instant;

use capsight::analytics::archetypes::adjusted_rand_index;
use capsight::demo::{DemoConfig, DemoOrg};
use capsight::engine::insights::compute_archetypes;
use capsight::engine::{Cancel, Engine, EngineOptions, KChoice};

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let config = DemoConfig {
        people: support::arg("--people", if smoke { 400 } else { 1_200 }),
        skills: support::arg("--skills", if smoke { 200 } else { 320 }),
        occupations: support::arg("--occupations", if smoke { 10 } else { 30 }),
        ..DemoConfig::default()
    };
    let repeats = support::arg("--repeats", if smoke { 1 } else { 5 });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let org = DemoOrg::generate(&config);
    let planted: std::collections::HashMap<String, usize> = org
        .people
        .iter()
        .zip(&org.planted_archetypes)
        .map(|(p, &a)| (p.id.to_string(), a))
        .collect();
    let temp = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(temp.path(), &EngineOptions::default()).expect("engine"));
    if let Err(e) = runtime.block_on(capsight::server::load_org(&engine, org)) {
        panic!("load: {e:?} ({:?})", engine.storage_failure());
    }
    let snapshot = engine.snapshot();
    let mut times = Vec::new();
    let mut last = (0, 0.0);
    for _ in 0..repeats {
        // What a cold cache runs for the first answer.
        let started = Instant::now();
        let view =
            compute_archetypes(&snapshot, None, KChoice::AUTO, &Cancel::new()).expect("archetypes");
        times.push(started.elapsed().as_secs_f64());
        let truth: Vec<usize> = view.people.iter().map(|p| planted[p.as_str()]).collect();
        last = (
            view.set.archetypes.len(),
            adjusted_rand_index(&truth, &view.set.assignments),
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "archetypes of {} people × {} skills, {} planted occupations: k = {}, ARI {:.3}; first answer median {:.2} s (min {:.2}, max {:.2}, {} runs)",
        config.people,
        config.skills,
        config.occupations,
        last.0,
        last.1,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
    if smoke {
        assert!(last.1 > 0.9, "ARI {}", last.1);
    }
}
