"""How a call defined once becomes a method of the sync and of the async client. A resource's
calls are plain functions that return a `Call`; a resource class is written once, generic in its
client, and `method` (`paged` for lists) makes each call a method that runs on that client:
`client.models.get` returns a `Model`, `aclient.models.get` an awaitable of one, and mypy knows
which."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import MethodType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from pydantic import BaseModel

from hokusai._base import Call, Page
from hokusai._frames import AsyncListing, Listing

if TYPE_CHECKING:
    from hokusai._client import AsyncHokusaiClient, HokusaiClient

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", "HokusaiClient", "AsyncHokusaiClient")


class Resource(Generic[C]):
    """A group of calls (`client.models`, `client.versions`...), on the client that made it."""

    def __init__(self, client: C) -> None:
        self._client: C = client


class method(Generic[P, T]):  # lower case, like `property`: it reads as one in a class body
    """One call as a method: on the sync client it returns the answer, on the async client it
    is a coroutine function."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        def run(resource: Resource[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
            return resource._client._run(build(*args, **kwargs))  # type: ignore[no-any-return]

        async def run_async(resource: Resource[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
            return await resource._client._run(build(*args, **kwargs))  # type: ignore[no-any-return]

        self._sync = _named(run, build, "{}")
        self._async = _named(run_async, build, "{}")

    @overload
    def __get__(self, resource: None, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, resource: Resource[HokusaiClient], owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, resource: Resource[AsyncHokusaiClient], owner: type
    ) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, resource: Resource[Any] | None, owner: type) -> Any:
        return _bound(resource, self._sync, self._async)


class paged(Generic[P, M]):
    """A list call as a lazy iterator over every page (with `.to_pandas()`); on the async
    client an async iterator (`async for`, no `await`; with `await ....to_pandas()`)."""

    def __init__(self, build: Callable[Concatenate[int, P], Call[Page[M]]]) -> None:
        def run(resource: Resource[Any], /, *args: P.args, **kwargs: P.kwargs) -> Listing[M]:
            def items() -> Iterator[M]:
                offset = 0
                while True:
                    page: Page[M] = resource._client._run(build(offset, *args, **kwargs))
                    yield from page.items
                    offset += len(page.items)
                    if not page.items or offset >= page.total:
                        return

            return Listing(items())

        def run_async(
            resource: Resource[Any], /, *args: P.args, **kwargs: P.kwargs
        ) -> AsyncListing[M]:
            async def items() -> AsyncIterator[M]:
                offset = 0
                while True:
                    page: Page[M] = await resource._client._run(build(offset, *args, **kwargs))
                    for item in page.items:
                        yield item
                    offset += len(page.items)
                    if not page.items or offset >= page.total:
                        return

            return AsyncListing(items())

        self._sync = _named(run, build, "Listing[{}]", paged=True)
        self._async = _named(run_async, build, "AsyncListing[{}]", paged=True)

    @overload
    def __get__(self, resource: None, owner: type) -> Callable[P, Listing[M]]: ...
    @overload
    def __get__(
        self, resource: Resource[HokusaiClient], owner: type
    ) -> Callable[P, Listing[M]]: ...
    @overload
    def __get__(
        self, resource: Resource[AsyncHokusaiClient], owner: type
    ) -> Callable[P, AsyncListing[M]]: ...
    def __get__(self, resource: Resource[Any] | None, owner: type) -> Any:
        return _bound(resource, self._sync, self._async)


def _bound(resource: Resource[Any] | None, run: Any, run_async: Any) -> Any:
    """On the class, the sync form (what `help()` and the reference docs read); on a resource,
    the form its client runs, bound to it."""
    if resource is None:
        return run
    return MethodType(run_async if resource._client.is_async else run, resource)


def _named(method: T, build: Callable[..., Any], returns: str, *, paged: bool = False) -> T:
    """The method keeps the call's name, docstring and parameters, and says what it returns
    (`Call[Version]` becomes `Version`; a page, an iterator of its items): `help()`, editors
    and the reference docs read them."""
    signature = inspect.signature(build)
    parameters = list(signature.parameters.values())[1 if paged else 0 :]
    answer = str(signature.return_annotation).removeprefix("Call[").removesuffix("]")
    if paged:
        answer = answer.removeprefix("Page[").removesuffix("]")
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]  # a function, set by us
        parameters=[self, *parameters], return_annotation=returns.format(answer)
    )
    method.__name__ = build.__name__  # type: ignore[attr-defined]
    method.__module__ = build.__module__  # defined where its resource class is
    method.__doc__ = build.__doc__
    return method


def page_of(kind: type[M]) -> Callable[[Any], Page[M]]:
    return lambda response: Page[kind].model_validate(response.json())  # type: ignore[valid-type]  # a runtime-parametrised generic
