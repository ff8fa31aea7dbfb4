"""Outgoing webhooks: JSON signed with HMAC-SHA256, delivered in the background with retries,
never on a request's time. A webhook URL is chosen by whoever holds a `write` key, so it is never
allowed to reach this service's own network: its host is resolved, every address must be public
(unless `HOKUSAI_WEBHOOK_ALLOW_PRIVATE_NETWORKS`), and the connection goes to the address that
was checked (so a DNS answer that changes in between cannot redirect it), with the original Host
header and TLS server name."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from typing import Any

import httpx

from app.core.metrics import Metrics

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hokusai-Signature"


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Refused(Exception):
    """The webhook's host is not a public address."""


# IPv6 prefixes that carry an IPv4 address a router or the kernel may deliver to: NAT64
# (RFC 6052, well-known and local-use) and SIIT/IPv4-translated (RFC 2765). `is_global` calls
# some of them public whatever IPv4 address they hold.
_EMBEDDING = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
)


def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global unicast address; an IPv6 one that embeds an IPv4 address (IPv4-mapped,
    IPv4-compatible, NAT64, SIIT, 6to4) only if the IPv4 address it holds is public too."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded(address)
        if embedded is not None:
            return public(embedded)
    return True


def _embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if packed[:12] == bytes(12):  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some)
        return ipaddress.IPv4Address(packed[12:])
    if any(address in network for network in _EMBEDDING):
        return ipaddress.IPv4Address(packed[12:])
    return None


class Webhooks:
    def __init__(
        self,
        secret: str | None,
        metrics: Metrics,
        *,
        allow_private_networks: bool = False,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
    ) -> None:
        self.secret = secret.encode() if secret else None
        self.allow_private_networks = allow_private_networks
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
                pinned, extensions = await self._pinned(httpx.URL(url), headers)
                response = await self.client.post(
                    pinned, content=body, headers=headers, extensions=extensions
                )
                if response.status_code < 300:
                    self.metrics.webhook_deliveries.labels("delivered").inc()
                    return
            except Refused as exc:
                self.metrics.webhook_deliveries.labels("refused").inc()
                log.warning("webhook to %s refused: %s", url, exc)
                return
            except (httpx.HTTPError, OSError) as exc:
                log.info("webhook to %s failed: %s", url, exc.__class__.__name__)
            if attempt + 1 < self.attempts:
                self.metrics.webhook_deliveries.labels("retried").inc()
                await asyncio.sleep(self.backoff_s * 2**attempt)
        self.metrics.webhook_deliveries.labels("failed").inc()
        log.warning("webhook to %s dropped after %d attempts", url, self.attempts)

    def check(self, url: str) -> None:
        """At creation, what can be told without DNS: a host written as a non-public address,
        or localhost, is refused (`Refused`). Names are checked at each delivery."""
        host = httpx.URL(url).host
        if self.allow_private_networks:
            return
        if host == "localhost" or host.endswith(".localhost"):
            raise Refused("localhost is not a public host")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        if not public(address):
            raise Refused(f"{host} is not a public address")

    async def _pinned(
        self, url: httpx.URL, headers: dict[str, str]
    ) -> tuple[httpx.URL, dict[str, Any]]:
        """`url` with its host replaced by the checked address it resolves to; `headers` gets
        the original Host, and the TLS server name stays the original host."""
        port = url.port or (443 if url.scheme == "https" else 80)
        answers = await asyncio.get_running_loop().getaddrinfo(
            url.host, port, type=socket.SOCK_STREAM
        )
        addresses = [ipaddress.ip_address(answer[4][0]) for answer in answers]
        if not addresses:
            raise OSError(f"{url.host} does not resolve")
        if not self.allow_private_networks and not all(public(a) for a in addresses):
            raise Refused(f"{url.host} resolves to a private, loopback or reserved address")
        headers["Host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        return url.copy_with(host=str(addresses[0])), extensions

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Let queued deliveries finish (at shutdown, or in tests)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout_s)

    async def close(self) -> None:
        await self.drain()
        for task in list(self._pending):
            task.cancel()
        await self.client.aclose()
