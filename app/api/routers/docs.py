"""Interactive API documentation, `/docs` (Swagger UI) and `/redoc`, served from assets shipped in
the package (`app/static`, refreshed by `scripts/vendor-docs-assets`, licences beside them), so
they work offline and behind a firewall: the pages load nothing but this service's own files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.api.routing import Route

STATIC = Path(__file__).resolve().parent.parent.parent / "static"
ASSETS = "/docs/assets"
TITLE = "Hokusai ML Platform API"

# The pages may load only this service's files: Swagger UI and ReDoc start from an inline
# script, ReDoc renders in a blob worker, and ReDoc's sidebar names a logo on its maker's CDN,
# which this policy keeps the browser from fetching.
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)

router = APIRouter(include_in_schema=False, route_class=Route)


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = POLICY
    return page


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return _confined(
        get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=TITLE,
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            oauth2_redirect_url=f"{ASSETS}/swagger-ui/oauth2-redirect.html",
            # Swagger UI asks swagger.io to validate the document unless told not to.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _confined(
        get_redoc_html(
            openapi_url="/openapi.json",
            title=TITLE,
            redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
    )


def mount_assets(app_router: APIRouter) -> None:
    app_router.mount(ASSETS, StaticFiles(directory=STATIC), name="docs-assets")
