"""Multipart uploads (a model's archive, a benchmark's file): the form's parts, checked, and
an uploaded file written to disk in chunks with its SHA-256 and an optional size limit."""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.datastructures import FormData, UploadFile

from app.core.errors import AppError, ValidationFailed

CHUNK = 1 << 20


def parts(form: FormData, text: str, file: str, what: str) -> tuple[str, UploadFile]:
    """The form's text part and file part; 422 naming the parts that are missing."""
    value, upload = form.get(text), form.get(file)
    if not isinstance(value, str) or not isinstance(upload, UploadFile):
        raise ValidationFailed.of(
            [
                {"loc": ["body", part], "msg": "Field required", "type": "missing"}
                for part, found in ((text, value), (file, upload))
                if found is None
            ],
            f"multipart/form-data needs {what}",
        )
    return value, upload


async def saved(upload: UploadFile, target: Path, limit: tuple[int, AppError] | None = None) -> str:
    """Write the upload to `target`; its SHA-256 (hex). With a `limit` (bytes, error), the
    error past that many bytes."""
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if limit is not None and size > limit[0]:
                raise limit[1]
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()
