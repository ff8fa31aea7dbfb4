"""Models: register versions, list, read, update, compare, roll back."""

from __future__ import annotations

import json
import os
from typing import Any

from hokusai._artifacts import packed
from hokusai._base import Call, Page, body, creating, model, path, query
from hokusai._resource import C, Resource, method, page_of, paged
from hokusai.types import AliasMove, Comparison, Model, Version


def register(
    name: str,
    *,
    kind: str,
    metrics: dict[str, float],
    dataset: dict[str, Any],
    artifact: str | os.PathLike[str] | Any = None,
    source_uri: str | None = None,
    model_type: str | None = None,
    benchmark: dict[str, Any] | None = None,
    contributors: list[dict[str, Any]] | None = None,
    parent_version: int | None = None,
    token_id: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    metric_stds: dict[str, float] | None = None,
    idempotency_key: str | None = None,
) -> Call[Version]:
    """Register a version: a baseline (declaring the benchmark) or an improved version (naming
    its contributors). `artifact` is an MLflow model directory (packed here), a `.tar.gz` /
    `.zip` file, or a scikit-learn model object (saved with MLflow: the `[mlflow]` extra); or
    give `source_uri` for an artifact already in MLflow (`runs:/...`)."""
    metadata = body(
        name=name,
        kind=kind,
        metrics=metrics,
        dataset=dataset,
        model_type=model_type,
        benchmark=benchmark,
        contributors=contributors,
        parent_version=parent_version,
        token_id=token_id,
        description=description,
        tags=tags,
        metric_stds=metric_stds,
    )
    url = path("models", "register")
    if artifact is not None:
        filename, archive = packed(artifact)
        return creating(
            "POST",
            url,
            model(Version),
            idempotency_key,
            data={"metadata": json.dumps(metadata)},
            files={"artifact": (filename, archive, "application/octet-stream")},
        )
    return creating(
        "POST", url, model(Version), idempotency_key, json={**metadata, "source_uri": source_uri}
    )


def list_models(
    offset: int,
    *,
    token_id: str | None = None,
    model_type: str | None = None,
    search: str | None = None,
    include_archived: bool = False,
) -> Call[Page[Model]]:
    """Every model, by name, optionally with a token id, of a model type, or whose name or token
    id contains `search` (in any case); archived models too with `include_archived`."""
    params = query(
        token_id=token_id,
        model_type=model_type,
        search=search,
        include_archived=include_archived or None,
        limit=500,
        offset=offset,
    )
    return Call("GET", path("models"), page_of(Model), params=params, repeatable=True)


def get(name: str) -> Call[Model]:
    """One model."""
    return Call("GET", path("models", name), model(Model), repeatable=True)


def update(
    name: str, *, description: str | None = None, tags: dict[str, str] | None = None
) -> Call[Model]:
    """Change a model's description or replace its tags (mirrored to MLflow)."""
    return Call(
        "PATCH", path("models", name), model(Model), json=body(description=description, tags=tags)
    )


def archive(name: str) -> Call[Model]:
    """Archive a model: out of lists, no new version, alias, test or prediction until
    unarchived; its versions, lineage and attestations stay readable. Nothing is deleted."""
    return Call("POST", path("models", name, "archive"), model(Model), repeatable=True)


def unarchive(name: str) -> Call[Model]:
    """Bring an archived model back."""
    return Call("POST", path("models", name, "unarchive"), model(Model), repeatable=True)


def compare(name: str, base: int, candidate: int) -> Call[Comparison]:
    """Every metric both versions report, with the direction-aware gain."""
    params = {"base": base, "candidate": candidate}
    return Call(
        "GET", path("models", name, "compare"), model(Comparison), params=params, repeatable=True
    )


def rollback(
    name: str, *, to_version: int | None = None, reason: str | None = None
) -> Call[AliasMove]:
    """Move `production` back to the version it held before (or to `to_version`)."""
    return Call(
        "POST",
        path("models", name, "rollback"),
        model(AliasMove),
        json=body(to_version=to_version, reason=reason),
    )


class Models(Resource[C]):
    register = method(register)
    list = paged(list_models)
    get = method(get)
    update = method(update)
    archive = method(archive)
    unarchive = method(unarchive)
    compare = method(compare)
    rollback = method(rollback)
