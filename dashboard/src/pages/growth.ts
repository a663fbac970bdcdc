// Growth of one person: their profile with evidence and confidence, how their levels
// moved (chart and short stories), gaps against their current and target role, and
// their mentors, agreed and suggested. A person token sees its own; managers and
// planners pick people of their teams.
import { capability, directory, explain, loadModel, type Model, skillName, talent, teamName, whoAmI } from "../api";
import { AssessmentSource } from "@capsight/client/v1/types_pb";
import type { GetPersonProfileResponse, GetPersonGapsResponse, SkillProficiency } from "@capsight/client/v1/capability_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { lineChart } from "../chart";
import { fmtLevel, field, h, loading, notice, pct, table } from "../ui";
import { chosenTeam, idInLabel } from "./common";

export async function growthPage(root: HTMLElement, params: string[], signal: AbortSignal): Promise<void> {
  const [m, who] = await Promise.all([loadModel(), whoAmI()]);
  const view = h("div", { class: "growth" });
  let personId = who.personId || params[0] || "";
  if (!who.personId) {
    const picker = await personPicker(m, personId);
    personId ||= picker.first;
    root.replaceChildren(picker.element, view);
  } else {
    root.replaceChildren(view);
  }
  if (!personId) {
    view.replaceChildren(notice("Nobody in your teams yet."));
    return;
  }
  view.dataset.person = personId;
  view.replaceChildren(loading("Loading the profile…"));
  const profile = await capability.getPersonProfile({ personId }, { signal });
  const person = profile.person!;
  const [current, target] = await Promise.all([
    capability.getPersonGaps({ personId }, { signal }),
    person.targetRoleId ? capability.getPersonGaps({ personId, targetRole: true }, { signal }) : Promise.resolve(null),
  ]);
  view.replaceChildren(
    h(
      "p",
      { class: "legend person-head" },
      h("strong", {}, person.displayName),
      ` · ${teamName(m, person.teamId)} · role ${person.roleId}`,
      person.targetRoleId ? ` · working towards ${person.targetRoleId}` : "",
      profile.calibration === undefined ? "" : ` · self-ratings ${describeCalibration(profile.calibration)}`,
    ),
    h("h2", {}, "How my levels moved"),
    progress(m, profile),
    h("h2", {}, "Skills and evidence"),
    skillsTable(m, profile),
    h("h2", {}, `Gaps for my role (${current.roleId}) · ready ${pct(current.readiness)}`),
    gapsTable(m, current),
    target ? h("h2", {}, `Gaps for my target role (${target.roleId}) · ready ${pct(target.readiness)}`) : "",
    target ? gapsTable(m, target) : "",
    h("h2", {}, "Mentors"),
    await mentors(m, personId, signal),
  );
}

/** People of the chosen team to pick from, by name. */
async function personPicker(m: Model, current: string): Promise<{ element: HTMLElement; first: string }> {
  const team = chosenTeam(m, []);
  const people = team ? (await directory.listPeople({ subtreeTeamId: team, pageSize: 1000 })).people : [];
  const list = h("datalist", { id: "growth-people" }, people.map((p) => h("option", { value: `${p.displayName} (${p.id})` })));
  const known = people.find((p) => p.id === current);
  const input = h("input", {
    name: "person",
    list: "growth-people",
    placeholder: "search people by name",
    autocomplete: "off",
    value: known ? `${known.displayName} (${known.id})` : current,
  });
  input.addEventListener("change", () => {
    const text = input.value.trim();
    const id = idInLabel(text) ?? people.find((p) => p.displayName.toLowerCase() === text.toLowerCase())?.id ?? text;
    if (id) location.hash = `#/growth/${encodeURIComponent(id)}`;
  });
  return {
    element: h("div", { class: "toolbar" }, field(`Person (${people.length} in ${teamName(m, team)})`, input), list),
    first: people[0]?.id ?? "",
  };
}

function describeCalibration(c: number): string {
  if (Math.abs(c) < 0.25) return "match other evidence";
  return c > 0 ? `run ${c.toFixed(1)} above other evidence` : `run ${(-c).toFixed(1)} below other evidence`;
}

const SOURCE: Record<number, string> = {
  [AssessmentSource.SELF]: "self-rating",
  [AssessmentSource.PEER]: "peer review",
  [AssessmentSource.MANAGER]: "manager review",
  [AssessmentSource.OBSERVED_PRACTICE]: "observed practice",
  [AssessmentSource.OBJECTIVE_TEST]: "objective test",
};

