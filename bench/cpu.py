"""CPU time per request: a server and every process under it (the service's runners' zygote and
runners too) pinned to CPU 0, the load generator (wrk) to CPU 1, and the CPU time the server's
processes used during the run divided by the requests answered. On a shared machine it is the
steadiest figure a benchmark can print (`../shared/bench-peers/` measures the same way)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.api_overhead import wrk

TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOAD_CPU = 0, 1


def listening_pid(port: int) -> int:
    """The process that listens on `port` (127.0.0.1), from /proc/net/tcp and /proc/*/fd."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
            inodes.add(fields[9])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            except OSError:
                continue
            if any(link.removeprefix("socket:[").rstrip("]") in inodes for link in links):
                return int(entry.name)
    raise LookupError(f"nothing listens on port {port}")


def tree(root: int) -> list[int]:
    """`root` and every process under it."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found = [root]
    for pid in found:
        found.extend(child for child, parent in parents.items() if parent == pid)
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """Each process's CPU time so far, read in one pass (a process gone meanwhile is left out)."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return found


def pin(pids: list[int], cpu: int) -> None:
    """Every thread of these processes onto one CPU (threads and processes made later inherit)."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                os.sched_setaffinity(int(task.name), {cpu})
            except OSError:
                continue


def per_request(
    url: str, root: int, duration: int, connections: int, script: Path | None = None
) -> dict[str, Any]:
    """wrk's figures for `url`, `cpu_us`: the server's CPU time per request (the server is
    `root` and its processes, pinned to CPU 0 for the run; wrk runs on CPU 1), and
    `root_cpu_us`: the part of it spent in `root` itself (without its runners)."""
    pids = tree(root)
    pin(pids, SERVER_CPU)
    wrk(url, 2, connections, {}, script, cpu=LOAD_CPU)  # warm-up
    before = cpu_seconds(pids)
    result = wrk(url, duration, connections, {}, script, cpu=LOAD_CPU)
    after = cpu_seconds(pids)
    # Each process counted from one reading before and one after, so the root's share never
    # exceeds the whole (reading them apart let a clock tick fall between).
    used = sum(after[pid] - before.get(pid, 0.0) for pid in after)
    used_root = after.get(root, 0.0) - before.get(root, 0.0)
    requests = max(1.0, result["requests"])
    return {**result, "cpu_us": used / requests * 1e6, "root_cpu_us": used_root / requests * 1e6}
