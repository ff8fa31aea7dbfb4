"""What registration does when the artifact is hostile, MLflow is gone, or Postgres fails after
MLflow succeeded; and twenty registrations of one model at once."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from mlflow import MlflowClient

from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.conftest import auth, serve
from tests.factories import baseline, improved, save_sklearn, tar_gz, unique, upload
from tests.proxy import Proxy
from tests.services_under_test import free_port, refused_at_commit

MLMODEL = b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_sklearn(tmp_path_factory.mktemp("failure-models"))[0]


def tar_with(*members: tuple[str, bytes | None, str | None]) -> bytes:
    """(name, content, link target): a file when content is given, else a symlink; a link
    target written `hard:target` is a hardlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if content is not None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                hard = (link or "").startswith("hard:")
                info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
                info.linkname = (link or "").removeprefix("hard:")
                tar.addfile(info)
    return buffer.getvalue()


def zip_with(*files: tuple[str, bytes], symlink: tuple[str, str] | None = None) -> bytes:
    return zip_links(*files, links=[symlink] if symlink is not None else [])


def zip_links(*files: tuple[str, bytes], links: list[tuple[str, str | bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            archive.writestr(name, content)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return buffer.getvalue()


# A directory link that reads as inside the tree (a10's parent is 9 deep, 9 `..` climb to the
# root) but really is the root; a second link's 10 `..` then climb out of the real tree.
DEEP = "/".join(f"a{i}" for i in range(1, 11))
CLIMB = "../" * 9
LEAK = f"{DEEP}/{'../' * 10}etc/passwd"
ZEROS = bytes(100_000)


HOSTILE = {
    "path traversal": (
        tar_with(("MLmodel", MLMODEL, None), ("../evil.txt", b"x", None)),
        400,
        "invalid_artifact",
    ),
    "absolute path": (
        tar_with(("MLmodel", MLMODEL, None), ("/tmp/evil.txt", b"x", None)),
        400,
        "invalid_artifact",
    ),
    "symlink out of the tree": (
        tar_with(("MLmodel", MLMODEL, None), ("link", None, "../../etc/passwd")),
        400,
        "invalid_artifact",
    ),
    "absolute symlink": (
        tar_with(("MLmodel", MLMODEL, None), ("link", None, "/etc")),
        400,
        "invalid_artifact",
    ),
    "zip traversal": (
        zip_with(("MLmodel", MLMODEL), ("../../evil.txt", b"x")),
        400,
        "invalid_artifact",
    ),
    "zip symlink out": (
        zip_with(("MLmodel", MLMODEL), symlink=("link", "../../../etc/passwd")),
        400,
        "invalid_artifact",
    ),
    "chained links (tar symlink)": (
        tar_with(("MLmodel", MLMODEL, None), (DEEP, None, CLIMB), ("leak", None, LEAK)),
        400,
        "invalid_artifact",
    ),
    "chained links (tar hardlink)": (
        tar_with(("MLmodel", MLMODEL, None), (DEEP, None, CLIMB), ("leak", None, f"hard:{LEAK}")),
        400,
        "invalid_artifact",
    ),
    "chained links (zip symlink)": (
        zip_links(("MLmodel", MLMODEL), links=[(DEEP, CLIMB), ("leak", LEAK)]),
        400,
        "invalid_artifact",
    ),
    "a link that becomes an escape once a later link exists": (
        tar_with(
            ("MLmodel", MLMODEL, None),
            ("a/leak", None, "d/../../etc/passwd"),  # reads as inside: a/d/../.. is the root
            ("a/b/keep", b"x", None),
            ("a/d", None, "b/.."),  # then a/d is a itself, and the first link climbs out
        ),
        400,
        "invalid_artifact",
    ),
    "a file written through a link": (
        tar_with(("MLmodel", MLMODEL, None), ("up", None, "."), ("up/x.txt", b"x", None)),
        400,
        "invalid_artifact",
    ),
    "a link to a directory": (
        tar_with(("MLmodel", MLMODEL, None), ("data/a.txt", b"a", None), ("d", None, "data")),
        400,
        "invalid_artifact",
    ),
    "hardlink bomb": (
        tar_with(
            ("MLmodel", MLMODEL, None),
            ("zeros.bin", ZEROS, None),
            *((f"copy{i}.bin", None, "hard:zeros.bin") for i in range(2000)),
        ),
        413,
        "artifact_too_large",
    ),
    "symlink bomb": (
        tar_with(
            ("MLmodel", MLMODEL, None),
            ("zeros.bin", ZEROS, None),
            *((f"copy{i}.bin", None, "zeros.bin") for i in range(2000)),
        ),
        413,
        "artifact_too_large",
    ),
    "a hardlink to a file not in the archive": (
        tar_with(("MLmodel", MLMODEL, None), ("passwd", None, "hard:etc/passwd")),
        400,
        "invalid_artifact",
    ),
    "zip link that is not UTF-8": (
        zip_links(("MLmodel", MLMODEL), links=[("link", b"\xff")]),
        400,
        "invalid_artifact",
    ),
    "zip bomb ratio": (
        zip_with(("MLmodel", MLMODEL), ("weights.bin", bytes(30_000_000))),
        413,
        "artifact_too_large",
    ),
    "no MLmodel": (tar_with(("model.pkl", b"weights", None)), 400, "invalid_artifact"),
    "not an archive": (b"just some bytes, not an archive" * 10, 400, "invalid_artifact"),
}


@pytest.mark.parametrize("attack", list(HOSTILE))
async def test_hostile_archives_are_refused_before_anything_is_written(
    client: httpx.AsyncClient, admin_key: str, mlflow_uri: str, attack: str, tmp_path: Path
) -> None:
    archive, status, code = HOSTILE[attack]
    name = unique()
    response = await upload(client, admin_key, baseline(name), archive)
    assert_problem(response, status, code)
    assert (await client.get(f"/api/v1/models/{name}", headers=auth(admin_key))).status_code == 404
    assert MlflowClient(mlflow_uri, mlflow_uri).search_registered_models(f"name = '{name}'") == []
    assert not (tmp_path.parent / "evil.txt").exists()


async def test_links_inside_the_tree_are_fine(client: httpx.AsyncClient, admin_key: str) -> None:
    archive = tar_with(
        ("MLmodel", MLMODEL, None),
        ("data/a.txt", b"a", None),
        ("alias.txt", None, "data/a.txt"),
        ("data/same.txt", None, "hard:data/a.txt"),
    )
    response = await upload(client, admin_key, baseline(unique()), archive)
    assert response.status_code == 201, response.text


async def test_an_upload_over_the_size_limit_is_413_artifact_too_large(
    make_settings: Callable[..., Settings], admin_key: str, model_dir: Path
) -> None:
    archive = tar_gz(model_dir)
    async with serve(make_settings(max_artifact_bytes=len(archive) // 2)) as client:
        response = await upload(client, admin_key, baseline(unique()), archive)
    assert_problem(response, 413, "artifact_too_large")


async def test_mlflow_at_a_closed_port_is_a_fast_503_and_no_row(
    make_settings: Callable[..., Settings], admin_key: str, model_dir: Path
) -> None:
    name = unique()
    dead = f"http://127.0.0.1:{free_port()}"
    async with serve(make_settings(mlflow_tracking_uri=dead)) as client:
        response = await upload(client, admin_key, baseline(name), tar_gz(model_dir))
        missing = await client.get(f"/api/v1/models/{name}", headers=auth(admin_key))
    assert_problem(response, 503, "registry_unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert missing.status_code == 404


async def test_mlflow_lost_mid_test_is_503_then_recovers_with_the_same_key(
    make_settings: Callable[..., Settings], admin_key: str, model_dir: Path, mlflow_uri: str
) -> None:
    target = urlsplit(mlflow_uri)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 80)
    name = unique()
    archive = tar_gz(model_dir)
    async with serve(make_settings(mlflow_tracking_uri=proxy.url, mlflow_timeout_s=5)) as client:
        first = await upload(client, admin_key, baseline(name), tar_gz(model_dir))
        assert first.status_code == 201, first.text
        proxy.cut()
        lost = await upload(client, admin_key, improved(name), archive, idempotency_key="after-cut")
        ready = await client.get("/ready")
        versions = (
            await client.get(f"/api/v1/models/{name}/versions", headers=auth(admin_key))
        ).json()
    assert_problem(lost, 503, "registry_unavailable")
    assert ready.status_code == 200, "predictions need no MLflow: degraded, still in rotation"
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["mlflow"]["status"] == "down"
    assert versions["total"] == 1
    async with serve(make_settings()) as client:  # MLflow reachable again
        retried = await upload(
            client, admin_key, improved(name), archive, idempotency_key="after-cut"
        )
    assert retried.status_code == 201, retried.text
    assert retried.json()["version"] == 2


async def test_retry_after_postgres_failed_reuses_the_mlflow_version(
    client: httpx.AsyncClient, admin_key: str, model_dir: Path, database_url: str, mlflow_uri: str
) -> None:
    """MLflow succeeds, then the transaction fails at COMMIT (a deferred trigger): no row. The
    retry with the same Idempotency-Key finds the MLflow version by its request-key tag."""
    name = unique()
    archive = tar_gz(model_dir)  # gzip stamps the time: one archive, so retries send the same bytes
    with refused_at_commit(database_url, "model_versions"):
        failed = await upload(client, admin_key, baseline(name), archive, idempotency_key="k1")
    assert_problem(failed, 500, "internal_error")
    assert (await client.get(f"/api/v1/models/{name}", headers=auth(admin_key))).status_code == 404
    retried = await upload(client, admin_key, baseline(name), archive, idempotency_key="k1")
    assert retried.status_code == 201, retried.text
    assert retried.json()["version"] == 1
    mlflow = MlflowClient(mlflow_uri, mlflow_uri)
    assert [v.version for v in mlflow.search_model_versions(f"name = '{name}'")] == ["1"]
    runs = mlflow.search_runs([mlflow.get_experiment_by_name(name).experiment_id])
    assert len(runs) == 1, "the retry reused the logged run"
    replay = await upload(client, admin_key, baseline(name), archive, idempotency_key="k1")
    assert replay.json() == retried.json()
    assert replay.headers["idempotent-replayed"] == "true"


async def test_same_idempotency_key_with_another_artifact_is_409(
    client: httpx.AsyncClient, admin_key: str, model_dir: Path, tmp_path: Path
) -> None:
    name = unique()
    first = await upload(
        client, admin_key, baseline(name), tar_gz(model_dir), idempotency_key="same"
    )
    assert first.status_code == 201
    other = tar_gz(save_sklearn(tmp_path, "regressor")[0])
    conflict = await upload(client, admin_key, baseline(name), other, idempotency_key="same")
    assert_problem(conflict, 409, "idempotency_conflict")


async def test_twenty_concurrent_registrations_get_twenty_consecutive_versions(
    client: httpx.AsyncClient, admin_key: str, model_dir: Path
) -> None:
    name = unique()
    first = await upload(client, admin_key, baseline(name), tar_gz(model_dir))
    source = f"runs:/{first.json()['artifact']['mlflow_run_id']}/model"
    body = {**improved(name), "source_uri": source}
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/models/register", json=body, headers=auth(admin_key), timeout=120)
            for _ in range(20)
        )
    )
    assert [r.status_code for r in responses] == [201] * 20, [
        r.text for r in responses if r.status_code != 201
    ]
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 22))
    listed = (
        await client.get(f"/api/v1/models/{name}/versions?limit=100", headers=auth(admin_key))
    ).json()
    assert listed["total"] == 21
    assert all(v["parent_version"] == 1 for v in listed["items"] if v["kind"] == "improved")


async def test_a_hung_mlflow_opens_the_breaker_then_503s_are_instant_until_it_answers(
    make_settings: Callable[..., Settings], admin_key: str, mlflow_uri: str, model_dir: Path
) -> None:
    """One call times out; the probe of MLflow's /health gets no answer either, so the breaker
    opens at once: the first fast 503 comes after one call timeout and one probe timeout."""
    target = urlsplit(mlflow_uri)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 80)
    settings = make_settings(
        mlflow_tracking_uri=proxy.url,
        mlflow_timeout_s=1,
        mlflow_probe_timeout_s=0.5,
        mlflow_breaker_cooldown_s=3,
    )
    try:
        async with serve(settings) as client:
            assert (await client.get("/api/v1/experiments", headers=auth(admin_key))).is_success
            proxy.freeze()
            timed: list[tuple[float, httpx.Response]] = []
            for _ in range(3):
                started = time.monotonic()
                response = await client.get("/api/v1/experiments", headers=auth(admin_key))
                timed.append((time.monotonic() - started, response))
            started = time.monotonic()
            registration = await upload(client, admin_key, baseline(unique()), tar_gz(model_dir))
            registration_s = time.monotonic() - started
            proxy.thaw()
            await asyncio.sleep(3.2)  # the cooldown: the next call tries MLflow again
            recovered = await client.get("/api/v1/experiments", headers=auth(admin_key))
    finally:
        proxy.cut()
    for _, response in timed:
        assert_problem(response, 503, "registry_unavailable")
        assert int(response.headers["retry-after"]) >= 1
    (first_s, _), (second_s, second), (third_s, _) = timed
    assert 1 <= first_s < 1 + 0.5 + 1.5, "one call timeout, one probe timeout (and slack)"
    assert max(second_s, third_s) < 0.5, f"an open breaker answers at once: {second_s:.2f} s"
    assert "breaker" in second.json()["detail"]
    assert_problem(registration, 503, "registry_unavailable")
    assert registration_s < 0.5, "registrations fail fast too"
    assert recovered.status_code == 200, recovered.text


