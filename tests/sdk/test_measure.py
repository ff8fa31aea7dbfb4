"""`hokusai.measure` against an independent computation of the specification's rules, written
here with numpy and scikit-learn alone: every resample drawn with the seed the specification
defines, the metric of the resampled rows, the percentiles; equal after six-place rounding."""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import pytest
from hokusai import measure
from sklearn import metrics as sk

PARENT = "sha256:" + "1f" * 32
DATASET = "sha256:" + "d4" * 32
DRAWS = 1000


def six(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)


def spec_seed(parent_digest: str, dataset_hash: str) -> int:
    return int.from_bytes(
        hashlib.sha256((parent_digest + "\n" + dataset_hash).encode("utf-8")).digest()[:8], "big"
    )


def independent(
    function: Any,
    y: np.ndarray,
    parent: np.ndarray,
    candidate: np.ndarray,
    *,
    scale: float,
    undefined_when_one_class: bool = False,
) -> tuple[float, float, float, int]:
    rng = np.random.Generator(np.random.PCG64(spec_seed(PARENT, DATASET)))
    kept: list[float] = []
    skipped = 0
    while len(kept) < DRAWS:
        idx = rng.integers(0, len(y), size=len(y))
        if undefined_when_one_class and len(np.unique(y[idx])) < 2:
            skipped += 1
            continue
        kept.append(scale * (function(y[idx], candidate[idx]) - function(y[idx], parent[idx])))
    low, high = np.percentile(kept, [2.5, 97.5], method="linear")
    return scale * (function(y, candidate) - function(y, parent)), low, high, skipped


