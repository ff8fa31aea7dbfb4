"""Predictions: the version is resolved first (so moving an alias takes
effect on the very next call), rows are looked up in the Redis cache in one round trip, only the
misses reach the model, in one call, and the answers go back in order. Redis trouble is a miss.

A process remembers the versions it resolved (`app/adapters/memory.py`) and checks them in the same
Redis round trip that looks up the rows: a cached prediction touches Postgres only when the
model's versions or aliases changed.

Rules: docs/reference/specification.md#predictions-and-the-cache."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any

import rfc8785
from sqlalchemy.ext.asyncio import AsyncEngine

from app.adapters.cache import Cache
from app.adapters.memory import Memo
from app.adapters.registry import Column, LoadedModel, Registry
from app.core import heap
from app.core.config import Settings
from app.core.errors import (
    BatchTooLarge,
    ModelFailed,
    ModelNotFound,
    ModelUnavailable,
    RegistryRejected,
    RegistryUnavailable,
    ValidationFailed,
    VersionNotFound,
)
from app.core.metrics import Metrics
from app.core.vocabulary import PRODUCTION
from app.db.models import MlModel, ModelVersion
from app.db.repositories.ml_models import resolve_target
from app.schemas.predictions import CacheCounts, Prediction, PredictRequest
from app.services.batching import Batcher

log = logging.getLogger(__name__)

NUMBER_TYPES = {"double", "float"}
INTEGER_TYPES = {"long", "integer"}


@dataclass(frozen=True)
class Target:
    """The concrete version a prediction runs on."""

    model_id: uuid.UUID
    model: str
    version: int
    source_uri: str


@dataclass(frozen=True)
class Served:
    """A loaded version, and its calls (gathered by `app/services/batching.py`)."""

    model: LoadedModel
    call: Batcher


class ModelLoader:
    """Loaded models in a bounded LRU, app-wide. Concurrent first requests for one version share
    one load; a load that fails is forgotten, so the next request tries again."""

    def __init__(self, registry: Registry, settings: Settings, metrics: Metrics) -> None:
        self.registry = registry
        self.settings = settings
        self.capacity = settings.model_cache_size
        self.timeout_s = settings.model_load_timeout_s
        self.metrics = metrics
        self.retry_after_s = registry.retry_after_s
        self._models: OrderedDict[tuple[uuid.UUID, int], Served] = OrderedDict()
        self._loading: dict[tuple[uuid.UUID, int], asyncio.Task[Served]] = {}
        self.warmup: dict[str, Any] = {"status": "idle", "loaded": 0, "failed": 0}
        self.loads = 0

    async def get(self, target: Target) -> Served:
        key = (target.model_id, target.version)
        loaded = self._models.get(key)
        if loaded is not None:
            self._models.move_to_end(key)
            return loaded
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, target.model, target.source_uri))
            self._loading[key] = task
            task.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(task)

    async def _load(self, key: tuple[uuid.UUID, int], name: str, source_uri: str) -> Served:
        started = time.perf_counter()
        self.loads += 1
        try:
            loaded = await self.registry.load_pyfunc(source_uri, timeout_s=self.timeout_s)
        except (RegistryUnavailable, RegistryRejected) as exc:
            self.metrics.model_load_seconds.labels(name, "failed").observe(
                time.perf_counter() - started
            )
            log.warning("loading %s v%s failed: %s", name, key[1], exc)
            raise ModelUnavailable(
                f"Model {name} version {key[1]} could not be loaded; try again",
                retry_after=self.retry_after_s,
            ) from exc
        self.metrics.model_load_seconds.labels(name, "loaded").observe(
            time.perf_counter() - started
        )
        served = Served(
            loaded,
            Batcher(
                partial(run_model, loaded),
                model=name,
                enabled=self.settings.prediction_batching,
                max_rows=self.settings.prediction_batch_max_rows,
                max_wait_s=self.settings.prediction_batch_max_wait_ms / 1000,
                metrics=self.metrics,
            ),
        )
        self._models[key] = served
        while len(self._models) > self.capacity:
            self._models.popitem(last=False)
        self.metrics.loaded_models.set(len(self._models))
        heap.settle()  # the model (and what loading it imported) lives until evicted
        return served

    async def warm(self, targets: list[tuple[MlModel, ModelVersion]]) -> None:
        """Load the versions behind `production` in the background, at start-up."""
        self.warmup = {"status": "running", "loaded": 0, "failed": 0}
        for model, version in targets[: self.capacity]:
            try:
                await self.get(Target(model.id, model.name, version.version, version.source_uri))
                self.warmup["loaded"] += 1
            except ModelUnavailable:
                self.warmup["failed"] += 1
        self.warmup["status"] = "done"


def row_key(cache: Cache, target: Target, row: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical_row(row)).hexdigest()
    return cache.key("pred", "v1", str(target.model_id), str(target.version), digest)


MAX_SAFE_INTEGER = 2**53 - 1


def canonical_row(row: dict[str, Any]) -> bytes:
    """The row's JCS form (RFC 8785). A flat row of ASCII names and values that `json.dumps`
    writes exactly as JCS does (ASCII strings, safe integers, booleans, null, and floats written
    without an exponent) is written by `json.dumps`, several times faster; anything else by
    rfc8785, which also refuses what JSON cannot say (NaN, infinity, unsafe integers)."""
    if all(key.isascii() for key in row) and all(_writes_as_jcs(v) for v in row.values()):
        return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return rfc8785.dumps(row)


def _writes_as_jcs(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        # Python writes 5.0 and 1e-05 where JCS writes 5 and 0.00001; between, the same digits.
        return bool(not value.is_integer() and 1e-4 <= abs(value) < 1e16)
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is str:
        return bool(value.isascii())
    return kind is bool or value is None


def check_rows(rows: list[Any], columns: list[Column] | None) -> None:
    """422 naming the columns: missing, unexpected, or of the wrong type."""
    problems: list[dict[str, Any]] = []
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
        names = {column.name for column in columns}
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
        columns_named = sorted({str(p["loc"][-1]) for p in problems if len(p["loc"]) > 3})
        detail = "Inputs do not match the model's signature"
        if columns_named:
            detail += ": " + ", ".join(columns_named)
        raise ValidationFailed(detail, errors=problems[:100])


def _fits(value: Any, kind: str) -> bool:
    if value is None:
        return True
    if kind in NUMBER_TYPES:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind in INTEGER_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    return True


def _rows_of(output: Any, count: int) -> list[Any]:
    """A model's output as one JSON value per input row."""
    if hasattr(output, "to_dict") and hasattr(output, "columns"):  # a DataFrame
        records: list[Any] = output.to_dict(orient="records")
        return records
    values = output.tolist() if hasattr(output, "tolist") else list(output)
    if len(values) != count:
        raise ValueError(f"the model answered {len(values)} rows for {count}")
    return values


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
            raise ModelNotFound(f"No model named {name}")
        if alias is not None and not row.aliased:
            raise VersionNotFound(f"Model {name} has no alias {alias}")
        if row.number is None:
            raise VersionNotFound(f"Model {name} has no version {version or ''}".strip())
        return Target(row.id, row.name, row.number, row.source_uri)

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
            raise ValidationFailed(
                "inputs is an empty list",
                errors=[
                    {"loc": ["body", "inputs"], "msg": "at least one row", "type": "too_short"}
                ],
            )
        check_rows(rows, None)
        target, keys, cached = await self._look_up(name, request, rows)
        answers: list[Any] = [value[0] if value is not None else None for value in cached]
        misses = [index for index, value in enumerate(cached) if value is None]
        if misses:
            served = await self.loader.get(target)
            missing_rows = [rows[index] for index in misses]
            check_rows(missing_rows, served.model.columns)
            outputs = await served.call(missing_rows)
            fresh = {}
            for index, output in zip(misses, outputs, strict=True):
                answers[index] = output
                fresh[keys[index]] = [output]
            await self.cache.set_many(fresh, self.settings.cache_ttl_s)
        hits = len(rows) - len(misses)
        self.metrics.batch_rows.observe(len(rows))
        self.metrics.child(self.metrics.predicted_rows, target.model, "cache").inc(hits)
        self.metrics.child(self.metrics.predicted_rows, target.model, "model").inc(len(misses))
        self.metrics.child(self.metrics.prediction_seconds, target.model).observe(
            time.perf_counter() - started
        )
        return Prediction(
            model=target.model,
            version=target.version,
            predictions=answers,
            cache=CacheCounts(hits=hits, misses=len(misses)),
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
        source = "memory" if recall.remembered else "database"
        self.metrics.child(self.metrics.resolutions, source).inc()
        return recall.value, list(recall.alongside), recall.found

    def _keys(self, target: Target, rows: list[dict[str, Any]]) -> list[str]:
        try:
            return [row_key(self.cache, target, row) for row in rows]
        except (ValueError, TypeError) as exc:  # NaN, infinity: JSON cannot say them
            raise ValidationFailed(f"inputs are not plain JSON: {exc}") from exc


def run_model(loaded: LoadedModel, rows: list[dict[str, Any]]) -> list[Any]:
    """One blocking call of the model: rows in, one JSON value per row out. The model is the
    uploader's code: whatever it raises is a 422 naming the error, not a 500."""
    try:
        return _call_model(loaded, rows)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ModelFailed(f"{type(exc).__name__}: {message}".rstrip(": ")) from exc


def _call_model(loaded: LoadedModel, rows: list[dict[str, Any]]) -> list[Any]:
    import numpy as np
    import pandas as pd

    if loaded.columns is None:
        return _rows_of(loaded.predict(pd.DataFrame(rows)), len(rows))
    names = [c.name for c in loaded.columns]
    if all(c.type in NUMBER_TYPES for c in loaded.columns):
        # All doubles (the common case): one float array, with plain string column names;
        # several times faster to build than a frame from dicts. Absent or null is NaN.
        values = [[row.get(name) for name in names] for row in rows]
        frame = pd.DataFrame(
            np.array(values, dtype=np.float64), columns=pd.Index(names, dtype=object)
        )
        return _rows_of(loaded.predict(frame), len(rows))
    # JSON has one number type: 3 for a double column is 3.0, which MLflow will not cast.
    floats = [c.name for c in loaded.columns if c.type in NUMBER_TYPES]
    rows = [
        {**row, **{name: float(row[name]) for name in floats if row.get(name) is not None}}
        for row in rows
    ]
    frame = pd.DataFrame(rows, columns=names)
    return _rows_of(loaded.predict(frame), len(rows))
