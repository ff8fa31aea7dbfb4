"""Offline verification of a model's attestation chain, from a bundle the service exported
(`GET /api/v1/models/{name}/attestations/export`, or `client.attestations.export(name)`) and its
public keys alone: no network, nothing of the service's code. Needs the `[verify]` extra
(`cryptography`, `rfc8785`).

    report = hokusai.verify(bundle)                 # the keys the bundle carries
    report = hokusai.verify(bundle, keys=trusted)   # keys fetched separately (a trust root)
    assert report.valid, report.failures

Each attestation is checked for: its DSSE payload type; its id (`sha256:` of the payload, which
must be the RFC 8785 form of the statement shown); its Ed25519 signature by a known key; its link
to the previous attestation; its predicate type; and that it is about the bundle's model. Every
failure names the attestation and the kind of change."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
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
    check: str  # payload_type, id, canonical, statement, signature, chain, predicate, subject
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


def verify(
    bundle: Mapping[str, Any] | str | Path,
    *,
    keys: Mapping[str, Any] | None = None,
    recompute: Any = None,
) -> VerifyReport:
    """Check every attestation of the bundle and the links between them. `keys`: the service's
    published keys (`{"keys": [{keyid, public_key_pem}, ...]}`) to trust instead of the ones the
    bundle carries. `recompute` is not offered yet: a value other than None is refused."""
    if recompute is not None:
        raise NotImplementedError("recomputing measured values is not offered yet")
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
    return report


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
    checks.append(_signature(name, envelope, payload, keys))
    predicate = statement["predicate"]
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


def _signature(
    name: str, envelope: Mapping[str, Any], payload: bytes, keys: Mapping[str, Any]
) -> Check:
    from cryptography.exceptions import InvalidSignature

    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return Check(name, "signature", False, "unsigned")
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
            key.verify(base64.b64decode(str(signature.get("sig", ""))), message)
        except (InvalidSignature, binascii.Error, ValueError):
            problems.append(f"the signature of key {signature.get('keyid')} does not verify")
            continue
        return Check(name, "signature", True)
    return Check(name, "signature", False, "; ".join(problems))


def _public_keys(listed: Any) -> dict[str, Any]:
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
            found[str(entry.get("keyid"))] = key
    return found


def _load(bundle: Mapping[str, Any] | str | Path) -> Any:
    """A path is read as JSON; anything else is the bundle itself (checked by the caller)."""
    if isinstance(bundle, str | Path):
        return json.loads(Path(bundle).read_text())
    return bundle
