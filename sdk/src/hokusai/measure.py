"""The measurement rules of a held benchmark, once, for the service and for `hokusai verify
--recompute` alike: the metric functions and their arguments, the bootstrap's seed, and the
paired bootstrap of the gain. Pure functions over arrays; numpy and scikit-learn are imported
when called (`pip install 'hokusai-ml-platform[mlflow]'`).

The rules are the specification's (docs/reference/specification.md, "Measured DeltaOne"):

- ``accuracy`` -> ``accuracy_score``; ``precision``, ``recall``, ``f1`` -> ``precision_score``,
  ``recall_score``, ``f1_score``; ``roc_auc`` and ``auc`` -> ``roc_auc_score``; ``log_loss``;
  ``mse``, ``rmse``, ``mae``, ``r2`` -> ``mean_squared_error``, ``root_mean_squared_error``,
  ``mean_absolute_error``, ``r2_score``. Any other name is refused.
- ``labels``: the sorted distinct labels of the whole benchmark, passed wherever accepted; two
  classes: ``average="binary"`` with ``pos_label`` the last label; more: ``average="macro"`` and
  AUC ``multi_class="ovr"``; ``zero_division=0``.
- ``seed``: the first 8 bytes, big-endian, of SHA-256 over ``parent_digest + "\\n" +
  dataset_hash``; ``numpy.random.Generator(numpy.random.PCG64(seed))``; each draw is
  ``rng.integers(0, n, size=n)``; a draw where either metric is undefined is skipped; more than
  5% skipped is ``evaluation_undefined``; the interval is ``numpy.percentile(kept, [2.5, 97.5])``.

A resample is computed as the metric with each row weighted by how often the draw took it
(`sample_weight`), which is the metric of the resampled rows; accuracy, MSE, RMSE, MAE and log
loss take the weighted mean of their per-row terms, as the specification allows."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FUNCTIONS = {
    "accuracy": "accuracy_score",
    "precision": "precision_score",
    "recall": "recall_score",
    "f1": "f1_score",
    "roc_auc": "roc_auc_score",
    "auc": "roc_auc_score",
    "log_loss": "log_loss",
    "mse": "mean_squared_error",
    "rmse": "root_mean_squared_error",
    "mae": "mean_absolute_error",
    "r2": "r2_score",
}
CLASSIFICATION = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "auc", "log_loss"})
SCORES = frozenset({"roc_auc", "auc", "log_loss"})  # one column of scores per label
DEFAULT_DRAWS = 2000
MIN_DRAWS = 1000
MAX_SKIPPED = 0.05
PLACES = 6
CHUNK_ROWS = 5000  # rows per model call when a benchmark is predicted
GENERATED = frozenset({"registered_model_meta"})  # written into a model folder by the registry


class MeasurementError(ValueError):
    """A measurement that cannot be made. `code`: `unknown_metric`, `evaluation_failed` (the
    model's output has the wrong shape or type) or `evaluation_undefined` (too many resamples
    where the metric is undefined)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Metric:
    """A benchmark metric: its scikit-learn function and the arguments it is called with."""

    name: str
    function: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_scores(self) -> bool:
        return self.name in SCORES

    def describe(self) -> dict[str, Any]:
        """What an attestation records of it."""
        function = f"sklearn.metrics.{self.function}"
        return {"name": self.name, "function": function, "arguments": self.arguments}


def metric(name: str, labels: Sequence[Any] | None = None) -> Metric:
    """The metric `name` on a benchmark whose distinct labels are `labels` (classification)."""
    if name not in FUNCTIONS:
        known = ", ".join(sorted(FUNCTIONS))
        raise MeasurementError("unknown_metric", f"no measured metric {name!r}; known: {known}")
    if name not in CLASSIFICATION:
        return Metric(name, FUNCTIONS[name])
    classes = sorted(_plain(label) for label in labels or [])
    if len(classes) < 2:
        raise MeasurementError("evaluation_failed", f"{name} needs at least two labels")
    arguments: dict[str, Any] = {}
    if name in ("precision", "recall", "f1"):
        arguments = {"labels": classes, "zero_division": 0}
        if len(classes) == 2:
            arguments.update(average="binary", pos_label=classes[-1])
        else:
            arguments["average"] = "macro"
    elif name in ("roc_auc", "auc"):
        arguments = {"labels": classes} if len(classes) > 2 else {}
        if len(classes) > 2:
            arguments.update(average="macro", multi_class="ovr")
    elif name == "log_loss":
        arguments = {"labels": classes}
    return Metric(name, FUNCTIONS[name], arguments)


