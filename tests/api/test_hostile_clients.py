"""Clients without a key, against `hokusai-api serve` as users run it: a head that never ends,
a hundred thousand headers, a head or a body trickled byte by byte, and X-Forwarded-For from
someone who is not a proxy. Each is cut off or ignored while another client's calls all succeed."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.core.security import generate_key
from tests.conftest import auth, live_settings
from tests.services_under_test import service_process


@pytest.fixture(scope="module")
def service(
    database_url: str, redis_url: str, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Path]]:
    workdir = tmp_path_factory.mktemp("hostile-clients")
    admin = generate_key()
    settings = live_settings(
        database_url,
        redis_url,
        mlflow_uri,
        workdir,
        admin,
        http_header_timeout_s=1.5,
        http_body_timeout_s=1.5,
        auth_failures_per_minute=20,
    )
    with service_process(settings, workdir) as (url, _):
        yield url, admin, workdir / f"service-{settings.port}.log"


class Neighbour:
    """Another client calling /health all along; every call must succeed, and fast."""

    def __init__(self, url: str) -> None:
        self.url, self.failures, self.slowest, self.calls = url, [], 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(f"{self.url}/health")
                    if response.status_code != 200:
                        self.failures.append(response.status_code)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.calls += 1
                time.sleep(0.02)

    def __enter__(self) -> Neighbour:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        deadline = time.monotonic() + 10
        while self.calls < 5 and time.monotonic() < deadline:  # some calls, whatever happened
            time.sleep(0.05)
        self._stop.set()
        self._thread.join()


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def answer(sock: socket.socket) -> bytes:
    """What the server sent until it closed the connection."""
    received = b""
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_an_endless_header_is_cut_off_and_nobody_else_waits(service: tuple[str, str, Path]) -> None:
    url, *_ = service
    sent = 0
    with Neighbour(url) as neighbour, connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        chunk = b"a" * 65536
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 64 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"application/problem+json" in reply
    assert b'"code": "header_too_large"' in reply
    assert sent < 8 * 1024 * 1024, f"the server read {sent} bytes of one header"
    assert neighbour.calls > 0
    assert neighbour.failures == []


def test_a_hundred_thousand_headers_are_refused(service: tuple[str, str, Path]) -> None:
    url, *_ = service
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: v\r\n" % i for i in range(100_000)
    )
    with Neighbour(url) as neighbour, connect(url) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + b"\r\n")
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"too_many_headers" in reply or b"header_too_large" in reply
    assert neighbour.failures == []


def test_a_trickled_head_is_dropped_after_the_header_timeout(
    service: tuple[str, str, Path],
) -> None:
    url, *_ = service
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    sockets = [connect(url) for _ in range(50)]  # a small slowloris
    try:
        with Neighbour(url) as neighbour:
            closed = set()
            for index in range(len(request)):
                for number, sock in enumerate(sockets):
                    if number in closed:
                        continue
                    try:
                        sock.sendall(request[index : index + 1])
                    except OSError:
                        closed.add(number)
                if len(closed) == len(sockets):
                    break
                time.sleep(0.2)
            replies = [answer(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert all(reply.startswith(b"HTTP/1.1 408 ") for reply in replies), replies[0][:200]
    assert b"header_timeout" in replies[0]
    assert neighbour.failures == []


def test_a_body_that_stops_arriving_is_dropped(service: tuple[str, str, Path]) -> None:
    url, *_ = service
    with connect(url) as sock:
        sock.sendall(
            b"POST /api/v1/models/register HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name": '
        )
        started = time.monotonic()
        reply = answer(sock)
    assert time.monotonic() - started < 8
    # The app may have answered first (it needs a key: 401 is sent once the body is read), or
    # the server did: either way the connection is not held open.
    assert reply.startswith((b"HTTP/1.1 408 ", b"HTTP/1.1 401 ")), reply[:200]


def test_a_well_behaved_client_keeps_its_connection(service: tuple[str, str, Path]) -> None:
    """Keep-alive requests, each sent in several pieces, a pause between them shorter than the
    limits: all answered on one connection."""
    url, *_ = service
    with connect(url) as sock:
        for _ in range(3):
            for piece in (b"GET /health HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                sock.sendall(piece)
                time.sleep(0.3)
            reply = sock.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
            time.sleep(1)


def test_an_answer_leaves_in_one_piece_and_head_and_pipelining_still_work(
    service: tuple[str, str, Path],
) -> None:
    """An answer's head and body leave in one write, so the first read of a small answer holds
    all of it (were they written apart, the first read would often stop after the head); a HEAD
    answer (a head and no body) is not held back, and pipelined requests are answered in order."""
    url, admin, _ = service
    with connect(url) as sock:
        for _ in range(20):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, body = sock.recv(65536).partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            assert head.startswith(b"HTTP/1.1 200 ")
            assert len(body) == length > 0, (head, body)
        sock.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 "), reply
        assert reply.endswith(b"\r\n\r\n"), reply
        key = f"Authorization: Bearer {admin}\r\n".encode()
        sock.sendall(
            b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\n" + key + b"\r\n"
            b"GET /api/v1/models/absent HTTP/1.1\r\nHost: x\r\n" + key + b"\r\n"
        )
        replies = b""
        while replies.count(b"HTTP/1.1 ") < 2 or not replies.endswith(b"}"):
            replies += sock.recv(65536)
    first, second = replies.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 "), first
    assert second.startswith(b"404 "), second
    assert b'"code":"model_not_found"' in second.replace(b" ", b"")


def test_x_forwarded_for_from_a_client_is_not_believed(service: tuple[str, str, Path]) -> None:
    """Rotating X-Forwarded-For does not escape the failure throttle: the peer's address is
    the client's."""
    url, *_ = service
    statuses = []
    early_in_a_minute()
    with httpx.Client(timeout=10) as client:
        for number in range(40):
            response = client.get(
                f"{url}/api/v1/models",
                headers={
                    "Authorization": f"Bearer hk_{'x' * 40}{number:04d}",
                    "X-Forwarded-For": f"198.51.100.{number}",
                },
            )
            statuses.append(response.status_code)
    assert statuses.count(401) == 20
    assert statuses[20:] == [429] * 20


