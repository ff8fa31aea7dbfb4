"""Predictions, side by side on one uvicorn server (one process): the ceiling (`GET /health`, a
bare endpoint returning a constant), cached and uncached single-row predict under load (wrk), the
model called in-process (the scikit-learn estimator, and the MLflow pyfunc the service calls), the
service's own overhead on an uncached row (wrk on one connection, against the pyfunc), batches
of 1,000 rows at 0%, 50% and 100% cache hits (client time, and server time from the service's
own request histogram), and uncached single rows side by side: the service with adaptive batching
on and off, and MLflow's own scoring server (`mlflow models serve`, one worker) on the same model.
Last, the model sandbox's cost: the same figures for the service as it was before models moved
into sandboxed runners (`--reference`, the last commit that loaded models in the API process,
run from a git worktree on the same stores), beside today's, and each process's memory.

    scripts/with-services .venv/bin/python bench/predict.py [--duration 10] [--reference COMMIT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.core.security import generate_key  # noqa: E402
from bench.api_overhead import wrk  # noqa: E402
from bench.server import checkout, service, stores  # noqa: E402
from tests.factories import FEATURES, save_sklearn, tar_gz  # noqa: E402
from tests.services_under_test import (  # noqa: E402
    free_port,
    running,
)

CACHED_ROW = {"f0": 0.25, "f1": 0.5, "f2": 0.75}
# The last commit whose API process loaded models itself, before the sandbox (issue 22).
IN_PROCESS_COMMIT = "5e0083d"
MLFLOW_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(os.time() + tonumber(string.sub(string.match(tostring({}), "0x(%x+)"), -6), 16))
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"dataframe_records": [{"f0": %.9f, "f1": %d, "f2": 0.5}]}',
                             math.random(), counter)
  return wrk.format(nil, nil, nil, body)
end
"""
UNCACHED_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
-- each wrk thread has a Lua state of its own: its table's address keeps its rows apart
math.randomseed(os.time() + tonumber(string.sub(string.match(tostring({}), "0x(%%x+)"), -6), 16))
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"inputs": {"f0": %%.9f, "f1": %%d, "f2": 0.5}}',
                             math.random(), counter)
  return wrk.format(nil, nil, nil, body)
end
"""
CACHED_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.body = '%s'
"""


@contextlib.contextmanager
def mlflow_scoring_server(model_dir: Path, workdir: Path) -> Iterator[str]:
    """MLflow's own scoring server for the model directory, in this environment."""
    port = free_port()
    command = [str(ROOT / ".venv/bin/mlflow"), "models", "serve", "-m", str(model_dir)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    url = f"http://127.0.0.1:{port}"
    log = workdir / "scoring-server.log"
    env = {**os.environ, "PATH": f"{ROOT / '.venv/bin'}:{os.environ.get('PATH', '')}"}  # uvicorn
    with running(command, env, log, url, timeout_s=120, what="mlflow models serve"):
        yield url


def processes_memory(base: str) -> list[tuple[str, float, float]]:
    """Resident and proportional memory of the service listening at `base`, of its runners'
    zygote and of each runner (its children and grandchildren), in MiB."""
    port = base.rsplit(":", 1)[1]
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                status = (entry / "status").read_text()
                rollup = (entry / "smaps_rollup").read_text()
                environ = (entry / "environ").read_bytes()
                parent = int(status.split("PPid:")[1].split()[0])
                processes[int(entry.name)] = (parent, environ, rollup)
    api = [pid for pid, (_, env, _) in processes.items() if f"HOKUSAI_PORT={port}".encode() in env]
    zygotes = [pid for pid, (parent, _, _) in processes.items() if parent in api]
    runners = [pid for pid, (parent, _, _) in processes.items() if parent in zygotes]
    found = []
    for who, pids in (("API process", api), ("runners' zygote", zygotes), ("runner", runners)):
        for pid in pids:
            rollup = processes[pid][2]
            rss = int(rollup.split("\nRss:")[1].split()[0]) / 1024
            pss = int(rollup.split("\nPss:")[1].split()[0]) / 1024
            found.append((f"{who} (pid {pid})", rss, pss))
    return found


def row(rng: random.Random) -> dict[str, float]:
    return {name: rng.random() for name in FEATURES}


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, round(len(ms) * 0.99))]


