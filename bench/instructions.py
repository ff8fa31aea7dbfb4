"""A 1,000-row batch's steps in the API process, counted in instructions, for this checkout and a
reference commit side by side. valgrind's callgrind counts the same instructions for the same code
and input whatever else the host is doing, where this host's timings move 1.5 to 2 times by the
hour: a step's count is the steadier figure to compare versions by. Steady to a few hundred
instructions a row, not to the last one (the same code counts differently as memory is laid out
differently in the two processes); blind to memory stalls; and it counts OpenSSL's SHA-256
without the CPU's SHA instructions, so it overstates the hash.

    .venv/bin/python bench/instructions.py [--reference COMMIT] [--steps read keys ...]

Each step runs on the same batch (1,000 rows of three floats, as `bench/batches.py` sends them)
in a process of its own under callgrind, once repeated 10 times and once not at all; the
difference over 10,000 rows is its count a row. About a minute a step and version (the
interpreter under valgrind), two processes at a time.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROWS, REPEAT = 1000, 10
NAMES = ["f0", "f1", "f2"]
STEPS = {
    "read": "the body: JSON parsed and validated (`app/api/routing.py` `_read`)",
    "keys": "cache keys: each row's canonical JSON and its SHA-256",
    "check": "signature check (`check_rows` against three double columns)",
    "encode": "the runner's float matrix (`encode_rows`)",
    "lookup": "the MGET of 1,000 keys, packed",
    "write": "the write of 1,000 answers: values and command, packed",
}


def step(name: str) -> Callable[[], Any]:
    """The step, imported from whatever `app` is on the path (this checkout or the reference)."""
    import hiredis
    import orjson

    rng = random.Random(3)
    rows = [{n: rng.random() for n in NAMES} for _ in range(ROWS)]
    from app.services.prediction_keys import row_keys

    class Prefix:
        def key(self, *parts: str) -> str:
            return ":".join(("hokusai", *parts))

    model_id = uuid.UUID(int=5)
    keys = row_keys(Prefix(), model_id, 1, rows)  # type: ignore[arg-type]
    if name == "read":
        from app.api.routing import _read
        from app.schemas.predictions import PredictRequest

        body = orjson.dumps({"inputs": rows})
        return lambda: _read(PredictRequest, body)
    if name == "keys":
        return lambda: row_keys(Prefix(), model_id, 1, rows)  # type: ignore[arg-type]
    if name == "check":
        from app.adapters.runners import Column
        from app.services.predictions import check_rows

        columns = [Column(n, "double", True) for n in NAMES]
        return lambda: check_rows(rows, columns)
    if name == "encode":
        from app.sandbox.runner import encode_rows

        described = [{"name": n, "type": "double", "required": True} for n in NAMES]
        return lambda: encode_rows(rows, described)
    if name == "lookup":
        return lambda: hiredis.pack_command(("MGET", *keys))
    if name == "write":
        from app.adapters.cache import _sets

        outputs = [rng.random() for _ in range(ROWS)]
        return lambda: b"".join(
            map(hiredis.pack_command, _sets(dict(zip(keys, zip(outputs), strict=True)), 300))
        )
    raise SystemExit(f"no step {name!r}")


def count(source: Path, name: str, repeat: int) -> int:
    """Instructions of one process running the step `repeat` times (after one untimed call)."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        str(ROOT / ".venv/bin/python"),
        __file__,
        "--run",
        name,
        str(repeat),
    ]
    # String hashes seeded alike in every process: dicts and sets probe the same way.
    env = {**os.environ, "PYTHONPATH": str(source), "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind said nothing countable:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_row(source: Path, name: str, pool: ThreadPoolExecutor) -> float:
    with_steps, without = pool.map(lambda r: count(source, name, r), (REPEAT, 0))
    return (with_steps - without) / (REPEAT * ROWS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", default="d4aee1d", help="the commit to compare with")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)  # a measured process
    args = parser.parse_args()
    if args.run:
        call = step(args.run[0])
        call()
        # No collection while counting: when one runs depends on everything the process holds
        # (each version imports its own modules), not on the step.
        gc.disable()
        for _ in range(int(args.run[1])):
            call()
        return
    from bench.server import checkout

    with checkout(args.reference) as reference, ThreadPoolExecutor(2) as pool:
        print(f"Instructions a row, 1,000-row batch (valgrind callgrind; {REPEAT} runs less none)")
        print(f"{'step':<64}{args.reference:>12}{'this tree':>12}{'ratio':>8}")
        totals = [0.0, 0.0]
        for name in args.steps:
            before, after = per_row(reference, name, pool), per_row(ROOT, name, pool)
            totals = [totals[0] + before, totals[1] + after]
            print(f"{STEPS[name]:<64}{before:>12,.0f}{after:>12,.0f}{after / before:>8.2f}")
        print(f"{'these steps':<64}{totals[0]:>12,.0f}{totals[1]:>12,.0f}", end="")
        print(f"{totals[1] / totals[0]:>8.2f}")


if __name__ == "__main__":
    if "--run" not in sys.argv:  # a measured process takes `app` from its PYTHONPATH
        sys.path.insert(0, str(ROOT))
    main()
