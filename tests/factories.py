"""Real MLflow models and registration payloads for the tests, and long chains of versions."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import MlModel, ModelVersion, VersionContributor
from app.db.session import create_engine, create_sessionmaker
from tests.conftest import auth

FEATURES = ["f0", "f1", "f2"]
PIP = ["scikit-learn", "pandas"]


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def training_data(rows: int = 60) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(7)
    frame = pd.DataFrame(rng.rand(rows, 3), columns=FEATURES)
    return frame, (frame["f0"] + frame["f1"] > 1).astype(int), frame @ [1.5, -2.0, 0.5]


def save_sklearn(directory: Path, kind: str = "classifier") -> tuple[Path, Any]:
    """An MLflow sklearn model directory with a signature, and the fitted estimator."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression, LogisticRegression

    frame, labels, targets = training_data()
    if kind == "classifier":
        model = LogisticRegression().fit(frame, labels)
    else:
        model = LinearRegression().fit(frame, targets)
    path = directory / kind
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(frame, model.predict(frame)),
        pip_requirements=PIP,
    )
    return path, model


def tar_gz(directory: Path, *, top: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            tar.add(path, arcname=f"{top}/{relative}" if top else relative, recursive=False)
    return buffer.getvalue()


def variant(archive: bytes) -> bytes:
    """The same model with one more file, so a different artifact (an improvement must not be
    its parent's files)."""
    buffer = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source,
        tarfile.open(fileobj=buffer, mode="w:gz") as tar,
    ):
        for member in source.getmembers():
            tar.addfile(member, source.extractfile(member) if member.isfile() else None)
        note = f"variant {uuid.uuid4()}\n".encode()
        info = tarfile.TarInfo("variant.txt")
        info.size = len(note)
        tar.addfile(info, io.BytesIO(note))
    return buffer.getvalue()


