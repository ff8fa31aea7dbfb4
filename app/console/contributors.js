// Contributors and attestations: every contributor, a contributor's impact and contributions by model, an
// attestation's statement, and its verification by the service (the result shown as given).

import { get, path, post } from "./api.js";
import { el, link, number, pager, points, problem, route, short, show, table, when } from "./dom.js";

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export async function contributorsPage(view, _params, query) {
  const offset = Number(query.offset || 0);
  const everyone = await get("/contributors", { limit: 50, offset });
  const input = el("input", { id: "address", name: "address", placeholder: "0x… (40 hex digits)", autocomplete: "off", spellcheck: "false", class: "wide" });
  const status = el("p", { class: "muted", role: "status" });
  show(
    view,
    el("h1", {}, "Contributors"),
    el(
      "form",
      {
        class: "search",
        onsubmit: (event) => {
          event.preventDefault();
          const address = input.value.trim();
          if (!ADDRESS.test(address)) {
            show(status, "An address is 0x followed by 40 hexadecimal digits.");
            return;
          }
          location.hash = route(["contributors", address]);
        },
      },
      input,
      el("button", { type: "submit" }, "Show impact"),
    ),
    status,
    el("p", { class: "muted", id: "contributor-count" }, `${everyone.total} contributor${everyone.total === 1 ? "" : "s"}, the largest accepted gain the service measured first`),
    everyone.items.length
      ? table(
          ["Address", "Contributions", "Models", "Accepted", "Measured gain", "Claimed gain", "Last"],
          everyone.items.map((c) =>
            el(
              "tr",
              { "data-address": c.address },
              el("td", {}, link(c.address, ["contributors", c.address])),
              el("td", { class: "num" }, number(c.contributions)),
              el("td", { class: "num" }, number(c.models_improved)),
              el("td", { class: "num" }, number(c.deltaone_accepted)),
              el("td", { class: "num measured" }, points(c.measured_accepted_gain_pp)),
              el("td", { class: "num claimed" }, points(c.claimed_accepted_gain_pp)),
              el("td", {}, when(c.last_contribution_at)),
            ),
          ),
          { id: "contributors" },
        )
      : el("p", {}, "No contribution yet."),
    pager(everyone, (next) => route(["contributors"], { offset: next })),
  );
}

export async function contributorPage(view, { address }, query) {
  const offset = Number(query.offset || 0);
  const [impact, contributions] = await Promise.all([
    get(path("contributors", address, "impact")),
    get(path("contributors", address, "contributions"), { limit: 50, offset }),
  ]);
  show(
    view,
    el("h1", {}, "Contributor ", el("code", {}, impact.address)),
    el(
      "div",
      { class: "tiles", id: "impact" },
      tile("Contributions", number(impact.contributions)),
      tile("Models improved", number(impact.models_improved)),
      tile("DeltaOnes accepted", number(impact.deltaone_accepted)),
      tile("Weighted gain", points(impact.weighted_gain_pp)),
      tile("Accepted weighted gain", points(impact.accepted_weighted_gain_pp)),
      tile("Measured, accepted", points(impact.measured.accepted_weighted_gain_pp)),
      tile("Claimed, accepted", points(impact.claimed.accepted_weighted_gain_pp)),
    ),
    el("p", { class: "muted" }, impact.first_contribution_at ? `From ${when(impact.first_contribution_at)} to ${when(impact.last_contribution_at)}` : "No contribution yet."),
    el("h2", {}, "By model"),
    table(
      ["Model", "Versions", "Weighted gain", "DeltaOnes accepted"],
      impact.models.map((model) =>
        el("tr", {}, el("td", {}, link(model.model, ["models", model.model])), el("td", { class: "num" }, number(model.versions)), el("td", { class: "num" }, points(model.weighted_gain_pp)), el("td", { class: "num" }, number(model.deltaone_accepted))),
      ),
      { id: "impact-by-model" },
    ),
    el("h2", {}, "Contributions"),
    table(
      ["Model", "Version", "Share", "Gain", "Basis", "DeltaOne", "Attestation", "When"],
      contributions.items.map((item) =>
        el(
          "tr",
          {},
          el("td", {}, link(item.model, ["models", item.model])),
          el("td", {}, link(`v${item.version}`, ["models", item.model, "lineage"], { version: item.version })),
          el("td", { class: "num" }, `${item.weight_bps / 100}%`),
          el("td", { class: "num" }, points(item.gain_pp)),
          el("td", {}, item.basis ?? "–"),
          el("td", {}, item.deltaone_accepted === null ? "–" : el("span", { class: item.deltaone_accepted ? "badge good" : "badge bad" }, item.deltaone_accepted ? "accepted" : "rejected")),
          el("td", {}, item.attestation_id ? link(short(item.attestation_id), ["attestations", item.attestation_id]) : "–"),
          el("td", {}, when(item.created_at)),
        ),
      ),
      { id: "contributions" },
    ),
    pager(contributions, (next) => route(["contributors", address], { offset: next })),
  );
}

export async function attestationPage(view, { id }) {
  const attestation = await get(path("attestations", id));
  show(
    view,
    el("h1", {}, "Attestation"),
    el("p", {}, el("code", { class: "wrap" }, attestation.id)),
    el("p", {}, "For ", link(`${attestation.model} v${attestation.version}`, ["models", attestation.model, "lineage"], { version: attestation.version }), `, signed ${when(attestation.created_at)}`),
    verifier(attestation.id, attestation),
    el("h2", {}, "Statement"),
    el("pre", { class: "statement" }, JSON.stringify(attestation.statement, null, 2)),
    el("h2", {}, "Envelope (DSSE)"),
    el("pre", { class: "statement" }, JSON.stringify(attestation.envelope, null, 2)),
  );
}

/** A button that asks the service to verify an attestation's signed envelope, and the answer. */
export function verifier(id, known) {
  const result = el("div", { class: "verification", role: "status" });
  const button = el(
    "button",
    {
      type: "button",
      class: "verify",
      onclick: async () => {
        show(result, el("span", { class: "muted" }, "Verifying…"));
        try {
          const attestation = known || (await get(path("attestations", id)));
          const verdict = await post("/attestations/verify", { envelope: attestation.envelope });
          const good = verdict.valid && verdict.matches_record;
          const badge = good ? "signature valid" : verdict.valid ? "valid signature, not a recorded attestation" : "not valid";
          show(
            result,
            el("span", { class: good ? "badge good" : "badge bad", "data-valid": String(verdict.valid) }, badge),
            verdict.valid ? ` signed by key ${verdict.keyid}` : "",
            good ? ", matches the recorded attestation" : "",
            verdict.reason ? el("span", { class: "muted" }, ` (${verdict.reason})`) : null,
          );
        } catch (error) {
          show(result, problem(error));
        }
      },
    },
    "Verify signature",
  );
  return el("div", { class: "verify-block" }, button, result);
}

function tile(label, value) {
  return el("div", { class: "tile" }, el("div", { class: "tile-value" }, value), el("div", { class: "tile-label" }, label));
}
