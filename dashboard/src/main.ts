// The capsight reference dashboard: a hash-routed single page over gRPC-Web.
import { explain, loadModel, setToken, token } from "./api";
import { h, notice } from "./ui";
import { teamPage } from "./pages/team";
import { risksPage } from "./pages/risks";
import { expertsPage } from "./pages/experts";
import { mentorsPage } from "./pages/mentors";
import { builderPage } from "./pages/builder";
import { archetypesPage } from "./pages/archetypes";
import { patternsPage } from "./pages/patterns";

/** A page renders into `root` and stops its streams when `signal` aborts. */
export type Page = (root: HTMLElement, params: string[], signal: AbortSignal) => Promise<void>;

const PAGES: { path: string; title: string; page: Page }[] = [
  { path: "team", title: "Team heatmap", page: teamPage },
  { path: "risks", title: "Gaps & risks", page: risksPage },
  { path: "experts", title: "Experts", page: expertsPage },
  { path: "mentors", title: "Mentors", page: mentorsPage },
  { path: "builder", title: "Team builder", page: builderPage },
  { path: "archetypes", title: "Archetypes", page: archetypesPage },
  { path: "patterns", title: "Patterns", page: patternsPage },
];

let current: AbortController | null = null;

async function route(): Promise<void> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const main = document.getElementById("main")!;
  const nav = document.getElementById("nav")!;
  const [path = "team", ...params] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  nav.replaceChildren(
    ...PAGES.map((p) => h("a", { href: `#/${p.path}`, class: p.path === path ? "active" : "" }, p.title)),
  );
  document.getElementById("signout")!.hidden = token() === null;
  if (token() === null) {
    main.replaceChildren(signIn());
    return;
  }
  const entry = PAGES.find((p) => p.path === path) ?? PAGES[0];
  const root = h("section", { class: "page", "data-page": entry.path });
  main.replaceChildren(h("h1", {}, entry.title), root);
  try {
    await entry.page(root, params, controller.signal);
  } catch (e) {
    if (!controller.signal.aborted) root.replaceChildren(notice(explain(e), "error"));
  }
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