def data(kind: str, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    if kind == "regression":
        y = rng.normal(10, 3, n)
        return y, y + rng.normal(0, 2.0, n), y + rng.normal(0, 1.6, n)
    classes = 3 if kind == "multiclass" else 2
    y = rng.integers(0, classes, n)
    noisy = np.where(rng.random(n) < 0.35, rng.integers(0, classes, n), y)
    better = np.where(rng.random(n) < 0.25, rng.integers(0, classes, n), y)
    return y, noisy, better


def scores(labels: np.ndarray, classes: int, sharpness: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.random((len(labels), classes)) + sharpness * np.eye(classes)[labels]
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("name", "kind", "function", "higher", "proportion"),
    [
        ("accuracy", "binary", sk.accuracy_score, True, True),
        ("f1", "binary", lambda y, p: sk.f1_score(y, p, pos_label=1, zero_division=0), True, True),
        (
            "precision",
            "multiclass",
            lambda y, p: sk.precision_score(
                y, p, labels=[0, 1, 2], average="macro", zero_division=0
            ),
            True,
            True,
        ),
        ("rmse", "regression", sk.root_mean_squared_error, False, False),
        ("mae", "regression", sk.mean_absolute_error, False, False),
        ("r2", "regression", sk.r2_score, True, False),
    ],
)
def test_labels_and_values_match_an_independent_paired_bootstrap(
    name: str, kind: str, function: Any, higher: bool, proportion: bool
) -> None:
    y, parent, candidate = data(kind)
    labels = sorted(set(y.tolist())) if kind != "regression" else None
    m = measure.metric(name, labels)
    result = measure.paired_bootstrap(
        m,
        y,
        measure.prepared(m, y, parent),
        measure.prepared(m, y, candidate),
        higher_is_better=higher,
        proportion=proportion,
        seed=measure.seed(PARENT, DATASET),
        draws=DRAWS,
    )
    sign = (1 if higher else -1) * (100 if proportion else 1)
    gain, low, high, _ = independent(function, y, parent, candidate, scale=sign)
    assert (six(result.gain), six(result.ci_low), six(result.ci_high)) == (
        six(gain),
        six(low),
        six(high),
    )
    assert result.seed == spec_seed(PARENT, DATASET)
    assert (result.kept, result.skipped) == (DRAWS, 0)
    assert result.ci_low < result.gain < result.ci_high


@pytest.mark.parametrize("name", ["roc_auc", "log_loss"])
def test_scores_match_an_independent_paired_bootstrap(name: str) -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    parent, candidate = scores(y, 2, 0.4, 1), scores(y, 2, 0.9, 2)
    m = measure.metric(name, [0, 1])
    if name == "roc_auc":

        def function(t: np.ndarray, s: np.ndarray) -> float:
            return float(sk.roc_auc_score(t, s[:, 1]))

        higher = True
    else:

        def function(t: np.ndarray, s: np.ndarray) -> float:
            return float(sk.log_loss(t, s, labels=[0, 1]))

        higher = False
    result = measure.paired_bootstrap(
        m,
        y,
        measure.prepared(m, y, parent),
        measure.prepared(m, y, candidate),
        higher_is_better=higher,
        proportion=name == "roc_auc",
        seed=measure.seed(PARENT, DATASET),
        draws=DRAWS,
    )
    scale = 100 if higher else -1
    gain, low, high, skipped = independent(
        function, y, parent, candidate, scale=scale, undefined_when_one_class=name == "roc_auc"
    )
    assert (six(result.gain), six(result.ci_low), six(result.ci_high)) == (
        six(gain),
        six(low),
        six(high),
    )
    assert result.skipped == skipped


def test_undefined_resamples_are_skipped_and_too_many_fail() -> None:
    y = np.array([0] * 297 + [1] * 3)  # three positives: many resamples hold none
    m = measure.metric("roc_auc", [0, 1])
    parent, candidate = scores(y, 2, 0.3, 3), scores(y, 2, 0.8, 4)
    with pytest.raises(measure.MeasurementError) as refused:
        measure.paired_bootstrap(
            m,
            y,
            parent,
            candidate,
            higher_is_better=True,
            proportion=True,
            seed=measure.seed(PARENT, DATASET),
            draws=DRAWS,
        )
    assert refused.value.code == "evaluation_undefined"


def test_the_metric_arguments_follow_the_labels() -> None:
    assert measure.metric("f1", ["no", "yes"]).arguments == {
        "labels": ["no", "yes"],
        "zero_division": 0,
        "average": "binary",
        "pos_label": "yes",
    }
    assert measure.metric("roc_auc", [2, 0, 1]).arguments == {
        "labels": [0, 1, 2],
        "average": "macro",
        "multi_class": "ovr",
    }
    assert measure.metric("mse").describe() == {
        "name": "mse",
        "function": "sklearn.metrics.mean_squared_error",
        "arguments": {},
    }
    with pytest.raises(measure.MeasurementError) as unknown:
        measure.metric("balanced_accuracy", [0, 1])
    assert unknown.value.code == "unknown_metric"


def test_a_model_output_of_the_wrong_shape_is_refused() -> None:
    y = np.array([0, 1, 1, 0])
    with pytest.raises(measure.MeasurementError) as labels_for_scores:
        measure.prepared(measure.metric("log_loss", [0, 1]), y, np.array([0, 1, 1, 0]))
    assert labels_for_scores.value.code == "evaluation_failed"
    with pytest.raises(measure.MeasurementError) as too_few:
        measure.prepared(measure.metric("accuracy", [0, 1]), y, np.array([0, 1]))
    assert too_few.value.code == "evaluation_failed"
    assert measure.prepared(
        measure.metric("accuracy", [0, 1]), y, [[0.0], [1.0], [1.0], [0.0]]
    ).tolist() == [0, 1, 1, 0]


def test_the_seed_ignores_the_candidate_and_rounding_is_half_even() -> None:
    assert measure.seed(PARENT, DATASET) == spec_seed(PARENT, DATASET)
    assert measure.seed(PARENT, DATASET) != measure.seed("sha256:" + "2f" * 32, DATASET)
    assert measure.rounded(0.0000005) == 0.0
    assert measure.rounded(0.0000015) == 0.000002
    assert measure.rounded(-1.23456789) == -1.234568
