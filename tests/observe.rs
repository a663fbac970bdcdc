//! Operability of a real `capsight serve` child: one request log line per rpc call with
//! its method, status, latency and token id and no personal data; Prometheus metrics
//! that move with the calls; HTTP probes. (A real Prometheus server scrapes it in
//! `.ci/clients`, `tests/interop/prometheus_scrape.py`.)

use std::collections::BTreeMap;
use std::time::Duration;

use capsight::api::pb;
use prost::Message;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[path = "support/serving.rs"]
mod serving;
use tokio::process::Command;
use tokio::sync::mpsc;

#[path = "support/raw_codec.rs"]
mod raw_codec;
use raw_codec::RawCodec;

/// A person whose name and id must never appear in a log line.
const CANARY_ID: &str = "canary-person";
const CANARY_NAME: &str = "Zebulon Canaryfield";

/// `GET path` over HTTP/1.1; the status code and body.
async fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample `name{labels}` in a Prometheus exposition, 0 if absent.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_logged_once_without_personal_data_and_counted_in_the_metrics() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let mut child = serving::serve(&mut Command::new(env!("CARGO_BIN_EXE_capsight")), &data)
        .spawn()
        .expect("spawn capsight");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = serving::serving_address(&mut lines).await;
    let (log_lines, mut logged) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = log_lines.send(line);
        }
    });
    // No ANSI colour codes when stderr is not a terminal.
    let token = std::fs::read_to_string(data.join("admin.token")).expect("admin token");
    let token = token.trim().to_owned();
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");

    // Probes.
    assert_eq!(http_get(&address, "/healthz").await.0, 200);
    assert_eq!(http_get(&address, "/readyz").await.0, 200);
    let (status, before) = http_get(&address, "/metrics").await;
    assert_eq!(status, 200);

    // Seed a person whose data must never reach a log line, then call every unary rpc
    // of every capsight service once (most with an empty request).
    let seed: Vec<(&str, Vec<u8>)> = vec![
        (
            "/capsight.v1.DirectoryService/UpsertSkills",
            pb::UpsertSkillsRequest {
                skills: vec![pb::Skill {
                    id: "canary-skill".into(),
                    name: "Canary skill".into(),
                    category: pb::SkillCategory::Technical.into(),
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        ),
        (
            "/capsight.v1.DirectoryService/UpsertRoles",
            pb::UpsertRolesRequest {
                roles: vec![pb::Role {
                    id: "canary-role".into(),
                    name: "Canary role".into(),
                    requirements: vec![pb::RoleRequirement {
                        skill_id: "canary-skill".into(),
                        required_level: 3.0,
                        weight: 1.0,
                    }],
                }],
            }
            .encode_to_vec(),
        ),
        (
            "/capsight.v1.DirectoryService/UpsertTeams",
            pb::UpsertTeamsRequest {
                teams: vec![pb::Team {
                    id: "canary-team".into(),
                    name: "Canary team".into(),
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        ),
        (
            "/capsight.v1.DirectoryService/UpsertPeople",
            pb::UpsertPeopleRequest {
                people: vec![pb::Person {
                    id: CANARY_ID.into(),
                    display_name: CANARY_NAME.into(),
                    team_id: "canary-team".into(),
                    role_id: "canary-role".into(),
                    availability: 1.0,
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        ),
        (
            "/capsight.v1.DirectoryService/GetPerson",
            pb::GetPersonRequest {
                person_id: CANARY_ID.into(),
            }
            .encode_to_vec(),
        ),
        (
            "/capsight.v1.IngestService/RecordAssessments",
            pb::RecordAssessmentsRequest {
                assessments: vec![pb::Assessment {
                    id: "canary-assessment".into(),
                    person_id: CANARY_ID.into(),
                    skill_id: "canary-skill".into(),
                    score: 3.0,
                    source: pb::AssessmentSource::ObjectiveTest.into(),
                    assessed_at: Some(prost_types::Timestamp {
                        seconds: 1_750_000_000,
                        nanos: 0,
                    }),
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        ),
    ];
    let descriptors =
        prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut calls: Vec<(String, Vec<u8>)> =
        seed.into_iter().map(|(p, b)| (p.to_owned(), b)).collect();
    for file in &descriptors.file {
        for service in &file.service {
            for method in &service.method {
                if method.client_streaming() || method.server_streaming() {
                    continue;
                }
                calls.push((
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    Vec::new(),
                ));
            }
        }
    }
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut answers = Vec::new();
    for (path, body) in &calls {
        *expected.entry(path.clone()).or_default() += 1;
        let path: &'static str = Box::leak(path.clone().into_boxed_str());
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let mut request = tonic::Request::new(body.clone());
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let answer = grpc
            .unary::<_, (), _>(
                request,
                http::uri::PathAndQuery::from_static(path),
                RawCodec,
            )
            .await;
        answers.push(answer.map(drop).map_err(|s| s.code()));
    }
    // The seed was taken: the canary exists, and reading them is among the calls.
    assert_eq!(
        answers[..6],
        [Ok(()), Ok(()), Ok(()), Ok(()), Ok(()), Ok(())],
        "{answers:?}"
    );

    // The metrics moved by (at least) the calls made.
    let (_, after) = http_get(&address, "/metrics").await;
    let list_skills = [
        ("rpc", "/capsight.v1.DirectoryService/ListSkills"),
        ("code", "OK"),
    ];
    assert_eq!(
        sample(&after, "capsight_rpc_requests_total", &list_skills)
            - sample(&before, "capsight_rpc_requests_total", &list_skills),
        1.0,
        "{after}"
    );
    let histogram = sample(&after, "capsight_rpc_duration_seconds_count", &list_skills);
    assert!(histogram >= 1.0, "{after}");
    assert!(
        after.contains("capsight_rpc_duration_seconds_bucket{"),
        "{after}"
    );
    assert!(
        sample(&after, "capsight_data_version", &[]) >= 4.0,
        "{after}"
    );
    assert_eq!(sample(&after, "capsight_people", &[]), 1.0, "{after}");
    // The insight calls looked in their caches (the walk's empty GetOrgSkillPatterns
    // has no grouping and is refused before its cache).
    for kind in ["archetypes", "plans"] {
        assert!(
            sample(&after, "capsight_cache_requests_total", &[("kind", kind)]) >= 1.0,
            "{kind}: {after}"
        );
    }
    assert!(sample(&after, "capsight_store_bytes", &[]) > 0.0);
    // The ingest counter (rate() of it is the ingest rate) and the audit log's size.
    assert_eq!(
        sample(&after, "capsight_assessments_ingested_total", &[])
            - sample(&before, "capsight_assessments_ingested_total", &[]),
        1.0,
        "{after}"
    );
    assert!(sample(&after, "capsight_audit_bytes", &[]) > 0.0, "{after}");

    // Exactly one request log line per call, each naming its rpc, code, latency and
    // token, none holding the person's name or id.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    while let Ok(line) = logged.try_recv() {
        assert!(!line.contains('\u{1b}'), "ANSI escape in {line}");
        assert!(!line.contains(CANARY_NAME), "personal data in {line}");
        assert!(!line.contains(CANARY_ID), "personal data in {line}");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if entry["target"] != "capsight::rpc" {
            continue;
        }
        let fields = &entry["fields"];
        assert!(
            fields["code"].is_string() && fields["latency_ms"].is_number(),
            "{line}"
        );
        assert!(
            fields["token"].as_str().is_some_and(|t| !t.is_empty()),
            "{line}"
        );
        *seen
            .entry(fields["rpc"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    assert_eq!(seen, expected);
    child.start_kill().ok();
}

/// An OTLP trace receiver (the protocol's own gRPC service), standing in for an
/// OpenTelemetry Collector: every export request it gets goes to the test.
struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_otlp_endpoint_every_rpc_is_exported_as_a_span_of_service_capsight() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let collector = listener.local_addr().expect("address");
    let (sent, mut received) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(sent)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let mut child = serving::serve(&mut Command::new(env!("CARGO_BIN_EXE_capsight")), &data)
        .args(["--otlp-endpoint", &format!("http://{collector}")])
        .spawn()
        .expect("spawn capsight");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = serving::serving_address(&mut lines).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let channel = serving::connect(&address, &data).await;
    serving::seed_org(channel.clone(), "org", &["p1".to_owned()]).await;
    let missing = capsight::api::pb::directory_service_client::DirectoryServiceClient::new(channel)
        .get_person(pb::GetPersonRequest {
            person_id: "nobody".into(),
        })
        .await
        .expect_err("unknown person");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // A clean stop sends the spans still pending.
    serving::terminate(child.id().expect("pid"));
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stopped")
        .expect("status");
    assert!(status.success());
    let mut methods = Vec::new();
    let mut services = Vec::new();
    while let Ok(request) = received.try_recv() {
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value));
            services.extend(service);
            for span in resource.scope_spans.iter().flat_map(|s| &s.spans) {
                if span.name == "rpc" {
                    methods.extend(
                        span.attributes
                            .iter()
                            .filter(|a| a.key == "method")
                            .filter_map(|a| a.value.as_ref())
                            .map(|v| format!("{:?}", v.value)),
                    );
                }
            }
        }
    }
    assert!(
        services.iter().all(|s| s.contains("capsight")) && !services.is_empty(),
        "{services:?}"
    );
    for rpc in ["UpsertSkills", "UpsertPeople", "GetPerson"] {
        assert!(
            methods
                .iter()
                .any(|m| m.contains(&format!("DirectoryService/{rpc}"))),
            "no span for {rpc}: {methods:?}"
        );
    }
}

/// The server process runs with transparent huge pages off (src/main.rs: with them,
/// every first touch of a 2 MiB page zeroes all of it, which doubled start-up on a
/// 100,000-person store), and an operator's `MIMALLOC_ALLOW_THP` still decides.
#[tokio::test]
async fn the_server_runs_without_transparent_huge_pages_unless_told_otherwise() {
    let thp = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_owned()))
            .expect("the kernel reports THP_enabled")
    };
    let temp = tempfile::tempdir().unwrap();
    let (child, _, _) = serving::start(&temp.path().join("data")).await;
    assert_eq!(thp(child.id().expect("pid")), "0");
    serving::stop(child).await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_capsight"));
    command.env("MIMALLOC_ALLOW_THP", "1");
    let mut child = serving::serve(&mut command, &temp.path().join("data"))
        .spawn()
        .expect("spawn capsight");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    serving::serving_address(&mut lines).await;
    assert_eq!(thp(child.id().expect("pid")), "1", "left to mimalloc");
    serving::stop(child).await;
}
