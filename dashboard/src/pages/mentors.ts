// Mentor suggestions for one person: proficient people where the person has gaps.
import { directory, explain, loadModel, skillName, talent, teamName } from "../api";
import { fmtLevel, field, h, notice, pct, table, loading } from "../ui";
import { chosenTeam, idInLabel } from "./common";

export async function mentorsPage(root: HTMLElement, params: string[]): Promise<void> {
  const m = await loadModel();
  const person = h("input", { name: "person", list: "people", placeholder: "search people by name", autocomplete: "off", required: true, value: params[0] ?? "" });
  // The option text is "Name (id)": the id is what the rpcs take.
  const personId = () => idInLabel(person.value) ?? person.value.trim();
  const people = h("datalist", { id: "people" });
  // People of the last team viewed, to pick from (needs person-level access to it).
  directory
    .listPeople({ subtreeTeamId: chosenTeam(m, []), pageSize: 200 })
    .then((page) => {
      people.replaceChildren(...page.people.map((p) => h("option", { value: `${p.displayName} (${p.id})` }, teamName(m, p.teamId))));
      const known = page.people.find((p) => p.id === person.value);
      if (known) person.value = `${known.displayName} (${known.id})`;
      if (!person.value && page.people[0]) person.value = `${page.people[0].displayName} (${page.people[0].id})`;
    })
    .catch(() => undefined);
  const target = h("input", { type: "checkbox", name: "target" });
  const sameTeam = h("input", { type: "checkbox", name: "sameTeam" });
  const results = h("div", { class: "results" });
  const form = h(
    "form",
    { class: "query" },
    h("div", { class: "row" }, field("Mentee", person), people, field("Towards target role", target), field("Mentors from the same team", sameTeam)),
    h("button", { type: "submit" }, "Find mentors"),
  );
  const run = async () => {
    results.replaceChildren(loading("Matching…"));
    try {
      const res = await talent.findMentors({
        personId: personId(),
        useTargetRole: target.checked,
        allowSameTeam: sameTeam.checked,
        limit: 8,
      });
      if (!res.mentors.length) {
        results.replaceChildren(notice("No mentor found: nobody is far enough ahead in this person's gap skills, or all are at capacity."));
        return;
      }
      results.replaceChildren(
        h("p", { class: "legend" }, `Gap skills considered: ${res.skillIds.map((id) => skillName(m, id)).join(", ")}`),
        // Best expected gain first (the figure each card shows).
        ...[...res.mentors].sort((a, b) => b.expectedGain - a.expectedGain).map((mentor, rank) =>
          h(
            "article",
            { class: "card mentor" },
            h("h3", {}, `${rank + 1}. ${mentor.displayName}`, h("small", {}, ` · ${teamName(m, mentor.teamId)}`)),
            h("p", { class: "rationale" }, mentor.rationale),
            h(
              "p",
              { class: "legend" },
              `Expected gain ${mentor.expectedGain.toFixed(2)} levels · profile similarity ${pct(mentor.similarity)} · ` +
                `${mentor.currentMentees} current mentee(s)`,
            ),
            agree(mentor.personId, mentor.skills.map((s) => s.skillId)),
            table(
              ["Skill", "Mentee", "Mentor", "Target", "Expected gain", "Confidence"],
              mentor.skills.map((s) => [
                skillName(m, s.skillId),
                fmtLevel(s.menteeLevel),
                fmtLevel(s.mentorLevel),
                fmtLevel(s.targetLevel),
                s.expectedGain.toFixed(2),
                pct(s.confidence),
              ]),
            ),
          ),
        ),
      );
    } catch (e) {
      results.replaceChildren(notice(explain(e), "error"));
    }
  };
  // Records the agreed pair; the mentor's load then counts against their capacity.
  const agree = (mentorId: string, skillIds: string[]): HTMLElement => {
    const status = h("span", { class: "legend" });
    const button = h("button", { type: "button", class: "agree" }, "Agree mentoring");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const res = await talent.startMentoring({ menteeId: personId(), mentorId, skillIds });
        status.replaceChildren(notice(`Recorded: the mentor now has ${res.mentorLoad} mentee(s).`, "ok"));
      } catch (e) {
        button.disabled = false;
        status.replaceChildren(notice(explain(e), "error"));
      }
    });
    return h("div", { class: "row" }, button, status);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/mentors/${encodeURIComponent(personId())}`;
  });
  root.replaceChildren(form, results);
  if (params[0]) await run();
}
