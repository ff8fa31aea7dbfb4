"""Predictions: the version is resolved first (so moving an alias takes
effect on the very next call), rows are looked up in the Redis cache in one round trip, only the
misses reach the model, in one call, and the answers go back in order. Redis trouble is a miss.

A process remembers the versions it resolved (`app/adapters/memory.py`) and checks them in the same
Redis round trip that looks up the rows: a cached prediction touches Postgres only when the
model's versions or aliases changed.

Rules: docs/reference/specification.md#predictions-and-the-cache."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from app.adapters.cache import Cache
from app.adapters.loader import ModelLoader, Target
from app.adapters.memory import Memo
from app.adapters.runners import Column
from app.core.config import Settings
from app.core.errors import (
    BatchTooLarge,
    ModelArchived,
    ModelNotFound,
    ValidationFailed,
    VersionArchived,
    VersionNotFound,
)
from app.core.metrics import Metrics
from app.core.vocabulary import PRODUCTION
from app.db.repositories.ml_models import alias_names, model_names, resolve_target
from app.schemas.predictions import CacheCounts, Prediction, PredictRequest
from app.services.prediction_keys import row_keys

log = logging.getLogger(__name__)

NUMBER_TYPES = {"double", "float"}
INTEGER_TYPES = {"long", "integer"}


def check_rows(rows: list[Any], columns: list[Column] | None) -> None:
    """422 naming the columns: missing, unexpected, or of the wrong type."""
    if _all_fit(rows, columns):
        return
    problems: list[dict[str, Any]] = []
    names = {column.name for column in columns} if columns is not None else set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(
                {
                    "loc": ["body", "inputs", index],
                    "msg": "a row must be an object",
                    "type": "object_type",
                }
            )
            continue
        if columns is None:
            continue
        for column in columns:
            if column.name not in row:
                if column.required:
                    problems.append(
                        {
                            "loc": ["body", "inputs", index, column.name],
                            "msg": f"missing column {column.name!r}",
                            "type": "missing",
                        }
                    )
            elif row[column.name] is None:
                if column.required:  # sklearn would fail on it (NaN), after the model ran
                    problems.append(
                        {
                            "loc": ["body", "inputs", index, column.name],
                            "msg": f"column {column.name!r} is null; the model's signature "
                            "requires a value",
                            "type": "missing",
                        }
                    )
            elif not _fits(row[column.name], column.type):
                problems.append(
                    {
                        "loc": ["body", "inputs", index, column.name],
                        "msg": f"column {column.name!r} must be {column.type}",
                        "type": "type_error",
                    }
                )
        for extra in sorted(row.keys() - names):
            problems.append(
                {
                    "loc": ["body", "inputs", index, extra],
                    "msg": f"unexpected column {extra!r}",
                    "type": "extra_forbidden",
                }
            )
    if problems:
        # Each kind of problem once (a batch repeats them row after row), with the first row.
        said: dict[str, int | str] = {}
        for problem in problems:
            said.setdefault(str(problem["msg"]), problem["loc"][2])
        reasons = [f"{msg} (row {row})" if len(rows) > 1 else msg for msg, row in said.items()]
        detail = "Inputs do not match the model's signature: " + "; ".join(reasons[:10])
        raise ValidationFailed.of(problems[:100], detail)


# The Python types a signature's column type takes (bool is not an int here, as in `_fits`).
_TAKES: dict[str, frozenset[type]] = {
    **dict.fromkeys(NUMBER_TYPES, frozenset({float, int})),
    **dict.fromkeys(INTEGER_TYPES, frozenset({int})),
    "boolean": frozenset({bool}),
    "string": frozenset({str}),
}


def _all_fit(rows: list[Any], columns: list[Column] | None) -> bool:
    """Whether every row is an object and, given columns, has exactly their names with values of
    their types: the usual batch, checked a column at a time in C. False sends the rows through
    the check that says what is wrong, row by row."""
    if set(map(type, rows)) != {dict}:
        return False
    if columns is None:
        return True
    if set(map(len, rows)) != {len(columns)}:
        return False
    for column in columns:
        takes = _TAKES.get(column.type)
        try:
            values = list(map(itemgetter(column.name), rows))
        except KeyError:
            return False
        kinds = set(map(type, values))
        if takes is None:  # a type only the model checks; nulls go the long way
            if type(None) in kinds:
                return False
        elif not kinds <= takes:
            return False
        if column.type in NUMBER_TYPES:
            # One sum in C: finite only if every value is (a sum past what a float holds sends
            # the rows the long way, which checks each).
            try:
                if not math.isfinite(sum(values)):
                    return False
            except OverflowError:  # an integer past what a float holds
                return False
    return True


def _fits(value: Any, kind: str) -> bool:
    """Whether a value (never None: nulls are checked before) fits the signature's type."""
    if kind in NUMBER_TYPES:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        try:
            return math.isfinite(value)
        except OverflowError:  # an integer past what a float holds
            return False
    if kind in INTEGER_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    return True


