"""The OpenAPI documentation page (Swagger UI) served with its own scripts and styles.

FastAPI's default ``/docs`` page makes the browser load Swagger UI from the jsdelivr CDN, so it stays blank on the
machines without internet access that clusters and plant networks often are. The ``swagger-ui-bundle`` package
ships the same files; they are served here under :data:`STATIC` and the page refers to them only.
"""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: URL prefix of the Swagger UI files.
STATIC = "/docs/static"


def install_docs_page(app: FastAPI) -> None:
    """Serve ``GET /docs`` (Swagger UI of ``app.openapi_url``) and its files from the installed
    ``swagger-ui-bundle``; ``app`` must be made with ``docs_url=None``."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(STATIC, StaticFiles(directory=swagger_ui_path), name="swagger_ui")

    @app.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API documentation",
                                   swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC}/favicon-32x32.png")
