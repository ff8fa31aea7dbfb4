"""The HTTP connection layer (`app/api/server.py`) on a real socket: uvicorn with the guarded
protocol, serving a small ASGI app in this process, so the garbage a request leaves can be
counted."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from app.api.server import GuardedHttpToolsProtocol
from app.core.config import Settings
from tests.api.test_hostile_clients import early_in_a_minute
from tests.conftest import serve


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await receive()
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def running(app: Any = answer, **options: Any) -> AsyncIterator[int]:
    """`app` served by uvicorn with the guarded protocol on a free port, in this event loop
    (its lifespan is the caller's to run); `options`: more of uvicorn's settings."""
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http=GuardedHttpToolsProtocol,
        log_config=None,
        access_log=False,
        lifespan="off",
        **options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def test_a_request_leaves_no_reference_cycle_behind() -> None:
    """Whatever a request allocates is freed by reference counting as soon as it is answered:
    none of it waits for the cyclic garbage collector (whose full passes under load cost
    milliseconds each)."""
    async with running() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"

        async def exchange(count: int) -> None:
            for _ in range(count):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 ")
                assert await reader.readexactly(11) == b'{"ok":true}'

        await exchange(50)  # whatever is made once per connection or per process is made now
        gc.collect()
        gc.disable()
        try:
            await exchange(500)
            left = gc.collect()
        finally:
            gc.enable()
        writer.close()
        await writer.wait_closed()
    assert left < 50, f"{left} objects in reference cycles after 500 requests"


# The direct lane: marked routes answered by the connection itself, with the real app.


async def _exchange(port: int, data: bytes, answers: int) -> list[bytes]:
    """`data` written at once; the first `answers` responses, head and body each."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    found = []
    try:
        writer.write(data)
        for _ in range(answers):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            found.append(head + await reader.readexactly(length))
    finally:
        writer.close()
    return found


def _request(path: str, body: bytes, *headers: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: application/json", *headers]
    if not any(h.lower().startswith("transfer-encoding") for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


PREDICT = "/api/v1/models/no-such-model/predict"
ROW = b'{"inputs": {"f0": 1.0}}'


async def test_the_direct_lane_keeps_pipelined_answers_in_order_with_the_others(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    async with serve(make_settings()) as client, running(client.app) as port:  # type: ignore[attr-defined]
        await client.get("/health")  # the app's stack is built, as the lifespan builds it
        key = f"Authorization: Bearer {admin_key}"
        answers = await _exchange(
            port,
            _request(PREDICT, ROW, key, "X-Request-ID: first")
            + b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: second\r\n\r\n"
            + _request(PREDICT, ROW, "X-Request-ID: third"),
            3,
        )
    assert [answer.split(b" ")[1] for answer in answers] == [b"404", b"200", b"401"]
    for answer, request_id in zip(answers, (b"first", b"second", b"third"), strict=True):
        assert b"x-request-id: " + request_id + b"\r\n" in answer
    assert b'"code":"model_not_found"' in answers[0]


async def test_the_direct_lane_reads_bodies_as_the_app_would(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    """A chunked body past the limit is 413; `Expect: 100-continue` is answered before the body
    is sent; `Connection: close` closes after the answer."""
    async with (
        serve(make_settings(max_body_bytes=1024)) as client,
        running(client.app) as port,  # type: ignore[attr-defined]
    ):
        await client.get("/health")
        key = f"Authorization: Bearer {admin_key}"
        chunk = b'{"inputs": {"f0": ' + b" " * 2000 + b"1}}"
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
        [too_large] = await _exchange(
            port, _request(PREDICT, chunked, key, "Transfer-Encoding: chunked"), 1
        )
        assert too_large.startswith(b"HTTP/1.1 413 "), too_large
        assert b'"code":"payload_too_large"' in too_large

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head, body = _request(PREDICT, ROW, key, "Expect: 100-continue").split(b"\r\n\r\n")
        writer.write(head + b"\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 404 ")
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request(PREDICT, ROW, key, "Connection: close"))
        answer = await asyncio.wait_for(reader.read(), 10)  # to the end: the server closes
        writer.close()
    assert answer.startswith(b"HTTP/1.1 404 ")
    assert b"\r\nconnection: close\r\n" in answer.lower()


async def test_the_direct_lane_counts_failures_on_the_address_a_trusted_proxy_forwards(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(auth_failures_per_minute=3)
    async with (
        serve(settings) as client,
        running(client.app, proxy_headers=True, forwarded_allow_ips="127.0.0.1") as port,  # type: ignore[attr-defined]
    ):
        await client.get("/health")
        early_in_a_minute()

        async def status(address: str) -> bytes:
            bad = f"Authorization: Bearer hk_{'x' * 44}"
            [answer] = await _exchange(
                port, _request(PREDICT, ROW, bad, f"X-Forwarded-For: {address}"), 1
            )
            return answer.split(b" ")[1]

        first = [await status("203.0.113.9") for _ in range(5)]
        other = await status("203.0.113.10")
    assert first == [b"401"] * 3 + [b"429"] * 2
    assert other == b"401"
