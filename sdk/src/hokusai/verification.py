"""Offline verification of a model's attestation chain, from a bundle the service exported
(`GET /api/v1/models/{name}/attestations/export`, or `client.attestations.export(name)`) and its
public keys alone: no network, nothing of the service's code. Needs the `[verify]` extra
(`cryptography`, `rfc8785`).

    report = hokusai.verify(bundle)                 # the keys the bundle carries
    report = hokusai.verify(bundle, keys=trusted)   # keys fetched separately (a trust root)
    assert report.valid, report.failures

Each attestation is checked for: its DSSE payload type; its id (`sha256:` of the payload, which
must be the RFC 8785 form of the statement shown); its Ed25519 signature by a known key; that its
issue time lies in that key's validity period (a rotated key signs nothing after its rotation, a
compromised one nothing from the moment it was compromised); its link to the previous
attestation; its predicate type; and that it is about the bundle's model. Every failure names the
attestation and the kind of change.

With `recompute=Recompute(benchmark, parent, candidate)` (the benchmark file and the two MLflow
model folders; needs the `[mlflow]` extra too), the measured attestation about the candidate is
re-run: the folders' digests against the ones signed, the benchmark's hash, both models'
predictions on every row, the metric and the paired bootstrap (`hokusai.measure`, the code the
service ran), each signed number, and whether the decision holds. This loads and runs both
models in this process: run it where you would run their code."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPES = {
    "https://hokusai.ai/attestations/model-improvement/v1": "claimed",
    "https://hokusai.ai/attestations/model-improvement/v2": "measured",
}


@dataclass(frozen=True)
class Check:
    attestation: str  # its id as the bundle gives it, or "bundle"
    # payload_type, id, canonical, statement, signature, key_validity, chain, predicate, subject
    check: str
    ok: bool
    detail: str = ""


@dataclass
class VerifyReport:
    model: str
    attestations: int
    checks: list[Check] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "attestations": self.attestations,
            "valid": self.valid,
            "checks": [asdict(check) for check in self.checks],
        }


@dataclass(frozen=True)
class Recompute:
    """What re-running a measurement needs: the benchmark file (Parquet or CSV) and the
    parent's and the candidate's MLflow model folders. `label_column`: when the attestation
    does not name it (it does from service 0.2 on)."""

    benchmark: str | Path
    parent: str | Path
    candidate: str | Path
    label_column: str | None = None


def verify(
    bundle: Mapping[str, Any] | str | Path,
    *,
    keys: Mapping[str, Any] | None = None,
    recompute: Recompute | None = None,
) -> VerifyReport:
    """Check every attestation of the bundle and the links between them. `keys`: the service's
    published keys (`{"keys": [{keyid, public_key_pem, valid_from, ...}, ...]}`) to trust
    instead of the ones the bundle carries. `recompute`: also re-run the measurement of the
    attestation about `recompute.candidate` (see the module's documentation)."""
    document = _load(bundle)
    if not isinstance(document, Mapping) or not isinstance(document.get("attestations"), list):
        report = VerifyReport(model="", attestations=0)
        report.checks.append(Check("bundle", "bundle", False, "not an attestation bundle"))
        return report
    trusted = _public_keys((keys or document).get("keys", []))
    items = document["attestations"]
    report = VerifyReport(model=str(document.get("model", "")), attestations=len(items))
    if not items:
        report.checks.append(Check("bundle", "attestations", False, "the bundle has none"))
        return report
    previous: str | None = None
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("envelope"), Mapping):
            report.checks.append(Check(f"#{index}", "attestation", False, "not an attestation"))
            previous = None
            continue
        report.checks.extend(_check(item, previous, trusted, report.model))
        previous = item.get("id")
    if recompute is not None:
        report.checks.extend(_recomputed(items, recompute))
    return report


