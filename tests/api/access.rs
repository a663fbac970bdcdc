//! Authorisation and token tests. The rpc × role × scope matrix is checked against the
//! service descriptors, so an rpc added without a rule (server side) or a case (here)
//! fails the test.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use capsight::api::pb;
use capsight::api::pb::AccessRole;
use prost::Message;
use tokio_stream::StreamExt;
use tonic::{Code, Status};

use crate::helpers::{Clients, TestApp, assessment, person, seed_org, skill};

type Call = Box<
    dyn Fn(Clients, Clients, String) -> Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>
        + Send
        + Sync,
>;

/// How one rpc is called and who may call it.
struct Case {
    rpc: &'static str,
    allowed: &'static [AccessRole],
    /// Whether manager, planner and person callers are limited to their scope.
    scoped: bool,
    call: Call,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

macro_rules! case {
    ($rpc:expr, $allowed:expr, $scoped:expr, |$me:ident, $admin:ident, $subject:ident| $body:expr) => {
        Case {
            rpc: $rpc,
            allowed: $allowed,
            scoped: $scoped,
            call: Box::new(move |$me: Clients, $admin: Clients, $subject: String| {
                let _ = &$admin;
                Box::pin(async move { $body.map(|_| ()) })
            }),
        }
    };
}

use AccessRole::{Admin, Analyst, Ingest, Manager, Person, Planner};
const WRITERS: &[AccessRole] = &[Admin, Ingest];
const MODEL_READERS: &[AccessRole] = &[Admin, Manager, Planner, Analyst, Person];

fn cases() -> Vec<Case> {
    vec![
        case!(
            "/capsight.v1.DirectoryService/UpsertSkills",
            WRITERS,
            false,
            |me, admin, _s| {
                me.directory
                    .clone()
                    .upsert_skills(pb::UpsertSkillsRequest {
                        skills: vec![skill("rust")],
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/UpsertRoles",
            WRITERS,
            false,
            |me, admin, _s| {
                me.directory
                    .clone()
                    .upsert_roles(pb::UpsertRolesRequest {
                        roles: vec![crate::helpers::role("dev", &["rust", "sql"])],
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/UpsertTeams",
            WRITERS,
            false,
            |me, admin, _s| {
                me.directory
                    .clone()
                    .upsert_teams(pb::UpsertTeamsRequest {
                        teams: vec![crate::helpers::team("sales", "org")],
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/UpsertPeople",
            WRITERS,
            false,
            |me, admin, _s| {
                me.directory
                    .clone()
                    .upsert_people(pb::UpsertPeopleRequest {
                        people: vec![person(&unique("new"), "sales")],
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/GetPerson",
            &[Admin, Manager, Planner, Person],
            true,
            |me, admin, subject| {
                me.directory
                    .clone()
                    .get_person(pb::GetPersonRequest { person_id: subject })
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/ListSkills",
            MODEL_READERS,
            false,
            |me, admin, _s| {
                me.directory
                    .clone()
                    .list_skills(pb::ListSkillsRequest::default())
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/ListRoles",
            MODEL_READERS,
            false,
            |me, admin, _s| {
                me.directory
                    .clone()
                    .list_roles(pb::ListRolesRequest::default())
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/ListTeams",
            MODEL_READERS,
            false,
            |me, admin, _s| {
                me.directory
                    .clone()
                    .list_teams(pb::ListTeamsRequest::default())
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/ListPeople",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                let team = if subject == "alice" {
                    "backend"
                } else {
                    "sales"
                };
                me.directory
                    .clone()
                    .list_people(pb::ListPeopleRequest {
                        subtree_team_id: team.into(),
                        ..Default::default()
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/DeletePerson",
            &[Admin],
            false,
            |me, admin, _s| {
                let victim = unique("victim");
                admin
                    .directory
                    .clone()
                    .upsert_people(pb::UpsertPeopleRequest {
                        people: vec![person(&victim, "sales")],
                    })
                    .await?;
                me.directory
                    .clone()
                    .delete_person(pb::DeletePersonRequest { person_id: victim })
                    .await
            }
        ),
        case!(
            "/capsight.v1.DirectoryService/ExportPerson",
            &[Admin, Person],
            true,
            |me, admin, subject| {
                me.directory
                    .clone()
                    .export_person(pb::ExportPersonRequest { person_id: subject })
                    .await
            }
        ),
        case!(
            "/capsight.v1.IngestService/RecordAssessments",
            WRITERS,
            false,
            |me, admin, subject| {
                let item = assessment(&unique("m"), &subject, "rust", 3.0);
                me.ingest
                    .clone()
                    .record_assessments(pb::RecordAssessmentsRequest {
                        assessments: vec![item],
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.IngestService/StreamAssessments",
            WRITERS,
            false,
            |me, admin, subject| {
                let batch = pb::StreamAssessmentsRequest {
                    sequence: 1,
                    assessments: vec![assessment(&unique("m"), &subject, "rust", 3.0)],
                };
                let mut acks = me
                    .ingest
                    .clone()
                    .stream_assessments(tokio_stream::iter([batch]))
                    .await?
                    .into_inner();
                acks.next().await.transpose().map(|_| ())
            }
        ),
        case!(
            "/capsight.v1.CapabilityService/GetPersonProfile",
            &[Admin, Manager, Planner, Person],
            true,
            |me, admin, subject| {
                me.capability
                    .clone()
                    .get_person_profile(pb::GetPersonProfileRequest { person_id: subject })
                    .await
            }
        ),
        case!(
            "/capsight.v1.CapabilityService/GetPersonGaps",
            &[Admin, Manager, Planner, Person],
            true,
            |me, admin, subject| {
                me.capability
                    .clone()
                    .get_person_gaps(pb::GetPersonGapsRequest {
                        person_id: subject,
                        ..Default::default()
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.CapabilityService/FindExperts",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                let scope_team_id = if subject == "alice" {
                    "backend"
                } else {
                    "sales"
                };
                let requirements = vec![pb::SkillRequirement {
                    skill_id: "rust".into(),
                    min_level: 0.0,
                }];
                me.capability
                    .clone()
                    .find_experts(pb::FindExpertsRequest {
                        requirements,
                        scope_team_id: scope_team_id.into(),
                        ..Default::default()
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.OrgInsightsService/GetSkillArchetypes",
            &[Admin, Manager, Planner, Analyst],
            true,
            |me, admin, subject| {
                with_fallback_scope(&subject, |scope_team_id| {
                    let mut client = me.insights.clone();
                    async move {
                        client
                            .get_skill_archetypes(pb::GetSkillArchetypesRequest {
                                scope_team_id,
                                ..Default::default()
                            })
                            .await
                            .map(|_| ())
                    }
                })
                .await
            }
        ),
        case!(
            "/capsight.v1.OrgInsightsService/GetOrgSkillPatterns",
            &[Admin, Manager, Planner, Analyst],
            true,
            |me, admin, subject| {
                with_fallback_scope(&subject, |scope_team_id| {
                    let mut client = me.insights.clone();
                    async move {
                        client
                            .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
                                scope_team_id,
                                group_by: pb::GroupBy::Department.into(),
                                ..Default::default()
                            })
                            .await
                            .map(|_| ())
                    }
                })
                .await
            }
        ),
        case!(
            "/capsight.v1.TalentService/FindMentors",
            &[Admin, Manager, Planner, Person],
            true,
            |me, admin, subject| {
                me.talent
                    .clone()
                    .find_mentors(pb::FindMentorsRequest {
                        person_id: subject,
                        ..Default::default()
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.TalentService/PlanMentoring",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                with_fallback_scope(&subject, |scope_team_id| {
                    let mut client = me.talent.clone();
                    async move {
                        client
                            .plan_mentoring(pb::PlanMentoringRequest {
                                scope_team_id,
                                ..Default::default()
                            })
                            .await
                            .map(|_| ())
                    }
                })
                .await
            }
        ),
        case!(
            "/capsight.v1.TalentService/StartMentoring",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                let started = me
                    .talent
                    .clone()
                    .start_mentoring(pb::StartMentoringRequest {
                        mentee_id: subject.clone(),
                        mentor_id: "carol".into(),
                        ..Default::default()
                    })
                    .await;
                // Leave nothing behind for the next caller.
                let _ = admin
                    .talent
                    .clone()
                    .end_mentoring(pb::EndMentoringRequest {
                        mentee_id: subject,
                        mentor_id: "carol".into(),
                    })
                    .await;
                started
            }
        ),
        case!(
            "/capsight.v1.TalentService/EndMentoring",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                let pair = pb::EndMentoringRequest {
                    mentee_id: subject.clone(),
                    mentor_id: "carol".into(),
                };
                admin
                    .talent
                    .clone()
                    .start_mentoring(pb::StartMentoringRequest {
                        mentee_id: subject,
                        mentor_id: "carol".into(),
                        ..Default::default()
                    })
                    .await?;
                let ended = me.talent.clone().end_mentoring(pair.clone()).await;
                let _ = admin.talent.clone().end_mentoring(pair).await;
                ended
            }
        ),
        case!(
            "/capsight.v1.TalentService/ListMentorships",
            &[Admin, Manager, Planner, Person],
            true,
            |me, admin, subject| {
                me.talent
                    .clone()
                    .list_mentorships(pb::ListMentorshipsRequest {
                        person_id: subject,
                        ..Default::default()
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.TalentService/ComposeTeam",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                let team = if subject == "alice" {
                    "backend"
                } else {
                    "sales"
                };
                me.talent
                    .clone()
                    .compose_team(pb::ComposeTeamRequest {
                        requirements: vec![pb::TeamSkillRequirement {
                            skill_id: "rust".into(),
                            min_level: 1.0,
                            ..Default::default()
                        }],
                        max_size: 1,
                        pool_team_ids: vec![team.into()],
                        ..Default::default()
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.CapabilityService/GetCapabilityTrend",
            // Analysts: whole departments only (sales is one; backend, under eng, is not).
            &[Admin, Manager, Planner, Analyst],
            true,
            |me, admin, subject| {
                let team_id = if subject == "alice" {
                    "backend"
                } else {
                    "sales"
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                me.capability
                    .clone()
                    .get_capability_trend(pb::GetCapabilityTrendRequest {
                        team_id: team_id.into(),
                        skill_ids: vec!["rust".into()],
                        from: Some(prost_types::Timestamp {
                            seconds: now - 90 * 86_400,
                            nanos: 0,
                        }),
                        to: Some(prost_types::Timestamp {
                            seconds: now,
                            nanos: 0,
                        }),
                        interval_days: 30,
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.CapabilityService/GetSkillRisks",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                let team_id = if subject == "alice" {
                    "backend"
                } else {
                    "sales"
                };
                me.capability
                    .clone()
                    .get_skill_risks(pb::GetSkillRisksRequest {
                        team_id: team_id.into(),
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.CapabilityService/GetTeamCapability",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                let team_id = if subject == "alice" {
                    "backend"
                } else {
                    "sales"
                };
                me.capability
                    .clone()
                    .get_team_capability(pb::GetTeamCapabilityRequest {
                        team_id: team_id.into(),
                        ..Default::default()
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.CapabilityService/WatchTeamCapability",
            &[Admin, Manager, Planner],
            true,
            |me, admin, subject| {
                let team_id = if subject == "alice" {
                    "backend"
                } else {
                    "sales"
                };
                let mut updates = me
                    .capability
                    .clone()
                    .watch_team_capability(pb::WatchTeamCapabilityRequest {
                        team_id: team_id.into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                updates.next().await.transpose().map(|_| ())
            }
        ),
        case!(
            "/capsight.v1.AccessService/CreateToken",
            &[Admin],
            false,
            |me, admin, _s| {
                me.access
                    .clone()
                    .create_token(pb::CreateTokenRequest {
                        role: Analyst.into(),
                        ..Default::default()
                    })
                    .await
            }
        ),
        case!(
            "/capsight.v1.AccessService/RevokeToken",
            &[Admin],
            false,
            |me, admin, _s| {
                let created = admin
                    .access
                    .clone()
                    .create_token(pb::CreateTokenRequest {
                        role: Analyst.into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                let token_id = created.info.unwrap_or_default().token_id;
                me.access
                    .clone()
                    .revoke_token(pb::RevokeTokenRequest { token_id })
                    .await
            }
        ),
        case!(
            "/capsight.v1.AccessService/WhoAmI",
            &[Admin, Ingest, Manager, Planner, Analyst, Person],
            false,
            |me, admin, _s| {
                me.access
                    .clone()
                    .who_am_i(pb::WhoAmIRequest::default())
                    .await
            }
        ),
        case!(
            "/capsight.v1.AccessService/ListTokens",
            &[Admin],
            false,
            |me, admin, _s| {
                me.access
                    .clone()
                    .list_tokens(pb::ListTokensRequest::default())
                    .await
            }
        ),
        case!(
            "/capsight.v1.AccessService/ListAuditEvents",
            &[Admin],
            false,
            |me, admin, _s| {
                me.access
                    .clone()
                    .list_audit_events(pb::ListAuditEventsRequest::default())
                    .await
            }
        ),
        case!(
            "/capsight.v1.AccessService/CreateBackup",
            &[Admin],
            false,
            |me, admin, _s| {
                let mut parts = me
                    .access
                    .clone()
                    .create_backup(pb::CreateBackupRequest {})
                    .await?
                    .into_inner();
                let mut manifest = None;
                while let Some(part) = parts.message().await? {
                    if let Some(pb::create_backup_response::Part::Manifest(m)) = part.part {
                        manifest = Some(m);
                    }
                }
                let manifest = manifest.expect("a backup ends with its manifest");
                assert!(manifest.tree_records["people"] >= 4, "{manifest:?}");
                Ok(tonic::Response::new(()))
            }
        ),
    ]
}

/// Calls an aggregate rpc the way each role can: organisation-wide first (admins and
/// analysts), then — when that is denied — scoped to the subject's team (managers and
/// planners: alice's team is in their scope, dan's is not).
async fn with_fallback_scope<F, Fut>(subject: &str, call: F) -> Result<(), Status>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    match call(String::new()).await {
        Err(status) if status.code() == Code::PermissionDenied => {
            let team = if subject == "alice" {
                "backend"
            } else {
                "sales"
            };
            call(team.to_owned()).await
        }
        other => other,
    }
}

/// Every rpc of every capsight service, from the descriptors the server is built from.
fn described_rpcs() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptors");
    set.file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| {
                    format!("/{}.{}/{}", file.package(), service.name(), method.name())
                })
            })
        })
        .collect()
}

#[test]
fn every_described_rpc_has_a_server_rule_and_a_test_case() {
    let described = described_rpcs();
    let ruled: BTreeSet<String> = capsight::api::auth::RULES
        .iter()
        .map(|(p, _)| (*p).to_owned())
        .collect();
    let tested: BTreeSet<String> = cases().iter().map(|c| c.rpc.to_owned()).collect();
    assert_eq!(ruled, described, "server access rules vs described rpcs");
    assert_eq!(tested, described, "test cases vs described rpcs");
}

fn assert_reveals_nothing(status: &Status, what: &str) {
    assert_eq!(status.message(), "permission denied", "{what}");
    assert!(
        status.details().is_empty(),
        "{what}: denial carries details"
    );
}

#[tokio::test]
async fn every_rpc_answers_every_role_in_and_out_of_scope_as_the_rules_say() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    // Evidence for everyone, so that aggregate questions have an answer.
    let evidence = ["alice", "bob", "carol", "dan"]
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            [
                assessment(&format!("seed-{p}-rust"), p, "rust", 1.0 + i as f64),
                assessment(&format!("seed-{p}-sql"), p, "sql", 4.0 - i as f64),
            ]
        })
        .collect();
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: evidence,
        })
        .await
        .expect("seed evidence");
    let tokens = [
        (Admin, app.admin_token.clone()),
        (Ingest, app.token(Ingest, &[], "").await),
        (Manager, app.token(Manager, &["eng"], "").await),
        (Planner, app.token(Planner, &["eng"], "").await),
        (Analyst, app.token(Analyst, &[], "").await),
        (Person, app.token(Person, &[], "alice").await),
    ];
    let admin = app.clients(&app.admin_token);
    let mut checked = 0;
    for case in cases() {
        for (role, token) in &tokens {
            // In scope: alice (backend, under eng). Out of scope: dan (sales) for teams,
            // bob for the person bound to alice.
            let out = if *role == Person { "bob" } else { "dan" };
            for (subject, in_scope) in [("alice", true), (out, false)] {
                let result =
                    (case.call)(app.clients(token), admin.clone(), subject.to_owned()).await;
                let what = format!("{} as {role:?} on {subject}", case.rpc);
                let limited = case.scoped && matches!(role, Manager | Planner | Person);
                let analyst_trend = *role == Analyst && case.rpc.ends_with("/GetCapabilityTrend");
                let not_a_department = analyst_trend && subject == "alice";
                if !case.allowed.contains(role) || (limited && !in_scope) || not_a_department {
                    let status = result.expect_err(&what);
                    assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
                    assert_reveals_nothing(&status, &what);
                } else {
                    result.unwrap_or_else(|s| panic!("{what}: {s:?}"));
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, described_rpcs().len() * 6 * 2);
}

#[tokio::test]
async fn whoami_tells_each_token_its_role_scope_and_rpcs() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let manager = app.token(Manager, &["eng"], "").await;
    let person = app.token(Person, &[], "alice").await;
    let me = app
        .clients(&manager)
        .access
        .who_am_i(pb::WhoAmIRequest::default())
        .await
        .expect("manager")
        .into_inner();
    let token = me.token.expect("token");
    assert_eq!(token.role, Manager as i32);
    assert_eq!(token.team_ids, vec!["eng".to_owned()]);
    assert!(
        me.allowed_rpcs
            .contains(&"capsight.v1.CapabilityService/GetTeamCapability".to_owned())
    );
    assert!(
        !me.allowed_rpcs
            .contains(&"capsight.v1.AccessService/ListTokens".to_owned())
    );
    // Exactly the rules' rpcs for the role.
    let expected: Vec<String> =
        capsight::api::auth::allowed_rpcs(capsight::domain::AccessRole::Manager)
            .into_iter()
            .map(str::to_owned)
            .collect();
    assert_eq!(me.allowed_rpcs, expected);
    let me = app
        .clients(&person)
        .access
        .who_am_i(pb::WhoAmIRequest::default())
        .await
        .expect("person")
        .into_inner();
    assert_eq!(me.token.expect("token").person_id, "alice");
    assert!(!me.display_name.is_empty(), "the person's name");
    assert!(
        !me.allowed_rpcs
            .contains(&"capsight.v1.OrgInsightsService/GetSkillArchetypes".to_owned())
    );
}

#[tokio::test]
async fn an_out_of_scope_id_is_denied_whether_or_not_it_exists() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let manager = app.token(Manager, &["eng"], "").await;
    let mut clients = app.clients(&manager);
    for id in ["dan", "no-such-person"] {
        let status = clients
            .directory
            .get_person(pb::GetPersonRequest {
                person_id: id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{id}");
    }
    let status = clients
        .directory
        .list_people(pb::ListPeopleRequest {
            subtree_team_id: "no-such-team".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // Unfiltered, a manager lists exactly their scope.
    let people = clients
        .directory
        .list_people(pb::ListPeopleRequest::default())
        .await
        .unwrap()
        .into_inner()
        .people;
    let ids: Vec<_> = people.into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["alice", "bob", "carol"]);
}

#[tokio::test]
async fn missing_malformed_unknown_revoked_and_expired_tokens_are_unauthenticated() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let get = || pb::GetPersonRequest {
        person_id: "alice".into(),
    };

    let mut bare = pb::directory_service_client::DirectoryServiceClient::new(app.channel.clone());
    assert_eq!(
        bare.get_person(get()).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let unknown = format!("cs_{}_{}", "0".repeat(16), "0".repeat(64));
    for token in ["not-a-token", "cs_abc_def", unknown.as_str()] {
        let status = app
            .clients(token)
            .directory
            .get_person(get())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token}");
    }

    let manager = app.token(Manager, &["eng"], "").await;
    let mut clients = app.clients(&manager);
    assert!(clients.directory.get_person(get()).await.is_ok());
    let listed = app
        .access
        .list_tokens(pb::ListTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    let id = listed
        .tokens
        .iter()
        .find(|t| t.role == Manager as i32)
        .unwrap()
        .token_id
        .clone();
    app.access
        .revoke_token(pb::RevokeTokenRequest { token_id: id })
        .await
        .unwrap();
    assert_eq!(
        clients
            .directory
            .get_person(get())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    let short = app
        .access
        .create_token(pb::CreateTokenRequest {
            role: Manager.into(),
            team_ids: vec!["eng".into()],
            ttl_seconds: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(short.info.unwrap().expires_at.is_some());
    let mut expiring = app.clients(&short.token);
    assert!(expiring.directory.get_person(get()).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        expiring
            .directory
            .get_person(get())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Health and reflection stay open without a token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    assert!(
        health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn tokens_with_a_scope_their_role_cannot_have_or_unknown_teams_are_rejected() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let create = |role: AccessRole, teams: &[&str], person: &str| pb::CreateTokenRequest {
        role: role.into(),
        team_ids: teams.iter().map(|t| (*t).to_owned()).collect(),
        person_id: person.into(),
        ..Default::default()
    };
    for (request, field) in [
        (create(Manager, &[], ""), "team_ids"),
        (create(Manager, &["atlantis"], ""), "team_ids[0]"),
        (create(Person, &[], ""), "person_id"),
        (create(Person, &[], "nobody"), "person_id"),
        (create(Analyst, &["eng"], ""), "team_ids"),
        (create(AccessRole::Unspecified, &[], ""), "role"),
    ] {
        let status = app.access.create_token(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(crate::helpers::violations(&status)[0].0, field);
    }
}

#[tokio::test]
async fn an_open_ingest_stream_ends_when_its_token_is_revoked() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let ingest = app.token(Ingest, &[], "").await;
    let (batches, outbound) = tokio::sync::mpsc::channel(4);
    let mut acks = app
        .clients(&ingest)
        .ingest
        .stream_assessments(tokio_stream::wrappers::ReceiverStream::new(outbound))
        .await
        .unwrap()
        .into_inner();
    let batch = pb::StreamAssessmentsRequest {
        sequence: 1,
        assessments: vec![assessment("r1", "alice", "rust", 3.0)],
    };
    batches.send(batch).await.unwrap();
    assert_eq!(acks.message().await.unwrap().unwrap().accepted, 1);

    let listed = app
        .access
        .list_tokens(pb::ListTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    let id = listed
        .tokens
        .iter()
        .find(|t| t.role == Ingest as i32)
        .unwrap()
        .token_id
        .clone();
    app.access
        .revoke_token(pb::RevokeTokenRequest { token_id: id })
        .await
        .unwrap();

    // The client sends nothing more; the server ends the stream on its own.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), acks.message())
        .await
        .expect("stream ended in time");
    assert_eq!(ended.unwrap_err().code(), Code::Unauthenticated);
    drop(batches);
}

#[tokio::test]
async fn writes_and_person_reads_are_audited_without_scores_and_erasure_tombstones_them() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let bob_token = app.token(Person, &[], "bob").await;
    let manager = app.token(Manager, &["sales"], "").await;
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: vec![assessment("x1", "bob", "rust", 4.5)],
        })
        .await
        .unwrap();
    app.clients(&bob_token)
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "bob".into(),
        })
        .await
        .unwrap();
    let denied = app
        .clients(&manager)
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "bob".into(),
        })
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);

    let about_bob = |app: &mut TestApp, subject: &str| {
        let mut access = app.access.clone();
        let request = pb::ListAuditEventsRequest {
            subject_id: subject.into(),
            ..Default::default()
        };
        async move {
            access
                .list_audit_events(request)
                .await
                .unwrap()
                .into_inner()
                .events
        }
    };
    // The audit trail becomes durable with the writer's next group commit; give it one.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let events = about_bob(&mut app, "bob").await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.rpc.rsplit('/').next().unwrap(), e.outcome.as_str()))
        .collect();
    assert!(seen.contains(&("RecordAssessments", "OK")), "{seen:?}");
    assert!(seen.contains(&("GetPerson", "OK")), "{seen:?}");
    assert!(
        seen.contains(&("GetPerson", "PERMISSION_DENIED")),
        "{seen:?}"
    );
    assert!(seen.contains(&("UpsertPeople", "OK")), "{seen:?}");
    assert!(
        events.windows(2).all(|w| w[0].sequence > w[1].sequence),
        "newest first"
    );
    for event in &events {
        let text = format!("{event:?}");
        assert!(
            !text.contains("4.5"),
            "an audit event carries a score: {text}"
        );
    }

    let exported = app
        .directory
        .export_person(pb::ExportPersonRequest {
            person_id: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exported.assessments_about.len(), 1);
    assert_eq!(exported.audit_event_count, events.len() as u64);

    app.directory
        .delete_person(pb::DeletePersonRequest {
            person_id: "bob".into(),
        })
        .await
        .unwrap();
    assert!(
        about_bob(&mut app, "bob").await.is_empty(),
        "erasure leaves the id in the audit trail"
    );
    assert!(about_bob(&mut app, "erased").await.len() >= events.len());
    let status = app
        .clients(&bob_token)
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "bob".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "the erased person's token is revoked"
    );
    let tokens = app
        .access
        .list_tokens(pb::ListTokensRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tokens;
    assert!(tokens.iter().all(|t| t.person_id != "bob"));
}

#[tokio::test]
async fn every_rpc_of_every_capsight_service_is_audited() {
    use prost::Message;
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let descriptors =
        prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut paths = Vec::new();
    for file in &descriptors.file {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                paths.push(path);
            }
        }
    }
    assert!(paths.len() >= 32, "{paths:?}");
    for path in &paths {
        // An empty request: each rpc answers it somehow (often INVALID_ARGUMENT).
        let path: &'static str = Box::leak(path.clone().into_boxed_str());
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            crate::overload::raw_call(&app, path, Vec::new()),
        )
        .await;
    }
    let mut unaudited = Vec::new();
    for path in &paths {
        let events = app
            .access
            .list_audit_events(pb::ListAuditEventsRequest {
                rpc: path.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events;
        if events.is_empty() {
            unaudited.push(path.clone());
        }
    }
    assert!(unaudited.is_empty(), "not audited: {unaudited:?}");
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                bytes_under(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[tokio::test]
async fn a_flood_of_unauthenticated_calls_to_long_paths_is_recorded_as_counts_not_calls() {
    const FLOOD: usize = 5_000;
    let app = TestApp::spawn().await;
    let before = bytes_under(&app.data_dir);
    let long: &'static str =
        Box::leak(format!("/capsight.{}/X", "a".repeat(8_000)).into_boxed_str());
    let mut senders = Vec::new();
    for _ in 0..8 {
        let mut grpc = tonic::client::Grpc::new(app.channel.clone());
        senders.push(tokio::spawn(async move {
            for _ in 0..FLOOD / 8 {
                grpc.ready().await.unwrap();
                // No token: UNAUTHENTICATED, like a flood from anyone.
                let status = grpc
                    .unary::<_, (), _>(
                        tonic::Request::new(Vec::new()),
                        http::uri::PathAndQuery::from_static(long),
                        crate::overload::RawCodec,
                    )
                    .await
                    .unwrap_err();
                assert_eq!(status.code(), Code::Unauthenticated);
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    // The counts of a minute are recorded when it ends or the server stops.
    let app = app.restart().await;
    let grown = bytes_under(&app.data_dir).saturating_sub(before);
    eprintln!("the flood grew the store by {grown} bytes");
    assert!(grown < 1_000_000, "the store grew by {grown} bytes");
    let events = app
        .access
        .clone()
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == "UNAUTHENTICATED")
        .collect();
    // One event per minute the flood spanned (one or two), counting every call.
    assert!((1..=2).contains(&denied.len()), "{denied:?}");
    assert_eq!(
        denied.iter().map(|e| e.count as usize).sum::<usize>(),
        FLOOD
    );
    for event in denied {
        assert_eq!(event.rpc, capsight::api::auth::UNKNOWN_RPC);
        assert_eq!(event.source, "127.0.0.1");
        assert!(event.token_id.is_empty());
    }
}

#[tokio::test]
async fn an_audit_page_stays_under_a_mebibyte_and_the_pages_cover_every_event() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    upsert_bulk_people(&mut app, 1_000).await;
    // Each listing names 1,000 people: about 20 KB per audit event.
    for _ in 0..80 {
        app.directory
            .list_people(pb::ListPeopleRequest {
                page_size: 1_000,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut token = String::new();
    let mut listings = 0;
    let mut pages = 0;
    loop {
        let page = app
            .access
            .list_audit_events(pb::ListAuditEventsRequest {
                page_size: 1_000,
                page_token: token.clone(),
                rpc: "/capsight.v1.DirectoryService/ListPeople".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(prost::Message::encoded_len(&page) <= 1024 * 1024 + 64 * 1024);
        listings += page.events.len();
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        // A token is bound to its filters.
        let foreign = app
            .access
            .list_audit_events(pb::ListAuditEventsRequest {
                page_token: page.next_page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(foreign.code(), Code::InvalidArgument);
        token = page.next_page_token;
    }
    assert_eq!(listings, 80);
    assert!(pages >= 2, "{pages} pages");
}

/// `n` more people in backend, so that one listing names many.
async fn upsert_bulk_people(app: &mut TestApp, n: usize) {
    let people: Vec<pb::Person> = (0..n)
        .map(|i| crate::helpers::person(&format!("bulk-person-{i:05}"), "backend"))
        .collect();
    app.directory
        .upsert_people(pb::UpsertPeopleRequest { people })
        .await
        .unwrap();
}

/// Every ListPeople audit event on record, newest first.
async fn listings_on_record(app: &TestApp) -> Vec<pb::AuditEvent> {
    app.access
        .clone()
        .list_audit_events(pb::ListAuditEventsRequest {
            page_size: 1_000,
            rpc: "/capsight.v1.DirectoryService/ListPeople".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

#[tokio::test]
async fn the_audit_log_keeps_to_its_size_limit_and_its_retention_age() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = capsight::server::ServerConfig::new(temp.path().join("data"));
    config.engine.store.audit_max_bytes = Some(64 * 1024);
    config.engine.store.audit_retention = Some(std::time::Duration::from_secs(2));
    let mut app = TestApp::start(config).await;
    seed_org(&mut app).await;
    upsert_bulk_people(&mut app, 500).await;
    let list = || pb::ListPeopleRequest {
        page_size: 1_000,
        ..Default::default()
    };
    // 40 listings of ~10 KB each: 400 KB of events against a 64 KiB limit.
    for _ in 0..40 {
        app.directory.list_people(list()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    }
    let kept = listings_on_record(&app).await.len();
    assert!((1..40).contains(&kept), "kept {kept} of 40");

    // Past the retention age, the next event's group removes every older one.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    app.directory.list_people(list()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    app.directory.list_people(list()).await.unwrap();
    let recent = listings_on_record(&app).await;
    assert!(
        (1..=2).contains(&recent.len()),
        "{} listings remain",
        recent.len()
    );
}
