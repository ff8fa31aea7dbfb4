"""The HTTP/1.1 connection: uvicorn's httptools protocol with the limits it lacks. A request's
head (request line and headers) is bounded in bytes and in header count (431), must arrive whole
within a time limit (408), and a body that stops arriving is cut off (408); so one client cannot
hold memory, the event loop or a connection slot by sending slowly or endlessly.

A response's head leaves with the first chunk of its body, in one write (uvicorn writes each
with a `send` of its own: one system call and one TCP segment more per answer).

The direct lane: a request for a marked route (`@short`, `app/api/routing.py`) is answered
without the ASGI layers in between. Where uvicorn would start the app on the request's cycle,
the connection asks the app's lane for the route's `Response` (the same handler, the app's
request context and exception handlers, the body read through the cycle as the app would read
it) and writes it, head and body, in one write, then ends the cycle as uvicorn's `send` ends it.
A request the lane does not serve, a response without a body at hand (streamed), and an app
the lane cannot answer for (other middleware) go through uvicorn's cycle as ever.

Everything else (parsing, keep-alive, pipelining, flow control, the ASGI cycle) is uvicorn's.
`serve` installs it as `http="app.api.server:GuardedHttpToolsProtocol"` and sets `limits`."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            max_headers=settings.http_max_headers,
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
        )


class _Refused(Exception):
    """Raised from a parser callback: the request is refused with this status."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


