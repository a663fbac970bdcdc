//! The CSV importer's client at enterprise size: `capsight demo` writes a 100,000-person
//! organisation as CSV, a release server starts on an empty store, and `capsight import`
//! loads it, then loads it again (every row already stored; the server's directory is
//! read first for the checks). Reports each run's time and the import process's peak
//! resident memory (VmHWM, polled from /proc) against the 200 MB budget.
//!
//! `cargo bench --bench import` (`-- --people N`; without `--bench`, a 500-person smoke
//! run).

mod support;

use std::time::{Duration, Instant};

use support::{arg, proc_status, serve};

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let people = if smoke { 500 } else { arg("--people", 100_000) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(people));
}

async fn bench(people: usize) {
    let temp = tempfile::tempdir().expect("temp dir");
    let csv = temp.path().join("csv");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_capsight"))
        .args(["demo", "--demo-people", &people.to_string(), "--out"])
        .arg(&csv)
        .output()
        .expect("capsight demo");
    assert!(made.status.success(), "{made:?}");
    let rows = std::fs::read_to_string(csv.join("assessments.csv"))
        .expect("assessments.csv")
        .lines()
        .count()
        - 1;
    let bytes = std::fs::metadata(csv.join("assessments.csv")).map_or(0, |m| m.len());
    println!(
        "{people} people, {rows} assessments ({:.0} MB of assessments.csv)",
        bytes as f64 / 1e6
    );
    let data = temp.path().join("data");
    let (_server, address) = serve(&data, &[]).await;
    let token_file = data.join(capsight::server::ADMIN_TOKEN_FILE);
    for run in ["first import", "re-import (all stored)"] {
        let started = Instant::now();
        let mut import = tokio::process::Command::new(env!("CARGO_BIN_EXE_capsight"))
            .arg("import")
            .args(["--server", &format!("http://{address}")])
            .arg("--token-file")
            .arg(&token_file)
            .args(
                [
                    "--skills",
                    "--roles",
                    "--teams",
                    "--people",
                    "--assessments",
                ]
                .iter()
                .flat_map(|flag| {
                    let file = format!("{}.csv", flag.trim_start_matches("--"));
                    [
                        std::ffi::OsString::from(flag),
                        csv.join(file).into_os_string(),
                    ]
                }),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("capsight import");
        let pid = import.id().expect("pid");
        let mut peak_kib = 0;
        let status = loop {
            peak_kib = peak_kib.max(proc_status(pid, "VmHWM:"));
            match tokio::time::timeout(Duration::from_millis(20), import.wait()).await {
                Ok(status) => break status.expect("status"),
                Err(_) => continue,
            }
        };
        assert!(status.success(), "{run}: import failed ({status})");
        let elapsed = started.elapsed().as_secs_f64();
        let peak_mb = peak_kib as f64 * 1024.0 / 1e6;
        println!(
            "{run}: {elapsed:.1} s ({:.0} assessments/s), client peak RSS {peak_mb:.0} MB \
             (budget 200 MB: {})",
            rows as f64 / elapsed,
            if peak_mb < 200.0 { "PASS" } else { "MISS" }
        );
    }
}
