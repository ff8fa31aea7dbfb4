"""The layering `docs/architecture.md` states: services speak no HTTP and touch no Redis or MLflow
client themselves (adapters do); the client package never imports the service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.cli import ROOT

FORBIDDEN_IN_SERVICES = {"fastapi", "starlette", "redis", "mlflow"}


def imported(path: Path) -> set[str]:
    """The top-level package of every import in a module, at any depth (lazy ones too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "module", sorted((ROOT / "app" / "services").glob("*.py")), ids=lambda p: p.name
)
def test_a_service_imports_no_web_cache_or_registry_library(module: Path) -> None:
    assert imported(module) & FORBIDDEN_IN_SERVICES == set()


def test_the_client_package_never_imports_the_service() -> None:
    for module in (ROOT / "sdk" / "src" / "hokusai").rglob("*.py"):
        assert "app" not in imported(module), module
