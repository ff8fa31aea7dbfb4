"""The SDK's response models are generated from the committed contract, and current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveService

ROOT = Path(__file__).resolve().parents[2]


def test_types_are_generated_from_the_committed_openapi_json() -> None:
    script = ROOT / "sdk" / "scripts" / "generate_types.py"
    result = subprocess.run([sys.executable, str(script), "--check"], check=False)
    assert result.returncode == 0, (
        "sdk/src/hokusai/types.py is stale: run sdk/scripts/generate_types.py"
    )


def test_the_sdk_never_imports_the_service() -> None:
    sources = (ROOT / "sdk" / "src").rglob("*.py")
    assert not [p for p in sources if "from app" in p.read_text() or "import app" in p.read_text()]


def test_the_sdk_readme_snippet_runs(live: LiveService, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "sdk" / "README.md").read_text()
    [snippet] = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    code = snippet.replace("http://127.0.0.1:8000", live.url).replace(
        '"hk_..."', repr(live.admin_key)
    )
    exec(compile(code, "sdk/README.md", "exec"), {})  # the README's own code
    capsys.readouterr()
