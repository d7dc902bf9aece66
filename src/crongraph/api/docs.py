"""`/docs`: Swagger UI from files packaged with crongraph (`api/static/swagger-ui/`, swagger-ui-dist 5.35.0 from
npm, Apache-2.0; see the README there), never from a CDN, so the page works on an air-gapped host.

Every URL the page uses is relative to the ASGI root path, so it also works under `http.mount_prefix`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
ASSETS = Path(__file__).parent / "static" / "swagger-ui"
ASSETS_PATH = "/docs/assets"


def install(api: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve the Swagger UI page at /docs and its assets under /docs/assets/."""

    async def docs(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{api.title} — API",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css?v={SWAGGER_UI_VERSION}",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
        )

    api.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    api.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="swagger-ui")
