"""The pipelined Redis connection, against real Redis servers: the shared test server, one through
a proxy that freezes, and one of the test's own that speaks only TLS and asks for a password."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.adapters.cache import Cache
from app.adapters.redis_connection import RedisConnection
from app.core.metrics import Metrics
from tests.proxy import Proxy
from tests.services_under_test import free_port


async def test_concurrent_callers_share_one_socket_and_each_gets_its_own_replies(
    redis_url: str,
) -> None:
    connection = RedisConnection(redis_url, timeout_s=2)
    counter = f"t-{uuid.uuid4().hex}"
    try:
        answers = await asyncio.gather(
            *(
                connection.execute([("ECHO", f"m{i}"), ("INCR", counter), ("CLIENT", "ID")])
                for i in range(300)
            )
        )
        assert [echo for echo, _, _ in answers] == [f"m{i}".encode() for i in range(300)]
        assert sorted(count for _, count, _ in answers) == list(range(1, 301))
        assert len({client for _, _, client in answers}) == 1  # one connection for all
        replies = await connection.execute(
            [("SET", counter, "x"), ("INCR", counter), ("GET", counter)]
        )
        assert replies[0] == b"OK"
        assert isinstance(replies[1], ResponseError)  # in its place; the others answered
        assert replies[2] == b"x"
        await connection.execute([("DEL", counter)])
    finally:
        await connection.close()


async def test_a_cancelled_caller_leaves_the_replies_in_step(redis_url: str) -> None:
    """A caller that goes away while its command runs: its reply is read and dropped, and the
    next caller gets its own, not that one."""
    connection = RedisConnection(redis_url, timeout_s=2)
    try:
        blocked = asyncio.create_task(
            connection.execute([("BLPOP", f"t-{uuid.uuid4().hex}", "0.3")])
        )
        await asyncio.sleep(0.05)
        blocked.cancel()
        assert await connection.execute([("ECHO", "after")]) == [b"after"]
    finally:
        await connection.close()


async def test_a_hung_redis_is_a_timeout_and_the_next_call_connects_again(redis_url: str) -> None:
    parts = urlsplit(redis_url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    connection = RedisConnection(f"redis://127.0.0.1:{proxy.port}/0", timeout_s=0.3)
    try:
        [first] = await connection.execute([("CLIENT", "ID")])
        proxy.freeze()
        started = time.monotonic()
        waiting = [connection.execute([("PING",)]) for _ in range(5)]
        failures = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(f, RedisTimeoutError) for f in failures), failures
        assert time.monotonic() - started < 1.5
        proxy.thaw()
        [second] = await connection.execute([("CLIENT", "ID")])
        assert second != first  # a new connection: the hung one could not be trusted
    finally:
        await connection.close()
        proxy.cut()


async def test_a_connection_redis_closes_is_opened_again(redis_url: str) -> None:
    connection = RedisConnection(redis_url, timeout_s=1)
    raw = redis.Redis.from_url(redis_url)
    try:
        [first] = await connection.execute([("CLIENT", "ID")])
        raw.client_kill_filter(_id=first)
        for _ in range(50):  # the loss arrives as an event on the loop
            try:
                [second] = await connection.execute([("CLIENT", "ID")])
                break
            except RedisConnectionError:
                await asyncio.sleep(0.02)
        assert second != first
    finally:
        raw.close()
        await connection.close()


async def test_a_server_that_does_not_speak_redis_is_a_connection_error() -> None:
    """Bytes that are not a reply, or a reply nobody asked for: the stream cannot be trusted,
    every call in flight fails at once and the next call opens a new connection."""
    answers = [b"HTTP/1.1 400 Bad Request\r\n\r\n", b"+OK\r\n+NOBODY ASKED\r\n", b"+PONG\r\n"]
    connections = 0

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(1024)
        writer.write(answers[connections - 1])
        await writer.drain()
        await reader.read(1024)  # a second command on this connection is never answered
        writer.close()

    server = await asyncio.start_server(impostor, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = RedisConnection(f"redis://127.0.0.1:{port}/0", timeout_s=2)
    try:
        started = time.monotonic()
        with pytest.raises(RedisConnectionError, match="not a reply"):
            await connection.execute([("PING",)])
        assert await connection.execute([("PING",)]) == [b"OK"]
        await asyncio.sleep(0.05)  # the reply nobody asked for arrives: the connection is dropped
        assert await connection.execute([("PING",)]) == [b"PONG"]
        assert connections == 3
        assert time.monotonic() - started < 1.5
    finally:
        await connection.close()
        server.close()


def test_options_it_does_not_understand_are_refused() -> None:
    with pytest.raises(ValueError, match="socket_keepalive"):
        RedisConnection("redis://127.0.0.1:6379/0?socket_keepalive=true", timeout_s=1)
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        RedisConnection("rediss://127.0.0.1:6379/0?ssl_cert_reqs=sometimes", timeout_s=1)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A Redis of this test's own: TLS only, a password for the default user, and a user
    `alice`; yields its port and the certificate that signs it."""
    folder = tmp_path_factory.mktemp("tls-redis")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = (folder / "redis.log").open("wb")
    server = subprocess.Popen(
        [
            *(shutil.which("redis-server") or "redis-server", "--port", "0"),
            *("--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"),
            *("--requirepass", "open-sesame"),
            *("--user", "alice", "on", ">wonderland", "~*", "&*", "+@all"),
            *("--save", "", "--appendonly", "no", "--dir", str(folder)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()  # the server has its own copy
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(
                    port=port, password="open-sesame", ssl=True, ssl_ca_certs=str(cert)
                ).ping()
                break
            except redis.RedisError:
                time.sleep(0.1)
        else:
            pytest.fail(f"Redis with TLS did not start: {(folder / 'redis.log').read_text()}")
        yield port, cert
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_tls_a_password_a_user_a_database_and_a_name_are_used(
    tls_redis: tuple[int, Path],
) -> None:
    port, cert = tls_redis
    where = f"127.0.0.1:{port}/3?ssl_ca_certs={cert}"
    for url in (f"rediss://:open-sesame@{where}", f"rediss://alice:wonderland@{where}"):
        connection = RedisConnection(f"{url}&client_name=hokusai-test", timeout_s=2)
        try:
            [info] = await connection.execute([("CLIENT", "INFO")])
            assert b" db=3 " in info
            assert b" name=hokusai-test " in info
            assert (b" user=alice " in info) == url.startswith("rediss://alice")
        finally:
            await connection.close()


async def test_a_wrong_password_a_plain_socket_or_an_unknown_certificate_fail_clearly(
    tls_redis: tuple[int, Path],
) -> None:
    port, cert = tls_redis
    wrong = RedisConnection(f"rediss://:guess@127.0.0.1:{port}/0?ssl_ca_certs={cert}", timeout_s=2)
    with pytest.raises(AuthenticationError):
        await wrong.execute([("PING",)])
    unknown = RedisConnection(f"rediss://:open-sesame@127.0.0.1:{port}/0", timeout_s=2)
    with pytest.raises(RedisConnectionError, match="certificate verify failed"):
        await unknown.execute([("PING",)])
    plain = RedisConnection(f"redis://:open-sesame@127.0.0.1:{port}/0", timeout_s=0.5)
    with pytest.raises((RedisConnectionError, RedisTimeoutError)):
        await plain.execute([("PING",)])
    # The cache on top: a miss and a metric, never an error.
    metrics = Metrics()
    cache = Cache(
        f"rediss://:guess@127.0.0.1:{port}/0?ssl_ca_certs={cert}",
        prefix="t",
        timeout_s=2,
        metrics=metrics,
    )
    try:
        assert await cache.get_many(["a", "b"]) == [None, None]
    finally:
        await cache.close()
    errors = metrics.registry.get_sample_value(
        "hokusai_cache_operations_total", {"operation": "get", "result": "error"}
    )
    assert errors == 1
