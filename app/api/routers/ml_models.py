"""Models, versions and compare (aliases and rollback: `aliases.py`). The URL says `models`; the
code says `ml_models`, so it never collides with ORM models or pydantic's BaseModel."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from app.api import uploads
from app.api.auth import ReaderDep, WriterDep, check_scope
from app.api.deps import (
    MlModelServiceDep,
    RegistrationServiceDep,
    ResourcesDep,
    SettingsDep,
)
from app.api.errors import AUTHENTICATED, problems
from app.api.idempotency import Idempotent, IdempotentDep
from app.api.routers import API_PREFIX, Limit, Offset
from app.api.routing import Route, parsed
from app.core.config import Settings
from app.core.errors import UnsupportedMediaType
from app.core.security import Principal, Scope
from app.core.vocabulary import ModelType
from app.schemas.common import DEFAULT_LIMIT, MAX_INTEGER
from app.schemas.ml_models import (
    Comparison,
    DescriptionAndTags,
    MlModelRead,
    ModelPage,
    ModelUpdate,
    VersionMetadata,
    VersionPage,
    VersionRead,
    VersionRegister,
)
from app.services.registration import RegistrationService

router = APIRouter(
    prefix=f"{API_PREFIX}/models",
    tags=["models"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)

VersionNumber = Annotated[int, Path(ge=1, le=MAX_INTEGER)]

REGISTER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/VersionRegister"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,  # one metadata part and one file, nothing else
                    "required": ["metadata", "artifact"],
                    "properties": {
                        "metadata": {
                            "type": "string",
                            "description": "VersionMetadata as JSON",
                            "contentMediaType": "application/json",
                        },
                        "artifact": {
                            "type": "string",
                            "format": "binary",
                            "description": "An MLflow model directory as .tar.gz or .zip",
                        },
                    },
                },
                "encoding": {"metadata": {"contentType": "application/json"}},
            },
        },
    }
}
# Registration takes JSON or multipart, which FastAPI cannot declare from a signature: its body is
# declared above, and the models it refers to are added to the OpenAPI components by the app.
BODY_SCHEMAS: tuple[type[BaseModel], ...] = (VersionRegister, VersionMetadata)


@router.post(
    "/register",
    status_code=201,
    response_model=VersionRead,
    responses=problems(400, 404, 409, 413, 415, 422),
    openapi_extra=REGISTER_BODY,
)
async def register_version(
    request: Request,
    principal: WriterDep,
    registration: RegistrationServiceDep,
    idempotent: IdempotentDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Register a baseline or improved version: JSON with `source_uri` (an artifact already in
    MLflow), or multipart with a `metadata` part and an `artifact` archive that is forwarded to
    MLflow."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        metadata = parsed(VersionRegister, await request.body())
        return await idempotent(
            principal,
            metadata.model_dump(mode="json"),
            lambda: registration.register_version(
                metadata, metadata.source_uri, principal, idempotent.request_key(principal)
            ),
        )
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType("Send application/json or multipart/form-data")
    return await _register_upload(request, principal, registration, idempotent, settings)


async def _register_upload(
    request: Request,
    principal: Principal,
    registration: RegistrationService,
    idempotent: Idempotent,
    settings: Settings,
) -> JSONResponse:
    workdir = FilePath(tempfile.mkdtemp(prefix="hokusai-upload-"))
    try:
        async with request.form(
            max_files=1, max_fields=1, max_part_size=settings.max_body_bytes
        ) as form:
            metadata_part, upload = uploads.parts(
                form, "metadata", "artifact", "a `metadata` part (JSON) and an `artifact` file"
            )
            metadata = parsed(VersionMetadata, metadata_part, "metadata")
            archive = workdir / "upload"
            archive_sha256 = await uploads.saved(upload, archive)
        return await idempotent(
            principal,
            {"metadata": metadata.model_dump(mode="json"), "artifact_sha256": archive_sha256},
            lambda: registration.register_version(
                metadata, archive, principal, idempotent.request_key(principal)
            ),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


IncludeArchived = Annotated[
    bool, Query(description="List archived ones too (each has `archived_at` set)")
]


@router.get("", response_model=ModelPage, responses=problems(422))
async def list_models(
    _: ReaderDep,
    ml_models: MlModelServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    token_id: str | None = None,
    model_type: ModelType | None = None,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Only models whose name or token id contains this text, in any case",
        ),
    ] = None,
    include_archived: IncludeArchived = False,
) -> ModelPage:
    """List models by name, optionally only those with a token id, of a model type, or whose
    name or token id contains `search`. Archived models only with `include_archived`."""
    items, total = await ml_models.list_models(
        limit=limit,
        offset=offset,
        token_id=token_id,
        model_type=model_type,
        search=search,
        include_archived=include_archived,
    )
    return ModelPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{name}", response_model=MlModelRead, responses=problems(404, 422))
async def get_model(name: str, _: ReaderDep, ml_models: MlModelServiceDep) -> MlModelRead:
    """A model: type, token id, benchmark, latest version and aliases."""
    return await ml_models.read_model(await ml_models.get_model(name))


@router.patch("/{name}", response_model=MlModelRead, responses=problems(404, 422))
async def update_model(
    name: str,
    body: ModelUpdate,
    principal: WriterDep,
    ml_models: MlModelServiceDep,
    resources: ResourcesDep,
) -> MlModelRead:
    """Change a model's description or tags (mirrored to MLflow), or (with the `benchmark`
    scope) whether its improvements must be measured on a held benchmark."""
    if body.require_measurement is not None:
        check_scope(principal, Scope.BENCHMARK, resources.metrics)
    model = await ml_models.get_model(name)
    return await ml_models.update_model(
        model, body.description, body.tags, body.require_measurement
    )


@router.post("/{name}/archive", response_model=MlModelRead, responses=problems(404, 409, 422))
async def archive_model(name: str, _: WriterDep, ml_models: MlModelServiceDep) -> MlModelRead:
    """Archive a model: left out of lists, it takes no new version, alias or A/B test and serves
    no prediction (409 `model_archived`); its versions, lineage and attestations stay readable
    and verifiable. Nothing is deleted. 409 `in_use` while an A/B test of it runs or is paused."""
    return await ml_models.archive_model(name, archived=True)


@router.post("/{name}/unarchive", response_model=MlModelRead, responses=problems(404, 422))
async def unarchive_model(name: str, _: WriterDep, ml_models: MlModelServiceDep) -> MlModelRead:
    """Bring an archived model back: listed, predicting, taking versions again."""
    return await ml_models.archive_model(name, archived=False)


@router.get("/{name}/versions", response_model=VersionPage, responses=problems(404, 422))
async def list_versions(
    name: str,
    _: ReaderDep,
    ml_models: MlModelServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    include_archived: IncludeArchived = False,
) -> VersionPage:
    """A model's versions, newest first; archived ones only with `include_archived`."""
    model = await ml_models.get_model(name)
    items, total = await ml_models.list_versions(
        model, limit=limit, offset=offset, include_archived=include_archived
    )
    return VersionPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{name}/versions/{version}", response_model=VersionRead, responses=problems(404, 422))
