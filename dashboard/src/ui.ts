// Small DOM helpers shared by the pages: element construction, the level colour scale,
// number formatting and status lines.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

/** An element with attributes (`on*` keys become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes and children. */
export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Colour of a proficiency level 0–5: pale to deep blue. */
export function levelColour(level: number): string {
  const t = Math.max(0, Math.min(1, level / 5));
  const lightness = 96 - t * 62;
  return `hsl(212 72% ${lightness}%)`;
}

/** Text colour readable on `levelColour(level)`. */
export function inkOn(level: number): string {
  return level >= 3 ? "#fff" : "#17324d";
}

/** A level with one decimal, or an en dash when unknown. */
export function fmtLevel(level: number | undefined): string {
  return level === undefined ? "–" : level.toFixed(1);
}

export function pct(share: number | undefined): string {
  return share === undefined ? "–" : `${Math.round(share * 100)}%`;
}

/** A one-line message under a form or above a result. */
export function notice(text: string, kind: "error" | "info" | "ok" = "info"): HTMLElement {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** A placeholder while a request is in flight. */
export function loading(text = "Loading…"): HTMLElement {
  return h("p", { class: "notice loading", role: "status" }, text);
}

/** A table from a header row and body rows. */
export function table(head: Child[], rows: Child[][], attrs: Attrs = {}): HTMLTableElement {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
  );
}

/** A labelled form field. */
export function field(label: string, input: HTMLElement): HTMLLabelElement {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

/** A `<select>` of `options` ([value, text]) with `selected` chosen. */
export function select(name: string, options: [string, string][], selected = ""): HTMLSelectElement {
  return h(
    "select",
    { name },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

/** A signed difference to two decimals; one that rounds to zero is "0.00", never "-0.00". */
export function signed(v: number): string {
  const text = v.toFixed(2);
  if (Number(text) === 0) return "0.00";
  return `${v > 0 ? "+" : ""}${text}`;
}
