//! A child `capsight serve`: its command line, waiting for it to listen, a channel to it
//! with its admin token, a small organisation to write to, and stopping it.

// Shared by several test binaries, each using some of it.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use capsight::api::BearerToken;
use capsight::api::pb;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use tokio::io::{AsyncBufRead, Lines};
use tokio::process::Command;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel that carries a bearer token.
pub type Authed = InterceptedService<Channel, BearerToken>;

/// A channel to the server at `address` carrying the admin token of `data_dir`.
pub async fn connect(address: &str, data_dir: &std::path::Path) -> Authed {
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let token = std::fs::read_to_string(data_dir.join(capsight::server::ADMIN_TOKEN_FILE))
        .expect("admin token written before serving");
    InterceptedService::new(channel, BearerToken::new(&token).expect("ascii"))
}

/// Sends SIGTERM to process `pid`.
pub fn terminate(pid: u32) {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// Skill `rust`, role `dev`, team `team` and `people` (ids) in it.
pub async fn seed_org(channel: Authed, team: &str, people: &[String]) {
    let mut directory = DirectoryServiceClient::new(channel);
    directory
        .upsert_skills(pb::UpsertSkillsRequest {
            skills: vec![pb::Skill {
                id: "rust".into(),
                name: "Rust".into(),
                category: pb::SkillCategory::Technical.into(),
                ..Default::default()
            }],
        })
        .await
        .expect("skills");
    directory
        .upsert_roles(pb::UpsertRolesRequest {
            roles: vec![pb::Role {
                id: "dev".into(),
                name: "Dev".into(),
                requirements: vec![],
            }],
        })
        .await
        .expect("roles");
    directory
        .upsert_teams(pb::UpsertTeamsRequest {
            teams: vec![pb::Team {
                id: team.into(),
                name: team.to_uppercase(),
                ..Default::default()
            }],
        })
        .await
        .expect("teams");
    directory
        .upsert_people(pb::UpsertPeopleRequest {
            people: people
                .iter()
                .map(|id| pb::Person {
                    id: id.clone(),
                    display_name: format!("Person {id}"),
                    team_id: team.into(),
                    role_id: "dev".into(),
                    availability: 1.0,
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .expect("people");
}

/// An objective test of `person` in rust, scored 3, with `evidence` as its text.
pub fn assessment(id: String, person: &str, evidence: &str) -> pb::Assessment {
    pb::Assessment {
        id,
        person_id: person.into(),
        skill_id: "rust".into(),
        score: 3.0,
        source: pb::AssessmentSource::ObjectiveTest.into(),
        assessed_at: Some(prost_types::Timestamp {
            seconds: 1_750_000_000,
            nanos: 0,
        }),
        evidence: evidence.into(),
        ..Default::default()
    }
}

/// Makes `command` (capsight, perhaps behind a wrapper) `serve` `data_dir` on a free
/// loopback port with JSON logs on a piped stderr; killed when dropped.
pub fn serve<'a>(command: &'a mut Command, data_dir: &std::path::Path) -> &'a mut Command {
    command
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
}

/// Reads the child's log until it says it serves; returns the address it listens on.
pub async fn serving_address<R: AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> String {
    serving_or_exit(lines)
        .await
        .unwrap_or_else(|log| panic!("server exited before serving: {log:?}"))
}

/// Reads the child's log until it says it serves (the address it listens on) or its log
/// ends because it exited (the lines it wrote).
pub async fn serving_or_exit<R: AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
) -> Result<String, Vec<String>> {
    let mut log = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("server started or exited in time")
            .expect("read stderr");
        let Some(line) = line else {
            return Err(log);
        };
        if line.contains("capsight serving") {
            let start = line.find("127.0.0.1:").expect("address in log");
            let end = line[start..].find('"').map_or(line.len(), |e| start + e);
            return Ok(line[start..end].to_owned());
        }
        log.push(line);
    }
}

/// A child `capsight serve` on `data`, serving: the process, a channel with the admin
/// token, and its address.
pub async fn start(data: &std::path::Path) -> (tokio::process::Child, Authed, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = serve(&mut Command::new(env!("CARGO_BIN_EXE_capsight")), data)
        .spawn()
        .expect("spawn capsight");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = serving_address(&mut lines).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let channel = connect(&address, data).await;
    (child, channel, address)
}

/// Stops `child` with SIGTERM and checks that it exited cleanly.
pub async fn stop(mut child: tokio::process::Child) {
    terminate(child.id().expect("pid"));
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stopped in time")
        .expect("status");
    assert!(status.success(), "{status}");
}

/// Every file under `dir` whose raw bytes contain `needle`.
pub fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            found.extend(files_holding(&entry.path(), needle));
        } else if std::fs::read(entry.path())
            .expect("read")
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(entry.path().display().to_string());
        }
    }
    found
}
