from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.core.config import Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_are_the_embedded_mode() -> None:
    embedded = settings()
    assert embedded.embedded
    assert embedded.database_url == "sqlite+aiosqlite:///.hokusai/hokusai.db"
    assert embedded.mlflow_tracking_uri == "sqlite:///.hokusai/mlflow.db"
    assert embedded.redis_url is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("cache:6379", "redis://cache:6379"),
        ("127.0.0.1:6380", "redis://127.0.0.1:6380"),
        ("redis://r:6379/2", "redis://r:6379/2"),
        ("rediss://user:pw@r.example:6380/0", "rediss://user:pw@r.example:6380/0"),
        ("", None),
    ],
)
def test_redis_url_is_normalised(given: str, expected: str | None) -> None:
    assert settings(redis_url=given).redis_url == expected


def test_redis_url_with_another_scheme_is_refused() -> None:
    with pytest.raises(ValidationError, match="redis_url"):
        settings(redis_url="http://cache:6379")


@pytest.mark.parametrize(
    "given",
    [
        "postgres://u:p@db:5432/hokusai",
        "postgresql://u:p@db:5432/hokusai",
        "postgresql+psycopg://u:p@db:5432/hokusai",
    ],
)
def test_postgres_urls_use_the_async_psycopg_driver(given: str) -> None:
    configured = settings(database_url=given)
    assert configured.database_url == "postgresql+psycopg://u:p@db:5432/hokusai"
    assert not configured.embedded


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValidationError, match="database_url"):
        settings(database_url="mysql://db/hokusai")


@pytest.mark.parametrize("key", ["secret", "hk_short", "hk_" + "x" * 31, "hk_" + "é" * 40])
def test_bootstrap_key_must_look_like_a_key(key: str) -> None:
    with pytest.raises(ValidationError, match="bootstrap_api_key"):
        settings(bootstrap_api_key=key)


def test_production_refuses_the_embedded_database() -> None:
    with pytest.raises(ValidationError, match="production"):
        settings(environment="production")


@pytest.mark.parametrize(
    ("field", "value"),
    [("cache_ttl_s", 0), ("rate_limit_per_minute", -1), ("port", 70000), ("max_body_bytes", 10)],
)
def test_out_of_range_values_are_refused(field: str, value: int) -> None:
    with pytest.raises(ValidationError, match=field):
        settings(**{field: value})


def test_environment_variables_use_the_hokusai_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOKUSAI_CACHE_TTL_S", "42")
    monkeypatch.setenv("HOKUSAI_REDIS_URL", "cache:6379")
    monkeypatch.setenv("CACHE_TTL_S", "7")
    configured = Settings(_env_file=None)  # type: ignore[call-arg]
    assert configured.cache_ttl_s == 42
    assert configured.redis_url == "redis://cache:6379"


def test_secrets_do_not_appear_in_the_settings_repr() -> None:
    key = "hk_" + "s" * 40
    assert key not in repr(settings(bootstrap_api_key=key))


def test_empty_signing_keys_mean_unset_and_bad_ones_are_refused() -> None:
    configured = settings(attestation_key="", eip712_signing_key="")
    assert configured.attestation_key is None
    assert configured.eip712_signing_key is None
    with pytest.raises(ValidationError, match="eip712_signing_key"):
        settings(eip712_signing_key="0x1234")
