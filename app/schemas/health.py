from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class DependencyCheck(BaseModel):
    status: Literal["up", "down", "disabled"]
    latency_ms: float | None = None
    error: str | None = None


class Warmup(BaseModel):
    status: Literal["idle", "running", "done", "failed"]
    loaded: int
    failed: int


class Sandbox(BaseModel):
    """How the model runners are confined on this replica (docs/how-to/sandbox.md)."""

    mode: Literal["required", "unconfined"]
    enforced: bool
    zygote: str
    landlock_abi: int
    seccomp: bool
    architecture: str
    missing: list[str]
    complete: bool


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, DependencyCheck]
    warmup: Warmup | None = None
    sandbox: Sandbox | None = None