def _recomputed(items: list[Any], recompute: Recompute) -> list[Check]:
    """The checks of re-running the measurement the attestation about the candidate signed."""
    from hokusai import measure
    from hokusai.datasets import dataset_hash

    parent_dir, candidate_dir = _model_root(recompute.parent), _model_root(recompute.candidate)
    parent_digest = measure.artifact_digest(parent_dir)
    candidate_digest = measure.artifact_digest(candidate_dir)
    found = [
        item
        for item in items
        if isinstance(item, Mapping)
        and isinstance(item.get("statement"), Mapping)
        and _subject_digest(item["statement"]) == candidate_digest
    ]
    if not found:
        return [
            Check(
                "recompute",
                "recompute.candidate",
                False,
                f"no attestation in the bundle is about the candidate folder "
                f"({candidate_digest}): a different model, or a changed file",
            )
        ]
    item = found[-1]
    name, predicate = str(item.get("id")), item["statement"].get("predicate", {})
    decision = predicate.get("decision") or {}
    checks = [
        _same(
            name,
            "recompute.parent",
            predicate.get("parent", {}).get("artifact_digest"),
            parent_digest,
            "the parent folder's digest",
        ),
    ]
    measurement = decision.get("measurement")
    if decision.get("basis") != "measured" or not isinstance(measurement, Mapping):
        return [
            *checks,
            Check(name, "recompute.basis", False, "claimed numbers: nothing was measured"),
        ]
    signed_hash = measurement.get("dataset_hash")
    actual_hash = dataset_hash(recompute.benchmark)
    checks.append(_same(name, "recompute.benchmark", signed_hash, actual_hash, "its hash"))
    if not all(check.ok for check in checks):
        return checks
    if parent_digest == candidate_digest:  # measured as such: nothing was run
        return [*checks, _decision_check(name, decision, "identical_artifact")]
    benchmark = predicate.get("benchmark", {})
    label = recompute.label_column or measurement.get("label_column")
    if not label:
        return [
            *checks,
            Check(name, "recompute.label_column", False, "give the benchmark's label column"),
        ]
    table = measure.read_benchmark(recompute.benchmark)
    if label not in table.columns:
        return [
            *checks,
            Check(name, "recompute.label_column", False, f"the benchmark has no column {label!r}"),
        ]
    labels = table[label].to_numpy()
    features = table.drop(columns=[label])
    proportion = benchmark.get("family") == "proportion"
    try:
        m = measure.metric(
            str(benchmark.get("metric")), sorted(set(labels.tolist())) if proportion else None
        )
    except measure.MeasurementError as exc:  # a statement naming a metric nobody measures
        return [*checks, Check(name, "recompute.metric", False, str(exc))]
    before = _answers(parent_dir, features)
    after = _answers(candidate_dir, features)
    try:
        result = measure.paired_bootstrap(
            m,
            labels,
            measure.prepared(m, labels, before),
            measure.prepared(m, labels, after),
            higher_is_better=benchmark.get("direction") == "higher_is_better",
            proportion=proportion,
            seed=measure.seed(parent_digest, actual_hash),
            draws=int(measurement.get("bootstrap", {}).get("draws", measure.DEFAULT_DRAWS)),
        )
    except measure.MeasurementError as exc:
        return [*checks, Check(name, "recompute.measurement", False, f"{exc.code}: {exc}")]
    mine = {
        **result.describe(),
        "predictions_sha256": {
            "parent": measure.predictions_digest(before),
            "candidate": measure.predictions_digest(after),
        },
    }
    for field_name, value in mine.items():
        checks.append(
            _same(name, f"recompute.{field_name}", measurement.get(field_name), value, field_name)
        )
    no_change = mine["predictions_sha256"]["parent"] == mine["predictions_sha256"]["candidate"]
    expected = _expected_reason(decision, result, proportion, no_change)
    checks.append(_decision_check(name, decision, expected))
    return checks


def _expected_reason(
    decision: Mapping[str, Any], result: Any, proportion: bool, no_change: bool
) -> str:
    """The DeltaOne reason the recomputed numbers give (the specification's order). A cooldown
    or a dataset mismatch cannot be recomputed from the benchmark: taken as signed."""
    if no_change:
        return "no_change"
    if result.rows < int(decision.get("min_samples", 0)):
        return "insufficient_samples"
    if decision.get("reason") in ("dataset_hash_mismatch", "cooldown_active"):
        return str(decision["reason"])
    gain, low = _exact(result.gain), _exact(result.ci_low)
    if not proportion:
        scale = abs(_exact(result.parent_value))
        if not scale:
            return "delta_below_threshold"
        gain, low = gain * 100 / scale, low * 100 / scale
    if gain < _exact(decision.get("threshold_pp", 1.0)):
        return "delta_below_threshold"
    if low <= 0:
        return "not_statistically_significant"
    return "accepted"


def _exact(value: Any) -> Decimal:
    """The decimal a float was written as (its shortest repr): how the service compares."""
    return Decimal(repr(float(value)))


def _decision_check(name: str, decision: Mapping[str, Any], expected: str) -> Check:
    signed = decision.get("reason")
    return Check(
        name,
        "recompute.decision",
        signed == expected and bool(decision.get("accepted")) == (expected == "accepted"),
        f"signed {signed!r}, the recomputed numbers give {expected!r}",
    )


def _same(name: str, check: str, signed: Any, recomputed: Any, what: str) -> Check:
    return Check(
        name, check, signed == recomputed, f"{what}: signed {signed!r}, recomputed {recomputed!r}"
    )


def _subject_digest(statement: Mapping[str, Any]) -> str | None:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects or not isinstance(subjects[0], Mapping):
        return None
    sha = (subjects[0].get("digest") or {}).get("sha256")
    return f"sha256:{sha}" if isinstance(sha, str) else None


def _model_root(folder: str | Path) -> Path:
    """The folder holding `MLmodel`: the one given, or its one subfolder (an unpacked archive)."""
    path = Path(folder)
    if (path / "MLmodel").is_file():
        return path
    inner = [p for p in path.iterdir() if not p.name.startswith(".")] if path.is_dir() else []
    if len(inner) == 1 and (inner[0] / "MLmodel").is_file():
        return inner[0]
    raise ValueError(f"{folder} is not an MLflow model folder (no MLmodel file)")


def _answers(model_dir: Path, features: Any) -> list[Any]:
    """The model's answers for every row, as the service's runner gives them: the signature's
    columns (double columns as float64), in chunks, one JSON value per row."""
    import mlflow.pyfunc

    from hokusai import measure

    model = mlflow.pyfunc.load_model(str(model_dir))
    schema = model.metadata.get_input_schema()
    rows = features
    if schema is not None and not schema.is_tensor_spec() and schema.has_input_names():
        rows = features[[spec.name for spec in schema.inputs]].copy()
        for spec in schema.inputs:
            if spec.type.name in ("double", "float"):  # the runner sends these as float64
                rows[spec.name] = rows[spec.name].astype("float64")
    answers: list[Any] = []
    for start in range(0, len(rows), measure.CHUNK_ROWS):
        chunk = rows.iloc[start : start + measure.CHUNK_ROWS].reset_index(drop=True)
        output = model.predict(chunk)
        if hasattr(output, "to_dict") and hasattr(output, "columns"):
            values = output.to_dict(orient="records")
        else:
            values = output.tolist() if hasattr(output, "tolist") else list(output)
        answers.extend(json.loads(json.dumps(values)))
    return answers


def _check(
    item: Mapping[str, Any], previous: str | None, keys: Mapping[str, Any], model: str
) -> list[Check]:
    import rfc8785

    name = str(item.get("id"))
    envelope = item["envelope"]
    checks = [
        Check(
            name,
            "payload_type",
            envelope.get("payloadType") == PAYLOAD_TYPE,
            f"payloadType is {envelope.get('payloadType')!r}",
        )
    ]
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
        statement = json.loads(payload)
    except (binascii.Error, ValueError, RecursionError) as exc:
        return [*checks, Check(name, "payload", False, f"the payload is not JSON: {exc}")]
    if not isinstance(statement, dict) or not isinstance(statement.get("predicate"), dict):
        return [*checks, Check(name, "payload", False, "the payload is not a statement")]
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    checks.append(
        Check(name, "id", digest == name, f"the payload's digest is {digest}: payload changed")
    )
    canonical = bytes(rfc8785.dumps(statement)) == payload
    checks.append(Check(name, "canonical", canonical, "the payload is not RFC 8785 JSON"))
    shown = item.get("statement")
    checks.append(
        Check(
            name,
            "statement",
            shown == statement,
            "the statement shown differs from the signed payload: statement edited",
        )
    )
    signature, key = _signature(name, envelope, payload, keys)
    checks.append(signature)
    predicate = statement["predicate"]
    if key is not None:
        checks.append(_key_validity(name, key, predicate.get("issued_at")))
    linked = predicate.get("previous_attestation")
    checks.append(
        Check(
            name,
            "chain",
            linked == previous,
            f"links to {linked}, the bundle's previous is {previous}: an attestation was "
            "removed, added or reordered",
        )
    )
    kind = PREDICATE_TYPES.get(str(statement.get("predicateType")))
    checks.append(
        Check(name, "predicate", kind is not None, f"predicate {statement.get('predicateType')}")
    )
    checks.append(
        Check(
            name,
            "subject",
            predicate.get("model") == model,
            f"about model {predicate.get('model')!r}, not {model!r}",
        )
    )
    return [
        check if not check.ok else Check(check.attestation, check.check, True) for check in checks
    ]


