"""Outgoing webhooks: JSON signed with HMAC-SHA256, delivered in the background with retries,
never on a request's time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

import httpx

from app.core.metrics import Metrics

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hokusai-Signature"


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(
        self,
        secret: str | None,
        metrics: Metrics,
        *,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
    ) -> None:
        self.secret = secret.encode() if secret else None
        self.metrics = metrics
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.client = httpx.AsyncClient(timeout=timeout_s)
        self._pending: set[asyncio.Task[None]] = set()

    def send(self, url: str | None, event: dict[str, Any]) -> None:
        """Queue a delivery and return at once."""
        if url is None:
            return
        task = asyncio.create_task(self._deliver(url, event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, url: str, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":"), default=str).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        for attempt in range(self.attempts):
            try:
                response = await self.client.post(url, content=body, headers=headers)
                if response.status_code < 300:
                    self.metrics.webhook_deliveries.labels("delivered").inc()
                    return
            except httpx.HTTPError as exc:
                log.info("webhook to %s failed: %s", url, exc.__class__.__name__)
            if attempt + 1 < self.attempts:
                self.metrics.webhook_deliveries.labels("retried").inc()
                await asyncio.sleep(self.backoff_s * 2**attempt)
        self.metrics.webhook_deliveries.labels("failed").inc()
        log.warning("webhook to %s dropped after %d attempts", url, self.attempts)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Let queued deliveries finish (at shutdown, or in tests)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout_s)

    async def close(self) -> None:
        await self.drain()
        for task in list(self._pending):
            task.cancel()
        await self.client.aclose()
