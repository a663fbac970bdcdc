//! A workforce planner asks capsight for a team on the demo organisation: six people
//! covering Rust ≥ 4, Kubernetes ≥ 3 (two of them), accessibility ≥ 3 and stakeholder
//! management ≥ 3, from the Platform and Web departments, at least half available,
//! without taking any team's last expert — then prints the proposal and its explanation.
//!
//! ```sh
//! cargo run --release -- serve --demo            # in one terminal
//! cargo run --example assemble_team
//! ```
//! Server: `CAPSIGHT_SERVER` (default http://127.0.0.1:50051). Token: `CAPSIGHT_TOKEN` (a
//! planner token scoped to those departments is enough), or `./capsight-data/admin.token`.

use capsight_proto::BearerToken;
use capsight_proto::pb;
use capsight_proto::pb::talent_service_client::TalentServiceClient;

type Error = Box<dyn std::error::Error>;

fn need(skill: &str, level: f64, people: u32, weight: f64) -> pb::TeamSkillRequirement {
    pb::TeamSkillRequirement {
        skill_id: skill.into(),
        min_level: level,
        min_people: people,
        weight,
    }
}

fn print_team(title: &str, team: &pb::ProposedTeam) {
    println!("{title}: coverage {:.0}%", team.coverage * 100.0);
    for m in &team.members {
        println!(
            "  {:<10} {:<22} {:<11} available {:>3.0}%  {}",
            m.person_id,
            m.display_name,
            m.team_id,
            m.availability * 100.0,
            m.reason
        );
    }
    for r in &team.requirements {
        let mark = if r.met >= r.wanted { "met  " } else { "SHORT" };
        println!(
            "  {mark} {:<24} ≥ {:.1}: {} of {} ({})",
            r.skill_id,
            r.min_level,
            r.met,
            r.wanted,
            r.person_ids.join(", ")
        );
    }
    for i in &team.impacts {
        let drops: Vec<String> = i
            .bus_factor
            .iter()
            .map(|b| format!("{} {}→{}", b.skill_id, b.before, b.after))
            .collect();
        println!(
            "  takes {} from {}{}",
            i.person_ids.join(", "),
            i.team_id,
            if drops.is_empty() {
                String::new()
            } else {
                format!("; proficient counts drop: {}", drops.join(", "))
            }
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let server =
        std::env::var("CAPSIGHT_SERVER").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let token = match std::env::var("CAPSIGHT_TOKEN") {
        Ok(token) => token,
        Err(_) => std::fs::read_to_string("capsight-data/admin.token")
            .map_err(|e| format!("set CAPSIGHT_TOKEN or run from the server's directory: {e}"))?,
    };
    let channel = tonic::transport::Endpoint::from_shared(server)?
        .connect()
        .await?;
    let mut talent =
        TalentServiceClient::with_interceptor(channel, BearerToken::new(token.trim())?);

    let answer = talent
        .compose_team(pb::ComposeTeamRequest {
            requirements: vec![
                need("rust", 4.0, 1, 2.0),
                need("kubernetes", 3.0, 2, 1.5),
                need("accessibility", 3.0, 1, 1.0),
                need("stakeholder-management", 3.0, 1, 1.0),
            ],
            min_size: 4,
            max_size: 6,
            pool_team_ids: vec!["dept-01".into(), "dept-04".into()],
            min_availability: 0.5,
            protect_source_teams: true,
            max_per_source_team: Some(2),
            alternatives: 2,
            ..Default::default()
        })
        .await?
        .into_inner();

    println!(
        "{} candidates considered. {}\n",
        answer.pool_size, answer.optimality_statement
    );
    if let Some(best) = &answer.best {
        print_team("Proposed team", best);
    }
    for (n, alternative) in answer.alternatives.iter().enumerate() {
        println!();
        print_team(&format!("Alternative {}", n + 1), alternative);
    }
    if !answer.protection_conflicts.is_empty() {
        println!("\nLeft out to protect their teams:");
        for c in answer.protection_conflicts.iter().take(10) {
            println!(
                "  {} (last proficient in {} of {})",
                c.person_id,
                c.skill_ids.join(", "),
                c.team_id
            );
        }
        if answer.protection_conflicts.len() > 10 {
            println!("  … and {} more", answer.protection_conflicts.len() - 10);
        }
    }
    Ok(())
}
