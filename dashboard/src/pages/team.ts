// Team heatmap: members × skills coloured by level, confidence as a bar in each cell,
// the team's requirement per skill, kept live by WatchTeamCapability in the dense layout
// (the matrix as little-endian arrays: a fraction of the cost of one message per cell).
import { capability, explain, loadModel, type Model, skillName } from "../api";
import { MatrixLayout, type TeamCapability } from "@capsight/client/v1/capability_pb";
import { fmtLevel, h, inkOn, levelColour, notice, pct, loading } from "../ui";
import { chosenTeam, teamPicker } from "./common";

/** Members per screen: a large department renders its first screen at once and pages on. */
const PAGE = 100;

export async function teamPage(root: HTMLElement, params: string[], signal: AbortSignal): Promise<void> {
  const m = await loadModel();
  const teamId = chosenTeam(m, params);
  const live = h("span", { class: "live", "data-state": "connecting" }, "connecting…");
  const view = h("div", { class: "heatmap-view" }, loading("Loading…"));
  const pager = h("div", { class: "pager" });
  root.replaceChildren(teamPicker(m, "team", teamId), live, view, pager);
  // Page tokens of the pages before the one shown ("" is the first page).
  const previous: string[] = [];
  let current = "";
  let watch: AbortController | null = null;
  const show = (pageToken: string) => {
    watch?.abort();
    watch = new AbortController();
    signal.addEventListener("abort", () => watch?.abort(), { once: true });
    current = pageToken;
    void follow(m, teamId, pageToken, watch.signal, live, view, (c, first) => {
      const next = h("button", { type: "button", class: "more", disabled: !c.nextMemberPageToken }, `Next ${PAGE} people`);
      const back = h("button", { type: "button", class: "more", disabled: previous.length === 0 }, "Previous");
      next.addEventListener("click", () => {
        previous.push(current);
        show(c.nextMemberPageToken);
      });
      back.addEventListener("click", () => show(previous.pop() ?? ""));
      const last = first + c.members.length;
      pager.replaceChildren(
        back,
        next,
        h("span", { class: "legend" }, ` people ${c.members.length ? first + 1 : 0}–${last} of ${c.memberCount}`),
      );
    }, previous.length * PAGE);
  };
  show("");
}

/** Shows one page of the team's members, kept live by WatchTeamCapability. */
async function follow(
  m: Model,
  teamId: string,
  memberPageToken: string,
  signal: AbortSignal,
  live: HTMLElement,
  view: HTMLElement,
  paged: (c: TeamCapability, first: number) => void,
  first: number,
): Promise<void> {
  let updates = 0;
  try {
    const stream = capability.watchTeamCapability(
      { teamId, includeSubteams: true, layout: MatrixLayout.DENSE, memberPageSize: PAGE, memberPageToken },
      { signal },
    );
    for await (const message of stream) {
      if (!message.capability) continue;
      updates += 1;
      view.replaceChildren(heatmap(m, message.capability, first));
      paged(message.capability, first);
      const at = new Date().toLocaleTimeString();
      live.textContent =
        updates === 1
          ? `live · data version ${message.capability.dataVersion}`
          : `live · updated at ${at} (update ${updates - 1}) · data version ${message.capability.dataVersion}`;
      live.title = "Live: new evidence appears without reloading. The data version counts the changes the server has applied.";
      live.dataset.state = "live";
      live.dataset.updates = String(updates - 1);
    }
  } catch (e) {
    if (signal.aborted) return;
    live.textContent = "not live";
    live.dataset.state = "error";
    view.replaceChildren(notice(explain(e), "error"));
  }
}

/** One cell of the matrix. */
interface Cell {
  /** Unknown (no evidence) is undefined, never 0. */
  level?: number;
  confidence: number;
  evidenceCount: number;
  lastAssessed?: Date;
}

