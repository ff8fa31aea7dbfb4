from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.config import Settings
from app.services.signing import Signer, key_id, verify_dsse


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_without_a_key_a_development_key_is_generated_once_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys" / "ed25519.pem"
    with caplog.at_level(logging.WARNING):
        first = Signer.from_settings(settings(attestation_key_file=str(path)))
    assert path.exists()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "development Ed25519 key" in caplog.text
    again = Signer.from_settings(settings(attestation_key_file=str(path)))
    assert again.keyid == first.keyid


def test_a_configured_pem_key_signs(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    signer = Signer.from_settings(
        settings(attestation_key=pem, attestation_key_file=str(tmp_path / "unused.pem"))
    )
    assert signer.keyid == key_id(key.public_key())
    assert not (tmp_path / "unused.pem").exists()
    envelope = signer.envelope(b'{"a":1}')
    import base64

    assert verify_dsse(
        key.public_key(), envelope["payloadType"], b'{"a":1}', envelope["signatures"][0]["sig"]
    )
    assert not verify_dsse(
        key.public_key(), envelope["payloadType"], b'{"a":2}', envelope["signatures"][0]["sig"]
    )
    assert base64.b64decode(envelope["payload"]) == b'{"a":1}'


def test_a_key_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256K1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="Ed25519"):
        Signer.from_settings(settings(attestation_key=pem))
