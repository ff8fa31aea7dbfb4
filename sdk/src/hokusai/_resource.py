"""How a call defined once becomes a method of the sync and of the async client. A resource's
calls are plain functions that return a `Call`; `sync`/`aio` (and `sync_pages`/`aio_pages` for
lists) turn each into a method that runs it on its client."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from pydantic import BaseModel

from hokusai._base import Call, Page
from hokusai._frames import AsyncListing, Listing

if TYPE_CHECKING:
    from hokusai._client import AsyncHokusaiClient, HokusaiClient

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class SyncResource:
    def __init__(self, client: HokusaiClient) -> None:
        self._client = client


class AsyncResource:
    def __init__(self, client: AsyncHokusaiClient) -> None:
        self._client = client


def sync(build: Callable[P, Call[T]]) -> Callable[Concatenate[SyncResource, P], T]:
    def method(self: SyncResource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._client._run(build(*args, **kwargs))

    return _named(method, build, "{}")


def aio(build: Callable[P, Call[T]]) -> Callable[Concatenate[AsyncResource, P], Awaitable[T]]:
    async def method(self: AsyncResource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._client._run(build(*args, **kwargs))

    return _named(method, build, "{}")


def sync_pages(
    build: Callable[Concatenate[int, P], Call[Page[M]]],
) -> Callable[Concatenate[SyncResource, P], Listing[M]]:
    """A list call as a lazy iterator over every page (with `.to_pandas()`)."""

    def method(self: SyncResource, /, *args: P.args, **kwargs: P.kwargs) -> Listing[M]:
        def items() -> Iterator[M]:
            offset = 0
            while True:
                page = self._client._run(build(offset, *args, **kwargs))
                yield from page.items
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    return

        return Listing(items())

    return _named(method, build, "Listing[{}]", paged=True)


def aio_pages(
    build: Callable[Concatenate[int, P], Call[Page[M]]],
) -> Callable[Concatenate[AsyncResource, P], AsyncListing[M]]:
    """A list call as a lazy async iterator over every page (`async for`, no `await`; with
    `await ....to_pandas()`)."""

    def method(self: AsyncResource, /, *args: P.args, **kwargs: P.kwargs) -> AsyncListing[M]:
        async def items() -> AsyncIterator[M]:
            offset = 0
            while True:
                page = await self._client._run(build(offset, *args, **kwargs))
                for item in page.items:
                    yield item
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    return

        return AsyncListing(items())

    return _named(method, build, "AsyncListing[{}]", paged=True)


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
