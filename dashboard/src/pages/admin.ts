// Admin pages: tokens (list, create, revoke) and the audit trail (filtered, paged).
import { access, explain, roleName } from "../api";
import { AccessRole, type AuditEvent, type TokenInfo } from "@capsight/client/v1/access_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { field, h, loading, notice, select } from "../ui";

const ROLES: AccessRole[] = [AccessRole.ADMIN, AccessRole.INGEST, AccessRole.MANAGER, AccessRole.PLANNER, AccessRole.ANALYST, AccessRole.PERSON];

function when(t: TokenInfo["createdAt"]): string {
  return t ? timestampDate(t).toISOString().replace("T", " ").slice(0, 16) : "–";
}

export async function tokensPage(root: HTMLElement): Promise<void> {
  const list = h("div", {}, loading("Loading tokens…"));
  const role = select("role", ROLES.map((r): [string, string] => [String(r), roleName(r)]), String(AccessRole.MANAGER));
  const teams = h("input", { name: "teams", placeholder: "team ids, comma-separated (manager, planner)" });
  const person = h("input", { name: "person", placeholder: "person id (person role)" });
  const description = h("input", { name: "description", placeholder: "who or what holds it", required: true });
  const days = h("input", { type: "number", name: "days", min: 0, max: 36500, value: 90 });
  const created = h("div");
  const form = h(
    "form",
    { class: "query" },
    h("div", { class: "row" }, field("Role", role), field("Teams", teams), field("Person", person)),
    h("div", { class: "row" }, field("Description", description), field("Expires after (days, 0: never)", days)),
    h("button", { type: "submit" }, "Create token"),
    created,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const res = await access.createToken({
        role: Number(role.value),
        teamIds: teams.value.split(",").map((t) => t.trim()).filter(Boolean),
        personId: person.value.trim(),
        description: description.value.trim(),
        ttlSeconds: BigInt(Math.round(Number(days.value) * 86_400)),
      });
      created.replaceChildren(
        notice("Token created. Copy it now: it is shown only once.", "ok"),
        h("code", { class: "secret" }, res.token),
      );
      await refresh();
    } catch (e) {
      created.replaceChildren(notice(explain(e), "error"));
    }
  });
  const refresh = async () => {
    const tokens: TokenInfo[] = [];
    let pageToken = "";
    do {
      const page = await access.listTokens({ pageSize: 1000, pageToken });
      tokens.push(...page.tokens);
      pageToken = page.nextPageToken;
    } while (pageToken);
    list.replaceChildren(
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "tokens" },
          h("thead", {}, h("tr", {}, ["Token", "Role", "Scope", "Description", "Created", "Expires", "State", ""].map((c) => h("th", {}, c)))),
          h("tbody", {}, tokens.map((t) => tokenRow(t, refresh))),
        ),
      ),
    );
  };
  root.replaceChildren(form, list);
  await refresh();
}

function tokenRow(t: TokenInfo, refresh: () => Promise<void>): HTMLElement {
  const revoke = h("button", { type: "button", class: "revoke" }, "Revoke");
  const action = h("td", {}, t.revokedAt ? "" : revoke);
  revoke.addEventListener("click", async () => {
    if (!confirm(`Revoke token ${t.tokenId} (${t.description})? It stops working at once.`)) return;
    try {
      await access.revokeToken({ tokenId: t.tokenId });
      await refresh();
    } catch (e) {
      action.append(notice(explain(e), "error"));
    }
  });
  const state = t.revokedAt ? "revoked" : t.expiresAt && timestampDate(t.expiresAt) < new Date() ? "expired" : "active";
  return h(
    "tr",
    { "data-token": t.tokenId, "data-state": state },
    h("td", {}, h("code", {}, t.tokenId)),
    h("td", {}, roleName(t.role)),
    h("td", {}, t.personId || t.teamIds.join(", ") || "everything"),
    h("td", {}, t.description),
    h("td", {}, when(t.createdAt)),
    h("td", {}, t.expiresAt ? when(t.expiresAt) : "never"),
    h("td", {}, state),
    action,
  );
}

export async function auditPage(root: HTMLElement, params: string[]): Promise<void> {
  const token = h("input", { name: "token", placeholder: "token id", value: params[0] ?? "" });
  const subject = h("input", { name: "subject", placeholder: "person or team id" });
  const rpc = h("input", { name: "rpc", placeholder: "e.g. capsight.v1.CapabilityService/GetPersonProfile" });
  const results = h("div", { class: "results" });
  const form = h(
    "form",
    { class: "query" },
    h("div", { class: "row" }, field("Token", token), field("Subject", subject), field("Rpc", rpc)),
    h("button", { type: "submit" }, "Show events"),
  );
  const run = async () => {
    results.replaceChildren(loading("Loading events…"));
    const body = h("tbody");
    const more = h("button", { type: "button", class: "more" }, "Older events");
    let pageToken = "";
    const next = async () => {
      const page = await access.listAuditEvents({
        tokenId: token.value.trim(),
        subjectId: subject.value.trim(),
        rpc: rpc.value.trim(),
        pageSize: 100,
        pageToken,
      });
      body.append(...page.events.map(eventRow));
      pageToken = page.nextPageToken;
      more.hidden = !pageToken;
      return page.events.length;
    };
    try {
      const n = await next();
      more.addEventListener("click", () => void next().catch((e) => results.append(notice(explain(e), "error"))));
      results.replaceChildren(
        n
          ? h(
              "div",
              { class: "scroll" },
              h(
                "table",
                { class: "audit" },
                h("thead", {}, h("tr", {}, ["When", "Token", "Role", "Call", "Subjects", "Outcome", "Items"].map((c) => h("th", {}, c)))),
                body,
              ),
            )
          : notice("No event matches."),
        more,
      );
    } catch (e) {
      results.replaceChildren(notice(explain(e), "error"));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run();
  });
  root.replaceChildren(form, results);
  await run();
}

function eventRow(e: AuditEvent): HTMLElement {
  return h(
    "tr",
    {},
    h("td", {}, e.at ? timestampDate(e.at).toISOString().replace("T", " ").slice(0, 19) : "–"),
    h("td", {}, h("code", {}, e.tokenId)),
    h("td", {}, roleName(e.role)),
    h("td", {}, e.rpc.replace(/^capsight\.v1\./, "")),
    h("td", {}, e.subjectIds.join(", ")),
    h("td", {}, e.outcome),
    h("td", { class: "num" }, e.count ? String(e.count) : ""),
  );
}
