"""Loaded model versions: a bounded LRU of runner groups, app-wide. A version is loaded into
runner processes (`app/adapters/runners.py`), never into this one: its files are downloaded from
MLflow and checked against the digest recorded at registration first; its calls are gathered by
`app/adapters/batching.py`."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.adapters import artifacts
from app.adapters.batching import Batcher
from app.adapters.registry import Registry
from app.adapters.runners import RunnerGroup, Runners
from app.core.config import Settings
from app.core.errors import ModelUnavailable, RegistryRejected, RegistryUnavailable
from app.core.metrics import Metrics
from app.core.shared import Shared
from app.db.models import MlModel, ModelVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """The concrete version a prediction runs on."""

    model_id: uuid.UUID
    model: str
    version: int
    source_uri: str
    artifact_digest: str


@dataclass(frozen=True)
class Served:
    """A loaded version: its runners, and its calls (gathered by `app/adapters/batching.py`)."""

    model: RunnerGroup
    call: Batcher


class ModelLoader:
    """Loaded versions in a bounded LRU, app-wide. A version is loaded into runner processes
    (`app/adapters/runners.py`), never into this one: its files are downloaded from MLflow and
    checked against the digest recorded at registration first. Concurrent first requests for
    one version share one load; a load that fails is forgotten, so the next request tries again."""

    def __init__(
        self, registry: Registry, runners: Runners, settings: Settings, metrics: Metrics
    ) -> None:
        self.registry = registry
        self.runners = runners
        self.settings = settings
        self.capacity = settings.model_cache_size
        self.timeout_s = settings.model_load_timeout_s
        self.metrics = metrics
        self.retry_after_s = registry.retry_after_s
        self._models: OrderedDict[tuple[uuid.UUID, int], Served] = OrderedDict()
        self._loading: Shared[Served] = Shared()  # concurrent first requests load once
        self.warmup: dict[str, Any] = {"status": "idle", "loaded": 0, "failed": 0}
        self.loads = 0

    async def get(self, target: Target) -> Served:
        key = (target.model_id, target.version)
        loaded = self._models.get(key)
        if loaded is not None:
            self._models.move_to_end(key)
            return loaded
        served, _ = await self._loading.read(key, lambda: self._load(key, target))
        return served

    async def _load(self, key: tuple[uuid.UUID, int], target: Target) -> Served:
        started = time.perf_counter()
        self.loads += 1
        try:
            group = await asyncio.wait_for(self._start(target), self.timeout_s)
        except (ModelUnavailable, RegistryUnavailable, RegistryRejected, TimeoutError) as exc:
            self.metrics.model_load_seconds.labels(target.model, "failed").observe(
                time.perf_counter() - started
            )
            log.warning("loading %s v%s failed: %s", target.model, target.version, exc)
            if isinstance(exc, ModelUnavailable):
                raise
            raise ModelUnavailable(
                f"Model {target.model} version {target.version} could not be loaded; try again",
                retry_after=self.retry_after_s,
            ) from exc
        self.metrics.model_load_seconds.labels(target.model, "loaded").observe(
            time.perf_counter() - started
        )
        served = Served(
            group,
            Batcher(
                group.call,
                model=target.model,
                enabled=self.settings.prediction_batching,
                max_rows=self.settings.prediction_batch_max_rows,
                max_wait_s=self.settings.prediction_batch_max_wait_ms / 1000,
                concurrency=group.size,
                metrics=self.metrics,
            ),
        )
        self._models[key] = served
        while len(self._models) > self.capacity:
            _, evicted = self._models.popitem(last=False)
            await evicted.model.close()
        self.metrics.loaded_models.set(len(self._models))
        return served

    async def _start(self, target: Target) -> RunnerGroup:
        folder = await self.runners.stage(
            target.artifact_digest,
            lambda staging: self._download(target.source_uri, staging),
            lambda root: asyncio.to_thread(artifacts.digest, root),
        )
        group = RunnerGroup(
            self.runners, folder, target.model, target.version, self.settings.model_runners
        )
        await group.start()
        return group

    async def _download(self, source_uri: str, staging: Path) -> Path:
        return artifacts.model_root(await self.registry.download(source_uri, staging))

    async def warm(self, targets: list[tuple[MlModel, ModelVersion]]) -> None:
        """Load the versions behind `production` in the background, at start-up."""
        self.warmup = {"status": "running", "loaded": 0, "failed": 0}
        for model, version in targets[: self.capacity]:
            try:
                await self.get(
                    Target(
                        model.id,
                        model.name,
                        version.version,
                        version.source_uri,
                        version.artifact_digest,
                    )
                )
                self.warmup["loaded"] += 1
            except ModelUnavailable:
                self.warmup["failed"] += 1
        self.warmup["status"] = "done"

    async def close(self) -> None:
        self._loading.cancel()
        while self._models:
            _, served = self._models.popitem()
            await served.model.close()
        await self.runners.close()
