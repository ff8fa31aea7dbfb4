from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import Page
from app.schemas.ml_models import Request


class Signature(BaseModel):
    keyid: str
    sig: str


class Envelope(BaseModel):
    """A DSSE envelope (https://github.com/secure-systems-lab/dsse)."""

    model_config = ConfigDict(populate_by_name=True)

    payload: str = Field(description="base64 of the RFC 8785 JSON of the statement")
    payloadType: str = Field(examples=["application/vnd.in-toto+json"])  # DSSE's name
    signatures: list[Signature]


class Eip712Read(BaseModel):
    typed_data: dict[str, Any]
    signature: str
    signer: str


class AttestationRead(BaseModel):
    id: str = Field(description="sha256: of the RFC 8785 JSON of the statement")
    model: str
    version: int
    statement: dict[str, Any]
    envelope: Envelope
    eip712: Eip712Read | None
    created_at: datetime


class PublicKey(BaseModel):
    """A key that signs (or signed) attestations. An attestation is valid only when its
    `issued_at` lies in the key's validity period: from `valid_from` until `valid_until`
    (excluded; null while the key signs). A compromised key's period ends when it was
    compromised, so what it signed before stays valid and anything later is forged."""

    keyid: str = Field(description="SHA-256 of the raw 32-byte Ed25519 public key, in hex")
    algorithm: str
    public_key_pem: str
    status: Literal["active", "rotated", "compromised"]
    valid_from: datetime
    valid_until: datetime | None
    compromised_at: datetime | None


class Keys(BaseModel):
    keys: list[PublicKey]
    eip712_signer: str | None


class VerifyRequest(Request):
    envelope: Envelope


class Verification(BaseModel):
    valid: bool = Field(
        description="The signature is valid and made by a key this service published"
    )
    keyid: str | None
    attestation_id: str | None
    matches_record: bool
    reason: str | None


class ChainVerification(BaseModel):
    valid: bool
    length: int
    broken_at: str | None = Field(description="The first attestation that fails")
    reason: str | None


class AttestationBundle(BaseModel):
    """A model's whole attestation chain and the keys that signed it: what `hokusai verify`
    checks offline."""

    format: Literal["hokusai-attestation-bundle/v1"] = "hokusai-attestation-bundle/v1"
    model: str
    attestations: list[AttestationRead] = Field(description="Oldest first")
    keys: list[PublicKey]
    eip712_signer: str | None


class AttestationPage(Page[AttestationRead]):
    """A page of attestations."""
