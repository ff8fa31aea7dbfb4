"""Long-lived objects and the garbage collector.

CPython's cyclic collector walks every object of its oldest generation on each full collection. A
model server holds hundreds of thousands of long-lived objects (modules, MLflow, pandas,
scikit-learn, the loaded models); walking them took tens of milliseconds each time, often enough
to set the 90th percentile of a cached prediction under load (bench/predict.py). So whatever
survives start-up, and each change of the loaded models, is frozen: the collector skips it, while
new garbage is collected as before. Before freezing again, what was frozen is thawed and collected
once, so an evicted model's reference cycles are not kept for ever.

And the youngest generation is collected every 10,000 net allocations of containers instead of
CPython's 700: a request makes no reference cycles (their garbage is freed by reference counting),
yet at 700 a full collection ran about twice a second under load, a few milliseconds each,
finding nothing (`bench/predict.py`, cached rows: CPU per request and p99 both lower). What cycles
an error path makes are still collected, a little later."""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)

YOUNGEST_THRESHOLD = 10_000  # CPython's default: 700


def settle() -> None:
    """Collect everything once, then freeze what survived. A pause of its own (tens to hundreds
    of milliseconds), taken at start-up and after a model load, never per request."""
    started = time.perf_counter()
    gc.set_threshold(YOUNGEST_THRESHOLD, 10, 10)
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.info(
        "heap settled: %d objects frozen in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )
