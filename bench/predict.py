"""Predictions, side by side on one uvicorn server (one process): the ceiling (`GET /health`, a
bare endpoint returning a constant), cached and uncached single-row predict under load (wrk), the
model called in-process (the scikit-learn estimator, and the MLflow pyfunc the service calls), the
service's own overhead on an uncached row (wrk on one connection, against the pyfunc), batches
of 1,000 rows at 0%, 50% and 100% cache hits (client time, and server time from the service's
own request histogram), and uncached single rows side by side: the service with adaptive batching
on and off, and MLflow's own scoring server (`mlflow models serve`, one worker) on the same model.
Then the model sandbox's cost: the same figures for the service as it was before models moved
into sandboxed runners (`--reference`, the last commit that loaded models in the API process,
run from a git worktree on the same stores), beside today's, and each process's memory.
Last, CPU time per request (`bench/cpu.py`): the service's, uncached and cached, beside a bare
ASGI app calling the same estimator on a numpy row and one answering a constant
(`bench/bare_model.py`); `--cpu` prints that table alone (CI does, after the tests).

    scripts/with-services .venv/bin/python bench/predict.py [--duration 10] [--reference COMMIT]
    scripts/with-services .venv/bin/python bench/predict.py --cpu --duration 5
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
from bench.cpu import listening_pid, per_request  # noqa: E402
from bench.server import checkout, service, stores  # noqa: E402
from tests.factories import FEATURES, baseline, save_sklearn, tar_gz  # noqa: E402
from tests.services_under_test import (  # noqa: E402
    free_port,
    running,
)

CACHED_ROW = {"f0": 0.25, "f1": 0.5, "f2": 0.75}
PREDICT = "/api/v1/models/bench-scorer/predict"
MODEL_APP = "bare ASGI app: json + model.predict"
CONSTANT_APP = "bare ASGI app: constant answer"
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


@contextlib.contextmanager
def bare_app(which: str, estimator: Any, workdir: Path) -> Iterator[tuple[str, int]]:
    """`bench/bare_model.py`'s `which` app under uvicorn, serving `estimator`: its URL and pid."""
    import skops.io

    model = workdir / "bare-model.skops"
    skops.io.dump(estimator, model)
    port = free_port()
    command = [str(ROOT / ".venv/bin/uvicorn"), f"bench.bare_model:{which}", "--no-access-log"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "BENCH_MODEL": str(model), "PYTHONPATH": str(ROOT)}
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"bare-{which}.log"
    with running(command, env, log, url, timeout_s=60, what=f"bare {which} app", cwd=ROOT) as app:
        yield url, app.pid


def cpu_figures(
    base: str, scripts: Path, estimator: Any, duration: int, connections: int
) -> dict[str, dict[str, Any]]:
    """CPU time per request (`bench/cpu.py`) of the service, uncached and cached rows, beside
    the bare apps' (`bench/bare_model.py`) on the same estimator and the same uncached rows."""
    service_pid = listening_pid(int(base.rsplit(":", 1)[1]))
    url = f"{base}{PREDICT}"
    figures = {
        "service, uncached row": per_request(
            url, service_pid, duration, connections, scripts / "uncached.lua"
        ),
        "service, cached row": per_request(
            url, service_pid, duration, connections, scripts / "cached.lua"
        ),
    }
    for which, label in (("model", MODEL_APP), ("constant", CONSTANT_APP)):
        with bare_app(which, estimator, scripts) as (bare, pid):
            figures[label] = per_request(
                f"{bare}{PREDICT}", pid, duration, connections, scripts / "uncached.lua"
            )
    return figures


def print_cpu(figures: dict[str, dict[str, Any]], duration: int, connections: int) -> None:
    print(
        f"\nCPU per request (wrk -t1 -c{connections} -d{duration}s on CPU 1; each server and "
        "all its processes on CPU 0; Redis and Postgres not counted)"
    )
    model = figures[MODEL_APP]["cpu_us"]
    header = f"{'':<40}{'req/s':>9}{'p99 ms':>9}{'CPU/req us':>12}{'in runners':>12}"
    print(header + f"{'x model app':>13}")
    for label, found in figures.items():
        runners = found["cpu_us"] - found["root_cpu_us"]  # the model's sandboxed processes
        print(
            f"{label:<40}{found['rps']:>9.0f}{found['p99']:>9.2f}{found['cpu_us']:>12.0f}"
            f"{runners:>12.0f}{found['cpu_us'] / model:>13.2f}"
        )
    uncached = figures["service, uncached row"]["cpu_us"] / model
    cached = figures["service, cached row"]["cpu_us"] / figures[CONSTANT_APP]["cpu_us"]
    print(f"service uncached / bare model app: {uncached:.2f}x CPU per request (goal <= 0.9x)")
    print(f"service cached / bare constant app: {cached:.2f}x CPU per request (goal <= 3.3x)")


def register(client: httpx.Client, model_dir: Path) -> None:
    """The bench's model, registered and made `production`, one row cached."""
    client.post(
        "/api/v1/models/register",
        data={"metadata": json.dumps(baseline("bench-scorer"))},
        files={"artifact": ("m.tar.gz", tar_gz(model_dir))},
    ).raise_for_status()
    production = "/api/v1/models/bench-scorer/aliases/production"
    client.put(production, json={"version": 1}).raise_for_status()
    client.post(PREDICT, json={"inputs": CACHED_ROW}).raise_for_status()  # loaded, and cached


def write_scripts(scripts: Path, key: str) -> None:
    (scripts / "cached.lua").write_text(CACHED_LUA % (key, json.dumps({"inputs": CACHED_ROW})))
    (scripts / "uncached.lua").write_text(UNCACHED_LUA % key)
    # GTM-backend names its lead: the service checks whether the model runs a test.
    (scripts / "unit.lua").write_text(
        CACHED_LUA % (key, json.dumps({"inputs": CACHED_ROW, "unit_id": "lead-42"}))
    )


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
    parser.add_argument(
        "--cpu", action="store_true", help="only the CPU per request, beside the bare apps'"
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
            scripts = Path(run.workdir)
            write_scripts(scripts, key)
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                register(client, model_dir)
                if args.cpu:
                    figures = cpu_figures(base, scripts, estimator, args.duration, args.connections)
                    print_cpu(figures, args.duration, args.connections)
                    return
                predict = PREDICT

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
            figures = cpu_figures(base, scripts, estimator, args.duration, args.connections)
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
    print_cpu(figures, args.duration, args.connections)


if __name__ == "__main__":
    main()
