"""MLflow, the only module that imports mlflow. The sync client runs in worker threads with a
timeout; an unreachable or failing server becomes `RegistryUnavailable` (503 + Retry-After)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from app.core.config import Settings
from app.core.errors import RegistryUnavailable

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
        self._client: MlflowClient | None = None
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
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    async def call(self, fn: Callable[[MlflowClient], T], *, timeout_s: float | None = None) -> T:
        """Run `fn(client)` in a worker thread. Errors MLflow reports about the request itself
        (not found, bad parameter, conflict) pass through as `MlflowException`."""
        if self._client is None:
            raise RegistryUnavailable("MLflow client is starting", retry_after=self.retry_after_s)
        client = self._client
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor, fn, client), timeout_s or self.timeout_s
            )
        except TimeoutError as exc:
            raise RegistryUnavailable(
                f"MLflow did not answer within {timeout_s or self.timeout_s:g} s",
                retry_after=self.retry_after_s,
            ) from exc
        except Exception as exc:
            if _is_client_error(exc):
                raise
            raise RegistryUnavailable(
                f"MLflow call failed: {exc.__class__.__name__}", retry_after=self.retry_after_s
            ) from exc

    async def ping(self, timeout_s: float) -> None:
        await self.call(
            lambda client: client.search_experiments(max_results=1), timeout_s=timeout_s
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _is_client_error(exc: Exception) -> bool:
    status: Any = getattr(exc, "get_http_status_code", lambda: None)()
    return isinstance(status, int) and status in _CLIENT_ERROR_STATUSES
