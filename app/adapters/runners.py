"""Model runners, seen from the API process: the only way a model is loaded or called.

The API process never imports a model. It starts a zygote (`app/sandbox/runner.py`) the first
time a model is needed, with an environment built from nothing, and asks it for one runner per
loaded model version (more with `HOKUSAI_MODEL_RUNNERS`). A runner gets its model as files the
service downloaded and checked, read-only, and answers calls over a socket. A runner that
crashes, overruns `HOKUSAI_MODEL_CALL_TIMEOUT_S` or runs out of memory is killed and replaced;
only the calls it was serving fail. What is isolated, and how: docs/how-to/sandbox.md.

Rules: docs/reference/specification.md#predictions-and-the-cache."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import site
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from app.core.config import Settings
from app.core.errors import ModelFailed, ModelTimeout, ModelUnavailable
from app.core.metrics import Metrics
from app.sandbox import kernel, runner
from app.sandbox.runner import HEADER, frame

log = logging.getLogger(__name__)

RUNNER_SCRIPT = Path(runner.__file__).resolve()
# Read-only, beside the Python installation: shared libraries, time zones, CPU facts.
SYSTEM_READ = (
    "/usr/lib",
    "/usr/lib64",
    "/lib",
    "/lib64",
    "/usr/local/lib",
    "/usr/share/zoneinfo",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "/dev/urandom",
    "/dev/random",
)
# Facts about the processor that older OpenBLAS builds need to compute right; not secrets.
PASSED_THROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "TZ")
LOG_LINES_PER_RUNNER = 1000


@dataclass(frozen=True)
class Column:
    """A column of a model's input signature, as its runner read it."""

    name: str
    type: str  # MLflow's DataType name: double, float, long, integer, boolean, string, ...
    required: bool


