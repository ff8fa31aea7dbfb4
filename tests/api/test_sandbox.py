"""Uploaded models are code: hostile artifacts, uploaded through the API with a `write` key to a
service run as users run it (its own process, secrets in its environment, a config file and a
`.hokusai/` folder beside it), may run, but only in a runner, where they can read no secret,
reach no store or port, write nowhere but their scratch folder and signal nothing. Each payload
proves it with its own report, handed back as its prediction. Models that crash, hang or eat
memory fail alone: the service and its other models keep serving."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from app.cli import migrate
from app.core.config import Settings
from app.core.security import generate_key
from tests import sandbox_payloads
from tests.api.test_errors import assert_problem
from tests.conftest import auth, live_settings
from tests.factories import baseline, save_sklearn, tar_gz, unique
from tests.services_under_test import scratch_database, service_process

WEBHOOK_SECRET = "whsec-" + "s3cr3t" * 6
EIP712_KEY = "0x" + "4c" * 32
CONFIG_SECRET = "config-file-secret-" + uuid.uuid4().hex


@dataclass
class Hostile:
    url: str
    admin_key: str
    pid: int
    workdir: Path
    settings: Settings


def hostile_settings(
    database_url: str, redis_url: str, mlflow_uri: str, workdir: Path, admin: str
) -> Settings:
    """A service with every secret it can hold, a config file and a `.hokusai/` folder beside
    it, and short model limits."""
    (workdir / ".env").write_text(f"HOKUSAI_WEBHOOK_SECRET={CONFIG_SECRET}\n")
    (workdir / ".hokusai").mkdir(exist_ok=True)
    (workdir / ".hokusai" / "dev-api-key").write_text(admin)
    return live_settings(
        database_url,
        redis_url,
        mlflow_uri,
        workdir,
        admin,
        webhook_secret=SecretStr(WEBHOOK_SECRET),
        eip712_signing_key=SecretStr(EIP712_KEY),
        model_call_timeout_s=4,
        model_runner_memory_mb=1536,
        log_level="INFO",
    )


@pytest.fixture(scope="module")
def hostile(
    postgres_admin_url: str,
    redis_url: str,
    mlflow_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Hostile]:
    """On a database of its own: the other tests empty theirs after each test."""
    workdir = tmp_path_factory.mktemp("hostile")
    admin = generate_key()
    with scratch_database(postgres_admin_url, "hokusai_hostile") as database_url:
        migrate(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
        settings = hostile_settings(database_url, redis_url, mlflow_uri, workdir, admin)
        with service_process(settings, workdir, cwd=workdir) as (url, process):
            yield Hostile(url, admin, process.pid, workdir, settings)


def targets(service: Hostile) -> dict[str, Any]:
    """What a payload goes after: the service's secrets, its stores, its port, its folder."""
    settings = service.settings
    database = urlsplit(settings.database_url.replace("+psycopg", ""))
    redis = urlsplit(settings.redis_url or "")
    mlflow = urlsplit(settings.mlflow_tracking_uri)
    socket_path = "/var/run/postgresql/.s.PGSQL.5432"
    unix = {"postgres socket": socket_path} if Path(socket_path).exists() else {}
    return {
        "read": {
            "the signing key": settings.attestation_key_file,
            "the config file": str(service.workdir / ".env"),
            "the .hokusai folder": str(service.workdir / ".hokusai" / "dev-api-key"),
            "the API process's environment": f"/proc/{service.pid}/environ",
            "the service's code": str(Path(__file__).resolve().parents[2] / "app" / "main.py"),
            "/etc/passwd": "/etc/passwd",
        },
        "connect": {
            "postgres": [database.hostname, database.port or 5432],
            "redis": [redis.hostname, redis.port or 6379],
            "mlflow": [mlflow.hostname, mlflow.port],
            "the API port": ["127.0.0.1", settings.port],
        },
        "unix": unix,
        "udp_port": 9,
        "write": {
            "the service's folder": str(service.workdir / f"written-{uuid.uuid4().hex}"),
            "/tmp": f"/tmp/written-by-a-model-{uuid.uuid4().hex}",
        },
        "listed": str(service.workdir),
        "api_pid": service.pid,
    }


