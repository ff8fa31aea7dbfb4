"""A real browser for the tests: Debian's Chromium driven by Playwright (no download of its own),
pages that may reach only the service, and screenshots kept in `build/screenshots/` (or
`$HOKUSAI_SCREENSHOTS`), which a CI run keeps with its checkout."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Browser, Page, Route

CHROMIUM = "/usr/bin/chromium"
# As root on a closed network: no sandbox, and none of Chromium's own background connections.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(
    os.environ.get("HOKUSAI_SCREENSHOTS")
    or Path(__file__).resolve().parent.parent / "build" / "screenshots"
)


def offline_page(
    browser: Browser, url: str, allowed_policy_reports: str = ""
) -> tuple[Page, list[str]]:
    """A page in a context of its own whose requests anywhere but `url` are refused and listed,
    with every resource its Content-Security-Policy stopped listed too (except reports naming
    `allowed_policy_reports`), and every page error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    refused: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(url) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    def policy(text: str) -> None:
        if "Content Security Policy" in text and not (
            allowed_policy_reports and allowed_policy_reports in text
        ):
            refused.append(text)

    context.route("**/*", only_the_service)
    page = context.new_page()
    page.on("console", lambda message: policy(message.text))
    page.on("pageerror", lambda error: refused.append(f"page error: {error}"))
    return page, refused


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
