"""Signed attestations of measured improvements, the service's keys, and verification."""

from __future__ import annotations

from typing import Any

from hokusai._base import Call, Page, model, path, query
from hokusai._resource import C, Resource, method, page_of, paged
from hokusai.types import Attestation, AttestationBundle, ChainVerification, Keys, Verification


def get(attestation_id: str) -> Call[Attestation]:
    """One attestation: the statement, its DSSE envelope and the EIP-712 signature if any."""
    return Call("GET", path("attestations", attestation_id), model(Attestation), repeatable=True)


def list_attestations(offset: int, name: str) -> Call[Page[Attestation]]:
    """A model's attestations, oldest first."""
    params = query(limit=500, offset=offset)
    return Call(
        "GET",
        path("models", name, "attestations"),
        page_of(Attestation),
        params=params,
        repeatable=True,
    )


def keys() -> Call[Keys]:
    """The public keys that sign attestations."""
    return Call("GET", path("attestations", "keys"), model(Keys), repeatable=True)


def verify(envelope: dict[str, Any]) -> Call[Verification]:
    """Check a DSSE envelope: signature, key, and whether it matches the stored record."""
    return Call(
        "POST",
        path("attestations", "verify"),
        model(Verification),
        json={"envelope": envelope},
        repeatable=True,
    )


def export(name: str) -> Call[AttestationBundle]:
    """A model's whole chain with the keys that signed it, for `hokusai.verify` offline
    (`bundle.model_dump(mode="json")` is the bundle's JSON)."""
    return Call(
        "GET",
        path("models", name, "attestations", "export"),
        model(AttestationBundle),
        repeatable=True,
    )


def verify_chain(name: str) -> Call[ChainVerification]:
    """Check a model's whole chain of attestations."""
    return Call(
        "GET",
        path("models", name, "attestations", "verify"),
        model(ChainVerification),
        repeatable=True,
    )


class Attestations(Resource[C]):
    get = method(get)
    list = paged(list_attestations)
    keys = method(keys)
    verify = method(verify)
    verify_chain = method(verify_chain)
    export = method(export)
