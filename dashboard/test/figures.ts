// The browser test's figure checks: for each dashboard page, every figure it shows read
// from the DOM and compared with the answer of the rpc behind it, asked again with the
// same token. Each check returns what it compared, so a failure says where.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Page } from "playwright-core";
import { AccessRole, AccessService } from "@capsight/client/v1/access_pb";
import { CapabilityService, RiskKind, type SkillProficiency } from "@capsight/client/v1/capability_pb";
import { DirectoryService } from "@capsight/client/v1/directory_pb";
import { GroupBy, OrgInsightsService, Suppression } from "@capsight/client/v1/insights_pb";
import { IngestService } from "@capsight/client/v1/ingest_pb";
import { TalentService, type ProposedTeam } from "@capsight/client/v1/talent_pb";
import { fmtLevel, pct, signed } from "../src/ui";

/** Clients of every service for one token. */
export function clients(base: string, token: string) {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({ baseUrl: base, interceptors: [bearer] });
  return {
    access: createClient(AccessService, transport),
    capability: createClient(CapabilityService, transport),
    ingest: createClient(IngestService, transport),
    directory: createClient(DirectoryService, transport),
    insights: createClient(OrgInsightsService, transport),
    talent: createClient(TalentService, transport),
  };
}

export type Clients = ReturnType<typeof clients>;

/** Skill and team names (what the pages show in place of ids). */
export interface Names {
  skills: Map<string, string>;
  teams: Map<string, string>;
}

