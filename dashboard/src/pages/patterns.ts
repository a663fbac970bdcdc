// Organisation-wide skill patterns by department, team, role or archetype, with
// suppressed groups marked (minimum group size, and complementary suppression).
import { insights, loadModel } from "../api";
import { GroupBy, type GroupPattern, Suppression } from "@capsight/client/v1/insights_pb";
import { SkillCategory } from "@capsight/client/v1/types_pb";
import { fmtLevel, field, h, levelColour, inkOn, select, signed, table } from "../ui";
import { ownTop } from "./common";

const GROUPINGS: [string, string][] = [
  [String(GroupBy.DEPARTMENT), "Department"],
  [String(GroupBy.TEAM), "Team"],
  [String(GroupBy.ROLE), "Role"],
  [String(GroupBy.ARCHETYPE), "Archetype"],
];

const CATEGORIES = [
  SkillCategory.TECHNICAL,
  SkillCategory.SOFT,
  SkillCategory.BUSINESS,
  SkillCategory.LEADERSHIP,
  SkillCategory.DOMAIN,
  SkillCategory.KNOWLEDGE,
];

export async function patternsPage(root: HTMLElement, params: string[]): Promise<void> {
  const m = await loadModel();
  // Managers and planners: their own teams; everyone else: the whole organisation.
  const scope = ownTop(m);
  const groupBy = Number(params[0] ?? GroupBy.DEPARTMENT) as GroupBy;
  const raised = params[1] ? Number(params[1]) : undefined;
  const picker = select("groupBy", GROUPINGS, String(groupBy));
  // Reviewers may raise the minimum group size for an answer, never lower it.
  const minimum = h("input", { type: "number", name: "minGroupSize", min: 3, max: 1000, value: raised ?? "" , placeholder: "server's" });
  const go = () => (location.hash = `#/patterns/${picker.value}${minimum.value ? `/${minimum.value}` : ""}`);
  picker.addEventListener("change", go);
  minimum.addEventListener("change", go);
  root.replaceChildren(h("div", { class: "toolbar" }, field("Group by", picker), field("Minimum group size", minimum)));
  // Groups come in pages (totals and suppression cover them all): read every page.
  const res = await insights.getOrgSkillPatterns({ scopeTeamId: scope, groupBy, minGroupSize: raised, pageSize: 200 });
  for (let token = res.nextPageToken; token; ) {
    const next = await insights.getOrgSkillPatterns({ scopeTeamId: scope, groupBy, minGroupSize: raised, pageSize: 200, pageToken: token });
    res.groups.push(...next.groups);
    token = next.nextPageToken;
  }
  const row = (g: GroupPattern): (Node | string)[] => {
    if (g.suppression !== Suppression.NONE) {
      const why = g.suppression === Suppression.TOO_SMALL ? `fewer than ${res.minGroupSize} people` : "would reveal a smaller group by difference";
      return [g.name, h("span", { class: "suppressed" }, `suppressed: ${why}`), ...CATEGORIES.map(() => ""), "", "", ""];
    }
    return [
      g.name,
      String(g.size),
      ...CATEGORIES.map((c) => {
        const level = g.categories.find((x) => x.category === c)?.meanLevel;
        if (level === undefined) return "–";
        const chip = h("span", { class: "chip" }, fmtLevel(level));
        chip.style.background = levelColour(level);
        chip.style.color = inkOn(level);
        return chip;
      }),
      g.calibration === undefined ? "–" : signed(g.calibration),
      g.trend === undefined ? "–" : signed(g.trend),
      archetypeList(g.archetypes.slice(0, 3), g.otherArchetypes),
    ];
  };
  const rows = res.groups.map(row);
  const suppressed = res.groups.filter((g) => g.suppression !== Suppression.NONE).length;
  const tbl = table(
    ["Group", "People", ...CATEGORIES.map((c) => SkillCategory[c].toLowerCase()), "Self-rating bias", `Trend (${res.trendDays} d)`, "Main archetypes"],
    rows,
    { class: "patterns" },
  );
  tbl.querySelectorAll("tbody tr").forEach((tr, i) => {
    if (res.groups[i].suppression !== Suppression.NONE) tr.classList.add("suppressed-row");
  });
  root.append(
    h(
      "p",
      { class: "legend" },
      `Mean effective level per skill category. Groups smaller than ${res.minGroupSize} people, and groups that would let one be recovered by difference, are suppressed (${suppressed} here). Self-rating bias: mean of self-rating minus other evidence.`,
    ),
    tbl,
    res.total ? h("p", { class: "legend" }, `Whole scope: ${res.total.size} people, self-rating bias ${res.total.calibration === undefined ? "–" : signed(res.total.calibration)}`) : "",
  );
}

/** Up to three archetypes with their counts, then the people in the others; a group
 * whose archetypes are all too small to show says only that. */
function archetypeList(shown: { label: string; count: number }[], others: number): string {
  const parts = shown.map((a) => `${a.label} ${a.count}`);
  if (others) parts.push(parts.length ? `others ${others}` : `${others} in smaller archetypes`);
  return parts.length ? parts.join(", ") : "–";
}

