"""Lead scoring as GTM-backend does it: the async client, a model named by GTM-backend's numeric
id, your own request ids, short timeouts, a fallback when the service says 503 (with
Retry-After), and batch scoring of a whole lead list.

    pip install 'hokusai-ml-platform[mlflow]' scikit-learn pandas
    export HOKUSAI_BASE_URL=http://127.0.0.1:8000 HOKUSAI_API_KEY=hk_...   # a `write` key
    python examples/gtm_integration.py

The base URL is the service's root, as in every example; GTM-backend's own setting ends in `/api`,
and the client takes that too.

In production GTM-backend holds a key with the `read` and `predict` scopes only; this example
also registers the model it scores with, which needs `write`.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import uuid
from pathlib import Path

import mlflow.sklearn
import numpy as np
import pandas as pd
from hokusai import (
    APIConnectionError,
    AsyncHokusaiClient,
    HokusaiClient,
    ServiceUnavailableError,
    dataset_hash,
)
from sklearn.linear_model import LogisticRegression

NEUTRAL_SCORE = 0.5  # what the sales agent uses when no score can be had in time


def lead_history(rows: int, seed: int) -> pd.DataFrame:
    """Past leads with the features GTM-backend sends, and whether each converted."""
    rng = np.random.default_rng(seed)
    leads = pd.DataFrame(
        {
            "company_size": rng.integers(1, 5000, rows).astype(float),
            "visits_30d": rng.poisson(6, rows).astype(float),
            "emails_opened": rng.poisson(3, rows).astype(float),
            "demo_requested": rng.integers(0, 2, rows).astype(float),
        }
    )
    odds = -3 + 0.4 * leads.visits_30d**0.5 + 1.5 * leads.demo_requested + 0.2 * leads.emails_opened
    leads["converted"] = (rng.random(rows) < 1 / (1 + np.exp(-odds))).astype(int)
    return leads


def register_lead_model(model_id: str) -> None:
    """GTM-backend's data team registers the model (a `write` key): a logistic regression saved
    with MLflow so that it answers the probability of converting (`predict_proba`)."""
    history = lead_history(4000, seed=1)
    features, converted = history.drop(columns="converted"), history.converted
    scorer = LogisticRegression(max_iter=500).fit(features, converted)
    folder = Path(tempfile.mkdtemp(prefix="hokusai-gtm-")) / "model"
    mlflow.sklearn.save_model(
        scorer,
        str(folder),
        input_example=features.head(3),
        pyfunc_predict_fn="predict_proba",
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
    )
    with HokusaiClient() as client:
        version = client.models.register(
            model_id,
            kind="baseline",
            model_type="lead_scoring",
            metrics={"accuracy": scorer.score(features, converted)},
            dataset={"hash": dataset_hash(history), "num_samples": len(history)},
            benchmark={
                "metric": "accuracy",
                "direction": "higher_is_better",
                "family": "proportion",
            },
            artifact=folder,
        )
        client.aliases.set(model_id, "production", version.version, reason="first scorer")
    print(f"model {model_id}: v{version.version} is in production")


async def score_lead(client: AsyncHokusaiClient, model_id: str, lead: dict[str, float]) -> float:
    """One lead, as the sales agent asks for it: its own request id (it shows in the service's
    logs and in any error), and a neutral score when the service cannot answer."""
    request_id = f"gtm-{uuid.uuid4().hex[:12]}"
    try:
        prediction = await client.predict(model_id, lead, request_id=request_id)
    except ServiceUnavailableError as error:
        # The client already retried, waiting as Retry-After said; past that, do not block a sale.
        print(f"{request_id}: {error.code}, retry after {error.retry_after} s; neutral score")
        return NEUTRAL_SCORE
    except APIConnectionError as error:
        print(f"{request_id}: unreachable ({error}); neutral score")
        return NEUTRAL_SCORE
    assert prediction.request_id == request_id  # echoed by the service
    _, converts = prediction.predictions[0]  # [P(no), P(yes)]
    return float(converts)


async def main() -> None:
    model_id = str(random.randint(10_000, 99_999))  # GTM-backend names models by numeric id
    register_lead_model(model_id)
    base_url = os.environ["HOKUSAI_BASE_URL"]  # the root; GTM-backend's `.../api` works too
    # Short timeouts and few retries: a sales conversation does not wait for a slow score.
    async with AsyncHokusaiClient(base_url, timeout=5.0, max_retries=2) as client:
        leads = lead_history(50, seed=2).drop(columns="converted").to_dict(orient="records")
        scores = await asyncio.gather(*(score_lead(client, model_id, lead) for lead in leads[:10]))
        print("scores of 10 leads, one call each:", [round(score, 3) for score in scores])

        # A nightly batch: one call for the whole list (split by the client past 1,000 rows).
        batch = await client.predict(model_id, leads)
        print(
            f"batch: {len(batch.predictions)} leads scored by v{batch.version}, "
            f"{batch.cache.hits} from the cache"
        )
        same = [round(yes, 9) for _, yes in batch.predictions[:10]] == [round(s, 9) for s in scores]
        print("the batch agrees with the single calls:", same)
        assert same


if __name__ == "__main__":
    asyncio.run(main())
