"""The page: ``/`` and its static files under ``/static`` (registered by marshy_config_messager)."""

import os
from typing import Iterator

from servey.servey_starlette.route_factory.route_factory_abc import RouteFactoryABC
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

# Scripts and styles from this origin only; no inline script, no plugins, no framing.
# Images and uploads may go elsewhere (S3 presigned GETs and POSTs).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' http: https: blob:; "
    "connect-src 'self' http: https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
}


async def index(request: Request) -> FileResponse:
    return FileResponse(os.path.join(STATIC_DIR, "index.html"), media_type="text/html", headers=HEADERS)


class MessagerPageRouteFactory(RouteFactoryABC):
    priority = 100  # servey's action routes are 110, persisty-data's /data routes 120

    def create_routes(self) -> Iterator[BaseRoute]:
        yield Route("/", index, methods=["GET", "HEAD"])
        yield Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="messager_static")
