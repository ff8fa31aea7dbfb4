// A/B tests: the list, and one test's results as a picture (each variant's mean with its interval
// against the control's, each treatment's lift with its interval against zero), the verdict, the
// sample-ratio warning, and start/pause/resume/stop/promote for keys with `write`.

import { get, path, post, session } from "./api.js";
import { el, link, number, pager, percent, problem, route, show, svg, table, when } from "./dom.js";

const STATUSES = ["draft", "running", "paused", "stopped"];
const VERDICTS = {
  insufficient_data: "Not enough data yet: every variant needs the minimum sample size.",
  treatment_better: "A treatment beats the control.",
  control_better: "The control beats a treatment.",
  no_significant_difference: "No significant difference.",
};
// What each action needs the test to be (the service checks again).
const ACTIONS = [
  ["start", ["draft"]],
  ["pause", ["running"]],
  ["resume", ["paused"]],
  ["stop", ["running", "paused"]],
];

export async function abTestsPage(view, _params, query) {
  const page = await get("/ab-tests", { status: query.status, model: query.model, limit: 50, offset: query.offset || 0 });
  const status = el(
    "select",
    { name: "status", onchange: (event) => (location.hash = route(["ab-tests"], { ...query, offset: 0, status: event.target.value })) },
    el("option", { value: "" }, "any status"),
    STATUSES.map((value) => el("option", { value, selected: value === query.status }, value)),
  );
  show(
    view,
    el("h1", {}, "A/B tests"),
    el("p", { class: "controls" }, el("label", {}, "Status ", status), query.model ? [" of ", link(query.model, ["models", query.model])] : null),
    page.items.length
      ? table(
          ["Name", "Model", "Status", "Variants", "Metric", "Created", "Winner"],
          page.items.map((test) =>
            el(
              "tr",
              { "data-test": test.id },
              el("td", {}, link(test.name, ["ab-tests", test.id])),
              el("td", {}, link(test.model, ["models", test.model])),
              el("td", {}, el("span", { class: `status ${test.status}` }, test.status)),
              el("td", {}, test.variants.map((variant) => variant.name).join(", ")),
              el("td", {}, test.metric.name),
              el("td", {}, when(test.created_at)),
              el("td", {}, test.winner || "–"),
            ),
          ),
          { id: "ab-tests" },
        )
      : el("p", {}, "No A/B test here."),
    pager(page, (offset) => route(["ab-tests"], { ...query, offset })),
  );
}

export async function abTestPage(view, { id }, _query, redraw) {
  const [test, results] = await Promise.all([get(path("ab-tests", id)), get(path("ab-tests", id, "results"))]);
  const comparisons = new Map(results.comparisons.map((comparison) => [comparison.variant, comparison]));
  const control = results.variants[0];
  show(
    view,
    el("h1", {}, test.name, " ", el("span", { class: `status ${test.status}`, id: "test-status" }, test.status)),
    el(
      "p",
      { class: "muted" },
      "Model ",
      link(test.model, ["models", test.model]),
      ` · metric ${test.metric.name} (${test.metric.kind}, ${test.metric.direction.replaceAll("_", " ")})`,
      ` · confidence ${percent(test.confidence_level)} · minimum ${number(test.minimum_sample_size)} per variant`,
      test.winner ? ` · promoted ${test.winner}` : "",
    ),
    el("div", { class: `verdict ${results.verdict}`, id: "verdict", "data-verdict": results.verdict }, el("strong", {}, results.verdict.replaceAll("_", " ")), " ", VERDICTS[results.verdict] || ""),
    results.srm.flagged
      ? el("div", { class: "error", id: "srm", role: "alert" }, el("strong", {}, "Sample ratio mismatch. "), `Exposures do not follow the weights (p = ${results.srm.p_value.toExponential(2)}): the assignment or the logging is broken, so the results cannot be trusted.`)
      : null,
    session.can("write") ? actions(test, results, redraw) : null,
    el("h2", {}, `Mean ${test.metric.name} per variant`),
    el("p", { class: "muted" }, `Each bar is the mean's ${percent(test.confidence_level)} interval; the band is the control's.`),
    meansChart(results.variants),
    results.comparisons.length ? [el("h2", {}, "Lift against the control"), liftChart(results.comparisons)] : null,
    el("h2", {}, "Numbers"),
    table(
      ["Variant", "Version", "Weight", "Exposures", "n", "Mean", "Interval", "Lift", "Lift interval", "p-value", "Chance to beat control"],
      results.variants.map((variant) => {
        const comparison = comparisons.get(variant.name);
        return el(
          "tr",
          { "data-variant": variant.name },
          el("th", { scope: "row" }, variant.name, variant === control && variant.name !== "control" ? el("span", { class: "muted" }, " (control)") : null),
          el("td", {}, variant.version === null ? "–" : `v${variant.version}`),
          el("td", { class: "num" }, percent(variant.weight)),
          el("td", { class: "num exposures" }, number(variant.exposures)),
          el("td", { class: "num n" }, number(variant.n)),
          el("td", { class: "num mean" }, number(variant.mean)),
          el("td", { class: "num ci" }, interval(variant.ci_low, variant.ci_high)),
          el("td", { class: "num lift" }, comparison ? number(comparison.absolute_lift) : "–"),
          el("td", { class: "num lift-ci" }, comparison ? interval(comparison.ci_low, comparison.ci_high) : "–"),
          el("td", { class: "num p" }, comparison ? probability(comparison.p_value) : "–"),
          el("td", { class: "num chance" }, comparison ? percent(comparison.chance_to_beat_control) : "–"),
        );
      }),
      { id: "variants" },
    ),
  );
}

