"""Real data for the console, made through the service's own API (sync httpx): a model with a
branching lineage (accepted and rejected DeltaOnes, a contributor), aliases moved twice, a
description and a tag holding markup, and an A/B test with a known effect (control 20% against
treatment 45% conversion). Used by the browser tests and by `bench/console.py`, on a service
whose DeltaOne cool-down is off (`HOKUSAI_DELTAONE_COOLDOWN_S=0`); with the default, versions 3
and 4 are judged `cooldown_active` instead."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.factories import CONTRIBUTOR, OTHER_CONTRIBUTOR, save_sklearn, tar_gz
from tests.factories import variant as another_artifact

MARKUP = "<img src=x onerror=alert(1)>"
DATASET = {"hash": "sha256:" + "cd" * 32, "num_samples": 50_000}
BENCHMARK = {"metric": "accuracy", "direction": "higher_is_better", "family": "proportion"}
# version: (parent, accuracy, contributor); 2 and 4 clear DeltaOne, 3 gains too little.
VERSIONS = {
    1: (None, 0.80, None),
    2: (1, 0.83, CONTRIBUTOR),
    3: (2, 0.832, OTHER_CONTRIBUTOR),
    4: (2, 0.85, CONTRIBUTOR),
}
CONVERSION = {"control": 0.20, "treatment": 0.45}


@dataclass(frozen=True)
class ConsoleData:
    model: str
    token_id: str
    ab_test_id: str
    units: dict[str, int]  # variant: units exposed


def seed(url: str, key: str, model: str, *, units: int = 600) -> ConsoleData:
    headers = {"Authorization": f"Bearer {key}"}
    token_id = model.upper().replace("-", "")[:16]
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        with tempfile.TemporaryDirectory() as workdir:
            archive = tar_gz(save_sklearn(Path(workdir))[0])
        for version, (parent, accuracy, contributor) in VERSIONS.items():
            metadata: dict[str, Any] = {
                "name": model,
                "metrics": {"accuracy": accuracy},
                "dataset": DATASET,
            }
            if parent is None:
                metadata |= {
                    "kind": "baseline",
                    "model_type": "classification",
                    "benchmark": BENCHMARK,
                    "token_id": token_id,
                    "description": f"Lead scoring {MARKUP}",
                    "tags": {"team": "gtm", "note": MARKUP},
                }
            else:
                metadata |= {
                    "kind": "improved",
                    "parent_version": parent,
                    "contributors": [{"address": contributor, "weight": 1}],
                }
            registered = client.post(
                "/api/v1/models/register",
                data={"metadata": json.dumps(metadata)},
                files={
                    "artifact": (
                        "model.tar.gz",
                        archive if parent is None else another_artifact(archive),
                        "application/octet-stream",
                    )
                },
            )
            assert registered.status_code == 201, registered.text
            assert registered.json()["version"] == version
        described = client.patch(
            f"/api/v1/models/{model}",
            json={"description": f"Scores leads {MARKUP}", "tags": {"owner": MARKUP}},
        )
        assert described.status_code == 200, described.text
        for version, reason in ((2, "v2 clears DeltaOne"), (4, "v4 clears it by more")):
            moved = client.put(
                f"/api/v1/models/{model}/aliases/production",
                json={"version": version, "reason": reason},
            )
            assert moved.status_code == 200, moved.text
        test = client.post(
            "/api/v1/ab-tests",
            json={
                "name": f"{model} v2 against v4",
                "model": model,
                "variants": [
                    {"name": "control", "version": 2, "weight": 0.5},
                    {"name": "treatment", "version": 4, "weight": 0.5},
                ],
                "metric": {"name": "converted", "kind": "binary"},
                "minimum_sample_size": 100,
            },
        )
        assert test.status_code == 201, test.text
        test_id = test.json()["id"]
        assert client.post(f"/api/v1/ab-tests/{test_id}/start").status_code == 200
        counts = {"control": 0, "treatment": 0}
        events = []
        for unit in range(units):
            assigned = client.post(
                f"/api/v1/ab-tests/{test_id}/assign", json={"unit_id": f"user-{unit}"}
            )
            assert assigned.status_code == 200, assigned.text
            variant = assigned.json()["variant"]
            seen = counts[variant]
            counts[variant] += 1
            # Exactly the variant's rate of its units convert: the effect is known, not drawn.
            converted = int((seen + 1) * CONVERSION[variant]) > int(seen * CONVERSION[variant])
            events.append({"unit_id": f"user-{unit}", "value": float(converted)})
        recorded = client.post(f"/api/v1/ab-tests/{test_id}/outcomes", json={"events": events})
        assert recorded.status_code == 200, recorded.text
    return ConsoleData(model, token_id, test_id, counts)