class PredictionService:
    """Holds no database connection while a model runs: the version is resolved on a connection
    of its own, in one query."""

    def __init__(
        self,
        engine: AsyncEngine,
        cache: Cache,
        targets: Memo,
        loader: ModelLoader,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.targets = targets
        self.loader = loader
        self.settings = settings
        self.metrics = metrics

    async def resolve(self, name: str, version: int | None, alias: str | None) -> Target:
        """The concrete version to answer with: the one asked for, the alias's, else
        production's, else the latest. Read on every call, so an alias move counts at once."""
        # Autocommit: one round trip, no BEGIN and ROLLBACK around a single read.
        async with self.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            row = await resolve_target(connection, name, version, alias or PRODUCTION)
            if row is None:
                raise ModelNotFound.named(name, await model_names(connection))
            if alias is not None and not row.aliased:
                held = sorted(await alias_names(connection, row.id))
                raise VersionNotFound(
                    f"Model {name} has no alias {alias!r}; "
                    + (f"its aliases: {', '.join(held)}" if held else "it has none")
                )
        if row.model_archived_at is not None:
            raise ModelArchived(f"Model {row.name} is archived; unarchive it to predict")
        if row.number is None or row.source_uri is None or row.artifact_digest is None:
            raise VersionNotFound(f"Model {name} has no version {version or ''}".strip())
        if row.version_archived_at is not None:
            raise VersionArchived(f"Version {row.number} of {row.name} is archived")
        return Target(row.id, row.name, row.number, row.source_uri, row.artifact_digest)

    async def predict(self, name: str, request: PredictRequest) -> Prediction:
        started = time.perf_counter()
        rows: list[Any] = (
            [request.inputs] if isinstance(request.inputs, dict) else list(request.inputs)
        )
        if len(rows) > self.settings.prediction_batch_limit:
            raise BatchTooLarge(
                f"{len(rows)} rows; at most {self.settings.prediction_batch_limit} per call"
            )
        if not rows:
            raise ValidationFailed.at(["body", "inputs"], "at least one row", "too_short")
        check_rows(rows, None)
        target, keys, cached = await self._look_up(name, request, rows)
        hits = len(rows) - cached.count(None)
        answers: list[Any]
        if hits == len(rows):
            answers = list(map(itemgetter(0), cast("list[list[Any]]", cached)))
        else:
            served = await self.loader.get(target)
            # The usual batch is all new rows: they go to the model as they came.
            misses: Sequence[int] = range(len(rows))
            missing_rows = rows
            if hits:  # the model answers the others
                misses = [index for index, value in enumerate(cached) if value is None]
                missing_rows = list(map(rows.__getitem__, misses))
            check_rows(missing_rows, served.model.columns)
            outputs = await served.call(missing_rows)
            if hits:
                answers = [value[0] if value is not None else None for value in cached]
                for index, output in zip(misses, outputs, strict=True):
                    answers[index] = output
            else:
                answers = outputs
            # Stored as one-element arrays (a stored null is an answer, not a miss).
            fresh = dict(zip(map(keys.__getitem__, misses), zip(outputs), strict=True))
            self.cache.store(fresh, self.settings.cache_ttl_s)
        missed = len(rows) - hits
        self.metrics.batch_rows.observe(len(rows))
        self.metrics.child(self.metrics.predicted_rows, target.model, "cache").inc(hits)
        self.metrics.child(self.metrics.predicted_rows, target.model, "model").inc(missed)
        self.metrics.child(self.metrics.prediction_seconds, target.model).observe(
            time.perf_counter() - started
        )
        return Prediction(
            model=target.model,
            version=target.version,
            predictions=answers,
            cache=CacheCounts(hits=hits, misses=missed),
        )

    async def _look_up(
        self, name: str, request: PredictRequest, rows: list[dict[str, Any]]
    ) -> tuple[Target, list[str], list[Any | None]]:
        """The target, the rows' cache keys and their cached values. One Redis round trip when
        this process resolved the target before and the model is unchanged."""
        recall = await self.targets.read_through(
            (name, request.version, request.alias),
            lambda: self.resolve(name, request.version, request.alias),
            alongside=lambda target: self._keys(target, rows),
        )
        self.metrics.child(self.metrics.resolutions, recall.source).inc()
        return recall.value, list(recall.alongside), recall.found

    def _keys(self, target: Target, rows: list[dict[str, Any]]) -> list[str]:
        try:
            return row_keys(self.cache, target.model_id, target.version, rows)
        except (ValueError, TypeError) as exc:  # NaN, infinity: JSON cannot say them
            raise ValidationFailed.at(["body", "inputs"], f"not plain JSON: {exc}") from exc
