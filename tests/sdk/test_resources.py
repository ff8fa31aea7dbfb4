"""Each resource is written once and serves both clients: the sync client's methods answer, the
async client's are coroutine functions (lists: async iterators), with the same parameters, and
mypy sees each client's types."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

from hokusai import AsyncHokusaiClient, HokusaiClient
from hokusai._frames import AsyncListing, Listing
from hokusai._resource import Resource
from mypy import api as mypy

ROOT = Path(__file__).resolve().parents[2]


def _resources(client: object) -> dict[str, Resource[HokusaiClient] | Resource[AsyncHokusaiClient]]:
    return {name: r for name, r in vars(client).items() if isinstance(r, Resource)}


def test_each_method_has_one_form_per_client_with_the_same_parameters() -> None:
    sync_client = HokusaiClient("http://127.0.0.1:9", "hk_test")
    async_client = AsyncHokusaiClient("http://127.0.0.1:9", "hk_test")
    resources = _resources(sync_client)
    assert len(resources) == 10
    assert resources.keys() == _resources(async_client).keys()
    for name, resource in resources.items():
        twin = getattr(async_client, name)
        assert type(twin) is type(resource)
        calls = [m for m in dir(type(resource)) if not m.startswith("_")]
        assert calls, name
        for call in calls:
            answer, awaited = getattr(resource, call), getattr(twin, call)
            where = f"{name}.{call}"
            assert inspect.signature(answer).parameters == inspect.signature(awaited).parameters
            returns = inspect.signature(answer).return_annotation
            if returns.startswith("Listing["):  # a list: an iterator, lazy on both clients
                assert inspect.signature(awaited).return_annotation == f"Async{returns}", where
                assert not inspect.iscoroutinefunction(awaited), where
            else:
                assert inspect.iscoroutinefunction(awaited), where
                assert not inspect.iscoroutinefunction(answer), where
            assert answer.__doc__, where
            assert answer.__doc__ == awaited.__doc__, where
    listed = sync_client.models.list(), async_client.models.list()
    assert isinstance(listed[0], Listing)
    assert isinstance(listed[1], AsyncListing)


def test_mypy_sees_each_clients_types(tmp_path: Path) -> None:
    program = tmp_path / "typed.py"
    program.write_text(
        textwrap.dedent(
            """
            from typing import assert_type
            from hokusai import AsyncHokusaiClient, HokusaiClient
            from hokusai._frames import AsyncListing, Listing
            from hokusai.types import Model, Version

            def sync(client: HokusaiClient) -> None:
                assert_type(client.models.get("m"), Model)
                assert_type(client.versions.list("m"), Listing[Version])
                assert_type(client.aliases.list("m"), dict[str, int])

            async def aio(client: AsyncHokusaiClient) -> None:
                assert_type(await client.models.get("m"), Model)
                assert_type(client.versions.list("m"), AsyncListing[Version])
                assert_type(await client.aliases.list("m"), dict[str, int])

            def wrong(client: HokusaiClient) -> None:
                client.models.get(1)
            """
        )
    )
    out, _, status = mypy.run(
        [
            "--strict",
            "--no-incremental",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(program),
        ]
    )
    assert status == 1, out
    [error] = [line for line in out.splitlines() if ": error:" in line]
    assert "typed.py:18:" in error, out
    assert 'incompatible type "int"; expected "str"' in error, out