@dataclass(frozen=True)
class _Key:
    keyid: str
    public_key: Any
    valid_from: datetime | None
    valid_until: datetime | None
    compromised_at: datetime | None


def _signature(
    name: str, envelope: Mapping[str, Any], payload: bytes, keys: Mapping[str, _Key]
) -> tuple[Check, _Key | None]:
    """The signature check, and the key whose signature verified."""
    from cryptography.exceptions import InvalidSignature

    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return Check(name, "signature", False, "unsigned"), None
    problems = []
    for signature in signatures:
        if not isinstance(signature, Mapping):
            problems.append("a signature that is not an object")
            continue
        key = keys.get(str(signature.get("keyid")))
        if key is None:
            problems.append(f"signed by key {signature.get('keyid')}, which is not trusted")
            continue
        kind = str(envelope.get("payloadType", "")).encode()
        message = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
        try:
            key.public_key.verify(base64.b64decode(str(signature.get("sig", ""))), message)
        except (InvalidSignature, binascii.Error, ValueError):
            problems.append(f"the signature of key {signature.get('keyid')} does not verify")
            continue
        return Check(name, "signature", True), key
    return Check(name, "signature", False, "; ".join(problems)), None


def _key_validity(name: str, key: _Key, issued_at: Any) -> Check:
    """The statement's issue time against the signing key's validity period. Keys published
    without a period (before periods existed) are valid at any time."""
    issued = _moment(issued_at)
    if issued is None:
        return Check(name, "key_validity", False, "the statement has no valid issued_at")
    if key.compromised_at is not None and issued >= key.compromised_at:
        return Check(
            name,
            "key_validity",
            False,
            f"issued {issued_at}, after key {key.keyid} was compromised "
            f"({key.compromised_at.isoformat()}): forged or signed with a stolen key",
        )
    if (key.valid_from is not None and issued < key.valid_from) or (
        key.valid_until is not None and issued >= key.valid_until
    ):
        period = (
            f"{key.valid_from.isoformat() if key.valid_from else '...'} to "
            f"{key.valid_until.isoformat() if key.valid_until else 'now'}"
        )
        return Check(
            name,
            "key_validity",
            False,
            f"issued {issued_at}, outside key {key.keyid}'s validity period ({period})",
        )
    return Check(name, "key_validity", True)


def _moment(value: Any) -> datetime | None:
    """An RFC 3339 time with its zone (or a zoned datetime), or None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _public_keys(listed: Any) -> dict[str, _Key]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    found = {}
    for entry in listed if isinstance(listed, list) else []:
        if not isinstance(entry, Mapping):
            continue
        try:
            key = load_pem_public_key(str(entry["public_key_pem"]).encode())
        except (KeyError, ValueError, TypeError):
            continue
        if isinstance(key, Ed25519PublicKey):
            keyid = str(entry.get("keyid"))
            found[keyid] = _Key(
                keyid,
                key,
                _moment(entry.get("valid_from")),
                _moment(entry.get("valid_until")),
                _moment(entry.get("compromised_at")),
            )
    return found


def _load(bundle: Mapping[str, Any] | str | Path) -> Any:
    """A path is read as JSON; anything else is the bundle itself (checked by the caller)."""
    if isinstance(bundle, str | Path):
        return json.loads(Path(bundle).read_text())
    return bundle
