// Lineage as a graph: versions as nodes (accepted DeltaOnes highlighted), parent → child edges
// labelled with the gain, laid out by generation; a click shows the version and its attestation.

import { get, path } from "./api.js";
import { verifier } from "./contributors.js";
import { el, link, number, points, route, short, show, svg, when } from "./dom.js";

const WIDTH = 128;
const HEIGHT = 44;
const COLUMN = 156;
const ROW = 96;
const MARGIN = 24;

export async function lineagePage(view, { name }, query) {
  const direction = query.direction || "both";
  const depth = query.depth || 1000;
  const graph = await get(path("models", name, "lineage"), { version: query.version, direction, depth });
  const detail = el("aside", { class: "detail", id: "node-detail" }, el("p", { class: "muted" }, "Click a version for its details."));
  const drawn = drawGraph(graph, (version) => showVersion(detail, name, graph, version));
  show(
    view,
    el("h1", {}, link(name, ["models", name]), " lineage"),
    controls(name, query, direction, depth),
    el(
      "p",
      { class: "muted", id: "lineage-summary" },
      `${graph.nodes.length} version${graph.nodes.length === 1 ? "" : "s"}, ${graph.edges.length} edge${graph.edges.length === 1 ? "" : "s"}, ` +
        `${graph.edges.filter((edge) => edge.deltaone_accepted).length} accepted DeltaOne${graph.version ? `; cumulative gain to v${graph.version}: ${points(graph.cumulative_gain_pp)}` : ""}`,
    ),
    el("div", { class: "split" }, el("div", { class: "canvas" }, drawn), detail),
  );
}

function controls(name, query, direction, depth) {
  const version = el("input", { type: "number", name: "version", min: 1, value: query.version || "", placeholder: "all", class: "small" });
  const directions = el(
    "select",
    { name: "direction" },
    ["both", "ancestors", "descendants"].map((value) => el("option", { value, selected: value === direction }, value)),
  );
  const hops = el("input", { type: "number", name: "depth", min: 1, max: 100000, value: depth, class: "small" });
  return el(
    "form",
    {
      class: "controls",
      id: "lineage-controls",
      onsubmit: (event) => {
        event.preventDefault();
        location.hash = route(["models", name, "lineage"], { version: version.value, direction: directions.value, depth: hops.value });
      },
    },
    el("label", {}, "From version ", version),
    el("label", {}, "Direction ", directions),
    el("label", {}, "Depth ", hops),
    el("button", { type: "submit" }, "Show"),
  );
}

/** Generations from the roots down; within one, children follow their parent's order. */
function layout(nodes, edges) {
  const parent = new Map(edges.map((edge) => [edge.child, edge.parent]));
  const children = new Map();
  for (const edge of edges) {
    if (!children.has(edge.parent)) children.set(edge.parent, []);
    children.get(edge.parent).push(edge.child);
  }
  const known = new Set(nodes.map((node) => node.version));
  const roots = nodes.map((node) => node.version).filter((version) => !known.has(parent.get(version))).sort((a, b) => a - b);
  const place = new Map();
  const rows = [];
  let queue = roots;
  for (let row = 0; queue.length; row += 1) {
    rows.push(queue);
    queue.forEach((version, column) => place.set(version, { row, column }));
    queue = queue.flatMap((version) => (children.get(version) || []).filter((child) => known.has(child)).sort((a, b) => a - b));
  }
  return { place, rows };
}

function drawGraph(graph, onSelect) {
  const { place, rows } = layout(graph.nodes, graph.edges);
  const columns = rows.reduce((widest, row) => Math.max(widest, row.length), 1);
  const x = (version) => MARGIN + place.get(version).column * COLUMN;
  const y = (version) => MARGIN + place.get(version).row * ROW;
  const edges = graph.edges
    .filter((edge) => place.has(edge.parent) && place.has(edge.child))
    .map((edge) => {
      const x1 = x(edge.parent) + WIDTH / 2;
      const y1 = y(edge.parent) + HEIGHT;
      const x2 = x(edge.child) + WIDTH / 2;
      const y2 = y(edge.child);
      const middle = (y1 + y2) / 2;
      return svg(
        "g",
        { class: edge.deltaone_accepted ? "edge accepted" : "edge", "data-parent": edge.parent, "data-child": edge.child },
        svg("path", { d: `M${x1},${y1} C${x1},${middle} ${x2},${middle} ${x2},${y2}` }),
        svg("text", { x: x2 + 6, y: y2 - 8 }, edge.gain_pp === null ? "" : points(edge.gain_pp)),
      );
    });
  const nodes = graph.nodes.map((node) =>
    svg(
      "g",
      {
        class: `node ${node.kind}${node.deltaone_accepted ? " accepted" : ""}${node.version === graph.version ? " focus" : ""}`,
        transform: `translate(${x(node.version)},${y(node.version)})`,
        "data-version": node.version,
        tabindex: 0,
        role: "button",
        onclick: () => onSelect(node.version),
        onkeydown: (event) => event.key === "Enter" && onSelect(node.version),
      },
      svg("rect", { width: WIDTH, height: HEIGHT, rx: 6 }),
      svg("text", { x: 10, y: 18, class: "title" }, `v${node.version}`),
      svg("text", { x: 10, y: 35 }, node.primary_metric_value === null ? node.kind : `${graph.primary_metric} ${number(node.primary_metric_value)}`),
    ),
  );
  return svg(
    "svg",
    {
      class: "lineage",
      width: MARGIN * 2 + (columns - 1) * COLUMN + WIDTH,
      height: MARGIN * 2 + (rows.length - 1) * ROW + HEIGHT,
      role: "img",
      "aria-label": `Lineage of ${graph.model}`,
    },
    svg("g", { class: "edges" }, edges),
    svg("g", { class: "nodes" }, nodes),
  );
}

async function showVersion(detail, name, graph, chosen) {
  show(detail, el("p", { class: "muted" }, `Loading v${chosen}…`));
  const version = await get(path("models", name, "versions", chosen));
  const edge = graph.edges.find((candidate) => candidate.child === chosen);
  const decision = version.deltaone;
  show(
    detail,
    el("h2", {}, `v${version.version} `, el("span", { class: "muted" }, version.kind)),
    el("p", {}, `Registered ${when(version.created_at)}`, version.parent_version ? ` from v${version.parent_version}` : ""),
    el("h3", {}, "Metrics"),
    el("ul", {}, Object.entries(version.metrics).map(([metric, value]) => el("li", {}, `${metric}: ${number(value)}`))),
    decision
      ? el(
          "p",
          {},
          el("span", { class: decision.accepted ? "badge good" : "badge bad" }, decision.accepted ? "DeltaOne accepted" : "DeltaOne rejected"),
          decision.accepted ? "" : ` ${decision.reason.replaceAll("_", " ")};`,
          ` gain ${points(decision.gain_pp)} (threshold ${points(decision.threshold_pp)})`,
        )
      : null,
    edge && edge.contributors.length
      ? [el("h3", {}, "Contributors"), el("ul", {}, edge.contributors.map((who) => el("li", {}, link(who.address, ["contributors", who.address]), ` ${who.weight_bps / 100}%`)))]
      : null,
    version.attestation_id
      ? [el("h3", {}, "Attestation"), el("p", {}, link(short(version.attestation_id), ["attestations", version.attestation_id])), verifier(version.attestation_id)]
      : null,
  );
}
