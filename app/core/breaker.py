"""The circuit breaker every dependency shares: after `failures` errors in a row the dependency is
not asked for `cooldown_s` (callers fail, or fall back, at once), then calls try again, and one
more error opens it again. A success closes it."""

from __future__ import annotations

import math
import time


class Breaker:
    def __init__(self, failures: int, cooldown_s: float) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._errors = 0
        self._open_until = 0.0

    @property
    def open(self) -> bool:
        return bool(self._open_until) and time.monotonic() < self._open_until

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until calls try again (at least 1)."""
        return max(1, math.ceil(self._open_until - time.monotonic()))

    def succeeded(self) -> None:
        self._errors = 0
        self._open_until = 0.0

    def failed(self) -> None:
        self._errors += 1
        if self._errors >= self.failures:
            self.trip()

    def trip(self) -> None:
        """Open now: the dependency was seen down (a probe got no answer)."""
        self._errors = max(self._errors, self.failures)
        self._open_until = time.monotonic() + self.cooldown_s
