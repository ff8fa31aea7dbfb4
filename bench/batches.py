"""1,000-row batches, side by side: the service (uncached rows, as `{"inputs": [...]}`) and
MLServer (rows as one FP64 tensor of shape [1000, 3], its scikit-learn runtime), on the same
fitted estimator. Each server and all its processes run on CPU 0, the load generator on CPU 1, as
`../shared/bench-peers/` runs them; wrk makes every body from fresh random numbers, so no row
repeats and the cache never answers. The 1,000 answers to one body are checked against the
estimator first. Prints rows per second at 1 and 4 connections, p50 and p99, and CPU per row.

MLServer gets a venv of its own (`~/.cache/hokusai-bench/mlserver`, made with uv on first use,
pinned to this project's scikit-learn, numpy, scipy and joblib).

    scripts/with-services .venv/bin/python bench/batches.py [--duration 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.core.security import generate_key  # noqa: E402
from bench.cpu import listening_pid, per_request  # noqa: E402
from bench.predict import register  # noqa: E402
from bench.server import service, stores  # noqa: E402
from tests.factories import FEATURES, save_sklearn  # noqa: E402
from tests.services_under_test import free_port, running  # noqa: E402

ROWS = 1000
MLSERVER = "1.7.1"
VENV = Path.home() / ".cache" / "hokusai-bench" / "mlserver"
# wrk makes every body itself from fresh random numbers (seeded from BENCH_SEED and the clock),
# so no row repeats within or across runs and the service's cache never answers one.
ROWS_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(header)s
math.randomseed(tonumber(os.getenv("BENCH_SEED")) + os.time())
local rows = %(rows)d
request = function()
  local parts = {}
  for i = 1, rows do
    parts[i] = string.format(%(row)s, %(draws)s)
  end
  return wrk.format(nil, nil, nil, %(body)s)
end
"""
HOKUSAI_LUA = {
    "row": repr("{" + ",".join(f'"{name}":%.17g' for name in FEATURES) + "}"),
    "body": """'{"inputs":[' .. table.concat(parts, ",") .. ']}'""",
}
MLSERVER_LUA = {
    "row": repr(",".join("%.17g" for _ in FEATURES)),
    "body": (
        f"""'{{"inputs":[{{"name":"input-0","shape":[{ROWS},{len(FEATURES)}],'"""
        """ .. '"datatype":"FP64","data":[' .. table.concat(parts, ",") .. ']}]}'"""
    ),
}


def batch(rng: random.Random) -> list[dict[str, float]]:
    return [{name: rng.random() for name in FEATURES} for _ in range(ROWS)]


def hokusai_body(rows: list[dict[str, float]]) -> dict[str, Any]:
    return {"inputs": rows}


def mlserver_body(rows: list[dict[str, float]]) -> dict[str, Any]:
    flat = [row[name] for row in rows for name in FEATURES]
    tensor = {"name": "input-0", "shape": [len(rows), len(FEATURES)], "datatype": "FP64"}
    return {"inputs": [{**tensor, "data": flat}]}


def mlserver_venv() -> Path:
    """MLServer's venv, pinned as `../shared/bench-peers/` pins it: this project's scikit-learn,
    numpy, scipy, joblib, uvicorn and httptools, and the uvloop of MLServer 1.7.1's time."""
    pins = [f"{p}=={version(p)}" for p in ("scikit-learn", "numpy", "scipy", "joblib")]
    pins += [f"{p}=={version(p)}" for p in ("uvicorn", "httptools")] + ["uvloop==0.21.0"]
    wanted = sorted([f"mlserver=={MLSERVER}", f"mlserver-sklearn=={MLSERVER}", *pins])
    marker = VENV / ".requirements"
    if marker.is_file() and marker.read_text().split() == wanted:
        return VENV
    found = shutil.which("uv")
    uv = [found] if found else ["python3", "-m", "uv"]
    python = sys._base_executable  # the interpreter this venv was made from
    if not (VENV / "bin" / "python").exists():
        subprocess.run([*uv, "venv", "-q", "-p", python, str(VENV)], check=True)
    print(f"installing MLServer into {VENV}", flush=True)
    venv_python = str(VENV / "bin" / "python")
    subprocess.run([*uv, "pip", "install", "-q", "-p", venv_python, *wanted], check=True)
    marker.write_text("\n".join(wanted) + "\n")
    return VENV


