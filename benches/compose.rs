//! Team-composition benchmark: `ComposeTeam` in-process on a generated organisation
//! (default 10,000 candidates), 30 requirements, team size 8 — median request time over
//! repeated requests, with and without source-team protection — and the heuristic's
//! objective against the exact branch-and-bound on sub-pools small enough for it.
//!
//! `cargo bench --bench compose` (env: COMPOSE_PEOPLE, COMPOSE_RUNS). Without `--bench`
//! (as under `cargo test --all-targets`) it runs a small smoke size.

use std::time::{Duration, Instant};

use capsight::analytics::teams::{TeamCandidate, TeamProblem, TeamRequirement, exact, heuristic};
use capsight::demo::{DemoConfig, DemoOrg};
use capsight::domain::Scope;
use capsight::engine::compose::{SkillAsk, TeamAsk, compose_team};
use capsight::engine::{Engine, EngineOptions};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let people = if smoke {
        1_000
    } else {
        env("COMPOSE_PEOPLE", 10_000)
    };
    let runs = if smoke { 3 } else { env("COMPOSE_RUNS", 21) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let temp = tempfile::tempdir().expect("temp dir");
    let org = DemoOrg::generate(&DemoConfig {
        seed: 42,
        people,
        skills: 40,
        ..DemoConfig::default()
    });
    let skills: Vec<_> = org.skills.iter().map(|s| s.id.clone()).collect();
    let engine = runtime.block_on(async {
        let engine =
            Engine::open(&temp.path().join("data"), &EngineOptions::default()).expect("open");
        capsight::server::load_org(&engine, org)
            .await
            .expect("load");
        engine
    });
    let snapshot = engine.snapshot();

    let mut rng = StdRng::seed_from_u64(7);
    let mut chosen = skills.clone();
    chosen.shuffle(&mut rng);
    let requirements: Vec<SkillAsk> = chosen
        .iter()
        .take(30)
        .map(|skill| SkillAsk {
            skill: skill.clone(),
            level: rng.random_range(3.0..4.0),
            people: rng.random_range(1..=2),
            weight: rng.random_range(0.5..2.0),
        })
        .collect();
    let ask = TeamAsk {
        requirements: requirements.clone(),
        min_size: 8,
        max_size: 8,
        min_availability: 0.0,
        alternatives: 0,
        ..TeamAsk::default()
    };
    for protect in [false, true] {
        let ask = TeamAsk {
            protect,
            ..ask.clone()
        };
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let started = Instant::now();
            let result = compose_team(&snapshot, &ask, &Scope::Everything).expect("compose");
            times.push(started.elapsed());
            last = Some(result);
        }
        let result = last.expect("a run");
        println!(
            "ComposeTeam, pool {}, 30 requirements, size 8, protect={protect}: median {:.1?} \
             over {runs}; coverage {:.3}, objective {:.4}, upper bound {:.4} (gap {:.1}%)",
            result.pool_size,
            median(times),
            result.best.coverage,
            result.best.objective,
            result.upper_bound,
            (result.upper_bound - result.best.objective) / result.upper_bound * 100.0
        );
    }

    // Heuristic vs exact on random 25-person sub-pools with the same requirements.
    let capability = &snapshot.capability;
    let all: Vec<_> = snapshot.directory.people().values().collect();
    let columns: Vec<usize> = requirements
        .iter()
        .filter_map(|r| capability.axis().column(r.skill.as_str()))
        .collect();
    let (mut ratios, mut exact_times, mut heuristic_times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..if smoke { 5 } else { 50 } {
        let sample: Vec<_> = all.choose_multiple(&mut rng, 25).collect();
        let problem = TeamProblem {
            requirements: requirements
                .iter()
                .map(|r| TeamRequirement {
                    level: r.level,
                    people: r.people,
                    weight: r.weight,
                })
                .collect(),
            candidates: sample
                .iter()
                .map(|p| TeamCandidate {
                    levels: columns
                        .iter()
                        .map(|&c| capability.row(&p.id).map_or(f32::NAN, |r| r.levels[c]))
                        .collect(),
                    ..TeamCandidate::default()
                })
                .collect(),
            min_size: 8,
            max_size: 8,
            ..TeamProblem::default()
        };
        let started = Instant::now();
        let h = heuristic(&problem, &[]).expect("heuristic");
        heuristic_times.push(started.elapsed());
        let started = Instant::now();
        if let Some(e) = exact(&problem, None) {
            exact_times.push(started.elapsed());
            ratios.push(h.objective / e.objective);
        }
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "25-person sub-pools: exact finished on {} of them; heuristic/optimum median {:.4}, \
         worst {:.4}; median time heuristic {:.1?}, exact {:.1?}",
        ratios.len(),
        ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN),
        ratios.first().copied().unwrap_or(f64::NAN),
        median(heuristic_times),
        if exact_times.is_empty() {
            Duration::ZERO
        } else {
            median(exact_times)
        },
    );
    runtime.block_on(engine.close()).expect("close");
}
