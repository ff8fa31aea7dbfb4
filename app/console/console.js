// The console's shell: sign-in, the header, and the routes (the part of the URL after `#`, so the
// service serves one page and the key never appears in a URL or a server log).

import { ApiError, session, signIn, signOut } from "./api.js";
import { el, problem, show } from "./dom.js";
import { abTestPage, abTestsPage } from "./ab_tests.js";
import { attestationPage, contributorPage, contributorsPage } from "./contributors.js";
import { lineagePage } from "./lineage.js";
import { modelPage, modelsPage, versionPage } from "./models.js";

const main = document.getElementById("main");

// Each route: a pattern of segments (":name" takes one) and the page that draws it.
const ROUTES = [
  [["models"], modelsPage],
  [["models", ":name"], modelPage],
  [["models", ":name", "lineage"], lineagePage],
  [["models", ":name", "versions", ":version"], versionPage],
  [["ab-tests"], abTestsPage],
  [["ab-tests", ":id"], abTestPage],
  [["contributors"], contributorsPage],
  [["contributors", ":address"], contributorPage],
  [["attestations", ":id"], attestationPage],
];

function match(hash) {
  const [pathPart, search = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  let segments;
  try {
    segments = pathPart ? pathPart.split("/").map(decodeURIComponent) : ["models"];
  } catch {
    return null; // a malformed %-escape: no page has this address
  }
  const query = Object.fromEntries(new URLSearchParams(search));
  for (const [pattern, page] of ROUTES) {
    if (pattern.length !== segments.length) continue;
    const params = {};
    if (pattern.every((part, i) => (part.startsWith(":") ? (params[part.slice(1)] = segments[i]) : part === segments[i]))) {
      return { page, params, query };
    }
  }
  return null;
}

let drawing = 0;

async function render() {
  const mine = ++drawing; // a later navigation wins over a slower earlier one
  header();
  if (!session.name) {
    signInPage();
    return;
  }
  const found = match(location.hash || "#/models");
  if (!found) {
    show(main, el("h1", {}, "Not found"), el("p", {}, "No console page has this address."));
    return;
  }
  const view = el("section", { class: "page" });
  show(main, el("p", { class: "muted" }, "Loading…"));
  try {
    await found.page(view, found.params, found.query, () => render());
    if (mine === drawing) show(main, view);
  } catch (error) {
    if (mine !== drawing) return;
    if (error instanceof ApiError && error.status === 401) {
      signOut();
      signInPage("This key is unknown or has been revoked. Sign in with another.");
      header();
      return;
    }
    show(main, problem(error));
  }
}

function header() {
  document.getElementById("nav").hidden = !session.name;
  const who = document.getElementById("who");
  if (!session.name) {
    show(who);
    return;
  }
  show(
    who,
    el("span", { class: "key-name" }, session.name),
    " ",
    session.scopes.map((scope) => el("span", { class: "scope" }, scope)),
    " ",
    el("button", { type: "button", class: "link", onclick: () => { signOut(); render(); } }, "Sign out"),
  );
}

function signInPage(message) {
  const input = el("input", { id: "api-key", type: "password", name: "key", autocomplete: "off", spellcheck: "false", placeholder: "hk_…", required: true });
  const status = el("p", { id: "sign-in-status", class: message ? "error" : "muted", role: "status" }, message || "The key stays in this tab and is forgotten when the tab closes.");
  const form = el(
    "form",
    {
      class: "sign-in",
      onsubmit: async (event) => {
        event.preventDefault();
        show(status, "Checking…");
        status.className = "muted";
        try {
          await signIn(input.value.trim());
        } catch (error) {
          status.className = "error";
          show(status, error instanceof ApiError && error.status === 401 ? "This key is unknown or has been revoked." : problem(error));
          return;
        }
        input.value = "";
        if (!session.can("read")) {
          const scopes = session.scopes.join(", ");
          signOut();
          status.className = "error";
          show(status, `This key has the scopes ${scopes}: the console needs 'read'.`);
          return;
        }
        render();
      },
    },
    el("label", { for: "api-key" }, "API key"),
    input,
    el("button", { type: "submit" }, "Sign in"),
    status,
  );
  show(main, el("section", { class: "page narrow" }, el("h1", {}, "Sign in"), form));
  input.focus();
}

async function start() {
  window.addEventListener("hashchange", render);
  let trouble = null;
  if (session.key) {
    try {
      await signIn(session.key);
    } catch (error) {
      // A refused key is forgotten; a service that is down keeps it for the next reload.
      if (error instanceof ApiError && error.status === 401) signOut();
      else trouble = `The service could not check the key: ${error.message}. Reload to try again.`;
    }
  }
  if (trouble) {
    header();
    signInPage(trouble);
  } else {
    await render();
  }
  document.body.dataset.ready = "true"; // the first page is drawn (tests and benches wait for it)
  performance.mark("console-ready");
}

start();
