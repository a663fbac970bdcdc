use capsight::api::pb;
use capsight::demo::{DemoConfig, DemoOrg};
use capsight::import::{self, ImportFiles};

use crate::helpers::TestApp;

fn files(dir: &std::path::Path) -> ImportFiles {
    ImportFiles {
        skills: Some(dir.join("skills.csv")),
        roles: Some(dir.join("roles.csv")),
        teams: Some(dir.join("teams.csv")),
        people: Some(dir.join("people.csv")),
        assessments: Some(dir.join("assessments.csv")),
    }
}

/// The demo organisation of `people` (seed 3) written as CSV files in a temporary
/// directory.
fn demo_csv(people: usize) -> (DemoOrg, tempfile::TempDir) {
    let org = DemoOrg::generate(&DemoConfig {
        seed: 3,
        people,
        skills: 40,
        ..DemoConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    import::write_org_csv(&org, dir.path()).unwrap();
    (org, dir)
}

fn lines_of(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn a_demo_export_imports_completely_and_a_rerun_changes_nothing() {
    let app = TestApp::spawn().await;
    let org = DemoOrg::generate(&DemoConfig {
        seed: 3,
        people: 60,
        skills: 40,
        ..DemoConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    import::write_org_csv(&org, dir.path()).unwrap();

    let first = import::run(&app.address, &app.admin_token, &files(dir.path()), 500)
        .await
        .unwrap();
    assert!(first.problems.is_empty(), "{first}");
    assert_eq!(first.people, 60);
    assert_eq!(first.assessments_accepted as usize, org.assessments.len());

    let second = import::run(&app.address, &app.admin_token, &files(dir.path()), 500)
        .await
        .unwrap();
    assert_eq!(second.assessments_accepted, 0);
    assert_eq!(second.assessments_duplicate as usize, org.assessments.len());

    let mut directory = app.directory.clone();
    let managed = org.managed_teams[0].clone();
    let teams = directory
        .list_teams(pb::ListTeamsRequest {
            page_size: 1000,
            page_token: String::new(),
            subtree_team_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .teams;
    let stored = teams.iter().find(|t| t.id == managed.id.as_str()).unwrap();
    assert_eq!(
        stored.manager_id,
        managed.manager.unwrap().as_str(),
        "managers are set in a second pass"
    );
}

#[tokio::test]
async fn problems_name_the_file_line_and_column() {
    let app = TestApp::spawn().await;
    let (org, dir) = demo_csv(20);
    let path = dir.path().join("assessments.csv");
    let mut lines = lines_of(&path);
    // Line 3 gets an unknown person, line 5 a score that is not a number.
    lines[2] = lines[2].replacen(",p-", ",ghost-", 1);
    let mut cells: Vec<String> = lines[4].split(',').map(String::from).collect();
    cells[3] = "lots".into();
    lines[4] = cells.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let report = import::run(&app.address, &app.admin_token, &files(dir.path()), 100)
        .await
        .unwrap();
    let found: Vec<(u64, String)> = report
        .problems
        .iter()
        .map(|p| (p.line, p.column.clone()))
        .collect();
    // In line order, whether found by the importer (the score) or the server.
    assert_eq!(
        found,
        [(3, "person_id".to_owned()), (5, "score".to_owned())]
    );
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.file.ends_with("assessments.csv"))
    );
    assert_eq!(
        report.assessments_accepted as usize,
        org.assessments.len() - 2
    );

    let people = dir.path().join("people.csv");
    let text = std::fs::read_to_string(&people)
        .unwrap()
        .replacen(",team-", ",no-team-", 1);
    std::fs::write(&people, text).unwrap();
    let report = import::run(&app.address, &app.admin_token, &files(dir.path()), 100)
        .await
        .unwrap();
    let first = &report.problems[0];
    assert_eq!(
        (first.line, first.column.as_str()),
        (2, "team_id"),
        "{report}"
    );
}

/// A line with too few fields is one problem in `file:line:` form, not the end of the
/// file; the files after the first with problems are named as not imported.
#[tokio::test]
async fn a_short_line_is_one_problem_and_skipped_files_are_named() {
    let app = TestApp::spawn().await;
    let (org, dir) = demo_csv(20);
    let path = dir.path().join("assessments.csv");
    let mut lines = lines_of(&path);
    lines[3] = "a-short,p-000001,go".into();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let report = import::run(&app.address, &app.admin_token, &files(dir.path()), 100)
        .await
        .unwrap();
    assert_eq!(report.problems.len(), 1, "{report}");
    assert_eq!(report.problems[0].line, 4);
    assert!(
        report.problems[0]
            .to_string()
            .contains("assessments.csv:4: 3 fields where the header has 8; the line is skipped")
    );
    assert_eq!(
        report.assessments_accepted as usize,
        org.assessments.len() - 1
    );
    assert!(report.skipped.is_empty());

    // A short line in people.csv: no file is written (the directory files only when all
    // are sound), the assessments are still checked (their short line reported in the
    // same run), and the report names every file as not imported.
    let people = dir.path().join("people.csv");
    let mut lines = lines_of(&people);
    lines[2] = "p-000002,Short".into();
    std::fs::write(&people, lines.join("\n") + "\n").unwrap();
    let report = import::run(&app.address, &app.admin_token, &files(dir.path()), 100)
        .await
        .unwrap();
    let found: Vec<(String, u64)> = report
        .problems
        .iter()
        .map(|p| (p.file.rsplit('/').next().unwrap().to_owned(), p.line))
        .collect();
    assert_eq!(
        found,
        [
            ("people.csv".to_owned(), 3),
            ("assessments.csv".to_owned(), 4)
        ],
        "{report}"
    );
    assert_eq!(report.skipped.len(), 5, "{report}");
    assert!(report.to_string().contains("not imported"));
}

/// One problem of each kind, in two files of a fresh organisation: every one is reported
/// in one run, file by file in line order, and nothing is written; `dry_run` reports the
/// same and writes nothing either.
#[tokio::test]
async fn one_problem_of_each_kind_is_reported_in_one_run_in_line_order() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "skills.csv",
        "id,name,category\nrust,Rust,technical\nsql,SQL,cooking\n",
    );
    write(
        "roles.csv",
        "role_id,role_name,skill_id,required_level,weight\ndev,Dev,rust,3,1\nops,Ops,go,2,1\n",
    );
    write(
        "teams.csv",
        "id,name,parent_id,manager_id\nt,T,,\nu,U,nowhere,\n",
    );
    write(
        "people.csv",
        "id,display_name,team_id,role_id,target_role_id,availability\n\
         ada,Ada,t,dev,,1\n\
         bob,Bob,t\n\
         cy,Cy,t,dev,,lots\n\
         dan,Dan,x,dev,,1\n\
         eve,,t,dev,,1\n",
    );
    write(
        "assessments.csv",
        "id,person_id,skill_id,score,source,assessor_id,assessed_at,evidence\n\
         a1,ada,rust,3,peer,,2026-01-01T00:00:00Z,\n\
         a2,ada,rust,three,peer,,2026-01-01T00:00:00Z,\n\
         a3,ada,rust,3,gossip,,2026-01-01T00:00:00Z,\n\
         a4,ada,rust,3,peer,,yesterday,\n\
         a5,ghost,rust,3,peer,,2026-01-01T00:00:00Z,\n\
         a6,ada,cobol,3,peer,,2026-01-01T00:00:00Z,\n\
         a7,ada,rust,9,peer,,2026-01-01T00:00:00Z,\n\
         a8,ada\n",
    );
    let expected = [
        ("skills.csv", 3, "category"),
        ("roles.csv", 3, "skill_id"),
        ("teams.csv", 3, "parent_id"),
        ("people.csv", 3, ""),
        ("people.csv", 4, "availability"),
        ("people.csv", 5, "team_id"),
        ("people.csv", 6, "display_name"),
        ("assessments.csv", 3, "score"),
        ("assessments.csv", 4, "source"),
        ("assessments.csv", 5, "assessed_at"),
        ("assessments.csv", 6, "person_id"),
        ("assessments.csv", 7, "skill_id"),
        ("assessments.csv", 8, "score"),
        ("assessments.csv", 9, ""),
    ];
    for dry_run in [false, true] {
        let options = import::ImportOptions {
            batch_size: 100,
            dry_run,
            progress: false,
        };
        let endpoint = tonic::transport::Endpoint::from_shared(app.address.clone()).unwrap();
        let report = import::run_with(endpoint, &app.admin_token, &files(dir.path()), &options)
            .await
            .unwrap();
        let found: Vec<(String, u64, String)> = report
            .problems
            .iter()
            .map(|p| {
                let file = p.file.rsplit('/').next().unwrap().to_owned();
                (file, p.line, p.column.clone())
            })
            .collect();
        let expected: Vec<(String, u64, String)> = expected
            .iter()
            .map(|(f, l, c)| ((*f).to_owned(), *l, (*c).to_owned()))
            .collect();
        assert_eq!(found, expected, "dry run {dry_run}:\n{report}");
        assert_eq!(report.skipped.len(), if dry_run { 0 } else { 5 });
        // Nothing was written.
        let skills = app
            .clients(&app.admin_token)
            .directory
            .list_skills(pb::ListSkillsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .skills;
        assert!(skills.is_empty(), "dry run {dry_run}: {skills:?}");
    }
}
