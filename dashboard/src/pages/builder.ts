// Team builder: ComposeTeam with requirements, size, pool and protection, showing
// coverage, each member's contribution, source-team impact and the optimality statement.
import { explain, loadModel, type Model, skillName, talent, teamName } from "../api";
import type { ProposedTeam } from "@capsight/client/v1/talent_pb";
import { field, h, notice, pct, select, table, loading } from "../ui";
import { scopeOptions, skillOptions } from "./common";

const ROWS = 5;

export async function builderPage(root: HTMLElement): Promise<void> {
  const m = await loadModel();
  const skills = skillOptions(m);
  const rows = Array.from({ length: ROWS }, (_, i) => ({
    skill: select(`req-skill${i}`, [["", "—"], ...skills], i < 4 ? skills[i * 3]?.[0] ?? "" : ""),
    level: h("input", { type: "number", name: `req-level${i}`, min: 0, max: 5, step: 0.5, value: 3 }),
    people: h("input", { type: "number", name: `req-people${i}`, min: 1, max: 20, value: 1 }),
    weight: h("input", { type: "number", name: `req-weight${i}`, min: 0, step: 0.5, value: 1 }),
  }));
  const minSize = h("input", { type: "number", name: "min", min: 1, max: 50, value: 4 });
  const maxSize = h("input", { type: "number", name: "max", min: 1, max: 50, value: 6 });
  const pool = select("pool", ...scopeOptions(m));
  const availability = h("input", { type: "number", name: "availability", min: 0, max: 1, step: 0.1, value: 0.2 });
  const perTeam = h("input", { type: "number", name: "perTeam", min: 0, max: 50, value: 2 });
  const protect = h("input", { type: "checkbox", name: "protect", checked: true });
  const diversity = h("input", { type: "checkbox", name: "diversity" });
  const alternatives = h("input", { type: "number", name: "alternatives", min: 0, max: 5, value: 2 });
  const results = h("div", { class: "results" });
  const form = h(
    "form",
    { class: "query" },
    rows.map((r, i) =>
      h("div", { class: "row" }, field(`Requirement ${i + 1}`, r.skill), field("level ≥", r.level), field("people", r.people), field("weight", r.weight)),
    ),
    h("div", { class: "row" }, field("Size from", minSize), field("to", maxSize), field("Pool", pool), field("Min availability", availability)),
    h(
      "div",
      { class: "row" },
      field("At most per source team (0: no limit)", perTeam),
      field("Protect source teams", protect),
      field("Prefer archetype diversity", diversity),
      field("Alternatives", alternatives),
    ),
    h("button", { type: "submit" }, "Compose team"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    results.replaceChildren(loading("Composing…"));
    try {
      const res = await talent.composeTeam({
        requirements: rows
          .filter((r) => r.skill.value)
          .map((r) => ({
            skillId: r.skill.value,
            minLevel: Number(r.level.value),
            minPeople: Number(r.people.value),
            weight: Number(r.weight.value),
          })),
        minSize: Number(minSize.value),
        maxSize: Number(maxSize.value),
        poolTeamIds: pool.value ? [pool.value] : [],
        minAvailability: Number(availability.value),
        maxPerSourceTeam: Number(perTeam.value) > 0 ? Number(perTeam.value) : undefined,
        protectSourceTeams: protect.checked,
        preferArchetypeDiversity: diversity.checked,
        alternatives: Number(alternatives.value),
      });
      const conflicts = res.protectionConflicts.length
        ? h(
            "details",
            {},
            h("summary", {}, `${res.protectionConflicts.length} people left out to protect their teams`),
            h(
              "ul",
              {},
              res.protectionConflicts.map((c) =>
                h("li", {}, `${c.personId} (${teamName(m, c.teamId)}): only proficient person in ${c.skillIds.map((s) => skillName(m, s)).join(", ")}`),
              ),
            ),
          )
        : "";
      results.replaceChildren(
        h("p", { class: "optimality" }, res.optimalityStatement, ` · pool of ${res.poolSize} candidates`),
        conflicts,
        res.best ? proposal(m, "Proposed team", res.best) : notice("No team can be formed from this pool.", "error"),
        ...res.alternatives.map((alt, i) => proposal(m, `Alternative ${i + 1}`, alt)),
      );
    } catch (e) {
      results.replaceChildren(notice(explain(e), "error"));
    }
  });
  root.replaceChildren(form, results);
}

function proposal(m: Model, title: string, team: ProposedTeam): HTMLElement {
  const coverage = h("div", { class: "coverage" }, h("i"));
  (coverage.firstChild as HTMLElement).style.width = `${Math.round(team.coverage * 100)}%`;
  const unmet = team.requirements.filter((r) => r.met < r.wanted);
  return h(
    "article",
    { class: "card proposal" },
    h("h3", {}, `${title} · ${team.members.length} people · coverage ${pct(team.coverage)}`),
    coverage,
    unmet.length
      ? notice(
          `Unmet: ${unmet.map((r) => `${skillName(m, r.skillId)} ≥ ${r.minLevel} (${r.met} of ${r.wanted})`).join("; ")}`,
          "error",
        )
      : notice("Every requirement is met.", "ok"),
    table(
      ["Member", "From team", "Availability", "Satisfies", "Why chosen", "Archetype"],
      team.members.map((p) => [
        h("span", { title: p.personId }, p.displayName),
        teamName(m, p.teamId),
        pct(p.availability),
        p.satisfiesSkillIds.map((s) => skillName(m, s)).join(", ") || "–",
        p.reason,
        p.archetype || "–",
      ]),
      { class: "members" },
    ),
    team.impacts.length
      ? h(
          "details",
          {},
          h("summary", {}, "Impact on source teams"),
          h(
            "ul",
            {},
            team.impacts.map((i) =>
              h(
                "li",
                {},
                `${teamName(m, i.teamId)} gives ${i.personIds.length} people`,
                i.busFactor.length
                  ? `; bus factor ${i.busFactor.map((b) => `${skillName(m, b.skillId)} ${b.before}→${b.after}`).join(", ")}`
                  : "",
                i.skillsLost.length ? `; loses ${i.skillsLost.map((s) => skillName(m, s)).join(", ")}` : "",
              ),
            ),
          ),
        )
      : null,
  );
}
