"""Real MLflow models and registration payloads for the tests."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx

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
