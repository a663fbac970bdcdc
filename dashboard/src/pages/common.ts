// Pieces several pages share: the team picker and the default team.
import { type Model, teamName } from "../api";
import { field, h, select } from "../ui";

const TEAM_KEY = "capsight.team";

/** The team in the route, else the last one viewed, else the first team without children. */
export function chosenTeam(m: Model, params: string[]): string {
  const fromRoute = params[0];
  if (fromRoute) {
    sessionStorage.setItem(TEAM_KEY, fromRoute);
    return fromRoute;
  }
  const last = sessionStorage.getItem(TEAM_KEY);
  if (last && m.teams.has(last)) return last;
  const parents = new Set([...m.teams.values()].map((t) => t.parentId));
  const leaves = [...m.teams.keys()].filter((id) => !parents.has(id)).sort();
  return leaves[0] ?? [...m.teams.keys()].sort()[0] ?? "";
}

/** A team `<select>` that opens `#/<page>/<team>`. */
export function teamPicker(m: Model, page: string, current: string): HTMLElement {
  const options: [string, string][] = [...m.teams.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((t) => [t.id, `${t.name} (${t.id})`]);
  if (current && !m.teams.has(current)) options.unshift([current, current]);
  const picker = select("team", options, current);
  picker.addEventListener("change", () => {
    location.hash = `#/${page}/${encodeURIComponent(picker.value)}`;
  });
  return h("div", { class: "toolbar" }, field("Team", picker), h("strong", { class: "team-name" }, teamName(m, current)));
}

/** The skill options of the model, by name. */
export function skillOptions(m: Model): [string, string][] {
  return [...m.skills.values()]
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))
    .map((s) => [s.id, s.name]);
}
