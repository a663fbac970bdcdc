// "Are we improving?": a team's (or department's) mean level per skill over the last
// year as a chart, and its biggest improvements told as short stories — who, which
// skill, from what to what, with whose mentoring and what evidence. Culture reviews
// (analysts) follow whole departments, as aggregates: no stories, and no point backed
// by fewer people than the server's minimum group size.
import { capability, directory, explain, loadModel, type Model, skillName, talent, whoAmI } from "../api";
import { AccessRole } from "@capsight/client/v1/access_pb";
import { AssessmentSource } from "@capsight/client/v1/types_pb";
import type { Improvement } from "@capsight/client/v1/capability_pb";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { lineChart } from "../chart";
import { h, loading, notice, signed, table } from "../ui";
import { chosenTeam, departments, teamPicker } from "./common";

const MONTHS = 12;
const SKILLS = 6;

export async function progressPage(root: HTMLElement, params: string[], signal: AbortSignal): Promise<void> {
  const [m, who] = await Promise.all([loadModel(), whoAmI()]);
  const aggregate = who.role === AccessRole.ANALYST;
  const units = aggregate ? departments(m) : undefined;
  const teamId = aggregate ? params[0] ?? units?.[0]?.id ?? "" : chosenTeam(m, params);
  const view = h("div", { class: "trend-view" }, loading("Computing the trend…"));
  root.replaceChildren(teamPicker(m, "progress", teamId, units, aggregate ? "Department" : "Team"), view);
  const skills = await requiredSkills();
  if (!skills.length) {
    view.replaceChildren(notice("No role has requirements yet, so there is nothing to follow."));
    return;
  }
  const to = new Date();
  const from = new Date(to.getTime() - MONTHS * 30 * 86_400_000);
  // What the figures are of (the period is the moment of rendering).
  Object.assign(view.dataset, { team: teamId, skills: skills.join(","), from: String(from.getTime()), to: String(to.getTime()) });
  const trend = await capability.getCapabilityTrend(
    { teamId, skillIds: skills, from: timestampFromDate(from), to: timestampFromDate(to), intervalDays: 30 },
    { signal },
  );
  const times = [...new Set(trend.points.map((p) => Math.floor(timestampDate(p.at!).getTime() / 1000)))];
  const series = skills.map((id) => ({
    label: skillName(m, id),
    values: trend.points.filter((p) => p.skillId === id).map((p) => p.meanLevel ?? null),
  }));
  const last = new Map(trend.points.filter((p) => Math.floor(timestampDate(p.at!).getTime() / 1000) === times[times.length - 1]).map((p) => [p.skillId, p]));
  const first = new Map(trend.points.filter((p) => Math.floor(timestampDate(p.at!).getTime() / 1000) === times[0]).map((p) => [p.skillId, p]));
  view.replaceChildren(
    h(
      "p",
      { class: "legend" },
      `Mean effective level of the people with evidence, every 30 days over the last ${MONTHS} months, for the skills the roles require most.`,
      aggregate ? " Whole departments only; a point backed by too few people to stay anonymous is left out (–)." : "",
    ),
    lineChart(times, series, "mean level"),
    h("div", { class: "scroll" }, table(
      ["Skill", `Mean ${MONTHS} months ago`, "Mean now", "Change", "Proficient (≥3) now"],
      skills.map((id) => {
        const [a, b] = [first.get(id)?.meanLevel, last.get(id)?.meanLevel];
        const change = a === undefined || b === undefined ? "–" : signed(b - a);
        return [skillName(m, id), a?.toFixed(2) ?? "–", b?.toFixed(2) ?? "–", change, String(last.get(id)?.proficientCount ?? 0)];
      }),
      { class: "trend" },
    )),
    aggregate ? "" : h("h2", {}, "Biggest improvements"),
    aggregate ? "" : await stories(m, trend.improvements, signal),
  );
}

/** The skills the roles require most often (up to `SKILLS`). */
async function requiredSkills(): Promise<string[]> {
  const counts = new Map<string, number>();
  let pageToken = "";
  do {
    const page = await directory.listRoles({ pageSize: 1000, pageToken });
    for (const r of page.roles) for (const q of r.requirements) counts.set(q.skillId, (counts.get(q.skillId) ?? 0) + 1);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, SKILLS).map(([id]) => id);
}


/** "Uma Rao: Kubernetes 2.1 → 3.8, mentored by Ivan Petrov, from 2 objective tests". */
async function stories(m: Model, improvements: Improvement[], signal: AbortSignal): Promise<HTMLElement> {
  if (!improvements.length) return notice("Nobody's level rose over the period in these skills.");
  try {
    const items = await Promise.all(
      improvements.map(async (i) => {
        const [person, mentoring, profile] = await Promise.all([
          directory.getPerson({ personId: i.personId }, { signal }),
          talent.listMentorships({ personId: i.personId, pageSize: 100 }, { signal }),
          capability.getPersonProfile({ personId: i.personId }, { signal }),
        ]);
        const mentor = mentoring.mentorships.find((x) => x.menteeId === i.personId && x.skillIds.includes(i.skillId));
        const mentorName = mentor ? (await directory.getPerson({ personId: mentor.mentorId }, { signal })).person?.displayName : undefined;
        const evidence = profile.skills.find((s) => s.skillId === i.skillId)?.evidence ?? [];
        const tests = evidence.filter((e) => e.source === AssessmentSource.OBJECTIVE_TEST || e.source === AssessmentSource.OBSERVED_PRACTICE).length;
        const parts = [
          `${person.person?.displayName ?? i.personId}: ${skillName(m, i.skillId)} ${i.fromLevel.toFixed(1)} → ${i.toLevel.toFixed(1)}`,
          mentorName ? `mentored by ${mentorName}` : "",
          tests ? `${tests} objective test${tests > 1 ? "s" : ""} or observed practice${tests > 1 ? "s" : ""}` : `${evidence.length} assessment${evidence.length === 1 ? "" : "s"}`,
        ];
        return h("li", { "data-person": i.personId, "data-skill": i.skillId }, parts.filter(Boolean).join(", "));
      }),
    );
    return h("ol", { class: "stories" }, items);
  } catch (e) {
    return notice(explain(e), "error");
  }
}
