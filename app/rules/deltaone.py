"""The DeltaOne decision: is an improved version's gain on the primary
metric at least one percentage point, measured well enough to pay contributors for it? The checks
run in a fixed order and the first that fails is the reason. Pure functions, no I/O.

Rules: docs/reference/specification.md#deltaone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from scipy import stats

from app.core.vocabulary import Basis, Family, MetricDirection, Reason
from app.rules.deltas import exact, rounded

Z_95 = 1.96  # the specification's Wald multiplier, exactly


@dataclass(frozen=True)
class Side:
    value: float
    samples: int
    dataset_hash: str
    std: float | None = None


@dataclass(frozen=True)
class Measured:
    """What the service measured on a held benchmark (`hokusai.measure`): the gain and its
    paired-bootstrap interval in the measure's unit (x100 for proportions; the metric's own for
    continuous metrics), signed so that positive is better, and whether anything changed."""

    gain: float
    ci_low: float
    ci_high: float
    parent_value: float
    rows: int
    no_change: bool
    record: dict[str, Any]


@dataclass(frozen=True)
class Policy:
    threshold_pp: float = 1.0
    min_samples: int = 800


@dataclass(frozen=True)
class Decision:
    """Gains and intervals are percentage points for proportions, and percent of the parent's
    value for continuous metrics: the unit the threshold is compared in."""

    accepted: bool
    reason: Reason
    metric: str
    gain_pp: float | None
    ci_low_pp: float | None
    ci_high_pp: float | None
    n_parent: int
    n_candidate: int
    threshold_pp: float
    min_samples: int
    evaluated_at: datetime
    basis: Basis = Basis.CLAIMED  # measured, on a held benchmark
    measurement: dict[str, Any] | None = None


def decide(
    metric: str,
    direction: MetricDirection,
    family: Family,
    parent: Side,
    candidate: Side,
    *,
    cooldown_active: bool,
    policy: Policy,
    now: datetime,
    measured: Measured | None = None,
    measurement_required: bool = False,
    identical_artifact: bool = False,
) -> Decision:
    sign = 1 if direction == MetricDirection.HIGHER_IS_BETTER else -1
    gain = sign * (exact(candidate.value) - exact(parent.value))
    samples = (parent.samples, candidate.samples)
    if measured is not None:
        gain_pp, interval = _measured(measured, family)
        samples = (measured.rows, measured.rows)
    elif family == Family.PROPORTION:
        gain_pp = gain * 100
        interval = _wald(gain, parent, candidate)
    else:
        scale = abs(exact(parent.value))
        gain_pp = gain / scale * 100 if scale else None
        interval = _welch(gain, parent, candidate, scale)

    if identical_artifact:
        reason = Reason.IDENTICAL_ARTIFACT  # the parent's own files, whatever is claimed
    elif measured is None and measurement_required:
        reason = Reason.MEASUREMENT_REQUIRED  # claimed numbers, where only measured ones count
    elif measured is not None and measured.no_change:
        reason = Reason.NO_CHANGE  # the same answer on every row of the benchmark
    elif min(samples) < policy.min_samples:
        reason = Reason.INSUFFICIENT_SAMPLES
    elif parent.dataset_hash != candidate.dataset_hash:
        reason = Reason.DATASET_HASH_MISMATCH
    elif cooldown_active:
        reason = Reason.COOLDOWN_ACTIVE
    elif gain_pp is None or gain_pp < exact(policy.threshold_pp):
        reason = Reason.DELTA_BELOW_THRESHOLD
    elif interval is None or interval[0] <= 0:
        reason = Reason.NOT_STATISTICALLY_SIGNIFICANT
    else:
        reason = Reason.ACCEPTED
    return Decision(
        accepted=reason == Reason.ACCEPTED,
        reason=reason,
        metric=metric,
        gain_pp=rounded(gain_pp) if gain_pp is not None else None,
        ci_low_pp=rounded(interval[0]) if interval else None,
        ci_high_pp=rounded(interval[1]) if interval else None,
        n_parent=samples[0],
        n_candidate=samples[1],
        threshold_pp=policy.threshold_pp,
        min_samples=policy.min_samples,
        evaluated_at=now,
        basis=Basis.CLAIMED if measured is None else Basis.MEASURED,
        measurement=None if measured is None else measured.record,
    )


def _measured(
    measured: Measured, family: Family
) -> tuple[Decimal | None, tuple[Decimal, Decimal] | None]:
    """The measured gain and interval in the decision's unit: percentage points for
    proportions (as measured), percent of the parent's value for continuous metrics."""
    if family == Family.PROPORTION:
        return exact(measured.gain), (exact(measured.ci_low), exact(measured.ci_high))
    scale = abs(exact(measured.parent_value))
    if not scale:
        return None, None
    percent = Decimal(100) / scale
    low, high = exact(measured.ci_low) * percent, exact(measured.ci_high) * percent
    return exact(measured.gain) * percent, (low, high)


def _wald(gain: Decimal, parent: Side, candidate: Side) -> tuple[Decimal, Decimal] | None:
    """gain ± 1.96·sqrt(p1(1-p1)/n1 + p2(1-p2)/n2), in percentage points."""
    if parent.samples < 1 or candidate.samples < 1:
        return None
    p1, p2 = parent.value, candidate.value
    se = math.sqrt(p1 * (1 - p1) / parent.samples + p2 * (1 - p2) / candidate.samples)
    margin = exact(Z_95 * se)
    return (gain - margin) * 100, (gain + margin) * 100


def _welch(
    gain: Decimal, parent: Side, candidate: Side, scale: Decimal
) -> tuple[Decimal, Decimal] | None:
    """Welch's 95% interval of the difference of means, in percent of the parent's value; only
    when both sides report the metric's standard deviation."""
    if parent.std is None or candidate.std is None or not scale:
        return None
    n1, n2 = parent.samples, candidate.samples
    if n1 < 2 or n2 < 2:
        return None
    v1, v2 = parent.std**2 / n1, candidate.std**2 / n2
    if v1 + v2 == 0:
        return None
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    margin = exact(float(stats.t.ppf(0.975, df)) * math.sqrt(v1 + v2))
    return (gain - margin) / scale * 100, (gain + margin) / scale * 100
