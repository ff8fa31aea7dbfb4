"""The console's files as the service serves them (the pages themselves are driven in a browser
in test_console_in_a_browser.py): where `/` leads, the policy, compression and revalidation, and
that nothing but the shipped files can be asked for."""

from __future__ import annotations

import gzip
import re

import httpx

from app.api.routers.console import CONSOLE, assets
from tests.api.test_errors import assert_problem

FIRST_PAGE_BUDGET = 300 * 1024  # bytes transferred, compressed (issue 16)
# Where a script could turn text into markup or code.
SINKS = re.compile(
    r"\.(?:inner|outer)HTML\s*=|insertAdjacentHTML\(|document\.write|\beval\(|new Function\("
    r"|setAttribute\(\s*[\"']on|DOMParser|createContextualFragment"
)


async def test_the_root_leads_to_the_console(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 302
    assert response.headers["location"] == "/console"


async def test_the_console_page_is_confined_by_its_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/console")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no inline script, no eval, no other host
    assert policy["connect-src"] == "'self'"
    assert policy["require-trusted-types-for"] == "'script'"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in response.headers
    assert '<script type="module" src="/console/assets/console.js"></script>' in response.text


async def test_files_are_compressed_and_revalidated(client: httpx.AsyncClient) -> None:
    plain = await client.get("/console/assets/console.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.content == (CONSOLE / "console.js").read_bytes()
    packed = await client.get("/console/assets/console.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # httpx decodes what it was sent
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    etag = plain.headers["etag"]
    again = await client.get("/console/assets/console.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    changed = await client.get("/console/assets/console.js", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


async def test_only_the_shipped_files_can_be_asked_for(client: httpx.AsyncClient) -> None:
    for path in [
        "/console/assets/nope.js",
        "/console/assets/..%2F..%2Fmain.py",
        "/console/assets/%2E%2E",
        "/console/assets/index.htm",
        "/console/assets/.console.js.swp",
    ]:
        assert_problem(await client.get(path), 404, "not_found")
    assert_problem(await client.get("/console/assets/a%00.js"), 422, "validation_failed")


def test_every_module_and_file_the_page_names_is_shipped() -> None:
    names = set(assets())
    page = (CONSOLE / "index.html").read_text()
    named = set(re.findall(r"/console/assets/([\w.]+)", page))
    for script in [name for name in names if name.endswith(".js")]:
        named |= set(re.findall(r'from "\./([\w.]+)"', (CONSOLE / script).read_text()))
    assert named <= names
    assert named == names - {"index.html"}, "a file nothing loads"


def test_no_script_parses_html_or_evaluates_text() -> None:
    """The policy would stop these at run time; the source does not even try."""
    for name, asset in assets().items():
        if name.endswith(".js"):
            source = asset.body.decode()
            assert SINKS.findall(source) == [], name
            assert "localStorage." not in source, "the key lives in sessionStorage only"


def test_the_first_page_weighs_under_300_kb_compressed() -> None:
    weight = sum(len(asset.compressed) for asset in assets().values())
    assert weight < FIRST_PAGE_BUDGET
    assert all(gzip.decompress(asset.compressed) == asset.body for asset in assets().values())
