"""Lineage of a model's versions, as data or as Mermaid / DOT text."""

from __future__ import annotations

from hokusai._base import Call, model, path, query
from hokusai._resource import C, Resource, method
from hokusai.types import Lineage as LineageGraph


def _params(
    version: int | None, direction: str, depth: int | None, format: str
) -> dict[str, object]:
    return query(version=version, direction=direction, depth=depth, format=format)


def get(
    name: str, *, version: int | None = None, direction: str = "ancestors", depth: int | None = None
) -> Call[LineageGraph]:
    """Nodes (versions) and edges (parent to child, with the gain and contributors)."""
    params = _params(version, direction, depth, "json")
    return Call(
        "GET", path("models", name, "lineage"), model(LineageGraph), params=params, repeatable=True
    )


def mermaid(
    name: str, *, version: int | None = None, direction: str = "ancestors", depth: int | None = None
) -> Call[str]:
    """The lineage as a Mermaid flowchart."""
    params = _params(version, direction, depth, "mermaid")
    return Call(
        "GET", path("models", name, "lineage"), lambda r: r.text, params=params, repeatable=True
    )


def dot(
    name: str, *, version: int | None = None, direction: str = "ancestors", depth: int | None = None
) -> Call[str]:
    """The lineage as Graphviz DOT."""
    params = _params(version, direction, depth, "dot")
    return Call(
        "GET", path("models", name, "lineage"), lambda r: r.text, params=params, repeatable=True
    )


class Lineage(Resource[C]):
    get = method(get)
    mermaid = method(mermaid)
    dot = method(dot)
