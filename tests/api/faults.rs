//! Storage faults injected into the store's flush (debug builds only): no call hangs,
//! writes are refused at once, no person-level read is served unaudited, the server
//! stops for its supervisor to restart it, and acknowledged data is intact after.

use std::time::Duration;

use capsight::api::pb;
use capsight::server::ServerConfig;
use capsight::store::{Fault, FlushFault};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{TestApp, assessment, seed_org};

async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("answered in time")
}

/// Runs the scenario with `fault`; `limit` is how fast every call must answer after it.
async fn storage_fault_scenario(fault: Fault, stall: Duration, limit: Duration) {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("data");
    let injected = FlushFault::default();
    let mut config = ServerConfig::new(dir.clone());
    config.engine.store.fault = injected.clone();
    config.engine.flush_stall = Some(stall);
    config.shutdown_grace = Duration::from_secs(2);
    let mut app = TestApp::start(config).await;
    seed_org(&mut app).await;
    let record = |id: &str| pb::RecordAssessmentsRequest {
        assessments: vec![assessment(id, "alice", "rust", 3.0)],
    };
    app.ingest
        .record_assessments(record("before"))
        .await
        .unwrap();

    injected.set(fault);
    let failed = within(limit, app.ingest.record_assessments(record("during-1"))).await;
    assert_eq!(failed.unwrap_err().code(), Code::Unavailable);
    // From now on every call answers at once.
    let refused = within(
        Duration::from_secs(1),
        app.ingest.record_assessments(record("during-2")),
    )
    .await;
    assert_eq!(refused.unwrap_err().code(), Code::Unavailable);
    let read = within(
        Duration::from_secs(1),
        app.directory.get_person(pb::GetPersonRequest {
            person_id: "alice".into(),
        }),
    )
    .await;
    assert!(read.is_err(), "a person-level read is not served unaudited");
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    let not_serving = within(Duration::from_secs(2), async {
        loop {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "capsight.v1.IngestService".into(),
                })
                .await
                .map(|r| r.into_inner().status)
                .ok();
            if status != Some(ServingStatus::Serving as i32) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(not_serving, Some(ServingStatus::NotServing as i32));

    // The server stops by itself, with the failure as its error.
    let stopped = within(Duration::from_secs(10), app.task.take().unwrap()).await;
    assert!(stopped.unwrap().is_err(), "stopped with an error");

    // The cause is gone: a restart has every acknowledged write and takes new ones.
    injected.set(Fault::None);
    // In a real process the exit releases the store; here a writer stuck in a flush
    // lets go of it once the fault clears.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut config = ServerConfig::new(dir);
    config.engine.store.fault = injected;
    let mut again = TestApp::start(config).await;
    let resent = again
        .ingest
        .record_assessments(record("before"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resent.duplicates, 1, "the acknowledged write survived");
    let fresh = again
        .ingest
        .record_assessments(record("after"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fresh.accepted, 1);
    again.stop().await;
}

#[tokio::test]
async fn after_a_failed_flush_no_call_hangs_and_a_restart_recovers() {
    storage_fault_scenario(
        Fault::Error,
        Duration::from_secs(10),
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test]
async fn a_flush_that_never_returns_is_detected_and_no_call_hangs() {
    storage_fault_scenario(
        Fault::Hang,
        Duration::from_millis(500),
        Duration::from_secs(2),
    )
    .await;
}

#[tokio::test]
async fn start_up_without_enough_free_disk_space_fails_at_once_with_a_clear_error() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(temp.path().join("data"));
    // More free space than any filesystem here has: as if the disk were nearly full.
    config.min_free_bytes = u64::MAX;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started = capsight::server::run(listener, config, std::future::pending());
    let error = within(Duration::from_secs(5), started)
        .await
        .expect_err("refused to start");
    let message = error.to_string();
    assert!(message.contains("MiB free"), "{message}");
    assert!(message.contains("--min-free-mb"), "{message}");
    // Nothing was created on the full disk.
    assert!(!temp.path().join("data").exists());
}

#[tokio::test]
async fn a_replaced_store_beside_an_admin_token_is_refused_and_the_token_kept() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("data");
    let mut app = TestApp::start(ServerConfig::new(dir.clone())).await;
    seed_org(&mut app).await;
    app.stop().await;
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    // The store's files are gone (or replaced by an empty store); the token file is not.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "admin.token") {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started = capsight::server::run(
        listener,
        ServerConfig::new(dir.clone()),
        std::future::pending(),
    );
    let error = within(Duration::from_secs(30), started)
        .await
        .expect_err("refused to start");
    let message = error.to_string();
    assert!(message.contains("holds no access tokens"), "{message}");
    assert_eq!(
        std::fs::read_to_string(dir.join("admin.token")).unwrap(),
        token
    );
}
