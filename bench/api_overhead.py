"""What authentication and the database cost per request: `GET /health` (touches nothing) against
an authenticated `GET /api/v1/api-keys` (key lookup in Postgres, rate-limit hit in Redis, a page
read), on the same uvicorn server with the same load generator (wrk), side by side.

    make bench
    # or: scripts/with-services .venv/bin/python bench/api_overhead.py
    python bench/api_overhead.py --duration 10 --connections 64
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.security import generate_key  # noqa: E402
from bench.server import service, stores  # noqa: E402


def wrk(
    url: str,
    duration: int,
    connections: int,
    headers: dict[str, str],
    script: Path | None = None,
    *,
    cpu: int | None = None,
) -> dict[str, float]:
    """wrk's figures: req/s, p50 and p99 ms, non-2xx answers and requests; on one `cpu` (with
    one thread) when given."""
    threads = str(1 if cpu is not None else min(2, connections))
    command = ["wrk", "--latency", "-t", threads, "-c", str(connections), "-d", f"{duration}s"]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),  # type: ignore[union-attr]
        "errors": float(non_2xx.group(1)) if non_2xx else 0.0,
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
    }


def server_means(metrics: str) -> dict[str, float]:
    """Mean server time in ms per (method, route) of 200 responses, from the Prometheus
    histogram's sum and count: time inside the app, without the network or the client."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    pattern = re.compile(
        r"^hokusai_http_request_duration_seconds_(sum|count)"
        r'\{method="(\w+)",route="([^"]+)",status="200"\} (\S+)$'
    )
    for line in metrics.splitlines():
        match = pattern.match(line)
        if match:
            kind, method, route, value = match.groups()
            (sums if kind == "sum" else counts)[f"{method} {route}"] = float(value)
    return {key: sums[key] / counts[key] * 1000 for key in sums if counts.get(key)}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")

    key = generate_key()
    with (
        stores() as run,
        service(
            run.workdir,
            key,
            **run.settings,
            rate_limit_per_minute="1000000000",
        ) as base,
    ):
        wrk(f"{base}/health", 2, args.connections, {})  # warm-up
        health = wrk(f"{base}/health", args.duration, args.connections, {})
        authed = wrk(
            f"{base}/api/v1/api-keys",
            args.duration,
            args.connections,
            {"Authorization": f"Bearer {key}"},
        )

    print(
        f"\nuvicorn, 1 process; wrk -t2 -c{args.connections} -d{args.duration}s on the same host\n"
    )
    print(f"{'endpoint':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    for name, result in (("GET /health", health), ("GET /api/v1/api-keys (auth)", authed)):
        print(
            f"{name:<34}{result['rps']:>10.0f}{result['p50']:>10.2f}"
            f"{result['p99']:>10.2f}{result['errors']:>10.0f}"
        )
    print(
        f"\nauthenticated / health throughput: {authed['rps'] / health['rps']:.2f}; "
        f"added per request at p50: {authed['p50'] - health['p50']:.2f} ms"
    )


if __name__ == "__main__":
    main()
