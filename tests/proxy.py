"""A TCP proxy a test can cut or freeze: the real server keeps running, the service loses it for
real (a closed port), or waits on it for real (a server that accepts and never answers)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.open = True
        self.frozen = threading.Event()
        self.rate: float | None = None  # bytes per second each way, when throttled
        threading.Thread(target=self._accept, daemon=True).start()

    def restore(self) -> None:
        """After `cut`: listen on the same port again, as a server that comes back."""
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.frozen.is_set():  # accepted, never answered
                with self.lock:
                    self.connections.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # the 5 s bound the connect only: a slow answer is no cut
            with self.lock:
                self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(16384):
                if not self.frozen.is_set():  # frozen: what is sent is swallowed
                    sink.sendall(data)
                    if self.rate:  # a slow link: each chunk takes its time
                        time.sleep(len(data) / self.rate)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def freeze(self) -> None:
        """From now on nothing is forwarded either way, and new connections are accepted but
        never answered: a server that hangs, not one that is gone."""
        self.frozen.set()

    def throttle(self, bytes_per_s: float | None) -> None:
        """Forward at most this many bytes a second on each connection (None: as fast as it
        can): a slow link, not a hung server."""
        self.rate = bytes_per_s

    def thaw(self) -> None:
        """Forward again (what was swallowed while frozen stays lost)."""
        self.frozen.clear()

    def cut(self) -> None:
        """Stop listening and drop every open connection: the port is closed from now on."""
        self.open = False
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        with self.lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self.connections.clear()


def database_behind_proxy(url: str) -> tuple[Proxy, str]:
    """A proxy in front of the Postgres at `url`, and the URL that reaches it through the proxy."""
    from sqlalchemy import make_url

    parsed = make_url(url)
    proxy = Proxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    through = parsed.set(host="127.0.0.1", port=proxy.port)
    return proxy, through.render_as_string(hide_password=False)
