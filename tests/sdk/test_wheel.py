"""The SDK as users install it: its wheel, alone in a fresh virtual environment, against the live
service. (CI also checks, before the tests, that no service dependency comes with it.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import LiveService

ROOT = Path(__file__).resolve().parents[2]
SMOKE = """
import sys
from hokusai import HokusaiClient, NotFoundError
client = HokusaiClient(sys.argv[1], sys.argv[2])
assert client.health().status == "ok"
keys = list(client.api_keys.list())
assert keys, "the bootstrap key at least"
try:
    client.models.get("no-such-model")
except NotFoundError as error:
    assert error.code == "model_not_found"
else:
    raise AssertionError("a missing model is NotFoundError")
print("smoke ok", len(keys))
"""


# uv as `make` runs it: on PATH, or the machine Python's module (`.ci/run` installs it there).
UV = [found] if (found := shutil.which("uv")) else ["python3", "-m", "uv"]


def uv(*args: str) -> None:
    subprocess.run([*UV, *args], check=True, capture_output=True, timeout=300)


def test_the_wheel_alone_in_a_fresh_venv_talks_to_the_service(
    live: LiveService, tmp_path: Path
) -> None:
    uv("build", str(ROOT / "sdk"), "--wheel", "--out-dir", str(tmp_path / "dist"))
    [wheel] = (tmp_path / "dist").glob("hokusai_ml_platform-*.whl")
    venv = tmp_path / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv))
    uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel))
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SMOKE, live.url, live.admin_key],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("smoke ok")
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import hokusai; print(hokusai.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert installed.startswith(str(venv)), "the wheel's copy, not the workspace's"


def test_the_mlflow_extra_pins_the_mlflow_the_service_runs() -> None:
    """A model saved with the client's MLflow loads in the service's: the same version."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[2]
    service = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    client = tomllib.loads((root / "sdk" / "pyproject.toml").read_text())["project"]
    [runs] = [re.split("==", d)[1] for d in service if re.match(r"mlflow(-skinny)?==", d)]
    [saves] = [
        re.split("==", d)[1] for d in client["optional-dependencies"]["mlflow"] if "mlflow" in d
    ]
    assert saves == runs
