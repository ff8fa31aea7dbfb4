"""How operations are declared and served: every router builds its routes as `Route`, FastAPI's
own route type, so each operation is declared once, by its signature, and FastAPI documents it from
there, and serves it. The hot operations (a prediction, an A/B assignment) are marked `@short`:
they are served by a short handler instead, which a marked operation must allow, or the app does
not start. Its parameters must all be cheap to supply:

- path parameters (validated by FastAPI's own fields, so errors read the same),
- at most one JSON body that is a pydantic model (read by orjson, validated as FastAPI
  validates it),
- the `Request`,
- dependencies that are `async def` functions or async generators (entered on the exit stacks
  FastAPI provides, so a `scope="function"` session still commits before the response is sent),
  or the security schemes' header readers, each taking only such parameters itself and header
  parameters (read by FastAPI's own function),

and its endpoint builds its own `Response`. The short handler is built once per route from
FastAPI's analysis of the signature, instead of FastAPI's general dependency solving, which costs
more than a cached prediction (see `bench/predict.py`); `tests/api/test_routing.py` replays
requests through both engines for every marked route and compares the answers. It reads two of
FastAPI's internals (the exit stacks' scope keys, `_embed_body_fields`): `fastapi` is bounded in
`pyproject.toml` to the versions that test has passed on.

`include` places the routers' routes at the app's top level, in order, instead of nesting them
(FastAPI's nested matching costs tens of microseconds per request). `App` serves the marked
routes in front of the middleware stack: a request for one passes the app's own middleware
(`RequestContext`: request id, limits, metrics, access log) and the app's exception handlers,
as every request does, but not the layers that are there for the other routes (FastAPI's
exception, body-limit and exit-stack middleware, the router's matching of every route)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request, Response
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from fastapi.routing import request_response as fastapi_request_response
from fastapi.security.base import SecurityBase
from fastapi.utils import create_model_field
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import problems
from app.api.middleware import RequestContext
from app.core.errors import UnsupportedMediaType

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
E = TypeVar("E", bound=Callable[..., Any])
SHORT = "__hokusai_short__"


def short(endpoint: E) -> E:
    """Serve this operation with the short handler (see the module); the app refuses to start
    when its signature does not allow one."""
    setattr(endpoint, SHORT, True)
    return endpoint


class Route(APIRoute):
    """A FastAPI route, served by a short handler when its signature allows (see the module).
    Its operationId is its endpoint's name."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        options["generate_unique_id_function"] = _operation_id
        self.short: Handler | None = None
        self.closes = False  # the short handler enters async generators: it needs exit stacks
        super().__init__(path, endpoint, **options)
        # FastAPI's own serving of the route: what serves it, unless it is marked `@short`;
        # kept for marked ones too, so that both engines can be compared.
        self.standard = (
            self.app if self.short is None else fastapi_request_response(self._standard())
        )
        if self.short is not None and not self.closes:
            # Nothing to close after the endpoint: no need for FastAPI's exit stacks either.
            self.app = _asgi(self.short)
        if _json_model(self) is not None and 415 not in self.responses:  # `get_route_handler`
            unsupported = problems(415)[415]
            responses = {**self.responses, 415: unsupported}
            self.responses = dict(sorted(responses.items(), key=lambda item: str(item[0])))
            self.response_fields[415] = create_model_field(
                name=f"Response_415_{self.unique_id}",
                type_=unsupported["model"],
                mode="serialization",
            )

    def get_route_handler(self) -> Handler:
        if getattr(self.endpoint, SHORT, False):
            why = _unsupported(self)
            if why is not None:
                raise TypeError(f"{self.name} is marked @short but {why}")
            self.short, self.closes = _short_handler(self)
            return self.short
        return self._standard()

    def _standard(self) -> Handler:
        handler = super().get_route_handler()
        if _json_model(self) is None:
            return handler

        async def json_only(request: Request) -> Response:
            """A JSON body in another media type is 415 (FastAPI would read it as text)."""
            json_media_type(request)
            return await handler(request)

        return json_only


class App(FastAPI):
    """FastAPI, with the `@short` routes served in front of its middleware stack (see the
    module)."""

    def build_middleware_stack(self) -> ASGIApp:
        return _ShortLane(self, super().build_middleware_stack())


