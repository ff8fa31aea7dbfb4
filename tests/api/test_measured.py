"""Measured, not claimed: on a held benchmark the service scores the parent and the candidate
itself, in sandboxed runners, and decides on what it measured. The paired interval and the
decision equal an independent computation written here (both artifacts loaded with
mlflow.pyfunc in this process; metric and bootstrap with numpy and scikit-learn, importing
neither the service nor hokusai.measure)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import SecretStr

from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key, serve
from tests.factories import CONTRIBUTOR, tar_gz, unique, upload
from tests.sandbox_payloads import code_model

FEATURES = ["f0", "f1", "f2", "f3"]
EIP712_KEY = "0x" + "7a" * 32
DRAWS = 2000


def leads(rows: int = 6000) -> pd.DataFrame:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=4, n_informative=3, n_redundant=1, random_state=1
    )
    return pd.DataFrame(x, columns=FEATURES).assign(label=y)


def saved(directory: Path, name: str, train: pd.DataFrame, **params: Any) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(**params).fit(train[FEATURES], train["label"])
    path = directory / name
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(train[FEATURES], model.predict(train[FEATURES])),
        pip_requirements=["scikit-learn"],
    )
    return path


def six(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


def independent_interval(
    y: np.ndarray, parent: np.ndarray, candidate: np.ndarray, parent_digest: str, dataset: str
) -> tuple[float, float, float]:
    """The specification's paired bootstrap of the accuracy gain, in percentage points."""
    seed = int.from_bytes(
        hashlib.sha256(f"{parent_digest}\n{dataset}".encode()).digest()[:8], "big"
    )
    rng = np.random.Generator(np.random.PCG64(seed))
    kept = []
    for _ in range(DRAWS):
        idx = rng.integers(0, len(y), size=len(y))
        kept.append(100 * (np.mean(candidate[idx] == y[idx]) - np.mean(parent[idx] == y[idx])))
    low, high = np.percentile(kept, [2.5, 97.5], method="linear")
    gain = 100 * (np.mean(candidate == y) - np.mean(parent == y))
    return gain, low, high


class Held:
    """A model whose baseline names a held benchmark."""

    def __init__(self, client: httpx.AsyncClient, admin_key: str, tmp_path: Path) -> None:
        self.client, self.admin_key, self.tmp = client, admin_key, tmp_path
        data = leads()
        self.train, self.test = data.iloc[:4000], data.iloc[4000:].reset_index(drop=True)
        self.name = unique("measured")

    async def start(self) -> None:
        owner = (await create_key(self.client, self.admin_key, "benchmark"))["key"]
        held = await self.client.post(
            "/api/v1/benchmarks",
            data={"label_column": "label"},
            files={"file": ("bench.csv", self.test.to_csv(index=False).encode())},
            headers=auth(owner),
        )
        assert held.status_code == 201, held.text
        self.dataset = {"hash": held.json()["hash"], "num_samples": len(self.test)}
        self.baseline_dir = saved(self.tmp, "v1", self.train.iloc[:12])
        body = {
            "name": self.name,
            "kind": "baseline",
            "model_type": "classification",
            "metrics": {"accuracy": 0.6},
            "benchmark": {
                "metric": "accuracy",
                "direction": "higher_is_better",
                "family": "proportion",
            },
            "dataset": self.dataset,
        }
        response = await upload(self.client, self.admin_key, body, tar_gz(self.baseline_dir))
        assert response.status_code == 201, response.text
        self.baseline = response.json()

    async def improve(self, directory: Path, claimed: float, parent: int = 1) -> httpx.Response:
        body = {
            "name": self.name,
            "kind": "improved",
            "parent_version": parent,
            "metrics": {"accuracy": claimed},
            "dataset": self.dataset,
            "contributors": [{"address": CONTRIBUTOR, "weight": 1}],
        }
        return await upload(self.client, self.admin_key, body, tar_gz(directory))


@pytest.fixture(scope="module")
def archive_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from tests.factories import save_sklearn

    return tar_gz(save_sklearn(tmp_path_factory.mktemp("claimed-models"))[0])


@pytest.fixture
async def held(client: httpx.AsyncClient, admin_key: str, tmp_path: Path) -> Held:
    model = Held(client, admin_key, tmp_path)
    await model.start()
    return model


