"""A/B assignment and statistics, checked against scipy on the raw events."""

from __future__ import annotations

import math
import random
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from app.rules.ab_stats import (
    BUCKETS,
    Sample,
    assign,
    assign_all,
    bucket,
    compare,
    interval,
    sample_ratio_mismatch,
    verdict,
)


def sample_of(values: list[float]) -> Sample:
    return Sample(len(values), sum(values), sum(v * v for v in values))


def test_the_split_over_100000_units_is_within_1_percent_of_the_weights() -> None:
    test_id = str(uuid.uuid4())
    weights = [0.5, 0.3, 0.2]
    counts = [0, 0, 0]
    for unit in range(100_000):
        counts[assign(test_id, f"user-{unit}", weights)] += 1
    for count, weight in zip(counts, weights, strict=True):
        assert abs(count / 100_000 - weight) < 0.01


def test_assignment_is_sticky_and_follows_the_specified_hash() -> None:
    test_id = "7d3c1a52-5c1e-4cf3-9a7e-0b8a3e2f4d11"
    import hashlib

    expected = (
        int.from_bytes(hashlib.sha256(f"{test_id}:u-42".encode()).digest()[:8], "big") % 10_000
    )
    assert bucket(test_id, "u-42") == expected
    first = assign(test_id, "u-42", [0.5, 0.5])
    assert all(assign(test_id, "u-42", [0.5, 0.5]) == first for _ in range(100))
    assert assign(test_id, "u-42", [1.0, 0.0]) == 0
    assert assign(test_id, "u-42", [0.0, 1.0]) == 1


def walk(test_id: str, unit_id: str, weights: list[float]) -> int:
    """DOMAIN.md section 9 read literally: the bucket, then the variants in order over the
    cumulative weights."""
    edge = 0.0
    for index, weight in enumerate(weights):
        edge += weight * BUCKETS
        if bucket(test_id, unit_id) < round(edge):
            return index
    return len(weights) - 1


@given(
    raw=st.lists(st.integers(min_value=0, max_value=1000), min_size=2, max_size=6).filter(any),
    units=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=50),
)
def test_batch_assignment_walks_the_cumulative_weights_as_specified(
    raw: list[int], units: list[str]
) -> None:
    weights = [w / sum(raw) for w in raw]  # sums to 1 within rounding, zero weights included
    test_id = str(uuid.uuid4())
    assert assign_all(test_id, units, weights) == [walk(test_id, u, weights) for u in units]


def test_binary_results_match_scipy_on_the_raw_events() -> None:
    rng = random.Random(1)
    control = [1.0 if rng.random() < 0.10 else 0.0 for _ in range(4000)]
    treatment = [1.0 if rng.random() < 0.125 else 0.0 for _ in range(4100)]
    result = compare(sample_of(control), sample_of(treatment), "binary", True, 0.95)
    p1, p2 = sum(control) / len(control), sum(treatment) / len(treatment)
    pooled = (sum(control) + sum(treatment)) / (len(control) + len(treatment))
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (1 / len(control) + 1 / len(treatment)))
    se = math.sqrt(p1 * (1 - p1) / len(control) + p2 * (1 - p2) / len(treatment))
    assert result.absolute_lift == pytest.approx(p2 - p1, abs=1e-6)
    assert result.relative_lift == pytest.approx((p2 - p1) / p1, abs=1e-6)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), abs=1e-6)
    assert result.ci_low == pytest.approx(p2 - p1 - stats.norm.ppf(0.975) * se, abs=1e-6)
    assert result.ci_high == pytest.approx(p2 - p1 + stats.norm.ppf(0.975) * se, abs=1e-6)
    assert result.chance_to_beat_control == pytest.approx(stats.norm.cdf((p2 - p1) / se), abs=1e-6)


def test_continuous_results_match_scipy_welch() -> None:
    rng = random.Random(2)
    control = [rng.gauss(100, 20) for _ in range(900)]
    treatment = [rng.gauss(103, 25) for _ in range(1100)]
    result = compare(sample_of(control), sample_of(treatment), "continuous", True, 0.90)
    welch = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.p_value == pytest.approx(welch.pvalue, abs=1e-6)
    interval = welch.confidence_interval(0.90)
    assert result.ci_low == pytest.approx(interval.low, abs=1e-6)
    assert result.ci_high == pytest.approx(interval.high, abs=1e-6)
    assert sample_of(control).std == pytest.approx(stats.tstd(control), abs=1e-6)


def test_each_variants_interval_matches_scipy() -> None:
    rng = random.Random(3)
    values = [rng.gauss(50, 9) for _ in range(300)]
    low, high = interval(sample_of(values), "continuous", 0.90)
    expected = stats.t.interval(
        0.90, len(values) - 1, loc=stats.tmean(values), scale=stats.sem(values)
    )
    assert (low, high) == pytest.approx(expected, abs=1e-9)
    conversions = [1.0] * 45 + [0.0] * 155
    low, high = interval(sample_of(conversions), "binary", 0.95)
    expected = stats.norm.interval(0.95, loc=0.225, scale=math.sqrt(0.225 * 0.775 / 200))
    assert (low, high) == pytest.approx(expected, abs=1e-9)
    assert interval(Sample(1, 1.0, 1.0), "binary", 0.95) == (None, None)
    assert interval(Sample(0, 0.0, 0.0), "continuous", 0.95) == (None, None)


def test_lower_is_better_flips_the_chance_to_beat_control() -> None:
    control, treatment = Sample(1000, 5000.0, 26000.0), Sample(1000, 4800.0, 24000.0)
    lower = compare(control, treatment, "continuous", False, 0.95)
    higher = compare(control, treatment, "continuous", True, 0.95)
    assert lower.chance_to_beat_control == pytest.approx(1 - higher.chance_to_beat_control)  # type: ignore[operator]


def test_srm_flags_a_45_55_split_of_20000_on_a_50_50_test() -> None:
    p_value, flagged = sample_ratio_mismatch([9000, 11000], [0.5, 0.5])
    assert flagged
    assert p_value == pytest.approx(stats.chisquare([9000, 11000]).pvalue)
    assert not sample_ratio_mismatch([10_050, 9950], [0.5, 0.5])[1]


def test_verdicts() -> None:
    big, small = Sample(5000, 500.0, 500.0), Sample(50, 5.0, 5.0)
    better = compare(big, Sample(5000, 700.0, 700.0), "binary", True, 0.95)
    worse = compare(big, Sample(5000, 350.0, 350.0), "binary", True, 0.95)
    same = compare(big, Sample(5000, 505.0, 505.0), "binary", True, 0.95)
    assert verdict([big, small], [better], 100) == "insufficient_data"
    assert verdict([big, big], [better], 100) == "treatment_better"
    assert verdict([big, big], [worse], 100) == "control_better"
    assert verdict([big, big], [same], 100) == "no_significant_difference"
