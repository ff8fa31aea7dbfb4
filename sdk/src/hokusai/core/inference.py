"""Upstream's `hokusai.core.inference.HokusaiInferencePipeline`, over the service: the service
loads the model, caches predictions in Redis and routes units through running A/B tests, so the
pipeline is a thin asynchronous caller (no event loop of its own, no local Redis, no local
model)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hokusai._client import AsyncHokusaiClient
from hokusai._compat import deprecated
from hokusai.core.registry import ModelRegistry
from hokusai.errors import HokusaiError

# Upstream's exception; every error of the client is one now.
InferenceException = HokusaiError


@dataclass
class CacheConfig:
    """Kept for signatures; the service's cache (Redis) applies, configured on the service."""

    enabled: bool = True
    ttl_seconds: int = 300
    max_cache_size_mb: int = 1024
    eviction_policy: str = "lru"
    redis_host: str = "localhost"
    redis_port: int = 6379
    redis_db: int = 0


@dataclass
class InferenceRequest:
    request_id: str
    model_type: str
    data: Any
    user_id: str | None = None
    model_version: str | None = None
    metadata: dict[str, Any] | None = None
    preprocessing_required: bool = False
    postprocessing_required: bool = False


@dataclass
class InferenceResponse:
    request_id: str
    prediction: Any
    model_version: str
    model_id: str
    latency_ms: float
    cache_hit: bool = False
    ab_test_id: str | None = None
    fallback_used: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


class HokusaiInferencePipeline:
    def __init__(
        self,
        registry: ModelRegistry,
        version_manager: Any = None,
        traffic_router: Any = None,
        cache_config: CacheConfig | None = None,
        max_models_in_memory: int = 10,
    ) -> None:
        deprecated("HokusaiInferencePipeline", "AsyncHokusaiClient().predict(name, inputs)")
        self.registry = registry
        self.cache_config = cache_config or CacheConfig()
        client = registry.client
        self.client = AsyncHokusaiClient(client.base_url, client._api_key, timeout=client.timeout)

    async def predict(self, request: InferenceRequest) -> InferenceResponse:
        """One request: its `data` is one row (a dict) or a batch (a list of dicts)."""
        [response] = await self._group([request])
        return response

    async def batch_predict(self, requests: list[InferenceRequest]) -> list[InferenceResponse]:
        """Requests for the same model, version and unit go in one call; answers keep the
        requests' order."""
        responses: dict[str, InferenceResponse] = {}
        groups: dict[tuple[str, str | None, str | None], list[InferenceRequest]] = {}
        for request in requests:
            groups.setdefault(
                (request.model_type, request.model_version, request.user_id), []
            ).append(request)
        for group in groups.values():
            for response in await self._group(group):
                responses[response.request_id] = response
        return [responses[request.request_id] for request in requests]

    async def _group(self, requests: list[InferenceRequest]) -> list[InferenceResponse]:
        first = requests[0]
        single = len(requests) == 1 and isinstance(first.data, dict)
        rows = first.data if single else [row for r in requests for row in _rows(r.data)]
        version = int(first.model_version) if first.model_version else None
        started = time.perf_counter()
        prediction = await self.client.predict(
            first.model_type, rows, version=version, unit_id=first.user_id
        )
        latency_ms = (time.perf_counter() - started) * 1000 / len(requests)
        answers = prediction.predictions
        out, at = [], 0
        for request in requests:
            count = 1 if isinstance(request.data, dict) else len(request.data)
            value = answers[at] if isinstance(request.data, dict) else answers[at : at + count]
            at += count
            out.append(
                InferenceResponse(
                    request_id=request.request_id,
                    prediction=value,
                    model_version=str(prediction.version),
                    model_id=f"{prediction.model}:{prediction.version}",
                    latency_ms=latency_ms,
                    cache_hit=prediction.cache.misses == 0,
                    ab_test_id=prediction.ab_test.id if prediction.ab_test else None,
                )
            )
        return out

    async def close(self) -> None:
        await self.client.close()


def _rows(data: Any) -> list[dict[str, Any]]:
    return [data] if isinstance(data, dict) else list(data)
