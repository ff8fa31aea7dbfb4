#!/usr/bin/env python3
"""Write `src/hokusai/types.py` from the service's committed `openapi.json`: one pydantic model
per schema a successful response can return, tolerant of fields the server adds later. A test
runs this and fails when the committed file differs (`python sdk/scripts/generate_types.py`).

Enumerations become `str` (a value the server adds later must not break old clients); times become
`datetime`; nothing is validated beyond types (the server's 422 is the one authority)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SDK = Path(__file__).resolve().parent.parent
CONTRACT = SDK.parent / "openapi.json"
TARGET = SDK / "src" / "hokusai" / "types.py"

# The service's schema names, as the SDK's users meet them (CLIENT.md).
NAMES = {
    "MlModelRead": "Model",
    "VersionRead": "Version",
    "AliasRead": "AliasMove",
    "AliasEventRead": "AliasEvent",
    "ApiKeyRead": "ApiKey",
    "ApiKeyCreated": "CreatedKey",
    "AbTestRead": "AbTest",
    "Results": "AbResults",
    "AttestationRead": "Attestation",
    "ExperimentRead": "Experiment",
    "RunRead": "Run",
    "Eip712Read": "Eip712",
    "ArtifactRead": "Artifact",
    "ContributorRead": "Contributor",
    "MetricDeltaRead": "MetricDelta",
    "DeltaOneRead": "DeltaOne",
    "VariantRead": "Variant",
}

# Views the client adds (`.to_pandas()`, in `_frames.py`).
MIXINS = {"Lineage": "LineageFrame", "AbResults": "ResultsFrame"}

# What the client adds from the response's headers (not part of the body).
CLIENT_FIELDS = {
    "Prediction": [
        "# From the response: X-Cache for a single row (HIT or MISS), and X-Request-ID.",
        "cache_status: str | None = None",
        "request_id: str | None = None",
    ],
}


def main() -> int:
    document = json.loads(CONTRACT.read_text())
    schemas: dict[str, Any] = document["components"]["schemas"]
    wanted = reachable(document, schemas)
    out = [
        '"""Response models, generated from the service\'s openapi.json by',
        "`sdk/scripts/generate_types.py`: do not edit by hand (a test checks they are current).",
        "Attributes are the API's field names; fields the server adds later are kept, not",
        'refused."""',
        "",
        "from __future__ import annotations",
        "",
        "from datetime import datetime",
        "from typing import Any",
        "",
        "from pydantic import BaseModel, ConfigDict",
        "",
        f"from hokusai._frames import {', '.join(sorted(MIXINS.values()))}",
        "",
        "",
        "class _Response(BaseModel):",
        '    model_config = ConfigDict(extra="allow", populate_by_name=True)',
    ]
    for name in sorted(wanted, key=lambda n: NAMES.get(n, n)):
        schema = schemas[name]
        known = NAMES.get(name, name)
        bases = ", ".join(["_Response", *([MIXINS[known]] if known in MIXINS else [])])
        out += ["", "", f"class {known}({bases}):"]
        if schema.get("description"):
            summary = schema["description"].splitlines()[0].strip().replace('"', "'")
            out.append(f'    """{summary}"""')
            out.append("")
        required = set(schema.get("required", []))
        for field, spec in schema.get("properties", {}).items():
            annotation = python_type(spec, schemas)
            if field in required:
                out.append(f"    {field}: {annotation}")
            else:
                optional = annotation if annotation.endswith("| None") else f"{annotation} | None"
                out.append(f"    {field}: {optional} = None")
        out += [f"    {line}" for line in CLIENT_FIELDS.get(name, [])]
    text = "\n".join(out) + "\n"
    if "--check" in sys.argv:
        return 0 if TARGET.read_text() == text else 1
    TARGET.write_text(text)
    return 0


def reachable(document: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    """Object schemas a 2xx response can hold, pages unwrapped to their items."""
    found: set[str] = set()
    stack: list[Any] = [
        response
        for path in document["paths"].values()
        for operation in path.values()
        for status, response in operation.get("responses", {}).items()
        if status.startswith("2")
    ]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[1]
                if name not in found and schemas[name].get("type") == "object":
                    if not name.endswith("Page"):
                        found.add(name)
                    stack.append(schemas[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def python_type(spec: dict[str, Any], schemas: dict[str, Any]) -> str:
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[1]
        target = schemas[name]
        if target.get("type") == "object":
            return NAMES.get(name, name)
        return python_type(target, schemas)
    if "anyOf" in spec or "oneOf" in spec:
        options = [python_type(option, schemas) for option in spec.get("anyOf", spec.get("oneOf"))]
        unique = list(dict.fromkeys(o for o in options if o != "None"))
        joined = " | ".join(unique) if unique else "Any"
        return f"{joined} | None" if "None" in options else joined
    kind = spec.get("type")
    if kind == "string":
        return "datetime" if spec.get("format") == "date-time" else "str"
    if kind == "integer":
        return "int"
    if kind == "number":
        return "float"
    if kind == "boolean":
        return "bool"
    if kind == "null":
        return "None"
    if kind == "array":
        return f"list[{python_type(spec.get('items', {}), schemas)}]"
    if kind == "object":
        values = spec.get("additionalProperties")
        if isinstance(values, dict) and values:
            return f"dict[str, {python_type(values, schemas)}]"
        return "dict[str, Any]"
    return "Any"


if __name__ == "__main__":
    sys.exit(main())
