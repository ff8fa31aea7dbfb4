"""The documentation site builds with --strict (a broken link or a missing page fails), loads
nothing from the internet, and its references cover the whole API and client."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import ROOT

LOADS = re.compile(
    r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=\"([^\"]+)\""
    r"|<link\b[^>]*\bhref=\"([^\"]+)\"[^>]*>"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [
            str(Path(sys.executable).parent / "mkdocs"),
            "build",
            "--strict",
            "--site-dir",
            str(target),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return target


def test_no_page_loads_anything_from_another_host(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) > 15
    for page in pages:
        html = page.read_text()
        for match in LOADS.finditer(html):
            url = match.group(1) or match.group(2)
            tag = match.group(0)
            if url.startswith(("http://", "https://", "//")):
                # Only links a reader may follow (rel="canonical" and the like), never a load.
                assert "stylesheet" not in tag, (page, url)
                assert not tag.startswith(("<script", "<img", "<iframe")), (page, url)
    for sheet in site.rglob("*.css"):
        assert not re.search(r"url\((['\"]?)https?://", sheet.read_text()), sheet
        assert "@import url(http" not in sheet.read_text(), sheet


def test_diagrams_render_with_the_shipped_mermaid(site: Path) -> None:
    """Material fetches Mermaid from a CDN unless a `mermaid` global exists: ship one."""
    page = (site / "architecture.html").read_text()
    assert 'class="mermaid"' in page
    assert "assets/vendor/mermaid/mermaid.min.js" in page
    assert (site / "assets" / "vendor" / "mermaid" / "mermaid.min.js").stat().st_size > 1_000_000


def test_the_rest_reference_covers_every_operation(site: Path) -> None:
    page = (site / "reference" / "rest.html").read_text()
    document = json.loads((ROOT / "openapi.json").read_text())
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert operation["operationId"] in page, (method, path)
    for schema in document["components"]["schemas"]:
        assert f'id="{schema.lower()}"' in page, schema


def test_the_client_reference_shows_every_resource_method(site: Path) -> None:
    from hokusai import HokusaiClient

    page = (site / "reference" / "sdk.html").read_text()
    client = HokusaiClient("http://127.0.0.1:9", "hk_" + "x" * 40)
    for resource in (
        "models",
        "versions",
        "aliases",
        "lineage",
        "attestations",
        "contributors",
        "ab_tests",
        "experiments",
        "api_keys",
        "benchmarks",
    ):
        for name in dir(type(getattr(client, resource))):
            if not name.startswith("_"):
                assert f"{type(getattr(client, resource)).__name__}.{name}" in page, (
                    resource,
                    name,
                )


def test_the_client_reference_shows_the_constructor_and_the_response_types(site: Path) -> None:
    page = (site / "reference" / "sdk.html").read_text()
    for parameter in ("base_url", "api_key", "timeout", "max_retries", "max_batch_size"):
        assert parameter in page, parameter
    for kind in ("Model", "Version", "DeltaOne", "Prediction", "Attestation", "OutcomesAccepted"):
        assert f'id="hokusai.types.{kind}"' in page, kind
    assert "_Response" not in page, "no private base class"


def test_the_metrics_page_lists_every_metric_the_service_defines() -> None:
    from app.core.metrics import Metrics

    page = (ROOT / "docs" / "reference" / "metrics.md").read_text()
    defined = set()
    for metric in Metrics().registry.collect():
        if metric.name.startswith("hokusai_"):
            name = metric.name + ("_total" if metric.type == "counter" else "")
            defined.add(name)
            assert f"`{name}`" in page, name
    named = {name.removesuffix("_bucket") for name in re.findall(r"\bhokusai_[a-z_]+", page)}
    assert named - defined == set(), "the page names a metric the service does not have"


def test_the_site_opened_from_disk_links_files_not_folders(site: Path) -> None:
    """Every link between pages names an HTML file that exists: opened from disk
    (`site/index.html`), a link to a folder would show a directory listing."""
    href = re.compile(r'<a\b[^>]*\bhref="([^"#?]+)[^"]*"')
    broken = []
    for page in site.rglob("*.html"):
        if page.name == "404.html":  # served by a web server for any path: its links are absolute
            continue
        for target in href.findall(page.read_text()):
            if target.startswith(("http:", "https:", "mailto:", "data:")):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_file():
                broken.append(f"{page.relative_to(site)} -> {target}")
    assert broken == [], broken[:20]


def test_code_blocks_wrap_long_lines(site: Path) -> None:
    page = (site / "index.html").read_text()
    assert "assets/extra.css" in page
    assert "pre-wrap" in (site / "assets" / "extra.css").read_text()
