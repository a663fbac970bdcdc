//! Archetypes, organisation-wide skill patterns (with minimum group size) and mentors.

use std::collections::HashMap;

use capsight::analytics::archetypes::adjusted_rand_index;
use capsight::api::pb;
use capsight::api::pb::AccessRole;
use capsight::api::pb::org_insights_service_client::OrgInsightsServiceClient;
use capsight::demo::{DemoConfig, DemoOrg};
use capsight::server::ServerConfig;
use tonic::Code;

use crate::helpers::{TestApp, assessment, person, role, skill, team};

async fn demo_app() -> (TestApp, tempfile::TempDir) {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.demo = Some(DemoConfig::default());
    (TestApp::start(config).await, temp)
}

/// Archetypes, with every member on one page when `members`.
fn archetypes_request(members: bool) -> pb::GetSkillArchetypesRequest {
    pb::GetSkillArchetypesRequest {
        include_members: members,
        member_page_size: 20_000,
        ..Default::default()
    }
}

/// Adjusted Rand index of the archetypes `found` (with members) against the archetypes
/// the demo organisation of `config` planted.
fn planted_ari(config: &DemoConfig, found: &pb::GetSkillArchetypesResponse) -> f64 {
    let demo = DemoOrg::generate(config);
    let planted: HashMap<String, usize> = demo
        .people
        .iter()
        .zip(&demo.planted_archetypes)
        .map(|(p, &a)| (p.id.to_string(), a))
        .collect();
    let truth: Vec<usize> = found
        .members
        .iter()
        .map(|m| planted[&m.person_id])
        .collect();
    let recovered: Vec<usize> = found.members.iter().map(|m| m.archetype as usize).collect();
    adjusted_rand_index(&truth, &recovered)
}

/// How current the archetypes served right now are.
async fn archetypes_freshness(
    insights: &mut OrgInsightsServiceClient<crate::helpers::Authed>,
) -> pb::Freshness {
    insights
        .get_skill_archetypes(archetypes_request(false))
        .await
        .unwrap()
        .into_inner()
        .freshness
        .unwrap()
}

