"""`hokusai-api serve` with HOKUSAI_WORKERS=2, as users run it: one port, two processes. Their
metrics add up whichever answers /metrics, and an alias moved through one counts on the very next
prediction of the other."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import multiprocess

from app.core.security import generate_key
from tests.conftest import auth, live_settings
from tests.factories import baseline, save_sklearn, tar_gz, unique
from tests.services_under_test import service_process

HEALTH = 'hokusai_http_requests_total{method="GET",route="/health",status="200"}'
PREDICT = "/api/v1/models/{name}/predict"


@pytest.fixture(scope="module")
def two_workers(
    database_url: str,
    redis_url: str,
    mlflow_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str, Path]]:
    workdir = tmp_path_factory.mktemp("workers")
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")
    (metrics_dir / "operators-notes.db").write_text("not ours")
    admin = generate_key()
    settings = live_settings(database_url, redis_url, mlflow_uri, workdir, admin, workers=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        with service_process(settings, workdir) as (url, _):
            # This run's values live in a folder of their own: the given one is left as it was.
            [own] = [path for path in metrics_dir.iterdir() if path.is_dir()]
            yield url, admin, own
    assert (metrics_dir / "counter_1.db").read_bytes() == b"left by an earlier run"
    assert (metrics_dir / "operators-notes.db").read_text() == "not ours"
    assert not own.exists(), "removed when the service stops"


def total(url: str, series: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(rf"^{re.escape(series)} (\S+)$", metrics, flags=re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def per_worker(metrics_dir: Path, series: str) -> dict[str, float]:
    """Each worker's own count of `series`, read from its file alone."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = path.stem.split("_")[-1]
        for family in multiprocess.MultiProcessCollector.merge([str(path)], accumulate=False):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                if f"{sample.name}{{{labels}}}" == series:
                    counts[pid] = sample.value
    return counts


def both_served(after: dict[str, float], before: dict[str, float]) -> bool:
    """Each of the two workers counted more than before."""
    return len(after) == 2 and all(count > before.get(pid, 0) for pid, count in after.items())


def fresh(method: str, url: str, **options: Any) -> httpx.Response:
    """A request on a new connection, so the kernel may hand it to either worker."""
    with httpx.Client(timeout=60) as client:
        return client.request(method, url, **options)


def test_two_workers_answer_on_one_port_and_their_counts_add_up(
    two_workers: tuple[str, str, Path],
) -> None:
    url, _, metrics_dir = two_workers
    before = total(url, HEALTH)
    for _ in range(200):
        assert fresh("GET", f"{url}/health").status_code == 200
    assert total(url, HEALTH) - before == 200, "every worker's requests are counted"
    counts = per_worker(metrics_dir, HEALTH)
    assert len(counts) == 2, counts
    assert all(count > 0 for count in counts.values()), f"both workers served: {counts}"


def test_an_alias_moved_through_one_worker_counts_on_the_next_prediction_of_each(
    two_workers: tuple[str, str, Path], tmp_path: Path
) -> None:
    url, admin, metrics_dir = two_workers
    name = unique()
    archive = tar_gz(save_sklearn(tmp_path)[0])
    for _ in range(2):
        response = fresh(
            "POST",
            f"{url}/api/v1/models/register",
            headers=auth(admin),
            data={"metadata": json.dumps(baseline(name))},
            files={"artifact": ("model.tar.gz", archive)},
        )
        assert response.status_code == 201, response.text
    row = {"inputs": {"f0": 0.1, "f1": 0.2, "f2": 0.3}}
    predict = f"{url}{PREDICT.format(name=name)}"
    moves = [1, 2, 1]
    for version in moves:
        moved = fresh(
            "PUT",
            f"{url}/api/v1/models/{name}/aliases/production",
            headers=auth(admin),
            json={"version": version},
        )
        assert moved.status_code == 200, moved.text
        series = (
            'hokusai_http_requests_total{method="POST",'
            'route="/api/v1/models/{name}/predict",status="200"}'
        )
        served_before = per_worker(metrics_dir, series)

        # New connections until each worker has predicted at least once since the move: the
        # kernel hands a connection to whichever worker accepts first, and under a light
        # sequential load that may be the same one many times in a row.
        answers: list[httpx.Response] = []
        served_after = served_before
        while len(answers) < 300 and not both_served(served_after, served_before):
            answers += [fresh("POST", predict, headers=auth(admin), json=row) for _ in range(10)]
            served_after = per_worker(metrics_dir, series)
        assert both_served(served_after, served_before), f"both workers: {served_after}"
        assert {answer.json()["version"] for answer in answers} == {version}
