"""What hostile clients and hung dependencies cost everyone else, this checkout beside a reference
commit, in one run: another client's `GET /health` latency (sequential calls) unattacked, under
four sockets sending one endless header, and under a slowloris of 200 sockets trickling their
heads; uncached predictions (keys re-checked every second) with Postgres up and with Postgres
accepting and never answering; how long into an MLflow hang the first fast 503 comes; and the
event loop's worst lag while `production` moves (and the new version loads), and over the run.

    scripts/with-services .venv/bin/python bench/hostile.py
    python bench/hostile.py --reference 1bc450e --seconds 8
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.security import generate_key  # noqa: E402
from bench.server import checkout, service, stores  # noqa: E402
from tests.proxy import Proxy, database_behind_proxy  # noqa: E402


def health_latency(url: str, seconds: float) -> dict[str, float]:
    """Sequential /health calls for `seconds`: p50, p99, max (ms) and failures."""
    timings, failures = [], 0
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                ok = client.get(f"{url}/health").status_code == 200
            except httpx.HTTPError:
                ok = False
            timings.append((time.perf_counter() - started) * 1000)
            failures += not ok
    return summary(timings, failures)


def summary(timings: list[float], failures: int) -> dict[str, float]:
    """p50, p99 and max of `timings` (ms), and the failures."""
    timings = sorted(timings)
    return {
        "p50": statistics.median(timings),
        "p99": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        "max": timings[-1],
        "failures": failures,
    }


@contextlib.contextmanager
def attack(
    url: str, send: Callable[[socket.socket, threading.Event], None], sockets: int
) -> Iterator[None]:
    parts = urlsplit(url)
    stop = threading.Event()
    threads = []

    def run() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
                    send(sock, stop)
            except OSError:
                time.sleep(0.05)

    for _ in range(sockets):
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
    time.sleep(1)  # the attack is under way
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def endless_header(sock: socket.socket, stop: threading.Event) -> None:
    """One header that never ends (at most 64 MiB a connection, so the reference's memory stays
    within this machine's)."""
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ")
    chunk = b"a" * 65536
    for _ in range(1024):
        if stop.is_set():
            return
        sock.sendall(chunk)
    stop.wait(30)


def slowloris(sock: socket.socket, stop: threading.Event) -> None:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    while not stop.is_set():
        sock.sendall(b"X: y\r\n")
        stop.wait(1)


def first_fast_503(url: str, key: str, proxy: Proxy, limit_s: float = 120) -> float:
    """Seconds from the freeze to the first registry call answered 503 in under 0.5 s."""
    proxy.freeze()
    frozen = time.monotonic()
    with httpx.Client(timeout=limit_s) as client:
        while time.monotonic() - frozen < limit_s:
            started = time.monotonic()
            try:
                response = client.get(
                    f"{url}/api/v1/experiments", headers={"Authorization": f"Bearer {key}"}
                )
            except httpx.HTTPError:  # a connection the attack left behind: try again
                continue
            if response.status_code == 503 and time.monotonic() - started < 0.5:
                return time.monotonic() - frozen
    return float("inf")


def predictions_with_postgres_frozen(
    url: str, key: str, database: Proxy, workdir: str, seconds: float
) -> dict[str, dict[str, float]]:
    """Distinct rows (no cache) predicted one after another, unattacked and while Postgres
    accepts and never answers: p50, p99 (ms) and failures of each."""
    import json

    from tests.factories import baseline, save_sklearn, tar_gz, unique

    headers = {"Authorization": f"Bearer {key}"}
    name = unique("bench-hostile")
    with httpx.Client(timeout=60) as client:
        archive = tar_gz(save_sklearn(Path(workdir) / name)[0])
        registered = client.post(
            f"{url}/api/v1/models/register",
            data={"metadata": json.dumps(baseline(name))},
            files={"artifact": ("model.tar.gz", archive, "application/octet-stream")},
            headers=headers,
        )
        registered.raise_for_status()
        counter = iter(range(10**9))

        def run() -> dict[str, float]:
            timings, failures = [], 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                row = {"f0": next(counter) / 1e6, "f1": 0.5, "f2": 0.25}
                started = time.perf_counter()
                try:
                    answer = client.post(
                        f"{url}/api/v1/models/{name}/predict", json={"inputs": row}, headers=headers
                    )
                    failures += answer.status_code != 200
                except httpx.HTTPError:
                    failures += 1
                timings.append((time.perf_counter() - started) * 1000)
            return summary(timings, failures)

        run()  # the model loaded, the key trusted
        results = {"predict, Postgres up": run()}
        database.freeze()
        try:
            results["predict, Postgres frozen"] = run()
        finally:
            database.thaw()
    return results


def lag_buckets(url: str) -> dict[float, float]:
    """hokusai_event_loop_lag_seconds's cumulative bucket counts, by upper bound (s)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        float(bound): float(count)
        for bound, count in re.findall(
            r'^hokusai_event_loop_lag_seconds_bucket\{le="([^"+]+)"\} (\S+)$', text, re.M
        )
    }


def loop_lag_max_ms(url: str, since: dict[float, float] | None = None) -> float | None:
    """The smallest bucket bound that holds every lag observed (since `since`), in ms: the
    worst lag, rounded up to the histogram's bucket; None when the service has no such metric."""
    now = lag_buckets(url)
    if not now:
        return None
    counts = {bound: count - (since or {}).get(bound, 0.0) for bound, count in now.items()}
    total = max(counts.values())
    below = [bound for bound, count in counts.items() if count >= total]
    return min(below) * 1000 if below else float("inf")


def production_move_lag_ms(url: str, key: str, workdir: str) -> float | None:
    """The worst loop lag while `production` moves to a new version and it is loaded and warmed
    up (the runner starts, the model loads) and predicted from."""
    import json

    from tests.factories import baseline, save_sklearn, tar_gz, unique

    headers = {"Authorization": f"Bearer {key}"}
    name = unique("bench-move")
    with httpx.Client(timeout=60) as client:
        for number in (1, 2):
            archive = tar_gz(save_sklearn(Path(workdir) / f"{name}-{number}")[0])
            client.post(
                f"{url}/api/v1/models/register",
                data={"metadata": json.dumps(baseline(name))},
                files={"artifact": ("model.tar.gz", archive, "application/octet-stream")},
                headers=headers,
            ).raise_for_status()
        before = lag_buckets(url)
        for number in (1, 2):
            client.put(
                f"{url}/api/v1/models/{name}/aliases/production",
                json={"version": number},
                headers=headers,
            ).raise_for_status()
            for row in range(20):
                client.post(
                    f"{url}/api/v1/models/{name}/predict",
                    json={"inputs": {"f0": row / 100, "f1": 0.5, "f2": 0.25}},
                    headers=headers,
                ).raise_for_status()
        time.sleep(1.5)  # the lag watcher's samples of the move are in
    return loop_lag_max_ms(url, before) if before else None


def measure(label: str, source: Path | None, seconds: float) -> dict[str, object]:
    key = generate_key()
    results: dict[str, object] = {"label": label}
    with stores(real_mlflow=True) as where:  # each service builds its own schema at start
        target = urlsplit(where.mlflow_uri)
        proxy = Proxy(target.hostname or "127.0.0.1", target.port or 80)
        database, through = database_behind_proxy(where.database_url)
        settings = {
            **where.settings,
            "database_url": through,
            "mlflow_tracking_uri": proxy.url,
            "mlflow_timeout_s": "5",
            "auth_failures_per_minute": "0",
            "rate_limit_per_minute": "0",
            "auth_cache_ttl_s": "1",  # lookups during the freeze, not just cached keys
            "cache_ttl_s": "1",
        }
        try:
            with service(where.workdir, key, source, **settings) as url:
                results.update(
                    predictions_with_postgres_frozen(url, key, database, where.workdir, seconds)
                )
                database.cut()
                database.restore()
                time.sleep(6)  # past the replica's memory of the hang
                results["loop lag, production move (ms)"] = production_move_lag_ms(
                    url, key, where.workdir
                )
                results["unattacked"] = health_latency(url, seconds)
                with attack(url, endless_header, 4):
                    results["endless header x4"] = health_latency(url, seconds)
                with attack(url, slowloris, 200):
                    results["slowloris x200"] = health_latency(url, seconds)
                results["first fast 503 (s)"] = first_fast_503(url, key, proxy)
                results["loop lag max (ms)"] = loop_lag_max_ms(url)
        finally:
            proxy.cut()
            database.cut()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--reference", default="1bc450e", help="the commit to compare with")
    args = parser.parse_args()
    runs = [measure("this checkout", ROOT, args.seconds)]
    with checkout(args.reference) as folder:
        runs.append(measure(f"reference {args.reference}", folder, args.seconds))
    print(
        f"{'another client, GET /health (ms)':40}" + "".join(f"{run['label']:>24}" for run in runs)
    )
    for case in (
        "unattacked",
        "endless header x4",
        "slowloris x200",
        "predict, Postgres up",
        "predict, Postgres frozen",
    ):
        for stat in ("p50", "p99", "max", "failures"):
            cells = "".join(f"{run[case][stat]:>24.1f}" for run in runs)  # type: ignore[index]
            print(f"  {case}, {stat}".ljust(40) + cells)
    for extra in ("first fast 503 (s)", "loop lag, production move (ms)", "loop lag max (ms)"):
        cells = "".join(
            f"{run[extra]:>24.1f}" if isinstance(run[extra], float) else f"{'n/a':>24}"
            for run in runs
        )
        print(f"{extra:40}{cells}")


if __name__ == "__main__":
    main()
