//! The execution model seen from a client: deadlines, shared computations kept past a
//! caller's deadline, load shedding, and messages that do not decode.

use std::time::Duration;

use capsight::api::pb;
use capsight::demo::DemoConfig;
use capsight::server::{AdmissionLimits, ServerConfig};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::TestApp;

/// A server holding the demo organisation at `people`, with `limits`.
async fn demo_app(people: usize, limits: AdmissionLimits) -> (TestApp, tempfile::TempDir) {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.demo = Some(DemoConfig {
        people,
        ..DemoConfig::default()
    });
    config.admission = limits;
    (TestApp::start(config).await, temp)
}

/// Moves the data version (one new assessment), so that cached insights are stale.
async fn touch(app: &mut TestApp, id: &str) {
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: vec![crate::helpers::assessment(id, "p-000001", "rust", 3.0)],
        })
        .await
        .unwrap();
}

fn current_archetypes() -> pb::GetSkillArchetypesRequest {
    pb::GetSkillArchetypesRequest {
        result_policy: pb::ResultPolicy::Current.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_deadline_during_a_computation_is_deadline_exceeded_and_the_result_answers_the_next_call()
{
    let (mut app, _temp) = demo_app(2_000, AdmissionLimits::default()).await;
    let mut insights = app.clients(&app.admin_token).insights;
    // The first archetypes: computed once, then served from the cache.
    insights
        .get_skill_archetypes(current_archetypes())
        .await
        .unwrap();
    touch(&mut app, "deadline-1").await;

    let mut hurried = tonic::Request::new(current_archetypes());
    hurried.set_timeout(Duration::from_millis(40));
    let late = insights.get_skill_archetypes(hurried).await.unwrap_err();
    assert_eq!(late.code(), Code::DeadlineExceeded, "{late:?}");

    // The computation went on (engine::cache's tests count that it runs once); the next
    // caller is answered at the new version.
    let answer = insights
        .get_skill_archetypes(current_archetypes())
        .await
        .unwrap()
        .into_inner();
    let freshness = answer.freshness.unwrap();
    assert!(!freshness.stale);
    assert_eq!(freshness.computed_version, freshness.current_version);
}

#[tokio::test]
async fn past_the_heavy_limit_calls_are_shed_at_once_while_health_and_cheap_reads_answer() {
    let limits = AdmissionLimits {
        heavy: 1,
        queue: 1,
        ..AdmissionLimits::default()
    };
    let (mut app, _temp) = demo_app(2_000, limits).await;
    let clients = app.clients(&app.admin_token);
    clients
        .insights
        .clone()
        .get_skill_archetypes(current_archetypes())
        .await
        .unwrap();
    touch(&mut app, "shed-1").await;

    let calls: Vec<_> = (0..12)
        .map(|i| {
            let mut insights = clients.insights.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                // Different k: different computations, none shared.
                let request = pb::GetSkillArchetypesRequest {
                    k: Some(2 + i),
                    ..current_archetypes()
                };
                let answer = insights.get_skill_archetypes(request).await;
                (answer.map(drop), started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut health = HealthClient::new(app.channel.clone());
    let checked = tokio::time::timeout(
        Duration::from_secs(2),
        health.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await;
    assert!(
        matches!(checked, Ok(Ok(_))),
        "health answers during the burst"
    );
    let gaps = clients
        .capability
        .clone()
        .get_person_gaps(pb::GetPersonGapsRequest {
            person_id: "p-000002".into(),
            ..Default::default()
        })
        .await;
    assert!(gaps.is_ok(), "a cheap read answers during the burst");

    let mut shed = 0;
    for call in calls {
        let (answer, elapsed) = call.await.unwrap();
        if let Err(status) = answer {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            use tonic_types::StatusExt;
            assert!(status.get_details_retry_info().is_some(), "a retry hint");
            assert!(
                elapsed < Duration::from_secs(1),
                "shed at once: {elapsed:?}"
            );
            shed += 1;
        }
    }
    assert!(shed >= 10, "one runs, one waits, the rest are shed: {shed}");
}

/// Sends `body` as the request message of `path`, whatever it encodes.
pub async fn raw_call(app: &TestApp, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(body);
    let bearer = format!("Bearer {}", app.admin_token);
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    match grpc
        .unary::<_, (), _>(
            request,
            http::uri::PathAndQuery::from_static(path),
            RawCodec,
        )
        .await
    {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

#[tokio::test]
async fn a_message_that_does_not_decode_is_invalid_argument_without_decoder_text() {
    let app = TestApp::spawn().await;
    // Field 1 (a string) with a length running past the end of the message.
    for path in [
        "/capsight.v1.DirectoryService/GetPerson",
        "/capsight.v1.CapabilityService/GetTeamCapability",
        "/capsight.v1.IngestService/RecordAssessments",
    ] {
        let status = raw_call(&app, path, vec![0x0a, 0x7f, b'x']).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
        assert!(!status.message().contains("buffer"), "{}", status.message());
    }
}

pub use crate::raw_codec::RawCodec;

#[tokio::test]
async fn a_stop_during_a_computation_ends_within_the_grace_period() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.demo = Some(DemoConfig::default());
    config.shutdown_grace = Duration::from_millis(500);
    let mut app = TestApp::start(config).await;
    touch(&mut app, "stop-1").await;
    let mut insights = app.clients(&app.admin_token).insights;
    // Fifty clusterings of 2,000 people: far longer than the grace period.
    let busy: Vec<_> = (2..52)
        .map(|k| {
            let mut insights = insights.clone();
            tokio::spawn(async move {
                let request = pb::GetSkillArchetypesRequest {
                    k: Some(k),
                    ..current_archetypes()
                };
                insights.get_skill_archetypes(request).await.map(drop)
            })
        })
        .collect();
    insights
        .get_skill_archetypes(pb::GetSkillArchetypesRequest::default())
        .await
        .ok();
    let started = std::time::Instant::now();
    app.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "stopped after {took:?}");
    for call in busy {
        // Answered (UNAVAILABLE, or a result finished in time) or cut off; never hung.
        let _ = call.await;
    }
}

#[tokio::test]
async fn idle_connections_are_closed_but_a_watch_stream_is_not() {
    use tokio::io::AsyncReadExt;
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.connections.idle_timeout = Duration::from_secs(1);
    let mut app = TestApp::start(config).await;
    crate::helpers::seed_org(&mut app).await;
    // A separate channel, so that only the stream keeps its connection busy.
    let channel = tonic::transport::Channel::from_shared(app.address.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watcher = crate::helpers::Clients::new(&channel, &app.admin_token).capability;
    let mut updates = watcher
        .watch_team_capability(pb::WatchTeamCapabilityRequest {
            team_id: "backend".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    updates.message().await.unwrap().expect("the first view");

    let address = app.address.trim_start_matches("http://").to_owned();
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection is closed: {closed:?}"
    );

    // Well past the idle timeout, the stream still delivers. The writing client's own
    // connection was idle too and is closed under it: a call racing with that close
    // fails as retryable, and the retry goes out on a new connection.
    let write = pb::RecordAssessmentsRequest {
        assessments: vec![crate::helpers::assessment("idle-1", "alice", "rust", 4.0)],
    };
    if let Err(status) = app.ingest.record_assessments(write.clone()).await {
        assert!(
            matches!(
                status.code(),
                Code::Unavailable | Code::Cancelled | Code::Unknown
            ),
            "{status:?}"
        );
        app.ingest.record_assessments(write).await.unwrap();
    }
    let update = tokio::time::timeout(Duration::from_secs(5), updates.message()).await;
    assert!(matches!(update, Ok(Ok(Some(_)))), "{update:?}");
}
