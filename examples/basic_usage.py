"""The whole life of a model: hold its benchmark, train a baseline, register it, register an
improved version that contributors' data made better (the service measures it on the benchmark),
put it in production, predict, read the lineage, compare the two versions, and roll back.

    pip install 'hokusai-ml-platform[mlflow]' scikit-learn pandas
    export HOKUSAI_BASE_URL=http://127.0.0.1:8000 HOKUSAI_API_KEY=hk_...   # `write` and `benchmark`
    python examples/basic_usage.py
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import mlflow.sklearn
import pandas as pd
from hokusai import HokusaiClient
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

FEATURES = [
    "company_size",
    "visits_30d",
    "emails_opened",
    "demo_requested",
    "pricing_views",
    "seniority",
    "industry_fit",
    "days_since_contact",
]
CONTRIBUTORS = [
    {"address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "weight": 3},
    {"address": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "weight": 1},
]


def leads() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Synthetic leads: 6,000 to train on, and a fixed benchmark set of 2,000."""
    x, y = make_classification(
        n_samples=8000,
        n_features=8,
        n_informative=5,
        n_redundant=1,
        n_clusters_per_class=3,
        class_sep=0.9,
        random_state=7,
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    x_train, x_bench, y_train, y_bench = train_test_split(frame, y, test_size=2000, random_state=7)
    return x_train, x_bench, pd.Series(y_train), pd.Series(y_bench)


def saved(model: object, example: pd.DataFrame, folder: Path) -> Path:
    """An MLflow model directory. `pyfunc_predict_fn="predict_proba"` makes the service answer
    probabilities; tree models are saved with skops, which must be told the types to trust;
    naming the requirements spares MLflow loading the model again to infer them (~13 s)."""
    mlflow.sklearn.save_model(
        model,
        str(folder),
        input_example=example.head(3),
        pyfunc_predict_fn="predict_proba",
        skops_trusted_types=["sklearn.tree._tree.Tree"],
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
    )
    return folder


def auc(model: object, x: pd.DataFrame, y: pd.Series) -> float:
    return float(roc_auc_score(y, model.predict_proba(x)[:, 1]))  # type: ignore[attr-defined]


def main() -> None:
    run = uuid.uuid4().hex[:6]  # each run its own model, so the example can be run again
    name, token_id = f"lead-scorer-{run}", f"LEAD-{run.upper()}"
    x_train, x_bench, y_train, y_bench = leads()
    work = Path(tempfile.mkdtemp(prefix="hokusai-example-"))

    with HokusaiClient() as client:  # HOKUSAI_BASE_URL and HOKUSAI_API_KEY
        # 0. The benchmark, held by the service (labels included; contributors never see a row):
        # every improvement is measured on it. Its hash names it.
        held = client.benchmarks.upload(x_bench.assign(converted=y_bench.to_numpy()), "converted")
        dataset = {"hash": held.hash, "num_samples": held.rows}

        # 1. A baseline: a simple model trained on the first 500 leads, scored by ROC AUC (the
        # models answer probabilities).
        baseline = LogisticRegression().fit(x_train[:500], y_train[:500])
        v1 = client.models.register(
            name,
            kind="baseline",
            model_type="lead_scoring",
            token_id=token_id,
            metrics={"roc_auc": auc(baseline, x_bench, y_bench)},
            dataset=dataset,
            benchmark={
                "metric": "roc_auc",
                "direction": "higher_is_better",
                "family": "proportion",
            },
            artifact=saved(baseline, x_bench, work / "v1"),
        )
        print(f"registered {name} v{v1.version} (baseline), ROC AUC {v1.metrics['roc_auc']:.3f}")
        client.aliases.set(name, "production", v1.version, reason="first version")

        # 2. An improved version, trained with the contributors' 5,500 extra leads.
        improved = GradientBoostingClassifier(n_estimators=60, max_depth=4, random_state=7)
        improved.fit(x_train, y_train)
        v2 = client.models.register(
            name,
            kind="improved",
            metrics={"roc_auc": auc(improved, x_bench, y_bench)},  # what we claim; not used
            dataset=dataset,
            contributors=CONTRIBUTORS,
            artifact=saved(improved, x_bench, work / "v2"),
        )
        decision = v2.deltaone
        assert decision is not None
        measured = decision.measurement or {}
        print(
            f"registered v{v2.version}: {decision.gain_pp:+.2f} pp {decision.basis} "
            f"(ROC AUC {measured.get('parent_value')} -> {measured.get('candidate_value')} on "
            f"{measured.get('rows')} rows), DeltaOne {decision.reason}, "
            f"attestation {v2.attestation_id}"
        )

        # 3. Production moves to v2 (recorded with who moved it and why), then predictions.
        client.aliases.set(name, "production", v2.version, reason="DeltaOne accepted")
        row = x_bench.iloc[0].to_dict()
        first = client.predict(name, row)
        again = client.predict(name, row)
        print(
            f"predict -> v{first.version} {first.predictions[0]} "
            f"(cache {first.cache_status}, then {again.cache_status})"
        )
        batch = client.predict(name, x_bench.head(100).to_dict(orient="records"))
        print(f"batch of {len(batch.predictions)} rows -> v{batch.version}")

        # 4. Lineage, as data and as a Mermaid diagram, and the two versions side by side.
        lineage = client.lineage.get(name, version=v2.version)  # v2 and its ancestors
        print(
            f"lineage of v{v2.version}: {len(lineage.nodes)} versions, "
            f"{lineage.cumulative_gain_pp} pp over the baseline"
        )
        print(client.lineage.mermaid(name, direction="both"))
        comparison = client.models.compare(name, base=v1.version, candidate=v2.version)
        auc_delta = comparison.metrics["roc_auc"]
        print(f"compare v1 -> v2: ROC AUC {auc_delta.base:.3f} -> {auc_delta.candidate:.3f}")

        # 5. Roll back: production returns to where it was before its last move (v1).
        moved = client.models.rollback(name, reason="example: back to the baseline")
        print(f"rollback: production -> v{moved.version}")
        history = client.aliases.history(name, "production")
        print("production moves:", [(e.from_version, e.to_version, e.reason) for e in history])


if __name__ == "__main__":
    main()
