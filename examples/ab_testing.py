"""An A/B test between the version in production and a challenger: create it, start it, route
users (each unit always gets the same variant), report conversions, read the results and
promote the winner.

    pip install 'hokusai-ml-platform[mlflow]' scikit-learn pandas
    export HOKUSAI_BASE_URL=http://127.0.0.1:8000 HOKUSAI_API_KEY=hk_...   # `write` and `benchmark`
    python examples/ab_testing.py
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pandas as pd
from hokusai import AsyncHokusaiClient, HokusaiClient
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
USERS = 2400
CONVERSION = {"control": 0.10, "challenger": 0.16}  # what this simulation's users will do


def two_versions(client: HokusaiClient, name: str) -> tuple[int, int]:
    """A baseline in production and a challenger, scikit-learn objects saved by the client, the
    challenger measured by the service on the benchmark it holds."""
    x, y = make_classification(n_samples=3000, n_features=4, random_state=3)
    frame = pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"])
    held = client.benchmarks.upload(frame.assign(label=y), label_column="label")
    dataset = {"hash": held.hash, "num_samples": held.rows}
    small = LogisticRegression(C=0.001).fit(frame[:200], y[:200])
    full = LogisticRegression().fit(frame, y)
    v1 = client.models.register(
        name,
        kind="baseline",
        model_type="classification",
        dataset=dataset,
        metrics={"accuracy": small.score(frame, y)},
        benchmark={"metric": "accuracy", "direction": "higher_is_better", "family": "proportion"},
        artifact=small,
    )
    client.aliases.set(name, "production", v1.version, reason="first version")
    v2 = client.models.register(
        name,
        kind="improved",
        metrics={"accuracy": full.score(frame, y)},
        dataset=dataset,
        contributors=[{"address": CONTRIBUTOR, "weight": 1}],
        artifact=full,
    )
    return v1.version, v2.version


async def route(client: AsyncHokusaiClient, test_id: str, units: list[str]) -> dict[str, str]:
    """Each user's variant, as the product asks for it when the user arrives (16 at a time)."""
    gate = asyncio.Semaphore(16)

    async def one(unit: str) -> tuple[str, str]:
        async with gate:
            assignment = await client.ab_tests.assign(test_id, unit)
            return unit, assignment.variant

    return dict(await asyncio.gather(*(one(unit) for unit in units)))


async def main() -> None:
    name = f"churn-model-{uuid.uuid4().hex[:6]}"
    with HokusaiClient() as client:
        control, challenger = two_versions(client, name)
        test = client.ab_tests.create(
            f"{name}-v{challenger}",
            name,
            variants=[
                {"name": "control", "alias": "production", "weight": 0.5},
                {"name": "challenger", "version": challenger, "weight": 0.5},
            ],
            metric={"name": "converted", "kind": "binary", "direction": "higher_is_better"},
            unit="user_id",
            minimum_sample_size=1000,
            confidence_level=0.95,
        )
        client.ab_tests.start(test.id)
        print(f"test {test.id} running: control v{control} against challenger v{challenger}")

        # A prediction through the test: the unit's variant decides which version answers.
        answer = client.ab_tests.predict(
            test.id, "user-0", {"f0": 0.1, "f1": -1.2, "f2": 0.3, "f3": 2.0}
        )
        print(f"user-0 is scored by v{answer.version} ({answer.ab_test})")

    units = [f"user-{i}" for i in range(USERS)]
    async with AsyncHokusaiClient() as aclient:
        variants = await route(aclient, test.id, units)
        again = await aclient.ab_tests.assign(test.id, "user-7")
    assert again.variant == variants["user-7"], "assignment is sticky"

    chance = random.Random(11)
    events = [
        {"unit_id": unit, "value": int(chance.random() < CONVERSION[variants[unit]])}
        for unit in units
    ]
    with HokusaiClient() as client:
        for start in range(0, len(events), 1000):  # up to 10,000 events per call
            counted = client.ab_tests.record_outcomes(
                test.id, events[start : start + 1000], idempotency_key=f"{test.id}-{start}"
            )
            print(
                f"outcomes {start}..{start + len(events[start : start + 1000]) - 1}: "
                f"{counted.accepted} counted, {counted.ignored} ignored"
            )

        results = client.ab_tests.results(test.id)
        for variant in results.variants:
            print(
                f"  {variant.name}: v{variant.version}, {variant.exposures} exposed, "
                f"n={variant.n}, conversion {variant.mean:.3f}"
            )
        [lift] = results.comparisons
        print(
            f"  lift {lift.absolute_lift:+.3f} [{lift.ci_low:+.3f}, {lift.ci_high:+.3f}], "
            f"p={lift.p_value:.4f}, chance to beat control {lift.chance_to_beat_control:.1%}"
        )
        print(f"  sample ratio mismatch: {results.srm.flagged}; verdict: {results.verdict}")

        if results.verdict == "treatment_better":
            promoted = client.ab_tests.promote(test.id, "challenger")
            model = client.models.get(name)
            print(
                f"promoted: test {promoted.status}, "
                f"production is now v{model.aliases['production']}"
            )


if __name__ == "__main__":
    asyncio.run(main())
