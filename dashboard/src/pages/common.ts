// Pieces several pages share: the token's teams, the team picker and the default team.
import { type Me, type Model, teamName } from "../api";
import { field, h } from "../ui";

const TEAM_KEY = "capsight.team";

/** The teams the token may see person-level data of: a manager's or planner's subtrees,
 * every team otherwise. Set by the router before a page renders. */
let inScope: Set<string> | null = null;

export function setScope(m: Model, who: Me): void {
  if (who.teamIds.length === 0) {
    inScope = null;
    return;
  }
  const children = new Map<string, string[]>();
  for (const t of m.teams.values()) {
    if (!children.has(t.parentId)) children.set(t.parentId, []);
    children.get(t.parentId)!.push(t.id);
  }
  const found = new Set<string>();
  const stack = [...who.teamIds];
  while (stack.length) {
    const id = stack.pop()!;
    if (found.has(id)) continue;
    found.add(id);
    stack.push(...(children.get(id) ?? []));
  }
  inScope = found;
}

/** The first team a scoped token was given (the top of its scope); "" (everything)
 * for other tokens. Aggregates and pools of scoped tokens default to it. */
export function ownTop(m: Model): string {
  if (inScope === null) return "";
  const own = [...inScope].filter((id) => m.teams.has(id)).sort();
  return own.find((id) => !inScope!.has(m.teams.get(id)!.parentId)) ?? own[0] ?? "";
}

/** Names in the reader's order, numbers by value ("Team 9" before "Team 10"). One
 * collator for all: `localeCompare` with options builds one per call (at 8,000 teams,
 * sorting them took a third of a second). */
const collator = new Intl.Collator(undefined, { numeric: true });
const byName = (a: { id: string; name: string }, b: { id: string; name: string }) =>
  collator.compare(a.name, b.name) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The last scope's teams, kept while neither the model nor the scope changes. */
let sorted: { model: Model; scope: Set<string> | null; teams: { id: string; name: string }[] } | null = null;

/** The teams of the token's scope, sorted by name. */
export function scopeTeams(m: Model): { id: string; name: string }[] {
  if (sorted?.model !== m || sorted.scope !== inScope) {
    const teams = [...m.teams.values()]
      .filter((t) => inScope === null || inScope.has(t.id))
      .map((t) => ({ id: t.id, name: t.name }))
      .sort(byName);
    sorted = { model: m, scope: inScope, teams };
  }
  return sorted.teams;
}

/** The team in the route, else the last one viewed (if in scope), else the token's own
 * top team, else the first team without children. */
export function chosenTeam(m: Model, params: string[]): string {
  const fromRoute = params[0];
  if (fromRoute) {
    sessionStorage.setItem(TEAM_KEY, fromRoute);
    return fromRoute;
  }
  const last = sessionStorage.getItem(TEAM_KEY);
  if (last && m.teams.has(last) && (inScope === null || inScope.has(last))) return last;
  // A scoped token opens on the first of its own teams.
  if (inScope !== null) return ownTop(m);
  const parents = new Set([...m.teams.values()].map((t) => t.parentId));
  const leaves = [...m.teams.keys()].filter((id) => !parents.has(id)).sort();
  return leaves[0] ?? [...m.teams.keys()].sort()[0] ?? "";
}

/** The departments: teams directly under a root, and roots with no teams below (the
 * units an analyst follows). Sorted by name. */
export function departments(m: Model): { id: string; name: string }[] {
  const parents = new Set([...m.teams.values()].map((t) => t.parentId));
  return [...m.teams.values()]
    .filter((t) => (t.parentId ? !m.teams.get(t.parentId)?.parentId : !parents.has(t.id)))
    .map((t) => ({ id: t.id, name: t.name }))
    .sort(byName);
}

/** Each page's datalist of teams, kept while its teams are the same: a large
 * organisation's thousands of options are built once, not at every visit. */
const options = new Map<string, { teams: { id: string; name: string }[]; list: HTMLDataListElement }>();

function teamOptions(page: string, teams: { id: string; name: string }[]): HTMLDataListElement {
  const kept = options.get(page);
  if (kept?.teams === teams) return kept.list;
  const list = h("datalist", { id: `teams-${page}` }, teams.map((t) => h("option", { value: `${t.name} (${t.id})` })));
  options.set(page, { teams, list });
  return list;
}

/** A searchable team picker (by name or id, within the token's scope, or among
 * `teams`) that opens `#/<page>/<team>`. */
export function teamPicker(m: Model, page: string, current: string, teams = scopeTeams(m), unit = "Team"): HTMLElement {
  const list = teamOptions(page, teams);
  const input = h("input", {
    name: "team",
    list: `teams-${page}`,
    placeholder: "search teams by name",
    autocomplete: "off",
    value: current ? `${teamName(m, current)} (${current})` : "",
  });
  const open = () => {
    const text = input.value.trim();
    const byLabel = idInLabel(text);
    const match =
      teams.find((t) => t.id === byLabel || t.id === text) ??
      teams.find((t) => t.name.toLowerCase() === text.toLowerCase());
    if (match && match.id !== current) location.hash = `#/${page}/${encodeURIComponent(match.id)}`;
  };
  input.addEventListener("change", open);
  return h(
    "div",
    { class: "toolbar" },
    field(`${unit} (${teams.length} in your scope)`, input),
    list,
    h("strong", { class: "team-name" }, teamName(m, current)),
  );
}

/** The skill options of the model, by name. */
export function skillOptions(m: Model): [string, string][] {
  return [...m.skills.values()]
    .sort((a, b) => collator.compare(a.name, b.name))
    .map((s) => [s.id, s.name]);
}

/** Options of a scope `<select>`: the whole organisation when the token sees it, then
 * the teams of its scope; and the one selected at first. */
export function scopeOptions(m: Model): [[string, string][], string] {
  const teams = scopeTeams(m).map((t): [string, string] => [t.id, `${t.name} (${t.id})`]);
  if (inScope === null) return [[["", "Whole organisation"], ...teams], ""];
  return [teams, ownTop(m)];
}

/** The id in a picker label "Name (id)", if the text is one. */
export function idInLabel(text: string): string | undefined {
  return /\(([^()]+)\)$/.exec(text.trim())?.[1];
}
