"""Model runners: the only processes where an uploaded model's code runs.

The API process starts one **zygote** per API process (`python -E -s app/sandbox/runner.py`,
with an environment built from nothing): it confines itself (no network, no programs, files
read-only but for its scratch folder), imports the model libraries once, and then forks one
**runner** per loaded model version when the API asks. A runner confines itself further to
its model's folder and a private temporary folder, refuses new processes, takes its memory
and file limits, loads the model, and then answers calls until it is killed. Neither holds a
secret: no setting, key, URL or connection of the service ever reaches them.

The wire, on sockets the API process made (`socketpair`), so the runners need no socket of
their own: a frame is a 4-byte big-endian length, a kind byte and the payload.
- zygote control (SOCK_SEQPACKET, one frame a message): `S` spawn (JSON; with the runner's
  channel and its stderr as passed descriptors) -> `P` spawned {id, pid} or `E` {id, error};
  `X` {pid, code, signal} when a runner exits; `R` once, when the zygote is ready.
- runner channel (SOCK_STREAM): `L` loaded {pid, columns} or `F` failed, once; then each `C`
  call (rows, in `encode_rows`) is answered by `A` (a JSON list, one value a row) or `F`
  {type, message, memory}.

Standard library only, until the zygote imports the model libraries (inside its sandbox)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
from collections.abc import Callable
from itertools import chain
from operator import itemgetter
from typing import Any

try:  # imported by the API process as part of the app
    from app.sandbox import kernel
except ImportError:  # run as a script: only this folder is on sys.path
    import kernel  # type: ignore[import-not-found,no-redef]

HEADER = struct.Struct("!IB")
SPAWN, SPAWNED, SPAWN_FAILED, EXITED, READY = b"S", b"P", b"E", b"X", b"R"
LOADED, FAILED, CALL, ANSWERS = b"L", b"F", b"C", b"A"
JSON_ROWS, DOUBLE_MATRIX = b"J", b"D"
NUMBER_TYPES = frozenset({"double", "float"})
SKLEARN = "mlflow.sklearn"
# What a zygote imports once, so that a runner starts in milliseconds (missing ones are skipped).
PRELOAD = (
    "numpy",
    "pandas",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.pipeline",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "skops.io",
    "orjson",
)


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(len(payload) + 1, kind[0]) + payload


def encode_rows(rows: list[dict[str, Any]], columns: list[dict[str, Any]] | None) -> bytes:
    """Rows for a call: one float64 matrix in the signature's column order when every column
    is a double (the common case; absent or null is NaN), else the rows as JSON."""
    if columns and all(column["type"] in NUMBER_TYPES for column in columns):
        import numpy as np

        names = [column["name"] for column in columns]
        try:  # the usual rows, holding every name: read in C
            values = map(itemgetter(*names), rows)
            flat = chain.from_iterable(values) if len(names) > 1 else values
            matrix = np.fromiter(flat, dtype="<f8", count=len(rows) * len(names))
        except (KeyError, TypeError):
            matrix = np.array([[row.get(name) for name in names] for row in rows], dtype="<f8")
        return DOUBLE_MATRIX + matrix.tobytes()
    return JSON_ROWS + json.dumps(rows, separators=(",", ":")).encode()


# The zygote and the runners.


def main() -> None:
    config = json.loads(sys.argv[1])
    control = socket.socket(fileno=int(config["control_fd"]))
    try:
        _zygote(control, config)
    except BaseException as exc:
        _send_seqpacket(control, SPAWN_FAILED, {"id": None, "error": _describe(exc)})
        raise


def _zygote(control: socket.socket, config: dict[str, Any]) -> None:
    kernel.die_with_parent()
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sandbox = config["sandbox"]
    if sandbox["enforce"]:
        kernel.restrict_files_and_network(  # /proc: each runner narrows it to its own
            [*sandbox["read"], config["models_dir"], "/proc"],
            [config["scratch_dir"], os.devnull],
            sandbox["landlock_abi"],
        )
        kernel.restrict_system_calls(zygote=True)
    for module in PRELOAD:
        try:
            __import__(module)
        except Exception as exc:  # a library the service does not ship: models that need it fail
            print(f"zygote: {module} not preloaded: {_describe(exc)}", file=sys.stderr)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    _send_seqpacket(control, READY, {"pid": os.getpid()})
    while True:
        readable, _, _ = select.select([control.fileno(), wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
        _reap(control)
        if control.fileno() not in readable:
            continue
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 2)
        if not message:
            os._exit(0)  # the API process is gone
        request = json.loads(message[HEADER.size :])
        try:
            pid = os.fork()
        except OSError as exc:
            _close(fds)
            _send_seqpacket(control, SPAWN_FAILED, {"id": request["id"], "error": _describe(exc)})
            continue
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (wake_read, wake_write, control.fileno()):
                os.close(fd)
            _runner(fds[0], fds[1], request, sandbox)  # never returns
        _close(fds)
        _send_seqpacket(control, SPAWNED, {"id": request["id"], "pid": pid})


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        report = {
            "pid": pid,
            "code": code if code >= 0 else None,
            "signal": -code if code < 0 else None,
        }
        _send_seqpacket(control, EXITED, report)


def _runner(
    channel_fd: int, stderr_fd: int, request: dict[str, Any], sandbox: dict[str, Any]
) -> None:
    """A forked runner: confine, load the model, answer calls. Exits, never returns."""
    os.dup2(stderr_fd, 1)  # what the model prints goes to the log, never into the channel
    os.dup2(stderr_fd, 2)
    os.close(stderr_fd)
    sys.stdout = sys.stderr
    channel = socket.socket(fileno=channel_fd)
    status = 0
    try:
        kernel.die_with_parent()
        kernel.limit_resources(
            memory_bytes=request["memory_bytes"],
            max_threads=request["max_threads"],
            max_file_bytes=request["max_file_bytes"],
        )
        if sandbox["enforce"]:
            kernel.restrict_files_and_network(
                [*sandbox["read"], request["model_dir"], f"/proc/{os.getpid()}"],
                [request["tmp_dir"], os.devnull],
                sandbox["landlock_abi"],
            )
            kernel.restrict_system_calls()
        os.chdir(request["tmp_dir"])
        for name in ("HOME", "TMPDIR", "TMP", "TEMP"):
            os.environ[name] = request["tmp_dir"]
        import tempfile

        tempfile.tempdir = request["tmp_dir"]
        status = _serve(channel, request)
    except BaseException as exc:  # reported, then the runner ends
        with contextlib.suppress(OSError):
            _send(channel, FAILED, {"type": type(exc).__name__, "message": _describe(exc)})
        status = 70
    finally:
        sys.stderr.flush()
        os._exit(status)


def _serve(channel: socket.socket, request: dict[str, Any]) -> int:
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(request["model_dir"])
    columns = _columns(model)
    predict = _predictor(model, columns)
    _send(channel, LOADED, {"pid": os.getpid(), "columns": columns})
    limit = int(request["max_frame_bytes"])
    reader = channel.makefile("rb")
    while True:
        head = reader.read(HEADER.size)
        if len(head) < HEADER.size:
            return 0  # the API closed the channel
        length, kind = HEADER.unpack(head)
        if length - 1 > limit:
            return 71
        payload = reader.read(length - 1)
        if kind != CALL[0] or len(payload) != length - 1:
            return 71
        try:
            answers = _json(predict(payload))
            if len(answers) > limit:
                raise ValueError(f"the model's answer is {len(answers)} bytes; at most {limit}")
        except MemoryError:
            limit_mib = request["memory_bytes"] >> 20
            message = f"the model needed more than the runner's {limit_mib} MiB"
            _send(channel, FAILED, {"type": "MemoryError", "message": message, "memory": True})
            return 75  # replaced by a fresh runner: memory after a MemoryError is suspect
        except Exception as exc:  # the model's own error: the request at fault sees it
            _send(channel, FAILED, {"type": type(exc).__name__, "message": _describe(exc)})
            continue
        channel.sendall(frame(ANSWERS, answers))


def _columns(model: Any) -> list[dict[str, Any]] | None:
    schema = model.metadata.get_input_schema()
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    return [
        {"name": s.name, "type": s.type.name, "required": bool(getattr(s, "required", True))}
        for s in schema.inputs
    ]


def _predictor(model: Any, columns: list[dict[str, Any]] | None) -> Callable[[bytes], list[Any]]:
    """The call of a loaded pyfunc model: payload in, one JSON value per row out."""
    import numpy as np
    import pandas as pd

    names = [column["name"] for column in columns or []]
    floats = [column["name"] for column in columns or [] if column["type"] in NUMBER_TYPES]
    direct = _matrix_function(model, names) if columns and len(floats) == len(columns) else None

    def call(payload: bytes) -> list[Any]:
        encoding, data = payload[:1], payload[1:]
        if encoding == DOUBLE_MATRIX:
            matrix = np.frombuffer(data, dtype="<f8").reshape(-1, len(names))
            if direct is not None:
                # Column-major, as a DataFrame holds it: the same sums in the same order.
                return _rows_of(direct(np.asfortranarray(matrix)), len(matrix))
            frame_ = pd.DataFrame(matrix, columns=names)
        else:
            rows = json.loads(data)
            if columns is None:
                frame_ = pd.DataFrame(rows)
            else:
                # JSON has one number type: 3 for a double column is 3.0, which MLflow won't cast.
                rows = [
                    {**row, **{n: float(row[n]) for n in floats if row.get(n) is not None}}
                    for row in rows
                ]
                frame_ = pd.DataFrame(rows, columns=names)
        return _rows_of(model.predict(frame_), len(frame_))

    return call


def _matrix_function(model: Any, names: list[str]) -> Callable[[Any], Any] | None:
    """For a scikit-learn model whose signature is all doubles: its prediction function (the
    one the MLmodel file names: predict, predict_proba, ...) called on the float64 matrix
    without MLflow's schema enforcement, which would change nothing in it (the API process
    checked every row against the same signature: names, nulls, types) and costs more than the
    model. A plain estimator of scikit-learn's own gets the matrix as it is, as scikit-learn
    would convert the DataFrame itself; a pipeline, a column transformer, a meta-estimator or
    a class of anyone else's gets a DataFrame (it may select columns by name). None for any
    other model: it goes through `model.predict`, enforcement and all."""
    if getattr(model, "loader_module", None) != SKLEARN:
        return None
    if any(column.type.name != "double" for column in model.metadata.get_input_schema().inputs):
        return None  # float32 columns: MLflow casts them
    import warnings

    import pandas as pd
    from sklearn.base import MetaEstimatorMixin
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.metaestimators import _BaseComposition

    estimator = model.get_raw_model()
    conf = model.metadata.flavors.get("python_function", {})
    function: Callable[[Any], Any] = getattr(estimator, conf.get("predict_fn", "predict"))
    plain = type(estimator).__module__.split(".")[0] == "sklearn" and not isinstance(
        estimator, MetaEstimatorMixin | _BaseComposition | FunctionTransformer
    )
    if plain:
        # Fitted on a DataFrame, it notes the matrix has no column names: the same columns,
        # in the signature's order.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return function
    index = pd.Index(names, dtype=object)
    return lambda matrix: function(pd.DataFrame(matrix, columns=index))


def _rows_of(output: Any, count: int) -> list[Any]:
    """A model's output as one JSON value per input row."""
    if hasattr(output, "to_dict") and hasattr(output, "columns"):  # a DataFrame
        records: list[Any] = output.to_dict(orient="records")
        return records
    values = output.tolist() if hasattr(output, "tolist") else list(output)
    if len(values) != count:
        raise ValueError(f"the model answered {len(values)} rows for {count}")
    return values


def _json(answers: list[Any]) -> bytes:
    """The answers as JSON: by orjson (in C; NaN and infinity as null, as the API answers them;
    numpy values as numbers), else by `json` (integers past 64 bits)."""
    try:
        import orjson

        return orjson.dumps(answers, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    except (ImportError, TypeError):
        return json.dumps(answers, separators=(",", ":")).encode()


def _send(channel: socket.socket, kind: bytes, body: dict[str, Any]) -> None:
    channel.sendall(frame(kind, json.dumps(body).encode()))


def _send_seqpacket(control: socket.socket, kind: bytes, body: dict[str, Any]) -> None:
    control.send(frame(kind, json.dumps(body).encode()))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


if __name__ == "__main__":
    main()
