//! `ComposeTeam` on hand-built organisations: coverage arithmetic, every constraint,
//! protection of source teams, infeasible requests, alternatives and optimality.

use std::collections::HashMap;

use capsight::api::pb;
use tonic::Code;

use crate::helpers::{TestApp, assessment, person, role, skill, team, violations};

/// platform → {p1, p2}; design → {d1}. Role `dev` needs rust; `designer` needs ux.
async fn org() -> TestApp {
    let mut app = TestApp::spawn().await;
    let d = &mut app.directory;
    d.upsert_skills(pb::UpsertSkillsRequest {
        skills: vec![
            skill("rust"),
            skill("k8s"),
            skill("ux"),
            skill("stakeholder"),
        ],
    })
    .await
    .unwrap();
    d.upsert_roles(pb::UpsertRolesRequest {
        roles: vec![role("dev", &["rust"]), role("designer", &["ux"])],
    })
    .await
    .unwrap();
    d.upsert_teams(pb::UpsertTeamsRequest {
        teams: vec![
            team("org", ""),
            team("platform", "org"),
            team("p1", "platform"),
            team("p2", "platform"),
            team("design", "org"),
            team("d1", "design"),
        ],
    })
    .await
    .unwrap();
    let people = [
        ("ann", "p1", "dev", 1.0, [5.0, 3.5, 0.0, 1.0]),
        ("ben", "p1", "dev", 1.0, [2.0, 4.0, 0.0, 1.0]),
        ("cat", "p2", "dev", 0.5, [4.0, 3.0, 1.0, 3.0]),
        ("dev", "p2", "dev", 1.0, [3.5, 1.0, 1.0, 1.0]),
        ("eve", "d1", "designer", 1.0, [0.0, 0.0, 4.5, 3.5]),
        ("fay", "d1", "designer", 0.2, [0.0, 0.0, 3.5, 1.0]),
    ];
    let mut list = Vec::new();
    let mut evidence = Vec::new();
    for (id, t, r, availability, levels) in people {
        let mut p = person(id, t);
        p.role_id = r.into();
        p.availability = availability;
        list.push(p);
        for (skill, level) in ["rust", "k8s", "ux", "stakeholder"].iter().zip(levels) {
            evidence.push(assessment(&format!("{id}-{skill}"), id, skill, level));
        }
    }
    d.upsert_people(pb::UpsertPeopleRequest { people: list })
        .await
        .unwrap();
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: evidence,
        })
        .await
        .unwrap();
    app
}

fn need(skill: &str, level: f64, people: u32) -> pb::TeamSkillRequirement {
    pb::TeamSkillRequirement {
        skill_id: skill.into(),
        min_level: level,
        min_people: people,
        weight: 1.0,
    }
}

fn ask() -> pb::ComposeTeamRequest {
    pb::ComposeTeamRequest {
        requirements: vec![
            need("rust", 4.0, 1),
            need("k8s", 3.0, 2),
            need("ux", 3.0, 1),
            need("stakeholder", 3.0, 1),
        ],
        min_size: 2,
        max_size: 3,
        ..Default::default()
    }
}

