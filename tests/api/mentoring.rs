//! Recorded mentoring relationships: mentor capacity in FindMentors and PlanMentoring,
//! the errors of starting and ending them, listing, durability and erasure.

use capsight::api::pb;
use tonic::Code;

use crate::helpers::{TestApp, assessment, person, role, skill, team};

/// mentee `m` (backend) is weak in rust; `a` and `b` (data) are strong; x1–x3 (data)
/// are weak too and can be mentored by `a`.
async fn org() -> TestApp {
    let mut app = TestApp::spawn().await;
    let d = &mut app.directory;
    d.upsert_skills(pb::UpsertSkillsRequest {
        skills: vec![skill("rust")],
    })
    .await
    .unwrap();
    d.upsert_roles(pb::UpsertRolesRequest {
        roles: vec![role("dev", &["rust"])],
    })
    .await
    .unwrap();
    d.upsert_teams(pb::UpsertTeamsRequest {
        teams: vec![team("org", ""), team("backend", "org"), team("data", "org")],
    })
    .await
    .unwrap();
    let people = [
        ("m", "backend", 1.0),
        ("a", "data", 5.0),
        ("b", "data", 4.5),
        ("x1", "backend", 1.0),
        ("x2", "backend", 1.5),
        ("x3", "backend", 2.0),
    ];
    d.upsert_people(pb::UpsertPeopleRequest {
        people: people.iter().map(|(p, t, _)| person(p, t)).collect(),
    })
    .await
    .unwrap();
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: people
                .iter()
                .map(|(p, _, level)| assessment(&format!("{p}-rust"), p, "rust", *level))
                .collect(),
        })
        .await
        .unwrap();
    app
}

fn start(mentee: &str, mentor: &str) -> pb::StartMentoringRequest {
    pb::StartMentoringRequest {
        mentee_id: mentee.into(),
        mentor_id: mentor.into(),
        skill_ids: vec!["rust".into()],
        ..Default::default()
    }
}

fn end(mentee: &str, mentor: &str) -> pb::EndMentoringRequest {
    pb::EndMentoringRequest {
        mentee_id: mentee.into(),
        mentor_id: mentor.into(),
    }
}

async fn mentors_of(app: &TestApp, mentee: &str, capacity: Option<u32>) -> Vec<(String, u32)> {
    app.clients(&app.admin_token)
        .talent
        .find_mentors(pb::FindMentorsRequest {
            person_id: mentee.into(),
            mentor_capacity: capacity,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mentors
        .into_iter()
        .map(|m| (m.person_id, m.current_mentees))
        .collect()
}

#[tokio::test]
async fn a_mentor_at_capacity_is_not_suggested_and_cannot_take_another_mentee() {
    let app = org().await;
    let mut talent = app.clients(&app.admin_token).talent;
    assert_eq!(
        mentors_of(&app, "m", None).await,
        [("a".to_owned(), 0), ("b".to_owned(), 0)]
    );

    // a takes three mentees: the default capacity.
    for (i, mentee) in ["x1", "x2", "x3"].into_iter().enumerate() {
        let started = talent.start_mentoring(start(mentee, "a")).await.unwrap();
        assert_eq!(started.into_inner().mentor_load, i as u32 + 1);
    }
    let full = talent.start_mentoring(start("m", "a")).await.unwrap_err();
    assert_eq!(full.code(), Code::FailedPrecondition, "{full:?}");
    assert_eq!(mentors_of(&app, "m", None).await, [("b".to_owned(), 0)]);
    // A larger capacity brings a back, with the load shown.
    assert_eq!(
        mentors_of(&app, "m", Some(4)).await,
        [("a".to_owned(), 3), ("b".to_owned(), 0)]
    );
    let plan = talent
        .plan_mentoring(pb::PlanMentoringRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        plan.pairs.iter().all(|p| p.mentor_id != "a"),
        "a has no room left: {:?}",
        plan.pairs
    );
    assert!(
        plan.pairs
            .iter()
            .all(|p| !["x1", "x2", "x3"].contains(&p.mentee_id.as_str())),
        "x1-x3 already have their one mentor: {:?}",
        plan.pairs
    );

    // m now has b: b is not suggested to m again, and the pair cannot start twice.
    talent.start_mentoring(start("m", "b")).await.unwrap();
    assert!(
        mentors_of(&app, "m", Some(4))
            .await
            .iter()
            .all(|(id, _)| id != "b")
    );
    let twice = talent.start_mentoring(start("m", "b")).await.unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);

    // Ending one of a's relationships frees a place.
    talent.end_mentoring(end("x1", "a")).await.unwrap();
    assert_eq!(mentors_of(&app, "m", None).await, [("a".to_owned(), 2)]);
    let gone = talent.end_mentoring(end("x1", "a")).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    let listed = talent
        .list_mentorships(pb::ListMentorshipsRequest {
            person_id: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let pairs: Vec<(&str, &str)> = listed
        .mentorships
        .iter()
        .map(|m| (m.mentee_id.as_str(), m.mentor_id.as_str()))
        .collect();
    assert_eq!(pairs, [("x2", "a"), ("x3", "a")]);
    assert_eq!(listed.mentorships[0].skill_ids, ["rust"]);
    assert!(listed.mentorships[0].started_at.is_some());
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_field_and_nothing_is_recorded() {
    let app = org().await;
    let mut talent = app.clients(&app.admin_token).talent;
    let cases = [
        (start("m", "m"), "mentor_id"),
        (start("m", ""), "mentor_id"),
        (
            pb::StartMentoringRequest {
                skill_ids: vec!["cobol".into()],
                ..start("m", "a")
            },
            "skill_ids[0]",
        ),
        (
            pb::StartMentoringRequest {
                mentor_capacity: Some(0),
                ..start("m", "a")
            },
            "mentor_capacity",
        ),
    ];
    for (request, field) in cases {
        let status = talent.start_mentoring(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let fields: Vec<String> = crate::helpers::violations(&status)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert!(fields.contains(&field.to_owned()), "{field}: {fields:?}");
    }
    let unknown = talent
        .start_mentoring(start("m", "nobody"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let all = talent
        .list_mentorships(pb::ListMentorshipsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(all.mentorships.is_empty());
}

#[tokio::test]
async fn relationships_survive_a_restart_and_go_with_an_erased_person() {
    let app = org().await;
    let mut talent = app.clients(&app.admin_token).talent;
    talent.start_mentoring(start("m", "a")).await.unwrap();
    talent.start_mentoring(start("x1", "a")).await.unwrap();
    talent.start_mentoring(start("x2", "b")).await.unwrap();
    let mut app = app.restart().await;
    let mut talent = app.clients(&app.admin_token).talent;
    let listed = |talent: &mut pb::talent_service_client::TalentServiceClient<_>| {
        let mut talent = talent.clone();
        async move {
            talent
                .list_mentorships(pb::ListMentorshipsRequest {
                    page_size: 2,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = listed(&mut talent).await;
    assert_eq!(first.mentorships.len(), 2);
    assert!(!first.next_page_token.is_empty(), "a second page");
    assert_eq!(mentors_of(&app, "x3", Some(2)).await, [("b".to_owned(), 1)]);

    app.directory
        .delete_person(pb::DeletePersonRequest {
            person_id: "a".into(),
        })
        .await
        .unwrap();
    let left = talent
        .list_mentorships(pb::ListMentorshipsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .mentorships;
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].mentee_id.as_str(), left[0].mentor_id.as_str()),
        ("x2", "b")
    );
}
