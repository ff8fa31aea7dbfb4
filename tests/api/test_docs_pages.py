"""`/docs` and `/redoc` work offline: every script, style sheet and icon they name is served by
the service itself, and nothing on the page points at another host."""

from __future__ import annotations

import re

import httpx
import pytest

ATTRIBUTE = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""")
URL_IN_SCRIPT = re.compile(r"""url:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_page_loads_only_this_services_files(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html, "the page names another host"
    assert "https://" not in html, "the page names another host"
    assert "fonts.googleapis" not in html
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "img-src 'self' data:" in policy
    referenced = set(ATTRIBUTE.findall(html)) | set(URL_IN_SCRIPT.findall(html))
    assert "/openapi.json" in referenced
    scripts = [url for url in referenced if url.endswith(".js")]
    assert scripts, html
    for url in referenced:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url


async def test_swagger_ui_does_not_send_the_document_to_a_validator(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/docs")).text
    assert '"validatorUrl": null' in html


async def test_the_licences_ship_with_the_assets(client: httpx.AsyncClient) -> None:
    for licence in ("/docs/assets/swagger-ui/LICENSE", "/docs/assets/redoc/LICENSE"):
        response = await client.get(licence)
        assert response.status_code == 200
        assert "License" in response.text or "LICENSE" in response.text


async def test_assets_do_not_escape_their_folder(client: httpx.AsyncClient) -> None:
    for path in ("/docs/assets/../../main.py", "/docs/assets/%2e%2e/%2e%2e/main.py"):
        response = await client.get(path)
        assert response.status_code == 404, path
