"""Where a prediction's time goes, from a py-spy profile of the API process under load: each
sample is put in the stage of its innermost frame that names one (so a framework is charged only
for its own code), and the stages' shares are printed, in microseconds of the request's CPU time
when that is given. Samples of a thread waiting in a socket write that woke the model's runner
(the runner runs then, on its own CPU time) are left out.

    py-spy record --pid PID --duration 8 --rate 500 --gil --nonblocking --format raw -o api.txt
    python bench/stages.py api.txt --cpu-us 420
"""

from __future__ import annotations

import argparse
from collections import Counter

# (stage, substrings of a frame that put a sample in it), innermost match wins.
STAGES = [
    ("metrics (Prometheus)", ("prometheus_client/",)),
    (
        "Redis client and round trips",
        ("redis/", "app/adapters/cache.py", "app/adapters/redis_connection.py"),
    ),
    ("cache keys (canonical JSON, SHA-256)", ("app/services/prediction_keys.py", "rfc8785")),
    ("signature checks", ("check_rows", "_all_fit", "_fits (app/services/predictions.py")),
    (
        "batching and the runner's channel",
        (
            "app/adapters/batching.py",
            "app/adapters/runners.py",
            "app/sandbox/runner.py",
            "asyncio/streams.py",
        ),
    ),
    (
        "request body: JSON parse and validation",
        ("model_validate_json", "_read (app/api/routing.py", "Request.body", "Request.stream"),
    ),
    (
        "answer: model and JSON encoding",
        ("prediction_response", "model_dump_json", "starlette/responses.py", "pydantic/main.py"),
    ),
    ("key check and scope", ("app/api/auth.py", "fastapi/security/", "app/core/security.py")),
    ("version resolution (remembered)", ("app/adapters/memory.py", "_look_up")),
    (
        "prediction service (rest)",
        (
            "app/services/predictions.py",
            "app/services/traffic.py",
            "app/adapters/loader.py",
            "app/api/routers/predictions.py",
            "app/api/deps.py",
            "app/wiring.py",
        ),
    ),
    ("request context (id, limits, metrics, log)", ("app/api/middleware.py",)),
    (
        "routing and dependencies",
        (
            "app/api/routing.py",
            "starlette/routing.py",
            "fastapi/routing.py",
            "fastapi/dependencies/",
        ),
    ),
    ("framework middleware (Starlette, FastAPI)", ("starlette/", "fastapi/")),
    ("HTTP server (uvicorn, httptools, sockets)", ("uvicorn/", "app/api/server.py", "httptools")),
    ("event loop", ("asyncio/", "uvloop", "contextvars")),
]
RUNNER_WAKE = "StreamWriter.write (asyncio/streams.py"


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, marks in STAGES:
            if any(mark in frame for mark in marks):
                return stage
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", help="py-spy's --format raw output")
    parser.add_argument("--cpu-us", type=float, help="the API process's CPU time per request")
    args = parser.parse_args()
    found: Counter[str] = Counter()
    for line in open(args.profile, encoding="utf-8"):  # noqa: SIM115
        stack, _, count = line.rstrip("\n").rpartition(" ")
        frames = stack.split(";")
        if frames and RUNNER_WAKE in frames[-1]:
            continue
        found[stage_of(frames)] += int(count)
    total = sum(found.values())
    for stage, samples in found.most_common():
        share = samples / total
        cost = f"{share * args.cpu_us:>8.0f} us" if args.cpu_us else ""
        print(f"{stage:<46}{share:>7.1%}{cost}")


if __name__ == "__main__":
    main()
