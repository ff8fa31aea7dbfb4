"""Exception handlers that turn every error into application/problem+json, and the
declarations that put those errors into the OpenAPI document."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from app.api.contract import documented_path
from app.core.errors import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    DatabaseUnavailable,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
    problem_type,
)
from app.core.logging import request_id_var
from app.db.session import timed_out, unreachable
from app.schemas.common import Problem

log = logging.getLogger(__name__)

_HTTP_ERRORS: dict[int, type[AppError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


class CarriedError(HTTPException):
    """Carries an AppError through code that lets only HTTPException pass (body reading)."""

    def __init__(self, error: AppError) -> None:
        super().__init__(error.status, error.detail, error.headers)
        self.error = error


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    request_id = request_id_var.get() or ""
    body = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
        **extra,
    }
    return JSONResponse(
        body,
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={**(headers or {}), "X-Request-ID": request_id},
    )


def error_response(error: AppError) -> JSONResponse:
    return problem_response(
        error.status, error.code, error.title, error.detail, error.headers, **error.extra
    )


async def handle_app_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AppError)
    return error_response(error)


async def handle_validation(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        NOT_JSON
        if e.get("type") == "json_invalid"  # however the body's parser put it (see NOT_JSON)
        else {"loc": list(e.get("loc", ())), "msg": _message(e), "type": str(e.get("type"))}
        for e in error.errors()
    ]
    return error_response(ValidationFailed.of(errors))


# A body that does not parse as JSON, said one way: pydantic's parser (the short engine, a
# multipart part) and FastAPI's (`json.loads`, with the offset in `loc`) word it differently.
NOT_JSON: dict[str, Any] = {
    "loc": ["body"],
    "msg": "The body is not valid JSON",
    "type": "json_invalid",
}


# Messages that say how to fix the value, by the field's last name and pydantic's error type.
_HINTS = {
    ("hash", "string_pattern_mismatch"): "must look like sha256:<64 hex digits>; "
    "compute it with hokusai.dataset_hash()",
}


def _message(error: Any) -> str:
    loc = error.get("loc", ())
    hint = _HINTS.get((str(loc[-1]) if loc else "", str(error.get("type"))))
    return hint or str(error.get("msg", ""))


async def handle_http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if isinstance(error, CarriedError):
        return error_response(error.error)
    if error.status_code == 400 and isinstance(error.__cause__, ValueError | RecursionError):
        # FastAPI's answer to a body it cannot read as JSON (not UTF-8, nested too deep): the
        # same 422 as any other body that is not JSON.
        return error_response(ValidationFailed.of([NOT_JSON]))
    if error.status_code == 405:
        # Starlette names the methods of the first route that matched the path; a path with
        # several routes (GET and PATCH) allows all their methods.
        documented = documented_path(request.app, request.url.path)
        if documented is not None:
            allow = ", ".join(documented.methods)
            return error_response(MethodNotAllowed(str(error.detail), headers={"Allow": allow}))
    kind = _HTTP_ERRORS.get(error.status_code)
    if kind is not None:
        detail = error.detail if error.status_code != 404 else "No such endpoint"
        return error_response(kind(str(detail), headers=dict(error.headers or {})))
    phrase = HTTPStatus(error.status_code).phrase
    return problem_response(
        error.status_code,
        phrase.lower().replace(" ", "_").replace("-", "_"),
        phrase,
        str(error.detail),
        dict(error.headers or {}),
    )


async def handle_database(request: Request, error: Exception) -> JSONResponse:
    """A lost or refused database connection is a 503; any other database error is a bug."""
    retry_after = request.app.state.resources.settings.retry_after_s
    if timed_out(error):
        log.warning(
            "database statement cancelled: %s", type(getattr(error, "orig", error)).__name__
        )
        return error_response(
            DatabaseUnavailable(
                "The database did not finish in time (statement or lock timeout)",
                retry_after=retry_after,
            )
        )
    if unreachable(error):
        log.warning("database unavailable: %s", error.__class__.__name__)
        return error_response(
            DatabaseUnavailable("The database is not reachable", retry_after=retry_after)
        )
    return await handle_unexpected(request, error)


async def handle_disconnect(request: Request, error: Exception) -> JSONResponse:
    """The client went away before its body arrived: one line, not a traceback (nobody reads
    the answer)."""
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return problem_response(
        400, "client_disconnected", "Client disconnected", "The body ended early"
    )


async def handle_unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem_response(500, "internal_error", "Internal error", "An unexpected error occurred")


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, handle_app_error)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(HTTPException, handle_http)
    app.add_exception_handler(DBAPIError, handle_database)
    # The exposure log talks to the driver directly
    # (app/db/repositories/ab_tests.py, expose_on_postgres).
    app.add_exception_handler(psycopg.OperationalError, handle_database)
    app.add_exception_handler(PoolTimeout, handle_database)
    app.add_exception_handler(ClientDisconnect, handle_disconnect)
    app.add_exception_handler(Exception, handle_unexpected)


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, unknown or revoked API key (`unauthenticated`)",
    403: "The API key lacks the scope (`forbidden`)",
    404: "Not found",
    409: "Conflict (`idempotency_conflict`; `request_in_progress` with `Retry-After`; ...)",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed (`validation_failed`, with `errors`)",
    429: "Rate limited (`rate_limited`); see `Retry-After`",
    500: "Internal error",
    503: "A dependency is unavailable; see `Retry-After`",
    504: "The model did not answer within the call timeout (`model_timeout`)",
}

AUTHENTICATED = (401, 403, 429)
ALWAYS = (500, 503)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, all application/problem+json."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in sorted({*statuses, *ALWAYS})
    }
