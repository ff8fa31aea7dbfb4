"""The layering `docs/architecture.md` states: services speak no HTTP and touch no Redis or MLflow
client themselves (adapters do); rules are pure functions; the client package never imports the
service."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from app.cli import ROOT

FORBIDDEN_IN_SERVICES = {"fastapi", "starlette", "redis", "mlflow"}


def imported(path: Path, depth: int = 1) -> set[str]:
    """The first `depth` parts of every import in a module, at any depth of its code (lazy ones
    too): `imported(p)` gives packages, `imported(p, 2)` also the `app` layer."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(".".join(alias.name.split(".")[:depth]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(".".join(node.module.split(".")[:depth]))
    return found


@pytest.mark.parametrize(
    "module", sorted((ROOT / "app" / "services").glob("*.py")), ids=lambda p: p.name
)
def test_a_service_imports_no_web_cache_or_registry_library(module: Path) -> None:
    assert imported(module) & FORBIDDEN_IN_SERVICES == set()


# What a rule may use besides the standard library: numbers, Keccak-256, the vocabulary and the
# shapes it answers in. Nothing that reads a database, a cache, a registry, a network or a clock.
RULE_LIBRARIES = {"scipy", "eth_utils"}
RULE_LAYERS = {"app.core", "app.rules", "app.schemas"}


@pytest.mark.parametrize(
    "module", sorted((ROOT / "app" / "rules").glob("*.py")), ids=lambda p: p.name
)
def test_a_rule_is_a_pure_function_of_the_specification(module: Path) -> None:
    def allowed(name: str) -> bool:
        top = name.split(".")[0]
        return top in sys.stdlib_module_names or top in RULE_LIBRARIES or name in RULE_LAYERS

    assert {name for name in imported(module, 2) if not allowed(name)} == set()
    assert "time" not in imported(module)
    assert ".now(" not in module.read_text()


def test_the_client_package_never_imports_the_service() -> None:
    for module in (ROOT / "sdk" / "src" / "hokusai").rglob("*.py"):
        assert "app" not in imported(module), module


def _mentions_any(hint: object) -> bool:
    return hint is Any or any(_mentions_any(arg) for arg in get_args(hint))


@pytest.mark.parametrize(
    "module",
    sorted(
        p.stem for p in (ROOT / "app" / "db" / "repositories").glob("*.py") if p.stem != "__init__"
    ),
)
def test_a_repository_answers_in_types_mypy_can_check(module: str) -> None:
    """No `Any` crosses the SQL boundary: every public function and method of a repository
    module returns a type (an entity, a NamedTuple row, a scalar), never Any."""
    namespace = importlib.import_module(f"app.db.repositories.{module}")
    functions = [
        (name, value)
        for name, value in vars(namespace).items()
        if inspect.isfunction(value) and value.__module__ == namespace.__name__
    ]
    for cls in vars(namespace).values():
        if inspect.isclass(cls) and cls.__module__ == namespace.__name__:
            functions += [
                (f"{cls.__name__}.{name}", value)
                for name, value in vars(cls).items()
                if inspect.isfunction(value)
            ]
    returning_any = [
        name
        for name, function in functions
        if not name.rsplit(".", 1)[-1].startswith("_")
        and name != "insert"  # the dialect's INSERT builder, used inside repositories only
        and _mentions_any(get_type_hints(function).get("return"))
    ]
    assert returning_any == []
