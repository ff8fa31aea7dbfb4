// Models: the search page, a model's page (its benchmark metric across versions, versions with
// their deltas and DeltaOne decisions, aliases and their history) and a version's page (metrics,
// decision, contributors, input signature, artifact download, a prediction to try, a comparison);
// rollback, archive, and description and tag edits for keys with `write`.

import { download, get, patch, path, post, session } from "./api.js";
import { el, link, number, pager, points, problem, route, short, show, svg, table, when } from "./dom.js";

const PAGE = 50;

export async function modelsPage(view, _params, query) {
  const search = query.search || "";
  const archived = query.archived === "1";
  const page = await get("/models", { search, include_archived: archived || undefined, limit: PAGE, offset: query.offset || 0 });
  const toggle = el("input", { id: "show-archived", type: "checkbox", checked: archived });
  const input = el("input", { id: "model-search", type: "search", name: "search", value: search, placeholder: "name or token id", autocomplete: "off" });
  const form = el(
    "form",
    {
      class: "search",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        location.hash = route(["models"], { search: input.value.trim(), archived: toggle.checked ? "1" : undefined });
      },
    },
    input,
    el("button", { type: "submit" }, "Search"),
    el("label", { class: "check" }, toggle, " archived too"),
  );
  const rows = page.items.map((model) =>
    el(
      "tr",
      { "data-model": model.name },
      el("td", {}, link(model.name, ["models", model.name]), model.archived_at ? [" ", el("span", { class: "badge muted-badge" }, "archived")] : null),
      el("td", {}, model.token_id || "–"),
      el("td", {}, model.model_type),
      el("td", {}, model.benchmark.metric),
      el("td", { class: "num" }, model.latest_version === null ? "–" : `v${model.latest_version}`),
      el("td", {}, aliasChips(model.aliases)),
      el("td", { class: "wrap" }, model.description || ""),
    ),
  );
  show(
    view,
    el("h1", {}, "Models"),
    form,
    el("p", { class: "muted", id: "model-count" }, `${page.total} model${page.total === 1 ? "" : "s"}${search ? ` matching “${search}”` : ""}`),
    page.items.length
      ? table(["Name", "Token", "Type", "Metric", "Latest", "Aliases", "Description"], rows, { id: "models" })
      : el("p", {}, "No model matches."),
    pager(page, (offset) => route(["models"], { search, archived: archived ? "1" : undefined, offset })),
  );
}

export async function modelPage(view, { name }, query, redraw) {
  const offset = Number(query.offset || 0);
  const archived = query.archived === "1";
  const [model, versions] = await Promise.all([
    get(path("models", name)),
    get(path("models", name, "versions"), { limit: PAGE, offset, include_archived: archived || undefined }),
  ]);
  const write = session.can("write");
  const aliases = Object.keys(model.aliases).sort();
  const histories = await Promise.all(aliases.map((alias) => get(path("models", name, "aliases", alias, "history"))));
  const metric = model.benchmark.metric;
  show(
    view,
    el("h1", {}, model.name, " ", el("span", { class: "muted" }, model.model_type)),
    model.archived_at
      ? el("p", { id: "archived-banner", class: "banner" }, `Archived ${when(model.archived_at)}: left out of lists; it takes no new version, alias or test and serves no prediction until unarchived.`)
      : null,
    el(
      "dl",
      { class: "facts" },
      fact("Token", model.token_id || "–"),
      fact("Benchmark", `${metric} (${model.benchmark.direction.replaceAll("_", " ")})`),
      fact("Description", el("span", { id: "model-description", class: "wrap" }, model.description || "–")),
      fact("Tags", tagChips(model.tags)),
      fact("Aliases", aliasChips(model.aliases)),
      fact("Lineage", link("graph of every version", ["models", name, "lineage"])),
    ),
    write ? editForm("edit-model", path("models", name), model, redraw) : null,
    write && model.aliases.production !== undefined && !model.archived_at ? rollbackForm(name, redraw) : null,
    write ? archiveAction("archive-model", path("models", name), model.archived_at, "model", redraw) : null,
    el("h2", {}, `${metric} across versions`),
    performanceChart(versions.items, metric, histories[aliases.indexOf("production")] || []),
    el("h2", {}, "Versions"),
    el(
      "p",
      { class: "muted" },
      link(archived ? "hide archived versions" : "show archived versions", ["models", name], archived ? {} : { archived: "1" }, { id: "toggle-archived" }),
    ),
    table(
      ["Version", "Kind", "Registered", metric, "Δ against parent", "DeltaOne", "Aliases", "Attestation", "Notes", ...(write ? [""] : [])],
      versions.items.map((version) => versionRow(name, version, metric, write, redraw)),
      { id: "versions" },
    ),
    pager(versions, (next) => route(["models", name], { offset: next, archived: archived ? "1" : undefined })),
    el("h2", {}, "Alias history"),
    aliases.length ? aliases.map((alias, i) => timeline(alias, histories[i])) : el("p", { class: "muted" }, "No alias has been set."),
  );
}