_TITLES = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between the first byte of a request and its last header
        self._in_body = False  # between its last header and the end of its body
        self._head_bytes = 0
        self._header_count = 0
        self._body_moved_at = 0.0
        # Armed only while a head or a body is incomplete after the bytes at hand: a request
        # that arrives whole (the common case) sets no timer at all.
        self._deadline: asyncio.TimerHandle | None = None
        self._lane: Any = _lane_of(self.app)

    # The head: bytes, count, time.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, "head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        else:
            self._body_moved_at = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _Refused):
                self._refuse(error.__context__)
                return
            self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(_too_large(self.limits.max_header_bytes))
        elif self._deadline is None and (self._in_body or (self._in_head and self._head_bytes)):
            # Incomplete: the rest must come in time (a head from its first byte on).
            phase = "body" if self._in_body else "head"
            seconds = self.limits.body_timeout_s if self._in_body else self.limits.header_timeout_s
            self._body_moved_at = self.loop.time()
            self._arm(seconds, phase)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.limits.max_header_bytes:
            raise _too_large(self.limits.max_header_bytes)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise _Refused(
                431,
                "too_many_headers",
                f"More than {self.limits.max_headers} header fields",
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._in_body = False, True
        self._head_bytes = 0
        self._disarm()
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before and self.scope["method"] != "HEAD":
            cycle.transport = _HeadWithBody(self.transport)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._in_body = True, False  # next comes the next request's head
        super().on_message_complete()

    # The direct lane.

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        lane, proxy = self._lane
        scope: Any = cycle.scope
        served = lane is not None and app is self.app and scope["method"] != "HEAD"
        if not served or lane.match(scope) is None:
            super()._start_asgi_task(cycle, app)
            return
        task = self.loop.create_task(_answer_directly(cycle, lane, proxy))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    # Timers.

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        if seconds > 0:
            self._deadline = self.loop.call_later(seconds, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if phase == "body" and not self._in_body:
            return
        if phase == "body":
            waited = self.loop.time() - self._body_moved_at
            if self.flow.read_paused or waited < self.limits.body_timeout_s:
                # The app is behind, not the client, or the body moved meanwhile: from then on.
                left = self.limits.body_timeout_s - (0 if self.flow.read_paused else waited)
                self._arm(left, "body")
                return
        if phase == "head" and not self._in_head:
            return
        started = self.cycle is not None and self.cycle.response_started
        if phase == "body" and started:
            self.transport.close()  # too late for a status: just end it
            return
        seconds = self.limits.header_timeout_s if phase == "head" else self.limits.body_timeout_s
        what = "headers" if phase == "head" else "body"
        self._refuse(
            _Refused(
                408,
                f"{what}_timeout" if phase == "body" else "header_timeout",
                f"The request's {what} did not arrive within {seconds:g} s",
            )
        )

    # Answers.

    def _refuse(self, refused: _Refused) -> None:
        """A problem+json answer, then the connection is closed (its stream is not trusted)."""
        log.info("refused a request from %s: %s", _peer(self.client), refused.detail)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app, if it runs, sees the client gone
            self.cycle.message_event.set()
        body = json.dumps(
            {
                "type": f"https://hokusai.ai/problems/{refused.code}",
                "title": _TITLES[refused.status],
                "status": refused.status,
                "code": refused.code,
                "detail": refused.detail,
            }
        ).encode()
        head = [
            f"HTTP/1.1 {refused.status} {_TITLES[refused.status]}\r\n".encode(),
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/problem+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self._disarm()
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _invalid(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)


class _HeadWithBody(asyncio.Transport):
    """One response's writes: its head is held until the first chunk of its body and leaves with
    it (a HEAD request's head has no body to wait for: it is not wrapped). A `100 Continue`, the
    only thing uvicorn writes before a response's head, is not held. It holds no reference to
    the cycle that writes through it: the two would make a reference cycle per request, left to
    the garbage collector."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self.transport = transport
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._head_seen:
            if bytes(data[:13]) == b"HTTP/1.1 100 ":
                self.transport.write(data)
                return
            self._head_seen, self._head = True, bytes(data)
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self.transport.write(data)

    def close(self) -> None:
        if self._head is not None:
            self.transport.write(self._head)
            self._head = None
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


def _lane_of(app: Any) -> tuple[Any, ProxyHeadersMiddleware | None]:
    """The app's lane for marked routes when it can answer directly, and uvicorn's forwarding
    middleware in front of the app, if any (its rewrite of the client's address still applies).
    The lane exists once the app has built its middleware stack, at start-up."""
    proxy = None
    if isinstance(app, ProxyHeadersMiddleware):
        proxy = copy.copy(app)  # the same trusted proxies, in front of nothing
        proxy.app, app = _nothing, app.app
    lane = getattr(app, "middleware_stack", None)
    if getattr(lane, "context", None) is None:
        return None, None
    return lane, proxy


async def _answer_directly(cycle: RequestResponseCycle, lane: Any, proxy: Any) -> None:
    """A marked route's answer on `cycle`, as uvicorn's `run_asgi` and `send` would give it."""
    scope: Any = cycle.scope
    receive: Any = cycle.receive
    try:
        if proxy is not None:
            await proxy(scope, receive, _nothing)  # only rewrites the scope
        response: Response = await lane.respond(scope, receive)
        body = getattr(response, "body", None)
        if not isinstance(body, bytes):  # a streamed answer: through the cycle
            await response(scope, receive, cycle.send)  # type: ignore[arg-type]
            return
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()
        _write(cycle, response.status_code, response.raw_headers, body)
    except BaseException as exc:
        cycle.logger.error("Exception in ASGI application\n", exc_info=exc)
        if not cycle.response_started:
            await cycle.send_500_response()
        else:
            cycle.transport.close()
    finally:
        cycle.on_response = lambda: None


def _write(cycle: RequestResponseCycle, status: int, headers: list[Any], body: bytes) -> None:
    """A whole response in one write; then the cycle ends as uvicorn's `send` ends it."""
    if cycle.disconnected:
        return
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    if cycle.access_log:
        cycle.access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(cycle.scope),
            cycle.scope["method"],
            get_path_with_query_string(cycle.scope),
            cycle.scope["http_version"],
            status,
        )
    content = [STATUS_LINE[status]]
    closes = False
    for name, value in (*cycle.default_headers, *headers):
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
            raise RuntimeError("Invalid HTTP header.")
        name = name.lower()
        if name == b"connection" and b"close" in (t.strip() for t in value.lower().split(b",")):
            cycle.keep_alive, closes = False, True
        content += (name, b": ", value, b"\r\n")
    if not cycle.keep_alive and not closes:
        content.append(b"connection: close\r\n")
    content += (b"\r\n", body)
    transport = cycle.transport
    if isinstance(transport, _HeadWithBody):
        transport = transport.transport
    transport.write(b"".join(content))
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        transport.close()
    cycle.on_response()


async def _nothing(scope: Any, receive: Any, send: Any) -> None:
    return None


def _too_large(limit: int) -> _Refused:
    return _Refused(431, "header_too_large", f"The request's head is larger than {limit} bytes")


def _peer(client: Any) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown"
