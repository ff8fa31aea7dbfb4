"""Delta rules: direction-aware gain, percentage points for proportions,
decimal half-even rounding to 6 places. Pure functions, no I/O.

Rules: docs/reference/specification.md#deltas."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Literal

from app.core.vocabulary import Family, MetricDirection

PLACES = Decimal("0.000001")
LOWER_IS_BETTER = frozenset({"mse", "rmse", "mae", "log_loss", "loss", "error_rate"})


def default_direction(metric: str) -> MetricDirection:
    name = metric.lower()
    if name in LOWER_IS_BETTER or name.endswith(("_loss", "_error")):
        return MetricDirection.LOWER_IS_BETTER
    return MetricDirection.HIGHER_IS_BETTER


def exact(value: float) -> Decimal:
    """The decimal a float was written as (its shortest repr), not its binary expansion."""
    return Decimal(repr(float(value)))


def rounded(value: Decimal) -> float:
    """Half-even to 6 places, with as many digits as the value needs (a metric of 1e21 has
    more than the default context's 28)."""
    with localcontext() as context:
        context.prec = max(28, value.adjusted() + 8)
        return float(value.quantize(PLACES, rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class MetricDelta:
    parent: float
    candidate: float
    absolute: float
    relative: float | None
    gain: float
    gain_pp: float | None
    better: Literal["parent", "candidate", "equal"]


def metric_delta(
    parent: float, candidate: float, direction: MetricDirection, family: Family | None
) -> MetricDelta:
    with localcontext() as context:
        context.prec = 50
        absolute = exact(candidate) - exact(parent)
        relative = absolute / abs(exact(parent)) if parent != 0 else None
        gain = absolute if direction == MetricDirection.HIGHER_IS_BETTER else -absolute
        gain_pp = gain * 100 if family == Family.PROPORTION else None
    return MetricDelta(
        parent=parent,
        candidate=candidate,
        absolute=rounded(absolute),
        relative=rounded(relative) if relative is not None else None,
        gain=rounded(gain),
        gain_pp=rounded(gain_pp) if gain_pp is not None else None,
        better="candidate" if gain > 0 else "parent" if gain < 0 else "equal",
    )


def compare_metrics(
    parent: dict[str, float],
    candidate: dict[str, float],
    primary: str | None = None,
    primary_direction: MetricDirection | None = None,
    primary_family: Family | None = None,
) -> dict[str, MetricDelta]:
    """Every metric present on both sides, in name order. The primary metric takes the declared
    direction and family; others default by name (losses and errors are lower-is-better)."""
    deltas = {}
    for name in sorted(parent.keys() & candidate.keys()):
        is_primary = name == primary
        direction = (primary_direction if is_primary else None) or default_direction(name)
        family = primary_family if is_primary else None
        deltas[name] = metric_delta(parent[name], candidate[name], direction, family)
    return deltas
