"""The web console in Debian's Chromium (Playwright), against the service on loopback, each page
opened cold in a new browser context, the figures beside the budgets of issue 16:

- bytes transferred (compressed) for the page and its files, and for the API data it fetched;
- time from navigation to the page drawn with its data (`console-ready`, after the first render);
- the lineage graph of a chain of 1,000 versions (and of 10,000, beyond the budget), from
  navigation to every node drawn.

Data: the tests' console data through the API (tests/console_data.py) and chains written straight
to Postgres (tests/factories.py). Median of 5 runs.

    scripts/with-services .venv/bin/python bench/console.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from app.core.security import generate_key  # noqa: E402
from bench.server import service, stores  # noqa: E402
from tests.browser import CHROMIUM, FLAGS  # noqa: E402
from tests.console_data import seed  # noqa: E402
from tests.factories import CONTRIBUTOR, seed_chain  # noqa: E402

RUNS = 5
WEIGHT_BUDGET_KB = 300
READY_BUDGET_MS = 1000
GRAPH_BUDGET_MS = 2000

# Bytes of the page's own files and of the API's answers, as the browser received them.
TRANSFERRED = """() => {
  const entries = [
    performance.getEntriesByType("navigation")[0], ...performance.getEntriesByType("resource"),
  ];
  const api = entries.filter((e) => e.name.includes("/api/v1/"));
  const files = entries.filter((e) => !e.name.includes("/api/v1/"));
  const sum = (list) => list.reduce((total, e) => total + e.transferSize, 0);
  const ready = performance.getEntriesByName("console-ready")[0];
  return {files: sum(files), api: sum(api), ready: ready ? ready.startTime : null};
}"""


def open_cold(browser: Browser, url: str, key: str | None) -> tuple[dict[str, Any], Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if key:  # a tab already signed in: the key in this tab's session storage
        context.add_init_script(f"sessionStorage.setItem('hokusai.console.key', {key!r})")
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    return page.evaluate(TRANSFERRED), context


def graph_ms(browser: Browser, url: str, key: str, nodes: int) -> float:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(f"sessionStorage.setItem('hokusai.console.key', {key!r})")
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url)
    drawn = page.locator("svg.lineage g.node")
    drawn.nth(nodes - 1).wait_for(state="attached", timeout=120_000)
    elapsed = (time.perf_counter() - started) * 1000
    assert drawn.count() == nodes
    context.close()
    return elapsed


def main() -> None:
    key = generate_key()
    with stores(migrated=True) as run:
        database_url = run.database_url
        asyncio.run(seed_chain(database_url, "chain-1k", 1000))
        asyncio.run(seed_chain(database_url, "chain-10k", 10_000))
        with service(
            run.workdir,
            key,
            **run.settings,
            deltaone_cooldown_s="0",
        ) as base:
            data = seed(base, key, "lead-scoring")
            pages = {
                "sign-in (first page, no key)": ("", None),
                "models": ("#/models", key),
                "a model (4 versions, history)": (f"#/models/{data.model}", key),
                "lineage (4 versions)": (f"#/models/{data.model}/lineage", key),
                "A/B test results": (f"#/ab-tests/{data.ab_test_id}", key),
                "contributor": (f"#/contributors/{CONTRIBUTOR}", key),
            }
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                measured: dict[str, list[dict[str, Any]]] = {label: [] for label in pages}
                for _ in range(RUNS):
                    for label, (where, with_key) in pages.items():
                        figures, context = open_cold(browser, f"{base}/console{where}", with_key)
                        measured[label].append(figures)
                        context.close()
                graphs = {
                    "1,000 versions": [
                        graph_ms(browser, f"{base}/console#/models/chain-1k/lineage", key, 1000)
                        for _ in range(RUNS)
                    ],
                    "10,000 versions (depth 10,000)": [
                        graph_ms(
                            browser,
                            f"{base}/console#/models/chain-10k/lineage?depth=10000",
                            key,
                            10_000,
                        )
                        for _ in range(3)
                    ],
                }
                browser.close()

    print(f"\nCold page loads in Chromium {RUNS} times each, loopback; median.")
    print(
        f"{'page':<34}{'files KB':>9}{'API KB':>8}{'budget KB':>10}{'drawn ms':>10}"
        f"{'budget ms':>10}"
    )
    for label, runs in measured.items():
        files = statistics.median(r["files"] for r in runs) / 1024
        api = statistics.median(r["api"] for r in runs) / 1024
        ready = statistics.median(r["ready"] for r in runs)
        print(
            f"{label:<34}{files:>9.1f}{api:>8.1f}{WEIGHT_BUDGET_KB:>10}{ready:>10.0f}"
            f"{READY_BUDGET_MS:>10}"
        )
    print(
        f"\n{'lineage graph, navigation to every node drawn':<48}{'median ms':>10}{'budget ms':>10}"
    )
    for label, times in graphs.items():
        budget = str(GRAPH_BUDGET_MS) if label.startswith("1,000") else "-"
        print(f"  {label:<46}{statistics.median(times):>10.0f}{budget:>10}")


if __name__ == "__main__":
    main()
