// Models: the search page and a model's page (versions with their deltas and DeltaOne decisions,
// aliases and their history; rollback, archive and unarchive for keys with `write`).

import { get, path, post, session } from "./api.js";
import { el, link, number, pager, points, problem, route, short, show, table, when } from "./dom.js";

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
    write && model.aliases.production !== undefined && !model.archived_at ? rollbackForm(name, redraw) : null,
    write ? archiveAction("archive-model", path("models", name), model.archived_at, "model", redraw) : null,
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
    el("td", {}, `v${version.version}`, version.parent_version ? el("span", { class: "muted" }, ` ← v${version.parent_version}`) : null),
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
