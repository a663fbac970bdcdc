use capsight::api::pb;
use tonic::Code;

use crate::helpers::{TestApp, person, seed_org, skill, team, violations};

#[tokio::test]
async fn upserted_skills_are_listed_in_id_order_across_pages() {
    let mut app = TestApp::spawn().await;
    // Every category, the knowledge one included, is stored and listed back.
    let categories = [
        pb::SkillCategory::Technical,
        pb::SkillCategory::Soft,
        pb::SkillCategory::Business,
        pb::SkillCategory::Leadership,
        pb::SkillCategory::Domain,
        pb::SkillCategory::Knowledge,
    ];
    let skills = (0..25)
        .map(|i| pb::Skill {
            category: categories[i % categories.len()].into(),
            ..skill(&format!("s{i:02}"))
        })
        .collect();
    let response = app
        .directory
        .upsert_skills(pb::UpsertSkillsRequest { skills })
        .await
        .unwrap();
    assert_eq!(response.into_inner().upserted, 25);

    let mut ids = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .directory
            .list_skills(pb::ListSkillsRequest {
                page_size: 10,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        for s in page.skills {
            let i: usize = s.id[1..].parse().unwrap();
            assert_eq!(s.category(), categories[i % categories.len()], "{}", s.id);
            ids.push(s.id);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("s{i:02}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn people_are_listed_by_team_subtree() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let list = |subtree: &str| pb::ListPeopleRequest {
        page_size: 0,
        page_token: String::new(),
        subtree_team_id: subtree.into(),
    };
    let ids = |r: pb::ListPeopleResponse| r.people.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let eng = app
        .directory
        .list_people(list("eng"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(eng), ["alice", "bob", "carol"]);
    let all = app
        .directory
        .list_people(list(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(all).len(), 4);
    let teams = app
        .directory
        .list_teams(pb::ListTeamsRequest {
            page_size: 0,
            page_token: String::new(),
            subtree_team_id: "eng".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let team_ids: Vec<_> = teams.teams.into_iter().map(|t| t.id).collect();
    assert_eq!(team_ids, ["backend", "eng", "frontend"]);
    let missing = app
        .directory
        .list_people(list("nowhere"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn an_unknown_reference_in_an_upsert_is_rejected_with_its_field_and_nothing_is_written() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let status = app
        .directory
        .upsert_people(pb::UpsertPeopleRequest {
            people: vec![person("erin", "backend"), person("frank", "no-such-team")],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        [("people[1].team_id".to_owned(), "unknown team".to_owned())]
    );
    let erin = app
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "erin".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        erin.code(),
        Code::NotFound,
        "the valid item of a refused batch is not written"
    );

    let status = app
        .directory
        .upsert_roles(pb::UpsertRolesRequest {
            roles: vec![crate::helpers::role("ops", &["rust", "k8s"])],
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&status)[0].0,
        "roles[0].requirements[1].skill_id"
    );
}

#[tokio::test]
async fn a_team_parent_cycle_is_rejected() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let status = app
        .directory
        .upsert_teams(pb::UpsertTeamsRequest {
            teams: vec![team("eng", "backend")],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "teams[0].parent_id");
}

#[tokio::test]
async fn malformed_fields_are_rejected_with_every_field_named() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let mut bad = person("", "backend");
    bad.availability = 1.5;
    let mut long = person(&"x".repeat(129), "backend");
    long.display_name = String::new();
    let status = app
        .directory
        .upsert_people(pb::UpsertPeopleRequest {
            people: vec![bad, long],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "people[0].id",
            "people[0].availability",
            "people[1].id",
            "people[1].display_name"
        ]
    );
    let empty = app
        .directory
        .upsert_skills(pb::UpsertSkillsRequest { skills: vec![] })
        .await
        .unwrap_err();
    assert_eq!(violations(&empty)[0].0, "skills");
}

#[tokio::test]
async fn reads_of_unknown_or_malformed_ids_say_which() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let get = |id: &str| pb::GetPersonRequest {
        person_id: id.into(),
    };
    assert_eq!(
        app.directory
            .get_person(get("zed"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let malformed = app
        .directory
        .get_person(get("has space"))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(violations(&malformed)[0].0, "person_id");
    let token = app
        .directory
        .list_skills(pb::ListSkillsRequest {
            page_size: 5,
            page_token: "not-a-token".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&token)[0].0, "page_token");
    let alice = app
        .directory
        .get_person(get("alice"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice.person.unwrap().team_id, "backend");
}
