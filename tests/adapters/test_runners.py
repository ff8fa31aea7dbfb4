"""The runners adapter and the kernel module on their own: real runner processes on real model
folders, and the kernel's own answers to confined processes."""

from __future__ import annotations

import ast
import asyncio
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.adapters.runners import RunnerGroup, Runners
from app.core.config import Settings
from app.core.errors import ModelUnavailable
from app.core.metrics import Metrics
from app.sandbox import kernel
from tests.sandbox_payloads import code_model

SANDBOX = Path(kernel.__file__).resolve().parent


def staged(runners: Runners, model: Path) -> Path:
    """The model in the runners' own folder, where the service puts what it downloaded."""
    return Path(shutil.copytree(model, runners.model_folder("sha256:" + model.name)))


def echo_model(directory: Path) -> Path:
    """Answers each row's `x`, after `wait` seconds when the row asks for it."""
    return code_model(
        directory,
        "echo_loader",
        "import time\n"
        "class Model:\n"
        "    def predict(self, rows, *args, **kwargs):\n"
        "        time.sleep(float(rows.get('wait', [0])[0] or 0))\n"
        "        return [v for v in rows['x']]\n"
        "def _load_pyfunc(path):\n"
        "    return Model()\n",
    )


async def test_a_caller_that_goes_away_does_not_leave_its_answer_to_the_next(
    tmp_path: Path,
) -> None:
    runners = Runners(Settings(_env_file=None), Metrics())  # type: ignore[call-arg]
    group = RunnerGroup(runners, staged(runners, echo_model(tmp_path)), "echo", 1, 1)
    try:
        await group.start()
        slow = asyncio.ensure_future(group.call([{"x": "first", "wait": 0.5}]))
        await asyncio.sleep(0.1)
        slow.cancel()
        assert await group.call([{"x": "second"}]) == ["second"]
        assert await group.call([{"x": "third"}]) == ["third"]
    finally:
        await group.close()
        await runners.close()


async def test_a_model_that_cannot_load_is_unavailable_and_leaves_no_runner(
    tmp_path: Path,
) -> None:
    broken = code_model(tmp_path, "broken_loader", "raise RuntimeError('no such weights')\n")
    metrics = Metrics()
    runners = Runners(Settings(_env_file=None), metrics)  # type: ignore[call-arg]
    group = RunnerGroup(runners, staged(runners, broken), "broken", 1, 1)
    try:
        with pytest.raises(ModelUnavailable, match="no such weights"):
            await group.start()
        assert group.pids == []
        assert metrics.registry.get_sample_value("hokusai_model_runners") == 0
    finally:
        await runners.close()
    assert not runners.root.exists(), "the runners' folders are removed on close"


def confined(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`code` run by a fresh interpreter after confining itself as a runner does (FOLDER: its
    own folder)."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(SANDBOX)!r})
        import kernel
        FOLDER = {str(tmp_path)!r}
        kernel.restrict_files_and_network(
            [sys.base_prefix, sys.prefix, "/usr/lib", "/lib", "/lib64"],
            [{str(tmp_path)!r}],
            kernel.landlock_abi(),
        )
        kernel.restrict_system_calls()
        """
    ) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_this_kernel_supports_the_whole_sandbox() -> None:
    support = kernel.support()
    assert support.complete, support.missing
    assert support.landlock_abi >= kernel.REQUIRED_ABI


def test_a_confined_process_keeps_threads_and_its_folder_but_nothing_else(
    tmp_path: Path,
) -> None:
    done = confined(
        """
        import errno, signal, socket, threading
        results = {}
        def attempt(name, action):
            try:
                action()
                results[name] = "allowed"
            except OSError as exc:
                results[name] = errno.errorcode[exc.errno]
        thread = threading.Thread(target=lambda: None)
        attempt("thread", lambda: (thread.start(), thread.join()))
        attempt("own folder", lambda: open(FOLDER + "/ok", "w").close())
        attempt("other folder", lambda: open("/etc/hostname"))
        attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        attempt("unix socket", lambda: socket.socket(socket.AF_UNIX))
        attempt("fork", os.fork)
        attempt("program", lambda: os.execv("/bin/true", ["true"]))
        attempt("signal parent", lambda: os.kill(os.getppid(), 0))
        attempt("signal itself", lambda: os.kill(os.getpid(), 0))
        print(results)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    results = ast.literal_eval(done.stdout)
    assert results == {
        "thread": "allowed",
        "own folder": "allowed",
        "other folder": "EACCES",
        "socket": "EACCES",
        "unix socket": "EACCES",
        "fork": "EPERM",
        "program": "EPERM",
        "signal parent": "EPERM",
        "signal itself": "allowed",
    }


def test_a_confined_process_that_aborts_dies_by_its_own_signal(tmp_path: Path) -> None:
    done = confined("os.abort()", tmp_path)
    assert done.returncode == -6, (done.returncode, done.stderr)