async def test_a_better_model_is_accepted_on_what_the_service_measured(held: Held) -> None:
    import mlflow.pyfunc

    better = saved(held.tmp, "v2", held.train)
    response = await held.improve(better, claimed=0.7)
    assert response.status_code == 201, response.text
    decision = response.json()["deltaone"]
    assert decision["basis"] == "measured"
    assert decision["reason"] == "accepted", decision
    measurement = decision["measurement"]
    assert measurement["dataset_hash"] == held.dataset["hash"]
    assert measurement["rows"] == len(held.test)
    assert measurement["metric"]["function"] == "sklearn.metrics.accuracy_score"
    assert measurement["bootstrap"]["draws"] == DRAWS

    features, labels = held.test[FEATURES], held.test["label"].to_numpy()
    parent = np.asarray(mlflow.pyfunc.load_model(str(held.baseline_dir)).predict(features))
    candidate = np.asarray(mlflow.pyfunc.load_model(str(better)).predict(features))
    gain, low, high = independent_interval(
        labels, parent, candidate, held.baseline["artifact"]["digest"], held.dataset["hash"]
    )
    assert (six(decision["gain_pp"]), six(decision["ci_low_pp"]), six(decision["ci_high_pp"])) == (
        six(gain),
        six(low),
        six(high),
    )
    assert six(measurement["candidate_value"]) == six(np.mean(candidate == labels))
    assert (decision["n_parent"], decision["n_candidate"]) == (2000, 2000)


async def test_impact_and_lineage_tell_measured_gains_from_claimed_ones(
    held: Held, archive_bytes: bytes
) -> None:
    from tests.factories import Model

    better = saved(held.tmp, "v2", held.train)
    measured = await held.improve(better, claimed=0.7)
    assert measured.json()["deltaone"]["reason"] == "accepted"
    claimed_model = await Model.create(held.client, held.admin_key, archive_bytes)
    claimed = await claimed_model.improve(
        0.84, contributors=[{"address": CONTRIBUTOR, "weight": 1}]
    )
    assert claimed["deltaone"]["reason"] == "accepted"

    headers = auth(held.admin_key)
    impact = (
        await held.client.get(f"/api/v1/contributors/{CONTRIBUTOR}/impact", headers=headers)
    ).json()
    gain = measured.json()["deltaone"]["gain_pp"]
    assert impact["measured"] == {
        "contributions": 1,
        "deltaone_accepted": 1,
        "weighted_gain_pp": gain,
        "accepted_weighted_gain_pp": gain,
    }
    assert impact["claimed"]["contributions"] == 1
    assert impact["claimed"]["accepted_weighted_gain_pp"] == 4.0
    by_model = {m["model"]: m for m in impact["models"]}
    assert by_model[held.name]["measured"]["contributions"] == 1
    assert by_model[held.name]["claimed"]["contributions"] == 0
    contributions = (
        await held.client.get(f"/api/v1/contributors/{CONTRIBUTOR}/contributions", headers=headers)
    ).json()["items"]
    assert {(c["model"], c["basis"]) for c in contributions} == {
        (held.name, "measured"),
        (claimed_model.name, "claimed"),
    }
    lineage = (await held.client.get(f"/api/v1/models/{held.name}/lineage", headers=headers)).json()
    assert [e["basis"] for e in lineage["edges"]] == ["measured"]
    mermaid = (
        await held.client.get(f"/api/v1/models/{held.name}/lineage?format=mermaid", headers=headers)
    ).text
    assert "accepted (measured)" in mermaid


async def test_an_inflated_claim_is_judged_on_the_measured_value(held: Held) -> None:
    barely = saved(held.tmp, "v2", held.train.iloc[:12], C=0.9)
    response = await held.improve(barely, claimed=0.99)
    assert response.status_code == 201, response.text
    decision = response.json()["deltaone"]
    assert decision["basis"] == "measured"
    assert decision["accepted"] is False
    assert decision["reason"] in ("no_change", "delta_below_threshold")
    assert decision["gain_pp"] < 1


async def test_the_parents_own_files_are_an_identical_artifact(held: Held) -> None:
    response = await held.improve(held.baseline_dir, claimed=0.99)
    assert response.status_code == 201, response.text
    decision = response.json()["deltaone"]
    assert (decision["basis"], decision["reason"]) == ("measured", "identical_artifact")


async def test_a_model_that_fails_on_the_benchmark_leaks_nothing(held: Held) -> None:
    hostile = code_model(
        held.tmp,
        "peeker",
        "import os, socket\n"
        "class Model:\n"
        "    def predict(self, rows, *args, **kwargs):\n"
        "        seen = sorted(rows.columns)\n"
        "        try:\n"
        "            socket.create_connection(('127.0.0.1', 5432), timeout=1)\n"
        "            reached = 'network reached'\n"
        "        except OSError as exc:\n"
        "            reached = str(exc)\n"
        "        raise RuntimeError(f'LEAK columns={seen} {reached}')\n"
        "def _load_pyfunc(path):\n"
        "    return Model()\n",
    )
    response = await held.improve(hostile, claimed=0.99)
    assert_problem(response, 422, "evaluation_failed")
    assert "LEAK" not in response.text
    versions = await held.client.get(
        f"/api/v1/models/{held.name}/versions", headers=auth(held.admin_key)
    )
    assert versions.json()["total"] == 1, "nothing registered"


