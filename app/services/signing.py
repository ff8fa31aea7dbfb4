"""The service's signing keys: Ed25519 for DSSE envelopes, optionally secp256k1 for EIP-712."""

from __future__ import annotations

import base64
import hashlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.core.config import Settings

# Importing eth-account imports py_ecc, which raises the interpreter's recursion limit to 100,000
# for the whole process. The C JSON parser trusts that limit, so a body nested 100,000 deep would
# overflow the C stack and kill the process (SIGSEGV) before any key is checked. Put it back.
_recursion_limit = sys.getrecursionlimit()
from eth_account import Account  # noqa: E402  # imported between the two halves of the guard

sys.setrecursionlimit(_recursion_limit)

log = logging.getLogger(__name__)

PAYLOAD_TYPE = "application/vnd.in-toto+json"
EIP712_DOMAIN_NAME = "HokusaiDeltaVerifier"
EIP712_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Contributor": [
        {"name": "account", "type": "address"},
        {"name": "bps", "type": "uint16"},
    ],
    "DeltaOneAttestation": [
        {"name": "attestationDigest", "type": "bytes32"},
        {"name": "model", "type": "string"},
        {"name": "version", "type": "uint256"},
        {"name": "gainBps", "type": "int256"},
        {"name": "measured", "type": "bool"},
        {"name": "datasetHash", "type": "bytes32"},
        {"name": "contributors", "type": "Contributor[]"},
    ],
}
# Domain version 2: only measured acceptances are signed, and the typed data says so and names
# the benchmark (version 1 signed claimed numbers; a contract can refuse it by its version).
EIP712_DOMAIN_VERSION = "2"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The SHA-256 of the raw 32-byte public key, in hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_pem(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify_dsse(public_key: Ed25519PublicKey, payload_type: str, payload: bytes, sig: str) -> bool:
    try:
        public_key.verify(base64.b64decode(sig, validate=True), pae(payload_type, payload))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey
    keyid: str
    public_key_pem: str
    eip712_key: str | None
    eip712_address: str | None
    chain_id: int
    verifying_contract: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        private_key = _ed25519_key(settings)
        eip712_key = (
            settings.eip712_signing_key.get_secret_value() if settings.eip712_signing_key else None
        )
        return cls(
            private_key=private_key,
            keyid=key_id(private_key.public_key()),
            public_key_pem=public_pem(private_key.public_key()),
            eip712_key=eip712_key,
            eip712_address=Account.from_key(eip712_key).address if eip712_key else None,
            chain_id=settings.eip712_chain_id,
            verifying_contract=settings.eip712_verifying_contract,
        )

    def envelope(self, payload: bytes) -> dict[str, Any]:
        """A DSSE envelope over `payload`, signed with the Ed25519 key."""
        signature = self.private_key.sign(pae(PAYLOAD_TYPE, payload))
        return {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"keyid": self.keyid, "sig": base64.b64encode(signature).decode()}],
        }

    def typed_data(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "types": EIP712_TYPES,
            "primaryType": "DeltaOneAttestation",
            "domain": {
                "name": EIP712_DOMAIN_NAME,
                "version": EIP712_DOMAIN_VERSION,
                "chainId": self.chain_id,
                "verifyingContract": self.verifying_contract,
            },
            "message": message,
        }

    def sign_eip712(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """EIP-712 typed data and its signature, when a secp256k1 key is configured."""
        if self.eip712_key is None:
            return None
        typed_data = self.typed_data(message)
        signed = Account.sign_typed_data(self.eip712_key, full_message=typed_data)
        return {
            "typed_data": typed_data,
            "signature": "0x" + signed.signature.hex().removeprefix("0x"),
            "signer": self.eip712_address,
        }


def _ed25519_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.attestation_key is not None:
        return _parse(settings.attestation_key.get_secret_value().encode())
    path = Path(settings.attestation_key_file)
    if path.exists():
        return _parse(path.read_bytes())
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    log.warning(
        "no attestation key configured: generated a development Ed25519 key at %s; "
        "set HOKUSAI_ATTESTATION_KEY (or keep that file) so signatures stay verifiable",
        path,
    )
    return key


def _parse(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the attestation key must be an Ed25519 private key (PEM)")
    return key
