use capsight::api::pb;
use capsight::engine::{Engine, EngineOptions};
use capsight::server::ServerConfig;
use tonic::Code;

use crate::helpers::{TestApp, assessment, seed_org};

async fn all_people(app: &mut TestApp) -> Vec<pb::Person> {
    app.directory
        .list_people(pb::ListPeopleRequest {
            page_size: 100,
            page_token: String::new(),
            subtree_team_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .people
}

#[tokio::test]
async fn a_restarted_server_keeps_everything_it_acknowledged() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let items = (0..500)
        .map(|i| assessment(&format!("a{i}"), "alice", "rust", 3.0))
        .collect();
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest { assessments: items })
        .await
        .unwrap();
    let people_before = all_people(&mut app).await;

    let mut app = app.restart().await;
    assert_eq!(all_people(&mut app).await, people_before);
    let alice = app
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice.assessment_count, 500);
    // Idempotency survives the restart: the index is rebuilt from the log.
    let again = app
        .ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: vec![assessment("a7", "alice", "rust", 3.0)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 1));
    let skills = app
        .directory
        .list_skills(pb::ListSkillsRequest {
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(skills.skills[0].indicators.len(), 1);
}

#[tokio::test]
async fn erasure_removes_the_person_and_every_trace_of_their_id_from_the_store() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    app.directory
        .upsert_teams(pb::UpsertTeamsRequest {
            teams: vec![pb::Team {
                manager_id: "bob".into(),
                ..crate::helpers::team("backend", "eng")
            }],
        })
        .await
        .unwrap();
    let mut by_bob = assessment("peer-1", "alice", "rust", 3.5);
    by_bob.source = pb::AssessmentSource::Peer.into();
    by_bob.assessor_id = "bob".into();
    let items = vec![
        assessment("b1", "bob", "rust", 4.0),
        assessment("b2", "bob", "sql", 2.0),
        by_bob.clone(),
        assessment("c1", "carol", "rust", 3.0),
    ];
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest { assessments: items })
        .await
        .unwrap();
    // bob mentors alice and is mentored by carol: both relationships go with him.
    let mut talent = app.clients(&app.admin_token.clone()).talent;
    for (mentee, mentor) in [("alice", "bob"), ("bob", "carol")] {
        talent
            .start_mentoring(pb::StartMentoringRequest {
                mentee_id: mentee.into(),
                mentor_id: mentor.into(),
                skill_ids: vec!["rust".into()],
                ..Default::default()
            })
            .await
            .unwrap();
    }

    let report = app
        .directory
        .delete_person(pb::DeletePersonRequest {
            person_id: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            report.assessments_erased,
            report.assessor_references_cleared,
            report.teams_unmanaged
        ),
        (2, 1, 1)
    );

    let gone = app
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "bob".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    assert!(all_people(&mut app).await.iter().all(|p| p.id != "bob"));
    let again = app
        .directory
        .delete_person(pb::DeletePersonRequest {
            person_id: "bob".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    // Re-sending the peer assessment as first received is still a duplicate, not a conflict...
    // ...but it names an erased person as assessor, so it is now an unknown reference.
    let resend = app
        .ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: vec![by_bob],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resend.rejections[0].field, "assessor_id");

    app.stop().await;
    let dir = app.data_dir.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(&dir, &EngineOptions::default()))
        .await
        .unwrap()
        .unwrap();
    let entries = engine
        .inspect_store(|store| store.raw_entries())
        .await
        .unwrap();
    assert!(!entries.is_empty());
    for (tree, key, value) in &entries {
        let needle = b"bob";
        let contains = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(
            !contains(key) && !contains(value),
            "`bob` still in tree {tree}"
        );
    }
    let snapshot = engine.snapshot();
    assert_eq!(snapshot.assessment_total, 2);
    assert!(snapshot.directory.teams()["backend"].manager.is_none());
    engine.close().await.unwrap();
}

#[tokio::test]
async fn a_data_directory_from_a_newer_schema_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    {
        // No background flusher: it would hold the directory's lock for a moment after
        // `db` is dropped, and the server below would find the store in use.
        let db = sled::Config::new()
            .path(&dir)
            .flush_every_ms(None)
            .open()
            .unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = capsight::server::run(listener, ServerConfig::new(dir), async {})
        .await
        .unwrap_err();
    assert!(matches!(error, capsight::Error::DataDir(_)), "{error:?}");
    assert!(error.to_string().contains("newer"), "{error}");
}

#[tokio::test]
async fn health_reports_each_service_as_serving() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in [
        "",
        "capsight.v1.DirectoryService",
        "capsight.v1.IngestService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_every_service_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let app = TestApp::spawn().await;
    let expected = [
        "capsight.v1.AccessService",
        "capsight.v1.CapabilityService",
        "capsight.v1.DirectoryService",
        "capsight.v1.IngestService",
        "capsight.v1.OrgInsightsService",
        "capsight.v1.TalentService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];

    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, expected);

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    assert_eq!(list.service.len(), expected.len());
}

#[tokio::test]
async fn shutdown_reports_not_serving_drains_open_streams_and_keeps_their_batches() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;

    let mut health = HealthClient::new(app.channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "capsight.v1.IngestService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    // An ingest stream that stays open: three batches, then the client goes quiet.
    let (batches, outbound) = tokio::sync::mpsc::channel(8);
    let mut acks = app
        .ingest
        .stream_assessments(tokio_stream::wrappers::ReceiverStream::new(outbound))
        .await
        .unwrap()
        .into_inner();
    for seq in 0..3u64 {
        let items = (0..10)
            .map(|i| assessment(&format!("sd-{seq}-{i}"), "dan", "sql", 2.0))
            .collect();
        batches
            .send(pb::StreamAssessmentsRequest {
                sequence: seq,
                assessments: items,
            })
            .await
            .unwrap();
    }
    for seq in 0..3u64 {
        assert_eq!(acks.message().await.unwrap().unwrap().sequence, seq);
    }

    let stopping = tokio::spawn(async move {
        app.stop().await;
        app
    });
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::NotServing as i32
    );
    // A health watcher holds its call open; the server would wait for it up to the grace
    // period. Closing it lets the drain finish at once.
    drop(watch);
    // The open stream ends cleanly (no error) although its client never closed it.
    assert!(acks.message().await.unwrap().is_none());
    drop(batches);
    let app = stopping.await.unwrap();

    let mut app = app.restart().await;
    let dan = app
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "dan".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dan.assessment_count, 30);
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_and_nothing_is_written() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.max_message_bytes = 64 * 1024;
    let mut app = TestApp::start(config).await;
    seed_org(&mut app).await;
    let items: Vec<pb::Assessment> = (0..2_000)
        .map(|i| assessment(&format!("big-{i}"), "alice", "rust", 3.0))
        .collect();
    let status = app
        .ingest
        .record_assessments(pb::RecordAssessmentsRequest { assessments: items })
        .await
        .unwrap_err();
    // tonic reports an over-limit message as OUT_OF_RANGE.
    assert_eq!(status.code(), Code::OutOfRange);
    let alice = app
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice.assessment_count, 0);
}

#[tokio::test]
async fn the_server_speaks_tls_when_given_a_certificate() {
    use tonic::transport::{Certificate, ClientTlsConfig};
    let temp = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (temp.path().join("cert.pem"), temp.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.tls = Some(capsight::server::TlsFiles {
        cert: cert_path,
        key: key_path,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(capsight::server::run(listener, config, async {
        let _ = stopped.await;
    }));

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert.cert.pem()))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(
        status.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // A plaintext client cannot talk to it.
    let plain = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        let mut health = tonic_health::pb::health_client::HealthClient::new(plain);
        assert!(
            health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .is_err()
        );
    }
    // The command-line client reaches it with the CA certificate, and says why not
    // without it (the cause, not tonic's bare "transport error").
    let cli = |args: Vec<String>| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_capsight"))
            .args(args)
            .output()
            .await
            .unwrap()
    };
    let token_file = temp.path().join("data").join("admin.token");
    let server_url = format!("https://localhost:{port}");
    let listed = cli(vec![
        "token".into(),
        "list".into(),
        "--server".into(),
        server_url.clone(),
        "--ca-cert".into(),
        temp.path().join("cert.pem").display().to_string(),
        "--token-file".into(),
        token_file.display().to_string(),
    ])
    .await;
    let out = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    let line = out.lines().nth(1).unwrap_or_default();
    assert!(
        line.contains(" admin ") && line.contains(" active ") && line.contains("created 20"),
        "{out}"
    );
    let untrusted = cli(vec![
        "token".into(),
        "list".into(),
        "--server".into(),
        server_url,
        "--token-file".into(),
        token_file.display().to_string(),
    ])
    .await;
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success());
    assert!(err.contains("certificate"), "{err}");
    // The importer reaches it the same way.
    let skills = temp.path().join("skills.csv");
    std::fs::write(&skills, "id,name,category\nrust,Rust,technical\n").unwrap();
    let imported = cli(vec![
        "import".into(),
        "--server".into(),
        format!("https://localhost:{port}"),
        "--ca-cert".into(),
        temp.path().join("cert.pem").display().to_string(),
        "--token-file".into(),
        token_file.display().to_string(),
        "--skills".into(),
        skills.display().to_string(),
    ])
    .await;
    let out = String::from_utf8_lossy(&imported.stdout);
    assert!(imported.status.success(), "{imported:?}");
    assert!(out.contains("skills 1,"), "{out}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let refused = cli(vec![
        "token".into(),
        "list".into(),
        "--server".into(),
        format!("http://127.0.0.1:{port}"),
        "--token".into(),
        "cs_x_y".into(),
    ])
    .await;
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.to_lowercase().contains("connection refused"), "{err}");
}

/// Locked out: `token recover` refuses while the server runs, then, with it stopped,
/// makes a new admin token in its store, written to a new 0600 file, and audited.
#[tokio::test]
async fn token_recover_makes_a_new_admin_token_in_a_stopped_servers_store() {
    let mut app = TestApp::spawn().await;
    let recover = |dir: std::path::PathBuf| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_capsight"))
            .args(["token", "recover", "--data-dir"])
            .arg(dir)
            .output()
            .await
            .unwrap()
    };
    let busy = recover(app.data_dir.clone()).await;
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("in use by another process"),
        "{busy:?}"
    );
    app.stop().await;
    let recovered = recover(app.data_dir.clone()).await;
    assert!(recovered.status.success(), "{recovered:?}");
    let path = String::from_utf8_lossy(&recovered.stdout).trim().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    let app = app.restart().await;
    let mut access = app.clients(&token).access;
    let events = access
        .list_audit_events(pb::ListAuditEventsRequest {
            rpc: "capsight.cli/TokenRecover".into(),
            ..Default::default()
        })
        .await
        .expect("the recovered token is an admin's")
        .into_inner()
        .events;
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_is_refused_clearly() {
    let app = TestApp::spawn().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = capsight::server::run(listener, ServerConfig::new(app.data_dir.clone()), async {})
        .await
        .unwrap_err();
    assert!(matches!(error, capsight::Error::DataDir(_)), "{error:?}");
    assert!(error.to_string().contains("in use"), "{error}");
}
