"""The web console, `/console`: a page and its scripts shipped in the package (`app/console`), no
library and nothing from another host. It calls only the public `/api/v1` API with the key the
user signs in with, so it can show nothing the API would not. `/` leads to it.

The page's policy allows only this service's own scripts, styles and connections, and requires
Trusted Types, so no text from the API can ever be parsed as HTML (see `app/console/dom.js`)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from app.api.routing import Route
from app.core.errors import NotFound

CONSOLE = Path(__file__).resolve().parent.parent.parent / "console"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",  # small files: revalidated by ETag on every load
}

router = APIRouter(include_in_schema=False, route_class=Route)


@dataclass(frozen=True)
class Asset:
    body: bytes
    compressed: bytes
    etag: str
    media_type: str


@cache
def assets() -> dict[str, Asset]:
    """The console's files, read and compressed once, by name (nothing else can be asked for)."""
    found = {}
    for file in sorted(CONSOLE.iterdir()):
        if file.suffix in MEDIA_TYPES:
            body = file.read_bytes()
            found[file.name] = Asset(
                body=body,
                compressed=gzip.compress(body, compresslevel=9, mtime=0),
                etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                media_type=MEDIA_TYPES[file.suffix],
            )
    return found


def _served(request: Request, name: str) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise NotFound("The console has no such file")
    headers = {**HEADERS, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.compressed, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=302)


@router.get("/console")
async def console(request: Request) -> Response:
    return _served(request, "index.html")


@router.get("/console/assets/{name}")
async def console_asset(request: Request, name: str) -> Response:
    return _served(request, name)
