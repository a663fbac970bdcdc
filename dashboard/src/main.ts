// The capsight reference dashboard: a hash-routed single page over gRPC-Web.
import { can, explain, loadModel, type Me, roleName, setToken, token, whoAmI } from "./api";
import { h, notice } from "./ui";
import { teamPage } from "./pages/team";
import { risksPage } from "./pages/risks";
import { expertsPage } from "./pages/experts";
import { mentorsPage } from "./pages/mentors";
import { builderPage } from "./pages/builder";
import { archetypesPage } from "./pages/archetypes";
import { patternsPage } from "./pages/patterns";
import { growthPage } from "./pages/growth";
import { progressPage } from "./pages/progress";
import { planPage } from "./pages/plan";
import { auditPage, tokensPage } from "./pages/admin";
import { setScope } from "./pages/common";

/** A page renders into `root` and stops its streams when `signal` aborts. */
export type Page = (root: HTMLElement, params: string[], signal: AbortSignal) => Promise<void>;

interface PageEntry {
  path: string;
  title: string;
  page: Page;
  /** The rpcs ("Service/Method") the page needs: it is offered only to tokens that may call them all. */
  needs: string[];
}

export const PAGES: PageEntry[] = [
  { path: "team", title: "Team heatmap", page: teamPage, needs: ["CapabilityService/WatchTeamCapability"] },
  { path: "progress", title: "Progress", page: progressPage, needs: ["CapabilityService/GetCapabilityTrend"] },
  { path: "growth", title: "My growth", page: growthPage, needs: ["CapabilityService/GetPersonProfile", "CapabilityService/GetPersonGaps"] },
  { path: "risks", title: "Gaps & risks", page: risksPage, needs: ["CapabilityService/GetSkillRisks"] },
  { path: "experts", title: "Experts", page: expertsPage, needs: ["CapabilityService/FindExperts"] },
  { path: "mentors", title: "Mentors", page: mentorsPage, needs: ["TalentService/FindMentors", "DirectoryService/ListPeople"] },
  { path: "plan", title: "Mentoring plan", page: planPage, needs: ["TalentService/PlanMentoring"] },
  { path: "builder", title: "Team builder", page: builderPage, needs: ["TalentService/ComposeTeam"] },
  { path: "archetypes", title: "Archetypes", page: archetypesPage, needs: ["OrgInsightsService/GetSkillArchetypes"] },
  { path: "patterns", title: "Patterns", page: patternsPage, needs: ["OrgInsightsService/GetOrgSkillPatterns"] },
  { path: "tokens", title: "Tokens", page: tokensPage, needs: ["AccessService/ListTokens"] },
  { path: "audit", title: "Audit trail", page: auditPage, needs: ["AccessService/ListAuditEvents"] },
];

/** Pages about one team, which an organisation without teams cannot show. */
const TEAM_PAGES = new Set(["team", "progress", "risks", "plan", "growth", "mentors"]);

/** The pages `who` may use, in menu order. */
export function pagesFor(who: Me): PageEntry[] {
  return PAGES.filter((p) => p.needs.every((rpc) => can(who, rpc)));
}

function titleOf(entry: PageEntry, who: Me): string {
  // Only a person token's growth page is about the reader.
  return entry.path === "growth" && !who.personId ? "Growth" : entry.title;
}

let current: AbortController | null = null;

async function route(): Promise<void> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const main = document.getElementById("main")!;
  const nav = document.getElementById("nav")!;
  const [path = "", ...params] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const signOut = document.getElementById("signout")!;
  const identity = document.getElementById("identity")!;
  signOut.hidden = token() === null;
  if (token() === null) {
    nav.replaceChildren();
    identity.textContent = "";
    main.replaceChildren(signIn());
    return;
  }
  let who: Me;
  try {
    who = await whoAmI();
  } catch (e) {
    nav.replaceChildren();
    main.replaceChildren(notice(explain(e), "error"), signIn());
    return;
  }
  if (controller.signal.aborted) return;
  const offered = pagesFor(who);
  identity.textContent = describe(who);
  nav.replaceChildren(
    ...offered.map((p) => h("a", { href: `#/${p.path}`, class: p.path === path ? "active" : "" }, titleOf(p, who))),
  );
  if (offered.length === 0) {
    main.replaceChildren(notice("This token may only write data (an ingest token): the dashboard has nothing to show it.", "info"));
    return;
  }
  const entry = offered.find((p) => p.path === path) ?? offered[0];
  if (path && entry.path !== path) {
    main.replaceChildren(notice("Your token does not give access to this page.", "error"));
    return;
  }
  const m = await loadModel();
  setScope(m, who);
  if (m.teams.size === 0 && TEAM_PAGES.has(entry.path)) {
    main.replaceChildren(
      h("h1", {}, titleOf(entry, who)),
      notice("Your organisation has no teams yet. Load it first (capsight import, or the DirectoryService rpcs); this page then shows it.", "info"),
    );
    return;
  }
  const root = h("section", { class: "page", "data-page": entry.path });
  main.replaceChildren(h("h1", {}, titleOf(entry, who)), root);
  try {
    await entry.page(root, params, controller.signal);
  } catch (e) {
    if (!controller.signal.aborted) root.replaceChildren(notice(explain(e), "error"));
  }
}

/** "manager · 2 teams", "person · Uma Rao", "admin". */
function describe(who: Me): string {
  const role = roleName(who.role);
  if (who.displayName) return `${who.displayName} · ${role}`;
  if (who.teamIds.length) return `${role} · ${who.teamIds.length === 1 ? who.teamIds[0] : `${who.teamIds.length} teams`}`;
  return role;
}

function signIn(): HTMLElement {
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    placeholder: "capsight access token",
    required: true,
  });
  const message = h("div");
  const form = h(
    "form",
    { class: "signin" },
    h("h1", {}, "Sign in"),
    h(
      "p",
      {},
      "Paste a capsight token. The server's first admin token is in ",
      h("code", {}, "<data-dir>/admin.token"),
      "; create scoped ones with ",
      h("code", {}, "capsight token create"),
      ". It is kept in this tab's session storage only.",
    ),
    input,
    h("button", { type: "submit" }, "Sign in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setToken(input.value);
    try {
      await whoAmI();
      await loadModel();
      await route();
    } catch (e) {
      setToken(null);
      message.replaceChildren(notice(explain(e), "error"));
    }
  });
  return form;
}

document.getElementById("signout")!.addEventListener("click", () => {
  setToken(null);
  void route();
});
window.addEventListener("hashchange", () => void route());
void route();