class _ShortLane:
    """The marked routes, matched first (a few regular expressions, for their methods only),
    then served by their short handler inside the app's own middleware and with its exception
    handlers; any other request goes to the full stack. The connection serves the marked
    routes through `respond` when it can (`app/api/server.py`): the same handler, the same
    middleware context, the answer returned instead of sent as ASGI messages."""

    def __init__(self, app: FastAPI, stack: ASGIApp) -> None:
        self.app = app
        self.stack = stack
        self.routes = [
            route
            for route in app.router.routes
            if isinstance(route, Route) and route.short is not None and not route.closes
        ]
        self.methods = {method for route in self.routes for method in route.methods or ()}
        # Every handler, the one for unexpected errors too: it answers as ServerErrorMiddleware
        # would have it answer (`app/api/errors.py`).
        self.handlers: tuple[dict[Any, Any], dict[int, Any]] = (dict(app.exception_handlers), {})
        served: ASGIApp = self._serve
        for middleware, args, options in reversed(app.user_middleware):
            served = middleware(served, *args, **options)
        self.served = served
        # `respond` needs the app's middleware to answer without ASGI: the request context only.
        self.context: RequestContext | None = None
        if isinstance(served, RequestContext) and served.app == self._serve:
            self.context = served

    def match(self, scope: Scope) -> Route | None:
        """The marked route of an HTTP request, its path parameters put in the scope."""
        if scope["method"] not in self.methods or scope.get("root_path"):
            return None
        for route in self.routes:
            found = route.path_regex.match(scope["path"])
            if found is not None and scope["method"] in (route.methods or ()):
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {
                    name: route.param_convertors[name].convert(value)
                    for name, value in found.groupdict().items()
                }
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.match(scope) is not None:
            await self.served(scope, receive, send)
            return
        await self.stack(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["starlette.exception_handlers"] = self.handlers
        await scope["route"].app(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive) -> Response:
        """The answer to a request `match` found, as a `Response` for the caller to write
        (`context` is not None)."""
        assert self.context is not None
        scope["app"] = self.app
        return await self.context.respond(scope, receive, self._respond)

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        scope["starlette.exception_handlers"] = self.handlers
        return await _answer(scope["route"].short, Request(scope, receive))


def _asgi(handler: Handler) -> ASGIApp:
    """A short handler as an ASGI app: starlette's `request_response`, less its watch over the
    sending. A short handler builds its whole response before anything is sent, so an exception
    it raises is answered by the exception handlers in the scope (the app's, or those of
    starlette's `ExceptionMiddleware` in the full stack), as `request_response` answers it; one
    raised while sending goes up as it is."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await _answer(handler, Request(scope, receive, send))
        await response(scope, receive, send)

    return app


async def _answer(handler: Handler, request: Request) -> Response:
    """The handler's response, or the one the scope's exception handlers give what it raises."""
    try:
        return await handler(request)
    except Exception as exc:
        answer = _exception_handler(request.scope, exc)
        if answer is None:
            raise
        response: Response = await answer(request, exc)
        exc.__traceback__ = None  # a reused exception would gather tracebacks
        return response


def _exception_handler(scope: Scope, exc: Exception) -> Any:
    """The handler starlette would pick for `exc`: by status for an HTTPException, else by the
    nearest class in its MRO."""
    handlers, by_status = scope.get("starlette.exception_handlers", ({}, {}))
    if isinstance(exc, HTTPException) and exc.status_code in by_status:
        return by_status[exc.status_code]
    return next((handlers[kind] for kind in type(exc).__mro__ if kind in handlers), None)


def include(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The routers' routes at the app's top level, matched in the order given."""
    for router in routers:
        for route in router.routes:
            assert not isinstance(route, APIRoute) or isinstance(route, Route), route.name
        app.router.routes.extend(router.routes)


def _operation_id(route: APIRoute) -> str:
    return route.name


def _unsupported(route: APIRoute) -> str | None:
    """Why the short handler cannot serve this route, or None when it can."""
    endpoint = route.dependant
    checks = (
        (_returns_response(route.endpoint), "does not return a Response"),
        (inspect.iscoroutinefunction(route.endpoint), "is not async"),
        (not endpoint.query_params, "takes query parameters"),
        (not endpoint.header_params, "takes header parameters"),
        (not endpoint.cookie_params, "takes cookies"),
        (_plain(endpoint), "takes a special FastAPI parameter"),
        (all(_cheap(d) for d in endpoint.dependencies), "has a dependency it cannot solve"),
        (not endpoint.body_params or _json_model(route) is not None, "takes a non-JSON body"),
    )
    return next((reason for ok, reason in checks if not ok), None)


def _short_handler(route: APIRoute) -> tuple[Handler, bool]:
    """The short handler of a route `_unsupported` allows, and whether it needs FastAPI's exit
    stacks (to close async-generator dependencies)."""
    endpoint = route.dependant
    body = endpoint.body_params[0] if endpoint.body_params else None
    model = _json_model(route)
    steps, top = _plan(endpoint)
    path_params = [(param, param.alias, ("path", param.alias)) for param in endpoint.path_params]
    request_name = endpoint.request_param_name
    call: Callable[..., Awaitable[Response]] = route.endpoint

    async def handle(request: Request) -> Response:
        solved: dict[int, Any] = {}
        for step in steps:
            solved[step.index] = await step.solve(request, solved)
        arguments = {name: solved[index] for name, index in top}
        if request_name is not None:
            arguments[request_name] = request
        for param, alias, loc in path_params:
            value, errors = param.validate(request.path_params[alias], loc=loc)
            if errors:
                raise RequestValidationError(errors)
            arguments[param.name] = value
        if body is not None and model is not None:
            json_media_type(request)
            arguments[body.name] = _read(model, await request.body())
        return await call(**arguments)

    return handle, any(step.context for step in steps)


@dataclass
class _Step:
    """One dependency, solved once per request after those it takes (`arguments`: parameter
    name and index of the step that supplies it)."""

    index: int
    call: Any
    arguments: list[tuple[str, int]]
    request_name: str | None
    security: bool = False
    context: Callable[..., AbstractAsyncContextManager[Any]] | None = None
    stack: str = ""
    headers: list[ModelField] = field(default_factory=list)

    async def solve(self, request: Request, solved: dict[int, Any]) -> Any:
        if self.security:  # a scheme reading its header from the request
            return await self.call(request)
        arguments = {name: solved[index] for name, index in self.arguments}
        if self.headers:
            values, errors = request_params_to_args(self.headers, request.headers)
            if errors:
                raise RequestValidationError(errors)
            arguments.update(values)
        if self.request_name is not None:
            arguments[self.request_name] = request
        if self.context is not None:  # an async generator, closed by FastAPI's exit stack
            stack: AsyncExitStack = request.scope[self.stack]
            return await stack.enter_async_context(self.context(**arguments))
        return await self.call(**arguments)


def _plan(endpoint: Dependant) -> tuple[list[_Step], list[tuple[str, int]]]:
    """The endpoint's dependencies in the order they are solved (each once, as FastAPI caches
    them), and the endpoint's own arguments among them."""
    steps: list[_Step] = []
    seen: dict[Any, int] = {}

    def visit(dependant: Dependant) -> list[tuple[str, int]]:
        arguments = []
        for dependency in dependant.dependencies:
            assert dependency.name is not None
            if dependency.call not in seen:
                inner = visit(dependency)
                step = _Step(len(steps), dependency.call, inner, dependency.request_param_name)
                step.headers = dependency.header_params
                if isinstance(dependency.call, SecurityBase):
                    step.security = True
                elif inspect.isasyncgenfunction(dependency.call):
                    step.context = asynccontextmanager(dependency.call)
                    step.stack = (
                        "fastapi_function_astack"
                        if dependency.scope == "function"
                        else "fastapi_inner_astack"
                    )
                seen[dependency.call] = step.index
                steps.append(step)
            arguments.append((dependency.name, seen[dependency.call]))
        return arguments

    top = visit(endpoint)
    return steps, top


def _cheap(dependency: Dependant) -> bool:
    call = dependency.call
    if isinstance(call, SecurityBase):  # reads a header from the request; async __call__
        return inspect.iscoroutinefunction(type(call).__call__)
    return (
        (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call))
        and not dependency.path_params
        and not dependency.query_params
        and not dependency.cookie_params
        and not dependency.body_params
        and _plain(dependency)
        and all(_cheap(inner) for inner in dependency.dependencies)
    )


