"""An artifact as the service takes it: an MLflow model directory is packed here (`.tar.gz`), an
archive file is sent as it is, and a scikit-learn model object is saved as an MLflow model first
(with the `[mlflow]` extra)."""

from __future__ import annotations

import contextlib
import gzip
import inspect
import io
import logging
import os
import tarfile
import tempfile
from collections.abc import Iterator
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
        return f"{source.name or 'model'}.tar.gz", _reproducible_tar_gz(source)
    if source.is_file() and source.name.endswith(ARCHIVES):
        return source.name, source.read_bytes()
    raise ConfigurationError(
        f"artifact must be an MLflow model directory or a {', '.join(ARCHIVES)} file: {source}"
    )


def _reproducible_tar_gz(source: Path) -> bytes:
    """The same files give the same bytes, whenever they are packed: an upload retried by a
    re-run of a pipeline step is then recognised by its Idempotency-Key (the service compares
    the bytes) instead of refused as a different request."""

    def normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(source.rglob("*")):
            arcname = path.relative_to(source).as_posix()
            tar.add(path, arcname=arcname, recursive=False, filter=normalised)
    return buffer.getvalue()


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
        options: dict[str, Any] = {"pip_requirements": requirements}
        if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
            options["skops_trusted_types"] = _own_types(model)
        with _quiet(logging.getLogger("mlflow.utils.environment"), PIP_VERSION_WARNING):
            mlflow.sklearn.save_model(model, str(directory), **options)
        return packed(directory)


# MLflow's note when the environment has no `pip` (uv's venvs): it only concerns the conda.yaml
# MLflow writes, which the service never uses; the user has nothing to do about it.
PIP_VERSION_WARNING = "Failed to resolve installed pip version"


@contextlib.contextmanager
def _quiet(logger: logging.Logger, message: str) -> Iterator[None]:
    """`logger` without its records that start with `message`, for the block."""

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(message)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _own_types(model: Any) -> list[str] | None:
    """MLflow 3 saves with skops, which refuses to load types it is not told to trust (tree
    models' `sklearn.tree._tree.Tree`). This object was built in this process, by its owner:
    the types it holds are the ones to trust, and only those."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model))) or None