/** The skills with the most evidence: scores over time, and a story per skill. */
function progress(m: Model, profile: GetPersonProfileResponse): HTMLElement {
  const withHistory = profile.skills
    .filter((s) => s.evidence.length >= 2)
    .sort((a, b) => b.evidence.length - a.evidence.length || a.skillId.localeCompare(b.skillId))
    .slice(0, 5);
  if (!withHistory.length) return notice("Not enough evidence over time yet: a skill needs two assessments to show a trend.");
  const times = [...new Set(withHistory.flatMap((s) => s.evidence.map((e) => seconds(e.assessedAt!))))].sort((a, b) => a - b);
  const series = withHistory.map((s) => {
    const at = new Map(s.evidence.map((e) => [seconds(e.assessedAt!), e.score]));
    return { label: skillName(m, s.skillId), values: times.map((t) => at.get(t) ?? null) };
  });
  return h(
    "div",
    {},
    lineChart(times, series, "assessed score"),
    h("ul", { class: "stories" }, withHistory.map((s) => h("li", {}, story(m, s)))),
  );
}

function seconds(t: Parameters<typeof timestampDate>[0]): number {
  return Math.floor(timestampDate(t).getTime() / 1000);
}

/** "Kubernetes: 2.0 → 3.8 since Mar 2026, from 3 assessments (2 objective tests)". */
function story(m: Model, s: SkillProficiency): string {
  const oldest = [...s.evidence].sort((a, b) => seconds(a.assessedAt!) - seconds(b.assessedAt!));
  const first = oldest[0];
  const since = timestampDate(first.assessedAt!).toLocaleDateString("en-GB", { month: "short", year: "numeric" });
  const kinds = new Map<string, number>();
  for (const e of s.evidence) kinds.set(SOURCE[e.source] ?? "other", (kinds.get(SOURCE[e.source] ?? "other") ?? 0) + 1);
  const mix = [...kinds].map(([k, n]) => `${n} ${k}${n > 1 ? "s" : ""}`).join(", ");
  return `${skillName(m, s.skillId)}: first assessed ${first.score.toFixed(1)} in ${since}, now level ${fmtLevel(s.level)} (confidence ${pct(s.confidence)}), from ${mix}`;
}

function skillsTable(m: Model, profile: GetPersonProfileResponse): HTMLElement {
  if (!profile.skills.length) return notice("No evidence yet.");
  return h(
    "div",
    { class: "scroll" },
    table(
      ["Skill", "Level", "Confidence", "Assessments", "Latest", "Self-rating vs others"],
      profile.skills.map((s) => [
        skillName(m, s.skillId),
        fmtLevel(s.level),
        pct(s.confidence),
        String(s.evidence.length),
        s.lastAssessed ? timestampDate(s.lastAssessed).toISOString().slice(0, 10) : "–",
        s.selfGap === undefined ? "–" : `${s.selfGap > 0 ? "+" : ""}${s.selfGap.toFixed(1)}`,
      ]),
      { class: "profile" },
    ),
  );
}

function gapsTable(m: Model, gaps: GetPersonGapsResponse): HTMLElement {
  if (!gaps.gaps.length) return notice("The role has no requirements.");
  return h(
    "div",
    { class: "scroll" },
    table(
      ["Skill", "Required", "My level", "Gap", "Confidence"],
      gaps.gaps.map((g) => [
        skillName(m, g.skillId),
        fmtLevel(g.requiredLevel),
        fmtLevel(g.level),
        g.gap > 0 ? h("span", { class: "bad" }, g.gap.toFixed(1)) : h("span", { class: "ok" }, "met"),
        pct(g.confidence),
      ]),
      { class: "gaps" },
    ),
  );
}

/** Agreed mentors, then suggestions ordered by expected gain. */
async function mentors(m: Model, personId: string, signal: AbortSignal): Promise<HTMLElement> {
  try {
    const [agreed, suggested] = await Promise.all([
      talent.listMentorships({ personId, pageSize: 100 }, { signal }),
      talent.findMentors({ personId, limit: 5 }, { signal }),
    ]);
    const mine = agreed.mentorships.filter((x) => x.menteeId === personId);
    const ranked = [...suggested.mentors].sort((a, b) => b.expectedGain - a.expectedGain);
    return h(
      "div",
      {},
      mine.length
        ? table(
            ["Agreed mentor", "Skills", "Since"],
            mine.map((x) => [x.mentorId, x.skillIds.map((id) => skillName(m, id)).join(", "), x.startedAt ? timestampDate(x.startedAt).toISOString().slice(0, 10) : "–"]),
            { class: "agreed" },
          )
        : notice("No mentor agreed yet."),
      ranked.length
        ? table(
            ["Suggested mentor", "Team", "Expected gain (levels)", "Why"],
            ranked.map((s) => [s.displayName, teamName(m, s.teamId), s.expectedGain.toFixed(2), s.rationale]),
            { class: "suggested" },
          )
        : notice("No mentor suggestion: nobody is far enough ahead in the skills with gaps."),
    );
  } catch (e) {
    return notice(explain(e), "error");
  }
}