@contextlib.contextmanager
def mlserver(estimator: Any, workdir: Path) -> Iterator[tuple[str, int]]:
    """MLServer with its scikit-learn runtime on `estimator`, no adaptive batching (a batch is
    one call already), inference in its main process: its URL and pid."""
    import joblib

    venv = mlserver_venv()
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    root = workdir / "mlserver"
    (root / "scorer").mkdir(parents=True)
    joblib.dump(estimator, root / "scorer" / "model.joblib")
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": 0,
        "gzip_enabled": False,
    }
    (root / "settings.json").write_text(json.dumps(settings))
    model = {
        "name": "scorer",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    (root / "scorer" / "model-settings.json").write_text(json.dumps(model))
    url = f"http://127.0.0.1:{http_port}"
    command = [str(venv / "bin" / "mlserver"), "start", str(root)]
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(workdir)}
    log = workdir / "mlserver.log"
    ready = "/v2/health/ready"
    with running(command, env, log, url, 120, "MLServer", cwd=root, health=ready) as app:
        yield url, app.pid


def check(url: str, path: str, body: dict[str, Any], want: list[Any], answer: Any) -> None:
    response = httpx.post(f"{url}{path}", json=body, headers=HEADERS, timeout=120)
    response.raise_for_status()
    got = answer(response.json())
    if got != want:
        raise SystemExit(f"{url}{path}: wrong answers ({got[:5]} against {want[:5]})")


HEADERS: dict[str, str] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    import pandas as pd

    key = generate_key()
    HEADERS["Authorization"] = f"Bearer {key}"
    rng = random.Random(11)
    results: dict[str, dict[int, dict[str, Any]]] = {}
    with stores(real_mlflow=True) as run:
        workdir = Path(run.workdir)
        model_dir, estimator = save_sklearn(workdir)
        probe = batch(rng)
        want = estimator.predict(pd.DataFrame(probe, columns=FEATURES)).tolist()
        systems = {
            "Hokusai ML Platform (uncached rows)": (
                "/api/v1/models/bench-scorer/predict",
                hokusai_body,
                lambda answer: answer["predictions"],
                HOKUSAI_LUA | {"header": f'wrk.headers["Authorization"] = "Bearer {key}"'},
            ),
            f"MLServer {MLSERVER} (one FP64 tensor)": (
                "/v2/models/scorer/infer",
                mlserver_body,
                lambda answer: answer["outputs"][0]["data"],
                MLSERVER_LUA | {"header": ""},
            ),
        }
        with service(run.workdir, key, **run.settings, rate_limit_per_minute="0") as base:
            with httpx.Client(base_url=base, headers=HEADERS, timeout=120) as client:
                register(client, model_dir)
            results |= measure(
                "Hokusai ML Platform (uncached rows)", base, systems, probe, want, args
            )
        with mlserver(estimator, workdir) as (url, _):
            results |= measure(
                f"MLServer {MLSERVER} (one FP64 tensor)", url, systems, probe, want, args
            )
    report(results, args.duration)


def measure(
    label: str,
    url: str,
    systems: dict[str, Any],
    probe: list[dict[str, float]],
    want: list[Any],
    args: argparse.Namespace,
) -> dict[str, dict[int, dict[str, Any]]]:
    path, body, answer, lua = systems[label]
    check(url, path, body(probe), want, answer)
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-batches-{os.getpid()}.lua"
    draws = ", ".join(["math.random()"] * len(FEATURES))
    script.write_text(ROWS_LUA % (lua | {"rows": ROWS, "draws": draws}))
    pid = listening_pid(int(url.rsplit(":", 1)[1]))
    found = {}
    try:
        for connections in (1, 4):
            os.environ["BENCH_SEED"] = str(random.SystemRandom().getrandbits(31))
            found[connections] = per_request(
                f"{url}{path}", pid, args.duration, connections, script
            )
    finally:
        script.unlink()
    return {label: found}


def report(results: dict[str, dict[int, dict[str, Any]]], duration: int) -> None:
    print(
        f"\n{ROWS:,}-row batches, every row new (wrk -t1 -d{duration}s on CPU 1; each server and "
        "all its processes on CPU 0; Redis and Postgres not counted)"
    )
    header = f"{'':<40}{'conns':>6}{'rows/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU/row us':>12}"
    print(header)
    for label, by_connections in results.items():
        for connections, found in by_connections.items():
            print(
                f"{label:<40}{connections:>6}{found['rps'] * ROWS:>10,.0f}{found['p50']:>9.2f}"
                f"{found['p99']:>9.2f}{found['cpu_us'] / ROWS:>12.2f}"
            )
    ours, theirs = results.values()
    for connections in (1, 4):
        ratio = ours[connections]["rps"] / theirs[connections]["rps"]
        print(f"rows/s, service / MLServer, {connections} connection(s): {ratio:.2f}x (goal >= 1)")


if __name__ == "__main__":
    main()
