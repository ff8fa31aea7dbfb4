// The public /api/v1 API and the key it is called with. The key lives in sessionStorage (this tab,
// until it closes), goes out only as an Authorization header, never in a URL, and no cookie is
// ever sent (credentials: "omit"), so there is nothing for another site to ride on.

const BASE = "/api/v1";
const STORED = "hokusai.console.key";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.code = (problem && problem.code) || null;
    this.problem = problem;
  }
}

// What a scope allows, as the service reads it (app/core/security.py, IMPLIED_SCOPES).
const IMPLIED = {
  read: ["read"],
  predict: ["predict"],
  write: ["write", "read"],
  benchmark: ["benchmark", "read"],
  admin: ["read", "predict", "write", "benchmark", "admin"],
};

export const session = {
  key: sessionStorage.getItem(STORED),
  name: null,
  scopes: [],
  can(scope) {
    return this.scopes.some((held) => (IMPLIED[held] || [held]).includes(scope));
  },
};

/** Check `key` with the service and keep it for this tab; an ApiError when it is refused. */
export async function signIn(key) {
  const current = await call("GET", "/api-keys/current", { key });
  sessionStorage.setItem(STORED, key);
  Object.assign(session, { key, name: current.name, scopes: current.scopes });
  return current;
}

export function signOut() {
  sessionStorage.removeItem(STORED);
  Object.assign(session, { key: null, name: null, scopes: [] });
}

export function get(path, query) {
  return call("GET", path, { query });
}

export function post(path, body) {
  return call("POST", path, { body });
}

export function patch(path, body) {
  return call("PATCH", path, { body });
}

/** A file the API answers (an artifact), saved by the browser under `name`. */
export async function download(where, name) {
  const response = await fetch(BASE + where, {
    headers: { Authorization: `Bearer ${session.key}` },
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    throw new ApiError(response.status, problem);
  }
  const url = URL.createObjectURL(await response.blob());
  const anchor = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return response.headers.get("X-Artifact-Digest");
}

async function call(method, where, { key = session.key, query, body } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + where + queryString(query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A path from its segments, each encoded (names may hold any character). */
export function path(...segments) {
  return "/" + segments.map((part) => encodeURIComponent(String(part))).join("/");
}

/** `?name=value&...` of the parameters that have a value, or "" when none has. */
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
