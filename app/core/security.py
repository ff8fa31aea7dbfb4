"""API key material: generation, hashing, constant-time comparison, scopes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

KEY_PREFIX = "hk_"
LOOKUP_LENGTH = 12


class Scope(StrEnum):
    READ = "read"
    PREDICT = "predict"
    WRITE = "write"
    ADMIN = "admin"


# A key holding the left scope may do everything the right scopes allow.
IMPLIED_SCOPES: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.PREDICT: frozenset({Scope.PREDICT}),
    Scope.WRITE: frozenset({Scope.WRITE, Scope.READ}),
    Scope.ADMIN: frozenset(Scope),
}


def effective_scopes(scopes: list[str]) -> frozenset[Scope]:
    return frozenset().union(*(IMPLIED_SCOPES[Scope(s)] for s in scopes))


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_lookup(key: str) -> str:
    """The non-secret part stored in clear to find the row; the rest is only ever hashed."""
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_LENGTH]


def hash_key(key: str) -> str:
    # The key carries 256 random bits, so a fast hash is safe; no salt or KDF is needed.
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
