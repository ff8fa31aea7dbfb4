"""Settings, read from `HOKUSAI_*` environment variables (and `.env`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(".hokusai")
API_KEY_PATTERN = re.compile(r"^hk_[A-Za-z0-9_-]{32,128}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOKUSAI_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "production", "test"] = Field(
        "development", description="production refuses the embedded SQLite database"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="JSON logs on stderr, each with the request id"
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans and metrics, sent to the global providers "
        "(for example under opentelemetry-instrument); off, nothing is checked per request",
    )
    host: str = Field("127.0.0.1", description="Address `serve` listens on")
    port: int = Field(8000, ge=1, le=65535, description="Port `serve` listens on")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes `serve` runs on the port; metrics are summed across them, "
        "migrations run once before they start (needs a Postgres database)",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (comma-"
        "separated addresses or networks, `*` for any); empty: none, the peer is the client",
    )
    http_max_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request head (request line and headers); past it, 431 and the "
        "connection is closed",
    )
    http_max_headers: int = Field(
        100, ge=10, le=10_000, description="Most header fields in a request; past it, 431"
    )
    http_header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time a client has to send a request's whole head; past it, 408 and closed",
    )
    http_body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest pause in a request body while the service waits for it; past it, "
        "408 and closed",
    )

    database_url: str = Field(
        f"sqlite+aiosqlite:///{DATA_DIR}/hokusai.db",
        description="postgresql://user:pass@host:5432/db; default: embedded SQLite",
    )
    database_pool_size: int = Field(
        20, ge=1, description="Connections kept (as many more on burst)"
    )
    database_timeout_s: float = Field(
        3.0, gt=0, description="Connect and pool wait timeout; past it, 503"
    )
    database_statement_timeout_s: float = Field(
        30.0,
        ge=0,
        description="Postgres cancels a statement that runs longer (statement_timeout): 503; 0 "
        "for none. Migrations run without it",
    )
    database_lock_timeout_s: float = Field(
        5.0,
        ge=0,
        description="Postgres gives up waiting on a row or table lock after this (lock_timeout): "
        "503; 0 for none",
    )
    database_idle_in_transaction_timeout_s: float = Field(
        60.0,
        ge=0,
        description="Postgres ends a session left idle inside a transaction this long "
        "(idle_in_transaction_session_timeout), so a stuck request cannot hold locks; 0 for none",
    )

    redis_url: str | None = Field(
        None,
        description="redis://, rediss:// (with ssl_ca_certs, ssl_certfile, ssl_keyfile, "
        "ssl_cert_reqs, ssl_check_hostname), unix:// or bare host:port; unset: caching off",
    )
    redis_prefix: str = Field(
        "hokusai", pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Prefix of every Redis key"
    )
    redis_timeout_s: float = Field(
        0.25,
        gt=0,
        description="Time Redis has to connect or answer a call; past it, a cache miss, and the "
        "connection is opened again",
    )

    mlflow_tracking_uri: str = Field(
        f"sqlite:///{DATA_DIR}/mlflow.db",
        description="MLflow server (http://mlflow:5000); default: a local store, no server",
    )
    mlflow_artifact_root: str = Field(
        str(DATA_DIR / "mlartifacts"), description="Artifact folder of the local store"
    )
    mlflow_timeout_s: float = Field(
        30.0, gt=0, description="Per MLflow call; past it, 503 registry_unavailable"
    )
    mlflow_workers: int = Field(8, ge=1, description="Worker threads for the MLflow client")
    mlflow_breaker_failures: int = Field(
        3, ge=1, description="MLflow network errors in a row that open the circuit (instant 503s)"
    )
    mlflow_probe_timeout_s: float = Field(
        2.0,
        gt=0,
        description="After a call times out, how long MLflow's /health has to answer: if it does "
        "not, the circuit opens at once; if it does, the slow call was its own (a large "
        "artifact), not an outage",
    )
    mlflow_breaker_cooldown_s: float = Field(
        10.0, gt=0, description="How long an open circuit answers 503 before MLflow is tried again"
    )

    ready_timeout_s: float = Field(2.0, gt=0, description="Per dependency check of /ready")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 responses")

    cache_ttl_s: int = Field(300, ge=1, description="Lifetime of a cached prediction")
    redis_breaker_failures: int = Field(
        3, ge=1, description="Redis errors in a row that open the circuit (no Redis calls)"
    )
    redis_breaker_cooldown_s: float = Field(
        5.0, gt=0, description="How long an open circuit skips Redis before trying again"
    )
    resolution_cache_ttl_s: float = Field(
        30.0,
        ge=0,
        description="How long a replica may reuse a resolved alias while Redis says it has not "
        "moved; 0 reads Postgres every call",
    )
    prediction_batch_limit: int = Field(1000, ge=1, description="Most rows in one predict call")
    model_cache_size: int = Field(8, ge=1, description="Loaded models kept in memory (LRU)")
    prediction_batching: bool = Field(
        True,
        description="Gather the uncached rows of concurrent requests for one model version into "
        "one model call while the model is busy (an idle model is called at once)",
    )
    prediction_batch_max_rows: int = Field(
        1000, ge=1, description="Most rows in one gathered model call"
    )
    prediction_batch_max_wait_ms: float = Field(
        2,
        ge=0,
        le=1000,
        description="How long a gathered call waits for more rows once the model is free "
        "(a call on an idle model never waits; 0: the model's own call time is the window)",
    )
    model_load_timeout_s: float = Field(
        120.0, gt=0, description="Past it, loading a model is 503 model_unavailable"
    )
    model_sandbox: Literal["required", "unconfined"] = Field(
        "required",
        description="required: models run only in runners the kernel confines (Landlock and "
        "seccomp; no network, no files but their own, no secrets), and none is loaded where the "
        "kernel cannot; unconfined: runners without that confinement, only for a registry whose "
        "every uploader is trusted (docs/how-to/sandbox.md)",
    )
    model_runners: int = Field(
        1, ge=1, le=64, description="Runner processes per loaded model version (calls in parallel)"
    )
    model_runner_memory_mb: int = Field(
        4096,
        ge=256,
        description="Address space of one runner; past it, the call fails and the "
        "runner is replaced",
    )
    model_runner_max_threads: int = Field(
        512,
        ge=8,
        description="Threads and processes of the service's user a runner may start "
        "(RLIMIT_NPROC; new processes are refused to runners in any case)",
    )
    model_call_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Past it, a model call is 504 model_timeout and its runner is replaced",
    )
    model_runner_dir: str | None = Field(
        None,
        description="Where runners' model files and temporary folders go; default: the "
        "system's temporary folder",
    )
    rate_limit_per_minute: int = Field(1200, ge=0, description="Per API key; 0 disables")

    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest JSON body; past it, 413")
    max_artifact_bytes: int = Field(
        512 * 1_048_576, ge=1024, description="Largest multipart upload; past it, 413"
    )

    auth_cache_ttl_s: float = Field(
        10.0, ge=0, description="How long a replica trusts a checked key; 0 checks every request"
    )
    auth_stale_if_error_s: float = Field(
        300.0,
        ge=0,
        description="While the database is unreachable, keys checked this long before the "
        "trust above ran out are still served (revocations win once it answers); 0: never",
    )
    auth_failures_per_minute: int = Field(
        30, ge=0, description="Failed authentications per client address before 429; 0 disables"
    )
    max_artifact_entries: int = Field(
        10_000,
        ge=10,
        description="Most files, folders and links in an uploaded archive; past it, 413",
    )
    max_unpacked_bytes: int = Field(
        2 * 1024**3, ge=1024, description="Largest unpacked artifact; past it, 413"
    )
    max_artifact_ratio: int = Field(
        200, ge=2, description="Largest unpacked/packed size ratio (zip bombs); past it, 413"
    )
    benchmark_max_bytes: int = Field(
        256 * 1_048_576, ge=1024, description="Largest benchmark file; past it, 413"
    )
    benchmark_max_rows: int = Field(
        1_000_000,
        ge=10,
        description="Most rows in a benchmark (a Parquet file's own count is "
        "checked before it is read); past it, 413",
    )
    evaluation_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Longest measurement of a version on a held benchmark (both "
        "models' predictions and the bootstrap); past it, 422 evaluation_failed",
    )
    measured_submissions_per_day: int = Field(
        20,
        ge=1,
        description="Measured submissions per contributor address, benchmark and day "
        "(every measured value tells something about the hidden labels); past it, 429",
    )
    evaluation_bootstrap_draws: int = Field(
        2000, ge=1000, le=100_000, description="Resamples of the paired bootstrap (B)"
    )
    benchmark_max_columns: int = Field(1000, ge=2, description="Most columns in a benchmark")
    deltaone_threshold_pp: float = Field(
        1.0, gt=0, description="DeltaOne: least gain, in percentage points (percent if continuous)"
    )
    deltaone_min_samples: int = Field(800, ge=1, description="DeltaOne: least samples per side")
    deltaone_cooldown_s: int = Field(
        86_400, ge=0, description="DeltaOne: wait after an acceptance on the same dataset"
    )
    attestation_key: SecretStr | None = Field(
        None, description="Ed25519 private key (PEM) that signs attestations"
    )
    attestation_key_file: str = Field(
        str(DATA_DIR / "attestation-ed25519.pem"),
        description="Where the Ed25519 key is read, or generated once (with a warning) if absent",
    )
    eip712_signing_key: SecretStr | None = Field(
        None,
        description="secp256k1 private key (0x hex); set: measured acceptances get EIP-712 (v2)",
    )
    eip712_chain_id: int = Field(1, ge=1, description="EIP-712 domain chainId")
    eip712_verifying_contract: str = Field(
        "0x0000000000000000000000000000000000000000",
        pattern=r"^0x[0-9a-fA-F]{40}$",
        description="EIP-712 domain verifyingContract",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key for A/B test webhooks (X-Hokusai-Signature)"
    )
    webhook_allow_private_networks: bool = Field(
        False,
        description="Let A/B test webhooks reach private, loopback and link-local addresses "
        "(off: a write key cannot aim the service at its own network)",
    )
    idempotency_ttl_s: int = Field(
        86_400, ge=60, description="How long an Idempotency-Key replays its response"
    )
    idempotency_lease_s: int = Field(
        900,
        ge=10,
        description="How long a request holds its Idempotency-Key while it runs; a replica that "
        "died mid-request frees the key after this (duplicates meanwhile: 409 "
        "request_in_progress)",
    )
    registry_reconcile_interval_s: float = Field(
        300,
        ge=0,
        description="How often each replica brings MLflow in line with Postgres (deletes orphan "
        "versions, repairs aliases); 0 turns it off (after restoring Postgres from a backup, "
        "say)",
    )
    registry_orphan_grace_s: float = Field(
        3600,
        ge=0,
        description="How old a version in MLflow with no Postgres row must be before the "
        "reconciler deletes it",
    )
    bootstrap_api_key: SecretStr | None = Field(
        None, description="An admin key (hk_ + 32..128 URL-safe chars) registered at start-up"
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url.removeprefix(prefix)
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        if not url.startswith(("postgresql+psycopg://", "sqlite+aiosqlite:///")):
            raise ValueError("must be a postgresql:// or sqlite:/// URL")
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        url = url.strip()
        if "://" not in url:
            return f"redis://{url}"
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be redis://, rediss://, unix:// or a bare host:port")
        return url

    @field_validator("attestation_key", "eip712_signing_key", "webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("eip712_signing_key")
    @classmethod
    def _secp256k1_shape(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and not re.fullmatch(r"0x[0-9a-fA-F]{64}", key.get_secret_value()):
            raise ValueError("must be 0x followed by 64 hex digits")
        return key

    @field_validator("bootstrap_api_key")
    @classmethod
    def _key_shape(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None or not key.get_secret_value():
            return None
        if not API_KEY_PATTERN.match(key.get_secret_value()):
            raise ValueError("must be 'hk_' followed by 32 to 128 URL-safe characters")
        return key

    @model_validator(mode="after")
    def _production_needs_servers(self) -> Settings:
        if self.environment == "production" and self.embedded:
            raise ValueError("production needs HOKUSAI_DATABASE_URL set to a Postgres server")
        if self.workers > 1 and self.embedded:
            raise ValueError("HOKUSAI_WORKERS above 1 needs HOKUSAI_DATABASE_URL (Postgres)")
        return self

    @property
    def embedded(self) -> bool:
        """True when running on the local defaults (SQLite database, no server)."""
        return self.database_url.startswith("sqlite")
