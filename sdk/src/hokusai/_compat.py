"""What the upstream-compatible classes share: the client they run on (made from their own
arguments, else from `hokusai.setup(...)`, else the usual configuration), the warning that
names the new call, and the error that names what an old call lacks."""

from __future__ import annotations

import warnings
from typing import Any

from hokusai._client import HokusaiClient
from hokusai.errors import ConfigurationError

_setup: dict[str, str | None] = {}


def setup(api_key: str | None = None, api_endpoint: str | None = None) -> None:
    """Upstream's `hokusai.setup(api_key=...)`: the key and endpoint the upstream-compatible
    classes use when not given their own. It changes nothing else (no environment variable, no
    MLflow tracking URI); new code passes them to `HokusaiClient` instead."""
    deprecated("hokusai.setup()", "HokusaiClient(base_url=..., api_key=...)")
    _setup.update(api_key=api_key, base_url=api_endpoint)


def client_for(api_key: str | None, api_endpoint: str | None) -> HokusaiClient:
    return HokusaiClient(
        base_url=api_endpoint or _setup.get("base_url"), api_key=api_key or _setup.get("api_key")
    )


def deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is the upstream SDK's API; use {new}", DeprecationWarning, stacklevel=3)


def missing(**values: Any) -> ConfigurationError:
    """The error naming what the service needs and an old call lacks (the values that are None)."""
    names = [name for name, value in values.items() if value is None]
    hint = ", ".join(f"{name}=..." for name in names if name.isidentifier())
    return ConfigurationError(
        f"The service needs {', '.join(names)} for this call" + (f": pass {hint}" if hint else "")
    )