function versionRow(name, version, metric, write, redraw) {
  const delta = version.delta && version.delta[metric];
  const decision = version.deltaone;
  return el(
    "tr",
    { "data-version": version.version },
    el("td", {}, link(`v${version.version}`, ["models", name, "versions", String(version.version)]), version.parent_version ? el("span", { class: "muted" }, ` ← v${version.parent_version}`) : null),
    el("td", {}, version.kind),
    el("td", {}, when(version.created_at)),
    el("td", { class: "num" }, number(version.metrics[metric])),
    el("td", { class: "num" }, delta ? points(delta.gain_pp) : "–"),
    el(
      "td",
      { class: "deltaone" },
      decision
        ? [
            el("span", { class: decision.accepted ? "badge good" : "badge bad" }, decision.accepted ? "accepted" : "rejected"),
            decision.accepted ? null : el("span", { class: "muted" }, ` ${decision.reason.replaceAll("_", " ")}`),
          ]
        : "–",
    ),
    el("td", {}, version.aliases.map((alias) => el("span", { class: "chip" }, alias))),
    el("td", {}, version.attestation_id ? link(short(version.attestation_id), ["attestations", version.attestation_id]) : "–"),
    el(
      "td",
      { class: "wrap notes" },
      version.archived_at ? [el("span", { class: "badge muted-badge" }, "archived"), " "] : null,
      version.description || "",
      " ",
      Object.keys(version.tags).length ? tagChips(version.tags) : null,
    ),
    write ? el("td", {}, archiveButton(path("models", name, "versions", version.version), version.archived_at, redraw)) : null,
  );
}

/** Archive (or unarchive) a model, with what the service says when it refuses (`in_use`). */
function archiveAction(id, target, archivedAt, what, redraw) {
  const status = el("span", { role: "status" });
  return el(
    "div",
    { class: "action write", id },
    el("strong", {}, archivedAt ? `This ${what} is archived. ` : `Archive this ${what}: `),
    archivedAt ? null : el("span", { class: "muted" }, "out of lists, no new version, alias, test or prediction; nothing is deleted."),
    archiveButton(target, archivedAt, redraw, status),
    status,
  );
}

function archiveButton(target, archivedAt, redraw, status) {
  const where = status || el("span", { role: "status" });
  const button = el(
    "button",
    {
      type: "button",
      class: archivedAt ? "write" : "write danger",
      "data-archive": archivedAt ? "unarchive" : "archive",
      onclick: async () => {
        button.disabled = true;
        try {
          await post(`${target}/${archivedAt ? "unarchive" : "archive"}`);
          redraw();
        } catch (error) {
          button.disabled = false;
          show(where, problem(error));
        }
      },
    },
    archivedAt ? "Unarchive" : "Archive",
  );
  return status ? button : [button, where];
}

function timeline(alias, events) {
  const ordered = [...events].reverse(); // the service answers oldest first
  return el(
    "div",
    { class: "timeline-block" },
    el("h3", {}, alias),
    el(
      "ol",
      { class: "timeline", "data-alias": alias },
      ordered.map((event) =>
        el(
          "li",
          {},
          el("time", { datetime: event.at }, when(event.at)),
          el("span", { class: "move" }, `${event.from_version === null ? "∅" : `v${event.from_version}`} → ${event.to_version === null ? "∅" : `v${event.to_version}`}`),
          el("span", { class: "muted" }, ` by ${event.actor}`),
          event.reason ? el("span", { class: "reason" }, ` “${event.reason}”`) : null,
        ),
      ),
    ),
  );
}

