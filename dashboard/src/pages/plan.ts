// Mentoring plan for a scope: PlanMentoring's pairs (best expected gain first), its
// optimality, and agreeing a pair (StartMentoring) from the list.
import { directory, explain, loadModel, type Model, skillName, talent } from "../api";
import type { MentoringPair } from "@capsight/client/v1/talent_pb";
import { h, loading, notice, pct } from "../ui";
import { chosenTeam, teamPicker } from "./common";

const PAGE = 50;

export async function planPage(root: HTMLElement, params: string[], signal: AbortSignal): Promise<void> {
  const m = await loadModel();
  const teamId = chosenTeam(m, params);
  const view = h("div", {}, loading("Planning…"));
  root.replaceChildren(teamPicker(m, "plan", teamId), view);
  const names = await peopleNames(teamId);
  const first = await talent.planMentoring({ scopeTeamId: teamId, pageSize: PAGE }, { signal });
  const body = h("tbody");
  const more = h("button", { type: "button", class: "more" }, "Show more pairs");
  let pageToken = first.nextPageToken;
  // Largest expected gain first, across every page loaded.
  const loaded: MentoringPair[] = [];
  const add = (pairs: MentoringPair[]) => {
    loaded.push(...pairs);
    loaded.sort((a, b) => b.expectedGain - a.expectedGain || a.menteeId.localeCompare(b.menteeId));
    body.replaceChildren(...loaded.map((p) => row(m, names, p)));
  };
  add(first.pairs);
  more.hidden = !pageToken;
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await talent.planMentoring({ scopeTeamId: teamId, pageSize: PAGE, pageToken }, { signal });
      add(next.pairs);
      pageToken = next.nextPageToken;
      more.hidden = !pageToken;
    } catch (e) {
      view.append(notice(explain(e), "error"));
    } finally {
      more.disabled = false;
    }
  });
  const optimality = first.provenOptimal
    ? "proven optimal"
    : `within ${pct(first.totalGainBound > 0 ? 1 - first.totalGain / first.totalGainBound : 0)} of the best possible`;
  view.replaceChildren(
    h(
      "p",
      { class: "legend" },
      `${first.menteesMatched} of ${first.menteesWithOptions} people who could be helped get a mentor; total expected gain ${first.totalGain.toFixed(1)} levels (${optimality}; the simple greedy plan would gain ${first.greedyTotalGain.toFixed(1)}). Pairs with the largest expected gain first.`,
    ),
    first.freshness?.stale ? notice("This plan is from a slightly older version of the data; a fresh one is being computed.") : "",
    first.pairs.length
      ? h(
          "div",
          { class: "scroll" },
          h(
            "table",
            { class: "plan" },
            h("thead", {}, h("tr", {}, ["Mentee", "Mentor", "Skills", "Expected gain", ""].map((c) => h("th", {}, c)))),
            body,
          ),
        )
      : notice("No pair to propose: nobody in this scope is far enough ahead of a colleague in a required skill."),
    more,
  );
}

/** Names of the people of the scope (first 1,000), to show pairs by name. */
async function peopleNames(teamId: string): Promise<Map<string, string>> {
  const page = await directory.listPeople({ subtreeTeamId: teamId, pageSize: 1000 });
  return new Map(page.people.map((p) => [p.id, p.displayName]));
}

function row(m: Model, names: Map<string, string>, p: MentoringPair): HTMLElement {
  const agree = h("button", { type: "button", class: "agree" }, "Agree");
  const cell = h("td", {}, agree);
  agree.addEventListener("click", async () => {
    agree.disabled = true;
    try {
      const res = await talent.startMentoring({ menteeId: p.menteeId, mentorId: p.mentorId, skillIds: p.skillIds });
      cell.replaceChildren(notice(`Agreed; the mentor now has ${res.mentorLoad} mentee(s).`, "ok"));
    } catch (e) {
      agree.disabled = false;
      cell.append(notice(explain(e), "error"));
    }
  });
  return h(
    "tr",
    { "data-mentee": p.menteeId, "data-mentor": p.mentorId },
    h("td", { title: p.menteeId }, names.get(p.menteeId) ?? p.menteeId),
    h("td", { title: p.mentorId }, names.get(p.mentorId) ?? p.mentorId),
    h("td", {}, p.skillIds.map((id) => skillName(m, id)).join(", ")),
    h("td", { class: "num" }, p.expectedGain.toFixed(2)),
    cell,
  );
}
