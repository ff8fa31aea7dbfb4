"""Response models, generated from the service's openapi.json by
`sdk/scripts/generate_types.py`: do not edit by hand (a test checks they are current).
Attributes are the API's field names; fields the server adds later are kept, not
refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from hokusai._frames import LineageFrame, ResultsFrame


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class AbResults(_Response, ResultsFrame):
    test_id: str
    status: str
    metric: MetricSpec
    verdict: str
    srm: Srm
    variants: list[VariantResult]
    comparisons: list[ComparisonResult]


class AbTest(_Response):
    id: str
    name: str
    model: str
    status: str
    variants: list[Variant]
    unit: str
    metric: MetricSpec
    minimum_sample_size: int
    confidence_level: float
    ends_at: datetime | None
    webhook_url: str | None
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    winner: str | None


class AbTestAssignment(_Response):
    id: str
    variant: str


class AliasAt(_Response):
    alias: str
    version: int | None
    at: datetime


class AliasEvent(_Response):
    alias: str
    from_version: int | None
    to_version: int | None
    reason: str | None
    actor: str
    at: datetime


class AliasMove(_Response):
    alias: str
    version: int
    updated_at: datetime


class ApiKey(_Response):
    id: str
    name: str
    scopes: list[str]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class Artifact(_Response):
    digest: str
    source_uri: str
    mlflow_run_id: str | None


class Assignment(_Response):
    test_id: str
    unit_id: str
    variant: str
    version: int


class Attestation(_Response):
    id: str
    model: str
    version: int
    statement: dict[str, Any]
    envelope: Envelope
    eip712: Eip712 | None
    created_at: datetime


class AttestationBundle(_Response):
    """A model's whole attestation chain and the keys that signed it: what `hokusai verify`"""

    format: str | None = None
    model: str
    attestations: list[Attestation]
    keys: list[PublicKey]
    eip712_signer: str | None


class Benchmark(_Response):
    metric: str
    direction: str
    family: str


class BenchmarkColumn(_Response):
    name: str
    type: str


class BenchmarkRead(_Response):
    """What any key with `read` sees of a held benchmark: never a row or a label."""

    hash: str
    format: str
    rows: int
    columns: list[BenchmarkColumn]
    label_column: str
    label_distribution: list[dict[str, Any]]
    created_at: datetime
    retired_at: datetime | None


class CacheCounts(_Response):
    hits: int
    misses: int


class ChainVerification(_Response):
    valid: bool
    length: int
    broken_at: str | None
    reason: str | None


class Comparison(_Response):
    model: str
    base: int
    candidate: int
    primary_metric: str
    metrics: dict[str, MetricComparison]


class ComparisonResult(_Response):
    variant: str
    control: str
    absolute_lift: float | None
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_beat_control: float | None
    significant: bool


class Contribution(_Response):
    model: str
    version: int
    weight_bps: int
    gain_pp: float | None
    deltaone_accepted: bool | None
    basis: str | None
    attestation_id: str | None
    created_at: datetime


class Contributor(_Response):
    address: str
    weight_bps: int


class ContributorSummary(_Response):
    """One contributor in the list of all of them."""

    address: str
    contributions: int
    models_improved: int
    deltaone_accepted: int
    measured_accepted_gain_pp: float
    claimed_accepted_gain_pp: float
    last_contribution_at: datetime


class CreatedKey(_Response):
    id: str
    name: str
    scopes: list[str]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    key: str


class CurrentKey(_Response):
    """The key a request was made with: what a client can do with it, and nothing secret."""

    id: str
    name: str
    scopes: list[str]


class Dataset(_Response):
    hash: str
    num_samples: int


class DeltaOne(_Response):
    accepted: bool
    reason: str
    metric: str
    gain_pp: float | None
    ci_low_pp: float | None
    ci_high_pp: float | None
    n_parent: int
    n_candidate: int
    threshold_pp: float
    min_samples: int
    evaluated_at: datetime
    basis: str | None = None
    measurement: dict[str, Any] | None = None


class DependencyCheck(_Response):
    status: str
    latency_ms: float | None = None
    error: str | None = None


class Eip712(_Response):
    typed_data: dict[str, Any]
    signature: str
    signer: str


class Envelope(_Response):
    """A DSSE envelope (https://github.com/secure-systems-lab/dsse)."""

    payload: str
    payloadType: str
    signatures: list[Signature]


class Experiment(_Response):
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str]
    created_at: datetime | None


class Gains(_Response):
    """Contributions whose gains were obtained one way: measured by the service on a held"""

    contributions: int
    deltaone_accepted: int
    weighted_gain_pp: float
    accepted_weighted_gain_pp: float


class Health(_Response):
    status: str | None = None


class Impact(_Response):
    address: str
    contributions: int
    models_improved: int
    deltaone_accepted: int
    weighted_gain_pp: float
    accepted_weighted_gain_pp: float
    first_contribution_at: datetime | None
    last_contribution_at: datetime | None
    measured: Gains
    claimed: Gains
    models: list[ModelImpact]
    attestation_ids: list[str]


class Keys(_Response):
    keys: list[PublicKey]
    eip712_signer: str | None


class Lineage(_Response, LineageFrame):
    model: str
    version: int | None
    primary_metric: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    cumulative_gain_pp: float | None


class LineageEdge(_Response):
    parent: int
    child: int
    gain_pp: float | None
    deltaone_accepted: bool | None
    reason: str | None
    basis: str | None
    contributors: list[Contributor]
    attestation_id: str | None


class LineageNode(_Response):
    version: int
    kind: str
    primary_metric_value: float | None
    deltaone_accepted: bool | None
    attestation_id: str | None
    created_at: datetime


class MetricComparison(_Response):
    base: float
    candidate: float
    absolute: float
    relative: float | None
    gain: float
    better: str


class MetricDelta(_Response):
    parent: float
    candidate: float
    absolute: float
    relative: float | None
    gain: float
    gain_pp: float | None


class MetricSpec(_Response):
    name: str
    kind: str
    direction: str | None = None


class Model(_Response):
    name: str
    model_type: str
    token_id: str | None
    description: str | None
    tags: dict[str, str]
    benchmark: Benchmark
    latest_version: int | None
    aliases: dict[str, int]
    require_measurement: bool
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None


class ModelImpact(_Response):
    model: str
    versions: int
    weighted_gain_pp: float
    deltaone_accepted: int
    measured: Gains
    claimed: Gains


class OutcomesAccepted(_Response):
    accepted: int
    ignored: int


class Page_BenchmarkRead_(_Response):
    items: list[BenchmarkRead]
    total: int
    limit: int
    offset: int


class Prediction(_Response):
    model: str
    version: int
    predictions: list[Any]
    cache: CacheCounts
    ab_test: AbTestAssignment | None = None
    # From the response: X-Cache for a single row (HIT or MISS), and X-Request-ID.
    cache_status: str | None = None
    request_id: str | None = None


class PublicKey(_Response):
    """A key that signs (or signed) attestations. An attestation is valid only when its"""

    keyid: str
    algorithm: str
    public_key_pem: str
    status: str
    valid_from: datetime
    valid_until: datetime | None
    compromised_at: datetime | None


class Readiness(_Response):
    status: str
    checks: dict[str, DependencyCheck]
    warmup: Warmup | None = None
    sandbox: Sandbox | None = None


class Run(_Response):
    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


class RunComparison(_Response):
    baseline: str
    candidate: str
    primary_metric: str | None
    metrics: dict[str, MetricComparison]


class Sandbox(_Response):
    """How the model runners are confined on this replica (docs/how-to/sandbox.md)."""

    mode: str
    enforced: bool
    zygote: str
    landlock_abi: int
    seccomp: bool
    architecture: str
    missing: list[str]
    complete: bool


class Signature(_Response):
    keyid: str
    sig: str


class SignatureColumn(_Response):
    name: str
    type: str
    required: bool


class Srm(_Response):
    p_value: float | None
    flagged: bool


class Variant(_Response):
    name: str
    version: int | None
    alias: str | None
    weight: float


class VariantResult(_Response):
    name: str
    version: int | None
    weight: float
    exposures: int
    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None


class Verification(_Response):
    valid: bool
    keyid: str | None
    attestation_id: str | None
    matches_record: bool
    reason: str | None


class Version(_Response):
    model: str
    version: int
    kind: str
    model_type: str
    token_id: str | None
    description: str | None
    tags: dict[str, str]
    metrics: dict[str, float]
    metric_stds: dict[str, float]
    dataset: Dataset
    benchmark: Benchmark
    parent_version: int | None
    aliases: list[str]
    created_at: datetime
    artifact: Artifact
    contributors: list[Contributor]
    delta: dict[str, MetricDelta] | None
    deltaone: DeltaOne | None
    attestation_id: str | None
    archived_at: datetime | None = None
    signature: list[SignatureColumn] | None = None


class Warmup(_Response):
    status: str
    loaded: int
    failed: int
