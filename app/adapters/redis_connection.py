"""One connection to Redis, pipelined: a call's commands are packed by hiredis and written at
once, whatever else is in flight, and Redis's replies, which come in the order the commands were
sent, are parsed by hiredis as they arrive and handed to their callers in that order. No pool, no
lock and no task per call: a call costs the API process about half the CPU that redis-py's
asyncio client spends on one alone, a quarter with 32 callers at once (`bench/cache.py` prints
both), and concurrent callers share one socket.

The URL is read as redis-py reads it: `redis://[[user]:password@]host[:port][/db]`; `rediss://`,
with `ssl_cert_reqs`, `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`, `ssl_check_hostname`;
`unix://path?db=N`; `client_name` names the connection. Other options are refused at start-up.
The connection is opened on first use and again after it is lost. A call that gets no reply within
`timeout_s` fails with `TimeoutError` and the connection is dropped, since later replies could no
longer be matched to their callers. Failures are redis-py's exceptions (`ConnectionError`,
`TimeoutError`, `AuthenticationError`; a failed command's reply is a `ResponseError` in its
place), so callers handle one family of errors."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[Any, ...]
_TLS_OPTIONS = {
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
}
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class RedisConnection:
    def __init__(self, url: str, *, timeout_s: float) -> None:
        options: dict[str, Any] = dict(parse_url(url))
        kind = options.pop("connection_class", None)
        self._path: str | None = (
            options.pop("path", None) if kind is UnixDomainSocketConnection else None
        )
        self._host: str = options.pop("host", "localhost")
        self._port = int(options.pop("port", 6379))
        self._db = int(options.pop("db", 0))
        self._username: str | None = options.pop("username", None)
        self._password: str | None = options.pop("password", None)
        self._name: str | None = options.pop("client_name", None)
        tls = {name: options.pop(name) for name in _TLS_OPTIONS & options.keys()}
        if options:
            raise ValueError(f"Redis URL options not understood: {', '.join(sorted(options))}")
        self._tls = _tls_context(tls) if kind is SSLConnection else None
        self.timeout_s = timeout_s
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """The replies to `commands`, in order (an error reply: a `ResponseError` in its place)."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        return await protocol.call(commands, self.timeout_s)

    async def _connect(self) -> _Protocol:
        async with self._connecting:
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol  # another caller connected meanwhile
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self.timeout_s):
                    if self._path is not None:
                        transport, protocol = await loop.create_unix_connection(
                            _Protocol, self._path
                        )
                    else:
                        transport, protocol = await loop.create_connection(
                            _Protocol,
                            self._host,
                            self._port,
                            ssl=self._tls,
                            server_hostname=self._host if self._tls else None,
                        )
            except TimeoutError as exc:
                raise RedisTimeoutError(
                    f"Connecting to Redis took over {self.timeout_s:g} s"
                ) from exc
            except OSError as exc:
                raise RedisConnectionError(f"Cannot connect to Redis: {exc}") from exc
            protocol.connection_made(transport)  # uvloop may tell it only later
            handshake: list[Command] = []
            if self._password is not None:
                user = (self._username,) if self._username else ()
                handshake.append(("AUTH", *user, self._password))
            if self._db:
                handshake.append(("SELECT", self._db))
            if self._name:
                handshake.append(("CLIENT", "SETNAME", self._name))
            if handshake:
                replies = await protocol.call(handshake, self.timeout_s)
                failed = next((r for r in replies if isinstance(r, ResponseError)), None)
                if failed is not None:
                    protocol.drop(AuthenticationError(str(failed)))
                    raise AuthenticationError(str(failed))
            self._protocol = protocol
            return protocol

    async def close(self) -> None:
        if self._protocol is not None:
            self._protocol.drop(RedisConnectionError("The connection was closed"))
            self._protocol = None


class _Protocol(asyncio.Protocol):
    """The socket's two directions: `call` writes, `data_received` resolves callers in order."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=ResponseError)
        # Each call not yet answered in full: its future, how many replies it awaits, and those
        # received so far.
        self._waiting: deque[tuple[asyncio.Future[list[Any]], int, list[Any]]] = deque()
        self._transport: asyncio.Transport | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream's: an asyncio.Transport

    async def call(self, commands: Sequence[Command], timeout_s: float) -> list[Any]:
        if self.lost is not None:
            raise type(self.lost)(*self.lost.args)
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append((future, len(commands), []))
        self._transport.write(b"".join(map(hiredis.pack_command, commands)))
        timer = loop.call_later(timeout_s, self._late, future, timeout_s)
        try:
            return await future
        finally:
            timer.cancel()

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:  # not RESP: the stream cannot be trusted
                self.drop(RedisConnectionError(f"Redis sent what is not a reply: {exc}"))
                return
            if reply is False:  # the rest of it has not arrived yet
                return
            if not waiting:  # a reply nobody asked for: the stream cannot be trusted
                self.drop(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            future, expected, replies = waiting[0]
            replies.append(reply)
            if len(replies) == expected:
                waiting.popleft()
                if not future.done():  # its caller may have gone away meanwhile
                    future.set_result(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.drop(RedisConnectionError(f"Redis closed the connection{f': {exc}' if exc else ''}"))

    def _late(self, future: asyncio.Future[list[Any]], timeout_s: float) -> None:
        if not future.done():
            self.drop(RedisTimeoutError(f"Redis did not answer within {timeout_s:g} s"))

    def drop(self, error: Exception) -> None:
        """Fail every call still waiting and close: later replies could not be matched."""
        if self.lost is None:
            self.lost = error
        while self._waiting:
            future, _, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()


def _tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if "ssl_certfile" in options:
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    required = str(options.get("ssl_cert_reqs", "required")).lower()
    if required not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
    check = str(options.get("ssl_check_hostname", "true")).lower() not in ("false", "0", "no")
    context.check_hostname = check and required != "none"
    context.verify_mode = _CERT_REQS[required]
    return context