async def test_one_clients_slow_upload_is_not_an_mlflow_outage(
    make_settings: Callable[..., Settings], admin_key: str, mlflow_uri: str, tmp_path: Path
) -> None:
    """MLflow is fine but slow to take one client's large artifact (a link throttled to
    200 KB/s, a 4 MB upload, a 2 s call timeout): that registration gets 503, MLflow's /health
    answers the probe, so the breaker stays closed and the next caller is served."""
    target = urlsplit(mlflow_uri)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 80)
    # One failure would open the breaker: the slow upload must not count as one.
    settings = make_settings(
        mlflow_tracking_uri=proxy.url, mlflow_timeout_s=2, mlflow_breaker_failures=1
    )
    big = tmp_path / "big"
    shutil.copytree(save_sklearn(tmp_path / "small")[0], big)
    (big / "weights.bin").write_bytes(os.urandom(4 * 1024 * 1024))  # incompressible
    try:
        async with serve(settings) as client:
            proxy.throttle(200 * 1024)
            slow = await upload(client, admin_key, baseline(unique()), tar_gz(big))
            proxy.throttle(None)
            after = await client.get("/api/v1/experiments", headers=auth(admin_key))
            small = await upload(
                client, admin_key, baseline(unique()), tar_gz(save_sklearn(tmp_path / "s2")[0])
            )
    finally:
        proxy.cut()
    problem = assert_problem(slow, 503, "registry_unavailable")
    assert "it answers others" in problem["detail"]
    assert after.status_code == 200, after.text
    assert small.status_code == 201, small.text


async def test_an_archive_of_twenty_thousand_entries_is_413_and_others_register(
    client: httpx.AsyncClient, admin_key: str, model_dir: Path, tmp_path: Path
) -> None:
    swarm = tmp_path / "swarm.zip"
    with zipfile.ZipFile(swarm, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(model_dir).as_posix())
        for number in range(20_000):
            archive.writestr(f"empty/{number}", b"")
    response = await upload(
        client, admin_key, baseline(unique()), swarm.read_bytes(), filename="model.zip"
    )
    problem = assert_problem(response, 413, "artifact_too_large")
    assert "more than 10000 entries" in problem["detail"]
    fine = await upload(client, admin_key, baseline(unique()), tar_gz(model_dir))
    assert fine.status_code == 201, fine.text
