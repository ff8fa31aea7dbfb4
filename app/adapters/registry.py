"""MLflow, the only module that imports mlflow. The sync client runs in worker threads with a
timeout; an unreachable or failing server becomes `RegistryUnavailable` (503 + Retry-After).
A call that times out is followed by a short probe of MLflow's /health: no answer opens the
breaker at once (every caller then gets 503 without waiting, until the cooldown ends and a call
gets through), an answer means the slow call was its own (one client's large artifact) and
nobody else is refused for it. Repeated network errors open it too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from app.core.breaker import Breaker
from app.core.config import Settings
from app.core.errors import RegistryRejected, RegistryUnavailable

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")

# MLflow answers these for requests that are wrong, not for a server that is down.
_CLIENT_ERROR_STATUSES = frozenset({400, 404, 409})


class Registry:
    def __init__(self, settings: Settings) -> None:
        self.tracking_uri = settings.mlflow_tracking_uri
        self.artifact_root = settings.mlflow_artifact_root
        self.timeout_s = settings.mlflow_timeout_s
        self.retry_after_s = settings.retry_after_s
        self._executor = ThreadPoolExecutor(settings.mlflow_workers, thread_name_prefix="mlflow")
        # For a second call a worker makes while its first runs (never waits on `_executor`).
        self._side = ThreadPoolExecutor(settings.mlflow_workers, thread_name_prefix="mlflow-side")
        self._client: MlflowClient | None = None
        self.breaker = Breaker(settings.mlflow_breaker_failures, settings.mlflow_breaker_cooldown_s)
        self.probe_timeout_s = settings.mlflow_probe_timeout_s
        # What this process already made sure of in MLflow, to skip asking again. Entries can only
        # be stale if someone deletes them in MLflow by hand; a restart forgets them.
        self._experiments: dict[str, str] = {}
        self._model_tags: dict[str, dict[str, str]] = {}
        # Our own timeout bounds every call, so MLflow's retry loop (minutes by default) is off.
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, round(settings.mlflow_timeout_s)))

    async def start(self) -> None:
        """Import mlflow (seconds of imports) and build the client, off the event loop."""
        loop = asyncio.get_running_loop()
        self._client = await loop.run_in_executor(self._executor, self._build_client)

    def _build_client(self) -> MlflowClient:
        from mlflow import MlflowClient

        # MLflow installs its own log handler; route its records through ours (JSON, request id).
        mlflow_logger = logging.getLogger("mlflow")
        mlflow_logger.handlers[:] = []
        mlflow_logger.propagate = True
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        import mlflow

        # Loading models resolves URIs through the global tracking URI; this process has one.
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    async def call(self, fn: Callable[[MlflowClient], T], *, timeout_s: float | None = None) -> T:
        """Run `fn(client)` in a worker thread. Errors MLflow reports about the request itself
        (not found, bad parameter, conflict) become `RegistryRejected`; anything else, including
        a timeout, is `RegistryUnavailable`."""
        if self._client is None:
            raise RegistryUnavailable("MLflow client is starting", retry_after=self.retry_after_s)
        if self.breaker.open:
            raise RegistryUnavailable(
                "MLflow has been failing; not asked again until the breaker's cooldown ends",
                retry_after=self.breaker.retry_after_s,
            )
        client = self._client
        loop = asyncio.get_running_loop()
        try:
            result = await asyncio.wait_for(
                loop.run_in_executor(self._executor, fn, client), timeout_s or self.timeout_s
            )
        except Exception as exc:
            status = _client_error_status(exc)
            if status is not None:
                self.breaker.succeeded()  # it answered
                raise RegistryRejected(status, getattr(exc, "message", str(exc))) from exc
            if not _network(exc):  # a model that fails to load, say: no outage
                raise RegistryUnavailable(
                    f"MLflow call failed: {exc.__class__.__name__}", retry_after=self.retry_after_s
                ) from exc
            # Our timeout (a TimeoutError is an OSError), or the client's own one that MLflow
            # wraps and that races ours, or a connection error: the probe decides.
            slow = _chained(exc, _is_timeout)
            seconds = timeout_s or self.timeout_s
            if not await self.answers():
                self.breaker.trip()
            elif slow:  # slow on its own (one client's large artifact) is not an outage
                raise RegistryUnavailable(
                    f"MLflow did not finish this call within {seconds:g} s (it answers others)",
                    retry_after=self.retry_after_s,
                ) from exc
            else:
                self.breaker.failed()
            reason = f"did not answer within {seconds:g} s" if slow else "call failed"
            raise RegistryUnavailable(
                f"MLflow {reason}: {exc.__class__.__name__}", retry_after=self.retry_after_s
            ) from exc
        self.breaker.succeeded()
        return result

    async def answers(self) -> bool:
        """Whether MLflow's server answers its /health within the probe timeout: a plain HTTP
        call on the event loop, so threads stuck on a hung server do not stop it. A local store
        (no server) always answers."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return True
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.probe_timeout_s) as client:
                response = await client.get(self.tracking_uri.rstrip("/") + "/health")
        except httpx.HTTPError:
            return False
        return response.status_code < 500

    async def ping(self, timeout_s: float) -> None:
        await self.call(
            lambda client: client.search_experiments(max_results=1), timeout_s=timeout_s
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._side.shutdown(wait=False, cancel_futures=True)

    # Registration. Every step looks for what an earlier attempt with the same request key left
    # behind (a run, a model version), so a retry after a failure never makes a second one.

    async def publish(self, publication: Publication) -> Published:
        return await self.call(lambda client: self._publish(client, publication))

    def _publish(self, client: MlflowClient, p: Publication) -> Published:
        run_id, source, finishing = p.run_id, p.source_uri, None
        if p.model_dir is not None:
            experiment_id = self._experiment_id(client, p.name)
            run_id, source, finishing = self._logged_run(client, experiment_id, p)
        assert source is not None
        published = self._registered(client, p, source, run_id)
        if finishing is not None:
            finishing.result()  # the run's end, marked while the version was registered
        return published

    def _registered(
        self, client: MlflowClient, p: Publication, source: str, run_id: str | None
    ) -> Published:
        self._ensure_registered_model(client, p.name, p.model_tags)
        if p.retry:
            found = client.search_model_versions(
                f"name = '{p.name}' and tags.`{REQUEST_KEY_TAG}` = '{p.request_key}'"
            )
            if found:  # what the earlier attempt registered, with its own run and source
                first = found[0]
                return Published(int(first.version), first.source or source, first.run_id)
        version = client.create_model_version(
            p.name,
            source,
            run_id=run_id,
            tags={**p.version_tags, REQUEST_KEY_TAG: p.request_key},
            description=p.description,
        )
        return Published(int(version.version), source, run_id)

    def _experiment_id(self, client: MlflowClient, name: str) -> str:
        from mlflow.exceptions import MlflowException

        if name in self._experiments:
            return self._experiments[name]
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            self._experiments[name] = str(experiment.experiment_id)
            return self._experiments[name]
        location = None
        if not self.tracking_uri.startswith(("http://", "https://", "databricks")):
            location = (Path(self.artifact_root).resolve() / name).as_uri()
        try:
            experiment_id = str(client.create_experiment(name, artifact_location=location))
        except MlflowException:  # created meanwhile by a concurrent registration
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            experiment_id = str(experiment.experiment_id)
        self._experiments[name] = experiment_id
        return experiment_id

    def _logged_run(
        self, client: MlflowClient, experiment_id: str, p: Publication
    ) -> tuple[str, str, Future[Any] | None]:
        """The run holding the model: its id, the model's URI in it, and the marking of the run
        as finished, still under way (None for a finished run an earlier attempt left)."""
        from mlflow.entities import Metric, RunTag

        finishing = None
        previous = p.retry and client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{REQUEST_KEY_TAG}` = '{p.request_key}' and status = 'FINISHED'",
            max_results=1,
        )
        if previous:
            run = previous[0]
        else:
            run = client.create_run(
                experiment_id,
                tags={**p.version_tags, REQUEST_KEY_TAG: p.request_key},
                run_name=f"{p.name}-{p.request_key[:8]}",
            )
            now = int(time.time() * 1000)
            # Metrics and artifacts need only the run: both at once.
            logged = self._side.submit(
                client.log_batch,
                run.info.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in sorted(p.metrics.items())],
                tags=[RunTag("mlflow.note.content", p.description or "")],
            )
            client.log_artifacts(run.info.run_id, str(p.model_dir), MODEL_PATH)
            logged.result()
            # The version needs the artifacts, not a finished run: the run is marked finished
            # while the version is registered. A retry after a failure here makes a fresh run
            # (it reuses finished ones only) and finds the version by its request key.
            finishing = self._side.submit(client.update_run, run.info.run_id, status="FINISHED")
        return run.info.run_id, f"{run.info.artifact_uri}/{MODEL_PATH}", finishing

    def _ensure_registered_model(
        self, client: MlflowClient, name: str, tags: dict[str, str]
    ) -> None:
        from mlflow.exceptions import MlflowException

        if self._model_tags.get(name) == tags:
            return
        try:
            client.create_registered_model(name, tags=tags)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            for key, value in tags.items():
                client.set_registered_model_tag(name, key, value)
        self._model_tags[name] = dict(tags)

    # Mirrors of what Postgres decides.

    async def set_alias(self, name: str, alias: str, version: int) -> None:
        await self.call(lambda client: client.set_registered_model_alias(name, alias, str(version)))

    async def delete_alias(self, name: str, alias: str) -> None:
        await self.call(lambda client: client.delete_registered_model_alias(name, alias))

    async def update_model(
        self, name: str, description: str | None, tags: dict[str, str] | None
    ) -> None:
        def update(client: MlflowClient) -> None:
            if description is not None:
                client.update_registered_model(name, description=description)
            if tags is not None:
                self._replace_tags(
                    client.get_registered_model(name).tags,
                    tags,
                    lambda k, v: client.set_registered_model_tag(name, k, v),
                    lambda k: client.delete_registered_model_tag(name, k),
                )

        await self.call(update)

    async def update_version(
        self, name: str, version: int, description: str | None, tags: dict[str, str] | None
    ) -> None:
        def update(client: MlflowClient) -> None:
            if description is not None:
                client.update_model_version(name, str(version), description=description)
            if tags is not None:
                self._replace_tags(
                    client.get_model_version(name, str(version)).tags,
                    tags,
                    lambda k, v: client.set_model_version_tag(name, str(version), k, v),
                    lambda k: client.delete_model_version_tag(name, str(version), k),
                )

        await self.call(update)

    @staticmethod
    def _replace_tags(
        current: dict[str, str],
        wanted: dict[str, str],
        set_tag: Callable[[str, str], None],
        delete_tag: Callable[[str], None],
    ) -> None:
        """User tags are replaced; the service's own tags (hokusai., mlflow., upstream) stay."""
        for key in current.keys() - wanted.keys():
            if not key.startswith(RESERVED_TAG_PREFIXES) and key not in UPSTREAM_TAGS:
                delete_tag(key)
        for key, value in wanted.items():
            if current.get(key) != value:
                set_tag(key, value)

    # Artifacts and models.

    async def download(self, source_uri: str, destination: Path) -> Path:
        """Download a model directory (runs:/, models:/, mlflow-artifacts:/ or a store URI)."""

        def download(_: MlflowClient) -> Path:
            from mlflow.artifacts import download_artifacts

            return Path(
                download_artifacts(
                    artifact_uri=source_uri,
                    dst_path=str(destination),
                    tracking_uri=self.tracking_uri,
                    registry_uri=self.tracking_uri,
                )
            )

        return await self.call(download)

    # Held benchmarks: files under a path of their own in the artifact store, outside any run
    # or experiment, so nothing that lists MLflow's runs or experiments leads to them.

    def benchmark_uri(self, digest: str) -> str:
        folder = f"{BENCHMARKS_PATH}/{digest.removeprefix('sha256:')}"
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"mlflow-artifacts:/{folder}"
        return f"{Path(self.artifact_root).resolve().as_uri()}/{folder}"

    async def store_benchmark(self, file: Path, digest: str) -> str:
        """Store the file under the benchmark's own path; returns where (its folder's URI)."""
        uri = self.benchmark_uri(digest)

        def store(_: MlflowClient) -> str:
            from mlflow.store.artifact.artifact_repository_registry import (
                get_artifact_repository,
            )

            get_artifact_repository(uri).log_artifact(str(file))  # type: ignore[no-untyped-call]
            return uri

        return await self.call(store)

    async def fetch_benchmark(self, uri: str, name: str, destination: Path) -> Path:
        def fetch(_: MlflowClient) -> Path:
            from mlflow.store.artifact.artifact_repository_registry import (
                get_artifact_repository,
            )

            destination.mkdir(parents=True, exist_ok=True)
            repository = get_artifact_repository(uri)
            return Path(repository.download_artifacts(name, str(destination)))  # type: ignore[no-untyped-call]

        return await self.call(fetch)

    async def registered_versions(self, names: Sequence[str] | None) -> list[RegisteredVersion]:
        """Every version of the named registered models (all of them when None), with its tags,
        by model name and version number."""

        def read(client: MlflowClient) -> list[RegisteredVersion]:
            wanted = names or [m.name for m in client.search_registered_models(max_results=1000)]
            found = [
                RegisteredVersion(name, int(v.version), v.source or "", v.run_id, dict(v.tags))
                for name in wanted
                for v in client.search_model_versions(f"name = '{_quoted(name)}'")
            ]
            return sorted(found, key=lambda v: (v.name, v.version))

        return await self.call(read)

    async def inventory(self) -> Inventory:
        """What the reconciler compares with Postgres: the versions this service published
        (they carry its request-key tag), and every registered model's aliases."""

        def read(client: MlflowClient) -> Inventory:
            aliases: dict[str, dict[str, int]] = {}
            published: list[PublishedVersion] = []
            token = None
            while True:
                page = client.search_registered_models(max_results=1000, page_token=token)
                for model in page:
                    aliases[model.name] = {a: int(v) for a, v in (model.aliases or {}).items()}
                token = page.token
                if not token:
                    break
            token = None
            while True:
                versions = client.search_model_versions(
                    f"tags.`{REQUEST_KEY_TAG}` LIKE '%'", max_results=1000, page_token=token
                )
                published.extend(
                    PublishedVersion(
                        v.name,
                        int(v.version),
                        v.tags.get(REQUEST_KEY_TAG, ""),
                        v.run_id,
                        datetime.fromtimestamp(v.creation_timestamp / 1000, UTC),
                    )
                    for v in versions
                )
                token = versions.token
                if not token:
                    break
            return Inventory(published, aliases)

        return await self.call(read)

    async def delete_version(self, version: PublishedVersion) -> None:
        """Remove a version, and the run logged for it when the run was this request's own."""

        def delete(client: MlflowClient) -> None:
            from mlflow.exceptions import MlflowException

            with contextlib.suppress(MlflowException):  # gone already (another replica)
                client.delete_model_version(version.name, str(version.version))
            if version.run_id:
                with contextlib.suppress(MlflowException):
                    run = client.get_run(version.run_id)
                    if run.data.tags.get(REQUEST_KEY_TAG) == version.request_key:
                        client.delete_run(version.run_id)

        await self.call(delete)

    async def run_id_of(self, source_uri: str) -> str | None:
        """The MLflow run behind a `runs:/` or `models:/` URI, checking that it exists."""

        def resolve(client: MlflowClient) -> str | None:
            if source_uri.startswith("runs:/"):
                run_id = source_uri.removeprefix("runs:/").split("/", 1)[0]
                return str(client.get_run(run_id).info.run_id)
            if source_uri.startswith("models:/"):
                name, _, reference = source_uri.removeprefix("models:/").partition("/")
                if reference.isdigit():
                    version = client.get_model_version(name, reference)
                else:
                    version = client.get_model_version_by_alias(name, reference.lstrip("@"))
                return str(version.run_id) if version.run_id else None
            return None

        return await self.call(resolve)

    # Experiments and runs.

    async def list_experiments(self, limit: int, offset: int) -> tuple[list[Any], int]:
        return await self.call(
            lambda client: _paged(
                lambda token: client.search_experiments(
                    max_results=1000, page_token=token, order_by=["creation_time DESC"]
                ),
                limit,
                offset,
            )
        )

    async def get_experiment(self, experiment_id: str) -> Any:
        return await self.call(lambda client: client.get_experiment(experiment_id))

    async def list_runs(self, experiment_id: str, limit: int, offset: int) -> tuple[list[Any], int]:
        return await self.call(
            lambda client: _paged(
                lambda token: client.search_runs(
                    [experiment_id],
                    max_results=1000,
                    page_token=token,
                    order_by=["attributes.start_time DESC"],
                ),
                limit,
                offset,
            )
        )

    async def get_run(self, run_id: str) -> Any:
        return await self.call(lambda client: client.get_run(run_id))


REQUEST_KEY_TAG = "hokusai.request_key"
BENCHMARKS_PATH = "hokusai-benchmarks"
MODEL_PATH = "model"
RESERVED_TAG_PREFIXES = ("hokusai.", "mlflow.")
# Tag names the upstream SDK wrote, kept on MLflow objects so MLflow UI users still see them.
UPSTREAM_TAGS = frozenset(
    {
        "hokusai_token_id",
        "benchmark_metric",
        "benchmark_value",
        "is_baseline",
        "baseline_id",
        "contributor_address",
        "model_type",
    }
)
MAX_LISTED = 10_000


@dataclass(frozen=True)
class Publication:
    """What registration hands to MLflow: either an unpacked model directory to log to a new run,
    or an existing source URI."""

    name: str
    request_key: str
    retry: bool  # an earlier attempt with this request key may have left a run or a version
    model_tags: dict[str, str]
    version_tags: dict[str, str]
    metrics: dict[str, float]
    description: str | None = None
    model_dir: Path | None = None
    source_uri: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Published:
    version: int
    source_uri: str
    run_id: str | None


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version as MLflow holds it (for importing a registry another tool populated)."""

    name: str
    version: int
    source: str
    run_id: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class PublishedVersion:
    """A model version this service published to MLflow, by its request key."""

    name: str
    version: int
    request_key: str
    run_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class Inventory:
    published: list[PublishedVersion]
    aliases: dict[str, dict[str, int]]  # registered model -> alias -> version


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _paged(search: Callable[[str | None], Any], limit: int, offset: int) -> tuple[list[Any], int]:
    """MLflow pages by token; the API pages by offset. Reads up to MAX_LISTED entries."""
    items: list[Any] = []
    token = None
    while len(items) < MAX_LISTED:
        page = search(token)
        items.extend(page)
        token = page.token
        if not token:
            break
    return items[offset : offset + limit], len(items)


def _client_error_status(exc: Exception) -> int | None:
    """The HTTP status of MLflow's refusal: an `MlflowException`'s error code, or the answer of
    its artifact server (which raises `requests` errors)."""
    status: Any = getattr(exc, "get_http_status_code", lambda: None)()
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) and status in _CLIENT_ERROR_STATUSES else None


def _network(exc: BaseException) -> bool:
    """Whether the network failed: an OSError (requests' errors are), also when MLflow wraps it
    (its timeouts and connection errors come back as an MlflowException raised from one)."""
    return _chained(exc, lambda seen: isinstance(seen, OSError))


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__  # requests' too


def _chained(exc: BaseException, test: Callable[[BaseException], bool]) -> bool:
    """Whether `exc` or what it was raised from (a few links down) passes `test`."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if test(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
