"""The domain's words, shared by every layer: schemas, services and the ORM columns all use these,
so none of them imports another for a word. Rules: docs/reference/specification.md."""

from __future__ import annotations

from enum import StrEnum

PRODUCTION = "production"  # the alias predictions use by default, and rollback moves


class ModelType(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    RANKING = "ranking"
    LEAD_SCORING = "lead_scoring"
    CUSTOM = "custom"


class VersionKind(StrEnum):
    BASELINE = "baseline"
    IMPROVED = "improved"


class MetricDirection(StrEnum):
    """Which way a metric improves (losses and errors: lower)."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Family(StrEnum):
    """How gains are counted: percentage points for proportions, percent otherwise."""

    PROPORTION = "proportion"
    CONTINUOUS = "continuous"


class Basis(StrEnum):
    """How an improvement's numbers were obtained."""

    MEASURED = "measured"  # the service scored both versions on a held benchmark
    CLAIMED = "claimed"  # the client's numbers


class Reason(StrEnum):
    """Why DeltaOne accepted or refused a version: the first check that failed, or `accepted`."""

    MEASUREMENT_REQUIRED = "measurement_required"  # the model's owner requires measured values
    IDENTICAL_ARTIFACT = "identical_artifact"  # the candidate is its parent's files
    NO_CHANGE = "no_change"  # measured: the same predictions on every benchmark row
    INSUFFICIENT_SAMPLES = "insufficient_samples"
    DATASET_HASH_MISMATCH = "dataset_hash_mismatch"
    COOLDOWN_ACTIVE = "cooldown_active"
    DELTA_BELOW_THRESHOLD = "delta_below_threshold"
    NOT_STATISTICALLY_SIGNIFICANT = "not_statistically_significant"
    ACCEPTED = "accepted"


class MetricKind(StrEnum):
    """What an A/B test's primary metric counts: a conversion (0 or 1) or any number."""

    BINARY = "binary"
    CONTINUOUS = "continuous"


class Verdict(StrEnum):
    """What an A/B test's results say so far."""

    INSUFFICIENT_DATA = "insufficient_data"  # a variant below the minimum sample size
    TREATMENT_BETTER = "treatment_better"
    CONTROL_BETTER = "control_better"
    NO_SIGNIFICANT_DIFFERENCE = "no_significant_difference"


class AbTestStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
