"""The reference for the service's CPU per request: two bare ASGI apps under uvicorn, no
framework (as `../shared/bench-peers/` runs them). `model` parses the service's own request body
(`{"inputs": {"f0": .., "f1": .., "f2": ..}}`), builds a 1x3 float64 row and calls the fitted
estimator's `predict` in the event loop (no MLflow, no pandas, no sandbox, no batching, no cache,
no key); `constant` reads the body and answers a constant. `BENCH_MODEL` names a skops file.

    BENCH_MODEL=model.skops uvicorn bench.bare_model:model --no-access-log
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

FEATURES = ("f0", "f1", "f2")
HEADERS = [(b"content-type", b"application/json")]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, payload: bytes) -> None:
    headers = [*HEADERS, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send, startup: Callable[[], None]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def constant(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, lambda: None)
        return
    await _body(receive)
    await _answer(send, 200, b'{"predictions": [1]}')


_loaded: dict[str, Any] = {}


def _load() -> None:
    import numpy as np
    import skops.io as sio

    path = os.environ["BENCH_MODEL"]
    _loaded["model"] = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    _loaded["np"] = np


async def model(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, _load)
        return
    body = await _body(receive)
    if scope["path"] == "/health":
        await _answer(send, 200, b'{"status": "ok"}')
        return
    np = _loaded["np"]
    try:
        row = json.loads(body)["inputs"]
        x = np.array([[float(row[name]) for name in FEATURES]], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as exc:
        await _answer(send, 422, json.dumps({"error": str(exc)}).encode())
        return
    y = _loaded["model"].predict(x)
    await _answer(send, 200, json.dumps({"predictions": y.tolist()}).encode())