#[tokio::test]
async fn demo_archetypes_recover_the_planted_ones_and_erasure_keeps_them_without_the_person() {
    let (mut app, _temp) = demo_app().await;
    let admin = app.clients(&app.admin_token.clone());
    let mut insights = admin.insights.clone();
    let found = insights
        .get_skill_archetypes(archetypes_request(true))
        .await
        .expect("archetypes")
        .into_inner();

    let demo = DemoOrg::generate(&DemoConfig::default());
    let ari = planted_ari(&DemoConfig::default(), &found);
    println!(
        "k = {}, silhouette {:.3}, ARI {ari:.3}; labels: {:?}",
        found.archetypes.len(),
        found.silhouette,
        found
            .archetypes
            .iter()
            .map(|a| &a.label)
            .collect::<Vec<_>>()
    );
    assert!(ari >= 0.8, "adjusted Rand index {ari}");
    assert_eq!(found.members.len(), demo.people.len());
    assert_eq!(found.people as usize, demo.people.len());
    assert!(!found.k_scores.is_empty(), "k chosen by silhouette");
    for a in &found.archetypes {
        assert_eq!(a.suppression(), pb::Suppression::None);
        assert_eq!(a.centroid.len(), found.skill_ids.len());
        assert!(!a.defining_skills.is_empty() && !a.label.is_empty());
        let in_departments: u32 = a.departments.iter().map(|d| d.count).sum();
        assert_eq!(in_departments + a.other_departments, a.size);
    }

    // The map: two axes explaining a real share of the variance, every member placed,
    // and members nearer their own archetype's centre than the average other centre.
    assert_eq!(found.map_explained.len(), 2);
    let (ex, ey) = (found.map_explained[0], found.map_explained[1]);
    assert!(
        ex >= ey && ey > 0.0 && ex + ey <= 1.0,
        "explained {ex}, {ey}"
    );
    let centre = |i: u32| {
        found.archetypes[i as usize]
            .position
            .expect("centroid position")
    };
    let distance =
        |p: &pb::MapPoint, q: &pb::MapPoint| ((p.x - q.x).powi(2) + (p.y - q.y).powi(2)).sqrt();
    let mut nearer_own = 0;
    for m in &found.members {
        let p = m.position.expect("member position");
        let own = distance(&p, &centre(m.archetype));
        let others: Vec<f64> = (0..found.archetypes.len() as u32)
            .filter(|&i| i != m.archetype)
            .map(|i| distance(&p, &centre(i)))
            .collect();
        if own < others.iter().sum::<f64>() / others.len() as f64 {
            nearer_own += 1;
        }
    }
    assert!(
        nearer_own * 10 >= found.members.len() * 9,
        "{nearer_own} of {} members nearer their own centre",
        found.members.len()
    );

    // Analysts see aggregates only.
    let analyst = app.token(AccessRole::Analyst, &[], "").await;
    let mut as_analyst = app.clients(&analyst).insights;
    let denied = as_analyst
        .get_skill_archetypes(archetypes_request(true))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let aggregate = as_analyst
        .get_skill_archetypes(archetypes_request(false))
        .await
        .unwrap()
        .into_inner();
    assert!(aggregate.members.is_empty());
    assert_eq!(aggregate.archetypes.len(), found.archetypes.len());
    assert!(aggregate.archetypes.iter().all(|a| a.position.is_some()));

    // Department patterns: self-ratings are inflated in the demo, levels grow.
    let patterns = as_analyst
        .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
            group_by: pb::GroupBy::Department.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(patterns.groups.len(), 10);
    let total = patterns.total.clone().unwrap();
    assert_eq!(total.size as usize, demo.people.len());
    let calibration = total.calibration.unwrap();
    assert!(calibration > 0.2, "calibration {calibration}");
    assert!(total.trend.unwrap() > 0.0);
    assert!(!total.archetypes.is_empty());

    // Erase one person: no cached archetype or pattern still counts them.
    let victim = found.members[0].person_id.clone();
    admin
        .directory
        .clone()
        .delete_person(pb::DeletePersonRequest {
            person_id: victim.clone(),
        })
        .await
        .unwrap();
    // The next answer comes at once, without them: the cached result with their
    // contribution removed, stale (and saying so) while the current one is computed.
    let scrubbed = insights
        .get_skill_archetypes(archetypes_request(true))
        .await
        .unwrap()
        .into_inner();
    let freshness = scrubbed.freshness.unwrap();
    assert!(freshness.stale && freshness.refreshing, "{freshness:?}");
    assert_eq!(scrubbed.people as usize, demo.people.len() - 1);
    assert_eq!(scrubbed.members.len(), demo.people.len() - 1);
    assert!(scrubbed.members.iter().all(|m| m.person_id != victim));
    let sizes: u32 = scrubbed.archetypes.iter().map(|a| a.size).sum();
    assert_eq!(sizes as usize, demo.people.len() - 1);
    // The recomputation agrees with it: same archetypes, centroids within 0.05 levels.
    let after = insights
        .get_skill_archetypes(pb::GetSkillArchetypesRequest {
            result_policy: pb::ResultPolicy::Current.into(),
            ..archetypes_request(true)
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!after.freshness.unwrap().stale);
    assert_eq!(after.people as usize, demo.people.len() - 1);
    assert!(after.members.iter().all(|m| m.person_id != victim));
    for a in &scrubbed.archetypes {
        let b = after
            .archetypes
            .iter()
            .find(|b| b.label == a.label)
            .unwrap_or_else(|| panic!("{} recomputed", a.label));
        let rms = (a
            .centroid
            .iter()
            .zip(&b.centroid)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            / a.centroid.len() as f64)
            .sqrt();
        assert!(rms < 0.05, "{}: centroids {rms} apart", a.label);
        assert!(
            a.size.abs_diff(b.size) <= 2,
            "{}: {} vs {}",
            a.label,
            a.size,
            b.size
        );
    }
    let patterns = as_analyst
        .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
            group_by: pb::GroupBy::Department.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(patterns.total.unwrap().size as usize, demo.people.len() - 1);

    // Tokens are not data: creating one leaves the cached result current.
    let before = after.freshness.unwrap();
    app.token(AccessRole::Manager, &["team-00001"], "").await;
    let fresh = archetypes_freshness(&mut insights).await;
    assert!(!fresh.stale, "{fresh:?}");
    assert_eq!(fresh.computed_version, before.computed_version);

    // Data changes without an erasure: the last result is served at once, marked stale.
    admin
        .ingest
        .clone()
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: vec![assessment(
                "late-1",
                &found.members[1].person_id,
                "rust",
                4.0,
            )],
        })
        .await
        .unwrap();
    let stale = archetypes_freshness(&mut insights).await;
    assert!(stale.stale && stale.computed_version < stale.current_version);
}