def seed(parent_digest: str, dataset_hash: str) -> int:
    """The bootstrap's seed: it depends on the parent and the dataset, never on the candidate,
    so re-saving a candidate cannot draw other resamples."""
    digest = hashlib.sha256(f"{parent_digest}\n{dataset_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def rounded(value: float) -> float:
    """Half-even rounding to six places, applied before any comparison."""
    from decimal import ROUND_HALF_EVEN, Decimal

    return float(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-PLACES), ROUND_HALF_EVEN))


def prepared(m: Metric, y_true: Any, predictions: Any) -> Any:
    """The model's output as the metric needs it: one label (cast to the labels' type) or value
    per row, or one column of scores per label. `evaluation_failed` for another shape."""
    import numpy as np

    y = np.asarray(y_true)
    output = np.asarray(predictions)
    if m.needs_scores:
        classes = m.arguments.get("labels") or sorted(_plain(v) for v in np.unique(y))
        if output.ndim != 2 or output.shape != (len(y), len(classes)):
            raise MeasurementError(
                "evaluation_failed",
                f"{m.name} needs one score column per label ({len(classes)}) for each row",
            )
        scores = output.astype(float)
        if not np.isfinite(scores).all():
            raise MeasurementError("evaluation_failed", "the model's scores are not all finite")
        return scores
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]
    if output.ndim != 1 or len(output) != len(y):
        raise MeasurementError(
            "evaluation_failed", f"{m.name} needs one prediction per row ({len(y)})"
        )
    try:
        cast = output.astype(y.dtype)
    except (TypeError, ValueError) as exc:
        raise MeasurementError(
            "evaluation_failed", f"the predictions are not of the labels' type ({y.dtype})"
        ) from exc
    if m.name not in CLASSIFICATION and not np.isfinite(cast.astype(float)).all():
        raise MeasurementError("evaluation_failed", "the predictions are not all finite")
    return cast


def value(m: Metric, y_true: Any, predictions: Any, weights: Any = None) -> float | None:
    """The metric of prepared predictions (with rows weighted by `weights`); None where it is
    undefined (AUC with one class present, R² with constant labels)."""
    import numpy as np
    from sklearn import metrics as sk

    y = np.asarray(y_true)
    present = weights > 0 if weights is not None else np.ones(len(y), dtype=bool)
    if m.name in ("roc_auc", "auc") and len(np.unique(y[present])) < 2:
        return None
    if m.name == "r2" and len(np.unique(y[present])) < 2:
        return None
    if weights is not None and m.name in _PER_ROW:
        terms = _PER_ROW[m.name](m, y, predictions)
        mean = float(np.dot(weights, terms) / weights.sum())
        return math.sqrt(mean) if m.name == "rmse" else mean
    function = getattr(sk, m.function)
    scores = predictions
    if m.name in ("roc_auc", "auc") and len(m.arguments.get("labels", [])) <= 2:
        scores = predictions[:, -1]  # binary: the last label's score
    try:
        result = float(function(y, scores, sample_weight=weights, **m.arguments))
    except ValueError:
        return None
    return result if math.isfinite(result) else None


def _accuracy_terms(m: Metric, y: Any, predictions: Any) -> Any:
    return (y == predictions).astype(float)


def _squared_terms(m: Metric, y: Any, predictions: Any) -> Any:
    return (y.astype(float) - predictions.astype(float)) ** 2


def _absolute_terms(m: Metric, y: Any, predictions: Any) -> Any:
    import numpy as np

    return np.abs(y.astype(float) - predictions.astype(float))


def _log_loss_terms(m: Metric, y: Any, scores: Any) -> Any:
    """sklearn's log loss per row: scores clipped to [eps, 1 - eps], minus the log of the true
    label's score."""
    import numpy as np

    classes = list(m.arguments["labels"])
    eps = np.finfo(scores.dtype).eps
    clipped = np.clip(scores, eps, 1 - eps)
    index = np.searchsorted(np.asarray(classes), y)
    return -np.log(clipped[np.arange(len(y)), index])


_PER_ROW = {
    "accuracy": _accuracy_terms,
    "mse": _squared_terms,
    "rmse": _squared_terms,
    "mae": _absolute_terms,
    "log_loss": _log_loss_terms,
}


