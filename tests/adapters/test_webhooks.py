from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from app.adapters.webhooks import Webhooks
from app.core.metrics import Metrics
from tests.services_under_test import free_port


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` deliveries, then 204."""

    failures = 0
    bodies: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # the http.server hook
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Flaky.failures > 0:
            Flaky.failures -= 1
            self.send_response(503)
        else:
            Flaky.bodies.append((self.headers["X-Hokusai-Signature"], body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    Flaky.failures, Flaky.bodies = 2, []
    server = HTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def count(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "hokusai_webhook_deliveries_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_a_failing_receiver_gets_the_event_after_retries(flaky: str) -> None:
    metrics = Metrics()
    webhooks = Webhooks("s3cret", metrics, allow_private_networks=True, backoff_s=0.01)
    webhooks.send(flaky, {"type": "ab_test.status_changed", "to": "running"})
    await webhooks.close()
    [(signature, body)] = Flaky.bodies
    assert signature == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert (count(metrics, "retried"), count(metrics, "delivered"), count(metrics, "failed")) == (
        2,
        1,
        0,
    )


async def test_an_unreachable_receiver_is_given_up_without_blocking() -> None:
    metrics = Metrics()
    webhooks = Webhooks(
        None, metrics, allow_private_networks=True, attempts=3, backoff_s=0.01, timeout_s=1
    )
    webhooks.send(f"http://127.0.0.1:{free_port()}/hook", {"type": "x"})  # returns at once
    assert count(metrics, "failed") == 0
    await webhooks.close()
    assert (count(metrics, "retried"), count(metrics, "failed")) == (2, 1)
