//! A manager's morning view of one team, from a running capsight server: a heatmap of
//! members × skills, the gaps against the team's roles, the skills that hang on one
//! person, and who in the organisation could help close the biggest gaps.
//!
//! ```sh
//! cargo run --release -- serve --demo            # in one terminal
//! cargo run --example manager_dashboard -- team-00007
//! ```
//! Server: `CAPSIGHT_SERVER` (default http://127.0.0.1:50051). Token: `CAPSIGHT_TOKEN`, or
//! `./capsight-data/admin.token`. A manager token sees only its own teams.

use capsight_proto::BearerToken;
use capsight_proto::pb;
use capsight_proto::pb::capability_service_client::CapabilityServiceClient;

type Error = Box<dyn std::error::Error>;

fn cell(c: &pb::CapabilityCell) -> String {
    match c.level {
        // A trailing '?' marks a level resting on little or conflicting evidence.
        Some(level) if c.confidence < 0.3 => format!("{level:>4.1}?"),
        Some(level) => format!("{level:>4.1} "),
        None => "   · ".to_owned(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let team = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "team-00001".to_owned());
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
    let mut client = CapabilityServiceClient::with_interceptor(channel, BearerToken::new(&token)?);

    let view = client
        .get_team_capability(pb::GetTeamCapabilityRequest {
            team_id: team.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .capability
        .ok_or("no capability in the response")?;

    println!(
        "Team {team}: {} members, readiness {:.0}%\n",
        view.members.len(),
        view.readiness.unwrap_or(0.0) * 100.0
    );
    let short: Vec<String> = view
        .skill_ids
        .iter()
        .map(|s| s.chars().take(5).collect())
        .collect();
    println!(
        "{:<22}{}",
        "",
        short.iter().map(|s| format!("{s:>6}")).collect::<String>()
    );
    for member in &view.members {
        let name: String = member.display_name.chars().take(20).collect();
        let row: String = member
            .cells
            .iter()
            .map(|c| format!(" {}", cell(c)))
            .collect();
        println!(
            "{name:<22}{row}   {:.0}%",
            member.readiness.unwrap_or(0.0) * 100.0
        );
    }

    println!("\nGaps against the team's roles (required level not reached by anyone):");
    let mut gaps: Vec<&pb::SkillSummary> = view
        .skills
        .iter()
        .filter(|s| s.gap.unwrap_or(0.0) > 0.0)
        .collect();
    gaps.sort_by(|a, b| b.gap.unwrap_or(0.0).total_cmp(&a.gap.unwrap_or(0.0)));
    if gaps.is_empty() {
        println!("  none: for every required skill someone reaches the required level");
    }
    for s in &gaps {
        println!(
            "  {:<24} needs {:.1}, best {:>4}, {} of the team below it",
            s.skill_id,
            s.required_level.unwrap_or(0.0),
            s.max_level.map_or("—".to_owned(), |m| format!("{m:.1}")),
            s.members_below_requirement
        );
    }

    let risks = client
        .get_skill_risks(pb::GetSkillRisksRequest {
            team_id: team.clone(),
        })
        .await?
        .into_inner()
        .risks;
    println!("\nSkill risks (bus factor ≤ 1 for a required skill):");
    if risks.is_empty() {
        println!("  none");
    }
    for r in &risks {
        match pb::RiskKind::try_from(r.kind) {
            Ok(pb::RiskKind::SinglePoint) => {
                let holder = view.members.iter().find(|m| m.person_id == r.holder_id);
                let name = holder.map_or(r.holder_id.as_str(), |m| m.display_name.as_str());
                println!("  {:<24} hangs on {name}", r.skill_id);
            }
            _ => println!(
                "  {:<24} nobody is proficient; {} role(s) need it",
                r.skill_id, r.people_requiring
            ),
        }
    }

    // Help for the biggest gaps, or else for the skills that hang on one person.
    let mut needs: Vec<String> = gaps.iter().take(3).map(|s| s.skill_id.clone()).collect();
    if needs.is_empty() {
        needs = risks.iter().take(3).map(|r| r.skill_id.clone()).collect();
    }
    println!("\nWho could help (level ≥ 4, can teach):");
    for skill_id in &needs {
        let experts = client
            .find_experts(pb::FindExpertsRequest {
                requirements: vec![pb::SkillRequirement {
                    skill_id: skill_id.clone(),
                    min_level: 4.0,
                }],
                min_confidence: 0.3,
                page_size: 3,
                ..Default::default()
            })
            .await?
            .into_inner();
        let names: Vec<String> = experts
            .experts
            .iter()
            .map(|e| format!("{} ({}, {:.1})", e.display_name, e.team_id, e.levels[0]))
            .collect();
        println!(
            "  {skill_id:<24} {} of {} found: {}",
            names.len(),
            experts.total,
            names.join(", ")
        );
    }
    Ok(())
}
