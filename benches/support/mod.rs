//! What the benchmarks share: a `capsight serve` child on loopback, command-line and
//! /proc helpers. Each bench uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A channel that sends the admin token with every call.
pub type Authed = tonic::service::interceptor::InterceptedService<
    tonic::transport::Channel,
    capsight::api::BearerToken,
>;

/// The number in environment variable `name`, or `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A peer rating of Rust for `person`, with id `id` (what the benches write).
pub fn rust_rating(id: String, person: String) -> capsight::api::pb::Assessment {
    use capsight::api::pb;
    pb::Assessment {
        id,
        person_id: person,
        skill_id: "rust".into(),
        score: 3.0,
        source: pb::AssessmentSource::Peer.into(),
        assessed_at: Some(prost_types::Timestamp {
            seconds: 1_780_000_000,
            nanos: 0,
        }),
        ..Default::default()
    }
}

/// A running `capsight serve --demo` child, its address and admin token.
pub struct Server {
    /// The process (killed when dropped).
    pub child: Child,
    /// host:port it listens on.
    pub address: String,
    /// The admin token it wrote.
    pub token: String,
    /// Keeps the data directory alive.
    _data: tempfile::TempDir,
}

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A number field of `/proc/<pid>/status` (`"VmRSS:"` in KiB, `"Threads:"`…), or 0.
pub fn proc_status(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Starts the release binary as `serve --demo` with `extra` arguments on a fresh data
/// directory, and waits until it serves.
pub async fn start_demo(extra: &[&str]) -> Server {
    let temp = tempfile::tempdir().expect("temp dir");
    let data: PathBuf = temp.path().join("data");
    let (child, address) = serve_demo(&data, extra).await;
    let token = std::fs::read_to_string(data.join(capsight::server::ADMIN_TOKEN_FILE))
        .expect("admin token")
        .trim()
        .to_owned();
    Server {
        child,
        address,
        token,
        _data: temp,
    }
}

/// The release binary as `serve --demo` with `extra` arguments on `data` (the demo is
/// loaded only into an empty store), once it logs that it serves, and its address.
pub async fn serve_demo(data: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let args: Vec<&str> = std::iter::once("--demo")
        .chain(extra.iter().copied())
        .collect();
    serve(data, &args).await
}

/// The release binary as `serve` with `args` on `data`, once it logs that it serves,
/// and its address.
pub async fn serve(data: &std::path::Path, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_capsight"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn,capsight::server=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn capsight");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = loop {
        let line = lines
            .next_line()
            .await
            .expect("log")
            .expect("server exited");
        if let Some(at) = line.find("127.0.0.1:")
            && line.contains("capsight serving")
        {
            let end = line[at..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                .map_or(line.len(), |e| at + e);
            break line[at..end].to_owned();
        }
    };
    // Keep draining the log so that the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address)
}
