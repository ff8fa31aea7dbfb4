"""`HokusaiClient` and `AsyncHokusaiClient`: the same resources and methods over one request
builder (`_base.py`); only the I/O and the waiting between attempts differ."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import httpx

from hokusai._base import BaseClient, Call, Wait, body, path
from hokusai.errors import ConfigurationError
from hokusai.resources.ab_tests import AbTests
from hokusai.resources.aliases import Aliases
from hokusai.resources.api_keys import ApiKeys
from hokusai.resources.attestations import Attestations
from hokusai.resources.benchmarks import Benchmarks
from hokusai.resources.contributors import Contributors
from hokusai.resources.experiments import Experiments
from hokusai.resources.lineage import Lineage
from hokusai.resources.models import Models
from hokusai.resources.versions import Versions
from hokusai.types import CacheCounts, Health, Model, Prediction, Readiness, Version

T = TypeVar("T")
Rows = dict[str, Any] | list[dict[str, Any]]
MAX_BATCH = 1000  # the service's default prediction batch limit
CONCURRENT_CHUNKS = 4


def _predict(
    name: str,
    inputs: Rows,
    version: int | None,
    alias: str | None,
    unit_id: str | None,
    request_id: str | None,
) -> Call[Prediction]:
    def parse(response: httpx.Response) -> Prediction:
        prediction = Prediction.model_validate(response.json())
        prediction.cache_status = response.headers.get("x-cache")
        prediction.request_id = response.headers.get("x-request-id")
        return prediction

    payload = body(inputs=inputs, version=version, alias=alias, unit_id=unit_id)
    url = path("models", name, "predict")
    return Call("POST", url, parse, json=payload, repeatable=True, request_id=request_id)


def _rows(inputs: Any) -> Rows:
    """A pandas DataFrame as its rows (numpy scalars as JSON numbers, NaN as null); a dict or a
    list of dicts as it is."""
    if hasattr(inputs, "to_json") and hasattr(inputs, "columns"):
        rows: list[dict[str, Any]] = json.loads(inputs.to_json(orient="records"))
        return rows
    return inputs  # type: ignore[no-any-return]


def _is_array(inputs: Any) -> bool:
    """A numpy array (rows of values in the signature's column order), not a DataFrame."""
    return hasattr(inputs, "ndim") and hasattr(inputs, "tolist") and not hasattr(inputs, "columns")


def _target(model: Model, version: int | None, alias: str | None, unit_id: str | None) -> int:
    """The version an array's rows go to, whose signature names their columns."""
    if unit_id is not None:
        raise ConfigurationError(
            "An array has no column names, and a unit's A/B variant may be a version with other "
            "columns: send a DataFrame or dicts with unit_id"
        )
    if version is not None:
        return version
    number = model.aliases.get(alias or "production")
    if number is None and alias is None:
        number = model.latest_version
    if number is None:
        raise ConfigurationError(
            f"Model {model.name} has no version behind {alias or 'production'}"
        )
    return number


def _array_rows(array: Any, found: Version) -> list[dict[str, Any]]:
    """Each row of a 1-D or 2-D array as a dict named by the version's input signature."""
    if found.signature is None:
        raise ConfigurationError(
            f"Version {found.version} of {found.model} declares no input signature, so an array "
            "cannot be matched to columns: send a DataFrame or dicts"
        )
    names = [column.name for column in found.signature]
    rows = array.tolist()
    if array.ndim == 1:
        rows = [rows]
    if array.ndim not in (1, 2) or any(len(row) != len(names) for row in rows):
        raise ConfigurationError(
            f"The array's rows must have {len(names)} values, in the signature's order: "
            + ", ".join(names[:20])
        )
    return [dict(zip(names, row, strict=True)) for row in rows]


def _chunks(inputs: Rows, size: int) -> list[Rows]:
    if isinstance(inputs, dict) or len(inputs) <= size:
        return [inputs]
    return [inputs[start : start + size] for start in range(0, len(inputs), size)]


def _joined(parts: list[Prediction]) -> Prediction:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return first.model_copy(
        update={
            "predictions": [row for part in parts for row in part.predictions],
            "cache": CacheCounts(
                hits=sum(p.cache.hits for p in parts), misses=sum(p.cache.misses for p in parts)
            ),
            "cache_status": None,
        }
    )


def _health() -> Call[Health]:
    return Call("GET", "/health", lambda r: Health.model_validate(r.json()), repeatable=True)


def _ready() -> Call[Readiness]:
    # A 503 still describes each dependency: it is read, not raised.
    parse = lambda r: Readiness.model_validate(r.json())  # noqa: E731
    return Call("GET", "/ready", parse, accepted_statuses=frozenset({503}))


class HokusaiClient(BaseClient):
    """The synchronous client. Configuration: arguments, else `HOKUSAI_API_KEY` /
    `HOKUSAI_BASE_URL`, else `~/.hokusai/config`. No network I/O until the first call.

    :param base_url: the service's root (`http://127.0.0.1:8000`; a URL ending in `/api` or
        `/api/v1` is understood)
    :param api_key: an `hk_...` key; an empty one is refused
    :param timeout: seconds for each HTTP call
    :param max_retries: retries of connection errors, 429, 502, 503 and 504 (with backoff,
        and `Retry-After` when the service says it); creating calls only with an Idempotency-Key
    :param http_client: an `httpx.Client` of your own (proxies, certificates)
    :param max_batch_size: rows per prediction call; longer batches are split and joined
    """

    is_async: ClassVar[bool] = False

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        max_batch_size: int = MAX_BATCH,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, max_retries=max_retries)
        self._http = http_client or httpx.Client(timeout=timeout)
        self.max_batch_size = max_batch_size
        self.models = Models(self)
        self.versions = Versions(self)
        self.aliases = Aliases(self)
        self.lineage = Lineage(self)
        self.attestations = Attestations(self)
        self.benchmarks = Benchmarks(self)
        self.contributors = Contributors(self)
        self.ab_tests = AbTests(self)
        self.experiments = Experiments(self)
        self.api_keys = ApiKeys(self)

    def _run(self, call: Call[T]) -> T:
        request_id = call.request_id or uuid.uuid4().hex
        attempt, waited = 0, 0.0
        while True:
            try:
                sent: httpx.Response | httpx.TransportError = self._http.send(
                    self._request(self._http, call, request_id)
                )
            except httpx.TransportError as exc:
                sent = exc
            settled = self._settle(call, attempt, sent, request_id, waited)
            if not isinstance(settled, Wait):
                return settled
            time.sleep(settled.seconds)
            attempt += settled.counted
            waited += 0.0 if settled.counted else settled.seconds

    def predict(
        self,
        name: str,
        inputs: Rows | Any,
        *,
        version: int | None = None,
        alias: str | None = None,
        unit_id: str | None = None,
        request_id: str | None = None,
    ) -> Prediction:
        """Predict one row (a dict) or many (a list of dicts, a pandas DataFrame, or a numpy array
        whose columns are in the version's signature order, as MLflow's pyfunc takes them); more
        rows than the batch limit are sent in several calls and the answers joined in order.
        `request_id` is sent as X-Request-ID (your own trace id; the service logs it and echoes
        it, also in errors)."""
        if _is_array(inputs):
            model = self.models.get(name)
            version = _target(model, version, alias, unit_id)
            inputs = _array_rows(inputs, self.versions.get(name, version))
        parts = [
            self._run(_predict(name, chunk, version, alias, unit_id, request_id))
            for chunk in _chunks(_rows(inputs), self.max_batch_size)
        ]
        return _joined(parts)

    def health(self) -> Health:
        return self._run(_health())

    def ready(self) -> Readiness:
        return self._run(_ready())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HokusaiClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncHokusaiClient(BaseClient):
    """The asynchronous client: the same constructor, resources and methods, awaitable; lists
    are async iterators (`async for model in client.models.list()`)."""

    is_async: ClassVar[bool] = True

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
        max_batch_size: int = MAX_BATCH,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, max_retries=max_retries)
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self.max_batch_size = max_batch_size
        self.models = Models(self)
        self.versions = Versions(self)
        self.aliases = Aliases(self)
        self.lineage = Lineage(self)
        self.attestations = Attestations(self)
        self.benchmarks = Benchmarks(self)
        self.contributors = Contributors(self)
        self.ab_tests = AbTests(self)
        self.experiments = Experiments(self)
        self.api_keys = ApiKeys(self)

    async def _run(self, call: Call[T]) -> T:
        request_id = call.request_id or uuid.uuid4().hex
        attempt, waited = 0, 0.0
        while True:
            try:
                sent: httpx.Response | httpx.TransportError = await self._http.send(
                    self._request(self._http, call, request_id)
                )
            except httpx.TransportError as exc:
                sent = exc
            settled = self._settle(call, attempt, sent, request_id, waited)
            if not isinstance(settled, Wait):
                return settled
            await asyncio.sleep(settled.seconds)
            attempt += settled.counted
            waited += 0.0 if settled.counted else settled.seconds

    async def predict(
        self,
        name: str,
        inputs: Rows | Any,
        *,
        version: int | None = None,
        alias: str | None = None,
        unit_id: str | None = None,
        request_id: str | None = None,
    ) -> Prediction:
        """Predict one row or many (a list of dicts, a pandas DataFrame, or a numpy array in the
        signature's column order); chunks of a long list are sent concurrently (at most four at
        a time) and joined in order. `request_id` is sent as X-Request-ID."""
        if _is_array(inputs):
            model = await self.models.get(name)
            version = _target(model, version, alias, unit_id)
            inputs = _array_rows(inputs, await self.versions.get(name, version))
        gate = asyncio.Semaphore(CONCURRENT_CHUNKS)

        async def one(chunk: Rows) -> Prediction:
            async with gate:
                call = _predict(name, chunk, version, alias, unit_id, request_id)
                return await self._run(call)

        parts = await asyncio.gather(
            *(one(chunk) for chunk in _chunks(_rows(inputs), self.max_batch_size))
        )
        return _joined(list(parts))

    async def health(self) -> Health:
        return await self._run(_health())

    async def ready(self) -> Readiness:
        return await self._run(_ready())

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncHokusaiClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
