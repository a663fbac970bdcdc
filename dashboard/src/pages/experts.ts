// Expert search: people who meet every skill requirement, ranked.
import { capability, explain, loadModel, skillName, teamName } from "../api";
import { fmtLevel, field, h, notice, pct, select, loading } from "../ui";
import { scopeOptions, skillOptions } from "./common";

const ROWS = 3;

export async function expertsPage(root: HTMLElement): Promise<void> {
  const m = await loadModel();
  const skills = skillOptions(m);
  const rows = Array.from({ length: ROWS }, (_, i) => ({
    skill: select(`skill${i}`, [["", "—"], ...skills], i === 0 ? skills[0]?.[0] ?? "" : ""),
    level: h("input", { type: "number", name: `level${i}`, min: 0, max: 5, step: 0.5, value: 3 }),
  }));
  const scope = select("scope", ...scopeOptions(m));
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
    const head = ["Person", "Team", ...requirements.map((r) => skillName(m, r.skillId)), "Confidence", "Score"];
    const body = h("tbody");
    const more = h("button", { type: "button", class: "more" }, "Show more");
    const legend = h("p", { class: "legend" });
    let pageToken = "";
    let shown = 0;
    // Pages of 25, best first; "Show more" fetches the next page of the same search.
    const next = async () => {
      more.disabled = true;
      const res = await capability.findExperts({
        requirements,
        scopeTeamId: scope.value,
        minConfidence: Number(confidence.value),
        pageSize: 25,
        pageToken,
      });
      for (const e of res.experts) {
        body.append(
          h(
            "tr",
            {},
            [h("span", { title: e.personId }, e.displayName), teamName(m, e.teamId), ...e.levels.map((l) => fmtLevel(l)), pct(e.minConfidence), e.score.toFixed(2)].map((c) => h("td", {}, c)),
          ),
        );
      }
      shown += res.experts.length;
      pageToken = res.nextPageToken;
      legend.textContent = `${res.total} people meet every requirement; the best ${shown} shown, best first.`;
      more.hidden = !pageToken;
      more.disabled = false;
      return res.total;
    };
    try {
      const total = await next();
      more.addEventListener("click", () => void next().catch((e) => results.append(notice(explain(e), "error"))));
      results.replaceChildren(
        legend,
        total
          ? h("div", { class: "scroll" }, h("table", { class: "experts" }, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))), body))
          : notice("Nobody in the scope meets all of these requirements. Try lower levels or a wider scope."),
        more,
      );
    } catch (e) {
      results.replaceChildren(notice(explain(e), "error"));
    }
  });
  root.replaceChildren(form, results);
}
