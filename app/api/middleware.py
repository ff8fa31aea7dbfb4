"""Pure ASGI middleware: request id, access log, request metrics, the body size limit, and no NUL
in the URL (Postgres text cannot hold it; bodies are checked by their schemas)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from random import getrandbits
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.contract import documented_path
from app.api.errors import CarriedError, error_response
from app.core.errors import ArtifactTooLarge, PayloadTooLarge, ValidationFailed
from app.core.logging import request_id_var
from app.core.metrics import Metrics

log = logging.getLogger("hokusai.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_READ = frozenset({b"x-request-id", b"content-type", b"content-length"})


class RequestContext:
    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int, max_artifact_bytes: int
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_artifact_bytes = max_artifact_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, limited, refused = self._open(scope, receive)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        self.metrics.request_began()
        try:
            if refused is not None:
                await refused(scope, receive, send_with_id)
            else:
                await self.app(scope, limited, send_with_id)
        finally:
            self.metrics.request_ended()
            self._close(scope, status, started)

    async def respond(
        self,
        scope: Scope,
        receive: Receive,
        respond: Callable[[Scope, Receive], Awaitable[Response]],
    ) -> Response:
        """The same context around an app that returns its `Response` instead of sending it
        (the connection's direct lane, `app/api/server.py`): the caller writes it."""
        request_id, limited, refused = self._open(scope, receive)
        status = 500
        started = time.perf_counter()
        self.metrics.request_began()
        try:
            response = refused if refused is not None else await respond(scope, limited)
            response.headers["X-Request-ID"] = request_id  # as `send_with_id` sets it
            status = response.status_code
            return response
        finally:
            self.metrics.request_ended()
            self._close(scope, status, started)

    def _open(self, scope: Scope, receive: Receive) -> tuple[str, Receive, Response | None]:
        """The request's id (set for the logs), its body reader with the size limit, and the
        answer when the request is refused before it is read."""
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:  # one pass; the first of each, as Headers reads
            if name in _READ and name not in found:
                found[name] = value
        sent_id = found.get(b"x-request-id", b"").decode("latin-1")
        upload = found.get(b"content-type", b"").decode("latin-1")
        declared = found.get(b"content-length", b"").decode("latin-1")
        # A fresh id needs to be unique, not secret: 128 bits of the process's PRNG, without
        # the system call `uuid4` makes on every request.
        request_id = sent_id if _REQUEST_ID.match(sent_id) else f"{getrandbits(128):032x}"
        # Not reset afterwards: each request runs in its own task context, and the handler of
        # unexpected errors runs outside this middleware yet must still know the id.
        request_id_var.set(request_id)
        is_upload = upload.startswith("multipart/form-data")
        limit = self.max_artifact_bytes if is_upload else self.max_body_bytes
        too_large = ArtifactTooLarge if is_upload else PayloadTooLarge
        refused: Response | None = None
        nul = _nul_in_url(scope)
        if nul:
            refused = error_response(ValidationFailed.of(nul))
        elif declared.isdigit() and int(declared) > limit:
            refused = error_response(too_large(f"The request body exceeds {limit} bytes"))
        return request_id, _limited(receive, limit, too_large), refused

    def _close(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = getattr(scope.get("route"), "path_format", "unmatched")
        labels = (route, scope["method"], str(status))
        self.metrics.child(self.metrics.requests, *labels).inc()
        self.metrics.child(self.metrics.request_seconds, *labels).observe(elapsed)
        if log.isEnabledFor(logging.INFO):  # skip building the record on every request
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "route": route,
                },
            )


def _nul_in_url(scope: Scope) -> list[dict[str, Any]]:
    """The path and query parameters holding a NUL character (two substring checks per request;
    the parameters are named only when there is one)."""
    query: bytes = scope["query_string"]
    in_path = "\x00" in scope["path"]
    if not in_path and b"%00" not in query and b"\x00" not in query:
        return []
    msg, kind = "must not contain NUL characters", "string_pattern_mismatch"
    errors = [
        {"loc": ["query", name], "msg": msg, "type": kind}
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        if "\x00" in name + value
    ]
    if in_path:
        documented = documented_path(scope["app"], scope["path"])
        named = [
            {"loc": ["path", name], "msg": msg, "type": kind}
            for name, value in (documented.params if documented else {}).items()
            if "\x00" in str(value)
        ]
        errors += named or [{"loc": ["path"], "msg": msg, "type": kind}]
    return errors


def _limited(receive: Receive, limit: int, too_large: type[PayloadTooLarge]) -> Receive:
    """Counts the bytes of a body sent without (or with a false) Content-Length."""
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise CarriedError(too_large(f"The request body exceeds {limit} bytes"))
        return message

    return receive_limited
