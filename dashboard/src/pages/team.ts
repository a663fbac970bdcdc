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
      // A live update keeps the sideways position of the one it replaces.
      const scrolled = view.querySelector<HTMLElement>(".scroll")?.scrollLeft ?? 0;
      view.replaceChildren(heatmap(m, message.capability, first, scrolled));
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

const UNKNOWN: Cell = { confidence: 0, evidenceCount: 0 };

/** The cells of a DENSE-layout matrix (row-major; entries for known cells only), read
 * one at a time: only the cells drawn are decoded. */
function denseCells(c: TeamCapability): (row: number, column: number) => Cell {
  const d = c.dense;
  const width = c.skillIds.length;
  if (!d) return () => UNKNOWN;
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const [levels, confidences, counts, times] = [
    view(d.levelsF32le),
    view(d.confidencesF32le),
    view(d.evidenceCountsU32le),
    view(d.lastAssessedSecondsI64le),
  ];
  // The entry of each known cell: known cells are numbered in row-major order.
  const entry = new Int32Array(c.members.length * width).fill(-1);
  let next = 0;
  for (let k = 0; k < entry.length; k++) if (d.knownBitmap[k >> 3] & (1 << (k & 7))) entry[k] = next++;
  return (row, column) => {
    const e = entry[row * width + column];
    if (e < 0) return UNKNOWN;
    return {
      level: levels.getFloat32(4 * e, true),
      confidence: confidences.getFloat32(4 * e, true),
      evidenceCount: counts.getUint32(4 * e, true),
      lastAssessed: new Date(Number(times.getBigInt64(8 * e, true)) * 1000),
    };
  };
}

/** Skill columns drawn beyond each side of the view, so that a short scroll redraws nothing. */
const OVERSCAN = 12;

/** The heatmap of one page of members. Only the skill columns in view (and OVERSCAN
 * either side) are drawn: a department with 500 skills draws ~50 columns, not 500, and
 * scrolling sideways draws the columns it reaches. `scrollLeft` keeps the position
 * across live updates. */
function heatmap(m: Model, c: TeamCapability, first: number, scrollLeft = 0): HTMLElement {
  const cell = denseCells(c);
  const skills = c.skillIds.length;
  const table = h("table", { class: "heatmap" });
  const scroll = h("div", { class: "scroll" }, table);
  // Column geometry: a first guess from the stylesheet's 2.6rem, then measured.
  let pitch = 2.6 * parseFloat(getComputedStyle(document.documentElement).fontSize || "16") + 1;
  let lead = 0; // where the first skill column starts, in the table
  let drawn: [number, number] = [0, 0];
  const draw = () => {
    const width = scroll.clientWidth || window.innerWidth;
    const left = scroll.scrollLeft;
    const clamp = (x: number) => Math.min(skills, Math.max(0, x));
    const from = clamp(Math.floor((left - lead) / pitch));
    const to = clamp(Math.ceil((left + width - lead) / pitch));
    if (drawn[1] > drawn[0] && from >= drawn[0] && to <= drawn[1]) return;
    drawn = [clamp(from - OVERSCAN), clamp(to + OVERSCAN)];
    table.replaceChildren(...heatmapParts(m, c, cell, first, drawn[0], drawn[1], pitch));
    if (!table.isConnected) return;
    const heads = table.querySelectorAll("thead th.skill");
    const readiness = table.querySelector("thead th.readiness");
    if (heads.length === 0 || !readiness) return;
    const a = heads[0].getBoundingClientRect();
    const b = heads[heads.length - 1].getBoundingClientRect();
    if (b.right > a.left) pitch = (b.right - a.left) / heads.length;
    lead = readiness.getBoundingClientRect().right - table.getBoundingClientRect().left;
  };
  let frame = 0;
  scroll.addEventListener("scroll", () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(draw);
  });
  let placed = false;
  const resized = new ResizeObserver(() => {
    // Replaced by a live update or another page: let the observer go with the table.
    if (placed && !scroll.isConnected) return resized.disconnect();
    if (!placed && scroll.isConnected) {
      placed = true;
      draw(); // measures the columns, now that they are laid out
      scroll.scrollLeft = scrollLeft;
    }
    draw();
  });
  resized.observe(scroll);
  draw();
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
      skills > drawn[1] - drawn[0] ? ` ${skills} skills: scroll sideways for more.` : "",
    ),
    scroll,
  );
}

/** The table's head, body and foot for skill columns [from, to), with empty columns
 * standing in for the others so that the table keeps its full width. */
function heatmapParts(
  m: Model,
  c: TeamCapability,
  cell: (row: number, column: number) => Cell,
  first: number,
  from: number,
  to: number,
  pitch: number,
): HTMLElement[] {
  const columns = Array.from({ length: to - from }, (_, i) => from + i);
  const pads = (tag: "th" | "td", text: () => HTMLElement[]) => {
    const pad = (count: number) => {
      if (count === 0) return [];
      const el = h(tag, { class: "pad", "aria-hidden": "true" });
      el.style.minWidth = el.style.width = `${Math.round(count * pitch)}px`;
      return [el];
    };
    return [...pad(from), ...text(), ...pad(c.skillIds.length - to)];
  };
  const head = h(
    "tr",
    {},
    // Large teams come in pages of members: the first page is shown, and says so.
    h("th", { class: "corner" }, c.members.length < c.memberCount ? `${first + 1}–${first + c.members.length} of ${c.memberCount} people` : `${c.members.length} people`),
    h("th", { class: "readiness" }, "Readiness"),
    pads("th", () => columns.map((i) => h("th", { class: "skill", title: c.skillIds[i] }, h("span", {}, skillName(m, c.skillIds[i]))))),
  );
  const rows = c.members.map((member, row) =>
    h(
      "tr",
      { "data-person": member.personId },
      h("th", { class: "member", title: `${member.personId} · ${member.roleId}` }, member.displayName),
      h("td", { class: "readiness" }, pct(member.readiness)),
      pads("td", () => columns.map((i) => cellView(m, c.skillIds[i], cell(row, i)))),
    ),
  );
  const summary = (label: string, value: (i: number) => string, cls = "", explanation = "") =>
    h(
      "tr",
      { class: `summary ${cls}` },
      h("th", {}, explanation ? h("abbr", { title: explanation }, label) : label),
      h("td"),
      pads("td", () => columns.map((i) => h("td", {}, value(i)))),
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
  return [h("thead", {}, head), h("tbody", {}, rows), h("tfoot", {}, foot)];
}

/** One cell: level as colour and number, confidence as a bar, the evidence as a tooltip. */
function cellView(m: Model, skillId: string, cell: Cell): HTMLElement {
  const td = h("td", { class: "cell", "data-skill": skillId });
  if (cell.level === undefined) {
    td.classList.add("unknown");
    td.title = `${skillName(m, skillId)}: no evidence`;
    td.textContent = "·";
    return td;
  }
  td.style.background = levelColour(cell.level);
  td.style.color = inkOn(cell.level);
  const last = cell.lastAssessed ? cell.lastAssessed.toISOString().slice(0, 10) : "–";
  td.title = `${skillName(m, skillId)}: level ${cell.level.toFixed(2)}, confidence ${pct(
    cell.confidence,
  )}, ${cell.evidenceCount} assessment(s), last ${last}`;
  const bar = h("i", { class: "confidence" });
  bar.style.width = `${Math.round(cell.confidence * 100)}%`;
  td.append(h("span", { class: "level" }, fmtLevel(cell.level)), bar);
  return td;
}