fn ids(team: &pb::ProposedTeam) -> Vec<&str> {
    let mut ids: Vec<&str> = team.members.iter().map(|m| m.person_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn the_best_team_covers_everything_and_is_proven_optimal() {
    let app = org().await;
    let mut talent = app.clients(&app.admin_token).talent;
    let mut request = ask();
    request.alternatives = 2;
    let answer = talent.compose_team(request).await.unwrap().into_inner();
    let best = answer.best.clone().unwrap();
    // ann (rust 5, k8s 3.5), cat (k8s 3, stakeholder 3), eve (ux 4.5, stakeholder 3.5).
    assert_eq!(ids(&best), ["ann", "cat", "eve"]);
    assert!((best.coverage - 1.0).abs() < 1e-9);
    assert!(best.requirements.iter().all(|r| r.met >= r.wanted));
    assert_eq!(answer.optimality(), pb::Optimality::ProvenOptimal);
    assert_eq!(answer.gap, 0.0);
    assert_eq!(answer.pool_size, 6);
    for m in &best.members {
        assert!(!m.reason.is_empty(), "{m:?}");
    }
    let ann = best.members.iter().find(|m| m.person_id == "ann").unwrap();
    assert_eq!(ann.satisfies_skill_ids, ["rust", "k8s"]);
    // Taking ann leaves p1 without a proficient rust developer: reported as impact.
    let p1 = best.impacts.iter().find(|i| i.team_id == "p1").unwrap();
    assert_eq!(p1.skills_lost, ["rust"]);
    assert!(!answer.alternatives.is_empty());
    // With a preference for archetype diversity each member's archetype is named, and
    // coverage is not given up for it.
    let mut request = ask();
    request.prefer_archetype_diversity = true;
    let diverse = talent
        .compose_team(request)
        .await
        .unwrap()
        .into_inner()
        .best
        .unwrap();
    assert!(diverse.members.iter().all(|m| !m.archetype.is_empty()));
    assert!((diverse.coverage - 1.0).abs() < 1e-9);
    for alternative in &answer.alternatives {
        assert_ne!(ids(alternative), ids(&best));
        assert!(alternative.objective <= best.objective + 1e-12);
    }
}

#[tokio::test]
async fn constraints_are_honoured() {
    let app = org().await;
    let mut talent = app.clients(&app.admin_token).talent;

    // Protecting source teams: ann is p1's only proficient rust developer.
    let mut request = ask();
    request.protect_source_teams = true;
    let answer = talent.compose_team(request).await.unwrap().into_inner();
    let best = answer.best.clone().unwrap();
    assert!(!ids(&best).contains(&"ann"));
    let conflicts: HashMap<&str, &pb::ProtectionConflict> = answer
        .protection_conflicts
        .iter()
        .map(|c| (c.person_id.as_str(), c))
        .collect();
    assert_eq!(conflicts["ann"].skill_ids, ["rust"]);
    assert!(best.impacts.iter().all(|i| i.skills_lost.is_empty()));
    // Without ann nobody has rust ≥ 4 besides cat, whose team keeps dev.
    let rust = best
        .requirements
        .iter()
        .find(|r| r.skill_id == "rust")
        .unwrap();
    assert_eq!((rust.met, rust.wanted), (1, 1));

    // Availability, pool, exclusion and the per-team limit.
    let mut request = ask();
    request.min_availability = 0.6;
    request.pool_team_ids = vec!["platform".into()];
    request.include_person_ids = vec!["eve".into()];
    request.exclude_person_ids = vec!["ben".into()];
    request.max_per_source_team = Some(1);
    let best = talent
        .compose_team(request)
        .await
        .unwrap()
        .into_inner()
        .best
        .unwrap();
    let members = ids(&best);
    assert!(!members.contains(&"cat"), "availability 0.5 < 0.6");
    assert!(!members.contains(&"ben") && !members.contains(&"fay"));
    let mut per_team: HashMap<&str, usize> = HashMap::new();
    for m in &best.members {
        *per_team.entry(m.team_id.as_str()).or_default() += 1;
    }
    assert!(per_team.values().all(|&n| n <= 1), "{per_team:?}");

    // Must-include is kept even when it costs coverage.
    let mut request = ask();
    request.must_include_person_ids = vec!["fay".into()];
    let best = talent
        .compose_team(request)
        .await
        .unwrap()
        .into_inner()
        .best
        .unwrap();
    assert!(ids(&best).contains(&"fay"));
    let fay = best.members.iter().find(|m| m.person_id == "fay").unwrap();
    assert!(fay.reason.starts_with("Must be included"));
}

#[tokio::test]
async fn infeasible_requests_say_what_cannot_be_met() {
    let app = org().await;
    let mut talent = app.clients(&app.admin_token).talent;

    let mut request = ask();
    request.must_include_person_ids = vec!["ann".into()];
    request.protect_source_teams = true;
    let status = talent.compose_team(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let v = violations(&status);
    assert_eq!(v[0].0, "must_include_person_ids");
    assert!(v[0].1.contains("last proficient"), "{v:?}");

    let mut request = ask();
    request.min_size = 3;
    request.max_size = 3;
    request.pool_team_ids = vec!["design".into()];
    let status = talent.compose_team(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "min_size");

    let mut request = ask();
    request.requirements[1].skill_id = "cobol".into();
    request.requirements[2].min_level = 7.0;
    request.max_size = 0;
    let status = talent.compose_team(request).await.unwrap_err();
    let fields: Vec<String> = violations(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "requirements[1].skill_id",
            "requirements[2].min_level",
            "max_size",
            "min_size"
        ]
    );

    // Requirements nobody meets are reported, not an error.
    let mut request = ask();
    request.requirements.push(need("ux", 5.0, 1));
    let best = talent
        .compose_team(request)
        .await
        .unwrap()
        .into_inner()
        .best
        .unwrap();
    assert!(best.coverage < 1.0);
    let unmet = best.requirements.last().unwrap();
    assert_eq!((unmet.met, unmet.wanted), (0, 1));
}

#[tokio::test]
async fn alternatives_in_a_large_pool_are_genuinely_different() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = capsight::server::ServerConfig::new(temp.path().join("data"));
    config.demo = Some(capsight::demo::DemoConfig::default());
    let app = TestApp::start(config).await;
    let mut talent = app.clients(&app.admin_token).talent;
    let answer = talent
        .compose_team(pb::ComposeTeamRequest {
            requirements: vec![
                need("rust", 3.0, 1),
                need("kubernetes", 3.0, 2),
                need("stakeholder-management", 3.0, 1),
                need("accessibility", 3.0, 1),
            ],
            min_size: 6,
            max_size: 6,
            alternatives: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let best = answer.best.unwrap();
    assert_eq!(
        answer.alternatives.len(),
        3,
        "{} alternatives",
        answer.alternatives.len()
    );
    // Each differs from the best team and from each other in at least a third (2 of 6).
    let mut teams = vec![ids(&best)];
    for alternative in &answer.alternatives {
        let these = ids(alternative);
        for other in &teams {
            let different = these.iter().filter(|p| !other.contains(p)).count();
            assert!(different >= 2, "{these:?} vs {other:?}");
        }
        assert!(alternative.objective <= best.objective + 1e-12);
        teams.push(these);
    }
}

/// One requirement that one person of a 40-person pool meets: the team is that person
/// alone (not padded to `max_size`), proven optimal although the pool is too large for
/// the exact search; a minimum size is filled with the strongest of the rest, and every
/// member's reason says what they cover or why they are there.
#[tokio::test]
async fn a_team_is_as_small_as_its_coverage_allows() {
    let mut app = org().await;
    let mut people = Vec::new();
    let mut evidence = Vec::new();
    for i in 0..40 {
        let id = format!("x{i:02}");
        people.push(person(&id, "p2"));
        let level = if i == 17 {
            4.5
        } else {
            1.0 + (i % 4) as f64 * 0.5
        };
        evidence.push(assessment(&format!("{id}-ux"), &id, "ux", level));
    }
    app.directory
        .upsert_people(pb::UpsertPeopleRequest { people })
        .await
        .unwrap();
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: evidence,
        })
        .await
        .unwrap();
    let mut talent = app.clients(&app.admin_token).talent;
    let request = pb::ComposeTeamRequest {
        requirements: vec![need("ux", 4.0, 1)],
        max_size: 5,
        pool_team_ids: vec!["p2".into()],
        ..Default::default()
    };
    let answer = talent
        .compose_team(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(answer.pool_size > 30, "{}", answer.pool_size);
    let best = answer.best.clone().unwrap();
    assert_eq!(ids(&best), ["x17"]);
    assert!(best.members[0].reason.starts_with("Covers Skill ux 4.5"));
    assert_eq!(answer.optimality(), pb::Optimality::ProvenOptimal);
    assert_eq!(answer.gap, 0.0);

    let padded = talent
        .compose_team(pb::ComposeTeamRequest {
            min_size: 3,
            ..request
        })
        .await
        .unwrap()
        .into_inner()
        .best
        .unwrap();
    let members = ids(&padded);
    assert_eq!(members.len(), 3);
    assert!(members.contains(&"x17"));
    for m in padded.members.iter().filter(|m| m.person_id != "x17") {
        assert!(
            m.reason.contains("minimum team size of 3"),
            "{}: {}",
            m.person_id,
            m.reason
        );
    }
}
