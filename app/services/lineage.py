"""Lineage: the graph of versions, parent -> child, with each edge's gain,
decision, contributors and attestation; as JSON, Mermaid or Graphviz DOT.

Rules: docs/reference/specification.md#lineage."""

from __future__ import annotations

from decimal import localcontext
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.vocabulary import Family, MetricDirection
from app.db.models import MlModel, ModelVersion
from app.db.repositories.lineage import LineageRepository, LineageRow
from app.db.repositories.ml_models import VersionRepository
from app.rules.contributors import checksummed
from app.rules.deltas import exact, rounded
from app.schemas.lineage import Lineage, LineageDirection, LineageEdge
from app.services.attestations import rfc3339


class LineageService:
    def __init__(self, session: AsyncSession) -> None:
        self.lineage = LineageRepository(session)
        self.versions = VersionRepository(session)

    async def graph(
        self,
        model: MlModel,
        version: ModelVersion | None,
        direction: LineageDirection,
        depth: int,
    ) -> dict[str, Any]:
        """The graph as a JSON-ready dict in the shape of the `Lineage` schema."""
        cumulative = None
        if version is None:
            rows = await self.lineage.whole(model.id)
        else:
            walked = await self.lineage.walk(
                version.id,
                ancestors=direction != LineageDirection.DESCENDANTS,
                descendants=direction != LineageDirection.ANCESTORS,
                depth=depth,
            )
            root = next((row for row in walked if row.distance is None), None)
            end = next(row for row in walked if row.id == version.id)
            cumulative = _cumulative(root, end) if root is not None else None
            rows = [row for row in walked if row.distance is not None]
        numbers = {row.id: row.version for row in rows}
        children = [
            (row, numbers[row.parent_id])
            for row in rows
            if row.parent_id is not None and row.parent_id in numbers
        ]
        contributors = await self.versions.contributors([row.id for row, _ in children])
        # Plain JSON-ready dicts in the shape of `Lineage`: a graph can hold thousands of nodes,
        # and building a pydantic object per node and edge costs more than the query.
        return {
            "model": model.name,
            "version": version.version if version else None,
            "primary_metric": model.benchmark_metric,
            "nodes": [
                {
                    "version": row.version,
                    "kind": row.kind,
                    "primary_metric_value": row.primary_metric_value,
                    "deltaone_accepted": row.deltaone_accepted,
                    "attestation_id": row.attestation_id,
                    "created_at": rfc3339(row.created_at),
                }
                for row in rows
            ],
            "edges": [
                {
                    "parent": parent,
                    "child": row.version,
                    "gain_pp": float(row.deltaone_gain_pp)
                    if row.deltaone_gain_pp is not None
                    else None,
                    "deltaone_accepted": row.deltaone_accepted,
                    "reason": row.deltaone_reason,
                    "basis": row.deltaone_basis,
                    "contributors": [
                        {"address": checksummed(c.address), "weight_bps": c.weight_bps}
                        for c in contributors[row.id]
                    ],
                    "attestation_id": row.attestation_id,
                }
                for row, parent in children
            ],
            "cumulative_gain_pp": cumulative,
        }


def _cumulative(root: LineageRow, version: LineageRow) -> float | None:
    """Direction-aware gain of `version` over the root baseline on the primary metric."""
    start, end = root.primary_metric_value, version.primary_metric_value
    if start is None or end is None:
        return None
    with localcontext() as context:
        context.prec = 50
        gain = exact(end) - exact(start)
        if version.benchmark_direction == MetricDirection.LOWER_IS_BETTER:
            gain = -gain
        if version.benchmark_family == Family.PROPORTION:
            return rounded(gain * 100)
        return rounded(gain / abs(exact(start)) * 100) if start else None


def mermaid(lineage: Lineage) -> str:
    lines = ["graph TD"]
    for node in lineage.nodes:
        mark = {True: " ✓", False: " ✗", None: ""}[node.deltaone_accepted]
        value = (
            f"{lineage.primary_metric} {node.primary_metric_value:g}"
            if node.primary_metric_value is not None
            else ""
        )
        lines.append(f'  v{node.version}["v{node.version} {node.kind}{mark}<br/>{_escape(value)}"]')
    for edge in lineage.edges:
        label = _edge_label(edge)
        lines.append(f'  v{edge.parent} -->|"{_escape(label)}"| v{edge.child}')
    return "\n".join(lines) + "\n"


def dot(lineage: Lineage) -> str:
    lines = [f'digraph "{lineage.model}" {{', "  rankdir=TB;", "  node [shape=box];"]
    for node in lineage.nodes:
        value = (
            f"\\n{lineage.primary_metric}={node.primary_metric_value:g}"
            if node.primary_metric_value is not None
            else ""
        )
        style = ", style=bold" if node.deltaone_accepted else ""
        lines.append(f'  v{node.version} [label="v{node.version} {node.kind}{value}"{style}];')
    for edge in lineage.edges:
        lines.append(f'  v{edge.parent} -> v{edge.child} [label="{_edge_label(edge)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _edge_label(edge: LineageEdge) -> str:
    gain = f"{edge.gain_pp:+g} pp" if edge.gain_pp is not None else "n/a"
    verdict = "accepted" if edge.deltaone_accepted else (edge.reason or "")
    basis = f"({edge.basis})" if edge.basis else ""
    return " ".join(part for part in (gain, verdict, basis) if part)


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")
