"""Attestations: an in-toto Statement v1 per improved version, identified by
the SHA-256 of its RFC 8785 JSON, signed in a DSSE envelope with Ed25519, chained per model, and
for accepted DeltaOnes also signed as EIP-712 typed data.

Rules: docs/reference/specification.md#attestations."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import rfc8785
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AttestationNotFound, SigningKeyNotFound, SigningKeyRetired
from app.core.vocabulary import Basis
from app.db.base import utcnow
from app.db.models import Attestation, MlModel, ModelVersion, SigningKey, VersionContributor
from app.db.repositories.attestations import AttestationRepository
from app.rules.contributors import checksummed
from app.rules.deltaone import Decision
from app.schemas.attestations import (
    AttestationBundle,
    AttestationRead,
    ChainVerification,
    Eip712Read,
    Envelope,
    Keys,
    PublicKey,
    Verification,
)
from app.services.signing import PAYLOAD_TYPE, Signer, load_public_pem, verify_dsse

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://hokusai.ai/attestations/model-improvement/v1"  # claimed numbers
MAX_BUNDLE = 100_000  # attestations in one export
# Measured on a held benchmark: the decision carries the measurement.
MEASURED_PREDICATE_TYPE = "https://hokusai.ai/attestations/model-improvement/v2"


def canonical(document: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON."""
    return bytes(rfc8785.dumps(document))


def digest_of(payload: bytes) -> str:
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def decision_record(decision: Decision) -> dict[str, Any]:
    record = asdict(decision)
    record["reason"] = decision.reason.value
    record["basis"] = decision.basis.value
    record["evaluated_at"] = rfc3339(decision.evaluated_at)
    return record


def statement(
    model: MlModel,
    version: ModelVersion,
    parent: ModelVersion,
    contributors: Sequence[VersionContributor],
    decision: Decision,
    previous: str | None,
    issued_at: datetime,
) -> dict[str, Any]:
    metric = version.benchmark_metric
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"models/{model.name}/versions/{version.version}",
                "digest": {"sha256": version.artifact_digest.removeprefix("sha256:")},
            }
        ],
        "predicateType": (
            MEASURED_PREDICATE_TYPE if decision.basis == Basis.MEASURED else PREDICATE_TYPE
        ),
        "predicate": {
            "model": model.name,
            "version": version.version,
            "parent": {"version": parent.version, "artifact_digest": parent.artifact_digest},
            "benchmark": {
                "metric": metric,
                "direction": version.benchmark_direction,
                "family": version.benchmark_family,
                "dataset_hash": version.dataset_hash,
                "samples": version.dataset_num_samples,
            },
            "values": {"parent": parent.metrics[metric], "candidate": version.metrics[metric]},
            "delta": (version.delta or {}).get(metric),
            "decision": decision_record(decision),
            "contributors": [
                {"address": checksummed(c.address), "bps": c.weight_bps}
                for c in sorted(contributors, key=lambda c: c.address)
            ],
            "previous_attestation": previous,
            "issued_at": rfc3339(issued_at),
        },
    }


