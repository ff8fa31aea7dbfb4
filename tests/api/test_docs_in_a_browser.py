"""`/docs` and `/redoc` in a real browser (Debian's Chromium, driven by Playwright) with every
request to another host refused: both render the whole API from the service's own files."""

from __future__ import annotations

import json

from playwright.sync_api import Browser

from app.cli import ROOT
from tests.browser import offline_page
from tests.conftest import LiveService

# ReDoc's sidebar logo on cdn.redoc.ly is the one thing the docs' policy is there to stop.
REDOC_LOGO = "cdn.redoc.ly"


def test_swagger_ui_renders_every_operation_offline(browser: Browser, live: LiveService) -> None:
    page, refused = offline_page(browser, live.url, REDOC_LOGO)
    page.goto(f"{live.url}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    document = json.loads((ROOT / "openapi.json").read_text())
    operations = sum(len(methods) for methods in document["paths"].values())
    assert page.locator(".opblock").count() == operations
    assert page.locator(".title").first.inner_text().startswith("Hokusai ML Platform API")
    assert refused == []


def test_redoc_renders_the_contract_offline(browser: Browser, live: LiveService) -> None:
    page, refused = offline_page(browser, live.url, REDOC_LOGO)
    page.goto(f"{live.url}/redoc")
    page.wait_for_selector("h1", timeout=30_000)
    assert "Hokusai ML Platform API" in page.locator("h1").first.inner_text()
    document = json.loads((ROOT / "openapi.json").read_text())
    summaries = {op["summary"] for methods in document["paths"].values() for op in methods.values()}
    page.wait_for_selector(f"text={sorted(summaries)[0]}", state="attached", timeout=30_000)
    text = page.locator("body").text_content()
    assert [summary for summary in summaries if summary not in text] == []
    assert refused == []