async def test_only_a_measured_acceptance_is_signed_for_a_payout_contract(
    make_settings: Callable[..., Settings], admin_key: str, tmp_path: Path
) -> None:
    """EIP-712 domain version 2: the typed data says `measured` and names the benchmark; the
    published signer is recovered from it."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    settings = make_settings(
        eip712_signing_key=SecretStr(EIP712_KEY),
        eip712_chain_id=8453,
        eip712_verifying_contract="0x00000000000000000000000000000000000000A1",
    )
    async with serve(settings) as client:
        model = Held(client, admin_key, tmp_path)
        await model.start()
        accepted = (await model.improve(saved(tmp_path, "v2", model.train), claimed=0.7)).json()
        assert accepted["deltaone"]["reason"] == "accepted", accepted["deltaone"]
        attestation = (
            await client.get(
                f"/api/v1/attestations/{accepted['attestation_id']}", headers=auth(admin_key)
            )
        ).json()
        keys = (await client.get("/api/v1/attestations/keys", headers=auth(admin_key))).json()
    statement = attestation["statement"]
    assert statement["predicateType"] == "https://hokusai.ai/attestations/model-improvement/v2"
    assert statement["predicate"]["decision"]["basis"] == "measured"
    eip712 = attestation["eip712"]
    typed = eip712["typed_data"]
    assert typed["domain"]["version"] == "2"
    assert typed["message"]["measured"] is True
    assert typed["message"]["datasetHash"] == "0x" + model.dataset["hash"].removeprefix("sha256:")
    assert typed["message"]["attestationDigest"] == "0x" + attestation["id"].removeprefix("sha256:")
    recovered = Account.recover_message(
        encode_typed_data(full_message=typed), signature=eip712["signature"]
    )
    assert recovered == keys["eip712_signer"] == Account.from_key(EIP712_KEY).address


async def test_an_owner_can_require_measurement_and_claims_are_then_refused(
    client: httpx.AsyncClient, admin_key: str, tmp_path: Path
) -> None:
    from tests.factories import DATASET, baseline, improved

    name = unique("strict")
    data = leads(200)
    directory = saved(tmp_path, "v1", data)
    base = await upload(
        client,
        admin_key,
        baseline(name, dataset={**DATASET, "num_samples": 5000}),
        tar_gz(directory),
    )
    assert base.status_code == 201, base.text
    contributor = (await create_key(client, admin_key, "read", "write"))["key"]
    owner = (await create_key(client, admin_key, "benchmark", "write"))["key"]
    path = f"/api/v1/models/{name}"
    refused = await client.patch(
        path, json={"require_measurement": True}, headers=auth(contributor)
    )
    assert_problem(refused, 403, "forbidden")
    described = await client.patch(path, json={"description": "leads"}, headers=auth(contributor))
    assert described.status_code == 200
    assert described.json()["require_measurement"] is False
    required = await client.patch(path, json={"require_measurement": True}, headers=auth(owner))
    assert required.status_code == 200, required.text
    assert required.json()["require_measurement"] is True
    claim = improved(name, metrics={"accuracy": 0.99}, dataset={**DATASET, "num_samples": 5000})
    response = await upload(client, admin_key, claim, tar_gz(saved(tmp_path, "v2", data, C=0.5)))
    assert response.status_code == 201, response.text
    decision = response.json()["deltaone"]
    assert (decision["basis"], decision["reason"]) == ("claimed", "measurement_required")
    assert decision["accepted"] is False


async def test_each_contributor_gets_a_bounded_number_of_measurements_a_day(
    make_settings: Callable[..., Settings], admin_key: str, tmp_path: Path
) -> None:
    """Every measured value says something about the hidden labels: a contributor address gets
    `measured_submissions_per_day` of them per benchmark."""
    async with serve(make_settings(measured_submissions_per_day=2)) as client:
        model = Held(client, admin_key, tmp_path)
        await model.start()
        answers = [
            await model.improve(saved(tmp_path, f"c{i}", model.train.iloc[: 12 + i]), 0.7)
            for i in range(3)
        ]
    assert [a.status_code for a in answers[:2]] == [201, 201]
    assert_problem(answers[2], 429, "measurement_quota_exceeded")
    assert answers[2].headers["retry-after"] == "3600"


async def test_a_retired_benchmark_names_no_new_baseline(held: Held) -> None:
    owner = (await create_key(held.client, held.admin_key, "benchmark"))["key"]
    retired = await held.client.post(
        f"/api/v1/benchmarks/{held.dataset['hash']}/retire", headers=auth(owner)
    )
    assert retired.status_code == 200
    body = {
        "name": unique("late"),
        "kind": "baseline",
        "model_type": "classification",
        "metrics": {"accuracy": 0.6},
        "benchmark": {
            "metric": "accuracy",
            "direction": "higher_is_better",
            "family": "proportion",
        },
        "dataset": held.dataset,
    }
    response = await upload(held.client, held.admin_key, body, tar_gz(held.baseline_dir))
    assert_problem(response, 409, "benchmark_retired")
