"""The DeltaOne decision: every reason, in the specified order, both directions, both families."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from scipy import stats

from app.core.vocabulary import Family, MetricDirection, Reason
from app.rules.deltaone import Policy, Side, decide
from app.rules.deltas import compare_metrics, metric_delta

NOW = datetime(2026, 11, 26, tzinfo=UTC)
HASH = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
HIGHER, LOWER = MetricDirection.HIGHER_IS_BETTER, MetricDirection.LOWER_IS_BETTER
PROPORTION, CONTINUOUS = Family.PROPORTION, Family.CONTINUOUS


def judge(
    direction: MetricDirection,
    family: Family,
    parent: Side,
    candidate: Side,
    cooldown: bool = False,
) -> Reason:
    return decide(
        "m",
        direction,
        family,
        parent,
        candidate,
        cooldown_active=cooldown,
        policy=Policy(),
        now=NOW,
    ).reason


CASES = [
    # (direction, family, parent, candidate, cooldown, expected) - each row fails exactly at its
    # check, and every check before it passes.
    (
        HIGHER,
        PROPORTION,
        Side(0.80, 799, HASH),
        Side(0.90, 5000, OTHER),
        True,
        Reason.INSUFFICIENT_SAMPLES,
    ),
    (
        HIGHER,
        PROPORTION,
        Side(0.80, 5000, HASH),
        Side(0.90, 799, HASH),
        False,
        Reason.INSUFFICIENT_SAMPLES,
    ),
    (
        HIGHER,
        PROPORTION,
        Side(0.80, 5000, HASH),
        Side(0.90, 5000, OTHER),
        True,
        Reason.DATASET_HASH_MISMATCH,
    ),
    (
        HIGHER,
        PROPORTION,
        Side(0.80, 5000, HASH),
        Side(0.90, 5000, HASH),
        True,
        Reason.COOLDOWN_ACTIVE,
    ),
    (
        HIGHER,
        PROPORTION,
        Side(0.80, 5000, HASH),
        Side(0.8099, 5000, HASH),
        False,
        Reason.DELTA_BELOW_THRESHOLD,
    ),
    (
        HIGHER,
        PROPORTION,
        Side(0.80, 800, HASH),
        Side(0.815, 800, HASH),
        False,
        Reason.NOT_STATISTICALLY_SIGNIFICANT,
    ),
    (HIGHER, PROPORTION, Side(0.80, 5000, HASH), Side(0.83, 5000, HASH), False, Reason.ACCEPTED),
    (
        HIGHER,
        PROPORTION,
        Side(0.80, 5000, HASH),
        Side(0.81, 5000, HASH),
        False,
        Reason.NOT_STATISTICALLY_SIGNIFICANT,
    ),
    (LOWER, PROPORTION, Side(0.20, 5000, HASH), Side(0.17, 5000, HASH), False, Reason.ACCEPTED),
    (
        LOWER,
        PROPORTION,
        Side(0.20, 5000, HASH),
        Side(0.23, 5000, HASH),
        False,
        Reason.DELTA_BELOW_THRESHOLD,
    ),
    (
        HIGHER,
        CONTINUOUS,
        Side(10.0, 5000, HASH, 2.0),
        Side(10.05, 5000, HASH, 2.0),
        False,
        Reason.DELTA_BELOW_THRESHOLD,
    ),
    (
        HIGHER,
        CONTINUOUS,
        Side(10.0, 5000, HASH),
        Side(11.0, 5000, HASH),
        False,
        Reason.NOT_STATISTICALLY_SIGNIFICANT,
    ),
    (
        HIGHER,
        CONTINUOUS,
        Side(10.0, 5000, HASH, 50.0),
        Side(10.5, 5000, HASH, 50.0),
        False,
        Reason.NOT_STATISTICALLY_SIGNIFICANT,
    ),
    (
        HIGHER,
        CONTINUOUS,
        Side(10.0, 5000, HASH, 2.0),
        Side(11.0, 5000, HASH, 2.0),
        False,
        Reason.ACCEPTED,
    ),
    (
        LOWER,
        CONTINUOUS,
        Side(4.0, 5000, HASH, 1.0),
        Side(3.5, 5000, HASH, 1.0),
        False,
        Reason.ACCEPTED,
    ),
    (
        LOWER,
        CONTINUOUS,
        Side(4.0, 5000, HASH, 1.0),
        Side(4.5, 5000, HASH, 1.0),
        False,
        Reason.DELTA_BELOW_THRESHOLD,
    ),
    (
        HIGHER,
        CONTINUOUS,
        Side(0.0, 5000, HASH, 1.0),
        Side(1.0, 5000, HASH, 1.0),
        False,
        Reason.DELTA_BELOW_THRESHOLD,
    ),
]


@pytest.mark.parametrize(
    ("direction", "family", "parent", "candidate", "cooldown", "expected"), CASES
)
def test_each_reason_in_order(
    direction: MetricDirection,
    family: Family,
    parent: Side,
    candidate: Side,
    cooldown: bool,
    expected: Reason,
) -> None:
    assert judge(direction, family, parent, candidate, cooldown) == expected


def test_wald_interval_matches_the_formula() -> None:
    decision = decide(
        "accuracy",
        HIGHER,
        PROPORTION,
        Side(0.80, 5000, HASH),
        Side(0.83, 5000, HASH),
        cooldown_active=False,
        policy=Policy(),
        now=NOW,
    )
    se = math.sqrt(0.8 * 0.2 / 5000 + 0.83 * 0.17 / 5000)
    assert decision.accepted
    assert decision.gain_pp == 3.0
    assert decision.ci_low_pp == pytest.approx((0.03 - 1.96 * se) * 100, abs=1e-6)
    assert decision.ci_high_pp == pytest.approx((0.03 + 1.96 * se) * 100, abs=1e-6)
    assert (decision.n_parent, decision.n_candidate) == (5000, 5000)
    assert (decision.threshold_pp, decision.min_samples) == (1.0, 800)


def test_welch_interval_matches_scipy() -> None:
    parent, candidate = Side(10.0, 900, HASH, 2.0), Side(10.4, 1100, HASH, 3.0)
    decision = decide(
        "revenue",
        HIGHER,
        CONTINUOUS,
        parent,
        candidate,
        cooldown_active=False,
        policy=Policy(),
        now=NOW,
    )
    v1, v2 = 2.0**2 / 900, 3.0**2 / 1100
    df = (v1 + v2) ** 2 / (v1**2 / 899 + v2**2 / 1099)
    margin = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    assert decision.gain_pp == 4.0
    assert decision.ci_low_pp == pytest.approx((0.4 - margin) / 10 * 100, abs=1e-6)
    assert decision.ci_high_pp == pytest.approx((0.4 + margin) / 10 * 100, abs=1e-6)
    assert decision.accepted


def test_thresholds_are_settings() -> None:
    strict = Policy(threshold_pp=5.0, min_samples=10_000)
    lenient = Policy(threshold_pp=0.5, min_samples=100)
    parent, candidate = Side(0.80, 5000, HASH), Side(0.83, 5000, HASH)
    assert (
        decide(
            "m",
            HIGHER,
            PROPORTION,
            parent,
            candidate,
            cooldown_active=False,
            policy=strict,
            now=NOW,
        ).reason
        == Reason.INSUFFICIENT_SAMPLES
    )
    assert decide(
        "m", HIGHER, PROPORTION, parent, candidate, cooldown_active=False, policy=lenient, now=NOW
    ).accepted


@pytest.mark.parametrize(
    ("parent", "candidate", "direction", "absolute", "relative", "gain"),
    [
        (0.1, 0.3, HIGHER, 0.2, 2.0, 0.2),  # 0.3 - 0.1 is 0.19999999999999998 in binary floats
        (0.45, 0.41, LOWER, -0.04, -0.088889, 0.04),
        (2.0, 2.0000005, HIGHER, 0.0, 0.0, 0.0),  # 5e-7 rounds half-even to 0
        (2.0, 2.0000015, HIGHER, 0.000002, 0.000001, 0.000002),  # 1.5e-6 -> 2e-6 (half-even)
        (0.0, 0.5, HIGHER, 0.5, None, 0.5),
    ],
)
def test_delta_rounds_half_even_in_decimal(
    parent: float,
    candidate: float,
    direction: MetricDirection,
    absolute: float,
    relative: float | None,
    gain: float,
) -> None:
    delta = metric_delta(parent, candidate, direction, None)
    assert (delta.absolute, delta.relative, delta.gain) == (absolute, relative, gain)


def test_other_metrics_take_their_direction_from_their_name() -> None:
    deltas = compare_metrics(
        {"accuracy": 0.8, "rmse": 3.0, "val_loss": 1.0, "calibration_error": 0.1, "auc": 0.7},
        {
            "accuracy": 0.82,
            "rmse": 2.5,
            "val_loss": 0.9,
            "calibration_error": 0.2,
            "auc": 0.75,
            "new": 1,
        },
        "accuracy",
        HIGHER,
        PROPORTION,
    )
    assert set(deltas) == {"accuracy", "rmse", "val_loss", "calibration_error", "auc"}
    assert deltas["accuracy"].gain_pp == 2.0
    assert deltas["rmse"].gain == 0.5
    assert deltas["val_loss"].gain == 0.1
    assert deltas["calibration_error"].gain == -0.1
    assert deltas["auc"].gain == 0.05
    assert deltas["auc"].gain_pp is None
