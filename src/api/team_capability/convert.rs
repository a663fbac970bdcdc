//! A team view to its wire forms: one page of members in the CELLS layout, and the
//! DENSE layout made from it.

use crate::api::convert::timestamp_to_pb;
use crate::api::pb;
use crate::domain::TeamId;
use crate::service::capability::TeamCapabilityView;
use crate::service::page::PageRequest;

/// The members of `view` on `page`: the view cut to them (skill summaries and readiness
/// still cover the whole team), the next page's token and the whole team's size.
pub(super) fn page_of(
    mut view: TeamCapabilityView,
    page: &PageRequest,
) -> (TeamCapabilityView, String, u32) {
    let count = u32::try_from(view.members.len()).unwrap_or(u32::MAX);
    let (range, next) = page.apply_sorted(&view.members, |p| p.id.to_string());
    view.members = view.members.drain(range.clone()).collect();
    view.cells = view.cells.drain(range.clone()).collect();
    view.summary.member_readiness = view.summary.member_readiness.drain(range).collect();
    (view, next, count)
}

/// A CELLS-layout view in the DENSE layout: the known cells' figures as little-endian
/// arrays, and a bitmap of which cells are known.
pub(super) fn to_dense(view: &pb::TeamCapability) -> pb::TeamCapability {
    let cells = view.members.iter().flat_map(|m| &m.cells);
    let known = cells.clone().filter(|c| c.level.is_some()).count();
    let mut bitmap = vec![0u8; (view.members.len() * view.skill_ids.len()).div_ceil(8)];
    let (mut levels, mut confidences, mut counts, mut times) = (
        Vec::with_capacity(known * 4),
        Vec::with_capacity(known * 4),
        Vec::with_capacity(known * 4),
        Vec::with_capacity(known * 8),
    );
    for (k, cell) in cells.enumerate() {
        let Some(level) = cell.level else { continue };
        bitmap[k / 8] |= 1 << (k % 8);
        // Levels and confidences are f32 in the index, so nothing is lost.
        levels.extend_from_slice(&(level as f32).to_le_bytes());
        confidences.extend_from_slice(&(cell.confidence as f32).to_le_bytes());
        counts.extend_from_slice(&cell.evidence_count.to_le_bytes());
        let seconds = cell.last_assessed.map_or(0, |t| t.seconds);
        times.extend_from_slice(&seconds.to_le_bytes());
    }
    pb::TeamCapability {
        members: view
            .members
            .iter()
            .map(|m| pb::MemberCapability {
                person_id: m.person_id.clone(),
                display_name: m.display_name.clone(),
                role_id: m.role_id.clone(),
                cells: Vec::new(),
                readiness: m.readiness,
            })
            .collect(),
        dense: Some(pb::DenseMatrix {
            levels_f32le: levels.into(),
            confidences_f32le: confidences.into(),
            evidence_counts_u32le: counts.into(),
            last_assessed_seconds_i64le: times.into(),
            known_bitmap: bitmap.into(),
        }),
        team_id: view.team_id.clone(),
        skill_ids: view.skill_ids.clone(),
        skills: view.skills.clone(),
        readiness: view.readiness,
        data_version: view.data_version,
        next_member_page_token: view.next_member_page_token.clone(),
        member_count: view.member_count,
    }
}

/// The wire form of one page of a team view.
pub(super) fn to_pb(
    team: &TeamId,
    (view, next_member_page_token, member_count): (TeamCapabilityView, String, u32),
) -> pb::TeamCapability {
    let TeamCapabilityView {
        skills,
        members,
        cells,
        summary,
        version,
    } = view;
    let members = members
        .iter()
        .zip(cells)
        .zip(&summary.member_readiness)
        .map(|((person, row), readiness)| pb::MemberCapability {
            person_id: person.id.to_string(),
            display_name: person.display_name.as_str().to_owned(),
            role_id: person.role.to_string(),
            cells: row
                .into_iter()
                .map(|cell| match cell {
                    Some(p) => pb::CapabilityCell {
                        level: Some(f64::from(p.level)),
                        confidence: f64::from(p.confidence),
                        evidence_count: p.evidence,
                        last_assessed: Some(timestamp_to_pb(p.last_assessed)),
                    },
                    None => pb::CapabilityCell::default(),
                })
                .collect(),
            readiness: readiness.map(f64::from),
        })
        .collect();
    let skill_summaries = skills
        .iter()
        .zip(&summary.skills)
        .map(|(skill, s)| pb::SkillSummary {
            skill_id: skill.to_string(),
            mean_level: s.mean.map(f64::from),
            max_level: s.max.map(f64::from),
            known_count: s.known,
            proficient_count: s.proficient,
            required_level: s.required.map(f64::from),
            gap: s.gap.map(f64::from),
            members_below_requirement: s.members_below,
        })
        .collect();
    pb::TeamCapability {
        team_id: team.to_string(),
        skill_ids: skills.iter().map(ToString::to_string).collect(),
        members,
        skills: skill_summaries,
        readiness: summary.readiness.map(f64::from),
        data_version: version,
        dense: None,
        next_member_page_token,
        member_count,
    }
}