async def get_version(
    name: str, version: VersionNumber, _: ReaderDep, ml_models: MlModelServiceDep
) -> VersionRead:
    """One version: metrics, dataset, benchmark, parent, artifact, contributors and delta."""
    model = await ml_models.get_model(name)
    return await ml_models.read_version(model, await ml_models.get_version(model, version))


@router.patch(
    "/{name}/versions/{version}", response_model=VersionRead, responses=problems(404, 422)
)
async def update_version(
    name: str,
    version: VersionNumber,
    body: DescriptionAndTags,
    _: WriterDep,
    ml_models: MlModelServiceDep,
) -> VersionRead:
    """Change a version's description or tags (mirrored to MLflow); nothing else changes."""
    model = await ml_models.get_model(name)
    found = await ml_models.get_version(model, version)
    return await ml_models.update_version(model, found, body.description, body.tags)


@router.post(
    "/{name}/versions/{version}/archive",
    response_model=VersionRead,
    responses=problems(404, 409, 422),
)
async def archive_version(
    name: str, version: VersionNumber, _: WriterDep, ml_models: MlModelServiceDep
) -> VersionRead:
    """Archive a version: left out of lists and of "latest", it takes no alias and serves no
    prediction by number (409 `version_archived`); its lineage and attestation stay readable and
    verifiable. 409 `in_use` while an alias or a live A/B test points at it."""
    return await ml_models.archive_version(name, version, archived=True)


@router.post(
    "/{name}/versions/{version}/unarchive",
    response_model=VersionRead,
    responses=problems(404, 422),
)
async def unarchive_version(
    name: str, version: VersionNumber, _: WriterDep, ml_models: MlModelServiceDep
) -> VersionRead:
    """Bring an archived version back."""
    return await ml_models.archive_version(name, version, archived=False)


@router.get(
    "/{name}/versions/{version}/artifact",
    response_class=FileResponse,
    responses={
        200: {
            # Bytes as every common generator reads them with no option set (a gzip media type
            # makes openapi-python-client drop the response); the file name says .tar.gz.
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "description": "The model as .tar.gz (Content-Disposition names the file); "
            "X-Artifact-Digest is its artifact digest",
            "headers": {
                "X-Artifact-Digest": {
                    "schema": {"type": "string"},
                    "description": "sha256 of the model's canonical file set",
                }
            },
        },
        **problems(404, 422),
    },
)
async def download_artifact(
    name: str, version: VersionNumber, _: ReaderDep, ml_models: MlModelServiceDep
) -> FileResponse:
    """The version's MLflow model directory as a .tar.gz archive."""
    model = await ml_models.get_model(name)
    found = await ml_models.get_version(model, version)
    workdir = FilePath(tempfile.mkdtemp(prefix="hokusai-download-"))
    try:
        archive = await ml_models.download_artifact(model, found, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/octet-stream",
        filename=archive.name,
        headers={"X-Artifact-Digest": found.artifact_digest},
        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
    )


@router.get("/{name}/compare", response_model=Comparison, responses=problems(404, 422))
async def compare_versions(
    name: str,
    base: Annotated[int, Query(ge=1, le=MAX_INTEGER)],
    candidate: Annotated[int, Query(ge=1, le=MAX_INTEGER)],
    _: ReaderDep,
    ml_models: MlModelServiceDep,
) -> Comparison:
    """Every metric both versions report: absolute, relative and direction-aware gain, and
    which is better."""
    return await ml_models.compare(await ml_models.get_model(name), base, candidate)
