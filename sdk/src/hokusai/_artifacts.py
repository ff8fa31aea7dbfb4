"""An artifact as the service takes it: an MLflow model directory is packed here (`.tar.gz`), an
archive file is sent as it is, and a scikit-learn model object is saved as an MLflow model first
(with the `[mlflow]` extra)."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hokusai.errors import ConfigurationError

ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")


def packed(artifact: str | os.PathLike[str] | Any) -> tuple[str, bytes]:
    """(file name, bytes) of the archive to upload."""
    if not isinstance(artifact, str | os.PathLike):
        return _saved(artifact)
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


def _saved(model: Any) -> tuple[str, bytes]:
    """A scikit-learn estimator, saved as an MLflow model directory, then packed."""
    if not type(model).__module__.startswith("sklearn") or not hasattr(model, "predict"):
        raise ConfigurationError(
            "artifact must be a path, or a scikit-learn model object (other flavors: save them "
            "with mlflow.<flavor>.save_model and pass the directory)"
        )
    try:
        import mlflow.sklearn
    except ImportError as exc:
        raise ConfigurationError(
            "Saving a model object needs MLflow: pip install 'hokusai-ml-platform[mlflow]'"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="hokusai-model-") as workdir:
        directory = Path(workdir) / "model"
        # The flavor's own requirements: inferring them loads the model again in a subprocess
        # (some 13 s a model), and the service serves it in its own environment anyway.
        requirements = mlflow.sklearn.get_default_pip_requirements()
        mlflow.sklearn.save_model(model, str(directory), pip_requirements=requirements)
        return packed(directory)
