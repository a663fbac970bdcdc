//! Team capability through the real server, on a hand-built organisation whose expected
//! numbers are worked out by hand below.

use std::time::Duration;

use capsight::api::pb;
use capsight::api::pb::AccessRole;
use tonic::Code;

use crate::helpers::{TestApp, seed_org, violations};

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

/// The objective tests behind the hand-computed numbers: alice rust 4 and sql 2, bob rust
/// 3 and 2 (sql unknown), carol (frontend) sql 5.
fn hand_computed_evidence() -> Vec<pb::Assessment> {
    vec![
        fresh("a1", "alice", "rust", 4.0),
        fresh("a2", "alice", "sql", 2.0),
        fresh("b1", "bob", "rust", 3.0),
        fresh("b2", "bob", "rust", 2.0),
        fresh("c1", "carol", "sql", 5.0),
    ]
}

#[tokio::test]
async fn team_capability_matches_the_hand_computed_numbers() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await; // role dev requires rust 3 (w1) and sql 3 (w1)
    record(&mut app, hand_computed_evidence()).await;
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
            ..Default::default()
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

type Updates = tonic::Streaming<pb::WatchTeamCapabilityResponse>;

/// No update arrives for a while (longer than the watch's debounce).
async fn assert_quiet(updates: &mut Updates) {
    let quiet = tokio::time::timeout(Duration::from_millis(800), updates.message()).await;
    assert!(quiet.is_err(), "an unexpected update: {quiet:?}");
}

/// The next update, which must come soon.
async fn next_update(updates: &mut Updates) -> pb::TeamCapability {
    tokio::time::timeout(Duration::from_secs(5), updates.message())
        .await
        .expect("an update in time")
        .unwrap()
        .unwrap()
        .capability
        .unwrap()
}

/// The DENSE layout decoded cell by cell: (level, confidence, evidence count, seconds),
/// the level NaN where the bitmap says unknown.
fn dense_cells(view: &pb::TeamCapability) -> Vec<(f32, f32, u32, i64)> {
    let dense = view.dense.as_ref().expect("a dense matrix");
    let words =
        |b: &[u8]| -> Vec<[u8; 4]> { b.chunks_exact(4).map(|c| c.try_into().unwrap()).collect() };
    let levels = words(&dense.levels_f32le);
    let confidences = words(&dense.confidences_f32le);
    let counts = words(&dense.evidence_counts_u32le);
    let seconds: Vec<i64> = dense
        .last_assessed_seconds_i64le
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let size = view.members.len() * view.skill_ids.len();
    assert_eq!(dense.known_bitmap.len(), size.div_ceil(8));
    let mut next = 0;
    let cells = (0..size)
        .map(|k| {
            if dense.known_bitmap[k / 8] & (1 << (k % 8)) == 0 {
                return (f32::NAN, 0.0, 0, 0);
            }
            next += 1;
            let i = next - 1;
            (
                f32::from_le_bytes(levels[i]),
                f32::from_le_bytes(confidences[i]),
                u32::from_le_bytes(counts[i]),
                seconds[i],
            )
        })
        .collect();
    let known = [levels.len(), confidences.len(), counts.len(), seconds.len()];
    assert_eq!(known, [next; 4], "one entry per known cell");
    cells
}

