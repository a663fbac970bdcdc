//! A culture review of the whole organisation, from a running capsight server: the
//! skill archetypes and how they spread over departments, the departments' skill
//! patterns, and how far people over-rate themselves — aggregates only, every group
//! under the minimum group size suppressed.
//!
//! ```sh
//! cargo run --release -- serve --demo            # in one terminal
//! cargo run --example culture_review
//! ```
//! Server: `CAPSIGHT_SERVER` (default http://127.0.0.1:50051). Token: `CAPSIGHT_TOKEN` (an
//! analyst token is enough), or `./capsight-data/admin.token`.

use capsight_proto::BearerToken;
use capsight_proto::pb;
use capsight_proto::pb::org_insights_service_client::OrgInsightsServiceClient;

type Error = Box<dyn std::error::Error>;

fn signed(v: Option<f64>) -> String {
    v.map_or_else(|| "   n/a".to_owned(), |v| format!("{v:+6.2}"))
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
    let mut insights =
        OrgInsightsServiceClient::with_interceptor(channel, BearerToken::new(token.trim())?);

    let map = insights
        .get_skill_archetypes(pb::GetSkillArchetypesRequest::default())
        .await?
        .into_inner();
    let freshness = map.freshness.unwrap_or_default();
    println!(
        "Skill archetypes of {} people (k = {}, silhouette {:.2}; {:.0}% of cells backed by \
         evidence, unknown taken as {:.1}; data version {}{})\n",
        map.people,
        map.archetypes.len(),
        map.silhouette,
        map.known_share * 100.0,
        map.unknown_level,
        freshness.computed_version,
        if freshness.stale {
            ", being refreshed"
        } else {
            ""
        }
    );
    for a in &map.archetypes {
        if a.suppression() != pb::Suppression::None {
            println!(
                "  #{:<2} suppressed (fewer than {} people)",
                a.index, map.min_group_size
            );
            continue;
        }
        let share = f64::from(a.size) / f64::from(map.people.max(1)) * 100.0;
        println!(
            "  #{:<2} {:<55} {:>5} people ({share:4.1}%), spread {:.2}",
            a.index, a.label, a.size, a.spread
        );
        let defining: Vec<String> = a
            .defining_skills
            .iter()
            .take(4)
            .map(|s| format!("{} {:.1} ({:+.1})", s.skill_name, s.level, s.versus_mean))
            .collect();
        println!(
            "      strongest vs the organisation: {}",
            defining.join(", ")
        );
        let mut departments: Vec<String> = a
            .departments
            .iter()
            .take(4)
            .map(|d| format!("{} {}", d.name, d.count))
            .collect();
        if a.other_departments > 0 {
            departments.push(format!("others {}", a.other_departments));
        }
        println!("      departments: {}", departments.join(", "));
    }

    let patterns = insights
        .get_org_skill_patterns(pb::GetOrgSkillPatternsRequest {
            group_by: pb::GroupBy::Department.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    println!(
        "\nDepartments (groups under {} people are suppressed; trend over {} days)\n",
        patterns.min_group_size, patterns.trend_days
    );
    println!(
        "  {:<28} {:>6} {:>9} {:>6} {:>6} {:>11} {:>7}",
        "department", "people", "technical", "soft", "trend", "self−others", "top archetype"
    );
    let mut rows = patterns.groups.clone();
    rows.extend(patterns.total.clone());
    for g in &rows {
        let name = if g.group_id.is_empty() {
            "(organisation)"
        } else {
            g.name.as_str()
        };
        if g.suppression() != pb::Suppression::None {
            println!("  {name:<28} suppressed");
            continue;
        }
        let category = |c: pb::SkillCategory| {
            g.categories
                .iter()
                .find(|x| x.category() == c)
                .map_or_else(|| "n/a".to_owned(), |x| format!("{:.2}", x.mean_level))
        };
        let top = g
            .archetypes
            .iter()
            .max_by_key(|a| a.count)
            .map_or_else(String::new, |a| format!("{} ({})", a.label, a.count));
        println!(
            "  {name:<28} {:>6} {:>9} {:>6} {} {:>11} {top}",
            g.size,
            category(pb::SkillCategory::Technical),
            category(pb::SkillCategory::Soft),
            signed(g.trend),
            signed(g.calibration),
        );
    }
    println!(
        "\nSelf-ratings exceed the level other evidence shows by {} on average \
         ({} skill cells with both).",
        signed(patterns.total.as_ref().and_then(|t| t.calibration)).trim(),
        patterns.total.as_ref().map_or(0, |t| t.calibration_cells)
    );
    Ok(())
}