def server_ms(client: httpx.Client, call: Any, repeat: int) -> tuple[list[float], float]:
    """Client timings of `repeat` calls, and their mean server time in ms (the service's request
    histogram for the predict route, read from /metrics before and after)."""
    before = _predict_sum_count(client.get("/metrics").text)
    timings = timed(call, repeat)
    after = _predict_sum_count(client.get("/metrics").text)
    return timings, (after[0] - before[0]) / (after[1] - before[1]) * 1000


def _predict_sum_count(metrics: str) -> tuple[float, float]:
    found = {"sum": 0.0, "count": 0.0}
    for line in metrics.splitlines():
        if line.startswith("hokusai_http_request_duration_seconds_") and (
            'route="/api/v1/models/{name}/predict"' in line and 'status="200"' in line
        ):
            kind = line.split("{", 1)[0].rsplit("_", 1)[1]
            if kind in found:
                found[kind] = float(line.rsplit(" ", 1)[1])
    return found["sum"], found["count"]


def timed(call: Any, repeat: int) -> list[float]:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--reference",
        default=IN_PROCESS_COMMIT,
        help="the commit to compare the sandbox with (models loaded in the API process)",
    )
    args = parser.parse_args()
    key = generate_key()
    rng = random.Random(7)
    with stores(real_mlflow=True) as run:
        model_dir, estimator = save_sklearn(Path(run.workdir))
        headers = {"Authorization": f"Bearer {key}"}
        with service(
            run.workdir,
            key,
            **run.settings,
            rate_limit_per_minute="0",
        ) as base:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                metadata = {
                    "name": "bench-scorer",
                    "kind": "baseline",
                    "model_type": "classification",
                    "metrics": {"accuracy": 0.8},
                    "benchmark": {
                        "metric": "accuracy",
                        "direction": "higher_is_better",
                        "family": "proportion",
                    },
                    "dataset": {"hash": "sha256:" + "0" * 64, "num_samples": 1000},
                }
                client.post(
                    "/api/v1/models/register",
                    data={"metadata": json.dumps(metadata)},
                    files={"artifact": ("m.tar.gz", tar_gz(model_dir))},
                ).raise_for_status()
                client.put(
                    "/api/v1/models/bench-scorer/aliases/production", json={"version": 1}
                ).raise_for_status()
                predict = "/api/v1/models/bench-scorer/predict"
                client.post(predict, json={"inputs": CACHED_ROW}).raise_for_status()  # load + cache

                # The model alone, called in-process: the estimator, and the MLflow pyfunc the
                # service calls (with MLflow's own input checks).
                import mlflow.pyfunc
                import pandas as pd

                pyfunc = mlflow.pyfunc.load_model(str(model_dir))
                model_alone = {
                    "scikit-learn estimator": timed(
                        lambda: estimator.predict(pd.DataFrame([row(rng)], columns=FEATURES)), 300
                    ),
                    "MLflow pyfunc": timed(
                        lambda: pyfunc.predict(pd.DataFrame([row(rng)], columns=FEATURES)), 300
                    ),
                }

                batches = {}
                seen = [row(rng) for _ in range(500)]
                client.post(predict, json={"inputs": seen}).raise_for_status()
                full = [row(rng) for _ in range(1000)]
                client.post(predict, json={"inputs": full}).raise_for_status()
                batches["1,000 rows, 0% cached"] = server_ms(
                    client,
                    lambda: client.post(
                        predict, json={"inputs": [row(rng) for _ in range(1000)]}
                    ).raise_for_status(),
                    20,
                )
                batches["1,000 rows, 50% cached"] = server_ms(
                    client,
                    lambda: client.post(
                        predict, json={"inputs": seen + [row(rng) for _ in range(500)]}
                    ).raise_for_status(),
                    20,
                )
                batches["1,000 rows, 100% cached"] = server_ms(
                    client,
                    lambda: client.post(predict, json={"inputs": full}).raise_for_status(),
                    20,
                )

            scripts = Path(run.workdir)
            (scripts / "cached.lua").write_text(
                CACHED_LUA % (key, json.dumps({"inputs": CACHED_ROW}))
            )
            (scripts / "uncached.lua").write_text(UNCACHED_LUA % key)
            # GTM-backend names its lead: the service checks whether the model runs a test.
            (scripts / "unit.lua").write_text(
                CACHED_LUA % (key, json.dumps({"inputs": CACHED_ROW, "unit_id": "lead-42"}))
            )
            url = f"{base}{predict}"
            memory = {"sandboxed": processes_memory(base)}
            # One connection, a C client: the latency of one call, without a Python client's.
            sequential = {
                "predict, uncached row": wrk(url, args.duration, 1, {}, scripts / "uncached.lua"),
                "predict, cached row": wrk(url, args.duration, 1, {}, scripts / "cached.lua"),
            }
            wrk(f"{base}/health", 2, args.connections, {})
            load = {
                "ceiling: GET /health": wrk(f"{base}/health", args.duration, args.connections, {}),
                "predict, cached row": wrk(
                    url, args.duration, args.connections, {}, scripts / "cached.lua"
                ),
                "predict, cached, unit_id": wrk(
                    url, args.duration, args.connections, {}, scripts / "unit.lua"
                ),
                "predict, uncached row": wrk(
                    url, args.duration, args.connections, {}, scripts / "uncached.lua"
                ),
            }
        # The same model, uncached rows, with batching off (a second service on the same data),
        # and in MLflow's own scoring server (one worker, as the service runs one process).
        with service(
            run.workdir,
            key,
            **run.settings,
            rate_limit_per_minute="0",
            prediction_batching="false",
        ) as unbatched:
            httpx.post(
                f"{unbatched}{predict}", json={"inputs": CACHED_ROW}, headers=headers, timeout=120
            ).raise_for_status()  # loaded
            off = f"{unbatched}{predict}"
            side_by_side = {
                "service, batching on": (
                    load["predict, uncached row"],
                    sequential["predict, uncached row"],
                ),
                "service, batching off": (
                    wrk(off, args.duration, args.connections, {}, scripts / "uncached.lua"),
                    wrk(off, args.duration, 1, {}, scripts / "uncached.lua"),
                ),
            }
        # The sandbox's cost: the service before it (models in the API process), same stores.
        with (
            checkout(args.reference) as source,
            service(
                run.workdir, key, source=source, **run.settings, rate_limit_per_minute="0"
            ) as before,
        ):
            httpx.post(
                f"{before}{predict}", json={"inputs": CACHED_ROW}, headers=headers, timeout=120
            ).raise_for_status()  # loaded
            old = f"{before}{predict}"
            memory["in-process"] = processes_memory(before)
            sandbox = {
                "in-process (" + args.reference + ")": (
                    wrk(old, args.duration, args.connections, {}, scripts / "uncached.lua"),
                    wrk(old, args.duration, 1, {}, scripts / "uncached.lua"),
                    wrk(old, args.duration, args.connections, {}, scripts / "cached.lua"),
                ),
                "sandboxed (this commit)": (
                    load["predict, uncached row"],
                    sequential["predict, uncached row"],
                    load["predict, cached row"],
                ),
            }
        (scripts / "mlflow.lua").write_text(MLFLOW_LUA)
        with mlflow_scoring_server(model_dir, Path(run.workdir)) as scoring:
            invocations = f"{scoring}/invocations"
            side_by_side["mlflow models serve (1 worker)"] = (
                wrk(invocations, args.duration, args.connections, {}, scripts / "mlflow.lua"),
                wrk(invocations, args.duration, 1, {}, scripts / "mlflow.lua"),
            )

    ceiling = load["ceiling: GET /health"]["rps"]
    print(
        "\nunder load: uvicorn, 1 process; "
        f"wrk -t2 -c{args.connections} -d{args.duration}s, same host\n"
    )
    print(f"{'':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'x ceiling':>11}")
    for label, result in load.items():
        print(
            f"{label:<28}{result['rps']:>9.0f}{result['p50']:>9.2f}{result['p99']:>9.2f}"
            f"{result['errors']:>9.0f}{result['rps'] / ceiling:>11.2f}"
        )
    print("\nthe model alone, in-process, 1 row (p50 / p99 ms):")
    for label, timings in model_alone.items():
        print(f"  {label:<34}{percentiles(timings)[0]:>8.2f}{percentiles(timings)[1]:>9.2f}")
    print(f"\nover HTTP, one connection (wrk -c1 -d{args.duration}s; p50 / p99 ms):")
    for label, result in sequential.items():
        print(f"  {label:<34}{result['p50']:>8.2f}{result['p99']:>9.2f}")
    uncached = sequential["predict, uncached row"]["p50"]
    for label, timings in model_alone.items():
        overhead = uncached - percentiles(timings)[0]
        print(f"service overhead on an uncached row beyond the {label} (p50): {overhead:.2f} ms")
    print(
        f"\nuncached single rows, side by side (wrk -c{args.connections}: req/s, p50, p99 ms; "
        "wrk -c1: p50 ms)"
    )
    print(f"{'':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'c1 p50':>9}")
    for label, (loaded, alone) in side_by_side.items():
        print(
            f"{label:<34}{loaded['rps']:>9.0f}{loaded['p50']:>9.2f}{loaded['p99']:>9.2f}"
            f"{alone['p50']:>9.2f}"
        )
    on, off = side_by_side["service, batching on"], side_by_side["service, batching off"]
    scoring_rps = side_by_side["mlflow models serve (1 worker)"][0]["rps"]
    print(f"batching on / MLflow's scoring server: {on[0]['rps'] / scoring_rps:.2f}x (goal 5x)")
    print(
        f"batching on / batching off: {on[0]['rps'] / off[0]['rps']:.2f}x (goal 3x); "
        f"p99 {on[0]['p99']:.1f} vs {off[0]['p99']:.1f} ms; "
        f"one connection p50 +{on[1]['p50'] - off[1]['p50']:.2f} ms (goal at most +0.3)"
    )
    print(
        f"\nthe model sandbox: uncached rows (wrk -c{args.connections}: req/s, p99; wrk -c1: p50), "
        f"cached rows (wrk -c{args.connections}: req/s, p99)"
    )
    print(f"{'':<28}{'req/s':>9}{'p99 ms':>9}{'c1 p50':>9}{'cached/s':>10}{'p99 ms':>9}")
    for label, (uncached_load, one, cached_load) in sandbox.items():
        print(
            f"{label:<28}{uncached_load['rps']:>9.0f}{uncached_load['p99']:>9.2f}"
            f"{one['p50']:>9.2f}{cached_load['rps']:>10.0f}{cached_load['p99']:>9.2f}"
        )
    (old_u, old_1, old_c), (new_u, new_1, new_c) = sandbox.values()
    print(
        f"sandboxed / in-process: uncached {new_u['rps'] / old_u['rps']:.2f}x (goal >= 1), "
        f"one connection p50 {new_1['p50'] - old_1['p50']:+.2f} ms (goal <= +0.3), "
        f"cached {new_c['rps'] / old_c['rps']:.2f}x (goal within 5%)"
    )
    print("memory (MiB): resident, and proportional (shared pages split among their users)")
    for mode, found in memory.items():
        for who, rss, pss in found:
            print(f"  {mode:<12}{who:<34}{rss:>8.0f}{pss:>8.0f}")
    print("\nbatches, 20 calls each (client p50 / p99 ms, mean server ms):")
    for label, (timings, server) in batches.items():
        p50, p99 = percentiles(timings)
        print(f"  {label:<34}{p50:>8.2f}{p99:>9.2f}{server:>9.2f}")


if __name__ == "__main__":
    main()