def zipped(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


DATASET = {"hash": "sha256:" + "ab" * 32, "num_samples": 1000}


def baseline(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "baseline",
        "model_type": "classification",
        "metrics": {"accuracy": 0.8, "log_loss": 0.45},
        "benchmark": {
            "metric": "accuracy",
            "direction": "higher_is_better",
            "family": "proportion",
        },
        "dataset": DATASET,
        **fields,
    }


CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
OTHER_CONTRIBUTOR = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"


def improved(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "improved",
        "metrics": {"accuracy": 0.83, "log_loss": 0.41},
        "dataset": DATASET,
        "contributors": [{"address": CONTRIBUTOR, "weight": 1}],
        **fields,
    }


async def upload(
    client: httpx.AsyncClient,
    key: str,
    metadata: dict[str, Any],
    archive: bytes,
    *,
    filename: str = "model.tar.gz",
    idempotency_key: str | None = None,
) -> httpx.Response:
    headers = auth(key)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return await client.post(
        "/api/v1/models/register",
        data={"metadata": json.dumps(metadata)},
        files={"artifact": (filename, archive, "application/octet-stream")},
        headers=headers,
        timeout=120,
    )


def ab_test(model: str, **fields: Any) -> dict[str, Any]:
    """An A/B test between versions 1 and 2 of `model`, half and half, on a binary metric."""
    return {
        "name": "checkout-test",
        "model": model,
        "variants": [
            {"name": "a", "version": 1, "weight": 0.5},
            {"name": "b", "version": 2, "weight": 0.5},
        ],
        "metric": {"name": "converted", "kind": "binary"},
        **fields,
    }


CHAIN_ADDRESS = "0x" + "ab" * 20


async def seed_chain(database_url: str, name: str, length: int) -> None:
    """A model whose versions form one chain of `length`, written straight to Postgres (registering
    thousands of real versions would only time MLflow); attestation ids are synthetic."""
    engine = create_engine(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
    now = utcnow()
    async with create_sessionmaker(engine).begin() as session:
        model_id = uuid.uuid4()
        await session.execute(
            insert(MlModel).values(
                id=model_id,
                name=name,
                model_type="classification",
                token_id=None,
                description=None,
                tags={},
                benchmark_metric="accuracy",
                benchmark_direction="higher_is_better",
                benchmark_family="proportion",
                created_at=now,
                updated_at=now,
            )
        )
        versions: list[dict[str, Any]] = []
        contributors: list[dict[str, Any]] = []
        parent = None
        root = uuid.uuid4()
        for number in range(1, length + 1):
            version_id = root if number == 1 else uuid.uuid4()
            improved = parent is not None
            versions.append(
                {
                    "id": version_id,
                    "model_id": model_id,
                    "version": number,
                    "kind": "improved" if improved else "baseline",
                    "description": None,
                    "tags": {},
                    "metrics": {"accuracy": 0.5 + number / (4 * length)},
                    "metric_stds": {},
                    "dataset_hash": "sha256:" + "0" * 64,
                    "dataset_num_samples": 5000,
                    "benchmark_metric": "accuracy",
                    "benchmark_direction": "higher_is_better",
                    "benchmark_family": "proportion",
                    "primary_metric_value": 0.5 + number / (4 * length),
                    "parent_id": parent,
                    "root_id": root,
                    "delta": None,
                    "artifact_digest": "sha256:" + "1" * 64,
                    "source_uri": "runs:/bench/model",
                    "mlflow_run_id": None,
                    "created_by": "bench",
                    "deltaone": {"gain_pp": 0.025, "reason": "delta_below_threshold"}
                    if improved
                    else None,
                    "deltaone_accepted": False if improved else None,
                    "deltaone_gain_pp": Decimal("0.025") if improved else None,
                    "attestation_id": "sha256:" + hashlib.sha256(version_id.bytes).hexdigest()
                    if improved
                    else None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if improved:
                contributors.append(
                    {
                        "version_id": version_id,
                        "address": CHAIN_ADDRESS,
                        "weight": 1.0,
                        "weight_bps": 10000,
                        "model_id": model_id,
                        "version": number,
                        "created_at": now,
                        "gain_pp": Decimal("0.025"),
                        "deltaone_accepted": False,
                        "attestation_id": versions[-1]["attestation_id"],
                    }
                )
            parent = version_id
        for start in range(0, len(versions), 2000):
            await session.execute(insert(ModelVersion), versions[start : start + 2000])
        for start in range(0, len(contributors), 2000):
            await session.execute(insert(VersionContributor), contributors[start : start + 2000])
    async with engine.connect() as connection:  # fresh statistics, as autovacuum would give
        await connection.execute(text("ANALYZE"))
    await engine.dispose()


async def register_baseline(
    client: httpx.AsyncClient, key: str, archive: bytes, name: str | None = None, **fields: Any
) -> dict[str, Any]:
    response = await upload(client, key, baseline(name or unique(), **fields), archive)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class Model:
    """A model with a baseline, improved by registrations of variants of its artifact (the same
    model with one more file: never its parent's files)."""

    def __init__(self, client: httpx.AsyncClient, key: str, name: str, archive: bytes) -> None:
        self.client, self.key, self.name, self.archive = client, key, name, archive

    @classmethod
    async def create(
        cls, client: httpx.AsyncClient, key: str, archive: bytes, **fields: Any
    ) -> Model:
        name = unique()
        await register_baseline(
            client, key, archive, name, dataset={**DATASET, "num_samples": 5000}, **fields
        )
        return cls(client, key, name, archive)

    def improvement(self, accuracy: float, **fields: Any) -> dict[str, Any]:
        """The metadata of an improved version claiming `accuracy`."""
        return {
            **improved(self.name),
            "metrics": {"accuracy": accuracy},
            "dataset": {**DATASET, "num_samples": 5000},
            **fields,
        }

    async def improve(self, accuracy: float, **fields: Any) -> dict[str, Any]:
        response = await upload(
            self.client, self.key, self.improvement(accuracy, **fields), variant(self.archive)
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(
            f"/api/v1/models/{self.name}{path}", params=params, headers=auth(self.key)
        )
        assert response.status_code == 200, response.text
        return response.json() if "json" in response.headers["content-type"] else response.text