#[tokio::test]
async fn the_dense_layout_carries_the_cells_figures_and_stays_quiet_for_other_teams() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    record(&mut app, hand_computed_evidence()).await;
    let mut capability = app.clients(&app.admin_token).capability;
    let ask = |layout: pb::MatrixLayout| pb::GetTeamCapabilityRequest {
        team_id: "backend".into(),
        layout: layout.into(),
        ..Default::default()
    };
    let get = |response: tonic::Response<pb::GetTeamCapabilityResponse>| {
        response.into_inner().capability.unwrap()
    };
    let cells = get(capability
        .get_team_capability(ask(pb::MatrixLayout::Cells))
        .await
        .unwrap());
    let dense = get(capability
        .get_team_capability(ask(pb::MatrixLayout::Dense))
        .await
        .unwrap());
    assert!(cells.dense.is_none());
    assert!(dense.members.iter().all(|m| m.cells.is_empty()));
    assert_eq!(dense.skill_ids, cells.skill_ids);
    assert_eq!(dense.skills, cells.skills);
    assert_eq!(dense.readiness, cells.readiness);

    // Row-major, member by member: alice (rust 4, sql 2), then bob (rust 2.5, sql unknown).
    let laid_out = dense_cells(&dense);
    let expected: Vec<&pb::CapabilityCell> = cells.members.iter().flat_map(|m| &m.cells).collect();
    assert_eq!(laid_out.len(), 4);
    for ((level, confidence, count, seconds), cell) in laid_out.iter().zip(&expected) {
        match cell.level {
            Some(l) => assert_eq!(*level, l as f32),
            None => assert!(level.is_nan(), "unknown is NaN, not {level}"),
        }
        assert_eq!(*confidence, cell.confidence as f32);
        assert_eq!(*count, cell.evidence_count);
        assert_eq!(*seconds, cell.last_assessed.map_or(0, |t| t.seconds));
    }
    assert_eq!((laid_out[0].0, laid_out[2].0), (4.0, 2.5));
    assert!(laid_out[3].0.is_nan() && laid_out[3].2 == 0 && laid_out[3].3 == 0);

    let bad = capability
        .get_team_capability(pb::GetTeamCapabilityRequest {
            layout: 9,
            ..ask(pb::MatrixLayout::Dense)
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violations(&bad)[0].0, "layout");

    // A dense watch: NaN cells must not make every other team's write look like news.
    let mut updates = capability
        .watch_team_capability(pb::WatchTeamCapabilityRequest {
            team_id: "backend".into(),
            layout: pb::MatrixLayout::Dense.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = next_update(&mut updates).await;
    assert_eq!(dense_cells(&first)[0].0, 4.0);
    record(&mut app, vec![fresh("s1", "dan", "rust", 4.0)]).await;
    assert_quiet(&mut updates).await;
    record(&mut app, vec![fresh("w1", "bob", "sql", 3.0)]).await;
    let update = next_update(&mut updates).await;
    assert_eq!(dense_cells(&update)[3].0, 3.0, "bob's sql, now known");
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
    let first = next_update(&mut updates).await;
    assert_eq!(first.members.len(), 2);

    // Another team's data changes: no update.
    record(&mut app, vec![fresh("s1", "dan", "rust", 4.0)]).await;
    assert_quiet(&mut updates).await;

    // This team's data changes: an update with the new level.
    record(&mut app, vec![fresh("w1", "alice", "rust", 4.5)]).await;
    let update = next_update(&mut updates).await;
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

/// The data of `team_capability_matches_the_hand_computed_numbers`, plus a self-rating.
async fn seeded() -> TestApp {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let mut self_rating = fresh("a3", "alice", "sql", 4.0);
    self_rating.source = pb::AssessmentSource::Self_.into();
    self_rating.assessor_id = "alice".into();
    let mut evidence = hand_computed_evidence();
    evidence.push(self_rating);
    record(&mut app, evidence).await;
    app
}

#[tokio::test]
async fn a_profile_shows_levels_calibration_and_the_evidence_behind_them() {
    let app = seeded().await;
    let mut capability = app.clients(&app.admin_token).capability;
    let alice = capability
        .get_person_profile(pb::GetPersonProfileRequest {
            person_id: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let skills: Vec<&str> = alice.skills.iter().map(|s| s.skill_id.as_str()).collect();
    assert_eq!(skills, ["rust", "sql"]);
    let sql = &alice.skills[1];
    // objective 2.0 (w 1) and self 4.0 (w 0.3): (2.0 + 1.2) / 1.3 = 2.46154
    assert!(close(sql.level, 3.2 / 1.3));
    assert!(
        close(sql.self_gap, 2.0),
        "self 4.0 against 2.0 from everything else"
    );
    assert!(close(alice.calibration, 2.0));
    assert_eq!(sql.evidence.len(), 2);
    let weights: Vec<f64> = sql
        .evidence
        .iter()
        .map(|e| (e.weight * 10.0).round() / 10.0)
        .collect();
    assert!(
        weights.contains(&1.0) && weights.contains(&0.3),
        "{weights:?}"
    );
    assert!(alice.skills[0].self_gap.is_none());
}

#[tokio::test]
async fn gaps_are_prioritised_and_a_missing_target_role_is_an_invalid_argument() {
    let app = seeded().await;
    let mut capability = app.clients(&app.admin_token).capability;
    let gaps = capability
        .get_person_gaps(pb::GetPersonGapsRequest {
            person_id: "bob".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gaps.role_id, "dev");
    // sql unknown: gap 3, priority 3; rust 2.5: gap 0.5, priority 0.5
    let order: Vec<(&str, f64)> = gaps
        .gaps
        .iter()
        .map(|g| (g.skill_id.as_str(), g.priority))
        .collect();
    assert_eq!(order.len(), 2);
    assert_eq!(order[0].0, "sql");
    assert!((order[0].1 - 3.0).abs() < 1e-3 && (order[1].1 - 0.5).abs() < 1e-3);
    assert!((gaps.readiness - 0.416_67).abs() < 1e-3);
    let status = capability
        .get_person_gaps(pb::GetPersonGapsRequest {
            person_id: "bob".into(),
            target_role: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::violations(&status)[0].0, "target_role");
}

#[tokio::test]
async fn experts_meet_every_requirement_and_risks_name_the_single_holder() {
    let app = seeded().await;
    let mut capability = app.clients(&app.admin_token).capability;
    let experts = capability
        .find_experts(pb::FindExpertsRequest {
            requirements: vec![pb::SkillRequirement {
                skill_id: "rust".into(),
                min_level: 3.0,
            }],
            scope_team_id: "eng".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = experts
        .experts
        .iter()
        .map(|e| e.person_id.as_str())
        .collect();
    assert_eq!(ids, ["alice"], "bob's 2.5 is below 3");
    // one fresh objective test: confidence 1 − e^−1 = 0.63212; score 4 × 0.63212
    assert!((experts.experts[0].score - 4.0 * 0.632_12).abs() < 1e-3);

    let risks = capability
        .get_skill_risks(pb::GetSkillRisksRequest {
            team_id: "backend".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .risks;
    let found: Vec<(&str, i32, &str)> = risks
        .iter()
        .map(|r| (r.skill_id.as_str(), r.kind, r.holder_id.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("sql", pb::RiskKind::Missing as i32, ""),
            ("rust", pb::RiskKind::SinglePoint as i32, "alice"),
        ]
    );
    assert_eq!(risks[0].people_requiring, 2);
}

#[tokio::test]
async fn the_trend_follows_levels_as_of_each_date_and_names_the_improvement() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = 86_400;
    let t0 = now - 300 * day;
    let at = |id: &str, person: &str, score: f64, seconds: i64| pb::Assessment {
        assessed_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        ..crate::helpers::assessment(id, person, "rust", score)
    };
    record(
        &mut app,
        vec![
            at("t1", "alice", 2.0, t0),
            at("t2", "alice", 4.0, t0 + 100 * day),
            at("t3", "bob", 3.5, t0 + 50 * day),
        ],
    )
    .await;

    let trend = app
        .clients(&app.admin_token)
        .capability
        .get_capability_trend(pb::GetCapabilityTrendRequest {
            team_id: "backend".into(),
            skill_ids: vec!["rust".into()],
            from: Some(prost_types::Timestamp {
                seconds: t0,
                nanos: 0,
            }),
            to: Some(prost_types::Timestamp {
                seconds: t0 + 100 * day,
                nanos: 0,
            }),
            interval_days: 50,
        })
        .await
        .unwrap()
        .into_inner();
    let points: Vec<(u32, u32)> = trend
        .points
        .iter()
        .map(|p| (p.known_count, p.proficient_count))
        .collect();
    // Day 100: alice reaches 3.09 (below), bob holds 3.5: both proficient.
    assert_eq!(points, [(1, 0), (2, 1), (2, 2)]);
    assert!(close(trend.points[0].mean_level, 2.0));
    assert!(close(trend.points[1].mean_level, 2.75));
    // Day 100, alice: weights 0.5^(100/365) = 0.82704 and 1 → (1.65408 + 4) / 1.82704
    let alice = (2.0 * 0.827_04 + 4.0) / 1.827_04;
    assert!(close(trend.points[2].mean_level, (alice + 3.5) / 2.0));
    assert_eq!(trend.improvements.len(), 1, "bob is unknown at the start");
    let story = &trend.improvements[0];
    assert_eq!(
        (story.person_id.as_str(), story.skill_id.as_str()),
        ("alice", "rust")
    );
    assert!((story.delta - (alice - 2.0)).abs() < 1e-3);

    // The same team at day 50: alice had only her 2.0.
    let then = app
        .clients(&app.admin_token)
        .capability
        .get_team_capability(pb::GetTeamCapabilityRequest {
            team_id: "backend".into(),
            skill_ids: vec!["rust".into()],
            as_of: Some(prost_types::Timestamp {
                seconds: t0 + 50 * day,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .capability
        .unwrap();
    assert!(close(then.members[0].cells[0].level, 2.0));
    assert!(close(then.members[1].cells[0].level, 3.5));
    assert_eq!(then.skills[0].proficient_count, 1);

    let backwards = app
        .clients(&app.admin_token)
        .capability
        .get_capability_trend(pb::GetCapabilityTrendRequest {
            team_id: "backend".into(),
            skill_ids: vec!["rust".into()],
            from: Some(prost_types::Timestamp {
                seconds: now,
                nanos: 0,
            }),
            to: Some(prost_types::Timestamp {
                seconds: t0,
                nanos: 0,
            }),
            interval_days: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::violations(&backwards)[0].0, "to");
}

#[tokio::test]
async fn an_erased_person_disappears_from_cached_team_views() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    record(&mut app, vec![fresh("e1", "bob", "rust", 4.0)]).await;
    let mut capability = app.clients(&app.admin_token).capability;
    let ask = || pb::GetTeamCapabilityRequest {
        team_id: "backend".into(),
        ..Default::default()
    };
    for _ in 0..2 {
        // The second read is served from the cache.
        let view = capability
            .get_team_capability(ask())
            .await
            .unwrap()
            .into_inner()
            .capability
            .unwrap();
        assert!(view.members.iter().any(|m| m.person_id == "bob"));
    }
    app.directory
        .delete_person(pb::DeletePersonRequest {
            person_id: "bob".into(),
        })
        .await
        .unwrap();
    let view = capability
        .get_team_capability(ask())
        .await
        .unwrap()
        .into_inner()
        .capability
        .unwrap();
    assert!(view.members.iter().all(|m| m.person_id != "bob"));
    assert!(
        view.skills.iter().all(|s| s.proficient_count == 0),
        "bob's rust 4.0 is gone too"
    );
}

#[tokio::test]
async fn trend_times_at_the_limits_of_timestamp_are_refused_and_the_server_lives_on() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let mut capability = app.clients(&app.admin_token).capability;
    let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    let far = 9_223_372_036_854_775;
    let cases = [
        // (from, to, interval_days, the field the error names)
        (-far + 1, far, 0, "from"),
        (far - 100 * 86_400, far, 1, "from"),
        (253_402_300_799 - 100 * 86_400, 253_402_300_800, 1, "to"),
        (-62_135_596_800, 253_402_300_799, 1, "interval_days"),
    ];
    for (from, to, interval_days, field) in cases {
        let refused = capability
            .get_capability_trend(pb::GetCapabilityTrendRequest {
                team_id: "backend".into(),
                skill_ids: vec!["rust".into()],
                from: at(from),
                to: at(to),
                interval_days,
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{from} {to}");
        assert_eq!(crate::helpers::violations(&refused)[0].0, field);
    }
    // The whole range in one step of 11.7 million years: a valid, one-point answer.
    let widest = capability
        .get_capability_trend(pb::GetCapabilityTrendRequest {
            team_id: "backend".into(),
            skill_ids: vec!["rust".into()],
            from: at(-62_135_596_800),
            to: at(253_402_300_799),
            interval_days: u32::MAX,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(widest.points.len(), 1);
}

/// The evidence horizon is the organisation's: with a half-life of 730 days, a single
/// objective test 1.5 years old keeps more weight — and gives more confidence — than at
/// the default 365, exactly as `1 − e^(−0.5^(age / half-life))` says.
#[tokio::test]
async fn the_evidence_half_life_setting_sets_how_fast_confidence_fades() {
    let assessed = 1_750_000_000i64;
    let mut confidences = Vec::new();
    for half_life in [None, Some(730.0f32)] {
        let temp = tempfile::tempdir().unwrap();
        let mut config = capsight::server::ServerConfig::new(temp.path().join("data"));
        config.engine.evidence_half_life_days = half_life;
        let mut app = TestApp::start(config).await;
        seed_org(&mut app).await;
        let mut test = crate::helpers::assessment("old-1", "alice", "rust", 4.0);
        test.assessed_at = Some(prost_types::Timestamp {
            seconds: assessed,
            nanos: 0,
        });
        record(&mut app, vec![test]).await;
        let profile = app
            .clients(&app.admin_token)
            .capability
            .get_person_profile(pb::GetPersonProfileRequest {
                person_id: "alice".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let rust = profile
            .skills
            .iter()
            .find(|s| s.skill_id == "rust")
            .unwrap();
        let age_days = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            - assessed as f64)
            / 86_400.0;
        let days = f64::from(half_life.unwrap_or(365.0));
        let expected = 1.0 - (-(0.5f64.powf(age_days / days))).exp();
        assert!(
            (rust.confidence - expected).abs() < 1e-3,
            "half-life {days}: {} vs {expected}",
            rust.confidence
        );
        confidences.push(rust.confidence);
    }
    assert!(confidences[1] > confidences[0] + 0.1, "{confidences:?}");
}

/// A large subtree's members come in pages, in both layouts: every member once, in id
/// order, with the whole team's summaries and size on every page; a token continues
/// only its own question and a page size over the limit is refused by field.
#[tokio::test]
async fn team_members_are_paged_with_summaries_for_the_whole_team() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = capsight::server::ServerConfig::new(temp.path().join("data"));
    config.demo = Some(capsight::demo::DemoConfig::default());
    let app = TestApp::start(config).await;
    let mut capability = app.clients(&app.admin_token).capability;
    let ask = |layout: pb::MatrixLayout, member_page_token: String| pb::GetTeamCapabilityRequest {
        team_id: "dept-01".into(),
        include_subteams: true,
        layout: layout.into(),
        member_page_size: 40,
        member_page_token,
        ..Default::default()
    };
    for layout in [pb::MatrixLayout::Cells, pb::MatrixLayout::Dense] {
        let (mut people, mut token, mut first) = (Vec::new(), String::new(), None);
        loop {
            let page = capability
                .get_team_capability(ask(layout, token))
                .await
                .unwrap()
                .into_inner()
                .capability
                .expect("a view");
            assert!(page.members.len() <= 40);
            if layout == pb::MatrixLayout::Dense {
                let known = page.dense.as_ref().expect("dense").known_bitmap.len();
                assert_eq!(
                    known,
                    (page.members.len() * page.skill_ids.len()).div_ceil(8)
                );
            }
            let first = first.get_or_insert_with(|| page.clone());
            assert_eq!(page.skills, first.skills, "summaries cover the whole team");
            assert_eq!(page.member_count, first.member_count);
            people.extend(page.members.iter().map(|m| m.person_id.clone()));
            token = page.next_member_page_token;
            if token.is_empty() {
                break;
            }
        }
        let first = first.expect("a first page");
        assert!(first.member_count > 40, "{} members", first.member_count);
        assert_eq!(people.len(), first.member_count as usize);
        assert!(
            people.windows(2).all(|w| w[0] < w[1]),
            "each once, in order"
        );
    }
    let second = capability
        .get_team_capability(ask(pb::MatrixLayout::Cells, String::new()))
        .await
        .unwrap()
        .into_inner()
        .capability
        .expect("a view")
        .next_member_page_token;
    let other_team = pb::GetTeamCapabilityRequest {
        team_id: "dept-02".into(),
        ..ask(pb::MatrixLayout::Cells, second)
    };
    let too_many = pb::GetTeamCapabilityRequest {
        member_page_size: 10_001,
        ..ask(pb::MatrixLayout::Cells, String::new())
    };
    for (request, field) in [
        (other_team, "member_page_token"),
        (too_many, "member_page_size"),
    ] {
        let status = capability.get_team_capability(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violations(&status)[0].0, field);
    }
}