export async function names(c: Clients): Promise<Names> {
  const skills = new Map<string, string>();
  const teams = new Map<string, string>();
  let pageToken = "";
  do {
    const page = await c.directory.listSkills({ pageSize: 1000, pageToken });
    for (const s of page.skills) skills.set(s.id, s.name);
    pageToken = page.nextPageToken;
  } while (pageToken);
  do {
    const page = await c.directory.listTeams({ pageSize: 1000, pageToken });
    for (const t of page.teams) teams.set(t.id, t.name);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return { skills, teams };
}

/** What one page showed against what its rpcs answer: rows of cell texts. */
export interface Comparison {
  what: string;
  shown: string[][];
  expected: string[][];
}

/** The text of every cell of every body row of the first table matching `selector`. */
export async function rows(page: Page, selector: string, section = "tbody"): Promise<string[][]> {
  // Empty columns standing in for a heatmap's undrawn skills (`.pad`) are not figures.
  return page.$$eval(`${selector} ${section} tr`, (trs) =>
    trs.map((tr) => [...tr.children].filter((c) => !c.classList.contains("pad")).map((c) => c.textContent ?? "")),
  );
}

const skill = (n: Names, id: string) => n.skills.get(id) ?? id;
const team = (n: Names, id: string) => n.teams.get(id) ?? id;
const day = (t: Parameters<typeof timestampDate>[0] | undefined) => (t ? timestampDate(t).toISOString().slice(0, 10) : "–");
const idOf = (label: string) => /\(([^()]+)\)$/.exec(label.trim())?.[1] ?? label.trim();

/** The figures of the page at `path` (already rendered, forms submitted) and the same
 * figures from the rpcs, asked with `c` (the token the page used). */
export async function compare(page: Page, path: string, c: Clients, n: Names, scope: string): Promise<Comparison[]> {
  switch (path) {
    case "team":
      return team_(page, c);
    case "progress":
      return progress(page, c, n);
    case "growth":
      return growth(page, c, n);
    case "risks":
      return risks(page, c, n);
    case "experts":
      return experts(page, c, n);
    case "mentors":
      return mentors(page, c, n);
    case "plan":
      return plan(page, c, n);
    case "builder":
      return builder(page, c, n);
    case "archetypes":
      return archetypes(page, c, n, scope);
    case "patterns":
      return patterns(page, c, scope);
    case "tokens":
      return tokens(page, c);
    case "audit":
      return audit(page, c);
    default:
      throw new Error(`no figure check for page ${path}`);
  }
}

async function team_(page: Page, c: Clients): Promise<Comparison[]> {
  const teamId = idOf(await page.inputValue("input[name=team]"));
  const t = (await c.capability.getTeamCapability({ teamId, includeSubteams: true, memberPageSize: 100 })).capability!;
  // The heatmap draws the skill columns in view: the figures of those columns, which
  // must be a run of the rpc's skills in its order.
  const drawn = await page.$$eval("table.heatmap thead th.skill", (ths) => ths.map((th) => th.getAttribute("title") ?? ""));
  const start = Math.max(0, t.skillIds.indexOf(drawn[0]));
  const columns = t.skillIds.slice(start, start + drawn.length).map((_, i) => start + i);
  const member = t.members.map((m) => [
    m.displayName,
    pct(m.readiness),
    ...columns.map((i) => m.cells[i]).map((cell) => (cell.level === undefined ? "·" : cell.level.toFixed(1))),
  ]);
  const foot = [
    ["Required", "", ...columns.map((i) => fmtLevel(t.skills[i].requiredLevel))],
    ["Mean", "", ...columns.map((i) => fmtLevel(t.skills[i].meanLevel))],
    ["Gap", "", ...columns.map((i) => t.skills[i].gap).map((gap) => (gap === undefined || gap <= 0 ? "" : gap.toFixed(1)))],
    ["Proficient (≥3)", "", ...columns.map((i) => String(t.skills[i].proficientCount))],
  ];
  const legend = (await page.textContent(".heatmap-view p.legend")) ?? "";
  return [
    { what: `heatmap of ${teamId}: the skill columns drawn, in the rpc's order`, shown: [drawn], expected: [columns.map((i) => t.skillIds[i])] },
    { what: `heatmap of ${teamId}: every member's readiness and level`, shown: await rows(page, "table.heatmap"), expected: member },
    { what: `heatmap of ${teamId}: required, mean, gap and proficient per skill`, shown: await rows(page, "table.heatmap", "tfoot"), expected: foot },
    { what: `heatmap of ${teamId}: team readiness`, shown: [[/readiness against its roles: ([^.]+)\./.exec(legend)?.[1] ?? legend]], expected: [[pct(t.readiness)]] },
  ];
}

async function progress(page: Page, c: Clients, n: Names): Promise<Comparison[]> {
  const d = await page.$eval(".trend-view", (e) => ({ ...(e as HTMLElement).dataset }));
  const skills = (d.skills ?? "").split(",");
  const trend = await c.capability.getCapabilityTrend({
    teamId: d.team,
    skillIds: skills,
    from: timestampFromDate(new Date(Number(d.from))),
    to: timestampFromDate(new Date(Number(d.to))),
    intervalDays: 30,
  });
  const times = [...new Set(trend.points.map((p) => day(p.at)))];
  const at = (t: string, s: string) => trend.points.find((p) => day(p.at) === t && p.skillId === s);
  const table = skills.map((s) => {
    const [a, b] = [at(times[0], s), at(times[times.length - 1], s)];
    const [x, y] = [a?.meanLevel, b?.meanLevel];
    return [skill(n, s), x?.toFixed(2) ?? "–", y?.toFixed(2) ?? "–", x === undefined || y === undefined ? "–" : signed(y - x), String(b?.proficientCount ?? 0)];
  });
  const chart = times.map((t) => [t, ...skills.map((s) => at(t, s)?.meanLevel?.toFixed(2) ?? "–")]);
  const stories = await page.$$eval("ol.stories li", (lis) => lis.map((li) => [li.getAttribute("data-person") ?? "", li.textContent ?? ""]));
  const people = await Promise.all(trend.improvements.map((i) => c.directory.getPerson({ personId: i.personId })));
  return [
    { what: `progress of ${d.team}: mean then and now, change, proficient`, shown: await rows(page, "table.trend"), expected: table },
    { what: `progress of ${d.team}: every chart point`, shown: await rows(page, "table.chart-data"), expected: chart },
    {
      what: `progress of ${d.team}: the improvement stories (who, skill, from → to)`,
      shown: stories.map(([p, text]) => [p, text.split(",")[0]]),
      expected: trend.improvements.map((i, k) => [
        i.personId,
        `${people[k].person?.displayName}: ${skill(n, i.skillId)} ${i.fromLevel.toFixed(1)} → ${i.toLevel.toFixed(1)}`,
      ]),
    },
  ];
}

async function growth(page: Page, c: Clients, n: Names): Promise<Comparison[]> {
  const personId = await page.$eval(".growth", (e) => (e as HTMLElement).dataset.person ?? "");
  const profile = await c.capability.getPersonProfile({ personId });
  const current = await c.capability.getPersonGaps({ personId });
  const target = profile.person?.targetRoleId ? await c.capability.getPersonGaps({ personId, targetRole: true }) : null;
  const found = await c.talent.findMentors({ personId, limit: 5 });
  const gapRows = (g: typeof current) =>
    g.gaps.map((x) => [skill(n, x.skillId), fmtLevel(x.requiredLevel), fmtLevel(x.level), x.gap > 0 ? x.gap.toFixed(1) : "met", pct(x.confidence)]);
  const shownGaps = await page.$$eval("table.gaps", (ts) => ts.map((t) => [...t.querySelectorAll("tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent ?? ""))));
  // The chart: the five skills with most evidence (two or more), scores by date.
  const seconds = (e: SkillProficiency["evidence"][number]) => Math.floor(timestampDate(e.assessedAt!).getTime() / 1000);
  const charted = profile.skills
    .filter((s) => s.evidence.length >= 2)
    .sort((a, b) => b.evidence.length - a.evidence.length || a.skillId.localeCompare(b.skillId))
    .slice(0, 5);
  const times = [...new Set(charted.flatMap((s) => s.evidence.map(seconds)))].sort((a, b) => a - b);
  const chart = times.map((t) => [
    new Date(t * 1000).toISOString().slice(0, 10),
    ...charted.map((s) => new Map(s.evidence.map((e) => [seconds(e), e.score])).get(t)?.toFixed(2) ?? "–"),
  ]);
  return [
    {
      what: `growth of ${personId}: level, confidence, evidence, latest and self-rating per skill`,
      shown: await rows(page, "table.profile"),
      expected: profile.skills.map((s) => [
        skill(n, s.skillId),
        fmtLevel(s.level),
        pct(s.confidence),
        String(s.evidence.length),
        day(s.lastAssessed),
        s.selfGap === undefined ? "–" : `${s.selfGap > 0 ? "+" : ""}${s.selfGap.toFixed(1)}`,
      ]),
    },
    { what: `growth of ${personId}: gaps for the current and target role`, shown: shownGaps.flat(), expected: [...gapRows(current), ...(target ? gapRows(target) : [])] },
    { what: `growth of ${personId}: every chart point`, shown: await rows(page, ".growth table.chart-data"), expected: charted.length ? chart : [] },
    {
      what: `growth of ${personId}: suggested mentors and their expected gain`,
      shown: await rows(page, "table.suggested"),
      expected: [...found.mentors].sort((a, b) => b.expectedGain - a.expectedGain).map((m) => [m.displayName, team(n, m.teamId), m.expectedGain.toFixed(2), m.rationale]),
    },
  ];
}

async function risks(page: Page, c: Clients, n: Names): Promise<Comparison[]> {
  const teamId = idOf(await page.inputValue("input[name=team]"));
  const t = (await c.capability.getTeamCapability({ teamId, includeSubteams: true })).capability!;
  const r = await c.capability.getSkillRisks({ teamId });
  const who = new Map(t.members.map((m) => [m.personId, m.displayName]));
  const gaps = t.skills
    .filter((s) => s.requiredLevel !== undefined && (s.gap ?? 0) > 0)
    .sort((a, b) => (b.gap ?? 0) - (a.gap ?? 0))
    .map((s) => [skill(n, s.skillId), fmtLevel(s.requiredLevel), fmtLevel(s.maxLevel), fmtLevel(s.meanLevel), fmtLevel(s.gap), String(s.membersBelowRequirement)]);
  const risk = r.risks.map((x) => [
    skill(n, x.skillId),
    x.kind === RiskKind.MISSING ? "nobody has it" : "single point of failure",
    fmtLevel(x.requiredLevel),
    String(x.proficientCount),
    x.holderId ? who.get(x.holderId) ?? x.holderId : "–",
    String(x.peopleRequiring),
  ]);
  return [
    { what: `gaps of ${teamId}`, shown: await rows(page, "table.gaps"), expected: gaps },
    { what: `skill risks of ${teamId}`, shown: await rows(page, "table.risks"), expected: risk },
  ];
}

async function experts(page: Page, c: Clients, n: Names): Promise<Comparison[]> {
  const requirements = [];
  for (let i = 0; i < 3; i++) {
    const skillId = await page.inputValue(`select[name=skill${i}]`);
    if (skillId) requirements.push({ skillId, minLevel: Number(await page.inputValue(`input[name=level${i}]`)) });
  }
  const scopeTeamId = await page.inputValue("select[name=scope]");
  const res = await c.capability.findExperts({ requirements, scopeTeamId, minConfidence: Number(await page.inputValue("input[name=confidence]")), pageSize: 25 });
  return [
    {
      what: `experts in ${scopeTeamId || "the organisation"}: the first page`,
      shown: await rows(page, ".results table.experts"),
      expected: res.experts.map((e) => [e.displayName, team(n, e.teamId), ...e.levels.map((l) => fmtLevel(l)), pct(e.minConfidence), e.score.toFixed(2)]),
    },
    {
      what: "experts: how many meet every requirement",
      shown: [[(await page.textContent(".results p.legend")) ?? ""]],
      expected: [[`${res.total} people meet every requirement; the best ${res.experts.length} shown, best first.`]],
    },
  ];
}

async function mentors(page: Page, c: Clients, n: Names): Promise<Comparison[]> {
  const personId = idOf(await page.inputValue("input[name=person]"));
  const res = await c.talent.findMentors({ personId, limit: 8 });
  const ranked = [...res.mentors].sort((a, b) => b.expectedGain - a.expectedGain);
  const cards = await page.$$eval(".results .card.mentor", (cs) =>
    cs.map((card) => [
      card.querySelector("h3")?.textContent ?? "",
      /Expected gain [0-9.]+ levels · profile similarity [0-9]+% · [0-9]+ current/.exec(card.textContent ?? "")?.[0] ?? "",
      ...[...card.querySelectorAll("table tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent ?? "").join(" | ")),
    ]),
  );
  return [
    {
      what: `mentors for ${personId}: each mentor's expected gain, similarity, load and skill figures`,
      shown: cards,
      expected: ranked.map((m, rank) => [
        `${rank + 1}. ${m.displayName} · ${team(n, m.teamId)}`,
        `Expected gain ${m.expectedGain.toFixed(2)} levels · profile similarity ${pct(m.similarity)} · ${m.currentMentees} current`,
        ...m.skills.map((s) => [skill(n, s.skillId), fmtLevel(s.menteeLevel), fmtLevel(s.mentorLevel), fmtLevel(s.targetLevel), s.expectedGain.toFixed(2), pct(s.confidence)].join(" | ")),
      ]),
    },
  ];
}

async function plan(page: Page, c: Clients, n: Names): Promise<Comparison[]> {
  const teamId = idOf(await page.inputValue("input[name=team]"));
  const res = await c.talent.planMentoring({ scopeTeamId: teamId, pageSize: 50 });
  const people = new Map((await c.directory.listPeople({ subtreeTeamId: teamId, pageSize: 1000 })).people.map((p) => [p.id, p.displayName]));
  const pairs = [...res.pairs]
    .sort((a, b) => b.expectedGain - a.expectedGain || a.menteeId.localeCompare(b.menteeId))
    .map((p) => [people.get(p.menteeId) ?? p.menteeId, people.get(p.mentorId) ?? p.mentorId, p.skillIds.map((s) => skill(n, s)).join(", "), p.expectedGain.toFixed(2)]);
  const legend = (await page.textContent("section.page p.legend")) ?? "";
  return [
    { what: `mentoring plan of ${teamId}: pairs and expected gains`, shown: (await rows(page, "table.plan")).map((r) => r.slice(0, 4)), expected: pairs },
    {
      what: `mentoring plan of ${teamId}: matched, could be helped, total and greedy gain`,
      shown: [[legend.split(". Pairs")[0].replace(/ \((proven optimal|within [0-9]+% of the best possible); the simple/, " (; the simple")]],
      expected: [[`${res.menteesMatched} of ${res.menteesWithOptions} people who could be helped get a mentor; total expected gain ${res.totalGain.toFixed(1)} levels (; the simple greedy plan would gain ${res.greedyTotalGain.toFixed(1)})`]],
    },
  ];
}

async function builder(page: Page, c: Clients, n: Names): Promise<Comparison[]> {
  const value = (name: string) => page.inputValue(`[name=${name}]`);
  const requirements = [];
  for (let i = 0; i < 5; i++) {
    const skillId = await value(`req-skill${i}`);
    if (skillId) requirements.push({ skillId, minLevel: Number(await value(`req-level${i}`)), minPeople: Number(await value(`req-people${i}`)), weight: Number(await value(`req-weight${i}`)) });
  }
  const pool = await value("pool");
  const perTeam = Number(await value("perTeam"));
  const res = await c.talent.composeTeam({
    requirements,
    minSize: Number(await value("min")),
    maxSize: Number(await value("max")),
    poolTeamIds: pool ? [pool] : [],
    minAvailability: Number(await value("availability")),
    maxPerSourceTeam: perTeam > 0 ? perTeam : undefined,
    protectSourceTeams: await page.isChecked("[name=protect]"),
    preferArchetypeDiversity: await page.isChecked("[name=diversity]"),
    alternatives: Number(await value("alternatives")),
  });
  const card = (title: string, t: ProposedTeam) => [
    `${title} · ${t.members.length} people · coverage ${pct(t.coverage)}`,
    ...t.members.map((p) => [p.displayName, team(n, p.teamId), pct(p.availability), p.satisfiesSkillIds.map((s) => skill(n, s)).join(", ") || "–", p.reason, p.archetype || "–"].join(" | ")),
  ];
  const shown = await page.$$eval(".results .card.proposal", (cs) =>
    cs.map((card) => [
      card.querySelector("h3")?.textContent ?? "",
      ...[...card.querySelectorAll("table.members tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent ?? "").join(" | ")),
    ]),
  );
  return [
    { what: "team builder: the optimality statement and pool", shown: [[(await page.textContent(".results .optimality")) ?? ""]], expected: [[`${res.optimalityStatement} · pool of ${res.poolSize} candidates`]] },
    {
      what: "team builder: every proposal's coverage and members",
      shown,
      expected: [...(res.best ? [card("Proposed team", res.best)] : []), ...res.alternatives.map((a, i) => card(`Alternative ${i + 1}`, a))],
    },
  ];
}

async function archetypes(page: Page, c: Clients, n: Names, scope: string): Promise<Comparison[]> {
  const res = await c.insights.getSkillArchetypes({ scopeTeamId: scope, includeMembers: false });
  // The map plots every member the token may see (none for aggregate-only tokens).
  let members = 0;
  try {
    for (let pageToken = ""; ; ) {
      const p = await c.insights.getSkillArchetypes({ scopeTeamId: scope, includeMembers: true, memberPageSize: 20000, memberPageToken: pageToken });
      members += p.members.length;
      pageToken = p.nextMemberPageToken;
      if (!pageToken) break;
    }
  } catch {
    members = 0;
  }
  const [ex = 0, ey = 0] = res.mapExplained;
  const legend = (await page.textContent("section.page p.legend")) ?? "";
  return [
    {
      what: `archetypes of ${scope || "the organisation"}: label, size, spread, defining skills, departments`,
      shown: (await rows(page, "table.archetypes")).map((r) => r.slice(1)),
      expected: res.archetypes.map((a) => {
        const hidden = a.suppression !== Suppression.NONE;
        return [
          hidden ? "suppressed (too few people)" : a.label,
          hidden ? "–" : String(a.size),
          hidden ? "–" : a.spread.toFixed(2),
          a.definingSkills.map((s) => `${s.skillName} ${s.level.toFixed(1)} (+${s.versusMean.toFixed(1)})`).join(", "),
          a.departments.map((d) => `${team(n, d.teamId)} ${d.count}`).join(", ") + (a.otherDepartments ? `, others ${a.otherDepartments}` : ""),
        ];
      }),
    },
    {
      what: `archetypes of ${scope || "the organisation"}: summary figures and points on the map`,
      shown: [[legend.split(" · recomputing")[0], String(await page.locator("svg.map circle.member").count())]],
      expected: [[
        `${res.archetypes.length} archetypes among ${res.people} people · silhouette ${res.silhouette.toFixed(2)} · ${pct(res.knownShare)} of cells backed by evidence (unknown taken as ${res.unknownLevel}) · map axes explain ${pct(ex)} and ${pct(ey)} of the variance`,
        String(Math.min(members, 50000)),
      ]],
    },
  ];
}

async function patterns(page: Page, c: Clients, scope: string): Promise<Comparison[]> {
  const [, , by = String(GroupBy.DEPARTMENT), raised] = new URL(page.url()).hash.split("/");
  const groupBy = Number(by) as GroupBy;
  const minGroupSize = raised ? Number(raised) : undefined;
  const res = await c.insights.getOrgSkillPatterns({ scopeTeamId: scope, groupBy, minGroupSize, pageSize: 200 });
  for (let token = res.nextPageToken; token; ) {
    const next = await c.insights.getOrgSkillPatterns({ scopeTeamId: scope, groupBy, minGroupSize, pageSize: 200, pageToken: token });
    res.groups.push(...next.groups);
    token = next.nextPageToken;
  }
  const categories = [1, 2, 3, 4, 5, 6];
  const expected = res.groups.map((g) => {
    if (g.suppression !== Suppression.NONE) {
      const why = g.suppression === Suppression.TOO_SMALL ? `fewer than ${res.minGroupSize} people` : "would reveal a smaller group by difference";
      return [g.name, `suppressed: ${why}`, ...categories.map(() => ""), "", "", ""];
    }
    const shown = g.archetypes.slice(0, 3).map((a) => `${a.label} ${a.count}`);
    if (g.otherArchetypes) shown.push(shown.length ? `others ${g.otherArchetypes}` : `${g.otherArchetypes} in smaller archetypes`);
    return [
      g.name,
      String(g.size),
      ...categories.map((k) => fmtLevel(g.categories.find((x) => x.category === k)?.meanLevel)),
      g.calibration === undefined ? "–" : signed(g.calibration),
      g.trend === undefined ? "–" : signed(g.trend),
      shown.length ? shown.join(", ") : "–",
    ];
  });
  return [{ what: `patterns of ${scope || "the organisation"} by ${GroupBy[groupBy].toLowerCase()}`, shown: await rows(page, "table.patterns"), expected }];
}

async function tokens(page: Page, c: Clients): Promise<Comparison[]> {
  const listed = (await c.access.listTokens({ pageSize: 1000 })).tokens;
  const when = (t: Parameters<typeof timestampDate>[0] | undefined) => (t ? timestampDate(t).toISOString().replace("T", " ").slice(0, 16) : "–");
  const state = (t: (typeof listed)[number]) => (t.revokedAt ? "revoked" : t.expiresAt && timestampDate(t.expiresAt) < new Date() ? "expired" : "active");
  return [
    {
      what: "tokens: every token's id, role, scope, description, dates and state",
      shown: (await rows(page, "table.tokens")).map((r) => r.slice(0, 7)),
      expected: listed.map((t) => [t.tokenId, AccessRole[t.role].toLowerCase(), t.personId || t.teamIds.join(", ") || "everything", t.description, when(t.createdAt), t.expiresAt ? when(t.expiresAt) : "never", state(t)]),
    },
  ];
}

async function audit(page: Page, c: Clients): Promise<Comparison[]> {
  const shown = await rows(page, "table.audit");
  // Newest first, and the trail grows with every call (this test's too): the rows shown
  // must be a run of the trail as it stands now.
  const events = (await c.access.listAuditEvents({ pageSize: 1000 })).events.map((e) => [
    e.at ? timestampDate(e.at).toISOString().replace("T", " ").slice(0, 19) : "–",
    e.tokenId,
    AccessRole[e.role].toLowerCase(),
    e.rpc.replace(/^capsight\.v1\./, ""),
    e.subjectIds.join(", "),
    e.outcome,
    e.count ? String(e.count) : "",
  ]);
  const start = events.findIndex((e) => JSON.stringify(e) === JSON.stringify(shown[0]));
  return [{ what: `audit: the ${shown.length} events shown`, shown, expected: start < 0 ? [["(first row shown is not in the trail)"]] : events.slice(start, start + shown.length) }];
}

/** The first difference of a comparison, for the log ("" when equal). */
export function difference(x: Comparison): string {
  if (x.shown.length !== x.expected.length) return `${x.shown.length} rows shown, ${x.expected.length} expected`;
  for (let i = 0; i < x.shown.length; i++) {
    const [a, b] = [JSON.stringify(x.shown[i]), JSON.stringify(x.expected[i])];
    if (a !== b) return `row ${i + 1}: shown ${a}, expected ${b}`;
  }
  return "";
}