async def register(service: Hostile, directory: Path, **fields: Any) -> str:
    """Uploaded with a `write` key, as a contributor would."""
    name = unique("hostile")
    async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
        created = await client.post(
            "/api/v1/api-keys",
            json={"name": "contributor", "scopes": ["read", "write", "predict"]},
            headers=auth(service.admin_key),
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        response = await client.post(
            "/api/v1/models/register",
            data={"metadata": json.dumps(baseline(name, **fields))},
            files={"artifact": ("model.tar.gz", tar_gz(directory), "application/octet-stream")},
            headers=auth(key),
        )
    assert response.status_code == 201, response.text
    return name


async def predict(service: Hostile, name: str, inputs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        return await client.post(
            f"/api/v1/models/{name}/predict",
            json={"inputs": inputs},
            headers=auth(service.admin_key),
        )


def assert_confined(service: Hostile, report: dict[str, Any], want: dict[str, Any]) -> None:
    assert report["pid"] != service.pid, "the model ran in the API process"
    tried = report["tried"]
    assert set(tried) >= {f"read {name}" for name in want["read"]}
    allowed = {what: answer for what, answer in tried.items() if not answer.startswith("denied")}
    assert allowed == {}, f"the sandbox let these through: {allowed}"
    assert report["scratch"] == "allowed", "the runner's own scratch folder is writable"
    for name in want["write"].values():
        assert not Path(name).exists()
    secrets = (service.admin_key, WEBHOOK_SECRET, EIP712_KEY, CONFIG_SECRET, "postgresql")
    for key, value in report["env"].items():
        assert not key.startswith("HOKUSAI_"), key
        assert not any(secret in value for secret in secrets), key


@pytest.mark.parametrize("artifact", ["python_model", "pickle", "cloudpickle", "code_loader"])
async def test_a_hostile_artifact_runs_only_in_a_runner_that_holds_and_reaches_nothing(
    hostile: Hostile, tmp_path: Path, artifact: str
) -> None:
    want = targets(hostile)
    if artifact in ("pickle", "cloudpickle"):
        directory = sandbox_payloads.sklearn_pickle(tmp_path, want, artifact)
    else:
        directory = getattr(sandbox_payloads, artifact)(tmp_path, want)
    name = await register(hostile, directory)
    response = await predict(hostile, name, [{"x": 1.0}])
    assert response.status_code == 200, response.text
    report = json.loads(response.json()["predictions"][0])
    phases = ["load", "predict", *(["import"] if artifact == "code_loader" else [])]
    for phase in phases:
        assert_confined(hostile, report[phase], want)
    if want["unix"]:
        assert report["load"]["tried"]["connect postgres socket"].startswith("denied")
    async with httpx.AsyncClient(base_url=hostile.url) as client:
        assert (await client.get("/health")).status_code == 200


async def test_benign_models_of_each_flavor_answer_as_they_would_in_process(
    hostile: Hostile, tmp_path: Path
) -> None:
    import pandas as pd

    from tests.factories import training_data

    frame, _, _ = training_data()
    rows = frame.head(5).to_dict(orient="records")
    for kind in ("classifier", "regressor"):
        directory, estimator = save_sklearn(tmp_path, kind)
        name = await register(hostile, directory)
        response = await predict(hostile, name, rows)
        assert response.status_code == 200, response.text
        want = list(estimator.predict(pd.DataFrame(rows)))
        assert response.json()["predictions"] == pytest.approx(want)


MISBEHAVIOUR = {
    "segfault": ("ctypes.string_at(0)", 422, "model_failed", "SIGSEGV", "crashed"),
    "abort": ("os.abort()", 422, "model_failed", "SIGABRT", "crashed"),
    "endless": ("while True:\n    pass", 504, "model_timeout", "4 s", "timeout"),
    "hog": (
        "import numpy\nhoard = []\nwhile True:\n    hoard.append(numpy.empty(64 << 20, 'u1'))",
        422,
        "model_failed",
        "MiB",
        "memory",
    ),
}


@pytest.mark.parametrize("kind", list(MISBEHAVIOUR))
async def test_a_model_that_crashes_hangs_or_hoards_fails_alone_and_is_replaced(
    hostile: Hostile, tmp_path: Path, kind: str
) -> None:
    body, status, code, says, reason = MISBEHAVIOUR[kind]
    bad = await register(hostile, sandbox_payloads.misbehaving(tmp_path, f"bad_{kind}", body))
    directory, _estimator = save_sklearn(tmp_path)
    good = await register(hostile, directory)
    assert (await predict(hostile, bad, {"f0": 1.0})).json()["predictions"] == [1.0]
    assert (await predict(hostile, good, {"f0": 0.5, "f1": 0.5, "f2": 0.5})).status_code == 200

    others = [{"f0": i / 100, "f1": 0.25, "f2": 0.75} for i in range(30)]

    async def meanwhile() -> list[httpx.Response]:
        answers = []
        for row in others:
            answers.append(await predict(hostile, good, row))
            await asyncio.sleep(0.05)
        return answers

    fault, answers = await asyncio.gather(predict(hostile, bad, {"f0": 1000.0}), meanwhile())
    assert_problem(fault, status, code)
    assert says in fault.json()["detail"]
    assert [a.status_code for a in answers] == [200] * len(others)
    # The runner was replaced: the same model answers the next harmless row.
    again = await predict(hostile, bad, {"f0": 2.0})
    assert again.status_code == 200, again.text
    assert again.json()["predictions"] == [2.0]
    async with httpx.AsyncClient(base_url=hostile.url) as client:
        metrics = (await client.get("/metrics")).text
        assert (await client.get("/health")).status_code == 200
    line = f'hokusai_model_runner_restarts_total{{model="{bad}",reason="{reason}"}} 1.0'
    assert line in metrics


async def test_starting_a_replica_runs_no_model_code_in_the_api_process(
    hostile: Hostile,
    redis_url: str,
    mlflow_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    """A production model whose import leaves a marker: a new replica warms it up in a runner,
    where the marker cannot be written, and its output names the runner's process."""
    workdir = tmp_path_factory.mktemp("replica")
    marker = workdir / "marker-"
    saved = sandbox_payloads.code_model(
        tmp_path,
        "marker_loader",
        "import os, sys\n"
        "print('MARKER pid=%d' % os.getpid(), file=sys.stderr)\n"
        "try:\n"
        f"    open({str(marker)!r} + str(os.getpid()), 'w').write('loaded here')\n"
        "except OSError as exc:\n"
        "    print('MARKER refused:', exc, file=sys.stderr)\n"
        "class Model:\n"
        "    def predict(self, rows, *args, **kwargs):\n"
        "        return [os.getpid()] * len(rows)\n"
        "def _load_pyfunc(path):\n"
        "    return Model()\n",
    )
    name = await register(hostile, saved)
    async with httpx.AsyncClient(base_url=hostile.url) as client:
        moved = await client.put(
            f"/api/v1/models/{name}/aliases/production",
            json={"version": 1},
            headers=auth(hostile.admin_key),
        )
        assert moved.status_code == 200, moved.text
    settings = hostile_settings(
        hostile.settings.database_url, redis_url, mlflow_uri, workdir, hostile.admin_key
    )
    with service_process(settings, workdir, cwd=workdir) as (url, replica):
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(600):
                ready = (await client.get("/ready")).json()
                if ready.get("warmup", {}).get("status") == "done":
                    break
                await asyncio.sleep(0.1)
    assert ready["warmup"]["loaded"] >= 1
    assert ready["checks"]["runners"]["status"] == "up"
    assert ready["sandbox"]["enforced"] is True
    output = (workdir / f"service-{settings.port}.log").read_text()
    pids = {int(pid) for pid in re.findall(r"MARKER pid=(\d+)", output)}
    assert pids, output[-3000:]
    assert replica.pid not in pids
    assert "MARKER refused" in output
    assert list(workdir.glob("marker-*")) == []


def reporting_model(directory: Path, secret_file: Path) -> Path:
    """A `code:` model that answers its process id and what it found in `secret_file`."""
    return sandbox_payloads.code_model(
        directory,
        "reporting_loader",
        "import os\n"
        "def attempt():\n"
        "    try:\n"
        f"        return open({str(secret_file)!r}).read()\n"
        "    except OSError as exc:\n"
        "        return 'denied: ' + type(exc).__name__\n"
        "class Model:\n"
        "    def predict(self, rows, *args, **kwargs):\n"
        "        return [[os.getpid(), attempt()]] * len(rows)\n"
        "def _load_pyfunc(path):\n"
        "    return Model()\n",
    )


async def test_unconfined_runners_still_keep_models_out_of_the_api_process_and_say_so(
    make_settings: Any, admin_key: str, tmp_path: Path
) -> None:
    from tests.conftest import serve
    from tests.factories import upload

    secret = tmp_path / "secret.txt"
    secret.write_text("readable")
    async with serve(make_settings(model_sandbox="unconfined")) as client:
        name = unique("unconfined")
        registered = await upload(
            client, admin_key, baseline(name), tar_gz(reporting_model(tmp_path, secret))
        )
        assert registered.status_code == 201, registered.text
        response = await client.post(
            f"/api/v1/models/{name}/predict", json={"inputs": {"x": 1}}, headers=auth(admin_key)
        )
        ready = (await client.get("/ready")).json()
    assert response.status_code == 200, response.text
    pid, found = response.json()["predictions"][0]
    assert pid != os.getpid(), "even unconfined, a model runs in a runner, not the API process"
    assert found == "readable", "unconfined: the kernel's confinement is off, as documented"
    assert ready["sandbox"]["mode"] == "unconfined"
    assert ready["sandbox"]["enforced"] is False


async def test_model_files_that_differ_from_the_registered_digest_are_not_loaded(
    make_settings: Any, admin_key: str, tmp_path: Path
) -> None:
    """Someone with access to the artifact store swaps a model's file after registration: the
    service downloads the files, finds another digest, and loads nothing."""
    from tests.conftest import serve
    from tests.factories import upload

    store = tmp_path / "store"
    settings = make_settings(
        mlflow_tracking_uri=f"sqlite:///{store}/mlflow.db", mlflow_artifact_root=str(store / "art")
    )
    directory, _ = save_sklearn(tmp_path)
    async with serve(settings) as client:
        name = unique("tampered")
        registered = await upload(client, admin_key, baseline(name), tar_gz(directory))
        assert registered.status_code == 201, registered.text
        stored = [p for p in (store / "art").rglob("*") if p.name.startswith("model.")]
        assert stored, "the model's file in the artifact store"
        for path in stored:
            path.write_bytes(path.read_bytes() + b"tampered")
        response = await client.post(
            f"/api/v1/models/{name}/predict",
            json={"inputs": {"f0": 0.1, "f1": 0.2, "f2": 0.3}},
            headers=auth(admin_key),
        )
    assert_problem(response, 503, "model_unavailable")
    assert "digest" in response.json()["detail"]


async def test_a_crash_in_a_gathered_call_fails_only_the_request_at_fault(
    hostile: Hostile, tmp_path: Path
) -> None:
    """Concurrent requests for one model are gathered into one runner call; one row crashes
    the runner: that request fails, the others are answered again alone by its replacement."""
    model = sandbox_payloads.code_model(
        tmp_path,
        "gathered_crash",
        "import ctypes, time\n"
        "class Model:\n"
        "    def predict(self, rows, *args, **kwargs):\n"
        "        time.sleep(0.2)  # the other requests queue meanwhile, and are gathered\n"
        "        if (rows['f0'] > 100).any():\n"
        "            ctypes.string_at(0)\n"
        "        return [float(v) for v in rows['f0']]\n"
        "def _load_pyfunc(path):\n"
        "    return Model()\n",
    )
    name = await register(hostile, model)
    assert (await predict(hostile, name, {"f0": 1.0})).status_code == 200
    rows = [{"f0": 1000.0 if i == 5 else float(i) + 0.5} for i in range(12)]
    first = asyncio.ensure_future(predict(hostile, name, {"f0": 99.0}))  # keeps the runner busy
    await asyncio.sleep(0.05)
    answers = await asyncio.gather(*(predict(hostile, name, row) for row in rows))
    assert (await first).status_code == 200
    assert [a.status_code for a in answers] == [422 if i == 5 else 200 for i in range(12)]
    assert "SIGSEGV" in answers[5].json()["detail"]
    for i, answer in enumerate(answers):
        if i != 5:
            assert answer.json()["predictions"] == [float(i) + 0.5]
    async with httpx.AsyncClient(base_url=hostile.url) as client:
        metrics = (await client.get("/metrics")).text
    gathered = [
        line
        for line in metrics.splitlines()
        if line.startswith("hokusai_model_calls_total{")
        and f'model="{name}"' in line
        and 'mode="gathered"' in line
    ]
    assert gathered, "the rows were gathered into one call"


async def test_several_runners_serve_one_busy_model_in_parallel(
    make_settings: Any, admin_key: str, tmp_path: Path
) -> None:
    from tests.conftest import serve
    from tests.factories import upload

    model = sandbox_payloads.code_model(
        tmp_path,
        "pid_loader",
        "import os, time\n"
        "class Model:\n"
        "    def predict(self, rows, *args, **kwargs):\n"
        "        time.sleep(0.05)\n"
        "        return [os.getpid()] * len(rows)\n"
        "def _load_pyfunc(path):\n"
        "    return Model()\n",
    )
    async with serve(make_settings(model_runners=2)) as client:
        name = unique("parallel")
        registered = await upload(client, admin_key, baseline(name), tar_gz(model))
        assert registered.status_code == 201, registered.text

        async def call(i: int) -> httpx.Response:
            return await client.post(
                f"/api/v1/models/{name}/predict", json={"inputs": {"i": i}}, headers=auth(admin_key)
            )

        answers = await asyncio.gather(*(call(i) for i in range(16)))
        metrics = (await client.get("/metrics")).text
    assert {a.status_code for a in answers} == {200}
    pids = {a.json()["predictions"][0] for a in answers}
    assert len(pids) == 2, "both runners of the version answered"
    assert "hokusai_model_runners 2.0" in metrics


async def test_a_model_that_forges_frames_on_its_channel_is_stopped_not_believed(
    hostile: Hostile, tmp_path: Path
) -> None:
    """Model code can find its runner's socket and write to it: a frame claiming 2 GiB, or an
    answer with the wrong number of rows, stops the runner; the API process allocates nothing."""
    model = sandbox_payloads.code_model(
        tmp_path,
        "forger",
        "import os, struct, json, time\n"
        "def sockets():\n"
        "    for fd in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        "            if os.readlink(f'/proc/self/fd/{fd}').startswith('socket:'):\n"
        "                yield int(fd)\n"
        "        except OSError:\n"
        "            pass\n"
        "class Model:\n"
        "    def predict(self, rows, *args, **kwargs):\n"
        "        if rows['f0'][0] > 100:\n"
        "            for fd in sockets():\n"
        "                os.write(fd, struct.pack('!IB', 2**31, ord('A')))\n"
        "            time.sleep(30)\n"
        "        if rows['f0'][0] > 10:\n"
        "            return [1.0] * (len(rows) + 3)\n"
        "        return [float(v) for v in rows['f0']]\n"
        "def _load_pyfunc(path):\n"
        "    return Model()\n",
    )
    name = await register(hostile, model)
    assert (await predict(hostile, name, {"f0": 1.0})).json()["predictions"] == [1.0]
    too_many = await predict(hostile, name, {"f0": 50.0})
    assert_problem(too_many, 422, "model_failed")
    assert "answered 4 rows for 1" in too_many.json()["detail"]
    forged = await predict(hostile, name, {"f0": 500.0})
    assert_problem(forged, 422, "model_failed")
    again = await predict(hostile, name, {"f0": 3.0})
    assert again.status_code == 200, again.text
    assert again.json()["predictions"] == [3.0]


async def test_a_caller_that_goes_away_mid_call_costs_its_runner_not_the_next_answer(
    make_settings: Any, admin_key: str, tmp_path: Path
) -> None:
    """A request cancelled while the model works (here: the in-process client gives up) would
    leave the model's answer in the runner's channel, for the next call to read as its own; the
    runner is replaced instead, and the next call gets its own answer."""
    from tests.conftest import serve
    from tests.factories import upload

    model = sandbox_payloads.misbehaving(tmp_path, "slow", "time.sleep(1)")
    async with serve(make_settings()) as client:
        name = unique("cancelled")
        registered = await upload(client, admin_key, baseline(name), tar_gz(model))
        assert registered.status_code == 201, registered.text

        async def call(f0: float) -> httpx.Response:
            return await client.post(
                f"/api/v1/models/{name}/predict",
                json={"inputs": {"f0": f0}},
                headers=auth(admin_key),
            )

        assert (await call(1.0)).json()["predictions"] == [1.0]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call(1000.0), 0.3)
        again = await call(2.0)
        metrics = (await client.get("/metrics")).text
    assert again.status_code == 200, again.text
    assert again.json()["predictions"] == [2.0]
    line = f'hokusai_model_runner_restarts_total{{model="{name}",reason="cancelled"}} 1.0'
    assert line in metrics
