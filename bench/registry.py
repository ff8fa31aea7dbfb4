"""Registration through the service against the same registration done directly with the MLflow
client (log the model to a run + register a version + tags), side by side on one MLflow server;
then paging the versions of a model with 1,000 versions (a Postgres read; MLflow is not asked);
then registration of improved versions measured on a held benchmark of 10,000 and of 100,000
rows (both models predict every row in fresh sandboxed runners, then the paired bootstrap of
2,000 draws), beside registration without a benchmark, in the same run.

    scripts/with-services .venv/bin/python bench/registry.py [--count 20] [--measured 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.core.security import generate_key  # noqa: E402
from bench.server import service, stores  # noqa: E402
from tests.factories import baseline, improved, save_sklearn, tar_gz  # noqa: E402


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(len(ms) * 0.99))]
    return f"{label:<44}{statistics.mean(ms):>9.1f}{statistics.median(ms):>9.1f}{p99:>9.1f}"


def written_by_service(uri: str, name: str) -> dict[str, Any]:
    """What the service wrote to MLflow for an improved version (its second): the registered
    model's tags, the run's tags and metrics, the version's tags. The direct path writes the same,
    so the two do the same registration."""
    from mlflow import MlflowClient

    client = MlflowClient(uri, uri)
    version = client.get_model_version(name, "2")
    run = client.get_run(version.run_id)
    return {
        "model_tags": client.get_registered_model(name).tags,
        "run_tags": {k: v for k, v in run.data.tags.items() if k != "mlflow.runName"},
        "metrics": run.data.metrics,
        "version_tags": version.tags,
    }


def direct_registrations(
    uri: str, model_dir: Path, count: int, written: dict[str, Any]
) -> list[float]:
    """What a careful MLflow user does by hand: one run per version with its metrics, tags and
    the model directory, then a registered version with the same tags the service writes."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(uri, uri)
    name = f"direct-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name)
    client.create_registered_model(name, tags=written["model_tags"])
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        request_key = {"hokusai.request_key": uuid.uuid4().hex}
        run = client.create_run(experiment_id, tags={**written["run_tags"], **request_key})
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in sorted(written["metrics"].items())]
        client.log_batch(run.info.run_id, metrics=metrics)
        client.log_artifacts(run.info.run_id, str(model_dir), "model")
        client.update_run(run.info.run_id, status="FINISHED")
        client.create_model_version(
            name,
            f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={**written["version_tags"], **request_key},
        )
        timings.append(time.perf_counter() - started)
    return timings


def service_registrations(
    base: str, key: str, archive: bytes, count: int
) -> tuple[str, list[float]]:
    name = f"svc-{uuid.uuid4().hex[:8]}"
    timings = []
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:
        for index in range(count):
            metadata = baseline(name) if index == 0 else improved(name)
            started = time.perf_counter()
            response = client.post(
                "/api/v1/models/register",
                data={"metadata": json.dumps(metadata)},
                files={"artifact": ("model.tar.gz", archive)},
            )
            timings.append(time.perf_counter() - started)
            assert response.status_code == 201, response.text
    return name, timings


