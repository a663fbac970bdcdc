// Expert search: people who meet every skill requirement, ranked.
import { capability, explain, loadModel, skillName, teamName } from "../api";
import { fmtLevel, field, h, notice, pct, select, table, loading } from "../ui";
import { skillOptions } from "./common";

const ROWS = 3;

export async function expertsPage(root: HTMLElement): Promise<void> {
  const m = await loadModel();
  const skills = skillOptions(m);
  const rows = Array.from({ length: ROWS }, (_, i) => ({
    skill: select(`skill${i}`, [["", "—"], ...skills], i === 0 ? skills[0]?.[0] ?? "" : ""),
    level: h("input", { type: "number", name: `level${i}`, min: 0, max: 5, step: 0.5, value: 3 }),
  }));
  const scope = select("scope", [["", "Whole organisation"], ...[...m.teams.values()].sort((a, b) => a.id.localeCompare(b.id)).map((t): [string, string] => [t.id, `${t.name} (${t.id})`])]);
  const confidence = h("input", { type: "number", name: "confidence", min: 0, max: 1, step: 0.05, value: 0.3 });
  const results = h("div", { class: "results" });
  const form = h(
    "form",
    { class: "query" },
    rows.map((r, i) => h("div", { class: "row" }, field(`Skill ${i + 1}`, r.skill), field("at least", r.level))),
    h("div", { class: "row" }, field("Scope", scope), field("Min confidence", confidence)),
    h("button", { type: "submit" }, "Find experts"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const requirements = rows
      .filter((r) => r.skill.value)
      .map((r) => ({ skillId: r.skill.value, minLevel: Number(r.level.value) }));
    results.replaceChildren(loading("Searching…"));
    try {
      const res = await capability.findExperts({
        requirements,
        scopeTeamId: scope.value,
        minConfidence: Number(confidence.value),
        pageSize: 25,
      });
      results.replaceChildren(
        h("p", { class: "legend" }, `${res.total} people meet every requirement; the best ${res.experts.length}:`),
        res.experts.length
          ? table(
              ["Person", "Team", ...requirements.map((r) => skillName(m, r.skillId)), "Confidence", "Score"],
              res.experts.map((e) => [
                h("span", { title: e.personId }, e.displayName),
                teamName(m, e.teamId),
                ...e.levels.map((l) => fmtLevel(l)),
                pct(e.minConfidence),
                e.score.toFixed(2),
              ]),
              { class: "experts" },
            )
          : notice("Nobody in the scope meets all of these requirements. Try lower levels or a wider scope."),
      );
    } catch (e) {
      results.replaceChildren(notice(explain(e), "error"));
    }
  });
  root.replaceChildren(form, results);
}