def _plain(dependant: Dependant) -> bool:
    """Takes nothing FastAPI makes specially but the request."""
    return (
        dependant.websocket_param_name is None
        and dependant.http_connection_param_name is None
        and dependant.response_param_name is None
        and dependant.background_tasks_param_name is None
        and dependant.security_scopes_param_name is None
    )


def _json_model(route: APIRoute) -> type[BaseModel] | None:
    """The pydantic model that is the route's whole body, if it has such a body."""
    params = route.dependant.body_params
    model = params[0].field_info.annotation if len(params) == 1 else None
    if isinstance(model, type) and issubclass(model, BaseModel) and not route._embed_body_fields:
        return model
    return None


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    returned = inspect.signature(endpoint, eval_str=True).return_annotation
    return isinstance(returned, type) and issubclass(returned, Response)


M = TypeVar("M", bound=BaseModel)


def parsed(model: type[M], raw: str | bytes, *loc: str) -> M:
    """JSON validated as FastAPI validates a body (the same 422 on errors); `loc` names the part
    of the body it is, if not all of it."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *loc, *error["loc"])} for error in exc.errors()]
        ) from exc


def _read(model: type[M], raw: bytes) -> M:
    """A JSON body, validated as FastAPI validates one (the Python objects the JSON makes, so
    both engines answer alike, errors included). orjson reads it (in C, several times faster
    than `json`); what orjson refuses and `json` reads (NaN, integers past 64 bits, lone
    surrogates, UTF-16) is read by `json`, as FastAPI would read it."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if not raw:
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
            ) from None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deep
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error"}]
            ) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc


def json_media_type(request: Request) -> None:
    """415 unless the body's media type says JSON (none given is taken as JSON)."""
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json")
