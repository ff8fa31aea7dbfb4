"""The error tree. Every error leaves the service as RFC 9457 `application/problem+json`."""

from __future__ import annotations

import re
from typing import Any, ClassVar

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    return f"urn:hokusai:problem:{code}"


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line for a report or a log (the name when it says nothing)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


class AppError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)


class Unavailable(AppError):
    """A dependency is down; the caller should retry after `retry_after` seconds."""

    status = 503

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extra)


class BadRequest(AppError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthenticated(AppError):
    status, code, title = 401, "unauthenticated", "Missing or invalid API key"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="hokusai"'})


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "The API key lacks a required scope"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class ApiKeyNotFound(NotFound):
    code, title = "api_key_not_found", "API key not found"


class MethodNotAllowed(AppError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class IdempotencyConflict(Conflict):
    code, title = "idempotency_conflict", "Idempotency-Key reused with a different request"


class RequestInProgress(Conflict):
    """The first request with this Idempotency-Key is still running: retry after a while and
    get its response."""

    code, title = "request_in_progress", "A request with this Idempotency-Key is in progress"

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class ValidationFailed(AppError):
    """A 422 with FastAPI's `errors` list. Every one is built by `of` or `at`, so all read
    alike: the detail says each field as the caller wrote it (`contributors[0].address`,
    `query.limit`) and what is wrong with it."""

    status, code, title = 422, "validation_failed", "Request validation failed"

    @classmethod
    def of(cls, errors: list[dict[str, Any]], detail: str | None = None) -> ValidationFailed:
        """Errors as FastAPI words them (`loc` from `body`, `query` or `path`, `msg`, `type`);
        the detail lists them unless one is given."""
        if detail is None:
            reasons = "; ".join(f"{as_written(e['loc'])}: {e['msg']}" for e in errors[:20])
            more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
            detail = f"Invalid request: {reasons}{more}"
        return cls(detail, errors=errors)

    @classmethod
    def at(cls, loc: list[str | int], msg: str, kind: str = "value_error") -> ValidationFailed:
        """One field wrong."""
        return cls.of([{"loc": loc, "msg": msg, "type": kind}])


def as_written(loc: list[Any] | tuple[Any, ...]) -> str:
    """The field as the caller wrote it: without `body`, and without `metadata`, the multipart
    part that carries the registration's JSON (`body.metadata.dataset.hash` is `dataset.hash`);
    a query or path parameter keeps its kind (`query.limit`)."""
    parts = list(loc)
    if parts[:1] == ["body"]:
        parts = parts[1:]
        if parts[:1] == ["metadata"]:
            parts = parts[1:]
    if not parts:
        return "body"
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


class ModelFailed(AppError):
    status, code, title = 422, "model_failed", "The model could not predict these rows"


class ModelTimeout(AppError):
    status, code, title = 504, "model_timeout", "The model did not answer in time"


class RateLimited(AppError):
    status, code, title = 429, "rate_limited", "Rate limit exceeded"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many requests for this API key; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class MeasurementQuotaExceeded(AppError):
    status, code = 429, "measurement_quota_exceeded"
    title = "Too many measured submissions on this benchmark"


class DatabaseUnavailable(Unavailable):
    code, title = "database_unavailable", "Database unavailable"


class RegistryUnavailable(Unavailable):
    code, title = "registry_unavailable", "Model registry (MLflow) unavailable"


_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


class RegistryRejected(BadRequest):
    """MLflow refused the request itself (not found, bad parameter, conflict): the caller's
    error, never an outage to retry."""

    code, title = "registry_rejected", "MLflow refused the request"

    def __init__(self, mlflow_status: int, message: str) -> None:
        # MLflow's messages can name its internal address: that stays in the log.
        shown = _URL.sub("<mlflow>", message)
        super().__init__(f"MLflow refused the request ({mlflow_status}): {shown}"[:2000])
        self.mlflow_status = mlflow_status
        self.message = message


class ModelNotFound(NotFound):
    code, title = "model_not_found", "Model not found"

    @classmethod
    def named(cls, name: str, known: list[str]) -> ModelNotFound:
        """The error for `name`, suggesting the closest of the `known` names, if one is close."""
        import difflib

        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return cls(f"No model named {name!r}{hint}")


class VersionNotFound(NotFound):
    code, title = "version_not_found", "Model version not found"


class AliasNotFound(NotFound):
    code, title = "alias_not_found", "Alias not found"


class ExperimentNotFound(NotFound):
    code, title = "experiment_not_found", "Experiment not found"


class RunNotFound(NotFound):
    code, title = "run_not_found", "Run not found"


class ModelArchived(Conflict):
    code, title = "model_archived", "The model is archived"


class VersionArchived(Conflict):
    code, title = "version_archived", "The version is archived"


class InUse(Conflict):
    """Archiving what an alias or a live A/B test still points at."""

    code, title = "in_use", "Still in use"


class ModelTypeMismatch(ValidationFailed):
    code, title = "model_type_mismatch", "model_type differs from the model's"


class InvalidAddress(ValidationFailed):
    code, title = "invalid_address", "Invalid Ethereum address"


class TokenIdTaken(Conflict):
    code, title = "token_id_taken", "token_id belongs to another model"


class RollbackUnavailable(Conflict):
    code, title = "rollback_unavailable", "No earlier production version to roll back to"


class InvalidArtifact(BadRequest):
    code, title = "invalid_artifact", "Invalid model artifact"


class ArtifactTooLarge(PayloadTooLarge):
    code, title = "artifact_too_large", "Model artifact too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class AttestationNotFound(NotFound):
    code, title = "attestation_not_found", "Attestation not found"


class SigningKeyRetired(Unavailable):
    """The configured attestation key was rotated out or retired: nothing is signed with it."""

    code, title = "signing_key_retired", "The attestation signing key is no longer valid"


class SigningKeyNotFound(NotFound):
    code, title = "signing_key_not_found", "Signing key not found"


class ModelUnavailable(Unavailable):
    code, title = "model_unavailable", "The model could not be loaded"


class BatchTooLarge(PayloadTooLarge):
    code, title = "batch_too_large", "Too many rows in one prediction request"


class EvaluationFailed(ValidationFailed):
    code, title = "evaluation_failed", "The version could not be measured on the benchmark"


class EvaluationUndefined(EvaluationFailed):
    code, title = "evaluation_undefined", "The metric is undefined on too many resamples"


class BenchmarkNotFound(NotFound):
    code, title = "benchmark_not_found", "Benchmark not found"


class InvalidBenchmark(ValidationFailed):
    code, title = "invalid_benchmark", "Invalid benchmark file"


class BenchmarkTooLarge(PayloadTooLarge):
    code, title = "benchmark_too_large", "Benchmark too large"


class BenchmarkRetired(Conflict):
    code, title = "benchmark_retired", "The benchmark is retired"


class AbTestNotFound(NotFound):
    code, title = "ab_test_not_found", "A/B test not found"


class AbTestConflict(Conflict):
    code, title = "ab_test_conflict", "The model already has a running A/B test"


class InvalidTransition(Conflict):
    code, title = "invalid_transition", "The A/B test cannot do that in its current status"


class NotSignificant(Conflict):
    code, title = "not_significant", "The results do not favour that variant"
