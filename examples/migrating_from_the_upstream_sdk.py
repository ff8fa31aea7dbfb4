"""Moving from the upstream `hokusai` package: the same steps written twice, first as upstream
code (it still runs: this package keeps its import paths, and each call warns with its
replacement), then with `HokusaiClient`. Run with warnings shown to see the replacements:

    pip install 'hokusai-ml-platform[mlflow]' scikit-learn pandas
    export HOKUSAI_BASE_URL=http://127.0.0.1:8000 HOKUSAI_API_KEY=hk_...   # a `write` key
    python -W always::DeprecationWarning examples/migrating_from_the_upstream_sdk.py

What changes: the service, not your process, talks to MLflow and to Postgres (no tracking URI,
no database URL in your code); a version needs the model itself (a directory, an archive, a
model object or an MLflow URI), its metrics and the benchmark dataset, because the service
measures the improvement itself instead of trusting a `delta_metrics` argument.
"""

from __future__ import annotations

import os
import uuid

import hokusai
import pandas as pd
from hokusai import HokusaiClient, dataset_hash
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

x, y = make_classification(n_samples=2000, n_features=4, random_state=9)
frame = pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"])
DATASET = {"hash": dataset_hash(frame.assign(label=y)), "num_samples": len(frame)}
BENCHMARK = {"metric": "accuracy", "direction": "higher_is_better", "family": "proportion"}
baseline = LogisticRegression(C=0.001).fit(frame[:100], y[:100])
improved = LogisticRegression().fit(frame, y)


def the_upstream_way(name: str) -> None:
    """Upstream code, as it was written: `hokusai.setup` and `ModelRegistry`."""
    from hokusai.core.registry import ModelRegistry

    hokusai.setup(
        api_key=os.environ["HOKUSAI_API_KEY"], api_endpoint=os.environ["HOKUSAI_BASE_URL"] + "/api"
    )
    registry = ModelRegistry()  # upstream also took an MLflow tracking URI: no longer needed
    entry = registry.register_baseline(
        baseline,
        "classification",
        model_name=name,
        metrics={"accuracy": baseline.score(frame, y)},
        dataset=DATASET,
        benchmark=BENCHMARK,
        artifact=_saved(baseline, name + "-v1"),  # new: the model itself, as MLflow saves it
    )
    better = registry.register_improved_model(
        improved,
        entry.version,
        {"accuracy": 0.0},
        CONTRIBUTOR,
        model_name=name,
        metrics={"accuracy": improved.score(frame, y)},
        dataset=DATASET,
        artifact=_saved(improved, name + "-v2"),
    )
    lineage = registry.get_model_lineage(name)
    print(
        f"upstream way: {name} v{entry.version} -> v{better.version}, "
        f"lineage of {len(lineage.entries)} versions"
    )


def the_new_way(name: str) -> None:
    """The same with the client: one object, typed answers, typed errors."""
    with HokusaiClient() as client:
        v1 = client.models.register(
            name,
            kind="baseline",
            model_type="classification",
            artifact=baseline,
            metrics={"accuracy": baseline.score(frame, y)},
            dataset=DATASET,
            benchmark=BENCHMARK,
        )
        v2 = client.models.register(
            name,
            kind="improved",
            artifact=improved,
            parent_version=v1.version,
            metrics={"accuracy": improved.score(frame, y)},
            dataset=DATASET,
            contributors=[{"address": CONTRIBUTOR, "weight": 1}],
        )
        lineage = client.lineage.get(name, version=v2.version)
        assert v2.deltaone is not None
        print(
            f"new way:      {name} v{v1.version} -> v{v2.version}, lineage of "
            f"{len(lineage.nodes)} versions, DeltaOne {v2.deltaone.reason}"
        )


def _saved(model: object, folder: str) -> str:
    """Upstream uploaded nothing; the service stores the model: an MLflow model directory."""
    import tempfile

    import mlflow.sklearn

    path = os.path.join(tempfile.mkdtemp(prefix="hokusai-upstream-"), folder)
    mlflow.sklearn.save_model(
        model, path, pip_requirements=mlflow.sklearn.get_default_pip_requirements()
    )
    return path


if __name__ == "__main__":
    run = uuid.uuid4().hex[:6]
    the_upstream_way(f"upstream-{run}")
    the_new_way(f"client-{run}")