/// Teams of 2, 6 and 9 people in department A; 7 and 8 in B; roles of 3 and 29.
async fn small_teams_app() -> TestApp {
    let mut app = TestApp::spawn().await;
    let d = &mut app.directory;
    d.upsert_skills(pb::UpsertSkillsRequest {
        skills: vec![skill("rust"), skill("sql")],
    })
    .await
    .unwrap();
    d.upsert_roles(pb::UpsertRolesRequest {
        roles: vec![role("dev", &["rust"]), role("dba", &["sql"])],
    })
    .await
    .unwrap();
    d.upsert_teams(pb::UpsertTeamsRequest {
        teams: vec![
            team("org", ""),
            team("a", "org"),
            team("b", "org"),
            team("a1", "a"),
            team("a2", "a"),
            team("a3", "a"),
            team("b1", "b"),
            team("b2", "b"),
        ],
    })
    .await
    .unwrap();
    let sizes = [("a1", 2), ("a2", 6), ("a3", 9), ("b1", 7), ("b2", 8)];
    let mut people = Vec::new();
    let mut evidence = Vec::new();
    for (t, n) in sizes {
        for i in 0..n {
            let id = format!("{t}-p{i}");
            let mut p = person(&id, t);
            if people.len() % 11 == 0 {
                p.role_id = "dba".into();
            }
            evidence.push(assessment(
                &format!("{id}-rust"),
                &id,
                "rust",
                (i % 5) as f64,
            ));
            evidence.push(assessment(&format!("{id}-sql"), &id, "sql", 2.5));
            people.push(p);
        }
    }
    d.upsert_people(pb::UpsertPeopleRequest { people })
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

#[tokio::test]
async fn no_pattern_reveals_a_group_under_the_minimum_directly_or_by_difference() {
    let mut app = small_teams_app().await;
    let analyst = app.token(AccessRole::Analyst, &[], "").await;
    let mut client = app.clients(&analyst).insights;
    let minimum = 5u32;
    let mut answers = HashMap::new();
    for group_by in [
        pb::GroupBy::Department,
        pb::GroupBy::Team,
        pb::GroupBy::Role,
        pb::GroupBy::Archetype,
    ] {
        // Asking for a smaller minimum does not lower the server's.
        let answer = client
            .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
                group_by: group_by.into(),
                min_group_size: Some(2),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.min_group_size, minimum);
        let total = answer.total.clone().unwrap();
        assert_eq!(total.size, 32);
        let visible: u32 = answer.groups.iter().map(|g| g.size).sum();
        let hidden = total.size - visible;
        assert!(
            hidden == 0 || hidden >= minimum,
            "{group_by:?}: total minus visible groups reveals {hidden} people"
        );
        for g in &answer.groups {
            match g.suppression() {
                pb::Suppression::None => assert!(g.size >= minimum, "{g:?}"),
                _ => {
                    assert_eq!(g.size, 0, "suppressed group carries its size: {g:?}");
                    assert!(g.skills.is_empty() && g.calibration.is_none() && g.trend.is_none());
                }
            }
        }
        answers.insert(group_by, answer);
    }
    // The 2-person team is hidden, and so is its smallest sibling, so that department A
    // minus its visible teams is not the 2-person team.
    let teams = &answers[&pb::GroupBy::Team];
    let suppression = |id: &str| {
        teams
            .groups
            .iter()
            .find(|g| g.group_id == id)
            .unwrap()
            .suppression()
    };
    assert_eq!(suppression("a1"), pb::Suppression::TooSmall);
    assert_eq!(suppression("a2"), pb::Suppression::Complementary);
    assert_eq!(suppression("a3"), pb::Suppression::None);
    for department in &answers[&pb::GroupBy::Department].groups {
        let shown: u32 = teams
            .groups
            .iter()
            .filter(|t| t.parent_id == department.group_id)
            .map(|t| t.size)
            .sum();
        let difference = department.size - shown;
        assert!(
            department.size == 0 || difference == 0 || difference >= minimum,
            "department {} minus its visible teams reveals {difference}",
            department.group_id
        );
    }
    // The role of 3 people is hidden with its complement.
    let roles = &answers[&pb::GroupBy::Role];
    assert!(
        roles
            .groups
            .iter()
            .all(|g| g.suppression() != pb::Suppression::None)
    );

    // Analysts cannot narrow the scope (nested scopes could be differenced).
    let status = client
        .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
            group_by: pb::GroupBy::Team.into(),
            scope_team_id: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
            group_by: pb::GroupBy::Unspecified.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn mentors_are_proficient_where_the_mentee_is_not_and_the_plan_beats_greedy() {
    let mut app = TestApp::spawn().await;
    let d = &mut app.directory;
    d.upsert_skills(pb::UpsertSkillsRequest {
        skills: vec![skill("rust"), skill("sql")],
    })
    .await
    .unwrap();
    d.upsert_roles(pb::UpsertRolesRequest {
        roles: vec![role("dev", &["rust", "sql"])],
    })
    .await
    .unwrap();
    d.upsert_teams(pb::UpsertTeamsRequest {
        teams: vec![team("org", ""), team("backend", "org"), team("data", "org")],
    })
    .await
    .unwrap();
    d.upsert_people(pb::UpsertPeopleRequest {
        people: vec![
            person("alice", "backend"),
            person("bob", "backend"),
            person("carol", "data"),
            person("dan", "data"),
            person("erin", "data"),
        ],
    })
    .await
    .unwrap();
    let levels = [
        ("alice", 1.0, 1.0),
        ("bob", 5.0, 1.0),
        ("carol", 4.5, 2.0),
        ("dan", 1.0, 5.0),
        ("erin", 3.4, 3.0),
    ];
    let evidence = levels
        .iter()
        .flat_map(|(p, rust, sql)| {
            [
                assessment(&format!("{p}-rust"), p, "rust", *rust),
                assessment(&format!("{p}-sql"), p, "sql", *sql),
            ]
        })
        .collect();
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: evidence,
        })
        .await
        .unwrap();

    let mut talent = app.clients(&app.admin_token.clone()).talent;
    let found = talent
        .find_mentors(pb::FindMentorsRequest {
            person_id: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = found.mentors.iter().map(|m| m.person_id.as_str()).collect();
    // bob is in alice's team; erin is below 3.5; alice never mentors herself.
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&"carol") && ids.contains(&"dan"));
    for m in &found.mentors {
        assert!(!m.rationale.is_empty() && m.expected_gain > 0.0);
        for s in &m.skills {
            assert!(s.mentor_level >= 3.5);
            assert!(s.mentor_level >= s.mentee_level.unwrap_or(0.0) + 1.5);
        }
    }
    let with_team = talent
        .find_mentors(pb::FindMentorsRequest {
            person_id: "alice".into(),
            allow_same_team: true,
            skill_ids: vec!["rust".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        with_team.mentors[0].person_id, "bob",
        "the strongest mentor first"
    );
    let status = talent
        .find_mentors(pb::FindMentorsRequest {
            person_id: "alice".into(),
            skill_ids: vec!["cobol".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let plan = talent
        .plan_mentoring(pb::PlanMentoringRequest {
            capacity_per_mentor: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(plan.total_gain + 1e-9 >= plan.greedy_total_gain);
    assert!(!plan.pairs.is_empty());
    let mut load: HashMap<&str, u32> = HashMap::new();
    for p in &plan.pairs {
        assert_ne!(p.mentee_id, p.mentor_id);
        *load.entry(p.mentor_id.as_str()).or_default() += 1;
    }
    assert!(load.values().all(|&l| l <= 1), "{load:?}");
}

/// Patterns by archetype follow the archetypes they group by: after a write they are
/// never served as current while those archetypes are older, every current answer's
/// archetype groups add up to the people grouped, and once the archetypes are recomputed
/// the patterns follow without another write.
#[tokio::test]
async fn patterns_by_archetype_are_never_current_on_stale_archetypes() {
    let (app, _temp) = demo_app().await;
    let admin = app.clients(&app.admin_token.clone());
    let mut insights = admin.insights.clone();
    let request = |policy: pb::ResultPolicy| pb::GetOrgSkillPatternsRequest {
        group_by: pb::GroupBy::Archetype.into(),
        result_policy: policy.into(),
        min_group_size: Some(1_000_000),
        ..Default::default()
    };
    let consistent = |answer: &pb::GetOrgSkillPatternsResponse| {
        let f = answer.freshness.unwrap();
        if f.stale {
            return;
        }
        assert_eq!(f.computed_version, f.current_version, "{f:?}");
        assert_eq!(f.archetypes_version, Some(f.computed_version), "{f:?}");
        let grouped: u32 = answer.groups.iter().map(|g| g.size).sum();
        assert_eq!(grouped, answer.total.as_ref().unwrap().size);
    };
    let first = insights
        .get_org_skill_patterns(request(pb::ResultPolicy::Current))
        .await
        .unwrap()
        .into_inner();
    consistent(&first);
    let before = first.freshness.unwrap();
    assert!(!before.stale);
    let someone = first.groups.len();
    assert!(someone > 2, "{someone} archetype groups");

    admin
        .ingest
        .clone()
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: vec![assessment("late-1", "p-000001", "rust", 4.0)],
        })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut stale_seen = false;
    loop {
        let answer = insights
            .get_org_skill_patterns(request(pb::ResultPolicy::Latest))
            .await
            .unwrap()
            .into_inner();
        consistent(&answer);
        let f = answer.freshness.unwrap();
        if f.stale {
            stale_seen = true;
            assert!(f.current_version > before.computed_version);
        } else {
            assert!(f.computed_version > before.computed_version, "{f:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "patterns never caught up: {f:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        stale_seen,
        "the first answer after the write is the old one"
    );
}

/// What an analyst sees of the demo organisation: every figure rests on at least the
/// minimum group size of people (groups, skills, categories, calibration, trend), and
/// the move-one-person-and-diff attack recovers nothing: within the culture snapshot's
/// period the answer after the move is the answer before it. An erasure publishes a new
/// snapshot at once, without the erased person.
#[tokio::test]
async fn analysts_read_a_published_snapshot_that_cannot_be_differenced() {
    let (mut app, _temp) = demo_app().await;
    let analyst_token = app.token(AccessRole::Analyst, &[], "").await;
    let mut analyst = app.clients(&analyst_token).insights;
    let admin = app.clients(&app.admin_token.clone());
    let by = |group_by: pb::GroupBy| pb::GetOrgSkillPatternsRequest {
        group_by: group_by.into(),
        result_policy: pb::ResultPolicy::Current.into(),
        ..Default::default()
    };
    let groupings = [
        pb::GroupBy::Department,
        pb::GroupBy::Team,
        pb::GroupBy::Role,
        pb::GroupBy::Archetype,
    ];
    let mut before = Vec::new();
    for grouping in groupings {
        let answer = analyst
            .get_org_skill_patterns(by(grouping))
            .await
            .unwrap()
            .into_inner();
        let minimum = answer.min_group_size;
        let (mut shown_groups, mut shown_cells) = (0, 0);
        for group in answer.groups.iter().chain(answer.total.iter()) {
            if group.suppression() != pb::Suppression::None {
                assert!(group.skills.is_empty() && group.categories.is_empty());
                assert!(group.calibration.is_none() && group.trend.is_none());
                continue;
            }
            shown_groups += 1;
            assert!(group.size >= minimum, "{grouping:?} {}", group.group_id);
            for skill in &group.skills {
                if skill.mean_level.is_some() {
                    shown_cells += 1;
                    assert!(skill.known >= minimum, "{grouping:?} {skill:?}");
                } else {
                    assert_eq!((skill.known, skill.proficient), (0, 0), "{skill:?}");
                }
            }
            for category in &group.categories {
                assert!(category.known >= minimum, "{grouping:?} {category:?}");
            }
            for share in &group.archetypes {
                assert!(share.count >= minimum, "{grouping:?} {share:?}");
            }
            assert!(group.other_archetypes == 0 || group.other_archetypes >= minimum);
            if group.calibration.is_some() {
                assert!(group.calibration_cells >= minimum);
            }
            if group.trend.is_some() {
                assert!(group.trend_cells >= minimum);
            }
        }
        assert!(shown_groups > 1 && shown_cells > 10, "{grouping:?}");
        before.push(answer);
    }

    // The attack: move one person into another team, then ask again.
    let mut directory = admin.directory.clone();
    let mut mover = directory
        .get_person(pb::GetPersonRequest {
            person_id: "p-000042".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .person
        .unwrap();
    let target = before[1]
        .groups
        .iter()
        .find(|g| g.suppression() == pb::Suppression::None && g.group_id != mover.team_id)
        .unwrap()
        .group_id
        .clone();
    mover.team_id = target;
    directory
        .upsert_people(pb::UpsertPeopleRequest {
            people: vec![mover],
        })
        .await
        .unwrap();
    for (grouping, earlier) in groupings.iter().zip(&before) {
        let later = analyst
            .get_org_skill_patterns(by(*grouping))
            .await
            .unwrap()
            .into_inner();
        let (f, e) = (later.freshness.unwrap(), earlier.freshness.unwrap());
        assert!(f.stale && f.current_version > e.computed_version, "{f:?}");
        assert_eq!(f.computed_version, e.computed_version);
        assert_eq!(
            later.groups, earlier.groups,
            "{grouping:?}: nothing to difference"
        );
        assert_eq!(later.total, earlier.total);
    }
    // Managers and admins read the current data meanwhile.
    let live = admin
        .insights
        .clone()
        .get_org_skill_patterns(by(pb::GroupBy::Team))
        .await
        .unwrap()
        .into_inner();
    assert!(!live.freshness.unwrap().stale);
    assert_ne!(live.groups, before[1].groups);

    // An erasure publishes at once: the erased person is in no analyst figure.
    directory
        .delete_person(pb::DeletePersonRequest {
            person_id: "p-000007".into(),
        })
        .await
        .unwrap();
    let after = analyst
        .get_org_skill_patterns(by(pb::GroupBy::Department))
        .await
        .unwrap()
        .into_inner();
    assert!(!after.freshness.unwrap().stale);
    assert_eq!(
        after.total.unwrap().size + 1,
        before[0].total.as_ref().unwrap().size
    );
}

/// The planted-occupations demo (30 occupations × 40 people over 320 skills, about 3 %
/// of cells known, three noisy assessments per held skill), loaded into a real server:
/// automatic k recovers the occupations from the effective levels the server computes.
#[tokio::test]
async fn automatic_k_recovers_thirty_planted_occupations_through_the_server() {
    let demo_config = DemoConfig {
        people: 1_200,
        skills: 320,
        occupations: 30,
        ..DemoConfig::default()
    };
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.demo = Some(demo_config.clone());
    let app = TestApp::start(config).await;
    let mut insights = app.clients(&app.admin_token.clone()).insights;
    let started = std::time::Instant::now();
    let found = insights
        .get_skill_archetypes(pb::GetSkillArchetypesRequest {
            include_members: true,
            member_page_size: 20_000,
            result_policy: pb::ResultPolicy::Current.into(),
            ..Default::default()
        })
        .await
        .expect("archetypes")
        .into_inner();
    let ari = planted_ari(&demo_config, &found);
    println!(
        "k = {} of range {}..={}, known {:.3}, ARI {ari:.3}, answered in {:?}",
        found.archetypes.len(),
        found.k_range_min,
        found.k_range_max,
        found.known_share,
        started.elapsed()
    );
    assert_eq!(found.members.len(), 1_200);
    assert!(found.known_share <= 0.10, "{}", found.known_share);
    assert!(ari >= 0.95, "ARI {ari}, k {}", found.archetypes.len());
    assert!(!found.k_at_range_edge);
}

/// An organisation-wide plan comes in pages that cover every pair once, with totals for
/// the whole plan on every page; its total never exceeds the proven bound; a department
/// small enough is solved exactly; a page token only continues the request it came from.
#[tokio::test]
async fn a_mentoring_plan_is_paged_and_bounded() {
    let (app, _temp) = demo_app().await;
    let mut talent = app.clients(&app.admin_token).talent;
    let request = |scope: &str, page_size: u32, page_token: String| pb::PlanMentoringRequest {
        scope_team_id: scope.into(),
        page_size,
        page_token,
        ..Default::default()
    };
    let mut pairs: Vec<pb::MentoringPair> = Vec::new();
    let mut token = String::new();
    let mut first: Option<pb::PlanMentoringResponse> = None;
    loop {
        let page = talent
            .plan_mentoring(request("", 150, token))
            .await
            .unwrap()
            .into_inner();
        assert!(page.pairs.len() <= 150);
        if let Some(first) = &first {
            assert_eq!(
                page.total_gain, first.total_gain,
                "totals cover the whole plan"
            );
            assert_eq!(page.candidate_pairs, first.candidate_pairs);
        }
        pairs.extend(page.pairs.iter().cloned());
        token = page.next_page_token.clone();
        first.get_or_insert(page);
        if token.is_empty() {
            break;
        }
    }
    let whole = first.expect("a first page");
    assert!(pairs.len() > 150, "more than one page: {}", pairs.len());
    let keys: Vec<(&str, &str)> = pairs
        .iter()
        .map(|p| (p.mentee_id.as_str(), p.mentor_id.as_str()))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "ordered, each pair once"
    );
    let sum: f64 = pairs.iter().map(|p| p.expected_gain).sum();
    assert!((sum - whole.total_gain).abs() < 1e-6 * whole.total_gain.max(1.0));
    let mut load: HashMap<&str, u32> = HashMap::new();
    for p in &pairs {
        *load.entry(p.mentor_id.as_str()).or_default() += 1;
    }
    assert!(load.values().all(|&l| l <= 3), "default capacity 3");
    assert!(whole.total_gain <= whole.total_gain_bound + 1e-9);
    assert!(whole.total_gain + 1e-9 >= whole.greedy_total_gain);
    assert!(
        !whole.proven_optimal && whole.candidate_pairs > 5_000,
        "the organisation goes to the auction: {} pairs",
        whole.candidate_pairs
    );
    assert!(
        whole.total_gain >= 0.99 * whole.total_gain_bound,
        "within 1 % of the optimum: {} of {}",
        whole.total_gain,
        whole.total_gain_bound
    );

    let team = talent
        .plan_mentoring(request("dept-01", 1000, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert!(team.candidate_pairs <= 5_000 && team.proven_optimal);
    assert_eq!(team.total_gain, team.total_gain_bound);

    let foreign = talent
        .plan_mentoring(request("dept-01", 150, whole.next_page_token.clone()))
        .await;
    let other_capacity = talent
        .plan_mentoring(pb::PlanMentoringRequest {
            capacity_per_mentor: Some(2),
            ..request("", 150, whole.next_page_token.clone())
        })
        .await;
    for refused in [foreign, other_capacity] {
        let status = refused.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
}

/// Patterns by team come 100 groups to a page by default, and the pages add up to every
/// team; archetype members page too; a token continues only its own question.
#[tokio::test]
async fn patterns_and_archetype_members_are_paged() {
    let (app, _temp) = demo_app().await;
    let mut insights = app.clients(&app.admin_token).insights;
    let by_team = |page_token: String| pb::GetOrgSkillPatternsRequest {
        group_by: pb::GroupBy::Team.into(),
        page_token,
        ..Default::default()
    };
    let first = insights
        .get_org_skill_patterns(by_team(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.groups.len(), 100, "the default page");
    let mut groups = first.groups.clone();
    let mut token = first.next_page_token.clone();
    while !token.is_empty() {
        let page = insights
            .get_org_skill_patterns(by_team(token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total, first.total);
        groups.extend(page.groups);
        token = page.next_page_token;
    }
    let teams = DemoOrg::generate(&DemoConfig::default())
        .teams
        .iter()
        .filter(|t| t.id.as_str().starts_with("team-"))
        .count();
    assert_eq!(groups.len(), teams);
    assert!(groups.windows(2).all(|w| w[0].group_id < w[1].group_id));
    let by_role = pb::GetOrgSkillPatternsRequest {
        group_by: pb::GroupBy::Role.into(),
        page_token: first.next_page_token.clone(),
        ..Default::default()
    };
    let status = insights.get_org_skill_patterns(by_role).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let members = |member_page_token: String| pb::GetSkillArchetypesRequest {
        include_members: true,
        member_page_size: 600,
        member_page_token,
        ..Default::default()
    };
    let (mut people, mut token) = (Vec::new(), String::new());
    loop {
        let page = insights
            .get_skill_archetypes(members(token))
            .await
            .unwrap()
            .into_inner();
        assert!(page.members.len() <= 600);
        people.extend(page.members.into_iter().map(|m| m.person_id));
        token = page.next_member_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(people.len(), 2_000, "every demo person once");
    assert!(people.windows(2).all(|w| w[0] < w[1]));
}