def measured_registrations(
    base: str, key: str, workdir: Path, rows: int, count: int
) -> list[float]:
    """Improved versions of a model whose benchmark of `rows` rows the service holds: each a new
    model (trained on more rows), so each registration measures both versions."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n_samples=rows + 2000, n_features=4, random_state=3)
    data = pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"]).assign(label=y)
    train, held = data.iloc[:2000], data.iloc[2000:]
    name = f"measured-{rows}-{uuid.uuid4().hex[:6]}"
    timings = []
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600
    ) as client:
        benchmark = client.post(
            "/api/v1/benchmarks",
            data={"label_column": "label"},
            files={"file": ("held.csv", held.to_csv(index=False).encode())},
        )
        benchmark.raise_for_status()
        dataset = {"hash": benchmark.json()["hash"], "num_samples": rows}
        for index in range(count + 1):
            features = train.iloc[: 20 + index * 300]
            model = LogisticRegression().fit(features[["f0", "f1", "f2", "f3"]], features["label"])
            path = workdir / f"{name}-{index}"
            mlflow.sklearn.save_model(
                model,
                str(path),
                signature=infer_signature(features[["f0", "f1", "f2", "f3"]]),
                pip_requirements=["scikit-learn"],
            )
            metadata = (
                baseline(name, dataset=dataset)
                if index == 0
                else improved(name, dataset=dataset, parent_version=index)
            )
            started = time.perf_counter()
            response = client.post(
                "/api/v1/models/register",
                data={"metadata": json.dumps(metadata)},
                files={"artifact": ("model.tar.gz", tar_gz(path))},
            )
            elapsed = time.perf_counter() - started
            assert response.status_code == 201, response.text
            if index:
                assert response.json()["deltaone"]["basis"] == "measured"
                timings.append(elapsed)
    return timings


async def seed_versions(database_url: str, name: str, total: int) -> None:
    """Copies of the model's first version up to `total` versions, written through the ORM (the
    listing reads only Postgres; registering 1,000 real versions would only time MLflow)."""
    from sqlalchemy import select

    from app.core.config import Settings
    from app.db.models import MlModel, ModelVersion
    from app.db.session import create_engine, create_sessionmaker

    engine = create_engine(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
    async with create_sessionmaker(engine).begin() as session:
        model = (await session.execute(select(MlModel).where(MlModel.name == name))).scalar_one()
        versions = (
            (await session.execute(select(ModelVersion).where(ModelVersion.model_id == model.id)))
            .scalars()
            .all()
        )
        template = versions[0]
        columns = [c.key for c in ModelVersion.__table__.columns if c.key not in ("id", "version")]
        for number in range(len(versions) + 1, total + 1):
            session.add(
                ModelVersion(
                    id=uuid.uuid4(),
                    version=number,
                    **{column: getattr(template, column) for column in columns},
                )
            )
    await engine.dispose()


def list_latency(base: str, key: str, path: str, repeat: int = 200) -> list[float]:
    timings = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        client.get(path)
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--measured", type=int, default=5, help="measured registrations per size")
    args = parser.parse_args()
    key = generate_key()
    with stores(real_mlflow=True) as run:
        database_url, mlflow_uri = run.database_url, run.mlflow_uri
        model_dir, _ = save_sklearn(Path(run.workdir))
        archive = tar_gz(model_dir)
        with service(
            run.workdir,
            key,
            **run.settings,
        ) as base:
            warm, _ = service_registrations(base, key, archive, 2)  # imports, connections
            written = written_by_service(mlflow_uri, warm)
            direct_registrations(mlflow_uri, model_dir, 2, written)
            direct = direct_registrations(mlflow_uri, model_dir, args.count, written)
            name, through_service = service_registrations(base, key, archive, args.count)
            asyncio.run(seed_versions(database_url, name, 1000))
            measured = {
                rows: measured_registrations(base, key, Path(run.workdir), rows, args.measured)
                for rows in (10_000, 100_000)
            }
            listing = {
                path: list_latency(base, key, path)
                for path in (
                    f"/api/v1/models/{name}/versions",
                    f"/api/v1/models/{name}/versions?limit=500",
                    f"/api/v1/models/{name}/versions?offset=950",
                )
            }

    print(f"\n{args.count} registrations each, one MLflow server (Postgres store), sequential\n")
    print(f"{'':<44}{'mean ms':>9}{'p50 ms':>9}{'p99 ms':>9}")
    print(summary("direct MLflow client (log + register + tags)", direct))
    print(summary("service: POST /models/register (upload)", through_service))
    ratio = statistics.mean(through_service) / statistics.mean(direct)
    print(f"\nservice / direct (mean): {ratio:.2f}  (goal: at most 1.25)\n")
    print(f"improved versions, {args.measured} each, beside registration without a benchmark\n")
    print(f"{'':<44}{'mean ms':>9}{'p50 ms':>9}{'p99 ms':>9}")
    print(summary("no benchmark (claimed numbers)", through_service))
    for rows, timings in measured.items():
        print(summary(f"measured on a held benchmark of {rows:,} rows", timings))
    print()
    print("listing a model with 1,000 versions (client-side, loopback, keep-alive)\n")
    for path, timings in listing.items():
        print(
            summary(
                "GET " + path.split("/versions")[1].join(["versions", ""]) or "versions", timings
            )
        )


if __name__ == "__main__":
    main()
