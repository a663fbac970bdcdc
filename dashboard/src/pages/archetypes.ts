// Archetype map: every profile projected on the first two principal components (computed
// by the server), coloured by archetype; centroids labelled. Callers without
// person-level access see the centroids only.
import { Code, ConnectError } from "@connectrpc/connect";
import { insights, loadModel, teamName } from "../api";
import type { GetSkillArchetypesResponse } from "@capsight/client/v1/insights_pb";
import { Suppression } from "@capsight/client/v1/insights_pb";
import { h, loading, pct, svg, table } from "../ui";
import { ownTop } from "./common";

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
];

export function colourOf(index: number): string {
  return PALETTE[index % PALETTE.length];
}

export async function archetypesPage(root: HTMLElement): Promise<void> {
  const m = await loadModel();
  // Managers and planners: their own teams; everyone else: the whole organisation.
  const scope = ownTop(m);
  root.replaceChildren(loading("Computing archetypes… the first answer after a change can take a few seconds."));
  let res: GetSkillArchetypesResponse;
  try {
    // Members come in pages; the map shows at most the first 50,000 people.
    res = await insights.getSkillArchetypes({ scopeTeamId: scope, includeMembers: true, memberPageSize: 20000 });
    for (let token = res.nextMemberPageToken; token && res.members.length < 50000; ) {
      const next = await insights.getSkillArchetypes({ scopeTeamId: scope, includeMembers: true, memberPageSize: 20000, memberPageToken: token });
      res.members.push(...next.members);
      token = next.nextMemberPageToken;
    }
  } catch (e) {
    if (ConnectError.from(e).code !== Code.PermissionDenied) throw e;
    res = await insights.getSkillArchetypes({ scopeTeamId: scope, includeMembers: false });
  }
  const fresh = res.freshness;
  const [ex = 0, ey = 0] = res.mapExplained;
  root.replaceChildren(
    h(
      "p",
      { class: "legend" },
      `${res.archetypes.length} archetypes among ${res.people} people · silhouette ${res.silhouette.toFixed(2)} · ` +
        `${pct(res.knownShare)} of cells backed by evidence (unknown taken as ${res.unknownLevel}) · ` +
        `map axes explain ${pct(ex)} and ${pct(ey)} of the variance` +
        (fresh?.stale ? " · recomputing: data changed since this result" : ""),
    ),
    map(res),
    table(
      ["", "Archetype", "People", "Spread", "Defining skills (vs organisation mean)", "Departments"],
      res.archetypes.map((a) => {
        const swatch = h("i", { class: "swatch" });
        swatch.style.background = colourOf(a.index);
        const suppressed = a.suppression !== Suppression.NONE;
        return [
          swatch,
          suppressed ? h("span", { class: "suppressed" }, "suppressed (too few people)") : a.label,
          suppressed ? "–" : String(a.size),
          suppressed ? "–" : a.spread.toFixed(2),
          a.definingSkills.map((s) => `${s.skillName} ${s.level.toFixed(1)} (+${s.versusMean.toFixed(1)})`).join(", "),
          a.departments.map((d) => `${teamName(m, d.teamId)} ${d.count}`).join(", ") +
            (a.otherDepartments ? `, others ${a.otherDepartments}` : ""),
        ];
      }),
      { class: "archetypes" },
    ),
  );
}

function map(res: GetSkillArchetypesResponse): SVGElement {
  const width = 760;
  const height = 440;
  const pad = 24;
  const points = [
    ...res.members.map((p) => p.position),
    ...res.archetypes.map((a) => a.position),
  ].filter((p) => p !== undefined);
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const sy = (y: number) => height - pad - ((y - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const dots = res.members
    .filter((p) => p.position)
    .map((p) =>
      svg("circle", {
        cx: sx(p.position!.x).toFixed(1),
        cy: sy(p.position!.y).toFixed(1),
        r: 2.6,
        fill: colourOf(p.archetype),
        "fill-opacity": 0.5,
        class: "member",
      }),
    );
  const largest = Math.max(1, ...res.archetypes.map((a) => a.size));
  const radius = (size: number) => 6 + 14 * Math.sqrt(size / largest);
  // Labels: largest archetypes first, each at the first spot around its centroid where it
  // stays inside the map and clear of the labels already placed.
  const placed: Box[] = [];
  const labels = new Map<number, { x: number; y: number; anchor: string }>();
  for (const a of [...res.archetypes].filter((a) => a.position).sort((p, q) => q.size - p.size)) {
    const [cx, cy, r] = [sx(a.position!.x), sy(a.position!.y), radius(a.size)];
    const w = a.label.length * 6.6 + 6;
    const spots = [
      { x: cx, y: cy - r - 4 }, { x: cx, y: cy + r + 13 }, { x: cx + r + 4 + w / 2, y: cy + 4 },
      { x: cx - r - 4 - w / 2, y: cy + 4 }, { x: cx, y: cy - r - 18 }, { x: cx, y: cy + r + 27 },
      { x: cx + r + 4 + w / 2, y: cy - 12 }, { x: cx - r - 4 - w / 2, y: cy + 20 },
    ];
    const inside = (b: Box) => b.x0 >= 2 && b.x1 <= width - 2 && b.y0 >= 2 && b.y1 <= height - 2;
    const boxOf = (p: { x: number; y: number }): Box => {
      // Kept inside the frame horizontally.
      const x = Math.min(Math.max(p.x, w / 2 + 2), width - w / 2 - 2);
      return { x0: x - w / 2, x1: x + w / 2, y0: p.y - 11, y1: p.y + 3 };
    };
    const boxes = spots.map(boxOf);
    const free = boxes.find((b) => inside(b) && !placed.some((o) => overlaps(b, o))) ?? boxes.find(inside) ?? boxes[0];
    placed.push(free);
    labels.set(a.index, { x: (free.x0 + free.x1) / 2, y: free.y1 - 3, anchor: "middle" });
  }
  const centres = res.archetypes
    .filter((a) => a.position)
    .map((a) =>
      svg(
        "g",
        { class: "centroid" },
        svg("circle", {
          cx: sx(a.position!.x).toFixed(1),
          cy: sy(a.position!.y).toFixed(1),
          r: radius(a.size).toFixed(1),
          fill: colourOf(a.index),
          "fill-opacity": 0.25,
          stroke: colourOf(a.index),
          "stroke-width": 2,
        }),
      ),
    );
  const texts = res.archetypes
    .filter((a) => labels.has(a.index))
    .map((a) => {
      const l = labels.get(a.index)!;
      return svg("text", { x: l.x.toFixed(1), y: l.y.toFixed(1), "text-anchor": l.anchor, class: "label" }, a.label);
    });
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "map", role: "img", "aria-label": "archetype map" },
    svg("rect", { x: 0, y: 0, width, height, class: "frame" }),
    ...dots,
    ...centres,
    ...texts,
  );
}

/** A label's box on the map. */
interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

function overlaps(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}