function rollbackForm(name, redraw) {
  const version = el("input", { type: "number", min: 1, name: "to_version", placeholder: "previous", class: "small" });
  const reason = el("input", { type: "text", name: "reason", maxlength: 500, placeholder: "reason (kept in the history)" });
  const status = el("span", { role: "status" });
  return el(
    "form",
    {
      class: "action write",
      id: "rollback",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const body = { reason: reason.value.trim() || null };
          if (version.value) body.to_version = Number(version.value);
          await post(path("models", name, "rollback"), body);
          redraw();
        } catch (error) {
          show(status, problem(error));
        }
      },
    },
    el("strong", {}, "Roll back production "),
    "to ",
    version,
    reason,
    el("button", { type: "submit", class: "danger" }, "Roll back"),
    status,
  );
}

function fact(term, value) {
  return [el("dt", {}, term), el("dd", {}, value)];
}

function tagChips(tags) {
  const entries = Object.entries(tags || {});
  return entries.length ? entries.map(([key, value]) => el("span", { class: "chip tag" }, `${key}=${value}`)) : "–";
}

function aliasChips(aliases) {
  const entries = Object.entries(aliases || {});
  return entries.map(([alias, version]) => el("span", { class: alias === "production" ? "chip production" : "chip" }, `${alias} → v${version}`));
}

/** The benchmark metric of each version, oldest first: accepted improvements filled, rejected
 * ones hollow, measured ones ringed solid and claimed ones dashed, baselines square, and the
 * versions `production` has pointed at marked above the axis (the current one in bold). */
function performanceChart(versions, metric, productionHistory) {
  const points = [...versions].filter((v) => typeof v.metrics[metric] === "number").sort((a, b) => a.version - b.version);
  if (!points.length) return el("p", { class: "muted" }, `No version reports ${metric}.`);
  const held = new Set(productionHistory.map((event) => event.to_version).filter((v) => v !== null));
  const current = productionHistory.length ? productionHistory[productionHistory.length - 1].to_version : null;
  const width = 640;
  const height = 220;
  const left = 60;
  const right = 20;
  const top = 28;
  const bottom = 30;
  const values = points.map((v) => v.metrics[metric]);
  let min = Math.min(...values);
  let max = Math.max(...values);
  const pad = (max - min || Math.abs(max) || 1) * 0.1;
  min -= pad;
  max += pad;
  const x = (i) => (points.length === 1 ? (left + width - right) / 2 : left + (i * (width - left - right)) / (points.length - 1));
  const y = (value) => top + ((max - value) / (max - min)) * (height - top - bottom);
  const path = points.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v.metrics[metric]).toFixed(1)}`).join(" ");
  const ticks = Array.from({ length: 4 }, (_, i) => min + ((max - min) * i) / 3);
  return svg(
    "svg",
    { class: "chart performance", id: "performance", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${metric} across versions` },
    ticks.map((tick) => [
      svg("line", { class: "grid", x1: left, x2: width - right, y1: y(tick), y2: y(tick) }),
      svg("text", { class: "tick", x: left - 6, y: y(tick) + 4, "text-anchor": "end" }, number(tick, 3)),
    ]),
    svg("path", { class: "trend", d: path }),
    points.map((v, i) => {
      const decision = v.deltaone;
      const kind = v.kind === "baseline" ? "baseline" : decision && decision.accepted ? "accepted" : "rejected";
      const basis = decision ? decision.basis : null;
      const cx = x(i);
      const cy = y(v.metrics[metric]);
      const title = svg("title", {}, `v${v.version}: ${metric} ${number(v.metrics[metric])}${decision ? `, ${decision.accepted ? "accepted" : decision.reason.replaceAll("_", " ")} (${basis})` : ", baseline"}${held.has(v.version) ? ", held production" : ""}`);
      return svg(
        "g",
        { class: `point ${kind}${basis ? ` ${basis}` : ""}`, "data-version": v.version, "data-kind": kind, "data-basis": basis || "" },
        kind === "baseline"
          ? svg("rect", { x: cx - 5, y: cy - 5, width: 10, height: 10 }, title)
          : svg("circle", { cx, cy, r: 5.5 }, title),
        held.has(v.version) ? svg("text", { class: `production${v.version === current ? " current" : ""}`, x: cx, y: top - 10, "text-anchor": "middle" }, "prod") : null,
        svg("text", { class: "tick", x: cx, y: height - 10, "text-anchor": "middle" }, `v${v.version}`),
      );
    }),
  );
}