def test_a_valid_key_gets_through_an_address_others_have_failed_from(
    service: tuple[str, str, Path],
) -> None:
    url, admin, _ = service
    key = create_key_sync(url, admin, "read")
    early_in_a_minute()
    with httpx.Client(timeout=10) as client:
        for number in range(30):
            client.get(f"{url}/api/v1/models", headers=auth(f"hk_{'y' * 40}{number:04d}"))
        throttled = client.get(f"{url}/api/v1/models", headers=auth(f"hk_{'y' * 44}"))
        valid = client.get(f"{url}/api/v1/models", headers=auth(key))
    assert throttled.status_code == 429
    assert valid.status_code == 200, valid.text


def create_key_sync(url: str, admin: str, *scopes: str) -> str:
    response = httpx.post(
        f"{url}/api/v1/api-keys",
        json={"name": "hostile-clients", "scopes": list(scopes)},
        headers=auth(admin),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def early_in_a_minute() -> None:
    """Failures are counted per minute: start where the next 2 s stay in one."""
    while time.time() % 60 > 50:
        time.sleep(1)


def test_a_client_that_leaves_mid_upload_is_one_line_in_the_log(
    service: tuple[str, str, Path],
) -> None:
    url, admin, log = service
    before = log.read_text()
    boundary = "hokusaiboundary"
    head = (
        f"POST /api/v1/models/register HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="artifact"; '
        'filename="model.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    with connect(url) as sock:
        sock.sendall(head + b"x" * 200_000)
        time.sleep(0.5)
    time.sleep(1)
    written = log.read_text()[len(before) :]
    assert "Traceback" not in written, written
    assert "unhandled error" not in written, written
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