@dataclass(frozen=True)
class PairedBootstrap:
    """The measured gain of a candidate over its parent on the same rows: the point gain (the
    metric on all rows) and its 95% interval, in the decision's unit (x100 for proportions),
    signed so that positive is better."""

    metric: Metric
    rows: int
    parent_value: float
    candidate_value: float
    gain: float
    ci_low: float
    ci_high: float
    draws: int
    kept: int
    skipped: int
    seed: int

    def describe(self) -> dict[str, Any]:
        return {
            "metric": self.metric.describe(),
            "rows": self.rows,
            "parent_value": rounded(self.parent_value),
            "candidate_value": rounded(self.candidate_value),
            "gain": rounded(self.gain),
            "ci_low": rounded(self.ci_low),
            "ci_high": rounded(self.ci_high),
            "bootstrap": {
                "draws": self.draws,
                "kept": self.kept,
                "skipped": self.skipped,
                "seed": str(self.seed),  # a 64-bit integer: past JSON's safe integers
                "percentiles": [2.5, 97.5],
            },
        }


def paired_bootstrap(
    m: Metric,
    y_true: Any,
    parent: Any,
    candidate: Any,
    *,
    higher_is_better: bool,
    proportion: bool,
    seed: int,
    draws: int = DEFAULT_DRAWS,
) -> PairedBootstrap:
    """Both models' prepared predictions on the same rows, resampled together `draws` times."""
    import numpy as np

    if draws < MIN_DRAWS:
        raise ValueError(f"at least {MIN_DRAWS} draws")
    y = np.asarray(y_true)
    n = len(y)
    sign = (1.0 if higher_is_better else -1.0) * (100.0 if proportion else 1.0)
    parent_value = value(m, y, parent)
    candidate_value = value(m, y, candidate)
    if parent_value is None or candidate_value is None:
        raise MeasurementError("evaluation_undefined", f"{m.name} is undefined on these rows")
    rng = np.random.Generator(np.random.PCG64(seed))
    kept: list[float] = []
    skipped = 0
    while len(kept) < draws:
        weights = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(float)
        after = value(m, y, candidate, weights)
        before = value(m, y, parent, weights)
        if after is None or before is None:
            skipped += 1
            if skipped > draws * MAX_SKIPPED / (1 - MAX_SKIPPED):
                raise MeasurementError(
                    "evaluation_undefined",
                    f"{m.name} is undefined on more than {MAX_SKIPPED:.0%} of the resamples",
                )
            continue
        kept.append(sign * (after - before))
    low, high = np.percentile(np.asarray(kept), [2.5, 97.5], method="linear")
    return PairedBootstrap(
        metric=m,
        rows=n,
        parent_value=parent_value,
        candidate_value=candidate_value,
        gain=sign * (candidate_value - parent_value),
        ci_low=float(low),
        ci_high=float(high),
        draws=draws,
        kept=len(kept),
        skipped=skipped,
        seed=seed,
    )


def read_benchmark(path: Path | str, format: str | None = None) -> Any:
    """A benchmark file's rows as a pandas DataFrame: Parquet (told, or found by its `PAR1`
    magic) through pyarrow, anything else as CSV through pandas."""
    path = Path(path)
    if format is None:
        with path.open("rb") as handle:
            format = "parquet" if handle.read(4) == b"PAR1" else "csv"
    if format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pandas()
    import pandas as pd

    return pd.read_csv(path)


def artifact_digest(root: Path) -> str:
    """An MLflow model folder's digest, which names a version, derives the bootstrap's seed and
    tells an identical artifact: `sha256:` over the sorted (relative path, content sha256) pairs
    of its files; a link counts as its target path; `registered_model_meta` (written by the
    registry) is left out. Independent of archive format, order and timestamps."""
    total = hashlib.sha256()
    for relative, path in sorted(artifact_files(root)):
        if path.is_symlink():
            file_digest = hashlib.sha256(("link:" + os.readlink(path)).encode()).hexdigest()
        else:
            file_hash = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    file_hash.update(chunk)
            file_digest = file_hash.hexdigest()
        total.update(f"{relative}\0{file_digest}\n".encode())
    return "sha256:" + total.hexdigest()


def artifact_files(root: Path) -> Iterator[tuple[str, Path]]:
    """The files (and links) of a model folder that make up its digest, by relative path."""
    for directory, folders, files in os.walk(root):
        folders.sort()
        links = [name for name in folders if (Path(directory) / name).is_symlink()]
        for name in sorted(files + links):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if relative not in GENERATED:
                yield relative, path


def predictions_digest(predictions: Any) -> str:
    """`sha256:` over the predictions' canonical bytes (float64 or UTF-8 JSON), as recorded."""
    import json

    import numpy as np

    array = np.asarray(predictions)
    if array.dtype.kind in "biuf":
        data = np.ascontiguousarray(array, dtype="<f8").tobytes()
    else:
        data = json.dumps([_plain(v) for v in array.ravel()], separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _plain(label: Any) -> Any:
    """numpy scalars as Python values (so they sort, compare and print as JSON)."""
    return label.item() if hasattr(label, "item") else label