export async function versionPage(view, { name, version }, _query, redraw) {
  const [model, found] = await Promise.all([get(path("models", name)), get(path("models", name, "versions", version))]);
  const metric = found.benchmark.metric;
  const decision = found.deltaone;
  const write = session.can("write");
  const base = path("models", name, "versions", found.version);
  show(
    view,
    el("h1", {}, link(name, ["models", name]), ` v${found.version} `, el("span", { class: "muted" }, found.kind)),
    found.archived_at ? el("p", { id: "archived-banner", class: "banner" }, `Archived ${when(found.archived_at)}: left out of lists; it takes no alias and serves no prediction by number.`) : null,
    el(
      "dl",
      { class: "facts" },
      fact("Parent", found.parent_version ? link(`v${found.parent_version}`, ["models", name, "versions", String(found.parent_version)]) : "–"),
      fact("Registered", when(found.created_at)),
      fact("Dataset", [el("code", {}, short(found.dataset.hash)), ` · ${number(found.dataset.num_samples)} samples`]),
      fact(
        "DeltaOne",
        decision
          ? el("span", { id: "decision" }, el("span", { class: decision.accepted ? "badge good" : "badge bad" }, decision.accepted ? "accepted" : decision.reason.replaceAll("_", " ")), ` ${points(decision.gain_pp)} (${decision.basis})`, decision.ci_low_pp !== null && decision.ci_high_pp !== null ? el("span", { class: "muted" }, ` interval [${points(decision.ci_low_pp)}, ${points(decision.ci_high_pp)}]`) : null)
          : "– (a baseline)",
      ),
      fact("Aliases", found.aliases.length ? found.aliases.map((alias) => el("span", { class: "chip" }, alias)) : "–"),
      fact("Attestation", found.attestation_id ? link(short(found.attestation_id), ["attestations", found.attestation_id]) : "–"),
      fact("Artifact", [el("code", {}, short(found.artifact.digest)), " ", downloadButton(base, `${name}-v${found.version}.tar.gz`)]),
      fact("Description", el("span", { class: "wrap" }, found.description || "–")),
      fact("Tags", tagChips(found.tags)),
    ),
    write ? editForm("edit-version", base, found, redraw) : null,
    el("h2", {}, "Metrics"),
    table(
      ["Metric", "Value", "Δ against parent"],
      Object.entries(found.metrics).map(([key, value]) => {
        const delta = found.delta && found.delta[key];
        return el("tr", { "data-metric": key }, el("th", { scope: "row" }, key, key === metric ? el("span", { class: "muted" }, " (benchmark)") : null), el("td", { class: "num" }, number(value)), el("td", { class: "num" }, delta ? points(delta.gain_pp) : "–"));
      }),
      { id: "metrics" },
    ),
    el("h2", {}, "Contributors"),
    found.contributors.length
      ? table(
          ["Address", "Share"],
          found.contributors.map((c) => el("tr", {}, el("td", {}, link(c.address, ["contributors", c.address])), el("td", { class: "num" }, `${(c.weight_bps / 100).toFixed(2)}%`))),
          { id: "version-contributors" },
        )
      : el("p", { class: "muted" }, "None named (a baseline, or none given)."),
    el("h2", {}, "Input signature"),
    found.signature
      ? table(
          ["Column", "Type", "Required"],
          found.signature.map((c) => el("tr", { "data-column": c.name }, el("td", {}, c.name), el("td", {}, c.type), el("td", {}, c.required ? "yes" : "no"))),
          { id: "signature" },
        )
      : el("p", { class: "muted" }, "Its MLmodel file declares none: rows are sent to the model as they are."),
    session.can("predict") && !found.archived_at && !model.archived_at ? tryForm(name, found) : null,
    el("h2", {}, "Compare with another version"),
    compareForm(name, found, model.latest_version),
  );
}

function downloadButton(where, filename) {
  const status = el("span", { role: "status" });
  const button = el(
    "button",
    {
      type: "button",
      id: "download-artifact",
      onclick: async () => {
        button.disabled = true;
        try {
          await download(`${where}/artifact`, filename);
          show(status, el("span", { class: "muted" }, ` ${filename}`));
        } catch (error) {
          show(status, problem(error));
        } finally {
          button.disabled = false;
        }
      },
    },
    "Download .tar.gz",
  );
  return [button, status];
}