function probability(value) {
  if (value === null) return "–";
  return value < 0.0001 ? value.toExponential(1) : value.toFixed(4);
}

function interval(low, high) {
  return low === null || high === null ? "–" : `[${number(low)}, ${number(high)}]`;
}

function actions(test, results, redraw) {
  const status = el("span", { role: "status" });
  const act = (name, body) => async () => {
    try {
      await post(path("ab-tests", test.id, name), body && body());
      redraw();
    } catch (error) {
      show(status, problem(error));
    }
  };
  const buttons = ACTIONS.filter(([, from]) => from.includes(test.status)).map(([name]) =>
    el("button", { type: "button", class: name === "stop" ? "danger" : "", "data-action": name, onclick: act(name) }, name),
  );
  let promote = null;
  // Promoting is for a started test whose winner is not chosen yet; the choice offered first is
  // the treatment most likely to beat the control, never the control itself.
  if (test.status !== "draft" && !test.winner) {
    const best = [...results.comparisons].sort((a, b) => (b.chance_to_beat_control ?? -1) - (a.chance_to_beat_control ?? -1))[0];
    const preferred = best ? best.variant : (test.variants[1] || test.variants[0]).name;
    const variant = el(
      "select",
      { name: "variant", "aria-label": "variant to promote" },
      test.variants.map((v, i) => el("option", { value: v.name, selected: v.name === preferred }, i === 0 ? `${v.name} (control)` : v.name)),
    );
    const force = el("input", { type: "checkbox", name: "force", id: "promote-force" });
    promote = el(
      "span",
      { class: "promote" },
      el("span", { class: "muted" }, "Promote "),
      variant,
      el("button", { type: "button", "data-action": "promote", onclick: act("promote", () => ({ variant: variant.value, force: force.checked })) }, "promote to production"),
      el("label", { class: "check", for: "promote-force" }, force, " even if the results do not favour it"),
    );
  }
  return el("div", { class: "action write", id: "test-actions" }, buttons, promote, status);
}

/** Rows of means with their intervals on one axis, the control's interval as a band behind. */
function meansChart(variants) {
  const rows = variants.map((variant) => ({ label: variant.name, value: variant.mean, low: variant.ci_low, high: variant.ci_high }));
  const control = rows[0];
  return chart(rows, control.low === null ? null : [control.low, control.high], "means");
}

function liftChart(comparisons) {
  const rows = comparisons.map((comparison) => ({ label: comparison.variant, value: comparison.absolute_lift, low: comparison.ci_low, high: comparison.ci_high, significant: comparison.significant }));
  return chart(rows, null, "lifts", 0);
}

function chart(rows, band, name, zero = null) {
  const left = 130;
  const right = 30;
  const width = 640;
  const line = 34;
  const top = 10;
  const height = top + rows.length * line + 30;
  const values = rows.flatMap((row) => [row.low, row.high, row.value]).concat(band || [], zero === null ? [] : [zero]).filter((value) => value !== null && Number.isFinite(value));
  if (!values.length) return el("p", { class: "muted" }, "No outcome yet.");
  let min = Math.min(...values);
  let max = Math.max(...values);
  const pad = (max - min || Math.abs(max) || 1) * 0.08;
  min -= pad;
  max += pad;
  const scale = (value) => left + ((value - min) / (max - min)) * (width - left - right);
  const ticks = Array.from({ length: 5 }, (_, i) => min + ((max - min) * i) / 4);
  return svg(
    "svg",
    { class: `chart ${name}`, width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": name },
    band ? svg("rect", { class: "band", x: scale(band[0]), y: top, width: Math.max(1, scale(band[1]) - scale(band[0])), height: rows.length * line }) : null,
    zero === null
      ? null
      : [
          svg("line", { class: "zero", x1: scale(zero), x2: scale(zero), y1: top, y2: top + rows.length * line }),
          svg("text", { class: "tick", x: scale(zero) + 4, y: top + 10 }, "control"),
        ],
    ticks.map((tick) => [
      svg("line", { class: "tick", x1: scale(tick), x2: scale(tick), y1: top + rows.length * line, y2: top + rows.length * line + 5 }),
      svg("text", { class: "tick", x: scale(tick), y: top + rows.length * line + 18, "text-anchor": "middle" }, number(tick, 3)),
    ]),
    rows.map((row, i) => {
      const y = top + i * line + line / 2;
      const drawn = row.low !== null && row.high !== null;
      return svg(
        "g",
        { class: `row${row.significant ? " significant" : ""}`, "data-variant": row.label },
        svg("text", { class: "label", x: left - 10, y: y + 4, "text-anchor": "end" }, row.label),
        drawn
          ? [
              svg("line", { class: "bar", x1: scale(row.low), x2: scale(row.high), y1: y, y2: y }),
              svg("line", { class: "cap", x1: scale(row.low), x2: scale(row.low), y1: y - 6, y2: y + 6 }),
              svg("line", { class: "cap", x1: scale(row.high), x2: scale(row.high), y1: y - 6, y2: y + 6 }),
            ]
          : null,
        row.value === null ? null : svg("circle", { class: "point", cx: scale(row.value), cy: y, r: 4.5 }),
      );
    }),
  );
}
