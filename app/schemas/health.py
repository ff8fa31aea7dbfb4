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


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    checks: dict[str, DependencyCheck]
    warmup: Warmup | None = None
