// Building the page. Every text from the API goes in as a text node (never as HTML): model names,
// tags and descriptions are user input. The page's policy also requires Trusted Types, so an
// assignment to innerHTML anywhere would throw instead of parsing markup.

import { ApiError, path, queryString } from "./api.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: `el("a", {href: "#/models", class: "x"}, "text", otherNode)`. */
export function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, the same way. */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace what `parent` shows. */
export function show(parent, ...children) {
  parent.replaceChildren();
  return build(parent, {}, children);
}

/** A link inside the console: `#/` followed by path segments, each encoded. */
export function link(text, segments, query, attrs) {
  return el("a", { href: route(segments, query), ...attrs }, text);
}

export function route(segments, query) {
  return "#" + path(...segments) + queryString(query);
}

export function table(headings, rows, attrs) {
  return el(
    "table",
    attrs,
    el("thead", {}, el("tr", {}, headings.map((heading) => el("th", {}, heading)))),
    el("tbody", {}, rows),
  );
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export function number(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  return Number.isInteger(value) ? value.toLocaleString("en") : Number(value).toFixed(digits);
}

export function points(value) {
  if (value === null || value === undefined) return "–";
  return `${value > 0 ? "+" : ""}${Number(value).toFixed(2)} pp`;
}

export function percent(value) {
  if (value === null || value === undefined) return "–";
  return `${(value * 100).toFixed(1)}%`;
}

/** An error from the API as the page shows it: its message and code, as text. */
export function problem(error) {
  if (error instanceof ApiError) {
    const scope = error.status === 403 ? " (the key lacks a scope this page needs)" : "";
    return el("div", { class: "error", role: "alert" }, el("strong", {}, `${error.status}${scope}`), " ", error.message, error.code ? [" ", el("code", {}, error.code)] : null);
  }
  return el("div", { class: "error", role: "alert" }, String(error && error.message ? error.message : error));
}

/** A long id, shortened for a table (the link keeps it whole). */
export function short(id) {
  return id.length > 19 ? `${id.slice(0, 19)}…` : id;
}

/** Links to the previous and next pages of a `{items, total, limit, offset}` page. */
export function pager(page, to) {
  const links = [];
  if (page.offset > 0) links.push(el("a", { href: to(Math.max(0, page.offset - page.limit)) }, "← previous"));
  if (page.offset + page.items.length < page.total) links.push(el("a", { href: to(page.offset + page.limit) }, "next →"));
  return links.length ? el("nav", { class: "pager" }, links) : null;
}