/** One row typed in by hand, predicted by this version (a `predict` key). */
function tryForm(name, found) {
  const columns = found.signature || [];
  const inputs = columns.map((c) => el("input", { name: c.name, type: ["double", "float", "long", "integer"].includes(c.type) ? "number" : "text", step: "any", required: c.required, placeholder: c.type, "aria-label": c.name }));
  const raw = el("textarea", { name: "row", rows: 3, class: "wide", placeholder: '{"column": value, ...}', "aria-label": "row as JSON" });
  const answer = el("div", { id: "try-answer", role: "status" });
  return el(
    "form",
    {
      class: "action",
      id: "try-prediction",
      onsubmit: async (event) => {
        event.preventDefault();
        let row;
        try {
          row = columns.length ? Object.fromEntries(columns.map((c, i) => [c.name, inputs[i].type === "number" && inputs[i].value !== "" ? Number(inputs[i].value) : inputs[i].value || null])) : JSON.parse(raw.value || "{}");
        } catch {
          show(answer, el("div", { class: "error" }, "The row is not JSON."));
          return;
        }
        try {
          const result = await post(path("models", name, "predict"), { inputs: row, version: found.version });
          show(answer, el("p", {}, "v", String(result.version), " answers ", el("code", { class: "prediction" }, JSON.stringify(result.predictions[0]))));
        } catch (error) {
          show(answer, problem(error));
        }
      },
    },
    el("strong", {}, "Try a prediction "),
    columns.length ? inputs.map((input, i) => el("label", { class: "field" }, columns[i].name, " ", input)) : raw,
    el("button", { type: "submit" }, "Predict"),
    answer,
  );
}

/** The version beside another one: every metric both report, with the direction-aware gain. */
function compareForm(name, found, latest) {
  const other = el("input", { type: "number", min: 1, name: "other", class: "small", value: found.parent_version || (latest !== found.version ? latest : ""), "aria-label": "other version" });
  const result = el("div", { id: "comparison" });
  return el(
    "form",
    {
      class: "action",
      id: "compare",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const comparison = await get(path("models", name, "compare"), { base: other.value, candidate: found.version });
          show(
            result,
            table(
              ["Metric", `v${comparison.base}`, `v${comparison.candidate}`, "Gain (direction-aware)", "Better"],
              Object.entries(comparison.metrics).map(([key, m]) => el("tr", { "data-metric": key }, el("th", { scope: "row" }, key), el("td", { class: "num" }, number(m.base)), el("td", { class: "num" }, number(m.candidate)), el("td", { class: "num" }, `${m.gain > 0 ? "+" : ""}${number(m.gain)}`), el("td", {}, m.better === "equal" ? "equal" : `v${m.better === "candidate" ? comparison.candidate : comparison.base}`))),
              { id: "comparison-table" },
            ),
          );
        } catch (error) {
          show(result, problem(error));
        }
      },
    },
    `v${found.version} against v`,
    other,
    el("button", { type: "submit" }, "Compare"),
    result,
  );
}

/** Description and tags (one `key=value` a line), written with PATCH and mirrored to MLflow. */
function editForm(id, where, current, redraw) {
  const description = el("textarea", { name: "description", rows: 2, class: "wide", maxlength: 5000, "aria-label": "description" }, current.description || "");
  const tags = el("textarea", { name: "tags", rows: 3, class: "wide", "aria-label": "tags, one key=value a line" }, Object.entries(current.tags || {}).map(([k, v]) => `${k}=${v}`).join("\n"));
  const status = el("span", { role: "status" });
  return el(
    "details",
    { class: "write", id },
    el("summary", {}, "Edit description and tags"),
    el(
      "form",
      {
        class: "action write",
        onsubmit: async (event) => {
          event.preventDefault();
          const parsed = {};
          for (const line of tags.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
            const at = line.indexOf("=");
            if (at < 1) {
              show(status, el("div", { class: "error" }, `“${line}” is not key=value`));
              return;
            }
            parsed[line.slice(0, at).trim()] = line.slice(at + 1).trim();
          }
          try {
            await patch(where, { description: description.value.trim() || null, tags: parsed });
            redraw();
          } catch (error) {
            show(status, problem(error));
          }
        },
      },
      description,
      tags,
      el("button", { type: "submit" }, "Save"),
      status,
    ),
  );
}
