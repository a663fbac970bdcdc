//! A cluster checkpoint's copy against a plain backup of the same store:
//! `cargo bench --bench checkpoint`.
//!
//! A checkpoint seals each person's key under their cluster key (`Store::write_checkpoint`);
//! this measures what that adds to the copy, which runs on the writer (writes wait for
//! it). A store of `CHECKPOINT_PEOPLE` (100,000) people, each with a cluster key; each run
//! times one backup and one checkpoint; medians of `CHECKPOINT_RUNS` (5) runs, with
//! min–max, and the ratio of the medians. `cargo test` runs a smoke pass of 1,000 people.

use std::collections::HashMap;
use std::time::Instant;

use capsight::domain::{Availability, Person, PersonId, RoleId, TeamId, Text};
use capsight::store::{Store, StoreOptions};

mod support;
use support::env;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let people = if smoke {
        1_000
    } else {
        env("CHECKPOINT_PEOPLE", 100_000)
    };
    let runs = if smoke { 1 } else { env("CHECKPOINT_RUNS", 5) };
    let temp = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(
        &temp.path().join("store"),
        &StoreOptions::default(),
        |_, _| {},
    )
    .expect("store")
    .store;
    let (team, role) = (TeamId::parse("t").unwrap(), RoleId::parse("r").unwrap());
    for chunk in (0..people).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<Person> = chunk
            .iter()
            .map(|i| Person {
                id: PersonId::parse(&format!("person-{i:06}")).unwrap(),
                display_name: Text::name(&format!("Person {i}")).unwrap(),
                team: team.clone(),
                role: role.clone(),
                target_role: None,
                availability: Availability::parse(1.0).unwrap(),
            })
            .collect();
        let keys: HashMap<PersonId, [u8; 32]> = batch
            .iter()
            .map(|p| (p.id.clone(), capsight::store::new_log_key().expect("key")))
            .collect();
        store.put_people_keyed(&batch, &keys).expect("people");
        store.flush().expect("flush");
    }
    let (mut backups, mut checkpoints) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let path = temp.path().join(format!("backup-{run}"));
        let started = Instant::now();
        store.write_backup(&path, 0).expect("backup");
        backups.push(started.elapsed().as_secs_f64() * 1e3);
        std::fs::remove_file(&path).expect("remove");
        let path = temp.path().join(format!("checkpoint-{run}"));
        let started = Instant::now();
        store.write_checkpoint(&path, 0).expect("checkpoint");
        checkpoints.push(started.elapsed().as_secs_f64() * 1e3);
        std::fs::remove_file(&path).expect("remove");
    }
    let (backup, b_min, b_max) = summary(backups);
    let (checkpoint, c_min, c_max) = summary(checkpoints);
    println!(
        "{people} people, {runs} runs: backup {backup:.0} ms ({b_min:.0}–{b_max:.0}), \
         checkpoint {checkpoint:.0} ms ({c_min:.0}–{c_max:.0}); checkpoint/backup {:.2}",
        checkpoint / backup
    );
}
