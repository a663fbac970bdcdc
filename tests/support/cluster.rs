//! A NATS JetStream cluster of three servers and capsight nodes in cluster mode, all on
//! loopback, for `tests/cluster.rs` and `benches/cluster.rs`.

// Shared by a test and a bench, each using some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use capsight::api::BearerToken;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel that carries a bearer token.
pub type Authed = InterceptedService<Channel, BearerToken>;

/// Sends SIGTERM to process `pid`.
fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

fn nats_server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("CAPSIGHT_NATS_SERVER")
        .map_or_else(|| PathBuf::from("nats-server"), PathBuf::from);
    std::process::Command::new(&path)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| path)
}

/// The `nats-server` binary (`CAPSIGHT_NATS_SERVER`, or on the PATH). Without one a
/// developer's run is skipped (`None`, said on stderr); CI must have it.
pub fn nats_server() -> Option<PathBuf> {
    let found = nats_server_binary();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nats-server is missing in CI"
        );
        eprintln!("nats-server is not installed: skipped");
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Three `nats-server`s forming one JetStream cluster.
pub struct Nats {
    binary: PathBuf,
    configs: Vec<PathBuf>,
    /// Each server's JetStream store.
    pub dirs: Vec<PathBuf>,
    ports: Vec<u16>,
    processes: Vec<Option<Child>>,
}

impl Nats {
    pub fn start(binary: PathBuf, root: &Path) -> Self {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut configs = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..3 {
            let dir = root.join(format!("nats-{i}"));
            std::fs::create_dir_all(&dir).expect("nats dir");
            let others: Vec<String> = (0..3)
                .filter(|&j| j != i)
                .map(|j| format!("nats-route://127.0.0.1:{}", routes[j]))
                .collect();
            let config = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\n\
                 jetstream {{ store_dir: \"{}\", max_memory_store: 64MB, max_file_store: 1GB }}\n\
                 cluster {{ name: capsight-test, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                ports[i],
                dir.display(),
                routes[i],
                others.join(", ")
            );
            let path = root.join(format!("nats-{i}.conf"));
            std::fs::write(&path, config).expect("config");
            configs.push(path);
            dirs.push(dir);
        }
        let mut nats = Self {
            binary,
            configs,
            dirs,
            ports,
            processes: vec![None, None, None],
        };
        for i in 0..3 {
            nats.launch(i);
        }
        nats
    }

    pub fn launch(&mut self, i: usize) {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.configs[i])
            .arg("--log")
            .arg(self.configs[i].with_extension("log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn nats-server");
        self.processes[i] = Some(child);
    }

    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.processes[i].take() {
            child.kill().await.expect("SIGKILL nats-server");
        }
    }

    pub async fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.processes[i].take() {
            terminate(child.id().expect("pid"));
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
    }

    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A capsight node in cluster mode.
pub struct Node {
    /// Its data directory (its log goes to `<dir>.log`).
    pub dir: PathBuf,
    /// Its serving port.
    pub port: u16,
    /// The running process.
    pub process: Option<Child>,
    /// Extra `serve` arguments.
    pub args: Vec<String>,
}

impl Node {
    /// A node (not started) with its data in `root/name` and extra `serve` arguments.
    pub fn new(root: &Path, name: &str, args: Vec<String>) -> Self {
        Self {
            dir: root.join(name),
            port: free_port(),
            process: None,
            args,
        }
    }

    pub async fn launch(&mut self, urls: &str, demo: bool) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_capsight"));
        command
            .args(["--log-format", "json", "serve", "--listen"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--cluster", urls])
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if demo {
            command.arg("--demo");
        }
        let mut child = command.spawn().expect("spawn capsight");
        // Every line goes to `<dir>.log` (read when a stage fails); serving is awaited.
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let log_path = self.dir.with_extension("log");
        let (serving, served) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            use std::io::Write;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("node log");
            let mut serving = Some(serving);
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(log, "{line}");
                if line.contains("capsight serving")
                    && let Some(s) = serving.take()
                {
                    let _ = s.send(());
                }
            }
        });
        let started = tokio::time::timeout(Duration::from_secs(120), served).await;
        if !matches!(started, Ok(Ok(()))) {
            let log = std::fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "node {} did not serve: {}",
                self.dir.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.process = Some(child);
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            child.kill().await.expect("SIGKILL capsight");
        }
    }

    pub async fn channel(&self, token: &str) -> Authed {
        let channel = Channel::from_shared(format!("http://127.0.0.1:{}", self.port))
            .expect("url")
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .connect_lazy();
        InterceptedService::new(channel, BearerToken::new(token).expect("ascii"))
    }
}

/// The first admin token, which the first of `nodes` to start wrote to its data
/// directory; every node accepts it.
pub fn first_admin_token(nodes: &[Node]) -> String {
    nodes
        .iter()
        .find_map(|n| std::fs::read_to_string(n.dir.join(capsight::server::ADMIN_TOKEN_FILE)).ok())
        .expect("an admin token was written")
        .trim()
        .to_owned()
}
