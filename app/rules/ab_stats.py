"""A/B statistics, from sufficient statistics only (count, sum, sum of
squares per variant), so reading results costs the same for a thousand events or a million.
Pure functions, no I/O.

Rules: docs/reference/specification.md#ab-tests."""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy import stats

from app.core.vocabulary import MetricKind, Verdict

BUCKETS = 10_000
SRM_ALPHA = 0.001


def bucket(test_id: str, unit_id: str) -> int:
    """First 8 bytes of SHA-256("<test id>:<unit id>") as an integer, mod 10000."""
    digest = hashlib.sha256(f"{test_id}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(test_id: str, unit_id: str, weights: Sequence[float]) -> int:
    """The variant index: walk the variants in order over their cumulative weights."""
    return assign_all(test_id, (unit_id,), weights)[0]


def assign_all(test_id: str, unit_ids: Iterable[str], weights: Sequence[float]) -> list[int]:
    """`assign` for many units of one test (an outcome batch): the test's half of the hash and
    the cumulative edges are computed once, and each unit costs one hash and one bisection."""
    edges, cumulative = [], 0.0
    for weight in weights:
        cumulative += weight * BUCKETS
        edges.append(round(cumulative))
    edges[-1] = BUCKETS  # weights that sum to a hair under 1 still close on the last variant
    prefix = hashlib.sha256(f"{test_id}:".encode())
    variants = []
    for unit_id in unit_ids:
        digest = prefix.copy()
        digest.update(unit_id.encode())
        variants.append(bisect_right(edges, int.from_bytes(digest.digest()[:8], "big") % BUCKETS))
    return variants


@dataclass(frozen=True)
class Sample:
    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1)."""
        if self.n < 2:
            return None
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))

    @property
    def std(self) -> float | None:
        variance = self.variance
        return math.sqrt(variance) if variance is not None else None


@dataclass(frozen=True)
class Comparison:
    absolute_lift: float | None
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_beat_control: float | None
    significant: bool
    better: bool | None  # direction-aware: the treatment beats the control


def compare(
    control: Sample, treatment: Sample, kind: MetricKind, higher_is_better: bool, confidence: float
) -> Comparison:
    """Binary: two-proportion z-test (pooled) and an unpooled Wald interval. Continuous: Welch's
    t-test and interval. Chance to beat control: the normal approximation of the difference."""
    empty = Comparison(None, None, None, None, None, None, significant=False, better=None)
    if control.n < 2 or treatment.n < 2:
        return empty
    m1, m2 = control.mean, treatment.mean
    assert m1 is not None
    assert m2 is not None
    diff = m2 - m1
    relative = diff / abs(m1) if m1 else None
    if kind == MetricKind.BINARY:
        se = math.sqrt(m1 * (1 - m1) / control.n + m2 * (1 - m2) / treatment.n)
        pooled = (control.total + treatment.total) / (control.n + treatment.n)
        pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
        p_value = 2 * stats.norm.sf(abs(diff / pooled_se)) if pooled_se else (0.0 if diff else 1.0)
        critical = stats.norm.ppf((1 + confidence) / 2)
    else:
        v1, v2 = control.variance, treatment.variance
        assert v1 is not None
        assert v2 is not None
        se = math.sqrt(v1 / control.n + v2 / treatment.n)
        if se == 0:
            p_value = 0.0 if diff else 1.0
            critical = 0.0
        else:
            df = (v1 / control.n + v2 / treatment.n) ** 2 / (
                (v1 / control.n) ** 2 / (control.n - 1)
                + (v2 / treatment.n) ** 2 / (treatment.n - 1)
            )
            p_value = 2 * stats.t.sf(abs(diff / se), df)
            critical = stats.t.ppf((1 + confidence) / 2, df)
    signed = diff if higher_is_better else -diff
    chance = (
        stats.norm.cdf(signed / se) if se else (1.0 if signed > 0 else 0.0 if signed < 0 else 0.5)
    )
    significant = bool(p_value < 1 - confidence)
    return Comparison(
        absolute_lift=diff,
        relative_lift=relative,
        ci_low=diff - critical * se,
        ci_high=diff + critical * se,
        p_value=float(p_value),
        chance_to_beat_control=float(chance),
        significant=significant,
        better=signed > 0 if significant else None,
    )


def interval(
    sample: Sample, kind: MetricKind, confidence: float
) -> tuple[float | None, float | None]:
    """The interval of one variant's mean at the test's confidence level: Wald for a binary
    metric, Student's t with n - 1 degrees of freedom for a continuous one."""
    mean = sample.mean
    if mean is None or sample.n < 2:
        return None, None
    if kind == MetricKind.BINARY:
        se = math.sqrt(mean * (1 - mean) / sample.n)
        critical = stats.norm.ppf((1 + confidence) / 2)
    else:
        variance = sample.variance
        assert variance is not None
        se = math.sqrt(variance / sample.n)
        critical = stats.t.ppf((1 + confidence) / 2, sample.n - 1)
    return mean - float(critical) * se, mean + float(critical) * se


def sample_ratio_mismatch(
    exposures: Sequence[int], weights: Sequence[float]
) -> tuple[float | None, bool]:
    """Pearson chi-square of exposures against the weights; flagged when p < 0.001."""
    total = sum(exposures)
    if total == 0:
        return None, False
    expected = [weight * total for weight in weights]
    p_value = float(stats.chisquare(exposures, expected).pvalue)
    return p_value, p_value < SRM_ALPHA


def verdict(samples: Sequence[Sample], comparisons: Sequence[Comparison], minimum: int) -> Verdict:
    if any(sample.n < minimum for sample in samples):
        return Verdict.INSUFFICIENT_DATA
    if any(c.significant and c.better for c in comparisons):
        return Verdict.TREATMENT_BETTER
    if comparisons and any(c.significant and c.better is False for c in comparisons):
        return Verdict.CONTROL_BETTER
    return Verdict.NO_SIGNIFICANT_DIFFERENCE
