"""The HTTP connection layer (`app/api/server.py`) on a real socket: uvicorn with the guarded
protocol, serving a small ASGI app in this process, so the garbage a request leaves can be
counted."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import Receive, Scope, Send

from app.api.server import GuardedHttpToolsProtocol


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await receive()
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(
        answer, http=GuardedHttpToolsProtocol, log_config=None, access_log=False, lifespan="off"
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