/** The rows of a DENSE-layout matrix: cells row-major, entries for known cells only. */
function denseRows(c: TeamCapability): Cell[][] {
  const d = c.dense;
  const width = c.skillIds.length;
  if (!d) return c.members.map(() => []);
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const [levels, confidences, counts, times] = [
    view(d.levelsF32le),
    view(d.confidencesF32le),
    view(d.evidenceCountsU32le),
    view(d.lastAssessedSecondsI64le),
  ];
  let next = 0; // entry of the next known cell
  return c.members.map((_, i) =>
    Array.from({ length: width }, (_, j) => {
      const k = i * width + j;
      if ((d.knownBitmap[k >> 3] & (1 << (k & 7))) === 0) return { confidence: 0, evidenceCount: 0 };
      const e = next++;
      return {
        level: levels.getFloat32(4 * e, true),
        confidence: confidences.getFloat32(4 * e, true),
        evidenceCount: counts.getUint32(4 * e, true),
        lastAssessed: new Date(Number(times.getBigInt64(8 * e, true)) * 1000),
      };
    }),
  );
}

function heatmap(m: Model, c: TeamCapability, first: number): HTMLElement {
  const matrix = denseRows(c);
  const head = h(
    "tr",
    {},
    // Large teams come in pages of members: the first page is shown, and says so.
    h("th", { class: "corner" }, c.members.length < c.memberCount ? `${first + 1}–${first + c.members.length} of ${c.memberCount} people` : `${c.members.length} people`),
    h("th", {}, "Readiness"),
    c.skillIds.map((id) => h("th", { class: "skill", title: id }, h("span", {}, skillName(m, id)))),
  );
  const rows = c.members.map((member, row) =>
    h(
      "tr",
      { "data-person": member.personId },
      h("th", { class: "member", title: `${member.personId} · ${member.roleId}` }, member.displayName),
      h("td", { class: "readiness" }, pct(member.readiness)),
      matrix[row].map((cell, i) => {
        const td = h("td", { class: "cell", "data-skill": c.skillIds[i] });
        if (cell.level === undefined) {
          td.classList.add("unknown");
          td.title = `${skillName(m, c.skillIds[i])}: no evidence`;
          td.textContent = "·";
          return td;
        }
        td.style.background = levelColour(cell.level);
        td.style.color = inkOn(cell.level);
        const last = cell.lastAssessed ? cell.lastAssessed.toISOString().slice(0, 10) : "–";
        td.title = `${skillName(m, c.skillIds[i])}: level ${cell.level.toFixed(2)}, confidence ${pct(
          cell.confidence,
        )}, ${cell.evidenceCount} assessment(s), last ${last}`;
        const bar = h("i", { class: "confidence" });
        bar.style.width = `${Math.round(cell.confidence * 100)}%`;
        td.append(h("span", { class: "level" }, fmtLevel(cell.level)), bar);
        return td;
      }),
    ),
  );
  const summary = (label: string, value: (i: number) => string, cls = "", explanation = "") =>
    h(
      "tr",
      { class: `summary ${cls}` },
      h("th", {}, explanation ? h("abbr", { title: explanation }, label) : label),
      h("td"),
      c.skills.map((_, i) => h("td", {}, value(i))),
    );
  const foot = [
    summary("Required", (i) => fmtLevel(c.skills[i].requiredLevel), "", "The highest level the members' roles require in this skill"),
    summary("Mean", (i) => fmtLevel(c.skills[i].meanLevel), "", "Mean level of the members with evidence in this skill"),
    summary("Gap", (i) => {
      const gap = c.skills[i].gap;
      return gap === undefined || gap <= 0 ? "" : gap.toFixed(1);
    }, "gap", "Required level minus the team's best: how far even the strongest member is from what the role needs (empty when someone meets it)"),
    summary("Proficient (≥3)", (i) => String(c.skills[i].proficientCount), "", "Members at level 3 or above"),
  ];
  return h(
    "div",
    {},
    h(
      "p",
      { class: "legend" },
      `Team readiness against its roles: ${pct(c.readiness)}. Cells: effective level 0–5 (colour`,
      h("span", { class: "scale", "aria-hidden": "true" }, [0, 1, 2, 3, 4, 5].map((l) => {
        const swatch = h("i", {}, String(l));
        swatch.style.background = levelColour(l);
        swatch.style.color = inkOn(l);
        return swatch;
      })),
      `); the yellow bar under each level is the confidence of the evidence; · means no evidence.`,
    ),
    h("div", { class: "scroll" }, h("table", { class: "heatmap" }, h("thead", {}, head), h("tbody", {}, rows), h("tfoot", {}, foot))),
  );
}
