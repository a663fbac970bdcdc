// Gaps against the team's roles and skill risks (bus factor ≤ 1 on required skills).
import { capability, loadModel, skillName } from "../api";
import { RiskKind } from "@capsight/client/v1/capability_pb";
import { fmtLevel, h, notice, pct, table, loading } from "../ui";
import { chosenTeam, teamPicker } from "./common";

export async function risksPage(root: HTMLElement, params: string[]): Promise<void> {
  const m = await loadModel();
  const teamId = chosenTeam(m, params);
  root.replaceChildren(teamPicker(m, "risks", teamId), loading("Loading…"));
  const [team, risks] = await Promise.all([
    capability.getTeamCapability({ teamId, includeSubteams: true }),
    capability.getSkillRisks({ teamId }),
  ]);
  const c = team.capability!;
  const names = new Map(c.members.map((m) => [m.personId, m.displayName]));
  const gaps = c.skills
    .filter((s) => s.requiredLevel !== undefined && (s.gap ?? 0) > 0)
    .sort((a, b) => (b.gap ?? 0) - (a.gap ?? 0));
  const gapTable = gaps.length
    ? table(
        ["Skill", "Required", "Team best", "Team mean", "Gap", "Members below requirement"],
        gaps.map((s) => [
          skillName(m, s.skillId),
          fmtLevel(s.requiredLevel),
          fmtLevel(s.maxLevel),
          fmtLevel(s.meanLevel),
          h("span", { class: "bad" }, fmtLevel(s.gap)),
          String(s.membersBelowRequirement),
        ]),
        { class: "gaps" },
      )
    : notice("No gaps: someone in the team meets every level the team's roles require.", "ok");
  const riskTable = risks.risks.length
    ? table(
        ["Skill", "Risk", "Required", "Proficient people", "Only holder", "People whose role needs it"],
        risks.risks.map((r) => [
          skillName(m, r.skillId),
          r.kind === RiskKind.MISSING
            ? h("span", { class: "badge missing" }, "nobody has it")
            : h("span", { class: "badge single" }, "single point of failure"),
          fmtLevel(r.requiredLevel),
          String(r.proficientCount),
          r.holderId ? names.get(r.holderId) ?? r.holderId : "–",
          String(r.peopleRequiring),
        ]),
        { class: "risks" },
      )
    : notice("No skill risks: every required skill has at least two proficient people.", "ok");
  root.replaceChildren(
    teamPicker(m, "risks", teamId),
    h("p", { class: "legend" }, `Readiness against the team's roles: ${pct(c.readiness)} · ${c.members.length} people`),
    h("h2", {}, "Gaps against the team's roles"),
    gapTable,
    h("h2", {}, "Skill risks"),
    riskTable,
  );
}