class Runners:
    """This API process's runners: the zygote, and the runners it forked."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.support = kernel.support()
        self.enforce = settings.model_sandbox == "required"
        parent = settings.model_runner_dir or tempfile.gettempdir()
        self.root = Path(tempfile.mkdtemp(prefix="hokusai-runners-", dir=parent))
        self.models_dir = self.root / "models"
        self.scratch_dir = self.root / "scratch"
        for folder in (self.models_dir, self.scratch_dir):
            folder.mkdir(mode=0o700)
        self.error: str | None = None
        self._zygote: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._starting: asyncio.Task[None] | None = None
        self._spawning: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._model_users: Counter[Path] = Counter()
        # The largest message either side accepts: rows in, answers out.
        self.max_frame_bytes = max(settings.max_body_bytes, 64 << 20)

    @property
    def refusal(self) -> str | None:
        """Why no model may be loaded here, or None."""
        if self.enforce and not self.support.complete:
            return (
                "The model sandbox cannot be enforced on this kernel (missing: "
                + "; ".join(self.support.missing)
                + "). Set HOKUSAI_MODEL_SANDBOX=unconfined only if every uploader is trusted."
            )
        return None

    def describe(self) -> dict[str, Any]:
        """For /ready: whether models can run, and how confined they are."""
        return {
            "mode": self.settings.model_sandbox,
            "enforced": self.enforce and self.support.complete,
            "zygote": "running" if self._zygote_alive() else "starts on first load",
            **self.support.as_dict(),
        }

    def check(self) -> str | None:
        """None when runners can start here; else the reason they cannot (a zygote that exited
        is started again by the next load: only a failed start counts)."""
        return self.refusal or self.error

    # Model folders: downloaded and checked by the service, read-only to the runners.

    def model_folder(self, digest: str) -> Path:
        return self.models_dir / digest.removeprefix("sha256:")

    async def stage(
        self,
        digest: str,
        fetch: Callable[[Path], Awaitable[Path]],
        verify: Callable[[Path], Awaitable[str]],
    ) -> Path:
        """The model folder of `digest`: `fetch(staging)` puts the model directory there; it
        is kept only when `verify` finds the same digest."""
        folder = self.model_folder(digest)
        if folder.is_dir():
            return folder
        staging = self.scratch_dir / f"download-{uuid.uuid4().hex}"
        try:
            root = await fetch(staging)
            found = await verify(root)
            if found != digest:
                log.error("artifact digest mismatch: recorded %s, downloaded %s", digest, found)
                raise ModelUnavailable(
                    "The model's files do not match the digest recorded at registration",
                    retry_after=self.settings.retry_after_s,
                )
            with contextlib.suppress(OSError):  # a concurrent load of the same files won
                root.rename(folder)
            return folder
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # The zygote.

    async def _ensure_zygote(self) -> None:
        if self.refusal:
            raise ModelUnavailable(self.refusal, retry_after=self.settings.retry_after_s)
        if self._zygote_alive():
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._start_zygote())
        try:
            await asyncio.shield(self._starting)
        except Exception as exc:
            self.error = f"the runners' zygote did not start: {exc}"
            log.error("%s", self.error)
            raise ModelUnavailable(
                "No model runner could be started", retry_after=self.settings.retry_after_s
            ) from exc

    def _zygote_alive(self) -> bool:
        return self._zygote is not None and self._zygote.returncode is None

    async def _start_zygote(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        config = {
            "control_fd": theirs.fileno(),
            "models_dir": str(self.models_dir),
            "scratch_dir": str(self.scratch_dir),
            "sandbox": {
                "enforce": self.enforce,
                "landlock_abi": self.support.landlock_abi,
                "read": _read_paths(),
            },
        }
        started = time.perf_counter()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-E",
                "-s",
                "-B",
                str(RUNNER_SCRIPT),
                json.dumps(config),
                pass_fds=[theirs.fileno()],
                env=self._environment(),
                cwd=self.scratch_dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            theirs.close()
        assert process.stdout is not None
        self.spawn_task(_forward_output(process.stdout, "zygote"))
        ready = asyncio.get_running_loop().create_future()
        self._control, self._zygote = ours, process
        self.spawn_task(self._read_control(ours, ready))
        try:
            await asyncio.wait_for(ready, self.settings.model_load_timeout_s)
        except BaseException:
            _kill(process.pid)
            raise
        self.error = None
        log.info(
            "model runners ready (zygote pid %s, %.1f s, sandbox %s)",
            process.pid,
            time.perf_counter() - started,
            "enforced" if self.enforce else "NOT enforced",
        )

    def _environment(self) -> dict[str, str]:
        """Built from nothing: no HOKUSAI_* setting, no URL, no key reaches a runner."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.scratch_dir),
            "TMPDIR": str(self.scratch_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            # One thread of BLAS per runner: several runners, not threads, use several cores.
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "JOBLIB_MULTIPROCESSING": "0",
            # Arrow's own allocator reserves 1 GiB up front, which a memory limit would count.
            "ARROW_DEFAULT_MEMORY_POOL": "system",
        }
        env.update({k: os.environ[k] for k in PASSED_THROUGH if k in os.environ})
        return env

    async def _read_control(self, control: socket.socket, ready: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message = await loop.sock_recv(control, 1 << 16)
            except OSError:
                message = b""
            if not message:
                break
            kind, body = message[HEADER.size - 1 : HEADER.size], json.loads(message[HEADER.size :])
            if kind == runner.READY and not ready.done():
                ready.set_result(None)
            elif kind == runner.SPAWNED:
                self._exits[body["pid"]] = loop.create_future()
                _settle(self._spawning.pop(body["id"], None), body["pid"])
            elif kind == runner.SPAWN_FAILED:
                error = RuntimeError(body["error"])
                if body["id"] is None and not ready.done():
                    ready.set_exception(error)
                _settle(self._spawning.pop(body["id"], None), error)
            elif kind == runner.EXITED:
                how = (
                    f"killed by {signal.Signals(body['signal']).name}"
                    if body["signal"]
                    else (f"exited with status {body['code']}")
                )
                _settle(self._exits.pop(body["pid"], None), how)
        gone = RuntimeError("the runners' zygote exited")
        _settle(ready, gone)
        for waiting in self._spawning.values():
            _settle(waiting, gone)
        for exited in self._exits.values():
            _settle(exited, "its zygote exited")
        self._spawning.clear()
        self._exits.clear()

    # Runners.

    async def start(self, model_dir: Path, model: str, label: str) -> Runner:
        """A runner for the model in `model_dir`, loaded; ModelUnavailable if it cannot be."""
        await self._ensure_zygote()
        assert self._control is not None
        loop = asyncio.get_running_loop()
        ident = uuid.uuid4().hex
        tmp = self.scratch_dir / f"runner-{ident}"
        tmp.mkdir(mode=0o700)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        output, output_end = os.pipe()
        memory = self.settings.model_runner_memory_mb << 20
        request = {
            "id": ident,
            "model_dir": str(model_dir),
            "tmp_dir": str(tmp),
            "memory_bytes": memory,
            "max_threads": self.settings.model_runner_max_threads,
            "max_file_bytes": memory,
            "max_frame_bytes": self.max_frame_bytes,
        }
        spawned: asyncio.Future[int] = loop.create_future()
        self._spawning[ident] = spawned
        try:
            socket.send_fds(
                self._control,
                [frame(runner.SPAWN, json.dumps(request).encode())],
                [theirs.fileno(), output_end],
            )
        finally:
            theirs.close()
            os.close(output_end)
        started = time.perf_counter()
        try:
            pid = await asyncio.wait_for(spawned, self.settings.model_load_timeout_s)
        except BaseException:
            self._spawning.pop(ident, None)
            ours.close()
            os.close(output)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.spawn_task(_forward_output(_pipe_reader(output), f"runner {label} pid {pid}"))
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=1 << 20)
        made = Runner(self, pid, model, label, reader, writer, self._exits.get(pid), tmp)
        try:
            await made.loaded(self.settings.model_load_timeout_s)
        except asyncio.CancelledError:
            made.stop("closed")
            raise
        log.info(
            "runner for %s started (pid %s, %.2f s)", label, pid, time.perf_counter() - started
        )
        return made

    def spawn_task(self, work: Awaitable[Any]) -> None:
        """Run `work` in the background, held until it ends (the loop keeps tasks weakly)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def use(self, folder: Path) -> None:
        self._model_users[folder] += 1

    def release(self, folder: Path) -> None:
        self._model_users[folder] -= 1
        if self._model_users[folder] <= 0:
            del self._model_users[folder]
            shutil.rmtree(folder, ignore_errors=True)

    async def close(self) -> None:
        if self._zygote is not None and self._zygote.returncode is None:
            _kill(self._zygote.pid)  # its runners die with it (PR_SET_PDEATHSIG)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._zygote.wait(), 5)
        if self._control is not None:
            self._control.close()
        for task in list(self._tasks):
            task.cancel()
        shutil.rmtree(self.root, ignore_errors=True)


class Runner:
    """One runner process: one model version, one call at a time."""

    def __init__(
        self,
        runners: Runners,
        pid: int,
        model: str,
        label: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        exited: asyncio.Future[str] | None,
        tmp: Path,
    ) -> None:
        self.runners = runners
        self.pid = pid
        self.model = model
        self.label = label
        self.reader = reader
        self.writer = writer
        self.exited = exited
        self.tmp = tmp
        self.columns: list[Column] | None = None
        self.dead: str | None = None  # why it stopped: crashed, timeout, memory, closed
        self._lock = asyncio.Lock()
        self.max_frame_bytes = runners.max_frame_bytes
        runners.metrics.model_runners.inc()

    async def loaded(self, timeout_s: float) -> None:
        try:
            kind, body = await asyncio.wait_for(self._read(), timeout_s)
        except TimeoutError as exc:
            self.stop("timeout")
            raise ModelUnavailable(
                f"The model did not load within {timeout_s:g} s",
                retry_after=self.runners.settings.retry_after_s,
            ) from exc
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            how = await self._how_it_ended()
            self.stop("crashed")
            raise ModelUnavailable(
                f"The model's runner stopped while loading it ({how})",
                retry_after=self.runners.settings.retry_after_s,
            ) from exc
        try:
            info = json.loads(body)
            if kind == runner.LOADED:
                self.columns = _columns(info["columns"])
                return
            reason = f"{info.get('type')}: {info.get('message')}"[:400]
        except (ValueError, RecursionError, TypeError, KeyError, AttributeError):
            reason = "its runner's answer was not understood"
        self.stop("failed")
        raise ModelUnavailable(
            f"The model could not be loaded: {reason}",
            retry_after=self.runners.settings.retry_after_s,
        )

    async def call(self, payload: bytes) -> list[Any]:
        """One call of the model. ModelFailed for the model's own error or a crash,
        ModelTimeout when it overruns; either way the next call finds a sound runner."""
        timeout_s = self.runners.settings.model_call_timeout_s
        async with self._lock:
            if self.dead:
                raise ModelFailed(f"The model's runner had stopped ({self.dead}); try again")
            try:
                self.writer.write(frame(runner.CALL, payload))
                await self.writer.drain()
                async with asyncio.timeout(timeout_s):  # no task of its own, as wait_for makes
                    kind, body = await self._read()
            except TimeoutError as exc:
                self.stop("timeout")
                raise ModelTimeout(
                    f"The model did not answer within {timeout_s:g} s; its runner was replaced"
                ) from exc
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                how = await self._how_it_ended()
                self.stop("crashed")
                raise ModelFailed(
                    f"The model's runner stopped while predicting ({how}); it was replaced"
                ) from exc
            except asyncio.CancelledError:
                # Its caller went away mid-call: the answer would be left in the channel for
                # the next call to read, so the runner goes (and is replaced).
                self.stop("cancelled")
                raise
        message = _parsed(body)
        if kind == runner.ANSWERS and isinstance(message, list):
            return message
        if kind == runner.FAILED and isinstance(message, dict):
            if message.get("memory"):
                self.stop("memory")
            raise ModelFailed(f"{message.get('type')}: {message.get('message')}"[:400])
        self.stop("crashed")  # not what a runner says: whatever runs there is not ours
        raise ModelFailed("The model's runner answered out of turn; it was replaced")

    async def _read(self) -> tuple[bytes, bytes]:
        head = await self.reader.readexactly(HEADER.size)
        length, kind = HEADER.unpack(head)
        if not 1 <= length <= self.max_frame_bytes + 1:
            raise ConnectionError(f"a frame of {length} bytes")  # the runner is stopped
        return bytes([kind]), await self.reader.readexactly(length - 1)

    async def _how_it_ended(self) -> str:
        if self.exited is None:
            return "its zygote exited"
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), 2)
        except TimeoutError:
            return "its channel closed"

    def stop(self, reason: str) -> None:
        """Kill it (if alive) and clean up after it. Counted as a restart unless `closed`."""
        if self.dead:
            return
        self.dead = reason
        _kill(self.pid)
        self.writer.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.runners.metrics.model_runners.dec()
        if reason != "closed":
            self.runners.metrics.child(
                self.runners.metrics.model_runner_restarts, self.model, reason
            ).inc()
            log.warning("runner for %s (pid %s) stopped: %s", self.label, self.pid, reason)


class RunnerGroup:
    """The runners of one loaded model version: a call takes an idle one; a runner that stopped
    is replaced in the background, from the same files."""

    def __init__(
        self, runners: Runners, model_dir: Path, model: str, version: int, size: int
    ) -> None:
        self.runners = runners
        self.model_dir = model_dir
        self.model = model
        self.label = f"{model} v{version}"
        self.size = size
        self.columns: list[Column] | None = None
        self._column_dicts: list[dict[str, Any]] | None = None
        self._idle: asyncio.Queue[Runner] = asyncio.Queue()
        self._all: list[Runner] = []
        self._closing = False

    async def start(self) -> None:
        self.runners.use(self.model_dir)
        try:
            started = await asyncio.gather(
                *(
                    self.runners.start(self.model_dir, self.model, self.label)
                    for _ in range(self.size)
                ),
                return_exceptions=True,
            )
            failures = [result for result in started if isinstance(result, BaseException)]
            for result in started:
                if isinstance(result, Runner):
                    self._all.append(result)
                    self._idle.put_nowait(result)
            if failures:
                await self.close()
                raise failures[0]
        except BaseException:
            if not self._closing:
                await self.close()
            raise
        self.columns = self._all[0].columns
        self._column_dicts = [asdict(c) for c in self.columns] if self.columns else None

    async def call(self, rows: list[dict[str, Any]]) -> list[Any]:
        """The model's answers to `rows`, from an idle runner (a caller cancelled midway
        costs that runner: it is replaced, since its answer would be left in its channel)."""
        payload = runner.encode_rows(rows, self._column_dicts)
        taken = await self._idle.get()
        try:
            if taken.dead:
                taken = await self._replaced(taken)
            answers = await taken.call(payload)
        finally:
            self._give_back(taken)
        if len(answers) != len(rows):
            raise ModelFailed(f"The model answered {len(answers)} rows for {len(rows)}")
        return answers

    def _give_back(self, taken: Runner) -> None:
        if self._closing:
            taken.stop("closed")
        elif taken.dead:
            self.runners.spawn_task(self._replace_in_background(taken))
        else:
            self._idle.put_nowait(taken)

    async def _replaced(self, dead: Runner) -> Runner:
        fresh = await self.runners.start(self.model_dir, self.model, self.label)
        self._all[self._all.index(dead)] = fresh
        return fresh

    async def _replace_in_background(self, dead: Runner) -> None:
        try:
            fresh = await self._replaced(dead)
        except Exception:  # the next call tries again, and reports what fails
            log.exception("replacing the runner for %s failed", self.label)
            self._idle.put_nowait(dead)
            return
        if self._closing:
            fresh.stop("closed")
        else:
            self._idle.put_nowait(fresh)

    @property
    def pids(self) -> list[int]:
        return [r.pid for r in self._all if not r.dead]

    async def close(self) -> None:
        """Stop the idle runners now and the busy ones when their call ends."""
        if self._closing:
            return
        self._closing = True
        while not self._idle.empty():
            self._idle.get_nowait().stop("closed")
        self.runners.release(self.model_dir)


def _read_paths() -> list[str]:
    """What a runner may read besides its model: the Python installation and this package's
    sandbox folder (never the project folder, where `.hokusai/` and `.env` live)."""
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    python.update(p for p in site.getsitepackages() if p.startswith(tuple(python)))
    return sorted({*python, str(RUNNER_SCRIPT.parent), *SYSTEM_READ})


def _columns(found: Any) -> list[Column] | None:
    """The signature a runner reported, checked: it comes from a process that ran the model."""
    if found is None:
        return None
    columns = [Column(c["name"], c["type"], c["required"]) for c in found]
    for column in columns:
        if not (
            isinstance(column.name, str)
            and isinstance(column.type, str)
            and isinstance(column.required, bool)
        ):
            raise TypeError(column)
    return columns or None


def _parsed(body: bytes) -> Any:
    """A runner's JSON message (by orjson; by `json` what orjson refuses: NaN, integers past 64
    bits), or None when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _settle(future: asyncio.Future[Any] | None, outcome: Any) -> None:
    if future is None or future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _pipe_reader(fd: int) -> Awaitable[asyncio.StreamReader]:
    async def open_reader() -> asyncio.StreamReader:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 16)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
        )
        return reader

    return open_reader()


async def _forward_output(
    source: asyncio.StreamReader | Awaitable[asyncio.StreamReader], who: str
) -> None:
    """What a runner prints, into the service's log (lines cut at 1,000 characters, at most
    LOG_LINES_PER_RUNNER lines a runner): it is the uploader's text, never a response."""
    reader = source if isinstance(source, asyncio.StreamReader) else await source
    lines = 0
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # a line past the reader's limit: skip it
            continue
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        if not line:
            return
        lines += 1
        if lines <= LOG_LINES_PER_RUNNER:
            log.info("%s: %s", who, line.decode(errors="replace").rstrip()[:1000])
        elif lines == LOG_LINES_PER_RUNNER + 1:
            log.info("%s: further output is not logged", who)
