"""MkDocs hook: the REST reference page is rendered at build time from the committed
`openapi.json` (the contract a test keeps equal to the app), so it can never drift from the
server and needs nothing from the internet to display."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MARKER = "<!-- rest-reference -->"
CONTRACT = Path(__file__).resolve().parents[2] / "openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render(json.loads(CONTRACT.read_text())))


def render(document: dict[str, Any]) -> str:
    by_tag: dict[str, list[str]] = {}
    for path, methods in document["paths"].items():
        for method in METHODS:
            if method in methods:
                operation = methods[method]
                tag = (operation.get("tags") or ["service"])[0]
                by_tag.setdefault(tag, []).append(_operation(method, path, operation))
    out = [f"Version {document['info']['version']} of the contract.", ""]
    for tag in sorted(by_tag):
        out += [f"## {tag.replace('-', ' ').replace('_', ' ').capitalize()}", "", *by_tag[tag]]
    out += ["## Schemas", ""]
    for name, schema in sorted(document["components"]["schemas"].items()):
        out += _schema(name, schema)
    return "\n".join(out)


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`", ""]
    lines += [operation.get("description") or operation.get("summary", ""), ""]
    scopes = ", ".join(
        scope for requirement in operation.get("security", []) for scope in requirement
    )
    lines += [
        f"Operation id `{operation['operationId']}`"
        + (f"; needs a key ({scopes})" if scopes else "; no key"),
        "",
    ]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for parameter in parameters:
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} "
                f"| {_type(parameter.get('schema', {}))} "
                f"| {'yes' if parameter.get('required') else 'no'} "
                f"| {_cell(parameter.get('description', ''))} |"
            )
        lines.append("")
    body = operation.get("requestBody")
    if body:
        kinds = ", ".join(
            f"`{media}` {_type(content.get('schema', {}))}"
            for media, content in body["content"].items()
        )
        lines += [f"Body: {kinds}", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, response in operation["responses"].items():
        content = response.get("content", {})
        kinds = ", ".join(f"`{media}` {_type(c.get('schema', {}))}" for media, c in content.items())
        lines.append(f"| {status} | {_cell(response.get('description', ''))} | {kinds} |")
    lines.append("")
    return "\n".join(lines)


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", "", _cell(schema.get("description", "")), ""]
    if "enum" in schema:
        return [*lines, "One of: " + ", ".join(f"`{value}`" for value in schema["enum"]), ""]
    properties = schema.get("properties", {})
    if not properties:
        return lines
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, spec in properties.items():
        lines.append(
            f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} "
            f"| {_cell(spec.get('description', ''))} |"
        )
    return [*lines, ""]


def _type(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in spec:
            return " or ".join(_type(option) for option in spec[combinator])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"array of {_type(spec.get('items', {}))}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"map of {_type(spec['additionalProperties'])}"
    if "format" in spec:
        return f"{kind} ({spec['format']})"
    return str(kind)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
