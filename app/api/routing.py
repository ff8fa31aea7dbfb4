"""How operations are declared and served: every router builds its routes as `Route`, FastAPI's
own route type, so each operation is declared once, by its signature, and FastAPI documents it from
there. What changes is the serving of the operations whose parameters are all cheap to supply:

- path parameters (validated by FastAPI's own fields, so errors read the same),
- at most one JSON body that is a pydantic model (parsed straight from its bytes: pydantic-core
  reads the JSON itself),
- the `Request`,
- dependencies that are `async def` functions or async generators (entered on the exit stacks
  FastAPI provides, so a `scope="function"` session still commits before the response is sent),
  or the security schemes' header readers, each taking only such parameters itself and header
  parameters (read by FastAPI's own function),

and whose endpoint builds its own `Response`. Such an operation is served by a short handler
built once per route from FastAPI's analysis of the signature, instead of FastAPI's general
dependency solving, which costs more than a cached prediction (see `bench/predict.py`). Anything
else (query parameters, forms, files) is served by FastAPI as usual.

`include` places the routers' routes at the app's top level, in order, instead of nesting them
(FastAPI's nested matching costs tens of microseconds per request)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi._compat import ModelField
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from fastapi.security.base import SecurityBase
from fastapi.utils import create_model_field
from pydantic import BaseModel, ValidationError
from starlette.routing import request_response

from app.api.errors import problems
from app.core.errors import UnsupportedMediaType

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class Route(APIRoute):
    """A FastAPI route, served by a short handler when its signature allows (see the module).
    Its operationId is its endpoint's name."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        options["generate_unique_id_function"] = _operation_id
        self.short: Handler | None = None
        self.closes = False  # the short handler enters async generators: it needs exit stacks
        super().__init__(path, endpoint, **options)
        if self.short is not None and not self.closes:
            # Nothing to close after the endpoint: no need for FastAPI's exit stacks either.
            self.app = request_response(self.short)
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
        self.short, self.closes = _short_handler(self)
        if self.short is not None or _json_model(self) is None:
            return self.short or super().get_route_handler()
        handler = super().get_route_handler()

        async def json_only(request: Request) -> Response:
            """A JSON body in another media type is 415 (FastAPI would read it as text)."""
            json_media_type(request)
            return await handler(request)

        return json_only


def include(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The routers' routes at the app's top level, matched in the order given."""
    for router in routers:
        for route in router.routes:
            assert not isinstance(route, APIRoute) or isinstance(route, Route), route.name
        app.router.routes.extend(router.routes)


def _operation_id(route: APIRoute) -> str:
    return route.name


def _short_handler(route: APIRoute) -> tuple[Handler | None, bool]:
    """The short handler, if the signature allows one, and whether it needs FastAPI's exit stacks
    (to close async-generator dependencies)."""
    endpoint = route.dependant
    body = endpoint.body_params[0] if endpoint.body_params else None
    model = _json_model(route)
    if (
        not _returns_response(route.endpoint)
        or not inspect.iscoroutinefunction(route.endpoint)
        or endpoint.query_params
        or endpoint.header_params
        or endpoint.cookie_params
        or not _plain(endpoint)
        or not all(_cheap(dependency) for dependency in endpoint.dependencies)
        or (body is not None and model is None)
    ):
        return None, False
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
            arguments[body.name] = parsed(model, await request.body())
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


def json_media_type(request: Request) -> None:
    """415 unless the body's media type says JSON (none given is taken as JSON)."""
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json")
