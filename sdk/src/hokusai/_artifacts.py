"""An artifact as the service takes it: an MLflow model directory is packed here (`.tar.gz`), an
archive file is sent as it is."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from hokusai.errors import ConfigurationError

ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")


def packed(artifact: str | os.PathLike[str]) -> tuple[str, bytes]:
    """(file name, bytes) of the archive to upload."""
    source = Path(artifact)
    if source.is_dir():
        if not (source / "MLmodel").is_file():
            raise ConfigurationError(f"{source} is not an MLflow model directory (no MLmodel file)")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(source.rglob("*")):
                tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
        return f"{source.name or 'model'}.tar.gz", buffer.getvalue()
    if source.is_file() and source.name.endswith(ARCHIVES):
        return source.name, source.read_bytes()
    raise ConfigurationError(
        f"artifact must be an MLflow model directory or a {', '.join(ARCHIVES)} file: {source}"
    )