def gain_bps(gain_pp: float | None) -> int:
    """Percentage points to basis points (1 pp = 100 bps), half-even."""
    if gain_pp is None:
        return 0
    return int((Decimal(repr(gain_pp)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


class AttestationService:
    def __init__(self, session: AsyncSession, signer: Signer) -> None:
        self.attestations = AttestationRepository(session)
        self.signer = signer

    async def signing_key(self, now: datetime) -> SigningKey:
        """The configured key's record, published (valid from now) the first time it signs, so
        its signatures stay verifiable after rotation. Its row is share-locked until the caller
        commits: a rotation or retirement waits for what is being signed. A key whose period
        has ended signs nothing (`signing_key_retired`)."""
        key = await self.attestations.key(self.signer.keyid, lock="share")
        if key is None:
            await self.attestations.add_key(
                SigningKey(
                    keyid=self.signer.keyid,
                    algorithm="ed25519",
                    public_key_pem=self.signer.public_key_pem,
                    created_at=now,
                )
            )
            key = await self.attestations.key(self.signer.keyid, lock="share")
            assert key is not None
        if key.valid_until is not None and now >= key.valid_until:
            raise SigningKeyRetired(
                f"The configured attestation key {key.keyid} is "
                f"{'compromised' if key.compromised_at else 'rotated out'} since "
                f"{rfc3339(key.valid_until)}; configure its successor (docs/how-to/operate.md)",
                retry_after=60,
            )
        return key

    async def rotate(self) -> list[PublicKey]:
        """Publish the configured key, valid from now, and end every other key's period now:
        run once every replica signs with the new key."""
        now = utcnow()
        await self.signing_key(now)
        for key in await self.attestations.keys(lock=True):
            if key.keyid != self.signer.keyid and key.valid_until is None:
                key.valid_until = now
        return list((await self._public_keys()).values())

    async def retire(self, keyid: str, compromised_at: datetime | None) -> PublicKey:
        """End a key's period now or, after a compromise, at the moment it was compromised:
        what it signed before stays valid, anything from then on fails verification."""
        key = await self.attestations.key(keyid, lock="update")
        if key is None:
            raise SigningKeyNotFound(f"No signing key {keyid}")
        end = compromised_at or utcnow()
        if key.valid_until is None or end < key.valid_until:
            key.valid_until = end
        if compromised_at is not None:
            key.compromised_at = min(compromised_at, key.compromised_at or compromised_at)
        return _public_key(key)

    async def attest(
        self,
        model: MlModel,
        version: ModelVersion,
        parent: ModelVersion,
        contributors: Sequence[VersionContributor],
        decision: Decision,
    ) -> Attestation:
        """Sign the version's statement, chained to the model's latest attestation, and add it
        to the session (written with the version, in the caller's flush). The caller holds the
        model's row lock, so the chain cannot fork."""
        now = utcnow()
        await self.signing_key(now)
        head = await self.attestations.latest_for_model(model.id)
        document = statement(
            model, version, parent, contributors, decision, head.id if head else None, now
        )
        payload = canonical(document)
        attestation_id = digest_of(payload)
        eip712 = None
        if decision.accepted and decision.basis == Basis.MEASURED:  # what a payout contract acts on
            eip712 = self.signer.sign_eip712(
                {
                    "attestationDigest": bytes.fromhex(attestation_id.removeprefix("sha256:")),
                    "model": model.name,
                    "version": version.version,
                    "gainBps": gain_bps(decision.gain_pp),
                    "measured": True,
                    "datasetHash": bytes.fromhex(version.dataset_hash.removeprefix("sha256:")),
                    "contributors": [
                        {"account": checksummed(c.address), "bps": c.weight_bps}
                        for c in sorted(contributors, key=lambda c: c.address)
                    ],
                }
            )
            if eip712 is not None:
                message = eip712["typed_data"]["message"]
                for field in ("attestationDigest", "datasetHash"):
                    message[field] = "0x" + message[field].hex()
        attestation = Attestation(
            id=attestation_id,
            model_id=model.id,
            version_id=version.id,
            previous_id=head.id if head else None,
            payload=payload.decode(),
            envelope=self.signer.envelope(payload),
            eip712=eip712,
            created_at=now,
        )
        await self.attestations.add(attestation)
        return attestation

    async def get(self, attestation_id: str) -> AttestationRead:
        attestation = await self.attestations.get(attestation_id)
        if attestation is None:
            raise AttestationNotFound(f"No attestation {attestation_id}")
        return (await self._read([attestation]))[0]

    async def list_for_model(
        self, model: MlModel, *, limit: int, offset: int
    ) -> tuple[list[AttestationRead], int]:
        rows, total = await self.attestations.page_for_model(model.id, limit=limit, offset=offset)
        return await self._read(rows), total

    async def export(self, model: MlModel) -> AttestationBundle:
        """The model's whole chain, oldest first, with the public keys that signed it."""
        rows, _ = await self.attestations.page_for_model(model.id, limit=MAX_BUNDLE, offset=0)
        return AttestationBundle(
            model=model.name,
            attestations=await self._read(rows),
            keys=list((await self._public_keys()).values()),
            eip712_signer=self.signer.eip712_address,
        )

    async def _read(self, rows: Sequence[Attestation]) -> list[AttestationRead]:
        versions = await self.attestations.versions_of(rows)
        return [
            AttestationRead(
                id=row.id,
                model=versions[row.id][0],
                version=versions[row.id][1],
                statement=json.loads(row.payload),
                envelope=Envelope.model_validate(row.envelope),
                eip712=Eip712Read.model_validate(row.eip712) if row.eip712 else None,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def _public_keys(self) -> dict[str, PublicKey]:
        """Every key that signed something here, and the current one (valid from now, if it
        has signed nothing yet)."""
        keys = {k.keyid: _public_key(k) for k in await self.attestations.keys()}
        if self.signer.keyid not in keys:
            keys[self.signer.keyid] = PublicKey(
                keyid=self.signer.keyid,
                algorithm="ed25519",
                public_key_pem=self.signer.public_key_pem,
                status="active",
                valid_from=utcnow(),
                valid_until=None,
                compromised_at=None,
            )
        return keys

    async def keys(self) -> Keys:
        return Keys(
            keys=list((await self._public_keys()).values()),
            eip712_signer=self.signer.eip712_address,
        )

    async def verify(self, envelope: Envelope) -> Verification:
        """Is the envelope signed by one of our keys, and is it what we recorded?"""
        try:
            payload = base64.b64decode(envelope.payload, validate=True)
        except (binascii.Error, ValueError):
            return Verification(
                valid=False,
                keyid=None,
                attestation_id=None,
                matches_record=False,
                reason="payload_not_base64",
            )
        attestation_id = digest_of(payload)
        record = await self.attestations.get(attestation_id)
        matches = record is not None and record.payload.encode() == payload
        keyid: str | None = None
        signed = False
        reason: str | None = "unknown_key"
        if envelope.payloadType != PAYLOAD_TYPE:
            reason = "wrong_payload_type"
        else:
            keys = await self._public_keys()
            ours = next((s for s in envelope.signatures if s.keyid in keys), None)
            if ours is not None:
                keyid = ours.keyid
                key = load_public_pem(keys[keyid].public_key_pem)
                signed = verify_dsse(key, PAYLOAD_TYPE, payload, ours.sig)
                reason = "bad_signature" if not signed else None if matches else "not_in_record"
                if signed and (outside := _outside_period(keys[keyid], payload)) is not None:
                    signed, reason = False, outside
        return Verification(
            valid=signed,
            keyid=keyid,
            attestation_id=attestation_id,
            matches_record=matches,
            reason=reason,
        )

    async def verify_chain(self, model: MlModel) -> ChainVerification:
        """Walk the model's chain from its first attestation: each must be canonical JSON whose
        digest is its id, signed by a published key, and name the one before it."""
        rows = list(await self.attestations.for_model(model.id))
        keys = await self._public_keys()
        by_previous = {row.previous_id: row for row in rows}
        seen: set[str] = set()
        previous: str | None = None
        while len(seen) < len(rows):
            row = by_previous.get(previous)
            if row is None:  # a fork or a missing link: the first row the walk cannot reach
                stray = next(r for r in rows if r.id not in seen)
                return ChainVerification(
                    valid=False, length=len(rows), broken_at=stray.id, reason="chain_link_missing"
                )
            problem = _check(row, previous, keys)
            if problem is not None:
                return ChainVerification(
                    valid=False, length=len(rows), broken_at=row.id, reason=problem
                )
            seen.add(row.id)
            previous = row.id
        return ChainVerification(valid=True, length=len(rows), broken_at=None, reason=None)


def _public_key(key: SigningKey) -> PublicKey:
    return PublicKey(
        keyid=key.keyid,
        algorithm=key.algorithm,
        public_key_pem=key.public_key_pem,
        status=(
            "compromised"
            if key.compromised_at is not None
            else "rotated"
            if key.valid_until is not None and key.valid_until <= utcnow()
            else "active"
        ),
        valid_from=key.created_at,
        valid_until=key.valid_until,
        compromised_at=key.compromised_at,
    )


def _outside_period(key: PublicKey, payload: bytes) -> str | None:
    """Why the statement's issue time lies outside the key's validity period, if it does."""
    try:
        issued = datetime.fromisoformat(json.loads(payload)["predicate"]["issued_at"])
    except (ValueError, KeyError, TypeError):
        return "issue_time_missing"
    if key.compromised_at is not None and issued >= key.compromised_at:
        return "key_compromised"
    if issued < key.valid_from or (key.valid_until is not None and issued >= key.valid_until):
        return "key_not_valid_at_issue"
    return None


def _check(row: Attestation, previous: str | None, keys: dict[str, PublicKey]) -> str | None:
    payload = row.payload.encode()
    if digest_of(payload) != row.id:
        return "digest_mismatch"
    try:
        document = json.loads(payload)
    except ValueError:
        return "payload_not_json"
    if canonical(document) != payload:
        return "payload_not_canonical"
    if document.get("predicate", {}).get("previous_attestation") != previous:
        return "previous_attestation_mismatch"
    try:
        signed = base64.b64decode(row.envelope["payload"])
        signature = row.envelope["signatures"][0]
    except (KeyError, IndexError, TypeError, binascii.Error):
        return "envelope_malformed"
    if signed != payload:
        return "envelope_payload_mismatch"
    key = keys.get(signature.get("keyid"))
    if key is None:
        return "unknown_key"
    if not verify_dsse(
        load_public_pem(key.public_key_pem), PAYLOAD_TYPE, payload, signature.get("sig", "")
    ):
        return "bad_signature"
    return _outside_period(key, payload)
