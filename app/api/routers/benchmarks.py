from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from app.api import uploads
from app.api.auth import BenchmarkerDep, ReaderDep
from app.api.deps import BenchmarkServiceDep, SettingsDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX, Limit, Offset
from app.api.routing import Route
from app.core.errors import BenchmarkTooLarge, UnsupportedMediaType, ValidationFailed
from app.schemas.benchmarks import BenchmarkPage, BenchmarkRead
from app.schemas.common import DEFAULT_LIMIT
from app.schemas.ml_models import DATASET_HASH

router = APIRouter(
    prefix=f"{API_PREFIX}/benchmarks",
    tags=["benchmarks"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)
Hash = Annotated[str, PathParam(pattern=DATASET_HASH, max_length=71)]
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "label_column"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "label_column": {"type": "string", "minLength": 1, "maxLength": 250},
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=BenchmarkRead,
    responses={200: {"model": BenchmarkRead}, **problems(400, 413, 415, 422)},
    openapi_extra=UPLOAD_BODY,
)
async def upload_benchmark(
    request: Request,
    principal: BenchmarkerDep,
    benchmarks: BenchmarkServiceDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Hold a benchmark: a Parquet or CSV file with feature columns and the `label_column`.
    201 with its summary; the same file again answers the benchmark already held (200)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("Send multipart/form-data with `file` and `label_column`")
    workdir = Path(tempfile.mkdtemp(prefix="hokusai-benchmark-"))
    try:
        async with request.form(
            max_files=1, max_fields=1, max_part_size=settings.max_body_bytes
        ) as form:
            label_column, upload = uploads.parts(
                form, "label_column", "file", "a `file` and a `label_column`"
            )
            if not 0 < len(label_column) <= 250 or "\x00" in label_column:
                raise ValidationFailed.at(["body", "label_column"], "1 to 250 characters, no NUL")
            file = workdir / "upload"
            limit = settings.benchmark_max_bytes
            too_large = BenchmarkTooLarge(f"The file is over {limit} bytes")
            digest = "sha256:" + await uploads.saved(upload, file, (limit, too_large))
        benchmark, created = await benchmarks.upload(file, digest, label_column, principal)
        body = BenchmarkRead.model_validate(benchmark).model_dump(mode="json")
        return JSONResponse(body, status_code=201 if created else 200)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@router.get("", response_model=BenchmarkPage, responses=problems(422))
async def list_benchmarks(
    _: ReaderDep,
    benchmarks: BenchmarkServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> BenchmarkPage:
    """Held benchmarks, newest first: their summaries, never a row."""
    items, total = await benchmarks.list(limit=limit, offset=offset)
    return BenchmarkPage(
        items=[BenchmarkRead.model_validate(b) for b in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{hash}", response_model=BenchmarkRead, responses=problems(404, 422))
async def get_benchmark(hash: Hash, _: ReaderDep, benchmarks: BenchmarkServiceDep) -> BenchmarkRead:
    """A held benchmark's summary: hash, format, rows, columns, label column and distribution."""
    return BenchmarkRead.model_validate(await benchmarks.get(hash))


@router.get(
    "/{hash}/file",
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "description": "The file's bytes",
        },
        **problems(404, 422),
    },
)
async def get_benchmark_file(
    hash: Hash, _: BenchmarkerDep, benchmarks: BenchmarkServiceDep
) -> FileResponse:
    """The benchmark's bytes, rows and labels: the `benchmark` scope (or `admin`) only."""
    workdir = Path(tempfile.mkdtemp(prefix="hokusai-benchmark-"))
    try:
        path = await benchmarks.file(await benchmarks.get(hash), workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=path.name,
        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
    )


@router.post("/{hash}/retire", response_model=BenchmarkRead, responses=problems(404, 422))
async def retire_benchmark(
    hash: Hash, _: BenchmarkerDep, benchmarks: BenchmarkServiceDep
) -> BenchmarkRead:
    """Retire a benchmark: new baselines may no longer name it; what was measured stays."""
    return BenchmarkRead.model_validate(await benchmarks.retire(hash))
