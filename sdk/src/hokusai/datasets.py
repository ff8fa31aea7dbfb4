"""The benchmark dataset's identity: `sha256:<64 lowercase hex>` (the form the service checks).

DeltaOne compares a version with its parent only when both were measured on the same benchmark
dataset, recognised by this hash. Hash the exact bytes you evaluate on: a file as stored, or a
pandas DataFrame in a fixed form (CSV, UTF-8, no index, columns in their order)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def dataset_hash(data: bytes | str | os.PathLike[str] | Any) -> str:
    """`sha256:` + the SHA-256 of `data`: bytes, a file's path (read in chunks), or a pandas
    DataFrame (its CSV without index, so the same rows in the same order give the same hash)."""
    digest = hashlib.sha256()
    if isinstance(data, bytes | bytearray | memoryview):
        digest.update(data)
    elif isinstance(data, str | os.PathLike):
        with Path(data).open("rb") as file:
            while chunk := file.read(CHUNK):
                digest.update(chunk)
    elif hasattr(data, "to_csv"):
        digest.update(data.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    else:
        raise TypeError(
            "dataset_hash takes bytes, a file path or a pandas DataFrame, "
            f"not {type(data).__name__}"
        )
    return f"sha256:{digest.hexdigest()}"
