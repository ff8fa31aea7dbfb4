"""Versions of a model: list, read, update, archive, download the artifact."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from hokusai._base import Call, Page, body, model, path, query
from hokusai._resource import C, Resource, method, page_of, paged
from hokusai.types import Version


def list_versions(offset: int, name: str, *, include_archived: bool = False) -> Call[Page[Version]]:
    """Every version of a model, newest first; archived ones too with `include_archived`."""
    params = query(include_archived=include_archived or None, limit=500, offset=offset)
    return Call(
        "GET", path("models", name, "versions"), page_of(Version), params=params, repeatable=True
    )


def get(name: str, version: int) -> Call[Version]:
    """One version, with its delta, DeltaOne decision and attestation id."""
    return Call("GET", path("models", name, "versions", version), model(Version), repeatable=True)


def update(
    name: str, version: int, *, description: str | None = None, tags: dict[str, str] | None = None
) -> Call[Version]:
    """Change a version's description or replace its tags."""
    url = path("models", name, "versions", version)
    return Call("PATCH", url, model(Version), json=body(description=description, tags=tags))


def archive(name: str, version: int) -> Call[Version]:
    """Archive a version: out of lists and of "latest", no alias, no prediction by number; its
    lineage and attestation stay readable. Refused (409 `in_use`) while an alias or a live A/B
    test points at it."""
    url = path("models", name, "versions", version, "archive")
    return Call("POST", url, model(Version), repeatable=True)


def unarchive(name: str, version: int) -> Call[Version]:
    """Bring an archived version back."""
    url = path("models", name, "versions", version, "unarchive")
    return Call("POST", url, model(Version), repeatable=True)


def download(name: str, version: int, destination: str | os.PathLike[str]) -> Call[Path]:
    """Write the version's artifact (`.tar.gz`) to `destination` (a file, or a directory to put
    `<name>-<version>.tar.gz` in) and return its path."""
    target = Path(destination)
    if target.is_dir():
        target = target / f"{name}-{version}.tar.gz"

    def write(response: httpx.Response) -> Path:
        target.write_bytes(response.content)
        return target

    return Call(
        "GET", path("models", name, "versions", version, "artifact"), write, repeatable=True
    )


class Versions(Resource[C]):
    list = paged(list_versions)
    get = method(get)
    update = method(update)
    archive = method(archive)
    unarchive = method(unarchive)
    download = method(download)
