"""The errors the client raises. A response error carries the service's problem details
(`status`, `code`, `title`, `detail`, `request_id`, `errors`); nothing here ever holds the key."""

from __future__ import annotations

from typing import Any

import httpx


class HokusaiError(Exception):
    """Every error this package raises."""


class ConfigurationError(HokusaiError):
    """The client cannot be built or a call lacks what the service needs."""


class APIConnectionError(HokusaiError):
    """The service could not be reached (after the retries)."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class APITimeoutError(APIConnectionError):
    """The service did not answer in time (after the retries)."""


class APIStatusError(HokusaiError):
    """The service answered with an error status; the fields come from its problem details."""

    def __init__(self, response: httpx.Response) -> None:
        problem = _problem(response)
        self.response = response
        self.status: int = response.status_code
        self.code: str = str(problem.get("code") or "")
        self.title: str = str(problem.get("title") or response.reason_phrase)
        self.detail: str = str(problem.get("detail") or response.text[:500])
        self.request_id: str | None = problem.get("request_id") or response.headers.get(
            "x-request-id"
        )
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        super().__init__(f"{self.status} {self.code or self.title}: {self.detail}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"detail={self.detail!r}, request_id={self.request_id!r})"
        )


class _RetryAfter:
    @property
    def retry_after(self) -> float | None:
        """Seconds the service asked to wait (`Retry-After`), when it said."""
        response: httpx.Response = self.response  # type: ignore[attr-defined]  # the mixin's host
        return retry_after(response)


class BadRequestError(APIStatusError):
    """400"""


class AuthenticationError(APIStatusError):
    """401: missing, unknown or revoked key."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks the scope."""


class NotFoundError(APIStatusError):
    """404"""


class ConflictError(APIStatusError):
    """409"""


class PayloadTooLargeError(APIStatusError):
    """413"""


class UnprocessableEntityError(APIStatusError):
    """422: validation failed; `errors` names the fields."""


class RateLimitError(_RetryAfter, APIStatusError):
    """429"""


class InternalServerError(APIStatusError):
    """5xx other than 503."""


class ServiceUnavailableError(_RetryAfter, APIStatusError):
    """503: a dependency of the service is down; retry after `retry_after` seconds."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def from_response(response: httpx.Response) -> APIStatusError:
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = InternalServerError if response.status_code >= 500 else APIStatusError
    return kind(response)


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
