"""One request builder under both clients: what a call sends (`Call`), authentication, request
ids, idempotency keys, how a response is parsed or turned into an error, and when an attempt is
retried. The sync and async clients only do the I/O (`_client.py`)."""

from __future__ import annotations

import contextlib
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from hokusai._config import resolve
from hokusai._version import __version__
from hokusai.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    HokusaiError,
    from_response,
    retry_after,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

API = "/api/v1"
# What the service keeps as given (else it substitutes its own id, or refuses the key): checked
# before sending, since a line break in a header is refused by httpx as a transport error, which
# would be retried and reported as an unreachable service.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
RETRIED_STATUSES = frozenset({408, 429, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: what to send, how to read the answer, and whether repeating it is safe."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    files: Any = None
    data: Any = None
    # Safe to send again: GET, PUT, DELETE, predict and assign; a creating POST only with its key.
    repeatable: bool = False
    idempotency_key: str | None = None
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Error statuses whose body is the answer (readiness: 503 still says what is down).
    accepted_statuses: frozenset[int] = frozenset()


def path(*parts: object) -> str:
    """An API path with each part escaped (`/models/{name}`, never a raw name in a URL)."""
    return API + "".join("/" + quote(str(part), safe="") for part in parts)


def model(kind: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: kind.model_validate(response.json())


def models(kind: type[M]) -> Callable[[httpx.Response], list[M]]:
    return lambda response: [kind.model_validate(item) for item in response.json()]


def nothing(_: httpx.Response) -> None:
    return None


def query(**values: Any) -> dict[str, Any]:
    """Query parameters without the unset ones."""
    return {key: value for key, value in values.items() if value is not None}


def body(**values: Any) -> dict[str, Any]:
    """A JSON body without the unset fields (the server's defaults apply)."""
    return {key: value for key, value in values.items() if value is not None}


def creating(
    method: str,
    url: str,
    parse: Callable[[httpx.Response], T],
    idempotency_key: str | None,
    **kw: Any,
) -> Call[T]:
    """A creating POST: it carries an Idempotency-Key (the caller's, or one made for this call
    and sent on every attempt), so retrying it never creates twice."""
    key = idempotency_key or uuid.uuid4().hex
    return Call(method, url, parse, repeatable=True, idempotency_key=key, **kw)


@dataclass(frozen=True)
class Wait:
    """Seconds to wait before the next attempt of a call; `counted` against `max_retries`
    (waiting for the first request with our Idempotency-Key to finish is not a retry)."""

    seconds: float
    counted: bool = True


class Page(BaseModel, Generic[M]):
    items: list[M]
    total: int
    limit: int
    offset: int


class BaseClient:
    """What both clients share: configuration and everything but the I/O."""

    def __init__(
        self, base_url: str | None, api_key: str | None, *, timeout: float, max_retries: int
    ) -> None:
        config = resolve(base_url, api_key)
        self.base_url = config.base_url
        self._api_key = config.api_key
        self.timeout = timeout
        self.max_retries = max_retries

    def __repr__(self) -> str:  # the key never shows
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _request(
        self, http: httpx.Client | httpx.AsyncClient, call: Call[Any], request_id: str
    ) -> httpx.Request:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "X-Request-ID": request_id,
            "User-Agent": f"hokusai-ml-platform/{__version__}",
            **call.headers,
        }
        _check_header("X-Request-ID", request_id, REQUEST_ID)
        if call.idempotency_key is not None:
            _check_header("Idempotency-Key", call.idempotency_key, IDEMPOTENCY_KEY)
            headers["Idempotency-Key"] = call.idempotency_key
        return http.build_request(
            call.method,
            self.base_url + call.path,
            params=call.params,
            json=call.json,
            files=call.files,
            data=call.data,
            headers=headers,
            timeout=self.timeout,
        )

    def _settle(
        self,
        call: Call[T],
        attempt: int,
        sent: httpx.Response | httpx.TransportError,
        request_id: str,
        waited: float = 0.0,
    ) -> T | Wait:
        """What an attempt came to: the call's result, a `Wait` before the next attempt, or the
        final error (raised). Both clients run their attempts through this; they only send.
        `waited`: seconds spent so far waiting on a request in progress."""
        if isinstance(sent, httpx.Response):
            if sent.is_success or sent.status_code in call.accepted_statuses:
                return call.parse(sent)
            error: HokusaiError = from_response(sent)
        else:
            error = self._transport_error(sent, request_id)
        wait = self._in_progress(call, error, waited)
        delay = self._retry_in(call, attempt, error) if wait is None else wait.seconds
        if delay is None:
            if isinstance(sent, httpx.TransportError):
                raise error from sent  # the cause stays: which host, which refusal
            raise error
        return wait or Wait(delay)

    def _in_progress(self, call: Call[Any], error: HokusaiError, waited: float) -> Wait | None:
        """The first request with this call's Idempotency-Key is still running (a slow
        registration): wait as the service asks and ask again, up to the client's timeout in all;
        its response is then replayed."""
        if (
            call.idempotency_key is None
            or not isinstance(error, APIStatusError)
            or error.code != "request_in_progress"
            or waited >= self.timeout
        ):
            return None
        asked = retry_after(error.response) or 1.0
        return Wait(min(asked, MAX_RETRY_AFTER_S, self.timeout - waited), counted=False)

    def _retry_in(self, call: Call[Any], attempt: int, error: HokusaiError) -> float | None:
        """Seconds to wait before the next attempt, or None when `error` is final."""
        if attempt >= self.max_retries or not call.repeatable:
            return None
        if isinstance(error, APIStatusError):
            if error.status not in RETRIED_STATUSES:
                return None
            asked = retry_after(error.response)
            if asked is not None:
                return min(asked, MAX_RETRY_AFTER_S)
        elif not isinstance(error, APIConnectionError):
            return None
        backoff = min(FIRST_BACKOFF_S * 2.0**attempt, MAX_BACKOFF_S)
        return backoff * (0.75 + random.random() / 4)  # noqa: S311  # jitter, not a secret

    def _transport_error(self, exc: httpx.TransportError, request_id: str) -> APIConnectionError:
        where = self.base_url
        with contextlib.suppress(RuntimeError):  # an error raised before a request was made
            where = str(exc.request.url.copy_with(query=None))
        reason = str(exc).strip() or exc.__class__.__name__
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"{where} did not answer in time ({exc.__class__.__name__}: {reason})",
                request_id=request_id,
            )
        return APIConnectionError(
            f"{where} could not be reached ({exc.__class__.__name__}: {reason})",
            request_id=request_id,
        )


def _check_header(name: str, value: str, rule: re.Pattern[str]) -> None:
    if not rule.fullmatch(value):
        raise ConfigurationError(
            f"{name} {value!r} is not one the service accepts ({rule.pattern})"
        )
