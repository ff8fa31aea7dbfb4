"""`.to_pandas()`: a list of versions, contributions or A/B tests, a lineage, or A/B results as a
pandas DataFrame, which is how a data scientist looks at them in a notebook. pandas is imported
only when asked for (`pip install "hokusai-ml-platform[pandas]"`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def frame(records: Iterable[dict[str, Any]]) -> Any:
    """One row per record; nested fields flattened to dotted columns (`deltaone.accepted`)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            'to_pandas() needs pandas: pip install "hokusai-ml-platform[pandas]"'
        ) from exc
    return pd.json_normalize(list(records), sep=".")


class Listing(Iterator[M], Generic[M]):
    """Every item of a list, fetched page by page as it is read (a lazy iterator), or all at
    once as a DataFrame with `.to_pandas()`."""

    def __init__(self, items: Iterator[M]) -> None:
        self._items = items

    def __iter__(self) -> Listing[M]:
        return self

    def __next__(self) -> M:
        return next(self._items)

    def to_pandas(self) -> Any:
        """The items not read yet, one row each."""
        return frame(item.model_dump() for item in self)


class AsyncListing(AsyncIterator[M], Generic[M]):
    """`async for` over every item, fetched page by page; `await listing.to_pandas()`."""

    def __init__(self, items: AsyncIterator[M]) -> None:
        self._items = items

    def __aiter__(self) -> AsyncListing[M]:
        return self

    async def __anext__(self) -> M:
        return await anext(self._items)

    async def to_pandas(self) -> Any:
        """The items not read yet, one row each."""
        return frame([item.model_dump() async for item in self])


class LineageFrame:
    """`Lineage.to_pandas()`."""

    def to_pandas(self) -> Any:
        """One row per version, oldest first: its kind, metric value and decision, and how it
        came from its parent (`parent`, `gain_pp`, `reason`, `basis`, `contributors`)."""
        nodes: list[Any] = getattr(self, "nodes", [])
        edges: list[Any] = getattr(self, "edges", [])
        incoming = {edge.child: edge for edge in edges}
        rows = []
        for node in sorted(nodes, key=lambda n: n.version):
            edge = incoming.get(node.version)
            rows.append(
                {
                    **node.model_dump(),
                    "parent": edge.parent if edge else None,
                    "gain_pp": edge.gain_pp if edge else None,
                    "reason": edge.reason if edge else None,
                    "basis": edge.basis if edge else None,
                    "contributors": len(edge.contributors) if edge else 0,
                }
            )
        return frame(rows)


class ResultsFrame:
    """`AbResults.to_pandas()`."""

    def to_pandas(self) -> Any:
        """One row per variant: exposures, outcomes, mean and interval."""
        variants: list[Any] = getattr(self, "variants", [])
        return frame(variant.model_dump() for variant in variants)
