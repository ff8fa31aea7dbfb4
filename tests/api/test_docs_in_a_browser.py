"""`/docs` and `/redoc` in a real browser (Debian's Chromium, driven by Playwright) with every
request to another host refused: both render the whole API from the service's own files."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from app.cli import ROOT
from tests.conftest import LiveService

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def offline_page(browser: Browser, live: LiveService) -> tuple[Page, list[str]]:
    context = browser.new_context()
    refused: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(live.url) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_service)
    page = context.new_page()
    page.on("console", lambda message: refused.extend(_blocked_by_policy(message.text)))
    return page, refused


def _blocked_by_policy(console: str) -> list[str]:
    """A resource the page needed but its Content-Security-Policy stopped is a failure too;
    ReDoc's sidebar logo on cdn.redoc.ly is the one thing the policy is there to stop."""
    if "Content Security Policy" in console and "cdn.redoc.ly" not in console:
        return [console]
    return []


def test_swagger_ui_renders_every_operation_offline(browser: Browser, live: LiveService) -> None:
    page, refused = offline_page(browser, live)
    page.goto(f"{live.url}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    document = json.loads((ROOT / "openapi.json").read_text())
    operations = sum(len(methods) for methods in document["paths"].values())
    assert page.locator(".opblock").count() == operations
    assert page.locator(".title").first.inner_text().startswith("Hokusai ML Platform API")
    assert refused == []


def test_redoc_renders_the_contract_offline(browser: Browser, live: LiveService) -> None:
    page, refused = offline_page(browser, live)
    page.goto(f"{live.url}/redoc")
    page.wait_for_selector("h1", timeout=30_000)
    assert "Hokusai ML Platform API" in page.locator("h1").first.inner_text()
    document = json.loads((ROOT / "openapi.json").read_text())
    summaries = {op["summary"] for methods in document["paths"].values() for op in methods.values()}
    page.wait_for_selector(f"text={sorted(summaries)[0]}", state="attached", timeout=30_000)
    text = page.locator("body").text_content()
    assert [summary for summary in summaries if summary not in text] == []
    assert refused == []
