//! Team capability through the real server, on a hand-built organisation whose expected
//! numbers are worked out by hand below.

use std::time::Duration;

use capsight::api::pb;
use capsight::api::pb::AccessRole;
use tonic::Code;

use crate::helpers::{TestApp, seed_org};

/// An objective test of `person` in `skill`, assessed a second ago (so decay is nil and
/// each counts with weight 1).
fn fresh(id: &str, person: &str, skill: &str, score: f64) -> pb::Assessment {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    pb::Assessment {
        assessed_at: Some(prost_types::Timestamp {
            seconds: now - 1,
            nanos: 0,
        }),
        ..crate::helpers::assessment(id, person, skill, score)
    }
}

async fn record(app: &mut TestApp, items: Vec<pb::Assessment>) {
    let response = app
        .ingest
        .record_assessments(pb::RecordAssessmentsRequest { assessments: items })
        .await
        .unwrap()
        .into_inner();
    assert!(response.rejections.is_empty(), "{:?}", response.rejections);
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < 1e-3)
}

#[tokio::test]
async fn team_capability_matches_the_hand_computed_numbers() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await; // role dev requires rust 3 (w1) and sql 3 (w1)
    record(
        &mut app,
        vec![
            fresh("a1", "alice", "rust", 4.0),
            fresh("a2", "alice", "sql", 2.0),
            fresh("b1", "bob", "rust", 3.0),
            fresh("b2", "bob", "rust", 2.0),
            fresh("c1", "carol", "sql", 5.0),
        ],
    )
    .await;
    let view = app
        .clients(&app.admin_token)
        .capability
        .get_team_capability(pb::GetTeamCapabilityRequest {
            team_id: "backend".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .capability
        .unwrap();

    assert_eq!(view.skill_ids, ["rust", "sql"]);
    let members: Vec<&str> = view.members.iter().map(|m| m.person_id.as_str()).collect();
    assert_eq!(members, ["alice", "bob"], "carol is in frontend");
    let (alice, bob) = (&view.members[0], &view.members[1]);
    assert!(close(alice.cells[0].level, 4.0) && close(alice.cells[1].level, 2.0));
    assert!(
        close(bob.cells[0].level, 2.5),
        "mean of two equal-weight tests"
    );
    assert_eq!(bob.cells[1].level, None, "no evidence is unknown, not 0");
    assert_eq!(bob.cells[0].evidence_count, 2);
    // bob/rust: W = 2, variance 0.25 → (1 − e^−2) / 1.25 = 0.69173
    assert!(
        (bob.cells[0].confidence - 0.691_73).abs() < 1e-3,
        "{}",
        bob.cells[0].confidence
    );

    let (rust, sql) = (&view.skills[0], &view.skills[1]);
    assert!(close(rust.mean_level, 3.25) && close(rust.max_level, 4.0));
    assert_eq!(
        (rust.known_count, rust.proficient_count),
        (2, 1),
        "bus factor 1"
    );
    assert!(close(rust.required_level, 3.0) && close(rust.gap, 0.0));
    assert_eq!(rust.members_below_requirement, 1);
    assert!(close(sql.mean_level, 2.0));
    assert_eq!((sql.known_count, sql.proficient_count), (1, 0));
    assert!(close(sql.gap, 1.0), "best sql 2.0 against 3.0");
    assert_eq!(sql.members_below_requirement, 2);
    // alice: (1 + 2/3) / 2 = 0.83333; bob: (2.5/3 + 0) / 2 = 0.41667; team: 0.625
    assert!(close(alice.readiness, 0.833_33) && close(bob.readiness, 0.416_67));
    assert!(close(view.readiness, 0.625));

    let eng = app
        .clients(&app.admin_token)
        .capability
        .get_team_capability(pb::GetTeamCapabilityRequest {
            team_id: "eng".into(),
            include_subteams: true,
            skill_ids: vec!["sql".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .capability
        .unwrap();
    assert_eq!(eng.members.len(), 3);
    assert_eq!(eng.skill_ids, ["sql"]);
    assert_eq!(eng.skills[0].proficient_count, 1, "carol's 5.0");

    let unknown = app
        .clients(&app.admin_token)
        .capability
        .get_team_capability(pb::GetTeamCapabilityRequest {
            team_id: "backend".into(),
            skill_ids: vec!["cobol".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_write_is_visible_to_the_next_read() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let mut capability = app.clients(&app.admin_token).capability;
    let ask = || pb::GetTeamCapabilityRequest {
        team_id: "sales".into(),
        skill_ids: vec!["rust".into()],
        ..Default::default()
    };
    let before = capability
        .get_team_capability(ask())
        .await
        .unwrap()
        .into_inner()
        .capability
        .unwrap();
    assert_eq!(before.members[0].cells[0].level, None);
    record(&mut app, vec![fresh("d1", "dan", "rust", 3.5)]).await;
    let after = capability
        .get_team_capability(ask())
        .await
        .unwrap()
        .into_inner()
        .capability
        .unwrap();
    assert!(close(after.members[0].cells[0].level, 3.5));
    assert!(after.data_version > before.data_version);
}

#[tokio::test]
async fn a_watcher_gets_updates_for_its_team_only_and_stops_when_its_token_is_revoked() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let manager = app.token(AccessRole::Manager, &["eng"], "").await;
    let mut updates = app
        .clients(&manager)
        .capability
        .watch_team_capability(pb::WatchTeamCapabilityRequest {
            team_id: "backend".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = updates
        .message()
        .await
        .unwrap()
        .unwrap()
        .capability
        .unwrap();
    assert_eq!(first.members.len(), 2);

    // Another team's data changes: no update.
    record(&mut app, vec![fresh("s1", "dan", "rust", 4.0)]).await;
    let quiet = tokio::time::timeout(Duration::from_millis(800), updates.message()).await;
    assert!(
        quiet.is_err(),
        "an update for another team's write: {quiet:?}"
    );

    // This team's data changes: an update with the new level.
    record(&mut app, vec![fresh("w1", "alice", "rust", 4.5)]).await;
    let update = tokio::time::timeout(Duration::from_secs(5), updates.message())
        .await
        .expect("an update in time")
        .unwrap()
        .unwrap()
        .capability
        .unwrap();
    let rust = update.skill_ids.iter().position(|s| s == "rust").unwrap();
    assert!(close(update.members[0].cells[rust].level, 4.5));

    let tokens = app
        .access
        .list_tokens(pb::ListTokensRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let id = tokens
        .iter()
        .find(|t| t.role == AccessRole::Manager as i32)
        .unwrap()
        .token_id
        .clone();
    app.access
        .revoke_token(pb::RevokeTokenRequest { token_id: id })
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), updates.message())
        .await
        .expect("stream ended in time");
    assert_eq!(ended.unwrap_err().code(), Code::Unauthenticated);
}
